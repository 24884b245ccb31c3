"""The moving region runs on into the border the static scene extends the photo by (`gaussians.border`): water that
flows out of the frame keeps flowing beyond it, so a camera that sees past the frame sees no still strip and no
uncovered way out of the moving Gaussians."""

from __future__ import annotations

import numpy as np
from PIL import Image

from landscape4d.cli import main
from landscape4d.config import RunConfig, apply_overrides
from landscape4d.pipeline import StageContext
from landscape4d.stages.dynamics import initial_scene

TINY = ["--threads", "1", "--size", "96", "--num-views", "3", "--frames", "8", "--set", "gaussians.iters=2",
        "--set", "motion.refine_iters=5", "--set", "animate.sampled_views=2"]


def test_gaussians_of_the_border_move_where_the_moving_region_meets_the_frame(demo_input, tmp_path):
    mask = np.zeros((144, 256), np.uint8)
    mask[90:, :] = 255  # water over the whole width, down to the bottom: it meets the left, right and bottom edges
    Image.fromarray(mask).save(tmp_path / "mask.png")
    run = tmp_path / "run"
    assert main(["gaussians", str(demo_input["image"]), "--mask", str(tmp_path / "mask.png"), "--direction", "1,0",
                 "--speed", "0.5", "-o", str(run)] + TINY) == 0
    assert main(["motion", "-o", str(run), "--threads", "1"]) == 0
    cfg = apply_overrides(RunConfig(), ["size=96", "animate.num_frames=8", "dynamics.backing=0"])
    ctx = StageContext(run, tmp_path / "out", cfg, "cpu", "dynamics")
    scene, _ = initial_scene(ctx, motion_init=True)
    intr = ctx.artifacts.depth.intr
    means = scene.means.numpy()
    x = intr.fx * means[:, 0] / means[:, 2] + intr.cx  # pixel column in the photo (the border lies outside it)
    y = intr.fy * means[:, 1] / means[:, 2] + intr.cy
    moving = scene.moving.numpy().astype(bool)
    right_border = x > intr.width + 3  # beyond the frame, farther than the 3 px `moving_radius`
    low, high = right_border & (y > intr.height * 0.75), right_border & (y < intr.height * 0.5)
    assert low.sum() > 20 and moving[low].mean() > 0.9  # beside the water: moving
    assert high.sum() > 20 and not moving[high].any()  # beside the still land: still
    vel = scene.velocity.numpy()[low & moving]
    assert np.all(vel[:, 0] > 0)  # and flowing the way the water does


def _flowing_plane(backing: float):
    """A 40x24 plane of one-pixel Gaussians whose lower half flows right at 1 px/frame for a 12-frame loop (12 px:
    half the moving rows' upstream end has nothing flowing in for part of the loop). -> scene, moving rows, K."""
    import torch

    from landscape4d.camera import Intrinsics, unproject_depth
    from landscape4d.dynamics.motion_init import build_scene4d
    from landscape4d.gaussians import GaussianModel
    from landscape4d.stages.dynamics import with_backing

    h, w = 24, 40
    intr = Intrinsics.from_fov(w, h, 60)
    pts = unproject_depth(np.full((h, w), 3.0, np.float32), intr).reshape(-1, 3)
    cols = np.random.default_rng(0).random((h * w, 3))
    model = GaussianModel.from_pixel_footprints(pts, cols, 0.5, intr.fx, intr.fy, opacity=0.99)
    moving = np.zeros((h, w), bool)
    moving[h // 2:] = True
    vel = np.zeros((h * w, 3), np.float32)
    vel[moving.ravel(), 0] = 3.0 / intr.fx
    if backing:
        model, vel, mov = with_backing(model, vel, moving.ravel(), backing)
    else:
        mov = moving.ravel()
    scene = build_scene4d(model.means, model.quats, model.log_scales, model.opacity_logits, model.sh,
                          torch.from_numpy(vel), torch.from_numpy(mov), 12, 1)
    return scene, moving, torch.tensor(intr.matrix(), dtype=torch.float32), (w, h)


def test_a_static_backing_keeps_the_moving_region_covered_where_nothing_flows_in():
    from landscape4d.dynamics.metrics import loop_metrics, render_loop

    ranges = {}
    for backing in (0.0, 0.02):
        scene, moving, K, (w, h) = _flowing_plane(backing)
        color, alpha = render_loop(scene, K, np.eye(4), w, h, "torch")
        ranges[backing] = loop_metrics(color, alpha, moving)["alpha_range"]
    assert ranges[0.0] > 0.02  # the upstream strip uncovered mid-loop (3.6%)
    assert ranges[0.02] < 0.01  # covered by the static copies behind


def test_backing_copies_are_static_and_behind_their_moving_gaussians():
    scene, moving, _, _ = _flowing_plane(0.02)
    n = moving.size
    mov = scene.moving.numpy().astype(bool)
    assert len(scene) == n + moving.sum() and not mov[n:].any() and (scene.velocity.numpy()[n:] == 0).all()
    front = scene.means.numpy()[:n][moving.ravel()]
    np.testing.assert_allclose(scene.means.numpy()[n:], front * 1.02, rtol=1e-5)
