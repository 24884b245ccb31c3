"""Motion hints -> sparse velocity constraints on the pixel grid.

A hint is an arrow (K, 2, 2): arrows[k, 0] = (u0, v0) its start, arrows[k, 1] = (u1, v1) its end, in pixel
coordinates of the image it was drawn on (pixel (i, j) covers u in [j, j+1), v in [i, i+1)). An arrow is the
displacement over `cfg.hint_frames` frames, so its velocity is (end - start) / hint_frames px/frame; when
`cfg.speed` is set the direction is kept and the length replaced by `speed` (zero-length arrows are then dropped,
they have no direction).

Rasterisation (`hint_constraints`):
- the start point of each arrow becomes a constraint on the pixel containing it; with `cfg.hint_points = n > 1`,
  n - 1 more points evenly spaced along the arrow up to its end are added with the same velocity (those that fall
  outside the image or the mask are skipped, they are never snapped);
- a start point outside the image by more than one pixel: the arrow is ignored (warning); within one pixel of the
  border it is clamped into the image (labelme often puts points on the border);
- a start point inside the image but outside the mask is snapped to the nearest mask pixel (warning with the
  largest snap distance);
- several constraints on one pixel are averaged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..config import MotionConfig
from ..errors import InputError


@dataclass
class HintConstraints:
    """Dirichlet constraints: the velocity (px/frame) imposed at a set of distinct mask pixels."""

    rows: np.ndarray  # (C,) int64
    cols: np.ndarray  # (C,) int64
    velocity: np.ndarray  # (C, 2) float64, (du, dv) px/frame

    def __len__(self) -> int:
        return len(self.rows)


def as_arrows(arrows: np.ndarray | None, source: str | Path | None = None) -> np.ndarray:
    """Validate hint arrows: None or an empty array -> (0, 2, 2); otherwise (K, 2, 2) finite float64."""
    if arrows is None:
        return np.zeros((0, 2, 2))
    try:
        a = np.asarray(arrows, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(source, "motion hints must be numeric arrows of shape (K, 2, 2)") from None
    if a.size == 0:
        return np.zeros((0, 2, 2))
    if a.ndim != 3 or a.shape[1:] != (2, 2):
        raise InputError(source, f"motion hints must be arrows of shape (K, 2, 2) [start, end], got {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(source, "motion hints contain non-finite coordinates")
    return a


def arrow_velocities(arrows: np.ndarray, cfg: MotionConfig, warn: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Velocity of each arrow (K, 2) px/frame and keep (K,) bool (False for arrows that cannot give one)."""
    d = arrows[:, 1] - arrows[:, 0]  # (K, 2)
    if cfg.speed is not None:
        length = np.linalg.norm(d, axis=1)
        keep = length > 1e-9
        if warn and (~keep).any():
            warnings.warn(f"{int((~keep).sum())} zero-length motion hint(s) ignored: with a fixed speed an arrow "
                          "needs a direction", stacklevel=3)
        vel = np.where(keep[:, None], d / np.maximum(length, 1e-9)[:, None] * float(cfg.speed), 0.0)
        return vel, keep
    if not cfg.hint_frames > 0:
        raise InputError(None, f"motion.hint_frames must be > 0, got {cfg.hint_frames}")
    return d / float(cfg.hint_frames), np.ones(len(arrows), bool)


def direction_velocity(cfg: MotionConfig) -> np.ndarray | None:
    """The global velocity (2,) px/frame of `cfg.direction`, or None when no direction is set.

    With `cfg.speed` the direction is normalised and scaled to it; without, the direction vector is read like an
    arrow: its length is the displacement over `cfg.hint_frames` frames."""
    if cfg.direction is None:
        return None
    try:
        d = np.asarray(cfg.direction, np.float64).reshape(2)
    except (TypeError, ValueError):
        raise InputError(None, f"motion.direction must be two numbers (dx, dy), got {cfg.direction!r}") from None
    if not np.isfinite(d).all() or np.linalg.norm(d) < 1e-12:
        raise InputError(None, f"motion.direction must be a finite non-zero vector, got {cfg.direction!r}")
    if cfg.speed is not None:
        return d / np.linalg.norm(d) * float(cfg.speed)
    if not cfg.hint_frames > 0:
        raise InputError(None, f"motion.hint_frames must be > 0, got {cfg.hint_frames}")
    return d / float(cfg.hint_frames)


