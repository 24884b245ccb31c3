"""4D exports read back with readers written from the formats' descriptions, compared with the loop itself
(`gaussians_at`): the PLY sequence (INRIA 3DGS vertex layout, parsed by hand here) and the .splatv file
(antimatter15 splaTV layout: magic, JSON chunk list, RGBA32UI texture of 16 words per Gaussian)."""

from __future__ import annotations

import argparse
import json
import math
import struct

import numpy as np
import pytest
import torch

from landscape4d import exports_4d
from landscape4d.artifacts import intrinsics_from_json
from landscape4d.dynamics.model import gaussians_at
from landscape4d.gaussians.rasterize import rasterize
from landscape4d.gaussians.sh import C0
from landscape4d.viewer import commands
from landscape4d.viewer.demo_scene import make_demo_scene, write_demo_run


@pytest.fixture(scope="module")
def linear():
    """Straight motion only: the splaTV form holds it up to float16 rounding and the time window's shape."""
    return make_demo_scene(cols=16, rows=12, residual=0.0)


@pytest.fixture(scope="module")
def wavy():
    """Periodic residuals on top: position, rotation and scale change along the loop."""
    return make_demo_scene(cols=16, rows=12, residual=0.02, seed=2)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="landscape4d")
    commands.add_parsers(ap.add_subparsers(dest="command", required=True))
    return ap.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# independent readers


def read_binary_ply(path) -> dict[str, np.ndarray]:
    """A binary_little_endian PLY with one `vertex` element of float properties -> {name: (N,) array}."""
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    lines = raw[:end].decode("ascii").splitlines()
    assert lines[0] == "ply" and lines[1] == "format binary_little_endian 1.0"
    count = next(int(ln.split()[2]) for ln in lines if ln.startswith("element vertex"))
    names = [ln.split()[2] for ln in lines if ln.startswith("property float")]
    assert len(names) == sum(ln.startswith("property") for ln in lines)
    data = np.frombuffer(raw[end:], "<f4")
    assert data.size == count * len(names)
    table = data.reshape(count, len(names))
    return {name: table[:, i] for i, name in enumerate(names)}


SPLATV_RECORD = np.dtype([("xyz", "<f4", 3), ("rot", "<f2", 4), ("scale", "<f2", 3), ("unused0", "<f2"),
                          ("rgba", "u1", 4), ("motion", "<f2", 9), ("unused1", "<f2"), ("omega", "<f2", 4),
                          ("trbf_center", "<f2"), ("trbf_scale", "<f2")])


def read_splatv(path) -> tuple[dict, np.ndarray]:
    """-> (the splat chunk's JSON, its records) of a .splatv file."""
    raw = path.read_bytes()
    magic, length = struct.unpack_from("<II", raw, 0)
    assert magic == 0x674B
    chunks = json.loads(raw[8:8 + length].decode("utf-8"))
    chunk = chunks[0]
    assert chunk["type"] == "splat" and chunk["texwidth"] == 4096
    assert chunk["size"] == chunk["texwidth"] * chunk["texheight"] * 16 == len(raw) - 8 - length
    assert SPLATV_RECORD.itemsize == 64
    return chunk, np.frombuffer(raw, SPLATV_RECORD, offset=8 + length)


def splatv_at(rec: np.ndarray, t: float) -> dict[str, np.ndarray]:
    """The viewer's formula at time t: position, unit rotation (w, x, y, z), scale, opacity."""
    f = lambda a: np.asarray(a, np.float64)  # noqa: E731
    dt = t - f(rec["trbf_center"])
    m = f(rec["motion"])
    pos = f(rec["xyz"]) + m[:, 0:3] * dt[:, None] + m[:, 3:6] * dt[:, None] ** 2 + m[:, 6:9] * dt[:, None] ** 3
    q = f(rec["rot"]) + f(rec["omega"]) * dt[:, None]
    window = np.exp(-((dt / f(rec["trbf_scale"])) ** 2))
    opacity = rec["rgba"][:, 3] / 255.0 * np.where(window < 0.02, 0.0, window)
    return {"means": pos, "quats": q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30),
            "scales": f(rec["scale"]),
            "opacity": opacity, "rgb": rec["rgba"][:, :3] / 255.0}


