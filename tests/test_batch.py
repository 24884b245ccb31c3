"""`landscape4d batch`: discovery of photos with their masks and hints, per-photo failure isolation, the summary
(batch.json, batch.md, the printed table), exit codes, sequential mode and a local Ray instance."""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landscape4d import batch
from landscape4d.batch import BatchOptions, BatchTask, discover_tasks, format_table, task_argv
from landscape4d.demo import make_demo_input

CHEAP = ["--set", "size=96", "--set", "views.num_views=3", "--stage", "views"]


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="landscape4d")
    sub = ap.add_subparsers(dest="command", required=True)
    batch.add_parsers(sub)
    sub.add_parser("depth")
    return ap.parse_args(argv)


def run_cli(argv: list[str]) -> int:
    code = batch.dispatch(_parse(["batch", *argv]))
    assert code is not None
    return code


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """Two good demo photos (one with a mask PNG + hints, one with a labelme file) and one corrupt JPEG."""
    d = tmp_path_factory.mktemp("photos")
    a = make_demo_input(tmp_path_factory.mktemp("a"), 192, 108, seed=1)
    shutil.copy(a["image"], d / "meadow.png")
    shutil.copy(a["mask"], d / "meadow_mask.png")
    shutil.copy(a["hints"], d / "meadow_hints.json")
    b = make_demo_input(tmp_path_factory.mktemp("b"), 160, 120, seed=2)
    shutil.copy(b["image"], d / "river.png")
    hints = json.loads(b["hints"].read_text())["hints"]
    (d / "river.json").write_text(json.dumps({
        "imageWidth": 160, "imageHeight": 120,
        "shapes": [{"label": "motion", "shape_type": "polygon", "points": [[0, 70], [160, 70], [160, 120], [0, 120]]}]
        + [{"label": f"hint{i}", "shape_type": "line", "points": [h["start"], h["end"]]} for i, h in enumerate(hints)]}))
    Image.open(d / "meadow.png").convert("RGB").save(d / "broken.jpg", quality=90)
    data = (d / "broken.jpg").read_bytes()
    (d / "broken.jpg").write_bytes(data[: len(data) // 2])  # cut in half
    return d


# ------------------------------------------------------------------------------------------------ discovery


def test_discover_tasks(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for name in ["a.jpg", "a.json", "b.PNG", "b_mask.png", "b_hints.json", "c.webp", "d_mask.png", "e.jpg", "e.png",
                 ".hidden.png", "notes.txt", "f.jpeg", "f_mask.png", "f.json"]:
        (d / name).write_bytes(b"x")
    (d / "sub").mkdir()
    (d / "sub" / "g.jpg").write_bytes(b"x")
    tasks = {t.photo.name: t for t in discover_tasks(d, tmp_path / "out")}
    assert sorted(tasks) == ["a.jpg", "b.PNG", "c.webp", "e.jpg", "e.png", "f.jpeg"]
    assert tasks["a.jpg"].mask == d / "a.json" and tasks["a.jpg"].hints is None
    assert tasks["b.PNG"].mask == d / "b_mask.png" and tasks["b.PNG"].hints == d / "b_hints.json"
    assert tasks["c.webp"].mask is None and tasks["c.webp"].problem is None
    assert tasks["f.jpeg"].mask == d / "f.json"  # the labelme file wins over a mask PNG
    assert tasks["e.jpg"].problem and "share the name" in tasks["e.png"].problem
    assert tasks["a.jpg"].run_dir == (tmp_path / "out" / "a").resolve() and tasks["a.jpg"].photo.is_absolute()


def test_task_argv():
    t = BatchTask("x", Path("/p/x.jpg"), Path("/p/x.json"), None, Path("/o/x"))
    assert task_argv(t, BatchOptions(stage="render", sets=["size=64"])) == [
        "run", "/p/x.jpg", "-o", "/o/x", "--mask", "/p/x.json", "--set", "size=64"]
    assert task_argv(t, BatchOptions(stage="views", preset="full"))[:1] == ["views"]
    assert "--preset" in task_argv(t, BatchOptions(stage="views", preset="full"))


def test_gpus_per_task():
    assert batch.gpus_per_task(BatchOptions(), {"CPU": 16.0, "GPU": 2.0}) == 1.0
    assert batch.gpus_per_task(BatchOptions(), {"CPU": 2.0}) == 0.0
    assert batch.gpus_per_task(BatchOptions(gpus_per_task=0.5), {"CPU": 2.0, "GPU": 1.0}) == 0.5
    assert batch.gpus_per_task(BatchOptions(gpus_per_task=0), {"GPU": 1.0}) == 0.0


def test_format_table_escapes():
    table = format_table([{"photo": "/a/x|y.jpg", "status": "failed", "seconds": 1.25, "error": "a | b\nc",
                           "run_dir": "/o/x"}])
    row = table.splitlines()[2]
    assert row.count(" | ") == 4 and "x\\|y.jpg" in row and "a \\| b c" in row and "1.2" in row


def test_dispatch_ignores_other_commands():
    assert batch.dispatch(_parse(["depth"])) is None


# --------------------------------------------------------------------------------------- usage errors (exit 2)


def test_usage_errors(tmp_path, capsys):
    assert run_cli([str(tmp_path / "missing"), "-o", str(tmp_path / "o"), "--ray", "none"]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_cli([str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "--ray", "none"]) == 2
    assert "no photos" in capsys.readouterr().err
    (tmp_path / "empty" / "a.png").write_bytes(b"x")
    assert run_cli([str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "--ray", "none", "--set", "nope=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("landscape4d: error:") == 1 and "nope" in err
    (tmp_path / "file").write_text("x")
    assert run_cli([str(tmp_path / "empty"), "-o", str(tmp_path / "file" / "o"), "--ray", "none"]) == 2
    assert "cannot create the output folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ sequential mode


def _check_summary(out: Path, printed: str, expect_ray: str) -> dict:
    summary = json.loads((out / "batch.json").read_text())
    rows = {Path(t["photo"]).name: t for t in summary["tasks"]}
    assert summary["photos"] == 3 and summary["succeeded"] == 2 and summary["failed"] == 1
    assert summary["ray"] == expect_ray and summary["stage"] == "views"
    for name in ("meadow.png", "river.png"):
        r = rows[name]
        assert r["status"] == "ok" and r["error"] is None and r["seconds"] > 0, r
        run = Path(r["run_dir"])
        assert run == out / Path(name).stem and (run / "views" / ".stage.json").exists()
        assert (run / "input" / "mask.png").exists() and not (run / "motion").exists()
        assert "views: done" in Path(r["log"]).read_text() or "views: unchanged" in Path(r["log"]).read_text()
    bad = rows["broken.jpg"]
    assert bad["status"] == "failed" and "broken.jpg" in bad["error"] and "cannot decode" in bad["error"]
    assert bad["exit_code"] == 2 and "Traceback" not in Path(bad["log"]).read_text()
    md = (out / "batch.md").read_text()
    assert "| photo | status | seconds | error | run folder |" in md and md.count("| ok |") == 2
    assert "| failed |" in md and "| photo | status |" in printed and "broken.jpg" in printed
    river_mask = np.asarray(Image.open(out / "river" / "input" / "mask.png"))
    assert river_mask[-1].all() and not river_mask[0].any()  # the labelme polygon was used
    return summary


def test_sequential_batch(photo_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_cli([str(photo_folder), "-o", str(out), "--ray", "none", *CHEAP])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    _check_summary(out, captured.out, "none")
    assert "[batch] broken: failed:" in captured.err and "2 of 3 photos succeeded" in captured.err

    # without the corrupt photo: exit 0, and both runs resume from their finished stages
    good = tmp_path / "good"
    shutil.copytree(photo_folder, good, ignore=shutil.ignore_patterns("broken.*"))
    assert run_cli([str(good), "-o", str(out), "--ray", "none", *CHEAP]) == 0
    assert "views: unchanged, skipped" in (out / "river" / "batch.log").read_text()
    assert json.loads((out / "batch.json").read_text())["succeeded"] == 2


def test_a_crashing_photo_does_not_stop_the_others(photo_folder, tmp_path, monkeypatch, capsys):
    """An unexpected exception in one photo's stage (a bug) is recorded with its traceback in that photo's
    RUN/logs/error-depth.txt, named in the table."""
    import landscape4d.stages.depth as depth_stage

    real = depth_stage.run

    def crash_for_meadow(ctx):
        if ctx.run_dir.name == "meadow":
            raise RuntimeError("boom")
        return real(ctx)

    monkeypatch.setattr(depth_stage, "run", crash_for_meadow)
    out = tmp_path / "out"
    assert run_cli([str(photo_folder), "-o", str(out), "--ray", "none", *CHEAP]) == 1
    rows = {Path(t["photo"]).name: t for t in json.loads((out / "batch.json").read_text())["tasks"]}
    log = out / "meadow" / "logs" / "error-depth.txt"
    assert rows["meadow.png"]["status"] == "failed" and rows["meadow.png"]["exit_code"] == 1
    assert rows["meadow.png"]["error"] == f"depth: failed: RuntimeError: boom (traceback in {log})"
    assert "Traceback" in log.read_text() and "Traceback" not in Path(rows["meadow.png"]["log"]).read_text()
    assert rows["river.png"]["status"] == "ok"
    capsys.readouterr()


def test_interrupted_batch_writes_its_summary(photo_folder, tmp_path, monkeypatch, capsys):
    calls, real = [], batch.run_task

    def interrupted(photo, run_dir, argv, threads=None):
        calls.append(photo)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(photo, run_dir, argv, threads)

    monkeypatch.setattr(batch, "run_task", interrupted)
    out = tmp_path / "out"
    assert run_cli([str(photo_folder), "-o", str(out), "--ray", "none", *CHEAP]) == 130
    rows = json.loads((out / "batch.json").read_text())["tasks"]
    assert len(calls) == 2  # broken.jpg (fails at once), then meadow.png is interrupted; river.png never starts
    assert [r["status"] for r in rows] == ["failed", "interrupted", "interrupted"]
    capsys.readouterr()


# ---------------------------------------------------------------------------------------------- Ray, locally


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_local_batch(photo_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_cli([str(photo_folder), "-o", str(out), *CHEAP])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    summary = _check_summary(out, captured.out, "local")
    assert summary["cluster_cpus"] >= 1 and summary["cpus_per_task"] == 1.0
    import torch

    assert summary["gpus_per_task"] == (1.0 if torch.cuda.is_available() else 0.0)
    import ray

    assert not ray.is_initialized()  # the local instance is shut down at the end
