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

The Gaussian table (rows in depth order, columns named in raster_numba_tiles) gives each Gaussian's mean,
conic, opacity, colour, depth and y half-extent; the tile lists hold table rows.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .projection import ALPHA_MAX, ALPHA_MIN, T_MIN
from .raster_numba_jit import CONTRACT, LOG2E, REDUCE_MATH, fexp2, kernel, like
from .raster_numba_tiles import BLUE, CA, CB, CC, DEPTH, EY, GREEN, MX, MY, OPACITY, RED, TILE

N_GRAD = 10  # gradient columns: mx, my, a, b, c, opacity, r, g, b, depth
P = TILE * TILE
_HALF = 0.5 * TILE


@kernel()
def power2_coefs(a, b, c):
    """Coefficients (A, B, C) of the exponent in base 2, A dx^2 + B dx dy + C dy^2 = log2(e) * power, from the
    conic (a, b, c): power = -0.5 (a dx^2 + c dy^2) - b dx dy."""
    h = like(a, -0.5 * LOG2E)
    return h * a, like(a, -LOG2E) * b, h * c


@kernel(fastmath=CONTRACT)
def alpha_at(o, A, B, C, dx, dy):
    """(alpha clamped at 0.99, exp(power)) at offset (dx, dy) from the mean, (A, B, C) from power2_coefs; no
    reordering (see CONTRACT), so that the forward and the backward take the same cut-off decisions."""
    e = fexp2(dx * (A * dx + B * dy) + C * dy * dy)
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
def _start_tile(T, cr, cg, cb, depth, done, last, nx, ny):
    """Reset the per-pixel state; pixels outside the image (nx x ny valid) start terminated."""
    for p in range(P):
        T[p], cr[p], cg[p], cb[p], depth[p], last[p] = 1, 0, 0, 0, 0, 0
        done[p] = 0 if (p % TILE) < nx and (p // TILE) < ny else 1


@kernel()
def _live_rows(done):
    """First and last row of the tile with a pixel still compositing (first > last when none)."""
    first, last = TILE, -1
    for r in range(TILE):
        for p in range(r * TILE, (r + 1) * TILE):
            if done[p] == 0:
                first, last = min(first, r), r
                break
    return first, last


@kernel(fastmath=CONTRACT)
def _composite(table, lists, start, end, ox, oy, px, py, T, cr, cg, cb, depth, done, last):
    """Blend the tile's list lists[start:end] (depth order) into the pixel state, front to back, over the rows
    that still have live pixels (updated every 8 Gaussians) until every pixel has terminated. The pixel loop
    only reads the state into locals and stores selects of locals (no branches, no 64-bit integers: it
    vectorises)."""
    dt = table.dtype.type
    amin, tmin, one, zero = dt(ALPHA_MIN), dt(T_MIN), dt(1), dt(0)
    live0, live1 = _live_rows(done)
    for k in range(start, end):
        kk = np.int32(k - start + 1)
        if (kk & 7) == 0:
            live0, live1 = _live_rows(done)
        if live0 > live1:
            break
        g = lists[k]
        mx, my = table[g, MX] - ox, table[g, MY] - oy
        A, B, C = power2_coefs(table[g, CA], table[g, CB], table[g, CC])
        o = table[g, OPACITY]
        r, gr, bl, z = table[g, RED], table[g, GREEN], table[g, BLUE], table[g, DEPTH]
        r0, r1 = row_range(my, table[g, EY])
        r0, r1 = max(r0, live0), min(r1, live1)
        for p in range(np.uint64(r0 * TILE), np.uint64((r1 + 1) * TILE)):
            al, _ = alpha_at(o, A, B, C, px[p] - mx, py[p] - my)
            t, d, lp = T[p], done[p], last[p]
            t_new = t * (one - al)
            hit = (al >= amin) & (d == 0)
            stop = hit & (t_new < tmin)
            use = hit & (t_new >= tmin)
            w = al * t if use else zero
            cr[p] += w * r
            cg[p] += w * gr
            cb[p] += w * bl
            depth[p] += w * z
            T[p] = t_new if use else t
            last[p] = kk if use else lp
            done[p] = np.int32(1) if stop else d


@kernel(parallel=True)
def render_forward(table, tile_start, lists, tiles_x, width, height, bg, n_chunks,
                   out_color, out_alpha, out_depth, t_final, n_contrib):
    """Composite every tile. Writes out_color (H, W, 3) (background included), out_alpha (H, W), out_depth
    (H, W), and for the backward t_final (H, W) and n_contrib (H, W) int32."""
    dt = table.dtype
    n_tiles = tile_start.shape[0] - 1
    for ch in prange(n_chunks):
        px, py = pixel_offsets(dt)
        T, cr, cg, cb, depth = np.empty(P, dt), np.empty(P, dt), np.empty(P, dt), np.empty(P, dt), np.empty(P, dt)
        done, last = np.empty(P, np.int32), np.empty(P, np.int32)
        for tile in range(ch, n_tiles, n_chunks):
            x0, y0 = (tile % tiles_x) * TILE, (tile // tiles_x) * TILE
            nx, ny = min(TILE, width - x0), min(TILE, height - y0)
            _start_tile(T, cr, cg, cb, depth, done, last, nx, ny)
            ox, oy = table.dtype.type(x0 + _HALF), table.dtype.type(y0 + _HALF)
            _composite(table, lists, tile_start[tile], tile_start[tile + 1], ox, oy, px, py,
                       T, cr, cg, cb, depth, done, last)
            for p in range(P):
                i, j = p // TILE, p % TILE
                if i < ny and j < nx:
                    t = T[p]
                    out_color[y0 + i, x0 + j, 0] = cr[p] + t * bg[0]
                    out_color[y0 + i, x0 + j, 1] = cg[p] + t * bg[1]
                    out_color[y0 + i, x0 + j, 2] = cb[p] + t * bg[2]
                    out_alpha[y0 + i, x0 + j] = 1 - t
                    out_depth[y0 + i, x0 + j] = depth[p]
                    t_final[y0 + i, x0 + j] = t
                    n_contrib[y0 + i, x0 + j] = last[p]


@kernel()
def _load_tile(g_color, g_alpha, g_depth, bg, t_final, n_contrib, x0, y0, nx, ny, T, E, gc, last, row_last):
    """Per-pixel backward state of one tile: T final transmittance, E = bg . dL/dC - dL/dalpha, gc (4, P) the
    gradients of the colour and depth images, last the contributor count (0 outside the image), row_last
    (TILE,) its maximum per row. Returns the maximum over the tile."""
    row_last[:] = 0
    for p in range(P):
        i, j = p // TILE, p % TILE
        if i < ny and j < nx:
            y, x = y0 + i, x0 + j
            T[p], last[p] = t_final[y, x], n_contrib[y, x]
            for k in range(3):
                gc[k, p] = g_color[y, x, k]
            gc[3, p] = g_depth[y, x]
            E[p] = bg[0] * gc[0, p] + bg[1] * gc[1, p] + bg[2] * gc[2, p] - g_alpha[y, x]
            row_last[i] = max(row_last[i], last[p])
        else:
            T[p], E[p], last[p] = 1, 0, 0
            gc[0, p], gc[1, p], gc[2, p], gc[3, p] = 0, 0, 0, 0
    return row_last.max()


@kernel()
def _active_rows(row_last, kk):
    """First and last row with a pixel that list entry kk may have contributed to (row_last >= kk)."""
    first, last = TILE, -1
    for r in range(TILE):
        if row_last[r] >= kk:
            first, last = min(first, r), r
    return first, last


@kernel(fastmath=REDUCE_MATH)
def _tile_backward(table, lists, start, m, ox, oy, px, py, T, E, gc, last, row_last, out):
    """Walk the tile's list entries start + m - 1 .. start backwards (m: the largest contributor count of its
    pixels), each over its rows that hold pixels it may have contributed to: update T and E of the pixels it
    covered and add its gradient sums (N_GRAD,) to out[row]. Like the forward, the pixel loop only stores
    selects of locals. (One call per tile: a call per Gaussian would pass every array on the stack.)"""
    dt = table.dtype.type
    amin, amax, one, zero, half = dt(ALPHA_MIN), dt(ALPHA_MAX), dt(1), dt(0), dt(0.5)
    for k in range(start + m - 1, start - 1, -1):
        kk = np.int32(k - start + 1)
        g = lists[k]
        mx, my = table[g, MX] - ox, table[g, MY] - oy
        a, b, c, o = table[g, CA], table[g, CB], table[g, CC], table[g, OPACITY]
        A, B, C = power2_coefs(a, b, c)
        cr, cg, cb, z = table[g, RED], table[g, GREEN], table[g, BLUE], table[g, DEPTH]
        r0, r1 = row_range(my, table[g, EY])
        a0, a1 = _active_rows(row_last, kk)
        r0, r1 = max(r0, a0), min(r1, a1)
        s_mx, s_my, s_a, s_b, s_c, s_o = zero, zero, zero, zero, zero, zero
        s_r, s_g, s_b2, s_z = zero, zero, zero, zero
        for p in range(np.uint64(max(r0, 0) * TILE), np.uint64(max(r1 + 1, 0) * TILE)):
            dx, dy = px[p] - mx, py[p] - my
            al, e = alpha_at(o, A, B, C, dx, dy)
            tp, ep = T[p], E[p]
            use = (al >= amin) & (kk <= last[p])
            one_m = one - al
            t = tp / one_m  # transmittance before this Gaussian
            q = cr * gc[0, p] + cg * gc[1, p] + cb * gc[2, p] + z * gc[3, p]
            w = al * t if use else zero
            s_r += w * gc[0, p]
            s_g += w * gc[1, p]
            s_b2 += w * gc[2, p]
            s_z += w * gc[3, p]
            d_e = t * (q - ep) * e if use & (o * e <= amax) else zero  # dL/dalpha e; zero where clamped
            s_o += d_e
            d_pow = d_e * o  # dL/dpower = dL/dalpha * alpha
            s_mx += d_pow * (a * dx + b * dy)
            s_my += d_pow * (b * dx + c * dy)
            s_a -= half * d_pow * dx * dx
            s_b -= d_pow * dx * dy
            s_c -= half * d_pow * dy * dy
            T[p] = t if use else tp
            E[p] = al * q + one_m * ep if use else ep
        out[g, 0] += s_mx
        out[g, 1] += s_my
        out[g, 2] += s_a
        out[g, 3] += s_b
        out[g, 4] += s_c
        out[g, 5] += s_o
        out[g, 6] += s_r
        out[g, 7] += s_g
        out[g, 8] += s_b2
        out[g, 9] += s_z


@kernel(parallel=True)
def render_backward(table, tile_start, lists, tiles_x, width, height, bg, n_chunks, t_final, n_contrib,
                    g_color, g_alpha, g_depth, grads):
    """Gradients into grads (n_chunks, n, N_GRAD) per table row, one buffer per worker (each zeroes its own)."""
    dt = table.dtype
    n_tiles = tile_start.shape[0] - 1
    for ch in prange(n_chunks):
        grads[ch] = 0
        px, py = pixel_offsets(dt)
        T, E, gc, last = np.empty(P, dt), np.empty(P, dt), np.empty((4, P), dt), np.empty(P, np.int32)
        row_last = np.empty(TILE, np.int32)
        for tile in range(ch, n_tiles, n_chunks):
            x0, y0 = (tile % tiles_x) * TILE, (tile // tiles_x) * TILE
            nx, ny = min(TILE, width - x0), min(TILE, height - y0)
            m = _load_tile(g_color, g_alpha, g_depth, bg, t_final, n_contrib, x0, y0, nx, ny, T, E, gc, last,
                           row_last)
            ox, oy = table.dtype.type(x0 + _HALF), table.dtype.type(y0 + _HALF)
            _tile_backward(table, lists, tile_start[tile], m, ox, oy, px, py, T, E, gc, last, row_last, grads[ch])


@kernel(parallel=True)
def gather_grads(grads, row_of, n_chunks, g_means2d, g_conics, g_opacities, g_rgb, g_depths):
    """Sum the workers' buffers grads (n_chunks, n, N_GRAD) and write them per Gaussian i (table row row_of[i],
    -1 = not drawn: zero) into g_means2d (N, 2), g_conics (N, 3), g_opacities (N,), g_rgb (N, 3), g_depths (N,)."""
    n = row_of.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        s = np.empty(N_GRAD, grads.dtype)
        for i in range(ch * size, min(n, (ch + 1) * size)):
            r = row_of[i]
            s[:] = 0
            if r >= 0:
                for w in range(grads.shape[0]):
                    for k in range(N_GRAD):
                        s[k] += grads[w, r, k]
            g_means2d[i, 0], g_means2d[i, 1] = s[0], s[1]
            g_conics[i, 0], g_conics[i, 1], g_conics[i, 2] = s[2], s[3], s[4]
            g_opacities[i] = s[5]
            g_rgb[i, 0], g_rgb[i, 1], g_rgb[i, 2] = s[6], s[7], s[8]
            g_depths[i] = s[9]
