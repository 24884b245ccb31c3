"""The 4D Gaussian scene: static 3D Gaussians plus, for moving ones, motion over one loop.

Each Gaussian is stored once. A moving Gaussian is drawn twice from that ONE set of parameters, at phase p = 0 and
at phase p = 1 (one loop behind). At loop time t, with tau = t mod 1:

    position_p(t) = mean + velocity * N * (tau - p) + sum_k a_k sin(2 pi k tau) + b_k cos(2 pi k tau)
    rotation(t)   = normalise(quat + Fourier residual(tau))
    log scale(t)  = log_scale + Fourier residual(tau)
    opacity_p(t)  = 2 (1 - (1 - a / 2) ** (w_p m(tau - p))),   w_0 = cos^2(pi tau / 2),   w_1 = 1 - w_0,
                    m(s) = clamp(1 + (s - lo) / d, 0, 1) clamp(1 + (hi - s) / d, 0, 1),
                    a = OPACITY_MAX sigmoid(logit), at most 1 for a moving Gaussian

A static Gaussian's opacity may exceed 1 (a flat-topped footprint, gaussians/model.py); a moving one's is capped at
1, where the two draws' cross-fade keeps its coverage (above 1 the rasterizer's alpha clamp breaks that: +5 % of a
lone Gaussian's coverage mid-loop at a = 1.43).

N is the number of frames in a loop and velocity is in world units per frame (the refined 3D motion). The phase-0
draw starts at the Gaussian's place and flows forward while it fades out; the phase-1 draw arrives at that place
at the end of the loop while it fades in. This is the 3D form of the 2D symmetric splatting (forward from frame 0,
backward from frame N, cross-faded). Because both draws come from the same parameters, the phase-1 draw at
tau -> 1 IS the phase-0 draw at tau = 0 (same position, rotation, scale, colour and opacity: w = 1 gives a) and
the phase-0 draw at tau -> 1 has opacity 0, like the phase-1 draw at tau = 0: the scene at t -> 1 equals the scene
at t = 0 for any parameter values, trained or not.

Extent: a draw that has travelled s = tau - p loops (s in [-1, 1]) is shown only while s lies in the Gaussian's
`extent` [lo, hi] (lo <= 0 <= hi, faded out over d = EXTENT_FADE loops beyond it): the part of its straight path
that stays over the moving region (`dynamics/extent.py`). Without it the phase-1 draw of a Gaussian at the top of
a waterfall shows, half-faded, up to one loop's travel above the fall (a ghost of water over the cliff), where the
2D animator's Euler integration stops at the mask's edge. m(0) = 1, so the loop still closes for any extent. A scene
without an extent (`extent=None`, and version-2 files) shows every draw over its whole path (lo = -1, hi = 1).

Opacity: where the two draws of a Gaussian overlap they cover what the Gaussian covers. A splat of opacity a covers
a G(x) at a pixel where its footprint is G(x) in (0, 1]; two coincident draws cover 1 - (1 - a_0 G)(1 - a_1 G). No
choice of a_0, a_1 matches a G at every G, but summed over the footprint (the area where G > g is proportional to
-log g, so the sum is the integral of (.) dG / G over (0, 1]) the pair covers a_0 + a_1 - a_0 a_1 / 2 against a,
and 2 (1 - (1 - a / 2) ** w_0) and its w_1 twin satisfy a_0 + a_1 - a_0 a_1 / 2 = a exactly, for every a and tau:
(1 - a_0 / 2)(1 - a_1 / 2) = (1 - a / 2) ** (w_0 + w_1) = 1 - a / 2. Multiplying a by w instead (the sum a_0 + a_1
= a, exact only in the faint tails) lets the coverage dip mid-loop; 1 - (1 - a) ** w (exact at the centre) makes
each half-opaque draw nearly opaque, so the pair over-covers off-centre and the draw in front hides the other.
The fade is cos^2 rather than linear so that it is flat at both ends of the loop: the vanishing draw's last steps
and the appearing draw's first ones are gentle, and the wrap-around is an ordinary frame step.

Draw order (`draw_index`): every Gaussian at phase 0 (static ones with weight 1), then each moving Gaussian again
at phase 1, in index order: N + M draws for every t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from ..gaussians.model import OPACITY_MAX, opacity_from_logits


@dataclass
class Scene4D:
    means: torch.Tensor  # (N, 3) position at tau = 0 of the phase-0 draw
    quats: torch.Tensor  # (N, 4) wxyz
    log_scales: torch.Tensor  # (N, 3)
    opacity_logits: torch.Tensor  # (N,)
    sh: torch.Tensor  # (N, K, 3) spherical-harmonic colour coefficients (K = 1: DC only)
    velocity: torch.Tensor  # (N, 3) world units per frame
    moving: torch.Tensor  # (N,) bool
    pos_coef: torch.Tensor  # (N, 2F, 3) Fourier residual of position: sin then cos for k = 1..F
    rot_coef: torch.Tensor  # (N, 2F, 4)
    scale_coef: torch.Tensor  # (N, 2F, 3)
    num_frames: int
    extent: torch.Tensor | None = None  # (N, 2) [lo, hi] loops of travel shown (module docstring); None: [-1, 1]

    TENSORS = ("means", "quats", "log_scales", "opacity_logits", "sh", "velocity", "moving", "pos_coef", "rot_coef",
               "scale_coef")

    @property
    def fourier_order(self) -> int:
        return self.pos_coef.shape[1] // 2

    @property
    def num_moving(self) -> int:
        return int(self.moving.sum())

    def __len__(self) -> int:
        return self.means.shape[0]

    def extent_or_full(self) -> torch.Tensor:
        """(N, 2) [lo, hi]: `extent`, or [-1, 1] (the whole path) for every Gaussian when there is none."""
        if self.extent is not None:
            return self.extent
        full = torch.tensor([-1.0, 1.0], dtype=self.means.dtype, device=self.means.device)
        return full.expand(len(self), 2).clone()

    def to(self, device) -> "Scene4D":
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return Scene4D(**{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in kw.items()})

    def detach(self) -> "Scene4D":
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return Scene4D(**{k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()})


@dataclass
class GaussiansAt:
    """Gaussian draws at one moment, ready for the rasterizer (N + M of them, see `draw_index`)."""

    means: torch.Tensor  # (D, 3)
    quats: torch.Tensor  # (D, 4)
    scales: torch.Tensor  # (D, 3) linear
    opacities: torch.Tensor  # (D,) in [0, 1]
    colors: torch.Tensor  # (D, K, 3) SH or (D, 3)


def draw_index(scene: Scene4D) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (index (N + M,) long: the Gaussian each draw shows, phase (N + M,) float: 0 or 1).

    Draws 0..N-1 are Gaussians 0..N-1 at phase 0; draws N..N+M-1 are the moving Gaussians, in index order, at
    phase 1."""
    n = len(scene)
    dev = scene.means.device
    mov = torch.nonzero(scene.moving).squeeze(1)
    index = torch.cat([torch.arange(n, device=dev), mov])
    phase = torch.cat([torch.zeros(n, device=dev), torch.ones(len(mov), device=dev)]).to(scene.means.dtype)
    return index, phase


