"""Native CPU rasterizer backend ("numba"): the image of raster_reference, forward and backward in numba
kernels, multi-threaded. Same signature and outputs as `rasterize_torch`.

Two autograd Functions, as in the torch backend's structure:
- `_Project`: EWA projection (raster_numba_project) -> means2d (N, 2), conics (N, 3), depths (N,), and the
  non-differentiable extents, reach, radii, valid; its backward is hand-written in numba too.
- `_Composite`: tile lists (raster_numba_tiles, no gradient), per-tile compositing and its backward
  (raster_numba_render) -> colour, alpha, depth images; gradients w.r.t. means2d, conics, opacities, rgb,
  depths and the background.
`means2d` is the tensor between the two, so after backward its `.grad` is dL/d(pixel position) (densification
reads it). SH colours are evaluated in torch (`gaussian_colors`, autograd) and the kernels composite RGB.
No gradient flows to the camera (viewmat, K).

Threads: numba uses torch's thread count at call time (`torch.get_num_threads()`), or `NumbaSettings.threads`.
Kernels are compiled on first use and cached on disk (see raster_numba_jit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import raster_numba_project as proj_k
from . import raster_numba_render as render_k
from . import raster_numba_tiles as tiles_k
from .projection import gaussian_colors
from .raster_numba_jit import use_threads
from .types import RasterOutput

TILE = tiles_k.TILE


@dataclass
class NumbaSettings:
    """Knobs of the numba backend (the image does not depend on them)."""

    threads: int | None = None  # None: torch.get_num_threads() at call time


@dataclass
class TileLists:
    """Which Gaussians touch which 16 x 16 tile, each list in depth order."""

    tiles_x: int
    tiles_y: int
    tile_start: np.ndarray  # (n_tiles + 1,) int64 start of each tile's list in gids
    gids: np.ndarray  # (M,) int32 Gaussian ids

    @property
    def num_intersections(self) -> int:
        return int(self.gids.shape[0])


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def plan_tiles(means2d: np.ndarray, conics: np.ndarray, extents: np.ndarray, reach: np.ndarray,
               valid: np.ndarray, depths: np.ndarray, width: int, height: int, n_chunks: int) -> TileLists:
    """Per-tile Gaussian lists in depth order (ties by index) from the projection's outputs (numpy, (N, ...))."""
    tx, ty = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    counts = np.empty(means2d.shape[0], np.int64)
    tiles_k.count_tiles(means2d, conics, extents, reach, valid, tx, ty, counts)
    listed = np.flatnonzero(counts)
    order = listed[tiles_k.radix_argsort(*tiles_k.depth_keys(depths[listed]))]
    n = counts[order]
    ends = np.cumsum(n)
    m = int(ends[-1]) if ends.size else 0
    pair_tile, pair_gid = np.empty(m, np.int32), np.empty(m, np.int32)
    tiles_k.fill_pairs(order, ends - n, means2d, conics, extents, reach, tx, ty, pair_tile, pair_gid)
    tile_start, gids = np.empty(tx * ty + 1, np.int64), np.empty(m, np.int32)
    tiles_k.sort_by_tile(pair_tile, pair_gid, tx * ty, n_chunks, tile_start, gids)
    return TileLists(tx, ty, tile_start, gids)


