"""`landscape4d bench pipeline`: seeded synthetic scenes -> the pipeline -> `eval` of ours and the 2D baseline,
one table with per-stage seconds, peak memory and every metric, the paper's numbers beside ours.

    landscape4d bench pipeline --scenes 3 --preset preview [--kinds river,waterfall,lake] [--size S]
                               [--seeds 5,17,42] [--set k=v ...] [--oracle-depth] [--no-lpips] [-o DIR]

Scene i is kind kinds[i % len(kinds)] with seed i, or with the i-th of `--seeds` (then the list sets how many
scenes: results on seeds never tuned for), named <kind>_<seed>. It is generated at the run's working size (long
side S, 16:9) with the run's loop length, so the GT videos and the rendered ones share size, poses
(`camera.trajectory` with each side's own scene depth) and timing. GT videos are stored losslessly
(gt/<trajectory>.npy) with the moving region seen along each trajectory (gt/<trajectory>_mask.npy) for the masked
metrics.
Writes DIR/bench.json and DIR/bench.md; DIR/scenes/<name> (GT), DIR/runs/<name> (runs, eval in <run>/eval).
With `--set dynamics.ablations=true` every run also trains the no-motion-init and single-stage variants, and the
table gets the paper's Table III (flow EPE without motion init) and Table IV (video generation and 4D seconds).
Timings depend on the machine's load: the numbers are as measured, not a claim about the method's speed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import TRAJECTORIES, apply_overrides, preset
from ..io.atomic import write_json, write_npy
from ..io.images import to_uint8
from .commands import EvalConfig, clean, evaluate_run
from .synthetic import SyntheticScene, generate_scene

PAPER = {  # arXiv 2504.05458
    "table1": {"Ours (paper)": {"psnr": 20.57, "ssim": 0.90, "lpips": 0.14},
               "3D-Cinemagraphy": {"psnr": 17.30, "ssim": 0.83, "lpips": 0.17},
               "Make-It-4D": {"psnr": 16.98, "ssim": 0.81, "lpips": 0.20}},
    "table2_multiview_epe": {"before": 0.152, "after": 0.003},
    "table3_flow_epe": {"without_motion_init": 5.07, "with_motion_init": 4.27},
    "table4": {"video_generation": "30x faster two-stage", "train_4d": "1/3 less two-stage"},
}
STAGES = ("depth", "views", "motion", "gaussians", "animate", "dynamics", "render")


@dataclass
class BenchScene:
    name: str
    kind: str
    seed: int


def scene_plan(count: int, kinds: list[str], seeds: list[int] | None = None) -> list[BenchScene]:
    """Scene i: kind kinds[i % len(kinds)], seed seeds[i] (default i; `seeds` sets the count), name <kind>_<seed>."""
    seeds = list(range(count)) if seeds is None else list(seeds)
    return [BenchScene(f"{kinds[i % len(kinds)]}_{s}", kinds[i % len(kinds)], int(s)) for i, s in enumerate(seeds)]


def parse_seeds(text: str | None, scenes: int | None) -> list[int]:
    """`--seeds 5,17,42` (with an optional `--scenes` that must agree) -> [5, 17, 42]; without it 0 .. scenes-1.
    Raises ValueError with a one-line message."""
    if text is None:
        count = 3 if scenes is None else scenes
        if count < 1:
            raise ValueError("--scenes must be >= 1")
        return list(range(count))
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected comma-separated integers, e.g. 5,17,42") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"--seeds {text!r}: expected one or more non-negative integers")
    if scenes is not None and scenes != len(seeds):
        raise ValueError(f"--scenes {scenes} disagrees with the {len(seeds)} seeds of --seeds {text}")
    return seeds


def scene_size(long_side: int) -> tuple[int, int]:
    """16:9 (width, height) with long side `long_side`, both even (H.264)."""
    w = int(long_side) // 2 * 2
    return w, max(16, int(round(w * 9 / 16)) // 2 * 2)


def save_gt(scene: SyntheticScene, out: Path, trajectories: tuple[str, ...], fps: int) -> None:
    """scene.save's files plus lossless GT videos gt/<name>.npy (T, H, W, 3) uint8 and the moving region along
    the trajectory gt/<name>_mask.npy (T, H, W) bool (one ray cast per frame gives both)."""
    scene.save(out, trajectories=(), fps=fps)
    for name in trajectories:
        poses = scene.trajectory(name)
        frames = np.empty((len(poses), scene.intrinsics.height, scene.intrinsics.width, 3), np.uint8)
        masks = np.empty(frames.shape[:3], bool)
        for k, c2w in enumerate(poses):
            r = scene.render(c2w, float(k))
            frames[k], masks[k] = to_uint8(r.rgb), r.mask
        write_npy(out / "gt" / f"{name}.npy", frames)
        write_npy(out / "gt" / f"{name}_mask.npy", masks)
    meta = json.loads((out / "scene.json").read_text())
    meta["trajectories"] = list(trajectories)
    meta["files"].update({f"gt/{n}": f"gt/{n}.npy" for n in trajectories})
    meta["files"].update({f"gt/{n}_mask": f"gt/{n}_mask.npy" for n in trajectories})
    write_json(out / "scene.json", meta)


def gt_complete(gt: Path, trajectories: tuple[str, ...]) -> bool:
    """Whether `save_gt` finished for these trajectories (an interrupted one wrote scene.json without them)."""
    try:
        meta = json.loads((gt / "scene.json").read_text())
    except (OSError, ValueError):
        return False
    return all(t in (meta.get("trajectories") or []) and (gt / "gt" / f"{t}.npy").exists() for t in trajectories)


def run_argv(gt: Path, run: Path, args: argparse.Namespace) -> list[str]:
    argv = ["run", str(gt / "image.png"), "--mask", str(gt / "mask.png"), "--hints", str(gt / "hints.json"),
            "-o", str(run), "--preset", args.preset, "--set", "render.lossless=true"]  # scored before encoding
    if args.size:
        argv += ["--size", str(args.size)]
    if args.oracle_depth:
        argv += ["--depth-backend", "file", "--depth-file", str(gt / "depth.npy")]
    for s in args.set:
        argv += ["--set", s]
    return argv


def bench_one(sc: BenchScene, args: argparse.Namespace, out: Path, log) -> dict:
    from ..cli import main as cli_main

    cfg = apply_overrides(preset(args.preset), ([f"size={args.size}"] if args.size else []) + list(args.set))
    width, height = scene_size(cfg.size)
    frames = cfg.animate.num_frames
    trajectories = tuple(t for t in cfg.render.trajectories if t in TRAJECTORIES)
    gt, run = out / "scenes" / sc.name, out / "runs" / sc.name
    entry: dict = {"scene": sc.name, "kind": sc.kind, "seed": sc.seed, "size": [width, height], "frames": frames}
    t0 = time.perf_counter()
    if not gt_complete(gt, trajectories):
        scene = generate_scene(sc.kind, sc.seed, width, height, frames)
        save_gt(scene, gt, trajectories, cfg.render.fps)
    entry["gt_seconds"] = round(time.perf_counter() - t0, 3)
    log(f"[bench] {sc.name}: GT {width}x{height}x{frames} in {entry['gt_seconds']:.0f} s; running the pipeline")
    argv = run_argv(gt, run, args)
    entry["command"] = "landscape4d " + " ".join(argv)
    t0 = time.perf_counter()
    rc = cli_main(argv)
    entry["pipeline_seconds"] = round(time.perf_counter() - t0, 3)
    entry["pipeline_rc"] = rc
    if rc != 0:
        log(f"[bench] {sc.name}: pipeline failed (exit {rc})")
        return entry
    t0 = time.perf_counter()
    entry["eval"] = evaluate_run(run, gt, run / "eval", EvalConfig(use_lpips=not args.no_lpips, device="cpu"))
    entry["eval_seconds"] = round(time.perf_counter() - t0, 3)
    log(f"[bench] {sc.name}: pipeline {entry['pipeline_seconds']:.0f} s, eval {entry['eval_seconds']:.0f} s")
    return entry


def _mean(values: list) -> float | None:
    v = [float(x) for x in values if isinstance(x, (int, float)) and math.isfinite(float(x))]
    return float(np.mean(v)) if v else None


def summarise(entries: list[dict]) -> dict:
    """Means over the scenes: stage seconds / peak MB, video metrics of ours and the baseline, motion metrics."""
    ok = [e for e in entries if "eval" in e]
    stages = {}
    for st in STAGES:
        rows = [e["eval"]["pipeline"]["stages"].get(st, {}) for e in ok]
        stages[st] = {"seconds": _mean([r.get("seconds") for r in rows]),
                      "peak_rss_mb": _mean([r.get("peak_rss_mb") for r in rows])}
    methods = {}
    for m in ("ours", "baseline"):
        keys = sorted({k for e in ok for k in e["eval"]["mean"].get(m, {})})
        methods[m] = {k: _mean([e["eval"]["mean"].get(m, {}).get(k) for e in ok]) for k in keys}
    mkeys = sorted({k for e in ok for k in e["eval"]["motion"]})
    motion = {k: _mean([e["eval"]["motion"].get(k) for e in ok]) for k in mkeys}
    pipe = sorted({k for e in ok for k in e["eval"]["pipeline"].get("metrics", {})})
    pipeline = {k: _mean([e["eval"]["pipeline"]["metrics"].get(k) for e in ok]) for k in pipe}
    return {"scenes_ok": len(ok), "scenes": len(entries), "stages": stages, "video": methods, "motion": motion,
            "pipeline_metrics": pipeline}


def _f(v, d: int = 3) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def bench_markdown(summary: dict, entries: list[dict], command: str) -> str:
    lines = [f"`{command}`", "", f"{summary['scenes_ok']} of {summary['scenes']} scenes evaluated: "
             + ", ".join(f"{e['scene']} ({e['size'][0]}x{e['size'][1]}, {e['frames']} frames)" for e in entries), "",
             "| stage | seconds (mean) | peak RSS MB (mean) |", "|---|---|---|"]
    for st, v in summary["stages"].items():
        lines.append(f"| {st} | {_f(v['seconds'], 1)} | {_f(v['peak_rss_mb'], 0)} |")
    lines.append(f"| eval (ours + baseline) | {_f(_mean([e.get('eval_seconds') for e in entries]), 1)} | - |")
    cols = [("PSNR", "psnr", 2), ("SSIM", "ssim", 3), ("LPIPS", "lpips", 3), ("M.PSNR", "m_psnr", 2),
            ("M.SSIM", "m_ssim", 3), ("M.LPIPS", "m_lpips", 3), ("seam SSIM", "loop_seam_ssim", 3),
            ("consec. SSIM", "loop_consecutive_ssim", 3), ("sharpness", "sharpness_gradient", 4)]
    lines += ["", "| method (mean over scenes and trajectories) | " + " | ".join(c[0] for c in cols) + " |",
              "|---|" + "---|" * len(cols)]
    for label, key in (("ours (4D Gaussians), this run", "ours"), ("2D-only baseline, this run", "baseline")):
        v = summary["video"].get(key, {})
        lines.append(f"| {label} | " + " | ".join(_f(v.get(k), d) for _, k, d in cols) + " |")
    for label, v in PAPER["table1"].items():
        lines.append(f"| {label}, paper Table I (real photos) | {v['psnr']:.2f} | {v['ssim']:.2f} | "
                     f"{v['lpips']:.2f} |" + " - |" * (len(cols) - 3))
    lines += ["", "| scene | GT s | pipeline s | eval s | ours PSNR / SSIM / LPIPS | baseline PSNR / SSIM / LPIPS |",
              "|---|---|---|---|---|---|"]
    for e in entries:
        mean = (e.get("eval") or {}).get("mean", {})
        cells = [" / ".join(_f(mean.get(m, {}).get(k), d) for k, d in (("psnr", 2), ("ssim", 3), ("lpips", 3)))
                 for m in ("ours", "baseline")]
        lines.append(f"| {e['scene']} | {_f(e.get('gt_seconds'), 0)} | {_f(e.get('pipeline_seconds'), 0)} | "
                     f"{_f(e.get('eval_seconds'), 0)} | {cells[0]} | {cells[1]} |")
    mo, pm = summary["motion"], summary["pipeline_metrics"]
    p2, p3 = PAPER["table2_multiview_epe"], PAPER["table3_flow_epe"]
    lines += ["", "| motion metric | this run | paper |", "|---|---|---|",
              f"| EPE of the 3D motion projected into each view vs that view's own 2D estimate, initial -> "
              f"refined (px/frame) | {_f(mo.get('views_epe_initial_3d'), 4)} -> "
              f"{_f(mo.get('views_epe_refined_3d'), 4)} | - |",
              f"| independent per-view estimates' multi-view consistency EPE (px/frame) | "
              f"{_f(mo.get('consistency_epe_before'), 4)} | {p2['before']} (Table II, before) |",
              f"| 3D motion error vs GT, relative to the GT speed, initial -> refined | "
              f"{_f(mo.get('motion3d_relative_epe_initial'), 3)} -> {_f(mo.get('motion3d_relative_epe_refined'), 3)}"
              f" | - |",
              f"| 3D motion angle error vs GT (degrees), initial -> refined | "
              f"{_f(mo.get('motion3d_angle_deg_initial'), 1)} -> {_f(mo.get('motion3d_angle_deg_refined'), 1)} | - |",
              f"| 4D loop at the input camera: seam step / mean step, mean-alpha range | "
              f"{_f(pm.get('loop_seam_ratio_input_view'), 2)}, {_f(pm.get('loop_alpha_range_input_view'), 4)} | - |",
              f"| 4D video flow EPE at the input view, with motion init (px/frame) | "
              f"{_f(pm.get('flow_epe_input_view'), 3)} | {p3['with_motion_init']} (Table III) |",
              f"| ... without motion init | {_f(pm.get('flow_epe_input_view_no_motion_init'), 3)} | "
              f"{p3['without_motion_init']} (Table III) |",
              f"| input-view motion EPE vs GT flow: from hints (px/frame) | {_f(mo.get('flow_epe_input_motion'), 3)} "
              f"| - |",
              f"| input-view motion EPE vs GT flow: refined 3D motion projected | "
              f"{_f(mo.get('flow_epe_refined_3d'), 3)} | - |",
              f"| GT mean speed in the mask (px/frame) | {_f(mo.get('gt_mean_speed_px_per_frame'), 3)} | - |"]
    if any(f"train_4d_seconds_{m}" in pm for m in ("two_stage", "single_stage")):  # runs made with --ablations
        p4 = PAPER["table4"]
        lines += ["", "| Table IV: seconds (mean) | two-stage | single stage (every view) | paper |",
                  "|---|---|---|---|"]
        for key, label in (("video_generation", "video generation"), ("train_4d", "4D training")):
            lines.append(f"| {label} | {_f(pm.get(f'{key}_seconds_two_stage'), 1)} | "
                         f"{_f(pm.get(f'{key}_seconds_single_stage'), 1)} | {p4[key]} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="landscape4d bench pipeline",
                                 description="synthetic scenes -> pipeline -> eval (ours and the 2D baseline)")
    ap.add_argument("--scenes", type=int, help="number of scenes, seeds 0 .. N-1 (default 3)")
    ap.add_argument("--seeds", help="comma-separated seeds, one scene each (e.g. 5,17,42); sets the count")
    ap.add_argument("--preset", default="preview", choices=("preview", "full"))
    ap.add_argument("--kinds", default="river,waterfall,lake", help="comma-separated scene kinds, cycled")
    ap.add_argument("--size", type=int, help="working size (long side); the scenes are generated at it")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--oracle-depth", action="store_true", help="give the pipeline the GT depth (depth file)")
    ap.add_argument("--no-lpips", action="store_true")
    ap.add_argument("-o", "--out", default="bench_pipeline", help="output folder (default bench_pipeline)")
    return ap


def main(argv: list[str] | None = None) -> int:
    from .scenes import KINDS

    args = build_parser().parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        print(f"landscape4d: error: --kinds must name {', '.join(KINDS)}", file=sys.stderr)
        return 2
    try:
        plan = scene_plan(0, kinds, parse_seeds(args.seeds, args.scenes))
        twice = sorted({sc.name for sc in plan if [p.name for p in plan].count(sc.name) > 1})
        if twice:
            raise ValueError(f"--seeds gives scene {', '.join(twice)} twice (same kind and seed)")
        cfg = apply_overrides(preset(args.preset), list(args.set))
    except ValueError as e:
        print(f"landscape4d: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if cfg.threads > 0:  # the ground-truth ray caster and eval too, not only the runs (see RunConfig.threads)
        import torch

        torch.set_num_threads(cfg.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "landscape4d bench pipeline " + " ".join(argv if argv is not None else sys.argv[1:])
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    entries = []
    t0 = time.perf_counter()
    for sc in plan:
        entries.append(bench_one(sc, args, out, log))
        summary = summarise(entries)
        write_json(out / "bench.json", clean({"command": command, "oracle_depth": args.oracle_depth,
                                              "summary": summary, "paper": PAPER, "scenes": entries,
                                              "total_seconds": round(time.perf_counter() - t0, 3)}))
        (out / "bench.md").write_text(bench_markdown(summary, entries, command))
    print(bench_markdown(summarise(entries), entries, command))
    return 0 if all(e.get("pipeline_rc") == 0 for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
