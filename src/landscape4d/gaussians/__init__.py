"""3D Gaussian splatting: rasterizer backends (torch on CPU/CUDA, gsplat on CUDA), model, PLY, training.

    rasterize(means, quats, scales, opacities, colors, viewmat, K, width, height, background=None,
              backend="torch", sh_degree=None) -> RasterOutput
    rasterize_reference(...)  same signature, dense brute force (tests)
    GaussianModel, write_ply / read_ply, fit_gaussians(model, views, cfg), render_model(model, K, c2w, w, h)
"""

from .densify import (
    DensifyStats,
    append_params,
    densify_and_prune,
    prune_params,
    reset_opacities,
    reset_param,
)
from .loss import l1, photometric_loss, psnr, ssim, ssim_map
from .model import GaussianModel
from .ply import read_ply, write_ply
from .raster_reference import rasterize_reference
from .rasterize import BACKENDS, rasterize, resolve_backend
from .train import TrainView, fit_gaussians, render_model, scene_extent, viewmat_from_c2w
from .types import RasterOutput

__all__ = [
    "BACKENDS",
    "DensifyStats",
    "GaussianModel",
    "RasterOutput",
    "TrainView",
    "append_params",
    "densify_and_prune",
    "fit_gaussians",
    "l1",
    "photometric_loss",
    "prune_params",
    "psnr",
    "rasterize",
    "rasterize_reference",
    "read_ply",
    "render_model",
    "reset_opacities",
    "reset_param",
    "resolve_backend",
    "scene_extent",
    "ssim",
    "ssim_map",
    "viewmat_from_c2w",
    "write_ply",
]
