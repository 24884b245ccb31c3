"""Two kinds of failure, never confused: input errors (impossible combinations included) are found before any
stage runs (exit 2, one line, no folder made); a failure inside a stage exits 1 with one line naming
RUN/logs/error-<stage>.txt, keeping every finished stage so that a rerun resumes. A damaged intermediate file is
named. A second process on the same run folder is refused; a lock left by a killed one is not in the way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from landscape4d import runlock
from landscape4d.cli import main
from landscape4d.errors import InputError, RunInUseError
from test_robustness_runs import demo_argv, leftovers, one_error_line, tree_digest

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


@pytest.fixture(scope="module")
def base_views_run(demo_input, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("base") / "run"
    assert main(demo_argv(demo_input, "views", run)) == 0
    return run


@pytest.fixture
def views_run(base_views_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(base_views_run, run)
    return run


def _error(capsys) -> tuple[str, str]:
    err = capsys.readouterr().err
    return one_error_line(err), err


# ------------------------------------------------------------------------------------- input errors up front


@NO_CUDA
@pytest.mark.parametrize("extra, needle", [(["--set", "gaussians.backend=gsplat"], "gaussians.backend=gsplat"),
                                           (["--device", "cuda"], "CUDA is not available")])
def test_impossible_combination_is_refused_before_any_stage(demo_input, tmp_path, capsys, extra, needle):
    """gsplat or --device cuda without CUDA: exit 2, one line, no stage ran, no folder made."""
    run = tmp_path / "new"
    code = main(demo_argv(demo_input, "gaussians", run) + extra)
    line, err = _error(capsys)
    assert code == 2 and needle in line, err
    assert ": running" not in err and not run.exists()


@NO_CUDA
def test_impossible_combination_on_a_rerun_leaves_the_folder_as_it_was(views_run, capsys):
    before = tree_digest(views_run)
    assert main(["gaussians", "-o", str(views_run), "--set", "gaussians.backend=gsplat"]) == 2
    line, err = _error(capsys)
    assert "gsplat" in line and ": running" not in err and tree_digest(views_run) == before


@NO_CUDA
def test_gsplat_is_fine_when_no_stage_that_rasterizes_runs(views_run, capsys):
    """The depth and views stages never rasterize Gaussians: asking for gsplat does not stop them."""
    assert main(["views", "-o", str(views_run), "--set", "gaussians.backend=gsplat"]) == 0
    assert "views: unchanged, skipped" in capsys.readouterr().err


def test_stage_checks_run_before_any_stage(demo_input, views_run, tmp_path, monkeypatch, capsys):
    """`check(cfg)` of a stage module is called in the pre-flight (not for a stage whose result is current)."""
    import landscape4d.stages.views as vstage

    calls = []

    def check(cfg):
        calls.append(cfg.views.num_views)
        if cfg.views.num_views == 4:
            raise InputError("views.num_views", "four views are not allowed here")

    monkeypatch.setattr(vstage, "check", check, raising=False)
    run = tmp_path / "new"
    assert main(demo_argv(demo_input, "views", run) + ["--num-views", "4"]) == 2
    line, err = _error(capsys)
    assert "four views" in line and ": running" not in err and not run.exists()
    calls.clear()
    assert main(["views", "-o", str(views_run)]) == 0 and calls == []  # cached: not checked
    assert main(["views", "-o", str(views_run), "--force"]) == 0 and calls == [5]
    capsys.readouterr()


# --------------------------------------------------------------------------------- failures inside a stage


def test_exception_inside_a_stage_keeps_finished_stages(demo_input, tmp_path, monkeypatch, capsys):
    """A ValueError inside gaussians (a bug): exit 1, one line naming RUN/logs/error-gaussians.txt which holds the
    traceback; depth and views stay; once the cause is fixed the same command resumes."""
    import landscape4d.stages.gaussians as gstage

    def broken(ctx):
        raise ValueError("boom: something inside the stage")

    monkeypatch.setattr(gstage, "run", broken)
    run = tmp_path / "run"
    code = main(demo_argv(demo_input, "gaussians", run))
    line, err = _error(capsys)
    log = run / "logs" / "error-gaussians.txt"
    assert code == 1 and str(log) in line and "ValueError: boom" in line, err
    assert "Traceback" not in err and "Traceback" in log.read_text() and "boom" in log.read_text()
    for s in ("depth", "views"):
        assert (run / s / ".stage.json").exists(), s
    assert not (run / "gaussians").exists() and leftovers(run) == []
    assert json.loads((run / "state.json").read_text())["stages"]["gaussians"]["state"] == "failed"
    finished = tree_digest(run, only=("input", "depth", "views"))

    monkeypatch.undo()
    assert main(demo_argv(demo_input, "gaussians", run)) == 0
    err = capsys.readouterr().err
    assert "depth: unchanged, skipped" in err and "views: unchanged, skipped" in err and "gaussians: done" in err
    assert tree_digest(run, only=("input", "depth", "views")) == finished and not log.exists()


def test_failure_in_the_first_stage_keeps_the_new_folder_and_its_log(demo_input, tmp_path, monkeypatch, capsys):
    import landscape4d.stages.depth as dstage

    monkeypatch.setattr(dstage, "run", lambda ctx: 1 / 0)
    run = tmp_path / "run"
    assert main(demo_argv(demo_input, "depth", run)) == 1
    line, _ = _error(capsys)
    assert "depth: failed: ZeroDivisionError" in line and (run / "logs" / "error-depth.txt").exists()
    assert (run / "input" / "image.png").exists()  # rerun without the photo resumes
    monkeypatch.undo()
    assert main(["depth", "-o", str(run)]) == 0


def test_truncated_depth_map_is_named(views_run, capsys):
    """depth/depth.npy cut short after its stage finished: rerunning views names the file and how to remake it;
    the earlier views result stays."""
    path = views_run / "depth" / "depth.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    before = tree_digest(views_run, only=("views",))
    assert main(["views", "-o", str(views_run), "--force"]) == 1
    line, err = _error(capsys)
    assert f"{path}: unreadable, truncated or corrupt" in line, err
    assert f"landscape4d depth -o {views_run} --force" in line
    assert tree_digest(views_run, only=("views",)) == before and leftovers(views_run) == []


def test_damaged_view_image_is_named(views_run, capsys):
    path = views_run / "views" / "rgb" / "001.png"
    path.write_bytes(path.read_bytes()[:60])
    assert main(["gaussians", "-o", str(views_run)]) == 1
    line, _ = _error(capsys)
    assert str(path) in line and f"landscape4d views -o {views_run} --force" in line


# ----------------------------------------------------------------------------------------- one process per run


SLOW_DEPTH = """
import sys, time
import landscape4d.stages.depth as d
real = d.run
d.run = lambda ctx: (time.sleep(120), real(ctx))[1]
from landscape4d.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _wait_for_state(run: Path, stage: str, state: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads((run / "state.json").read_text())["stages"][stage]["state"] == state:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{stage} never reached {state} (exit {proc.poll()})")


def test_second_process_is_refused_and_a_killed_ones_lock_is_recovered(demo_input, tmp_path, capsys):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_DEPTH, *demo_argv(demo_input, "depth", run)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_state(run, "depth", "running", proc)
        before = tree_digest(run)
        assert main(demo_argv(demo_input, "depth", run)) == 2
        line, err = _error(capsys)
        assert line == f"landscape4d: error: {run}: is in use by pid {proc.pid} (a landscape4d command is running " \
                       "on this run folder; wait for it, or use another -o folder)", err
        assert ": running" not in err and tree_digest(run) == before
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (run / runlock.LOCK_NAME).read_text() == str(proc.pid)  # the killed process's lock is still there
    assert main(["depth", "-o", str(run)]) == 0
    err = capsys.readouterr().err
    assert "depth: an earlier run was interrupted here; resuming" in err and "depth: done" in err
    assert not (run / runlock.LOCK_NAME).exists()


def test_lock_without_flock_goes_by_the_pid(tmp_path, monkeypatch):
    """Where flock is missing, a lock file whose process is gone is taken over, a live one is refused."""
    monkeypatch.setattr(runlock, "fcntl", None)
    dead = 2**22 + 4321
    if runlock.pid_alive(dead):
        pytest.skip("the made-up pid is in use")
    (tmp_path / runlock.LOCK_NAME).write_text(str(dead))
    with runlock.RunLock(tmp_path):
        assert (tmp_path / runlock.LOCK_NAME).read_text() == str(os.getpid())
    (tmp_path / runlock.LOCK_NAME).write_text(str(os.getppid()))
    with pytest.raises(RunInUseError, match=f"in use by pid {os.getppid()}"):
        runlock.RunLock(tmp_path).acquire()


def test_lock_is_exclusive_within_one_process_too(tmp_path):
    with runlock.RunLock(tmp_path):
        with pytest.raises(RunInUseError, match=f"pid {os.getpid()}"):
            runlock.RunLock(tmp_path).acquire()
    with runlock.RunLock(tmp_path):  # released: free again
        pass
