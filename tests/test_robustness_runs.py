"""Runs that go wrong part-way: a full disk inside a stage, an unwritable output folder, a run killed with SIGKILL
and run again, and a large photo. Finished stages must survive unchanged, reruns must resume and give the same
result as a run that was never interrupted, and no temporary folders may be left behind."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landscape4d.cli import main
from landscape4d.pipeline import Pipeline, pid_alive
from landscape4d.config import RunConfig
from test_pipeline_e2e import TINY

STAGES = ("depth", "views", "motion", "gaussians", "animate", "dynamics", "render")
VOLATILE_FILES = {".stage.json", "report.json", "state.json"}  # timings and dates
VOLATILE_KEYS = ("seconds", "finished_at", "time")


def tree_digest(root: Path, only: tuple[str, ...] | None = None) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and (only is None or rel.parts[0] in only):
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def leftovers(run: Path) -> list[str]:
    return sorted(p.name for p in run.glob(".*") if ".tmp-" in p.name or ".old-" in p.name)


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("landscape4d: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def demo_argv(demo_input, command: str, run: Path) -> list[str]:
    return [command, str(demo_input["image"]), "--mask", str(demo_input["mask"]), "--hints", str(demo_input["hints"]),
            "-o", str(run)] + TINY


@pytest.fixture
def views_run(demo_input, tmp_path) -> Path:
    run = tmp_path / "run"
    assert main(demo_argv(demo_input, "views", run)) == 0
    return run


@pytest.fixture
def depth_run(demo_input, tmp_path) -> Path:
    run = tmp_path / "run"
    assert main(demo_argv(demo_input, "depth", run)) == 0
    return run


# ---------------------------------------------------------------------------------------------- full disk


def test_full_disk_inside_a_stage(demo_input, depth_run, monkeypatch, capsys):
    """ENOSPC while the views stage writes its transforms.json: one line naming the file, exit 1 (a failure inside a
    stage), the earlier stage unchanged, no temporary folder left; the same command succeeds once there is space
    again."""
    import landscape4d.stages.views as vstage

    real = vstage.write_json
    before = tree_digest(depth_run, only=("input", "depth"))

    def full_disk(path, data):
        if Path(path).name != "transforms.json":
            return real(path, data)
        Path(path).write_text('{"frames": [')  # half a file, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(vstage, "write_json", full_disk)
    capsys.readouterr()
    code = main(demo_argv(demo_input, "views", depth_run))
    line = one_error_line(capsys.readouterr().err)
    assert code == 1
    assert "No space left on device" in line and str(depth_run / "views" / "transforms.json") in line
    assert tree_digest(depth_run, only=("input", "depth")) == before
    assert not (depth_run / "views").exists() and leftovers(depth_run) == []
    state = json.loads((depth_run / "state.json").read_text())["stages"]
    assert state["views"]["state"] == "failed" and state["depth"]["state"] == "done"

    monkeypatch.setattr(vstage, "write_json", real)
    assert main(demo_argv(demo_input, "views", depth_run)) == 0
    err = capsys.readouterr().err
    assert "depth: unchanged, skipped" in err and (depth_run / "views" / "transforms.json").stat().st_size > 100
    assert tree_digest(depth_run, only=("input", "depth")) == before


def test_full_disk_rerunning_a_finished_stage_keeps_it(demo_input, views_run, monkeypatch, capsys):
    """`views --force` that runs out of space half-way: the views folder of the earlier run stays as it was."""
    import landscape4d.stages.views as vstage

    real, calls = vstage.save_png, []
    before = tree_digest(views_run, only=("views",))

    def save_png_then_full(path, image):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, image)

    monkeypatch.setattr(vstage, "save_png", save_png_then_full)
    capsys.readouterr()
    assert main(demo_argv(demo_input, "views", views_run) + ["--force"]) == 1
    assert "No space left on device" in one_error_line(capsys.readouterr().err)
    assert tree_digest(views_run, only=("views",)) == before and leftovers(views_run) == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 6 MiB tmpfs (root only); skipped where it cannot be mounted."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_really_full_disk(demo_input, small_tmpfs, capsys):
    """A real full file system (tmpfs): depth fits, then the disk is filled and the views command fails cleanly."""
    run = small_tmpfs / "run"
    assert main(demo_argv(demo_input, "depth", run)) == 0
    before = tree_digest(run, only=("input", "depth"))
    filler = small_tmpfs / "filler"
    with open(filler, "wb") as f:  # fill the disk completely
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    capsys.readouterr()
    code = main(demo_argv(demo_input, "views", run))
    err = capsys.readouterr().err
    line = one_error_line(err)  # the lock and input/ are written first: refused before any stage ran, so exit 2
    assert code == 2 and "No space left on device" in line and str(run) in line
    assert tree_digest(run, only=("input", "depth")) == before
    assert not (run / "views").exists() and leftovers(run) == []
    filler.unlink()
    assert main(demo_argv(demo_input, "views", run)) == 0
    assert "depth: unchanged, skipped" in capsys.readouterr().err and (run / "views" / "transforms.json").exists()


# ------------------------------------------------------------------------------------- unwritable output


def test_output_folder_under_a_file(demo_input, tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a regular file")
    run = blocker / "run"
    code = main(demo_argv(demo_input, "depth", run))
    assert code == 2 and str(run) in one_error_line(capsys.readouterr().err)
    assert blocker.read_text() == "a regular file"


def test_output_folder_not_writable(demo_input, views_run, monkeypatch, capsys):
    """EACCES while the input is written (simulated: tests run as root, which ignores permissions): one line,
    exit 2, the run folder's earlier input and stages kept."""
    import landscape4d.inputs as inputs

    before = tree_digest(views_run, only=("input", "depth", "views"))

    def denied(path, image):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(inputs, "save_png", denied)
    capsys.readouterr()
    assert main(demo_argv(demo_input, "views", views_run)) == 2
    assert str(views_run) in one_error_line(capsys.readouterr().err)
    assert tree_digest(views_run, only=("input", "depth", "views")) == before and leftovers(views_run) == []