def check_speed(cfg: MotionConfig) -> None:
    if cfg.speed is not None and not (np.isfinite(cfg.speed) and cfg.speed >= 0):
        raise InputError(None, f"motion.speed must be a finite number >= 0 px/frame, got {cfg.speed!r}")


def hint_constraints(
    mask: np.ndarray,  # (H, W) bool
    arrows: np.ndarray,  # (K, 2, 2)
    cfg: MotionConfig,
    *,
    warn: bool = True,
) -> HintConstraints:
    """Rasterise validated arrows into constraints on mask pixels (rules in the module docstring)."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    vel, keep = arrow_velocities(arrows, cfg, warn=warn)
    arrows, vel = arrows[keep], vel[keep]
    empty = HintConstraints(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2)))
    if len(arrows) == 0 or not mask.any():
        if warn and len(arrows) and not mask.any():
            warnings.warn("the motion mask is empty: motion hints ignored", stacklevel=3)
        return empty

    start = arrows[:, 0]
    in_image = (start[:, 0] >= -1) & (start[:, 0] <= w + 1) & (start[:, 1] >= -1) & (start[:, 1] <= h + 1)
    if warn and (~in_image).any():
        warnings.warn(f"{int((~in_image).sum())} motion hint(s) start outside the image and are ignored",
                      stacklevel=3)
    arrows, vel = arrows[in_image], vel[in_image]
    if len(arrows) == 0:
        return empty
    eps = 1e-6
    su = np.clip(arrows[:, 0, 0], 0, w - eps)
    sv = np.clip(arrows[:, 0, 1], 0, h - eps)
    rows, cols = np.floor(sv).astype(np.int64), np.floor(su).astype(np.int64)

    off = ~mask[rows, cols]
    if off.any():
        dist, (ni, nj) = ndimage.distance_transform_edt(~mask, return_indices=True)
        if warn:
            warnings.warn(f"{int(off.sum())} motion hint(s) start outside the motion mask and were moved to the "
                          f"nearest mask pixel (up to {dist[rows[off], cols[off]].max():.1f} px)", stacklevel=3)
        rows, cols = np.where(off, ni[rows, cols], rows), np.where(off, nj[rows, cols], cols)
    all_rows, all_cols, all_vel = [rows], [cols], [vel]

    n = max(1, int(cfg.hint_points))
    if n > 1:
        t = np.linspace(0.0, 1.0, n)[1:]  # (n-1,)
        pts = arrows[:, None, 0] + t[None, :, None] * (arrows[:, None, 1] - arrows[:, None, 0])  # (K, n-1, 2)
        pts = pts.reshape(-1, 2)
        pv = np.repeat(vel, n - 1, axis=0)
        r, c = np.floor(pts[:, 1]).astype(np.int64), np.floor(pts[:, 0]).astype(np.int64)
        ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        ok[ok] &= mask[r[ok], c[ok]]
        all_rows.append(r[ok])
        all_cols.append(c[ok])
        all_vel.append(pv[ok])

    rows, cols, vel = np.concatenate(all_rows), np.concatenate(all_cols), np.concatenate(all_vel)
    lin = rows * w + cols
    uniq, inv = np.unique(lin, return_inverse=True)
    count = np.bincount(inv, minlength=len(uniq)).astype(np.float64)
    mean = np.stack([np.bincount(inv, weights=vel[:, a], minlength=len(uniq)) for a in range(2)], axis=1)
    mean /= count[:, None]
    return HintConstraints(uniq // w, uniq % w, mean)
