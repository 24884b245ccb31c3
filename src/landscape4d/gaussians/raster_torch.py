"""Tiled rasterizer in pure PyTorch (CPU and CUDA) with a hand-written backward.

Layout: the image is cut into tiles of T x T pixels (P = T*T). Every visible Gaussian is listed in each tile
whose pixel centres its drawable ellipse (where opacity * exp(power) >= 1/255) reaches; the (tile, Gaussian) list
is sorted by tile, then by depth (`plan_tiles`).

Forward: the lists are walked in segments of S slots. A step takes the segment of up to `chunk_elems / (P S)`
tiles, gathers their Gaussians into a padded (B, S) table (pad = a dummy Gaussian of opacity 0) and computes
dense (B, P, S) tensors: the Gaussian exponent as one batched matmul of the tile's pixel polynomial basis
[1, x, y, x^2, y^2, xy] (P, 6) with per-Gaussian coefficients (B, 6, S); alpha; log-transmittance by a cumulative
sum of log(1 - alpha) continuing from the previous segment; blending weights; then colour/depth/alpha sums as a
batched matmul. A tile drops out once all its pixels have terminated (transmittance < 1e-4), which saves most of
the work in dense scenes. Masks are applied with float arithmetic (F.threshold, clamp) rather than boolean
tensors, and exponent arguments are kept above -30 (denormal results make exp and matmul far slower on CPUs).

Backward: the steps are replayed in reverse (the intermediates are kept when they fit in
`RasterSettings.save_bytes`, else recomputed from the saved per-step input transmittance), carrying per pixel the
sum over later segments of w_j q_j, to evaluate the analytic gradient of front-to-back compositing:
    dL/dalpha_i = T_i q_i - (sum_{j>i} w_j q_j) / (1 - alpha_i),   q_j = dL/dw_j,
then chains through alpha = opacity * exp(power) to the 2D means, conics and opacities. The sums over pixels of
the exponent gradient times dx, dy, dx^2, ... are moments: one batched matmul with the same pixel basis.

The image is the one defined in raster_reference (same cut-offs), independent of tile size and segment length.
Exponents are evaluated in tile-local coordinates (origin at the tile centre) to limit float32 cancellation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .projection import ALPHA_MAX, ALPHA_MIN, T_MIN, gaussian_colors, project_gaussians
from .types import RasterOutput

DEFAULT_TILE = 8
DEFAULT_CHUNK_ELEMS = 1 << 19  # B * P * S elements per step (2 MiB per float32 tensor)
DEFAULT_SEGMENT = 32
DEFAULT_SAVE_BYTES = 1 << 30

_LOG_T_MIN = math.log(T_MIN)
_LOG_ALPHA_MIN = math.log(ALPHA_MIN)
_LOG_T_DEAD = -1e4  # log transmittance given to terminated pixels
_LOG_FLOOR = -30.0  # exp arguments are clamped here
# Skipped contributions (alpha < ALPHA_MIN) get alpha = exp(-30) ~ 9e-14 instead of exactly 0, and terminated
# pixels a transmittance of 9e-14 instead of 0: their effect on colours and gradients is ~1e-13 relative per
# Gaussian, far below float32 resolution; it saves passes, and keeps every product of such factors a normal
# float (denormal operands make CPU arithmetic and matmuls an order of magnitude slower).
# feature table columns
_MX, _MY, _A, _B, _C, _O, _RGB, _Z = 0, 1, 2, 3, 4, 5, slice(6, 9), 9
_NF = 10


@dataclass
class RasterSettings:
    """Performance knobs of the torch backend (the image does not depend on them)."""

    tile_size: int = DEFAULT_TILE
    chunk_elems: int = DEFAULT_CHUNK_ELEMS  # B * P * S elements per step: bounds the working memory
    segment: int = DEFAULT_SEGMENT  # list slots per step; tiles leave once all their pixels terminate
    save_bytes: int = DEFAULT_SAVE_BYTES  # forward intermediates kept for the backward up to this size


@dataclass
class TilePlan:
    """Which Gaussians touch which tile, in depth order."""

    tile_size: int
    tiles_x: int
    tiles_y: int
    gauss_ids: torch.Tensor  # (M,) int64 Gaussian index per intersection, sorted by (tile, depth)
    counts: torch.Tensor  # (n_tiles,) int64 intersections per tile
    offsets: torch.Tensor  # (n_tiles,) int64 start of each tile's list in gauss_ids

    @property
    def num_intersections(self) -> int:
        return int(self.gauss_ids.numel())

    @property
    def num_tiles(self) -> int:
        return self.tiles_x * self.tiles_y


def plan_tiles(
    means2d: torch.Tensor,  # (N, 2)
    conics: torch.Tensor,  # (N, 3)
    extents: torch.Tensor,  # (N, 2) half sizes of the boxes holding the pixels each Gaussian can draw
    reach: torch.Tensor,  # (N,) mahalanobis distance of the farthest pixel each Gaussian can draw
    depths: torch.Tensor,  # (N,)
    valid: torch.Tensor,  # (N,) bool
    width: int,
    height: int,
    tile_size: int = DEFAULT_TILE,
) -> TilePlan:
    """List, for every tile, the Gaussians whose drawable ellipse meets the tile's pixel centres, in depth order.

    Candidates come from the bounding boxes; each (Gaussian, tile) pair is then kept only if the minimum of the
    quadratic form d^T conic d over the tile's rectangle of pixel centres is within reach^2 (exact, with a small
    margin), which drops the corners of the boxes.
    """
    dev = means2d.device
    T = int(tile_size)
    tx_n, ty_n = (width + T - 1) // T, (height + T - 1) // T
    n_tiles = tx_n * ty_n
    with torch.no_grad():
        vis = torch.nonzero(valid & (reach > 0), as_tuple=False).squeeze(1)
        vis = vis[torch.argsort(depths[vis], stable=True)]  # depth order
        m2, ext = means2d[vis].detach(), extents[vis]
        # pixel j has its centre at j + 0.5: it may lie in the box iff j in [m - e - 0.5, m + e - 0.5];
        # widen by half a pixel so rounding never drops a pixel the exact per-pixel test keeps.
        lo = torch.floor((m2 - ext - 1.0) / T).long()
        hi = torch.floor((m2 + ext) / T).long()
        x0, x1 = lo[:, 0].clamp(0, tx_n - 1), hi[:, 0].clamp(0, tx_n - 1)
        y0, y1 = lo[:, 1].clamp(0, ty_n - 1), hi[:, 1].clamp(0, ty_n - 1)
        nx, ny = x1 - x0 + 1, y1 - y0 + 1
        n = nx * ny
        rep = torch.repeat_interleave(torch.arange(vis.numel(), device=dev), n)
        start = torch.cumsum(n, 0) - n
        local = torch.arange(rep.numel(), device=dev) - start[rep]
        nxr = nx[rep]
        tx = x0[rep] + local % nxr
        ty = y0[rep] + local // nxr
        g = vis[rep]
        hit = _ellipse_meets_tile(m2[rep], conics[g].detach(), reach[g], tx, ty, T)
        rep, tile = rep[hit], (ty * tx_n + tx)[hit]
        order = torch.argsort(tile, stable=True)
        gauss_ids = vis[rep[order]]
        counts = torch.bincount(tile, minlength=n_tiles)
        offsets = torch.cumsum(counts, 0) - counts
    return TilePlan(T, tx_n, ty_n, gauss_ids, counts, offsets)


def _ellipse_meets_tile(
    m: torch.Tensor,  # (M, 2) means
    con: torch.Tensor,  # (M, 3) conics (a, b, c)
    reach: torch.Tensor,  # (M,)
    tx: torch.Tensor,  # (M,) tile column
    ty: torch.Tensor,  # (M,) tile row
    T: int,
) -> torch.Tensor:
    """(M,) bool: min over the tile's pixel-centre rectangle of d^T conic d <= reach^2 (+ margin)."""
    dt = m.dtype
    lx = tx.to(dt) * T + 0.5 - m[:, 0]
    hx = lx + (T - 1)
    ly = ty.to(dt) * T + 0.5 - m[:, 1]
    hy = ly + (T - 1)
    a, b, c = con.unbind(-1)
    inv_a, inv_c = 1.0 / a.clamp_min(1e-12), 1.0 / c.clamp_min(1e-12)

    def q(dx, dy):
        return a * dx * dx + 2 * b * dx * dy + c * dy * dy

    best = torch.minimum(
        torch.minimum(q(lx, (-b * lx * inv_c).clamp(ly, hy)), q(hx, (-b * hx * inv_c).clamp(ly, hy))),
        torch.minimum(q((-b * ly * inv_a).clamp(lx, hx), ly), q((-b * hy * inv_a).clamp(lx, hx), hy)),
    )
    inside = (lx <= 0) & (hx >= 0) & (ly <= 0) & (hy >= 0)
    return inside | (best <= reach * reach * (1 + 1e-3) + 1e-3)


