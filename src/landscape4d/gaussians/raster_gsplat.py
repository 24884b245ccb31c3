"""gsplat backend (CUDA): wraps `gsplat.rasterization` and maps its outputs to RasterOutput.

gsplat is imported lazily, so CPU installs never need it. Settings that make it draw what the torch backend
draws: classic rasterize mode, eps2d = 0.3 low-pass, near plane 0.01, pixel centres at +0.5, render mode
"RGB+D" (accumulated depth sum_i w_i z_i), background composited here as colour + (1 - alpha) * background.
Known difference: gsplat limits a Gaussian to the tiles of its bounding box, the torch backend to its 3-sigma
ellipse; they agree exactly wherever alpha at 3 sigma is below 1/255 (opacity < 0.35) and differ by at most
opacity * exp(-4.5) on the ellipse rim otherwise. gsplat clamps alpha at 0.999, ours at 0.99: the same only while
opacity * G <= 0.99, i.e. for 3DGS opacities up to 0.99; over the core of a flat-topped static Gaussian (opacity
above 1, gaussians/model.py) gsplat lets 0.1% of what lies behind through where ours lets 1% (not measured on a GPU).
"""

from __future__ import annotations

import torch

from .types import RasterOutput


def gsplat_available() -> bool:
    try:
        import gsplat  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA extension build
        return False
    return True


def rasterize_gsplat(
    means: torch.Tensor,  # (N, 3)
    quats: torch.Tensor,  # (N, 4) wxyz
    scales: torch.Tensor,  # (N, 3)
    opacities: torch.Tensor,  # (N,)
    colors: torch.Tensor,  # (N, 3) or (N, K, 3)
    viewmat: torch.Tensor,  # (4, 4)
    K: torch.Tensor,  # (3, 3)
    width: int,
    height: int,
    background: torch.Tensor | None = None,  # (3,)
    sh_degree: int | None = None,
) -> RasterOutput:
    try:
        from gsplat import rasterization
    except Exception as e:  # pragma: no cover - depends on the machine
        raise RuntimeError(f"the gsplat backend needs the gsplat package with CUDA ({e})") from e
    from .sh import sh_degree_from_bases

    dev, dtype = means.device, means.dtype
    viewmats = viewmat.to(dev, dtype).reshape(1, 4, 4)
    Ks = K.to(dev, dtype).reshape(1, 3, 3)
    if colors.dim() == 3 and sh_degree is None:
        sh_degree = sh_degree_from_bases(colors.shape[1])
    if colors.dim() == 2:
        sh_degree = None
    render, alphas, meta = rasterization(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        int(width),
        int(height),
        near_plane=0.01,
        eps2d=0.3,
        sh_degree=sh_degree,
        packed=False,
        tile_size=16,
        render_mode="RGB+D",
        absgrad=False,
        rasterize_mode="classic",
    )
    color = render[0, ..., :3]
    depth = render[0, ..., 3:4]
    alpha = alphas[0]
    if background is not None:
        color = color + (1.0 - alpha) * background.to(dev, dtype)

    src = meta["means2d"]  # (1, N, 2) on the autograd path
    means2d = src.detach()[0].clone()
    if src.requires_grad:
        # expose a (N, 2) tensor whose .grad accumulates the gradient of gsplat's (1, N, 2) means2d
        means2d.requires_grad_(True)

        def _hook(grad: torch.Tensor) -> None:
            g = grad[0].detach()
            means2d.grad = g.clone() if means2d.grad is None else means2d.grad + g

        src.register_hook(_hook)
    radii = meta["radii"][0]
    if radii.dim() == 2:  # newer gsplat: per-axis radii (N, 2)
        radii = radii.max(dim=-1).values
    return RasterOutput(color=color, alpha=alpha, depth=depth, means2d=means2d, radii=radii.to(torch.int32))
