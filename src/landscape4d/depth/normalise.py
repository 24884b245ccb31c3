"""Bring any depth or disparity map to the package's depth scale."""

from __future__ import annotations

import numpy as np

from ..config import DepthConfig


def normalise_depth(raw: np.ndarray, cfg: DepthConfig, kind: str = "depth") -> np.ndarray:
    """raw (H, W) depth or disparity (relative scale) -> z-depth (H, W) with the 2nd percentile at `near` and
    everything clamped to [near * 0.5, near * sky_depth]. Non-positive disparity (sky in relative models) -> far."""
    raw = raw.astype(np.float64)
    far = cfg.near * cfg.sky_depth
    if kind == "disparity":
        pos = raw[raw > 0]
        if pos.size == 0:
            return np.full(raw.shape, far, np.float32)
        d_hi = np.percentile(pos, 98)
        depth = np.where(raw > 0, d_hi / np.maximum(raw, 1e-12), np.inf) * cfg.near
    else:
        pos = raw[raw > 0]
        if pos.size == 0:
            return np.full(raw.shape, far, np.float32)
        depth = np.where(raw > 0, raw, np.inf) * (cfg.near / np.percentile(pos, 2))
    return np.clip(depth, 0.5 * cfg.near, far).astype(np.float32)
