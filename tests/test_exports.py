"""Exports: .splat layout and round trip, .ply at a time t, .spz, videos/frames/side-by-side sizes, CLI errors."""

from __future__ import annotations

import argparse
import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from landscape4d import exports
from landscape4d.dynamics.model import gaussians_at
from landscape4d.errors import InputError
from landscape4d.gaussians.model import opacity_from_logits
from landscape4d.gaussians.ply import read_ply
from landscape4d.gaussians.sh import C0
from landscape4d.io.video import read_video
from landscape4d.viewer import commands
from landscape4d.viewer.demo_scene import make_demo_scene, write_demo_run


@pytest.fixture(scope="module")
def demo():
    return make_demo_scene(cols=12, rows=9, residual=0.02, seed=3)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="landscape4d")
    commands.add_parsers(ap.add_subparsers(dest="command", required=True))
    return ap.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# the scene at one moment


@pytest.mark.parametrize("t", [0.0, 0.3, 0.75])
def test_ply_at_time_t_is_the_deformed_model(demo, tmp_path, t):
    scene, _ = demo
    path = exports.export_ply(scene, tmp_path / "s.ply", t)
    back = read_ply(path)
    g = gaussians_at(scene, t)
    keep = g.opacities > 0
    if t == 0.0:  # the phase-1 draws of the moving Gaussians have opacity 0 at t = 0 and are left out
        assert int(keep.sum()) == len(scene)
    np.testing.assert_allclose(back.means.numpy(), g.means[keep].numpy(), atol=1e-6)
    np.testing.assert_allclose(back.scales.numpy(), g.scales[keep].numpy(), rtol=1e-5)
    np.testing.assert_allclose(back.opacities.numpy(), g.opacities[keep].numpy(), atol=1e-6)
    np.testing.assert_allclose(back.rotations.numpy(),
                               torch.nn.functional.normalize(g.quats[keep], dim=-1).numpy(), atol=1e-6)
    np.testing.assert_array_equal(back.sh.numpy(), g.colors[keep].numpy())


def test_ply_moves_with_time(demo, tmp_path):
    scene, _ = demo
    a = read_ply(exports.export_ply(scene, tmp_path / "a.ply", 0.0))
    b = read_ply(exports.export_ply(scene, tmp_path / "b.ply", 0.5))
    assert b.num == a.num + scene.num_moving  # the phase-1 draws are visible half way
    static = torch.cat([~scene.moving, torch.zeros(scene.num_moving, dtype=torch.bool)])
    moved = gaussians_at(scene, 0.5).means - gaussians_at(scene, 0.0).means
    assert moved[~static].norm(dim=1).min() > 0 and moved[static].abs().max() == 0


# ---------------------------------------------------------------------------------------------------------------
# .splat


def test_splat_layout_matches_the_reference_encoder(demo, tmp_path):
    scene, _ = demo
    model = exports.model_at(scene, 0.4)
    path = exports.write_splat(model, tmp_path / "s.splat")
    raw = path.read_bytes()
    assert len(raw) == 32 * model.num
    rec = exports.read_splat(path)
    # each record's Gaussian, found by its position (stored exactly as float32)
    idx = {tuple(p): i for i, p in enumerate(model.means.numpy().astype(np.float32))}
    which = np.array([idx[tuple(p)] for p in rec["position"]])
    # sorted by size * opacity, descending
    opacity = opacity_from_logits(model.opacity_logits.double()).clamp(max=1)
    size_op = (torch.exp(model.log_scales.double().sum(1)) * opacity).numpy()
    assert np.all(np.diff(size_op[which]) <= 0)
    # every 32-byte record equals the struct-based reference encoder of its Gaussian
    for k in range(model.num):
        i = int(which[k])
        ref = exports.splat_record_reference(model.means[i].tolist(), model.log_scales[i].tolist(),
                                             model.quats[i].tolist(), model.sh[i, 0].tolist(),
                                             float(model.opacity_logits[i]))
        assert raw[32 * k:32 * (k + 1)] == ref, f"record {k}"


