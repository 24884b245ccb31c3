"""Stage dynamics: the 4D Gaussians. Static Gaussians of stage 1 + refined 3D motion -> a looping Scene4D whose
deformation is trained on the animated videos of the sampled views (stage 2 of the two-stage training)."""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from ..artifacts import intrinsics_to_json, load_depth, load_views
from ..camera import unproject_depth
from ..config import DynamicsConfig
from ..dynamics.metrics import loop_closure_error, projected_motion, video_flow_epe
from ..dynamics.model import Scene4D
from ..dynamics.motion_init import assign_point_motion, build_scene4d
from ..dynamics.scene_file import save_scene4d
from ..dynamics.train import TrainClip, render_scene, train_dynamics
from ..gaussians.ply import read_ply
from ..gaussians.rasterize import resolve_backend
from ..pipeline import StageContext


def initial_scene(ctx: StageContext, motion_init: bool) -> tuple[Scene4D, dict]:
    """Stage-1 Gaussians with each moving one twinned and started along its refined 3D motion."""
    dev = ctx.device
    model = read_ply(ctx.stage_dir("gaussians") / "scene.ply")
    dr = load_depth(ctx.run_dir)
    mdir = ctx.stage_dir("motion")
    points = unproject_depth(dr.depth, dr.intr)
    velocity = np.load(mdir / "points_motion.npy")
    moving = np.load(mdir / "points_moving.npy")
    means = model.means.detach().cpu().numpy()
    # a Gaussian moves when its nearest point moves and lies within `moving_radius` pixels of it (at its depth)
    max_dist = ctx.cfg.dynamics.moving_radius * np.maximum(means[:, 2], 1e-3) / dr.intr.fx
    g_vel, g_mov = assign_point_motion(means, points, velocity, moving, max_dist)
    scene = build_scene4d(model.means.detach().to(dev), model.quats.detach().to(dev),
                          model.log_scales.detach().to(dev), model.opacity_logits.detach().to(dev),
                          model.sh.detach().to(dev), torch.from_numpy(g_vel).to(dev), torch.from_numpy(g_mov).to(dev),
                          ctx.cfg.animate.num_frames, ctx.cfg.dynamics.fourier_order, motion_init)
    return scene, {"gaussians_static": int(len(means)), "gaussians_moving": int(g_mov.sum()),
                   "gaussians_total": len(scene)}


def training_clips(ctx: StageContext, all_views: bool) -> tuple[list[TrainClip], list[int]]:
    """The animated videos (two-stage: the sampled views) as training clips."""
    adir = ctx.stage_dir("animate")
    meta = json.loads((adir / "animate.json").read_text())
    vs = load_views(ctx.run_dir)
    chosen = meta["views"]
    K = torch.as_tensor(vs.intr.matrix(), dtype=torch.float32, device=ctx.device)
    clips = []
    for i in chosen:
        frames = torch.from_numpy(np.load(adir / f"frames_{i:03d}.npy")).to(ctx.device).float() / 255.0
        clips.append(TrainClip(frames, K, vs.c2w[i], i))
    return clips, chosen


def input_view_epe(ctx: StageContext, scene: Scene4D, backend: str, frames: int = 16) -> float:
    """Flow-consistency EPE (px/frame) of the 4D scene's video at the input view against the refined 3D motion
    projected into that view, over the motion mask (the paper's Table III)."""
    dr = load_depth(ctx.run_dir)
    mdir = ctx.stage_dir("motion")
    vel = np.load(mdir / "points_motion.npy")
    mov = np.load(mdir / "points_moving.npy").reshape(dr.depth.shape)
    pts = unproject_depth(dr.depth, dr.intr)
    h, w = dr.depth.shape
    K = dr.intr.matrix()
    flow_true = projected_motion(pts, vel, K, np.eye(4), h, w)
    Kt = torch.as_tensor(K, dtype=torch.float32, device=scene.means.device)
    with torch.no_grad():
        video = np.stack([render_scene(scene, f / scene.num_frames, Kt, np.eye(4), w, h, backend).color
                          .clamp(0, 1).cpu().numpy() for f in range(min(frames, scene.num_frames))])
    # flow is measured 2 frames apart: slow water moves too little in one frame for optical flow
    return video_flow_epe(video, flow_true, mov, step=2)


def train_variant(ctx: StageContext, cfg: DynamicsConfig, backend: str) -> tuple[Scene4D, dict]:
    t0 = time.perf_counter()
    scene, info = initial_scene(ctx, cfg.motion_init)
    clips, chosen = training_clips(ctx, cfg.all_views)
    scene, metrics = train_dynamics(scene, clips, cfg, load_depth(ctx.run_dir).scene_depth, backend,
                                    ctx.progress, ctx.cfg.seed)
    metrics.update(info)
    metrics["trained_on_views"] = chosen
    metrics["seconds"] = round(time.perf_counter() - t0, 3)
    metrics["flow_epe_input_view"] = input_view_epe(ctx, scene, backend)
    return scene, metrics


def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg.dynamics
    backend = resolve_backend(ctx.cfg.gaussians.backend, ctx.device)
    scene, metrics = train_variant(ctx, cfg, backend)
    dr = load_depth(ctx.run_dir)
    K = torch.as_tensor(dr.intr.matrix(), dtype=torch.float32, device=scene.means.device)
    with torch.no_grad():
        f0 = render_scene(scene, 0.0, K, np.eye(4), dr.intr.width, dr.intr.height, backend).color.cpu().numpy()
        f1 = render_scene(scene, 1.0, K, np.eye(4), dr.intr.width, dr.intr.height, backend).color.cpu().numpy()
    metrics["loop_closure_max_abs"] = loop_closure_error(f0, f1)
    if cfg.ablations and cfg.motion_init:
        import dataclasses

        _, abl = train_variant(ctx, dataclasses.replace(cfg, motion_init=False), backend)
        metrics["ablation_no_motion_init"] = {"flow_epe_input_view": abl["flow_epe_input_view"],
                                              "seconds": abl["seconds"], "psnr_clips": abl["psnr_clips"]}
    header = {"fps": ctx.cfg.animate.fps, "camera": intrinsics_to_json(dr.intr), "scene_depth": dr.scene_depth,
              "convention": "OpenCV camera axes; world = input camera; t in [0, 1) is one loop",
              "motion_init": cfg.motion_init, "trained_on_views": metrics["trained_on_views"]}
    save_scene4d(ctx.out / "scene4d.safetensors", scene, header)
    return metrics
