"""Stage animate: looping videos of a few sampled views (two-stage mode) or of every view (single-stage
ablation), driven by the refined 3D motion projected into each view (the motion stage's refined_flow/NNN.npy).

Each video holds frames 0..N-1; frame N is the input by construction (it equals frame 0), so the loop's seam is
measured the honest way, on the frames the video plays: the step from frame N-1 back to frame 0 against the mean
frame-to-frame step inside the view's motion mask (`evaluation.metrics.loop_seam_step`), beside the SSIM seam."""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np

from ..animate import animate_image, loop_seam_ssim, splat_importance
from ..artifacts import ViewSet
from ..evaluation.metrics import loop_seam_step
from ..io.atomic import write_json, write_npy
from ..io.video import write_mp4
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
    """Animate the chosen views of `vs` with the refined 3D motion projected into each (stored by the motion stage).
    Yields (view index, video (T, H, W, 3) uint8 of frames 0..N-1 (frame N would repeat frame 0), flow (H, W, 2)
    px/frame) one at a time."""
    cfg = ctx.cfg.animate
    folder = ctx.stage_dir("motion") / "refined_flow"
    for i in ctx.progress(chosen, desc="animate"):
        flow = np.load(folder / f"{i:03d}.npy")
        depth = np.where(vs.holes[i] | (vs.depth[i] <= 0), np.inf, vs.depth[i])
        imp = splat_importance(flow, depth, cfg.importance_motion, cfg.importance_depth)
        frames = animate_image(vs.rgb[i], flow, vs.mask[i], cfg.num_frames, cfg, importance=imp, device=ctx.device)
        yield i, (np.clip(frames[:-1], 0, 1) * 255 + 0.5).astype(np.uint8), flow


def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg.animate
    vs = ctx.artifacts.views
    chosen = list(range(len(vs))) if cfg.all_views else sampled_views(len(vs), cfg.sampled_views, vs.c2w)
    seams = {}
    seconds_generation = 0.0
    t_gen = time.perf_counter()
    for i, video, flow in animate_views(ctx, vs, chosen):
        seconds_generation += time.perf_counter() - t_gen
        write_mp4(ctx.out / f"view_{i:03d}.mp4", video, cfg.fps, crf=cfg.video_crf)
        write_npy(ctx.out / f"frames_{i:03d}.npy", video)
        write_npy(ctx.out / f"flow_{i:03d}.npy", flow.astype(np.float32))
        seam, step = loop_seam_ssim(video), loop_seam_step(video, vs.mask[i])
        seams[f"view_{i:03d}"] = {"seam_ssim": seam.seam_ssim, "consecutive_ssim": seam.consecutive_ssim,
                                  "seam_step": round(step.seam, 4), "mean_step": round(step.step, 4),
                                  "seam_ratio": round(step.ratio, 4),
                                  "seam_ratio_neighbours": round(step.ratio_neighbours, 4)}
        t_gen = time.perf_counter()
    write_json(ctx.out / "animate.json", {"views": chosen, "num_frames": cfg.num_frames, "fps": cfg.fps,
                                          "mode": "single-stage (all views)" if cfg.all_views else "two-stage",
                                          "loop": seams})  # timings only in the report: outputs stay reproducible
    # video generation: animating with the stored projected motion (not writing files or scoring the seams)
    return {"views": chosen, "videos": len(chosen), "loop": seams,
            "seconds_video_generation": round(seconds_generation, 3)}
