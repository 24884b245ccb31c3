"""Pictures of motion fields: colour-wheel coding and arrows drawn over an image."""

from __future__ import annotations

import cv2
import numpy as np


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Colour coding (H, W, 3) uint8 RGB of a flow (H, W, 2): hue = direction (0 deg = +u = red, going through
    yellow-green for +v), saturation = magnitude / max_magnitude (default: the largest magnitude), white = still."""
    flow = np.asarray(flow, np.float64)
    u, v = flow[..., 0], flow[..., 1]
    mag = np.hypot(u, v)
    top = float(max_magnitude) if max_magnitude else float(mag.max()) if mag.size else 0.0
    sat = np.clip(mag / top, 0, 1) if top > 0 else np.zeros_like(mag)
    hue = (np.degrees(np.arctan2(v, u)) % 360.0) / 2.0  # OpenCV hue range 0..180
    hsv = np.stack([hue, sat * 255.0, np.full_like(mag, 255.0)], axis=-1).round().astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def quiver_image(
    image: np.ndarray,  # (H, W, 3) float [0, 1] or uint8, RGB
    flow: np.ndarray,  # (H, W, 2) px/frame
    step: int = 16,
    scale: float | None = None,
    color: tuple[int, int, int] = (255, 32, 32),
    min_magnitude: float = 1e-3,
) -> np.ndarray:
    """The image (H, W, 3) uint8 with one arrow every `step` pixels where the flow moves. Arrow length = flow *
    scale; by default scaled so the longest arrow is 1.5 * step pixels."""
    img = np.asarray(image)
    img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8) if img.dtype != np.uint8 else img.copy()
    img = np.ascontiguousarray(img)
    flow = np.asarray(flow, np.float64)
    h, w = flow.shape[:2]
    step = max(1, int(step))
    rows, cols = np.mgrid[step // 2:h:step, step // 2:w:step]
    f = flow[rows, cols]  # (R, C, 2)
    mag = np.hypot(f[..., 0], f[..., 1])
    keep = mag > min_magnitude
    if not keep.any():
        return img
    if scale is None:
        scale = 1.5 * step / mag.max()
    x0, y0 = cols[keep] + 0.5, rows[keep] + 0.5
    x1, y1 = x0 + f[keep][:, 0] * scale, y0 + f[keep][:, 1] * scale
    thickness = max(1, int(round(max(h, w) / 400)))
    for a, b, c, d in zip(x0, y0, x1, y1):  # one cv2 call per arrow (a grid of arrows, not per pixel)
        cv2.arrowedLine(img, (int(round(a)), int(round(b))), (int(round(c)), int(round(d))), color, thickness,
                        cv2.LINE_AA, tipLength=0.3)
    return img
