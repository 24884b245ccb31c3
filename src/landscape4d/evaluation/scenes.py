"""Procedural landscape layouts (river, waterfall, lake) and their ray-casting renderer.

Frames. World = the input camera's frame (OpenCV axes, see landscape4d.camera). The layout lives in a level
"scene" frame (y down, origin at the input camera, ground level 0 at y = h_cam) and the input camera is pitched
down by `pitch_deg` in it; p_scene = R_ws @ p_world. Elevation e = h_cam - y_scene.

Surfaces: a terrain heightfield, the water plane (e = 0, seen wherever the terrain dips below it), for the
waterfall kind a vertical water sheet in front of a cliff, and the sky on a far vertical plane z_scene = sky_z.
Moving surfaces carry a texture advected with a steady velocity (two-phase flow map, exactly periodic in the
loop length): river water along its channel, the waterfall sheet downwards, the clouds of the lake kind
sideways. Their true 3D motion is that velocity (world units per frame); everything else is static.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..camera import Intrinsics
from .raycast import ElevationBound, Heightfield, intersect_plane, march_heightfield
from .textures import Texture, fft_noise, flowing_sample, photo_texture

KINDS = ("river", "waterfall", "lake")
SKY, GROUND, WATER, FALL = 0, 1, 2, 3  # material ids


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def smoothstep(a: float, b: float, x):
    t = np.clip((x - a) / (b - a), 0.0, 1.0) if isinstance(x, np.ndarray) else torch.clamp((x - a) / (b - a), 0, 1)
    return t * t * (3 - 2 * t)


@dataclass
class River:
    z_center: float  # channel centre line z = z_center + amp * sin(2 pi x / wavelength + phase)
    amp: float
    wavelength: float
    phase: float
    half_width: float
    speed: float  # world units per frame along x (signed)

    def centre(self, x):
        lib = np if isinstance(x, np.ndarray) else torch
        return self.z_center + self.amp * lib.sin(2 * math.pi * x / self.wavelength + self.phase)

    def slope(self, x):  # dz/dx of the centre line
        lib = np if isinstance(x, np.ndarray) else torch
        return self.amp * 2 * math.pi / self.wavelength * lib.cos(2 * math.pi * x / self.wavelength + self.phase)


@dataclass
class Waterfall:
    z: float  # the water sheet is the plane z_scene = z, x in [x0, x1], elevation in [0, top]
    x0: float
    x1: float
    top: float
    speed: float  # world units per frame, downwards
    wobble: float = 0.0  # phase of the edge undulation

    def contains(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Whether sheet-plane points (x, elevation e) lie on the sheet: its half-width undulates with e and
        widens towards the pool."""
        centre, half = 0.5 * (self.x0 + self.x1), 0.5 * (self.x1 - self.x0)
        r = torch.clamp(1 - e / self.top, 0, 1)
        width = half * (1 + 0.06 * torch.sin(2.3 * e + self.wobble) + 0.2 * r ** 2)
        return ((x - centre).abs() <= width) & (e >= 0) & (e <= self.top)


@dataclass
class Palette:
    grass_dark: np.ndarray
    grass_light: np.ndarray
    rock_dark: np.ndarray
    rock_light: np.ndarray
    sand: np.ndarray
    snow: np.ndarray
    water: np.ndarray
    horizon: np.ndarray
    zenith: np.ndarray
    cloud: np.ndarray
    fall_dark: np.ndarray
    fall_light: np.ndarray

    @staticmethod
    def random(rng: np.random.Generator) -> "Palette":
        base = dict(grass_dark=(0.12, 0.2, 0.07), grass_light=(0.42, 0.52, 0.2), rock_dark=(0.24, 0.22, 0.2),
                    rock_light=(0.62, 0.58, 0.52), sand=(0.62, 0.57, 0.44), snow=(0.94, 0.95, 0.97),
                    water=(0.05, 0.17, 0.21), horizon=(0.8, 0.86, 0.92), zenith=(0.3, 0.5, 0.82),
                    cloud=(0.97, 0.97, 0.98), fall_dark=(0.55, 0.64, 0.7), fall_light=(0.96, 0.98, 1.0))
        return Palette(**{k: np.clip(np.array(v) * rng.uniform(0.9, 1.1) * rng.uniform(0.97, 1.03, 3), 0, 1)
                          for k, v in base.items()})


