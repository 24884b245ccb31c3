"""Dynamic videos of a 4D scene along camera paths, at any resolution, while time advances."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .artifacts import intrinsics_from_json
from .camera import load_custom_trajectory, project, trajectory, w2c_from_c2w
from .config import RenderConfig
from .dynamics.model import Scene4D, draw_index, gaussians_at
from .dynamics.train import render_scene

MOVING_RADIUS_PX = 3  # the moving region of a frame: pixels within this many pixels of a visible moving draw


def fill_holes(color: np.ndarray, alpha: np.ndarray, threshold: float = 0.5, radius: int = 5) -> np.ndarray:
    """Fill what no Gaussian covers (a camera that sees past the scene's border) from its surroundings.

    color (H, W, 3) float in [0, 1] composited over black; alpha (H, W) accumulated opacity. Pixels with alpha below
    `threshold` are inpainted (`views.inpaint`, OpenCV Telea) from the covered ones' colour, and every pixel gets
    the inpainted colour behind its remaining transparency: out = color + (1 - alpha) * fill. -> (H, W, 3) uint8.
    """
    from .io.images import to_uint8
    from .views import inpaint

    covered = alpha >= threshold
    if covered.all() or not covered.any():
        return to_uint8(color)
    a = alpha[..., None]
    unpremultiplied = np.where(covered[..., None], color / np.maximum(a, 1e-6), 0.0)
    return to_uint8(color + (1 - a) * inpaint(unpremultiplied, ~covered, "telea", radius))


@torch.no_grad()
def render_video(scene: Scene4D, K: torch.Tensor, poses: list[np.ndarray], width: int, height: int,
                 backend: str = "torch", progress: Callable | None = None, desc: str = "render",
                 fill: bool = True) -> np.ndarray:
    """Frame i is seen from poses[i] at loop time (i mod N) / N. K (3, 3) at (width, height). -> (T, H, W, 3) uint8.
    fill: inpaint what no Gaussian covers (`fill_holes`) instead of leaving it black."""
    n = scene.num_frames
    out = np.empty((len(poses), height, width, 3), np.uint8)
    it = range(len(poses)) if progress is None else progress(range(len(poses)), total=len(poses), desc=desc)
    for i in it:
        r = render_scene(scene, (i % n) / n, K, poses[i], width, height, backend)
        if fill:
            out[i] = fill_holes(r.color.float().cpu().numpy(), r.alpha[..., 0].float().cpu().numpy())
        else:
            out[i] = (r.color.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
    return out


@torch.no_grad()
def moving_region(scene: Scene4D, K: torch.Tensor, pose: np.ndarray, t: float, width: int, height: int,
                  radius: int = MOVING_RADIUS_PX) -> np.ndarray:
    """(H, W) bool: where the moving Gaussians are in the frame seen from pose (4, 4 c2w) at loop time t, i.e. the
    pixels within `radius` of the projected centre of a moving draw with opacity >= 1/255 in front of the camera."""
    import cv2

    g = gaussians_at(scene, t)
    index, _ = draw_index(scene)
    sel = scene.moving[index] & (g.opacities >= 1 / 255)
    w2c = torch.as_tensor(w2c_from_c2w(np.asarray(pose)), dtype=g.means.dtype, device=g.means.device)
    uv, z = project(g.means[sel], K.to(g.means), w2c)
    uv, z = uv.cpu().numpy(), z.cpu().numpy()
    ok = (z > 0) & np.isfinite(uv).all(axis=1) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & \
        (uv[:, 1] < height)
    out = np.zeros((height, width), np.uint8)
    out[uv[ok, 1].astype(int), uv[ok, 0].astype(int)] = 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(out, kernel) > 0


def video_loop_seam(scene: Scene4D, K: torch.Tensor, poses: list[np.ndarray], frames: np.ndarray) -> dict:
    """The loop seam of a rendered video (frame i seen from poses[i] at loop time (i mod N) / N, as
    `render_video` makes it): step from the last frame back to the first against the mean consecutive step, in
    0-255 grey levels, inside the moving region of each frame (`moving_region`) and over the whole frame. Along a
    moving camera the mean step also measures how the camera's speed varies along the path (the named paths move
    fastest at their start, or, zoom-in, slowest), so the seam is also given against the two steps beside it."""
    from .evaluation.metrics import loop_seam_step

    n = scene.num_frames
    h, w = frames.shape[1:3]
    masks = np.stack([moving_region(scene, K, p, (i % n) / n, w, h) for i, p in enumerate(poses)])
    inside, whole = loop_seam_step(frames, masks), loop_seam_step(frames)
    return {"seam_step": round(inside.seam, 4), "mean_step": round(inside.step, 4),
            "seam_ratio": round(inside.ratio, 4), "seam_ratio_neighbours": round(inside.ratio_neighbours, 4),
            "seam_ratio_whole_frame": round(whole.ratio, 4),
            "seam_ratio_neighbours_whole_frame": round(whole.ratio_neighbours, 4),
            "region": "moving Gaussians' pixels per frame"}


def camera_paths(cfg: RenderConfig, num_frames: int, scene_depth: float) -> dict[str, list[np.ndarray]]:
    """The trajectories to render: the named ones, plus `custom` when a JSON path is given."""
    paths = {name: trajectory(name, num_frames, scene_depth) for name in cfg.trajectories}
    if cfg.custom:
        paths["custom"] = load_custom_trajectory(cfg.custom)
    return paths


def render_paths(scene: Scene4D, header: dict, cfg: RenderConfig, out_dir: Path, backend: str = "torch",
                 progress: Callable | None = None) -> dict:
    """Write <path>.mp4 (and .gif, and with cfg.lossless the uint8 frames as .npy) for every camera path into
    out_dir; returns per-path info."""
    from .io.atomic import write_npy
    from .io.video import write_gif, write_mp4

    intr = intrinsics_from_json(header["camera"])
    width = cfg.width or (intr.width if cfg.height is None else round(intr.width * cfg.height / intr.height))
    height = cfg.height or round(intr.height * width / intr.width)
    width, height = int(width) // 2 * 2, int(height) // 2 * 2
    intr = intr.scaled(width, height)
    K = torch.as_tensor(intr.matrix(), dtype=scene.means.dtype, device=scene.means.device)
    n = (cfg.num_frames or scene.num_frames) * max(1, cfg.loops)
    info = {}
    for name, poses in camera_paths(cfg, n, float(header["scene_depth"])).items():
        frames = render_video(scene, K, poses, width, height, backend, progress, desc=f"render {name}",
                              fill=cfg.fill_holes)
        write_mp4(out_dir / f"{name}.mp4", frames, cfg.fps)
        if cfg.lossless:
            write_npy(out_dir / f"{name}.npy", frames)
        if cfg.gif:
            step = 2 if width > 320 else 1
            write_gif(out_dir / f"{name}.gif", frames[:, ::step, ::step], cfg.fps)
        info[name] = {"frames": int(len(frames)), "width": width, "height": height,
                      "loop": video_loop_seam(scene, K, poses, frames)}
    return info
