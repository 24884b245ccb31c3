"""Rasterizer: tiled torch backend vs the dense reference, analytic cases, culling, SH, backend selection."""

from __future__ import annotations

import math

import pytest
import torch

import landscape4d.gaussians.raster_reference as raster_reference
from landscape4d.gaussians import RasterOutput, rasterize, rasterize_reference, resolve_backend
from landscape4d.gaussians.projection import project_gaussians
from landscape4d.gaussians.raster_torch import RasterSettings, rasterize_torch
from landscape4d.gaussians.sh import eval_sh, sh_basis

W, H = 41, 27


def make_scene(n, dtype=torch.float64, seed=0, size=1.0, opacity=(0.02, 1.0), width=W, height=H, sh_bases=0):
    """Random Gaussians in front of a camera at the origin (some partly off-screen)."""
    g = torch.Generator().manual_seed(seed)
    f = 0.8 * width
    z = 2 + 4 * torch.rand(n, generator=g)
    u = torch.rand(n, generator=g) * width * 1.2 - 0.1 * width
    v = torch.rand(n, generator=g) * height * 1.2 - 0.1 * height
    means = torch.stack([(u - width / 2) / f * z, (v - height / 2) / f * z, z], -1)
    quats = torch.randn(n, 4, generator=g)
    scales = torch.exp(0.5 * torch.randn(n, 3, generator=g)) * 0.03 * size
    lo, hi = opacity
    opac = lo + (hi - lo) * torch.rand(n, generator=g)
    if sh_bases:
        colors = 0.3 * torch.randn(n, sh_bases, 3, generator=g)
    else:
        colors = torch.rand(n, 3, generator=g)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    params = [t.to(dtype).requires_grad_() for t in (means, quats, scales, opac, colors)]
    return params, torch.eye(4, dtype=dtype), K.to(dtype)


def render_and_grads(fn, params, viewmat, K, background=None, width=W, height=H, **kw):
    """Image outputs and gradients of a fixed random linear function of colour, alpha and depth."""
    for p in params:
        p.grad = None
    out = fn(*params, viewmat, K, width, height, background=background, **kw)
    g = torch.Generator().manual_seed(123)
    dt = out.color.dtype
    loss = (
        (out.color * torch.randn(height, width, 3, generator=g, dtype=dt)).sum()
        + (out.alpha * torch.randn(height, width, 1, generator=g, dtype=dt)).sum()
        + (out.depth * torch.randn(height, width, 1, generator=g, dtype=dt)).sum()
    )
    loss.backward()
    return [out.color.detach(), out.alpha.detach(), out.depth.detach(), out.means2d.grad.clone()] + [
        p.grad.clone() for p in params
    ]


def assert_close_all(ref, got, rtol):
    names = ["color", "alpha", "depth", "means2d.grad", "means.grad", "quats.grad", "scales.grad", "opacity.grad",
             "colors.grad"]
    for name, a, b in zip(names, ref, got):
        scale = a.abs().max().clamp_min(1e-12)
        err = ((a - b).abs().max() / scale).item()
        assert err < rtol, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("tile_size,segment", [(8, 32), (16, 3), (4, 5)])
@pytest.mark.parametrize("seed,size,n", [(0, 1.0, 80), (1, 3.0, 200)])
def test_torch_backend_matches_reference_float64(tile_size, segment, seed, size, n):
    params, vm, K = make_scene(n, torch.float64, seed=seed, size=size)
    bg = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    ref = render_and_grads(rasterize_reference, params, vm, K, bg)
    st = RasterSettings(tile_size=tile_size, segment=segment, chunk_elems=2048)
    got = render_and_grads(rasterize_torch, params, vm, K, bg, settings=st)
    assert_close_all(ref, got, 1e-9)
    assert ref[1].max() > 0.5  # the scene draws something


