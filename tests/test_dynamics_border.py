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
    cfg = apply_overrides(RunConfig(), ["size=96", "animate.num_frames=8"])
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
