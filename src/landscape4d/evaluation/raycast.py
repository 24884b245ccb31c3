"""Ray casting of analytic scene geometry: a terrain heightfield (ray-marched, then bisected) and planes.

Scene frame: y points down (OpenCV-like), so the elevation e of a point is h_cam - y, where h_cam is the camera
height above the zero level. The heightfield e(x, z) is defined by bilinear interpolation of samples on a
perspective-warped grid (a = x / (z + z0), b = log(z + z0)), which is dense near the camera and sparse far away,
like the pixels that see it. All geometry is float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Heightfield:
    grid: torch.Tensor  # (Nb, Na) float64 elevations at the warped-grid nodes
    a_max: float  # lateral extent: a = x / (z + z0) in [-a_max, a_max]
    z_max: float  # depth extent: z in [0, z_max]; outside, the border values continue
    z0: float

    @staticmethod
    def from_function(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], a_max: float = 1.6,
                      z_max: float = 120.0, z0: float = 1.0, na: int = 512, nb: int = 512) -> "Heightfield":
        """Sample the elevation function fn(x, z) -> e (numpy, broadcasting) on the warped grid."""
        a = np.linspace(-a_max, a_max, na)
        b = np.linspace(math.log(z0), math.log(z_max + z0), nb)
        zz = np.exp(b)[:, None] - z0
        xx = a[None, :] * (zz + z0)
        e = np.asarray(fn(np.broadcast_to(xx, (nb, na)), np.broadcast_to(zz, (nb, na))), np.float64)
        return Heightfield(torch.from_numpy(np.ascontiguousarray(e)), a_max, z_max, z0)

    @property
    def max_elevation(self) -> float:
        return float(self.grid.max())

    def elevation(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """e at world (x, z) (any equal shapes), bilinear on the warped grid, border-clamped."""
        zc = torch.clamp(z, 0.0, self.z_max)
        a = x / (zc + self.z0)
        b = torch.log(zc + self.z0)
        b0, b1 = math.log(self.z0), math.log(self.z_max + self.z0)
        gx = a / self.a_max
        gy = (b - b0) / (b1 - b0) * 2 - 1
        grid = torch.stack([gx, gy], dim=-1).reshape(1, 1, -1, 2).to(self.grid.dtype)
        e = F.grid_sample(self.grid[None, None], grid, mode="bilinear", padding_mode="border", align_corners=True)
        return e.reshape(x.shape)

    def node_spacing(self, z: torch.Tensor) -> torch.Tensor:
        """World spacing of the grid nodes near depth z (the larger of the two axes)."""
        na, nb = self.grid.shape[1], self.grid.shape[0]
        da = 2 * self.a_max / (na - 1)
        db = (math.log(self.z_max + self.z0) - math.log(self.z0)) / (nb - 1)
        return (torch.clamp(z, 0.0, self.z_max) + self.z0) * max(da, db)

    def normal(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Unit up-facing normals (N, 3) in the scene frame (up = -y), by central differences."""
        eps = self.node_spacing(z)
        ex = (self.elevation(x + eps, z) - self.elevation(x - eps, z)) / (2 * eps)
        ez = (self.elevation(x, z + eps) - self.elevation(x, z - eps)) / (2 * eps)
        n = torch.stack([-ex, -torch.ones_like(ex), -ez], dim=-1)
        return n / torch.linalg.vector_norm(n, dim=-1, keepdim=True)


