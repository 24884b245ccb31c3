"""Real spherical harmonics (degrees 0-3) in the convention of 3D Gaussian splatting.

Colour of a Gaussian seen along the unit direction d (from the camera centre to the Gaussian):
    rgb = max(0, sum_k sh[k] * Y_k(d) + 0.5)
with the constants and sign convention of the INRIA 3DGS code (and gsplat), so PLY files exchange with those tools.
"""

from __future__ import annotations

import math

import torch

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def sh_degree_from_bases(k: int) -> int:
    d = int(round(math.sqrt(k))) - 1
    if (d + 1) ** 2 != k or d < 0 or d > 3:
        raise ValueError(f"{k} SH coefficients is not (d+1)^2 for a degree d in 0..3")
    return d


def sh_basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """dirs (N, 3) unit vectors -> basis values (N, (degree+1)^2)."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree {degree} is not in 0..3")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, C0)]
    if degree >= 1:
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [C2[0] * xy, C2[1] * yz, C2[2] * (2 * zz - xx - yy), C2[3] * xz, C2[4] * (xx - yy)]
    if degree >= 3:
        out += [
            C3[0] * y * (3 * xx - yy),
            C3[1] * xy * z,
            C3[2] * y * (4 * zz - xx - yy),
            C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            C3[4] * x * (4 * zz - xx - yy),
            C3[5] * z * (xx - yy),
            C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def eval_sh(sh: torch.Tensor, dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """sh (N, K, 3) coefficients, dirs (N, 3) (not necessarily unit) -> rgb (N, 3), clamped at 0 after +0.5.

    Only the first (degree+1)^2 coefficients are used (K may be larger).
    """
    k = num_sh_bases(degree)
    if sh.shape[-2] < k:
        raise ValueError(f"degree {degree} needs {k} SH coefficients, got {sh.shape[-2]}")
    d = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    basis = sh_basis(d, degree)  # (N, k)
    rgb = (basis.unsqueeze(-1) * sh[:, :k, :]).sum(dim=-2)
    return (rgb + 0.5).clamp_min(0.0)


def rgb_to_sh0(rgb: torch.Tensor) -> torch.Tensor:
    """DC coefficient that renders as `rgb` (any shape)."""
    return (rgb - 0.5) / C0


def sh0_to_rgb(sh0: torch.Tensor) -> torch.Tensor:
    return sh0 * C0 + 0.5
