"""The honest loop-seam metric (step from the last frame back to the first against the ordinary step) and where it
is used: the 4D scene at the input camera (coverage too), the rendered trajectory videos and the 2D animator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landscape4d.evaluation.metrics import SeamStep, loop_seam_step


def _wave(t: float, h: int = 24, w: int = 32) -> np.ndarray:
    """(h, w, 3) float frame of a smooth pattern travelling right by t pixels."""
    x = np.arange(w)[None, :] - t
    y = np.arange(h)[:, None]
    g = 0.5 + 0.4 * np.sin(2 * np.pi * x / w) * np.cos(2 * np.pi * y / 24)
    return np.repeat(g[..., None], 3, axis=-1)


def test_seam_step_by_hand():
    frames = np.zeros((3, 2, 2, 3), np.uint8)
    frames[1] = 10
    frames[2] = 40
    s = loop_seam_step(frames)  # steps 10, 30; seam 40 -> 0
    assert (s.seam, s.step, s.neighbours) == pytest.approx((40.0, 20.0, 20.0))
    assert s.ratio == pytest.approx(2.0) and s.ratio_neighbours == pytest.approx(2.0)
    mask = np.array([[True, False], [False, False]])
    f = frames.copy()
    f[2, 1, 1] = 255  # outside the mask: ignored
    assert loop_seam_step(f, mask).seam == pytest.approx(40.0) and loop_seam_step(f, mask).step == pytest.approx(20.0)
    assert loop_seam_step(frames.astype(np.float32) / 255).seam == pytest.approx(40.0)  # float in [0, 1]
    assert SeamStep(0.0, 0.0, 0.0).ratio == 1.0 and SeamStep(1.0, 0.0, 0.0).ratio == np.inf
    frames = np.zeros((5, 1, 1, 3), np.uint8)
    frames[:, 0, 0] = np.array([0, 2, 12, 22, 24])[:, None]  # steps 2, 10, 10, 2 (fast mid-path); seam 24
    s = loop_seam_step(frames)
    assert s.ratio == pytest.approx(24 / 6) and s.ratio_neighbours == pytest.approx(24 / 2)


def test_seamless_loop_scores_about_one_and_a_jump_scores_high():
    n, w = 16, 32
    loop = np.stack([_wave(t * w / n) for t in range(n)])  # frame n would equal frame 0
    assert loop_seam_step(loop).ratio == pytest.approx(1.0, abs=0.05)
    drift = np.stack([_wave(0.6 * t * w / n) for t in range(n)])  # does not come back
    assert loop_seam_step(drift).ratio > 5


def test_per_frame_masks_use_the_union_of_each_pair():
    frames = np.zeros((2, 1, 3, 3), np.uint8)
    frames[1, 0, 2] = 90
    masks = np.zeros((2, 1, 3), bool)
    masks[0, 0, 0], masks[1, 0, 2] = True, True
    s = loop_seam_step(frames, masks)  # both pairs see pixels 0 and 2
    assert s.seam == pytest.approx(45.0) and s.step == pytest.approx(45.0)
    with pytest.raises(ValueError, match="mask shape"):
        loop_seam_step(frames, np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="T >= 2"):
        loop_seam_step(frames[:1])


def test_loop_metrics_of_the_4d_scene_at_a_fixed_camera():
    from landscape4d.dynamics.metrics import loop_metrics

    n = 8
    color = np.stack([_wave(t * 32 / n) for t in range(n)]).astype(np.float32)
    alpha = np.ones((n, 24, 32), np.float32)
    alpha[3, :12] = 0.9  # a dip in the top half only
    mask = np.zeros((24, 32), bool)
    mask[:12] = True
    m = loop_metrics(color, alpha, mask)
    assert m["seam_ratio"] == pytest.approx(1.0, abs=0.05) and m["frames"] == n and m["mask_pixels"] == 12 * 32
    assert m["alpha_t0"] == 1.0 and m["alpha_min"] == pytest.approx(0.9) and m["alpha_range"] == pytest.approx(0.1)
    assert loop_metrics(color, alpha, ~mask)["alpha_range"] == 0.0


def test_render_videos_report_their_seam_inside_the_moving_region():
    from landscape4d.camera import trajectory
    from landscape4d.render import moving_region, render_video, video_loop_seam
    from landscape4d.artifacts import intrinsics_from_json
    from landscape4d.viewer.demo_scene import make_demo_scene

    scene, header = make_demo_scene(cols=32, rows=24, width=64, height=48, num_frames=8)
    K = torch.tensor(intrinsics_from_json(header["camera"]).matrix(), dtype=torch.float32)
    region = moving_region(scene, K, np.eye(4), 0.0, 64, 48)
    assert region[30:].mean() > 0.95 and region[:18].mean() < 0.05  # the lower half moves
    still = [np.eye(4)] * 8
    seam = video_loop_seam(scene, K, still, render_video(scene, K, still, 64, 48, fill=False))
    assert 0.8 < seam["seam_ratio"] < 1.25 and seam["mean_step"] > 0
    # played with time not wrapping (the first 8 frames of a longer loop), the video jumps at its seam
    longer = scene.detach()
    longer.num_frames = 12
    jump = video_loop_seam(longer, K, still, render_video(longer, K, still, 64, 48, fill=False))
    assert jump["seam_ratio"] > 1.5 * seam["seam_ratio"]
    # along a camera path (periodic: pose 8 = pose 0) the same numbers are reported
    poses = trajectory("side", 8, header["scene_depth"])
    seam = video_loop_seam(scene, K, poses, render_video(scene, K, poses, 64, 48, fill=False))
    assert seam["mean_step"] > 0 and np.isfinite(seam["seam_ratio"]) and "seam_ratio_whole_frame" in seam
    assert 0.6 < seam["seam_ratio_neighbours"] < 1.6
