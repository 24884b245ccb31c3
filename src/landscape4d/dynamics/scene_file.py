"""The 4D scene file: `scene4d.safetensors` (per-Gaussian tensors) + `scene4d.json` (header).

Tensors (N Gaussians, K SH coefficients, F Fourier order), all float32 except `moving` (uint8):
  means (N,3), quats (N,4) wxyz, log_scales (N,3), opacity_logits (N,), sh (N,K,3), velocity (N,3) world units per
  frame, phase (N,), moving (N,), pos_coef (N,2F,3), rot_coef (N,2F,4), scale_coef (N,2F,3).
Header: format name and version, num_frames, fps, fourier_order, the deformation formula (see dynamics/model.py),
camera intrinsics of the input view, the scene depth, and the convention (OpenCV, world = input camera).
The same header is stored as the safetensors metadata entry "landscape4d", so the .safetensors file alone is
enough to render.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from ..errors import InputError
from ..io.atomic import atomic_path, write_json
from .model import Scene4D

FORMAT = "landscape4d-scene4d"
VERSION = 1
FORMULA = ("tau = t mod 1; position = means + moving * (velocity * num_frames * (tau - phase) + "
           "sum_f basis_f(tau) pos_coef[f]); quat = quats + moving * sum_f basis_f rot_coef[f]; scale = "
           "exp(log_scales + moving * sum_f basis_f scale_coef[f]); opacity = sigmoid(opacity_logits) * "
           "(moving ? |1 - phase - tau| : 1); basis = [sin(2 pi k tau) for k=1..F] + [cos(2 pi k tau) for k=1..F]; "
           "colour = SH(sh, view direction) + 0.5")


def save_scene4d(path: str | Path, scene: Scene4D, header: dict) -> dict:
    """Write the tensors (atomically) and the JSON header beside them; returns the header."""
    path = Path(path)
    head = {"format": FORMAT, "version": VERSION, "num_gaussians": len(scene), "num_frames": scene.num_frames,
            "fourier_order": scene.fourier_order, "num_moving": int(scene.moving.sum()), "formula": FORMULA,
            **header}
    tensors = {name: getattr(scene, name).detach().float().contiguous().cpu() for name in Scene4D.TENSORS}
    tensors["moving"] = scene.moving.to(torch.uint8).cpu()
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
        assert head["format"] == FORMAT
        kw = {name: tensors[name] for name in Scene4D.TENSORS}
    except (KeyError, AssertionError, json.JSONDecodeError):
        raise InputError(path, "not a landscape4d 4D scene (missing header or tensors)") from None
    kw["moving"] = kw["moving"].bool()
    return Scene4D(**kw, num_frames=int(head["num_frames"])), head
