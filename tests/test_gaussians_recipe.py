"""The static-scene recipe (issue 14): per-pixel footprint init, hole weights, frozen static colours in stage 2."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from landscape4d.camera import Intrinsics, unproject_depth
from landscape4d.config import DynamicsConfig, RunConfig, apply_overrides, preset, validate
from landscape4d.dynamics.motion_init import build_scene4d
from landscape4d.dynamics.train import TrainClip, train_dynamics
from landscape4d.gaussians import GaussianModel, psnr, render_model
from landscape4d.gaussians.sh import rgb_to_sh0
from landscape4d.stages.gaussians import view_weights


def _textured_plane(h: int = 24, w: int = 32, seed: int = 0):
    """A slanted plane (depth grows to the bottom-right) with a random texture blurred by 2 px. -> points, colours,
    image, intrinsics"""
    import cv2

    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 2.0)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    intr = Intrinsics.from_fov(w, h, 60)
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (2.0 + 0.03 * xx + 0.05 * yy).astype(np.float32)
    return unproject_depth(depth, intr).reshape(-1, 3), tex.reshape(-1, 3), tex, intr


def _render_input_view(model: GaussianModel, intr: Intrinsics) -> torch.Tensor:
    with torch.no_grad():
        return render_model(model, intr.matrix(), np.eye(4), intr.width, intr.height).color.clamp(0, 1)


def test_footprint_init_renders_the_photo_before_any_training():
    pts, cols, tex, intr = _textured_plane()
    target = torch.from_numpy(tex)
    fp = GaussianModel.from_pixel_footprints(pts, cols, 0.5, intr.fx, intr.fy, opacity=0.99)
    knn = GaussianModel.from_points(pts, cols, opacity=0.1)  # the 3DGS initialisation we used before
    p_fp, p_knn = psnr(_render_input_view(fp, intr), target), psnr(_render_input_view(knn, intr), target)
    # footprint: 29.3 dB (the rasterizer's 0.3 px^2 low-pass blurs the 0.5 px Gaussians); knn at opacity 0.1: 14.3 dB
    assert p_fp > 27.0
    assert p_fp > p_knn + 12.0


def test_footprint_gaussians_are_flat_discs_of_one_pixel_at_their_depth():
    pts, cols, _, intr = _textured_plane()
    m = GaussianModel.from_pixel_footprints(pts, cols, 0.5, intr.fx, intr.fy, opacity=0.9)
    s = m.scales.numpy()
    z = pts[:, 2]
    np.testing.assert_allclose(s[:, 0], 0.5 * z / intr.fx, rtol=1e-5)
    np.testing.assert_allclose(s[:, 1], 0.5 * z / intr.fy, rtol=1e-5)
    assert np.all(s[:, 2] < 0.2 * s[:, 0])
    np.testing.assert_allclose(m.opacities.numpy(), 0.9, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        GaussianModel.from_pixel_footprints(pts, cols[:-1], 0.5, intr.fx, intr.fy)


def test_view_weights_down_weight_only_the_holes_of_side_views():
    holes = np.zeros((4, 5), bool)
    holes[1:3, 2:4] = True
    assert view_weights(holes, 0.1, 0) is None  # the photo is always weighted fully
    assert view_weights(holes, 1.0, 3) is None
    w = view_weights(holes, 0.1, 3)
    assert w.shape == (4, 5) and w.dtype == np.float32
    np.testing.assert_allclose(w[holes], 0.1)
    np.testing.assert_allclose(w[~holes], 1.0)


def _moving_plane(h: int = 16, w: int = 20, frames: int = 8):
    pts, cols, tex, intr = _textured_plane(h, w)
    n = h * w
    moving = np.zeros(n, bool)
    moving[n // 2:] = True
    vel = np.zeros((n, 3), np.float32)
    vel[moving, 0] = 0.3 * pts[moving, 2] / intr.fx
    scene = build_scene4d(torch.from_numpy(pts).float(), torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
                          torch.log(torch.full((n, 3), 0.6 * 2.5 / intr.fx)), torch.full((n,), 3.0),
                          rgb_to_sh0(torch.from_numpy(cols))[:, None, :], torch.from_numpy(vel),
                          torch.from_numpy(moving), frames, 1)
    # a clip whose colours differ from the scene everywhere: training pulls every colour it is allowed to move
    clip = TrainClip(torch.from_numpy(np.repeat((1.0 - tex)[None], frames, 0)).float(),
                     torch.tensor(intr.matrix(), dtype=torch.float32), np.eye(4), 0)
    return scene, clip, torch.from_numpy(moving)


def test_frozen_static_gaussians_keep_their_stage_1_colour_and_opacity():
    scene, clip, moving = _moving_plane()
    cfg = DynamicsConfig(iters=5)
    frozen, _ = train_dynamics(scene, [clip], cfg, 3.0, freeze_static=True)
    free, _ = train_dynamics(scene, [clip], cfg, 3.0, freeze_static=False)
    static = ~moving
    assert torch.equal(frozen.sh[static], scene.sh[static])
    assert torch.equal(frozen.opacity_logits[static], scene.opacity_logits[static])
    assert not torch.equal(frozen.sh[moving], scene.sh[moving])  # moving ones still learn their colour
    assert not torch.equal(free.sh[static], scene.sh[static])  # and without the freeze, static ones do too


def test_preview_preset_is_the_per_pixel_recipe_and_full_is_larger():
    p, f = preset("preview"), preset("full")
    assert p.size >= 512 and p.gaussians.downsample == 1 and p.gaussians.init == "footprint"
    assert p.gaussians.input_view_every > 0
    assert f.size >= 1024 and f.size > p.size and f.gaussians.downsample == 1


@pytest.mark.parametrize("setting, message", [
    ("gaussians.init=blobs", "gaussians.init"),
    ("gaussians.init_opacity=1.5", "below 1.5"),
    ("gaussians.init_opacity=0", "> 0"),
    ("gaussians.init_sigma_px=0", "> 0"),
    ("gaussians.hole_weight=-1", ">= 0"),
])
def test_recipe_settings_are_validated(setting, message):
    with pytest.raises(ValueError, match=re_escape(message)):
        validate(apply_overrides(RunConfig(), [setting]))


def re_escape(s: str) -> str:
    import re

    return re.escape(s)


def test_footprint_init_opacity_logit_is_finite_near_the_ceiling():
    m = GaussianModel.from_pixel_footprints(np.array([[0.0, 0.0, 2.0]]), np.array([[0.5, 0.5, 0.5]]), 0.5,
                                            100.0, 100.0, opacity=1.49)
    assert math.isfinite(float(m.opacity_logits[0])) and float(m.opacities[0]) == pytest.approx(1.49)


def test_stage_2_keeps_the_refined_velocity_and_learns_it_only_without_motion_init():
    """Velocity fine-tuning moved each Gaussian on its own (grainy water): by default stage 2 keeps the refined 3D
    motion; the --no-motion-init ablation, which starts from zero velocity, still learns one."""
    scene, clip, moving = _moving_plane()
    kept, _ = train_dynamics(scene, [clip], DynamicsConfig(iters=3), 3.0)
    assert torch.equal(kept.velocity, scene.velocity)
    zero = scene.detach()
    zero.velocity = torch.zeros_like(zero.velocity)
    learnt, _ = train_dynamics(zero, [clip], DynamicsConfig(iters=3, motion_init=False), 3.0)
    assert learnt.velocity[moving].abs().max() > 0
