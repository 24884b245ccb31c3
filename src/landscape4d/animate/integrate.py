"""Euler integration of an Eulerian motion field into displacement fields (Holynski et al. 2021).

Coordinates: a motion field M (H, W, 2) holds, at pixel (row i, column j), the velocity (du, dv) in pixels per
frame, du along the columns (right) and dv along the rows (down), as in `landscape4d.camera` (u, v) pixel
coordinates.  Displacements use the same (du, dv) order.  Internally positions are in index coordinates
(x, y) = (j, i); since pixel centres sit at (j + 0.5, i + 0.5), displacements are the same in both systems.

Forward fields: F_0->0 = 0 and F_0->t(x) = F_0->t-1(x) + M(x + F_0->t-1(x)), M sampled bilinearly (clamped at
the image border, so a particle that leaves the image keeps the velocity of the nearest border pixel).  The
pixel x of frame 0 is at x + F_0->t(x) in frame t.

Backward fields (for symmetric splatting): F_N->t is the displacement that takes the pixel x of frame N's image
(in a loop frame N is the input photo again) to its position in frame t < N.  It is the same integration with
the reversed field -M for N - t steps: F_N->N = 0 and F_N->t(x) = F_N->t+1(x) - M(x + F_N->t+1(x)).

Sampling uses `torch.nn.functional.grid_sample`; its coordinate normalisation rounds, so a particle sits within
~1e-5 px of where exact arithmetic would put it (a pixel with zero velocity stays put to that precision).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray | torch.Tensor


def _as_tensor(a: ArrayLike, device: torch.device | str | None = None) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    if not t.is_floating_point() or t.dtype == torch.float16:
        t = t.float()
    return t.to(device) if device is not None else t


def _check_motion(M: ArrayLike) -> None:
    if M.ndim != 3 or M.shape[-1] != 2:
        raise ValueError(f"motion field must have shape (H, W, 2), got {tuple(M.shape)}")


def grid_points(height: int, width: int, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:  # (H*W, 2) index coords (x=j, y=i)
    ii, jj = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                            torch.arange(width, device=device, dtype=dtype), indexing="ij")
    return torch.stack([jj.reshape(-1), ii.reshape(-1)], dim=-1)


def integrate_points(M: torch.Tensor, points: torch.Tensor, num_steps: int,
                     signs: tuple[float, ...] = (1.0,)) -> torch.Tensor:
    """Euler-integrate particles starting at `points` through the field sign * M, for each sign at once.

    M: (H, W, 2) velocity; points: (P, 2) index coords.  Returns displacements (num_steps + 1, S, 2, P)
    (coordinate-major: [..., 0, :] is du, [..., 1, :] is dv) with S = len(signs); entry [k, s] is the
    displacement after k steps through signs[s] * M.  Each step is one bilinear `grid_sample` (border padding)
    of all particles.
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    H, W, _ = M.shape
    S, P = len(signs), points.shape[0]
    field = M.permute(2, 0, 1).unsqueeze(0)  # (1, 2, H, W)
    # align_corners=True maps -1 / +1 to the centres of the first / last pixel: index x -> 2 x / (W - 1) - 1
    scale = torch.tensor([2.0 / max(W - 1, 1), 2.0 / max(H - 1, 1)], dtype=M.dtype, device=M.device)
    grid0 = points * scale - 1  # (P, 2)
    sign = torch.tensor(signs, dtype=M.dtype, device=M.device).view(S, 1, 1)  # (S, 1, 1)
    out = torch.empty((num_steps + 1, S, P, 2), dtype=M.dtype, device=M.device)
    out[0] = 0
    for k in range(1, num_steps + 1):  # sequential in time; each step samples all particles at once
        grid = torch.addcmul(grid0, out[k - 1], scale).unsqueeze(0)  # (1, S, P, 2)
        vel = F.grid_sample(field, grid, mode="bilinear", padding_mode="border", align_corners=True)  # (1,2,S,P)
        torch.addcmul(out[k - 1], sign, vel[0].permute(1, 2, 0), out=out[k])
    out = out.transpose(2, 3)  # (N + 1, S, 2, P) view
    return out


def integrate_motion(M: ArrayLike, num_frames: int) -> ArrayLike:
    """Forward displacement fields F_0->t for t = 0..N: M (H, W, 2) px/frame -> (N + 1, H, W, 2).

    Returns the same array type as `M` (numpy in, numpy out).
    """
    _check_motion(M)
    Mt = _as_tensor(M)
    H, W, _ = Mt.shape
    out = integrate_points(Mt, grid_points(H, W, Mt.device, Mt.dtype), num_frames)[:, 0]  # (N + 1, 2, P)
    out = out.transpose(1, 2).reshape(num_frames + 1, H, W, 2)
    return out if isinstance(M, torch.Tensor) else out.numpy()


def integrate_motion_backward(M: ArrayLike, num_frames: int) -> ArrayLike:
    """Backward displacement fields F_N->t for t = 0..N (index t; F_N->N = 0): (H, W, 2) -> (N + 1, H, W, 2).

    F_N->t(x) is where the pixel x of frame N's image (the input photo again, in a loop) is in frame t, minus x;
    it integrates -M for N - t steps.
    """
    _check_motion(M)
    Mt = _as_tensor(M)
    H, W, _ = Mt.shape
    back = integrate_points(Mt, grid_points(H, W, Mt.device, Mt.dtype), num_frames, signs=(-1.0,))[:, 0]
    out = back.flip(0).transpose(1, 2).reshape(num_frames + 1, H, W, 2)  # step k = N - t
    return out if isinstance(M, torch.Tensor) else out.numpy()


# ---------------------------------------------------------------------------------------------------------------
# reference (pure Python loops; tiny images only)


def _bilinear_sample_reference(M: np.ndarray, x: float, y: float) -> tuple[float, float]:
    H, W, _ = M.shape
    x = min(max(x, 0.0), W - 1.0)
    y = min(max(y, 0.0), H - 1.0)
    x0 = min(int(np.floor(x)), max(W - 2, 0))
    y0 = min(int(np.floor(y)), max(H - 2, 0))
    fx, fy = x - x0, y - y0
    x1, y1 = min(x0 + 1, W - 1), min(y0 + 1, H - 1)
    res = []
    for c in range(2):
        res.append((1 - fx) * (1 - fy) * M[y0, x0, c] + fx * (1 - fy) * M[y0, x1, c]
                   + (1 - fx) * fy * M[y1, x0, c] + fx * fy * M[y1, x1, c])
    return res[0], res[1]


def integrate_motion_reference(M: np.ndarray, num_frames: int, sign: float = 1.0) -> np.ndarray:
    """Loop-over-pixels reference of `integrate_motion` (sign=+1) / of the steps of the backward one (sign=-1).

    Returns (N + 1, H, W, 2) float64 with entry k = displacement after k steps through sign * M.
    """
    M = np.asarray(M, dtype=np.float64)
    H, W, _ = M.shape
    out = np.zeros((num_frames + 1, H, W, 2))
    for i in range(H):
        for j in range(W):
            dx = dy = 0.0
            for k in range(1, num_frames + 1):
                mx, my = _bilinear_sample_reference(M, j + dx, i + dy)
                dx += sign * mx
                dy += sign * my
                out[k, i, j] = (dx, dy)
    return out
