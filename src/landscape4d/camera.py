"""Cameras: intrinsics, poses, the training camera set and the evaluation trajectories.

Conventions (used everywhere in the package):
- OpenCV camera axes: x right, y down, z forward. Poses are 4x4 camera-to-world matrices (c2w).
- The world frame is the input camera's frame: the input view has c2w = identity.
- Pixel (row i, column j) has its centre at u = j + 0.5, v = i + 0.5; projection is u = fx * x / z + cx.
- Depth maps hold z (distance along the optical axis), not ray length.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import InputError


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @staticmethod
    def from_fov(width: int, height: int, fov_deg: float) -> "Intrinsics":
        """Square pixels, principal point at the image centre, horizontal field of view `fov_deg`."""
        f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
        return Intrinsics(f, f, width / 2.0, height / 2.0, int(width), int(height))

    def matrix(self) -> np.ndarray:  # (3, 3)
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """The same camera at another image size."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height))

    @property
    def fov_x_deg(self) -> float:
        return math.degrees(2 * math.atan(0.5 * self.width / self.fx))


def fov_from_exif_focal(focal_35mm: float | None) -> float | None:
    """Horizontal FOV (degrees) from a 35 mm equivalent focal length (36 mm wide film)."""
    if not focal_35mm or focal_35mm <= 0:
        return None
    return math.degrees(2 * math.atan(36.0 / (2 * focal_35mm)))


# ---------------------------------------------------------------------------------------------------------------
# projection


