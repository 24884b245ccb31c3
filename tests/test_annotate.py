"""`landscape4d annotate` without a browser: labelme writing (contour tracing round trip), the page's server (state,
live preview, save, reopen, refusing other sites), the preview's frame sampling, and the command line."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from landscape4d.animate import animate_image
from landscape4d.cli import main
from landscape4d.config import AnimateConfig
from landscape4d.io.masks import (labelme_document, labelme_motion, labelme_shapes, load_motion_input, mask_polygons,
                                  mask_png_path)
from landscape4d.viewer.annotate import (AnnotateConfig, AnnotateSession, make_annotate_server, page_assets,
                                         preview_frames)

W, H = 160, 96


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def blobs(w: int = W, h: int = H) -> np.ndarray:
    """A mask with a hole, an island in the hole, a region touching the border, a thin line and a lone pixel."""
    m = np.zeros((h, w), np.uint8)
    cv2.rectangle(m, (5, 5), (90, 70), 1, -1)
    cv2.circle(m, (35, 35), 18, 0, -1)
    cv2.circle(m, (35, 35), 6, 1, -1)
    cv2.rectangle(m, (120, 0), (w - 1, 40), 1, -1)
    m[80:82, 10:100] = 1
    m[90, 150] = 1
    return m.astype(bool)


def pil_fill(polygons: list[np.ndarray], w: int, h: int) -> np.ndarray:
    """labelme's own rasteriser (PIL ImageDraw.polygon, as labelme.utils.shape_to_mask)."""
    im = Image.new("L", (w, h))
    draw = ImageDraw.Draw(im)
    for p in polygons:
        draw.polygon([tuple(v) for v in p], outline=1, fill=1)
    return np.asarray(im) > 0


@pytest.mark.parametrize("kind", ["blobs", "noise"])
def test_traced_polygons_fill_back_to_the_mask(kind, rng):
    if kind == "blobs":
        mask = blobs()
    else:
        mask = cv2.GaussianBlur(rng.random((H, W)).astype(np.float32), (0, 0), 2.5) > 0.5
    polygons = mask_polygons(mask)
    arrows = np.array([[[20.5, 10.25], [30.0, 12.0]], [[130.0, 20.0], [150.0, 20.0]]])
    doc = json.loads(json.dumps(labelme_document(polygons, arrows, W, H, "photo.png")))
    mi = labelme_motion(doc, W, H)
    np.testing.assert_array_equal(mi.mask, mask)  # our loader (cv2.fillPoly): exact
    assert iou(pil_fill(labelme_shapes(doc)[0], W, H), mask) > 0.99  # labelme / 3D-Cinemagraphy's rasteriser
    np.testing.assert_allclose(mi.arrows, arrows, atol=0.005)
    assert [s["label"] for s in doc["shapes"]][-2:] == ["hint0", "hint1"]
    assert {s["shape_type"] for s in doc["shapes"]} == {"polygon", "line"}
    assert doc["imageData"] is None and (doc["imageWidth"], doc["imageHeight"]) == (W, H)
    assert {"version", "flags", "shapes", "imagePath"} <= set(doc)


def test_document_keeps_other_shapes_and_keys():
    base = {"version": "4.5.6", "flags": {"x": True}, "custom": 1, "shapes": [
        {"label": "motion", "points": [[0, 0], [9, 0], [9, 9]], "shape_type": "polygon"},
        {"label": "hint0", "points": [[1, 1], [2, 2]], "shape_type": "line"},
        {"label": "tree", "points": [[3, 3], [5, 5]], "shape_type": "rectangle"}]}
    doc = labelme_document([np.array([[1.0, 1], [5, 1], [5, 5]])], np.zeros((0, 2, 2)), 20, 10, "a.jpg", base)
    assert [s["label"] for s in doc["shapes"]] == ["motion", "tree"]
    assert doc["version"] == "4.5.6" and doc["custom"] == 1 and doc["flags"] == {"x": True}


def test_sample_file_round_trip(sample_dir, tmp_path):
    """3D-Cinemagraphy's own labelme file: its shapes written back by our writer read the same."""
    data = json.loads((sample_dir / "image.json").read_text())
    first = labelme_motion(data, 1280, 720)
    polygons, arrows = labelme_shapes(data)
    doc = labelme_document(polygons, arrows, 1280, 720, "image.jpg", data)
    again = labelme_motion(json.loads(json.dumps(doc)), 1280, 720)
    np.testing.assert_array_equal(again.mask, first.mask)
    np.testing.assert_allclose(again.arrows, first.arrows, atol=0.005)
    # tracing its mask gives polygons that fill back to it
    np.testing.assert_array_equal(labelme_motion(labelme_document(mask_polygons(first.mask), arrows, 1280, 720,
                                                                  "image.jpg"), 1280, 720).mask, first.mask)


# ---------------------------------------------------------------------------------------------- the preview


