"""Input loading and validation: formats, EXIF, labelme, hints, and the one-line exit-2 errors of the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landscape4d.cli import main
from landscape4d.errors import InputError
from landscape4d.io.images import load_photo
from landscape4d.io.masks import load_hints_json, load_motion_input


def _photo(path: Path, w=96, h=80, mode="RGB") -> Path:
    a = (np.random.default_rng(1).random((h, w, 3)) * 255).astype(np.uint8)
    im = Image.fromarray(a).convert(mode)
    im.save(path)
    return path


def test_formats(tmp_path):
    rgb = load_photo(_photo(tmp_path / "a.png")).image
    assert rgb.shape == (80, 96, 3) and rgb.dtype == np.float32
    rgba = load_photo(_photo(tmp_path / "b.png", mode="RGBA")).image
    np.testing.assert_allclose(rgba, rgb, atol=1e-6)
    gray = load_photo(_photo(tmp_path / "c.png", mode="L")).image
    assert gray.shape == (80, 96, 3) and np.allclose(gray[..., 0], gray[..., 2])
    webp = load_photo(_photo(tmp_path / "d.webp")).image
    assert webp.shape == (80, 96, 3)
    a16 = (np.linspace(0, 65535, 96 * 80).reshape(80, 96)).astype(np.uint16)
    import cv2

    cv2.imwrite(str(tmp_path / "e.png"), np.stack([a16] * 3, -1))
    im16 = load_photo(tmp_path / "e.png").image
    np.testing.assert_allclose(im16[..., 0], a16 / 65535.0, atol=1e-6)  # full 16-bit precision kept


def test_exif_orientation(tmp_path):
    a = np.zeros((80, 120, 3), np.uint8)
    a[:10, :, 0] = 255  # red band on top
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    im.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    p = load_photo(tmp_path / "r.jpg").image
    assert p.shape == (120, 80, 3)
    assert p[:, -10:, 0].mean() > 0.8  # the top band is now on the right


def test_labelme_sample(sample_dir):
    mi = load_motion_input(sample_dir / "image.json", 1280, 720)
    assert mi.mask.shape == (720, 1280) and 0.01 < mi.mask.mean() < 0.9
    assert mi.arrows.shape == (11, 2, 2)
    png = load_motion_input(sample_dir / "mask.png", 1280, 720)
    assert png.mask.any()


def test_hints_json(tmp_path):
    p = tmp_path / "h.json"
    p.write_text(json.dumps({"hints": [{"start": [1, 2], "end": [5, 2]}], "speed": 0.5}))
    arrows, direction, speed = load_hints_json(p, 100, 80)
    assert arrows.shape == (1, 2, 2) and speed == 0.5 and direction is None
    p.write_text(json.dumps({"hints": [{"start": [1, 2], "end": [500, 2]}]}))
    with pytest.raises(InputError, match="outside"):
        load_hints_json(p, 100, 80)
    p.write_text(json.dumps({"hints": [{"start": [1, 2]}]}))
    with pytest.raises(InputError, match="start"):
        load_hints_json(p, 100, 80)


def _cli(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def _assert_clean_failure(code, err, run: Path, name: str):
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("landscape4d: error")]
    assert len(lines) == 1 and name in lines[0], err
    assert "Traceback" not in err
    assert not run.exists()


@pytest.mark.parametrize("case", ["missing", "not_image", "mask_size", "empty_mask", "small", "large",
                                  "bad_json", "no_hints", "labelme_size"])
def test_bad_input_exit_2(tmp_path, capsys, case):
    photo = _photo(tmp_path / "p.png", 96, 80)
    mask = tmp_path / "m.png"
    Image.fromarray(np.full((80, 96), 255, np.uint8)).save(mask)
    hints = tmp_path / "h.json"
    hints.write_text(json.dumps({"direction": [1, 0]}))
    run = tmp_path / "run"
    argv = ["motion", str(photo), "--mask", str(mask), "--hints", str(hints), "-o", str(run)]
    name = None
    if case == "missing":
        argv[1] = name = str(tmp_path / "nope.jpg")
    elif case == "not_image":
        bad = tmp_path / "bad.jpg"
        bad.write_bytes(b"this is not a jpeg")
        argv[1] = name = str(bad)
    elif case == "mask_size":
        Image.fromarray(np.full((40, 40), 255, np.uint8)).save(mask)
        name = str(mask)
    elif case == "empty_mask":
        Image.fromarray(np.zeros((80, 96), np.uint8)).save(mask)
        name = str(mask)
    elif case == "small":
        argv[1] = name = str(_photo(tmp_path / "tiny.png", 40, 30))
    elif case == "large":
        argv += ["--set", "max_input_pixels=1000"]
        name = str(photo)
    elif case == "bad_json":
        hints.write_text("{not json")
        name = str(hints)
    elif case == "no_hints":
        hints.write_text(json.dumps({}))
        name = str(mask)
    elif case == "labelme_size":
        lm = tmp_path / "lm.json"
        lm.write_text(json.dumps({"shapes": [], "imageWidth": 10, "imageHeight": 10}))
        argv[3] = name = str(lm)
    code, err = _cli(capsys, argv)
    _assert_clean_failure(code, err, run, name)
