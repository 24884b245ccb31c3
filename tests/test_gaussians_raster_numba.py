"""numba CPU backend: values and gradients against the float64 dense reference (culling, empty scenes,
background, SH, early termination, tile lists, threads), its fast exp, its kernel cache folder, and the training
code paths running on it. Rotated cameras: test_gaussians_raster_cameras.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_gaussians_raster import H, W, assert_close_all, make_scene, render_and_grads

import landscape4d.gaussians.raster_reference as raster_reference
from landscape4d.gaussians import rasterize, rasterize_reference, resolve_backend
from landscape4d.gaussians.projection import project_gaussians
from landscape4d.gaussians.raster_numba import NumbaSettings, rasterize_numba
from landscape4d.gaussians.raster_torch import plan_tiles


def numba_fn(**settings):
    def fn(*args, **kw):
        return rasterize_numba(*args, settings=NumbaSettings(**settings), **kw)

    return fn


@pytest.mark.parametrize("seed,size,n", [(0, 1.0, 80), (1, 3.0, 200), (2, 8.0, 60)])
def test_matches_reference_float64(seed, size, n):
    params, vm, K = make_scene(n, torch.float64, seed=seed, size=size)
    bg = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    ref = render_and_grads(rasterize_reference, params, vm, K, bg)
    got = render_and_grads(rasterize_numba, params, vm, K, bg)
    assert_close_all(ref, got, 1e-9)
    assert ref[1].max() > 0.5


def test_flat_topped_opacities_above_1_match_reference():
    """Opacities up to OPACITY_MAX (1.5): alpha = min(0.99, o G) is clamped over each Gaussian's core, where the
    gradient to o and to the shape is zero; numba and torch agree with the float64 reference there too."""
    from landscape4d.gaussians.model import OPACITY_MAX
    from landscape4d.gaussians.raster_torch import rasterize_torch

    params, vm, K = make_scene(120, torch.float64, seed=21, size=3.0, opacity=(0.5, OPACITY_MAX))
    ref = render_and_grads(rasterize_reference, params, vm, K)
    for fn in (rasterize_numba, rasterize_torch):
        assert_close_all(ref, render_and_grads(fn, params, vm, K), 1e-9)
    with torch.no_grad():
        out = rasterize_reference(*params, vm, K, W, H)
    assert float(out.alpha.max()) > 0.99  # clamped cores were drawn


def outputs_and_grads(fn, params, vm, K):
    """Like render_and_grads, with loss weights drawn in float64 whatever the dtype (torch.randn draws other
    numbers in float32)."""
    for p in params:
        p.grad = None
    out = fn(*params, vm, K, W, H)
    g = torch.Generator().manual_seed(123)
    wc, wa, wd = (torch.randn(H, W, c, generator=g, dtype=torch.float64).to(out.color.dtype) for c in (3, 1, 1))
    ((out.color * wc).sum() + (out.alpha * wa).sum() + (out.depth * wd).sum()).backward()
    return [t.detach().double() for t in (out.color, out.alpha, out.depth, out.means2d.grad)] + [
        p.grad.double() for p in params]


def test_float32_matches_float64_reference():
    """float32 kernels (fast exp, fused multiply-adds) against the float64 reference on the same scene."""
    params64, vm, K = make_scene(150, torch.float64, seed=3, size=2.0)
    params32 = [p.detach().float().requires_grad_() for p in params64]
    ref = outputs_and_grads(rasterize_reference, params64, vm, K)
    out = rasterize_numba(*params32, vm.float(), K.float(), W, H)
    assert out.color.dtype == out.means2d.dtype == torch.float32
    got = outputs_and_grads(rasterize_numba, params32, vm.float(), K.float())
    assert_close_all(ref, got, 2e-5)


def test_early_termination_many_opaque_layers(monkeypatch):
    """Dense opaque layers: pixels stop at T < 1e-4 exactly where the reference (3DGS) stops."""
    params, vm, K = make_scene(400, torch.float64, seed=9, size=15.0, opacity=(0.7, 1.0))
    ref = render_and_grads(rasterize_reference, params, vm, K)
    got = render_and_grads(rasterize_numba, params, vm, K)
    assert_close_all(ref, got, 1e-9)
    monkeypatch.setattr(raster_reference, "T_MIN", 0.0)
    no_stop = render_and_grads(rasterize_reference, params, vm, K)
    assert (no_stop[0] - ref[0]).abs().max() > 1e-4  # the early stop changes the image here


def test_culled_gaussians_get_zero_radii_and_zero_gradients():
    params, vm, K = make_scene(30, torch.float64, seed=6)
    with torch.no_grad():
        params[0][0] = torch.tensor([0.0, 0.0, -2.0])  # behind the camera
        params[0][1] = torch.tensor([0.0, 0.0, 0.005])  # inside the near plane
        params[0][2] = torch.tensor([50.0, 0.0, 3.0])  # far off-screen
        params[0][3] = torch.tensor([0.0, 0.0, 0.0])  # at the camera centre
    ref = render_and_grads(rasterize_reference, params, vm, K)
    got = render_and_grads(rasterize_numba, params, vm, K)
    assert_close_all(ref, got, 1e-9)
    out = rasterize_numba(*params, vm, K, W, H)
    assert out.radii[:4].tolist() == [0, 0, 0, 0] and (out.radii[4:] > 0).any()
    assert all(torch.isfinite(t).all() for t in got)
    assert got[4][:4].abs().max() == 0 and got[5][:4].abs().max() == 0


def test_empty_and_fully_culled_scenes_show_the_background():
    bg = torch.tensor([0.1, 0.7, 0.3], dtype=torch.float64, requires_grad=True)
    params, vm, K = make_scene(0, torch.float64)
    out = rasterize_numba(*params, vm, K, W, H, background=bg)
    assert out.means2d.shape == (0, 2) and out.radii.shape == (0,)
    assert torch.equal(out.color, bg.detach().expand(H, W, 3)) and out.alpha.abs().max() == 0
    out.color.sum().backward()
    assert torch.allclose(bg.grad, torch.full((3,), float(H * W), dtype=torch.float64))
    params, vm, K = make_scene(20, torch.float64, seed=1)
    with torch.no_grad():
        params[0][:, 2] = -1.0  # everything behind the camera
    out = rasterize_numba(*params, vm, K, W, H, background=bg.detach())
    assert (out.radii == 0).all() and torch.equal(out.color, bg.detach().expand(H, W, 3))
    out.color.sum().backward()
    assert params[0].grad.abs().max() == 0 and params[4].grad.abs().max() == 0


def test_background_colour_and_its_gradient():
    params, vm, K = make_scene(60, torch.float64, seed=12, size=2.0, opacity=(0.05, 0.6))
    grads = []
    for fn in (rasterize_reference, rasterize_numba):
        bg = torch.tensor([0.9, 0.2, 0.4], dtype=torch.float64, requires_grad=True)
        out = fn(*params, vm, K, W, H, background=bg)
        g = torch.Generator().manual_seed(5)
        (out.color * torch.randn(H, W, 3, generator=g, dtype=torch.float64)).sum().backward()
        grads.append((out.color.detach(), bg.grad.clone()))
    assert (grads[0][0] - grads[1][0]).abs().max() < 1e-12
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-12)
    assert grads[0][1].abs().min() > 1.0  # the background shows through


def test_sh_colours_match_reference():
    params, vm, K = make_scene(70, torch.float64, seed=5, size=2.0, sh_bases=16)
    vm = vm.clone()
    vm[:3, 3] = torch.tensor([0.3, -0.2, 0.4], dtype=torch.float64)  # view directions depend on the camera
    ref = render_and_grads(rasterize_reference, params, vm, K)
    got = render_and_grads(rasterize_numba, params, vm, K)
    assert_close_all(ref, got, 1e-9)
    low = [rasterize_reference(*params, vm, K, W, H, sh_degree=1).color,
           rasterize_numba(*params, vm, K, W, H, sh_degree=1).color]
    assert (low[0] - low[1]).abs().max() < 1e-12 and (low[0] - ref[0]).abs().max() > 1e-3


def test_tile_lists_equal_the_torch_backends():
    """The per-row ellipse runs list exactly the (tile, Gaussian) pairs of the torch backend's exact test."""
    from landscape4d.gaussians import raster_numba

    params, vm, K = make_scene(300, torch.float32, seed=10, size=4.0, width=70, height=50)
    seen = {}
    real = raster_numba.plan_tiles
    try:
        raster_numba.plan_tiles = lambda *a: seen.setdefault("tiles", real(*a))
        rasterize_numba(*[p.detach() for p in params], vm, K, 70, 50)
    finally:
        raster_numba.plan_tiles = real
    tiles = seen["tiles"]
    p = project_gaussians(*[t.detach() for t in params[:3]], vm, K, 70, 50, params[3].detach())
    plan = plan_tiles(p.means2d, p.conics, p.extents, p.reach, p.depths, p.valid, 70, 50, 16)
    assert tiles.num_intersections == plan.num_intersections > 300
    for t in range(plan.num_tiles):
        a = tiles.order[tiles.lists[tiles.tile_start[t]:tiles.tile_start[t + 1]]]
        b = plan.gauss_ids[plan.offsets[t]:plan.offsets[t] + plan.counts[t]].numpy()
        assert np.array_equal(a, b), t  # same Gaussians, same (depth) order


