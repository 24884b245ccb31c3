"""SSIM (Gaussian window 11, sigma 1.5; Wang et al. 2004) and the loop-seam metric of a looping video."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import correlate1d

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:  # (size,) sums to 1
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _prep(a: np.ndarray, b: np.ndarray, data_range: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {a.shape} vs {b.shape}")
    if data_range is None:
        data_range = 255.0 if a.dtype == np.uint8 else 1.0
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if a.shape[0] < WINDOW or a.shape[1] < WINDOW:
        raise ValueError(f"ssim needs images of at least {WINDOW}x{WINDOW}, got {a.shape[:2]}")
    return a, b, float(data_range)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Mean SSIM of two images (H, W) or (H, W, C), channels averaged; 'valid' windows only.

    data_range: 255 for uint8 inputs, 1.0 for float inputs unless given.
    """
    a, b, L = _prep(a, b, data_range)
    g = gaussian_window()
    r = WINDOW // 2

    def blur(x: np.ndarray) -> np.ndarray:
        y = correlate1d(correlate1d(x, g, axis=0, mode="constant"), g, axis=1, mode="constant")
        return y[r:-r, r:-r]

    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a ** 2
    sbb = blur(b * b) - mu_b ** 2
    sab = blur(a * b) - mu_a * mu_b
    c1, c2 = (K1 * L) ** 2, (K2 * L) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return float(s.mean())


def ssim_reference(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Loop-over-windows reference of `ssim` (small images only)."""
    a, b, L = _prep(a, b, data_range)
    w2 = np.outer(gaussian_window(), gaussian_window())
    H, W, C = a.shape
    c1, c2 = (K1 * L) ** 2, (K2 * L) ** 2
    vals = []
    for i in range(H - WINDOW + 1):
        for j in range(W - WINDOW + 1):
            for c in range(C):
                pa = a[i:i + WINDOW, j:j + WINDOW, c]
                pb = b[i:i + WINDOW, j:j + WINDOW, c]
                ma, mb = (w2 * pa).sum(), (w2 * pb).sum()
                va = (w2 * (pa - ma) ** 2).sum()
                vb = (w2 * (pb - mb) ** 2).sum()
                cab = (w2 * (pa - ma) * (pb - mb)).sum()
                vals.append(((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


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
    cons = [ssim(frames[k], frames[k + 1]) for k in range(frames.shape[0] - 1)]
    return LoopSeam(seam_ssim=ssim(frames[-1], frames[0]), consecutive_ssim=float(np.mean(cons)))
