"""Rasterizer backends (torch, numba) against the float64 dense reference under general cameras: rotated and
translated world-to-camera poses, an off-centre principal point with unequal focal lengths, and Gaussians
beyond the field of view where the projection Jacobian is clamped."""

from __future__ import annotations

import math

import pytest
import torch
from test_gaussians_raster import assert_close_all, render_and_grads

from landscape4d.gaussians import rasterize, rasterize_reference
from landscape4d.gaussians.projection import quat_to_rotmat

W, H = 45, 31
BACKENDS = ["torch", "numba"]


def rotated_scene(n, seed, width=W, height=H, u_range=(-0.1, 1.1), size=1.0, dtype=torch.float64):
    """Random Gaussians in front of a camera with a random rotation and translation (viewmat = [R t]) and
    intrinsics with fx != fy and an off-centre principal point. u_range: where the means project, as a
    fraction of the width."""
    g = torch.Generator().manual_seed(seed)
    fx, fy, cx, cy = 0.9 * width, 0.75 * width, 0.43 * width, 0.58 * height
    K = torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]], dtype=dtype)
    z = 2 + 4 * torch.rand(n, generator=g, dtype=dtype)
    lo, hi = u_range
    u = (lo + (hi - lo) * torch.rand(n, generator=g, dtype=dtype)) * width
    v = (-0.1 + 1.2 * torch.rand(n, generator=g, dtype=dtype)) * height
    cam = torch.stack([(u - cx) / fx * z, (v - cy) / fy * z, z], -1)
    R = quat_to_rotmat(torch.randn(1, 4, generator=g, dtype=dtype))[0]
    t = torch.randn(3, generator=g, dtype=dtype)
    viewmat = torch.eye(4, dtype=dtype)
    viewmat[:3, :3], viewmat[:3, 3] = R, t
    means = (cam - t) @ R  # world = R^T (cam - t)
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.exp(0.5 * torch.randn(n, 3, generator=g, dtype=dtype)) * 0.04 * size
    opac = 0.05 + 0.95 * torch.rand(n, generator=g, dtype=dtype)
    colors = torch.rand(n, 3, generator=g, dtype=dtype)
    params = [p.requires_grad_() for p in (means, quats, scales, opac, colors)]
    return params, viewmat, K


def test_rotated_scene_is_what_the_camera_sees():
    """The scene builder's world points project where they were drawn: the rotation is not a no-op."""
    params, vm, K = rotated_scene(50, seed=0)
    assert (vm[:3, :3] - torch.eye(3, dtype=vm.dtype)).abs().max() > 0.3 and vm[:3, 3].abs().max() > 0.1
    out = rasterize_reference(*params, vm, K, W, H)
    assert out.alpha.max() > 0.5 and (out.radii > 0).sum() > 30


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed,n,size", [(0, 120, 1.0), (1, 60, 4.0), (2, 200, 2.0)])
def test_rotated_translated_camera_matches_reference(backend, seed, n, size):
    params, vm, K = rotated_scene(n, seed, size=size)
    bg = torch.tensor([0.3, 0.1, 0.6], dtype=torch.float64)
    ref = render_and_grads(rasterize_reference, params, vm, K, bg, width=W, height=H)
    got = render_and_grads(rasterize, params, vm, K, bg, width=W, height=H, backend=backend)
    assert_close_all(ref, got, 1e-9)
    assert ref[1].max() > 0.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_gaussians_beyond_the_field_of_view_clamp_the_jacobian(backend):
    """Means projecting up to 1.6 widths right of the image (x/z past the 3DGS clamp at 1.3x the field of view)
    with large extents that still reach into it: values and gradients through the clamped Jacobian."""
    params, vm, K = rotated_scene(80, seed=3, u_range=(0.9, 1.6), size=12.0)
    fx, cx = K[0, 0].item(), K[0, 2].item()
    lim = (W - cx) / fx + 0.3 * 0.5 * W / fx
    cam = params[0].detach() @ vm[:3, :3].T + vm[:3, 3]
    clamped = cam[:, 0] / cam[:, 2] > lim
    ref = render_and_grads(rasterize_reference, params, vm, K, width=W, height=H)
    assert bool((clamped & (ref[-1].abs().sum(-1) > 0)).any())  # a clamped Gaussian draws and gets a gradient
    got = render_and_grads(rasterize, params, vm, K, width=W, height=H, backend=backend)
    assert_close_all(ref, got, 1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_camera_looking_back_sees_the_same_image(backend):
    """Rotating the whole world and the camera together changes nothing in the image."""
    params, vm, K = rotated_scene(100, seed=4)
    a = rasterize(*[p.detach() for p in params], vm, K, W, H, backend=backend)
    turn = torch.eye(4, dtype=vm.dtype)
    c, s = math.cos(2.5), math.sin(2.5)
    turn[:3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=vm.dtype)
    turn[:3, 3] = torch.tensor([1.0, -2.0, 0.5], dtype=vm.dtype)
    means = params[0].detach() @ turn[:3, :3].T + turn[:3, 3]
    rq = torch.tensor([math.cos(1.25), 0, math.sin(1.25), 0], dtype=vm.dtype)  # the same turn as a quaternion
    w1, v1 = rq[0], rq[1:]
    q = params[1].detach()
    w2, v2 = q[:, :1], q[:, 1:]
    quats = torch.cat([w1 * w2 - (v2 * v1).sum(-1, keepdim=True),
                       w1 * v2 + w2 * v1 + torch.linalg.cross(v1.expand_as(v2), v2)], -1)
    b = rasterize(means, quats, *[p.detach() for p in params[2:]], vm @ torch.linalg.inv(turn), K, W, H,
                  backend=backend)
    assert (a.color - b.color).abs().max() < 1e-9
    assert torch.equal(a.radii, b.radii)