def test_threads_change_nothing_and_runs_repeat_exactly():
    params, vm, K = make_scene(300, torch.float64, seed=13, size=3.0, width=70, height=50)
    one = render_and_grads(numba_fn(threads=1), params, vm, K, width=70, height=50)
    two = render_and_grads(numba_fn(threads=2), params, vm, K, width=70, height=50)
    again = render_and_grads(numba_fn(threads=2), params, vm, K, width=70, height=50)
    assert all(torch.equal(a, b) for a, b in zip(one[:3], two[:3]))  # tiles are independent
    assert_close_all(one, two, 1e-12)  # gradient sums in another order
    assert all(torch.equal(a, b) for a, b in zip(two, again))


def test_outputs_without_autograd():
    params, vm, K = make_scene(40, torch.float32, seed=8)
    with torch.no_grad():
        out = rasterize_numba(*params, vm, K, W, H)
    assert out.color.shape == (H, W, 3) and out.alpha.shape == (H, W, 1) and out.depth.shape == (H, W, 1)
    assert out.radii.dtype == torch.int32 and not out.color.requires_grad
    ref = rasterize_reference(*[p.detach().double() for p in params], vm.double(), K.double(), W, H)
    assert (out.expected_depth().double() - ref.expected_depth()).abs().max() < 1e-3


