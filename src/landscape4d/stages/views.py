"""Stage views: the training cameras and the photo's point cloud rendered into each (RGB, mask, depth, holes)."""

from __future__ import annotations

import numpy as np
import torch

from ..artifacts import intrinsics_to_json
from ..camera import WORLD_TO_Z_UP, c2w_to_nerfstudio, training_cameras, unproject_depth
from ..evaluation.metrics import psnr_in_mask
from ..io.atomic import write_json, write_npy
from ..io.images import save_png
from ..pipeline import StageContext
from ..views import render_view


def run(ctx: StageContext) -> dict:
    cfg = ctx.cfg.views
    inp, dr = ctx.artifacts.input, ctx.artifacts.depth
    intr = dr.intr
    dev = ctx.device
    points = torch.from_numpy(unproject_depth(dr.depth, intr)).to(dev)
    colors = torch.from_numpy(inp.image.reshape(-1, 3)).to(dev)
    motion = torch.from_numpy(inp.motion.mask.reshape(-1).astype(np.float32)).to(dev)
    src_depth = torch.from_numpy(dr.depth.reshape(-1)).to(dev)
    poses = training_cameras(cfg.num_views, dr.scene_depth, cfg.max_shift, cfg.max_angle_deg)
    for sub in ("rgb", "mask", "holes", "depth"):
        (ctx.out / sub).mkdir()
    frames, hole_frac = [], []
    for i, c2w in enumerate(ctx.progress(poses, desc="views")):
        r = render_view(points, colors, motion, src_depth, intr, c2w, cfg.point_radius, cfg.inpaint,
                        cfg.inpaint_radius)
        name = f"{i:03d}"
        save_png(ctx.out / "rgb" / f"{name}.png", r.rgb)
        save_png(ctx.out / "mask" / f"{name}.png", r.mask.astype(np.uint8) * 255)
        save_png(ctx.out / "holes" / f"{name}.png", r.holes.astype(np.uint8) * 255)
        write_npy(ctx.out / "depth" / f"{name}.npy", r.depth)
        hole_frac.append(float(r.holes.mean()))
        frames.append({"file_path": f"rgb/{name}.png", "motion_mask_path": f"mask/{name}.png",
                       "holes_path": f"holes/{name}.png", "z_depth_path": f"depth/{name}.npy",
                       "transform_matrix": c2w_to_nerfstudio(c2w).tolist()})
        if i == 0:
            psnr0 = min(100.0, psnr_in_mask(r.rgb, inp.image, ~r.holes))  # capped: report.json stays valid JSON
    write_json(ctx.out / "transforms.json", {
        "camera_model": "OPENCV", **intrinsics_to_json(intr), "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
        "applied_transform": WORLD_TO_Z_UP[:3].tolist(),
        "convention": "nerfstudio/Blender: transform_matrix is camera-to-world with OpenGL camera axes (x right, y "
                      "up, z back); world z up. applied_transform maps landscape4d's world (the input camera's "
                      "OpenCV frame: x right, y down, z forward) into this file's world. Pixel centres at +0.5. "
                      "Extra per-frame files: motion_mask_path (255 = moving), holes_path (255 = inpainted), "
                      "z_depth_path (float32 .npy, z-depth in the scene's units, 0 at holes).",
        "scene_depth": dr.scene_depth, "frames": frames})
    return {"num_views": len(poses), "input_view_psnr": psnr0, "hole_fraction_mean": float(np.mean(hole_frac)),
            "hole_fraction_max": float(np.max(hole_frac))}
