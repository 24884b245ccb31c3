"""Stage animate: looping videos of a few sampled views (two-stage mode) or of every view (single-stage
ablation), driven by the refined 3D motion projected into each view."""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np

from ..animate import animate_image, loop_seam_ssim, splat_importance
from ..artifacts import ViewSet, load_depth, load_views
from ..camera import unproject_depth
from ..io.atomic import write_json, write_npy
from ..io.video import write_mp4
from ..motion import ViewMotion, flows_from_3d
from ..pipeline import StageContext


def sampled_views(num_views: int, count: int, c2ws: list[np.ndarray]) -> list[int]:
    """The input view plus the views farthest from it and from each other (greedy farthest-point on camera
    positions and viewing directions)."""
    count = max(1, min(count, num_views))
    feats = np.array([np.concatenate([c[:3, 3], c[:3, 2]]) for c in c2ws])
    chosen = [0]
    while len(chosen) < count:
        d = np.min(np.linalg.norm(feats[:, None] - feats[None, chosen], axis=-1), axis=1)
        d[chosen] = -1
        chosen.append(int(np.argmax(d)))
    return chosen


def animate_views(ctx: StageContext, vs: ViewSet, chosen: list[int]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Animate the chosen views of `vs` with the refined 3D motion projected into each. Yields (view index, video
    (T, H, W, 3) uint8 of frames 0..N-1 (frame N would repeat frame 0), flow (H, W, 2) px/frame) one at a time."""
    cfg = ctx.cfg.animate
    dr = load_depth(ctx.run_dir)
    mdir = ctx.stage_dir("motion")
    velocity = np.load(mdir / "points_motion.npy")
    moving = np.load(mdir / "points_moving.npy")
    points = unproject_depth(dr.depth, dr.intr)
    views = [ViewMotion(vs.c2w[i], vs.mask[i], np.where(vs.holes[i], 0.0, vs.depth[i])) for i in chosen]
    flows = flows_from_3d(points, velocity, views, dr.intr, moving)
    for i, flow in zip(chosen, ctx.progress(flows, desc="animate")):
        depth = np.where(vs.holes[i] | (vs.depth[i] <= 0), np.inf, vs.depth[i])
        imp = splat_importance(flow, depth, cfg.importance_motion, cfg.importance_depth)
        frames = animate_image(vs.rgb[i], flow, vs.mask[i], cfg.num_frames, cfg, importance=imp, device=ctx.device)
        yield i, (np.clip(frames[:-1], 0, 1) * 255 + 0.5).astype(np.uint8), flow


def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg.animate
    vs = load_views(ctx.run_dir)
    chosen = list(range(len(vs))) if cfg.all_views else sampled_views(len(vs), cfg.sampled_views, vs.c2w)
    seams = {}
    seconds_generation = 0.0
    t_gen = time.perf_counter()
    for i, video, flow in animate_views(ctx, vs, chosen):
        seconds_generation += time.perf_counter() - t_gen
        write_mp4(ctx.out / f"view_{i:03d}.mp4", video, cfg.fps, crf=cfg.video_crf)
        write_npy(ctx.out / f"frames_{i:03d}.npy", video)
        write_npy(ctx.out / f"flow_{i:03d}.npy", flow.astype(np.float32))
        seam = loop_seam_ssim(video)
        seams[f"view_{i:03d}"] = {"seam_ssim": seam.seam_ssim, "consecutive_ssim": seam.consecutive_ssim}
        t_gen = time.perf_counter()
    write_json(ctx.out / "animate.json", {"views": chosen, "num_frames": cfg.num_frames, "fps": cfg.fps,
                                          "mode": "single-stage (all views)" if cfg.all_views else "two-stage",
                                          "loop": seams})  # timings only in the report: outputs stay reproducible
    # video generation: projecting the motion and animating (not writing files or scoring the seams)
    return {"views": chosen, "videos": len(chosen), "loop": seams,
            "seconds_video_generation": round(seconds_generation, 3)}
