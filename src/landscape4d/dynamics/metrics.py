"""How well the 4D scene moves and loops, measured on rendered frames: the flow-consistency EPE of its video against
the 3D motion projected into the same view (the paper's Table III); the loop seam (the step from the last frame
back to the first against the ordinary frame-to-frame step, `evaluation.metrics.loop_seam_step`) and the coverage
(mean accumulated opacity) inside the moving region over one loop, at a fixed camera."""

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


@torch.no_grad()
def render_loop(scene, K: torch.Tensor, c2w: np.ndarray, width: int, height: int,
                backend: str = "torch") -> tuple[np.ndarray, np.ndarray]:
    """One loop at a fixed camera: frames f = 0..N-1 at t = f / N (the frames a looping video plays).

    scene: a dynamics.model.Scene4D; K (3, 3). Returns colour (N, H, W, 3) float32 in [0, 1] (over black) and
    accumulated opacity (N, H, W) float32."""
    from .train import render_scene

    n = scene.num_frames
    color = np.empty((n, height, width, 3), np.float32)
    alpha = np.empty((n, height, width), np.float32)
    for f in range(n):
        out = render_scene(scene, f / n, K, c2w, width, height, backend)
        color[f] = out.color.clamp(0, 1).float().cpu().numpy()
        alpha[f] = out.alpha[..., 0].float().cpu().numpy()
    return color, alpha


def loop_metrics(color: np.ndarray, alpha: np.ndarray, mask: np.ndarray) -> dict:
    """Seam and coverage of one loop rendered at a fixed camera, inside the moving region `mask` (H, W) bool.

    color (N, H, W, 3) in [0, 1]; alpha (N, H, W). seam_step / mean_step: mean |grey difference| (0-255) of the
    wrap-around (frame N-1 -> frame 0) and of consecutive frames; seam_ratio = seam_step / mean_step (about 1 for a
    seamless loop); seam_ratio_neighbours = seam_step / the mean of the two steps beside it. alpha_*: mean opacity over the mask per frame; alpha_range = (max - min) / value at t = 0."""
    from ..evaluation.metrics import loop_seam_step

    mask = np.asarray(mask, bool)
    seam = loop_seam_step(color, mask)
    cover = alpha[:, mask].mean(axis=1) if mask.any() else np.ones(len(alpha))
    a0 = float(cover[0])
    return {"seam_step": round(seam.seam, 4), "mean_step": round(seam.step, 4), "seam_ratio": round(seam.ratio, 4),
            "seam_ratio_neighbours": round(seam.ratio_neighbours, 4), "alpha_t0": round(a0, 5), "alpha_min": round(float(cover.min()), 5),
            "alpha_max": round(float(cover.max()), 5),
            "alpha_range": round(float(cover.max() - cover.min()) / max(a0, 1e-12), 5),
            "frames": int(len(color)), "mask_pixels": int(mask.sum())}
