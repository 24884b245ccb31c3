"""3D motion error against the ground truth of a synthetic scene.

The synthetic renderer knows the true world velocity of every surface point (`SceneRenderer.world_velocity`);
`SyntheticScene.save` writes it per input pixel as motion3d.npy (H, W, 3) world units per frame, beside depth.npy.
A run's 3D motion is per input pixel too (RUN/motion/points_motion.npy, refined; points_motion_init.npy, the input
view's estimate lifted at constant depth, before refinement; (H*W, 3) in the run's world units per frame).

The run's depth has its own scale (a monocular depth is known up to scale), and so has its velocity, so the run's
motion is first brought to the GT's units by s = median over the mask of depth_gt / depth_run (1 with the oracle
depth). Over the GT motion mask (pixels whose GT speed is > 0 and whose depths are valid):
  epe          mean |s v_run - v_gt| (GT world units per frame)
  relative_epe epe / mean |v_gt|
  angle_deg    mean angle between v_run and v_gt (degrees; 90 where the run's motion is zero)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError


def resize_field(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, C) or (h, w) field -> (height, width, ...) bilinear (values are not rescaled)."""
    if x.shape[:2] == (height, width):
        return x
    return cv2.resize(x.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def motion3d_error(v_run: np.ndarray, depth_run: np.ndarray, v_gt: np.ndarray, depth_gt: np.ndarray,
                   mask: np.ndarray) -> dict:
    """v_run, v_gt (H, W, 3) per frame; depth_run, depth_gt (H, W); mask (H, W) bool. See the module docstring."""
    valid = mask & np.isfinite(depth_run) & (depth_run > 0) & np.isfinite(depth_gt) & (depth_gt > 0)
    valid &= np.isfinite(v_run).all(axis=-1) & (np.linalg.norm(v_gt, axis=-1) > 0)
    if not valid.any():
        return {"pixels": 0}
    scale = float(np.median(depth_gt[valid] / depth_run[valid]))
    a = v_run[valid].astype(np.float64) * scale
    b = v_gt[valid].astype(np.float64)
    err = np.linalg.norm(a - b, axis=-1)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    cos = np.where(na > 0, (a * b).sum(-1) / np.maximum(na * nb, 1e-30), 0.0)
    return {"epe": float(err.mean()), "relative_epe": float(err.mean() / nb.mean()),
            "angle_deg": float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()), "depth_scale": scale,
            "gt_mean_speed": float(nb.mean()), "pixels": int(valid.sum())}


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(path, f"not a readable .npy array ({e or 'empty file'})") from None


def motion3d_metrics(run_dir: Path, gt_dir: Path) -> dict:
    """Flat floats for eval.json's motion section: motion3d_{epe,relative_epe,angle_deg}_{refined,initial} (see
    `motion3d_error`; refined: RUN/motion/points_motion.npy, initial: points_motion_init.npy, the input view's
    estimate lifted before refinement) and motion3d_depth_scale. {} when the GT folder has no motion3d.npy."""
    from ..artifacts import load_depth

    if not (gt_dir / "motion3d.npy").is_file():
        return {}
    v_gt = _load(gt_dir / "motion3d.npy").astype(np.float32)
    depth_gt = _load(gt_dir / "depth.npy").astype(np.float32)
    h, w = v_gt.shape[:2]
    mask = np.linalg.norm(v_gt, axis=-1) > 0
    dr = load_depth(run_dir)
    depth_run = resize_field(dr.depth.astype(np.float32), h, w)
    out = {}
    for key, name in (("refined", "points_motion.npy"), ("initial", "points_motion_init.npy")):
        path = run_dir / "motion" / name
        if path.is_file():
            v = _load(path).astype(np.float32).reshape(*dr.depth.shape, 3)
            err = motion3d_error(resize_field(v, h, w), depth_run, v_gt, depth_gt, mask)
            out.update({f"motion3d_{k}_{key}": err[k] for k in ("epe", "relative_epe", "angle_deg") if k in err})
            if "depth_scale" in err:
                out["motion3d_depth_scale"] = err["depth_scale"]
    return out


def consistency_metrics(cons: dict) -> dict:
    """Flat floats from RUN/motion/consistency.json: views_epe_{initial,refined}_3d (EPE between each view's
    independent 2D estimate and the 3D motion projected into it, before and after refinement),
    consistency_epe_before (the independent estimates' multi-view consistency, the paper's Table II "before") and
    consistency_epe_after_by_construction (the same of the maps drawn from the one refined 3D motion: near zero by
    construction). A consistency.json of an older run (before/after only) gives the last two."""
    agree = cons.get("agreement_with_views") or {}
    out = {f"views_epe_{k}_3d": float(agree[k]["epe"]) for k in ("initial", "refined") if k in agree}
    before = cons.get("independent_flows_consistency") or cons.get("before")
    after = cons.get("refined_flows_consistency_by_construction") or cons.get("after")
    if before:
        out["consistency_epe_before"] = float(before["epe"])
    if after:
        out["consistency_epe_after_by_construction"] = float(after["epe"])
    return out
