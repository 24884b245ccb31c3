"""Softmax splatting (Niklaus & Liu 2020): forward warping with bilinear footprints and exp(importance) weights.

A source pixel with colour c, importance Z and target position p (index coords, see `integrate.py`) adds
w = alpha * b_k(p) * exp(beta * Z) to the four pixels k around p (b_k: bilinear weights) and w * c to their
colour sums; the output is the colour sum over the weight sum.  The importance is shifted by its maximum before
`exp` (the ratio is unchanged) and differences beyond `MAX_LOGIT` are clamped so no weight underflows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .integrate import ArrayLike, _as_tensor, grid_points

MAX_LOGIT = 60.0  # exp(-60) ~ 1e-26 keeps every weight a normal float32


def softmax_weights(importance: torch.Tensor, beta: float) -> torch.Tensor:
    """exp(beta * (Z - max Z)) with the exponent clamped at -MAX_LOGIT; any shape."""
    if importance.numel() == 0:
        return importance.clone()
    logit = beta * importance
    return torch.exp((logit - logit.max()).clamp(min=-MAX_LOGIT))


def splat_accumulate(colors: torch.Tensor, weights: torch.Tensor,
                     layers: Sequence[tuple[torch.Tensor, torch.Tensor]], height: int, width: int) -> torch.Tensor:
    """Splat P sources into T frames; each layer is a (positions, alphas) pair splatted into the same frames.

    colors: (P, C); weights: (P,) softmax weights; each layer: positions (T, 2, P) target index coords
    ([:, 0] = x, [:, 1] = y) and alphas (T,) blend weights of that layer per frame (0 = layer unused).
    Returns (C + 2, T, H, W) channel-first: [sum w*c (C), sum w, coverage], with w = alpha * bilinear * weight
    and coverage = sum of the bilinear weights of the layers whose alpha > 0 (how much source area landed there).

    Implementation: one index_add_ per bilinear corner into a channel-first buffer with a border (1 pixel
    before, 2 after) and positions clamped into [-1, size]: a footprint off the image lands in the border, so
    no per-corner test is needed; the border is cropped away at the end.
    """
    P, C = colors.shape
    T = layers[0][0].shape[0] if layers else 0
    Hp, Wp = height + 3, width + 3
    dev, dt = colors.device, colors.dtype
    acc = torch.zeros((C + 2, T * Hp * Wp), dtype=dt, device=dev)
    colors_t = colors.T.contiguous().view(C, 1, P)
    exact_float_index = dt == torch.float64 or Hp * Wp < 2 ** 24  # the float holds y * Wp + x exactly
    for positions, alphas in layers if P > 0 and T > 0 else ():
        if positions.shape != (T, 2, P) or alphas.shape != (T,):
            raise ValueError(f"layer positions must be {(T, 2, P)} and alphas {(T,)}, got "
                             f"{tuple(positions.shape)} and {tuple(alphas.shape)}")
        fx = positions[:, 0].clamp(-1, width)  # (T, P)
        fy = positions[:, 1].clamp(-1, height)
        x0 = torch.floor(fx)
        y0 = torch.floor(fy)
        fx.sub_(x0)
        fy.sub_(y0)
        offset = (torch.arange(T, device=dev, dtype=torch.int64) * (Hp * Wp) + Wp + 1).view(T, 1)
        if exact_float_index:
            idx = x0.add_(y0, alpha=Wp).long() + offset  # (T, P) index of the top-left corner
        else:
            idx = x0.long() + y0.long() * Wp + offset
        idx = idx.view(-1)
        gx = 1 - fx
        gy = 1 - fy
        base = torch.empty((C + 1, T, P), dtype=dt, device=dev)  # [aw * colour (C), aw], aw = alpha * weight
        torch.mul(alphas.to(dt).view(T, 1), weights.view(1, P), out=base[C])
        torch.mul(base[C].unsqueeze(0), colors_t, out=base[:C])
        used = (alphas > 0).to(dt).view(T, 1)
        all_used = bool((alphas > 0).all())
        vals = torch.empty((C + 2, T, P), dtype=dt, device=dev)
        for bx, by, off in ((gx, gy, 0), (fx, gy, 1), (gx, fy, Wp), (fx, fy, Wp + 1)):
            torch.mul(bx, by, out=vals[C + 1])  # bilinear weight of this corner
            torch.mul(base, vals[C + 1].unsqueeze(0), out=vals[:C + 1])
            if not all_used:
                vals[C + 1].mul_(used)
            acc.index_add_(1, idx + off if off else idx, vals.view(C + 2, -1))
    return acc.view(C + 2, T, Hp, Wp)[:, :, 1:height + 1, 1:width + 1]


def softmax_splat(image: ArrayLike, flow: ArrayLike, importance: ArrayLike | None = None,
                  beta: float = 1.0) -> tuple[ArrayLike, ArrayLike]:
    """Forward-warp `image` (H, W, C) by `flow` (H, W, 2) (pixel (i, j) goes to (j, i) + flow[i, j]).

    importance: (H, W) or None (= equal weights).  Returns (warped (H, W, C), weight (H, W)); pixels that
    received no weight are 0 in `warped` and in `weight`.  Same array type as `image`.
    """
    img = _as_tensor(image)
    H, W, C = img.shape
    fl = _as_tensor(flow, img.device).to(img.dtype)
    if fl.shape != (H, W, 2):
        raise ValueError(f"flow must have shape {(H, W, 2)}, got {tuple(fl.shape)}")
    Z = torch.zeros((H, W), dtype=img.dtype, device=img.device) if importance is None else \
        _as_tensor(importance, img.device).to(img.dtype)
    pos = (grid_points(H, W, img.device, img.dtype) + fl.reshape(-1, 2)).T.unsqueeze(0)  # (1, 2, P)
    acc = splat_accumulate(img.reshape(-1, C), softmax_weights(Z.reshape(-1), beta),
                           [(pos, torch.ones(1, dtype=img.dtype, device=img.device))], H, W)[:, 0]  # (C+2, H, W)
    den = acc[C]
    out = torch.where(den > 0, acc[:C] / den.clamp(min=torch.finfo(den.dtype).tiny), torch.zeros_like(acc[:C]))
    out = out.permute(1, 2, 0).contiguous()
    if isinstance(image, torch.Tensor):
        return out, den.contiguous()
    return out.numpy(), den.contiguous().numpy()


def softmax_splat_reference(image: np.ndarray, flow: np.ndarray, importance: np.ndarray | None = None,
                            beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Loop-over-pixels reference of `softmax_splat` (float64; tiny images only)."""
    image = np.asarray(image, dtype=np.float64)
    flow = np.asarray(flow, dtype=np.float64)
    H, W, C = image.shape
    Z = np.zeros((H, W)) if importance is None else np.asarray(importance, dtype=np.float64)
    zmax = beta * Z.max()
    num = np.zeros((H, W, C))
    den = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            w = np.exp(max(beta * Z[i, j] - zmax, -MAX_LOGIT))
            x, y = j + flow[i, j, 0], i + flow[i, j, 1]
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            fx, fy = x - x0, y - y0
            for xi, yi, b in ((x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                              (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)):
                if 0 <= xi < W and 0 <= yi < H and b > 0:
                    num[yi, xi] += w * b * image[i, j]
                    den[yi, xi] += w * b
    out = np.where(den[..., None] > 0, num / np.where(den > 0, den, 1.0)[..., None], 0.0)
    return out, den


def splat_importance(motion: ArrayLike | None = None, depth: ArrayLike | None = None,
                     motion_weight: float = 1.0, depth_weight: float = 10.0) -> np.ndarray:
    """Importance Z (H, W) for softmax splatting: nearer and faster pixels win where several land together.

    Z = depth_weight * disparity / max disparity + motion_weight * |M| / max |M| (terms for the maps given).
    Returns float32 numpy; zeros when neither map is given.
    """
    ref = motion if motion is not None else depth
    if ref is None:
        raise ValueError("splat_importance needs a motion field or a depth map")
    shape = tuple(ref.shape[:2])
    Z = np.zeros(shape, dtype=np.float64)
    if depth is not None:
        d = np.asarray(depth.cpu() if isinstance(depth, torch.Tensor) else depth, dtype=np.float64)
        if d.shape != shape:
            raise ValueError(f"depth must have shape {shape}, got {d.shape}")
        disp = 1.0 / np.maximum(d, 1e-6)
        Z += depth_weight * disp / max(float(disp.max()), 1e-12)
    if motion is not None:
        m = np.asarray(motion.cpu() if isinstance(motion, torch.Tensor) else motion, dtype=np.float64)
        speed = np.linalg.norm(m, axis=-1)
        if speed.max() > 0:
            Z += motion_weight * speed / speed.max()
    return Z.astype(np.float32)
