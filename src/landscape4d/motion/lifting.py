"""2D motion <-> 3D motion.

- `lift_motion`: a view's 2D flow -> one 3D velocity per pixel, the in-plane displacement (constant depth in that
  view) whose projection moves the pixel by exactly the flow, expressed in world coordinates.
- `project_motion`: 3D velocities of points -> their 2D motion in a view, project(p + v) - project(p).
- `render_flow`: the 2D motion of any point cloud drawn into a view as a dense map (z-buffered nearest-pixel
  splat, gaps inside the view's mask filled from the nearest covered pixel).
- `warp_flow_to_view`: the same for per-pixel 3D motion (one point per input pixel), by backward warping: each
  view pixel is located in the input view (through the input depth surface), the 3D velocity there is
  interpolated and its exact 2D motion in the view is taken. Smooth and sub-pixel accurate, unlike the splat.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..camera import Intrinsics, pixel_grid
from .geometry import nearest_pixel, project_points, sample_flow, unproject_uv, valid_depth

WARP_ITERS = 6  # fixed-point steps of the backward warp
WARP_TOL = 0.05  # px: a view pixel whose input-view location reprojects farther than this is filled instead


def lift_motion(
    flow: np.ndarray,  # (H, W, 2) px/frame
    depth: np.ndarray,  # (H, W) z-depth of this view
    intr: Intrinsics,
    c2w: np.ndarray | None = None,  # (4, 4) pose of the view; None = identity (the input view)
) -> np.ndarray:
    """Per-pixel 3D velocity (H*W, 3) float32 in world units per frame, row-major pixel order.

    In camera coordinates the displacement of pixel (u, v) at depth z is (z du / fx, z dv / fy, 0): the point
    stays at the same depth and its projection moves by exactly (du, dv). Pixels without a valid depth get 0."""
    flow = np.asarray(flow, np.float64)
    depth = np.asarray(depth, np.float64)
    h, w = depth.shape
    if flow.shape != (h, w, 2):
        raise ValueError(f"flow {flow.shape} does not match depth {depth.shape}")
    z = np.where(valid_depth(depth), depth, 0.0)
    cam = np.stack([z * flow[..., 0] / intr.fx, z * flow[..., 1] / intr.fy, np.zeros_like(z)], axis=-1)
    cam = cam.reshape(-1, 3)
    if c2w is not None:
        cam = cam @ np.asarray(c2w, np.float64)[:3, :3].T
    return cam.astype(np.float32)


def lift_motion_reference(flow: np.ndarray, depth: np.ndarray, intr: Intrinsics,
                          c2w: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel loop version of `lift_motion`: unproject (u + du, v + dv) and (u, v) at the same depth and
    subtract (for tests)."""
    h, w = depth.shape
    rot = np.eye(3) if c2w is None else np.asarray(c2w, np.float64)[:3, :3]
    out = np.zeros((h * w, 3))
    uv = pixel_grid(h, w)
    for i in range(h):
        for j in range(w):
            z = float(depth[i, j])
            if not (np.isfinite(z) and z > 0):
                continue
            u, v = uv[i, j]
            a = np.array([(u - intr.cx) / intr.fx * z, (v - intr.cy) / intr.fy * z, z])
            u2, v2 = u + flow[i, j, 0], v + flow[i, j, 1]
            b = np.array([(u2 - intr.cx) / intr.fx * z, (v2 - intr.cy) / intr.fy * z, z])
            out[i * w + j] = rot @ (b - a)
    return out.astype(np.float32)


