"""What each stage reads and what reruns: the config view refuses undeclared reads, every config value changes the
cache keys of exactly the stages that read it (and those after them), device and threads change none; flags
apply per invocation (ablations can be turned off again); threads default to the usable cores; python -m."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from landscape4d import pipeline
from landscape4d.cli import build_parser, main, resolve_config
from landscape4d.config import CHOICES, ConfigView, RunConfig, _flat, apply_overrides, preset
from landscape4d.errors import StageFailed, UndeclaredConfigError

# What each stage reads, from reading the stages' code (an independent record of pipeline.STAGES' declarations):
# "section" is the whole section, "section.key" one value. size and seed: every stage.
READS = {
    "depth": {"depth"},
    "views": {"views"},
    "motion": {"motion"},
    "gaussians": {"gaussians", "dynamics.all_views"},
    "animate": {"animate"},
    "dynamics": {"dynamics", "animate", "gaussians"},
    "render": {"render", "gaussians.backend"},
}
NOT_IN_ANY_KEY = {"preset", "device", "threads", "max_input_pixels", "min_input_side"}  # how, not what


def _changed(key: str, value):
    """Another valid-looking value for a config value."""
    if key in CHOICES:
        return next(c for c in CHOICES[key] if c != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 1
    if isinstance(value, tuple):
        return value[:1] if len(value) > 1 else (1.0, 0.0)
    if value is None:
        return {"motion.direction": (1.0, 0.0)}.get(key, 7 if key.startswith("render.") else "x")
    return f"{value}x"


def _readers(key: str) -> set[str]:
    if key in ("size", "seed"):
        return set(READS)
    section = key.split(".")[0]
    direct = {s for s, reads in READS.items() if section in reads or key in reads}
    return pipeline.downstream(direct)


def _all_values():
    return [(k, v) for k, v in _flat(RunConfig())]


def test_declarations_match_the_record():
    assert {s.name: set(s.reads) for s in pipeline.STAGES} == READS


def test_each_config_value_changes_exactly_its_readers_keys():
    base = pipeline.stage_keys(RunConfig(), "input")
    for key, value in _all_values():
        cfg = RunConfig()
        section, _, leaf = key.rpartition(".")
        setattr(getattr(cfg, section) if section else cfg, leaf, _changed(key, value))
        keys = pipeline.stage_keys(cfg, "input")
        changed = {s for s in keys if keys[s] != base[s]}
        expected = set() if key in NOT_IN_ANY_KEY else _readers(key)
        assert changed == expected, key


def test_config_view_refuses_undeclared_reads():
    cfg = RunConfig()
    view = ConfigView(cfg, ("render", "gaussians.backend"), "render")
    assert view.render.fps == cfg.render.fps and view.gaussians.backend == "auto" and view.seed == 0
    assert view.size == cfg.size
    for read in (lambda: view.animate, lambda: view.gaussians.iters, lambda: view.device, lambda: view.threads,
                 lambda: view.preset):
        with pytest.raises(UndeclaredConfigError, match="render"):
            read()
    view.render.fps = 1  # a stage's own copy: the run's config is unchanged
    assert cfg.render.fps == RunConfig().render.fps
    with pytest.raises(AttributeError):
        view.size = 3


# ----------------------------------------------------------------------- the pipeline with cheap stand-in stages


def fake_stage(ctx) -> dict:
    """A stand-in stage: reads everything its Stage entry declares (through the view) and writes it down."""
    seen = {}
    for r in pipeline.stage(ctx.name).reads:
        section, _, key = r.partition(".")
        v = getattr(ctx.cfg, section)
        seen[r] = getattr(v, key) if key else dataclasses.asdict(v)
    (ctx.out / "seen.json").write_text(json.dumps(seen, default=str))
    return {}


def undeclared_stage(ctx) -> dict:
    return {"frames": ctx.cfg.animate.num_frames}  # render does not declare animate


@pytest.fixture
def fake_pipeline(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "STAGES", tuple(dataclasses.replace(s, runner=f"{__name__}:fake_stage")
                                                  for s in pipeline.STAGES))
    run = tmp_path / "run"
    (run / "input").mkdir(parents=True)
    (run / "input" / "image.png").write_bytes(b"stand-in")

    def run_with(cfg: RunConfig, target: str = "render") -> set[str]:
        logs: list[str] = []
        pipeline.Pipeline(run, cfg, log=logs.append).run(target)
        return {m.split()[1].rstrip(":") for m in logs if m.endswith(": running")}

    return run, run_with


def test_each_config_value_reruns_exactly_the_stages_that_read_it(fake_pipeline):
    """One value after the other is changed (the changes add up) and the pipeline rerun each time."""
    run, run_with = fake_pipeline
    cfg = RunConfig()
    assert run_with(cfg) == set(READS)
    for key, value in _all_values():
        section, _, leaf = key.rpartition(".")
        setattr(getattr(cfg, section) if section else cfg, leaf, _changed(key, value))
        expected = set() if key in NOT_IN_ANY_KEY else _readers(key)
        assert run_with(cfg) == expected, key
    seen = json.loads((run / "render" / "seen.json").read_text())
    assert seen["gaussians.backend"] == cfg.gaussians.backend and seen["render"]["fps"] == cfg.render.fps


def test_undeclared_read_fails_the_stage_loudly(fake_pipeline, monkeypatch):
    run, run_with = fake_pipeline
    run_with(RunConfig())
    stages = tuple(dataclasses.replace(s, runner=f"{__name__}:undeclared_stage") if s.name == "render" else s
                   for s in pipeline.STAGES)
    monkeypatch.setattr(pipeline, "STAGES", stages)
    with pytest.raises(StageFailed, match="stage render reads config 'animate' but does not declare it") as e:
        pipeline.Pipeline(run, RunConfig(), log=lambda m: None).run("render", force=True)
    assert e.value.exit_code == 1 and "UndeclaredConfigError" in (run / "logs" / "error-render.txt").read_text()


# -------------------------------------------------------------------------------------- flags per invocation


def _cfg(argv: list[str], run: Path) -> RunConfig:
    return resolve_config(build_parser().parse_args(argv), run)


def _save(cfg: RunConfig, run: Path) -> None:
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))


def test_ablation_flags_are_recorded_and_can_be_turned_off(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    normal = preset("preview")
    cfg = _cfg(["dynamics", "photo.png", "-o", str(run), "--all-views", "--no-motion-init",
                "--set", "dynamics.iters=7"], run)
    assert cfg.dynamics.all_views and cfg.animate.all_views and not cfg.dynamics.motion_init
    assert cfg.gaussians == normal.gaussians  # --all-views changes nothing else (it set gaussians.iters=0)
    _save(cfg, run)
    again = _cfg(["dynamics", "-o", str(run)], run)  # a rerun picks up RUN/config.json: the ablations stay
    assert again.dynamics.all_views and not again.dynamics.motion_init and again.dynamics.iters == 7
    off = _cfg(["dynamics", "-o", str(run), "--no-ablations"], run)
    assert (off.dynamics.all_views, off.animate.all_views, off.dynamics.motion_init, off.dynamics.ablations) == \
        (False, False, True, False)
    assert off.dynamics.iters == 7 and off.gaussians == normal.gaussians  # --set values stay
    fresh = _cfg(["dynamics", "-o", str(run), "--preset", "preview"], run)  # a preset starts again from it
    assert fresh.to_dict() == normal.to_dict()
    with pytest.raises(ValueError, match="--no-ablations"):
        _cfg(["dynamics", "-o", str(run), "--no-ablations", "--all-views"], run)


def test_device_and_threads_are_for_one_command(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    cfg = _cfg(["depth", "photo.png", "-o", str(run), "--device", "cpu", "--threads", "3", "--size", "200"], run)
    assert (cfg.device, cfg.threads, cfg.size) == ("cpu", 3, 200)
    _save(cfg, run)
    again = _cfg(["depth", "-o", str(run)], run)
    assert (again.device, again.threads, again.size) == ("auto", 0, 200)


def test_unreadable_saved_config_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "input").mkdir(parents=True)
    (run / "input" / "image.png").write_bytes(b"x")
    (run / "config.json").write_text("{not json")
    assert main(["depth", "-o", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'config.json'}: not a readable run config" in err and "Traceback" not in err


# -------------------------------------------------------------------------------------- threads, python -m


def test_threads_default_to_the_usable_cores(demo_input, tmp_path, capsys):
    from test_robustness_runs import demo_argv

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    run = tmp_path / "run"
    argv = demo_argv(demo_input, "depth", run)
    i = argv.index("--threads")
    del argv[i:i + 2]
    before = torch.get_num_threads()
    assert main(argv) == 0
    assert json.loads((run / "report.json").read_text())["threads"] == cores
    assert torch.get_num_threads() == before  # the caller's own setting is given back
    assert main(["depth", "-o", str(run), "--threads", "1"]) == 0
    assert json.loads((run / "report.json").read_text())["threads"] == 1
    assert "depth: unchanged, skipped" in capsys.readouterr().err  # threads are not part of any cache key


def test_python_dash_m():
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-m", "landscape4d", "depth", "-o", "/nonexistent/run"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 2 and "/nonexistent/run: no photo given" in r.stderr, r.stderr


def test_apply_overrides_keeps_ablation_names_valid():
    from landscape4d.config import ABLATIONS_OFF

    cfg = apply_overrides(RunConfig(), ["dynamics.all_views=true", "animate.all_views=true",
                                        "dynamics.motion_init=false", "dynamics.ablations=true"])
    assert apply_overrides(cfg, list(ABLATIONS_OFF)).to_dict() == RunConfig().to_dict()