def test_preview_is_the_pipelines_loop_sampled(rng):
    """frame_step 1: exactly animate_image's loop; frame_step 2 on a uniform motion: every other frame of it (up to
    the Euler steps near the mask's edge, where the velocity drops to zero)."""
    image = rng.random((24, 32, 3)).astype(np.float32)
    mask = np.zeros((24, 32), bool)
    mask[4:20, 6:26] = True
    arrows = np.array([[[10.0, 10.0], [22.0, 13.0]]])  # one hint: uniform motion (12, 3) / 60 px/frame
    one = preview_frames(image, mask, arrows, AnnotateConfig(num_frames=20, frame_step=1))
    M = np.zeros((24, 32, 2), np.float32)
    M[mask] = (0.2, 0.05)
    ref = animate_image(image, M, mask, 20, AnimateConfig(num_frames=20), device="cpu")[:-1]
    np.testing.assert_array_equal(one, (np.clip(ref, 0, 1) * 255 + 0.5).astype(np.uint8))
    yy, xx = np.mgrid[0:24, 0:32]  # a smooth picture: small differences of position give small differences
    image = np.stack([0.5 + 0.4 * np.sin(xx / 2), 0.5 + 0.4 * np.cos(yy / 3), 0.5 + 0.3 * np.sin((xx + yy) / 4)], -1)
    one = preview_frames(image.astype(np.float32), mask, arrows, AnnotateConfig(num_frames=20, frame_step=1))
    two = preview_frames(image.astype(np.float32), mask, arrows, AnnotateConfig(num_frames=20, frame_step=2))
    assert two.shape == (10, 24, 32, 3)
    d = np.abs(two.astype(int) - one[::2].astype(int)).max(-1)  # (10, 24, 32)
    step = np.abs(one[1::2].astype(int) - one[::2].astype(int)).max(-1)  # one frame apart, for scale
    assert d.mean() < 0.2 < 1.5 < step.mean() and d.max() <= 6 < step.max()
    with pytest.raises(ValueError, match="arrow"):
        preview_frames(image, mask, np.zeros((0, 2, 2)), AnnotateConfig())
    with pytest.raises(ValueError, match="paint"):
        preview_frames(image, np.zeros_like(mask), arrows, AnnotateConfig())


# ---------------------------------------------------------------------------------------------- the server


def photo_file(path: Path, w: int = W, h: int = H) -> Path:
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([128 + 100 * np.sin(xx / 4), 128 + 100 * np.cos(yy / 5), 128 + 80 * np.sin((xx - yy) / 6)], -1)
    rgb = rgb.astype(np.uint8)  # smooth (JPEG keeps it) but with detail at every place, so that motion shows
    Image.fromarray(rgb).save(path)
    return path


