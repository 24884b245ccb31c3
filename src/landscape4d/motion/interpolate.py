"""Dense 2D motion from sparse hints: the velocity field M (H, W, 2), px/frame, of one view.

`dense_motion_from_hints` is the entry point. Two interpolators:

- `laplace` (default): harmonic interpolation on the 4-neighbour graph of the mask pixels. Hint pixels are
  Dirichlet constraints; every other mask pixel takes the mean of its mask neighbours (graph Laplacian = 0), so the
  field is smooth inside the mask and never couples pixels across a mask boundary (zero-flux / Neumann boundary).
  Solved exactly with one sparse LU factorisation (both components at once).
  A 4-connected mask component with no hint in it cannot be solved that way; it gets, per `cfg.unhinted`:
  `nearest` (default) the constant velocity of the hint pixel nearest to the component, `mean` the mean hint
  velocity, `zero` no motion.
- `rbf`: thin-plate-spline radial basis interpolation of the hint velocities (scipy RBFInterpolator, linear
  polynomial term), evaluated at the mask pixels. Smooth across the whole image, ignores mask topology.

Both return exactly the hint velocity on hint pixels and exactly 0 outside the mask.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy import ndimage
from scipy.interpolate import RBFInterpolator
from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree

from ..config import INTERPOLATIONS, UNHINTED, MotionConfig
from ..errors import InputError
from .hints import HintConstraints, as_arrows, check_speed, direction_velocity, hint_constraints


def dense_motion_from_hints(
    mask: np.ndarray,  # (H, W) bool
    arrows: np.ndarray | None,  # (K, 2, 2) [start (u, v), end (u, v)] pixels, or None / empty
    cfg: MotionConfig | None = None,
    *,
    source: str | Path | None = None,
    warn: bool = True,
) -> np.ndarray:
    """Dense velocity field M (H, W, 2) float32, px/frame, from hint arrows inside `mask`.

    Without arrows, `cfg.direction` (and `cfg.speed`) gives one constant velocity to the whole mask; with arrows
    the direction is ignored (warning) unless none of the arrows is usable. An empty mask gives zeros.
    Raises InputError(source, ...) when the mask is not empty and there is neither a usable hint nor a direction.
    `source` names the hints file in error messages. Hint rasterisation rules: `landscape4d.motion.hints`.
    """
    cfg = cfg if cfg is not None else MotionConfig()
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got {mask.shape}")
    mask = mask.astype(bool)
    check_speed(cfg)
    arrows = as_arrows(arrows, source)
    h, w = mask.shape
    out = np.zeros((h, w, 2), np.float32)
    if not mask.any():
        if warn and len(arrows):
            warnings.warn("the motion mask is empty: motion hints ignored", stacklevel=2)
        return out

    cons = hint_constraints(mask, arrows, cfg, warn=warn) if len(arrows) else None
    if cons is None or len(cons) == 0:
        dv = direction_velocity(cfg)
        if dv is None:
            if len(arrows):
                raise InputError(source, f"none of the {len(arrows)} motion hints is usable (all start outside "
                                 "the image or have no direction); draw hints inside the motion mask")
            raise InputError(source, "no motion hints and no motion direction: draw at least one hint arrow in "
                             "the motion mask, or give a direction (and speed) for the whole mask")
        out[mask] = dv.astype(np.float32)
        return out
    if warn and cfg.direction is not None:
        warnings.warn("motion hints given: motion.direction is ignored", stacklevel=2)

    if cfg.interpolation == "laplace":
        if cfg.unhinted not in UNHINTED:
            raise InputError(None, f"motion.unhinted must be one of {', '.join(UNHINTED)}, got {cfg.unhinted!r}")
        field = laplace_interpolate(mask, cons, unhinted=cfg.unhinted)
    elif cfg.interpolation == "rbf":
        field = rbf_interpolate(mask, cons)
    else:
        raise InputError(None, f"motion.interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                         f"got {cfg.interpolation!r}")
    field[~mask] = 0.0
    out[:] = field.astype(np.float32)
    out[cons.rows, cons.cols] = cons.velocity.astype(np.float32)
    return out


def _mask_graph(mask: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
    """Index map (H, W) (-1 off mask) and the symmetric 0/1 adjacency (n, n) of 4-neighbouring mask pixels."""
    h, w = mask.shape
    idx = np.full((h, w), -1, np.int64)
    n = int(mask.sum())
    idx[mask] = np.arange(n)
    pairs = []
    for a, b in ((idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])):
        ok = (a >= 0) & (b >= 0)
        pairs.append(np.stack([a[ok], b[ok]], axis=1))
    e = np.concatenate(pairs)  # (E, 2)
    i = np.concatenate([e[:, 0], e[:, 1]])
    j = np.concatenate([e[:, 1], e[:, 0]])
    adj = sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return idx, adj


def laplace_interpolate(
    mask: np.ndarray,  # (H, W) bool
    cons: HintConstraints,
    unhinted: str = "nearest",
) -> np.ndarray:
    """Harmonic interpolation of the constraint velocities over the mask graph -> (H, W, 2) float64.

    Solves L_FF x_F = A_FC x_C (graph Laplacian L = D - A, F = free pixels of hinted components, C = constraint
    pixels) with a sparse LU. Components without a constraint: see the module docstring."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    field = np.zeros((h, w, 2))
    if len(cons) == 0 or not mask.any():
        return field
    idx, adj = _mask_graph(mask)
    n = adj.shape[0]
    labels, _ = ndimage.label(mask)  # default structure = 4-connectivity, same graph as `adj`
    comp = labels[mask]  # (n,) component of each mask pixel, 1-based
    c_lin = idx[cons.rows, cons.cols]
    is_con = np.zeros(n, bool)
    is_con[c_lin] = True
    hinted = np.zeros(comp.max() + 1, bool)
    hinted[comp[c_lin]] = True
    free = np.flatnonzero(~is_con & hinted[comp])

    x = np.zeros((n, 2))
    x[c_lin] = cons.velocity
    if len(free):
        deg = np.asarray(adj.sum(axis=1)).ravel()
        lap_ff = (sp.diags(deg[free]) - adj[free][:, free]).tocsc()
        rhs = adj[free][:, c_lin] @ cons.velocity  # (F, 2)
        x[free] = splu(lap_ff).solve(np.ascontiguousarray(rhs))

    lost = np.flatnonzero(~hinted[comp])
    if len(lost) and unhinted != "zero":
        if unhinted == "mean":
            x[lost] = cons.velocity.mean(axis=0)
        else:  # nearest: one constant per component, the value of the hint pixel closest to the component
            pix = np.argwhere(mask)[lost]  # (L, 2) rows, cols of unhinted pixels
            dist, nn = cKDTree(np.stack([cons.rows, cons.cols], 1)).query(pix)
            order = np.lexsort((dist, comp[lost]))
            first_comp, first = np.unique(comp[lost][order], return_index=True)
            best = np.zeros(comp.max() + 1, np.int64)
            best[first_comp] = nn[order[first]]
            x[lost] = cons.velocity[best[comp[lost]]]
    field[mask] = x
    return field


