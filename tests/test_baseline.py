"""The 2D-only baseline: animate the input view, then depth-warp each frame to the trajectory cameras."""

from __future__ import annotations

import numpy as np

from landscape4d.camera import Intrinsics
from landscape4d.config import apply_overrides, preset
from landscape4d.evaluation.baseline import BaselineInputs, animate_input_view, baseline_videos, warp_frames

H, W = 48, 64


def tiny_inputs(depth: np.ndarray | None = None) -> BaselineInputs:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    image = np.stack([0.5 + 0.4 * np.sin(xx / 3.0), 0.5 + 0.4 * np.cos(yy / 4.0),
                      rng.random((H, W)) * 0.5 + 0.25], -1).astype(np.float32)
    mask = np.zeros((H, W), bool)
    mask[28:44, 8:56] = True  # "water" band
    motion = np.zeros((H, W, 2), np.float32)
    motion[mask] = (0.6, 0.0)
    if depth is None:
        depth = (2.0 + 0.05 * (H - yy)).astype(np.float32)  # ground receding towards the top
    cfg = apply_overrides(preset("preview"), ["animate.num_frames=6"])
    return BaselineInputs(image, mask, motion, depth, Intrinsics.from_fov(W, H, 60.0), float(np.median(depth)), cfg)


def test_baseline_videos_shape_and_loop():
    b = tiny_inputs()
    videos = baseline_videos(None, ["side", "zoom-in"], 9, inputs=b)
    assert set(videos) == {"side", "zoom-in"}
    for v in videos.values():
        assert v.shape == (9, H, W, 3) and v.dtype == np.uint8
        assert v.std() > 10
    loop = animate_input_view(b)
    assert loop.shape == (7, H, W, 3)
    assert np.allclose(loop[0], b.image) and np.allclose(loop[6], b.image)
    assert np.abs(loop[3][b.mask] - b.image[b.mask]).mean() > 0.01  # the water moves


def test_static_pixels_at_the_input_camera_equal_the_input():
    b = tiny_inputs()
    loop = animate_input_view(b)[:-1]
    out = warp_frames(loop, [np.eye(4)] * len(loop), b.depth, b.intr)
    expected = (np.clip(b.image, 0, 1) * 255 + 0.5).astype(np.uint8)
    static = ~b.mask
    for k in range(len(loop)):
        assert np.abs(out[k][static].astype(int) - expected[static].astype(int)).max() <= 1, k
        # moving pixels show the animated frame, not the photo
        anim = (np.clip(loop[k], 0, 1) * 255 + 0.5).astype(np.uint8)
        assert np.abs(out[k].astype(int) - anim.astype(int)).max() <= 1, k


def test_warp_shifts_a_fronto_parallel_plane_by_the_parallax():
    z = 2.0
    b = tiny_inputs(np.full((H, W), z, np.float32))
    shift_px = 3.0
    c2w = np.eye(4)
    c2w[0, 3] = shift_px * z / b.intr.fx  # camera moves right -> the image moves left by shift_px
    frame = b.image[None]
    out = warp_frames(frame, [c2w], b.depth, b.intr, inpaint_method="none")[0].astype(int)
    src = (np.clip(b.image, 0, 1) * 255 + 0.5).astype(np.uint8).astype(int)
    assert np.abs(out[:, :W - 3] - src[:, 3:]).max() <= 1
    assert (out[:, W - 3:] == 0).all()  # disoccluded border: a hole (not inpainted here)
