"""3D motion refinement: one 3D velocity per moving point, consistent with the 2D motion of every view.

Objective (minimised with Adam, full batch, cosine learning-rate decay to 1% of `cfg.refine_lr`):

    E(V) = 1/M sum_k sum_{i visible in k} | proj_k(p_i + v_i) - proj_k(p_i) - F_k(proj_k(p_i)) |_1
         + smooth_weight / M sum_{(i, j) neighbours} | (v_i - v_j) / s_ij |^2

- M moving points p_i, views k with pose c2w_k and 2D flow F_k (px/frame), sampled mask-aware bilinearly at the
  point's projection (`geometry.sample_flow`). A point is used in view k when it passes the z-test against the
  view's rendered depth (relative tolerance `cfg.visibility_tol`) and lands inside the view's mask.
- The 2D motion is computed without cancellation: with camera coordinates (X, Y, Z) of p and (dX, dY, dZ) of v,
  du = fx (dX Z - X dZ) / (Z (Z + dZ)), dv likewise.
- Velocities are optimised in pixel units at each point's depth: v_i = v0_i + s_i w_i with s_i = z_i / fx, so the
  learning rate is in px/frame whatever the scene scale. s_ij = (s_i + s_j) / 2 makes the smoothness term a
  squared px/frame difference.
- Neighbours: the 4-neighbour pixel grid when the points are one per input pixel (N = H * W of `intr`), pairs
  across a depth edge (|log(z_i / z_j)| > 0.05) excluded; otherwise a 6-nearest-neighbour graph (cKDTree).
- Initialisation: `init_velocity` (the input view's lift, `lifting.lift_motion`). Static points keep 0, and so
  do moving points without a finite, positive depth (world z = input-camera depth).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from ..camera import Intrinsics, w2c_from_c2w
from ..config import MotionConfig
from .geometry import ViewMotion, sample_flow, sample_flow_reference, visible_in_view

DEPTH_EDGE = 0.05  # |log(z_i / z_j)| above which grid neighbours are not smoothed together
KNN = 6


@dataclass
class RefineInfo:
    iters: int
    moving_points: int
    pairs: int  # (point, view) pairs in the data term
    mean_views_per_point: float
    unseen_points: int  # moving points no view constrains (they follow the smoothness term only)
    loss_start: float
    loss_end: float
    data_epe_start: float  # mean end-point error |motion - target| px/frame over the pairs, at the initialisation
    data_epe_end: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RefineProblem:
    """Everything the loss needs, as tensors (V views, M moving points, E edges)."""

    cam: torch.Tensor  # (V, M, 3) moving points in each camera
    rot: torch.Tensor  # (V, 3, 3) world -> camera rotations
    target: torch.Tensor  # (V, M, 2) sampled 2D flow, px/frame
    weight: torch.Tensor  # (V, M) 1 where the point is used in the view
    scale: torch.Tensor  # (M,) world units per pixel at the point's depth (z / fx)
    edges: torch.Tensor  # (E, 2) long, indices into the moving points
    edge_scale: torch.Tensor  # (E,)
    fx: float
    fy: float

    @property
    def num_points(self) -> int:
        return int(self.scale.shape[0])


def neighbor_edges(points: np.ndarray, moving: np.ndarray, grid_shape: tuple[int, int] | None) -> np.ndarray:
    """Smoothness graph (E, 2) over the moving points (indices into points[moving]), see module docstring."""
    idx = np.flatnonzero(moving)
    m = len(idx)
    if m < 2:
        return np.zeros((0, 2), np.int64)
    if grid_shape is not None:
        h, w = grid_shape
        sub = np.full(h * w, -1, np.int64)
        sub[idx] = np.arange(m)
        sub = sub.reshape(h, w)
        z = np.asarray(points, np.float64)[:, 2].reshape(h, w)
        pairs = []
        for a, b, za, zb in ((sub[:, :-1], sub[:, 1:], z[:, :-1], z[:, 1:]), (sub[:-1], sub[1:], z[:-1], z[1:])):
            with np.errstate(divide="ignore", invalid="ignore"):
                ok = (a >= 0) & (b >= 0) & (np.abs(np.log(za / zb)) <= DEPTH_EDGE)
            pairs.append(np.stack([a[ok], b[ok]], axis=1))
        return np.concatenate(pairs)
    pts = np.asarray(points, np.float64)[idx]
    k = min(KNN + 1, m)
    _, nn = cKDTree(pts).query(pts, k=k)
    i = np.repeat(np.arange(m), k - 1)
    j = nn[:, 1:].reshape(-1)
    e = np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1)
    e = e[e[:, 0] != e[:, 1]]
    return np.unique(e, axis=0)


def _grid_shape(n: int, intr: Intrinsics, grid_shape: tuple[int, int] | None) -> tuple[int, int] | None:
    if grid_shape is not None:
        return grid_shape
    return (intr.height, intr.width) if n == intr.height * intr.width else None


def build_problem(
    points: np.ndarray,  # (N, 3) world
    moving: np.ndarray,  # (N,) bool
    views: Sequence[ViewMotion],
    intr: Intrinsics,
    cfg: MotionConfig,
    grid_shape: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
) -> RefineProblem:
    points = np.asarray(points, np.float64)
    moving = np.asarray(moving, bool).reshape(-1)
    idx = np.flatnonzero(moving)
    p = points[idx]  # (M, 3)
    cams, rots, targets, weights = [], [], [], []
    for view in views:
        if view.flow is None:
            raise ValueError("refine_motion needs a flow in every view")
        uv, _, vis = visible_in_view(p, view, intr, tol=cfg.visibility_tol, use_mask=False)
        tgt, ok = sample_flow(view.flow, view.mask, uv)  # ok: the point's pixel is in the view's mask
        w2c = w2c_from_c2w(np.asarray(view.c2w, np.float64))
        cams.append(p @ w2c[:3, :3].T + w2c[:3, 3])
        rots.append(w2c[:3, :3])
        targets.append(tgt)
        weights.append((vis & ok).astype(np.float64))
    scale = p[:, 2] / intr.fx
    edges = neighbor_edges(points, moving, _grid_shape(len(points), intr, grid_shape))
    edge_scale = 0.5 * (scale[edges[:, 0]] + scale[edges[:, 1]]) if len(edges) else np.zeros(0)
    dt = torch.float32

    def t(a):
        return torch.as_tensor(np.asarray(a), dtype=dt, device=device)

    return RefineProblem(
        cam=t(np.stack(cams)) if cams else torch.zeros((0, len(idx), 3), dtype=dt, device=device),
        rot=t(np.stack(rots)) if rots else torch.zeros((0, 3, 3), dtype=dt, device=device),
        target=t(np.stack(targets)) if targets else torch.zeros((0, len(idx), 2), dtype=dt, device=device),
        weight=t(np.stack(weights)) if weights else torch.zeros((0, len(idx)), dtype=dt, device=device),
        scale=t(scale),
        edges=torch.as_tensor(edges, dtype=torch.long, device=device),
        edge_scale=t(edge_scale),
        fx=float(intr.fx),
        fy=float(intr.fy),
    )


def motion_in_views(prob: RefineProblem, velocity: torch.Tensor) -> torch.Tensor:
    """2D motion (V, M, 2) of the moving points with 3D velocity (M, 3) in every view."""
    d = torch.einsum("kab,mb->kma", prob.rot, velocity)  # (V, M, 3)
    x, y, z = prob.cam.unbind(-1)
    dx, dy, dz = d.unbind(-1)
    z1 = z + dz
    den = z * torch.where(z1.abs() < 1e-8, torch.full_like(z1, 1e-8), z1)
    du = prob.fx * (dx * z - x * dz) / den
    dv = prob.fy * (dy * z - y * dz) / den
    return torch.stack([du, dv], dim=-1)


def problem_loss(prob: RefineProblem, velocity: torch.Tensor, smooth_weight: float) -> torch.Tensor:
    """E(V) of the module docstring for velocity (M, 3)."""
    m = max(prob.num_points, 1)
    res = (motion_in_views(prob, velocity) - prob.target).abs().sum(-1)  # (V, M)
    data = (prob.weight * res).sum() / m
    if prob.edges.shape[0] == 0 or smooth_weight == 0:
        return data
    diff = (velocity[prob.edges[:, 0]] - velocity[prob.edges[:, 1]]) / prob.edge_scale[:, None]
    return data + smooth_weight * (diff * diff).sum() / m


def _data_epe(prob: RefineProblem, velocity: torch.Tensor) -> float:
    err = torch.linalg.norm(motion_in_views(prob, velocity) - prob.target, dim=-1)
    n = prob.weight.sum()
    return float((prob.weight * err).sum() / n) if float(n) > 0 else 0.0


def refine_motion(
    points: np.ndarray,  # (N, 3) world, e.g. camera.unproject_depth of the input depth
    moving: np.ndarray,  # (N,) bool
    init_velocity: np.ndarray,  # (N, 3) world units per frame
    views: Sequence[ViewMotion],  # c2w, flow, mask, depth per view
    intr: Intrinsics,
    cfg: MotionConfig | None = None,
    *,
    grid_shape: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, RefineInfo]:
    """Refined 3D velocity (N, 3) float32 (0 for static points) and a RefineInfo. See the module docstring."""
    cfg = cfg if cfg is not None else MotionConfig()
    t0 = time.perf_counter()
    points = np.asarray(points, np.float64)
    moving = np.asarray(moving, bool).reshape(-1)
    init_velocity = np.asarray(init_velocity, np.float64)
    if points.shape != init_velocity.shape or points.shape != (len(moving), 3):
        raise ValueError(f"points {points.shape}, moving {moving.shape} and init_velocity {init_velocity.shape} "
                         "must agree as (N, 3), (N,), (N, 3)")
    out = np.zeros_like(points, dtype=np.float32)
    with np.errstate(invalid="ignore"):  # points without a valid depth cannot be optimised; they keep 0
        moving = moving & np.isfinite(points).all(axis=1) & (points[:, 2] > 0)
    init_velocity = np.nan_to_num(init_velocity, nan=0.0, posinf=0.0, neginf=0.0)
    idx = np.flatnonzero(moving)
    if len(idx) == 0:
        return out, RefineInfo(0, 0, 0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, time.perf_counter() - t0)
    prob = build_problem(points, moving, views, intr, cfg, grid_shape, device)
    v0 = torch.as_tensor(init_velocity[idx], dtype=torch.float32, device=device)
    w = torch.zeros_like(v0, requires_grad=True)
    iters = max(0, int(cfg.refine_iters))
    opt = torch.optim.Adam([w], lr=cfg.refine_lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(i, iters) / max(iters, 1))))
    scale = prob.scale[:, None]
    with torch.no_grad():
        loss_start = float(problem_loss(prob, v0, cfg.smooth_weight))
        epe_start = _data_epe(prob, v0)
    for _ in range(iters):
        opt.zero_grad(set_to_none=True)
        loss = problem_loss(prob, v0 + scale * w, cfg.smooth_weight)
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        v = v0 + scale * w
        loss_end = float(problem_loss(prob, v, cfg.smooth_weight))
        epe_end = _data_epe(prob, v)
    out[idx] = v.cpu().numpy()
    seen = prob.weight.sum(0)
    info = RefineInfo(
        iters=iters,
        moving_points=len(idx),
        pairs=int(prob.weight.sum()),
        mean_views_per_point=float(seen.mean()),
        unseen_points=int((seen == 0).sum()),
        loss_start=loss_start,
        loss_end=loss_end,
        data_epe_start=epe_start,
        data_epe_end=epe_end,
        seconds=time.perf_counter() - t0,
    )
    return out, info


def refinement_loss(points: np.ndarray, moving: np.ndarray, velocity: np.ndarray, views: Sequence[ViewMotion],
                    intr: Intrinsics, cfg: MotionConfig, grid_shape: tuple[int, int] | None = None) -> float:
    """E(V) for a full velocity array (N, 3), through the fast path (for tests and diagnostics)."""
    moving = np.asarray(moving, bool).reshape(-1)
    prob = build_problem(points, moving, views, intr, cfg, grid_shape)
    v = torch.as_tensor(np.asarray(velocity, np.float64)[moving], dtype=torch.float32)
    with torch.no_grad():
        return float(problem_loss(prob, v, cfg.smooth_weight))


def refinement_loss_reference(points: np.ndarray, moving: np.ndarray, velocity: np.ndarray,
                              views: Sequence[ViewMotion], intr: Intrinsics, cfg: MotionConfig) -> float:
    """Loop version of E(V) for points that are one per pixel of `intr` (grid neighbours), for tests on tiny
    inputs: per-point projection, z-test, mask check, mask-aware bilinear sampling, finite-difference motion."""
    h, w = intr.height, intr.width
    pts = np.asarray(points, np.float64)
    vel = np.asarray(velocity, np.float64)
    mov = np.asarray(moving, bool).reshape(-1)
    m = int(mov.sum())
    data = 0.0
    for view in views:
        w2c = w2c_from_c2w(np.asarray(view.c2w, np.float64))
        for n in np.flatnonzero(mov):
            cam = w2c[:3, :3] @ pts[n] + w2c[:3, 3]
            if cam[2] <= 0:
                continue
            u, v = intr.fx * cam[0] / cam[2] + intr.cx, intr.fy * cam[1] / cam[2] + intr.cy
            r, c = int(np.floor(v)), int(np.floor(u))
            if not (0 <= r < h and 0 <= c < w):
                continue
            d = float(view.depth[r, c])
            if not (np.isfinite(d) and d > 0 and cam[2] <= d * (1 + cfg.visibility_tol) and view.mask[r, c]):
                continue
            tgt, ok = sample_flow_reference(view.flow, view.mask, np.array([[u, v]]))
            if not ok[0]:
                continue
            cam1 = w2c[:3, :3] @ (pts[n] + vel[n]) + w2c[:3, 3]
            u1, v1 = intr.fx * cam1[0] / cam1[2] + intr.cx, intr.fy * cam1[1] / cam1[2] + intr.cy
            data += abs(u1 - u - tgt[0, 0]) + abs(v1 - v - tgt[0, 1])
    smooth = 0.0
    z = pts[:, 2].reshape(h, w)
    for i in range(h):
        for j in range(w):
            a = i * w + j
            for b, (ii, jj) in ((a + 1, (i, j + 1)), (a + w, (i + 1, j))):
                if ii >= h or jj >= w or not (mov[a] and mov[b]):
                    continue
                if abs(math.log(z[i, j] / z[ii, jj])) > DEPTH_EDGE:
                    continue
                s = 0.5 * (pts[a, 2] + pts[b, 2]) / intr.fx
                smooth += float(np.sum(((vel[a] - vel[b]) / s) ** 2))
    return (data + cfg.smooth_weight * smooth) / max(m, 1)