def laplace_interpolate_reference(
    mask: np.ndarray,  # (H, W) bool
    cons: HintConstraints,
    iters: int = 20000,
) -> np.ndarray:
    """Jacobi iteration of the same harmonic problem (every free pixel = mean of its mask neighbours), for tests
    on small masks where every component has a hint. Returns (H, W, 2)."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    fixed = np.zeros((h, w), bool)
    fixed[cons.rows, cons.cols] = True
    x = np.zeros((h, w, 2))
    x[cons.rows, cons.cols] = cons.velocity
    m = np.pad(mask, 1).astype(np.float64)
    count = m[:-2, 1:-1] + m[2:, 1:-1] + m[1:-1, :-2] + m[1:-1, 2:]
    update = mask & ~fixed & (count > 0)
    for _ in range(iters):
        p = np.pad(x * mask[..., None], ((1, 1), (1, 1), (0, 0)))
        s = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
        x[update] = s[update] / count[update][:, None]
    x[~mask] = 0
    return x


def rbf_interpolate(mask: np.ndarray, cons: HintConstraints) -> np.ndarray:
    """Thin-plate-spline RBF interpolation of the constraint velocities, evaluated on the mask -> (H, W, 2).

    Fewer than 3 constraint pixels (or collinear ones, where the linear term is undetermined): the linear kernel
    with a constant term; one constraint: its value everywhere."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    field = np.zeros((h, w, 2))
    if len(cons) == 0 or not mask.any():
        return field
    centres = np.stack([cons.cols + 0.5, cons.rows + 0.5], axis=1)  # (C, 2) (u, v)
    targets = np.argwhere(mask)[:, ::-1] + 0.5  # (P, 2) (u, v)
    if len(cons) == 1:
        field[mask] = cons.velocity[0]
        return field
    neighbors = None if len(cons) <= 2000 else 64
    collinear = len(cons) < 3 or np.linalg.matrix_rank(centres - centres.mean(0), tol=1e-6) < 2
    if collinear:
        interp = RBFInterpolator(centres, cons.velocity, kernel="linear", degree=0, neighbors=neighbors)
    else:
        interp = RBFInterpolator(centres, cons.velocity, kernel="thin_plate_spline", degree=1, neighbors=neighbors)
    field[mask] = interp(targets)
    return field
