"""Stage dynamics: the 4D Gaussians. Static Gaussians of stage 1 + refined 3D motion -> a looping Scene4D whose
deformation is trained on the animated videos of the sampled views (stage 2 of the two-stage training).

Ablations (the paper's): `dynamics.motion_init=false` learns the deformation from zero; `dynamics.all_views=true`
is the single-stage training (the point-cloud Gaussians, no stage-1 fit, trained with their deformation on every
view's video for `single_stage_iters`); `dynamics.ablations=true` trains both variants beside the main one and
reports Table III (flow EPE with/without motion init) and Table IV (video generation and 4D training seconds,
two-stage against single stage)."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import torch

from ..artifacts import ViewSet, intrinsics_to_json
from ..camera import unproject_depth
from ..config import DynamicsConfig
from ..dynamics.extent import with_extent
from ..dynamics.metrics import loop_metrics, projected_motion, render_loop, video_flow_epe
from ..dynamics.model import Scene4D
from ..dynamics.motion_init import assign_point_motion, build_scene4d
from ..dynamics.scene_file import save_scene4d
from ..dynamics.train import TrainClip, train_dynamics
from ..gaussians.model import GaussianModel
from ..gaussians.rasterize import resolve_backend
from ..gaussians.train import scene_extent
from ..pipeline import StageContext
from .animate import animate_views
from .gaussians import extended_cloud, initial_model


def initial_scene(ctx: StageContext, motion_init: bool, single_stage: bool = False) -> tuple[Scene4D, dict]:
    """Stage-1 Gaussians (single stage: the unfitted point-cloud Gaussians stage 1 starts from), each moving one
    started along its refined 3D motion (and drawn at two phases of the loop from its one set of parameters)."""
    dev = ctx.device
    model = initial_model(ctx) if single_stage else ctx.artifacts.gaussians()
    dr = ctx.artifacts.depth
    h, w = dr.depth.shape
    # the cloud stage 1 started from, border included: water running out of the frame keeps running beyond it (a
    # static border would leave the moving Gaussians' way out uncovered, and nothing would flow in from it)
    points, _, (velocity, moving) = extended_cloud(ctx, ctx.artifacts.motion.velocity.reshape(h, w, 3),
                                                   ctx.artifacts.motion.moving.reshape(h, w))
    points, velocity, moving = points.reshape(-1, 3), velocity.reshape(-1, 3), moving.reshape(-1)
    means = model.means.detach().cpu().numpy()
    # a Gaussian moves when its nearest point moves and lies within `moving_radius` pixels of it (at its depth)
    max_dist = ctx.cfg.dynamics.moving_radius * np.maximum(means[:, 2], 1e-3) / dr.intr.fx
    g_vel, g_mov = assign_point_motion(means, points, velocity, moving, max_dist)
    if ctx.cfg.dynamics.backing > 0:
        model, g_vel, g_mov = with_backing(model, g_vel, g_mov, ctx.cfg.dynamics.backing)
    scene = build_scene4d(model.means.detach().to(dev), model.quats.detach().to(dev),
                          model.log_scales.detach().to(dev), model.opacity_logits.detach().to(dev),
                          model.sh.detach().to(dev), torch.from_numpy(g_vel).to(dev), torch.from_numpy(g_mov).to(dev),
                          ctx.cfg.animate.num_frames, ctx.cfg.dynamics.fourier_order, motion_init)
    scene = with_extent(scene, dr.intr.matrix(), ctx.cfg.dynamics.extent_radius)
    return scene, {"gaussians": len(scene), "gaussians_moving": int(g_mov.sum()),
                   "gaussians_drawn": len(scene) + int(g_mov.sum())}


def with_backing(model: GaussianModel, velocity: np.ndarray, moving: np.ndarray, offset: float
                 ) -> tuple[GaussianModel, np.ndarray, np.ndarray]:
    """Append a static copy of every moving Gaussian, pushed back along its ray from the input camera by `offset`
    (relative depth; scales grown alike, so it covers the same pixels). The moving draws hide it wherever they cover;
    where they thin out (the upstream end of a flow, where nothing flows in) it shows the photo's texture instead of
    a hole, as the 2D animator fills its holes from the input. velocity (N, 3), moving (N,) -> with the copies."""
    idx = torch.from_numpy(np.flatnonzero(moving)).to(model.device)
    back = model.subset(idx).params()
    back["means"], back["log_scales"] = back["means"] * (1 + offset), back["log_scales"] + float(np.log1p(offset))
    both = GaussianModel(**{k: torch.cat([v, back[k]]) for k, v in model.params().items()})
    m = len(idx)
    return (both, np.concatenate([velocity, np.zeros((m, 3), velocity.dtype)]),
            np.concatenate([moving, np.zeros(m, bool)]))


def stored_clips(ctx: StageContext) -> list[TrainClip]:
    """The animate stage's videos (two-stage: the sampled views) as training clips."""
    adir = ctx.stage_dir("animate")
    meta = json.loads((adir / "animate.json").read_text())
    vs = ctx.artifacts.views
    K = torch.as_tensor(vs.intr.matrix(), dtype=torch.float32, device=ctx.device)
    return [TrainClip(torch.from_numpy(np.load(adir / f"frames_{i:03d}.npy")).to(ctx.device), K, vs.c2w[i], i)
            for i in meta["views"]]


