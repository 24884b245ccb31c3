"""A synthetic scene with known 3D motion, for tests and benchmarks of the motion code.

A tilted plane z - slope * y = plane_depth (world = input camera frame, OpenCV axes) seen by the input camera
and a few cameras around it; an elliptic patch of it (defined in the input view) moves with one constant 3D
velocity. Every view's depth, motion mask and 2D flow are analytic (ray-plane intersection, exact projection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import Intrinsics, look_at, pixel_grid, rotation_yaw_pitch, unproject_depth
from .geometry import ViewMotion, nearest_pixel, project_points
from .lifting import project_motion


@dataclass
class PlaneScene:
    intr: Intrinsics
    depth: np.ndarray  # (H, W) input-view z-depth
    mask: np.ndarray  # (H, W) bool input-view motion mask
    points: np.ndarray  # (H*W, 3) one world point per input pixel
    velocity: np.ndarray  # (3,) true 3D velocity of the masked points, world units per frame
    views: list[ViewMotion]  # analytic depth, mask and flow; views[0] is the input view


def plane_cameras(plane_depth: float, baseline: float) -> list[np.ndarray]:
    """Input camera, two rotated cameras and four translated ones looking at the plane centre."""
    target = np.array([0.0, 0.0, plane_depth])
    poses = [np.eye(4)]
    for yaw, pitch in ((4.0, 0.0), (-2.0, 3.0)):
        c2w = np.eye(4)
        c2w[:3, :3] = rotation_yaw_pitch(yaw, pitch)
        poses.append(c2w)
    for dx, dy, dz in ((1, 0, 0), (-1, 0.3, 0), (0, 1, 0.5), (0.4, -1, -0.5)):
        poses.append(look_at(np.array([dx, dy, dz]) * baseline * plane_depth, target))
    return poses


def tilted_plane_scene(
    width: int = 64,
    height: int = 48,
    fov_deg: float = 60.0,
    plane_depth: float = 4.0,
    slope: float = 0.5,
    velocity: tuple[float, float, float] = (0.02, 0.02, 0.01),
    baseline: float = 0.1,
    poses: list[np.ndarray] | None = None,
) -> PlaneScene:
    """The scene; `baseline` = translation of the side cameras as a fraction of the plane depth."""
    intr = Intrinsics.from_fov(width, height, fov_deg)
    normal = np.array([0.0, -slope, 1.0])
    vel = np.asarray(velocity, np.float64)
    uv = pixel_grid(height, width).reshape(-1, 2)
    rays = np.stack([(uv[:, 0] - intr.cx) / intr.fx, (uv[:, 1] - intr.cy) / intr.fy, np.ones(len(uv))], -1)
    depth0 = (plane_depth / (rays @ normal)).reshape(height, width)
    v, u = np.mgrid[0:height, 0:width] + 0.5
    mask0 = ((u - 0.55 * width) / (0.3 * width)) ** 2 + ((v - 0.55 * height) / (0.3 * height)) ** 2 <= 1.0
    views = []
    for c2w in poses if poses is not None else plane_cameras(plane_depth, baseline):
        centre, rot = c2w[:3, 3], c2w[:3, :3]
        dirs = rays @ rot.T  # world directions with camera-z component 1
        with np.errstate(divide="ignore"):
            t = (plane_depth - centre @ normal) / (dirs @ normal)
        ok = np.isfinite(t) & (t > 0)
        t = np.where(ok, t, np.inf)
        world = centre + np.where(ok, t, 0.0)[:, None] * dirs  # (H*W, 3)
        uv0, _ = project_points(world, intr, np.eye(4))
        r, c, inside = nearest_pixel(uv0, height, width)
        mask = (ok & inside & mask0[r, c]).reshape(height, width)
        motion, _, _ = project_motion(world, np.broadcast_to(vel, world.shape), intr, c2w)
        flow = np.where(mask.reshape(-1, 1), motion, 0.0).reshape(height, width, 2).astype(np.float32)
        views.append(ViewMotion(c2w=c2w, mask=mask, depth=t.reshape(height, width), flow=flow))
    return PlaneScene(intr, depth0, mask0, unproject_depth(depth0, intr).astype(np.float64), vel, views)