# ---------------------------------------------------------------------------------------------------------------
# PLY sequence


def test_ply_sequence_is_one_loop_of_frames(wavy, tmp_path):
    scene, _ = wavy
    n = 6
    paths = exports_4d.export_ply_sequence(scene, tmp_path / "seq", n)
    assert [p.name for p in paths] == [f"frame_{k:04d}.ply" for k in range(n)]
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == [p.name for p in paths]
    for k, p in enumerate(paths):
        v = read_binary_ply(p)
        g = gaussians_at(scene, k / n)
        assert len(v["x"]) == g.means.shape[0]  # every draw, in every frame
        np.testing.assert_allclose(np.stack([v["x"], v["y"], v["z"]], 1), g.means.numpy(), atol=1e-6)
        np.testing.assert_allclose(np.exp(np.stack([v[f"scale_{i}"] for i in range(3)], 1)), g.scales.numpy(),
                                   rtol=1e-5)
        np.testing.assert_allclose(np.stack([v[f"rot_{i}"] for i in range(4)], 1), g.quats.numpy(), atol=1e-6)
        np.testing.assert_allclose(1 / (1 + np.exp(-v["opacity"].astype(np.float64))),
                                   g.opacities.clamp(1e-6, 1 - 1e-6).numpy(), atol=1e-6)
        np.testing.assert_allclose(np.stack([v[f"f_dc_{i}"] for i in range(3)], 1), g.colors[:, 0].numpy(),
                                   atol=1e-7)


def test_ply_sequence_default_is_the_scene_loop(linear, tmp_path):
    scene, _ = linear
    paths = exports_4d.export_ply_sequence(scene, tmp_path / "seq")
    assert len(paths) == scene.num_frames
    first, last = read_binary_ply(paths[0]), read_binary_ply(paths[-1])
    assert not np.allclose(first["x"], last["x"])  # it moves


# ---------------------------------------------------------------------------------------------------------------
# .splatv


def weighted_position_rms(state, g) -> float:
    op = g.opacities.double().numpy()
    err = ((state["means"] - g.means.double().numpy()) ** 2).sum(axis=1)
    return math.sqrt(float((op * err).sum() / op.sum()))


def test_splatv_layout_and_straight_motion(linear, tmp_path):
    scene, header = linear
    info = exports_4d.export_splatv(scene, header, tmp_path / "s.splatv")
    chunk, rec = read_splatv(tmp_path / "s.splatv")
    n = gaussians_at(scene, 0.0).means.shape[0]
    assert chunk["count"] == info["gaussians"] == n and chunk["texheight"] == math.ceil(n / 1024)
    cam = chunk["cameras"][0]
    assert cam["position"] == [0, 0, 0] and cam["fx"] == pytest.approx(header["camera"]["fl_x"])
    for t in (0.1, 0.4, 0.75, 0.95):
        g = gaussians_at(scene, t)
        state = splatv_at(rec[:n], t)
        assert weighted_position_rms(state, g) < 1e-3 * header["scene_depth"]
        assert np.abs(state["opacity"] - g.opacities.double().numpy()).max() < 0.15  # bell curves vs ramps
        np.testing.assert_allclose(state["scales"], g.scales.double().numpy(), rtol=2e-3)
        np.testing.assert_allclose(state["rgb"], np.clip(g.colors[:, 0].double().numpy() * C0 + 0.5, 0, 1),
                                   atol=0.5 / 255 + 1e-6)
    # the padding up to a full texture row is never drawn
    assert len(rec) == 1024 * chunk["texheight"] and (splatv_at(rec[n:], 0.5)["opacity"] == 0).all()
    assert info["position_rms_rel"] < 1e-3 and info["opacity_rms"] < 0.05


def test_splatv_cross_fade_keeps_the_total_opacity(linear, tmp_path):
    """A moving Gaussian's two draws together stay close to what one would cover (the loop's weights sum to 1)."""
    scene, header = linear
    exports_4d.export_splatv(scene, header, tmp_path / "s.splatv")
    _, rec = read_splatv(tmp_path / "s.splatv")
    g0 = gaussians_at(scene, 0.3)
    n = g0.means.shape[0]
    total_loop = sum(gaussians_at(scene, t).opacities.sum().item() for t in np.linspace(0.05, 0.95, 10))
    total_file = sum(splatv_at(rec[:n], t)["opacity"].sum() for t in np.linspace(0.05, 0.95, 10))
    assert abs(total_file / total_loop - 1) < 0.03


