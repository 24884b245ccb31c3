"""Small geometry shared by the motion modules: projection of points into a view, the visibility z-test and
mask-aware sampling of a flow map.

All numpy, float64 inside. Conventions are those of `landscape4d.camera` (OpenCV axes, c2w poses, pixel (i, j)
centred at (u, v) = (j + 0.5, i + 0.5), depth = z). A flow map (H, W, 2) holds (du, dv) in pixels per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import Intrinsics, w2c_from_c2w


@dataclass
class ViewMotion:
    """One training view as the motion code sees it.

    c2w:   (4, 4) camera-to-world (view 0 = identity = the input view).
    mask:  (H, W) bool, the view's (rendered) motion mask.
    depth: (H, W) z-depth rendered in this view; inf, nan or <= 0 where there is a hole.
    flow:  (H, W, 2) px/frame, this view's 2D motion (None for a view used only for its geometry).
    """

    c2w: np.ndarray
    mask: np.ndarray
    depth: np.ndarray
    flow: np.ndarray | None = None


def project_points(points: np.ndarray, intr: Intrinsics, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) -> pixels uv (N, 2) and camera depth z (N,) in the view with pose `c2w` (4, 4).

    Points at z <= 0 get uv = nan (they are behind the camera)."""
    w2c = w2c_from_c2w(np.asarray(c2w, np.float64))
    cam = np.asarray(points, np.float64) @ w2c[:3, :3].T + w2c[:3, 3]  # (N, 3)
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = np.where(z > 1e-12, z, np.nan)
        uv = np.stack([intr.fx * cam[:, 0] / zs + intr.cx, intr.fy * cam[:, 1] / zs + intr.cy], axis=-1)
    return uv, z


def unproject_uv(uv: np.ndarray, z: np.ndarray, intr: Intrinsics, c2w: np.ndarray | None = None) -> np.ndarray:
    """Pixels uv (N, 2) at z-depth z (N,) in the view with pose `c2w` (None = identity) -> world points (N, 3)."""
    uv = np.asarray(uv, np.float64)
    z = np.asarray(z, np.float64)
    cam = np.stack([(uv[:, 0] - intr.cx) / intr.fx * z, (uv[:, 1] - intr.cy) / intr.fy * z, z], axis=-1)
    if c2w is None:
        return cam
    c2w = np.asarray(c2w, np.float64)
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def nearest_pixel(uv: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel containing each uv (N, 2): rows (N,), cols (N,) (clipped into the image) and inside (N,) bool."""
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(uv).all(axis=1)
        uvf = np.where(finite[:, None], uv, -1.0)
        cols = np.floor(uvf[:, 0]).astype(np.int64)
        rows = np.floor(uvf[:, 1]).astype(np.int64)
    inside = finite & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    return np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1), inside


def valid_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) bool: finite, positive depth."""
    d = np.asarray(depth)
    with np.errstate(invalid="ignore"):
        return np.isfinite(d) & (d > 0)


def visible_in_view(
    points: np.ndarray,  # (N, 3) world
    view: ViewMotion,
    intr: Intrinsics,
    tol: float = 0.03,
    use_mask: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project points into `view` and z-test them against its rendered depth.

    A point is visible when it lands inside the image, in front of the camera, on a pixel with valid rendered
    depth d and z <= d * (1 + tol) (nothing clearly in front of it); with `use_mask`, its pixel must also be
    inside the view's motion mask. Returns uv (N, 2), z (N,), visible (N,) bool.
    """
    h, w = view.depth.shape
    uv, z = project_points(points, intr, view.c2w)
    rows, cols, inside = nearest_pixel(uv, h, w)
    d = np.asarray(view.depth, np.float64)[rows, cols]
    ok = inside & (z > 0) & valid_depth(d)
    with np.errstate(invalid="ignore"):
        ok &= z <= d * (1.0 + tol)
    if use_mask:
        ok &= np.asarray(view.mask, bool)[rows, cols]
    return uv, z, ok


def sample_flow(flow: np.ndarray, mask: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask-aware bilinear sampling of a flow map (or any (H, W, C) field) at uv (N, 2).

    flow (H, W, C), mask (H, W) bool. The four pixel centres around uv are blended with bilinear weights, using
    only those inside the image and the mask (weights renormalised), so values from outside the mask never leak
    in. valid (N,) is True where the pixel containing uv is inside the image and the mask. Returns values (N, C)
    (0 where not valid) and valid.
    """
    h, w = mask.shape
    mask = np.asarray(mask, bool)
    flow = np.asarray(flow, np.float64)
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    rows_n, cols_n, inside = nearest_pixel(uv, h, w)
    valid = inside & mask[rows_n, cols_n]
    x = np.where(valid, uv[:, 0], 0.5) - 0.5
    y = np.where(valid, uv[:, 1], 0.5) - 0.5
    j0 = np.floor(x).astype(np.int64)
    i0 = np.floor(y).astype(np.int64)
    fx, fy = x - j0, y - i0
    acc = np.zeros((len(uv), flow.shape[-1]))
    wsum = np.zeros(len(uv))
    for di, dj, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        i, j = i0 + di, j0 + dj
        ok = (i >= 0) & (i < h) & (j >= 0) & (j < w)
        ic, jc = np.clip(i, 0, h - 1), np.clip(j, 0, w - 1)
        wk = np.where(ok & mask[ic, jc], wgt, 0.0)
        acc += wk[:, None] * flow[ic, jc]
        wsum += wk
    out = np.where(valid[:, None], acc / np.maximum(wsum, 1e-12)[:, None], 0.0)
    return out, valid


def sample_flow_reference(flow: np.ndarray, mask: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-point loop version of `sample_flow` (for tests)."""
    h, w = mask.shape
    out = np.zeros((len(uv), flow.shape[-1]))
    valid = np.zeros(len(uv), bool)
    for n, (u, v) in enumerate(np.asarray(uv, np.float64)):
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        r, c = int(np.floor(v)), int(np.floor(u))
        if not (0 <= r < h and 0 <= c < w and mask[r, c]):
            continue
        valid[n] = True
        x, y = u - 0.5, v - 0.5
        j0, i0 = int(np.floor(x)), int(np.floor(y))
        total, acc = 0.0, np.zeros(flow.shape[-1])
        for i in (i0, i0 + 1):
            for j in (j0, j0 + 1):
                if 0 <= i < h and 0 <= j < w and mask[i, j]:
                    wgt = (1 - abs(y - i)) * (1 - abs(x - j))
                    total += wgt
                    acc += wgt * flow[i, j]
        out[n] = acc / total
    return out, valid
