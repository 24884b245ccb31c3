"""`landscape4d batch FOLDER -o OUT`: one pipeline run per photo of a folder, in parallel through Ray.

A photo is any .jpg/.jpeg/.png/.webp file in FOLDER (not in its sub-folders) whose name does not end in `_mask.png`.
Beside the photo `NAME.jpg`:
  NAME.json          labelme file (3D-Cinemagraphy: motion polygons and hintK lines): the mask and hints
  NAME_mask.png      mask PNG, used when there is no NAME.json
  NAME_hints.json    hints JSON (optional)
Each photo runs `landscape4d run` (or the stage named by --stage) into its own run folder OUT/NAME, with its log in
OUT/NAME/batch.log. A failing photo does not stop the others. At the end a table (photo, status, seconds, error,
run folder) is printed and written to OUT/batch.json and OUT/batch.md. Rerunning the batch resumes every photo
from its last finished stage.

Where it runs (--ray):
  (default)   a local Ray instance on this machine (also: --ray local): one CPU per task (--cpus-per-task, which
              is also the task's --threads), all the CPUs this process may use,
              no dashboard, bound to the loopback address only
  ADDRESS     connect to a Ray cluster (`ray://host:10001` or `host:6379`); landscape4d must be installed there
  none        one photo after another in this process, without Ray
Tasks ask for one GPU each when the Ray cluster has GPUs (override with --gpus-per-task; 0 runs on CPUs only).

Exit code: 0 when every photo succeeded, 1 when at least one failed (the table says which), 2 for a usage error
(no such folder, no photo in it, Ray missing or unreachable), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import one_line

PHOTO_EXTS = (".jpg", ".jpeg", ".png", ".webp")
LOG_NAME = "batch.log"
ERROR_PREFIX = "landscape4d: error:"


@dataclass
class BatchTask:
    """One photo of the batch and what goes with it."""

    stem: str
    photo: Path
    mask: Path | None
    hints: Path | None
    run_dir: Path
    problem: str | None = None  # found while listing the folder: the task fails without running


@dataclass
class TaskResult:
    photo: str
    status: str  # ok | failed | interrupted
    seconds: float
    error: str | None
    run_dir: str
    log: str | None = None
    exit_code: int | None = None


@dataclass
class BatchOptions:
    stage: str = "render"
    preset: str | None = None
    sets: list[str] = field(default_factory=list)
    ray: str | None = None  # None: local Ray instance; "none": in-process, sequential; else a cluster address
    cpus_per_task: float = 1.0
    gpus_per_task: float | None = None  # None: 1 when the cluster has GPUs, else 0


# ---------------------------------------------------------------------------------------------------- the folder


def discover_tasks(folder: str | Path, out: str | Path) -> list[BatchTask]:
    """The photos of `folder` (sorted by name) with their mask, hints and run folder OUT/<stem>."""
    folder, out = Path(folder).resolve(), Path(out).resolve()  # absolute: Ray workers run elsewhere
    photos = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                    and p.suffix.lower() in PHOTO_EXTS and not p.stem.endswith("_mask"))
    by_stem: dict[str, list[Path]] = {}
    for p in photos:
        by_stem.setdefault(p.stem, []).append(p)
    tasks = []
    for p in photos:
        labelme, mask_png = folder / f"{p.stem}.json", folder / f"{p.stem}_mask.png"
        hints = folder / f"{p.stem}_hints.json"
        mask = labelme if labelme.is_file() else mask_png if mask_png.is_file() else None
        task = BatchTask(p.stem, p, mask, hints if hints.is_file() else None, out / p.stem)
        if len(by_stem[p.stem]) > 1:
            names = ", ".join(q.name for q in by_stem[p.stem])
            task.problem = f"{p}: photos {names} share the name {p.stem!r} (one run folder each): rename one"
        tasks.append(task)
    return tasks


def task_argv(task: BatchTask, opts: BatchOptions) -> list[str]:
    """The `landscape4d` command line of one photo."""
    argv = ["run" if opts.stage == "render" else opts.stage, str(task.photo), "-o", str(task.run_dir)]
    if task.mask is not None:
        argv += ["--mask", str(task.mask)]
    if task.hints is not None:
        argv += ["--hints", str(task.hints)]
    if opts.preset:
        argv += ["--preset", opts.preset]
    for s in opts.sets:
        argv += ["--set", s]
    return argv


# ------------------------------------------------------------------------------------------------ one photo


def _error_line(text: str) -> str | None:
    lines = [ln[len(ERROR_PREFIX):].strip() for ln in text.splitlines() if ln.startswith(ERROR_PREFIX)]
    return lines[-1] if lines else None


def run_task(photo: str, run_dir: str, argv: list[str], threads: int | None = None) -> dict:
    """Run one photo's command in this process, its output streamed to RUN/batch.log. Never raises: returns a
    TaskResult as a dict (status ok or failed, seconds, the error line). threads: its CPU threads (--threads),
    e.g. a Ray task's CPUs; default: the cores this process may use."""
    from .cli import main

    run = Path(run_dir)
    log_path: Path | None = run / LOG_NAME
    t0 = time.perf_counter()
    code: int | None = None
    error: str | None = None
    saved_argv = sys.argv
    if threads:
        argv = [*argv, "--threads", str(max(1, int(threads)))]
    try:
        run.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w", buffering=1) as log:  # line-buffered: `tail -f` shows the progress
            log.write(f"$ landscape4d {' '.join(argv)}\n")
            sys.argv = ["landscape4d", *argv]
            with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
                try:
                    code = main(argv)
                except SystemExit as e:  # argparse
                    code = e.code if isinstance(e.code, int) else 2
                except Exception as e:  # a bug in a stage: recorded, the batch goes on
                    traceback.print_exc(file=log)
                    error, code = one_line(e, with_type=True), 1
    except OSError as e:  # the run folder or its log cannot be written
        error, code, log_path = f"{run}: cannot write the run folder ({e.strerror or e})", 2, None
    finally:
        sys.argv = saved_argv
    if code != 0 and error is None:
        text = log_path.read_text(errors="replace") if log_path is not None else ""
        error = _error_line(text) or f"exit code {code}"
    return asdict(TaskResult(photo, "ok" if code == 0 else "failed", round(time.perf_counter() - t0, 3), error,
                             str(run), None if log_path is None else str(log_path), code))


