"""Stage order, the run folder, caching and report.json.

Run folder:
  input/      image.png (working size), mask.png, hints.json, input.json   (validated copy of the user's input)
  <stage>/    each stage's outputs plus .stage.json {key, seconds, ...}
  state.json  what every stage is doing (running / done / failed)
  report.json config, versions, per-stage seconds and peak memory, metrics

A stage runs into a temporary sibling folder that is renamed into place only when it succeeds, so an interrupted
or failed stage never leaves half-written outputs. Its cache key hashes its config section, the working size and
seed, the input, the package's code and the keys of the stages it reads: a stage is skipped when its key is
unchanged.
A killed run leaves its temporary folder (`.<stage>.tmp-<pid>`) and a "running" state behind: the next run removes
the folders of processes that are gone and records those stages as "interrupted" before it resumes. A full disk or
an unwritable folder inside a stage ends it with a one-line StageError; finished stages are kept unchanged.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import __version__
from .config import RunConfig
from .errors import StageError
from .io.atomic import swap_dir, write_json


@dataclass(frozen=True)
class Stage:
    name: str
    deps: tuple[str, ...]
    sections: tuple[str, ...]  # config sections it reads
    runner: str  # "module:function", imported lazily


STAGES: tuple[Stage, ...] = (
    Stage("depth", (), ("depth",), "landscape4d.stages.depth:run"),
    Stage("views", ("depth",), ("views",), "landscape4d.stages.views:run"),
    Stage("motion", ("depth", "views"), ("motion",), "landscape4d.stages.motion:run"),
    Stage("gaussians", ("depth", "views"), ("gaussians",), "landscape4d.stages.gaussians:run"),
    Stage("animate", ("depth", "views", "motion"), ("animate",), "landscape4d.stages.animate:run"),
    Stage("dynamics", ("views", "motion", "gaussians", "animate"), ("dynamics",), "landscape4d.stages.dynamics:run"),
    Stage("render", ("depth", "dynamics"), ("render",), "landscape4d.stages.render:run"),
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


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise StageError("--device cuda was asked for but CUDA is not available")
    return torch.device(name)


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
    """What a stage gets: where to write, the config, the device, and access to earlier stages' outputs."""

    run_dir: Path
    out: Path  # temporary folder of this stage, renamed to run_dir/<stage> on success
    cfg: RunConfig
    device: Any
    name: str
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))

    def stage_dir(self, name: str) -> Path:
        d = self.run_dir / name
        if not (d / ".stage.json").exists():
            raise StageError(f"{d}: stage {name} has not finished; run it first")
        return d

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
    payload = {
        "stage": st.name,
        "version": __version__,
        "code": code_digest(),
        "config": {s: cfg.section(s) for s in st.sections},
        "size": cfg.size,
        "seed": cfg.seed,
        "input": inp,
        "deps": {d: dep_keys[d] for d in st.deps},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, unreadable, malformed (JSONDecodeError) or not UTF-8
        return {}
    return data if isinstance(data, dict) else {}


_LEFTOVER = re.compile(r"^\.(?P<name>[A-Za-z0-9_-]+)\.(?P<kind>tmp|old)-(?P<pid>\d+)$")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError):
        return False
    return True


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
        """Run every stage `target` needs; returns the cache key of each. A full disk or an unwritable run folder
        raises StageError (one line naming the file); the stages finished before are kept unchanged."""
        try:
            return self._run(target, force)
        except OSError as e:
            raise StageError(os_error_line(e, self.run_dir)) from None

    def _run(self, target: str, force: bool) -> dict[str, str]:
        if not (self.run_dir / "input" / "image.png").exists():
            raise StageError(f"{self.run_dir}: no input in this run folder; give a photo")
        device = resolve_device(self.cfg.device)
        if self.cfg.threads > 0:
            import torch

            torch.set_num_threads(self.cfg.threads)
        self.recover()
        inp = input_key(self.run_dir)
        keys: dict[str, str] = {}
        t_all = time.perf_counter()
        for st in stages_up_to(target):
            key = stage_key(st, self.cfg, inp, keys)
            keys[st.name] = key
            final = self.run_dir / st.name
            meta = read_json(final / ".stage.json")
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
            ctx = StageContext(self.run_dir, tmp, self.cfg, device, st.name, self.log)
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
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                self._set_state(st.name, "interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
            except OSError:
                pass  # a full disk: the error below says so
            if isinstance(e, OSError):
                raise StageError(f"{st.name}: {os_error_line(e, self.run_dir)}") from None
            if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError
                raise StageError(f"{st.name}: out of memory ({_one_line(e)}); try a smaller --size") from None
            raise
        shutil.rmtree(old, ignore_errors=True)
        self.report["stages"][st.name] = entry
        write_json(self.run_dir / "report.json", self.report)
        self._set_state(st.name, "done")
        self.log(f"[landscape4d] {st.name}: done in {seconds:.1f} s (peak {entry['peak_rss_mb']:.0f} MB)")


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(e).__name__)
