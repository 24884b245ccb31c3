"""Stage order, the run folder, caching and report.json.

Run folder:
  input/      image.png (working size), mask.png, hints.json, input.json   (validated copy of the user's input)
  <stage>/    each stage's outputs plus .stage.json {key, seconds, ...}
  state.json  what every stage is doing (running / done / failed)
  report.json config, versions, per-stage seconds and peak memory, metrics

  logs/       error-<stage>.txt: the traceback of a stage that failed (removed when the stage next succeeds)
  .lock       held by the one process working in the folder (runlock.py)

Before any stage runs, `preflight` checks the config against this machine (CUDA, gsplat) and calls `check(cfg)` of
every stage module that defines one: an impossible combination is an input error and nothing is written.
A stage runs into a temporary sibling folder that is renamed into place only when it succeeds, so an interrupted
or failed stage never leaves half-written outputs. It sees the config through a ConfigView that holds only what
its Stage entry declares (`reads`), and its cache key hashes exactly those values (with the working size and seed),
the input, the package's code and the keys of the stages it reads: a stage is skipped when its key is unchanged.
Earlier stages' files come through `ctx.artifacts` (artifacts.RunArtifacts), which names a damaged file.
A stage that raises ends the command with StageFailed: one line, its traceback in RUN/logs/error-<stage>.txt,
the stages finished before kept unchanged (a full disk or an unwritable folder is said as such, naming the file).
A killed run leaves its temporary folder (`.<stage>.tmp-<pid>`) and a "running" state behind: the next run removes
the folders of processes that are gone and records those stages as "interrupted" before it resumes.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib
import json
import os
import platform
import re
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import __version__
from .artifacts import RunArtifacts, finished_stage
from .config import ConfigView, RunConfig, declared_values
from .device import resolve_device, resolve_threads
from .errors import CorruptArtifactError, InputError, StageError, StageFailed, one_line
from .io.atomic import atomic_path, swap_dir, write_json
from .runlock import pid_alive

__all__ = ["STAGES", "STAGE_NAMES", "Pipeline", "StageContext", "preflight", "resolve_device", "pid_alive"]


@dataclass(frozen=True)
class Stage:
    name: str
    deps: tuple[str, ...]
    reads: tuple[str, ...]  # every config value it reads: sections ("animate") or single ones ("gaussians.backend")
    runner: str  # "module:function", imported lazily; the module may define `check(cfg)` (see preflight)
    # "module:function" of what the stage's result depends on besides config and input, on this machine (e.g. which
    # model depth.backend=auto resolves to): f(cfg) -> JSON value, part of the cache key
    environment: str | None = None

    @property
    def module(self) -> str:
        return self.runner.split(":")[0]


STAGES: tuple[Stage, ...] = (
    Stage("depth", (), ("depth",), "landscape4d.stages.depth:run", "landscape4d.depth.auto:cache_key"),
    Stage("views", ("depth",), ("views",), "landscape4d.stages.views:run"),
    Stage("motion", ("depth", "views"), ("motion",), "landscape4d.stages.motion:run"),
    # dynamics.all_views: the single-stage ablation has no stage-1 fit
    Stage("gaussians", ("depth", "views"), ("gaussians", "dynamics.all_views"), "landscape4d.stages.gaussians:run"),
    Stage("animate", ("depth", "views", "motion"), ("animate",), "landscape4d.stages.animate:run"),
    # animate: loop length, fps and (ablations) animating views itself; gaussians: backend, stage-1 LRs, initial model
    Stage("dynamics", ("views", "motion", "gaussians", "animate"), ("dynamics", "animate", "gaussians"),
          "landscape4d.stages.dynamics:run"),
    Stage("render", ("depth", "dynamics"), ("render", "gaussians.backend"), "landscape4d.stages.render:run"),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(name)


def stages_up_to(target: str) -> list[Stage]:
    """The stages `target` needs, in pipeline order."""
    needed: set[str] = set()

    def visit(n: str) -> None:
        if n not in needed:
            needed.add(n)
            for d in stage(n).deps:
                visit(d)

    visit(target)
    return [s for s in STAGES if s.name in needed]


def downstream(names: Iterable[str]) -> set[str]:
    """The stages named and every stage that reads their outputs, directly or not."""
    out = set(names)
    for s in STAGES:  # pipeline order: a stage's deps come before it
        if out & set(s.deps):
            out.add(s.name)
    return out


class PeakMemory:
    """Peak resident memory of this process (and CUDA allocations) while a block runs."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        import torch

        self.peak_rss = self.rss()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_rss = max(self.peak_rss, self.rss())

    def report(self) -> dict[str, float]:
        import torch

        out = {"peak_rss_mb": round(self.peak_rss / 2**20, 1)}
        if torch.cuda.is_available():
            out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return out