def _failed(task: BatchTask, error: str, status: str = "failed") -> dict:
    return asdict(TaskResult(str(task.photo), status, 0.0, error, str(task.run_dir)))


# --------------------------------------------------------------------------------------------- the runners


def run_sequential(tasks: list[BatchTask], opts: BatchOptions, log) -> list[dict]:
    results = []
    for i, t in enumerate(tasks):
        if t.problem:
            results.append(_failed(t, t.problem))
        else:
            log(f"[batch] {t.stem}: running ({i + 1}/{len(tasks)})")
            try:
                results.append(run_task(str(t.photo), str(t.run_dir), task_argv(t, opts)))
            except KeyboardInterrupt:
                results.append(_failed(t, "interrupted", "interrupted"))
            if results[-1]["exit_code"] == 130 or results[-1]["status"] == "interrupted":  # Ctrl-C inside the CLI
                results[-1].update(status="interrupted", error="interrupted")
                results += [_failed(u, "interrupted", "interrupted") for u in tasks[i + 1:]]
                raise _Interrupted(results)
        _log_result(results[-1], t, log)
    return results


class _Interrupted(Exception):
    def __init__(self, results: list[dict]):
        super().__init__("interrupted")
        self.results = results


class BatchUsageError(Exception):
    """Bad use of `batch` (exit code 2)."""


def _log_result(r: dict, t: BatchTask, log) -> None:
    if r["status"] == "ok":
        log(f"[batch] {t.stem}: ok in {r['seconds']:.1f} s")
    else:
        log(f"[batch] {t.stem}: {r['status']}: {r['error']}")


