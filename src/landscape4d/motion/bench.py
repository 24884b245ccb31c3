"""Benchmark of the motion chain: hints -> per-view 2D motion -> refined 3D motion, with the multi-view
consistency before and after refinement (the paper's Table II) and timings.

    python -m landscape4d.motion.bench                      # synthetic tilted plane with known 3D motion
    python -m landscape4d.motion.bench --sample DIR --size 384
        DIR holds image.jpg and image.json (labelme, 3D-Cinemagraphy); the depth is a simple ground-plane prior
        (the depth stage is not used) and the views are rendered with `landscape4d.views`.

Timings are wall-clock on whatever machine runs it (noisy on a shared CPU).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ..camera import Intrinsics, training_cameras, unproject_depth
from ..config import MotionConfig
from .consistency import flows_from_3d, multiview_consistency_epe
from .geometry import ViewMotion, project_points
from .lifting import lift_motion, project_motion
from .per_view import per_view_motion
from .refine import refine_motion


def run_chain(arrows: np.ndarray, mask: np.ndarray, depth: np.ndarray, intr: Intrinsics,
              geometry: list[ViewMotion], cfg: MotionConfig) -> dict:
    """Run the chain on given views (c2w, mask, depth); returns numbers and the arrays."""
    t0 = time.perf_counter()
    flows = per_view_motion(arrows, mask, depth, intr, geometry, cfg)
    t1 = time.perf_counter()
    views = [ViewMotion(g.c2w, g.mask, g.depth, f) for g, f in zip(geometry, flows)]
    points = unproject_depth(depth, intr).astype(np.float64)
    moving = mask.reshape(-1)
    v0 = lift_motion(flows[0], depth, intr)
    vel, info = refine_motion(points, moving, v0, views, intr, cfg)
    t2 = time.perf_counter()
    before = multiview_consistency_epe(flows, views, depth, intr, mask, tol=cfg.visibility_tol)
    refined = flows_from_3d(points, vel, views, intr, moving, depth)
    after = multiview_consistency_epe(refined, views, depth, intr, mask, tol=cfg.visibility_tol)
    t3 = time.perf_counter()
    return {
        "seconds": {"per_view_motion": t1 - t0, "refine": t2 - t1, "consistency_x2_and_render": t3 - t2},
        "refine": info.to_dict(),
        "before": {k: v for k, v in before.items() if k != "per_view_3d"},
        "after": {k: v for k, v in after.items() if k != "per_view_3d"},
        "_arrays": {"flows": flows, "refined": refined, "velocity": vel, "points": points},
    }


def synthetic(cfg: MotionConfig, num_hints: int = 6, seed: int = 0) -> dict:
    from .synthetic import tilted_plane_scene

    s = tilted_plane_scene(width=128, height=96)
    rng = np.random.default_rng(seed)
    ij = np.argwhere(s.mask)
    sel = ij[rng.choice(len(ij), num_hints, replace=False)]
    start = sel[:, ::-1] + 0.5
    p = s.points.reshape(s.intr.height, s.intr.width, 3)[sel[:, 0], sel[:, 1]]
    end, _ = project_points(p + cfg.hint_frames * s.velocity, s.intr, np.eye(4))
    out = run_chain(np.stack([start, end], 1), s.mask, s.depth, s.intr, s.views, cfg)
    vel, pts = out["_arrays"]["velocity"], out["_arrays"]["points"]
    m = s.mask.reshape(-1)
    err = np.linalg.norm(vel[m] - s.velocity, axis=1).mean() / np.linalg.norm(s.velocity)
    truth_epe = []
    for v in s.views:
        got, _, _ = project_motion(pts[m], vel[m], s.intr, v.c2w)
        ref, _, _ = project_motion(pts[m], np.broadcast_to(s.velocity, (int(m.sum()), 3)), s.intr, v.c2w)
        truth_epe.append(float(np.linalg.norm(got - ref, axis=1).mean()))
    per_view_truth = [float(np.linalg.norm(f - v.flow, axis=-1)[v.mask].mean())
                      for f, v in zip(out["_arrays"]["flows"], s.views)]
    out["truth"] = {"relative_3d_error": float(err), "refined_epe_vs_truth_mean": float(np.mean(truth_epe)),
                    "per_view_flow_epe_vs_truth_mean": float(np.mean(per_view_truth))}
    return out


def ground_depth(height: int, width: int, horizon: float = 0.3, far: float = 40.0) -> np.ndarray:
    """A plausible landscape depth (H, W): a ground plane below the horizon row, `far` above it."""
    v = np.arange(height)[:, None] + 0.5
    below = v - horizon * height
    with np.errstate(divide="ignore"):
        d = np.where(below > 0, (1 - horizon) * height / below, far)
    return np.broadcast_to(np.clip(d, 1.0, far), (height, width)).astype(np.float32)


def sample(sample_dir: Path, size: int, cfg: MotionConfig, num_views: int = 25) -> dict:
    import cv2
    import torch

    from ..io.masks import load_motion_input
    from ..views import render_view

    img = cv2.cvtColor(cv2.imread(str(sample_dir / "image.jpg")), cv2.COLOR_BGR2RGB)
    h0, w0 = img.shape[:2]
    mi = load_motion_input(sample_dir / "image.json", w0, h0)
    w, h = size, int(round(size * h0 / w0 / 2) * 2)
    mi = mi.resized(w, h)
    rgb = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    intr = Intrinsics.from_fov(w, h, 60.0)
    depth = ground_depth(h, w)
    points = torch.from_numpy(unproject_depth(depth, intr))
    src_depth = torch.from_numpy(depth.reshape(-1).copy())
    geometry = []
    for c2w in training_cameras(num_views, float(np.median(depth)), 0.06, 6.0):
        r = render_view(points, torch.from_numpy(rgb.reshape(-1, 3)), torch.from_numpy(mi.mask.reshape(-1)).float(),
                        src_depth, intr, c2w, inpaint_method="none")
        geometry.append(ViewMotion(c2w, r.mask, np.where(r.holes, 0.0, r.depth)))
    out = run_chain(mi.arrows.astype(np.float64), mi.mask, depth, intr, geometry, cfg)
    out["size"] = [w, h]
    out["_rgb"] = rgb
    out["_mask"] = mi.mask
    return out


def _print(name: str, res: dict) -> None:
    b, a = res["before"]["epe"], res["after"]["epe"]
    print(f"[{name}] consistency epe_3d before {b:.5f} -> after {a:.6f} px/frame (x{b / max(a, 1e-12):.0f}); "
          f"epe_reproject {res['before']['epe_reproject']:.4f} -> {res['after']['epe_reproject']:.4f}; "
          f"pixels {res['before']['pixels']}, mean views {res['before']['mean_views']:.1f}")
    print(f"[{name}] refine: {json.dumps(res['refine'])}")
    print(f"[{name}] seconds: {json.dumps({k: round(v, 3) for k, v in res['seconds'].items()})}")
    if "truth" in res:
        print(f"[{name}] truth: {json.dumps(res['truth'])}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=Path, default=None)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--interpolation", default="laplace")
    ap.add_argument("--save", type=Path, default=None, help="write flow pictures here (sample only)")
    args = ap.parse_args(argv)
    cfg = MotionConfig(interpolation=args.interpolation)
    if args.iters is not None:
        cfg.refine_iters = args.iters
    _print("synthetic", synthetic(cfg))
    if args.sample is not None:
        res = sample(args.sample, args.size, cfg)
        _print(f"sample {args.sample.name} {res['size'][0]}x{res['size'][1]}", res)
        if args.save is not None:
            import cv2

            from .visualize import flow_to_color, quiver_image

            args.save.mkdir(parents=True, exist_ok=True)
            flows, refined = res["_arrays"]["flows"], res["_arrays"]["refined"]
            top = max(float(np.abs(f).max()) for f in flows) or 1.0
            for k in (0, len(flows) - 1):
                for tag, f in (("before", flows[k]), ("after", refined[k])):
                    cv2.imwrite(str(args.save / f"flow_{tag}_{k:03d}.png"),
                                cv2.cvtColor(flow_to_color(f, top), cv2.COLOR_RGB2BGR))
            q = quiver_image(res["_rgb"], flows[0], step=12)
            cv2.imwrite(str(args.save / "quiver_000.png"), cv2.cvtColor(q, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
