"""Travel extent of each moving Gaussian: how far along its straight path of one loop its draws may go.

A moving Gaussian's phase-0 draw travels s in [0, 1) loops forward, its phase-1 draw s in [-1, 0) (model.py). Water
only exists over the moving region: at the top of a waterfall the phase-1 draw of the top Gaussians would otherwise
show, half faded, up to one loop's travel above the fall (over the cliff and the sky), and at the foot of the fall
the phase-0 draws would run on over the grass. The 2D animator never does this: its Euler integration stops where
the motion field ends. So each moving Gaussian keeps its draws only while their place, seen from the input camera,
lies within `radius_px` pixels of where some moving Gaussian rests: the extent [lo, hi] is the part of its path,
starting at s = 0 and sampled every 1 / steps loops, before it first leaves that region (model.EXTENT_FADE fades it
out over the next step). Seen from the input camera, so depth does not matter: a draw over the fall's image stays.
Gaussians beyond the photo's frame (the border stage 1 extends it by) are projected like any other: the moving
region runs on into the border with them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy.spatial import cKDTree

from .model import Scene4D

STEPS = 16  # samples per loop of travel (model.EXTENT_FADE is one step)


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """points (P, 3) in the input camera's frame -> (P, 2) pixels; points at or behind the camera -> far away."""
    z = points[:, 2]
    ok = z > 1e-6
    zz = np.where(ok, z, 1.0)
    uv = np.stack([K[0, 0] * points[:, 0] / zz + K[0, 2], K[1, 1] * points[:, 1] / zz + K[1, 2]], axis=1)
    return np.where(ok[:, None], uv, 1e12)


def travel_extent(means: np.ndarray, drift: np.ndarray, moving: np.ndarray, K: np.ndarray, radius_px: float,
                  steps: int = STEPS) -> np.ndarray:
    """-> (N, 2) float32 [lo, hi] loops of travel per Gaussian ([-1, 1] for static ones).

    means (N, 3) rest positions (input camera frame); drift (N, 3) one loop of travel (velocity * num_frames);
    moving (N,) bool; K (3, 3) input camera intrinsics; radius_px: how close (pixels, input view) to a moving
    Gaussian's rest place a draw must stay."""
    ext = np.tile(np.array([-1.0, 1.0], np.float32), (len(means), 1))
    mi = np.flatnonzero(moving)
    if len(mi) == 0:
        return ext
    m, d = means[mi].astype(np.float64), drift[mi].astype(np.float64)
    tree = cKDTree(_project(m, K))
    for col, sign in ((0, -1.0), (1, 1.0)):
        alive = np.ones(len(mi), bool)
        lim = np.full(len(mi), sign)
        for k in range(1, steps + 1):
            idx = np.flatnonzero(alive)
            if len(idx) == 0:
                break
            dist, _ = tree.query(_project(m[idx] + sign * k / steps * d[idx], K), workers=-1)
            left = idx[dist > radius_px]
            lim[left] = sign * (k - 1) / steps
            alive[left] = False
        ext[mi, col] = lim
    return ext


def travel_extent_reference(means: np.ndarray, drift: np.ndarray, moving: np.ndarray, K: np.ndarray,
                            radius_px: float, steps: int = STEPS) -> np.ndarray:
    """Plain-loop reference of `travel_extent` (brute-force nearest rest place; small scenes only)."""
    ext = np.tile(np.array([-1.0, 1.0], np.float32), (len(means), 1))
    rest = [_project(means[j:j + 1].astype(np.float64), K)[0] for j in range(len(means)) if moving[j]]
    for i in range(len(means)):
        if not moving[i]:
            continue
        for col, sign in ((0, -1.0), (1, 1.0)):
            for k in range(1, steps + 1):
                p = _project((means[i] + sign * k / steps * drift[i])[None].astype(np.float64), K)[0]
                if min(float(np.hypot(*(p - r))) for r in rest) > radius_px:
                    ext[i, col] = sign * (k - 1) / steps
                    break
    return ext


def with_extent(scene: Scene4D, K: np.ndarray, radius_px: float) -> Scene4D:
    """A scene sharing `scene`'s tensors, with `extent` set from its current velocity (radius_px <= 0: no extent,
    every draw over its whole path). K (3, 3): the input camera (world = input camera)."""
    if radius_px <= 0:
        return dataclasses.replace(scene, extent=None)
    drift = (scene.velocity.detach() * scene.num_frames).cpu().numpy()
    ext = travel_extent(scene.means.detach().cpu().numpy(), drift, scene.moving.cpu().numpy().astype(bool),
                        np.asarray(K), radius_px)
    return dataclasses.replace(scene, extent=torch.from_numpy(ext).to(device=scene.means.device,
                                                                      dtype=scene.means.dtype))
