"""The `landscape4d` command line: one entry point for every stage and tool."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

from . import __version__
from .config import (ABLATIONS_OFF, DEPTH_BACKENDS, DEVICES, PRESETS, TRAJECTORIES, RunConfig, apply_overrides,
                     config_from_dict, preset)
from .errors import InputError, StageError, StageFailed, one_line
from .pipeline import STAGE_NAMES

MOTION_STAGES = {"motion", "animate", "dynamics", "render", "run"}
# benchmark name -> script in the repository's benchmarks/ folder, or a module of the package
BENCHMARKS = {"views": "bench_views.py", "rasterizer": "bench_rasterizer.py", "animate": "bench_animate.py",
              "motion": "landscape4d.motion.bench", "pipeline": "landscape4d.evaluation.bench",
              "depth": "landscape4d.depth.bench", "static": "landscape4d.evaluation.static_bench"}


def _stage_parser(sub, name: str, help_: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_)
    p.add_argument("photo", nargs="?", help="the landscape photo (jpg/png/webp); omit to reuse RUN's input")
    p.add_argument("--mask", help="motion mask PNG or labelme JSON (3D-Cinemagraphy format; `landscape4d annotate` "
                                  "draws one); omitted: a sky/water mask is proposed and saved; `none`: refuse")
    p.add_argument("--hints", help="motion hints JSON: {hints: [{start, end}], direction, speed}")
    p.add_argument("-o", "--out", required=True, help="run folder")
    p.add_argument("--preset", choices=PRESETS, help="preview (512 px, CPU minutes, default) or full (1024 px); on a "
                                                     "rerun: start again from the preset (drops earlier --set, "
                                                     "ablations)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config value, e.g. --set gaussians.iters=500 (repeatable); kept for reruns")
    p.add_argument("--size", type=int, help="working size: long side in pixels")
    p.add_argument("--device", choices=DEVICES, help="auto (CUDA when present, default), cpu or cuda; this run only")
    p.add_argument("--threads", type=int, help="CPU threads (default: the cores this process may use); this run only")
    p.add_argument("--depth-backend", choices=DEPTH_BACKENDS)
    p.add_argument("--depth-model", help="Depth Anything V2: hub id or local model directory")
    p.add_argument("--depth-file", help="depth/disparity map (.npy or 16-bit PNG) for --depth-backend file")
    p.add_argument("--fov", type=float, help="horizontal field of view in degrees (default 60 or EXIF)")
    p.add_argument("--num-views", type=int, help="number of training views")
    p.add_argument("--direction", help="dx,dy: one motion direction for the whole mask (image pixels)")
    p.add_argument("--speed", type=float, help="pixels per frame for --direction (or to rescale hints)")
    p.add_argument("--frames", type=int, help="frames in one loop (default 60)")
    p.add_argument("--fps", type=int, help="frames per second of the videos (default 30)")
    p.add_argument("--no-motion-init", action="store_true", help="ablation: 4D deformation learnt from zero")
    p.add_argument("--all-views", action="store_true",
                   help="ablation: single-stage 4D training on every view's video (no stage-1 fit)")
    p.add_argument("--ablations", action="store_true",
                   help="also train the no-motion-init and single-stage variants; report.json gets the paper's "
                        "Table III (flow EPE) and Table IV (stage times)")
    p.add_argument("--no-ablations", action="store_true",
                   help="turn the ablation flags of earlier runs of this folder off again")
    p.add_argument("--trajectory", action="append", choices=TRAJECTORIES, help="render only these (repeatable)")
    p.add_argument("--custom-path", help="JSON list of 4x4 camera-to-world poses to render as 'custom'")
    p.add_argument("--force", action="store_true", help="rerun the named stage even if unchanged")
    if name == "render":
        p.add_argument("--scene", help="render this scene4d.safetensors file alone (no run folder needed)")
    return p


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="landscape4d", description="One landscape photo -> a looping 4D Gaussian scene")
    ap.add_argument("--version", action="version", version=f"landscape4d {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    _stage_parser(sub, "run", "run every stage end to end")
    for name, help_ in [("depth", "depth map and point cloud"), ("views", "multi-view RGB/mask renders"),
                        ("motion", "2D motion per view and refined 3D motion"),
                        ("gaussians", "fit 3D Gaussians to all views"),
                        ("animate", "looping videos of a few sampled views"),
                        ("dynamics", "train the 4D Gaussians"), ("render", "dynamic videos along trajectories")]:
        _stage_parser(sub, name, help_)
    b = sub.add_parser("bench", help="benchmarks that print numbers: " + ", ".join(BENCHMARKS),
                       description="Run a benchmark; arguments after its name go to it (e.g. bench views --size 512)")
    b.add_argument("name", choices=sorted(BENCHMARKS))
    b.add_argument("args", nargs=argparse.REMAINDER)
    from . import batch
    from .evaluation.commands import add_parsers as add_eval_parsers
    from .viewer.commands import add_parsers as add_viewer_parsers

    add_viewer_parsers(sub)
    add_eval_parsers(sub)
    batch.add_parsers(sub)
    d = sub.add_parser("demo", help="make the project's own demo input and run the pipeline on it")
    d.add_argument("-o", "--out", default="demo_run", help="run folder (default demo_run)")
    d.add_argument("--preset", choices=PRESETS, default="preview")
    d.add_argument("--stage", choices=STAGE_NAMES, default="render", help="stop after this stage")
    d.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    return ap


def load_saved_config(path: Path) -> RunConfig:
    """RUN/config.json as the starting point of a rerun. `device` and `threads` are not taken from it: they say how
    to compute on this machine, for this command only."""
    try:
        cfg = config_from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise InputError(path, f"not a readable run config ({one_line(e, 120, with_type=True)}); give --preset to "
                               "start from a preset instead") from None
    cfg.device, cfg.threads = RunConfig.device, RunConfig.threads
    return cfg


def resolve_config(args: argparse.Namespace, run_dir: Path) -> RunConfig:
    """The config of this command: a new photo or --preset starts from the preset; a rerun from RUN/config.json
    (earlier --set and ablation flags included). Flags and --set apply on top."""
    saved = run_dir / "config.json"
    if args.photo is None and args.preset is None and saved.exists():
        cfg = load_saved_config(saved)
    else:
        cfg = preset(args.preset or "preview")
    flags = {"size": args.size, "device": args.device, "threads": args.threads, "depth.backend": args.depth_backend,
             "depth.model": args.depth_model, "depth.file": args.depth_file, "depth.fov_deg": args.fov,
             "views.num_views": args.num_views, "motion.speed": args.speed, "animate.num_frames": args.frames,
             "animate.fps": args.fps, "render.fps": args.fps, "render.custom": args.custom_path}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None]
    if args.direction is not None:
        overrides.append(f"motion.direction=[{args.direction}]")
    if args.no_ablations:
        if args.no_motion_init or args.all_views or args.ablations:
            raise ValueError("--no-ablations turns the ablation flags off: give it without --no-motion-init, "
                             "--all-views or --ablations")
        overrides += list(ABLATIONS_OFF)
    if args.no_motion_init:
        overrides.append("dynamics.motion_init=false")
    if args.all_views:  # the single-stage ablation (the gaussians stage then skips its fit: see stages/gaussians.py)
        overrides += ["dynamics.all_views=true", "animate.all_views=true"]
    if args.ablations:
        overrides.append("dynamics.ablations=true")
    if args.trajectory:
        overrides.append(f"render.trajectories={','.join(args.trajectory)}")
    return apply_overrides(cfg, overrides + list(args.set))


def error_exit(e: BaseException | str, code: int) -> int:
    """Print the one line of an error; return its exit code."""
    print(f"landscape4d: error: {one_line(e, 1000)}", file=sys.stderr)
    return code


def os_error_text(e: OSError, path: Path) -> str:
    return f"{e.filename or path}: {e.strerror or one_line(e)}"


def cmd_render_scene(args: argparse.Namespace) -> int:
    """`render --scene FILE -o DIR`: videos from the 4D scene file alone."""
    import time

    from .dynamics.scene_file import load_scene4d
    from .gaussians.rasterize import resolve_backend
    from .io.atomic import write_json
    from .pipeline import PeakMemory, check_environment, resolve_device, versions
    from .render import render_paths

    out = Path(args.out)
    try:
        cfg = resolve_config(args, out)
        check_environment(cfg, ["render"])
        device = resolve_device(cfg.device)
        scene, header = load_scene4d(args.scene, device)
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with PeakMemory() as mem:
            info = render_paths(scene, header, cfg.render, out, resolve_backend(cfg.gaussians.backend, device))
    except (InputError, ValueError, StageError) as e:
        return error_exit(e, 2)
    except OSError as e:
        return error_exit(os_error_text(e, out), 2)
    write_json(out / "report.json", {"command": sys.argv, "scene": str(args.scene), "config": cfg.to_dict(),
                                     "versions": versions(), "render": {"seconds": round(time.perf_counter() - t0, 3),
                                                                        **mem.report(), "paths": info}})
    print(f"[landscape4d] render: videos in {out}", file=sys.stderr)
    return 0


def prepare_stage_command(args: argparse.Namespace, run_dir: Path, target: str):
    """Everything a stage command can get wrong, checked before anything is written: the config, the config against
    this machine and each stage's own check, the photo, mask and hints. -> (config, the prepared input or None)."""
    from .inputs import prepare_input
    from .pipeline import preflight

    cfg = resolve_config(args, run_dir)
    inp = None
    if args.photo is not None:
        preflight(cfg, target, force=args.force)
        inp = prepare_input(args.photo, args.mask, args.hints, cfg, args.command in MOTION_STAGES)
    elif not (run_dir / "input" / "image.png").exists():
        raise InputError(run_dir, "no photo given and this run folder has no input yet")
    else:
        preflight(cfg, target, run_dir, force=args.force)
    return cfg, inp