def _ray_module(local: bool):
    """Import Ray; a local instance is kept on the loopback address (set before Ray reads its constants)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports sent anywhere
    if local:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # node address = 127.0.0.1 (inherited by Ray's processes)
    try:
        import ray
    except ImportError:
        raise BatchUsageError("Ray is not installed: pip install 'ray==2.60.0', or use --ray none") from None
    if local:
        try:  # Ray imported earlier in this process read the variable already
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False
        except (ImportError, AttributeError):
            pass
    return ray


def _start_ray(opts: BatchOptions):
    import logging

    local = opts.ray is None
    ray = _ray_module(local)
    try:
        if local:
            import torch

            from .device import available_cores

            ncpu = available_cores()
            ray.init(num_cpus=ncpu, num_gpus=torch.cuda.device_count() if torch.cuda.is_available() else 0,
                     include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                     object_store_memory=128 * 2**20)
        else:
            ray.init(address=opts.ray, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as e:
        where = opts.ray or "a local instance"
        raise BatchUsageError(f"cannot start or reach Ray at {where}: {one_line(e, with_type=True)}") from None
    return ray


def gpus_per_task(opts: BatchOptions, cluster_resources: dict) -> float:
    """GPUs each task asks for: --gpus-per-task, else one when the cluster has a GPU (CUDA), else none."""
    if opts.gpus_per_task is not None:
        return float(opts.gpus_per_task)
    return 1.0 if cluster_resources.get("GPU", 0) >= 1 else 0.0


def _ray_entry(photo: str, run_dir: str, argv: list[str], threads: int) -> dict:
    return run_task(photo, run_dir, argv, threads)


def run_ray(tasks: list[BatchTask], opts: BatchOptions, log) -> tuple[list[dict], dict]:
    ray = _start_ray(opts)
    try:
        res = ray.cluster_resources()
        gpus = gpus_per_task(opts, res)
        info = {"ray": opts.ray or "local", "ray_version": ray.__version__, "cluster_cpus": res.get("CPU", 0),
                "cluster_gpus": res.get("GPU", 0), "cpus_per_task": opts.cpus_per_task, "gpus_per_task": gpus}
        log(f"[batch] Ray {info['ray']}: {info['cluster_cpus']:g} CPUs, {info['cluster_gpus']:g} GPUs; each task "
            f"{opts.cpus_per_task:g} CPU, {gpus:g} GPU")
        # max_calls=1: every photo in a fresh worker process (its memory is given back when it ends)
        remote = ray.remote(num_cpus=opts.cpus_per_task, num_gpus=gpus, max_calls=1, max_retries=0)(_ray_entry)
        threads = max(1, int(round(opts.cpus_per_task)))
        results: dict[int, dict] = {}
        refs = {}
        for i, t in enumerate(tasks):
            if t.problem:
                results[i] = _failed(t, t.problem)
                _log_result(results[i], t, log)
            else:
                refs[remote.remote(str(t.photo), str(t.run_dir), task_argv(t, opts), threads)] = i  # --threads
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    i = refs[ref]
                    try:
                        results[i] = ray.get(ref)
                    except Exception as e:  # the worker died (killed, out of memory) or Ray failed
                        results[i] = _failed(tasks[i], one_line(e, with_type=True))
                    _log_result(results[i], tasks[i], log)
        except KeyboardInterrupt:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            for ref in pending:
                results[refs[ref]] = _failed(tasks[refs[ref]], "interrupted", "interrupted")
            raise _Interrupted([results[i] for i in sorted(results)]) from None
        return [results[i] for i in range(len(tasks))], info
    finally:
        if opts.ray is None:
            ray.shutdown()


# ------------------------------------------------------------------------------------------------- summary


def format_table(results: list[dict]) -> str:
    """A Markdown table: photo, status, seconds, error, run folder."""
    def cell(v) -> str:
        return str(v if v is not None else "").replace("|", "\\|").replace("\n", " ")

    rows = ["| photo | status | seconds | error | run folder |", "| --- | --- | ---: | --- | --- |"]
    for r in results:
        rows.append(f"| {cell(Path(r['photo']).name)} | {cell(r['status'])} | {r['seconds']:.1f} | "
                    f"{cell(r['error'])} | {cell(r['run_dir'])} |")
    return "\n".join(rows)


def write_summary(out: Path, results: list[dict], meta: dict) -> None:
    from .io.atomic import atomic_path, write_json

    ok = sum(r["status"] == "ok" for r in results)
    summary = {**meta, "photos": len(results), "succeeded": ok, "failed": len(results) - ok, "tasks": results}
    write_json(out / "batch.json", summary)
    text = (f"# landscape4d batch\n\nFolder `{meta['folder']}`, stage `{meta['stage']}`, {ok} of {len(results)} "
            f"photos succeeded in {meta['seconds']:.1f} s ({meta.get('ray', 'none')}).\n\n{format_table(results)}\n")
    with atomic_path(out / "batch.md") as tmp:
        tmp.write_text(text)


def run_batch(folder: str | Path, out: str | Path, opts: BatchOptions, log=None) -> tuple[int, list[dict]]:
    """Run every photo of `folder`; writes OUT/batch.json and OUT/batch.md. Returns (exit code, results).
    Raises BatchUsageError (exit code 2) for a missing folder, no photos, or Ray missing/unreachable."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise BatchUsageError(f"{folder}: not a folder")
    tasks = discover_tasks(folder, out)
    if not tasks:
        raise BatchUsageError(f"{folder}: no photos (.jpg, .jpeg, .png, .webp) in this folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BatchUsageError(f"{out}: cannot create the output folder ({e.strerror or e})") from None
    t0 = time.perf_counter()
    meta: dict = {"folder": str(folder.resolve()), "out": str(out.resolve()), "stage": opts.stage,
                  "preset": opts.preset, "set": list(opts.sets)}
    code = 0
    try:
        if opts.ray == "none":
            meta["ray"] = "none"
            results = run_sequential(tasks, opts, log)
        else:
            results, info = run_ray(tasks, opts, log)
            meta.update(info)
    except _Interrupted as e:
        results, code = e.results, 130
        results += [_failed(t, "interrupted", "interrupted") for t in tasks[len(results):]]
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    write_summary(out, results, meta)
    print(format_table(results), flush=True)
    ok = sum(r["status"] == "ok" for r in results)
    log(f"[batch] {ok} of {len(results)} photos succeeded in {meta['seconds']:.1f} s; summary in "
        f"{out / 'batch.md'}")
    if code == 0:
        code = 0 if ok == len(results) else 1
    return code, results


# --------------------------------------------------------------------------------------------- command line


def add_parsers(subparsers) -> argparse.ArgumentParser:
    """Add the `batch` sub-command to the CLI's sub-parsers."""
    from .config import PRESETS
    from .pipeline import STAGE_NAMES

    p = subparsers.add_parser(
        "batch", help="run every photo of a folder (in parallel through Ray)",
        description="Run the pipeline on every photo of FOLDER (NAME.jpg with NAME.json labelme or NAME_mask.png, "
                    "and optional NAME_hints.json), each into OUT/NAME.",
        epilog="Exit code: 0 all photos succeeded, 1 some failed (see OUT/batch.md), 2 usage error, "
               "130 interrupted.")
    p.add_argument("folder", help="folder of photos")
    p.add_argument("-o", "--out", required=True, help="output folder: one run folder per photo, batch.json/.md")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="Ray cluster address; default: a local Ray instance; 'none': sequential, without Ray")
    p.add_argument("--preset", choices=PRESETS, help="preview (CPU minutes, default) or full (GPU quality)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config value for every photo (repeatable)")
    p.add_argument("--stage", choices=STAGE_NAMES, default="render", help="stop after this stage (default: all)")
    p.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs per photo (default 1)")
    p.add_argument("--gpus-per-task", type=float,
                   help="GPUs per photo (default: 1 when the Ray cluster has GPUs, else 0)")
    return p


