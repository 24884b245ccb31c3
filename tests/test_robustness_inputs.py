"""Bad input to every loader and command: a one-line `landscape4d: error: ...` naming the file, exit code 2, no
traceback, and an existing run folder left as it was. Property tests (hypothesis) for the JSON parsers: any JSON
value either loads or raises InputError, never another exception."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from landscape4d.camera import load_custom_trajectory
from landscape4d.cli import main
from landscape4d.depth.file import load_depth_file
from landscape4d.dynamics.model import Scene4D
from landscape4d.dynamics.scene_file import load_scene4d, save_scene4d
from landscape4d.errors import InputError
from landscape4d.io.images import load_photo
from landscape4d.io.masks import load_hints_json, load_motion_input

W, H = 96, 80
FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------------ helpers


def png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose header claims w x h pixels, followed by a few bytes of data: must be refused from its header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def make_photo(path: Path, w: int = W, h: int = H) -> Path:
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1).astype(np.uint8)
    Image.fromarray(a).save(path, quality=90) if path.suffix == ".jpg" else Image.fromarray(a).save(path)
    return path


def cut_in_half(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under root (relative path -> digest), except top-level names in `skip`."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] not in skip}


def assert_one_line_error(code: int, err: str, name: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("landscape4d: error:")]
    assert len(lines) == 1, err
    assert name in lines[0], (name, lines[0])
    assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    f = {"photo": make_photo(d / "photo.png"), "jpg": make_photo(d / "photo.jpg")}
    mask = np.zeros((H, W), np.uint8)
    mask[H // 2:, :] = 255
    Image.fromarray(mask).save(d / "mask.png")
    f["mask"] = d / "mask.png"
    f["hints"] = d / "hints.json"
    f["hints"].write_text(json.dumps({"hints": [{"start": [20, 60], "end": [40, 70]}]}))
    return f


@pytest.fixture(scope="module")
def finished_run(files, tmp_path_factory) -> Path:
    """A run folder whose depth and views stages have finished (tiny settings)."""
    run = tmp_path_factory.mktemp("runs") / "run"
    argv = ["views", str(files["photo"]), "--mask", str(files["mask"]), "--hints", str(files["hints"]), "-o",
            str(run), "--size", "64", "--num-views", "2"]
    assert main(argv) == 0
    assert (run / "views" / ".stage.json").exists()
    return run


# ------------------------------------------------------------------------------- the CLI, case by case


def _bad_case(case: str, files: dict[str, Path], d: Path) -> tuple[list[str], str]:
    """-> (extra argv replacing the photo/mask/hints, the file the error must name)."""
    photo, mask, hints = str(files["photo"]), str(files["mask"]), str(files["hints"])
    if case == "photo_truncated_jpeg":
        photo = str(cut_in_half(files["jpg"], d / "half.jpg"))
        return [photo, "--mask", mask, "--hints", hints], photo
    if case == "photo_truncated_png":
        photo = str(cut_in_half(files["photo"], d / "half.png"))
        return [photo, "--mask", mask, "--hints", hints], photo
    if case == "photo_zero_bytes":
        (d / "empty.jpg").write_bytes(b"")
        return [str(d / "empty.jpg"), "--mask", mask], str(d / "empty.jpg")
    if case == "photo_huge_header":
        p = str(png_header_only(d / "huge.png", 100_000, 100_000))
        return [p, "--mask", mask], p
    if case == "photo_is_folder":
        return [str(d), "--mask", mask], str(d)
    if case == "mask_huge_header":
        m = str(png_header_only(d / "huge_mask.png", 100_000, 100_000))
        return [photo, "--mask", m], m
    if case == "mask_wrong_size":
        Image.fromarray(np.full((H, W + 1), 255, np.uint8)).save(d / "m2.png")
        return [photo, "--mask", str(d / "m2.png")], str(d / "m2.png")
    if case == "mask_zero_bytes":
        (d / "m0.png").write_bytes(b"")
        return [photo, "--mask", str(d / "m0.png")], str(d / "m0.png")
    if case == "mask_truncated":
        m = str(cut_in_half(files["mask"], d / "mhalf.png"))
        return [photo, "--mask", m], m
    if case == "labelme_malformed":
        (d / "lm.json").write_text('{"shapes": [')
        return [photo, "--mask", str(d / "lm.json")], str(d / "lm.json")
    if case == "labelme_points_not_numbers":
        (d / "lm2.json").write_text(json.dumps({"shapes": [{"label": "motion", "points": [["a", 1], [2, 3]]}]}))
        return [photo, "--mask", str(d / "lm2.json")], str(d / "lm2.json")
    if case == "labelme_infinite_size":
        (d / "lm3.json").write_text('{"shapes": [], "imageWidth": Infinity, "imageHeight": 80}')
        return [photo, "--mask", str(d / "lm3.json")], str(d / "lm3.json")
    if case == "labelme_huge_integer":
        (d / "lm4.json").write_text('{"shapes": [{"label": "motion", "points": [[1' + "0" * 400 + ', 1], [2, 2], '
                                    '[3, 1]]}]}')
        return [photo, "--mask", str(d / "lm4.json")], str(d / "lm4.json")
    if case == "hints_outside_image":
        (d / "h1.json").write_text(json.dumps({"hints": [{"start": [10, 10], "end": [10, 500]}]}))
        return [photo, "--mask", mask, "--hints", str(d / "h1.json")], str(d / "h1.json")
    if case == "hints_not_object":
        (d / "h2.json").write_text("[1, 2, 3]")
        return [photo, "--mask", mask, "--hints", str(d / "h2.json")], str(d / "h2.json")
    if case == "hints_huge_speed":
        (d / "h3.json").write_text('{"speed": 1' + "0" * 400 + "}")
        return [photo, "--mask", mask, "--hints", str(d / "h3.json")], str(d / "h3.json")
    if case == "hints_binary":
        (d / "h4.json").write_bytes(b"\xff\xfe\x00garbage")
        return [photo, "--mask", mask, "--hints", str(d / "h4.json")], str(d / "h4.json")
    if case == "hints_deeply_nested":
        (d / "h5.json").write_text("[" * 100_000 + "]" * 100_000)
        return [photo, "--mask", mask, "--hints", str(d / "h5.json")], str(d / "h5.json")
    raise AssertionError(case)


BAD_CASES = ["photo_truncated_jpeg", "photo_truncated_png", "photo_zero_bytes", "photo_huge_header",
             "photo_is_folder", "mask_huge_header", "mask_wrong_size", "mask_zero_bytes", "mask_truncated",
             "labelme_malformed", "labelme_points_not_numbers", "labelme_infinite_size", "labelme_huge_integer",
             "hints_outside_image", "hints_not_object", "hints_huge_speed", "hints_binary", "hints_deeply_nested"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_new_run_folder(case, files, tmp_path, capsys):
    """Every command refuses bad input with one line and exit 2, and creates no run folder."""
    extra, name = _bad_case(case, files, tmp_path)
    run = tmp_path / "new_run"
    command = "motion" if "hints" in case or "labelme" in case else "depth"
    t0 = time.perf_counter()
    code = main([command, *extra, "-o", str(run)])
    assert_one_line_error(code, capsys.readouterr().err, name)
    assert not run.exists()
    if "huge" in case:
        assert time.perf_counter() - t0 < 20  # refused from the header, never decoded (10^10 pixels)


@pytest.mark.parametrize("case", ["photo_truncated_jpeg", "photo_zero_bytes", "photo_huge_header", "mask_wrong_size",
                                  "labelme_malformed", "hints_outside_image"])
def test_bad_input_leaves_existing_run_unchanged(case, files, finished_run, tmp_path, capsys):
    before = tree_digest(finished_run)
    extra, name = _bad_case(case, files, tmp_path)
    code = main(["views", *extra, "-o", str(finished_run)])
    assert_one_line_error(code, capsys.readouterr().err, name)
    assert tree_digest(finished_run) == before  # nothing written: bad input is refused before any write


def _depth_file(case: str, d: Path) -> Path:
    if case == "npy_nan":
        a = np.ones((H, W), np.float32)
        a[3, 4] = np.nan
        np.save(d / "nan.npy", a)
        return d / "nan.npy"
    if case == "npy_inf":
        a = np.ones((H, W), np.float32)
        a[5, 5] = np.inf
        np.save(d / "inf.npy", a)
        return d / "inf.npy"
    if case == "npy_zero_bytes":
        (d / "z.npy").write_bytes(b"")
        return d / "z.npy"
    if case == "npy_truncated":
        np.save(d / "full.npy", np.ones((H, W), np.float32))
        return cut_in_half(d / "full.npy", d / "t.npy")
    if case == "npy_object":
        np.save(d / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return d / "o.npy"
    if case == "png16_all_zero":
        cv2.imwrite(str(d / "z16.png"), np.zeros((H, W), np.uint16))
        return d / "z16.png"
    if case == "png16_wrong_aspect":
        cv2.imwrite(str(d / "a16.png"), np.full((H, 3 * W), 1000, np.uint16))
        return d / "a16.png"
    if case == "png_huge_header":
        return png_header_only(d / "huge_depth.png", 100_000, 100_000)
    if case == "png_truncated":
        cv2.imwrite(str(d / "f16.png"), (np.arange(H * W).reshape(H, W) % 60000 + 1).astype(np.uint16))
        return cut_in_half(d / "f16.png", d / "t16.png")
    raise AssertionError(case)


DEPTH_CASES = ["npy_nan", "npy_inf", "npy_zero_bytes", "npy_truncated", "npy_object", "png16_all_zero",
               "png16_wrong_aspect", "png_huge_header", "png_truncated"]


@pytest.mark.parametrize("case", DEPTH_CASES)
def test_bad_depth_file(case, files, finished_run, tmp_path, capsys):
    """A bad --depth-file fails the depth stage with one line; the finished stages stay as they were."""
    path = _depth_file(case, tmp_path)
    with pytest.raises(InputError) as e:
        load_depth_file(path, W, H)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    before = tree_digest(finished_run, skip=("config.json", "state.json", "report.json"))
    code = main(["depth", str(files["photo"]), "--mask", str(files["mask"]), "--hints", str(files["hints"]), "-o",
                 str(finished_run), "--size", "64", "--num-views", "2", "--depth-backend", "file", "--depth-file",
                 str(path)])
    assert_one_line_error(code, capsys.readouterr().err, str(path))
    assert tree_digest(finished_run, skip=("config.json", "state.json", "report.json")) == before
    state = json.loads((finished_run / "state.json").read_text())["stages"]
    assert state["depth"]["state"] == "failed" and state["views"]["state"] == "done"
    assert not list(finished_run.glob(".*.tmp-*"))


def test_good_depth_file_16bit_png_loads(tmp_path):
    a = (np.arange(H * W).reshape(H, W) % 60000 + 1).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), a)
    d, kind = load_depth_file(tmp_path / "d.png", W // 2, H // 2)
    assert d.shape == (H // 2, W // 2) and kind == "depth" and np.isfinite(d).all() and d.min() > 0


# --------------------------------------------------------------------------- the 4D scene file and paths


def _tiny_scene(n: int = 6, order: int = 1) -> Scene4D:
    g = torch.Generator().manual_seed(0)
    return Scene4D(means=torch.randn(n, 3, generator=g) + torch.tensor([0, 0, 4.0]),
                   quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), log_scales=torch.full((n, 3), -2.0),
                   opacity_logits=torch.zeros(n), sh=torch.rand(n, 1, 3, generator=g), velocity=torch.zeros(n, 3),
                   moving=torch.zeros(n, dtype=torch.bool),
                   pos_coef=torch.zeros(n, 2 * order, 3), rot_coef=torch.zeros(n, 2 * order, 4),
                   scale_coef=torch.zeros(n, 2 * order, 3), num_frames=4)


HEADER = {"fps": 4, "camera": {"fl_x": 40.0, "fl_y": 40.0, "cx": 32.0, "cy": 24.0, "w": 64, "h": 48},
          "scene_depth": 4.0}


@pytest.fixture
def scene_path(tmp_path) -> Path:
    path = tmp_path / "scene4d.safetensors"
    save_scene4d(path, _tiny_scene(), HEADER)
    return path


def test_scene_file_round_trip(scene_path):
    scene, head = load_scene4d(scene_path)
    assert len(scene) == 6 and scene.num_frames == 4 and head["camera"]["w"] == 64


@pytest.mark.parametrize("case", ["truncated", "zero_bytes", "wrong_shape", "nan", "no_camera", "bad_frames"])
def test_bad_scene_file(case, scene_path, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad.safetensors"
    tensors = load_file(str(scene_path))
    head = dict(json.loads(scene_path.with_suffix(".json").read_text()))
    if case == "truncated":
        cut_in_half(scene_path, bad)
    elif case == "zero_bytes":
        bad.write_bytes(b"")
    else:
        if case == "wrong_shape":
            tensors["quats"] = tensors["quats"][:3]
        elif case == "nan":
            tensors["means"][0, 0] = float("nan")
        elif case == "no_camera":
            del head["camera"]
        elif case == "bad_frames":
            head["num_frames"] = "many"
        save_file(tensors, str(bad), metadata={"landscape4d": json.dumps(head)})
    with pytest.raises(InputError, match="bad.safetensors"):
        load_scene4d(bad)
    out = tmp_path / "out"
    code = main(["render", "--scene", str(bad), "-o", str(out), "--trajectory", "side"])
    assert_one_line_error(code, capsys.readouterr().err, str(bad))


@pytest.mark.parametrize("text", ["", "{", "[]", '{"frames": 3}', "[[1, 2], [3, 4]]",
                                  "[[[1e999, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]]",
                                  "[[[1" + "0" * 400 + ", 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]]"])
def test_bad_custom_path(text, scene_path, tmp_path, capsys):
    path = tmp_path / "path.json"
    path.write_text(text)
    with pytest.raises(InputError, match="path.json"):
        load_custom_trajectory(path)
    code = main(["render", "--scene", str(scene_path), "-o", str(tmp_path / "out"), "--custom-path", str(path),
                 "--trajectory", "side", "--set", "render.gif=false"])
    assert_one_line_error(code, capsys.readouterr().err, str(path))


# --------------------------------------------------------------------------------- hypothesis: JSON parsers


SPECIAL = [float("inf"), float("-inf"), float("nan"), 10**400, -(10**400), 1e308, -1e308, 2**31, 2**63, 5e8, 0, -1,
           0.5, True, False]


def _numbers():
    return st.one_of(st.sampled_from(SPECIAL), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                     st.floats(-20, 120))


def _json_values():
    scalars = st.one_of(st.none(), st.booleans(), _numbers(), st.text(max_size=8))
    return st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                      st.dictionaries(st.text(max_size=6), c, max_size=4)),
                        max_leaves=12)


def _points():
    pt = st.one_of(st.lists(_numbers(), min_size=2, max_size=2), _json_values())
    return st.one_of(st.lists(pt, max_size=6), _json_values())


def _shapes():
    shape = st.fixed_dictionaries(
        {"label": st.one_of(st.sampled_from(["motion", "hint1", "hint22", "sky"]), _json_values()),
         "points": _points()},
        optional={"shape_type": st.one_of(st.sampled_from(["polygon", "rectangle", "line", "circle"]),
                                          _json_values())})
    return st.lists(st.one_of(shape, _json_values()), max_size=5)


def _labelme():
    return st.one_of(_json_values(), st.fixed_dictionaries(
        {"shapes": st.one_of(_shapes(), _json_values())},
        optional={"imageWidth": st.one_of(st.just(W), _numbers(), _json_values()),
                  "imageHeight": st.one_of(st.just(H), _numbers(), _json_values())}))


def _hints():
    point = st.one_of(st.lists(_numbers(), min_size=2, max_size=2), _json_values())
    hint = st.one_of(st.fixed_dictionaries({"start": point, "end": point}),
                     st.fixed_dictionaries({}, optional={"start": point, "end": point}))
    arrow = st.fixed_dictionaries({"start": st.lists(st.floats(-10, 200), min_size=2, max_size=2),
                                   "end": st.lists(st.floats(-10, 200), min_size=2, max_size=2)})
    return st.one_of(_json_values(), st.fixed_dictionaries(
        {}, optional={"hints": st.one_of(st.lists(st.one_of(hint, arrow, _json_values()), min_size=1, max_size=4),
                                         _json_values()),
                      "direction": st.one_of(st.lists(_numbers(), max_size=3), st.text(max_size=8),
                                             _json_values()),
                      "speed": st.one_of(_numbers(), _json_values()),
                      "extra": _json_values()}))


def _dump(value) -> str:
    return json.dumps(value)  # allow_nan: NaN/Infinity literals, which Python's json reads back


BIG = 10**400  # a JSON integer no float holds


@FUZZ
@given(_labelme())
@example({"shapes": [{"label": "motion", "points": [[BIG, 1], [2, 2], [3, 1]]}]})
@example({"shapes": [{"label": "hint1", "shape_type": "line", "points": [[1, 1], [2, -BIG]]}]})
@example({"shapes": [], "imageWidth": float("inf"), "imageHeight": H})
@example({"shapes": [], "imageWidth": W, "imageHeight": float("nan")})
@example({"shapes": [{"label": "motion", "points": [[5e8, 1], [1, 5e8], [-5e8, 2]]}]})  # no slow fill
def test_fuzz_labelme(tmp_path, value):
    path = tmp_path / "lm.json"
    path.write_text(_dump(value))
    try:
        mi = load_motion_input(path, W, H)
    except InputError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    assert mi.mask.shape == (H, W) and mi.mask.dtype == bool
    assert mi.arrows.ndim == 3 and mi.arrows.shape[1:] == (2, 2) and np.isfinite(mi.arrows).all()


@FUZZ
@given(_hints())
@example({"hints": [{"start": [BIG, 1], "end": [1, 1]}]})
@example({"speed": BIG})
@example({"direction": [BIG, 1]})
@example({"direction": "nan,1"})
def test_fuzz_hints(tmp_path, value):
    path = tmp_path / "hints.json"
    path.write_text(_dump(value))
    try:
        arrows, direction, speed = load_hints_json(path, W, H)
    except InputError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    assert arrows.shape[1:] == (2, 2) and np.isfinite(arrows).all()
    assert ((arrows[..., 0] >= 0) & (arrows[..., 0] <= W) & (arrows[..., 1] >= 0) & (arrows[..., 1] <= H)).all()
    assert direction is None or (len(direction) == 2 and np.isfinite(direction).all() and any(direction))
    assert speed is None or (np.isfinite(speed) and speed > 0)


@FUZZ
@example([[[BIG, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]])
@given(st.one_of(_json_values(), st.lists(st.lists(st.lists(_numbers(), min_size=4, max_size=4), min_size=4,
                                                   max_size=4), max_size=3),
                 st.fixed_dictionaries({"frames": st.lists(st.fixed_dictionaries(
                     {"transform_matrix": st.one_of(_json_values(), st.lists(st.lists(
                         st.floats(-5, 5), min_size=4, max_size=4), min_size=4, max_size=4))}), max_size=3)})))
def test_fuzz_custom_trajectory(tmp_path, value):
    path = tmp_path / "path.json"
    path.write_text(_dump(value))
    try:
        poses = load_custom_trajectory(path)
    except InputError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    assert poses and all(p.shape == (4, 4) and np.isfinite(p).all() for p in poses)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_json_files_raw_bytes(tmp_path, data):
    """Arbitrary bytes as labelme, hints or a camera path: load or InputError."""
    path = tmp_path / "raw.json"
    path.write_bytes(data)
    for load in (lambda: load_motion_input(path, W, H), lambda: load_hints_json(path, W, H),
                 lambda: load_custom_trajectory(path)):
        try:
            load()
        except InputError:
            pass


# ------------------------------------------------------------------------------- hypothesis: corrupt images


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    yy, xx = np.mgrid[0:H, 0:W]
    Image.fromarray(np.stack([xx * 2, yy * 3, xx + yy], -1).astype(np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


IMAGES = {"PNG": _encoded("PNG"), "JPEG": _encoded("JPEG")}


@FUZZ
@given(st.sampled_from(sorted(IMAGES)), st.integers(0, 10**6), st.lists(st.tuples(st.integers(0, 10**6),
                                                                                   st.integers(0, 255)), max_size=4))
def test_fuzz_corrupt_images(tmp_path, fmt, cut, flips):
    """Photos and masks cut anywhere and with bytes changed: load (the same size) or InputError."""
    data = bytearray(IMAGES[fmt][: max(1, cut % (len(IMAGES[fmt]) + 1))])
    for pos, value in flips:
        data[pos % len(data)] = value
    path = tmp_path / ("x.png" if fmt == "PNG" else "x.jpg")
    path.write_bytes(bytes(data))
    try:
        photo = load_photo(path, min_side=8)
        assert photo.image.ndim == 3 and photo.image.shape[2] == 3 and np.isfinite(photo.image).all()
    except InputError as e:
        assert str(path) in str(e) and "\n" not in str(e)
    try:
        mi = load_motion_input(path, W, H)
        assert mi.mask.shape == (H, W)
    except InputError as e:
        assert str(path) in str(e)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["d.npy", "d.png"]))
def test_fuzz_depth_file_bytes(tmp_path, tail, name):
    """A valid .npy header or PNG signature followed by arbitrary bytes: load or InputError."""
    buf = io.BytesIO()
    np.save(buf, np.ones((H, W), np.float32))
    head = buf.getvalue()[:128] if name.endswith(".npy") else IMAGES["PNG"][:33]
    path = tmp_path / name
    path.write_bytes(head + tail)
    try:
        d, _ = load_depth_file(path, W, H)
        assert d.shape == (H, W) and np.isfinite(d).all()
    except InputError as e:
        assert str(path) in str(e)


@pytest.mark.parametrize("flags, key", [(["--fov", "0"], "depth.fov_deg"), (["--fov", "180"], "depth.fov_deg"),
                                        (["--frames", "1"], "animate.num_frames"),
                                        (["--set", "views.inpaint=blur"], "views.inpaint"),
                                        (["--set", "gaussians.lr_means=nan"], "gaussians.lr_means"),
                                        (["--set", "render.width=-5"], "render.width"),
                                        (["--set", "dynamics.iters=-1"], "dynamics.iters")])
def test_bad_config_value(flags, key, files, tmp_path, capsys):
    """An out-of-range config value is refused up front, with one line naming it, and no run folder."""
    run = tmp_path / "new_run"
    code = main(["depth", str(files["photo"]), "-o", str(run), *flags])
    assert_one_line_error(code, capsys.readouterr().err, key)
    assert not run.exists()
