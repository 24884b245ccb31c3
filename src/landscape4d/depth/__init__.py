"""Monocular depth of the photo: backends `prior` (offline default), `depth-anything-v2` (transformers), `file`.

Every backend returns a z-depth map (H, W) float32 at the working size, normalised to one scale: the nearest
ground (2nd percentile) sits at `DepthConfig.near` and nothing is farther than `sky_depth * near` (the sky).
"""

from __future__ import annotations

import numpy as np

from ..config import DepthConfig
from .normalise import normalise_depth


def estimate_depth(image: np.ndarray, cfg: DepthConfig, device: str = "cpu") -> tuple[np.ndarray, dict]:
    """image (H, W, 3) float in [0, 1] -> (depth (H, W) float32, info)."""
    if cfg.backend == "prior":
        from .prior import landscape_prior

        depth, info = landscape_prior(image, cfg)
    elif cfg.backend == "depth-anything-v2":
        from .hf import depth_anything

        disparity = depth_anything(image, cfg.model, device)
        depth, info = normalise_depth(disparity, cfg, kind="disparity"), {"model": cfg.model}
    elif cfg.backend == "file":
        from .file import load_depth_file

        raw, kind = load_depth_file(cfg.file, image.shape[1], image.shape[0], cfg.file_kind)
        depth, info = normalise_depth(raw, cfg, kind=kind), {"file": cfg.file, "kind": kind}
    else:
        raise ValueError(f"unknown depth backend {cfg.backend!r} (prior, depth-anything-v2, file)")
    info["backend"] = cfg.backend
    info["min"], info["median"], info["max"] = float(depth.min()), float(np.median(depth)), float(depth.max())
    return depth.astype(np.float32), info
