"""Motion mask and motion hints: a mask PNG, the labelme JSON of 3D-Cinemagraphy, or our own hints JSON.

Formats (read here; `labelme_document`/`write_labelme` write the labelme one)
- Mask PNG: same size as the photo; any non-zero pixel (in any channel) is moving.
- labelme JSON (3D-Cinemagraphy): `shapes` with label `motion` (polygon or rectangle) form the mask; shapes of type
  `line` labelled `hintK` are arrows from their first to their second point. `imageWidth`/`imageHeight` must match
  the photo.
- Hints JSON (ours): {"hints": [{"start": [x, y], "end": [x, y]}, ...], "direction": [dx, dy], "speed": s}; every
  key optional. Coordinates are pixels of the original photo (x right, y down). An arrow is the displacement over
  `motion.hint_frames` frames (60 by default); `direction`/`speed` set one motion for the whole mask.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError


@dataclass
class MotionInput:
    mask: np.ndarray  # (H, W) bool, moving pixels
    arrows: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 2), np.float32))  # (K, 2, 2): start, end (x, y)
    direction: tuple[float, float] | None = None
    speed: float | None = None

    def resized(self, width: int, height: int) -> "MotionInput":
        """The same input at another image size (arrows and direction scaled with the pixels)."""
        h0, w0 = self.mask.shape
        sx, sy = width / w0, height / h0
        m = cv2.resize(self.mask.astype(np.uint8) * 255, (width, height), interpolation=cv2.INTER_AREA) >= 128
        arrows = self.arrows * np.array([sx, sy], np.float32)
        speed = None if self.speed is None else self.speed * 0.5 * (sx + sy)
        return MotionInput(m, arrows.astype(np.float32), self.direction, speed)

    def to_json(self) -> dict:
        return {
            "hints": [{"start": a[0].tolist(), "end": a[1].tolist()} for a in self.arrows],
            "direction": None if self.direction is None else list(self.direction),
            "speed": self.speed,
        }


def load_motion_input(path: str | Path | None, width: int, height: int,
                      hints_path: str | Path | None = None) -> MotionInput:
    """Read the mask (PNG or labelme JSON) for a photo of size (width, height), plus an optional hints JSON."""
    if path is None:
        mi = MotionInput(np.zeros((height, width), bool))
    else:
        path = Path(path)
        if not path.exists():
            raise InputError(path, "file not found")
        if path.suffix.lower() == ".json":
            mi = _load_labelme(path, width, height)
        else:
            mi = MotionInput(_load_mask_png(path, width, height))
    if hints_path is not None:
        arrows, direction, speed = load_hints_json(hints_path, width, height)
        mi.arrows = np.concatenate([mi.arrows, arrows]) if len(arrows) else mi.arrows
        mi.direction = direction if direction is not None else mi.direction
        mi.speed = speed if speed is not None else mi.speed
    return mi


def _load_mask_png(path: Path, width: int, height: int) -> np.ndarray:
    try:
        im = Image.open(path)
        if im.size != (width, height):  # checked on the header, before decoding (a header may claim any size)
            raise InputError(path, f"mask is {im.size[0]}x{im.size[1]} but the photo is {width}x{height}")
        im.load()
    except UnidentifiedImageError:
        raise InputError(path, "mask is not an image (expected a PNG or a labelme JSON)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise InputError(path, f"cannot decode mask image ({e})") from None
    a = np.asarray(im)
    if im.mode == "P":
        a = np.asarray(im.convert("L"))
    return a.reshape(height, width, -1).max(axis=-1) > 0


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(path, "not a text JSON file") from None
    except json.JSONDecodeError as e:
        raise InputError(path, f"malformed JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise InputError(path, "JSON nested too deeply") from None
    except OSError as e:
        raise InputError(path, f"cannot read ({e.strerror or e})") from None


def _point_list(path: Path, pts: object, what: str, minimum: int) -> np.ndarray:
    try:
        a = np.asarray(pts, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InputError(path, f"{what}: points are not numbers") from None
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] < minimum:
        raise InputError(path, f"{what}: expected at least {minimum} [x, y] points")
    if not np.isfinite(a).all():
        raise InputError(path, f"{what}: non-finite coordinates")
    return a


def _load_labelme(path: Path, width: int, height: int) -> MotionInput:
    return read_labelme(path, width, height)[1]


def read_labelme(path: str | Path, width: int, height: int) -> tuple[dict, MotionInput]:
    """A labelme file for a (width, height) photo -> (the document, its MotionInput); InputError when it is not
    one or is for another image size."""
    data = _read_json(Path(path))
    return data, labelme_motion(data, width, height, path)  # type: ignore[return-value]


def labelme_motion(data: object, width: int, height: int, path: str | Path | None = None) -> MotionInput:
    """A parsed labelme document -> MotionInput (mask from the `motion` shapes, arrows from the `hintK` lines) for a
    photo of size (width, height); `path` names the file in errors."""
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise InputError(path, "not a labelme file (no 'shapes' list)")
    jw, jh = data.get("imageWidth"), data.get("imageHeight")
    if isinstance(jw, (int, float)) and isinstance(jh, (int, float)):
        try:
            jw, jh = int(jw), int(jh)
        except (OverflowError, ValueError):  # inf or NaN (Python's json reads Infinity and NaN)
            raise InputError(path, "imageWidth/imageHeight must be finite numbers") from None
        if (jw, jh) != (width, height):
            raise InputError(path, f"labelme file is for a {jw}x{jh} image but the photo is {width}x{height}")
    mask = np.zeros((height, width), np.uint8)
    arrows = []
    for i, shape in enumerate(data["shapes"]):
        if not isinstance(shape, dict):
            raise InputError(path, f"shape {i} is not an object")
        label = str(shape.get("label", ""))
        kind = shape.get("shape_type") or "polygon"
        if label == "motion":
            if kind == "rectangle":
                p = _point_list(path, shape.get("points"), f"shape {i} ({label})", 2)
                (x0, y0), (x1, y1) = p[0], p[1]
                p = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            elif kind == "polygon":
                p = _point_list(path, shape.get("points"), f"shape {i} ({label})", 3)
            else:
                continue
            lim = 4 * max(width, height) + 16  # far-off vertices are clipped: no int32 overflow in the cast
            cv2.fillPoly(mask, [np.round(np.clip(p, -lim, lim)).astype(np.int32)], 1)
        elif label.startswith("hint") and kind == "line":
            p = _point_list(path, shape.get("points"), f"shape {i} ({label})", 2)
            arrows.append(p[:2])
    arr = np.asarray(arrows, np.float32).reshape(-1, 2, 2)
    return MotionInput(mask.astype(bool), arr)


def load_hints_json(path: str | Path, width: int, height: int) -> tuple[np.ndarray, tuple[float, float] | None,
                                                                         float | None]:
    """Our hints JSON -> (arrows (K, 2, 2), direction, speed). Coordinates are checked against the photo."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    data = _read_json(path)
    if not isinstance(data, dict):
        raise InputError(path, "hints JSON must be an object with 'hints', 'direction' or 'speed'")
    unknown = set(data) - {"hints", "direction", "speed"}
    if unknown:
        raise InputError(path, f"unknown key(s) {', '.join(sorted(unknown))}; expected hints, direction, speed")
    arrows = []
    hints = data.get("hints", [])
    if not isinstance(hints, list):
        raise InputError(path, "'hints' must be a list of {start: [x, y], end: [x, y]}")
    for i, h in enumerate(hints):
        if not isinstance(h, dict) or "start" not in h or "end" not in h:
            raise InputError(path, f"hint {i} must be an object with 'start' and 'end'")
        a = _point_list(path, [h["start"], h["end"]], f"hint {i}", 2)
        if not ((a[:, 0] >= 0) & (a[:, 0] <= width) & (a[:, 1] >= 0) & (a[:, 1] <= height)).all():
            raise InputError(path, f"hint {i} lies outside the {width}x{height} photo")
        arrows.append(a)
    direction = data.get("direction")
    if direction is not None:
        direction = parse_direction(direction, path)
    speed = data.get("speed")
    if speed is not None:
        try:
            speed = None if isinstance(speed, bool) or not isinstance(speed, (int, float)) else float(speed)
        except OverflowError:  # an integer too large for a float
            speed = None
        if speed is None or not math.isfinite(speed) or speed <= 0:
            raise InputError(path, "'speed' must be a positive number (pixels per frame)")
    return np.asarray(arrows, np.float32).reshape(-1, 2, 2), direction, speed


