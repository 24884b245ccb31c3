"""One-call metric bundles for an image pair and for a video against its ground truth (what `eval` reports).

`videos_metrics` scores several predictions (ours and the 2D baseline) against one GT video in chunks of frames,
computing the GT's LPIPS features (plain and masked) once per chunk for all of them; `video_metrics_reference`
is the plain per-frame version it must equal (tests/test_evaluation_report.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .lpips_alex import lpips_batch, lpips_from_features, lpips_unit_features
from .metrics import (ArrayLike, LoopSeam, SsimStats, laplacian_variance, loop_seam_ssim, masked_psnr, masked_ssim,
                      mean_gradient_magnitude, psnr, psnr_in_mask, ssim, ssim_of_stats, ssim_stats)


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


def video_metrics_reference(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None, use_lpips: bool = True,
                            device: str = "cpu", batch: int = 8) -> dict[str, float]:
    """Reference of `video_metrics`: every frame pair through `image_metrics` and `lpips_batch` on its own."""
    p, g, masks = _video_inputs({"pred": pred}, gt, mask)
    p = p["pred"]
    t = p.shape[0]
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
    return _summarise(per, p)


def video_metrics(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike | None = None, use_lpips: bool = True,
                  device: str = "cpu", batch: int = 8) -> dict[str, float]:
    """Per-frame image metrics averaged over frames (PSNR averaged in dB, infinite frames skipped), plus the
    loop seam and no-reference sharpness of the prediction.

    pred, gt: (T, H, W, 3) float in [0, 1]; mask: (H, W) for all frames or (T, H, W).
    """
    return videos_metrics({"pred": pred}, gt, mask, use_lpips, device, batch)["pred"]


def videos_metrics(preds: dict[str, ArrayLike], gt: ArrayLike, mask: ArrayLike | None = None,
                   use_lpips: bool = True, device: str = "cpu", batch: int = 8) -> dict[str, dict[str, float]]:
    """`video_metrics` of several predictions {name: (T, H, W, 3)} against one GT video (T, H, W, 3) and mask
    ((H, W) or (T, H, W)): {name: metrics}. Frames go in chunks of `batch`; what a frame needs of itself alone
    (float64 copy, SSIM statistics, plain and masked, LPIPS features of the chunk) is computed once and used for
    every comparison it is in (the GT frame with every prediction, a predicted frame with the GT and with the
    next frame for the loop seam)."""
    ps, g, masks = _video_inputs(preds, gt, mask)
    per: dict[str, dict[str, list[float]]] = {name: {} for name in ps}
    seams = {name: _SeamTracker() for name in ps}
    for i in range(0, g.shape[0], batch):
        sl = slice(i, min(i + batch, g.shape[0]))
        for k in range(sl.start, sl.stop):
            mk = None if masks is None else masks[k].astype(np.float32)  # a writable copy (torch warns on views)
            gk = _FrameStats.of(g[k], mk)
            for name, p in ps.items():
                pk = _FrameStats.of(p[k], mk)
                for key, value in pk.scores(gk, mk).items():
                    per[name].setdefault(key, []).append(value)
                seams[name].add(pk.plain)
        if use_lpips:
            _lpips_chunk(ps, g, masks, sl, per, device)
    return {name: _summarise(per[name], p, seams[name].result()) for name, p in ps.items()}


@dataclass(frozen=True)
class _FrameStats:
    """One float frame as float64 with its SSIM statistics, plain and multiplied by the mask."""
    plain: SsimStats  # .image: (H, W, 3) float64
    masked: SsimStats | None

    @classmethod
    def of(cls, frame: np.ndarray, mask: np.ndarray | None) -> "_FrameStats":
        """frame (H, W, 3) float32, mask (H, W) float32 or None."""
        x = frame.astype(np.float64)
        return cls(ssim_stats(x), None if mask is None else ssim_stats(x * mask.astype(np.float64)[..., None]))

    def scores(self, gt: "_FrameStats", mask: np.ndarray | None) -> dict[str, float]:
        """= image_metrics(frame, gt frame, mask, use_lpips=False)."""
        p, g = self.plain.image, gt.plain.image
        out = {"psnr": psnr(p, g), "ssim": ssim_of_stats(self.plain, gt.plain)}
        if mask is not None:
            out["m_psnr"] = masked_psnr(p, g, mask)
            out["m_ssim"] = ssim_of_stats(self.masked, gt.masked)
            if mask.sum() > 0:
                out["psnr_in_mask"] = psnr_in_mask(p, g, mask)
        return out


class _SeamTracker:
    """loop_seam_ssim of a video fed frame by frame (SsimStats of each), keeping only the first and last."""

    def __init__(self) -> None:
        self.first: SsimStats | None = None
        self.prev: SsimStats | None = None
        self.consecutive: list[float] = []

    def add(self, st: SsimStats) -> None:
        if self.prev is None:
            self.first = st
        else:
            self.consecutive.append(ssim_of_stats(self.prev, st))
        self.prev = st

    def result(self) -> LoopSeam | None:
        if not self.consecutive:
            return None
        return LoopSeam(seam=ssim_of_stats(self.prev, self.first), consecutive=float(np.mean(self.consecutive)))


def _lpips_chunk(ps: dict[str, np.ndarray], g: np.ndarray, masks: np.ndarray | None, sl: slice,
                 per: dict[str, dict[str, list[float]]], device: str) -> None:
    """Appends lpips (and m_lpips) of frames `sl` of every prediction, the GT's features computed once."""
    variants = [("lpips", None)] + ([("m_lpips", masks[sl][..., None])] if masks is not None else [])
    for key, mm in variants:
        fg = lpips_unit_features(g[sl] if mm is None else g[sl] * mm, device)
        for name, p in ps.items():
            fp = lpips_unit_features(p[sl] if mm is None else p[sl] * mm, device)
            per[name].setdefault(key, []).extend(float(v) for v in lpips_from_features(fp, fg, device))


def _video_inputs(preds: dict[str, ArrayLike], gt: ArrayLike,
                  mask: ArrayLike | None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """-> float32 predictions and GT (T, H, W, 3), float32 masks (T, H, W) or None; shapes checked."""
    g = _np(gt).astype(np.float32)
    ps = {name: _np(v).astype(np.float32) for name, v in preds.items()}
    for p in ps.values():
        if p.shape != g.shape or p.ndim != 4:
            raise ValueError(f"video_metrics: expected two equal (T, H, W, 3) videos, got {p.shape} and {g.shape}")
    masks = None
    if mask is not None:
        m = _np(mask).astype(np.float32)
        masks = np.broadcast_to(m, g.shape[:3]) if m.ndim == 2 else m
    return ps, g, masks


def _summarise(per: dict[str, list[float]], p: np.ndarray, seam: LoopSeam | None = None) -> dict[str, float]:
    """Means of the per-frame values (non-finite ones left out) + loop seam (loop_seam_ssim(p) unless given) and
    sharpness of the prediction p (T, H, W, 3)."""
    out = {}
    for name, values in per.items():
        finite = [v for v in values if np.isfinite(v)]
        out[name] = float(np.mean(finite)) if finite else float("inf")
    if p.shape[0] >= 2:
        seam = seam or loop_seam_ssim(p)
        out["loop_seam_ssim"] = seam.seam
        out["loop_consecutive_ssim"] = seam.consecutive
    out["sharpness_laplacian_var"] = float(np.mean([laplacian_variance(f) for f in p]))
    out["sharpness_gradient"] = float(np.mean([mean_gradient_magnitude(f) for f in p]))
    return out
