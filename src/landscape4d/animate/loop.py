"""Seamless looping animation of one image by symmetric softmax splatting (Holynski et al. 2021).

Frame t (0 <= t <= N) is the joint normalisation of two softmax splats of the same image:
  - forward:  each moving pixel x goes to x + F_0->t(x), blend weight 1 - t/N,
  - backward: each moving pixel x goes to x + F_N->t(x), blend weight t/N
(see `integrate.py` for the fields), i.e. I_t(y) = sum_k a_k b_k(y) e^{beta Z_k} c_k / sum_k a_k b_k(y) e^{beta Z_k}.
Pixels covered by neither splat (bilinear coverage below `cfg.hole_coverage`) take the input pixel.  Pixels
outside the motion mask are the input exactly, and so are frames 0 and N (their displacements are zero), so
frame N == frame 0 and a video of frames 0..N-1 loops seamlessly.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import AnimateConfig
from ..device import resolve_device
from .integrate import ArrayLike, _as_tensor, integrate_motion_reference, integrate_points
from .splat import MAX_LOGIT, softmax_weights, splat_accumulate, splat_importance


def _inputs(image: ArrayLike, M: ArrayLike, mask: ArrayLike, num_frames: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    img = _as_tensor(image).float()
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {tuple(img.shape)}")
    H, W, _ = img.shape
    mot = _as_tensor(M).float()
    if tuple(mot.shape) != (H, W, 2):
        raise ValueError(f"motion must have shape {(H, W, 2)}, got {tuple(mot.shape)}")
    msk = mask if isinstance(mask, torch.Tensor) else torch.from_numpy(np.asarray(mask))
    if tuple(msk.shape) != (H, W):
        raise ValueError(f"mask must have shape {(H, W)}, got {tuple(msk.shape)}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return img, mot, msk.bool()


def animate_image(image: ArrayLike, M: ArrayLike, mask: ArrayLike, num_frames: int | None = None,
                  cfg: AnimateConfig | None = None, importance: ArrayLike | None = None,
                  device: str | torch.device | None = None, max_rows: int = 8_000_000) -> np.ndarray:
    """Animate `image` (H, W, 3) float with motion M (H, W, 2) px/frame inside `mask` (H, W) bool.

    num_frames N (default cfg.num_frames); importance (H, W) softmax-splatting importance (default:
    `splat_importance(M, weights from cfg)`, faster pixels win); motion outside the mask is ignored.
    device: None/"auto" picks CUDA when present.  max_rows bounds the splat contributions per batch (8 per moving
    pixel and frame; memory is a few tens of bytes each).
    Returns frames 0..N as (N + 1, H, W, 3) float32 numpy; frames[N] == frames[0] == image.
    """
    cfg = cfg or AnimateConfig()
    N = int(cfg.num_frames if num_frames is None else num_frames)
    img, mot, msk = _inputs(image, M, mask, N)
    dev = resolve_device(device)
    H, W, _ = img.shape
    img, mot, msk = img.to(dev), mot.to(dev), msk.to(dev)
    mot = mot * msk.unsqueeze(-1)
    frames = img.unsqueeze(0).repeat(N + 1, 1, 1, 1)  # frames 0 and N (and static pixels) are the input
    src = torch.nonzero(msk.reshape(-1)).squeeze(1)  # (P,) moving sources: the mask pixels
    P = src.numel()
    if P == 0 or N < 2:
        return frames.cpu().numpy()
    if importance is None:
        Z = torch.from_numpy(splat_importance(mot.cpu(), None, cfg.importance_motion, cfg.importance_depth))
    else:
        Z = _as_tensor(importance).float()
        if tuple(Z.shape) != (H, W):
            raise ValueError(f"importance must have shape {(H, W)}, got {tuple(Z.shape)}")
    weights = softmax_weights(Z.to(dev).reshape(-1)[src], cfg.softmax_beta)  # (P,)
    pts = torch.stack([src % W, src // W]).to(img.dtype)  # (2, P) index coords (x, y)
    colors = img.reshape(-1, 3)[src]  # (P, 3)
    # fields[k, 0] = F_0->k, fields[k, 1] = F_N->N-k (k steps through -M), each coordinate-major (2, P)
    fields = integrate_points(mot, pts.T, N, signs=(1.0, -1.0))  # (N + 1, 2, 2, P)
    img_cf = img.permute(2, 0, 1).unsqueeze(1)  # (3, 1, H, W)
    chunk = max(1, int(max_rows // (8 * P)))
    for t0 in range(1, N, chunk):
        t1 = min(t0 + chunk, N)
        a = torch.arange(t0, t1, device=dev, dtype=img.dtype) / N
        fwd = fields[t0:t1, 0] + pts  # (T, 2, P)
        bwd = fields[N - t1 + 1:N - t0 + 1, 1].flip(0) + pts  # frame t uses N - t backward steps
        acc = splat_accumulate(colors, weights, [(fwd, 1 - a), (bwd, a)], H, W)  # (5, T, H, W)
        den = acc[3:4]
        covered = (acc[4:5] >= cfg.hole_coverage) & (den > 0) & msk  # static pixels stay exact
        out = torch.where(covered, acc[:3] / den.clamp(min=torch.finfo(den.dtype).tiny), img_cf)  # holes: input
        frames[t0:t1] = out.permute(1, 2, 3, 0)
    return frames.cpu().numpy()


def animate_image_reference(image: np.ndarray, M: np.ndarray, mask: np.ndarray, num_frames: int,
                            beta: float = 1.0, importance: np.ndarray | None = None,
                            hole_coverage: float = 1e-3) -> np.ndarray:
    """Loop-over-pixels reference of `animate_image` (float64; tiny images only). importance None = zeros."""
    image = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    M = np.asarray(M, dtype=np.float64) * mask[..., None]
    H, W, _ = image.shape
    N = num_frames
    Z = np.zeros((H, W)) if importance is None else np.asarray(importance, dtype=np.float64)
    zmax = beta * Z[mask].max() if mask.any() else 0.0
    fwd = integrate_motion_reference(M, N, sign=1.0)
    bwd = integrate_motion_reference(M, N, sign=-1.0)
    frames = np.repeat(image[None], N + 1, axis=0)
    for t in range(1, N):
        num = np.zeros((H, W, 3))
        den = np.zeros((H, W))
        cov = np.zeros((H, W))
        for alpha, disp in ((1 - t / N, fwd[t]), (t / N, bwd[N - t])):
            for i in range(H):
                for j in range(W):
                    if not mask[i, j]:
                        continue
                    w = alpha * np.exp(max(beta * Z[i, j] - zmax, -MAX_LOGIT))
                    x, y = j + disp[i, j, 0], i + disp[i, j, 1]
                    x0, y0 = int(np.floor(x)), int(np.floor(y))
                    fx, fy = x - x0, y - y0
                    for xi, yi, b in ((x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                                      (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)):
                        if 0 <= xi < W and 0 <= yi < H and b > 0:
                            num[yi, xi] += w * b * image[i, j]
                            den[yi, xi] += w * b
                            cov[yi, xi] += b
        for i in range(H):
            for j in range(W):
                if mask[i, j] and cov[i, j] >= hole_coverage and den[i, j] > 0:
                    frames[t, i, j] = num[i, j] / den[i, j]
    return frames
