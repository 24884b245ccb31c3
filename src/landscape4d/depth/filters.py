"""Edge-aware filtering: the guided filter (He, Sun, Tang 2010) with box filters."""

from __future__ import annotations

import cv2
import numpy as np


def box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges normalised by the window part inside the image."""
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """guide (H, W) or (H, W, 3) float in [0, 1], src (H, W) float -> filtered src (H, W): smooth where the guide is
    flat, edges kept where the guide has edges. Colour guides use the full 3x3 covariance."""
    guide = guide.astype(np.float32)
    p = src.astype(np.float32)
    if guide.ndim == 2:
        mi, mp = box(guide, r), box(p, r)
        cov = box(guide * p, r) - mi * mp
        var = box(guide * guide, r) - mi * mi
        a = cov / (var + eps)
        b = mp - a * mi
        return box(a, r) * guide + box(b, r)
    h, w, _ = guide.shape
    mi = np.stack([box(guide[..., c], r) for c in range(3)], -1)  # (H, W, 3)
    mp = box(p, r)
    cov_ip = np.stack([box(guide[..., c] * p, r) for c in range(3)], -1) - mi * mp[..., None]
    sigma = np.empty((h, w, 3, 3), np.float32)
    for i in range(3):
        for j in range(i, 3):
            s = box(guide[..., i] * guide[..., j], r) - mi[..., i] * mi[..., j]
            sigma[..., i, j] = sigma[..., j, i] = s
    sigma += eps * np.eye(3, dtype=np.float32)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]  # (H, W, 3)
    b = mp - (a * mi).sum(-1)
    ma = np.stack([box(a[..., c], r) for c in range(3)], -1)
    return (ma * guide).sum(-1) + box(b, r)
