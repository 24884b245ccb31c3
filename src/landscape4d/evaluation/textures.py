"""Periodic textures for the synthetic scenes: procedural FFT noise, bundled photo textures, mip-mapped lookup and
the two-phase flowing-texture blend that loops exactly.

Photo textures come from scikit-image's bundled CC0 images (`skimage.data.grass()`, `gravel()`), which ship inside
its wheel (no download). Without scikit-image, procedural noise of a similar spectrum replaces them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

PHOTO_TEXTURES = ("grass", "gravel")


def fft_noise(size: int, rng: np.random.Generator, beta: float = 1.0, stretch: tuple[float, float] = (1.0, 1.0),
              min_freq: float = 1.0) -> np.ndarray:
    """Periodic (tileable) fractal noise (size, size) float32 scaled to about [0, 1], mean 0.5.

    White noise filtered by a 1/f^beta amplitude spectrum (beta 1: brown noise, larger: smoother). stretch
    (sy, sx) > 1 damps frequencies along that axis (rows, columns), so features become elongated along it.
    min_freq removes (stretched) frequencies below it, in cycles per tile.
    """
    white = rng.standard_normal((size, size))
    fy = np.fft.fftfreq(size)[:, None] * size * stretch[0]
    fx = np.fft.fftfreq(size)[None, :] * size * stretch[1]
    f = np.sqrt(fx ** 2 + fy ** 2)
    amp = np.where(f >= min_freq, np.maximum(f, 1e-9) ** (-beta), 0.0)
    out = np.real(np.fft.ifft2(np.fft.fft2(white) * amp))
    out = (out - out.mean()) / (out.std() + 1e-12)
    return np.clip(0.5 + out / 6.0, 0.0, 1.0).astype(np.float32)


def make_tileable(img: np.ndarray) -> np.ndarray:
    """Seamlessly periodic version of a (H, W) image: a cross-fade with itself rolled by half a tile, weighted
    so the original's wrap-around seams get weight 0 (variance preserved)."""
    h, w = img.shape
    wy = np.sin(np.pi * (np.arange(h) + 0.5) / h) ** 2
    wx = np.sin(np.pi * (np.arange(w) + 0.5) / w) ** 2
    a = np.outer(wy, wx)
    b = 1.0 - a
    rolled = np.roll(img, (h // 2, w // 2), axis=(0, 1))
    mu = img.mean()
    out = mu + (a * (img - mu) + b * (rolled - mu)) / np.sqrt(a ** 2 + b ** 2)
    return out.astype(np.float32)


def photo_texture(name: str) -> np.ndarray | None:
    """A bundled scikit-image texture (grey, float32 [0, 1], tileable), or None when unavailable."""
    if name not in PHOTO_TEXTURES:
        raise ValueError(f"unknown photo texture {name!r}")
    try:
        import skimage.data as data  # optional: only its bundled files are used
        img = getattr(data, name)()
    except Exception:  # noqa: BLE001 - not installed, or the file is not bundled: use procedural noise
        return None
    img = np.asarray(img, np.float32)
    if img.ndim == 3:
        img = img[..., :3].mean(-1)
    img = img / 255.0
    n = 1 << int(math.floor(math.log2(min(img.shape))))
    img = img[:n, :n]
    lo, hi = np.percentile(img, 1), np.percentile(img, 99)
    img = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)
    return make_tileable(img)


class Texture:
    """A periodic grey texture with a mip pyramid, covering `period` world units per tile in each direction.

    sample(u, v, footprint): u, v (N,) world coordinates on the texture plane, footprint (N,) world size of one
    pixel there -> (N,) values; bilinear within a level, linear between levels (trilinear mip-mapping).
    """

    def __init__(self, image: np.ndarray, period: tuple[float, float]):
        img = np.asarray(image, np.float32)
        if img.ndim != 2 or img.shape[0] != img.shape[1] or img.shape[0] & (img.shape[0] - 1):
            raise ValueError(f"texture must be square with a power-of-two side, got {img.shape}")
        self.size = img.shape[0]
        self.period = (float(period[0]), float(period[1]))  # world units along u (columns) and v (rows)
        self.mean = float(img.mean())
        levels = [torch.from_numpy(img)]
        while levels[-1].shape[0] > 4:
            a = levels[-1]
            levels.append(0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]))
        self.levels = levels

    def _bilinear(self, level: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        img = self.levels[level]
        n = img.shape[0]
        s = u / self.period[0] * n - 0.5
        r = v / self.period[1] * n - 0.5
        s0, r0 = torch.floor(s), torch.floor(r)
        fs, fr = (s - s0).to(img.dtype), (r - r0).to(img.dtype)
        j0 = torch.remainder(s0.long(), n)
        i0 = torch.remainder(r0.long(), n)
        j1, i1 = torch.remainder(j0 + 1, n), torch.remainder(i0 + 1, n)
        flat = img.reshape(-1)
        a = flat[i0 * n + j0] * (1 - fs) + flat[i0 * n + j1] * fs
        b = flat[i1 * n + j0] * (1 - fs) + flat[i1 * n + j1] * fs
        return a * (1 - fr) + b * fr

    def sample(self, u: torch.Tensor, v: torch.Tensor, footprint: torch.Tensor | None = None) -> torch.Tensor:
        # float32 coordinates: world positions of at most a few hundred units keep sub-1e-4 texel precision
        u, v = (u % self.period[0]).to(torch.float32), (v % self.period[1]).to(torch.float32)
        if footprint is None:
            return self._bilinear(0, u, v)
        texel = min(self.period) / self.size
        lod = torch.log2(torch.clamp(footprint / texel, min=1.0)).clamp(0, len(self.levels) - 1).to(torch.float32)
        lo = torch.floor(lod).long()
        frac = lod - lo.to(lod.dtype)
        out = torch.zeros(u.shape, dtype=torch.float32)
        if lo.numel() == 0:
            return out
        for level in range(int(lo.min()), min(int(lo.max()) + 2, len(self.levels))):
            base = torch.nonzero(lo == level).reshape(-1)  # weight 1 - frac at this level
            upper = torch.nonzero(lo == level - 1).reshape(-1)  # weight frac at this level
            idx = torch.cat([base, upper])
            if idx.numel() == 0:
                continue
            w = torch.cat([1 - frac[base], frac[upper]])
            out.index_add_(0, idx, w * self._bilinear(level, u[idx], v[idx]))
        return out


def flow_phases(t: float, period: int) -> tuple[float, float, float, float]:
    """Two-phase flow-map timing at frame t for a loop of `period` frames.

    Returns (tau_a, tau_b, w_a, w_b): layer a has been advected for tau_a frames, layer b for tau_b, weights
    w_a + w_b = 1. Each layer restarts when its weight is 0, and everything is periodic in t with `period`,
    so frame `period` equals frame 0.
    """
    phase = (float(t) % period) / period
    phase_b = (phase + 0.5) % 1.0
    w_a = 1.0 - abs(2.0 * phase - 1.0)
    return phase * period, phase_b * period, w_a, 1.0 - w_a


def flowing_sample(tex: Texture, u: torch.Tensor, v: torch.Tensor, vel_u: torch.Tensor, vel_v: torch.Tensor,
                   t: float, period: int, footprint: torch.Tensor | None = None) -> torch.Tensor:
    """Texture advected by a steady velocity (vel_u, vel_v) in world units per frame, looping with `period`.

    Two layers advected for tau_a and tau_b frames are blended with the phase weights, variance-preserving
    around the texture mean (no contrast dip mid-phase). Layer b is offset by half a tile so the two differ.
    """
    tau_a, tau_b, w_a, w_b = flow_phases(t, period)
    a = tex.sample(u - vel_u * tau_a, v - vel_v * tau_a, footprint)
    b = tex.sample(u - vel_u * tau_b + 0.5 * tex.period[0], v - vel_v * tau_b + 0.37 * tex.period[1], footprint)
    mu = tex.mean
    return mu + (w_a * (a - mu) + w_b * (b - mu)) / math.sqrt(w_a ** 2 + w_b ** 2)
