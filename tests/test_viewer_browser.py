"""The viewer page in a real headless Chromium (software GL): it shows the scene as the reference rasterizer draws
it, plays, follows the time scrubber, orbits, and goes back to the input view.

Skips unless Chromium (/usr/bin/chromium or $CHROMIUM), node, the built assets (`make viewer`) and playwright-core
(viewer/web/node_modules, installed by `make viewer`) are all there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from landscape4d.viewer.bake import bake_web_scene
from landscape4d.viewer.demo_scene import make_demo_scene
from landscape4d.viewer.server import STATIC_DIR, PAGE_FILES, make_server

WEB = Path(__file__).resolve().parents[1] / "viewer" / "web"
CHECK = WEB / "test" / "browser_check.mjs"


def chromium_path() -> str | None:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return exe if Path(exe).exists() else None


def missing() -> str | None:
    if chromium_path() is None:
        return "chromium is not installed (apt-get install chromium)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not all((STATIC_DIR / f).is_file() for f in PAGE_FILES):
        return "viewer assets are not built (make viewer)"
    if not (WEB / "node_modules" / "playwright-core").is_dir() or not CHECK.is_file():
        return "playwright-core is not installed in viewer/web (make viewer)"
    return None


pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def reference(scene, header, t: float, w: int, h: int) -> np.ndarray:
    """The training rasterizer's picture of the input view at loop time t, (h, w, 3) in [0, 1].

    The demo plane is exactly flat, so where the two phases of the moving Gaussians overlap their draws tie in
    depth, and each renderer breaks the tie its own way (the torch rasterizer by draw index, Spark by its own sort
    key): the two orders differ by ~14 dB at t = 0.5, where both phases are half opaque. The reference is the mean
    of the picture with the phase-0 draws first and the one with the phase-1 draws first (equal when one phase is
    invisible, as at t = 0)."""
    from landscape4d.artifacts import intrinsics_from_json
    from landscape4d.dynamics.model import gaussians_at
    from landscape4d.gaussians.rasterize import rasterize

    K = torch.tensor(intrinsics_from_json(header["camera"]).scaled(w, h).matrix(), dtype=torch.float32)
    g = gaussians_at(scene, t)
    n, m = len(scene), int(scene.moving.sum())
    pictures = []
    for order in (torch.arange(n + m), torch.cat([torch.arange(n, n + m), torch.arange(n)])):
        with torch.no_grad():
            pictures.append(rasterize(g.means[order], g.quats[order], g.scales[order], g.opacities[order],
                                      g.colors[order], torch.eye(4), K, w, h).color.clamp(0, 1).numpy())
    return (pictures[0] + pictures[1]) / 2


def test_page_plays_scrubs_and_orbits(tmp_path):
    scene, header = make_demo_scene(cols=40, rows=30)
    server = make_server(bake_web_scene(scene, header), "127.0.0.1", 0)
    server.start_thread()
    try:
        proc = subprocess.Popen(["node", str(CHECK), "--url", server.url, "--out", str(tmp_path), "--chromium",
                                 chromium_path(), "--size", "360x300", "--fps-seconds", "1"],
                                cwd=WEB, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # meanwhile, the reference pictures at half the canvas size (the canvas is 341 x 256 in a 360 x 300 window)
        w, h = 170, 128
        ref0, ref5 = reference(scene, header, 0.0, w, h), reference(scene, header, 0.5, w, h)
        _, stderr = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()
    result = json.loads((tmp_path / "result.json").read_text())
    assert proc.returncode == 0 and result["ok"], f"{result.get('error')}\n{stderr[-2000:]}"
    print(f"\nheadless chromium ({result.get('renderer')}): {result['fps']:.1f} fps with {result['numSplats']} "
          f"Gaussians at 360x300 (software GL; noisy); timings {result['timings']}")
    shots = {p.stem: np.asarray(Image.open(p).convert("RGB").resize((w, h), Image.Resampling.BOX)).astype(np.float32)
             / 255 for p in tmp_path.glob("*.png")}
    lower = slice(h // 2 + 2, h)  # the moving half of the demo scene; the upper half is still
    upper = slice(0, h // 2 - 2)

    # not blank: the textured plane fills the view
    assert shots["t000"].std() > 0.1 and (shots["t000"].max(axis=-1) > 0.1).mean() > 0.95
    # the same picture as the reference rasterizer at t = 0 and at the scrubbed time (the GPU deformation is right)
    assert result["tAfterScrub"] == pytest.approx(0.5)
    assert psnr(shots["t000"], ref0) > 24
    assert psnr(shots["t050"][lower], ref5[lower]) > 20
    assert psnr(shots["t050"][lower], ref5[lower]) > psnr(shots["t050"][lower], ref0[lower]) + 3
    # the scrubber changes the moving half only
    diff = np.abs(shots["t050"] - shots["t000"]).mean(axis=-1)
    assert diff[lower].mean() > 0.03 and diff[upper].mean() < 0.01
    # playing: time advances and the picture changes with it
    assert result["playing"] and result["fps"] > 0
    assert np.abs(shots["play_a"] - shots["play_b"])[lower].mean() > 0.02
    # orbit moves the camera; "Input view" brings it back exactly
    assert np.abs(shots["orbit"] - shots["play_b"]).mean() > 0.05
    assert np.abs(shots["reset"] - shots["play_b"]).mean() < 0.005
