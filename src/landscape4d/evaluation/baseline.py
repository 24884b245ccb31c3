"""The 2D-only baseline: a single-image cinemagraph moved to novel cameras by depth warping.

What the 4D representation is compared against, honestly implemented from the same run's files:
  1. the INPUT view is animated with its 2D motion (RUN/motion/input_motion.npy, the dense motion from the hints)
     inside the input mask by the project's own Eulerian integration + symmetric softmax splatting
     (`landscape4d.animate.animate_image`, the run's animate config), a seamless loop of N frames;
  2. frame k of a trajectory is animated frame (k mod N) forward-splatted to camera k with the input depth, the
     way the layered-depth-image methods move a cinemagraph (`landscape4d.views.splat_points`: soft z-buffer,
     magnification-aware footprints), and its holes are inpainted the same way as the training views (the run's
     views config: Telea by default).
No 3D motion, no multi-view training: disocclusions are guessed per frame by inpainting and the motion is only
the input view's 2D flow, frozen to the input depth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..animate import animate_image, splat_importance
from ..artifacts import load_depth
from ..camera import Intrinsics, trajectory, unproject_depth
from ..config import RunConfig, config_from_dict, preset
from ..errors import InputError
from ..inputs import load_input
from ..views import inpaint, splat_points


@dataclass
class BaselineInputs:
    image: np.ndarray  # (H, W, 3) float32 input photo at the working size
    mask: np.ndarray  # (H, W) bool motion mask
    motion: np.ndarray  # (H, W, 2) float32 input-view motion, pixels per frame
    depth: np.ndarray  # (H, W) float32 z-depth of the input view
    intr: Intrinsics
    scene_depth: float
    cfg: RunConfig


def load_baseline_inputs(run_dir: str | Path) -> BaselineInputs:
    """The photo, mask, input-view motion, depth and config of a finished run (InputError names a missing file)."""
    run = Path(run_dir)
    for rel in ("input/image.png", "input/mask.png", "depth/depth.npy", "depth/camera.json",
                "motion/input_motion.npy"):
        if not (run / rel).is_file():
            raise InputError(run / rel, "file not found (the run has not finished this stage)")
    inp = load_input(run)
    dr = load_depth(run)
    motion = np.load(run / "motion" / "input_motion.npy").astype(np.float32)
    cfg_path = run / "config.json"
    cfg = config_from_dict(json.loads(cfg_path.read_text())) if cfg_path.is_file() else preset("preview")
    if motion.shape != (*inp.motion.mask.shape, 2) or dr.depth.shape != inp.motion.mask.shape:
        raise InputError(run / "motion" / "input_motion.npy",
                         f"shape {motion.shape} / depth {dr.depth.shape} do not match the input "
                         f"{inp.motion.mask.shape}")
    return BaselineInputs(inp.image.astype(np.float32), inp.motion.mask, motion, dr.depth.astype(np.float32),
                          dr.intr, dr.scene_depth, cfg)


def animate_input_view(b: BaselineInputs, device: str | torch.device = "cpu") -> np.ndarray:
    """The 2D cinemagraph of the input view: (N + 1, H, W, 3) float32, frame N == frame 0 == the photo."""
    cfg = b.cfg.animate
    depth = np.where(b.depth > 0, b.depth, np.inf)
    imp = splat_importance(b.motion, depth, cfg.importance_motion, cfg.importance_depth)
    return animate_image(b.image, b.motion, b.mask, cfg.num_frames, cfg, importance=imp, device=device)


def warp_frames(frames: np.ndarray, poses: list[np.ndarray], depth: np.ndarray, intr: Intrinsics,
                point_radius: float = 1.2, inpaint_method: str = "telea", inpaint_radius: int = 5,
                device: str | torch.device = "cpu") -> np.ndarray:
    """Forward-splat frame (k mod N) of a loop to camera poses[k] with the input depth, holes inpainted.

    frames: (N, H, W, 3) float in [0, 1] seen from the input camera (one loop, frame N not repeated);
    poses: c2w (4, 4) per output frame; depth (H, W). Returns (len(poses), H, W, 3) uint8.
    """
    n = frames.shape[0]
    dev = torch.device(device)
    points = torch.from_numpy(unproject_depth(depth, intr)).to(dev)  # (H*W, 3)
    src_depth = torch.from_numpy(np.asarray(depth, np.float32).reshape(-1)).to(dev)  # (H*W,)
    out = np.empty((len(poses), intr.height, intr.width, 3), np.uint8)
    for k, c2w in enumerate(poses):
        colors = torch.from_numpy(np.asarray(frames[k % n], np.float32).reshape(-1, 3)).to(dev)
        # views.render_view's colour path without its motion-mask channel (no motion here: nothing to inpaint)
        image, _, weight = splat_points(points, colors, src_depth, intr, c2w, point_radius)
        rgb = inpaint(image.cpu().numpy(), (weight <= 0).cpu().numpy(), inpaint_method, inpaint_radius)
        out[k] = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    return out


def baseline_videos(run_dir: str | Path | None, trajectories: tuple[str, ...] | list[str] | None = None,
                    num_frames: int | dict[str, int] | None = None, device: str | torch.device = "cpu",
                    inputs: BaselineInputs | None = None) -> dict[str, np.ndarray]:
    """Baseline videos {trajectory: (T, H, W, 3) uint8} along the run's trajectories (same poses as its render:
    `camera.trajectory(name, T, scene_depth)` with the run's depth). T: one length for all, or per trajectory;
    default the run's render length. The input view is animated once and warped for every trajectory."""
    b = inputs or load_baseline_inputs(run_dir)
    cfg = b.cfg
    names = tuple(trajectories) if trajectories is not None else tuple(cfg.render.trajectories)
    default = int((cfg.render.num_frames or cfg.animate.num_frames) * max(1, cfg.render.loops))
    lengths = {n: int(num_frames[n] if isinstance(num_frames, dict) else (num_frames or default)) for n in names}
    loop = animate_input_view(b, device)[:-1]  # (N, H, W, 3): frame N repeats frame 0
    return {name: warp_frames(loop, trajectory(name, lengths[name], b.scene_depth), b.depth, b.intr,
                              cfg.views.point_radius, cfg.views.inpaint, cfg.views.inpaint_radius, device)
            for name in names}
