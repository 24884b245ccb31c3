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

import functools
import threading
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
    """The drawable Gaussians in depth order and which of them touch which 16 x 16 tile."""

    tiles_x: int
    tiles_y: int
    order: np.ndarray  # (n,) int64 Gaussian index of each table row (depth order, ties by index)
    table: np.ndarray  # (n, tiles_k.N_COLS) features of those Gaussians (columns in raster_numba_tiles)
    tile_start: np.ndarray  # (n_tiles + 1,) int64 start of each tile's list in lists
    lists: np.ndarray  # (M,) int32 table rows, each tile's list in depth order

    @property
    def num_intersections(self) -> int:
        return int(self.lists.shape[0])


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


_LAUNCH = threading.RLock()


def _serialized(fn):
    """One kernel launch at a time in this process (numba's workqueue pool is not re-entrant)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with _LAUNCH:
            return fn(*args, **kwargs)

    return run


def plan_tiles(means2d, conics, opacities, rgb, depths, extents, reach, valid, width: int, height: int,
               n_chunks: int) -> TileLists:
    """Depth-ordered Gaussian table and per-tile lists from per-Gaussian numpy arrays: means2d (N, 2), conics
    (N, 3), opacities (N,), rgb (N, 3), depths (N,), extents (N, 2), reach (N,), valid (N,) bool."""
    tx, ty = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    drawable = np.flatnonzero(valid & (reach > 0))
    order = drawable[tiles_k.radix_argsort(*tiles_k.depth_keys(depths[drawable]))]
    table = np.empty((order.shape[0], tiles_k.N_COLS), means2d.dtype)
    tiles_k.gather_table(order, means2d, conics, opacities, rgb, depths, extents, reach, table)
    hist = np.empty((n_chunks, tx * ty), np.int64)
    tiles_k.count_lists(table, tx, ty, n_chunks, hist)
    tile_start = np.empty(tx * ty + 1, np.int64)
    lists = np.empty(tiles_k.list_starts(hist, tile_start), np.int32)
    tiles_k.fill_lists(table, tx, ty, n_chunks, hist, lists)
    return TileLists(tx, ty, order, table, tile_start, lists)


class _Project(torch.autograd.Function):
    @staticmethod
    @_serialized
    def forward(ctx, means, quats, scales, opacities, viewmat, K, width, height, threads):
        n_chunks = use_threads(threads)
        n, dt = means.shape[0], _np(means).dtype
        out = dict(means2d=np.empty((n, 2), dt), conics=np.empty((n, 3), dt), depths=np.empty(n, dt),
                   extents=np.empty((n, 2), dt), reach=np.empty(n, dt), radii=np.empty(n, np.int32),
                   valid=np.empty(n, np.bool_))
        proj_k.project_forward(_np(means), _np(quats), _np(scales), _np(opacities), _np(viewmat), _np(K),
                               width, height, n_chunks, *out.values())
        t = {k: torch.from_numpy(v) for k, v in out.items()}
        ctx.save_for_backward(means, quats, scales, viewmat, K, t["valid"])
        ctx.size, ctx.threads = (width, height), threads
        ctx.mark_non_differentiable(t["extents"], t["reach"], t["radii"], t["valid"])
        ctx.set_materialize_grads(False)  # no zero tensors for the unused outputs
        return tuple(t.values())

    @staticmethod
    @_serialized
    def backward(ctx, g_means2d, g_conics, g_depths, *_):
        means, quats, scales, viewmat, K, valid = ctx.saved_tensors
        n_chunks = use_threads(ctx.threads)
        n, dt = means.shape[0], _np(means).dtype
        g_means2d, g_conics, g_depths = (torch.zeros(s, dtype=means.dtype) if g is None else g for g, s in
                                         ((g_means2d, (n, 2)), (g_conics, (n, 3)), (g_depths, (n,))))
        g_means, g_quats, g_scales = (np.empty(t.shape, dt) for t in (means, quats, scales))
        proj_k.project_backward(_np(means), _np(quats), _np(scales), _np(viewmat), _np(K), *ctx.size,
                                _np(valid), _np(g_means2d), _np(g_conics), _np(g_depths), n_chunks,
                                g_means, g_quats, g_scales)
        return (torch.from_numpy(g_means), torch.from_numpy(g_quats), torch.from_numpy(g_scales),
                None, None, None, None, None, None)


class _Composite(torch.autograd.Function):
    @staticmethod
    @_serialized
    def forward(ctx, means2d, conics, opacities, rgb, depths, background, extents, reach, valid, width, height,
                threads):
        n_chunks = use_threads(threads)
        tiles = plan_tiles(*(_np(t) for t in (means2d, conics, opacities, rgb, depths, extents, reach, valid)),
                           width, height, n_chunks)
        dt = tiles.table.dtype
        color, alpha, depth = (np.empty((height, width, c), dt) for c in (3, 1, 1))
        t_final, n_contrib = np.empty((height, width), dt), np.empty((height, width), np.int32)
        bg = _np(background)
        render_k.render_forward(tiles.table, tiles.tile_start, tiles.lists, tiles.tiles_x, width, height, bg,
                                n_chunks, color, alpha[..., 0], depth[..., 0], t_final, n_contrib)
        ctx.state = (tiles, t_final, n_contrib, bg, width, height, threads, means2d.shape[0])
        ctx.set_materialize_grads(False)
        return torch.from_numpy(color), torch.from_numpy(alpha), torch.from_numpy(depth)

    @staticmethod
    @_serialized
    def backward(ctx, g_color, g_alpha, g_depth):
        tiles, t_final, n_contrib, bg, width, height, threads, n = ctx.state
        n_chunks = use_threads(threads)
        table, dt = tiles.table, tiles.table.dtype
        g_color, g_alpha, g_depth = (torch.zeros(height, width, c, dtype=torch.from_numpy(bg).dtype) if g is None
                                     else g for g, c in ((g_color, 3), (g_alpha, 1), (g_depth, 1)))
        grads = np.empty((n_chunks, table.shape[0], render_k.N_GRAD), dt)
        render_k.render_backward(table, tiles.tile_start, tiles.lists, tiles.tiles_x, width, height, bg,
                                 n_chunks, t_final, n_contrib, _np(g_color), _np(g_alpha[..., 0]),
                                 _np(g_depth[..., 0]), grads)
        row_of = np.full(n, -1, np.int64)
        row_of[tiles.order] = np.arange(tiles.order.shape[0])
        out = (np.empty((n, 2), dt), np.empty((n, 3), dt), np.empty(n, dt), np.empty((n, 3), dt), np.empty(n, dt))
        render_k.gather_grads(grads, row_of, n_chunks, *out)
        g_bg = None
        if ctx.needs_input_grad[5]:
            g_bg = (g_color * torch.from_numpy(t_final)[..., None]).sum((0, 1))
        return tuple(torch.from_numpy(a) for a in out) + (g_bg,) + (None,) * 6


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
    bg = torch.zeros(3, dtype=dt) if background is None else background.to("cpu", dt)
    color, alpha, depth = _Composite.apply(means2d, conics, opac, rgb, depths, bg, extents, reach, valid, width,
                                           height, settings.threads)
    return RasterOutput(color=color, alpha=alpha, depth=depth, means2d=means2d, radii=radii)
