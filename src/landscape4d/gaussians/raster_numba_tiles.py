"""numba kernels: the Gaussian table in depth order and per-tile lists (16 x 16 pixel tiles).

A Gaussian is listed in every tile whose pixel centres its drawable ellipse (mahalanobis distance <= reach, i.e.
opacity * exp(power) >= 1/255) meets: candidate tiles from its box of half size `extents`, each kept if the
minimum of d^T conic d over the tile's rectangle of pixel centres is within reach^2 (the same exact test, with
the same small margin, as the torch backend). Steps: order the drawable Gaussians by depth (stable radix sort,
ties by index); gather their features into a table in that order (rows = depth rank, so every later pass reads
it sequentially); count the tiles of every row (parallel); write the (tile, row) pairs (parallel); a stable
counting sort by tile (parallel over chunks of pairs) gives each tile's list of rows in depth order.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .raster_numba_jit import kernel

TILE = 16
# Gaussian table columns
MX, MY, CA, CB, CC, OPACITY, RED, GREEN, BLUE, DEPTH, EY, EX, REACH = range(13)
N_COLS = 13


@kernel(parallel=True)
def gather_table(order, means2d, conics, opacities, rgb, depths, extents, reach, table):
    """table (n, N_COLS) row k = features of Gaussian order[k]."""
    for k in prange(order.shape[0]):
        i = order[k]
        table[k, MX], table[k, MY] = means2d[i, 0], means2d[i, 1]
        table[k, CA], table[k, CB], table[k, CC] = conics[i, 0], conics[i, 1], conics[i, 2]
        table[k, OPACITY], table[k, DEPTH] = opacities[i], depths[i]
        table[k, RED], table[k, GREEN], table[k, BLUE] = rgb[i, 0], rgb[i, 1], rgb[i, 2]
        table[k, EX], table[k, EY], table[k, REACH] = extents[i, 0], extents[i, 1], reach[i]


@kernel()
def tile_rect(mx, my, ex, ey, tiles_x, tiles_y):
    """Tile columns x0..x1 and rows y0..y1 (inclusive) of the box of half size (ex, ey) around (mx, my): pixel j
    has its centre at j + 0.5, widened by half a pixel so that rounding never drops a pixel."""
    x0 = min(max(int(np.floor((mx - ex - 1) / TILE)), 0), tiles_x - 1)
    x1 = min(max(int(np.floor((mx + ex) / TILE)), 0), tiles_x - 1)
    y0 = min(max(int(np.floor((my - ey - 1) / TILE)), 0), tiles_y - 1)
    y1 = min(max(int(np.floor((my + ey) / TILE)), 0), tiles_y - 1)
    return x0, x1, y0, y1


@kernel()
def _quad(a, b, c, dx, dy):
    return a * dx * dx + 2 * b * dx * dy + c * dy * dy


@kernel()
def meets_tile(mx, my, a, b, c, reach, tx, ty):
    """True when min over the tile's pixel-centre rectangle of d^T conic d <= reach^2 (+ margin)."""
    lx = tx * TILE + 0.5 - mx
    hx = lx + (TILE - 1)
    ly = ty * TILE + 0.5 - my
    hy = ly + (TILE - 1)
    if lx <= 0 and hx >= 0 and ly <= 0 and hy >= 0:
        return True
    inv_a, inv_c = 1.0 / max(a, 1e-12), 1.0 / max(c, 1e-12)
    best = min(_quad(a, b, c, lx, min(max(-b * lx * inv_c, ly), hy)),
               _quad(a, b, c, hx, min(max(-b * hx * inv_c, ly), hy)))
    best = min(best, _quad(a, b, c, min(max(-b * ly * inv_a, lx), hx), ly))
    best = min(best, _quad(a, b, c, min(max(-b * hy * inv_a, lx), hx), hy))
    return best <= reach * reach * (1 + 1e-3) + 1e-3


