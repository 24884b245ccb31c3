"""Fitting 3D Gaussians to posed images (3DGS optimisation with adaptive density control)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..camera import w2c_from_c2w
from ..config import GaussiansConfig
from .densify import DensifyStats, densify_and_prune, reset_opacities
from .loss import photometric_loss, psnr
from .model import GaussianModel
from .rasterize import rasterize, resolve_backend
from .types import RasterOutput


@dataclass
class TrainView:
    image: np.ndarray | torch.Tensor  # (H, W, 3) float32 in [0, 1]
    K: np.ndarray | torch.Tensor  # (3, 3)
    c2w: np.ndarray | torch.Tensor  # (4, 4) camera-to-world (OpenCV axes)
    weight: np.ndarray | torch.Tensor | None = None  # (H, W) valid-pixel weights in [0, 1]


def _as_tensor(x, device, dtype=torch.float32) -> torch.Tensor:
    if torch.is_tensor(x):
        return x.detach().to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)


def viewmat_from_c2w(c2w: np.ndarray | torch.Tensor) -> torch.Tensor:
    """World-to-camera (4, 4) float32 tensor of a rigid camera-to-world pose."""
    c = c2w.detach().cpu().double().numpy() if torch.is_tensor(c2w) else np.asarray(c2w, dtype=np.float64)
    return torch.from_numpy(w2c_from_c2w(c)).float()


def render_model(
    model: GaussianModel,
    K: np.ndarray | torch.Tensor,  # (3, 3)
    c2w: np.ndarray | torch.Tensor,  # (4, 4)
    width: int,
    height: int,
    backend: str = "torch",
    means: torch.Tensor | None = None,  # (N, 3) overrides (e.g. deformed by the 4D stage)
    quats: torch.Tensor | None = None,  # (N, 4)
    scales: torch.Tensor | None = None,  # (N, 3) linear
    opacities: torch.Tensor | None = None,  # (N,) in [0, 1]
    colors: torch.Tensor | None = None,  # (N, 3) RGB or (N, K, 3) SH
    background: torch.Tensor | None = None,  # (3,)
    sh_degree: int | None = None,
) -> RasterOutput:
    """Render a model from a camera; any of the per-Gaussian quantities can be overridden for this call."""
    dev = model.device
    return rasterize(
        model.means if means is None else means,
        model.quats if quats is None else quats,
        model.scales if scales is None else scales,
        model.opacities if opacities is None else opacities,
        model.sh if colors is None else colors,
        viewmat_from_c2w(c2w).to(dev),
        _as_tensor(K, dev),
        int(width),
        int(height),
        background=background,
        backend=backend,
        sh_degree=sh_degree,
    )


def scene_extent(means: torch.Tensor, cam_centres: torch.Tensor) -> float:
    """Scale of the scene for the LR and the split/prune size thresholds: the median distance of the Gaussians
    from the mean camera centre. (3DGS uses the spread of the cameras, which is near zero for our small-baseline
    views around one photo.)"""
    c = cam_centres.mean(dim=0)
    return max(float((means.detach() - c).norm(dim=-1).median()), 1e-6)


def _lr_means(step: int, total: int, lr0: float, lr1: float) -> float:
    t = min(max(step / max(total, 1), 0.0), 1.0)
    return math.exp((1 - t) * math.log(lr0) + t * math.log(lr1))


def _model_from(params: dict[str, torch.Tensor]) -> GaussianModel:
    sh = params["sh_dc"] if "sh_rest" not in params else torch.cat([params["sh_dc"], params["sh_rest"]], dim=1)
    return GaussianModel(params["means"], params["log_scales"], params["quats"], params["opacity_logits"], sh)


def _train_params(model: GaussianModel, device) -> dict[str, torch.Tensor]:
    p = {
        "means": model.means,
        "log_scales": model.log_scales,
        "quats": model.quats,
        "opacity_logits": model.opacity_logits,
        "sh_dc": model.sh[:, :1],
    }
    if model.sh.shape[1] > 1:
        p["sh_rest"] = model.sh[:, 1:]
    return {k: v.detach().to(device=device, dtype=torch.float32).clone().requires_grad_(True) for k, v in p.items()}


def fit_gaussians(
    model: GaussianModel,
    views: list[TrainView],
    cfg: GaussiansConfig,
    device: torch.device | str = "cpu",
    progress: bool = True,
    callback: Callable[[int, GaussianModel, dict], None] | None = None,
    seed: int = 0,
) -> tuple[GaussianModel, dict]:
    """Optimise `model` on posed views with the 3DGS recipe. Returns the trained model and metrics:
    psnr (per view, after training, weighted by the view masks), psnr_input_view (view 0), num_gaussians,
    seconds, iters, final_loss, densify (clone/split/prune counts per step)."""
    if not views:
        raise ValueError("fit_gaussians needs at least one view")
    device = torch.device(device)
    backend = resolve_backend(cfg.backend, device)
    t0 = time.perf_counter()
    gen = torch.Generator(device=device).manual_seed(seed)
    rng = np.random.default_rng(seed)

    imgs = [_as_tensor(v.image, device) for v in views]
    for i, im in enumerate(imgs):
        if im.dim() != 3 or im.shape[-1] != 3:
            raise ValueError(f"view {i}: image must be (H, W, 3), got {tuple(im.shape)}")
    weights = [None if v.weight is None else _as_tensor(v.weight, device) for v in views]
    Ks = [_as_tensor(v.K, device) for v in views]
    vms = [viewmat_from_c2w(v.c2w).to(device) for v in views]
    centres = torch.stack([_as_tensor(v.c2w, device)[:3, 3] for v in views])

    params = _train_params(model, device)
    extent = scene_extent(params["means"], centres)
    max_degree = model.sh_degree
    lr0, lr1 = cfg.lr_means * extent, cfg.lr_means_final * extent
    groups = [
        {"params": [params["means"]], "lr": lr0, "name": "means"},
        {"params": [params["log_scales"]], "lr": cfg.lr_scales, "name": "log_scales"},
        {"params": [params["quats"]], "lr": cfg.lr_quats, "name": "quats"},
        {"params": [params["opacity_logits"]], "lr": cfg.lr_opacities, "name": "opacity_logits"},
        {"params": [params["sh_dc"]], "lr": cfg.lr_colors, "name": "sh_dc"},
    ]
    if "sh_rest" in params:
        groups.append({"params": [params["sh_rest"]], "lr": cfg.lr_colors / 20.0, "name": "sh_rest"})
    opt = torch.optim.Adam(groups, eps=1e-15)
    stats = DensifyStats.zeros(params["means"].shape[0], device)
    densify_log: list[dict] = []
    resets = 0

    order: list[int] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.iters, desc="gaussians", unit="it", leave=False)
    loss_val = float("nan")
    for it in range(1, cfg.iters + 1):
        for g in opt.param_groups:
            if g["name"] == "means":
                g["lr"] = _lr_means(it, cfg.iters, lr0, lr1)
        degree = min(max_degree, (it - 1) // max(cfg.sh_up_every, 1)) if max_degree > 0 else 0
        loss_val = 0.0
        for _ in range(max(1, cfg.batch_views)):
            if cfg.input_view_every > 0 and it % cfg.input_view_every == 0:
                vi = 0
            else:
                if not order:
                    order = list(rng.permutation(len(views)))
                vi = int(order.pop())
            h, w = imgs[vi].shape[:2]
            m = _model_from(params)
            out = rasterize(m.means, m.quats, m.scales, m.opacities, m.sh, vms[vi], Ks[vi], w, h,
                            backend=backend, sh_degree=degree)
            loss = photometric_loss(out.color, imgs[vi], weights[vi], cfg.ssim_weight) / max(1, cfg.batch_views)
            loss.backward()
            loss_val += float(loss.detach())
            if it < cfg.densify_until and out.means2d.grad is not None:
                stats.update(out.means2d.grad, out.radii, w, h)
        opt.step()
        opt.zero_grad(set_to_none=True)

        if it < cfg.densify_until:
            if it >= cfg.densify_from and it % cfg.densify_every == 0:
                after_reset = resets > 0
                res = densify_and_prune(
                    opt, params, stats,
                    grad_threshold=cfg.densify_grad_threshold,
                    extent=extent,
                    percent_dense=cfg.percent_dense,
                    prune_opacity=cfg.prune_opacity,
                    max_screen_radius=cfg.prune_screen_radius if after_reset else None,
                    max_world_scale=cfg.prune_world_scale if after_reset else None,
                    max_gaussians=cfg.max_gaussians,
                    generator=gen,
                )
                params = res.params
                stats = DensifyStats.zeros(params["means"].shape[0], device)
                densify_log.append({"iter": it, "cloned": res.cloned, "split": res.split, "pruned": res.pruned,
                                    "num": int(params["means"].shape[0])})
            if cfg.opacity_reset_every > 0 and it % cfg.opacity_reset_every == 0:
                params = reset_opacities(opt, params)
                resets += 1
        if bar is not None:
            bar.update(1)
            if it % 20 == 0:
                bar.set_postfix(loss=f"{loss_val:.4f}", n=int(params["means"].shape[0]))
        if callback is not None:
            callback(it, _model_from(params), {"loss": loss_val, "num_gaussians": int(params["means"].shape[0]),
                                               "view": vi})
    if bar is not None:
        bar.close()

    final = _model_from({k: v.detach() for k, v in params.items()})
    with torch.no_grad():
        psnrs = []
        for i in range(len(views)):
            h, w = imgs[i].shape[:2]
            out = rasterize(final.means, final.quats, final.scales, final.opacities, final.sh, vms[i], Ks[i], w, h,
                            backend=backend)
            psnrs.append(psnr(out.color.clamp(0, 1), imgs[i], weights[i]))
    metrics = {
        "psnr": psnrs,
        "psnr_input_view": psnrs[0],
        "psnr_mean": float(np.mean(psnrs)),
        "num_gaussians": final.num,
        "seconds": time.perf_counter() - t0,
        "iters": cfg.iters,
        "final_loss": loss_val,
        "scene_extent": extent,
        "backend": backend,
        "densify": densify_log,
    }
    return final, metrics