def data_url(mask: np.ndarray) -> str:
    """The page's mask canvas: RGBA, alpha = moving."""
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = np.where(mask, 255, 0)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def request(url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    data = None if body is None else json.dumps(body).encode()
    h = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, headers=h, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def served(tmp_path):
    photo = photo_file(tmp_path / "photo.png")
    session = AnnotateSession(photo, cfg=AnnotateConfig(display_side=80, preview_side=64, num_frames=12))
    server = make_annotate_server(session, "127.0.0.1", 0)
    server.start_thread()
    yield session, server.url
    server.close()


def test_server_preview_save_and_reopen(served, tmp_path):
    session, url = served
    state = json.loads(request(url + "state.json")[2])
    assert (state["imageWidth"], state["imageHeight"], state["displayWidth"], state["displayHeight"]) == (W, H, 80, 48)
    assert state["out"] == str(tmp_path / "photo.json") and not state["hasMask"] and state["arrows"] == []
    assert Image.open(io.BytesIO(request(url + "photo.jpg")[2])).size == (80, 48)
    assert b"annotate.js" in request(url)[2]
    # a region painted at the display size, one arrow in photo pixels
    shown = np.zeros((48, 80), bool)
    shown[10:30, 20:60] = True
    arrow = [60.0, 40.0, 100.0, 45.0]
    code, headers, strip = request(url + "preview", {"mask": data_url(shown), "arrows": [arrow]})
    assert code == 200 and headers["Content-Type"] == "image/jpeg" and int(headers["X-Frames"]) == 6
    assert int(headers["X-Frame-Pitch"]) == 48  # 38 rows padded to JPEG blocks
    frames = np.asarray(Image.open(io.BytesIO(strip)).convert("RGB")).reshape(6, 48, 64, 3)[:, :38].astype(int)
    moving = cv2.resize(shown.astype(np.uint8), (64, 38), interpolation=cv2.INTER_NEAREST).astype(bool)
    near = cv2.dilate(moving.astype(np.uint8), np.ones((5, 5), np.uint8))
    blocks = np.pad(near, ((0, 10), (0, 0))).reshape(3, 16, 4, 16).max(axis=(1, 3))  # JPEG blocks (16 x 16)
    still = ~np.kron(blocks, np.ones((16, 16), np.uint8)).astype(bool)[:38]  # blocks far from the region
    change = np.abs(frames[3] - frames[0]).mean(-1)
    assert still.sum() > 300  # the region moves; the blocks without it are exactly the same in every frame
    assert change[moving].mean() > 8 and change[still].max() == 0
    code, _, body = request(url + "preview", {"mask": data_url(shown), "arrows": []})
    assert code == 422 and "arrow" in json.loads(body)["error"]
    # save: labelme JSON + mask PNG that `run --mask` reads back to the painted region
    code, _, body = request(url + "save", {"mask": data_url(shown), "maskChanged": True, "arrows": [arrow]})
    saved = json.loads(body)
    assert code == 200 and saved["polygons"] == 1 and saved["hints"] == 1
    out = tmp_path / "photo.json"
    mi = load_motion_input(out, W, H)
    expected = np.zeros((H, W), bool)
    expected[20:60, 40:120] = True  # the painted display rectangle at twice the size
    assert iou(mi.mask, expected) > 0.97
    np.testing.assert_allclose(mi.arrows, [[[60, 40], [100, 45]]], atol=0.01)
    np.testing.assert_array_equal(np.asarray(Image.open(mask_png_path(out))) > 0, mi.mask)
    doc = json.loads(out.read_text())
    assert doc["imagePath"] == "photo.png" and doc["imageData"] is None
    # reopen: the file is edited; an unchanged mask keeps its polygons exactly, new arrows replace the old
    again = AnnotateSession(tmp_path / "photo.png", out, AnnotateConfig(display_side=80))
    st = again.state()
    assert st["hasMask"] and st["arrows"] == [arrow]
    shown_again = np.asarray(Image.open(io.BytesIO(again.mask_png))) > 127
    assert iou(shown_again, shown) > 0.95
    again.save({"mask": None, "maskChanged": False, "arrows": [arrow, [70, 30, 70, 50]]})
    doc2 = json.loads(out.read_text())
    assert [s["points"] for s in doc2["shapes"] if s["label"] == "motion"] == \
        [s["points"] for s in doc["shapes"] if s["label"] == "motion"]
    assert len(load_motion_input(out, W, H).arrows) == 2


def test_server_refuses_other_sites(served):
    _, url = served
    body = {"mask": None, "arrows": []}
    assert request(url + "save", body, {"Origin": "http://evil.example"})[0] == 403
    assert request(url + "save", body, {"Host": "evil.example"})[0] == 403
    assert request(url + "state.json", None, {"Host": "evil.example:80"})[0] == 403
    assert request(url + "save", body, {"Content-Type": "text/plain"})[0] == 415
    assert request(url + "save", {"mask": "data:image/png;base64,AAAA", "arrows": []})[0] == 422
    assert request(url + "nope")[0] == 404


def test_page_assets_fall_back_to_the_sources(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("annotate.html", "annotate.js", "annotate.css", "annotate_model.js", "main.js"):
        (src / name).write_text("x")
    assets = page_assets(static_dir=tmp_path / "none", source_dir=src)
    assert set(assets) == {"annotate.html", "annotate.js", "annotate.css", "annotate_model.js"}


# ---------------------------------------------------------------------------------------------- the command


@pytest.mark.parametrize("case", ["missing", "not_json", "wrong_size"])
def test_bad_input_exit_2(case, tmp_path, capsys):
    photo = photo_file(tmp_path / "p.png")
    argv = ["annotate", str(photo), "--no-browser", "--port", "0"]
    if case == "missing":
        argv[1] = name = str(tmp_path / "nope.jpg")
    elif case == "not_json":
        argv += ["-o", name := str(tmp_path / "mask.png")]
    else:
        (tmp_path / "p.json").write_text(json.dumps({"shapes": [], "imageWidth": 10, "imageHeight": 10}))
        name = str(tmp_path / "p.json")
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("landscape4d: error")]
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in err


def test_command_prints_the_url_and_stops_on_close(tmp_path):
    photo = photo_file(tmp_path / "p.png")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from landscape4d.cli import main; sys.exit(main())",
                             "annotate", str(photo), "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        assert json.loads(request(url + "state.json")[2])["imageWidth"] == W
        assert request(url + "close", {})[0] == 200
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "nothing saved" in err


def test_view_pages_leave_the_annotate_page_out(tmp_path):
    """`view` and `export --web` serve/copy the viewer's files, not the annotate page built beside them."""
    from landscape4d.viewer.server import page_files

    for name in ("index.html", "viewer.js", "viewer.css", "THIRD_PARTY_LICENSES.txt", "annotate.html", "annotate.js",
                 "annotate.css"):
        (tmp_path / name).write_text("x")
    assert set(page_files(tmp_path)) == {"index.html", "viewer.js", "viewer.css", "THIRD_PARTY_LICENSES.txt"}
