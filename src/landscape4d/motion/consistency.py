"""Multi-view consistency of 2D motion maps (the paper's Table II), and agreement of a 3D motion with each view's
independent 2D estimate, in px/frame.

`views_agreement_epe` is the honest measure of a 3D motion: the mean end-point error between each view's
independent 2D estimate and that 3D motion projected into the view. `multiview_consistency_epe` below measures
how well a set of 2D maps agree with one another; applied to maps drawn from ONE 3D motion (`flows_from_3d`) it is
near zero by construction, whatever that motion is.

For every input-view mask pixel with a valid depth, its 3D point p is projected into each view k; where it passes
the z-test (relative tolerance `tol`) and lands in view k's mask, view k's flow is sampled there (mask-aware
bilinear), giving f_k. The view index 0 is the input view. Two measures of how well the f_k agree:

- `epe_3d` (primary, reported as `epe`): the 3D velocity v* that best explains all of them, least squares over
  views of |proj_k(p + v) - proj_k(p) - f_k|^2 (a few Gauss-Newton steps, exact projection), and the mean of the
  residual |proj_k(p + v*) - proj_k(p) - f_k| over those views. It is 0 exactly when one 3D motion explains every
  view, whatever its direction. Needs two views of the point from different camera centres to fix the depth
  component; the depth component is regularised to 0 otherwise.
- `epe_reproject`: each f_k is lifted to 3D at constant depth in view k (`lifting.lift_motion`'s rule) and
  projected back into the input view as a 2D motion m_k; the value is the mean distance of the m_k to their mean.
  `epe_vs_input` is the mean |m_k - m_0| over views k > 0. Simple and close to 2D practice, but not exactly 0 for
  a consistent 3D motion with a component along view k's viewing direction seen from a translated view k (the
  constant-depth lift cannot know it): a floor of about baseline / depth times that component.

Each is averaged first over the views of a pixel, then over the pixels seen by at least 2 views.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..camera import Intrinsics, unproject_depth, w2c_from_c2w
from .geometry import ViewMotion, sample_flow, valid_depth, visible_in_view
from .lifting import render_flow, warp_flow_to_view

GN_STEPS = 4


def _motion(cam: np.ndarray, d: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """2D motion (..., 2) of camera-space points cam (..., 3) displaced by d (..., 3), without cancellation."""
    x, y, z = cam[..., 0], cam[..., 1], cam[..., 2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    z1 = z + dz
    den = z * np.where(np.abs(z1) < 1e-12, 1e-12, z1)
    return np.stack([intr.fx * (dx * z - x * dz) / den, intr.fy * (dy * z - y * dz) / den], axis=-1)


def _jacobian(cam: np.ndarray, rot: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """d proj / d world (V, M, 2, 3) at camera-space points cam (V, M, 3); rot (V, 3, 3) world -> camera."""
    x, y, z = cam[..., 0], cam[..., 1], cam[..., 2]
    zero = np.zeros_like(z)
    jc = np.stack([np.stack([intr.fx / z, zero, -intr.fx * x / z**2], -1),
                   np.stack([zero, intr.fy / z, -intr.fy * y / z**2], -1)], axis=-2)  # (..., 2, 3)
    return np.einsum("kmab,kbc->kmac", jc, rot)


def multiview_consistency_epe(
    flows: Sequence[np.ndarray],  # per view (H, W, 2) px/frame
    views: Sequence[ViewMotion],  # c2w, mask, depth per view (flow ignored); views[0] = the input view
    depth: np.ndarray,  # (H, W) input-view z-depth
    intr: Intrinsics,
    mask: np.ndarray,  # (H, W) bool input-view motion mask
    *,
    tol: float = 0.03,
) -> dict:
    """Consistency of per-view 2D motion maps (see the module docstring). Returns a dict of floats:
    epe (= epe_3d), epe_3d, epe_reproject, epe_vs_input, pixels (seen by >= 2 views), mean_views, and
    per_view_3d (list: mean 3D-fit residual of each view over its visible pixels)."""
    if len(flows) != len(views):
        raise ValueError(f"{len(flows)} flows for {len(views)} views")
    mask = np.asarray(mask, bool) & valid_depth(depth)
    pts = unproject_depth(np.where(valid_depth(depth), depth, 1.0), intr).astype(np.float64)[mask.reshape(-1)]
    nv, m = len(views), len(pts)
    f = np.zeros((nv, m, 2))
    vis = np.zeros((nv, m), bool)
    cam = np.zeros((nv, m, 3))
    rot = np.zeros((nv, 3, 3))
    for k, (fl, view) in enumerate(zip(flows, views)):
        uv, z, ok = visible_in_view(pts, view, intr, tol=tol, use_mask=False)
        f[k], ok2 = sample_flow(fl, view.mask, uv)
        vis[k] = ok & ok2
        w2c = w2c_from_c2w(np.asarray(view.c2w, np.float64))
        rot[k] = w2c[:3, :3]
        cam[k] = pts @ rot[k].T + w2c[:3, 3]
    wgt = vis.astype(np.float64)
    count = wgt.sum(0)  # (M,)
    use = count >= 2
    out = {"pixels": int(use.sum()), "mean_views": float(count[use].mean()) if use.any() else 0.0}
    if not use.any():
        out.update(epe=0.0, epe_3d=0.0, epe_reproject=0.0, epe_vs_input=0.0, per_view_3d=[0.0] * nv)
        return out

    # --- 3D least-squares fit (Gauss-Newton on the exact projection)
    v = np.zeros((m, 3))
    for _ in range(GN_STEPS):
        dcam = np.einsum("kab,mb->kma", rot, v)
        r = f - _motion(cam, dcam, intr)  # (V, M, 2)
        jac = _jacobian(cam + dcam, rot, intr)  # (V, M, 2, 3)
        a = np.einsum("km,kmai,kmaj->mij", wgt, jac, jac)
        b = np.einsum("km,kmai,kma->mi", wgt, jac, r)
        a += (1e-9 * np.trace(a, axis1=1, axis2=2) + 1e-30)[:, None, None] * np.eye(3)
        v = v + np.linalg.solve(a, b[..., None])[..., 0]
    res = np.linalg.norm(f - _motion(cam, np.einsum("kab,mb->kma", rot, v), intr), axis=-1)  # (V, M)
    per_pix = (wgt * res).sum(0) / np.maximum(count, 1)
    out["epe_3d"] = float(per_pix[use].mean())
    out["epe"] = out["epe_3d"]
    out["per_view_3d"] = [float((wgt[k] * res[k]).sum() / max(wgt[k].sum(), 1)) for k in range(nv)]

    # --- constant-depth lift in each view, projected back into the input view
    zk = cam[..., 2:3]
    d_cam = np.concatenate([zk * f[..., :1] / intr.fx, zk * f[..., 1:] / intr.fy, np.zeros_like(zk)], -1)
    d_world = np.einsum("kba,kmb->kma", rot, d_cam)  # rot.T: camera k -> world
    rot0 = rot[0]
    d0 = np.einsum("ab,kmb->kma", rot0, d_world)
    mk = _motion(cam[0][None], d0, intr)  # (V, M, 2) in the input view
    mean = (wgt[..., None] * mk).sum(0) / np.maximum(count, 1)[:, None]
    spread = (wgt * np.linalg.norm(mk - mean, axis=-1)).sum(0) / np.maximum(count, 1)
    out["epe_reproject"] = float(spread[use].mean())
    pair = vis[1:] & vis[0][None]
    diff = np.linalg.norm(mk[1:] - mk[0][None], axis=-1)
    out["epe_vs_input"] = float(diff[pair].mean()) if pair.any() else 0.0
    return out


def views_agreement_epe(
    estimates: Sequence[np.ndarray],  # per view (H, W, 2) px/frame: the view's independent 2D estimate
    projected: Sequence[np.ndarray],  # per view (H, W, 2) px/frame: a 3D motion drawn into the view (flows_from_3d)
    masks: Sequence[np.ndarray],  # per view (H, W) bool: the view's motion mask
) -> dict:
    """Mean end-point error between each view's 2D estimate and the projected 3D motion over the view's mask.

    Returns {"epe": mean over views with a non-empty mask, "epe_other_views": the same without view 0 (the input
    view, whose estimate the initial 3D motion is lifted from), "per_view": [epe of each view, None if no mask]}."""
    if not len(estimates) == len(projected) == len(masks):
        raise ValueError(f"{len(estimates)} estimates, {len(projected)} projections and {len(masks)} masks")
    per_view: list[float | None] = []
    for est, proj, mask in zip(estimates, projected, masks):
        m = np.asarray(mask, bool)
        err = np.linalg.norm(np.asarray(est, np.float64) - np.asarray(proj, np.float64), axis=-1)
        per_view.append(float(err[m].mean()) if m.any() else None)
    seen = [v for v in per_view if v is not None]
    others = [v for v in per_view[1:] if v is not None]
    return {"epe": float(np.mean(seen)) if seen else 0.0, "epe_other_views": float(np.mean(others)) if others else 0.0,
            "per_view": per_view}


def flows_from_3d(
    points: np.ndarray,  # (N, 3) world, the whole point cloud
    velocity: np.ndarray,  # (N, 3) world units per frame
    views: Sequence[ViewMotion],
    intr: Intrinsics,
    moving: np.ndarray | None = None,  # (N,) bool; with per-pixel points: backward warp
    input_depth: np.ndarray | None = None,  # (H, W) input z-depth; default: the points' z (world = input camera)
) -> list[np.ndarray]:
    """The 3D motion drawn into every view: (H, W, 2) float32 per view, inside the view's mask.

    Per-pixel points (N = H * W, as `camera.unproject_depth` gives them) with `moving` given: backward warp
    (`lifting.warp_flow_to_view`, smooth, sub-pixel); otherwise the z-buffered forward splat
    (`lifting.render_flow`)."""
    h, w = intr.height, intr.width
    if moving is not None and len(points) == h * w:
        depth = np.asarray(points, np.float64)[:, 2].reshape(h, w) if input_depth is None else input_depth
        return [warp_flow_to_view(velocity, moving, depth, intr, v.c2w, v.depth, v.mask) for v in views]
    return [render_flow(points, velocity, intr, v.c2w, mask=v.mask)[0] for v in views]