def project_motion(
    points: np.ndarray,  # (N, 3) world
    velocity: np.ndarray,  # (N, 3) world units per frame
    intr: Intrinsics,
    c2w: np.ndarray,  # (4, 4)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2D motion (N, 2) px/frame of moving points in a view: project(p + v) - project(p).

    Returns motion (N, 2), uv (N, 2) (where the points are) and z (N,). Motion is nan where p or p + v is behind
    the camera."""
    points = np.asarray(points, np.float64)
    uv, z = project_points(points, intr, c2w)
    uv1, z1 = project_points(points + np.asarray(velocity, np.float64), intr, c2w)
    return uv1 - uv, uv, z


def render_flow(
    points: np.ndarray,  # (N, 3) world, every point of the scene (static ones occlude too)
    velocity: np.ndarray,  # (N, 3) world units per frame (0 for static points)
    intr: Intrinsics,
    c2w: np.ndarray,  # (4, 4)
    mask: np.ndarray | None = None,  # (H, W) bool: fill gaps inside it, zero outside it
) -> tuple[np.ndarray, np.ndarray]:
    """Dense 2D motion (H, W, 2) float32 of a point cloud in a view, and covered (H, W) bool.

    Each point lands on the pixel containing its projection; the nearest point (smallest z) wins. With `mask`,
    mask pixels no point landed on take the value of the nearest covered pixel and pixels outside the mask are 0.
    """
    h, w = intr.height, intr.width
    motion, uv, z = project_motion(points, velocity, intr, c2w)
    rows, cols, inside = nearest_pixel(uv, h, w)
    ok = inside & (z > 0) & np.isfinite(motion).all(axis=1)
    lin = (rows * w + cols)[ok]
    zz, mm = z[ok], motion[ok]
    order = np.lexsort((zz, lin))  # by pixel, then by depth
    first_pix, first = np.unique(lin[order], return_index=True)
    flat = np.zeros((h * w, 2))
    flat[first_pix] = mm[order[first]]
    covered = np.zeros(h * w, bool)
    covered[first_pix] = True
    flow, covered = flat.reshape(h, w, 2), covered.reshape(h, w)
    if mask is not None:
        mask = np.asarray(mask, bool)
        if covered.any():
            gaps = mask & ~covered
            if gaps.any():
                _, (ni, nj) = ndimage.distance_transform_edt(~covered, return_indices=True)
                flow[gaps] = flow[ni[gaps], nj[gaps]]
        flow[~mask] = 0.0
    return flow.astype(np.float32), covered


def render_flow_reference(points: np.ndarray, velocity: np.ndarray, intr: Intrinsics,
                          c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-point loop z-buffer version of `render_flow` without mask filling (for tests)."""
    h, w = intr.height, intr.width
    flow = np.zeros((h, w, 2))
    zbuf = np.full((h, w), np.inf)
    motion, uv, z = project_motion(points, velocity, intr, c2w)
    for n in range(len(points)):
        if not (z[n] > 0 and np.isfinite(uv[n]).all() and np.isfinite(motion[n]).all()):
            continue
        c, r = int(np.floor(uv[n, 0])), int(np.floor(uv[n, 1]))
        if 0 <= r < h and 0 <= c < w and z[n] < zbuf[r, c]:
            zbuf[r, c] = z[n]
            flow[r, c] = motion[n]
    return flow.astype(np.float32), np.isfinite(zbuf)


def fill_from_nearest(field: np.ndarray, known: np.ndarray, region: np.ndarray) -> np.ndarray:
    """field (H, W, C): pixels of `region` not `known` take the value of the nearest known pixel; 0 outside
    `region`. No known pixel: zeros."""
    out = np.where(known[..., None], field, 0.0)
    gaps = region & ~known
    if gaps.any() and known.any():
        _, (ni, nj) = ndimage.distance_transform_edt(~known, return_indices=True)
        out[gaps] = out[ni[gaps], nj[gaps]]
    out[~region] = 0.0
    return out


def warp_flow_to_view(
    velocity: np.ndarray,  # (H*W, 3) per input pixel, row-major, world units per frame
    moving: np.ndarray,  # (H*W,) or (H, W) bool
    input_depth: np.ndarray,  # (H, W) z-depth of the input view (world = input camera frame)
    intr: Intrinsics,
    view_c2w: np.ndarray,  # (4, 4)
    view_depth: np.ndarray,  # (H, W) the view's rendered z-depth (inf/0 at holes)
    view_mask: np.ndarray,  # (H, W) bool, the view's motion mask
    iters: int = WARP_ITERS,
) -> np.ndarray:
    """Dense 2D motion (H, W, 2) float32 of per-pixel 3D motion in a view, inside `view_mask`.

    Each view pixel is unprojected with the view's rendered depth and projected into the input view, giving a
    first guess x of its input-view location; x is then refined by fixed-point steps x -= proj_k(P(x)) - pixel,
    where P(x) is the input depth surface at x (bilinear depth), so that the point really projects onto the pixel
    centre (rendered depths are blended and would bias the motion, which scales like 1 / depth). The pixel's motion
    is then the exact 2D motion of P(x) moving with the velocity interpolated at x (mask-aware bilinear over the
    moving pixels). Mask pixels without a valid depth, whose point falls off the moving pixels or whose location
    does not converge (occlusion edges) take the value of the nearest pixel that has one."""
    h, w = intr.height, intr.width
    region = np.asarray(view_mask, bool)
    sel = np.flatnonzero(region)  # only the view's mask pixels are needed
    pix = pixel_grid(h, w).reshape(-1, 2)[sel]
    vd = np.asarray(view_depth, np.float64).reshape(-1)[sel]
    ok_d = valid_depth(vd)
    world = unproject_uv(pix, np.where(ok_d, vd, 1.0), intr, view_c2w)
    x, _ = project_points(world, intr, np.eye(4))
    x = np.where(np.isfinite(x), x, -1.0)
    depth0 = np.asarray(input_depth, np.float64)
    ok0 = valid_depth(depth0)
    depth_field = np.where(ok0, depth0, 0.0)[..., None]
    for _ in range(max(1, iters)):
        z0, ok_z = sample_flow(depth_field, ok0, x)
        pts = unproject_uv(x, np.where(ok_z, z0[:, 0], 1.0), intr)
        u, _ = project_points(pts, intr, view_c2w)
        x = x - np.where(np.isfinite(u), u - pix, 0.0)
    z0, ok_z = sample_flow(depth_field, ok0, x)
    pts = unproject_uv(x, np.where(ok_z, z0[:, 0], 1.0), intr)
    u, _ = project_points(pts, intr, view_c2w)
    converged = np.isfinite(u).all(axis=1) & (np.abs(u - pix).max(axis=1) < WARP_TOL)
    vel_grid = np.asarray(velocity, np.float64).reshape(h, w, 3)
    vel, ok_s = sample_flow(vel_grid, np.asarray(moving, bool).reshape(h, w), x)
    motion, _, _ = project_motion(pts, vel, intr, view_c2w)
    good = ok_d & ok_z & ok_s & converged & np.isfinite(motion).all(axis=1)
    full = np.zeros((h * w, 2))
    full[sel] = np.where(good[:, None], motion, 0.0)
    known = np.zeros(h * w, bool)
    known[sel] = good
    flow = fill_from_nearest(full.reshape(h, w, 2), known.reshape(h, w), region)
    return flow.astype(np.float32)