def test_torch_backend_matches_reference_float32():
    params, vm, K = make_scene(150, torch.float32, seed=3, size=2.0)
    ref = render_and_grads(rasterize_reference, params, vm, K)
    got = render_and_grads(rasterize, params, vm, K)
    assert_close_all(ref, got, 1e-4)


def test_recomputed_backward_equals_saved():
    params, vm, K = make_scene(200, torch.float64, seed=4, size=3.0)
    a = render_and_grads(rasterize_torch, params, vm, K, settings=RasterSettings(save_bytes=1 << 30))
    b = render_and_grads(rasterize_torch, params, vm, K, settings=RasterSettings(save_bytes=0, chunk_elems=1024))
    assert_close_all(a, b, 1e-12)


def test_termination_is_exercised_and_matches(monkeypatch):
    """Dense opaque scene: pixels stop compositing at T < 1e-4; the backend must stop exactly where 3DGS does."""
    params, vm, K = make_scene(300, torch.float64, seed=9, size=15.0, opacity=(0.7, 1.0))
    ref = render_and_grads(rasterize_reference, params, vm, K)
    got = render_and_grads(rasterize_torch, params, vm, K, settings=RasterSettings(segment=4, chunk_elems=4096))
    assert_close_all(ref, got, 1e-9)
    monkeypatch.setattr(raster_reference, "T_MIN", 0.0)
    no_stop = render_and_grads(rasterize_reference, params, vm, K)
    assert (no_stop[0] - ref[0]).abs().max() > 1e-4  # the early stop changes the image here


def test_sh_colours_match_reference_and_manual_evaluation():
    params, vm, K = make_scene(60, torch.float64, seed=5, size=2.0, sh_bases=9)
    ref = render_and_grads(rasterize_reference, params, vm, K)
    got = render_and_grads(rasterize_torch, params, vm, K)
    assert_close_all(ref, got, 1e-9)
    means, quats, scales, opac, sh = [p.detach() for p in params]
    rgb = eval_sh(sh, means, 2)  # camera at the origin: direction = mean
    a = rasterize(means, quats, scales, opac, sh, vm, K, W, H).color
    b = rasterize(means, quats, scales, opac, rgb, vm, K, W, H).color
    assert torch.allclose(a, b, atol=1e-12)
    # a lower degree uses only the first (d+1)^2 coefficients
    c = rasterize(means, quats, scales, opac, sh, vm, K, W, H, sh_degree=0).color
    d = rasterize(means, quats, scales, opac, eval_sh(sh[:, :1], means, 0), vm, K, W, H).color
    assert torch.allclose(c, d, atol=1e-12)


def test_sh_basis_is_orthonormal():
    # Fibonacci sphere quadrature of integral Y_i Y_j dOmega = delta_ij
    n = 20000
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (1 + 5**0.5) * i
    r = (1 - z * z).sqrt()
    dirs = torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], -1)
    Y = sh_basis(dirs, 3)
    gram = Y.T @ Y * (4 * math.pi / n)
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=2e-3)