def parse_direction(value: object, path: str | Path | None = None) -> tuple[float, float]:
    """A direction: [dx, dy] or "dx,dy" (image pixels, y down); must be non-zero and finite."""
    if isinstance(value, str):
        value = value.split(",")
    try:
        dx, dy = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError, OverflowError):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise InputError(path, f"direction {shown} must be two numbers dx,dy") from None
    if not (math.isfinite(dx) and math.isfinite(dy)) or dx == dy == 0:
        raise InputError(path, "direction must be finite and non-zero")
    return dx, dy


# ---------------------------------------------------------------------------------------------------------------
# writing labelme files (the annotate page and the proposed mask of a run without --mask)

MOTION_LABEL = "motion"
LABELME_VERSION = "5.0.1"  # the version written by the labelme release 3D-Cinemagraphy's demo files come from


def mask_polygons(mask: np.ndarray, tolerance: float = 0.0, min_pixels: int = 1) -> list[np.ndarray]:
    """Contour tracing: mask (H, W) bool -> polygons [(n, 2) float64 (x, y) pixel indices], one per connected
    region, whose filled union (cv2.fillPoly, PIL ImageDraw.polygon: labelme, 3D-Cinemagraphy) is the mask.

    The outer border and the hole borders (OpenCV's border following, on the region's own pixels) are joined
    into one polygon by zero-width cuts from each hole to its nearest vertex, so the holes stay empty.
    `tolerance` > 0 simplifies the borders (Douglas-Peucker, pixels); regions under `min_pixels` are dropped."""
    m = np.ascontiguousarray(np.asarray(mask, bool), dtype=np.uint8)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got {m.shape}")
    contours, hierarchy = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    hier = hierarchy.reshape(-1, 4)  # next, previous, first child, parent

    def border(i: int) -> np.ndarray:
        c = contours[i]
        if tolerance > 0 and len(c) > 3:
            c = cv2.approxPolyDP(c, float(tolerance), True)
        return c.reshape(-1, 2).astype(np.float64)

    polygons = []
    for i in np.flatnonzero(hier[:, 3] < 0):  # outer borders
        poly = border(i)
        child = hier[i, 2]
        while child >= 0:
            poly = _join_hole(poly, border(child))
            child = hier[child, 0]
        if len(poly) < 3:  # a region of one pixel or one line: make it a (degenerate) triangle
            poly = np.concatenate([poly, poly[-1:].repeat(3 - len(poly), axis=0)])
        region = np.zeros_like(m)
        cv2.fillPoly(region, [np.round(poly).astype(np.int32)], 1)
        if int(region.sum()) >= min_pixels:
            polygons.append(poly)
    return polygons


