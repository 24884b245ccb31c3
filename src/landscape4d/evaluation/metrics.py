"""Full-reference and no-reference image metrics: PSNR, SSIM, masked variants, flow EPE, loop seam, sharpness.

Inputs are float images in [0, 1], shape (H, W, 3) (or (H, W) for grey), as numpy arrays or torch tensors.
Everything is computed in float64 on the CPU (these are evaluation metrics, not losses) and returned as floats.

SSIM convention (the one of Wang et al. 2004 as implemented by scikit-image's
`structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1,
channel_axis=-1)`): Gaussian window of 11x11 taps (sigma 1.5, normalised to sum 1), K1 = 0.01, K2 = 0.03, data
range 1, population (not sample) covariances, computed per channel and averaged. Only 'valid' windows count: the
SSIM map is (H - 10, W - 10) and its mean is the score. This equals scikit-image's value, which filters with
reflect padding and then crops the 5-pixel border before averaging.

The paper's masked metrics (M.PSNR, M.SSIM, M.LPIPS) are the plain metrics of the two images after both are
multiplied by the motion mask; `psnr_in_mask` is PSNR over the mask pixels only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = Union[np.ndarray, torch.Tensor]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


# ---------------------------------------------------------------------------------------------------------------
# input handling


def as_image(x: ArrayLike, name: str = "image") -> torch.Tensor:
    """(H, W) or (H, W, C) array/tensor -> float64 CPU tensor (H, W, C)."""
    t = x.detach().to("cpu") if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.dtype == torch.uint8:
        raise ValueError(f"{name}: expected a float image in [0, 1], got uint8 (divide by 255 first)")
    t = t.to(torch.float64)
    if t.ndim == 2:
        t = t[..., None]
    if t.ndim != 3:
        raise ValueError(f"{name}: expected shape (H, W) or (H, W, C), got {tuple(t.shape)}")
    return t


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    ta, tb = as_image(a, "a"), as_image(b, "b")
    if ta.shape != tb.shape:
        raise ValueError(f"image shapes differ: {tuple(ta.shape)} vs {tuple(tb.shape)}")
    return ta, tb


def as_mask(mask: ArrayLike, shape: tuple[int, int]) -> torch.Tensor:
    """(H, W) bool or float weights in [0, 1] -> float64 tensor (H, W, 1)."""
    m = mask.detach().to("cpu") if isinstance(mask, torch.Tensor) else torch.from_numpy(np.asarray(mask))
    m = m.to(torch.float64)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"mask shape {tuple(m.shape)} does not match the image size {tuple(shape)}")
    return m[..., None]


# ---------------------------------------------------------------------------------------------------------------
# PSNR


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    return math.inf if mse <= 0 else 10.0 * math.log10(data_range ** 2 / mse)


def psnr(a: ArrayLike, b: ArrayLike, data_range: float = 1.0) -> float:
    """PSNR in dB over all pixels and channels; inf for identical images."""
    ta, tb = _pair(a, b)
    return psnr_from_mse(float(((ta - tb) ** 2).mean()), data_range)


def masked_psnr(a: ArrayLike, b: ArrayLike, mask: ArrayLike, data_range: float = 1.0) -> float:
    """M.PSNR of the paper: PSNR of a * mask against b * mask (all pixels count)."""
    ta, tb = _pair(a, b)
    m = as_mask(mask, tuple(ta.shape[:2]))
    return psnr(ta * m, tb * m, data_range)


def psnr_in_mask(a: ArrayLike, b: ArrayLike, mask: ArrayLike, data_range: float = 1.0) -> float:
    """PSNR over the mask pixels only (mask weights the squared error; an empty mask is an error)."""
    ta, tb = _pair(a, b)
    m = as_mask(mask, tuple(ta.shape[:2]))
    total = float(m.sum()) * ta.shape[2]
    if total <= 0:
        raise ValueError("psnr_in_mask: the mask is empty")
    return psnr_from_mse(float((m * (ta - tb) ** 2).sum()) / total, data_range)


# ---------------------------------------------------------------------------------------------------------------
# SSIM


def gaussian_taps(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:  # (size,), sums to 1
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _blur_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of x (H, W, C) float64 by taps g (K,) along both axes -> (H-K+1, W-K+1, C).

    OpenCV's row/column filter in float64 (about 10x torch's float64 conv2d on the CPU); the border pixels it
    pads with are cropped, so only full windows remain. `ssim_reference` sums the 2D window directly."""
    r = g.size // 2
    out = cv2.sepFilter2D(np.ascontiguousarray(x), cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)
    return out.reshape(x.shape)[r:x.shape[0] - r, r:x.shape[1] - r]


@dataclass(frozen=True)
class SsimStats:
    """What SSIM needs of one image alone: the image x (H, W, C) float64 and, over the valid windows
    (H - 10, W - 10, C), its Gaussian-weighted mean mu, mu^2 and variance E[x^2] - mu^2. Computed once, an image
    can be scored against several others (`ssim_of_stats`)."""
    image: np.ndarray
    mu: np.ndarray
    mu2: np.ndarray
    var: np.ndarray


