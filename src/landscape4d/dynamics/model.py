"""The 4D Gaussian scene: static 3D Gaussians plus, for moving ones, motion over one loop.

A moving Gaussian i is evaluated at loop time t through tau = t mod 1 and its phase p_i (0 or 1):

    position(t) = mean + velocity * N * (tau - p) + sum_k a_k sin(2 pi k tau) + b_k cos(2 pi k tau)
    rotation(t) = normalise(quat + Fourier residual(tau))
    log scale(t) = log_scale + Fourier residual(tau)
    opacity(t)  = sigmoid(logit) * |1 - p - tau|

N is the number of frames in a loop and velocity is in world units per frame (the refined 3D motion). Every
moving Gaussian has a twin one loop behind it: the original (p = 0) starts at its place and flows forward with
weight 1 - tau; the twin (p = 1) arrives at that place at the end of the loop with weight tau. This is the 3D form
of the 2D symmetric splatting (forward from frame 0, backward from frame N, blended with 1 - t/N): the weights
always sum to 1 and each Gaussian jumps back only when its weight is 0, so the scene loops seamlessly.
Static Gaussians have phase 0, velocity 0, no residual and weight 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch


@dataclass
class Scene4D:
    means: torch.Tensor  # (N, 3) position at tau = phase (the original's place at t = 0)
    quats: torch.Tensor  # (N, 4) wxyz
    log_scales: torch.Tensor  # (N, 3)
    opacity_logits: torch.Tensor  # (N,)
    sh: torch.Tensor  # (N, K, 3) spherical-harmonic colour coefficients (K = 1: DC only)
    velocity: torch.Tensor  # (N, 3) world units per frame
    phase: torch.Tensor  # (N,) 0 for originals and static Gaussians, 1 for the twins of moving ones
    moving: torch.Tensor  # (N,) bool
    pos_coef: torch.Tensor  # (N, 2F, 3) Fourier residual of position: sin then cos for k = 1..F
    rot_coef: torch.Tensor  # (N, 2F, 4)
    scale_coef: torch.Tensor  # (N, 2F, 3)
    num_frames: int

    TENSORS = ("means", "quats", "log_scales", "opacity_logits", "sh", "velocity", "phase", "moving", "pos_coef",
               "rot_coef", "scale_coef")

    @property
    def fourier_order(self) -> int:
        return self.pos_coef.shape[1] // 2

    def __len__(self) -> int:
        return self.means.shape[0]

    def to(self, device) -> "Scene4D":
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return Scene4D(**{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in kw.items()})

    def detach(self) -> "Scene4D":
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return Scene4D(**{k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()})


@dataclass
class GaussiansAt:
    """Gaussian parameters at one moment, ready for the rasterizer."""

    means: torch.Tensor  # (N, 3)
    quats: torch.Tensor  # (N, 4)
    scales: torch.Tensor  # (N, 3) linear
    opacities: torch.Tensor  # (N,) in [0, 1]
    colors: torch.Tensor  # (N, K, 3) SH or (N, 3)


def fourier_basis(tau: torch.Tensor, order: int) -> torch.Tensor:
    """tau (N,) -> (N, 2F): sin(2 pi k tau) for k = 1..F, then cos(2 pi k tau)."""
    k = torch.arange(1, order + 1, device=tau.device, dtype=tau.dtype)
    ang = 2 * math.pi * tau[:, None] * k[None, :]
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)


def loop_time(scene: Scene4D, t: float) -> torch.Tensor:
    """(N,) tau = t mod 1, one per Gaussian."""
    return torch.remainder(torch.full_like(scene.phase, float(t)), 1.0)


def gaussians_at(scene: Scene4D, t: float) -> GaussiansAt:
    """Evaluate every Gaussian at loop time t in [0, 1) (vectorised over Gaussians)."""
    tau = loop_time(scene, t)
    mov = scene.moving.to(scene.means.dtype)[:, None]  # (N, 1)
    basis = fourier_basis(tau, scene.fourier_order)  # (N, 2F)
    drift = scene.velocity * (scene.num_frames * (tau - scene.phase))[:, None]
    res_pos = torch.einsum("nf,nfc->nc", basis, scene.pos_coef)
    res_rot = torch.einsum("nf,nfc->nc", basis, scene.rot_coef)
    res_scale = torch.einsum("nf,nfc->nc", basis, scene.scale_coef)
    means = scene.means + mov * (drift + res_pos)
    quats = scene.quats + mov * res_rot
    scales = torch.exp(scene.log_scales + mov * res_scale)
    weight = torch.where(scene.moving, torch.abs(1 - scene.phase - tau), torch.ones_like(tau))
    opacities = torch.sigmoid(scene.opacity_logits) * weight
    return GaussiansAt(means, quats, scales, opacities, scene.sh)


def gaussian_at_reference(scene: Scene4D, i: int, t: float) -> tuple[list[float], list[float], list[float], float]:
    """The same formula for one Gaussian with plain Python floats (the pure reference of `gaussians_at`)."""
    tau = t % 1.0
    phase = float(scene.phase[i])
    n = scene.num_frames
    order = scene.fourier_order
    basis = [math.sin(2 * math.pi * k * tau) for k in range(1, order + 1)] + \
            [math.cos(2 * math.pi * k * tau) for k in range(1, order + 1)]
    mov = bool(scene.moving[i])

    def residual(coef: torch.Tensor, c: int) -> float:
        return sum(basis[f] * float(coef[i, f, c]) for f in range(2 * order)) if mov else 0.0

    pos = [float(scene.means[i, c]) + ((float(scene.velocity[i, c]) * n * (tau - phase)) if mov else 0.0)
           + residual(scene.pos_coef, c) for c in range(3)]
    quat = [float(scene.quats[i, c]) + residual(scene.rot_coef, c) for c in range(4)]
    scale = [math.exp(float(scene.log_scales[i, c]) + residual(scene.scale_coef, c)) for c in range(3)]
    weight = abs(1 - phase - tau) if mov else 1.0
    opacity = 1 / (1 + math.exp(-float(scene.opacity_logits[i]))) * weight
    return pos, quat, scale, opacity
