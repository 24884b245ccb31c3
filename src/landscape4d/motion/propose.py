"""A motion mask and hints proposed from the photo alone, for a run without --mask.

- Sky: the depth prior's sky segmentation (`landscape4d.depth.prior.segment_sky`), drifting sideways (clouds).
- Water below the horizon, from colour cues: water reflects the sky or shows its own blue-green colour, so its
  blue channel exceeds its red one (`water_score`); grass (green >> blue), earth, sand, roads and rock (red >=
  blue) do not. The score is smoothed, thresholded and kept where the region is large, wide, below the horizon
  and not sky. Each water region flows along its longest axis (a river along its course).

Each region gets hint arrows of its one velocity (from each connected part's innermost pixel and a coarse grid
inside it), so the proposal is an ordinary labelme file (`Proposal.labelme`) that `landscape4d annotate` edits and `--mask` reads back exactly.
An optional learned segmenter can replace the colour cues: `Segmenter` is the interface (image -> sky, water).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
from scipy import ndimage

from ..config import DepthConfig
from ..depth.filters import box
from ..depth.prior import horizon_row, segment_sky


@dataclass
class ProposeConfig:
    analysis_side: int = 512  # the photo is analysed at this long side (pixels), masks are scaled back
    sky_speed: float = 0.05  # cloud drift: fraction of the image width per `hint_frames` frames
    water_speed: float = 0.04  # water flow: fraction of the image width per `hint_frames` frames
    min_fraction: float = 0.01  # a region (sky or water) smaller than this fraction of the photo is dropped
    min_part: float = 0.002  # connected parts smaller than this fraction of the photo are dropped
    edge_margin: float = 0.004  # regions are shrunk by this fraction of the long side away from what borders them
    arrow_grid: int = 6  # hint arrows on a grid of this many cells along the long side (plus one per part)
    water_min_width: float = 0.15  # a water region spans at least this fraction of the image width
    water_threshold: float = 0.5  # on the smoothed water score
    water_smooth: float = 0.02  # box radius of the score smoothing, fraction of the long side
    water_close: float = 0.015  # closing radius (fills foam and glints inside water), fraction of the long side
    water_evidence: float = 0.3  # a water pixel's own water score is at least this (or it is foam) ...
    foam_brightness: float = 0.55  # ... foam: mean RGB above this
    foam_saturation: float = 0.25  # ... and max - min RGB below this
    max_hole: float = 0.002  # holes in the water smaller than this fraction of the photo (or mostly foam) are water


@dataclass
class Region:
    name: str  # "sky" | "water"
    mask: np.ndarray  # (H, W) bool at the photo size
    velocity: tuple[float, float]  # (dx, dy) px/frame at the photo size
    arrows: np.ndarray  # (K, 2, 2) float64 hint arrows [start, end] in photo pixels, one per connected part

    @property
    def fraction(self) -> float:
        return float(self.mask.mean())


@dataclass
class Proposal:
    width: int
    height: int
    hint_frames: float  # an arrow is the displacement over this many frames
    regions: list[Region] = field(default_factory=list)

    @property
    def mask(self) -> np.ndarray:  # (H, W) bool
        out = np.zeros((self.height, self.width), bool)
        for r in self.regions:
            out |= r.mask
        return out

    @property
    def arrows(self) -> np.ndarray:  # (K, 2, 2)
        return np.concatenate([r.arrows for r in self.regions] + [np.zeros((0, 2, 2))])

    def describe(self, scale: float = 1.0) -> str:
        """'sky (23% of the photo) drifting right at 0.30 px/frame and water (8%) flowing ...'; speeds are in
        pixels per frame of an image `scale` times the photo's size (the run's working size)."""
        parts = []
        for i, r in enumerate(self.regions):
            dx, dy = r.velocity
            speed = float(np.hypot(dx, dy)) * scale
            verb = "drifting" if r.name == "sky" else "flowing"
            share = f"{100 * r.fraction:.0f}% of the photo" if i == 0 else f"{100 * r.fraction:.0f}%"
            parts.append(f"{r.name} ({share}) {verb} {_direction_word(dx, dy)} at {speed:.2f} px/frame")
        return " and ".join(parts) if parts else "nothing"

    def labelme(self, image_path: str) -> dict:
        """The proposal as a labelme document (motion polygons traced from the mask, hintK arrows)."""
        from ..io.masks import labelme_document, mask_polygons

        return labelme_document(mask_polygons(self.mask), self.arrows, self.width, self.height, image_path)


class Segmenter(Protocol):
    """A learned segmenter behind the colour cues: image (H, W, 3) float [0, 1] -> (sky, water) (H, W) bool."""

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def _direction_word(dx: float, dy: float) -> str:
    if abs(dx) >= 2 * abs(dy):
        return "right" if dx > 0 else "left"
    if abs(dy) >= 2 * abs(dx):
        return "down" if dy > 0 else "up"
    return ("down" if dy > 0 else "up") + "-" + ("right" if dx > 0 else "left")


def water_score(image: np.ndarray) -> np.ndarray:
    """image (H, W, 3) float in [0, 1] -> (H, W) float32 in [0, 1]: how much each pixel looks like water by its
    colour (blue above red, and not green above blue)."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    blue = np.clip((b - r - 0.05) / 0.10, 0, 1)
    not_green = np.clip((b - g + 0.03) / 0.05, 0, 1)
    return (blue * not_green).astype(np.float32)


