"""Fitting 3D Gaussians to posed images (3DGS optimisation with adaptive density control).

fit_gaussians is three parts, each usable alone: the Schedule (position LR, SH degree, view order), the densification
strategy (strategy.DensifyStrategy: hooks after each backward pass and after each optimizer step) and train_step
(forward and backward of one iteration's views)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..camera import w2c_from_c2w
from ..config import GaussiansConfig
from .loss import photometric_loss, psnr
from .model import GaussianModel
from .rasterize import rasterize, resolve_backend
from .strategy import DensifyStrategy, StrategyState
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


def make_optimizer(params: dict[str, torch.Tensor], cfg: GaussiansConfig, extent: float) -> torch.optim.Adam:
    """Adam with one named group per parameter (densify.py edits them by name); positions' LR scaled by the extent."""
    lrs = {"means": cfg.lr_means * extent, "log_scales": cfg.lr_scales, "quats": cfg.lr_quats,
           "opacity_logits": cfg.lr_opacities, "sh_dc": cfg.lr_colors, "sh_rest": cfg.lr_colors / 20.0}
    return torch.optim.Adam([{"params": [p], "lr": lrs[k], "name": k} for k, p in params.items()], eps=1e-15)


# ---------------------------------------------------------------------------------------------------------------
# the schedule, the views, one step


