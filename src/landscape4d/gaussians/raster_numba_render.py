"""numba kernels: per-tile front-to-back compositing (forward) and its gradient (backward).

Tiles are 16 x 16 pixels; `n_chunks` workers (one per thread) take the tiles round robin (tile t goes to worker
t % n_chunks), so work is spread evenly and every result is the same from run to run. Inside a tile the pixel
loops run over whole rows (the rows a Gaussian can reach), branch-free, so they vectorise.

Forward, per pixel (3DGS): alpha = min(0.99, opacity * exp(power)), skipped when alpha < 1/255; a pixel stops
before the Gaussian that would bring its transmittance T below 1e-4; a tile stops when all its pixels have.
Stored for the backward: the final T and the number of list entries up to the last one that contributed.

Backward, walking each tile's list back to front with T recovered as T / (1 - alpha): with q_i = c_i . dL/dC +
z_i dL/dD, and E the per-pixel sum of what lies behind (E starts at background . dL/dC - dL/dalpha_out,
E <- alpha_i q_i + (1 - alpha_i) E), dL/dalpha_i = T_i (q_i - E). Per Gaussian and tile the pixel sums of the
gradients w.r.t. (mean x, mean y, conic a, b, c, opacity, r, g, b, depth) are added to the worker's own gradient
buffer (no atomics); the buffers are summed at the end.

Gaussian table columns (N, 11): mean x, mean y, conic a, b, c, opacity, r, g, b, depth, y half-extent.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .projection import ALPHA_MAX, ALPHA_MIN, T_MIN
from .raster_numba_jit import REDUCE_MATH, fexp, kernel, like
from .raster_numba_tiles import TILE

N_GRAD = 10  # gradient columns: mx, my, a, b, c, opacity, r, g, b, depth
P = TILE * TILE
_HALF = 0.5 * TILE


@kernel()
def alpha_at(o, a, b, c, dx, dy):
    """(alpha clamped at 0.99, exp(power)) at offset (dx, dy) from the mean; strict IEEE arithmetic (no fast-math
    flags), so that the forward and the backward take the same cut-off decisions."""
    e = fexp(like(dx, -0.5) * (a * dx * dx + c * dy * dy) - b * dx * dy)
    return min(like(dx, ALPHA_MAX), o * e), e


@kernel()
def row_range(my, ey):
    """Rows (first, last) of the tile a Gaussian with tile-local mean y `my` and y half-extent `ey` can reach
    (pixel row r has its centre at r + 0.5 - TILE / 2), with a margin of one row."""
    lo = np.floor(my - ey + (_HALF - 0.5)) - 1
    hi = np.ceil(my + ey + (_HALF - 0.5)) + 1
    return int(max(lo, 0.0)), int(min(hi, TILE - 1.0))


@kernel()
def pixel_offsets(dt):
    """Tile-local pixel centre coordinates (P,) x and y, origin at the tile centre, row-major."""
    px, py = np.empty(P, dt), np.empty(P, dt)
    for p in range(P):
        px[p] = (p % TILE) + 0.5 - _HALF
        py[p] = (p // TILE) + 0.5 - _HALF
    return px, py


@kernel()
def _start_tile(T, color, depth, done, last, nx, ny):
    """Reset the per-pixel state; pixels outside the image (nx x ny valid) start terminated. Returns the number
    of live pixels."""
    for p in range(P):
        T[p] = 1
        color[p, 0], color[p, 1], color[p, 2] = 0, 0, 0
        depth[p] = 0
        last[p] = 0
        done[p] = 0 if (p % TILE) < nx and (p // TILE) < ny else 1
    return nx * ny


@kernel()
def _composite(table, gids, start, end, ox, oy, px, py, T, color, depth, done, last, live):
    """Blend the tile's list gids[start:end] (depth order) into the pixel state, front to back."""
    dt = table.dtype.type
    amin, tmin, one, zero = dt(ALPHA_MIN), dt(T_MIN), dt(1), dt(0)
    for k in range(start, end):
        g = gids[k]
        mx, my = table[g, 0] - ox, table[g, 1] - oy
        a, b, c, o = table[g, 2], table[g, 3], table[g, 4], table[g, 5]
        cr, cg, cb, z = table[g, 6], table[g, 7], table[g, 8], table[g, 9]
        r0, r1 = row_range(my, table[g, 10])
        kk = np.int32(k - start + 1)
        stopped = 0
        for p in range(np.uint64(r0 * TILE), np.uint64((r1 + 1) * TILE)):
            al, _ = alpha_at(o, a, b, c, px[p] - mx, py[p] - my)
            t = T[p]
            t_new = t * (one - al)
            hit = (al >= amin) & (done[p] == zero)
            stop = hit & (t_new < tmin)
            use = hit & (t_new >= tmin)
            w = al * t if use else zero
            color[p, 0] += w * cr
            color[p, 1] += w * cg
            color[p, 2] += w * cb
            depth[p] += w * z
            T[p] = t_new if use else t
            last[p] = kk if use else last[p]
            done[p] = one if stop else done[p]
            stopped += np.int32(1) if stop else np.int32(0)
        live -= stopped
        if live <= 0:
            break