def _pixel_basis(T: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(P, 6) polynomial basis [1, x, y, x^2, y^2, xy] of the tile's pixel centres, tile-local (origin at the
    tile centre), row-major pixel order."""
    r = torch.arange(T, device=device, dtype=dtype) + 0.5 - 0.5 * T
    py, px = torch.meshgrid(r, r, indexing="ij")
    px, py = px.reshape(-1), py.reshape(-1)
    return torch.stack([torch.ones_like(px), px, py, px * px, py * py, px * py], dim=-1)


def _below(x: float, dtype: torch.dtype) -> float:
    """The largest value of `dtype` below x, so F.threshold(t, _below(x), v) keeps exactly t >= x."""
    t = torch.tensor(x, dtype=dtype)
    return float(torch.nextafter(t, torch.tensor(-math.inf, dtype=dtype)))


class _Consts:
    def __init__(self, dtype: torch.dtype):
        self.log_alpha = _below(float(torch.tensor(_LOG_ALPHA_MIN, dtype=dtype)), dtype)
        self.log_t = _below(float(torch.tensor(_LOG_T_MIN, dtype=dtype)), dtype)


def _gather(
    table: torch.Tensor, plan: TilePlan, tiles: torch.Tensor, start: int, length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (B, S, F) of list slots [start, start + S) of each tile, means made tile-local, padded with the
    dummy Gaussian (index N, opacity 0) past each tile's list; and the Gaussian ids (B, S)."""
    n = table.shape[0] - 1
    slot = torch.arange(start, start + length, device=tiles.device)
    inside = slot < plan.counts[tiles].unsqueeze(1)
    pos = torch.where(inside, plan.offsets[tiles].unsqueeze(1) + slot, torch.zeros_like(slot))
    ids = torch.where(inside, plan.gauss_ids[pos], torch.full_like(pos, n))
    f = table[ids]
    T = plan.tile_size
    f[..., _MX] -= (tiles % plan.tiles_x).to(table.dtype).unsqueeze(1) * T + 0.5 * T
    f[..., _MY] -= (tiles // plan.tiles_x).to(table.dtype).unsqueeze(1) * T + 0.5 * T
    return f, ids


def _power_coefs(f: torch.Tensor) -> torch.Tensor:
    """(B, S, F) -> (B, 6, S): log(opacity) - 0.5 d^T [[a, b], [b, c]] d, d = (x - mx, y - my), as a polynomial in
    the basis [1, x, y, x^2, y^2, xy] (its exponential is the unclamped alpha)."""
    mx, my, a, b, c = f[..., _MX], f[..., _MY], f[..., _A], f[..., _B], f[..., _C]
    amx, cmy = a * mx, c * my
    c0 = torch.log(f[..., _O].clamp_min(1e-30)) - 0.5 * (amx * mx + cmy * my) - b * mx * my
    return torch.stack([c0, amx + b * my, cmy + b * mx, -0.5 * a, -0.5 * c, -b], dim=1)


def _weights(f: torch.Tensor, basis: torch.Tensor, carry: torch.Tensor | None, k: _Consts):
    """Blending weights of one step. f (B, S, F) tile-local features; basis (P, 6); carry (B, P) log
    transmittance before the first slot (None = 0).

    Returns w (B, P, S) blending weights (~0 once a pixel has terminated), alpha (B, P, S) clamped alpha (~0 where
    skipped), t_excl (B, P, S) transmittance before each Gaussian, log_t (B, P) log transmittance after the last
    slot (past termination too, so it stays below log T_MIN once terminated).
    """
    log_raw = torch.matmul(basis, _power_coefs(f))  # (B, P, S) log of opacity * exp(power)
    F.threshold_(log_raw, k.log_alpha, _LOG_FLOOR)  # alpha < ALPHA_MIN: skipped
    alpha = log_raw.exp_().clamp_(max=ALPHA_MAX)
    log1m = torch.log(1.0 - alpha)
    cs = torch.cumsum(log1m, dim=-1)  # log transmittance after each Gaussian
    if carry is not None:
        cs.add_(carry.unsqueeze(-1))
    log_t = cs[..., -1].clone()
    F.threshold_(cs, k.log_t, _LOG_T_DEAD)  # the Gaussian that would cross T_MIN, and all after it, are cut
    t_excl = cs.sub_(log1m).clamp_(min=_LOG_FLOOR).exp_()
    w = alpha * t_excl
    return w, alpha, t_excl, log_t


def _values(f: torch.Tensor) -> torch.Tensor:
    """(B, S, 5): what the weights sum up per pixel: rgb, depth, 1 (alpha)."""
    return torch.cat([f[..., _RGB], f[..., _Z : _Z + 1], torch.ones_like(f[..., :1])], dim=-1)


@dataclass
class _Step:
    tiles: torch.Tensor  # (B,)
    start: int
    length: int
    carry: torch.Tensor  # (B, P) log transmittance before the segment
    saved: tuple | None  # (w, alpha, t_excl) when kept


def _forward(table: torch.Tensor, plan: TilePlan, settings: RasterSettings, keep: bool, width: int, height: int):
    """Composite all tiles. Returns the accumulated (n_tiles, P, 5) rgb/depth/alpha sums and the steps taken.
    Pixels of partial tiles that lie outside the image start terminated, so they never keep a tile alive."""
    T = plan.tile_size
    P = T * T
    dtype, dev = table.dtype, table.device
    k = _Consts(dtype)
    basis = _pixel_basis(T, dtype, dev)
    acc = torch.zeros(plan.num_tiles, P, 5, dtype=dtype, device=dev)
    inside = _image_to_tiles(torch.ones(height, width, 1, dtype=dtype, device=dev), plan)[..., 0]
    log_t = (1.0 - inside) * _LOG_T_DEAD  # (n_tiles, P)
    counts = plan.counts
    alive = counts > 0
    l_max = int(counts.max()) if counts.numel() else 0
    S = max(1, int(settings.segment))
    per_step = max(1, settings.chunk_elems // (P * S))
    steps: list[_Step] = []
    budget = settings.save_bytes if keep else 0
    for s0 in range(0, l_max, S):
        tiles = torch.nonzero(alive & (counts > s0), as_tuple=False).squeeze(1)
        if tiles.numel() == 0:
            break
        length = min(S, l_max - s0)
        for sub in tiles.split(per_step):
            f, _ = _gather(table, plan, sub, s0, length)
            carry = log_t[sub]
            w, alpha, t_excl, lt = _weights(f, basis, carry, k)
            acc[sub] += torch.bmm(w, _values(f))
            log_t[sub] = lt
            if keep:
                nbytes = 3 * w.numel() * w.element_size()
                saved = (w, alpha, t_excl) if nbytes <= budget else None
                budget -= nbytes if saved is not None else 0
                steps.append(_Step(sub, s0, length, carry, saved))
        alive &= (log_t >= k.log_t).any(1)
    return acc, steps


def _backward(table, plan, settings, steps, g_tiles):
    """Gradients (N + 1, 10) w.r.t. the feature table columns (mx, my, a, b, c, o, r, g, b, z)."""
    T = plan.tile_size
    dtype, dev = table.dtype, table.device
    k = _Consts(dtype)
    basis = _pixel_basis(T, dtype, dev)
    basis_t = basis.T.contiguous()  # (6, P)
    grads = torch.zeros(table.shape[0], _NF, dtype=dtype, device=dev)
    later = torch.zeros(plan.num_tiles, T * T, dtype=dtype, device=dev)  # sum of w q over later segments
    for step in reversed(steps):
        f, ids = _gather(table, plan, step.tiles, step.start, step.length)
        if step.saved is not None:  # used once (modified in place below); a second backward recomputes
            w, alpha, t_excl = step.saved
            step.saved = None
        else:
            w, alpha, t_excl, _ = _weights(f, basis, step.carry, k)
        gt = g_tiles[step.tiles]  # (B, P, 5)
        g_vals = torch.bmm(w.transpose(1, 2), gt)  # (B, S, 5): dL/d(rgb, z) per intersection
        q = torch.bmm(gt, _values(f).transpose(1, 2))  # (B, P, S): dL/dw
        cum = torch.cumsum(w.mul_(q), dim=-1)
        del w
        total = cum[..., -1] + later[step.tiles]  # (B, P)
        later[step.tiles] = total
        suffix = cum.neg_().add_(total.unsqueeze(-1))  # sum_{j>i} w_j q_j
        g = t_excl.mul_(q)
        del q
        g.sub_(suffix.div_(1.0 - alpha))  # dL/dalpha
        del suffix
        # alpha = exp(log_raw) where not clamped: dL/dlog_raw = dL/dalpha * alpha * [alpha < ALPHA_MAX]
        g.mul_(alpha)
        g.mul_(alpha.neg_().add_(ALPHA_MAX).ceil_())
        del alpha
        mom = torch.matmul(basis_t, g)  # (B, 6, S) moments of dL/dlog_raw
        del g
        o = f[..., _O]
        s0, sx, sy, sxx, syy, sxy = mom.unbind(1)
        mx, my, a, b, c = f[..., _MX], f[..., _MY], f[..., _A], f[..., _B], f[..., _C]
        gdx = sx - mx * s0  # sum_p dL/dpower * dx
        gdy = sy - my * s0
        gdxx = sxx - 2 * mx * sx + mx * mx * s0
        gdyy = syy - 2 * my * sy + my * my * s0
        gdxy = sxy - mx * sy - my * sx + mx * my * s0
        per = torch.stack(
            [a * gdx + b * gdy, b * gdx + c * gdy, -0.5 * gdxx, -gdxy, -0.5 * gdyy, s0 / o.clamp_min(1e-30),
             g_vals[..., 0], g_vals[..., 1], g_vals[..., 2], g_vals[..., 3]],
            dim=-1,
        )  # (B, S, 10)
        grads.index_add_(0, ids.reshape(-1), per.reshape(-1, _NF))
    return grads


class _RasterizeTiles(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, rgb, depths, background, plan, settings, width, height):
        table = _feature_table(means2d, conics, opacities, rgb, depths)
        acc, steps = _forward(table, plan, settings, True, width, height)
        color, alpha, depth = _finish(acc, plan, background, width, height)
        ctx.save_for_backward(means2d, conics, opacities, rgb, depths, background, alpha)
        ctx.plan, ctx.settings, ctx.steps, ctx.size = plan, settings, steps, (width, height)
        return color, alpha, depth

    @staticmethod
    def backward(ctx, g_color, g_alpha, g_depth):
        means2d, conics, opacities, rgb, depths, background, alpha_img = ctx.saved_tensors
        plan, (width, height) = ctx.plan, ctx.size
        n = means2d.shape[0]
        dtype, dev = means2d.dtype, means2d.device
        zeros = lambda c: torch.zeros(height, width, c, dtype=dtype, device=dev)  # noqa: E731
        g_color = zeros(3) if g_color is None else g_color
        g_alpha = zeros(1) if g_alpha is None else g_alpha
        g_depth = zeros(1) if g_depth is None else g_depth
        # colour = sum w c + (1 - A) bg: the background term moves into the alpha gradient
        g_a_eff = g_alpha - (g_color * background).sum(-1, keepdim=True)
        g_tiles = _image_to_tiles(torch.cat([g_color, g_depth, g_a_eff], dim=-1), plan)  # (n_tiles, P, 5)
        g_bg = (g_color * (1.0 - alpha_img)).sum((0, 1)) if ctx.needs_input_grad[5] else None
        table = _feature_table(means2d, conics, opacities, rgb, depths)
        grads = _backward(table, plan, ctx.settings, ctx.steps, g_tiles)[:n]  # (drops the kept intermediates)
        return (grads[:, 0:2], grads[:, 2:5], grads[:, 5], grads[:, 6:9], grads[:, 9], g_bg,
                None, None, None, None)


def _finish(acc, plan, background, width, height):
    img = _tiles_to_image(acc, plan, width, height)  # (H, W, 5)
    alpha = img[..., 4:5].contiguous()
    return img[..., :3] + (1.0 - alpha) * background, alpha, img[..., 3:4].contiguous()


def _feature_table(means2d, conics, opacities, rgb, depths) -> torch.Tensor:
    """(N + 1, F) per-Gaussian features; the last row is a dummy (opacity 0) used for padding."""
    n = means2d.shape[0]
    table = torch.zeros(n + 1, _NF, dtype=means2d.dtype, device=means2d.device)
    table[:n, 0:2] = means2d.detach()
    table[:n, 2:5] = conics.detach()
    table[:n, 5] = opacities.detach()
    table[:n, 6:9] = rgb.detach()
    table[:n, 9] = depths.detach()
    return table


def _tiles_to_image(acc: torch.Tensor, plan: TilePlan, width: int, height: int) -> torch.Tensor:
    """(n_tiles, P, C) -> (H, W, C)."""
    T, C = plan.tile_size, acc.shape[-1]
    img = acc.view(plan.tiles_y, plan.tiles_x, T, T, C).permute(0, 2, 1, 3, 4)
    return img.reshape(plan.tiles_y * T, plan.tiles_x * T, C)[:height, :width]


def _image_to_tiles(img: torch.Tensor, plan: TilePlan) -> torch.Tensor:
    """(H, W, C) -> (n_tiles, P, C), zero-padded to whole tiles."""
    T, C = plan.tile_size, img.shape[-1]
    H, W = img.shape[0], img.shape[1]
    full = img.new_zeros(plan.tiles_y * T, plan.tiles_x * T, C)
    full[:H, :W] = img
    return full.view(plan.tiles_y, T, plan.tiles_x, T, C).permute(0, 2, 1, 3, 4).reshape(-1, T * T, C)


def rasterize_torch(
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
    settings: RasterSettings | None = None,
) -> RasterOutput:
    proj = project_gaussians(means, quats, scales, viewmat, K, width, height, opacities)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()
    rgb = gaussian_colors(colors, means, viewmat, sh_degree)
    if settings is None:
        settings = RasterSettings() if means.device.type == "cpu" else RasterSettings(
            tile_size=16, chunk_elems=1 << 24, segment=64, save_bytes=4 << 30)
    plan = plan_tiles(means2d, proj.conics, proj.extents, proj.reach, proj.depths, proj.valid, width, height,
                      settings.tile_size)
    dtype, dev = means.dtype, means.device
    bg = torch.zeros(3, dtype=dtype, device=dev) if background is None else background.to(dev, dtype)
    inputs = (means2d, proj.conics, opacities, rgb, proj.depths, bg)
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        color, alpha, depth = _RasterizeTiles.apply(*inputs, plan, settings, int(width), int(height))
    else:
        acc, _ = _forward(_feature_table(*inputs[:5]), plan, settings, False, int(width), int(height))
        color, alpha, depth = _finish(acc, plan, bg, int(width), int(height))
    return RasterOutput(color=color, alpha=alpha, depth=depth, means2d=means2d, radii=proj.radii)
