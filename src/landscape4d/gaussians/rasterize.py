"""One rasterizer interface, backends chosen by name: "torch" (CPU/CUDA reference), "numba" (native CPU), "gsplat"
(CUDA), "auto"."""

from __future__ import annotations

import torch

from ..config import RASTER_BACKENDS as BACKENDS
from .raster_gsplat import gsplat_available, rasterize_gsplat
from .raster_torch import rasterize_torch
from .types import RasterOutput


def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except Exception:  # ImportError, or a numba that does not match the installed numpy
        return False
    return True


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """"auto" -> "gsplat" on a CUDA device with gsplat importable, "numba" on the CPU with numba importable,
    else "torch"."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown rasterizer backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if torch.device(device).type == "cuda":
            return "gsplat" if gsplat_available() else "torch"
        return "numba" if numba_available() else "torch"
    return backend


def rasterize(
    means: torch.Tensor,  # (N, 3) world
    quats: torch.Tensor,  # (N, 4) wxyz, normalised inside
    scales: torch.Tensor,  # (N, 3) linear (already activated)
    opacities: torch.Tensor,  # (N,) in [0, 1]
    colors: torch.Tensor,  # (N, 3) RGB or (N, (d+1)^2, 3) SH coefficients
    viewmat: torch.Tensor,  # (4, 4) world-to-camera
    K: torch.Tensor,  # (3, 3)
    width: int,
    height: int,
    background: torch.Tensor | None = None,  # (3,) or None (black)
    backend: str = "torch",
    sh_degree: int | None = None,
) -> RasterOutput:
    """Render N Gaussians into one (height, width) image. See RasterOutput for the outputs.

    With SH colours (3D `colors`) the colour is max(0, SH(view direction) + 0.5); `sh_degree` defaults to the
    degree implied by the number of coefficients.
    """
    name = resolve_backend(backend, means.device)
    if name == "gsplat":
        if means.device.type != "cuda":
            raise ValueError("the gsplat backend needs CUDA tensors")
        fn = rasterize_gsplat
    elif name == "numba":
        if means.device.type != "cpu":
            raise ValueError("the numba backend needs CPU tensors")
        from .raster_numba import rasterize_numba  # imported on first use: numba is only needed here

        fn = rasterize_numba
    else:
        fn = rasterize_torch
    return fn(means, quats, scales, opacities, colors, viewmat, K, width, height, background=background,
              sh_degree=sh_degree)
