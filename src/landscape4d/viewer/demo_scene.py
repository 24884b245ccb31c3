"""A small synthetic 4D scene for tests and benchmarks of the viewer and exports (no pipeline run needed).

A textured plane facing the input camera at `depth`, one Gaussian per grid cell; the lower half of the picture
flows to the right (like water) and loops through `build_scene4d` (each moving Gaussian drawn at two phases
of the loop).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..artifacts import intrinsics_to_json
from ..camera import Intrinsics, unproject_depth
from ..dynamics.extent import with_extent
from ..dynamics.motion_init import build_scene4d
from ..dynamics.model import Scene4D
from ..gaussians.model import logits_from_opacity
from ..gaussians.sh import C0


def demo_texture(h: int, w: int) -> np.ndarray:
    """(h, w, 3) float colours: sky gradient above, diagonal stripes with a checker below."""
    v, u = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    sky = np.stack([0.35 + 0.3 * v, 0.55 + 0.25 * v, 0.9 - 0.2 * v], axis=-1)
    stripes = 0.5 + 0.5 * np.sin(2 * math.pi * (6 * u + 3 * v))
    checker = ((np.floor(u * 12) + np.floor(v * 9)) % 2)[..., None]
    water = np.stack([0.1 + 0.5 * stripes, 0.3 + 0.4 * stripes, 0.5 + 0.4 * checker[..., 0]], axis=-1)
    return np.where((v < 0.5)[..., None], sky, water).clip(0, 1)


def make_demo_scene(cols: int = 64, rows: int = 48, width: int = 160, height: int = 120, depth: float = 4.0,
                    speed_px: float = 0.5, num_frames: int = 30, order: int = 2, residual: float = 0.0,
                    seed: int = 0) -> tuple[Scene4D, dict]:
    """-> (scene, header) of a plane of rows x cols Gaussians seen by a width x height camera (60 deg FOV).

    speed_px: image pixels per frame of the lower half (moving). residual > 0 adds random Fourier coefficients of
    that size (in world units for position) so every term of the deformation is exercised.
    """
    intr = Intrinsics.from_fov(width, height, 60.0)
    gi = intrinsics_from_grid(intr, cols, rows)
    pts = unproject_depth(np.full((rows, cols), depth, np.float32), gi)  # (rows*cols, 3) row-major
    rgb = demo_texture(rows, cols).reshape(-1, 3)
    spacing = depth / gi.fx
    n = len(pts)
    means = torch.from_numpy(pts).float()
    log_scales = torch.full((n, 3), math.log(0.6 * spacing))
    log_scales[:, 2] = math.log(0.1 * spacing)  # flat along the viewing axis
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1.0
    opacity_logits = torch.full((n,), float(logits_from_opacity(0.95)))
    sh = torch.from_numpy((rgb - 0.5) / C0).float()[:, None, :]
    moving = torch.from_numpy(pts[:, 1] > 0)  # lower half of the picture (y down)
    velocity = torch.zeros(n, 3)
    velocity[:, 0] = speed_px * depth / intr.fx  # world units per frame
    scene = build_scene4d(means, quats, log_scales, opacity_logits, sh, velocity * moving[:, None], moving,
                          num_frames, order)
    if residual > 0:
        g = torch.Generator().manual_seed(seed)
        scene.pos_coef = residual * torch.randn(scene.pos_coef.shape, generator=g)
        scene.rot_coef = 0.2 * torch.randn(scene.rot_coef.shape, generator=g)
        scene.scale_coef = 0.2 * torch.randn(scene.scale_coef.shape, generator=g)
        scene.quats = scene.quats * (0.5 + torch.rand(len(scene), 1, generator=g))  # raw, not unit
    # draws shown while over the moving half (the rows' ends: nothing runs on past the plane)
    scene = with_extent(scene, intr.matrix(), 1.5 * intr.fx / gi.fx)
    header = {"fps": 30, "camera": intrinsics_to_json(intr), "scene_depth": depth,
              "convention": "OpenCV camera axes; world = input camera; t in [0, 1) is one loop"}
    return scene, header


def intrinsics_from_grid(intr: Intrinsics, cols: int, rows: int) -> Intrinsics:
    """The camera at the grid's resolution (one Gaussian per grid pixel covers the whole view)."""
    return intr.scaled(cols, rows)


def write_demo_run(run_dir: str | Path, **kw) -> Path:
    """A run folder holding only dynamics/scene4d.safetensors (+ .json) of the demo scene; returns run_dir."""
    from ..dynamics.scene_file import save_scene4d

    run_dir = Path(run_dir)
    (run_dir / "dynamics").mkdir(parents=True, exist_ok=True)
    scene, header = make_demo_scene(**kw)
    save_scene4d(run_dir / "dynamics" / "scene4d.safetensors", scene, header)
    return run_dir
