"""`eval` on a tiny synthetic ground truth and a tiny pipeline run; identical-video sanity; missing files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from landscape4d.cli import main as cli_main
from landscape4d.evaluation import generate_scene
from landscape4d.evaluation.bench import bench_markdown, save_gt, scene_size, summarise
from landscape4d.evaluation.commands import PSNR_CAP, comparison_strip, main as eval_main, resize_flow

FRAMES = 8
# the TINY config of test_pipeline_e2e, trimmed further: one trajectory, fewer iterations
TINY = ["--size", "96", "--num-views", "4", "--frames", str(FRAMES), "--set", "gaussians.iters=10",
        "--set", "gaussians.densify_from=4", "--set", "gaussians.densify_every=4", "--set",
        "gaussians.densify_until=8", "--set", "dynamics.iters=4", "--set", "motion.refine_iters=20",
        "--set", "animate.sampled_views=2", "--set", "render.gif=false", "--trajectory", "side"]


@pytest.fixture(scope="module")
def gt_and_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    gt = root / "gt"
    scene = generate_scene("river", seed=1, width=96, height=64, num_frames=FRAMES)
    save_gt(scene, gt, ("side",), fps=30)
    run = root / "run"
    argv = ["run", str(gt / "image.png"), "--mask", str(gt / "mask.png"), "--hints", str(gt / "hints.json"),
            "-o", str(run)] + TINY
    assert cli_main(argv) == 0
    return gt, run


def test_eval_run_writes_every_metric_and_the_strip(gt_and_run, tmp_path, capsys):
    gt, run = gt_and_run
    out = tmp_path / "ev"
    assert eval_main([str(run), "--gt", str(gt), "-o", str(out)]) == 0
    res = json.loads((out / "eval.json").read_text())
    assert res["trajectories"] == ["side"]
    side = res["per_trajectory"]["side"]
    for method in ("ours", "baseline"):
        m = side[method]
        for key in ("psnr", "ssim", "lpips", "m_psnr", "m_ssim", "m_lpips", "loop_seam_ssim", "sharpness_gradient"):
            assert isinstance(m[key], float) and np.isfinite(m[key]), (method, key)
        assert 5 < m["psnr"] < PSNR_CAP and 0 < m["ssim"] < 1 and 0 < m["lpips"] < 1
    mo = res["motion"]
    assert mo["gt_mean_speed_px_per_frame"] > 0
    for key in ("flow_epe_input_motion", "flow_epe_refined_3d", "consistency_epe_before",
                "consistency_epe_after_by_construction", "views_epe_initial_3d", "views_epe_refined_3d",
                "motion3d_epe_refined", "motion3d_epe_initial"):
        assert np.isfinite(mo[key]) and mo[key] >= 0, key
    assert set(res["pipeline"]["stages"]) >= {"gaussians", "dynamics", "render"}
    strip = np.asarray(Image.open(out / "strip_side.png"))
    assert strip.shape[1] == 3 * (96 + 2) and strip.shape[0] > 4 * 64  # GT | ours | baseline, 4 frames
    assert "| side | ours |" in (out / "eval.md").read_text()
    assert "ours PSNR" in capsys.readouterr().err


def test_eval_of_ground_truth_against_itself(gt_and_run, tmp_path):
    gt, run = gt_and_run
    fake = tmp_path / "run"
    shutil.copytree(run, fake)
    (fake / "render" / "side.mp4").unlink()
    shutil.copy(gt / "gt" / "side.npy", fake / "render" / "side.npy")  # the "rendered" video is the GT itself
    out = tmp_path / "ev"
    assert eval_main([str(fake), "--gt", str(gt), "-o", str(out), "--no-baseline"]) == 0
    ours = json.loads((out / "eval.json").read_text())["per_trajectory"]["side"]["ours"]
    assert ours["psnr"] == PSNR_CAP and ours["m_psnr"] == PSNR_CAP
    assert ours["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert ours["lpips"] == pytest.approx(0.0, abs=1e-6)


def test_eval_resizes_and_trims_mismatched_videos_with_a_note(gt_and_run, tmp_path):
    gt, run = gt_and_run
    fake = tmp_path / "run"
    shutil.copytree(run, fake)
    (fake / "render" / "side.mp4").unlink()
    video = np.load(gt / "gt" / "side.npy")
    small = np.stack([np.asarray(Image.fromarray(f).resize((48, 32), Image.BILINEAR)) for f in video[:6]])
    np.save(fake / "render" / "side.npy", small)
    out = tmp_path / "ev"
    assert eval_main([str(fake), "--gt", str(gt), "-o", str(out), "--no-baseline", "--no-lpips"]) == 0
    res = json.loads((out / "eval.json").read_text())
    notes = " ".join(res["notes"])
    assert "resized 48x32 -> GT size 96x64" in notes and "trimmed to 6" in notes
    ours = res["per_trajectory"]["side"]["ours"]
    assert res["per_trajectory"]["side"]["frames"] == 6 and 15 < ours["psnr"] < PSNR_CAP


def test_missing_gt_file_is_a_one_line_error(gt_and_run, tmp_path, capsys):
    gt, run = gt_and_run
    broken = tmp_path / "gt"
    shutil.copytree(gt, broken)
    (broken / "flow2d.npy").unlink()
    assert eval_main([str(run), "--gt", str(broken), "-o", str(tmp_path / "ev"), "--no-lpips"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "flow2d.npy" in err and "file not found" in err
    (broken / "gt" / "side.npy").unlink()
    assert eval_main([str(run), "--gt", str(broken), "--no-lpips"]) == 2
    assert "side.mp4" in capsys.readouterr().err


def test_resize_flow_scales_vectors():
    flow = np.zeros((4, 6, 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.5, -2.0
    big = resize_flow(flow, 8, 18)
    assert big.shape == (8, 18, 2)
    assert np.allclose(big[..., 0], 4.5) and np.allclose(big[..., 1], -4.0)


def test_comparison_strip_layout():
    a = np.zeros((5, 12, 16, 3), np.uint8)
    b = np.full((5, 12, 16, 3), 200, np.uint8)
    strip = comparison_strip([("GT", a), ("ours", b)], 3)
    assert strip.shape == (16 + 3 * (12 + 2), 2 * (16 + 2), 3)
    assert (strip[16:28, 18:34] == 200).all() and (strip[16:28, 0:16] == 0).all()


def test_bench_summary_and_table_from_entries():
    assert scene_size(192) == (192, 108)
    ev = {"mean": {"ours": {"psnr": 20.0, "ssim": 0.5}, "baseline": {"psnr": 18.0, "ssim": 0.4}},
          "motion": {"consistency_epe_before": 0.1, "views_epe_initial_3d": 0.05, "views_epe_refined_3d": 0.02},
          "pipeline": {"stages": {"render": {"seconds": 2.0, "peak_rss_mb": 100.0}},
                       "metrics": {"flow_epe_input_view": 0.5}}}
    entries = [{"scene": "river_0", "size": [192, 108], "frames": 60, "eval": ev, "eval_seconds": 1.0},
               {"scene": "lake_1", "size": [192, 108], "frames": 60, "eval": json.loads(json.dumps(ev)),
                "eval_seconds": 3.0}]
    entries[1]["eval"]["mean"]["ours"]["psnr"] = 22.0
    s = summarise(entries)
    assert s["video"]["ours"]["psnr"] == pytest.approx(21.0) and s["stages"]["render"]["seconds"] == 2.0
    md = bench_markdown(s, entries, "landscape4d bench pipeline --scenes 2")
    assert "| ours (4D Gaussians), this run | 21.00 | 0.500 |" in md and "20.57" in md and "0.152 (Table II" in md
    assert "| 0.0500 -> 0.0200 |" in md  # each view's own estimate vs the projected 3D motion
    assert "| ... without motion init | - |" in md and "Table IV" not in md
    for e in entries:  # runs made with --ablations
        e["eval"]["pipeline"]["metrics"].update({"flow_epe_input_view_no_motion_init": 0.7,
                                                 "video_generation_seconds_two_stage": 1.0,
                                                 "video_generation_seconds_single_stage": 8.0,
                                                 "train_4d_seconds_two_stage": 10.0,
                                                 "train_4d_seconds_single_stage": 20.0})
    md = bench_markdown(summarise(entries), entries, "landscape4d bench pipeline --scenes 2")
    assert "| ... without motion init | 0.700 |" in md
    assert "| video generation | 1.0 | 8.0 |" in md and "| 4D training | 10.0 | 20.0 |" in md


def test_run_summary_reads_the_ablation_tables(tmp_path):
    from landscape4d.evaluation.commands import run_summary

    dyn = {"flow_epe_input_view": 0.1, "table_iii_flow_epe": {"with_motion_init": 0.1, "without_motion_init": 0.2},
           "table_iv_stage_seconds": {"two_stage": {"video_generation_seconds": 1.5, "train_4d_seconds": 9.0},
                                      "single_stage": {"video_generation_seconds": 12.0, "train_4d_seconds": 30.0}}}
    (tmp_path / "report.json").write_text(json.dumps({"stages": {"dynamics": {"seconds": 50.0, "metrics": dyn}}}))
    head = run_summary(tmp_path)["metrics"]
    assert head["flow_epe_input_view_no_motion_init"] == 0.2
    assert head["video_generation_seconds_single_stage"] == 12.0 and head["train_4d_seconds_two_stage"] == 9.0


def test_projected_input_motion_matches_the_ground_truth_projection():
    from landscape4d.camera import Intrinsics, unproject_depth
    from landscape4d.evaluation.commands import projected_input_motion
    from landscape4d.evaluation.synthetic import image_flow

    rng = np.random.default_rng(5)
    intr = Intrinsics.from_fov(20, 12, 60.0)
    depth = (1.0 + 3.0 * rng.random((12, 20))).astype(np.float32)
    vel = (0.02 * rng.normal(size=(240, 3))).astype(np.float32)
    moving = rng.random(240) > 0.3
    got = projected_input_motion(depth, intr, vel, moving)
    ref = image_flow(unproject_depth(depth, intr), vel, intr).reshape(12, 20, 2) * moving.reshape(12, 20, 1)
    assert np.allclose(got, ref, atol=1e-4)
    assert np.abs(got).max() > 0.05


def test_bench_regenerates_an_interrupted_ground_truth(tmp_path):
    from landscape4d.evaluation.bench import gt_complete

    assert not gt_complete(tmp_path, ("side",))
    (tmp_path / "scene.json").write_text(json.dumps({"trajectories": []}))  # killed before the GT videos
    assert not gt_complete(tmp_path, ("side",))
    (tmp_path / "scene.json").write_text(json.dumps({"trajectories": ["side"]}))
    assert not gt_complete(tmp_path, ("side",))
    (tmp_path / "gt").mkdir()
    np.save(tmp_path / "gt" / "side.npy", np.zeros((1, 2, 2, 3), np.uint8))
    assert gt_complete(tmp_path, ("side",)) and not gt_complete(tmp_path, ("side", "circle"))