def test_single_isotropic_gaussian_peak_is_projected_mean():
    f, cx, cy = 50.0, 20.0, 15.0
    K = torch.tensor([[f, 0, cx], [0, f, cy], [0, 0, 1.0]], dtype=torch.float64)
    row, col, z, sigma_world = 9, 27, 4.0, 0.1
    u, v = col + 0.5, row + 0.5  # a pixel centre
    mean = torch.tensor([[(u - cx) / f * z, (v - cy) / f * z, z]], dtype=torch.float64)
    quat = torch.tensor([[0.3, -0.5, 0.2, 0.7]], dtype=torch.float64)  # rotation is irrelevant when isotropic
    scale = torch.full((1, 3), sigma_world, dtype=torch.float64)
    opac = torch.tensor([0.8], dtype=torch.float64)
    color = torch.tensor([[0.25, 0.5, 1.0]], dtype=torch.float64)
    out = rasterize(mean, quat, scale, opac, color, torch.eye(4, dtype=torch.float64), K, 40, 30)
    img = out.color[..., 2]
    peak = torch.nonzero(img == img.max())
    assert peak.tolist() == [[row, col]]
    assert out.color[row, col].tolist() == pytest.approx((0.8 * color[0]).tolist(), abs=1e-12)
    assert out.alpha[row, col, 0].item() == pytest.approx(0.8, abs=1e-12)
    assert out.depth[row, col, 0].item() == pytest.approx(0.8 * z, abs=1e-12)
    assert out.expected_depth()[row, col, 0].item() == pytest.approx(z, abs=1e-12)
    # EWA: 2D covariance = sigma^2 J J^T + 0.3 I with J the projection Jacobian at the mean
    x, y = mean[0, 0].item(), mean[0, 1].item()
    J = torch.tensor([[f / z, 0, -f * x / z**2], [0, f / z, -f * y / z**2]], dtype=torch.float64)
    cov = sigma_world**2 * J @ J.T + 0.3 * torch.eye(2, dtype=torch.float64)
    conic = torch.linalg.inv(cov)
    assert out.alpha[row, col + 1, 0].item() == pytest.approx(0.8 * math.exp(-0.5 * conic[0, 0].item()), rel=1e-9)
    assert out.alpha[row + 1, col - 1, 0].item() == pytest.approx(
        0.8 * math.exp(-0.5 * (conic[0, 0] + conic[1, 1] - 2 * conic[0, 1]).item()), rel=1e-9)
    assert out.radii.tolist() == [math.ceil(3 * math.sqrt(torch.linalg.eigvalsh(cov).max().item()))]
    assert out.means2d.detach()[0].tolist() == pytest.approx([u, v], abs=1e-9)


def test_subpixel_mean_is_the_alpha_centroid():
    f = 60.0
    K = torch.tensor([[f, 0, 32.0], [0, f, 32.0], [0, 0, 1.0]], dtype=torch.float64)
    u, v, z = 30.37, 33.81, 3.0
    mean = torch.tensor([[(u - 32) / f * z, (v - 32) / f * z, z]], dtype=torch.float64)
    one = lambda *s: torch.ones(*s, dtype=torch.float64)  # noqa: E731
    out = rasterize(mean, torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64), one(1, 3) * 0.08,
                    one(1) * 0.3, one(1, 3), torch.eye(4, dtype=torch.float64), K, 64, 64)
    a = out.alpha[..., 0]
    jj, ii = torch.meshgrid(torch.arange(64, dtype=torch.float64) + 0.5, torch.arange(64, dtype=torch.float64) + 0.5,
                            indexing="xy")
    cu, cv = (a * jj).sum() / a.sum(), (a * ii).sum() / a.sum()
    assert (cu.item(), cv.item()) == pytest.approx((u, v), abs=2e-2)  # truncation at alpha < 1/255 is symmetric-ish


def test_culling_behind_camera_and_off_screen_gives_zero_radii_and_finite_grads():
    params, vm, K = make_scene(30, torch.float64, seed=6)
    with torch.no_grad():
        params[0][0] = torch.tensor([0.0, 0.0, -2.0])  # behind
        params[0][1] = torch.tensor([0.0, 0.0, 0.005])  # inside the near plane
        params[0][2] = torch.tensor([50.0, 0.0, 3.0])  # far off-screen
    for fn in (rasterize_reference, rasterize_torch):
        res = render_and_grads(fn, params, vm, K)
        out = fn(*params, vm, K, W, H)
        assert out.radii[:3].tolist() == [0, 0, 0]
        assert (out.radii[3:] >= 0).all()
        assert all(torch.isfinite(t).all() for t in res)
        assert res[4][:3].abs().max() == 0  # no gradient to culled Gaussians


