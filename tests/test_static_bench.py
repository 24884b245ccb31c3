"""`landscape4d bench static`: a tiny real run of two recipe variants (pipeline up to gaussians, renders from novel
cameras against the GT ray caster at t = 0, the 2D baseline's static part) and the one-line errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from landscape4d.cli import main as cli_main
from landscape4d.evaluation import static_bench

TINY = ["--size", "128", "--cameras", "2", "--no-lpips", "--set", "threads=1", "--set", "views.num_views=4",
        "--set", "gaussians.iters=10", "--set", "gaussians.densify_from=4", "--set", "gaussians.densify_every=4",
        "--set", "gaussians.densify_until=8"]


def test_novel_cameras_spread_over_the_trajectories_and_avoid_the_input_camera():
    for count in (1, 2, 4, 6, 9):
        cams = static_bench.novel_cameras(count)
        assert len(cams) == count
        assert len({c.trajectory for c in cams}) == min(count, 4)
        for c in cams:
            assert 0 < c.phase < 1
            assert np.linalg.norm(c.pose(10.0)[:3, 3]) > 1e-3  # never the input camera (identity)
    assert [(c.trajectory, c.phase) for c in static_bench.novel_cameras(6)][:2] == [("up-down", 0.125),
                                                                                     ("up-down", 0.625)]


def test_bench_static_tiny_run(tmp_path, capsys):
    out = tmp_path / "sb"
    assert static_bench.main(TINY + ["--variants", "old,preview", "-o", str(out)]) == 0
    res = json.loads((out / "static_bench.json").read_text())
    rows = {r["name"]: r for r in res["rows"]}
    assert [r["name"] for r in res["rows"]] == ["baseline", "old", "preview"]
    assert res["size"] == [128, 72] and len(res["cameras"]) == 2 and res["gt_time"] == 0.0
    for name, r in rows.items():
        assert 8.0 < r["psnr"] < 60.0 and 0.0 < r["ssim"] <= 1.0 and math.isfinite(r["psnr_static"]), name
        assert "lpips" not in r
    for name in ("old", "preview"):
        r = rows[name]
        assert r["rc"] == 0 and 5.0 < r["psnr_input_view"] < 60.0 and r["gaussians_seconds"] > 0
        assert 0.0 <= r["coverage"] <= 1.0 and r["num_gaussians"] == r["num_gaussians_trained"]
    assert rows["preview"]["num_gaussians"] > rows["old"]["num_gaussians"]  # one per pixel vs one per 2x2
    assert rows["old"]["overrides"] == list(static_bench.VARIANTS["old"])
    assert (out / "static_strip.png").is_file() and (out / "static_bench.md").is_file()
    table = capsys.readouterr().out
    assert "| baseline |" in table and "| old |" in table and "| preview |" in table


@pytest.mark.parametrize("argv, msg", [(["--variants", "old,nope"], "nope"), (["--kind", "sea"], "--kind"),
                                       (["--cameras", "0"], "--cameras"), (["--size", "96"], "--size"),
                                       (["--set", "gaussians.nope=1"], "nope")])
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, argv, msg):
    out = tmp_path / "sb"
    assert cli_main(["bench", "static", "--no-lpips", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err
    if msg == "nope" and "variants" in argv:
        assert "old, per-pixel-knn, footprint, footprint-photo-every-3, preview, preview-hole-weight-0.1" in err
    assert not out.exists()
