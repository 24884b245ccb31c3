"""4D exports of the looping scene for other tools: one PLY per frame, and the splaTV layout (.splatv).

Both read the scene only through `dynamics.model.gaussians_at(scene, t)`, which returns every draw (static
Gaussians, and each moving Gaussian at its two phases) with the same count and order at every t.

- PLY sequence: DIR/frame_0000.ply, ... at t = k / n for k < n (one loop, n = the scene's frames per loop by
  default), each in the INRIA 3DGS layout of gaussians/ply.py. Every frame holds every draw in the same order, so
  Gaussian i is the same draw in all frames; a draw whose loop weight is 0 at that moment has opacity 1e-6.
- .splatv (antimatter15's splaTV, also read by gsplat.js): a little-endian uint32 magic 0x674B, a uint32 byte
  length L, L bytes of JSON (a list of chunks; ours is one {"type": "splat", "size", "texwidth", "texheight",
  "cameras"}), then `size` bytes: a texwidth x texheight RGBA32UI texture, 4 texels (16 uint32) per Gaussian,
  1024 Gaussians per texture row. Per Gaussian, words 0-2: position (float32); then float16 pairs packed into
  words (low half first): 3 (qw, qx), 4 (qy, qz), 5 (sx, sy), 6 (sz, 0), 7 RGBA bytes (colour, opacity),
  8-12 the motion polynomial m0..m8 (and a 0), 13-14 the rotation change w0..w3, 15 (time centre c, time scale s).
  At time t the viewer draws, with dt = t - c:
      position = xyz + (m0, m1, m2) dt + (m3, m4, m5) dt^2 + (m6, m7, m8) dt^3
      rotation = normalise(q + w dt)        opacity = alpha * exp(-(dt / s)^2)   (skipped below 0.02)
  Scale and colour do not change over time.

Our loop does not fit that form exactly; each draw is least-squares fitted over one loop (t in [0, 1)):
the opacity over time by a Gaussian window (the cos² cross-fade of the two phases becomes two overlapping bell
curves, so the loop's ends no longer meet exactly), then position by a cubic and rotation by a line in the
window's time (the periodic residuals become a cubic), weighted by the fitted opacity; scale and colour are
opacity-weighted means over the loop (their periodic changes are lost). `export_splatv` reports how far the
file is from the loop at a few times.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .dynamics.model import Scene4D, gaussians_at
from .errors import InputError
from .gaussians.sh import C0

SPLATV_MAGIC = 0x674B
SPLATV_PER_ROW = 1024  # Gaussians per texture row: texel k of Gaussian i is at ((i % 1024) * 4 + k, i // 1024)
STATIC_WINDOW = 1.0e4  # time scale of a Gaussian whose opacity does not change: exp(-(dt / 1e4)^2) = 1 on [0, 1]
VIEWER_CUTOFF = 0.02  # the viewers skip a Gaussian whose time window is below this
HALF_MAX = 65504.0

# ---------------------------------------------------------------------------------------------------------------
# one PLY per frame


def export_ply_sequence(scene: Scene4D, directory: str | Path, num_frames: int | None = None) -> list[Path]:
    """DIR/frame_0000.ply, ...: the scene at t = k / n, k < n (n: the scene's frames per loop by default)."""
    from .exports import model_at
    from .gaussians.ply import write_ply

    n = int(num_frames or scene.num_frames)
    if n < 1:
        raise InputError(None, f"--num-frames: {n} must be positive")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(directory, "exists and is not a folder")
    digits = max(4, len(str(n - 1)))
    paths = []
    for k in range(n):
        paths.append(write_ply(model_at(scene, k / n, drop_invisible=False), directory / f"frame_{k:0{digits}d}.ply",
                               opacity_max=1.0))  # for other 3DGS tools: sigmoid(logit), at most 1
    return paths


# ---------------------------------------------------------------------------------------------------------------
# fitting the splaTV form to the loop


@dataclass
class SplatvFit:
    """Per-Gaussian parameters of the splaTV form (float64 numpy)."""

    means: np.ndarray  # (N, 3) position at the window centre
    motion: np.ndarray  # (N, 3, 3): rows are the coefficients of dt, dt^2, dt^3; columns x, y, z
    quats: np.ndarray  # (N, 4) wxyz at the window centre (not normalised)
    omega: np.ndarray  # (N, 4) rotation change per unit of t
    scales: np.ndarray  # (N, 3) linear
    rgba: np.ndarray  # (N, 4) colour (SH DC as RGB) and peak opacity, in [0, 1]
    center: np.ndarray  # (N,) time centre
    window: np.ndarray  # (N,) time scale

    def __len__(self) -> int:
        return len(self.means)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy()


def sample_times(samples: int) -> np.ndarray:
    """(samples,) loop times at the middle of `samples` equal steps of [0, 1)."""
    return (np.arange(samples) + 0.5) / samples


def fit_time_window(times: np.ndarray, opacity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares fit of alpha * exp(-((t - c) / s)^2) to each row of opacity (N, T) sampled at times (T,).

    log(opacity) is fitted by a parabola (weighted by opacity^2, so the tails count little), which gives c and s;
    alpha is then the linear least-squares amplitude, clipped to [0, 1]. Rows that do not change (or whose log
    is not concave) get c = 0.5, s = STATIC_WINDOW and their mean. Returns (alpha, c, s), each (N,)."""
    peak = opacity.max(axis=1)
    flat = (peak - opacity.min(axis=1)) <= 1e-3 * np.maximum(peak, 1e-12)
    y = np.log(np.maximum(opacity, 1e-4 * peak[:, None] + 1e-30))
    w = (opacity / np.maximum(peak, 1e-30)[:, None]) ** 2
    basis = np.stack([np.ones_like(times), times, times**2], axis=1)  # (T, 3)
    m = np.einsum("nt,ti,tj->nij", w, basis, basis) + 1e-12 * np.eye(3)
    coef = np.linalg.solve(m, np.einsum("nt,ti,nt->ni", w, basis, y)[..., None])[..., 0]
    b, c2 = coef[:, 1], coef[:, 2]
    bell = ~flat & (c2 < -1e-6)
    safe = np.where(bell, c2, -1.0)
    center = np.where(bell, np.clip(-b / (2 * safe), -2.0, 3.0), 0.5)
    scale = np.where(bell, np.clip(np.sqrt(-1 / safe), 1e-3, STATIC_WINDOW), STATIC_WINDOW)
    g = np.exp(-(((times[None, :] - center[:, None]) / scale[:, None]) ** 2))
    alpha = (opacity * g).sum(axis=1) / np.maximum((g * g).sum(axis=1), 1e-30)
    alpha = np.where(bell, alpha, opacity.mean(axis=1))
    return np.clip(alpha, 0.0, 1.0), center, scale


def _unit_aligned(q: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Unit quaternions (N, 4), each sign-flipped to the hemisphere of ref (N, 4)."""
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    return np.where((q * ref).sum(axis=1, keepdims=True) < 0, -q, q)


def _solve(m: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Batched least squares: m (N, k, k), r (N, k, c) -> (N, k, c), with a tiny ridge."""
    k = m.shape[-1]
    scale = np.maximum(np.trace(m, axis1=1, axis2=2) / k, 1e-30)[:, None, None]
    return np.linalg.solve(m + 1e-10 * scale * np.eye(k), r)


class _Moments:
    """Running weighted sums over loop times for one draw each: sum w dt^k (k <= 6), sum w dt^k position (k <= 3),
    sum w dt^k unit quaternion (k <= 1), sum w log scale, sum w colour. The normal equations of the cubic and the
    line are Hankel matrices of the first sums."""

    def __init__(self, n: int):
        self.mom, self.pos, self.rot = np.zeros((n, 7)), np.zeros((n, 4, 3)), np.zeros((n, 2, 4))
        self.log_scale, self.rgb, self.ref = np.zeros((n, 3)), np.zeros((n, 3)), None

    def add(self, g, dt: np.ndarray, w: np.ndarray) -> None:
        powers = np.empty((len(w), 7))  # w dt^k
        powers[:, 0] = w
        for k in range(1, 7):
            powers[:, k] = powers[:, k - 1] * dt
        self.mom += powers
        self.pos += powers[:, :4, None] * _np(g.means)[:, None, :]
        q = _np(g.quats)
        if self.ref is None:
            self.ref = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        self.rot += powers[:, :2, None] * _unit_aligned(q, self.ref)[:, None, :]
        self.log_scale += w[:, None] * np.log(np.maximum(_np(g.scales), 1e-30))
        self.rgb += w[:, None] * (_np(g.colors).reshape(len(w), -1, 3)[:, 0] * C0 + 0.5)

    def solve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """-> position coefficients (N, 4, 3), rotation (N, 2, 4), mean scale (N, 3), mean colour (N, 3)."""
        hankel = np.add.outer(np.arange(4), np.arange(4))
        wsum = self.mom[:, :1]
        return (_solve(self.mom[:, hankel], self.pos), _solve(self.mom[:, hankel[:2, :2]], self.rot),
                np.exp(self.log_scale / wsum), np.clip(self.rgb / wsum, 0, 1))


def fit_splatv(scene: Scene4D, samples: int = 64) -> SplatvFit:
    """Fit every draw of `gaussians_at` over one loop (two passes over `samples` loop times)."""
    times = sample_times(samples)
    with torch.no_grad():
        opacity = np.stack([_np(gaussians_at(scene, float(t)).opacities) for t in times], axis=1)  # (N, T)
        alpha, center, window = fit_time_window(times, opacity)
        acc = _Moments(len(alpha))
        for t in times:
            dt = t - center
            w = alpha * np.exp(-((dt / window) ** 2)) + 1e-3  # where the file shows the draw, plus a floor
            acc.add(gaussians_at(scene, float(t)), dt, w)
    pos, rot, scales, rgb = acc.solve()
    return SplatvFit(pos[:, 0], pos[:, 1:], rot[:, 0], rot[:, 1], scales,
                     np.concatenate([rgb, alpha[:, None]], axis=1), center, window)


# ---------------------------------------------------------------------------------------------------------------
# the file


def _pack_half2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) uint32 words holding float16(a) in the low and float16(b) in the high 16 bits (GLSL packHalf2x16)."""
    h = np.stack([np.clip(a, -HALF_MAX, HALF_MAX), np.clip(b, -HALF_MAX, HALF_MAX)], axis=1).astype("<f2")
    return np.ascontiguousarray(h).view("<u4")[:, 0]


def splatv_words(fit: SplatvFit) -> np.ndarray:
    """(rows * 1024, 16) uint32 texture words; the rows past len(fit) are invisible padding."""
    n = len(fit)
    total = max(1, math.ceil(n / SPLATV_PER_ROW)) * SPLATV_PER_ROW
    words = np.zeros((total, 16), "<u4")
    words[:, 15] = _pack_half2(np.full(total, -1.0e4), np.ones(total))  # padding: a time window far away
    words[:n, 0:3] = np.ascontiguousarray(fit.means.astype("<f4")).view("<u4")
    q, s, m, w = fit.quats, fit.scales, fit.motion.reshape(n, 9), fit.omega
    zero = np.zeros(n)
    columns = [(q[:, 0], q[:, 1]), (q[:, 2], q[:, 3]), (s[:, 0], s[:, 1]), (s[:, 2], zero)]
    for k, (a, b) in enumerate(columns):
        words[:n, 3 + k] = _pack_half2(a, b)
    rgba = np.clip(np.rint(fit.rgba * 255), 0, 255).astype(np.uint8)
    words[:n, 7] = np.ascontiguousarray(rgba).view("<u4")[:, 0]
    pairs = [(m[:, 0], m[:, 1]), (m[:, 2], m[:, 3]), (m[:, 4], m[:, 5]), (m[:, 6], m[:, 7]), (m[:, 8], zero),
             (w[:, 0], w[:, 1]), (w[:, 2], w[:, 3]), (fit.center, fit.window)]
    for k, (a, b) in enumerate(pairs):
        words[:n, 8 + k] = _pack_half2(a, b)
    return words


def splatv_bytes(fit: SplatvFit, header: dict) -> bytes:
    """The whole .splatv file: magic, JSON chunk list (padded to 4 bytes), texture."""
    words = splatv_words(fit)
    cam = header.get("camera", {})
    camera = {"id": 0, "img_name": "input", "width": int(cam.get("w", 0)), "height": int(cam.get("h", 0)),
              "position": [0.0, 0.0, 0.0], "rotation": np.eye(3).tolist(), "fx": float(cam.get("fl_x", 0.0)),
              "fy": float(cam.get("fl_y", 0.0))}  # the input camera: the world frame (OpenCV axes)
    chunk = {"type": "splat", "size": int(words.nbytes), "texwidth": 4 * SPLATV_PER_ROW,
             "texheight": len(words) // SPLATV_PER_ROW, "cameras": [camera], "count": len(fit),
             "landscape4d": {"time": "t in [0, 1] is one loop", "fps": header.get("fps"),
                             "frames_per_loop": header.get("num_frames")}}
    text = json.dumps([chunk]).encode()
    text += b" " * (-(8 + len(text)) % 4)
    return struct.pack("<II", SPLATV_MAGIC, len(text)) + text + words.tobytes()


def splatv_state_at(words: np.ndarray, t: float) -> dict[str, np.ndarray]:
    """The splaTV formula on texture words (N, 16) at time t: means, unit quats (wxyz), scales, opacity (0 where
    the viewers skip the Gaussian). The check of `export_splatv` (tests read files with their own reader)."""
    h = np.ascontiguousarray(words[:, 3:]).view("<f2").astype(np.float64).reshape(len(words), 13, 2)
    c, s = h[:, 12, 0], h[:, 12, 1]
    dt = t - c
    m = h[:, 5:10].reshape(-1, 10)[:, :9].reshape(-1, 3, 3)
    means = np.ascontiguousarray(words[:, :3]).view("<f4").astype(np.float64)
    means = means + m[:, 0] * dt[:, None] + m[:, 1] * dt[:, None] ** 2 + m[:, 2] * dt[:, None] ** 3
    q = h[:, 0:2].reshape(-1, 4) + h[:, 10:12].reshape(-1, 4) * dt[:, None]
    window = np.exp(-((dt / np.where(s == 0, 1e-30, s)) ** 2))
    alpha = ((words[:, 7] >> 24) & 0xFF) / 255.0
    return {"means": means, "quats": q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12),
            "scales": h[:, 2:4].reshape(-1, 4)[:, :3], "opacity": np.where(window < VIEWER_CUTOFF, 0, alpha * window)}


def splatv_errors(scene: Scene4D, words: np.ndarray, scene_depth: float, checks: int = 8) -> dict:
    """File vs loop at `checks` times: position rms (weighted by the loop's opacity), opacity rms."""
    pos_err, pos_w, op_err = 0.0, 0.0, []
    for t in sample_times(checks):
        with torch.no_grad():
            g = gaussians_at(scene, float(t))
        state = splatv_state_at(words, float(t))
        op = _np(g.opacities)
        pos_err += float((op * ((state["means"] - _np(g.means)) ** 2).sum(axis=1)).sum())
        pos_w += float(op.sum())
        op_err.append(state["opacity"] - op)
    rms = math.sqrt(pos_err / max(pos_w, 1e-30))
    return {"check_times": checks, "position_rms": rms, "position_rms_rel": rms / max(scene_depth, 1e-12),
            "opacity_rms": float(np.sqrt(np.mean(np.concatenate(op_err) ** 2)))}


def export_splatv(scene: Scene4D, header: dict, path: str | Path, samples: int = 64) -> dict:
    """Write the .splatv of the loop; returns {gaussians, check_times, position_rms, position_rms_rel,
    opacity_rms}."""
    from .io.atomic import atomic_path

    path = Path(path)
    fit = fit_splatv(scene.to("cpu"), samples)
    data = splatv_bytes(fit, {**header, "num_frames": scene.num_frames})
    with atomic_path(path, suffix=".splatv") as tmp:
        tmp.write_bytes(data)
    words = np.frombuffer(data[8 + struct.unpack_from("<I", data, 4)[0]:], "<u4").reshape(-1, 16)[:len(fit)]
    return {"gaussians": len(fit), **splatv_errors(scene.to("cpu"), words, float(header.get("scene_depth", 1.0)))}