@dataclass
class StageContext:
    """What a stage gets: where to write, its view of the config, the device, and earlier stages' outputs
    (`artifacts`: each loaded once)."""

    run_dir: Path
    out: Path  # temporary folder of this stage, renamed to run_dir/<stage> on success
    cfg: ConfigView  # only the values the stage declares (Stage.reads), plus size and seed
    device: Any
    name: str
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))
    artifacts: RunArtifacts = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.artifacts is None:
            self.artifacts = RunArtifacts(self.run_dir)

    def stage_dir(self, name: str) -> Path:
        return finished_stage(self.run_dir, name)

    def progress(self, iterable: Iterable | None = None, total: int | None = None, desc: str | None = None):
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc or self.name, file=sys.stderr, leave=False,
                    mininterval=0.5 if sys.stderr.isatty() else 5.0, dynamic_ncols=True)


def versions() -> dict[str, str]:
    import cv2
    import scipy
    import torch

    v = {"landscape4d": __version__, "python": platform.python_version(), "platform": platform.platform(),
         "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__, "opencv": cv2.__version__,
         "cuda": torch.version.cuda or "none", "cpu_count": str(os.cpu_count())}
    if torch.cuda.is_available():
        v["gpu"] = torch.cuda.get_device_name(0)
    return v


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_key(run_dir: Path) -> str:
    d = run_dir / "input"
    h = hashlib.sha256()
    for name in ("image.png", "mask.png", "hints.json"):
        p = d / name
        h.update(name.encode())
        h.update(file_digest(p).encode() if p.exists() else b"-")
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def code_digest(root: Path = Path(__file__).resolve().parent) -> str:
    """Hash of the package's Python sources: an edited install (a development checkout) reruns cached stages."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def stage_key(st: Stage, cfg: RunConfig, inp: str, dep_keys: dict[str, str]) -> str:
    """The cache key of a stage: what it declares it reads (declared_values), the input, the code, its deps' keys,
    and its `environment` when it has one. Not device or threads: they change how, not what, a stage computes."""
    payload = {
        "stage": st.name,
        "version": __version__,
        "code": code_digest(),
        "config": declared_values(cfg, st.reads),
        "input": inp,
        "deps": {d: dep_keys[d] for d in st.deps},
    }
    if st.environment:
        module, func = st.environment.split(":")
        payload["environment"] = getattr(importlib.import_module(module), func)(cfg)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def stage_keys(cfg: RunConfig, inp: str, target: str = STAGE_NAMES[-1]) -> dict[str, str]:
    """The cache key of every stage `target` needs."""
    keys: dict[str, str] = {}
    for st in stages_up_to(target):
        keys[st.name] = stage_key(st, cfg, inp, keys)
    return keys


# ------------------------------------------------------------------------------------------------ pre-flight


RASTER_READERS = ("gaussians", "dynamics", "render")  # the stages that rasterize with gaussians.backend


def check_environment(cfg: RunConfig, stages: Iterable[str]) -> None:
    """The config against this machine: CUDA asked for where there is none, the gsplat rasterizer without CUDA or
    without gsplat. Raises InputError."""
    device = resolve_device(cfg.device)
    if cfg.gaussians.backend == "gsplat" and set(stages) & set(RASTER_READERS):
        from .gaussians.raster_gsplat import gsplat_available

        if device.type != "cuda":
            raise InputError("gaussians.backend=gsplat", "the gsplat rasterizer needs CUDA, and this run computes on "
                                                         "the CPU; use gaussians.backend=auto or torch")
        if not gsplat_available():
            raise InputError("gaussians.backend=gsplat", "gsplat is not installed (pip install 'landscape4d[cuda]'); "
                                                         "use gaussians.backend=auto or torch")


def preflight(cfg: RunConfig, target: str, run_dir: Path | None = None, force: bool = False) -> list[str]:
    """Everything that can be known to fail before any stage runs: the config against this machine, and `check(cfg)`
    of each stage module that defines one, for the stages that will run (those whose cached result in `run_dir` is
    not current). Raises InputError or ValueError; returns the names of the stages that will run."""
    needed = stages_up_to(target)
    to_run = [s.name for s in needed]
    if run_dir is not None and (Path(run_dir) / "input" / "image.png").exists():
        keys = stage_keys(cfg, input_key(Path(run_dir)), target)
        stale = {s.name for s in needed if read_json(Path(run_dir) / s.name / ".stage.json").get("key") != keys[s.name]}
        stale |= {target} if force else set()
        to_run = [s.name for s in needed if s.name in downstream(stale)]
    check_environment(cfg, to_run)
    for st in needed:
        if st.name in to_run:
            check = getattr(importlib.import_module(st.module), "check", None)
            if check is not None:
                check(cfg)
    return to_run


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, unreadable, malformed (JSONDecodeError) or not UTF-8
        return {}
    return data if isinstance(data, dict) else {}


_LEFTOVER = re.compile(r"^\.(?P<name>[A-Za-z0-9_-]+)\.(?P<kind>tmp|old)-(?P<pid>\d+)$")


def os_error_line(e: OSError, run_dir: Path | None = None) -> str:
    """One line for an OSError: the file (a stage's temporary folder shown as the stage's folder) and the problem."""
    name = str(e.filename) if e.filename else ""
    if run_dir is not None and name:
        name = re.sub(r"/\.([A-Za-z0-9_-]+)\.tmp-\d+(?=/|$)", r"/\1", name)
    problem = e.strerror or str(e) or type(e).__name__
    hint = {errno.ENOSPC: " (free some space and run again: finished stages are kept)",
            errno.EDQUOT: " (free some space and run again: finished stages are kept)",
            errno.EACCES: " (the run folder is not writable)", errno.EROFS: " (the run folder is read-only)",
            errno.EPERM: " (the run folder is not writable)"}.get(e.errno or 0, "")
    return f"{name}: {problem}{hint}" if name else f"{problem}{hint}"


def stage_failure(st: Stage, e: BaseException, run_dir: Path, log: Path | None) -> StageFailed:
    """The one line for an exception raised by a stage (see errors.py for the exit codes)."""
    if isinstance(e, InputError):  # the user's input, found late (e.g. a --depth-file the depth stage cannot read)
        return StageFailed(st.name, one_line(e), None, exit_code=2)
    if isinstance(e, OSError):
        line = os_error_line(e, run_dir)
    elif isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError
        line = f"out of memory ({one_line(e, 200, with_type=True)}); try a smaller --size"
    elif isinstance(e, (CorruptArtifactError, StageError)):  # messages of ours: whole
        line = one_line(e, 1000)
    else:
        line = f"failed: {one_line(e, with_type=True)}"
    return StageFailed(st.name, f"{st.name}: {line}", log)


def write_error_log(run_dir: Path, st: Stage, e: BaseException, command: list[str]) -> Path | None:
    """RUN/logs/error-<stage>.txt: the command, the time and the traceback; None when it cannot be written."""
    path = run_dir / "logs" / f"error-{st.name}.txt"
    text = (f"landscape4d {__version__}, stage {st.name}, pid {os.getpid()}, {time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
            f"command: {' '.join(command)}\n\n" + "".join(traceback.format_exception(type(e), e, e.__traceback__)))
    try:
        path.parent.mkdir(exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    except OSError:
        return None
    return path


class Pipeline:
    """Runs stages over a run folder with caching, atomic outputs, state and report."""

    def __init__(self, run_dir: Path, cfg: RunConfig, log: Callable[[str], None] | None = None,
                 command: list[str] | None = None):
        self.run_dir = Path(run_dir)
        self.cfg = cfg
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.command = command or sys.argv
        self.report = read_json(self.run_dir / "report.json")
        self.report.setdefault("stages", {})

    def _set_state(self, name: str, state: str) -> None:
        path = self.run_dir / "state.json"
        data = read_json(path)
        if not isinstance(data.get("stages"), dict):
            data["stages"] = {}
        data["stages"][name] = {"state": state, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid()}
        write_json(path, data)

    def _states(self) -> dict[str, dict]:
        stages = read_json(self.run_dir / "state.json").get("stages")
        return {k: v for k, v in stages.items() if isinstance(v, dict)} if isinstance(stages, dict) else {}

    def recover(self) -> None:
        """Clean up after a killed run: remove the temporary folders of processes that are gone (putting back a
        stage folder caught between its two renames) and mark their "running" stages "interrupted"."""
        for p in sorted(self.run_dir.iterdir()):
            m = _LEFTOVER.match(p.name)
            if not m or not p.is_dir():
                continue
            pid = int(m["pid"])
            if pid != os.getpid() and pid_alive(pid):
                continue  # another live process is working in this folder
            final = self.run_dir / m["name"]
            if m["kind"] == "old" and not final.exists():
                p.rename(final)  # killed between `final -> old` and `tmp -> final`: the previous result is back
            else:
                shutil.rmtree(p, ignore_errors=True)
        for name, st in self._states().items():
            pid = st.get("pid")
            if st.get("state") == "running" and not (isinstance(pid, int) and pid != os.getpid() and pid_alive(pid)):
                self._set_state(name, "interrupted")
                self.log(f"[landscape4d] {name}: an earlier run was interrupted here; resuming")

    def run(self, target: str, force: bool = False) -> dict[str, str]:
        """Run every stage `target` needs; returns the cache key of each. A stage that raises ends the call with
        StageFailed (its traceback in RUN/logs/error-<stage>.txt); the run folder's own bookkeeping failing (a full
        disk) with StageError naming the file. The stages finished before are kept unchanged either way."""
        import torch

        threads = resolve_threads(self.cfg.threads)
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return self._run(target, force, threads)
        except OSError as e:
            raise StageError(os_error_line(e, self.run_dir)) from None
        finally:
            torch.set_num_threads(before)  # a caller running several pipelines in one process keeps its own

    def _run(self, target: str, force: bool, threads: int) -> dict[str, str]:
        if not (self.run_dir / "input" / "image.png").exists():
            raise StageError(f"{self.run_dir}: no input in this run folder; give a photo")
        device = resolve_device(self.cfg.device)
        self.recover()
        inp = input_key(self.run_dir)
        keys: dict[str, str] = {}
        t_all = time.perf_counter()
        for st in stages_up_to(target):
            key = stage_key(st, self.cfg, inp, keys)
            keys[st.name] = key
            meta = read_json(self.run_dir / st.name / ".stage.json")
            if meta.get("key") == key and not (force and st.name == target):
                self.log(f"[landscape4d] {st.name}: unchanged, skipped")
                self.report["stages"].setdefault(st.name, {})["cached"] = True
                if self._states().get(st.name, {}).get("state") != "done":
                    self._set_state(st.name, "done")  # finished, but killed before its state was written
                continue
            self._run_stage(st, key, device)
        self.report.update({
            "landscape4d": __version__,
            "command": list(self.command),
            "config": self.cfg.to_dict(),
            "device": str(device),
            "threads": threads,
            "versions": versions(),
            "last_command_seconds": round(time.perf_counter() - t_all, 3),
        })
        write_json(self.run_dir / "report.json", self.report)
        return keys

    def _run_stage(self, st: Stage, key: str, device) -> None:
        import torch

        module, func = st.runner.split(":")
        runner = getattr(importlib.import_module(module), func)
        tmp = self.run_dir / f".{st.name}.tmp-{os.getpid()}"
        final = self.run_dir / st.name
        old = self.run_dir / f".{st.name}.old-{os.getpid()}"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            ctx = StageContext(self.run_dir, tmp, ConfigView(self.cfg, st.reads, st.name), device, st.name, self.log)
            self._set_state(st.name, "running")
            self.log(f"[landscape4d] {st.name}: running")
            torch.manual_seed(self.cfg.seed)
            np.random.seed(self.cfg.seed)
            t0 = time.perf_counter()
            with PeakMemory() as mem:
                metrics = runner(ctx) or {}
            seconds = time.perf_counter() - t0
            entry = {"seconds": round(seconds, 3), **mem.report(), "cached": False, "metrics": metrics,
                     "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            write_json(tmp / ".stage.json", {"key": key, "stage": st.name, **entry})
            swap_dir(tmp, final, old)  # on failure the previous result stays in place
        except BaseException as e:
            self._stage_failed(st, e, tmp)
        shutil.rmtree(old, ignore_errors=True)
        self._forget_failure(st)
        self.report["stages"][st.name] = entry
        write_json(self.run_dir / "report.json", self.report)
        self._set_state(st.name, "done")
        self.log(f"[landscape4d] {st.name}: done in {seconds:.1f} s (peak {entry['peak_rss_mb']:.0f} MB)")

    def _forget_failure(self, st: Stage) -> None:
        """The stage succeeded: its error log of an earlier failure goes (and logs/ when that was the last)."""
        logs = self.run_dir / "logs"
        (logs / f"error-{st.name}.txt").unlink(missing_ok=True)
        if logs.is_dir() and not any(logs.iterdir()):
            logs.rmdir()

    def _stage_failed(self, st: Stage, e: BaseException, tmp: Path) -> None:
        """Clean up after a stage that raised, record it, and raise StageFailed (Ctrl-C and exit pass through)."""
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            self._set_state(st.name, "interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
        except OSError:
            pass  # a full disk: the error below says so
        if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit
            raise e
        log = None if isinstance(e, InputError) else write_error_log(self.run_dir, st, e, list(self.command))
        raise stage_failure(st, e, self.run_dir, log) from None
