"""Stage motion: 2D motion per view (independent, as a per-view estimator gives), lifted to 3D and refined into
one consistent 3D velocity per point (the 3D Motion Refinement Module).

Outputs: flow/NNN.npy (each view's independent estimate), refined_flow/NNN.npy (the refined 3D motion drawn into
each view; the animate stage uses them), points_motion.npy (refined) and points_motion_init.npy (the input view's
lift, before refinement), points_moving.npy, input_motion.npy and consistency.json:
- agreement_with_views: EPE between each view's independent 2D estimate and the 3D motion projected into that
  view, for the initial lifted motion and for the refined one (how well one 3D motion explains every view);
- independent_flows_consistency: the multi-view consistency of the independent estimates among themselves (the
  paper's Table II "before");
- refined_flows_consistency_by_construction: the same for the maps drawn from the refined 3D motion (the paper's
  Table II "after"); near zero by construction since one 3D field is drawn into every view."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..camera import unproject_depth
from ..config import MotionConfig
from ..io.atomic import write_json, write_npy
from ..io.images import save_png
from ..motion import (ViewMotion, dense_motion_from_hints, flow_to_color, flows_from_3d, lift_motion,
                      load_motion_model, motion_from_video, multiview_consistency_epe, per_view_motion,
                      quiver_image, read_video_frames, refine_motion)
from ..motion.consistency import views_agreement_epe
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


def write_flows(folder: Path, flows: list[np.ndarray]) -> None:
    """folder/NNN.npy (H, W, 2) float32 per view."""
    folder.mkdir()
    for i, f in enumerate(flows):
        write_npy(folder / f"{i:03d}.npy", f.astype(np.float32))


def consistency_report(flows: list[np.ndarray], init_flows: list[np.ndarray], refined_flows: list[np.ndarray],
                       views: list[ViewMotion], dr, mask: np.ndarray) -> dict:
    """consistency.json (see the module docstring)."""
    masks = [v.mask for v in views]
    agree = {"initial": views_agreement_epe(flows, init_flows, masks),
             "refined": views_agreement_epe(flows, refined_flows, masks)}
    agree["definition"] = ("mean EPE (px/frame) over each view's mask between the view's independent 2D estimate "
                           "and the 3D motion projected into the view: initial = the input view's estimate lifted "
                           "at constant depth, refined = after 3D motion refinement")
    return {"agreement_with_views": agree,
            "independent_flows_consistency": multiview_consistency_epe(flows, views, dr.depth, dr.intr, mask),
            "refined_flows_consistency_by_construction": multiview_consistency_epe(refined_flows, views, dr.depth,
                                                                                   dr.intr, mask),
            "definition_consistency": "multi-view flow consistency EPE (px/frame) of a set of 2D maps among "
                                      "themselves at the input view's pixels; see landscape4d.motion.consistency",
            "paper_table_ii": {"before": 0.152, "after": 0.003}}


def run(ctx: StageContext) -> dict:
    inp, dr, vs = ctx.artifacts.input, ctx.artifacts.depth, ctx.artifacts.views
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
    write_flows(ctx.out / "flow", flows)
    views = [dataclasses.replace(v, flow=f) for v, f in zip(views, flows)]
    points = unproject_depth(dr.depth, dr.intr)
    moving = mask.reshape(-1)
    v0 = lift_motion(m0, dr.depth, dr.intr)
    velocity, info = refine_motion(points, moving, v0, views, dr.intr, cfg, grid_shape=mask.shape,
                                   device=ctx.device)
    write_npy(ctx.out / "points_motion.npy", velocity.astype(np.float32))
    write_npy(ctx.out / "points_motion_init.npy", np.nan_to_num(v0 * moving[:, None]).astype(np.float32))
    write_npy(ctx.out / "points_moving.npy", moving)
    write_npy(ctx.out / "input_motion.npy", m0.astype(np.float32))
    refined_flows = flows_from_3d(points, velocity, views, dr.intr, moving)
    write_flows(ctx.out / "refined_flow", refined_flows)
    init_flows = flows_from_3d(points, np.nan_to_num(v0), views, dr.intr, moving)
    info_d = dataclasses.asdict(info) if dataclasses.is_dataclass(info) else dict(info)
    consistency = {**consistency_report(flows, init_flows, refined_flows, views, dr, mask), "refine": info_d,
                   "source": source}
    write_json(ctx.out / "consistency.json", consistency)
    # pictures: input-view motion and one side view's refined motion
    side = min(len(vs) - 1, max(1, len(vs) - 3))
    save_png(ctx.out / "motion_input.png", quiver_image(inp.image, m0))
    save_png(ctx.out / "motion_input_color.png", flow_to_color(m0))
    save_png(ctx.out / f"motion_view{side:03d}.png", quiver_image(vs.rgb[side], refined_flows[side]))
    speed = np.linalg.norm(m0, axis=-1)[mask]
    agree = consistency["agreement_with_views"]
    return {"source": source, "views_epe_initial": agree["initial"]["epe"],
            "views_epe_refined": agree["refined"]["epe"],
            "views_epe_initial_other_views": agree["initial"]["epe_other_views"],
            "views_epe_refined_other_views": agree["refined"]["epe_other_views"],
            "independent_flows_consistency_epe": consistency["independent_flows_consistency"]["epe"],
            "refined_flows_consistency_epe_by_construction":
                consistency["refined_flows_consistency_by_construction"]["epe"],
            "moving_points": int(moving.sum()),
            "mean_speed_px_per_frame": float(speed.mean()) if speed.size else 0.0,
            "refine_seconds": info_d.get("seconds")}
