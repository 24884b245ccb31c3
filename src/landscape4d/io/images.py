"""Photo loading and validation: jpg/png/webp, RGB/RGBA/grayscale/16-bit, EXIF orientation, size limits."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from .atomic import atomic_path

EXIF_IFD = 0x8769
FOCAL_35MM = 0xA405


@dataclass
class Photo:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1], EXIF orientation applied
    path: Path
    focal_35mm: float | None  # from EXIF, when present

    @property
    def size(self) -> tuple[int, int]:  # (width, height)
        return self.image.shape[1], self.image.shape[0]


def load_photo(path: str | Path, min_side: int = 64, max_pixels: int = 40_000_000) -> Photo:
    """Read and validate a photo. Raises InputError naming the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if not path.is_file():
        raise InputError(path, "not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None  # our own limit below, checked before decoding
            im = Image.open(path)
            w, h = im.size
            if w * h > max_pixels:
                raise InputError(path, f"image is {w}x{h} = {w * h} pixels, above the limit of {max_pixels} "
                                       "(raise it with --set max_input_pixels=N)")
            focal = _exif_focal_35mm(im)
            fmt = im.format
            mode = im.mode
            im = ImageOps.exif_transpose(im)
            im.load()
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(path, "not an image (unrecognised format)") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise InputError(path, f"cannot decode image ({e})") from None
    w, h = im.size
    if min(w, h) < min_side:
        raise InputError(path, f"image is {w}x{h}, smaller than {min_side} px on a side")
    arr = None
    if fmt == "PNG" and (mode.startswith("I") or mode in ("RGB", "RGBA")):
        arr = _png16(path)
    if arr is None:
        arr = _pil_to_float(im)
    if arr.shape[:2] != (h, w):  # exif-rotated PNG read by OpenCV: keep PIL's orientation
        arr = _pil_to_float(im)
    if not np.isfinite(arr).all():
        raise InputError(path, "image contains non-finite values")
    return Photo(np.ascontiguousarray(arr, dtype=np.float32), path, focal)


def _exif_focal_35mm(im: Image.Image) -> float | None:
    try:
        exif = im.getexif()
        value = exif.get_ifd(EXIF_IFD).get(FOCAL_35MM) or exif.get(FOCAL_35MM)
        return float(value) if value else None
    except Exception:  # malformed EXIF never blocks loading
        return None


def _pil_to_float(im: Image.Image) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]. Computed in float32, in place: a 12 MP photo needs 144 MB here, not 5x that."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        a = a / (65535.0 if a.max() > 255 or im.mode.startswith("I;16") else 255.0)
        a = np.repeat(a[..., None], 3, axis=-1)
    elif im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        a = np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=-1)
    else:
        a = np.asarray(im.convert("RGB"), dtype=np.float32)
        a /= np.float32(255.0)
        return a
    return np.clip(a, 0.0, 1.0).astype(np.float32)


def _png16(path: Path) -> np.ndarray | None:
    """16-bit PNGs at full precision (Pillow truncates 16-bit RGB to 8 bits)."""
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None or a.dtype != np.uint16:
        return None
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    elif a.shape[2] == 4:
        a = cv2.cvtColor(a, cv2.COLOR_BGRA2RGB)
    else:
        a = cv2.cvtColor(a, cv2.COLOR_BGR2RGB)
    return (a.astype(np.float64) / 65535.0).astype(np.float32)


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(w, h) with the long side at most `long_side` (never upscaled), aspect kept, even numbers."""
    s = min(1.0, long_side / max(width, height))
    w, h = max(2, round(width * s / 2) * 2), max(2, round(height * s / 2) * 2)
    return int(w), int(h)


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, C) float -> (height, width, C), area filter when shrinking."""
    if image.shape[1] == width and image.shape[0] == height:
        return image.copy()
    interp = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_LINEAR
    out = cv2.resize(image, (width, height), interpolation=interp)
    return out.reshape(height, width, *image.shape[2:])


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write a float [0,1] or uint8 image (H, W[, 3]) as PNG, atomically."""
    a = image if image.dtype == np.uint8 else to_uint8(image)
    with atomic_path(path) as tmp:
        Image.fromarray(a).save(tmp, format="PNG")


def read_png(path: str | Path) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] or (H, W) for single-channel files."""
    im = Image.open(path)
    a = np.asarray(im.convert("L") if im.mode in ("L", "1") else im.convert("RGB"))
    return a.astype(np.float32) / 255.0