def _join_hole(outer: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """One polygon: outer (n, 2) with a zero-width cut to hole (k, 2) at their nearest pair of vertices."""
    d = ((outer[:, None, :] - hole[None, :, :]) ** 2).sum(-1)  # (n, k)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return np.concatenate([outer[:i + 1], hole[j:], hole[:j + 1], outer[i:]])


def labelme_document(polygons: list[np.ndarray], arrows: np.ndarray, width: int, height: int,
                     image_path: str, base: dict | None = None) -> dict:
    """A labelme document: `motion` polygons and `hintK` lines (arrows (K, 2, 2) [start, end] in pixels) for an
    image of (width, height). Shapes of `base` (an existing document) with other labels and its other top-level
    keys are kept; its motion polygons and hint lines are replaced."""
    base = dict(base or {})
    kept = [s for s in base.get("shapes", []) if isinstance(s, dict) and not _is_motion_shape(s)]
    shapes = [_shape(MOTION_LABEL, p, "polygon") for p in polygons]
    shapes += [_shape(f"hint{k}", a, "line") for k, a in enumerate(np.asarray(arrows, np.float64).reshape(-1, 2, 2))]
    doc = {"version": base.get("version", LABELME_VERSION), "flags": base.get("flags", {})}
    doc.update({k: v for k, v in base.items() if k not in ("shapes", "imagePath", "imageData", "imageWidth",
                                                             "imageHeight")})
    doc.update({"shapes": shapes + kept, "imagePath": image_path, "imageData": None, "imageHeight": int(height),
                "imageWidth": int(width)})
    return doc


def _is_motion_shape(shape: dict) -> bool:
    label = str(shape.get("label", ""))
    kind = shape.get("shape_type") or "polygon"
    return (label == MOTION_LABEL and kind in ("polygon", "rectangle")) or (label.startswith("hint") and kind == "line")


def _shape(label: str, points: np.ndarray, kind: str) -> dict:
    pts = [[round(float(x), 2), round(float(y), 2)] for x, y in np.asarray(points, np.float64).reshape(-1, 2)]
    return {"label": label, "points": pts, "group_id": None, "description": "", "shape_type": kind, "flags": {}}


def labelme_shapes(data: object) -> tuple[list[np.ndarray], np.ndarray]:
    """The `motion` polygons [(n, 2)] and hint arrows (K, 2, 2) of a parsed labelme document, as stored (no
    validation beyond skipping malformed shapes: the editor shows what it can)."""
    polygons, arrows = [], []
    for shape in data.get("shapes", []) if isinstance(data, dict) else []:
        if not isinstance(shape, dict):
            continue
        try:
            pts = np.asarray(shape.get("points"), np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            continue
        if not np.isfinite(pts).all():
            continue
        label, kind = str(shape.get("label", "")), shape.get("shape_type") or "polygon"
        if label == MOTION_LABEL and kind == "polygon" and len(pts) >= 3:
            polygons.append(pts)
        elif label == MOTION_LABEL and kind == "rectangle" and len(pts) >= 2:
            (x0, y0), (x1, y1) = pts[0], pts[1]
            polygons.append(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
        elif label.startswith("hint") and kind == "line" and len(pts) >= 2:
            arrows.append(pts[:2])
    return polygons, np.asarray(arrows, np.float64).reshape(-1, 2, 2)


def write_labelme(path: str | Path, doc: dict) -> None:
    """Write a labelme document atomically (indented, as labelme does)."""
    from .atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def mask_png_path(json_path: str | Path) -> Path:
    """The mask PNG written beside a labelme file: NAME.json -> NAME_mask.png."""
    p = Path(json_path)
    return p.with_name(p.stem + "_mask.png")
