"""Viewer without a browser: the web scene packing and its deformation mirror, the loopback-only server, the static
web folder and the `view`/`export` command errors."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from landscape4d.dynamics.model import gaussians_at
from landscape4d.errors import InputError
from landscape4d.viewer import commands
from landscape4d.viewer.bake import bake_web_scene, evaluate_web, web_scene_from_bytes
from landscape4d.viewer.demo_scene import make_demo_scene, write_demo_run
from landscape4d.viewer.server import loopback_host, make_server, page_files, write_web_folder


@pytest.fixture(scope="module")
def demo():
    return make_demo_scene(cols=16, rows=12, residual=0.02, seed=1)


@pytest.fixture
def static_dir(tmp_path):
    """Stand-in page assets (the real ones are built by `make viewer`)."""
    d = tmp_path / "static"
    d.mkdir()
    (d / "index.html").write_text("<!doctype html><title>t</title>")
    (d / "viewer.js").write_text("console.log('viewer');")
    (d / "viewer.css").write_text("body{}")
    return d


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="landscape4d")
    sub = ap.add_subparsers(dest="command", required=True)
    commands.add_parsers(sub)
    return ap.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# packing


def test_bake_orders_moving_first_and_round_trips(demo):
    scene, header = demo
    ws = bake_web_scene(scene, header)
    n, m = len(scene), int(scene.moving.sum())
    assert ws.header["num_gaussians"] == n and ws.num_moving == m > 0
    assert ws.header["num_splats"] == n + m  # the page draws each moving Gaussian at two phases
    assert scene.moving[torch.from_numpy(ws.order[:m])].all() and not scene.moving[torch.from_numpy(ws.order[m:])].any()
    assert sorted(ws.order.tolist()) == list(range(n))
    assert ws.motion.shape == (m, 4 * ws.header["texels_per_moving"])
    head, data = ws.to_bytes()
    assert len(data) == json.loads(head)["data_bytes"] and len(data) % 4 == 0
    back = web_scene_from_bytes(head, data)
    for name, arr in ws.arrays():
        np.testing.assert_array_equal(getattr(back, name), arr)
    np.testing.assert_allclose(np.linalg.norm(ws.quats, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("t", [0.0, 0.2, 0.5, 0.93])
def test_web_deformation_matches_the_model(demo, t):
    """The page's formula (numpy mirror of deform.js) equals dynamics.model.gaussians_at, splat for splat."""
    scene, header = demo
    ws = bake_web_scene(scene, header)
    frame = evaluate_web(ws, t)
    g = gaussians_at(scene, t)
    o = torch.from_numpy(page_draws(scene, ws))
    np.testing.assert_allclose(frame.centers, g.means[o].double().numpy(), atol=1e-5)
    np.testing.assert_allclose(frame.scales, g.scales[o].double().numpy(), rtol=1e-5)
    q = g.quats[o].double().numpy()
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(frame.quats, q[:, [1, 2, 3, 0]], atol=1e-5)
    # opacity is stored as 8 bits; the weight multiplies the rounding error
    np.testing.assert_allclose(frame.opacity, g.opacities[o].double().numpy(), atol=0.5 / 255 + 1e-6)


def page_draws(scene, ws) -> np.ndarray:
    """(N + M,) the gaussians_at draw shown by each splat of the page."""
    index, phase = ws.page_order()
    gauss = ws.order[index]  # the Scene4D Gaussian of each splat
    rank = np.cumsum(scene.moving.numpy()) - 1  # position of a moving Gaussian among the moving ones
    return np.where(phase > 0, len(scene) + rank[gauss], gauss)


def test_page_draws_each_moving_gaussian_twice_from_one_record(demo):
    scene, header = demo
    ws = bake_web_scene(scene, header)
    d = page_draws(scene, ws)
    assert sorted(d.tolist()) == list(range(len(scene) + int(scene.moving.sum())))
    assert ws.motion.shape[0] == int(scene.moving.sum()) and ws.centers.shape[0] == len(scene)
    # end of the loop = its start, splat for splat, on the page too
    a, b = evaluate_web(ws, 0.0), evaluate_web(ws, 1 - 1e-7)
    m = ws.num_moving
    np.testing.assert_allclose(b.centers[m:2 * m], a.centers[:m], atol=1e-5)
    np.testing.assert_allclose(b.opacity[m:2 * m], a.opacity[:m], atol=1e-6)
    assert a.opacity[m:2 * m].max() == 0 and b.opacity[:m].max() < 1e-6


def test_bake_colour_is_sh_dc(demo):
    scene, header = demo
    ws = bake_web_scene(scene, header)
    rgb = scene.sh[torch.from_numpy(ws.order), 0].numpy() * 0.28209479177387814 + 0.5
    np.testing.assert_allclose(ws.rgba[:, :3] / 255.0, np.clip(rgb, 0, 1), atol=0.5 / 255 + 1e-6)


# ---------------------------------------------------------------------------------------------------------------
# serving


@pytest.mark.parametrize("host, bound", [("127.0.0.1", "127.0.0.1"), ("127.0.0.7", "127.0.0.7"), ("localhost", "127.0.0.1"),
                                         ("::1", "::1"), ("[::1]", "::1")])
def test_loopback_hosts_are_accepted(host, bound):
    assert loopback_host(host) == bound


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "8.8.8.8", "example.com", ""])
def test_other_hosts_are_refused(host):
    with pytest.raises(InputError, match="loopback"):
        loopback_host(host)