@kernel(parallel=True)
def render_forward(table, tile_start, gids, tiles_x, width, height, bg, n_chunks,
                   out_color, out_alpha, out_depth, t_final, n_contrib):
    """Composite every tile. Writes out_color (H, W, 3) (background included), out_alpha (H, W), out_depth
    (H, W), and for the backward t_final (H, W) and n_contrib (H, W) int32."""
    dt = table.dtype
    n_tiles = tile_start.shape[0] - 1
    for ch in prange(n_chunks):
        px, py = pixel_offsets(dt)
        T, color, depth = np.empty(P, dt), np.empty((P, 3), dt), np.empty(P, dt)
        done, last = np.empty(P, dt), np.empty(P, np.int32)
        for tile in range(ch, n_tiles, n_chunks):
            x0, y0 = (tile % tiles_x) * TILE, (tile // tiles_x) * TILE
            nx, ny = min(TILE, width - x0), min(TILE, height - y0)
            live = _start_tile(T, color, depth, done, last, nx, ny)
            ox, oy = table.dtype.type(x0 + _HALF), table.dtype.type(y0 + _HALF)
            _composite(table, gids, tile_start[tile], tile_start[tile + 1], ox, oy, px, py,
                       T, color, depth, done, last, live)
            for p in range(P):
                i, j = p // TILE, p % TILE
                if i < ny and j < nx:
                    t = T[p]
                    for ch3 in range(3):
                        out_color[y0 + i, x0 + j, ch3] = color[p, ch3] + t * bg[ch3]
                    out_alpha[y0 + i, x0 + j] = 1 - t
                    out_depth[y0 + i, x0 + j] = depth[p]
                    t_final[y0 + i, x0 + j] = t
                    n_contrib[y0 + i, x0 + j] = last[p]


@kernel()
def _load_tile(g_color, g_alpha, g_depth, bg, t_final, n_contrib, x0, y0, nx, ny, T, E, gc, last):
    """Per-pixel backward state of one tile: T final transmittance, E = bg . dL/dC - dL/dalpha, gc (P, 4) the
    gradients of the colour and depth images, last the contributor count (0 outside the image)."""
    m = 0
    for p in range(P):
        i, j = p // TILE, p % TILE
        if i < ny and j < nx:
            y, x = y0 + i, x0 + j
            T[p], last[p] = t_final[y, x], n_contrib[y, x]
            for k in range(3):
                gc[p, k] = g_color[y, x, k]
            gc[p, 3] = g_depth[y, x]
            E[p] = bg[0] * gc[p, 0] + bg[1] * gc[p, 1] + bg[2] * gc[p, 2] - g_alpha[y, x]
            m = max(m, last[p])
        else:
            T[p], E[p], last[p] = 1, 0, 0
            gc[p, 0], gc[p, 1], gc[p, 2], gc[p, 3] = 0, 0, 0, 0
    return m


@kernel(fastmath=REDUCE_MATH)
def _gaussian_grads(table, g, kk, ox, oy, px, py, T, E, gc, last, out):
    """Walk one Gaussian (list entry kk, 1-based) of a tile backwards: update T and E of the pixels it covered
    and add its gradient sums (N_GRAD,) to out."""
    dt = table.dtype.type
    amin, amax, one, zero, half = dt(ALPHA_MIN), dt(ALPHA_MAX), dt(1), dt(0), dt(0.5)
    mx, my = table[g, 0] - ox, table[g, 1] - oy
    a, b, c, o = table[g, 2], table[g, 3], table[g, 4], table[g, 5]
    cr, cg, cb, z = table[g, 6], table[g, 7], table[g, 8], table[g, 9]
    r0, r1 = row_range(my, table[g, 10])
    s_mx, s_my, s_a, s_b, s_c, s_o, s_r, s_g, s_b2, s_z = zero, zero, zero, zero, zero, zero, zero, zero, zero, zero
    for p in range(np.uint64(r0 * TILE), np.uint64((r1 + 1) * TILE)):
        dx, dy = px[p] - mx, py[p] - my
        al, e = alpha_at(o, a, b, c, dx, dy)
        use = (al >= amin) & (kk <= last[p])
        one_m = one - al
        t = T[p] / one_m  # transmittance before this Gaussian
        q = cr * gc[p, 0] + cg * gc[p, 1] + cb * gc[p, 2] + z * gc[p, 3]
        d_alpha = t * (q - E[p])
        w = al * t if use else zero
        s_r += w * gc[p, 0]
        s_g += w * gc[p, 1]
        s_b2 += w * gc[p, 2]
        s_z += w * gc[p, 3]
        d_e = d_alpha * e if use & (o * e <= amax) else zero  # zero where alpha is clamped
        s_o += d_e
        d_pow = d_e * o  # dL/dpower = dL/dalpha * alpha
        s_mx += d_pow * (a * dx + b * dy)
        s_my += d_pow * (b * dx + c * dy)
        s_a -= half * d_pow * dx * dx
        s_b -= d_pow * dx * dy
        s_c -= half * d_pow * dy * dy
        T[p] = t if use else T[p]
        E[p] = al * q + one_m * E[p] if use else E[p]
    sums = (s_mx, s_my, s_a, s_b, s_c, s_o, s_r, s_g, s_b2, s_z)
    for k in range(N_GRAD):
        out[g, k] += sums[k]


@kernel(parallel=True)
def render_backward(table, tile_start, gids, tiles_x, width, height, bg, n_chunks, t_final, n_contrib,
                    g_color, g_alpha, g_depth, grads):
    """Gradients into grads (n_chunks, N, N_GRAD), one buffer per worker (zeroed by the caller)."""
    dt = table.dtype
    n_tiles = tile_start.shape[0] - 1
    for ch in prange(n_chunks):
        px, py = pixel_offsets(dt)
        T, E, gc, last = np.empty(P, dt), np.empty(P, dt), np.empty((P, 4), dt), np.empty(P, np.int32)
        out = grads[ch]
        for tile in range(ch, n_tiles, n_chunks):
            x0, y0 = (tile % tiles_x) * TILE, (tile // tiles_x) * TILE
            nx, ny = min(TILE, width - x0), min(TILE, height - y0)
            m = _load_tile(g_color, g_alpha, g_depth, bg, t_final, n_contrib, x0, y0, nx, ny, T, E, gc, last)
            start = tile_start[tile]
            ox, oy = table.dtype.type(x0 + _HALF), table.dtype.type(y0 + _HALF)
            for k in range(start + m - 1, start - 1, -1):
                _gaussian_grads(table, gids[k], np.int32(k - start + 1), ox, oy, px, py, T, E, gc, last, out)


@kernel(parallel=True)
def sum_buffers(grads, out):
    """out (N, N_GRAD) = sum over workers of grads (n_chunks, N, N_GRAD)."""
    for i in prange(grads.shape[1]):
        for k in range(grads.shape[2]):
            s = grads[0, i, k]
            for ch in range(1, grads.shape[0]):
                s += grads[ch, i, k]
            out[i, k] = s
