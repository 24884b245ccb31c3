"""The whole pipeline on a tiny demo input through the CLI, then rendering from the 4D scene file alone."""

from __future__ import annotations

import json

import numpy as np

from landscape4d.cli import main
from landscape4d.io.video import read_video

# one thread: the suite runs on a small shared machine (the default is every core this process may use)
TINY = ["--threads", "1", "--size", "96", "--num-views", "5", "--frames", "8",
        "--set", "gaussians.iters=20", "--set", "gaussians.densify_from=5", "--set", "gaussians.densify_every=5",
        "--set", "gaussians.densify_until=15", "--set", "dynamics.iters=6", "--set", "motion.refine_iters=30",
        "--set", "animate.sampled_views=2"]


def test_run_end_to_end_and_render_from_scene_file(demo_input, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["run", str(demo_input["image"]), "--mask", str(demo_input["mask"]), "--hints",
            str(demo_input["hints"]), "-o", str(run)] + TINY
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out  # the summary: videos, scene file, the viewer command
    assert f"videos:  {run / 'render'}/ (circle.mp4, side.mp4, up-down.mp4, zoom-in.mp4)" in out
    assert f"scene:   {run / 'dynamics' / 'scene4d.safetensors'}" in out and f"landscape4d view {run}" in out
    # device and threads say how to compute, not what: a rerun with others finds every stage current
    assert main(["run", "-o", str(run), "--device", "cpu", "--threads", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count("unchanged, skipped") == 7 and ": running" not in err, err
    report = json.loads((run / "report.json").read_text())
    assert report["threads"] == 2 and report["device"] == "cpu"
    for stage in ("depth", "views", "motion", "gaussians", "animate", "dynamics", "render"):
        entry = report["stages"][stage]
        assert entry["seconds"] > 0 and entry["peak_rss_mb"] > 0, stage
    assert (run / "gaussians" / "scene.ply").exists() and (run / "dynamics" / "scene4d.safetensors").exists()
    dyn = report["stages"]["dynamics"]["metrics"]
    loop = dyn["loop_input_view"]  # measured on rendered frames (tests/test_dynamics.py checks the values)
    assert dyn["gaussians_moving"] > 0 and loop["mean_step"] > 0 and np.isfinite(loop["seam_ratio"])
    assert loop["alpha_range"] < 0.05
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


def test_ablations_report_the_papers_tables(demo_input, tmp_path, capsys):
    """--ablations trains the no-motion-init and single-stage variants beside the main one (Tables III and IV);
    --all-views is the single-stage run itself: no stage-1 fit, every view animated and trained on."""
    run = tmp_path / "run"
    argv = ["dynamics", str(demo_input["image"]), "--mask", str(demo_input["mask"]), "--hints",
            str(demo_input["hints"]), "-o", str(run), "--ablations"] + TINY + ["--set", "dynamics.single_stage_iters=9"]
    assert main(argv) == 0, capsys.readouterr().err
    dyn = json.loads((run / "report.json").read_text())["stages"]["dynamics"]["metrics"]
    t3 = dyn["table_iii_flow_epe"]
    assert t3["with_motion_init"] == dyn["flow_epe_input_view"] and np.isfinite(t3["without_motion_init"])
    t4 = dyn["table_iv_stage_seconds"]
    two, one = t4["two_stage"], t4["single_stage"]
    assert (two["views_animated"], one["views_animated"]) == (2, 5)
    assert (two["iters_4d"], one["iters_4d"]) == (6, 9) and one["static_3d_seconds"] == 0
    assert two["static_3d_seconds"] > 0 and two["video_generation_seconds"] > 0
    assert t4["video_generation_speedup"] == round(one["video_generation_seconds"] / two["video_generation_seconds"], 2)
    assert set(one["psnr_clips"]) == set(two["psnr_clips"])

    assert main(["dynamics", "-o", str(run), "--all-views"]) == 0, capsys.readouterr().err
    report = json.loads((run / "report.json").read_text())
    assert report["stages"]["gaussians"]["metrics"]["iters"] == 0  # single stage: no stage-1 fit
    assert report["config"]["gaussians"]["iters"] == 20  # ... without touching the config (--no-ablations undoes it)
    assert len(report["stages"]["animate"]["metrics"]["views"]) == 5
    dyn = report["stages"]["dynamics"]["metrics"]
    assert dyn["mode"] == "single-stage" and dyn["iters"] == 9 and len(dyn["trained_on_views"]) == 5
    assert "table_iv_stage_seconds" not in dyn
