"""Stage depth: depth map, colour-mapped preview and the coloured point cloud of the photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..artifacts import intrinsics_to_json
from ..camera import Intrinsics, fov_from_exif_focal, unproject_depth
from ..config import RunConfig
from ..depth import estimate_depth
from ..depth.auto import INSTALL, is_model_dir, looks_local, transformers_available
from ..io.atomic import write_json, write_npy
from ..io.images import save_png
from ..io.ply import write_points_ply
from ..pipeline import StageContext


def check(cfg: RunConfig) -> None:
    """Refuse, before any stage runs, a depth config that cannot work: ValueError with one line."""
    d = cfg.depth
    if d.backend == "depth-anything-v2" and not transformers_available():
        raise ValueError(f"depth.backend=depth-anything-v2 needs transformers: {INSTALL} "
                         "(or use depth.backend=auto, which falls back to the offline prior)")
    if d.backend in ("auto", "depth-anything-v2") and looks_local(d.model):
        path = Path(d.model).expanduser()
        if not path.exists():
            raise ValueError(f"depth.model={d.model}: no such model folder")
        if not is_model_dir(path):
            raise ValueError(f"depth.model={d.model}: not a model folder (needs config.json and weights, "
                             "e.g. from `hf download depth-anything/Depth-Anything-V2-Small-hf --local-dir DIR`)")
    if d.backend == "file":
        if not d.file:
            raise ValueError("depth.backend=file needs a depth map: --depth-file PATH")
        if not Path(d.file).expanduser().is_file():
            raise ValueError(f"depth.file={d.file}: file not found")


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) depth -> (H, W, 3) uint8, near = warm, far = cool (inverse depth, turbo colour map)."""
    inv = 1.0 / np.maximum(depth, 1e-6)
    lo, hi = np.percentile(inv, 1), np.percentile(inv, 99)
    x = np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1)
    bgr = cv2.applyColorMap((x * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def run(ctx: StageContext) -> dict:
    inp = ctx.artifacts.input
    cfg = ctx.cfg.depth
    w, h = inp.size
    fov = cfg.fov_deg
    exif_fov = fov_from_exif_focal(inp.meta.get("focal_35mm")) if cfg.use_exif_focal else None
    if exif_fov is not None:
        fov = exif_fov
    intr = Intrinsics.from_fov(w, h, fov)
    depth, info = estimate_depth(inp.image, cfg, str(ctx.device), log=ctx.log)
    far = cfg.sky_depth * cfg.near
    scene = depth[depth < 0.99 * far]
    scene_depth = float(np.median(scene)) if scene.size else float(np.median(depth))
    write_npy(ctx.out / "depth.npy", depth)
    save_png(ctx.out / "depth.png", colorize_depth(depth))
    points = unproject_depth(depth, intr)
    write_points_ply(ctx.out / "points.ply", points, inp.image.reshape(-1, 3))
    write_json(ctx.out / "camera.json", {**intrinsics_to_json(intr), "fov_deg": fov,
                                         "fov_source": "exif" if exif_fov is not None else "config",
                                         "scene_depth": scene_depth, "convention": "OpenCV, input camera = world"})
    return {**info, "scene_depth": scene_depth, "fov_deg": fov, "points": int(points.shape[0])}
