"""The gsplat adapter's argument passing and output mapping, on CPU, against a stand-in `gsplat` module.

The stand-in has gsplat's `rasterization` signature and output layout ([C, H, W, 4] for "RGB+D", meta["means2d"]
[C, N, 2] on the autograd path, per-axis meta["radii"] [C, N, 2] as in gsplat >= 1.5) and draws with the torch
backend, so the adapter's result must equal the torch backend's.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch

from landscape4d.gaussians import rasterize
from landscape4d.gaussians.projection import gaussian_colors, project_gaussians
from landscape4d.gaussians.raster_gsplat import gsplat_available, rasterize_gsplat
from landscape4d.gaussians.raster_torch import RasterSettings, _RasterizeTiles, plan_tiles

W, H = 40, 30
CALLS: list[dict] = []


def fake_rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane=0.01,
                       far_plane=1e10, radius_clip=0.0, eps2d=0.3, sh_degree=None, packed=True, tile_size=16,
                       backgrounds=None, render_mode="RGB", sparse_grad=False, absgrad=False,
                       rasterize_mode="classic", **kw):
    CALLS.append(dict(sh_degree=sh_degree, packed=packed, render_mode=render_mode, eps2d=eps2d, absgrad=absgrad,
                      rasterize_mode=rasterize_mode, near_plane=near_plane, backgrounds=backgrounds,
                      viewmats=tuple(viewmats.shape), Ks=tuple(Ks.shape)))
    assert render_mode == "RGB+D" and not packed
    vm, K = viewmats[0], Ks[0]
    proj = project_gaussians(means, quats, scales, vm, K, width, height, opacities)
    means2d = proj.means2d.unsqueeze(0)  # [C, N, 2]
    rgb = gaussian_colors(colors, means, vm, sh_degree)
    plan = plan_tiles(means2d[0], proj.conics, proj.extents, proj.reach, proj.depths, proj.valid, width, height, 16)
    bg = torch.zeros(3, dtype=means.dtype)
    color, alpha, depth = _RasterizeTiles.apply(means2d[0], proj.conics, opacities, rgb, proj.depths, bg, plan,
                                                RasterSettings(), width, height)
    radii = torch.stack([proj.radii, proj.radii - 1], -1).clamp_min(0).unsqueeze(0)  # per-axis
    render = torch.cat([color, depth], -1).unsqueeze(0)
    return render, alpha.unsqueeze(0), {"means2d": means2d, "radii": radii}


@pytest.fixture
def fake_gsplat(monkeypatch):
    mod = types.ModuleType("gsplat")
    mod.rasterization = fake_rasterization
    monkeypatch.setitem(sys.modules, "gsplat", mod)
    CALLS.clear()
    return mod


def scene(n=60, sh_bases=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = 0.9 * W
    z = 2 + 3 * torch.rand(n, generator=g)
    u, v = torch.rand(n, generator=g) * W, torch.rand(n, generator=g) * H
    means = torch.stack([(u - W / 2) / f * z, (v - H / 2) / f * z, z], -1)
    params = [
        means, torch.randn(n, 4, generator=g), torch.exp(torch.randn(n, 3, generator=g) * 0.4) * 0.06,
        0.05 + 0.9 * torch.rand(n, generator=g),
        0.3 * torch.randn(n, sh_bases, 3, generator=g) if sh_bases else torch.rand(n, 3, generator=g),
    ]
    K = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    return [p.requires_grad_() for p in params], torch.eye(4), K


@pytest.mark.parametrize("sh_bases", [0, 4])
def test_adapter_maps_outputs_and_gradients(fake_gsplat, sh_bases):
    assert gsplat_available()
    params, vm, K = scene(sh_bases=sh_bases)
    bg = torch.tensor([0.3, 0.2, 0.1])
    out_g = rasterize_gsplat(*params, vm, K, W, H, background=bg)
    call = CALLS[-1]
    assert call["sh_degree"] == (1 if sh_bases else None)
    assert call["eps2d"] == 0.3 and call["rasterize_mode"] == "classic" and call["absgrad"] is False
    assert call["viewmats"] == (1, 4, 4) and call["Ks"] == (1, 3, 3) and call["backgrounds"] is None
    (out_g.color.sum() + out_g.depth.sum()).backward()
    grads_g = [p.grad.clone() for p in params]
    m2_g = out_g.means2d.grad.clone()
    for p in params:
        p.grad = None
    out_t = rasterize(*params, vm, K, W, H, background=bg, backend="torch")
    (out_t.color.sum() + out_t.depth.sum()).backward()
    assert torch.allclose(out_g.color, out_t.color, atol=1e-6)
    assert torch.allclose(out_g.alpha, out_t.alpha, atol=1e-6)
    assert torch.allclose(out_g.depth, out_t.depth, atol=1e-5)
    assert out_g.means2d.shape == (60, 2) and rel(m2_g, out_t.means2d.grad) < 1e-4
    assert torch.equal(out_g.radii, out_t.radii) and out_g.radii.dtype == torch.int32
    for a, p in zip(grads_g, params):
        assert rel(a, p.grad) < 1e-4


def rel(a, b):
    """Max error relative to the largest magnitude (the two runs use different tile sizes: float32 rounding)."""
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
