"""Stage motion: 2D motion per view (independent, as a per-view estimator gives), lifted to 3D and refined into
one consistent 3D velocity per point (the 3D Motion Refinement Module); consistency before and after."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..artifacts import load_depth, load_views
from ..camera import unproject_depth
from ..config import MotionConfig
from ..inputs import load_input
from ..io.atomic import write_json, write_npy
from ..io.images import save_png
from ..motion import (ViewMotion, dense_motion_from_hints, flow_to_color, flows_from_3d, lift_motion,
                      load_motion_model, motion_from_video, multiview_consistency_epe, per_view_motion,
                      quiver_image, read_video_frames, refine_motion)
from ..motion.per_view import pseudo_arrows
from ..pipeline import StageContext


def motion_config(ctx: StageContext, direction, speed) -> MotionConfig:
    """The stage's config with the input's own direction/speed (hints JSON or CLI) filled in."""
    cfg = dataclasses.replace(ctx.cfg.motion)
    if cfg.direction is None and direction is not None:
        cfg.direction = tuple(direction)
    if cfg.speed is None and speed is not None:
        cfg.speed = float(speed)
    return cfg


def input_arrows(ctx: StageContext, cfg: MotionConfig, image: np.ndarray, mask: np.ndarray,
                 arrows: np.ndarray) -> tuple[np.ndarray, str]:
    """The arrows the per-view estimation projects: the user's hints, or arrows sampled from the motion estimated
    from a reference video or by a learned model."""
    if cfg.reference_video:
        field = motion_from_video(read_video_frames(cfg.reference_video), mask)
        return pseudo_arrows(field, mask, cfg.hint_frames), "reference_video"
    if cfg.model:
        field = load_motion_model(cfg.model, ctx.device)(image, mask)
        return pseudo_arrows(field, mask, cfg.hint_frames), "model"
    return arrows, "hints" if len(arrows) else "direction"


def run(ctx: StageContext) -> dict:
    inp = load_input(ctx.run_dir)
    dr = load_depth(ctx.run_dir)
    vs = load_views(ctx.run_dir)
    cfg = motion_config(ctx, inp.motion.direction, inp.motion.speed)
    mask = inp.motion.mask
    arrows, source = input_arrows(ctx, cfg, inp.image, mask, inp.motion.arrows)
    if source != "hints" and source != "direction":
        cfg = dataclasses.replace(cfg, speed=None, direction=None)
    hints_file = Path(inp.meta.get("hints") or inp.meta.get("mask") or "hints")
    views = [ViewMotion(c2w, m, np.where(h, 0.0, d)) for c2w, m, d, h in zip(vs.c2w, vs.mask, vs.depth, vs.holes)]
    m0 = dense_motion_from_hints(mask, arrows, cfg, source=hints_file)
    flows = per_view_motion(arrows, mask, dr.depth, dr.intr, views, cfg, source=hints_file)
    flows[0] = m0
    (ctx.out / "flow").mkdir()
    for i, f in enumerate(flows):
        write_npy(ctx.out / "flow" / f"{i:03d}.npy", f.astype(np.float32))
    views = [dataclasses.replace(v, flow=f) for v, f in zip(views, flows)]
    points = unproject_depth(dr.depth, dr.intr)
    moving = mask.reshape(-1)
    v0 = lift_motion(m0, dr.depth, dr.intr)
    velocity, info = refine_motion(points, moving, v0, views, dr.intr, cfg, grid_shape=mask.shape,
                                   device=ctx.device)
    write_npy(ctx.out / "points_motion.npy", velocity.astype(np.float32))
    write_npy(ctx.out / "points_moving.npy", moving)
    write_npy(ctx.out / "input_motion.npy", m0.astype(np.float32))
    before = multiview_consistency_epe(flows, views, dr.depth, dr.intr, mask)
    refined_flows = flows_from_3d(points, velocity, views, dr.intr, moving)
    after = multiview_consistency_epe(refined_flows, views, dr.depth, dr.intr, mask)
    reduction = before["epe"] / max(after["epe"], 1e-9)
    info_d = dataclasses.asdict(info) if dataclasses.is_dataclass(info) else dict(info)
    consistency = {"definition": "multi-view flow consistency EPE (px/frame) at the input view's pixels; see "
                                 "landscape4d.motion.consistency", "before": before, "after": after,
                   "reduction": reduction, "refine": info_d, "source": source, "paper": {"before": 0.152,
                                                                                         "after": 0.003}}
    write_json(ctx.out / "consistency.json", consistency)
    # pictures: input-view motion and one side view's refined motion
    side = min(len(vs) - 1, max(1, len(vs) - 3))
    save_png(ctx.out / "motion_input.png", quiver_image(inp.image, m0))
    save_png(ctx.out / "motion_input_color.png", flow_to_color(m0))
    save_png(ctx.out / f"motion_view{side:03d}.png", quiver_image(vs.rgb[side], refined_flows[side]))
    speed = np.linalg.norm(m0, axis=-1)[mask]
    return {"source": source, "consistency_before": before["epe"], "consistency_after": after["epe"],
            "reduction": reduction, "moving_points": int(moving.sum()),
            "mean_speed_px_per_frame": float(speed.mean()) if speed.size else 0.0,
            "refine_seconds": info_d.get("seconds")}
