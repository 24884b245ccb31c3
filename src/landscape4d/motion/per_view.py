"""Independent 2D motion in every training view, as a per-view motion network would give it.

The input hint arrows are lifted to 3D with the input depth (the start at the depth of its pixel, the end at the
bilinearly interpolated depth there; when the end's depth is invalid or differs by more than a factor exp(0.3)
from the start's, i.e. the arrow crosses a depth edge, the start's depth is used for both), projected into view
k, and interpolated inside view k's own rendered mask with the same interpolator as the input view. An arrow is
kept in view k when its start point is inside the image, in front of the camera and passes the z-test against
view k's rendered depth, and its end point is in front of the camera. These maps are not mutually consistent;
`refine.refine_motion` makes them so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..camera import Intrinsics
from ..config import MotionConfig
from .geometry import ViewMotion, nearest_pixel, project_points, sample_flow, valid_depth, visible_in_view
from .hints import arrow_velocities, as_arrows, check_speed
from .interpolate import dense_motion_from_hints

DEPTH_JUMP = 0.3  # |log(z_end / z_start)| above which an arrow end is lifted at the start's depth


def lift_arrows(
    arrows: np.ndarray,  # (K, 2, 2) pixels of the input view
    depth: np.ndarray,  # (H, W) input z-depth
    intr: Intrinsics,
) -> tuple[np.ndarray, np.ndarray]:
    """Arrow end points in 3D (K, 2, 3), world = input camera frame, and valid (K,) (start has a valid depth)."""
    arrows = np.asarray(arrows, np.float64).reshape(-1, 2, 2)
    depth = np.asarray(depth, np.float64)
    h, w = depth.shape
    ok_map = valid_depth(depth)
    pts = arrows.reshape(-1, 2)
    start = np.stack([np.clip(arrows[:, 0, 0], 0, w - 1e-6), np.clip(arrows[:, 0, 1], 0, h - 1e-6)], axis=1)
    end = np.stack([np.clip(arrows[:, 1, 0], 0, w - 1e-6), np.clip(arrows[:, 1, 1], 0, h - 1e-6)], axis=1)
    rows, cols, _ = nearest_pixel(start, h, w)
    zs = depth[rows, cols]
    valid = ok_map[rows, cols]
    zs = np.where(valid, zs, 1.0)
    ze, ok_e = sample_flow(np.where(ok_map, depth, 0.0)[..., None], ok_map, end)  # bilinear over valid depths
    ze = ze[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        jump = np.abs(np.log(np.where(ok_e, ze, 1.0) / zs))
    ze = np.where(ok_e & (jump <= DEPTH_JUMP), ze, zs)
    zz = np.stack([zs, ze], axis=1).reshape(-1)
    xyz = np.stack([(pts[:, 0] - intr.cx) / intr.fx * zz, (pts[:, 1] - intr.cy) / intr.fy * zz, zz], axis=-1)
    return xyz.reshape(-1, 2, 3), valid


def project_arrows(
    arrows: np.ndarray,  # (K, 2, 2) input-view pixels
    depth: np.ndarray,  # (H, W) input z-depth
    intr: Intrinsics,
    view: ViewMotion,
    tol: float = 0.03,
) -> tuple[np.ndarray, np.ndarray]:
    """The arrows as seen in `view`: (K, 2, 2) view pixels and visible (K,) bool (rules in the module docstring).
    """
    world, valid = lift_arrows(arrows, depth, intr)
    _, _, vis = visible_in_view(world[:, 0], view, intr, tol=tol, use_mask=False)
    uv_s, _ = project_points(world[:, 0], intr, view.c2w)
    uv_e, z_e = project_points(world[:, 1], intr, view.c2w)
    vis &= valid & (z_e > 0) & np.isfinite(uv_e).all(axis=1)
    out = np.stack([uv_s, uv_e], axis=1)
    return np.where(vis[:, None, None], out, 0.0), vis


def pseudo_arrows(field: np.ndarray, mask: np.ndarray, hint_frames: float, cells: int = 32) -> np.ndarray:
    """Arrows (K, 2, 2) sampled from a dense field (H, W, 2) on a grid of about `cells` per side, inside `mask`
    (every mask pixel when the grid misses the mask); each arrow spans `hint_frames` frames of motion."""
    h, w = mask.shape
    step = max(1, int(round(max(h, w) / cells)))
    grid = np.zeros_like(mask, dtype=bool)
    grid[step // 2::step, step // 2::step] = True
    sel = mask & grid
    if not sel.any():
        sel = np.asarray(mask, bool)
    ij = np.argwhere(sel)
    start = ij[:, ::-1] + 0.5
    return np.stack([start, start + field[ij[:, 0], ij[:, 1]] * hint_frames], axis=1)


def per_view_motion(
    arrows: np.ndarray | None,  # (K, 2, 2) input-view hint arrows, or None for cfg.direction mode
    input_mask: np.ndarray,  # (H, W) bool, motion mask of the input view
    input_depth: np.ndarray,  # (H, W) z-depth of the input view
    intr: Intrinsics,
    views: Sequence[ViewMotion],  # c2w, mask, depth of every view (flow unused)
    cfg: MotionConfig | None = None,
    *,
    source: str | Path | None = None,
) -> list[np.ndarray]:
    """Independent dense 2D motion (H, W, 2) float32 px/frame in each view.

    Arrow velocities follow the input-view semantics (`cfg.speed`, `cfg.hint_frames`) and are rebuilt as arrows of
    `hint_frames` frames before projection. Direction mode (no arrows): pseudo-arrows sampled from the input view's
    constant field are projected instead. A view that sees none of the arrows also falls back to pseudo-arrows
    from the input view's dense field. Raises InputError as `dense_motion_from_hints` does."""
    cfg = cfg if cfg is not None else MotionConfig()
    check_speed(cfg)
    arrows = as_arrows(arrows, source)
    input_mask = np.asarray(input_mask, bool)
    frames = float(cfg.hint_frames) if cfg.hint_frames > 0 else 1.0
    dense0 = dense_motion_from_hints(input_mask, arrows, cfg, source=source)  # validates, raises on no hints
    if len(arrows):
        vel, keep = arrow_velocities(arrows, cfg, warn=False)
        eff = np.stack([arrows[keep, 0], arrows[keep, 0] + vel[keep] * frames], axis=1)
    else:
        eff = pseudo_arrows(dense0, input_mask, frames)
    fallback = None
    view_cfg = dataclasses.replace(cfg, speed=None, direction=None, hint_frames=frames)
    out = []
    for view in views:
        mask = np.asarray(view.mask, bool)
        arr_k, vis = project_arrows(eff, input_depth, intr, view, tol=cfg.visibility_tol)
        if not mask.any():
            out.append(np.zeros(mask.shape + (2,), np.float32))
            continue
        if not vis.any():
            if fallback is None:
                fallback = pseudo_arrows(dense0, input_mask, frames)
            arr_k, vis = project_arrows(fallback, input_depth, intr, view, tol=cfg.visibility_tol)
        if not vis.any():
            out.append(np.zeros(mask.shape + (2,), np.float32))
            continue
        out.append(dense_motion_from_hints(mask, arr_k[vis], view_cfg, warn=False))
    return out
