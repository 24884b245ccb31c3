"""Scene layout for the landscape prior (after Hoiem, Efros, Hebert, "Automatic Photo Pop-up", 2005): each pixel
is sky, ground or upright; the ground is a plane seen by a level camera; an upright region stands at the depth
where it meets the ground.

All depths here are in disparity normalised so that the nearest ground (the bottom row) is 1; 0 is infinitely far.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from .filters import box


def plane_disparity(h: int, v_h: float, far: float) -> np.ndarray:
    """(h,) disparity of a ground plane seen by a level camera with its horizon at row v_h: linear in the row,
    1 at the bottom row, never below 1 / far (the farthest ground)."""
    v = np.arange(h, dtype=np.float64) + 0.5
    return np.maximum((v - v_h) / max(h - 0.5 - v_h, 1e-6), 1.0 / far)


def colour_ground_probability(image: np.ndarray, sky: np.ndarray, v_h: float, bins: int = 8) -> np.ndarray:
    """(H, W) P(ground | colour) from two colour models learned on the photo itself: the bottom rows are ground,
    the non-sky pixels above the horizon are upright (naive Bayes on a coarse Lab histogram). 0.5 where the photo
    gives no upright sample."""
    h, w, _ = image.shape
    lab = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2Lab)
    q = np.stack([np.clip(lab[..., 0] / 100.0, 0, 0.999), np.clip((lab[..., 1] + 80) / 160, 0, 0.999),
                  np.clip((lab[..., 2] + 80) / 160, 0, 0.999)], -1)
    idx = np.ravel_multi_index(tuple((q * bins).astype(int).transpose(2, 0, 1)), (bins,) * 3)  # (H, W)
    rows = np.arange(h)[:, None]
    ground_seed = (rows >= int(0.85 * h)) & ~sky
    upright_seed = (rows < v_h) & ~sky
    if ground_seed.sum() < 20 or upright_seed.sum() < 20:
        return np.full((h, w), 0.5, np.float32)

    def density(m: np.ndarray) -> np.ndarray:
        hist = np.bincount(idx[m], minlength=bins ** 3).astype(np.float64) + 0.5
        hist = ndimage.uniform_filter(hist.reshape((bins,) * 3), 3, mode="nearest").ravel()  # neighbouring colours
        return hist / hist.sum()

    pg, pu = density(ground_seed), density(upright_seed)
    return (pg / (pg + pu))[idx].astype(np.float32)


def vertical_structure(image: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) in [0, 1]: how much the local texture is made of vertical edges (trunks, cliffs, walls) rather than
    the horizontal ones of ground seen at a grazing angle. 0.5 = no preference."""
    gray = image.mean(-1).astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    ex, ey = box(gx * gx, radius), box(gy * gy, radius)
    return np.clip(ex / (ex + ey + 1e-6), 0, 1)


def contact_scan(p_ground: np.ndarray, plane: np.ndarray, sky: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scan every column from the bottom: a ground pixel (p_ground 1) takes the plane's disparity, an upright one
    (p_ground 0) keeps the disparity of the ground it stands on; going up, disparity never increases (nothing
    hangs in front of what holds it up). Sky resets the column to 0 (infinitely far).

    p_ground (H, W) in [0, 1], plane (H,) disparity, sky (H, W) bool -> (disparity (H, W), hanging (H, W) bool:
    non-sky pixels with sky below them in their column)."""
    h, w = p_ground.shape
    out = np.empty((h, w), np.float64)
    hanging = np.zeros((h, w), bool)
    carry = np.ones(w)
    seen_sky = np.zeros(w, bool)
    for v in range(h - 1, -1, -1):
        target = np.minimum(carry, plane[v])
        carry = carry + p_ground[v] * (target - carry)
        carry = np.where(sky[v], 0.0, carry)
        seen_sky |= sky[v]
        hanging[v] = seen_sky & ~sky[v]
        out[v] = carry
    return out, hanging


def resolve_hanging(disp: np.ndarray, hanging: np.ndarray, sky: np.ndarray, image: np.ndarray, near_disp: float,
                    occluders: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Non-sky regions with sky below them take the depth of the part of their region that stands on something
    (a tree crown over the sky). A region that stands on nothing is an occluder in front of the sky (a branch in a
    corner: near) when it touches the frame's top, left or right border and is darker than the sky; otherwise it
    is sky the sky mask missed (a cloud). -> (disparity (H, W), sky mask (H, W) with those clouds added)."""
    labels, n = ndimage.label(~sky)
    if n == 0 or not hanging.any():
        return disp, sky
    out, sky = disp.copy(), sky.copy()
    border = np.zeros_like(sky)
    border[0], border[:, 0], border[:, -1] = True, True, True
    lum = image.mean(-1)
    sky_lum = float(np.median(lum[sky])) if sky.any() else 1.0
    for k in np.unique(labels[hanging]):
        region = labels == k
        hang = region & hanging
        held = region & ~hanging
        if held.sum() >= 0.05 * region.sum():
            out[hang] = float(np.median(disp[held]))
        elif occluders and (region & border).any() and float(lum[region].mean()) < 0.8 * sky_lum:
            out[hang] = near_disp
        else:
            sky |= hang
    return out, sky


def stands_above(image: np.ndarray, sky: np.ndarray, v_h: float, sigma: float, tau: float = 0.5) -> np.ndarray:
    """(H, W) in [0, 1]: how much a pixel below the horizon belongs to something that rises above it (a cliff, a
    tree, a rock standing against the sky or the far land). 1 at the horizon under a non-sky pixel, decaying down
    the column with the colour change met on the way (of the blurred photo, above a noise floor), so it stops at
    the line where the cliff or the tree meets the ground."""
    h, w, _ = image.shape
    blur = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigma)
    step = np.maximum(np.linalg.norm(np.diff(blur, axis=0), axis=-1) - 0.01, 0)  # (H-1, W)
    out = np.zeros((h, w), np.float32)
    cost = np.full(w, np.inf, np.float32)
    for v in range(h):
        if v + 0.5 < v_h:
            cost = np.where(sky[v], np.inf, 0.0).astype(np.float32)  # what stands above the horizon
            continue
        if v > 0:
            cost += step[v - 1]
        out[v] = np.where(sky[v], 0.0, np.exp(-cost / tau))
    return out


def farthest_ground_row(p_ground: np.ndarray) -> float | None:
    """Row of the farthest ground seen: the top of the ground region connected to the bottom border, where it
    reaches highest (10th percentile over the columns). None when there is no such ground."""
    labels, n = ndimage.label(p_ground > 0.5)
    if n == 0:
        return None
    keep = np.isin(labels, np.unique(labels[-1][labels[-1] > 0]))
    cols = keep.any(axis=0)
    if cols.mean() < 0.2:
        return None
    return float(np.percentile(np.argmax(keep, axis=0)[cols], 10))