def test_bad_inputs_are_refused():
    params, vm, K = make_scene(5, torch.float32)
    with pytest.raises(ValueError, match="float32 or float64"):
        rasterize_numba(*[p.detach().half() for p in params], vm, K, W, H)


def test_auto_backend_on_cpu_is_numba():
    assert resolve_backend("auto", "cpu") == "numba"
    assert resolve_backend("numba", "cpu") == "numba"
    params, vm, K = make_scene(50, torch.float64, seed=2)
    a = rasterize(*params, vm, K, W, H, backend="auto").color
    b = rasterize_numba(*params, vm, K, W, H).color
    assert torch.equal(a, b)


def test_fast_exp_is_accurate_in_float32():
    """fexp / fexp2: the vectorising float32 exponentials (about 2 ulp); float64 uses libm."""
    from landscape4d.gaussians.raster_numba_jit import fexp, fexp2, kernel

    @kernel()
    def apply(x, out, out2):
        for i in range(x.shape[0]):
            out[i] = fexp(x[i])
            out2[i] = fexp2(x[i])

    for dtype, tol in ((np.float32, 5e-7), (np.float64, 1e-14)):
        x = np.linspace(-87.0, 0.0, 200_001).astype(dtype)
        out, out2 = np.empty_like(x), np.empty_like(x)
        apply(x, out, out2)
        x64 = x.astype(np.float64)
        assert np.max(np.abs(out - np.exp(x64)) / np.exp(x64)) < tol
        assert np.max(np.abs(out2 - np.exp2(x64)) / np.exp2(x64)) < tol


def test_kernel_cache_folder(monkeypatch, tmp_path):
    from landscape4d.gaussians.raster_numba_jit import cache_dir

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nc"))
    assert cache_dir().parent == tmp_path / "nc" and cache_dir().is_dir()
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir().parent == tmp_path / "xdg" / "landscape4d" / "numba"
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "a-file" / "nc"))  # cannot be created
    fallback = cache_dir()
    assert fallback.is_dir() and tmp_path not in fallback.parents


# ---------------------------------------------------------------------------------------------------------------
# training code paths


def test_fit_gaussians_on_numba_matches_torch_fit():
    """A short fit with densification: the 2D-mean gradients and radii feed the densification, PSNR improves as
    much as with the torch backend."""
    from test_gaussians_train import _synthetic_scene

    from landscape4d.config import GaussiansConfig
    from landscape4d.gaussians import fit_gaussians, psnr, render_model

    init, views = _synthetic_scene(size=24, n_views=2)
    with torch.no_grad():
        before = psnr(render_model(init, views[0].K, views[0].c2w, 24, 24).color.clamp(0, 1),
                      torch.as_tensor(views[0].image))
    results = {}
    for backend in ("numba", "torch"):
        torch.manual_seed(0)
        cfg = GaussiansConfig(backend=backend, iters=30, densify_from=10, densify_until=25, densify_every=10,
                              densify_grad_threshold=1e-4, lr_means=1e-3, lr_means_final=1e-5)
        model, metrics = fit_gaussians(init, views, cfg, progress=False)
        assert metrics["backend"] == backend
        assert any(d["cloned"] + d["split"] > 0 for d in metrics["densify"])
        results[backend] = metrics["psnr_input_view"]
    assert results["numba"] > before + 4
    assert abs(results["numba"] - results["torch"]) < 1.0, results


def test_dynamics_train_and_render_on_numba():
    from test_dynamics import _plane_scene

    from landscape4d.config import DynamicsConfig
    from landscape4d.dynamics.train import TrainClip, render_scene, train_dynamics

    scene, tex, mask, intr = _plane_scene(h=24, w=32, frames=6)
    K = torch.tensor(intr.matrix(), dtype=torch.float32)
    with torch.no_grad():
        a = render_scene(scene, 0.25, K, np.eye(4), 32, 24, backend="numba").color
        b = render_scene(scene, 0.25, K, np.eye(4), 32, 24, backend="torch").color
    assert (a - b).abs().max() < 1e-4
    frames = torch.from_numpy(np.stack([tex[:24, :32]] * 6)).float()
    clip = TrainClip(frames, K, np.eye(4), 0)
    trained, metrics = train_dynamics(scene, [clip], DynamicsConfig(iters=8), 3.0, backend="numba")
    assert np.isfinite(metrics["loss_last"]) and metrics["loss_last"] <= metrics["loss_first"] * 1.05
