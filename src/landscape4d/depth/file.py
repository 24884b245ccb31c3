"""A user depth or disparity map: .npy (float), 16-bit or 8-bit PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError


def load_depth_file(path: str | Path | None, width: int, height: int, kind: str = "depth") -> tuple[np.ndarray, str]:
    """-> (map (height, width) float32 resized to the working size, kind). The file must have the photo's aspect."""
    if path is None:
        raise InputError(None, "depth backend 'file' needs --depth-file PATH")
    path = Path(path)
    if kind not in ("depth", "disparity"):
        raise InputError(path, f"depth file kind must be depth or disparity, not {kind!r}")
    if not path.exists():
        raise InputError(path, "file not found")
    if path.suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise InputError(path, f"not a readable .npy array ({e})") from None
        a = np.squeeze(a)
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
            raise InputError(path, f"expected a 2-D numeric depth array, got shape {a.shape} dtype {a.dtype}")
    else:
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
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
