"""Gaussian PLY files in the INRIA 3DGS layout (readable by common 3DGS viewers and tools).

Vertex properties, all float32: x y z nx ny nz f_dc_0..2 f_rest_0..(3*(K-1)-1) opacity scale_0..2 rot_0..3, with
opacity stored as a logit, scales as logs, rotation as wxyz, and f_rest channel-major (all red coefficients, then
green, then blue) as the INRIA code writes them. Our opacity is OPACITY_MAX * sigmoid(logit) (gaussians/model.py):
the file says so in a header comment `landscape4d opacity_max <value>`; a file without it (another tool's, or an
older landscape4d's) has 3DGS opacities sigmoid(logit), and its logits are converted on reading. Other 3DGS tools
read our opacities as sigmoid(logit), i.e. divided by OPACITY_MAX.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .model import OPACITY_MAX, GaussianModel, convert_logits
from .sh import sh_degree_from_bases


OPACITY_COMMENT = "landscape4d opacity_max"


def file_opacity_max(comments: list[str]) -> float:
    """The OPACITY_MAX a PLY file's logits were written under: its `landscape4d opacity_max` comment, else 1 (3DGS)."""
    for c in comments:
        if c.startswith(OPACITY_COMMENT):
            try:
                value = float(c[len(OPACITY_COMMENT):])
            except ValueError:
                continue
            if math.isfinite(value) and value > 0:
                return value
    return 1.0


def write_ply(model: GaussianModel, path: str | Path, opacity_max: float = OPACITY_MAX) -> Path:
    """Write the model; its logits are written under `opacity_max` (1: what other 3DGS tools read, opacities above 1
    kept just below it; the default keeps ours exactly)."""
    from plyfile import PlyData, PlyElement

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = model.num
    sh = model.sh.detach().cpu().float().numpy()  # (N, K, 3)
    dc = sh[:, 0, :]
    rest = sh[:, 1:, :].transpose(0, 2, 1).reshape(n, -1)  # (N, 3*(K-1)) channel-major
    cols = {
        "x": model.means[:, 0], "y": model.means[:, 1], "z": model.means[:, 2],
    }
    arrays = {k: v.detach().cpu().float().numpy() for k, v in cols.items()}
    for k in ("nx", "ny", "nz"):
        arrays[k] = np.zeros(n, np.float32)
    for i in range(3):
        arrays[f"f_dc_{i}"] = dc[:, i]
    for i in range(rest.shape[1]):
        arrays[f"f_rest_{i}"] = rest[:, i]
    arrays["opacity"] = convert_logits(model.opacity_logits.detach(), OPACITY_MAX, opacity_max).cpu().float().numpy()
    ls = model.log_scales.detach().cpu().float().numpy()
    q = model.quats.detach().cpu().float().numpy()
    for i in range(3):
        arrays[f"scale_{i}"] = ls[:, i]
    for i in range(4):
        arrays[f"rot_{i}"] = q[:, i]
    dtype = [(k, "f4") for k in arrays]
    data = np.empty(n, dtype=dtype)
    for k, v in arrays.items():
        data[k] = v
    tmp = path.with_name(path.name + ".tmp")
    PlyData([PlyElement.describe(data, "vertex")], text=False,
            comments=[f"{OPACITY_COMMENT} {opacity_max!r}"]).write(str(tmp))
    tmp.replace(path)
    return path


def read_ply(path: str | Path, device: torch.device | str = "cpu") -> GaussianModel:
    from plyfile import PlyData

    path = Path(path)
    try:
        ply = PlyData.read(str(path))
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except Exception as e:  # plyfile raises several kinds of errors on malformed files
        raise InputError(path, f"not a readable PLY file ({e})") from None
    if "vertex" not in [el.name for el in ply.elements]:
        raise InputError(path, "no 'vertex' element")
    v = ply["vertex"].data
    names = set(v.dtype.names or ())
    need = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"] + [f"scale_{i}" for i in range(3)] + [
        f"rot_{i}" for i in range(4)]
    missing = [k for k in need if k not in names]
    if missing:
        raise InputError(path, f"not a 3DGS Gaussian PLY: missing properties {', '.join(missing)}")
    n = len(v)
    rest_names = sorted((k for k in names if k.startswith("f_rest_")), key=lambda s: int(s.split("_")[-1]))
    if len(rest_names) % 3:
        raise InputError(path, f"{len(rest_names)} f_rest properties is not a multiple of 3")
    k = 1 + len(rest_names) // 3
    try:
        sh_degree_from_bases(k)
    except ValueError as e:
        raise InputError(path, str(e)) from None
    col = lambda name: np.asarray(v[name], dtype=np.float32)  # noqa: E731
    means = np.stack([col("x"), col("y"), col("z")], axis=1)
    sh = np.zeros((n, k, 3), np.float32)
    sh[:, 0, :] = np.stack([col(f"f_dc_{i}") for i in range(3)], axis=1)
    if k > 1:
        rest = np.stack([col(name) for name in rest_names], axis=1).reshape(n, 3, k - 1)
        sh[:, 1:, :] = rest.transpose(0, 2, 1)
    ls = np.stack([col(f"scale_{i}") for i in range(3)], axis=1)
    q = np.stack([col(f"rot_{i}") for i in range(4)], axis=1)
    op = col("opacity")
    arrs = [means, ls, q, op, sh]
    if not all(np.isfinite(a).all() for a in arrs):
        raise InputError(path, "non-finite values in the Gaussian parameters")
    t = [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrs]
    t[3] = convert_logits(t[3], file_opacity_max(list(ply.comments)))
    return GaussianModel(*t)
