"""Stage gaussians (stage 1 of the two-stage training): 3D Gaussians fitted to every training view.

In the single-stage ablation (`dynamics.all_views`, `--all-views`) there is no stage-1 fit: the point-cloud
Gaussians are written as they start (0 iterations), and the dynamics stage learns geometry and motion together."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..camera import Intrinsics, trajectory, unproject_depth
from ..gaussians.model import GaussianModel
from ..gaussians.ply import write_ply
from ..gaussians.rasterize import resolve_backend
from ..gaussians.train import TrainView, fit_gaussians, render_model
from ..io.images import save_png
from ..pipeline import StageContext


def extended_cloud(ctx: StageContext, *per_pixel: np.ndarray) -> tuple[np.ndarray, Intrinsics, list[np.ndarray]]:
    """The photo's point cloud extended beyond the frame by `gaussians.border` of the long side on every side, each
    border point a copy of its nearest edge pixel (depth, and whatever (H, W, ...) arrays are given: colour,
    motion) -> (points (H', W', 3), the extended camera, the extended arrays (H', W', ...))."""
    dr = ctx.artifacts.depth
    h, w = dr.depth.shape
    m = int(round(ctx.cfg.gaussians.border * max(h, w)))
    intr = Intrinsics(dr.intr.fx, dr.intr.fy, dr.intr.cx + m, dr.intr.cy + m, w + 2 * m, h + 2 * m)
    points = unproject_depth(np.pad(dr.depth, m, mode="edge"), intr).reshape(h + 2 * m, w + 2 * m, 3)
    return points, intr, [np.pad(a, ((m, m), (m, m)) + ((0, 0),) * (a.ndim - 2), mode="edge") for a in per_pixel]


def initial_model(ctx: StageContext) -> GaussianModel:
    """One Gaussian per `downsample` x `downsample` block of the photo's point cloud, extended beyond the frame by
    `gaussians.border` (edge-replicated colour and depth) so that moved views have Gaussians at their borders too."""
    points, intr, (image,) = extended_cloud(ctx, ctx.artifacts.input.image)
    cfg = ctx.cfg.gaussians
    d = max(1, cfg.downsample)
    points = points[d // 2::d, d // 2::d].reshape(-1, 3)
    colors = image[d // 2::d, d // 2::d].reshape(-1, 3)
    if cfg.init == "footprint":
        return GaussianModel.from_pixel_footprints(points, colors, cfg.init_sigma_px * d, intr.fx, intr.fy,
                                                   cfg.init_opacity, cfg.sh_degree, ctx.device)
    return GaussianModel.from_points(points, colors, sh_degree=cfg.sh_degree, opacity=cfg.init_opacity,
                                     device=ctx.device)


def view_weights(holes: np.ndarray, hole_weight: float, index: int) -> np.ndarray | None:
    """(H, W) loss weights of one training view: 1, and `hole_weight` on its inpainted holes; None (all 1) for the
    input view (index 0, the real photo) and when hole_weight is 1."""
    if index == 0 or hole_weight == 1.0:
        return None
    return np.where(holes, np.float32(hole_weight), np.float32(1.0))


def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg.gaussians
    if ctx.cfg.dynamics.all_views:
        cfg = dataclasses.replace(cfg, iters=0)
    vs = ctx.artifacts.views
    K = vs.intr.matrix().astype(np.float32)
    views = [TrainView(rgb, K, c2w, view_weights(holes, cfg.hole_weight, i))
             for i, (rgb, c2w, holes) in enumerate(zip(vs.rgb, vs.c2w, vs.holes))]
    model, metrics = fit_gaussians(initial_model(ctx), views, cfg, ctx.device, progress=True, seed=ctx.cfg.seed)
    write_ply(model, ctx.out / "scene.ply")
    backend = resolve_backend(cfg.backend, ctx.device)
    w, h = vs.intr.width, vs.intr.height
    side = trajectory("side", 4, ctx.artifacts.depth.scene_depth)[1]  # the side path's largest swing
    for name, c2w in (("input_view", np.eye(4)), ("novel_view_side", side)):
        img = render_model(model, K, c2w, w, h, backend).color.detach().clamp(0, 1).cpu().numpy()
        save_png(ctx.out / f"{name}.png", img)
    return metrics
