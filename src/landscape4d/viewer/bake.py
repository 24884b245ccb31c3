"""The web scene: a Scene4D packed for the browser viewer (scene.json header + scene.bin arrays).

The page evaluates the 4D deformation per splat on the GPU every frame (a Spark dyno object modifier, see
viewer/web/src/deform.js), so nothing is baked per keyframe: the file holds each Gaussian once plus, for the moving
ones, the motion parameters. Gaussians are reordered so that the M moving ones come first.

Arrays in scene.bin (little endian, offsets and element counts in header["buffers"]), N = num_gaussians:
  centers f32 (N, 3)  `means` (OpenCV world)          scales f32 (N, 3)  exp(log_scales)
  quats   f32 (N, 4)  normalised, x y z w order        rgba   u8  (N, 4)  SH DC * C0 + 0.5 and opacity a
  motion  f32 (M, 8 + 20 F) per moving Gaussian: velocity * num_frames (3), s = -log(1 - opacity / 2) (the
          page's cross-fade is 2 (1 - exp(-w m s)); as a float, exact where the 8-bit opacity would not be),
          pos_coef (2F, 3), rot_coef (2F, 4) in x y z w order divided by the norm of the raw quaternion,
          scale_coef (2F, 3), extent lo, hi (the travel, in loops, over which the splat is shown: m = 1 inside,
          fading to 0 over dynamics.model.EXTENT_FADE beyond), 0, 0
The opacity a is min(1, OPACITY_MAX sigmoid(logit)): rgba holds it in 8 bits (0..1), so a Gaussian that
the rasterizer draws flat-topped (gaussians/model.py) is a plain bell in the browser.
Dividing the rotation residual by |q| keeps the formula exact with a unit base quaternion:
normalise(q + r) = normalise(q / |q| + r / |q|).

The page draws num_splats = N + M splats, as dynamics.model.gaussians_at does: splat k < M is moving Gaussian k at
phase 0, splat M + k is the same Gaussian k at phase 1 (one loop behind, from the same motion record), and splats
2M .. N + M - 1 are the static Gaussians M .. N - 1. `page_order` gives the Gaussian of each splat.

`evaluate_web` is the numpy mirror of the GLSL (the reference the tests compare with dynamics.model.gaussians_at).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..dynamics.model import EXTENT_FADE, Scene4D
from ..gaussians.model import opacity_from_logits
from ..gaussians.sh import C0

FORMAT = "landscape4d-web-scene"
VERSION = 3  # 3: the motion record ends with the extent
DATA_FILE = "scene.bin"


@dataclass
class WebScene:
    header: dict
    order: np.ndarray  # (N,) int64: web Gaussian k is Scene4D Gaussian order[k]
    centers: np.ndarray  # (N, 3) float32
    scales: np.ndarray  # (N, 3) float32
    quats: np.ndarray  # (N, 4) float32, xyzw, unit
    rgba: np.ndarray  # (N, 4) uint8
    motion: np.ndarray  # (M, 8 + 20F) float32

    @property
    def num_moving(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_gaussians(self) -> int:
        return int(self.centers.shape[0])

    def page_order(self) -> tuple[np.ndarray, np.ndarray]:
        """-> (web Gaussian index (N + M,), phase (N + M,)) of each splat the page draws, in its order."""
        m, n = self.num_moving, self.num_gaussians
        index = np.concatenate([np.arange(m), np.arange(m), np.arange(m, n)])
        phase = np.concatenate([np.zeros(m), np.ones(m), np.zeros(n - m)])
        return index, phase

    @property
    def fourier_order(self) -> int:
        return int(self.header["fourier_order"])

    def arrays(self) -> list[tuple[str, np.ndarray]]:
        return [("centers", self.centers), ("scales", self.scales), ("quats", self.quats), ("rgba", self.rgba),
                ("motion", self.motion)]

    def to_bytes(self) -> tuple[bytes, bytes]:
        """-> (scene.json bytes, scene.bin bytes) with the buffer table filled in."""
        parts, table, offset = [], [], 0
        for name, arr in self.arrays():
            raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            table.append({"name": name, "dtype": "u8" if arr.dtype == np.uint8 else "f32", "offset": offset,
                          "count": int(arr.size), "shape": list(arr.shape)})
            pad = (-len(raw)) % 4
            parts.append(raw + b"\0" * pad)
            offset += len(raw) + pad
        head = {**self.header, "data_file": DATA_FILE, "buffers": table, "data_bytes": offset}
        return json.dumps(head, indent=1).encode(), b"".join(parts)


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy()


def bake_web_scene(scene: Scene4D, header: dict) -> WebScene:
    """Pack a Scene4D (and its scene4d header: camera, scene_depth, fps) for the browser."""
    moving = _np(scene.moving).astype(bool)
    order = np.concatenate([np.nonzero(moving)[0], np.nonzero(~moving)[0]]).astype(np.int64)
    m = int(moving.sum())
    F = scene.fourier_order
    raw_q = _np(scene.quats).astype(np.float64)[order]  # (N, 4) wxyz
    qn = np.linalg.norm(raw_q, axis=1, keepdims=True).clip(1e-12)
    quats = (raw_q / qn)[:, [1, 2, 3, 0]].astype(np.float32)
    colour = np.clip(_np(scene.sh)[order, 0, :].astype(np.float64) * C0 + 0.5, 0, 1)
    opacity = _np(opacity_from_logits(scene.opacity_logits.detach().cpu().double()).clamp(max=1.0))[order]
    rgba = np.rint(np.concatenate([colour, opacity[:, None]], axis=1) * 255).astype(np.uint8)
    mv = order[:m]
    rot = _np(scene.rot_coef).astype(np.float64)[mv][:, :, [1, 2, 3, 0]] / qn[:m, None, :]  # (M, 2F, 4)
    depth = -np.log1p(-0.5 * opacity[:m])  # -log(1 - a / 2)
    motion = np.concatenate([
        _np(scene.velocity)[mv] * scene.num_frames, depth[:, None],
        _np(scene.pos_coef)[mv].reshape(m, 6 * F), rot.reshape(m, 8 * F), _np(scene.scale_coef)[mv].reshape(m, 6 * F),
        _np(scene.extent_or_full())[mv], np.zeros((m, 2)),
    ], axis=1).astype(np.float32)
    cam = header.get("camera")
    if not cam:
        raise ValueError("the scene header has no camera")
    head = {"format": FORMAT, "version": VERSION, "num_gaussians": int(len(order)), "num_splats": int(len(order)) + m,
            "num_moving": m,
            "num_frames": int(scene.num_frames), "fps": float(header.get("fps", 30)), "fourier_order": F,
            "texels_per_moving": 2 + 5 * F, "extent_fade": EXTENT_FADE,
            "camera": {k: cam[k] for k in ("fl_x", "fl_y", "cx", "cy", "w", "h")},
            "scene_depth": float(header.get("scene_depth", 1.0)),
            "convention": "OpenCV camera axes; world = input camera; t in [0, 1) is one loop",
            "colour": "SH degree 0: DC * 0.2820948 + 0.5"}
    return WebScene(head, order, _np(scene.means)[order].astype(np.float32),
                    np.exp(_np(scene.log_scales)[order]).astype(np.float32), quats, rgba, motion)


def web_scene_from_bytes(head_bytes: bytes, data: bytes) -> WebScene:
    """Inverse of WebScene.to_bytes (for tests and tools)."""
    head = json.loads(head_bytes)
    arrs = {}
    for b in head["buffers"]:
        dt = np.uint8 if b["dtype"] == "u8" else np.dtype("<f4")
        arrs[b["name"]] = np.frombuffer(data, dtype=dt, count=b["count"], offset=b["offset"]).reshape(b["shape"])
    n = head["num_gaussians"]
    return WebScene(head, np.arange(n), arrs["centers"], arrs["scales"], arrs["quats"], arrs["rgba"], arrs["motion"])


@dataclass
class WebFrame:
    centers: np.ndarray  # (N + M, 3) one row per splat of the page, in its order (WebScene.page_order)
    scales: np.ndarray  # (N + M, 3)
    quats: np.ndarray  # (N + M, 4) xyzw
    opacity: np.ndarray  # (N + M,)


def evaluate_web(ws: WebScene, t: float) -> WebFrame:
    """The page's per-splat deformation at loop time t, in numpy (mirror of deform.js), in the page's splat order.
    """
    tau = float(t) % 1.0
    F, m = ws.fourier_order, ws.num_moving
    index, phase = ws.page_order()
    k = np.arange(1, F + 1)
    basis = np.concatenate([np.sin(2 * math.pi * k * tau), np.cos(2 * math.pi * k * tau)])  # (2F,)
    rec = ws.motion.astype(np.float64)[index[:2 * m]]  # (2M, ...): the record of each moving splat
    pos = rec[:, 4:4 + 6 * F].reshape(2 * m, 2 * F, 3)
    rot = rec[:, 4 + 6 * F:4 + 14 * F].reshape(2 * m, 2 * F, 4)
    scl = rec[:, 4 + 14 * F:4 + 20 * F].reshape(2 * m, 2 * F, 3)
    centers = ws.centers.astype(np.float64)[index]
    scales = ws.scales.astype(np.float64)[index]
    quats = ws.quats.astype(np.float64)[index]
    opacity = ws.rgba[index, 3].astype(np.float64) / 255.0
    ph = phase[:2 * m, None]
    centers[:2 * m] += rec[:, :3] * (tau - ph) + np.einsum("f,mfc->mc", basis, pos)
    q = quats[:2 * m] + np.einsum("f,mfc->mc", basis, rot)
    quats[:2 * m] = q / np.linalg.norm(q, axis=1, keepdims=True).clip(1e-12)
    scales[:2 * m] *= np.exp(np.einsum("f,mfc->mc", basis, scl))
    w0 = math.cos(0.5 * math.pi * tau) ** 2  # dynamics.model.fade_weights
    weight = np.where(phase[:2 * m] > 0, 1.0 - w0, w0)
    lo, hi, s = rec[:, 4 + 20 * F], rec[:, 5 + 20 * F], tau - phase[:2 * m]
    weight = weight * np.clip(1 + (s - lo) / EXTENT_FADE, 0, 1) * np.clip(1 + (hi - s) / EXTENT_FADE, 0, 1)
    opacity[:2 * m] = -2 * np.expm1(-weight * rec[:, 3])
    return WebFrame(centers, scales, quats, opacity)