def dispatch(args: argparse.Namespace) -> int | None:
    """Run `batch` when it is the command (returns its exit code), else None."""
    if getattr(args, "command", None) != "batch":
        return None
    from .config import apply_overrides, preset

    try:
        apply_overrides(preset(args.preset or "preview"), list(args.set))  # bad --set: one error, not N
        if args.cpus_per_task <= 0 or (args.gpus_per_task is not None and args.gpus_per_task < 0):
            raise ValueError("--cpus-per-task must be > 0 and --gpus-per-task >= 0")
        ray = None if args.ray in (None, "", "local") else args.ray
        opts = BatchOptions(stage=args.stage, preset=args.preset, sets=list(args.set), ray=ray,
                            cpus_per_task=args.cpus_per_task, gpus_per_task=args.gpus_per_task)
        code, _ = run_batch(args.folder, args.out, opts)
    except (BatchUsageError, ValueError) as e:
        print(f"landscape4d: error: {one_line(e, 1000)}", file=sys.stderr)
        return 2
    return code


def main(argv: list[str] | None = None) -> int:
    """`python -m landscape4d.batch FOLDER -o OUT ...` (the same as `landscape4d batch`)."""
    ap = argparse.ArgumentParser(prog="landscape4d")
    sub = ap.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = ap.parse_args(["batch", *(sys.argv[1:] if argv is None else argv)])
    code = dispatch(args)
    return 2 if code is None else code


if __name__ == "__main__":
    sys.exit(main())
