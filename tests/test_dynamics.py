"""4D Gaussians: deformation formula vs its reference, loop closure, scene file round trip, and training on an
animated synthetic plane with known motion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from landscape4d.animate import animate_image
from landscape4d.camera import Intrinsics, unproject_depth
from landscape4d.config import AnimateConfig, DynamicsConfig
from landscape4d.dynamics import build_scene4d, gaussians_at, load_scene4d, save_scene4d
from landscape4d.dynamics.model import gaussian_at_reference
from landscape4d.dynamics.train import TrainClip, render_scene, train_dynamics
from landscape4d.errors import InputError
from landscape4d.gaussians.sh import rgb_to_sh0


def _random_scene(n=40, frames=12, order=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    moving = torch.rand(n, generator=g) > 0.5
    scene = build_scene4d(r(n, 3), r(n, 4), r(n, 3) * 0.1 - 3, r(n), r(n, 1, 3), r(n, 3) * 0.01, moving, frames,
                          order)
    scene.pos_coef.copy_(r(*scene.pos_coef.shape) * 0.01)
    scene.rot_coef.copy_(r(*scene.rot_coef.shape) * 0.01)
    scene.scale_coef.copy_(r(*scene.scale_coef.shape) * 0.01)
    return scene


def test_deformation_matches_reference():
    scene = _random_scene()
    for t in (0.0, 0.13, 0.5, 0.77):
        g = gaussians_at(scene, t)
        for i in range(len(scene)):
            pos, quat, scale, opac = gaussian_at_reference(scene, i, t)
            np.testing.assert_allclose(g.means[i].numpy(), pos, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(g.quats[i].numpy(), quat, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(g.scales[i].numpy(), scale, rtol=1e-5, atol=1e-7)
            assert float(g.opacities[i]) == pytest.approx(opac, rel=1e-5, abs=1e-7)


def test_twins_weights_sum_to_one_and_loop_closes():
    scene = _random_scene()
    n_static = int((~scene.moving).sum())
    moving_originals = scene.moving.clone()
    moving_originals[len(scene) - (len(scene) - 40):] = False  # the first 40 are the originals
    for t in np.linspace(0, 1, 9):
        g = gaussians_at(scene, float(t))
        base = torch.sigmoid(scene.opacity_logits)
        w = g.opacities / base
        orig = torch.nonzero(moving_originals).squeeze(1)
        twins = torch.arange(40, len(scene))
        np.testing.assert_allclose((w[orig] + w[twins]).numpy(), 1.0, atol=1e-6)
    g0, g1 = gaussians_at(scene, 0.0), gaussians_at(scene, 1.0)
    for a, b in zip((g0.means, g0.quats, g0.scales, g0.opacities), (g1.means, g1.quats, g1.scales, g1.opacities)):
        torch.testing.assert_close(a, b)
    assert n_static > 0


def test_scene_file_round_trip(tmp_path):
    scene = _random_scene()
    camera = {"fl_x": 40.0, "fl_y": 40.0, "cx": 24.0, "cy": 20.0, "w": 48, "h": 40}
    save_scene4d(tmp_path / "s.safetensors", scene, {"fps": 30, "camera": camera, "scene_depth": 2.0})
    back, head = load_scene4d(tmp_path / "s.safetensors")
    assert head["num_frames"] == 12 and head["fps"] == 30 and (tmp_path / "s.json").exists()
    for name in scene.TENSORS:
        torch.testing.assert_close(getattr(back, name).float(), getattr(scene, name).float())
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="bad.safetensors"):
        load_scene4d(tmp_path / "bad.safetensors")


def _plane_scene(h=40, w=48, z=3.0, frames=12, v_px=0.5, seed=0):
    """One small Gaussian per pixel of a textured fronto-parallel plane; the lower half moves right."""
    rng = np.random.default_rng(seed)
    import cv2

    tex = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.2)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    intr = Intrinsics.from_fov(w, h, 60)
    pts = torch.from_numpy(unproject_depth(np.full((h, w), z, np.float32), intr))
    n = h * w
    pix = z / intr.fx  # world size of a pixel on the plane
    mask = np.zeros((h, w), bool)
    mask[h // 2:, :] = True
    vel = np.zeros((n, 3), np.float32)
    vel[mask.ravel(), 0] = v_px * pix
    scene = build_scene4d(pts, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
                          torch.full((n, 3), math.log(0.6 * pix)), torch.full((n,), 4.0),
                          rgb_to_sh0(torch.from_numpy(tex.reshape(-1, 3)))[:, None, :], torch.from_numpy(vel),
                          torch.from_numpy(mask.ravel()), frames, 2)
    return scene, tex, mask, intr


def test_trained_4d_matches_animation_on_plane():
    frames, v_px = 12, 0.5
    scene, tex, mask, intr = _plane_scene(frames=frames, v_px=v_px)
    h, w = mask.shape
    K = torch.tensor(intr.matrix(), dtype=torch.float32)
    with torch.no_grad():
        still = render_scene(scene, 0.0, K, np.eye(4), w, h).color.numpy()
    M = np.zeros((h, w, 2), np.float32)
    M[mask, 0] = v_px
    anim = animate_image(still, M, mask, frames, AnimateConfig(num_frames=frames), device="cpu")[:-1]
    clip = TrainClip(torch.from_numpy(anim).float(), K, np.eye(4), 0)
    trained, metrics = train_dynamics(scene, [clip], DynamicsConfig(iters=30), 3.0)
    assert metrics["loss_last"] <= metrics["loss_first"] * 1.05
    # ground truth: the still image shifted right by v * t inside the moving half (interior only)
    inner = np.zeros((h, w), bool)
    inner[h // 2 + 3:-3, 10:-10] = True
    for t in (3, 6, 9):
        shift = v_px * t
        xs = np.arange(w) - shift
        gt = np.stack([np.stack([np.interp(xs, np.arange(w), still[i, :, c]) for c in range(3)], -1)
                       for i in range(h)])
        with torch.no_grad():
            ren = render_scene(trained, t / frames, K, np.eye(4), w, h).color.numpy()

        def psnr(a, b):
            return 10 * np.log10(1 / np.mean((a[inner] - b[inner]) ** 2))

        assert psnr(ren, gt) >= psnr(anim[t], gt) - 2.0
    with torch.no_grad():
        a = render_scene(trained, 0.0, K, np.eye(4), w, h).color
        b = render_scene(trained, 1.0, K, np.eye(4), w, h).color
    torch.testing.assert_close(a, b)


def test_fill_holes_inpaints_only_what_no_gaussian_covers():
    from landscape4d.render import fill_holes

    h, w = 20, 30
    color = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    color[:, :20], alpha[:, :20] = (0.8, 0.4, 0.2), 1.0  # covered
    color[:, 20:22], alpha[:, 20:22] = (0.4, 0.2, 0.1), 0.5  # half covered: the other half is filled
    out = fill_holes(color, alpha).astype(float) / 255
    np.testing.assert_allclose(out[:, :22], np.broadcast_to([0.8, 0.4, 0.2], (h, 22, 3)), atol=2 / 255)
    np.testing.assert_allclose(out[:, 22:], np.broadcast_to([0.8, 0.4, 0.2], (h, 8, 3)), atol=0.05)
    assert np.array_equal(fill_holes(color[:, :20], alpha[:, :20]), (color[:, :20] * 255 + 0.5).astype(np.uint8))


def test_render_video_fills_what_a_moved_camera_sees_past_the_border():
    from landscape4d.render import render_video

    scene, tex, mask, intr = _plane_scene()
    h, w = mask.shape
    K = torch.tensor(intr.matrix(), dtype=torch.float32)
    pose = np.eye(4)
    pose[0, 3] = -0.4  # a tenth of the plane's width to the left: its left border comes into view
    black = render_video(scene, K, [pose], w, h, fill=False)[0]
    filled = render_video(scene, K, [pose], w, h)[0]
    empty = black.max(axis=-1) < 5
    assert empty[:, :3].all() and not empty[:, w // 2:].any()
    assert (filled[empty].max(axis=-1) > 20).all()  # texture colours (its darkest is ~0.2), not black
    # fully covered pixels keep their colour (the partly covered ones at the border get the fill behind them)
    assert np.abs(filled[:, 8:].astype(int) - black[:, 8:]).max() <= 3
