"""Coloured point clouds as binary PLY (readable by plyfile, MeshLab, CloudCompare)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from .atomic import atomic_path


def write_points_ply(path: str | Path, points: np.ndarray, colors: np.ndarray) -> None:
    """points (N, 3) float, colors (N, 3) uint8 or float in [0, 1]."""
    if colors.dtype != np.uint8:
        colors = (np.clip(colors, 0, 1) * 255 + 0.5).astype(np.uint8)
    v = np.empty(len(points), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"),
                                     ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    v["x"], v["y"], v["z"] = points[:, 0], points[:, 1], points[:, 2]
    v["red"], v["green"], v["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(v, "vertex")], text=False).write(str(tmp))


def read_points_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """-> points (N, 3) float32, colors (N, 3) uint8."""
    v = PlyData.read(str(path))["vertex"]
    pts = np.stack([v["x"], v["y"], v["z"]], axis=-1).astype(np.float32)
    col = np.stack([v["red"], v["green"], v["blue"]], axis=-1).astype(np.uint8)
    return pts, col
