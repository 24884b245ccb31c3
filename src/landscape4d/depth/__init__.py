"""Monocular depth of the photo: backends `auto` (default: Depth Anything V2 when it can be had, else the prior),
`prior` (offline, no weights), `depth-anything-v2` (transformers), `file`.

Every backend returns a z-depth map (H, W) float32 at the working size, normalised to one scale: the nearest
ground (2nd percentile) sits at `DepthConfig.near` and nothing is farther than `sky_depth * near` (the sky).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from ..config import DepthConfig
from ..errors import InputError
from .normalise import normalise_depth


def _log_stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def estimate_depth(image: np.ndarray, cfg: DepthConfig, device: str = "cpu",
                   log: Callable[[str], None] = _log_stderr) -> tuple[np.ndarray, dict]:
    """image (H, W, 3) float in [0, 1] -> (depth (H, W) float32, info). info["backend"] is the backend used
    (for `auto`: the one chosen, with info["requested"] = "auto" and info["choice"] = the line logged)."""
    from .auto import choose

    choice = choose(cfg)
    info: dict = {}
    if cfg.backend == "auto":
        log(f"[landscape4d] {choice.line}")
        info = {"requested": "auto", "choice": choice.line}
    backend = choice.backend
    if backend == "depth-anything-v2":
        from .hf import depth_anything

        try:
            disparity = depth_anything(image, choice.source or cfg.model, device)
            depth = normalise_depth(disparity, cfg, kind="disparity")
            info["model"] = cfg.model if choice.source is None else choice.source
        except InputError as e:
            if cfg.backend != "auto":
                raise
            backend, info["choice"] = "prior", f"depth: offline landscape prior ({e.problem})"
            log(f"[landscape4d] {info['choice']}")
    if backend == "prior":
        from .prior import landscape_prior

        depth, prior_info = landscape_prior(image, cfg)
        info.update(prior_info)
        info["model"] = "landscape prior (no weights)"
    elif backend == "file":
        from .file import load_depth_file

        raw, kind = load_depth_file(cfg.file, image.shape[1], image.shape[0], cfg.file_kind)
        depth = normalise_depth(raw, cfg, kind=kind)
        info.update({"file": cfg.file, "kind": kind})
    elif backend != "depth-anything-v2":
        raise ValueError(f"unknown depth backend {cfg.backend!r} (auto, prior, depth-anything-v2, file)")
    info["backend"] = backend
    info["min"], info["median"], info["max"] = float(depth.min()), float(np.median(depth)), float(depth.max())
    return depth.astype(np.float32), info