def render_psnr(scene, header, rec, t: float) -> tuple[float, float]:
    """PSNR of the file's picture at t against the loop's at t, and of the loop half a loop away against it (what
    a file that got the time wrong would score), at the input camera, 80 x 60."""
    K = torch.tensor(intrinsics_from_json(header["camera"]).scaled(80, 60).matrix(), dtype=torch.float32)
    view = torch.eye(4)

    def draw(means, quats, scales, opacity, colors):
        return rasterize(means, quats, scales, opacity, colors, view, K, 80, 60).color

    g, g_off = gaussians_at(scene, t), gaussians_at(scene, (t + 0.5) % 1)
    ref = draw(g.means, g.quats, g.scales, g.opacities, g.colors)
    state = splatv_at(rec, t)
    f = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
    got = draw(f(state["means"]), f(state["quats"]), f(state["scales"]), f(state["opacity"]),
               ((f(state["rgb"]) - 0.5) / C0)[:, None, :])
    off = draw(g_off.means, g_off.quats, g_off.scales, g_off.opacities, g_off.colors)
    psnr = lambda a: -10 * math.log10(max(float(((a - ref) ** 2).mean()), 1e-12))  # noqa: E731
    return psnr(got), psnr(off)


def test_splatv_renders_like_the_loop(linear, wavy, tmp_path):
    """Straight motion: the file draws what the loop draws (measured 42-52 dB). Periodic residuals (random
    rotation and scale changes the format cannot hold): still far closer to the loop at t than the loop half a
    loop away is (measured 26-28 dB against 22)."""
    for (scene, header), floor, margin in ((linear, 38.0, 10.0), (wavy, 25.0, 3.0)):
        info = exports_4d.export_splatv(scene, header, tmp_path / "s.splatv")
        rec = read_splatv(tmp_path / "s.splatv")[1][:info["gaussians"]]
        for t in (0.05, 0.5, 0.9):
            ours, off = render_psnr(scene, header, rec, t)
            assert ours > floor and ours > off + margin, (t, ours, off)


def test_splatv_follows_periodic_motion(wavy, tmp_path):
    scene, header = wavy
    info = exports_4d.export_splatv(scene, header, tmp_path / "s.splatv")
    rec = read_splatv(tmp_path / "s.splatv")[1][:info["gaussians"]]
    start = gaussians_at(scene, 0.0).means.double().numpy()
    for t in (0.15, 0.5, 0.85):
        g = gaussians_at(scene, t)
        still = weighted_position_rms({"means": start}, g)  # a file without motion
        assert weighted_position_rms(splatv_at(rec, t), g) < 0.35 * still


def test_export_cli_writes_the_4d_files(tmp_path, capsys):
    run = write_demo_run(tmp_path / "run", cols=8, rows=6, num_frames=10)
    argv = ["export", str(run), "--ply-sequence", str(tmp_path / "seq"), "--splatv", str(tmp_path / "a.splatv")]
    assert commands.dispatch(parse(argv)) == 0
    err = capsys.readouterr().err
    assert "ply sequence" in err and "splatv" in err and "position error" in err
    assert len(list((tmp_path / "seq").glob("frame_*.ply"))) == 10
    assert read_splatv(tmp_path / "a.splatv")[0]["count"] == 8 * 6 + 8 * 3


@pytest.mark.parametrize("extra, needle", [
    (["--splatv", "{tmp}/a.splat"], "must end in .splatv"),
    (["--ply-sequence", "{tmp}/file.txt"], "exists and is not a folder"),
    (["--ply-sequence", "{tmp}/seq", "--num-frames", "0"], "--num-frames: 0 must be positive"),
])
def test_export_cli_4d_bad_input(tmp_path, capsys, extra, needle):
    run = write_demo_run(tmp_path / "run", cols=8, rows=6)
    (tmp_path / "file.txt").write_text("x")
    argv = ["export", str(run)] + [a.format(tmp=tmp_path) for a in extra]
    assert commands.dispatch(parse(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "seq").exists() and not (tmp_path / "a.splat").exists()