def fail_json_write(monkeypatch, module, name: str, err: int) -> None:
    """Make `module.write_json` fail with errno `err` (OSError picks the subclass, e.g. PermissionError) for files
    called `name`; other files are written as usual."""
    real = module.write_json

    def failing(path, data):
        if Path(path).name == name:
            raise OSError(err, os.strerror(err), str(path))
        real(path, data)

    monkeypatch.setattr(module, "write_json", failing)


def test_state_file_not_writable_inside_pipeline(demo_input, views_run, monkeypatch, capsys):
    """EACCES from the pipeline's own bookkeeping (state.json) is a one-line error too (exit 1: stages had begun)."""
    import landscape4d.pipeline as pipeline

    fail_json_write(monkeypatch, pipeline, "state.json", errno.EACCES)
    capsys.readouterr()
    assert main(demo_argv(demo_input, "views", views_run) + ["--force"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "state.json" in line and "not writable" in line and leftovers(views_run) == []


def test_config_write_fails(demo_input, views_run, monkeypatch, capsys):
    import landscape4d.io.atomic as atomic

    fail_json_write(monkeypatch, atomic, "config.json", errno.ENOSPC)
    assert main(demo_argv(demo_input, "views", views_run)) == 2
    assert "config.json" in one_error_line(capsys.readouterr().err)


def test_render_scene_output_under_a_file(tmp_path, capsys):
    from test_robustness_inputs import HEADER, _tiny_scene
    from landscape4d.dynamics.scene_file import save_scene4d

    save_scene4d(tmp_path / "s.safetensors", _tiny_scene(), HEADER)
    (tmp_path / "file").write_text("x")
    code = main(["render", "--scene", str(tmp_path / "s.safetensors"), "-o", str(tmp_path / "file" / "out"),
                 "--trajectory", "side", "--set", "render.gif=false"])
    assert code == 2 and "file" in one_error_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------- interrupted runs


def _cli(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "landscape4d.cli", *argv]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}  # one thread: fast on a busy CPU


def _normalised(path: Path):
    if path.suffix == ".json":
        def strip(v):
            if isinstance(v, dict):
                return {k: strip(x) for k, x in v.items() if not any(k.endswith(s) for s in VOLATILE_KEYS)}
            if isinstance(v, list):
                return [strip(x) for x in v]
            return v
        return strip(json.loads(path.read_text()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _outputs(run: Path) -> dict[str, object]:
    return {str(p.relative_to(run)): _normalised(p) for p in sorted(run.rglob("*"))
            if p.is_file() and p.name not in VOLATILE_FILES and not p.name.startswith(".")}


def test_killed_run_resumes_and_matches_an_uninterrupted_run(demo_input, tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    r = subprocess.run(_cli(demo_argv(demo_input, "run", ref)), env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]

    proc = subprocess.Popen(_cli(demo_argv(demo_input, "run", run)), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    killed_in, deadline = None, time.monotonic() + 300
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                states = json.loads((run / "state.json").read_text())["stages"]
            except (OSError, ValueError, KeyError):
                states = {}
            busy = [s for s in ("gaussians", "animate", "dynamics", "render")
                    if states.get(s, {}).get("state") == "running"]
            if busy:
                proc.send_signal(signal.SIGKILL)
                killed_in = busy[0]
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None and killed_in is None:
            proc.kill()
        proc.wait()
    assert killed_in is not None, "the run finished before a later stage could be interrupted"
    assert not pid_alive(proc.pid)
    finished = [s for s in STAGES[:STAGES.index(killed_in)] if (run / s / ".stage.json").exists()]
    assert {"depth", "views"} <= set(finished)
    assert not (run / killed_in / ".stage.json").exists()
    assert leftovers(run), "a SIGKILL leaves the stage's temporary folder behind"
    state = json.loads((run / "state.json").read_text())["stages"]
    assert state[killed_in]["state"] == "running"
    finished_before = {s: tree_digest(run / s) for s in finished}

    r = subprocess.run(_cli(demo_argv(demo_input, "run", run)), env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for s in finished:
        assert f"{s}: unchanged, skipped" in r.stderr
        assert tree_digest(run / s) == finished_before[s], s
    assert f"{killed_in}: an earlier run was interrupted here; resuming" in r.stderr
    assert f"{killed_in}: running" in r.stderr
    assert leftovers(run) == []
    state = json.loads((run / "state.json").read_text())["stages"]
    assert all(state[s]["state"] == "done" for s in STAGES), state
    report = json.loads((run / "report.json").read_text())["stages"]
    assert all(report[s]["peak_rss_mb"] > 0 for s in STAGES)
    # the same result as the uninterrupted run, file by file (timings aside)
    a, b = _outputs(ref), _outputs(run)
    assert sorted(a) == sorted(b)
    different = [k for k in a if a[k] != b[k]]
    assert different == [], different


def test_recover_cleans_up_after_dead_processes(tmp_path):
    run = tmp_path / "run"
    (run / "input").mkdir(parents=True)
    dead = 2**22 + 12345  # above the default pid_max of small machines; checked below
    if pid_alive(dead):
        pytest.skip("the made-up pid is in use")
    live = os.getppid()
    (run / f".gaussians.tmp-{dead}").mkdir()
    (run / f".animate.tmp-{live}").mkdir()  # a live process is working on it: kept
    (run / f".views.old-{dead}").mkdir()  # killed between its two renames: put back as views/
    (run / f".views.old-{dead}" / "marker").write_text("x")
    (run / f".depth.old-{dead}").mkdir()  # depth/ exists: the old copy is just removed
    (run / "depth").mkdir()
    (run / "state.json").write_text(json.dumps({"stages": {
        "gaussians": {"state": "running", "pid": dead}, "views": {"state": "done"},
        "animate": {"state": "running", "pid": live}}}))
    logs: list[str] = []
    Pipeline(run, RunConfig(), log=logs.append).recover()
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [f".animate.tmp-{live}", "depth", "input", "state.json", "views"])
    assert (run / "views" / "marker").read_text() == "x"
    state = json.loads((run / "state.json").read_text())["stages"]
    assert state["gaussians"]["state"] == "interrupted" and state["animate"]["state"] == "running"
    assert any("gaussians: an earlier run was interrupted" in m for m in logs)


def test_malformed_state_file_does_not_break_a_run(demo_input, views_run, capsys):
    (views_run / "state.json").write_text("[1, 2")
    (views_run / "views" / ".stage.json").write_text('["not", "an", "object"]')
    assert main(demo_argv(demo_input, "views", views_run)) == 0
    assert "views: running" in capsys.readouterr().err  # the broken marker means: not finished
    assert json.loads((views_run / "state.json").read_text())["stages"]["views"]["state"] == "done"


# -------------------------------------------------------------------------------------------- a large photo


def test_photo_to_float_memory():
    """Converting a photo to float32 allocates little more than the result (it used float64 copies: ~5x)."""
    import tracemalloc

    from landscape4d.io.images import _pil_to_float

    im = Image.fromarray((np.random.default_rng(0).random((750, 1000, 3)) * 255).astype(np.uint8))
    tracemalloc.start()
    try:
        a = _pil_to_float(im)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert a.dtype == np.float32 and a.max() <= 1.0
    np.testing.assert_allclose(a, np.asarray(im, np.float64) / 255.0, atol=1e-7)
    assert peak < 2.0 * a.nbytes, (peak, a.nbytes)


def test_4000x3000_photo_is_downscaled(tmp_path):
    """A 12-megapixel photo runs (depth + views): downscaled to the working size with a note, printed and kept in
    input/input.json; report.json has each stage's peak memory."""
    import cv2

    from landscape4d.demo import make_demo_photo

    img, mask, arrows = make_demo_photo(400, 300)
    big = cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    big += np.random.default_rng(0).normal(0, 0.02, big.shape).astype(np.float32)  # fine detail, like a photo
    Image.fromarray((np.clip(big, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "big.jpg", quality=90)
    Image.fromarray(cv2.resize(mask.astype(np.uint8) * 255, (4000, 3000), interpolation=cv2.INTER_NEAREST)).save(
        tmp_path / "big_mask.png")
    (tmp_path / "big_hints.json").write_text(json.dumps(
        {"hints": [{"start": [a[0][0] * 10, a[0][1] * 10], "end": [a[1][0] * 10, a[1][1] * 10]} for a in arrows]}))
    run = tmp_path / "run"
    argv = ["views", str(tmp_path / "big.jpg"), "--mask", str(tmp_path / "big_mask.png"), "--hints",
            str(tmp_path / "big_hints.json"), "-o", str(run), "--size", "160", "--num-views", "2"]
    # VmHWM: this process's peak resident memory (ru_maxrss would include the parent's, inherited through exec)
    code = ("import re, sys; from landscape4d.cli import main; c = main(sys.argv[1:]); hwm = re.search("
            "r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()); print('maxrss_mb', int(hwm.group(1)) / 1024 "
            "if hwm else 0, file=sys.stderr); sys.exit(c)")
    r = subprocess.run([sys.executable, "-c", code, *argv], env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "note: photo downscaled from 4000x3000 to the working size 160x120" in r.stderr
    meta = json.loads((run / "input" / "input.json").read_text())
    assert meta["original_size"] == [4000, 3000] and meta["working_size"] == [160, 120]
    assert "downscaled from 4000x3000" in meta["note"]
    assert Image.open(run / "input" / "image.png").size == (160, 120)
    report = json.loads((run / "report.json").read_text())["stages"]
    for s in ("depth", "views"):
        assert report[s]["peak_rss_mb"] > 0 and report[s]["seconds"] > 0
    maxrss = float(r.stderr.split("maxrss_mb")[-1].split()[0])
    print(f"4000x3000 photo, depth+views at 160 px: process peak {maxrss:.0f} MB; depth "
          f"{report['depth']['peak_rss_mb']} MB, views {report['views']['peak_rss_mb']} MB")