def animated_clips(ctx: StageContext, vs: ViewSet, views: list[int]) -> tuple[list[TrainClip], float]:
    """Animate the given views of `vs` now (the single-stage ablation's video generation). Returns the clips and
    the seconds spent generating them."""
    K = torch.as_tensor(vs.intr.matrix(), dtype=torch.float32, device=ctx.device)
    clips = []
    t0 = time.perf_counter()
    for i, video, _ in animate_views(ctx, vs, views):
        clips.append(TrainClip(torch.from_numpy(video).to(ctx.device), K, vs.c2w[i], i))
    return clips, time.perf_counter() - t0


def single_stage_lrs(ctx: StageContext, scene: Scene4D) -> dict[str, float]:
    """Learning rates of what stage 1 would have fitted (geometry, colour, opacity): stage 1's own (the position's
    initial one, held constant)."""
    g = ctx.cfg.gaussians
    extent = scene_extent(scene.means, torch.zeros(1, 3, device=scene.means.device))  # camera 0 at the origin
    return {"means": g.lr_means * extent, "quats": g.lr_quats, "log_scales": g.lr_scales, "sh": g.lr_colors,
            "opacity_logits": g.lr_opacities}


def input_view_loop(ctx: StageContext, scene: Scene4D, backend: str, epe_frames: int = 16) -> dict:
    """The 4D scene rendered from the input camera for one loop: its loop seam and coverage inside the motion mask
    (`dynamics.metrics.loop_metrics`), and the flow-consistency EPE (px/frame) of its first `epe_frames` frames
    against the refined 3D motion projected into that view (the paper's Table III)."""
    dr, mo = ctx.artifacts.depth, ctx.artifacts.motion
    vel, mov = mo.velocity, mo.moving.reshape(dr.depth.shape)
    pts = unproject_depth(dr.depth, dr.intr)
    h, w = dr.depth.shape
    K = dr.intr.matrix()
    flow_true = projected_motion(pts, vel, K, np.eye(4), h, w)
    Kt = torch.as_tensor(K, dtype=torch.float32, device=scene.means.device)
    color, alpha = render_loop(scene, Kt, np.eye(4), w, h, backend)
    # flow is measured 2 frames apart: slow water moves too little in one frame for optical flow
    return {"flow_epe_input_view": video_flow_epe(color[:epe_frames], flow_true, mov, step=2),
            "loop_input_view": loop_metrics(color, alpha, mov)}


def train_variant(ctx: StageContext, cfg: DynamicsConfig, backend: str, single_stage: bool = False,
                  clips: list[TrainClip] | None = None) -> tuple[Scene4D, dict]:
    """Train one variant: two-stage (stage-1 Gaussians, the sampled views' videos, cfg.iters) or single stage
    (point-cloud Gaussians, every given clip, cfg.single_stage_iters, geometry learnt too)."""
    t0 = time.perf_counter()
    scene, info = initial_scene(ctx, cfg.motion_init, single_stage)
    if clips is None:
        clips = stored_clips(ctx)
    iters = cfg.single_stage_iters if single_stage else cfg.iters
    extra = single_stage_lrs(ctx, scene) if single_stage else None
    scene, metrics = train_dynamics(scene, clips, cfg, ctx.artifacts.depth.scene_depth, backend,
                                    ctx.progress, ctx.cfg.seed, iters=iters, extra_lrs=extra,
                                    freeze_static=not (single_stage or cfg.train_static))
    if cfg.lr_velocity > 0 or not cfg.motion_init:  # the velocity was learnt: its path is another
        scene = with_extent(scene, ctx.artifacts.depth.intr.matrix(), cfg.extent_radius)
    metrics.update(info)
    metrics["mode"] = "single-stage" if single_stage else "two-stage"
    metrics["trained_on_views"] = [c.view_index for c in clips]
    metrics["seconds"] = round(time.perf_counter() - t0, 3)
    metrics.update(input_view_loop(ctx, scene, backend))
    return scene, metrics


