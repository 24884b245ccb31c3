"""`bench pipeline --seeds`: which scenes are planned, how bad lists are refused (the pipeline itself is replaced
by a stub here; test_evaluation_commands runs a real tiny pipeline + eval)."""

from __future__ import annotations

import json

import pytest

from landscape4d.evaluation import bench


def test_scene_plan_default_and_seeds():
    kinds = ["river", "waterfall", "lake"]
    assert [(s.name, s.kind, s.seed) for s in bench.scene_plan(4, kinds)] == [
        ("river_0", "river", 0), ("waterfall_1", "waterfall", 1), ("lake_2", "lake", 2), ("river_3", "river", 3)]
    plan = bench.scene_plan(0, kinds, [5, 17, 42, 8])
    assert [(s.name, s.kind, s.seed) for s in plan] == [
        ("river_5", "river", 5), ("waterfall_17", "waterfall", 17), ("lake_42", "lake", 42), ("river_8", "river", 8)]


def test_parse_seeds():
    assert bench.parse_seeds(None, None) == [0, 1, 2]
    assert bench.parse_seeds(None, 2) == [0, 1]
    assert bench.parse_seeds("5,17,42", None) == [5, 17, 42]
    assert bench.parse_seeds(" 5, 17 ,42,", 3) == [5, 17, 42]
    for text, scenes, msg in (("5,x", None, "integers"), (",", None, "one or more"), ("-1", None, "non-negative"),
                              ("5,17", 3, "disagrees"), (None, 0, ">= 1")):
        with pytest.raises(ValueError, match=msg):
            bench.parse_seeds(text, scenes)


def _fake_bench_one(sc, args, out, log):
    ev = {"mean": {"ours": {"psnr": 20.0 + sc.seed}, "baseline": {"psnr": 18.0}}, "motion": {},
          "pipeline": {"stages": {}, "metrics": {}}}
    return {"scene": sc.name, "kind": sc.kind, "seed": sc.seed, "size": [64, 36], "frames": 4, "eval": ev,
            "eval_seconds": 1.0, "pipeline_rc": 0}


def test_bench_main_runs_one_scene_per_seed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "bench_one", _fake_bench_one)
    assert bench.main(["--seeds", "5,17,42", "--kinds", "river,lake", "-o", str(tmp_path / "b")]) == 0
    res = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert [(e["scene"], e["seed"]) for e in res["scenes"]] == [("river_5", 5), ("lake_17", 17), ("river_42", 42)]
    assert res["summary"]["video"]["ours"]["psnr"] == pytest.approx(20.0 + (5 + 17 + 42) / 3)
    md = capsys.readouterr().out
    assert "--seeds 5,17,42" in md and "river_5 (64x36, 4 frames), lake_17" in md and "| river_42 |" in md


@pytest.mark.parametrize("argv, msg", [(["--seeds", "5,a"], "integers"), (["--seeds", "1,2", "--scenes", "3"],
                                                                          "disagrees"),
                                        (["--seeds", "4,4,4", "--kinds", "river"], "river_4 twice"),
                                        (["--scenes", "0"], ">= 1"), (["--kinds", "sea"], "--kinds")])
def test_bench_bad_seeds_are_one_line_errors(tmp_path, monkeypatch, capsys, argv, msg):
    monkeypatch.setattr(bench, "bench_one", _fake_bench_one)
    assert bench.main(argv + ["-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err
    assert not (tmp_path / "b").exists()
