"""One-call metric bundles for an image pair and for a video against its ground truth (what `eval` reports)."""

from __future__ import annotations

import numpy as np
import torch

from .lpips_alex import lpips_batch
from .metrics import (ArrayLike, laplacian_variance, loop_seam_ssim, masked_psnr, masked_ssim,
                      mean_gradient_magnitude, psnr, psnr_in_mask, ssim)


def _np(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def image_metrics(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None, use_lpips: bool = True,
                  device: str = "cpu") -> dict[str, float]:
    """psnr, ssim, (lpips) and, with a mask (H, W), m_psnr, m_ssim, (m_lpips), psnr_in_mask.

    pred, gt: (H, W, 3) float in [0, 1]. Masked variants follow the paper: both images multiplied by the mask.
    """
    out = {"psnr": psnr(pred, gt), "ssim": ssim(pred, gt)}
    p, g = _np(pred).astype(np.float32), _np(gt).astype(np.float32)
    if use_lpips:
        out["lpips"] = float(lpips_batch(p, g, device)[0])
    if mask is not None:
        m = _np(mask).astype(np.float32)
        out["m_psnr"] = masked_psnr(pred, gt, m)
        out["m_ssim"] = masked_ssim(pred, gt, m)
        if use_lpips:
            out["m_lpips"] = float(lpips_batch(p * m[..., None], g * m[..., None], device)[0])
        if m.sum() > 0:
            out["psnr_in_mask"] = psnr_in_mask(pred, gt, m)
    return out


def video_metrics(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None, use_lpips: bool = True,
                  device: str = "cpu", batch: int = 8) -> dict[str, float]:
    """Per-frame image metrics averaged over frames (PSNR averaged in dB, infinite frames skipped), plus the
    loop seam and no-reference sharpness of the prediction.

    pred, gt: (T, H, W, 3) float in [0, 1]; mask: (H, W) for all frames or (T, H, W).
    """
    p, g = _np(pred).astype(np.float32), _np(gt).astype(np.float32)
    if p.shape != g.shape or p.ndim != 4:
        raise ValueError(f"video_metrics: expected two equal (T, H, W, 3) videos, got {p.shape} and {g.shape}")
    t = p.shape[0]
    masks = None
    if mask is not None:
        m = _np(mask).astype(np.float32)
        masks = np.broadcast_to(m, p.shape[:3]) if m.ndim == 2 else m
    per: dict[str, list[float]] = {}
    for k in range(t):
        mk = None if masks is None else masks[k]
        for name, value in image_metrics(p[k], g[k], mk, use_lpips=False).items():
            per.setdefault(name, []).append(value)
    if use_lpips:
        per["lpips"] = [float(v) for i in range(0, t, batch) for v in lpips_batch(p[i:i + batch], g[i:i + batch],
                                                                                   device)]
        if masks is not None:
            mm = masks[..., None]
            per["m_lpips"] = [float(v) for i in range(0, t, batch)
                              for v in lpips_batch(p[i:i + batch] * mm[i:i + batch], g[i:i + batch] * mm[i:i + batch],
                                                   device)]
    out = {}
    for name, values in per.items():
        finite = [v for v in values if np.isfinite(v)]
        out[name] = float(np.mean(finite)) if finite else float("inf")
    if t >= 2:
        seam = loop_seam_ssim(p)
        out["loop_seam_ssim"] = seam.seam
        out["loop_consecutive_ssim"] = seam.consecutive
    out["sharpness_laplacian_var"] = float(np.mean([laplacian_variance(f) for f in p]))
    out["sharpness_gradient"] = float(np.mean([mean_gradient_magnitude(f) for f in p]))
    return out