def fourier_basis(tau: torch.Tensor, order: int) -> torch.Tensor:
    """tau (N,) -> (N, 2F): sin(2 pi k tau) for k = 1..F, then cos(2 pi k tau)."""
    k = torch.arange(1, order + 1, device=tau.device, dtype=tau.dtype)
    ang = 2 * math.pi * tau[:, None] * k[None, :]
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)


def loop_tau(t: float) -> float:
    """tau = t mod 1 in [0, 1)."""
    return float(t) % 1.0


def fade_weights(tau: float) -> tuple[float, float]:
    """Cross-fade weights (w_0, w_1) of the phase-0 and phase-1 draws at tau in [0, 1): cos^2 and sin^2 of
    pi tau / 2. They sum to 1, w_0(0) = 1, w_0(1) = 0, w_1 = 1 - w_0, and both are flat at the ends of the loop."""
    c = math.cos(0.5 * math.pi * tau)
    return c * c, 1.0 - c * c


EXTENT_FADE = 1.0 / 16  # loops of travel over which a draw fades out beyond its extent


def extent_weight(s: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """m(s): 1 for travel s (loops) in [lo, hi], falling linearly to 0 over EXTENT_FADE beyond either end."""
    return ((1 + (s - lo) / EXTENT_FADE).clamp(0, 1) * (1 + (hi - s) / EXTENT_FADE).clamp(0, 1))


def base_opacity(opacity_logits: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
    """a: OPACITY_MAX sigmoid(logit), at most 1 for a moving Gaussian (module docstring). (N,), (N,) bool -> (N,)"""
    a = opacity_from_logits(opacity_logits)
    return torch.where(moving, a.clamp(max=1.0), a)


def blended_opacity(opacity: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """2 (1 - (1 - a / 2) ** weight) of base opacities a: a at weight 1, 0 at weight 0 (module docstring)."""
    return -2 * torch.expm1(weight * torch.log1p(-0.5 * opacity))


def gaussians_at(scene: Scene4D, t: float) -> GaussiansAt:
    """Evaluate every draw at loop time t (any real t; t and t + 1 are the same moment), vectorised."""
    tau = loop_tau(t)
    index, phase = draw_index(scene)
    dtype = scene.means.dtype
    mov = scene.moving.to(dtype)[:, None]  # (N, 1)
    basis = fourier_basis(torch.full((1,), tau, dtype=dtype, device=scene.means.device), scene.fourier_order)[0]
    res_pos = torch.einsum("f,nfc->nc", basis, scene.pos_coef)
    res_rot = torch.einsum("f,nfc->nc", basis, scene.rot_coef)
    res_scale = torch.einsum("f,nfc->nc", basis, scene.scale_coef)
    drift = scene.velocity * scene.num_frames  # (N, 3): one loop of travel
    means = (scene.means + mov * (drift * tau + res_pos))[index] - phase[:, None] * drift[index]
    quats = (scene.quats + mov * res_rot)[index]
    scales = torch.exp(scene.log_scales + mov * res_scale)[index]
    moving = scene.moving[index]
    w0, w1 = fade_weights(tau)
    fade = (1 - phase) * w0 + phase * w1
    if scene.extent is not None:
        ext = scene.extent.to(dtype)[index]  # (N + M, 2)
        fade = fade * extent_weight(tau - phase, ext[:, 0], ext[:, 1])
    weight = torch.where(moving, fade, torch.ones_like(phase))
    opacities = blended_opacity(base_opacity(scene.opacity_logits[index], moving), weight)
    return GaussiansAt(means, quats, scales, opacities, scene.sh[index])


def gaussian_at_reference(scene: Scene4D, i: int, t: float, phase: int = 0
                          ) -> tuple[list[float], list[float], list[float], float]:
    """Gaussian i drawn at `phase` (0, or 1 for a moving one) at loop time t, with plain Python floats (the pure
    reference of `gaussians_at`)."""
    tau = t % 1.0
    n = scene.num_frames
    order = scene.fourier_order
    basis = [math.sin(2 * math.pi * k * tau) for k in range(1, order + 1)] + \
            [math.cos(2 * math.pi * k * tau) for k in range(1, order + 1)]
    mov = bool(scene.moving[i])
    if phase and not mov:
        raise ValueError(f"Gaussian {i} is static: it has no phase-1 draw")

    def residual(coef: torch.Tensor, c: int) -> float:
        return sum(basis[f] * float(coef[i, f, c]) for f in range(2 * order)) if mov else 0.0

    pos = [float(scene.means[i, c]) + ((float(scene.velocity[i, c]) * n * (tau - phase)) if mov else 0.0)
           + residual(scene.pos_coef, c) for c in range(3)]
    quat = [float(scene.quats[i, c]) + residual(scene.rot_coef, c) for c in range(4)]
    scale = [math.exp(float(scene.log_scales[i, c]) + residual(scene.scale_coef, c)) for c in range(3)]
    w0 = math.cos(0.5 * math.pi * tau) ** 2
    weight = (1 - w0 if phase else w0) if mov else 1.0
    if mov and scene.extent is not None:
        s, lo, hi = tau - phase, float(scene.extent[i, 0]), float(scene.extent[i, 1])
        weight *= min(max(1 + (s - lo) / EXTENT_FADE, 0.0), 1.0) * min(max(1 + (hi - s) / EXTENT_FADE, 0.0), 1.0)
    a = OPACITY_MAX / (1 + math.exp(-float(scene.opacity_logits[i])))
    a = min(a, 1.0) if mov else a
    opacity = 2 * (1 - (1 - a / 2) ** weight)
    return pos, quat, scale, opacity
