"""Losses, Adam-consistent densification helpers, and a small end-to-end fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from landscape4d.camera import look_at
from landscape4d.config import GaussiansConfig
from landscape4d.gaussians import (
    DensifyStats,
    GaussianModel,
    TrainView,
    append_params,
    densify_and_prune,
    fit_gaussians,
    photometric_loss,
    prune_params,
    psnr,
    rasterize,
    render_model,
    reset_opacities,
    ssim,
    ssim_map,
    viewmat_from_c2w,
)
from landscape4d.gaussians.loss import ssim_map_reference
from landscape4d.gaussians.model import opacity_from_logits

# ---------------------------------------------------------------------------------------------------------------
# losses


def test_ssim_separable_matches_dense_window():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(23, 31, 3, generator=g, dtype=torch.float64)
    y = (x + 0.3 * torch.randn(23, 31, 3, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert torch.allclose(ssim_map(x, y), ssim_map_reference(x, y), atol=1e-12)
    assert ssim(x, x).item() == pytest.approx(1.0)
    assert ssim(x, y).item() < 0.8


def test_weighted_losses_ignore_masked_pixels():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(20, 20, 3, generator=g), torch.rand(20, 20, 3, generator=g)
    w = torch.zeros(20, 20)
    w[:, :10] = 1.0
    y2 = y.clone()
    y2[:, 10:] = 0.0  # change only masked-out pixels
    l1 = photometric_loss(x, y, w, ssim_weight=0.0)
    assert l1.item() == pytest.approx((x - y)[:, :10].abs().mean().item(), rel=1e-5)
    assert l1.item() == pytest.approx(photometric_loss(x, y2, w, ssim_weight=0.0).item(), rel=1e-6)
    assert photometric_loss(x, x, None, 0.2).item() == pytest.approx(0.0, abs=1e-6)


def test_psnr_value():
    a = torch.zeros(8, 8, 3)
    assert psnr(a + 0.1, a) == pytest.approx(20.0, abs=1e-4)
    w = torch.zeros(8, 8)
    w[0, 0] = 1.0
    b = a.clone()
    b[0, 0] = 0.01
    assert psnr(b, a, w) == pytest.approx(40.0, abs=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# Adam bookkeeping


def _params(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "means": torch.randn(n, 3, generator=g).requires_grad_(),
        "log_scales": (torch.randn(n, 3, generator=g) * 0.3 - 3).requires_grad_(),
        "quats": torch.randn(n, 4, generator=g).requires_grad_(),
        "opacity_logits": torch.randn(n, generator=g).requires_grad_(),
        "extra": torch.randn(n, 2, 5, generator=g).requires_grad_(),  # e.g. a 4D stage's per-Gaussian params
    }


def _adam(params):
    return torch.optim.Adam([{"params": [p], "lr": 0.01, "name": k} for k, p in params.items()], eps=1e-15)


def _step(opt, params, seed):
    g = torch.Generator().manual_seed(seed)
    for p in params.values():
        p.grad = torch.randn(p.shape, generator=g)
    opt.step()


def test_prune_and_append_keep_adam_consistent():
    a = _params(10)
    b = {k: v.detach().clone().requires_grad_() for k, v in a.items()}
    opt_a, opt_b = _adam(a), _adam(b)
    for s in range(3):
        _step(opt_a, a, s)
        _step(opt_b, b, s)
    keep = torch.tensor([1, 0, 1, 1, 0, 1, 1, 1, 0, 1], dtype=torch.bool)
    b = prune_params(opt_b, b, keep)
    extra = {k: torch.full((2,) + tuple(v.shape[1:]), 7.0) for k, v in b.items()}
    b = append_params(opt_b, b, extra)
    for k, p in b.items():
        st = opt_b.state[p]
        group = next(g for g in opt_b.param_groups if g["name"] == k)
        assert p.shape[0] == 9 and group["params"][0] is p
        assert torch.equal(st["exp_avg"][:7], opt_a.state[a[k]]["exp_avg"][keep])
        assert torch.all(st["exp_avg"][7:] == 0) and torch.all(st["exp_avg_sq"][7:] == 0)
        assert torch.all(p[7:] == 7.0)
    # the next step on kept rows is what the unpruned optimizer does on them
    g = torch.Generator().manual_seed(99)
    grads = {k: torch.randn(v.shape, generator=g) for k, v in a.items()}
    for k in a:
        a[k].grad = grads[k]
        b[k].grad = torch.cat([grads[k][keep], torch.zeros_like(b[k][7:])])
    opt_a.step()
    opt_b.step()
    for k in a:
        assert torch.allclose(b[k][:7], a[k][keep], atol=1e-7)
        assert torch.all(b[k][7:] == 7.0)  # zero moments and zero gradient: no motion


def test_opacity_reset_caps_and_zeroes_moments():
    p = _params(6)
    opt = _adam(p)
    _step(opt, p, 0)
    p = reset_opacities(opt, p, ceiling=0.01)
    op = opacity_from_logits(p["opacity_logits"])
    assert torch.all(op <= 0.01 + 1e-6)
    assert torch.all(opt.state[p["opacity_logits"]]["exp_avg"] == 0)
    assert torch.any(opt.state[p["means"]]["exp_avg"] != 0)


def test_densify_clone_split_prune():
    n = 6
    p = _params(n)
    with torch.no_grad():
        p["log_scales"][:] = math.log(0.01)
        p["log_scales"][2:4] = math.log(0.5)  # big: split when the gradient is high
        p["opacity_logits"][:] = 2.0
        p["opacity_logits"][5] = -10.0  # transparent: pruned
    opt = _adam(p)
    stats = DensifyStats.zeros(n)
    grads = torch.tensor([[1e-3, 0], [1e-6, 0], [1e-3, 0], [1e-6, 0], [1e-3, 0], [1e-3, 0]])
    stats.update(grads, torch.tensor([3, 3, 3, 3, 3, 3]), width=2, height=2)  # NDC scale: x * 1
    assert stats.mean_grad().tolist() == pytest.approx([1e-3, 1e-6, 1e-3, 1e-6, 1e-3, 1e-3])
    before = {k: v.detach().clone() for k, v in p.items()}
    gen = torch.Generator().manual_seed(0)
    res = densify_and_prune(opt, p, stats, grad_threshold=2e-4, extent=1.0, percent_dense=0.1,
                            prune_opacity=0.005, generator=gen)
    # clones: 0, 4 (5 is transparent: cloned, then both copies pruned); split: 2 -> 2 children, parent removed
    assert (res.cloned, res.split) == (3, 1)
    q = res.params
    assert q["means"].shape[0] == 6 + 3 + 2 - 1 - 2  # originals + clones + children - parent - 2 transparent
    kept_orig = [0, 1, 3, 4]
    assert torch.equal(q["means"][:4], before["means"][kept_orig])
    assert torch.equal(q["means"][4:6], before["means"][[0, 4]])  # clones are exact copies
    assert torch.equal(q["extra"][4:6], before["extra"][[0, 4]])
    children = q["log_scales"][6:8]
    assert torch.allclose(children, before["log_scales"][[2, 2]] - math.log(1.6))
    assert torch.equal(q["extra"][6:8], before["extra"][[2, 2]])
    assert torch.all((q["means"][6:8] - before["means"][2]).norm(dim=-1) < 0.5 * 5)
    for k, v in q.items():  # optimizer sees the new tensors, with matching state sizes (state may be empty)
        group = [g for g in opt.param_groups if g["name"] == k][0]
        assert group["params"][0] is v


def test_densify_respects_max_gaussians():
    n = 50
    p = _params(n, seed=3)
    with torch.no_grad():
        p["opacity_logits"][:] = 3.0
        p["log_scales"][:] = math.log(0.001)
    opt = _adam(p)
    stats = DensifyStats.zeros(n)
    g = torch.linspace(1e-3, 2e-3, n)
    stats.update(torch.stack([g, torch.zeros(n)], -1), torch.ones(n, dtype=torch.int32), 2, 2)
    res = densify_and_prune(opt, p, stats, grad_threshold=1e-4, extent=1.0, max_gaussians=60)
    assert res.params["means"].shape[0] == 60 and res.cloned == 10
    # the largest-gradient Gaussians were the ones cloned
    assert torch.equal(res.params["means"][50:], p["means"].detach()[40:])


# ---------------------------------------------------------------------------------------------------------------
# end to end


def _synthetic_scene(size=48, n_views=4):
    """A textured plane with a box in front, as a ground-truth Gaussian model, and its rendered views."""
    rng = np.random.default_rng(0)
    u, v = np.meshgrid(np.linspace(-1.2, 1.2, 40), np.linspace(-1.2, 1.2, 40))
    plane = np.stack([u.ravel(), v.ravel(), np.full(u.size, 3.0)], 1)
    pcol = np.stack([0.5 + 0.4 * np.sin(3 * u.ravel()), 0.5 + 0.4 * np.cos(4 * v.ravel()),
                     0.5 + 0.4 * np.sign(np.sin(5 * u.ravel() * v.ravel()))], 1)
    f = np.linspace(-0.3, 0.3, 10)
    a, b = np.meshgrid(f, f)
    faces = [np.stack([a.ravel(), b.ravel(), np.full(a.size, -0.3)], 1),
             np.stack([np.full(a.size, 0.3), a.ravel(), b.ravel()], 1),
             np.stack([a.ravel(), np.full(a.size, -0.3), b.ravel()], 1)]
    box = np.concatenate(faces) + np.array([0.2, 0.1, 2.0])
    bcol = np.repeat(np.array([[0.9, 0.2, 0.1], [0.1, 0.8, 0.2], [0.2, 0.3, 0.9]]), 100, axis=0)
    pts = np.concatenate([plane, box]).astype(np.float32)
    cols = np.concatenate([pcol, bcol]).clip(0, 1).astype(np.float32)
    gt = GaussianModel.from_points(pts, cols, opacity=0.95)
    fpx = 0.9 * size
    K = np.array([[fpx, 0, size / 2], [0, fpx, size / 2], [0, 0, 1.0]])
    poses = [np.eye(4)] + [look_at(np.array([0.15 * math.cos(t), 0.1 * math.sin(t), 0.0]), np.array([0, 0, 3.0]))
                           for t in np.linspace(0, 2 * math.pi, n_views, endpoint=False)[: n_views - 1]]
    views = []
    with torch.no_grad():
        for c2w in poses:
            img = render_model(gt, K, c2w, size, size).color.clamp(0, 1).numpy()
            views.append(TrainView(img, K, c2w, None))
    # the fit starts like the pipeline's: a sparser, jittered point cloud with roughly right colours
    init_pts = pts[::3] + rng.normal(scale=0.02, size=pts[::3].shape).astype(np.float32)
    init_cols = (cols[::3] + rng.normal(scale=0.15, size=pts[::3].shape)).clip(0, 1)
    init = GaussianModel.from_points(init_pts, init_cols)
    return init, views


def test_fit_gaussians_improves_psnr():
    torch.manual_seed(0)
    init, views = _synthetic_scene()
    K, c2w = views[0].K, views[0].c2w
    with torch.no_grad():
        init_psnr = psnr(render_model(init, K, c2w, 48, 48).color.clamp(0, 1), torch.as_tensor(views[0].image))
    cfg = GaussiansConfig(backend="torch", iters=200, densify_from=50, densify_until=150, densify_every=25,
                          densify_grad_threshold=1e-4, lr_means=1e-3, lr_means_final=1e-5, input_view_every=0)
    calls = []
    model, metrics = fit_gaussians(init, views, cfg, progress=False,
                                   callback=lambda it, m, info: calls.append((it, info["num_gaussians"])))
    assert len(calls) == 200 and calls[-1][0] == 200
    assert metrics["num_gaussians"] == model.num and len(metrics["psnr"]) == len(views)
    assert metrics["psnr_input_view"] > init_psnr + 8, (init_psnr, metrics["psnr_input_view"])
    assert min(metrics["psnr"]) > 20
    assert any(d["cloned"] + d["split"] > 0 for d in metrics["densify"])
    assert model.means.requires_grad is False


def test_fit_respects_view_weights():
    init, views = _synthetic_scene(size=24, n_views=2)
    # corrupt the right half of every view, but give it zero weight: the fit must not chase it
    bad = []
    for v in views:
        img = v.image.copy()
        img[:, 12:] = 1.0
        w = np.ones(img.shape[:2], np.float32)
        w[:, 12:] = 0.0
        bad.append(TrainView(img, v.K, v.c2w, w))
    cfg = GaussiansConfig(backend="torch", iters=60, densify_from=1000, lr_means=1e-3)
    model, metrics = fit_gaussians(init, bad, cfg, progress=False)
    with torch.no_grad():
        out = render_model(model, views[0].K, views[0].c2w, 24, 24).color
    right_clean = psnr(out[:, 12:].clamp(0, 1), torch.as_tensor(views[0].image[:, 12:]))
    right_bad = psnr(out[:, 12:].clamp(0, 1), torch.ones(24, 12, 3))
    assert right_clean > right_bad


def test_render_model_overrides():
    init, views = _synthetic_scene(size=24, n_views=1)
    K, c2w = views[0].K, views[0].c2w
    moved = init.means + torch.tensor([0.05, 0.0, 0.0])
    a = render_model(init, K, c2w, 24, 24, means=moved, opacities=torch.full((init.num,), 0.5)).color
    b = rasterize(moved, init.quats, init.scales, torch.full((init.num,), 0.5), init.sh,
                  viewmat_from_c2w(c2w), torch.as_tensor(K, dtype=torch.float32), 24, 24).color
    assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------------------------
# the parts of fit_gaussians: schedule, densification strategy, step


def test_schedule_lr_degree_and_view_order():
    from landscape4d.gaussians.train import Schedule

    s = Schedule(iters=100, lr0=1e-2, lr1=1e-4, max_degree=2, sh_up_every=30, input_view_every=4, num_views=3,
                 rng=np.random.default_rng(5))
    assert s.means_lr(0) == pytest.approx(1e-2) and s.means_lr(100) == pytest.approx(1e-4)
    assert s.means_lr(50) == pytest.approx(1e-3)  # exponential: the geometric mean half way
    assert [s.sh_degree(i) for i in (1, 30, 31, 61, 99)] == [0, 0, 1, 2, 2]
    order = [s.next_view(i) for i in range(1, 13)]
    assert order[3] == order[7] == order[11] == 0  # the photo every 4th iteration
    rest = [v for i, v in enumerate(order, 1) if i % 4]
    assert sorted(rest[:3]) == sorted(rest[3:6]) == [0, 1, 2]  # every view once per permutation
    assert Schedule(iters=5, lr0=1.0, lr1=1.0, max_degree=0).sh_degree(1000) == 0


def _strategy_params(n: int):
    p = _params(n, seed=7)
    with torch.no_grad():
        p["log_scales"][:] = math.log(0.01)
        p["opacity_logits"][:] = 3.0
    return p


def test_strategy_densifies_and_resets_at_its_steps():
    from landscape4d.gaussians.strategy import DensifyStrategy
    from landscape4d.gaussians.types import RasterOutput

    strat = DensifyStrategy(extent=1.0, densify_from=2, densify_until=7, densify_every=2, grad_threshold=1e-4,
                            percent_dense=0.1, opacity_reset_every=4)
    assert [s for s in range(1, 10) if strat.densifies_at(s)] == [2, 4, 6]
    assert [s for s in range(1, 10) if strat.resets_at(s)] == [4]
    p = _strategy_params(5)
    opt = _adam(p)
    state = strat.initialize_state(5)
    means2d = torch.zeros(5, 2, requires_grad=True)
    means2d.grad = torch.tensor([[1e-3, 0], [0, 0], [1e-3, 0], [0, 0], [0, 0]])
    out = RasterOutput(color=torch.zeros(2, 2, 3), alpha=torch.zeros(2, 2, 1), depth=torch.zeros(2, 2, 1),
                       means2d=means2d, radii=torch.ones(5))
    strat.step_post_backward(state, 1, out, 2, 2)
    assert state.stats.count.tolist() == [1, 1, 1, 1, 1]
    p = strat.step_post_update(opt, p, state, 1)  # not a densification step: nothing happens
    assert p["means"].shape[0] == 5 and state.log == []
    p = strat.step_post_update(opt, p, state, 2)
    assert p["means"].shape[0] == 7 and state.log == [{"iter": 2, "cloned": 2, "split": 0, "pruned": 0, "num": 7}]
    assert state.stats.count.shape == (7,) and state.stats.count.sum() == 0  # statistics start again
    p = strat.step_post_update(opt, p, state, 4)  # densify (no gradients: nothing), then the opacity reset
    assert state.resets == 1 and torch.all(opacity_from_logits(p["opacity_logits"]) <= 0.01 + 1e-6)
    strat.step_post_backward(state, 7, out, 2, 2)  # past densify_until: no statistics
    assert state.stats.count.sum() == 0


# Recorded from fit_gaussians before it was split into Schedule / DensifyStrategy / train_step (commit 176ee77),
# torch CPU, one thread: the refactored fit must give the same result (it matched bit for bit when it was made).
# recorded with opacity = 1.5 sigmoid(logit) (gaussians.model.OPACITY_MAX); the record before that activation had
# final loss 0.40687, 1189 Gaussians
OLD_FIT = {
    "final_loss": 0.40736517310142517, "psnr": [8.257526069944879, 8.382280646444281, 8.309406660597908],
    "num": 1184, "means_sum": 3365.326184539241, "sh_sum": 130.56014231061044, "opac_sum": -5445.389466285706,
    "densify": [{"iter": 8, "cloned": 3, "split": 544, "pruned": 0, "num": 1181},
                {"iter": 16, "cloned": 1, "split": 18, "pruned": 0, "num": 1200},
                {"iter": 24, "cloned": 0, "split": 0, "pruned": 3, "num": 1197},
                {"iter": 32, "cloned": 1, "split": 2, "pruned": 16, "num": 1184}],
    "views": [1, 1, 0, 1, 0, 0, 2, 0, 2, 0, 1, 0, 2, 0, 0, 1, 1, 2, 2, 0, 1, 2, 0, 1, 0, 2, 2, 1, 2, 0, 2, 1, 0, 0,
              0, 1, 0, 0, 1, 0],
}


def test_refactored_fit_gives_the_recorded_result():
    """Clone, split, prune (by opacity and, after the opacity reset, by screen radius), the Gaussian cap, SH degree 1
    switched on, two views per step, the photo every 5th step and a weighted view, with a fixed seed."""
    torch.manual_seed(0)
    init, views = _synthetic_scene(size=24, n_views=3)
    w = np.ones((24, 24), np.float32)
    w[:, :4] = 0.25
    views[1].weight = w
    colors = np.random.default_rng(1).random((init.num, 3)).astype(np.float32)
    init = GaussianModel.from_points(init.means.numpy(), colors, sh_degree=1)
    cfg = GaussiansConfig(backend="torch", iters=40, sh_degree=1, sh_up_every=12, densify_from=8, densify_until=33,
                          densify_every=8, densify_grad_threshold=1e-4, percent_dense=0.02, prune_opacity=0.008,
                          opacity_reset_every=16, batch_views=2, input_view_every=5, lr_means=1e-3,
                          lr_means_final=1e-5, max_gaussians=1200, prune_screen_radius=8.0)
    seen = []
    model, m = fit_gaussians(init, views, cfg, progress=False, seed=3,
                             callback=lambda it, mod, info: seen.append(info["view"]))
    # bit for bit on the machine it was recorded on; elsewhere torch's CPU kernels may round differently, which can
    # tip a Gaussian sitting on the prune threshold (seen: 10 pruned instead of 11 at iteration 32 on another CPU)
    assert seen == OLD_FIT["views"] and abs(model.num - OLD_FIT["num"]) <= 2
    for got, want in zip(m["densify"], OLD_FIT["densify"], strict=True):
        assert got["iter"] == want["iter"] and got["cloned"] == want["cloned"] and got["split"] == want["split"]
        assert abs(got["pruned"] - want["pruned"]) <= 2 and abs(got["num"] - want["num"]) <= 2
    assert m["final_loss"] == pytest.approx(OLD_FIT["final_loss"], rel=1e-3)
    assert m["psnr"] == pytest.approx(OLD_FIT["psnr"], rel=1e-3)
    for key, t in (("means_sum", model.means), ("sh_sum", model.sh), ("opac_sum", model.opacity_logits)):
        assert float(t.double().sum()) == pytest.approx(OLD_FIT[key], rel=1e-2), key