def test_means2d_grad_is_the_screen_space_gradient():
    params, vm, K = make_scene(50, torch.float64, seed=7, size=2.0)
    with torch.no_grad():  # Gaussian 0: isotropic, on the optical axis, where moving it sideways changes only
        params[0][0] = torch.tensor([0.0, 0.0, 3.0])  # its 2D position to first order
        params[2][0] = 0.05
    out = rasterize(*params, vm, K, W, H)
    out.color.sum().backward()
    g = out.means2d.grad
    assert g.shape == (50, 2) and out.radii[0] > 0
    eps = 1e-5
    fd = []
    for axis in (0, 1):
        with torch.no_grad():
            m = params[0].detach().clone()
            m[0, axis] += eps * 3.0 / K[axis, axis]  # +eps pixels
            plus = rasterize(m, *params[1:], vm, K, W, H).color.sum()
            m[0, axis] -= 2 * eps * 3.0 / K[axis, axis]
            minus = rasterize(m, *params[1:], vm, K, W, H).color.sum()
        fd.append(((plus - minus) / (2 * eps)).item())
    assert fd == pytest.approx(g[0].tolist(), rel=1e-4, abs=1e-7)
    assert abs(fd[0]) > 1e-3


def test_no_grad_rendering_and_background():
    params, vm, K = make_scene(40, torch.float32, seed=8)
    bg = torch.tensor([1.0, 0.0, 0.5])
    with torch.no_grad():
        out = rasterize(*params, vm, K, W, H, background=bg)
    assert isinstance(out, RasterOutput)
    assert out.color.shape == (H, W, 3) and out.alpha.shape == (H, W, 1) and out.depth.shape == (H, W, 1)
    assert out.radii.dtype == torch.int32 and out.means2d.shape == (40, 2)
    empty = out.alpha[..., 0] == 0
    assert empty.any()
    assert torch.allclose(out.color[empty], bg.expand(int(empty.sum()), 3))
    ref = rasterize_reference(*[p.detach() for p in params], vm, K, W, H, background=bg)
    assert (out.color - ref.color).abs().max() < 1e-5


def test_projection_of_isotropic_gaussian():
    K = torch.tensor([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]], dtype=torch.float64)
    means = torch.tensor([[0.0, 0.0, 5.0]], dtype=torch.float64)
    p = project_gaussians(means, torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64),
                          torch.full((1, 3), 0.2, dtype=torch.float64), torch.eye(4, dtype=torch.float64), K, 100, 80)
    var = (100 * 0.2 / 5) ** 2 + 0.3
    assert p.cov2d[0].tolist() == pytest.approx([var, 0.0, var])
    assert p.conics[0].tolist() == pytest.approx([1 / var, 0.0, 1 / var])
    assert p.means2d[0].tolist() == pytest.approx([50.0, 40.0])


def test_backend_selection():
    assert resolve_backend("auto", "cpu") in ("numba", "torch")  # numba when importable (test_..._raster_numba)
    assert resolve_backend("torch", "cpu") == "torch"
    with pytest.raises(ValueError):
        resolve_backend("opengl", "cpu")
    params, vm, K = make_scene(5, torch.float32)
    with pytest.raises(ValueError):
        rasterize(*params, vm, K, W, H, backend="gsplat")  # CPU tensors


def test_image_does_not_depend_on_tile_size():
    params, vm, K = make_scene(400, torch.float32, seed=10, size=2.0, width=70, height=50)
    outs = [rasterize_torch(*params, vm, K, 70, 50, settings=RasterSettings(tile_size=t, segment=s)).color.detach()
            for t, s in ((4, 8), (8, 32), (16, 64))]
    assert (outs[0] - outs[1]).abs().max() < 1e-5
    assert (outs[1] - outs[2]).abs().max() < 1e-5


def test_backward_twice_with_retained_graph():
    params, vm, K = make_scene(100, torch.float64, seed=11, size=2.0)
    out = rasterize(*params, vm, K, W, H)
    out.color.sum().backward(retain_graph=True)
    first = params[0].grad.clone()
    out.color.sum().backward()
    assert torch.allclose(params[0].grad, 2 * first, atol=1e-12)
