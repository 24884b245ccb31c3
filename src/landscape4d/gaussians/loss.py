"""Photometric losses of 3DGS: L1, SSIM (11x11 Gaussian window, sigma 1.5), PSNR; optional per-pixel weights."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

C1 = 0.01**2
C2 = 0.03**2


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1D Gaussian (size,)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur_separable(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) filtered by g (k,) along rows then columns, zero padding ('same' size)."""
    c, k = x.shape[1], g.numel()
    gx = g.view(1, 1, 1, k).expand(c, 1, 1, k)
    gy = g.view(1, 1, k, 1).expand(c, 1, k, 1)
    x = F.conv2d(x, gx, padding=(0, k // 2), groups=c)
    return F.conv2d(x, gy, padding=(k // 2, 0), groups=c)


def _blur_dense(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Reference: the same filter as one dense k x k convolution."""
    c, k = x.shape[1], g.numel()
    w2 = (g[:, None] * g[None, :]).view(1, 1, k, k).expand(c, 1, k, k)
    return F.conv2d(x, w2, padding=k // 2, groups=c)


def _ssim_map(x: torch.Tensor, y: torch.Tensor, blur, size: int, sigma: float) -> torch.Tensor:
    if x.shape != y.shape or x.dim() != 3:
        raise ValueError(f"ssim needs two (H, W, C) images of one shape, got {tuple(x.shape)}, {tuple(y.shape)}")
    g = gaussian_window(size, sigma, x.dtype, x.device)
    a = x.permute(2, 0, 1).unsqueeze(0)
    b = y.permute(2, 0, 1).unsqueeze(0)
    stats = blur(torch.cat([a, b, a * a, b * b, a * b], dim=1), g)
    c = a.shape[1]
    mu_a, mu_b, e_aa, e_bb, e_ab = stats.split(c, dim=1)
    var_a = e_aa - mu_a * mu_a
    var_b = e_bb - mu_b * mu_b
    cov = e_ab - mu_a * mu_b
    s = ((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a * mu_a + mu_b * mu_b + C1) * (var_a + var_b + C2))
    return s[0].permute(1, 2, 0)


def ssim_map(x: torch.Tensor, y: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel, per-channel SSIM (H, W, C) of two (H, W, C) images (separable Gaussian window, zero padded
    borders as in the 3DGS code)."""
    return _ssim_map(x, y, _blur_separable, size, sigma)


def ssim_map_reference(x: torch.Tensor, y: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Same as ssim_map with a dense 2D window (reference for the separable fast path)."""
    return _ssim_map(x, y, _blur_dense, size, sigma)


def _weighted_mean(v: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of v (H, W, C) under per-pixel weights (H, W) (None = plain mean)."""
    if weight is None:
        return v.mean()
    w = weight.to(v.dtype).unsqueeze(-1)
    return (v * w).sum() / (w.sum() * v.shape[-1]).clamp_min(1e-8)


def ssim(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    return _weighted_mean(ssim_map(x, y), weight)


def l1(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    return _weighted_mean((x - y).abs(), weight)


def photometric_loss(
    pred: torch.Tensor,  # (H, W, 3)
    target: torch.Tensor,  # (H, W, 3)
    weight: torch.Tensor | None = None,  # (H, W) valid-pixel weights
    ssim_weight: float = 0.2,
) -> torch.Tensor:
    """(1 - lambda) L1 + lambda (1 - SSIM), both averaged under `weight`."""
    loss = (1.0 - ssim_weight) * l1(pred, target, weight)
    if ssim_weight > 0:
        loss = loss + ssim_weight * (1.0 - ssim(pred, target, weight))
    return loss


def psnr(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> float:
    """PSNR in dB for images in [0, 1] (weighted MSE when `weight` (H, W) is given)."""
    mse = float(_weighted_mean((pred.detach() - target.detach()) ** 2, weight))
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)
