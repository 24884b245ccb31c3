"""The project's own demo input: a procedural landscape photo (sky, clouds, mountains, meadow, river) with its
motion mask and hints, made from a seed, so the demo needs no downloaded data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .io.atomic import write_json
from .io.images import save_png


def fbm(h: int, w: int, rng: np.random.Generator, octaves: int = 5, base: int = 4) -> np.ndarray:
    """Fractal noise (H, W) in [0, 1]: sum of upsampled random grids with halving amplitude."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = base * 2**o
        grid = rng.random((n + 1, max(2, int(n * w / h) + 1))).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
    out /= total
    return (out - out.min()) / max(1e-6, out.max() - out.min())


def make_demo_photo(width: int = 640, height: int = 360, seed: int = 7) -> tuple[np.ndarray, np.ndarray, list]:
    """-> (image (H, W, 3) float32, river mask (H, W) bool, hint arrows [[start, end], ...] in pixels)."""
    rng = np.random.default_rng(seed)
    h, w = height, width
    y = (np.arange(h, dtype=np.float32) / h)[:, None]
    x = (np.arange(w, dtype=np.float32) / w)[None, :]
    # sky with clouds
    sky = np.stack([0.35 + 0.3 * y, 0.55 + 0.25 * y, 0.95 - 0.1 * y], -1) * np.ones((h, w, 1), np.float32)
    clouds = np.clip((fbm(h, w, rng, 6, 3) - 0.45) * 2.2, 0, 1)[..., None]
    img = sky * (1 - clouds * 0.85) + clouds * 0.85 * np.array([0.97, 0.97, 0.98], np.float32)
    # two mountain ranges
    for k, (level, amp, col) in enumerate([(0.38, 0.12, (0.45, 0.5, 0.6)), (0.46, 0.08, (0.3, 0.38, 0.32))]):
        ridge = level + amp * (fbm(h, w, rng, 5, 3)[h // 2] - 0.5) * 2
        tex = fbm(h, w, rng, 5, 8)[..., None]
        shade = np.array(col, np.float32) * (0.8 + 0.4 * tex)
        img = np.where((y > ridge[None, :])[..., None], shade, img)
    # meadow
    horizon = 0.55
    grass_tex = fbm(h, w, rng, 6, 16)[..., None]
    grass = np.array([0.25, 0.45, 0.15], np.float32) * (0.7 + 0.6 * grass_tex) * (0.8 + 0.4 * y[..., None])
    img = np.where(y[..., None] > horizon, grass, img)
    # river: a band widening towards the viewer, bending left to right
    centre = 0.5 + 0.18 * np.sin(3.0 * (y - horizon) / (1 - horizon) + 0.5) - 0.1 * (y - horizon)
    half = 0.015 + 0.22 * np.clip((y - horizon) / (1 - horizon), 0, 1)
    river = (np.abs(x - centre) < half) & (y > horizon + 0.01)
    ripples = fbm(h, w, rng, 6, 24)[..., None]
    water = np.array([0.2, 0.35, 0.5], np.float32) * (0.75 + 0.6 * ripples) + 0.08 * (ripples > 0.8)
    img = np.where(river[..., None], water, img)
    img = np.clip(img, 0, 1).astype(np.float32)
    # hints: downstream (towards the viewer) along the river centre, length = motion over 60 frames
    arrows = []
    for yy in (0.65, 0.75, 0.85, 0.93):
        cy = yy
        cx = 0.5 + 0.18 * np.sin(3.0 * (cy - horizon) / (1 - horizon) + 0.5) - 0.1 * (cy - horizon)
        cy2 = cy + 0.07
        cx2 = 0.5 + 0.18 * np.sin(3.0 * (cy2 - horizon) / (1 - horizon) + 0.5) - 0.1 * (cy2 - horizon)
        arrows.append([[float(cx * w), float(cy * h)], [float(cx2 * w), float(cy2 * h)]])
    return img, river, arrows


def make_demo_input(folder: str | Path, width: int = 640, height: int = 360, seed: int = 7) -> dict[str, Path]:
    """Write demo.png, demo_mask.png and demo_hints.json into `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    img, mask, arrows = make_demo_photo(width, height, seed)
    paths = {"image": folder / "demo.png", "mask": folder / "demo_mask.png", "hints": folder / "demo_hints.json"}
    save_png(paths["image"], img)
    save_png(paths["mask"], mask.astype(np.uint8) * 255)
    write_json(paths["hints"], {"hints": [{"start": a[0], "end": a[1]} for a in arrows]})
    return paths
