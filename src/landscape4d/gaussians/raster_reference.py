"""Brute-force reference rasterizer: every Gaussian against every pixel (dense N x H*W), plain autograd.

Only for tiny scenes (tests). It defines the image the fast backends must reproduce:
- Gaussians behind the near plane or whose 3-sigma box misses the image are culled (radii 0);
- alpha = min(0.99, opacity * exp(-0.5 d^T conic d)) with the low-passed 2D covariance; contributions with
  alpha < 1/255 are skipped (there is no other per-pixel cut-off, so the image does not depend on tiles);
- front-to-back compositing in camera-z order of the means; a pixel stops before the contribution that would
  bring its transmittance below 1e-4;
- color = sum_i w_i c_i + T_final * background, alpha = 1 - T_final, depth = sum_i w_i z_i.
"""

from __future__ import annotations

import torch

from .projection import ALPHA_MAX, ALPHA_MIN, T_MIN, gaussian_colors, project_gaussians
from .types import RasterOutput


def rasterize_reference(
    means: torch.Tensor,  # (N, 3)
    quats: torch.Tensor,  # (N, 4) wxyz
    scales: torch.Tensor,  # (N, 3)
    opacities: torch.Tensor,  # (N,)
    colors: torch.Tensor,  # (N, 3) or (N, K, 3) SH
    viewmat: torch.Tensor,  # (4, 4)
    K: torch.Tensor,  # (3, 3)
    width: int,
    height: int,
    background: torch.Tensor | None = None,  # (3,)
    backend: str = "reference",
    sh_degree: int | None = None,
) -> RasterOutput:
    """Same signature and output as `rasterize`; `backend` is ignored."""
    proj = project_gaussians(means, quats, scales, viewmat, K, width, height)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()
    rgb = gaussian_colors(colors, means, viewmat, sh_degree)  # (N, 3)
    dtype, dev = means.dtype, means.device
    order = torch.argsort(proj.depths.detach(), stable=True)

    v, u = torch.meshgrid(
        torch.arange(height, device=dev, dtype=dtype) + 0.5,
        torch.arange(width, device=dev, dtype=dtype) + 0.5,
        indexing="ij",
    )
    pix = torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)  # (P, 2)
    m2 = means2d[order]
    con = proj.conics[order]
    d = pix[:, None, :] - m2[None, :, :]  # (P, N, 2)
    dx, dy = d[..., 0], d[..., 1]
    power = -0.5 * (con[:, 0] * dx * dx + con[:, 2] * dy * dy) - con[:, 1] * dx * dy  # (P, N)
    alpha = (opacities[order] * torch.exp(power)).clamp(max=ALPHA_MAX)
    keep = (alpha >= ALPHA_MIN) & proj.valid[order]
    alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
    one_minus = 1.0 - alpha
    t_incl = torch.cumprod(one_minus, dim=1)
    include = (t_incl >= T_MIN).detach()
    t_excl = torch.cat([torch.ones_like(t_incl[:, :1]), t_incl[:, :-1]], dim=1)
    w = alpha * t_excl * include  # (P, N)
    t_final = torch.prod(torch.where(include, one_minus, torch.ones_like(one_minus)), dim=1)  # (P,)
    bg = torch.zeros(3, dtype=dtype, device=dev) if background is None else background.to(dev, dtype)
    color = w @ rgb[order] + t_final[:, None] * bg
    depth = w @ proj.depths[order]
    return RasterOutput(
        color=color.reshape(height, width, 3),
        alpha=(1.0 - t_final).reshape(height, width, 1),
        depth=depth.reshape(height, width, 1),
        means2d=means2d,
        radii=proj.radii,
    )