def project(points: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points.

    points: (N, 3) world; K: (3, 3); w2c: (4, 4).  Returns uv (N, 2) pixels and z (N,) camera depth.
    """
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    zs = torch.where(z.abs() < 1e-8, torch.full_like(z, 1e-8), z)
    u = K[0, 0] * cam[:, 0] / zs + K[0, 2]
    v = K[1, 1] * cam[:, 1] / zs + K[1, 2]
    return torch.stack([u, v], dim=-1), z


def pixel_grid(height: int, width: int) -> np.ndarray:
    """Pixel centres (H, W, 2) as (u, v) = (j + 0.5, i + 0.5)."""
    v, u = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    return np.stack([u, v], axis=-1)


def unproject_depth(depth: np.ndarray, intr: Intrinsics, c2w: np.ndarray | None = None) -> np.ndarray:
    """depth (H, W) z-depth -> world points (H*W, 3), row-major pixel order."""
    h, w = depth.shape
    uv = pixel_grid(h, w).reshape(-1, 2)
    z = depth.reshape(-1).astype(np.float64)
    x = (uv[:, 0] - intr.cx) / intr.fx * z
    y = (uv[:, 1] - intr.cy) / intr.fy * z
    pts = np.stack([x, y, z], axis=-1)
    if c2w is not None:
        pts = pts @ c2w[:3, :3].T + c2w[:3, 3]
    return pts.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# poses


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, -1.0, 0.0])) -> np.ndarray:
    """c2w (4, 4) of a camera at `position` whose z axis points to `target` (OpenCV axes, world up = -y)."""
    z = np.asarray(target, np.float64) - np.asarray(position, np.float64)
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, np.float64))  # right-handed: x right, y down, z forward
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, position
    return c2w


def rotation_yaw_pitch(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """3x3 rotation: yaw about the camera y axis, then pitch about x."""
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return ry @ rx


def training_cameras(num_views: int, scene_depth: float, max_shift: float, max_angle_deg: float) -> list[np.ndarray]:
    """The training camera set: view 0 is the input camera, then a 3x3 grid of yaw/pitch offsets around it, then
    orbits (translated cameras looking at the scene centre) on rings of 8 of growing radius.

    scene_depth: median depth of the scene; translations scale with it. Returns c2w matrices (4, 4).
    """
    poses = [np.eye(4)]
    grid = [(a, b) for b in (-1, 0, 1) for a in (-1, 0, 1) if (a, b) != (0, 0)]
    for a, b in grid[: max(0, num_views - 1)]:
        c2w = np.eye(4)
        c2w[:3, :3] = rotation_yaw_pitch(a * max_angle_deg, b * max_angle_deg * 0.6)
        poses.append(c2w)
    remaining = num_views - len(poses)
    rings = max(1, math.ceil(remaining / 8))
    target = np.array([0.0, 0.0, scene_depth])
    k = 0
    while len(poses) < num_views:
        ring, slot = divmod(k, 8)
        r = (ring + 1) / rings
        theta = 2 * math.pi * slot / 8 + (math.pi / 8) * ring
        shift = max_shift * scene_depth * r
        pos = np.array([shift * math.cos(theta), 0.5 * shift * math.sin(theta), 0.5 * shift * math.sin(2 * theta)])
        poses.append(look_at(pos, target))
        k += 1
    return poses


def trajectory(name: str, num_frames: int, scene_depth: float) -> list[np.ndarray]:
    """The evaluation trajectories of 3D-Cinemagraphy, scaled by the scene depth: c2w (4, 4) per frame.

    up-down: vertical swing; zoom-in: forward dolly; side: horizontal swing; circle: circle in the image plane.
    """
    poses = []
    for i in range(num_frames):
        t = i / max(1, num_frames)
        s = 2 * math.pi * t
        if name == "up-down":
            pos = np.array([0.0, -0.04 * scene_depth * math.sin(s), 0.0])
        elif name == "zoom-in":
            pos = np.array([0.0, 0.0, 0.12 * scene_depth * (0.5 - 0.5 * math.cos(s))])
        elif name == "side":
            pos = np.array([0.05 * scene_depth * math.sin(s), 0.0, 0.0])
        elif name == "circle":
            pos = np.array([0.04 * scene_depth * math.cos(s) - 0.04 * scene_depth,
                            0.03 * scene_depth * math.sin(s), 0.0])
        else:
            raise ValueError(f"unknown trajectory {name!r}")
        c2w = np.eye(4)
        c2w[:3, 3] = pos
        poses.append(c2w)
    return poses


def load_custom_trajectory(path: str | Path) -> list[np.ndarray]:
    """A custom path: a JSON list of 4x4 c2w matrices (our OpenCV convention), or {"frames": [{"transform_matrix":
    4x4}, ...]}; a file with an `applied_transform` (a nerfstudio transforms.json, like RUN/views/transforms.json)
    is read in the nerfstudio convention and converted to ours."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise InputError(path, f"not a valid JSON file ({e})") from None
    frames = data.get("frames") if isinstance(data, dict) else data
    applied = data.get("applied_transform") if isinstance(data, dict) else None
    if not isinstance(frames, list) or not frames:
        raise InputError(path, "expected a non-empty list of 4x4 camera-to-world matrices")
    poses = []
    for i, f in enumerate(frames):
        m = f.get("transform_matrix") if isinstance(f, dict) else f
        try:
            a = np.asarray(m, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            a = np.zeros(0)
        if a.shape != (4, 4) or not np.isfinite(a).all():
            raise InputError(path, f"pose {i} is not a finite 4x4 matrix")
        poses.append(a)
    if applied is not None:
        try:
            b = np.asarray(applied, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            b = np.zeros(0)
        if b.shape not in ((3, 4), (4, 4)) or not np.isfinite(b).all() or abs(np.linalg.det(b[:3, :3])) < 1e-9:
            raise InputError(path, "applied_transform is not an invertible, finite 3x4 or 4x4 matrix")
        poses = [c2w_from_nerfstudio(a, b) for a in poses]
    return poses


# ---------------------------------------------------------------------------------------------------------------
# the nerfstudio / Blender convention of views/transforms.json

# camera axes: OpenCV (x right, y down, z forward) <-> OpenGL/Blender (x right, y up, z back); its own inverse
OPENCV_TO_OPENGL_CAMERA = np.diag([1.0, -1.0, -1.0, 1.0])
# world axes: ours (the input camera's OpenCV frame) -> z up (x right, y into the scene, z up), nerfstudio's world
# orientation; written as `applied_transform` (its first 3 rows), the transform applied to our world
WORLD_TO_Z_UP = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])


def c2w_to_nerfstudio(c2w: np.ndarray) -> np.ndarray:
    """Our c2w (4, 4) (OpenCV camera axes, our world) -> the `transform_matrix` of transforms.json (OpenGL camera
    axes, z-up world)."""
    return WORLD_TO_Z_UP @ np.asarray(c2w, np.float64) @ OPENCV_TO_OPENGL_CAMERA


def c2w_from_nerfstudio(matrix, applied_transform=None) -> np.ndarray:
    """A transforms.json `transform_matrix` (4x4, or 3x4) and its file's `applied_transform` (3x4 or 4x4; None =
    identity) -> our c2w (4, 4) in OpenCV camera axes and our world."""
    m = np.eye(4)
    a = np.asarray(matrix, np.float64)
    m[: a.shape[0]] = a
    applied = np.eye(4)
    if applied_transform is not None:
        b = np.asarray(applied_transform, np.float64)
        applied[: b.shape[0]] = b
    return np.linalg.inv(applied) @ m @ OPENCV_TO_OPENGL_CAMERA


def w2c_from_c2w(c2w: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 pose."""
    r, t = c2w[:3, :3], c2w[:3, 3]
    out = np.eye(4)
    out[:3, :3] = r.T
    out[:3, 3] = -r.T @ t
    return out
