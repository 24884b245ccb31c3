"""The offline landscape depth prior: depth from the photo alone, no learned weights.

1. Sky: a per-pixel score from colour (blue or bright-grey), brightness, smoothness and height in the image,
   refined into a soft matte by the guided filter and kept only where connected to the top border.
2. Horizon: from the lowest sky rows (or a default when there is no sky); below it a ground plane seen by a level
   camera, z(v) = near * (H - v_h) / (v - v_h), so the bottom row is at `near`; above it and not sky (mountains,
   far trees), the far ground depth.
3. Edge-aware refinement: the disparity is guided-filtered with the photo as guide, so depth edges follow image
   edges; the sky is then set to its far, finite depth.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from ..config import DepthConfig
from .filters import box, guided_filter


def sky_score(image: np.ndarray) -> np.ndarray:
    """image (H, W, 3) float -> (H, W) score in [0, 1]: how much each pixel looks like sky."""
    h, w, _ = image.shape
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    gray = image.mean(-1)
    bright = np.clip((gray - 0.35) / 0.45, 0, 1)
    blue = np.clip((b - r) / 0.25 + 0.3, 0, 1) * np.clip((b - 0.25) / 0.4, 0, 1)
    sat = image.max(-1) - image.min(-1)
    grey_bright = np.clip((gray - 0.55) / 0.3, 0, 1) * np.clip(1 - sat / 0.25, 0, 1)  # overcast sky
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    tex = box(np.sqrt(gx * gx + gy * gy), max(2, w // 128))
    smooth = np.clip(1 - tex / 0.25, 0, 1)
    rows = (np.arange(h, dtype=np.float32) / max(1, h - 1))[:, None]
    height = np.clip(1.2 - 1.6 * rows, 0, 1)
    colour = np.maximum(blue, grey_bright)
    return np.clip(colour * (0.5 + 0.5 * bright) * smooth * height * 2.2, 0, 1).astype(np.float32)


def segment_sky(image: np.ndarray, cfg: DepthConfig) -> tuple[np.ndarray, np.ndarray]:
    """-> (sky mask (H, W) bool connected to the top border, soft matte (H, W) float)."""
    score = sky_score(image)
    matte = np.clip(guided_filter(image, score, max(2, cfg.guided_radius), 1e-2), 0, 1)
    hard = matte > 0.5
    labels, n = ndimage.label(hard)
    if n == 0:
        return hard, matte
    top = np.unique(labels[0][labels[0] > 0])
    sky = np.isin(labels, top)
    # a sky region must be a real part of the picture, not a few bright pixels at the top edge
    if sky.mean() < 0.01:
        sky[:] = False
    return sky, matte * sky


def horizon_row(sky: np.ndarray) -> float:
    """Row (float, may lie outside the image) of the horizon of a level camera."""
    h, w = sky.shape
    cols = sky.any(axis=0)
    if cols.mean() < 0.2:
        return -0.25 * h  # little or no sky: looking down, horizon above the frame
    lowest = h - 1 - np.argmax(sky[::-1], axis=0)  # lowest sky row in each column
    return float(np.clip(np.percentile(lowest[cols], 75), 0.15 * h, 0.75 * h))


def landscape_prior(image: np.ndarray, cfg: DepthConfig) -> tuple[np.ndarray, dict]:
    """image (H, W, 3) float in [0, 1] -> (depth (H, W) float32, info)."""
    h, w, _ = image.shape
    sky, _ = segment_sky(image, cfg)
    v_h = horizon_row(sky)
    far_ground = cfg.max_ground_depth * cfg.near
    far_sky = cfg.sky_depth * cfg.near
    v = np.arange(h, dtype=np.float64) + 0.5
    denom = v - v_h
    ground = np.where(denom > 0, cfg.near * (h - v_h) / np.maximum(denom, 1e-6), np.inf)
    ground = np.clip(ground, cfg.near, far_ground)
    depth = np.repeat(ground[:, None], w, axis=1)
    # aerial perspective above the horizon: hazier (brighter, less saturated) means farther
    sat = image.max(-1) - image.min(-1)
    haze = np.clip(image.mean(-1) - sat, 0, 1)
    above = v[:, None] < v_h
    depth = np.where(above & ~sky, far_ground * (1.0 + 0.3 * haze), depth)
    disparity = 1.0 / depth
    r = max(2, int(cfg.guided_radius * max(h, w) / 384))
    disparity = guided_filter(image, disparity, r, cfg.guided_eps * float(disparity.var() + 1e-12) * 50)
    disparity = np.clip(disparity, 1.0 / far_ground / 1.3, 1.0 / cfg.near)
    depth = 1.0 / disparity
    depth = np.where(sky, far_sky, depth)
    info = {"sky_fraction": float(sky.mean()), "horizon_row": v_h}
    return depth.astype(np.float32), info
