"""How well the 4D scene moves: the flow-consistency EPE of its rendered video against the 3D motion projected
into the same view (the paper's Table III), and the loop closure."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..camera import project, w2c_from_c2w


def projected_motion(points: np.ndarray, velocity: np.ndarray, K: np.ndarray, c2w: np.ndarray, height: int,
                     width: int) -> np.ndarray:
    """2D motion (px/frame) of per-pixel 3D points in a view: project(p + v) - project(p).

    points, velocity (H*W, 3) world (one per pixel of that view, row-major). Returns (H, W, 2).
    """
    Kt = torch.as_tensor(K, dtype=torch.float64)
    w2c = torch.as_tensor(w2c_from_c2w(c2w), dtype=torch.float64)
    p = torch.as_tensor(points, dtype=torch.float64)
    uv0, _ = project(p, Kt, w2c)
    uv1, _ = project(p + torch.as_tensor(velocity, dtype=torch.float64), Kt, w2c)
    return (uv1 - uv0).numpy().reshape(height, width, 2).astype(np.float32)


def optical_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DIS optical flow (H, W, 2) from frame a to frame b, (H, W, 3) float in [0, 1]."""
    ga = cv2.cvtColor((np.clip(a, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor((np.clip(b, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(ga, gb, None)


def video_flow_epe(frames: np.ndarray, flow_true: np.ndarray, mask: np.ndarray, step: int = 1) -> float:
    """Mean end-point error (px/frame) between the optical flow of a rendered video and the expected motion.

    frames (T, H, W, 3) float; flow_true (H, W, 2) px/frame; mask (H, W) bool. Flow is measured between frames
    `step` apart and divided by `step`.
    """
    errs = []
    for i in range(0, len(frames) - step, step):
        f = optical_flow(frames[i], frames[i + step]) / step
        errs.append(np.linalg.norm(f - flow_true, axis=-1)[mask].mean())
    return float(np.mean(errs)) if errs else float("nan")


def loop_closure_error(first: np.ndarray, last_plus_one: np.ndarray) -> float:
    """Max absolute difference between the frame at t=0 and the frame at t=1 (which must be identical)."""
    return float(np.abs(first - last_plus_one).max())