def test_server_serves_page_and_scene_on_loopback(demo, static_dir):
    scene, header = demo
    ws = bake_web_scene(scene, header)
    server = make_server(ws, "127.0.0.1", 0, static_dir)
    assert server.url.startswith("http://127.0.0.1:")
    server.start_thread()
    try:
        def get(path):
            with urllib.request.urlopen(server.url + path.lstrip("/"), timeout=10) as r:
                return r.headers.get("Content-Type"), r.read()

        ctype, body = get("/")
        assert ctype.startswith("text/html") and body == (static_dir / "index.html").read_bytes()
        assert get("/viewer.js")[1] == (static_dir / "viewer.js").read_bytes()
        head_bytes, data = ws.to_bytes()
        assert get("/scene/scene.json")[1] == head_bytes
        assert get("/scene/scene.bin?x=1")[1] == data
        for bad in ("/../index.html", "/scene/../../etc/passwd", "/nothing"):
            with pytest.raises(urllib.error.HTTPError) as e:
                get(bad)
            assert e.value.code == 404
    finally:
        server.close()


def test_missing_assets_say_how_to_build(tmp_path):
    with pytest.raises(InputError, match=r"viewer assets not built.*make viewer"):
        page_files(tmp_path)


def test_web_folder_holds_page_and_scene(demo, static_dir, tmp_path):
    scene, header = demo
    ws = bake_web_scene(scene, header)
    out = write_web_folder(ws, tmp_path / "site", static_dir)
    assert {p.name for p in out.iterdir()} == {"index.html", "viewer.js", "viewer.css", "scene"}
    back = web_scene_from_bytes((out / "scene" / "scene.json").read_bytes(), (out / "scene" / "scene.bin").read_bytes())
    np.testing.assert_array_equal(back.centers, ws.centers)


# ---------------------------------------------------------------------------------------------------------------
# commands


def test_dispatch_ignores_other_commands():
    assert commands.dispatch(argparse.Namespace(command="run")) is None


def test_view_refuses_non_loopback_host(tmp_path, capsys):
    run = write_demo_run(tmp_path / "run", cols=8, rows=6)
    assert commands.dispatch(parse(["view", str(run), "--host", "0.0.0.0"])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("landscape4d: error: --host: 0.0.0.0 is not a loopback address")


def test_view_without_assets_fails_clearly(tmp_path, capsys, monkeypatch):
    from landscape4d.viewer import server

    monkeypatch.setattr(server, "STATIC_DIR", tmp_path / "none")
    run = write_demo_run(tmp_path / "run", cols=8, rows=6)
    assert commands.dispatch(parse(["view", str(run)])) == 2
    assert "viewer assets not built" in capsys.readouterr().err
    assert commands.dispatch(parse(["export", str(run), "--web", str(tmp_path / "site")])) == 2
    assert "run `make viewer`" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


def test_export_web_with_assets(tmp_path, static_dir, monkeypatch, capsys):
    from landscape4d.viewer import server

    monkeypatch.setattr(server, "STATIC_DIR", static_dir)
    run = write_demo_run(tmp_path / "run", cols=8, rows=6)
    assert commands.dispatch(parse(["export", str(run), "--web", str(tmp_path / "site")])) == 0
    head = json.loads((tmp_path / "site" / "scene" / "scene.json").read_text())
    assert head["num_splats"] == 8 * 6 + 8 * 3 and (tmp_path / "site" / "index.html").exists()


@pytest.mark.parametrize("argv, needle", [
    (["view", "{missing}"], "no such run folder"),
    (["export", "{run}"], "nothing to do"),
    (["export", "{run}", "--ply", "{tmp}/a.ply", "--time", "1.5"], "--time: 1.5 is outside the loop"),
    (["export", "{run}", "--video", "{tmp}/a.avi"], "must be .mp4 or .gif"),
    (["export", "{run}", "--video", "{tmp}/a.mp4", "--width", "0"], "--width: 0 must be positive"),
    (["export", "{empty}", "--ply", "{tmp}/a.ply"], "scene4d.safetensors: file not found"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, needle):
    run = write_demo_run(tmp_path / "run", cols=8, rows=6)
    (tmp_path / "empty").mkdir()
    fill = {"run": str(run), "tmp": str(tmp_path), "missing": str(tmp_path / "nope"), "empty": str(tmp_path / "empty")}
    assert commands.dispatch(parse([a.format(**fill) for a in argv])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("landscape4d: error: ") and needle in err[0]


@pytest.mark.parametrize("argv", [["view", "{missing}"], ["export", "{missing}", "--web", "{tmp}/site"],
                                  ["view", "{empty}"]])
def test_run_is_checked_before_the_bundle(tmp_path, capsys, monkeypatch, argv):
    """Without a built viewer (a fresh clone without npm), a wrong RUN is still reported as the user's mistake."""
    from landscape4d.viewer import server

    monkeypatch.setattr(server, "STATIC_DIR", tmp_path / "none")
    (tmp_path / "empty").mkdir()
    fill = {"tmp": str(tmp_path), "missing": str(tmp_path / "nope"), "empty": str(tmp_path / "empty")}
    assert commands.dispatch(parse([a.format(**fill) for a in argv])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("no such run folder" in err[0] or "scene4d.safetensors: file not found" in err[0])
    assert "viewer assets" not in err[0] and not (tmp_path / "site").exists()


def test_missing_bundle_hint_fits_the_installation(tmp_path, monkeypatch):
    from landscape4d.viewer import server

    assert "make viewer" in server.build_hint() and "npm ci" in server.build_hint()  # this source checkout
    fake = tmp_path / "site-packages" / "landscape4d" / "viewer" / "server.py"  # an installed package
    monkeypatch.setattr(server, "__file__", str(fake))
    hint = server.build_hint()
    assert "make viewer" not in hint and "python -m build" in hint
