"""Stage 2 of the two-stage training: learn the deformation (and fine-tune colour and opacity) from the animated
videos of a few sampled views."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..camera import w2c_from_c2w
from ..config import DynamicsConfig
from ..gaussians.loss import photometric_loss, psnr
from ..gaussians.rasterize import rasterize
from .model import Scene4D, gaussians_at


@dataclass
class TrainClip:
    """One animated view: its looping video and camera."""

    frames: torch.Tensor  # (T, H, W, 3) float in [0, 1] or uint8 (kept small); frame T would equal frame 0
    K: torch.Tensor  # (3, 3)
    c2w: np.ndarray  # (4, 4)
    view_index: int

    def frame(self, f: int) -> torch.Tensor:
        """(H, W, 3) float in [0, 1]: frame f."""
        x = self.frames[f]
        return x.float() / 255.0 if x.dtype == torch.uint8 else x


def render_scene(scene: Scene4D, t: float, K: torch.Tensor, c2w: np.ndarray, width: int, height: int,
                 backend: str = "torch", background: torch.Tensor | None = None):
    """Render the 4D scene at loop time t in [0, 1) from a camera. Returns the RasterOutput."""
    g = gaussians_at(scene, t)
    viewmat = torch.as_tensor(w2c_from_c2w(np.asarray(c2w)), dtype=g.means.dtype, device=g.means.device)
    return rasterize(g.means, g.quats, g.scales, g.opacities, g.colors, viewmat, K.to(g.means), width, height,
                     background=background, backend=backend)


def train_dynamics(scene: Scene4D, clips: list[TrainClip], cfg: DynamicsConfig, scene_depth: float,
                   backend: str = "torch", progress: Callable | None = None, seed: int = 0,
                   iters: int | None = None, extra_lrs: dict[str, float] | None = None,
                   freeze_static: bool = False) -> tuple[Scene4D, dict]:
    """Optimise the Fourier residuals (and velocity, colour, opacity) so that the scene rendered at frame f of each
    clip's camera matches that frame. Returns the trained scene and metrics.

    iters overrides cfg.iters; extra_lrs adds or replaces learning rates by Scene4D field name (the single-stage
    ablation also learns "means", "quats" and "log_scales", which stage 1 would otherwise have fitted).
    freeze_static keeps the colour and opacity of the static Gaussians as stage 1 fitted them (the clips' static
    parts are the views' renders, softer than the photo stage 1 was fitted to): only moving ones learn them."""
    rng = random.Random(seed)
    scene = scene.detach()
    iters = cfg.iters if iters is None else int(iters)
    lr_velocity = cfg.lr_velocity if cfg.motion_init else cfg.lr_velocity_from_zero
    learn = {"pos_coef": cfg.lr_deform * scene_depth, "rot_coef": cfg.lr_deform_rot_scale,
             "scale_coef": cfg.lr_deform_rot_scale, "velocity": lr_velocity * scene_depth, "sh": cfg.lr_colors,
             "opacity_logits": cfg.lr_opacities}
    learn.update(extra_lrs or {})
    params = []
    for name, lr in learn.items():
        p = getattr(scene, name).requires_grad_(True)
        if freeze_static and name in ("sh", "opacity_logits"):
            keep = scene.moving.to(p.dtype).reshape(-1, *([1] * (p.dim() - 1)))
            p.register_hook(lambda g, keep=keep: g * keep)  # zero gradient: Adam never moves a static Gaussian
        params.append({"params": [p], "lr": lr, "name": name})
    opt = torch.optim.Adam(params, eps=1e-15)
    n_frames = scene.num_frames
    height, width = clips[0].frames.shape[1:3]
    losses = []
    t0 = time.perf_counter()
    steps = range(iters)
    if progress is not None:
        steps = progress(steps, total=iters, desc="dynamics")
    for _ in steps:
        clip = clips[rng.randrange(len(clips))]
        f = rng.randrange(clip.frames.shape[0])
        out = render_scene(scene, f / n_frames, clip.K, clip.c2w, width, height, backend)
        loss = photometric_loss(out.color, clip.frame(f), ssim_weight=cfg.ssim_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    scene = scene.detach()
    metrics = {"iters": iters, "seconds_train": round(time.perf_counter() - t0, 3),
               "loss_first": float(np.mean(losses[: max(1, len(losses) // 10)])) if losses else None,
               "loss_last": float(np.mean(losses[-max(1, len(losses) // 10):])) if losses else None}
    metrics["psnr_clips"] = evaluate_clips(scene, clips, backend)
    return scene, metrics


@torch.no_grad()
def evaluate_clips(scene: Scene4D, clips: list[TrainClip], backend: str = "torch", frames: int = 4) -> dict:
    """Mean PSNR of the scene against each clip on a few evenly spaced frames."""
    out = {}
    for clip in clips:
        T, H, W, _ = clip.frames.shape
        vals = []
        for f in np.linspace(0, T - 1, min(frames, T)).astype(int):
            img = render_scene(scene, f / scene.num_frames, clip.K, clip.c2w, W, H, backend).color
            vals.append(min(100.0, psnr(img.clamp(0, 1), clip.frame(f))))
        out[f"view_{clip.view_index:03d}"] = round(float(np.mean(vals)), 3)
    return out
