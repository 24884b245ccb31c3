"""GPU cross-checks: gsplat backend vs the torch backend on CUDA (skipped without CUDA or gsplat)."""

from __future__ import annotations

import pytest
import torch

from landscape4d.gaussians import rasterize
from landscape4d.gaussians.raster_gsplat import gsplat_available

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

W, H = 96, 64


def scene(n, seed=0, opacity=(0.05, 0.34), sh_bases=0, device="cuda"):
    g = torch.Generator().manual_seed(seed)
    f = 0.9 * W
    z = 2 + 4 * torch.rand(n, generator=g)
    u = torch.rand(n, generator=g) * W * 1.1 - 0.05 * W
    v = torch.rand(n, generator=g) * H * 1.1 - 0.05 * H
    means = torch.stack([(u - W / 2) / f * z, (v - H / 2) / f * z, z], -1)
    quats = torch.randn(n, 4, generator=g)
    scales = torch.exp(0.5 * torch.randn(n, 3, generator=g)) * 2.0 * z[:, None] / f
    lo, hi = opacity
    opac = lo + (hi - lo) * torch.rand(n, generator=g)
    colors = 0.3 * torch.randn(n, sh_bases, 3, generator=g) if sh_bases else torch.rand(n, 3, generator=g)
    K = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    vm = torch.eye(4)
    vm[:3, 3] = torch.tensor([0.05, -0.02, 0.1])
    params = [t.to(device).requires_grad_() for t in (means, quats, scales, opac, colors)]
    return params, vm.to(device), K.to(device)


def outputs_and_grads(backend, params, vm, K):
    for p in params:
        p.grad = None
    out = rasterize(*params, vm, K, W, H, background=torch.tensor([0.1, 0.2, 0.3], device=vm.device),
                    backend=backend)
    g = torch.Generator(device=vm.device).manual_seed(1)
    loss = (out.color * torch.randn(H, W, 3, generator=g, device=vm.device)).sum() + (
        out.depth * torch.randn(H, W, 1, generator=g, device=vm.device)).sum() * 0.1
    loss.backward()
    return out, [out.color.detach(), out.alpha.detach(), out.depth.detach()], [out.means2d.grad] + [
        p.grad.clone() for p in params]


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def test_torch_backend_same_on_cuda_and_cpu():
    params, vm, K = scene(2000, seed=2, opacity=(0.05, 1.0))
    _, img_gpu, grads_gpu = outputs_and_grads("torch", params, vm, K)
    cpu = [p.detach().cpu().requires_grad_() for p in params]
    _, img_cpu, grads_cpu = outputs_and_grads("torch", cpu, vm.cpu(), K.cpu())
    for a, b in zip(img_gpu, img_cpu):
        assert (a.cpu() - b).abs().max() < 1e-4
    for a, b in zip(grads_gpu, grads_cpu):
        assert rel(a.cpu(), b) < 1e-3


@pytest.mark.skipif(not gsplat_available(), reason="needs gsplat")
@pytest.mark.parametrize("sh_bases", [0, 4])
def test_gsplat_matches_torch_backend(sh_bases):
    # opacities below 0.35: alpha at 3 sigma is under 1/255, so every gsplat version's bounding-box cut-off and
    # the torch backend's alpha cut-off select the same pixels
    params, vm, K = scene(3000, seed=sh_bases, sh_bases=sh_bases)
    out_g, img_g, grads_g = outputs_and_grads("gsplat", params, vm, K)
    out_t, img_t, grads_t = outputs_and_grads("torch", params, vm, K)
    for name, a, b in zip(("color", "alpha", "depth"), img_g, img_t):
        scale = 1.0 if name != "depth" else float(b.abs().max())
        assert (a - b).abs().max().item() / scale < 1e-3, name
    names = ["means2d", "means", "quats", "scales", "opacities", "colors"]
    for name, a, b in zip(names, grads_g, grads_t):
        assert rel(a, b) < 2e-2, name
        cos = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()
        assert cos > 0.999, name
    vis_g, vis_t = out_g.radii > 0, out_t.radii > 0
    assert (vis_g == vis_t).float().mean().item() > 0.99


@pytest.mark.skipif(not gsplat_available(), reason="needs gsplat")
def test_gsplat_full_opacity_range_close():
    params, vm, K = scene(3000, seed=5, opacity=(0.05, 1.0))
    _, img_g, _ = outputs_and_grads("gsplat", params, vm, K)
    _, img_t, _ = outputs_and_grads("torch", params, vm, K)
    assert (img_g[0] - img_t[0]).abs().mean().item() < 1e-3


@pytest.mark.skipif(not gsplat_available(), reason="needs gsplat")
def test_auto_backend_on_cuda_is_gsplat():
    from landscape4d.gaussians import resolve_backend

    assert resolve_backend("auto", "cuda") == "gsplat"
