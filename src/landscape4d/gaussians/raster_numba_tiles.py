"""numba kernels: the Gaussian table in depth order and per-tile lists (16 x 16 pixel tiles).

A Gaussian is listed in every tile whose pixel centres its drawable ellipse (mahalanobis distance <= reach, i.e.
opacity * exp(power) >= 1/255) meets, as in the torch backend (same small margin); per tile row the tiles it
meets form one run of columns, computed exactly (`tile_runs`). Steps: order the drawable Gaussians by depth
(stable radix sort, ties by index); gather their features into a table in that order (rows = depth rank, so
later passes read it sequentially); each worker counts the (tile, row) hits of its block of rows per tile; prefix
sums give every (tile, worker) a write position; each worker writes its rows into the tiles' lists. Blocks are in
depth order, so each tile's list is too.
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
def _span(a, b, c, r2, det, dy):
    """x offsets (left, right) of the ellipse a dx^2 + 2 b dx dy + c dy^2 <= r2 at height dy."""
    root = np.sqrt(max(a * r2 - det * dy * dy, 0.0))
    return (-b * dy - root) / a, (-b * dy + root) / a


@kernel(inline=True)
def tile_runs(table, k, tiles_x, tiles_y, runs):
    """For every tile row the run of tile columns whose pixel centres the ellipse of table row k meets (within
    reach, with the torch backend's margin): runs (tiles_y, 2) first and last column (first > last: none).
    The ellipse cut by the band of a tile row's pixel-centre rows is convex, so its x range is an interval,
    found from the band's points nearest to the ellipse's leftmost and rightmost points. Returns the rows
    (first, last) of tiles that may hold runs."""
    mx, my = np.float64(table[k, MX]), np.float64(table[k, MY])
    a, b, c = np.float64(table[k, CA]), np.float64(table[k, CB]), np.float64(table[k, CC])
    r = np.float64(table[k, REACH])
    r2 = r * r * (1 + 1e-3) + 1e-3
    det = a * c - b * b
    ex, ey = np.sqrt(r2 * c / det), np.sqrt(r2 * a / det)  # half sizes of the ellipse's box
    peak = -b * ex / c  # dy of the rightmost point (the leftmost is at -peak)
    y0 = min(max(int(np.floor((my - ey - 0.5) / TILE)), 0), tiles_y - 1)
    y1 = min(max(int(np.floor((my + ey - 0.5) / TILE)), 0), tiles_y - 1)
    for ty in range(y0, y1 + 1):
        lo = max(ty * TILE + 0.5 - my, -ey)  # band of pixel-centre rows, relative to the mean
        hi = min(ty * TILE + TILE - 0.5 - my, ey)
        runs[ty, 0], runs[ty, 1] = 1, 0
        if lo > hi:
            continue
        xl = _span(a, b, c, r2, det, min(max(-peak, lo), hi))[0]
        xr = _span(a, b, c, r2, det, min(max(peak, lo), hi))[1]
        runs[ty, 0] = max(int(np.ceil((mx + xl - (TILE - 0.5)) / TILE)), 0)
        runs[ty, 1] = min(int(np.floor((mx + xr - 0.5) / TILE)), tiles_x - 1)
    return y0, y1


@kernel(parallel=True)
def count_lists(table, tiles_x, tiles_y, n_chunks, hist):
    """hist (n_chunks, n_tiles): how many rows of each worker's block of the table meet each tile."""
    n = table.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        _block_lists(table, ch * size, min(n, (ch + 1) * size), tiles_x, tiles_y, hist[ch], hist[ch],
                     np.empty(0, np.int32), False)


@kernel()
def _block_lists(table, lo, hi, tiles_x, tiles_y, counts, cursor, lists, write):
    """Rows lo..hi-1: count their tiles into counts (write False), or write them into `lists` at the per-tile
    positions `cursor` (write True). (Its own function: numba's parallel-loop analysis fails on the inlined
    tuple code of tile_runs.)"""
    runs = np.empty((tiles_y, 2), np.int64)
    if not write:
        counts[:] = 0
    for k in range(lo, hi):
        y0, y1 = tile_runs(table, k, tiles_x, tiles_y, runs)
        for ty in range(y0, y1 + 1):
            for tx in range(runs[ty, 0], runs[ty, 1] + 1):
                t = ty * tiles_x + tx
                if write:
                    lists[cursor[t]] = k
                    cursor[t] += 1
                else:
                    counts[t] += 1


@kernel()
def list_starts(hist, tile_start):
    """Exclusive prefix sums: tile_start (n_tiles + 1,) where each tile's list starts, and hist turned into
    each worker's write position inside it (worker order = depth order). Returns the total."""
    total = 0
    for t in range(hist.shape[1]):
        tile_start[t] = total
        for ch in range(hist.shape[0]):
            h = hist[ch, t]
            hist[ch, t] = total
            total += h
    tile_start[hist.shape[1]] = total
    return total


@kernel(parallel=True)
def fill_lists(table, tiles_x, tiles_y, n_chunks, cursor, lists):
    """Write each table row into the lists of the tiles it meets (rows ascending = depth order per tile)."""
    n = table.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        _block_lists(table, ch * size, min(n, (ch + 1) * size), tiles_x, tiles_y, cursor[ch], cursor[ch], lists,
                     True)


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