@dataclass
class Schedule:
    """What changes with the iteration (1-based): the position LR (exponential decay from lr0 to lr1 over `iters`),
    the SH degree (one more every `sh_up_every`), and which view comes next (a fresh random permutation of the
    views whenever one is used up; view 0, the real photo, every `input_view_every` iterations when > 0)."""

    iters: int
    lr0: float
    lr1: float
    max_degree: int = 0
    sh_up_every: int = 1000
    input_view_every: int = 0
    num_views: int = 1
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    order: list[int] = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg: GaussiansConfig, extent: float, max_degree: int, num_views: int,
                    seed: int) -> "Schedule":
        return cls(cfg.iters, cfg.lr_means * extent, cfg.lr_means_final * extent, max_degree, cfg.sh_up_every,
                   cfg.input_view_every, num_views, np.random.default_rng(seed))

    def means_lr(self, it: int) -> float:
        t = min(max(it / max(self.iters, 1), 0.0), 1.0)
        return math.exp((1 - t) * math.log(self.lr0) + t * math.log(self.lr1))

    def sh_degree(self, it: int) -> int:
        return min(self.max_degree, (it - 1) // max(self.sh_up_every, 1)) if self.max_degree > 0 else 0

    def next_view(self, it: int) -> int:
        if self.input_view_every > 0 and it % self.input_view_every == 0:
            return 0
        if not self.order:
            self.order = list(self.rng.permutation(self.num_views))
        return int(self.order.pop())

    def apply(self, optimizer: torch.optim.Optimizer, it: int) -> None:
        for g in optimizer.param_groups:
            if g["name"] == "means":
                g["lr"] = self.means_lr(it)


@dataclass
class ViewData:
    """The training views as tensors on the training device."""

    images: list[torch.Tensor]  # (H, W, 3)
    weights: list[torch.Tensor | None]  # (H, W)
    Ks: list[torch.Tensor]  # (3, 3)
    viewmats: list[torch.Tensor]  # (4, 4) world-to-camera
    centres: torch.Tensor  # (V, 3) camera centres

    @classmethod
    def from_views(cls, views: list[TrainView], device: torch.device) -> "ViewData":
        imgs = [_as_tensor(v.image, device) for v in views]
        for i, im in enumerate(imgs):
            if im.dim() != 3 or im.shape[-1] != 3:
                raise ValueError(f"view {i}: image must be (H, W, 3), got {tuple(im.shape)}")
        return cls(imgs, [None if v.weight is None else _as_tensor(v.weight, device) for v in views],
                   [_as_tensor(v.K, device) for v in views], [viewmat_from_c2w(v.c2w).to(device) for v in views],
                   torch.stack([_as_tensor(v.c2w, device)[:3, 3] for v in views]))

    def render(self, model: GaussianModel, i: int, backend: str, sh_degree: int | None = None) -> RasterOutput:
        h, w = self.images[i].shape[:2]
        return rasterize(model.means, model.quats, model.scales, model.opacities, model.sh, self.viewmats[i],
                         self.Ks[i], w, h, backend=backend, sh_degree=sh_degree)


def train_step(params: dict[str, torch.Tensor], data: ViewData, schedule: Schedule, strategy: DensifyStrategy,
               state: StrategyState, it: int, cfg: GaussiansConfig, backend: str) -> tuple[float, int]:
    """Forward and backward of one iteration's `batch_views` views (gradients accumulated, the loss averaged), the
    strategy seeing each; the optimizer step is the caller's. Returns (loss, the last view's index)."""
    degree = schedule.sh_degree(it)
    batch = max(1, cfg.batch_views)
    loss_val, vi = 0.0, 0
    for _ in range(batch):
        vi = schedule.next_view(it)
        out = data.render(_model_from(params), vi, backend, degree)
        loss = photometric_loss(out.color, data.images[vi], data.weights[vi], cfg.ssim_weight) / batch
        loss.backward()
        loss_val += float(loss.detach())
        h, w = data.images[vi].shape[:2]
        strategy.step_post_backward(state, it, out, w, h)
    return loss_val, vi


# ---------------------------------------------------------------------------------------------------------------
# the fit


def fit_gaussians(
    model: GaussianModel,
    views: list[TrainView],
    cfg: GaussiansConfig,
    device: torch.device | str = "cpu",
    progress: bool = True,
    callback: Callable[[int, GaussianModel, dict], None] | None = None,
    seed: int = 0,
) -> tuple[GaussianModel, dict]:
    """Optimise `model` on posed views with the 3DGS recipe (Schedule, DensifyStrategy, train_step). Returns the
    trained model and metrics: psnr (per view, after training, weighted by the view masks), psnr_input_view
    (view 0), num_gaussians, seconds, iters, final_loss, densify (clone/split/prune counts per step)."""
    if not views:
        raise ValueError("fit_gaussians needs at least one view")
    device = torch.device(device)
    backend = resolve_backend(cfg.backend, device)
    t0 = time.perf_counter()
    data = ViewData.from_views(views, device)
    params = _train_params(model, device)
    extent = scene_extent(params["means"], data.centres)
    opt = make_optimizer(params, cfg, extent)
    schedule = Schedule.from_config(cfg, extent, model.sh_degree, len(views), seed)
    strategy = DensifyStrategy.from_config(cfg, extent, torch.Generator(device=device).manual_seed(seed))
    state = strategy.initialize_state(params["means"].shape[0], device)
    bar = _progress_bar(cfg.iters) if progress else None
    loss_val = float("nan")
    for it in range(1, cfg.iters + 1):
        schedule.apply(opt, it)
        loss_val, vi = train_step(params, data, schedule, strategy, state, it, cfg, backend)
        opt.step()
        opt.zero_grad(set_to_none=True)
        params = strategy.step_post_update(opt, params, state, it)
        n = int(params["means"].shape[0])
        if bar is not None:
            bar.update(1)
            if it % 20 == 0:
                bar.set_postfix(loss=f"{loss_val:.4f}", n=n)
        if callback is not None:
            callback(it, _model_from(params), {"loss": loss_val, "num_gaussians": n, "view": vi})
    if bar is not None:
        bar.close()
    final = _model_from({k: v.detach() for k, v in params.items()})
    with torch.no_grad():
        psnrs = [psnr(data.render(final, i, backend).color.clamp(0, 1), data.images[i], data.weights[i])
                 for i in range(len(views))]
    return final, {"psnr": psnrs, "psnr_input_view": psnrs[0], "psnr_mean": float(np.mean(psnrs)),
                   "num_gaussians": final.num, "seconds": time.perf_counter() - t0, "iters": cfg.iters,
                   "final_loss": loss_val, "scene_extent": extent, "backend": backend, "densify": state.log}


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc="gaussians", unit="it", leave=False)