def stage_record(ctx: StageContext, name: str) -> dict:
    """What the (finished) stage recorded in its .stage.json: seconds, metrics, ..."""
    try:
        return json.loads((ctx.stage_dir(name) / ".stage.json").read_text())
    except (OSError, ValueError):
        return {}


def table_iii(ctx: StageContext, cfg: DynamicsConfig, backend: str, main: dict) -> dict:
    """The paper's Table III: flow-consistency EPE at the input view with and without motion initialisation."""
    _, abl = train_variant(ctx, dataclasses.replace(cfg, motion_init=False), backend)
    return {"with_motion_init": main["flow_epe_input_view"], "without_motion_init": abl["flow_epe_input_view"],
            "psnr_clips_with": main["psnr_clips"], "psnr_clips_without": abl["psnr_clips"],
            "seconds_without": abl["seconds"], "unit": "px/frame", "paper": {"with": 4.27, "without": 5.07}}


def table_iv(ctx: StageContext, cfg: DynamicsConfig, backend: str, main: dict) -> dict:
    """The paper's Table IV: video generation and 4D training time, two-stage (this run) against single stage
    (every view animated, 4D Gaussians trained from the point cloud on all of them, no stage-1 fit)."""
    vs = ctx.artifacts.views
    all_views = list(range(len(vs)))
    clips, gen_seconds = animated_clips(ctx, vs, all_views)
    _, single = train_variant(ctx, cfg, backend, single_stage=True, clips=clips)
    two_gen = stage_record(ctx, "animate").get("metrics", {}).get("seconds_video_generation")
    two = {"views_animated": len(main["trained_on_views"]), "video_generation_seconds": two_gen,
           "static_3d_seconds": stage_record(ctx, "gaussians").get("seconds"),
           "train_4d_seconds": main["seconds_train"], "iters_4d": main["iters"], "psnr_clips": main["psnr_clips"]}
    one = {"views_animated": len(all_views), "video_generation_seconds": round(gen_seconds, 3),
           "static_3d_seconds": 0.0, "train_4d_seconds": single["seconds_train"], "iters_4d": single["iters"],
           "psnr_clips": {k: v for k, v in single["psnr_clips"].items() if k in main["psnr_clips"]},
           "flow_epe_input_view": single["flow_epe_input_view"]}
    out = {"two_stage": two, "single_stage": one,
           "paper": {"video_generation_speedup": 30.0, "train_4d_reduction": 1 / 3}}
    if two_gen:
        out["video_generation_speedup"] = round(one["video_generation_seconds"] / two_gen, 2)
    if one["train_4d_seconds"]:
        out["train_4d_reduction"] = round(1 - two["train_4d_seconds"] / one["train_4d_seconds"], 3)
    return out


def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg.dynamics
    backend = resolve_backend(ctx.cfg.gaussians.backend, ctx.device)
    # all_views: the single-stage ablation (the animate stage animated every view)
    scene, metrics = train_variant(ctx, cfg, backend, single_stage=cfg.all_views)
    dr = ctx.artifacts.depth
    if cfg.ablations and cfg.motion_init and not cfg.all_views:
        metrics["table_iii_flow_epe"] = table_iii(ctx, cfg, backend, metrics)
        metrics["table_iv_stage_seconds"] = table_iv(ctx, cfg, backend, metrics)
    header = {"fps": ctx.cfg.animate.fps, "camera": intrinsics_to_json(dr.intr), "scene_depth": dr.scene_depth,
              "convention": "OpenCV camera axes; world = input camera; t in [0, 1) is one loop",
              "motion_init": cfg.motion_init, "trained_on_views": metrics["trained_on_views"]}
    save_scene4d(ctx.out / "scene4d.safetensors", scene, header)
    return metrics