def ssim_stats(x: np.ndarray) -> SsimStats:
    """x (H, W, C) float64 -> SsimStats."""
    h, w = x.shape[:2]
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {h}x{w}")
    g = gaussian_taps()
    mu = _blur_valid(x, g)
    mu2 = mu * mu
    return SsimStats(x, mu, mu2, _blur_valid(x * x, g) - mu2)


def ssim_map_of_stats(sx: SsimStats, sy: SsimStats, data_range: float = 1.0) -> np.ndarray:
    """SSIM map (H - 10, W - 10, C) of two images given by their SsimStats (convention in the module docstring):
    ((2 mu_x mu_y + c1) (2 cov + c2)) / ((mu_x^2 + mu_y^2 + c1) (var_x + var_y + c2)), evaluated in place with
    the same operations in the same order."""
    if sx.image.shape != sy.image.shape:
        raise ValueError(f"image shapes differ: {sx.image.shape} vs {sy.image.shape}")
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    num = sx.mu * sy.mu
    cov = _blur_valid(sx.image * sy.image, gaussian_taps()) - num
    num *= 2
    num += c1
    cov *= 2
    cov += c2
    num *= cov
    den = sx.mu2 + sy.mu2
    den += c1
    var = sx.var + sy.var
    var += c2
    den *= var
    num /= den
    return num


def ssim_of_stats(sx: SsimStats, sy: SsimStats, data_range: float = 1.0) -> float:
    """= ssim(sx.image, sy.image, data_range)."""
    return float(ssim_map_of_stats(sx, sy, data_range).mean())


