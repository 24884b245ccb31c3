"""Depth backends, forward splatting against analytic projection, the views stage and stage caching."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from landscape4d.artifacts import load_views
from landscape4d.camera import Intrinsics, look_at, unproject_depth
from landscape4d.cli import main
from landscape4d.config import DepthConfig
from landscape4d.depth import estimate_depth
from landscape4d.errors import InputError
from landscape4d.views import render_view, splat_points


def _plane_cloud(h=48, w=64, z=5.0):
    intr = Intrinsics.from_fov(w, h, 60)
    depth = np.full((h, w), z, np.float32)
    return intr, depth, torch.from_numpy(unproject_depth(depth, intr))


def test_splat_matches_analytic_projection():
    intr, depth, pts = _plane_cloud()
    h, w = depth.shape
    marker = np.zeros((h * w, 1), np.float32)
    marker[20 * w + 30] = 1.0  # one marked point
    c2w = np.eye(4)
    c2w[:3, 3] = [0.4, -0.2, 1.0]  # move right, up and forward
    img, dep, weight = splat_points(pts, torch.from_numpy(marker), torch.from_numpy(depth.ravel()), intr, c2w)
    img = img[..., 0].numpy()
    # analytic projection of the marked point
    p = pts[20 * w + 30].numpy() - c2w[:3, 3]
    u = intr.fx * p[0] / p[2] + intr.cx
    v = intr.fy * p[1] / p[2] + intr.cy
    ii, jj = np.nonzero(img > 1e-3)
    wts = img[ii, jj]
    cu, cv = (np.sum(wts * (jj + 0.5)) / wts.sum(), np.sum(wts * (ii + 0.5)) / wts.sum())
    assert abs(cu - u) < 0.5 and abs(cv - v) < 0.5
    covered = weight.numpy() > 0
    np.testing.assert_allclose(dep.numpy()[covered], 4.0, rtol=1e-5)  # plane at z=5 seen from z=1


def test_zbuffer_box_occludes_plane():
    intr, depth, _ = _plane_cloud()
    h, w = depth.shape
    depth[16:32, 20:44] = 3.0  # a box face in front of the wall
    pts = torch.from_numpy(unproject_depth(depth, intr))
    label = torch.from_numpy((depth.ravel() < 4).astype(np.float32))[:, None]
    c2w = look_at(np.array([0.3, 0.0, 0.0]), np.array([0.0, 0.0, 5.0]))
    img, dep, weight = splat_points(pts, label, torch.from_numpy(depth.ravel()), intr, c2w)
    box_pixels = img[..., 0].numpy() > 0.5
    assert box_pixels.sum() > 0.8 * 16 * 24
    d = dep.numpy()
    assert np.all(d[box_pixels] < 3.5) and np.all(d[(weight.numpy() > 0) & ~box_pixels] > 4.0)


def test_input_camera_reproduces_photo(demo_input):
    from landscape4d.io.images import load_photo

    img = load_photo(demo_input["image"]).image
    h, w, _ = img.shape
    depth, _ = estimate_depth(img, DepthConfig(backend="prior"))
    intr = Intrinsics.from_fov(w, h, 60)
    pts = torch.from_numpy(unproject_depth(depth, intr))
    r = render_view(pts, torch.from_numpy(img.reshape(-1, 3)), torch.zeros(h * w), torch.from_numpy(depth.ravel()),
                    intr, np.eye(4))
    valid = ~r.holes
    mse = np.mean((r.rgb[valid] - img[valid]) ** 2)
    assert 10 * np.log10(1 / max(mse, 1e-12)) > 40


def test_prior_depth_sky_far_ground_near(demo_input):
    from landscape4d.io.images import load_photo

    img = load_photo(demo_input["image"]).image
    cfg = DepthConfig(backend="prior")
    depth, info = estimate_depth(img, cfg)
    h = depth.shape[0]
    assert info["sky_fraction"] > 0.1
    assert np.median(depth[: h // 8]) == pytest.approx(cfg.sky_depth * cfg.near)  # sky at its far, finite depth
    assert np.median(depth[-h // 10:]) < 2 * cfg.near  # bottom rows near
    rows = np.median(depth[h // 2:], axis=1)
    assert np.all(np.diff(rows) <= 1e-3 * rows[:-1] + 1e-6) or np.corrcoef(np.arange(len(rows)), rows)[0, 1] < -0.9


def test_depth_file_backend(tmp_path):
    img = np.random.default_rng(0).random((60, 80, 3)).astype(np.float32)
    d = np.linspace(2, 10, 120 * 160).reshape(120, 160).astype(np.float32)
    np.save(tmp_path / "d.npy", d)
    cfg = DepthConfig(backend="file", file=str(tmp_path / "d.npy"))
    depth, info = estimate_depth(img, cfg)
    assert depth.shape == (60, 80) and np.percentile(depth, 2) == pytest.approx(cfg.near, rel=0.05)
    bad = d.copy()
    bad[3, 3] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(InputError, match="NaN"):
        estimate_depth(img, DepthConfig(backend="file", file=str(tmp_path / "bad.npy")))


def test_depth_anything_tiny_random_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    bb = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                                   image_size=56, patch_size=14,
                                   out_features=["stage1", "stage2", "stage3", "stage4"],
                                   reshape_hidden_states=False)
    cfg = transformers.DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=32,
                                           neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
                                           head_hidden_size=8, patch_size=14)
    torch.manual_seed(0)
    transformers.DepthAnythingForDepthEstimation(cfg).save_pretrained(tmp_path / "tiny")
    transformers.DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True,
                                   ensure_multiple_of=14).save_pretrained(tmp_path / "tiny")
    img = np.random.default_rng(0).random((70, 120, 3)).astype(np.float32)
    depth, info = estimate_depth(img, DepthConfig(backend="depth-anything-v2", model=str(tmp_path / "tiny")))
    assert depth.shape == (70, 120) and np.isfinite(depth).all() and info["model"].endswith("tiny")
    with pytest.raises(InputError, match="--depth-model"):
        estimate_depth(img, DepthConfig(backend="depth-anything-v2", model=str(tmp_path / "missing-model")))


def test_views_stage_and_caching(demo_input, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    argv = ["views", str(demo_input["image"]), "--mask", str(demo_input["mask"]), "--hints",
            str(demo_input["hints"]), "-o", str(run), "--num-views", "6"]
    assert main(argv) == 0
    tr = json.loads((run / "views" / "transforms.json").read_text())
    for k in ("fl_x", "fl_y", "cx", "cy", "w", "h", "frames"):
        assert k in tr
    assert len(tr["frames"]) == 6 and np.allclose(load_views(run, [0]).c2w[0], np.eye(4))
    for f in tr["frames"]:
        assert (run / "views" / f["file_path"]).exists() and (run / "views" / f["motion_mask_path"]).exists()
    assert (run / "depth" / "points.ply").exists() and (run / "depth" / "depth.png").exists()
    report = json.loads((run / "report.json").read_text())
    assert report["stages"]["views"]["metrics"]["input_view_psnr"] > 40
    assert "peak_rss_mb" in report["stages"]["depth"] and report["versions"]["torch"]
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "depth: unchanged, skipped" in err and "views: unchanged, skipped" in err
    assert main(argv[:-1] + ["5"]) == 0
    err = capsys.readouterr().err
    assert "depth: unchanged, skipped" in err and "views: running" in err
    assert len(json.loads((run / "views" / "transforms.json").read_text())["frames"]) == 5
    assert not list(run.glob(".*tmp*"))
    # edited code (another digest of the package's sources) reruns every stage
    import landscape4d.pipeline as pipeline

    monkeypatch.setattr(pipeline, "code_digest", lambda: "edited")
    assert main(argv[:-1] + ["5"]) == 0
    err = capsys.readouterr().err
    assert "depth: running" in err and "views: running" in err


def test_code_digest_follows_the_sources(tmp_path):
    from landscape4d.pipeline import code_digest

    (tmp_path / "a.py").write_text("x = 1\n")
    first = code_digest(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    code_digest.cache_clear()
    second = code_digest(tmp_path)
    assert second != first
    (tmp_path / "notes.txt").write_text("not code")
    code_digest.cache_clear()
    assert code_digest(tmp_path) == second