@dataclass
class ElevationBound:
    """Upper bounds of the terrain over cells of the warped grid (a-bands x z-segments), used to restrict each
    ray's march to the parameter range where it can possibly be below the terrain.

    range_max[i0, i1, s] is the highest node over bands i0..i1 in segment s, including the nodes one spacing
    outside the cell (a bilinear surface never exceeds its surrounding nodes), so the bound is conservative.
    """
    a_edges: torch.Tensor  # (B + 1,) band edges in a; the outer ones are -inf / inf (border clamping)
    z_edges: torch.Tensor  # (S + 1,) segment edges in z; the outer ones are -inf / inf
    range_max: torch.Tensor  # (B, B, S) float64
    z_max: float
    z0: float

    @staticmethod
    def from_heightfield(hf: Heightfield, bands: int = 32, segments: int = 16) -> "ElevationBound":
        nb, na = hf.grid.shape
        ca = np.linspace(0, na - 1, bands + 1).round().astype(int)
        cb = np.linspace(0, nb - 1, segments + 1).round().astype(int)
        a_nodes = np.linspace(-hf.a_max, hf.a_max, na)
        z_nodes = np.exp(np.linspace(math.log(hf.z0), math.log(hf.z_max + hf.z0), nb)) - hf.z0
        g = hf.grid.numpy()
        cell = np.empty((bands, segments))
        for i in range(bands):
            for j in range(segments):
                cell[i, j] = g[max(cb[j] - 1, 0):cb[j + 1] + 2, max(ca[i] - 1, 0):ca[i + 1] + 2].max()
        rm = np.full((bands, bands, segments), -np.inf)
        for i0 in range(bands):
            acc = np.full(segments, -np.inf)
            for i1 in range(i0, bands):
                acc = np.maximum(acc, cell[i1])
                rm[i0, i1] = acc
        a_edges = a_nodes[ca].copy()
        z_edges = z_nodes[cb].copy()
        a_edges[0], a_edges[-1], z_edges[0], z_edges[-1] = -np.inf, np.inf, -np.inf, np.inf
        return ElevationBound(torch.from_numpy(a_edges), torch.from_numpy(z_edges), torch.from_numpy(rm),
                              hf.z_max, hf.z0)

    def _a_of(self, o: torch.Tensor, d: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        z = torch.clamp(o[:, 2] + t * d[:, 2], 0.0, self.z_max)
        return (o[:, 0] + t * d[:, 0]) / (z + self.z0)

    def ray_range(self, o: torch.Tensor, d: torch.Tensor, h_cam: float, t_lo: torch.Tensor,
                  t_hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(t_start, t_stop) (N,) within [t_lo, t_hi] outside which the ray cannot be below the terrain;
        t_start = inf where it cannot be below it anywhere. Rays with d_z <= 0 keep their whole range."""
        fwd = d[:, 2] > 1e-9
        dz = torch.where(fwd, d[:, 2], torch.ones_like(d[:, 2]))
        # the a-range the ray sweeps: a(t) is monotone between the points where z crosses 0 and z_max
        cands = [t_lo, t_hi] + [torch.clamp((zc - o[:, 2]) / dz, t_lo, t_hi) for zc in (0.0, self.z_max)]
        a = torch.stack([self._a_of(o, d, t) for t in cands], dim=1)
        inner = self.a_edges[1:-1].contiguous()
        i0 = torch.searchsorted(inner, a.min(dim=1).values.contiguous(), right=True)
        i1 = torch.searchsorted(inner, a.max(dim=1).values.contiguous(), right=True)
        bound = self.range_max[i0, i1]  # (N, S)
        # t-interval of each z segment (edges are -inf / inf at the ends)
        tz0 = (self.z_edges[None, :-1] - o[:, 2:3]) / dz[:, None]
        tz1 = (self.z_edges[None, 1:] - o[:, 2:3]) / dz[:, None]
        # elevation constraint h_cam - o_y - t d_y <= bound  <=>  t d_y >= c   (d_y = 0 nudged to +1e-12)
        dy = d[:, 1:2]
        dy = torch.where(dy.abs() < 1e-12, torch.full_like(dy, 1e-12), dy)
        te = (h_cam - o[:, 1:2] - bound) / dy
        up = dy > 0  # descending ray (y points down)
        lo = torch.maximum(torch.maximum(tz0, torch.where(up, te, -math.inf)), t_lo[:, None])
        hi = torch.minimum(torch.minimum(tz1, torch.where(up, math.inf, te)), t_hi[:, None])
        ok = lo <= hi
        t_start = torch.where(ok, lo, math.inf).amin(dim=1) * (1 - 1e-9)
        t_stop = torch.where(ok, hi, -math.inf).amax(dim=1) * (1 + 1e-9)
        t_start = torch.where(fwd, t_start, t_lo)
        t_stop = torch.where(fwd, t_stop, t_hi)
        return t_start, t_stop


def march_heightfield(hf: Heightfield, origins: torch.Tensor, dirs: torch.Tensor, h_cam: float,
                      t_start: float, t_end: torch.Tensor, bound: ElevationBound | None = None,
                      steps: int = 32, refine: int = 14, chunk: int = 11) -> torch.Tensor:
    """First intersection parameter t of rays o + t d with the terrain, in [t_start, t_end]; inf for none.

    origins, dirs: (N, 3) scene frame (dirs need not be unit); t_end: (N,). With a `bound`, each ray's range
    is first cut to where it can be below the terrain (rays that cannot are skipped). The range is sampled
    geometrically (`steps` intervals, float32), the first sample below the ground found, and that interval
    bisected `refine` times in float64. Features thinner than one step can be missed.
    """
    n = origins.shape[0]
    t_lo = torch.full((n,), float(t_start), dtype=torch.float64)
    t_hi = torch.as_tensor(t_end, dtype=torch.float64).clone()
    if bound is not None:
        t_lo, t_hi = bound.ray_range(origins, dirs, h_cam, t_lo, t_hi)
        t_lo = torch.clamp(t_lo, min=float(t_start))
    t_hit = torch.full((n,), math.inf, dtype=torch.float64)
    lo = t_lo.clone()
    hi = torch.full((n,), math.nan, dtype=torch.float64)
    active = torch.nonzero(torch.isfinite(t_lo) & (t_hi >= t_lo)).reshape(-1)
    log_ratio = torch.zeros(n, dtype=torch.float64)
    log_ratio[active] = torch.log(t_hi[active] / t_lo[active])
    grid32 = Heightfield(hf.grid.to(torch.float32), hf.a_max, hf.z_max, hf.z0)

    def clearance(field: Heightfield, idx: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Ray elevation minus terrain elevation at parameters t (len(idx), ...) of the rays idx."""
        o = origins[idx].to(t.dtype)
        d = dirs[idx].to(t.dtype)
        extra = [1] * (t.ndim - 1)
        x = o[:, 0].reshape(-1, *extra) + t * d[:, 0].reshape(-1, *extra)
        y = o[:, 1].reshape(-1, *extra) + t * d[:, 1].reshape(-1, *extra)
        z = o[:, 2].reshape(-1, *extra) + t * d[:, 2].reshape(-1, *extra)
        return (h_cam - y) - field.elevation(x, z)

    for c0 in range(0, steps + 1, chunk):
        if active.numel() == 0:
            break
        ks = torch.arange(c0, min(c0 + chunk, steps + 1), dtype=torch.float64)
        tt = t_lo[active, None] * torch.exp(log_ratio[active, None] * ks[None, :] / steps)  # (A, C) float64
        below = clearance(grid32, active, tt.to(torch.float32)) <= 0
        hit = below.any(dim=1)
        first = torch.argmax(below.to(torch.int8), dim=1)
        hit_idx = active[hit]
        f = first[hit]
        t_first = tt[hit, f]
        prev = torch.where(f > 0, tt[hit, (f - 1).clamp(min=0)], lo[hit_idx])
        lo[hit_idx] = torch.where((f == 0) & (c0 == 0), t_first, prev)
        hi[hit_idx] = t_first
        miss = ~hit
        lo[active[miss]] = tt[miss, -1]
        active = active[miss]

    done = torch.nonzero(~torch.isnan(hi)).reshape(-1)
    if done.numel():
        a, b = lo[done], hi[done]
        for _ in range(refine):
            mid = 0.5 * (a + b)
            below = clearance(hf, done, mid) <= 0
            b = torch.where(below, mid, b)
            a = torch.where(below, a, mid)
        t_hit[done] = b
    return t_hit


def march_heightfield_reference(hf: Heightfield, origin: np.ndarray, direction: np.ndarray, h_cam: float,
                                t_start: float, t_end: float, samples: int = 20000) -> float:
    """Brute-force reference for one ray: dense uniform samples of [t_start, t_end] in float64 (no bound, no
    geometric steps), the first one below the terrain, then bisection. inf when none is below."""
    o = torch.as_tensor(np.asarray(origin, np.float64))
    d = torch.as_tensor(np.asarray(direction, np.float64))

    def clearance(t: torch.Tensor) -> torch.Tensor:
        p = o[None] + t[:, None] * d[None]
        return (h_cam - p[:, 1]) - hf.elevation(p[:, 0], p[:, 2])

    t = torch.linspace(t_start, t_end, samples, dtype=torch.float64)
    below = torch.nonzero(clearance(t) <= 0).reshape(-1)
    if below.numel() == 0:
        return math.inf
    k = int(below[0])
    if k == 0:
        return float(t_start)
    a, b = float(t[k - 1]), float(t[k])
    for _ in range(50):
        m = 0.5 * (a + b)
        if float(clearance(torch.tensor([m], dtype=torch.float64))[0]) <= 0:
            b = m
        else:
            a = m
    return b


def intersect_plane(origins: torch.Tensor, dirs: torch.Tensor, axis: int, value: float) -> torch.Tensor:
    """t where rays reach coordinate `axis` == value (positive t only, else inf). (N,)"""
    d = dirs[:, axis]
    safe = torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t = (value - origins[:, axis]) / safe
    return torch.where((t > 0) & (d.abs() >= 1e-12), t, torch.full_like(t, math.inf))
