"""The 4D scene file: `scene4d.safetensors` (per-Gaussian tensors) + `scene4d.json` (header).

Tensors (N Gaussians, each stored once; K SH coefficients, F Fourier order), all float32 except `moving` (uint8):
  means (N,3), quats (N,4) wxyz, log_scales (N,3), opacity_logits (N,), sh (N,K,3), velocity (N,3) world units per
  frame, moving (N,), pos_coef (N,2F,3), rot_coef (N,2F,4), scale_coef (N,2F,3).
A moving Gaussian is drawn twice from its one set of parameters, at phase 0 and at phase 1 (see dynamics/model.py
and the header's "formula"). Version 1 files stored a separate, separately trained twin per moving Gaussian (a
`phase` tensor); they are refused with a message to rerun the dynamics stage.
Header: format name and version, num_frames, fps, fourier_order, the deformation formula (see dynamics/model.py),
camera intrinsics of the input view, the scene depth, and the convention (OpenCV, world = input camera).
The same header is stored as the safetensors metadata entry "landscape4d", so the .safetensors file alone is
enough to render.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from ..errors import InputError
from ..gaussians.model import OPACITY_MAX, convert_logits
from ..io.atomic import atomic_path, write_json
from .model import Scene4D

FORMAT = "landscape4d-scene4d"
VERSION = 4
# version 2: no extent tensor (every draw shown over its whole path); versions 2 and 3: opacity = sigmoid(logit),
# converted on reading to version 4's OPACITY_MAX * sigmoid(logit) (same opacities)
READABLE = (2, 3, 4)
FORMULA = ("tau = t mod 1; every Gaussian is drawn at phase p = 0 and every moving one again at p = 1, from the same "
           "parameters; position = means + moving * (velocity * num_frames * (tau - p) + sum_f basis_f(tau) "
           "pos_coef[f]); quat = quats + moving * sum_f basis_f rot_coef[f]; scale = exp(log_scales + moving * "
           "sum_f basis_f scale_coef[f]); opacity = 2 * (1 - (1 - a / 2) ** w), a = opacity_max * "
           "sigmoid(opacity_logits) (at most 1 for moving ones), with w = 1 for "
           "static Gaussians, w = cos(pi tau / 2) ** 2 at p = 0 and 1 - cos(pi tau / 2) ** 2 at p = 1 for moving ones, "
           "times m(tau - p) = clamp(1 + (tau - p - extent[0]) * 16, 0, 1) * clamp(1 + (extent[1] - tau + p) * 16, "
           "0, 1); basis = [sin(2 pi k tau) for k=1..F] + [cos(2 pi k tau) for k=1..F]; "
           "colour = SH(sh, view direction) + 0.5")


def save_scene4d(path: str | Path, scene: Scene4D, header: dict) -> dict:
    """Write the tensors (atomically) and the JSON header beside them; returns the header."""
    path = Path(path)
    head = {"format": FORMAT, "version": VERSION, "num_gaussians": len(scene), "num_frames": scene.num_frames,
            "fourier_order": scene.fourier_order, "num_moving": int(scene.moving.sum()), "formula": FORMULA,
            "opacity_max": OPACITY_MAX, **header}
    tensors = {name: getattr(scene, name).detach().float().contiguous().cpu() for name in Scene4D.TENSORS}
    tensors["moving"] = scene.moving.to(torch.uint8).cpu()
    tensors["extent"] = scene.extent_or_full().detach().float().contiguous().cpu()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"landscape4d": json.dumps(head)})
    write_json(path.with_suffix(".json"), head)
    return head


def load_scene4d(path: str | Path, device: str | torch.device = "cpu") -> tuple[Scene4D, dict]:
    """-> (scene, header). Raises InputError naming the file when it is not a landscape4d 4D scene."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path), device=str(device))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise InputError(path, f"not a readable safetensors file ({type(e).__name__})") from None
    try:
        head = json.loads(meta["landscape4d"])
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            raise KeyError("format")
        _check_version(path, head, tensors)
        kw = {name: tensors[name] for name in Scene4D.TENSORS}
        if head["version"] >= 3:
            kw["extent"] = tensors["extent"]
        if head["version"] < 4:
            kw["opacity_logits"] = convert_logits(kw["opacity_logits"], 1.0)
    except (KeyError, json.JSONDecodeError, RecursionError):
        raise InputError(path, "not a landscape4d 4D scene (missing header or tensors)") from None
    num_frames = _check_scene(path, kw, head)
    kw["moving"] = kw["moving"].bool()
    return Scene4D(**kw, num_frames=num_frames), head


def _check_version(path: Path, head: dict, tensors: dict) -> None:
    """Refuse files of another format version (one line naming the file). Raises InputError."""
    version = head.get("version")
    if version in READABLE and "phase" not in tensors:
        return
    if "phase" in tensors or (isinstance(version, int) and version < min(READABLE)):
        raise InputError(path, f"written by an older landscape4d (4D scene format version {version}, a separate "
                               "twin copy per moving Gaussian); rerun the dynamics stage (landscape4d dynamics -o RUN)")
    readable = " and ".join(map(str, READABLE))
    raise InputError(path, f"4D scene format version {version!r} is not supported (this landscape4d reads versions "
                           f"{readable}); use the landscape4d that wrote it or rerun the dynamics stage")


# trailing shape of each tensor (None: any size, checked for consistency below)
_SHAPES = {"means": (3,), "quats": (4,), "log_scales": (3,), "opacity_logits": (), "sh": (None, 3),
           "velocity": (3,), "moving": (), "pos_coef": (None, 3), "rot_coef": (None, 4),
           "scale_coef": (None, 3)}


def _check_scene(path: Path, kw: dict[str, torch.Tensor], head: dict) -> int:
    """Shapes, finiteness and the header fields rendering needs; returns num_frames. Raises InputError."""
    n = kw["means"].shape[0] if kw["means"].dim() == 2 else -1
    for name, trail in _SHAPES.items():
        t = kw[name]
        ok = t.dim() == 1 + len(trail) and t.shape[0] == n and all(
            want is None or got == want for got, want in zip(t.shape[1:], trail))
        if not ok:
            raise InputError(path, f"tensor {name} has shape {tuple(t.shape)}, expected (N, {trail}) with N = {n}")
        if name != "moving" and not torch.isfinite(t).all():
            raise InputError(path, f"tensor {name} has non-finite values")
    ext = kw.get("extent")
    if ext is not None and (tuple(ext.shape) != (n, 2) or not torch.isfinite(ext).all()
                            or (ext[:, 0] > 0).any() or (ext[:, 1] < 0).any()):
        raise InputError(path, f"tensor extent must be (N, 2) finite [lo <= 0, hi >= 0], got shape {tuple(ext.shape)}")
    f2 = kw["pos_coef"].shape[1]
    if f2 % 2 or kw["rot_coef"].shape[1] != f2 or kw["scale_coef"].shape[1] != f2:
        raise InputError(path, "the Fourier coefficient tensors disagree on the Fourier order")
    try:
        num_frames = int(head["num_frames"])
        cam = head["camera"]
        vals = [float(cam[k]) for k in ("fl_x", "fl_y", "cx", "cy", "w", "h")] + [float(head["scene_depth"])]
    except (KeyError, TypeError, ValueError, OverflowError):
        raise InputError(path, "header lacks num_frames, camera (fl_x, fl_y, cx, cy, w, h) or scene_depth") from None
    if num_frames < 1 or not all(math.isfinite(v) and v > 0 for v in vals[:2] + vals[4:]):
        raise InputError(path, "header has a non-positive num_frames, focal length, image size or scene depth")
    return num_frames