def cmd_stage(args: argparse.Namespace) -> int:
    """A stage command (or `run`): exit 0; 2 for bad input, found before anything is written (no folder made);
    1 when a stage fails (one line naming RUN/logs/error-<stage>.txt; the finished stages are kept)."""
    from .inputs import write_input
    from .io.atomic import write_json
    from .pipeline import Pipeline
    from .runlock import RunLock

    run_dir = Path(args.out)
    target = "render" if args.command == "run" else args.command
    try:
        cfg, inp = prepare_stage_command(args, run_dir, target)
    except (InputError, ValueError) as e:
        return error_exit(e, 2)
    created = not run_dir.exists()
    try:
        _check_writable(run_dir)
        with RunLock(run_dir):
            if inp is not None:
                write_input(run_dir, inp)
                if inp.meta.get("note"):
                    print(f"[landscape4d] note: {inp.meta['note']}", file=sys.stderr)
            write_json(run_dir / "config.json", cfg.to_dict())
            Pipeline(run_dir, cfg).run(target, force=args.force)
    except (InputError, ValueError, StageFailed, StageError, OSError) as e:
        from .errors import RunInUseError

        if created and not isinstance(e, RunInUseError):
            remove_if_nothing_finished(run_dir)
        if isinstance(e, OSError):
            return error_exit(os_error_text(e, run_dir), 2)
        return error_exit(e, getattr(e, "exit_code", 2))
    print_summary(run_dir, target)
    return 0


