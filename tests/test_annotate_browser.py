"""The annotate page in a real headless Chromium: a brush stroke, a polygon and hint arrows drawn with pointer events
become the expected mask pixels and hint coordinates in the saved labelme file (which `run --mask` accepts), undo
takes back the last arrow, and the live preview plays (its frames change over time).

Skips unless Chromium (/usr/bin/chromium or $CHROMIUM), node, the built annotate page (`make viewer`) and
playwright-core (viewer/web/node_modules, installed by `make viewer`) are all there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landscape4d.config import preset
from landscape4d.inputs import prepare_input
from landscape4d.io.masks import load_motion_input, mask_png_path
from landscape4d.viewer.annotate import PAGE, AnnotateSession, make_annotate_server
from landscape4d.viewer.server import STATIC_DIR

WEB = Path(__file__).resolve().parents[1] / "viewer" / "web"
CHECK = WEB / "test" / "annotate_check.mjs"
W, H = 320, 200


def chromium_path() -> str | None:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return exe if Path(exe).exists() else None


def missing() -> str | None:
    if chromium_path() is None:
        return "chromium is not installed (apt-get install chromium)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not all((STATIC_DIR / f).is_file() for f in PAGE):
        return "the annotate page is not built (make viewer)"
    if not (WEB / "node_modules" / "playwright-core").is_dir() or not CHECK.is_file():
        return "playwright-core is not installed in viewer/web (make viewer)"
    return None


pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def photo(path: Path) -> Path:
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.stack([128 + 100 * np.sin(xx / 5), 128 + 100 * np.cos(yy / 6), 128 + 80 * np.sin((xx - yy) / 7)], -1)
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    return path


def test_draw_save_and_preview(tmp_path):
    src = photo(tmp_path / "scene.png")
    plan = {"actions": [
        {"tool": "brush", "size": 24, "points": [[40, 60], [150, 60], [260, 60]]},
        {"tool": "polygon", "points": [[40, 140], [120, 140], [120, 180], [40, 180]]},
        {"tool": "arrow", "from": [100, 60], "to": [160, 60]},
        {"tool": "arrow", "from": [80, 160], "to": [80, 175]},
        {"tool": "arrow", "from": [200, 60], "to": [200, 20]},
        {"undo": 1},
    ], "save": True}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    server = make_annotate_server(AnnotateSession(src), "127.0.0.1", 0)
    server.start_thread()
    try:
        proc = subprocess.run(["node", str(CHECK), "--url", server.url, "--plan", str(tmp_path / "plan.json"),
                               "--out", str(tmp_path / "out"), "--chromium", chromium_path(), "--size", "1000x600"],
                              cwd=WEB, capture_output=True, text=True, timeout=240)
    finally:
        server.close()
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert proc.returncode == 0 and result["ok"], f"{result.get('error')}\n{proc.stderr[-2000:]}"
    print(f"\npreview: {result['preview']}; frames shown {result['frames']}; saved {result['lastSave']}")

    out = tmp_path / "scene.json"
    doc = json.loads(out.read_text())
    assert doc["imagePath"] == "scene.png" and doc["imageData"] is None and (doc["imageWidth"], doc["imageHeight"]) \
        == (W, H)
    assert {s["label"] for s in doc["shapes"]} == {"motion", "hint0", "hint1"}
    mi = load_motion_input(out, W, H)
    # the brush: a band of the brush's radius (12 CSS px, in photo pixels through the canvas's size on screen)
    r = 12 * W / result["box"]["width"]
    assert mi.mask[60, 40:260].all()
    assert mi.mask[int(60 - 0.7 * r), 60:240].all() and mi.mask[int(60 + 0.7 * r), 60:240].all()
    assert not mi.mask[int(60 - 1.4 * r), :].any() and not mi.mask[int(60 + 1.4 * r):130, :].any()
    assert not mi.mask[:, : int(40 - 1.4 * r)].any()
    # the polygon: its inside, nothing to its right below the stroke
    assert mi.mask[142:179, 42:119].all() and not mi.mask[135:, 125:].any() and not mi.mask[185:, :].any()
    # the arrows as dragged (one CSS pixel of tolerance); the third was undone
    px = W / result["box"]["width"]
    np.testing.assert_allclose(mi.arrows, [[[100, 60], [160, 60]], [[80, 160], [80, 175]]], atol=1.01 * px)
    # the mask PNG beside it is the same mask, and the pipeline takes the file as --mask
    np.testing.assert_array_equal(np.asarray(Image.open(mask_png_path(out))) > 0, mi.mask)
    inp = prepare_input(src, out, None, preset("preview"), require_motion=True)
    assert inp.motion.mask.any() and len(inp.motion.arrows) == 2 and inp.proposal is None

    # the preview arrived and plays: two moments of the loop differ inside the moving region only
    assert result["preview"]["received"] >= 1 and result["preview"]["lastError"] is None
    a, b = (np.asarray(Image.open(tmp_path / "out" / f"preview_{k}.png").convert("RGB")).astype(float)
            for k in "ab")
    assert result["frames"][0] != result["frames"][1]
    h, w = a.shape[:2]
    diff = np.abs(a - b).mean(-1)
    band = diff[int(h * 0.22):int(h * 0.38), int(w * 0.2):int(w * 0.75)]  # inside the brush stroke
    far = diff[int(h * 0.5):int(h * 0.62), int(w * 0.55):]  # right of the polygon, below the stroke: still
    assert band.mean() > 5 * max(far.mean(), 0.2), (band.mean(), far.mean())