def test_splat_round_trip_of_positions_and_colours(demo, tmp_path):
    scene, _ = demo
    model = exports.model_at(scene, 0.0)
    rec = exports.read_splat(exports.write_splat(model, tmp_path / "s.splat"))
    # match records to Gaussians by position (positions are stored exactly as float32)
    means = model.means.numpy().astype(np.float32)
    idx = {tuple(p): i for i, p in enumerate(means)}
    assert len(idx) == model.num == len(rec)
    which = np.array([idx[tuple(p)] for p in rec["position"]])
    assert sorted(which.tolist()) == list(range(model.num))
    colour = np.clip(model.sh[which, 0].numpy() * C0 + 0.5, 0, 1)
    np.testing.assert_allclose(rec["rgba"][:, :3] / 255.0, colour, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(rec["rgba"][:, 3] / 255.0, model.opacities[which].numpy(), atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(rec["scale"], model.scales[which].numpy(), rtol=1e-6)
    q = torch.nn.functional.normalize(model.quats[which], dim=-1).numpy()
    np.testing.assert_allclose((rec["rot"].astype(np.float64) - 128) / 128, q, atol=1 / 128 + 1e-6)


def test_read_splat_rejects_a_partial_file(tmp_path):
    (tmp_path / "bad.splat").write_bytes(b"\0" * 33)
    with pytest.raises(InputError, match="32-byte"):
        exports.read_splat(tmp_path / "bad.splat")


# ---------------------------------------------------------------------------------------------------------------
# .spz


def test_spz_has_the_niantic_header_and_positions(demo, tmp_path):
    if not exports.spz_available():
        pytest.skip(f"optional package {exports.SPZ_PACKAGE} is not installed")
    scene, _ = demo
    model = exports.model_at(scene, 0.0)
    raw = gzip.decompress(exports.export_spz(scene, tmp_path / "s.spz", 0.0).read_bytes())
    magic, version, n, sh_degree, frac_bits = struct.unpack_from("<IIIBB", raw)
    assert (magic, version, n, sh_degree) == (0x5053474E, 3, model.num, 0)
    # positions: 24-bit signed fixed point with frac_bits fractional bits, right after the 16-byte header
    b = np.frombuffer(raw, np.uint8, count=9 * n, offset=16).reshape(n, 3, 3).astype(np.int64)
    v = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
    v = np.where(v >= 1 << 23, v - (1 << 24), v)
    np.testing.assert_allclose(v / (1 << frac_bits), model.means.numpy(), atol=1.0 / (1 << frac_bits))


def test_spz_cli_refuses_without_the_package(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(exports, "spz_available", lambda: False)
    run = write_demo_run(tmp_path / "run", cols=8, rows=6)
    assert commands.dispatch(parse(["export", str(run), "--spz", str(tmp_path / "a.spz")])) == 2
    assert "gsply" in capsys.readouterr().err and not (tmp_path / "a.spz").exists()


# ---------------------------------------------------------------------------------------------------------------
# videos


def test_video_size_defaults_and_aspect():
    header = {"camera": {"w": 161, "h": 121}}
    assert exports.video_size(header, None, None) == (160, 120)
    assert exports.video_size(header, 80, None) == (80, 60)
    assert exports.video_size(header, None, 30) == (40, 30)


def test_video_gif_and_frames_have_the_asked_size(demo, tmp_path):
    scene, header = demo
    spec = exports.VideoSpec(width=48, height=36, fps=10, trajectory="side", num_frames=4)
    frames = exports.render_frames(scene, header, spec)
    assert frames.shape == (4, 36, 48, 3) and frames.dtype == np.uint8
    assert frames.std() > 5 and np.abs(frames[0].astype(int) - frames[2]).mean() > 0.5  # a picture that moves
    info = exports.export_video(scene, header, tmp_path / "v.mp4", spec, frames=frames)
    assert info == {"frames": 4, "width": 48, "height": 36}
    assert read_video(tmp_path / "v.mp4").shape == (4, 36, 48, 3)
    exports.export_video(scene, header, tmp_path / "v.gif", spec, frames=frames)
    assert read_video(tmp_path / "v.gif").shape == (4, 36, 48, 3)
    paths = exports.export_frames(scene, header, tmp_path / "png", spec, frames=frames)
    assert [p.name for p in paths] == [f"frame_{i:04d}.png" for i in range(4)]
    np.testing.assert_array_equal(np.asarray(Image.open(paths[2])), frames[2])


def fake_run(tmp_path, motion_png: bool = True):
    run = write_demo_run(tmp_path / "run", cols=12, rows=9)
    rng = np.random.default_rng(0)
    for sub, name, shape in [("input", "image.png", (90, 120, 3)), ("depth", "depth.png", (90, 120, 3))]:
        (run / sub).mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(run / sub / name)
    (run / "motion" / "flow").mkdir(parents=True)
    if motion_png:
        Image.fromarray(np.full((90, 120, 3), 200, np.uint8)).save(run / "motion" / "motion_input_color.png")
    else:
        np.save(run / "motion" / "flow" / "000.npy", np.ones((90, 120, 2), np.float32))
    return run


@pytest.mark.parametrize("motion_png", [True, False])
def test_side_by_side_has_four_panels(tmp_path, motion_png):
    run = fake_run(tmp_path, motion_png)
    from landscape4d.viewer.commands import load_run_scene

    scene, header, run_dir = load_run_scene(run)
    spec = exports.VideoSpec(width=40, height=30, num_frames=3)
    info = exports.export_side_by_side(run_dir, scene, header, tmp_path / "sbs.mp4", spec)
    assert info == {"frames": 3, "width": 160, "height": 30}
    video = read_video(tmp_path / "sbs.mp4")
    assert video.shape == (3, 30, 160, 3)
    novel = exports.render_frames(scene, header, spec)
    # the novel-view panel is the rendered path (lower part: below the label), lossy H.264 aside
    assert np.abs(video[:, 15:, 120:].astype(int) - novel[:, 15:]).mean() < 12
    if motion_png:
        expected = np.full(3, 200)
    else:
        from landscape4d.motion.visualize import flow_to_color

        expected = flow_to_color(np.ones((1, 1, 2)))[0, 0].astype(int)
    assert np.abs(video[:, 15:, 80:120].astype(int) - expected).mean() < 12


def test_side_by_side_names_a_missing_picture(tmp_path):
    run = fake_run(tmp_path)
    (run / "depth" / "depth.png").unlink()
    from landscape4d.viewer.commands import load_run_scene

    scene, header, run_dir = load_run_scene(run)
    with pytest.raises(InputError, match=r"depth\.png: file not found"):
        exports.export_side_by_side(run_dir, scene, header, tmp_path / "sbs.mp4", exports.VideoSpec(num_frames=2))


def test_export_cli_writes_everything_asked(tmp_path, capsys):
    run = fake_run(tmp_path)
    out = tmp_path / "out"
    argv = ["export", str(run), "--ply", f"{out}/s.ply", "--splat", f"{out}/s.splat", "--time", "0.25",
            "--video", f"{out}/v.mp4", "--frames", f"{out}/frames", "--side-by-side", f"{out}/sbs.mp4",
            "--width", "32", "--height", "24", "--num-frames", "2", "--trajectory", "zoom-in"]
    assert commands.dispatch(parse(argv)) == 0, capsys.readouterr().err
    assert read_ply(out / "s.ply").num == exports.model_at(commands.load_run_scene(run)[0], 0.25).num
    assert (out / "s.splat").stat().st_size % 32 == 0
    assert read_video(out / "v.mp4").shape == (2, 24, 32, 3)
    assert len(list((out / "frames").glob("*.png"))) == 2
    assert read_video(out / "sbs.mp4").shape == (2, 24, 128, 3)


def test_export_cli_side_by_side_needs_the_run_folder(tmp_path, capsys):
    run = fake_run(tmp_path)
    scene_file = tmp_path / "alone.safetensors"
    scene_file.write_bytes((run / "dynamics" / "scene4d.safetensors").read_bytes())
    assert commands.dispatch(parse(["export", str(scene_file), "--side-by-side", str(tmp_path / "a.mp4")])) == 2
    assert "needs the run folder" in capsys.readouterr().err