def ssim_map(a: ArrayLike, b: ArrayLike, data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel SSIM of the valid windows, (H - 10, W - 10, C) float64 (convention in the module docstring)."""
    ta, tb = _pair(a, b)
    return torch.from_numpy(ssim_map_of_stats(ssim_stats(ta.numpy()), ssim_stats(tb.numpy()), data_range))


def ssim(a: ArrayLike, b: ArrayLike, data_range: float = 1.0) -> float:
    """Mean SSIM, channels averaged (Gaussian 11/1.5, K1 0.01, K2 0.03, valid windows; see module docstring)."""
    ta, tb = _pair(a, b)
    return ssim_of_stats(ssim_stats(ta.numpy()), ssim_stats(tb.numpy()), data_range)


def ssim_reference(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Direct-sum reference of `ssim`: loops over the 121 window offsets with the outer-product window."""
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    g = gaussian_taps()
    win = np.outer(g, g)
    k = SSIM_WINDOW
    h, w = x.shape[0] - k + 1, x.shape[1] - k + 1
    sums = {name: np.zeros((h, w, x.shape[2])) for name in ("x", "y", "xx", "yy", "xy")}
    for i in range(k):
        for j in range(k):
            px, py = x[i:i + h, j:j + w], y[i:i + h, j:j + w]
            sums["x"] += win[i, j] * px
            sums["y"] += win[i, j] * py
            sums["xx"] += win[i, j] * px * px
            sums["yy"] += win[i, j] * py * py
            sums["xy"] += win[i, j] * px * py
    mx, my = sums["x"], sums["y"]
    vx, vy, cxy = sums["xx"] - mx * mx, sums["yy"] - my * my, sums["xy"] - mx * my
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def masked_ssim(a: ArrayLike, b: ArrayLike, mask: ArrayLike, data_range: float = 1.0) -> float:
    """M.SSIM of the paper: SSIM of a * mask against b * mask."""
    ta, tb = _pair(a, b)
    m = as_mask(mask, tuple(ta.shape[:2]))
    return ssim(ta * m, tb * m, data_range)


# ---------------------------------------------------------------------------------------------------------------
# motion


def flow_epe(f1: ArrayLike, f2: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean end-point error: mean over pixels of the Euclidean norm of f1 - f2.

    f1, f2: (H, W, D) flows (D = 2 for 2D flow, 3 for 3D motion). mask: (H, W) bool or weights; the mean is
    weighted by it (an empty mask is an error).
    """
    t1, t2 = _pair(f1, f2)
    err = torch.linalg.vector_norm(t1 - t2, dim=-1)  # (H, W)
    if mask is None:
        return float(err.mean())
    m = as_mask(mask, tuple(t1.shape[:2]))[..., 0]
    total = float(m.sum())
    if total <= 0:
        raise ValueError("flow_epe: the mask is empty")
    return float((m * err).sum()) / total


@dataclass(frozen=True)
class LoopSeam:
    seam: float  # SSIM between the last and the first frame
    consecutive: float  # mean SSIM of frames t and t + 1, t = 0 .. T - 2

    @property
    def gap(self) -> float:
        """How much worse the wrap-around step is than a typical step (0 for a seamless loop)."""
        return self.consecutive - self.seam


def loop_seam_ssim(frames: ArrayLike) -> LoopSeam:
    """frames: (T, H, W, C) float video, T >= 2. A seamless loop has seam close to consecutive."""
    v = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if v.ndim != 4 or v.shape[0] < 2:
        raise ValueError(f"loop_seam_ssim: expected (T >= 2, H, W, C) frames, got {v.shape}")
    consecutive = [ssim(v[t], v[t + 1]) for t in range(v.shape[0] - 1)]
    return LoopSeam(seam=ssim(v[-1], v[0]), consecutive=float(np.mean(consecutive)))


@dataclass(frozen=True)
class SeamStep:
    seam: float  # mean |grey(last frame) - grey(first frame)| over the region, 0-255 grey levels
    step: float  # the same for frames t and t + 1, averaged over t = 0 .. T - 2
    neighbours: float  # the mean of the two steps beside the seam: frames T-2 -> T-1 and 0 -> 1

    @staticmethod
    def _ratio(a: float, b: float) -> float:
        if b > 0:
            return a / b
        return 1.0 if a == 0 else math.inf

    @property
    def ratio(self) -> float:
        """seam / step: about 1 when the wrap-around is an ordinary step, larger for a visible jump."""
        return self._ratio(self.seam, self.step)

    @property
    def ratio_neighbours(self) -> float:
        """seam / neighbours: the same against the steps just before and after it (for a camera that moves at
        different speeds along its path, these are the steps made at the seam's speed)."""
        return self._ratio(self.seam, self.neighbours)


def _grey255(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8, or float in [0, 1] -> (H, W) float64 Rec. 601 luma (`luminance`) in 0-255 grey levels."""
    f = frame.astype(np.float64) / 255.0 if frame.dtype == np.uint8 else frame
    return luminance(f).numpy() * 255.0


def loop_seam_step(frames: ArrayLike, mask: ArrayLike | None = None) -> SeamStep:
    """How big the wrap-around step (last frame -> first) of a looping video is, against its ordinary steps.

    frames (T >= 2, H, W, C): the frames the video plays (not a repeated first frame at the end), uint8 or float in
    [0, 1]. mask: (H, W) bool region (e.g. the motion mask at a fixed camera), or (T, H, W) bool per frame (a pair
    of frames uses the union of their masks), or None (every pixel). Differences are of Rec. 601 grey levels."""
    v = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if v.ndim != 4 or v.shape[0] < 2:
        raise ValueError(f"loop_seam_step: expected (T >= 2, H, W, C) frames, got {v.shape}")
    t = v.shape[0]
    m = np.ones(v.shape[1:3], bool) if mask is None else np.asarray(mask, bool)
    if m.shape not in (v.shape[1:3], v.shape[:3]):
        raise ValueError(f"loop_seam_step: mask shape {m.shape} fits neither {v.shape[1:3]} nor {v.shape[:3]}")

    def region(a: int, b: int) -> np.ndarray:
        return m if m.ndim == 2 else m[a] | m[b]

    def diff(a: int, b: int) -> float:
        r = region(a, b)
        return float(np.abs(_grey255(v[a]) - _grey255(v[b]))[r].mean()) if r.any() else 0.0

    steps = [diff(i, i + 1) for i in range(t - 1)]
    return SeamStep(seam=diff(t - 1, 0), step=float(np.mean(steps)), neighbours=(steps[0] + steps[-1]) / 2)


# ---------------------------------------------------------------------------------------------------------------
# no-reference sharpness


def luminance(img: ArrayLike) -> torch.Tensor:
    """(H, W, 3) -> (H, W) Rec. 601 luma (a grey input passes through)."""
    t = as_image(img)
    if t.shape[2] == 1:
        return t[..., 0]
    if t.shape[2] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {t.shape[2]}")
    return t[..., 0] * 0.299 + t[..., 1] * 0.587 + t[..., 2] * 0.114


_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)


def laplacian_variance(img: ArrayLike) -> float:
    """Variance of the 4-neighbour Laplacian of the luma over interior pixels (higher = sharper)."""
    y = luminance(img)
    if min(y.shape) < 3:
        raise ValueError("laplacian_variance needs at least 3x3 pixels")
    lap = F.conv2d(y[None, None], _LAPLACIAN.view(1, 1, 3, 3))[0, 0]
    return float(lap.var(unbiased=False))


def mean_gradient_magnitude(img: ArrayLike) -> float:
    """Mean |grad| of the luma with central differences over interior pixels, in intensity per pixel."""
    y = luminance(img)
    if min(y.shape) < 3:
        raise ValueError("mean_gradient_magnitude needs at least 3x3 pixels")
    gx = (y[1:-1, 2:] - y[1:-1, :-2]) / 2
    gy = (y[2:, 1:-1] - y[:-2, 1:-1]) / 2
    return float(torch.sqrt(gx ** 2 + gy ** 2).mean())


def sharpness_reference(img: np.ndarray) -> tuple[float, float]:
    """Slicing reference of (laplacian_variance, mean_gradient_magnitude)."""
    a = np.asarray(img, np.float64)
    y = a if a.ndim == 2 else a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1]
    gx = (y[1:-1, 2:] - y[1:-1, :-2]) / 2
    gy = (y[2:, 1:-1] - y[:-2, 1:-1]) / 2
    return float(lap.var()), float(np.hypot(gx, gy).mean())
