"""SSIM (Gaussian window 11, sigma 1.5; Wang et al. 2004) and the loop-seam metric of a looping video.

Thin adapters over `landscape4d.evaluation.metrics` (one SSIM implementation in the project): these accept uint8
images too (data range 255; SSIM is unchanged when the data and its range are scaled together, so uint8 inputs
are divided by 255 and scored with range 1) and keep the animation module's `LoopSeam` field names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..evaluation import metrics as em

WINDOW = em.SSIM_WINDOW
SIGMA = em.SSIM_SIGMA
K1, K2 = em.SSIM_K1, em.SSIM_K2


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:  # (size,) sums to 1
    return em.gaussian_taps(size, sigma)


def _prep(a: np.ndarray, b: np.ndarray, data_range: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """-> float64 images scaled so that the data range is 1 (uint8: 255 unless given; float: 1 unless given)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {a.shape} vs {b.shape}")
    if data_range is None:
        data_range = 255.0 if a.dtype == np.uint8 else 1.0
    scale = 1.0 / float(data_range)
    return a.astype(np.float64) * scale, b.astype(np.float64) * scale, 1.0


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Mean SSIM of two images (H, W) or (H, W, C), channels averaged; 'valid' windows only.

    data_range: 255 for uint8 inputs, 1.0 for float inputs unless given.
    """
    x, y, L = _prep(a, b, data_range)
    return em.ssim(x, y, L)


def ssim_reference(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Direct-sum reference of `ssim` (evaluation.metrics.ssim_reference)."""
    x, y, L = _prep(a, b, data_range)
    return em.ssim_reference(x, y, L)


@dataclass(frozen=True)
class LoopSeam:
    seam_ssim: float  # SSIM(last frame, first frame): the jump when the video wraps around
    consecutive_ssim: float  # mean SSIM of consecutive frames inside the video

    @property
    def gap(self) -> float:
        """consecutive - seam: about 0 for a seamless loop, large for a visible jump."""
        return self.consecutive_ssim - self.seam_ssim


def loop_seam_ssim(frames: np.ndarray) -> LoopSeam:
    """Loop seam of a video (T, H, W, 3) (uint8 or float in [0, 1]), T >= 2.

    Pass the frames the video plays (0..N-1 of `animate_image`, not frame N which repeats frame 0).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] < 2:
        raise ValueError(f"loop_seam_ssim needs (T >= 2, H, W, C) frames, got {frames.shape}")
    v = frames.astype(np.float64) / 255.0 if frames.dtype == np.uint8 else frames
    s = em.loop_seam_ssim(v)
    return LoopSeam(seam_ssim=s.seam, consecutive_ssim=s.consecutive)
