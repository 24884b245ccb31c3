"""The whole pipeline on a tiny demo input through the CLI, then rendering from the 4D scene file alone."""

from __future__ import annotations

import json

import numpy as np

from landscape4d.cli import main
from landscape4d.io.video import read_video

TINY = ["--size", "96", "--num-views", "5", "--frames", "8", "--set", "gaussians.iters=20",
        "--set", "gaussians.densify_from=5", "--set", "gaussians.densify_every=5", "--set", "gaussians.densify_until=15",
        "--set", "dynamics.iters=6", "--set", "motion.refine_iters=30", "--set", "animate.sampled_views=2"]


def test_run_end_to_end_and_render_from_scene_file(demo_input, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["run", str(demo_input["image"]), "--mask", str(demo_input["mask"]), "--hints",
            str(demo_input["hints"]), "-o", str(run)] + TINY
    assert main(argv) == 0, capsys.readouterr().err
    report = json.loads((run / "report.json").read_text())
    for stage in ("depth", "views", "motion", "gaussians", "animate", "dynamics", "render"):
        entry = report["stages"][stage]
        assert entry["seconds"] > 0 and entry["peak_rss_mb"] > 0, stage
    assert (run / "gaussians" / "scene.ply").exists() and (run / "dynamics" / "scene4d.safetensors").exists()
    dyn = report["stages"]["dynamics"]["metrics"]
    assert dyn["loop_closure_max_abs"] < 1e-5 and dyn["gaussians_moving"] > 0
    assert np.isfinite(dyn["flow_epe_input_view"])
    for name in ("up-down", "zoom-in", "side", "circle"):
        video = read_video(run / "render" / f"{name}.mp4")
        assert video.shape[0] == 8 and video.std() > 5, name
        assert (run / "render" / f"{name}.gif").exists()
    # the moving region changes over time at the input view, the sky does not
    out = tmp_path / "alone"
    assert main(["render", "--scene", str(run / "dynamics" / "scene4d.safetensors"), "-o", str(out),
                 "--trajectory", "side", "--set", "render.width=64", "--set", "render.gif=false"]) == 0
    video = read_video(out / "side.mp4")
    assert video.shape[2] == 64 and video.shape[0] == 8
    assert json.loads((out / "report.json").read_text())["render"]["paths"]["side"]["frames"] == 8