class _Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmat, K, width, height, threads):
        use_threads(threads)
        n, dt = means.shape[0], _np(means).dtype
        out = dict(means2d=np.empty((n, 2), dt), conics=np.empty((n, 3), dt), depths=np.empty(n, dt),
                   extents=np.empty((n, 2), dt), reach=np.empty(n, dt), radii=np.empty(n, np.int32),
                   valid=np.empty(n, np.bool_))
        proj_k.project_forward(_np(means), _np(quats), _np(scales), _np(opacities), _np(viewmat), _np(K),
                               width, height, *out.values())
        t = {k: torch.from_numpy(v) for k, v in out.items()}
        ctx.save_for_backward(means, quats, scales, viewmat, K, t["valid"])
        ctx.size, ctx.threads = (width, height), threads
        ctx.mark_non_differentiable(t["extents"], t["reach"], t["radii"], t["valid"])
        return tuple(t.values())

    @staticmethod
    def backward(ctx, g_means2d, g_conics, g_depths, *_):
        means, quats, scales, viewmat, K, valid = ctx.saved_tensors
        use_threads(ctx.threads)
        dt = _np(means).dtype
        g_means, g_quats, g_scales = (np.empty(t.shape, dt) for t in (means, quats, scales))
        proj_k.project_backward(_np(means), _np(quats), _np(scales), _np(viewmat), _np(K), *ctx.size,
                                _np(valid), _np(g_means2d), _np(g_conics), _np(g_depths),
                                g_means, g_quats, g_scales)
        return (torch.from_numpy(g_means), torch.from_numpy(g_quats), torch.from_numpy(g_scales),
                None, None, None, None, None, None)


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, rgb, depths, background, extents, tiles, width, height, threads):
        n_chunks = use_threads(threads)
        table = _np(torch.cat([means2d.detach(), conics.detach(), opacities.detach()[:, None], rgb.detach(),
                               depths.detach()[:, None], extents[:, 1:2]], dim=1))
        dt = table.dtype
        color, alpha, depth = np.empty((height, width, 3), dt), np.empty((height, width), dt), np.empty(
            (height, width), dt)
        t_final, n_contrib = np.empty((height, width), dt), np.empty((height, width), np.int32)
        render_k.render_forward(table, tiles.tile_start, tiles.gids, tiles.tiles_x, width, height,
                                _np(background), n_chunks, color, alpha, depth, t_final, n_contrib)
        ctx.state = (table, tiles, t_final, n_contrib, _np(background), width, height, threads)
        return torch.from_numpy(color), torch.from_numpy(alpha)[..., None], torch.from_numpy(depth)[..., None]

    @staticmethod
    def backward(ctx, g_color, g_alpha, g_depth):
        table, tiles, t_final, n_contrib, bg, width, height, threads = ctx.state
        n_chunks = use_threads(threads)
        n = table.shape[0]
        grads = np.zeros((n_chunks, n, render_k.N_GRAD), table.dtype)
        render_k.render_backward(table, tiles.tile_start, tiles.gids, tiles.tiles_x, width, height, bg,
                                 n_chunks, t_final, n_contrib, _np(g_color), _np(g_alpha[..., 0]),
                                 _np(g_depth[..., 0]), grads)
        total = np.empty((n, render_k.N_GRAD), table.dtype)
        render_k.sum_buffers(grads, total)
        g = torch.from_numpy(total)
        g_bg = None
        if ctx.needs_input_grad[5]:
            g_bg = (g_color * torch.from_numpy(t_final)[..., None]).sum((0, 1))
        return (g[:, 0:2], g[:, 2:5], g[:, 5], g[:, 6:9], g[:, 9], g_bg, None, None, None, None, None)


def rasterize_numba(
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
    settings: NumbaSettings | None = None,
) -> RasterOutput:
    if means.device.type != "cpu":
        raise ValueError("the numba backend needs CPU tensors")
    if means.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the numba backend computes in float32 or float64, not {means.dtype}")
    settings = settings or NumbaSettings()
    width, height, dt = int(width), int(height), means.dtype
    viewmat, K = viewmat.to("cpu", dt), K.to("cpu", dt)
    opac = opacities.to(dt)
    means2d, conics, depths, extents, reach, radii, valid = _Project.apply(
        means, quats.to(dt), scales.to(dt), opac.detach(), viewmat, K, width, height, settings.threads)
    if means2d.requires_grad:
        means2d.retain_grad()
    rgb = gaussian_colors(colors, means, viewmat, sh_degree).to(dt)
    tiles = plan_tiles(_np(means2d), _np(conics), _np(extents), _np(reach), _np(valid), _np(depths), width,
                       height, use_threads(settings.threads))
    bg = torch.zeros(3, dtype=dt) if background is None else background.to("cpu", dt)
    color, alpha, depth = _Composite.apply(means2d, conics, opac, rgb, depths, bg, extents, tiles, width, height,
                                           settings.threads)
    return RasterOutput(color=color, alpha=alpha, depth=depth, means2d=means2d, radii=radii)