@kernel()
def _row_tiles(table, k, tiles_x, tiles_y, pair_tile, pair_row, j):
    """Tiles that row k of the table meets; written from pair position j when j >= 0. Returns their number."""
    mx, my = np.float64(table[k, MX]), np.float64(table[k, MY])
    a, b, c, r = np.float64(table[k, CA]), np.float64(table[k, CB]), np.float64(table[k, CC]), table[k, REACH]
    x0, x1, y0, y1 = tile_rect(mx, my, table[k, EX], table[k, EY], tiles_x, tiles_y)
    n = 0
    for ty in range(y0, y1 + 1):
        for tx in range(x0, x1 + 1):
            if meets_tile(mx, my, a, b, c, r, tx, ty):
                if j >= 0:
                    pair_tile[j + n] = ty * tiles_x + tx
                    pair_row[j + n] = k
                n += 1
    return n


@kernel(parallel=True)
def count_tiles(table, tiles_x, tiles_y, counts):
    """counts (n,) int64: number of tiles each table row is listed in."""
    none = np.empty(0, np.int32)
    for k in prange(table.shape[0]):
        counts[k] = _row_tiles(table, k, tiles_x, tiles_y, none, none, -1)


@kernel(parallel=True)
def fill_pairs(table, starts, tiles_x, tiles_y, pair_tile, pair_row):
    """Write the (tile, row) pairs of every row k from position starts[k]."""
    for k in prange(table.shape[0]):
        _row_tiles(table, k, tiles_x, tiles_y, pair_tile, pair_row, starts[k])


@kernel(parallel=True)
def sort_by_tile(pair_tile, pair_row, n_tiles, n_chunks, tile_start, rows):
    """Stable counting sort of the pairs by tile: tile_start (n_tiles + 1,) where each tile's list starts in
    rows (M,) (table rows, each list keeping the pairs' order)."""
    m = pair_tile.shape[0]
    size = (m + n_chunks - 1) // n_chunks
    hist = np.zeros((n_chunks, n_tiles), np.int64)
    for c in prange(n_chunks):
        for j in range(c * size, min(m, (c + 1) * size)):
            hist[c, pair_tile[j]] += 1
    total = 0
    for t in range(n_tiles):  # exclusive prefix over (tile, chunk)
        tile_start[t] = total
        for c in range(n_chunks):
            h = hist[c, t]
            hist[c, t] = total
            total += h
    tile_start[n_tiles] = total
    for c in prange(n_chunks):
        for j in range(c * size, min(m, (c + 1) * size)):
            t = pair_tile[j]
            rows[hist[c, t]] = pair_row[j]
            hist[c, t] += 1


def depth_keys(depths: np.ndarray) -> tuple[np.ndarray, int]:
    """uint64 sort keys of positive depths (the IEEE bits of positive floats sort like their values) and their
    number of bits."""
    if depths.dtype == np.float32:
        return depths.view(np.uint32).astype(np.uint64), 32
    return np.ascontiguousarray(depths, np.float64).view(np.uint64), 64


@kernel()
def radix_argsort(keys, nbits):
    """Stable argsort (int32) of uint64 keys of `nbits` bits, by LSD radix passes of 11 bits (keys move with
    their indices, so every pass reads sequentially)."""
    n = keys.shape[0]
    idx, key = np.arange(n).astype(np.int32), keys.copy()
    idx2, key2 = np.empty(n, np.int32), np.empty(n, np.uint64)
    count = np.empty(2049, np.int64)
    mask = np.uint64(2047)
    for s in range(0, nbits, 11):
        shift = np.uint64(s)
        count[:] = 0
        for j in range(n):
            count[((key[j] >> shift) & mask) + 1] += 1
        if count.max() == n:  # every key has the same digit here
            continue
        for d in range(2048):
            count[d + 1] += count[d]
        for j in range(n):
            d = (key[j] >> shift) & mask
            p = count[d]
            idx2[p], key2[p] = idx[j], key[j]
            count[d] = p + 1
        idx, idx2, key, key2 = idx2, idx, key2, key
    return idx
