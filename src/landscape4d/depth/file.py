"""A user depth or disparity map: .npy (float), 16-bit or 8-bit PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..config import DEPTH_FILE_KINDS
from ..errors import InputError


def load_depth_file(path: str | Path | None, width: int, height: int, kind: str = "depth",
                    max_pixels: int = 40_000_000) -> tuple[np.ndarray, str]:
    """-> (map (height, width) float32 resized to the working size, kind). The file must have the photo's aspect.
    Files larger than `max_pixels` are refused from their header, before their data is read."""
    if path is None:
        raise InputError(None, "depth backend 'file' needs --depth-file PATH")
    path = Path(path)
    if kind not in DEPTH_FILE_KINDS:
        raise InputError(path, f"depth file kind must be {' or '.join(DEPTH_FILE_KINDS)}, not {kind!r}")
    if not path.exists():
        raise InputError(path, "file not found")
    if path.suffix.lower() == ".npy":
        try:
            m = np.load(path, mmap_mode="r", allow_pickle=False)  # header only: the shape is checked first
            if m.size > max_pixels:
                raise InputError(path, f"depth array has {m.size} values, above the limit of {max_pixels}")
            a = np.array(m)
        except (ValueError, OSError, EOFError) as e:  # EOFError: an empty file
            raise InputError(path, f"not a readable .npy array ({e or 'empty file'})") from None
        a = np.squeeze(a)
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
            raise InputError(path, f"expected a 2-D numeric depth array, got shape {a.shape} dtype {a.dtype}")
    else:
        _check_image_header(path, max_pixels)
        try:
            a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        except cv2.error:  # OpenCV's own size limit, or a decoder failure
            a = None
        if a is None:
            raise InputError(path, "not a readable depth image (use .npy, or a 16-bit/8-bit PNG)")
        if a.ndim == 3:
            a = a[..., 0]
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise InputError(path, "depth map contains NaN or infinite values")
    if (a < 0).any():
        raise InputError(path, "depth map contains negative values")
    if not (a > 0).any():
        raise InputError(path, "depth map is all zero")
    h0, w0 = a.shape
    if abs(w0 / h0 - width / height) > 0.02:
        raise InputError(path, f"depth map is {w0}x{h0}, its aspect does not match the photo's ({width}x{height})")
    a = cv2.resize(a, (width, height), interpolation=cv2.INTER_AREA if w0 > width else cv2.INTER_LINEAR)
    return a, kind


def _check_image_header(path: Path, max_pixels: int) -> None:
    """Refuse an image whose header claims more than `max_pixels` pixels, without decoding it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except Image.DecompressionBombError:  # Pillow's own limit, when no photo was loaded in this process
        raise InputError(path, f"depth image is larger than the limit of {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return  # not a format Pillow reads from its header: OpenCV decides
    if w * h > max_pixels:
        raise InputError(path, f"depth image is {w}x{h} = {w * h} pixels, above the limit of {max_pixels}")