@dataclass
class Layout:
    kind: str
    heightfield: Heightfield
    palette: Palette
    textures: dict[str, Texture]
    h_cam: float = 1.8
    pitch_deg: float = 7.0
    sky_z: float = 150.0
    fog_distance: float = 90.0
    sun: np.ndarray = field(default_factory=lambda: _unit([-0.5, -0.75, -0.45]))  # towards the sun, behind us
    river: River | None = None
    waterfall: Waterfall | None = None
    cloud_speed: float = 0.0  # world units per frame along x on the sky plane (lake)
    snow_line: float = 9.0

    @property
    def rotation(self) -> np.ndarray:
        """R_ws (3, 3): world (input camera) vectors -> scene frame vectors."""
        a = math.radians(self.pitch_deg)
        return np.array([[1, 0, 0], [0, math.cos(a), math.sin(a)], [0, -math.sin(a), math.cos(a)]])


# ---------------------------------------------------------------------------------------------------------------
# layouts


def _sampler(tex: Texture):
    def f(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(np.array(x, np.float64))  # copies: inputs may be read-only broadcast views
        zt = torch.from_numpy(np.array(z, np.float64))
        return tex.sample(xt, zt).numpy().astype(np.float64)
    return f


def _surface_textures(rng: np.random.Generator) -> dict[str, Texture]:
    """The layout's material textures (drawn from rng in this fixed order: layouts depend on it)."""
    return {
        "grass": Texture(_photo_or_noise("grass", rng, 1.0), (3.0, 3.0)),
        "rock": Texture(_photo_or_noise("gravel", rng, 0.9), (4.0, 4.0)),
        "variation": Texture(fft_noise(256, rng, beta=1.3), (25.0, 25.0)),
        "water": Texture(fft_noise(256, rng, beta=1.0, stretch=(1.0, 3.0)), (6.0, 3.0)),
        "foam": Texture(fft_noise(256, rng, beta=0.9, stretch=(5.0, 1.0)), (4.0, 8.0)),
        "clouds": Texture(fft_noise(512, rng, beta=1.3), (220.0, 110.0)),
    }


def build_layout(kind: str, seed: int, grid: int = 512) -> Layout:
    """A random layout of `kind` (river | waterfall | lake); the same seed gives the same layout.

    grid: nodes per axis of the terrain heightfield (the same smooth terrain, sampled more or less finely).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; choose one of {', '.join(KINDS)}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    detail = _sampler(Texture(fft_noise(512, rng, beta=1.2), (40.0, 40.0)))
    hills = _sampler(Texture(fft_noise(256, rng, beta=1.8), (160.0, 160.0)))
    ridges = _sampler(Texture(fft_noise(256, rng, beta=1.4), (90.0, 90.0)))

    def mountains(x, z, z0, z1, height):
        r = 1 - np.abs(2 * ridges(x, z) - 1)
        return height * smoothstep(z0, z1, z) * (0.3 + 0.7 * r ** 1.5)

    textures = _surface_textures(rng)
    palette = Palette.random(rng)
    river = waterfall = None
    cloud_speed = 0.0

    if kind == "river":
        sign = 1.0 if rng.random() < 0.5 else -1.0
        river = River(z_center=rng.uniform(8.0, 11.0), amp=rng.uniform(0.5, 1.5), wavelength=rng.uniform(25, 45),
                      phase=rng.uniform(0, 2 * math.pi), half_width=rng.uniform(2.0, 3.0),
                      speed=sign * rng.uniform(0.025, 0.04))
        m_height = rng.uniform(6.0, 10.0)
        rv = river

        def elevation(x, z):
            n = np.abs(z - rv.centre(x))
            behind = smoothstep(rv.z_center + 2, rv.z_center + 10, z)
            land = (0.2 + 0.35 * detail(x, z) + 2.5 * hills(x, z) * behind * smoothstep(rv.half_width + 3,
                    rv.half_width + 15, n) + mountains(x, z, rv.z_center + 20, rv.z_center + 55, m_height))
            bank = smoothstep(rv.half_width - 0.6, rv.half_width + 0.9, n)
            return -0.8 + (land + 0.8) * bank

    elif kind == "waterfall":
        z_f, x_c = rng.uniform(18.0, 22.0), rng.uniform(-2.5, 2.5)
        half, top = rng.uniform(1.5, 2.3), rng.uniform(3.0, 4.0)
        waterfall = Waterfall(z=z_f - 0.75, x0=x_c - half, x1=x_c + half, top=top, speed=rng.uniform(0.04, 0.06),
                              wobble=rng.uniform(0, 2 * math.pi))
        m_height = rng.uniform(5.0, 9.0)

        def elevation(x, z):
            r2 = ((x - x_c) / (half + 2.5)) ** 2 + ((z - (z_f - 2.0)) / 3.0) ** 2
            pool = 1 - smoothstep(0.6, 1.0, r2)
            low = (0.2 + 0.35 * detail(x, z)) * (1 - pool) - 0.6 * pool
            rim = smoothstep(half, half + 1.5, np.abs(x - x_c))
            plateau = (top + (0.6 * detail(x, z) + 2.0 * hills(x, z)) * rim
                       + mountains(x, z, z_f + 15, z_f + 50, m_height))
            side = np.maximum(np.abs(x - x_c) - half - 0.5, 0.0)  # the cliff recedes away from the fall
            z_cliff = z_f + 0.25 * side ** 1.3 + 4.0 * (detail(x, np.full_like(x, 7.0)) - 0.5) * smoothstep(
                0.0, 2.0, side)
            c = smoothstep(z_cliff - 0.6, z_cliff, z)
            return low * (1 - c) + plateau * c

    else:  # lake
        zl0, zl1 = rng.uniform(5.0, 7.0), rng.uniform(28.0, 40.0)
        m_height = rng.uniform(8.0, 13.0)
        cloud_speed = (1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(0.10, 0.18)

        def elevation(x, z):
            near = zl0 + 3.0 * (detail(x, np.full_like(x, 3.0)) - 0.5)
            far = zl1 + 12.0 * (detail(x, np.full_like(x, 50.0)) - 0.5)
            lake = smoothstep(near, near + 1.2, z) * (1 - smoothstep(far - 3.0, far, z))
            land = (0.2 + 0.35 * detail(x, z) + 3.0 * hills(x, z) * smoothstep(zl1 - 5, zl1 + 10, z)
                    + mountains(x, z, zl1 + 5, zl1 + 45, m_height))
            return land * (1 - lake) - 0.7 * lake

    hf = Heightfield.from_function(elevation, a_max=1.6, z_max=140.0, na=grid, nb=grid)
    pitch = {"river": 9.0, "waterfall": 1.0, "lake": 5.0}[kind] + float(rng.uniform(-1.0, 1.0))
    h_cam = {"river": 2.6, "waterfall": 1.8, "lake": 2.0}[kind]
    return Layout(kind=kind, heightfield=hf, palette=palette, textures=textures, river=river, waterfall=waterfall,
                  pitch_deg=pitch, h_cam=h_cam,
                  cloud_speed=cloud_speed, snow_line=float(rng.uniform(7.0, 10.0)))


def _photo_or_noise(name: str, rng: np.random.Generator, beta: float) -> np.ndarray:
    img = photo_texture(name)
    return img if img is not None else fft_noise(512, rng, beta=beta)


# ---------------------------------------------------------------------------------------------------------------
# rendering


def _rgb(colour: np.ndarray) -> torch.Tensor:  # (3,) float32
    return torch.tensor(colour, dtype=torch.float32)


def _lerp(dark: np.ndarray, light: np.ndarray, k: torch.Tensor) -> torch.Tensor:
    """(N,) weights -> (N, 3) colours between two palette entries."""
    return _rgb(dark) + (_rgb(light) - _rgb(dark)) * k[:, None]


@dataclass
class Hits:
    """Per-pixel results of casting the rays of one camera (flattened, N = H * W)."""
    material: torch.Tensor  # (N,) int64 SKY | GROUND | WATER | FALL
    depth: torch.Tensor  # (N,) float64 camera z of the hit (= ray parameter, rays have camera z = 1)
    points: torch.Tensor  # (N, 3) float64 hit points in the scene frame
    dirs: torch.Tensor  # (N, 3) float64 unit ray directions in the scene frame
    distance: torch.Tensor  # (N,) float64 distance from the camera centre
    footprint: torch.Tensor  # (N,) float64 world size of a pixel at the hit, across the ray

    def select(self, keep: torch.Tensor) -> "Hits":
        """The hits of the pixels where keep (N,) bool is true (shading is per pixel, so a subset shades alike)."""
        return Hits(self.material[keep], self.depth[keep], self.points[keep], self.dirs[keep], self.distance[keep],
                    self.footprint[keep])


@dataclass
class RenderOutput:
    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1]
    depth: np.ndarray  # (H, W) float32 z-depth in the rendering camera
    mask: np.ndarray  # (H, W) bool, pixels whose surface moves
    motion3d: np.ndarray  # (H, W, 3) float32 world units per frame, world = input camera frame
    material: np.ndarray  # (H, W) uint8 material ids (SKY 0, GROUND 1, WATER 2, FALL 3)


class SceneRenderer:
    """Renders a layout for any camera (c2w (4, 4) in world = input camera frame, Intrinsics) at any frame t."""

    def __init__(self, layout: Layout, intrinsics: Intrinsics, period: int, march_steps: int = 32):
        self.layout = layout
        self.intr = intrinsics
        self.period = int(period)
        self.march_steps = march_steps
        self.r_ws = torch.from_numpy(layout.rotation)
        self.bound = ElevationBound.from_heightfield(layout.heightfield)
        self._cache: dict[bytes, Hits] = {}

    # -- geometry ------------------------------------------------------------------------------------------

    def rays(self, c2w: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Scene-frame origins (N, 3) and directions (N, 3) with camera z = 1, row-major pixel order."""
        intr = self.intr
        v, u = torch.meshgrid(torch.arange(intr.height, dtype=torch.float64) + 0.5,
                              torch.arange(intr.width, dtype=torch.float64) + 0.5, indexing="ij")
        d_cam = torch.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, torch.ones_like(u)], -1).reshape(-1, 3)
        c2w_t = torch.from_numpy(np.asarray(c2w, np.float64))
        d_world = d_cam @ c2w_t[:3, :3].T
        o_world = c2w_t[:3, 3]
        dirs = d_world @ self.r_ws.T
        origin = self.r_ws @ o_world
        return origin.expand_as(dirs).contiguous(), dirs

    def cast(self, c2w: np.ndarray) -> Hits:
        key = np.ascontiguousarray(c2w, np.float64).tobytes()
        if key not in self._cache:
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = self._cast(c2w)
        return self._cache[key]

    def _cast(self, c2w: np.ndarray) -> Hits:
        lay = self.layout
        o, d = self.rays(c2w)
        n = d.shape[0]
        t_sky = intersect_plane(o, d, 2, lay.sky_z)
        t_sky = torch.where(torch.isfinite(t_sky), t_sky, torch.full_like(t_sky, 10 * lay.sky_z))
        t_water = intersect_plane(o, d, 1, lay.h_cam)
        t_fall = torch.full((n,), math.inf, dtype=torch.float64)
        if lay.waterfall is not None:
            wf = lay.waterfall
            tf = intersect_plane(o, d, 2, wf.z)
            p = o + torch.where(torch.isfinite(tf), tf, torch.zeros_like(tf))[:, None] * d
            e = lay.h_cam - p[:, 1]
            ok = torch.isfinite(tf) & wf.contains(p[:, 0], e)
            t_fall = torch.where(ok, tf, t_fall)
        t_limit = torch.minimum(torch.minimum(t_sky, t_water), t_fall)
        t_ground = march_heightfield(lay.heightfield, o, d, lay.h_cam, 0.2, t_limit, bound=self.bound,
                                     steps=self.march_steps)
        ts = torch.stack([t_sky, t_ground, t_water, t_fall], dim=1)  # column = material id
        t, material = ts.min(dim=1)
        points = o + t[:, None] * d
        norm = torch.linalg.vector_norm(d, dim=1)
        dist = t * norm
        footprint = dist / self.intr.fx
        return Hits(material, t, points, d / norm[:, None], dist, footprint)

    # -- motion --------------------------------------------------------------------------------------------

    def scene_velocity(self, hits: Hits) -> torch.Tensor:
        """(N, 3) scene-frame velocity of the surface at each hit (world units per frame)."""
        lay = self.layout
        vel = torch.zeros_like(hits.points)
        if lay.river is not None:
            w = hits.material == WATER
            x = hits.points[w, 0]
            vel[w, 0] = lay.river.speed
            vel[w, 2] = lay.river.speed * lay.river.slope(x)
        if lay.waterfall is not None:
            vel[hits.material == FALL, 1] = lay.waterfall.speed
        if lay.cloud_speed != 0.0:
            vel[hits.material == SKY, 0] = lay.cloud_speed
        return vel

    def world_velocity(self, hits: Hits) -> torch.Tensor:
        """(N, 3) velocity in the world (input camera) frame: R_ws^T v_scene."""
        return self.scene_velocity(hits) @ self.r_ws

    # -- shading -------------------------------------------------------------------------------------------

    def sky_gradient(self, dirs: torch.Tensor) -> torch.Tensor:  # (N, 3) unit scene dirs -> (N, 3) colour
        pal = self.layout.palette
        el = -dirs[:, 1].to(torch.float32)
        g = smoothstep(-0.05, 0.55, el)[:, None] ** 0.7
        hz, zn = torch.tensor(pal.horizon, dtype=torch.float32), torch.tensor(pal.zenith, dtype=torch.float32)
        return hz * (1 - g) + zn * g

    def shade(self, hits: Hits, t: float) -> torch.Tensor:
        """(N, 3) float32 colours at frame t. Each pixel's colour depends on its own hit only."""
        col = torch.zeros((hits.material.shape[0], 3), dtype=torch.float32)
        for material, fn in ((SKY, self._sky), (GROUND, self._ground), (WATER, self._water), (FALL, self._fall)):
            sel = hits.material == material
            if bool(sel.any()):
                col[sel] = fn(hits.select(sel), t)
        ns = hits.material != SKY  # aerial perspective on everything but the sky
        if bool(ns.any()):
            fog = (1 - torch.exp(-hits.distance[ns] / self.layout.fog_distance)).to(torch.float32)[:, None] * 0.85
            col[ns] = col[ns] * (1 - fog) + _rgb(self.layout.palette.horizon) * fog
        return torch.clamp(col, 0, 1)

    def _sky(self, h: Hits, t: float) -> torch.Tensor:
        """Sky gradient with clouds on the sky plane (drifting in the lake kind)."""
        lay = self.layout
        p, fp, clouds = h.points, h.footprint, lay.textures["clouds"]
        if lay.cloud_speed != 0.0:
            v = flowing_sample(clouds, p[:, 0], p[:, 1], torch.full_like(fp, lay.cloud_speed), torch.zeros_like(fp),
                               t, self.period, fp)
        else:
            v = clouds.sample(p[:, 0], p[:, 1], fp)
        density = smoothstep(0.5, 0.72, v)[:, None] * 0.9
        lit = (0.82 + 0.18 * smoothstep(0.5, 0.8, v))[:, None]
        return self.sky_gradient(h.dirs) * (1 - density) + _rgb(lay.palette.cloud) * lit * density

    def _ground(self, h: Hits, t: float) -> torch.Tensor:
        """Grass, rock on slopes, sand at the waterline, snow up high; Lambert shading."""
        lay, pal, tex = self.layout, self.layout.palette, self.layout.textures
        x, z = h.points[:, 0], h.points[:, 2]
        nrm = lay.heightfield.normal(x, z)
        up = (-nrm[:, 1]).to(torch.float32)
        e = (lay.h_cam - h.points[:, 1]).to(torch.float32)
        cos_inc = torch.clamp((-(h.dirs * nrm).sum(1)).abs(), min=0.1)
        fp = h.footprint / torch.sqrt(cos_inc)
        var = tex["variation"].sample(x, z)[:, None]
        grass = _lerp(pal.grass_dark, pal.grass_light, tex["grass"].sample(x, z, fp)) * (0.75 + 0.5 * var)
        # bi-planar rock mapping: (x, z) on gentle slopes, (x, elevation) on faces turned to the camera
        face = smoothstep(0.45, 0.75, nrm[:, 2].abs()).to(torch.float32)
        rock_v = tex["rock"].sample(x, z, fp) * (1 - face) + tex["rock"].sample(x, h.points[:, 1], fp) * face
        rock = _lerp(pal.rock_dark, pal.rock_light, rock_v)
        w_rock = torch.clamp(smoothstep(0.12, 0.3, 1 - up) + 0.6 * smoothstep(0.62, 0.8, var[:, 0]), 0, 1)[:, None]
        albedo = grass * (1 - w_rock) + rock * w_rock
        w_sand = (1 - smoothstep(0.05, 0.3, e))[:, None] * (1 - w_rock)
        albedo = albedo * (1 - w_sand) + _rgb(pal.sand) * (0.8 + 0.4 * var) * w_sand
        w_snow = (smoothstep(lay.snow_line, lay.snow_line + 1.5, e) * smoothstep(0.55, 0.8, up))[:, None]
        albedo = albedo * (1 - w_snow) + _rgb(pal.snow) * w_snow
        lambert = torch.clamp((nrm * torch.from_numpy(lay.sun)).sum(1), min=0).to(torch.float32)[:, None]
        return albedo * (0.5 + 0.75 * lambert)

    def _water(self, h: Hits, t: float) -> torch.Tensor:
        """Water plane: Fresnel mix of the water colour and the reflected sky gradient, modulated by ripples
        that flow along the river channel (static for lakes and pools)."""
        lay, pal, water = self.layout, self.layout.palette, self.layout.textures["water"]
        p = h.points
        cos_v = torch.clamp(h.dirs[:, 1], min=0.0).to(torch.float32)
        fresnel = (0.04 + 0.96 * (1 - cos_v) ** 5)[:, None]
        refl = self.sky_gradient(h.dirs * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))
        fp = h.footprint / torch.sqrt(torch.clamp(cos_v.to(torch.float64), min=0.05))
        if lay.river is not None:  # channel coordinates: along x, across from the centre line
            u, v = p[:, 0], p[:, 2] - lay.river.centre(p[:, 0])
            val = flowing_sample(water, u, v, torch.full_like(u, lay.river.speed), torch.zeros_like(u), t,
                                 self.period, fp)
        else:
            val = water.sample(p[:, 0], p[:, 2] * 2.0, fp)
        ripple = (val - 0.5)[:, None]
        base = _rgb(pal.water) * (1 + 0.8 * ripple)
        return base * (1 - fresnel) + refl * fresnel * (0.9 + 0.4 * ripple) + 0.35 * torch.clamp(ripple - 0.12, min=0)

    def _fall(self, h: Hits, t: float) -> torch.Tensor:
        """Waterfall sheet: foam streaks flowing down."""
        lay, pal = self.layout, self.layout.palette
        fp = h.footprint
        val = flowing_sample(lay.textures["foam"], h.points[:, 0], h.points[:, 1], torch.zeros_like(fp),
                             torch.full_like(fp, lay.waterfall.speed), t, self.period, fp)
        return _lerp(pal.fall_dark, pal.fall_light, smoothstep(0.3, 0.72, val))

    # -- everything ----------------------------------------------------------------------------------------

    def render(self, c2w: np.ndarray, t: float = 0.0) -> RenderOutput:
        hits = self.cast(c2w)
        h, w = self.intr.height, self.intr.width
        vel = self.world_velocity(hits)
        moving = torch.linalg.vector_norm(vel, dim=1) > 0
        return RenderOutput(
            rgb=self.shade(hits, t).reshape(h, w, 3).numpy(),
            depth=hits.depth.reshape(h, w).numpy().astype(np.float32),
            mask=moving.reshape(h, w).numpy(),
            motion3d=vel.reshape(h, w, 3).numpy().astype(np.float32),
            material=hits.material.reshape(h, w).numpy().astype(np.uint8),
        )