def remove_if_nothing_finished(run_dir: Path) -> None:
    """Remove a run folder this command made when no stage finished in it and no error log was written there."""
    if not (run_dir / "logs").exists() and not any((run_dir / s / ".stage.json").exists() for s in STAGE_NAMES):
        shutil.rmtree(run_dir, ignore_errors=True)


def print_summary(run_dir: Path, target: str) -> None:
    """Where the results are; after `run` (or `render`), the videos, the scene file and the viewer command."""
    if target != "render":
        print(f"[landscape4d] {target}: finished; outputs in {run_dir}", file=sys.stderr)
        return
    videos = sorted(p.name for p in (run_dir / "render").glob("*.mp4"))
    print(f"landscape4d: finished; everything is in {run_dir}\n"
          f"  videos:  {run_dir / 'render'}/ ({', '.join(videos) or 'none'})\n"
          f"  scene:   {run_dir / 'dynamics' / 'scene4d.safetensors'}\n"
          f"  look at it in the browser:  landscape4d view {shlex.quote(str(run_dir))}", flush=True)


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise InputError(run_dir, f"cannot write the run folder ({e.strerror or e})") from None


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import make_demo_input

    out = Path(args.out)
    inputs = make_demo_input(out / "demo_input")
    argv = ["run" if args.stage == "render" else args.stage, str(inputs["image"]), "--mask", str(inputs["mask"]),
            "--hints", str(inputs["hints"]), "-o", str(out), "--preset", args.preset]
    for s in args.set:
        argv += ["--set", s]
    return main(argv)


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib
    import importlib.util

    target = BENCHMARKS[args.name]
    if target.endswith(".py"):
        path = Path(__file__).resolve().parents[2] / "benchmarks" / target
        if not path.exists():
            print(f"landscape4d: error: {path}: benchmark script not found (benchmarks/ ships with the source "
                  "checkout; install with `pip install -e .`)", file=sys.stderr)
            return 2
        spec = importlib.util.spec_from_file_location(f"landscape4d_bench_{args.name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return int(module.main(args.args) or 0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from . import batch
        from .evaluation.commands import dispatch as eval_dispatch
        from .viewer.commands import dispatch as viewer_dispatch

        for dispatch in (viewer_dispatch, eval_dispatch, batch.dispatch):
            rc = dispatch(args)
            if rc is not None:
                return rc
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "render" and args.scene:
            return cmd_render_scene(args)
        return cmd_stage(args)
    except KeyboardInterrupt:
        print("landscape4d: interrupted; the next run resumes from the last finished stage", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
