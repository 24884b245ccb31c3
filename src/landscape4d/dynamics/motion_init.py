"""Motion initialisation: static 3D Gaussians + refined per-point 3D motion -> a looping Scene4D."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from .model import Scene4D


def assign_point_motion(means: np.ndarray, points: np.ndarray, velocity: np.ndarray, moving: np.ndarray,
                        max_dist: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Each Gaussian takes the 3D velocity of its nearest point; it moves when that point moves and is close.

    means (G, 3); points (P, 3); velocity (P, 3); moving (P,) bool; max_dist scalar or (G,).
    Returns (velocity (G, 3), moving (G,) bool).
    """
    dist, idx = cKDTree(points).query(means, k=1)
    mov = moving[idx] & (dist <= max_dist)
    vel = np.where(mov[:, None], velocity[idx], 0.0)
    return vel.astype(np.float32), mov


def build_scene4d(means: torch.Tensor, quats: torch.Tensor, log_scales: torch.Tensor, opacity_logits: torch.Tensor,
                  sh: torch.Tensor, velocity: torch.Tensor, moving: torch.Tensor, num_frames: int, order: int,
                  motion_init: bool = True) -> Scene4D:
    """Start every moving Gaussian along its 3D velocity, with zero Fourier residual. Each Gaussian is stored once:
    the second, phase-1 draw of a moving one is made from the same parameters by `gaussians_at`.

    means (G, 3); quats (G, 4); log_scales (G, 3); opacity_logits (G,); sh (G, K, 3); velocity (G, 3) world units
    per frame; moving (G,) bool. With motion_init False the velocity starts at zero (the paper's ablation) and the
    deformation is learnt from the residual alone.
    """
    n = len(means)
    moving = moving.to(device=means.device, dtype=torch.bool).clone()
    vel = (velocity.to(means) * moving[:, None]) if motion_init else torch.zeros(n, 3, dtype=means.dtype,
                                                                                  device=means.device)
    zeros = lambda c: torch.zeros(n, 2 * order, c, dtype=means.dtype, device=means.device)  # noqa: E731
    return Scene4D(means.clone(), quats.clone(), log_scales.clone(), opacity_logits.clone(), sh.clone(), vel.clone(),
                   moving, zeros(3), zeros(4), zeros(3), int(num_frames))