def segment_water(image: np.ndarray, sky: np.ndarray, cfg: ProposeConfig) -> np.ndarray:
    """image (H, W, 3) float, sky (H, W) bool -> water (H, W) bool: large, wide regions of water colour below the
    horizon that are not sky. A pixel joins only with its own evidence (water colour, or foam: bright and grey),
    so the smoothing and the gap closing do not spill onto rocks or banks; holes are filled when small or mostly
    foam, not otherwise (a rock in the sea stays still)."""
    h, w, _ = image.shape
    side = max(h, w)
    v_h = horizon_row(sky) if sky.any() else 0.0
    raw = water_score(image)
    foam = (image.mean(-1) > cfg.foam_brightness) & (image.max(-1) - image.min(-1) < cfg.foam_saturation)
    may = (np.arange(h)[:, None] > v_h) & ~sky & ((raw > cfg.water_evidence) | foam)  # (H, W) where water may be
    wet = (box(raw, max(1, round(cfg.water_smooth * side))) > cfg.water_threshold) & may
    k = max(1, round(cfg.water_close * side))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    wet = cv2.morphologyEx(wet.astype(np.uint8), cv2.MORPH_CLOSE, disk).astype(bool) & may
    holes, n = ndimage.label(ndimage.binary_fill_holes(wet) & ~wet)
    size = np.bincount(holes.ravel(), minlength=n + 1)
    foamy = np.bincount(holes.ravel(), weights=foam.ravel(), minlength=n + 1) > 0.6 * size
    fill = (size < cfg.max_hole * h * w) | foamy
    fill[0] = False
    wet |= fill[holes]
    labels, n = ndimage.label(wet)
    keep = np.zeros(n + 1, bool)
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        wide = (sl[1].stop - sl[1].start) >= cfg.water_min_width * w
        keep[i] = wide and (labels[sl] == i).sum() >= cfg.min_part * h * w
    return keep[labels]


def propose_motion(image: np.ndarray, depth_cfg: DepthConfig, hint_frames: float = 60.0,
                   cfg: ProposeConfig | None = None, segmenter: Segmenter | None = None) -> Proposal:
    """image (H, W, 3) float in [0, 1] (the photo) -> Proposal: the sky drifting right, water flowing along its
    course. Regions under `cfg.min_fraction` of the photo are left out; an empty proposal has no regions."""
    cfg = cfg or ProposeConfig()
    h, w, _ = image.shape
    s = min(1.0, cfg.analysis_side / max(h, w))
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) \
        if s < 1 else image
    if segmenter is not None:
        sky, water = (np.asarray(m, bool) for m in segmenter(small))
    else:
        sky, _ = segment_sky(small, depth_cfg)
        water = segment_water(small, sky, cfg)
    proposal = Proposal(w, h, float(hint_frames))
    for name, m, speed in (("sky", sky, cfg.sky_speed), ("water", water & ~sky, cfg.water_speed)):
        margin = round(cfg.edge_margin * max(small.shape[:2]))
        if margin > 0:  # keep the edge off the still object next to it (no smear of its outline)
            m = ndimage.binary_erosion(m, iterations=margin, border_value=1)
        m = _clean(_to_size(m, w, h), cfg.min_part)
        if m.mean() < cfg.min_fraction:
            continue
        direction = np.array([1.0, 0.0]) if name == "sky" else _flow_direction(m)
        velocity = direction * speed * w / hint_frames
        proposal.regions.append(Region(name, m, (float(velocity[0]), float(velocity[1])),
                                       _part_arrows(m, velocity * hint_frames, cfg.arrow_grid)))
    return proposal


def _to_size(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    if mask.shape == (height, width):
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0.5


def _clean(mask: np.ndarray, min_part: float) -> np.ndarray:
    """Drop connected parts smaller than `min_part` of the image."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_part * mask.size
    keep[0] = False
    return keep[labels]


def _flow_direction(mask: np.ndarray) -> np.ndarray:
    """Unit vector along the region's longest axis (principal axis of its pixels), pointing right, or down when
    the axis is vertical."""
    ys, xs = np.nonzero(mask)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    cov = np.cov((pts - pts.mean(0)).T) if len(pts) > 2 else np.eye(2)
    vals, vecs = np.linalg.eigh(cov)
    d = vecs[:, int(np.argmax(vals))]
    if abs(d[0]) > 1e-9 and abs(d[0]) >= abs(d[1]) * 0.5:
        d = d if d[0] > 0 else -d  # mostly sideways: to the right
    else:
        d = d if d[1] > 0 else -d  # mostly vertical: downwards
    return d / np.linalg.norm(d)


def _part_arrows(mask: np.ndarray, displacement: np.ndarray, grid: int) -> np.ndarray:
    """Arrows (K, 2, 2) of one displacement for each connected part of `mask`: from the part's innermost pixel and
    from the points of a grid (`grid` cells along the long side) that lie well inside it, so that the dense motion
    is this one velocity all over the region, also where it touches another region."""
    h, w = mask.shape
    labels, _ = ndimage.label(mask)
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]  # the image border counts as an edge
    step = max(h, w) / max(1, grid)
    gy, gx = np.meshgrid(np.arange(step / 2, h, step), np.arange(step / 2, w, step), indexing="ij")
    gy, gx = gy.astype(int).ravel(), gx.astype(int).ravel()
    starts = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        d = np.where(labels[sl] == i, dist[sl], -1)
        r, c = np.unravel_index(int(np.argmax(d)), d.shape)
        starts.append((c + sl[1].start, r + sl[0].start))
        inside = (labels[gy, gx] == i) & (dist[gy, gx] >= min(step / 3, d.max() / 2))
        starts += [(x, y) for x, y in zip(gx[inside], gy[inside]) if (x, y) != starts[-1]]
    start = np.asarray(starts, np.float64).reshape(-1, 2) + 0.5
    return np.stack([start, start + displacement], axis=1)
