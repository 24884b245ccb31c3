"""The offline landscape depth prior: depth from the photo alone, no learned weights, in the spirit of Hoiem,
Efros and Hebert's "Automatic Photo Pop-up" (2005): sky, ground and upright regions.

1. Sky ("sky"): a per-pixel score from colour (blue or bright-grey), brightness, smoothness and height in the
   image, refined into a soft matte by the guided filter and kept only where connected to the top border. The
   smoothness term misses the sky for a few pixels along every edge it meets (a cliff's top): that band joins the
   sky where its colour is closer to the sky's next to it than to what lies below (`grow_sky_edge`), else those
   pixels stand at depths between the cliff and the sky and, seen from a moved camera, hang as streaks in the sky.
2. Horizon: from the lowest sky rows (or a default when there is little sky). Below it a ground plane seen by a
   level camera: disparity linear in the row, the bottom row nearest, never farther than `max_ground_depth`.
3. Ground or upright, below the horizon (everything non-sky above it is upright): log-odds of colour ("colour":
   models learned on the photo itself, bottom rows = ground, what stands above the horizon = upright), texture
   ("vertical": vertical edges of trunks, cliffs and walls against the horizontal ones of ground and water seen at
   a grazing angle) and continuity ("stands-above": what rises above the horizon goes on down its column until a
   colour edge, where it meets the ground).
4. The farthest ground seen ("far-ground"): the top of the ground region that reaches the bottom border is far
   but not infinitely far, which moves the horizon up from the sky line when mountains or trees stand on it.
5. Contact ("contact"): every column is scanned from the bottom; ground follows the plane, an upright region
   keeps the depth where it meets the ground (a tree, a rock face, a cliff stand up).
6. Hanging regions ("hanging", "occluders"): non-sky with sky below it in its column takes the depth of the rest
   of its region; a region that stands on nothing, touches the top or a side border and is darker than the sky
   (a branch in a corner) is near; anything else floating in the sky is sky (a cloud the sky score missed).
7. Edge-aware refinement ("edges"): the disparity is guided-filtered with the photo as guide, so depth edges
   follow image edges; the sky is then set to its far, finite depth.

Each step is a named cue (`CUES`); `landscape4d bench depth DIR --ablate` measures each one switched off.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from ..config import DepthConfig
from .filters import box, guided_filter
from .layout import (colour_ground_probability, contact_scan, farthest_ground_row, plane_disparity,
                     resolve_hanging, stands_above, vertical_structure)

CUES = frozenset({"sky", "contact", "colour", "vertical", "stands-above", "far-ground", "hanging", "occluders",
                  "edges"})
NO_SKY_HORIZON = 0.4  # horizon row (fraction of the height) when the photo shows too little sky to place it
COLOUR_WEIGHT = 0.5  # weight of the colour evidence in the ground/upright log-odds (texture and sky weigh 1)
FARTHEST_GROUND = 0.5  # depth of the farthest ground seen, as a share of max_ground_depth (places the horizon)
SIGMA_DIV = 128.0  # blur of the photo for `stands_above`: long side / SIGMA_DIV pixels
STANDS_WEIGHT = 1.5  # weight of `stands_above` in the upright log-odds
OCCLUDER_DEPTH = 2.0  # depth of a border-touching occluder in front of the sky, in `near` units



def sky_score(image: np.ndarray) -> np.ndarray:
    """image (H, W, 3) float -> (H, W) score in [0, 1]: how much each pixel looks like sky."""
    h, w, _ = image.shape
    r, b = image[..., 0], image[..., 2]
    gray = image.mean(-1)
    bright = np.clip((gray - 0.35) / 0.45, 0, 1)
    blue = np.clip((b - r) / 0.25 + 0.3, 0, 1) * np.clip((b - 0.25) / 0.4, 0, 1)
    sat = image.max(-1) - image.min(-1)
    grey_bright = np.clip((gray - 0.55) / 0.3, 0, 1) * np.clip(1 - sat / 0.25, 0, 1)  # overcast sky
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    tex = box(np.sqrt(gx * gx + gy * gy), max(2, w // 128))
    smooth = np.clip(1 - tex / 0.25, 0, 1)
    rows = (np.arange(h, dtype=np.float32) / max(1, h - 1))[:, None]
    height = np.clip(1.2 - 1.6 * rows, 0, 1)
    colour = np.maximum(blue, grey_bright)
    return np.clip(colour * (0.5 + 0.5 * bright) * smooth * height * 2.2, 0, 1).astype(np.float32)


def segment_sky(image: np.ndarray, cfg: DepthConfig) -> tuple[np.ndarray, np.ndarray]:
    """-> (sky mask (H, W) bool connected to the top border, soft matte (H, W) float)."""
    score = sky_score(image)
    matte = np.clip(guided_filter(image, score, max(2, cfg.guided_radius), 1e-2), 0, 1)
    hard = matte > 0.5
    labels, n = ndimage.label(hard)
    if n == 0:
        return hard, matte
    top = np.unique(labels[0][labels[0] > 0])
    sky = grow_sky_edge(image, np.isin(labels, top), max(2, image.shape[1] // 128) + 2)
    # a sky region must be a real part of the picture, not a few bright pixels at the top edge
    if sky.mean() < 0.01:
        sky[:] = False
    return sky, matte * sky


def grow_sky_edge(image: np.ndarray, sky: np.ndarray, radius: int) -> np.ndarray:
    """The sky mask (H, W) bool grown into the band of `radius` pixels around it: a band pixel becomes sky when
    its colour is nearer the mean colour of the sky within 2 radius of it than the mean colour of what lies beyond
    the band there (the cliff, the trees); the result stays connected to the given sky."""
    if not sky.any() or sky.all():
        return sky
    near = ndimage.binary_dilation(sky, iterations=radius)
    band, beyond = near & ~sky, ~near

    def local_mean(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = mask.astype(np.float32)
        share = box(m, 2 * radius)
        mean = box(image * m[..., None], 2 * radius) / np.maximum(share, 1e-6)[..., None]  # box filters each channel
        return mean, share

    sky_mean, sky_share = local_mean(sky)
    far_mean, far_share = local_mean(beyond)
    d_sky = ((image - sky_mean) ** 2).sum(-1)
    d_far = ((image - far_mean) ** 2).sum(-1)
    grown = sky | (band & (sky_share > 0) & ((far_share <= 0) | (d_sky < d_far)))
    labels, _ = ndimage.label(grown)
    return np.isin(labels, np.unique(labels[sky]))


def horizon_row(sky: np.ndarray) -> float:
    """Row (float) of the horizon of a level camera: the lowest sky rows where a fifth of the columns or more
    show sky, else `NO_SKY_HORIZON` of the height."""
    h, w = sky.shape
    cols = sky.any(axis=0)
    if cols.mean() < 0.2:
        return NO_SKY_HORIZON * h
    lowest = h - 1 - np.argmax(sky[::-1], axis=0)  # lowest sky row in each column
    return float(np.clip(np.percentile(lowest[cols], 75), 0.15 * h, 0.75 * h))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.02, 0.98)
    return np.log(p / (1 - p))


def ground_probability(image: np.ndarray, sky: np.ndarray, v_h: float, cues: frozenset[str]) -> np.ndarray:
    """(H, W) in [0, 1]: 1 for ground, 0 for upright things and for everything above the horizon. Below the
    horizon the evidence of colour (like what stands above the horizon, or like the bottom rows) and of texture
    (vertical edges: trunks, cliffs, walls; horizontal ones: ground and water seen at a grazing angle) is added
    as log-odds (naive Bayes); a pixel is upright where the odds favour it."""
    h, w, _ = image.shape
    r = max(2, max(h, w) // 96)
    below = (np.arange(h, dtype=np.float64)[:, None] + 0.5 > v_h) & ~sky
    odds = np.zeros((h, w), np.float32)  # log-odds of "upright"
    if "colour" in cues:
        odds += COLOUR_WEIGHT * _logit(1 - box(colour_ground_probability(image, sky, v_h), r))
    if "vertical" in cues:
        odds += _logit(np.clip((vertical_structure(image, max(1, r // 2)) - 0.2) / 0.6, 0, 1))
    if "stands-above" in cues:
        odds += STANDS_WEIGHT * stands_above(image, sky, v_h, max(1.0, max(h, w) / SIGMA_DIV))
    return below * np.clip(0.5 - odds / 2.0, 0, 1)


def landscape_prior(image: np.ndarray, cfg: DepthConfig, cues: frozenset[str] = CUES) -> tuple[np.ndarray, dict]:
    """image (H, W, 3) float in [0, 1] -> (depth (H, W) float32, info). `cues` switches steps off (ablation)."""
    h, w, _ = image.shape
    sky = segment_sky(image, cfg)[0] if "sky" in cues else np.zeros((h, w), bool)
    v_h = horizon_row(sky)
    far = cfg.max_ground_depth
    if "contact" in cues:
        p_ground = ground_probability(image, sky, v_h, cues)
        top = farthest_ground_row(p_ground) if "far-ground" in cues else None
        seen = FARTHEST_GROUND * far  # the farthest ground seen is far, but not infinitely far
        if top is not None and seen > 1.5 and (seen * top - h) / (seen - 1) > v_h:
            v_h = min((seen * top - h) / (seen - 1), 0.75 * h)
            p_ground = p_ground * (np.arange(h)[:, None] + 0.5 > v_h)
        disp, hanging = contact_scan(p_ground, plane_disparity(h, v_h, far), sky)
        if "hanging" in cues:
            disp, sky = resolve_hanging(disp, hanging, sky, image, 1.0 / OCCLUDER_DEPTH, "occluders" in cues)
        else:
            sky = sky | hanging
    else:
        disp = np.repeat(plane_disparity(h, v_h, far)[:, None], w, axis=1)
    disp = np.maximum(disp, 1.0 / far)
    disp = np.where(sky, 1.0 / far, disp)
    if "edges" in cues:
        r = max(2, int(cfg.guided_radius * max(h, w) / 384))
        disp = guided_filter(image, disp, r, cfg.guided_eps * float(disp.var() + 1e-12) * 50)
    disp = np.clip(disp, 0.5 / far, 1.0 / 0.5)
    depth = np.where(sky, cfg.sky_depth, 1.0 / disp) * cfg.near
    info = {"sky_fraction": float(sky.mean()), "horizon_row": v_h}
    return depth.astype(np.float32), info
