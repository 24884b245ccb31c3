"""Exports of a 4D scene to other tools: static Gaussian files at one moment (.ply, .splat, .spz), videos and PNG
frames along a camera path, and a side-by-side "input | depth | motion | novel view" video.

Static formats hold one moment t of the loop (default 0): every draw of dynamics.model.gaussians_at (each Gaussian
at phase 0, each moving one again at phase 1) is evaluated with the deformation of dynamics/model.py, and draws
whose opacity is 0 at t (the phase-1 draws at t = 0) are left out.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .dynamics.model import Scene4D, gaussians_at
from .errors import InputError
from .gaussians.model import OPACITY_MAX, GaussianModel, convert_logits, logits_of, opacity_from_logits
from .gaussians.sh import C0

# ---------------------------------------------------------------------------------------------------------------
# the scene at one moment


def model_at(scene: Scene4D, t: float = 0.0, drop_invisible: bool = True) -> GaussianModel:
    """The 4D scene at loop time t as a static GaussianModel (raw parameters: log scales, opacity logits).

    Opacities / OPACITY_MAX are clipped to [1e-6, 1 - 1e-6] before the logit; with drop_invisible, draws of opacity 0
    are removed (their logit would be -inf)."""
    g = gaussians_at(scene, t)
    keep = g.opacities > 0 if drop_invisible else torch.ones_like(g.opacities, dtype=torch.bool)
    return GaussianModel(g.means[keep].detach().clone(), torch.log(g.scales[keep]).detach(),
                         g.quats[keep].detach().clone(), logits_of(g.opacities[keep]).detach(),
                         g.colors[keep].detach().clone())


def export_ply(scene: Scene4D, path: str | Path, t: float = 0.0) -> Path:
    """INRIA 3DGS PLY of the scene at loop time t, for other 3DGS tools: opacity sigmoid(logit), at most 1 (our
    flat-topped static Gaussians become bells there)."""
    from .gaussians.ply import write_ply

    return write_ply(model_at(scene, t), path, opacity_max=1.0)


# ---------------------------------------------------------------------------------------------------------------
# .splat (the antimatter15 web viewer layout)

SPLAT_DTYPE = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)),
                        ("rot", "u1", (4,))])
assert SPLAT_DTYPE.itemsize == 32


def splat_records(model: GaussianModel) -> np.ndarray:
    """(N,) SPLAT_DTYPE records, sorted by size * opacity descending (size = product of the three scales).

    position: xyz; scale: linear standard deviations; rgba: SH DC * C0 + 0.5 and opacity (at most 1: the layout
    has no room for OPACITY_MAX's flat tops), times 255 rounded;
    rot: the unit quaternion (w, x, y, z), each component as round(q * 128 + 128) clipped to 0..255."""
    means = model.means.detach().cpu().double().numpy()
    ls = model.log_scales.detach().cpu().double().numpy()
    q = model.quats.detach().cpu().double().numpy()
    q = q / np.linalg.norm(q, axis=1, keepdims=True).clip(1e-12)
    colour = model.sh[:, 0, :].detach().cpu().double().numpy() * C0 + 0.5
    opacity = opacity_from_logits(model.opacity_logits.detach().cpu().double()).clamp(max=1.0).numpy()
    key = -np.exp(ls.sum(axis=1)) * opacity
    order = np.argsort(key, kind="stable")
    rec = np.empty(len(order), SPLAT_DTYPE)
    rec["position"] = means[order]
    rec["scale"] = np.exp(ls[order])
    rec["rgba"] = np.clip(np.rint(np.concatenate([colour, opacity[:, None]], axis=1)[order] * 255), 0, 255)
    rec["rot"] = np.clip(np.rint(q[order] * 128 + 128), 0, 255)
    return rec


def splat_record_reference(mean, log_scale, quat_wxyz, sh_dc, opacity_logit) -> bytes:
    """One 32-byte .splat record with struct and plain floats (the pure reference of `splat_records`)."""
    n = math.sqrt(sum(c * c for c in quat_wxyz))
    scale = [math.exp(v) for v in log_scale]
    rgb = [min(255, max(0, round((c * C0 + 0.5) * 255))) for c in sh_dc]
    a = min(255, max(0, round(255 * min(1.0, OPACITY_MAX / (1 + math.exp(-opacity_logit))))))
    rot = [min(255, max(0, round(c / n * 128 + 128))) for c in quat_wxyz]
    return struct.pack("<3f3f4B4B", *mean, *scale, *rgb, a, *rot)


def write_splat(model: GaussianModel, path: str | Path) -> Path:
    from .io.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".splat") as tmp:
        splat_records(model).tofile(tmp)
    return path


def read_splat(path: str | Path) -> np.ndarray:
    """(N,) SPLAT_DTYPE records of a .splat file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    if len(raw) % SPLAT_DTYPE.itemsize:
        raise InputError(path, f"{len(raw)} bytes is not a whole number of 32-byte .splat records")
    return np.frombuffer(raw, SPLAT_DTYPE)


def export_splat(scene: Scene4D, path: str | Path, t: float = 0.0) -> Path:
    return write_splat(model_at(scene, t), path)


# ---------------------------------------------------------------------------------------------------------------
# .spz (Niantic's compressed format), through the optional PyPI package gsply

SPZ_PACKAGE = "gsply[spz]==0.4.6"


def spz_available() -> bool:
    try:
        import gsply  # noqa: F401
    except ImportError:
        return False
    return True


def export_spz(scene: Scene4D, path: str | Path, t: float = 0.0) -> Path:
    """.spz (version 3, gzip) of the scene at loop time t, written by gsply's `write_spz`."""
    if not spz_available():
        raise InputError(path, f"writing .spz needs the optional package gsply: pip install '{SPZ_PACKAGE}'")
    from gsply import GSData, write_spz

    m = model_at(scene, t)
    f = lambda x: np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)  # noqa: E731
    sh = f(m.sh)
    rest = sh[:, 1:, :] if sh.shape[1] > 1 else np.zeros((m.num, 0, 3), np.float32)
    logits = convert_logits(m.opacity_logits, OPACITY_MAX, 1.0)  # .spz readers take sigmoid(logit): at most 1
    data = GSData(means=f(m.means), scales=f(m.log_scales), quats=f(m.rotations), opacities=f(logits),
                  sh0=sh[:, 0, :], shN=rest)  # gsply takes the PLY convention: log scales, unit wxyz, logits
    from .io.atomic import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=".spz") as tmp:
        write_spz(str(tmp), data, version=3)
    return path


# ---------------------------------------------------------------------------------------------------------------
# videos


@dataclass
class VideoSpec:
    width: int | None = None  # default: the input camera's width (even)
    height: int | None = None
    fps: float | None = None  # default: the scene's fps
    trajectory: str = "circle"  # a named trajectory of camera.trajectory, or "custom"
    custom_path: str | None = None  # JSON of c2w poses (for trajectory "custom")
    num_frames: int | None = None  # default: one loop per `loops`
    loops: int = 1


def video_size(header: dict, width: int | None, height: int | None) -> tuple[int, int]:
    """Output size: as asked, else the input camera's, keeping its aspect when one side is given; even numbers."""
    w0, h0 = int(header["camera"]["w"]), int(header["camera"]["h"])
    if width is None and height is None:
        width, height = w0, h0
    elif width is None:
        width = round(w0 * height / h0)
    elif height is None:
        height = round(h0 * width / w0)
    return max(2, int(width) // 2 * 2), max(2, int(height) // 2 * 2)


def render_frames(scene: Scene4D, header: dict, spec: VideoSpec, backend: str = "torch",
                  progress: Callable | None = None) -> np.ndarray:
    """(T, H, W, 3) uint8 frames along the camera path while the loop plays."""
    from .artifacts import intrinsics_from_json
    from .camera import load_custom_trajectory, trajectory
    from .render import render_video

    width, height = video_size(header, spec.width, spec.height)
    intr = intrinsics_from_json(header["camera"]).scaled(width, height)
    K = torch.as_tensor(intr.matrix(), dtype=scene.means.dtype, device=scene.means.device)
    n = spec.num_frames or scene.num_frames * max(1, spec.loops)
    if spec.trajectory == "custom" or spec.custom_path:
        if not spec.custom_path:
            raise InputError(None, "--trajectory custom needs --custom-path FILE.json")
        poses = load_custom_trajectory(spec.custom_path)
        poses = [poses[i % len(poses)] for i in range(n)] if spec.num_frames else poses
    else:
        try:
            poses = trajectory(spec.trajectory, n, float(header.get("scene_depth", 1.0)))
        except ValueError as e:
            raise InputError(None, str(e)) from None
    return render_video(scene, K, poses, width, height, backend, progress, desc="export")


def export_video(scene: Scene4D, header: dict, path: str | Path, spec: VideoSpec, backend: str = "torch",
                 progress: Callable | None = None, frames: np.ndarray | None = None) -> dict:
    """An .mp4 or .gif along the camera path; returns {frames, width, height}. `frames` (T, H, W, 3) uint8 from
    `render_frames` skips the rendering."""
    from .io.video import write_gif, write_mp4

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise InputError(path, "the video must be .mp4 or .gif")
    if frames is None:
        frames = render_frames(scene, header, spec, backend, progress)
    fps = spec.fps or float(header.get("fps", 30))
    path.parent.mkdir(parents=True, exist_ok=True)
    (write_mp4 if suffix == ".mp4" else write_gif)(path, frames, fps)
    return {"frames": int(len(frames)), "width": int(frames.shape[2]), "height": int(frames.shape[1])}


def export_frames(scene: Scene4D, header: dict, directory: str | Path, spec: VideoSpec, backend: str = "torch",
                  progress: Callable | None = None, frames: np.ndarray | None = None) -> list[Path]:
    """PNG frames directory/frame_0000.png, ... along the camera path."""
    from .io.video import write_png_frames

    if frames is None:
        frames = render_frames(scene, header, spec, backend, progress)
    return write_png_frames(directory, frames)


# ---------------------------------------------------------------------------------------------------------------
# side by side: input | depth | motion | novel view

PANEL_TITLES = ("input", "depth", "motion", "novel view")


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise InputError(path, "file not found (has that stage run?)")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(path, f"not a readable image ({e})") from None


def motion_picture(run_dir: Path) -> np.ndarray:
    """The motion colour wheel of the input view: motion/motion_input_color.png, else from motion/flow/000.npy."""
    png = run_dir / "motion" / "motion_input_color.png"
    if png.exists():
        return _read_rgb(png)
    flow = run_dir / "motion" / "flow" / "000.npy"
    if not flow.exists():
        raise InputError(png, "file not found, nor motion/flow/000.npy (has the motion stage run?)")
    from .motion.visualize import flow_to_color

    try:
        f = np.load(flow)
    except (OSError, ValueError) as e:
        raise InputError(flow, f"not a readable .npy file ({e})") from None
    if f.ndim != 3 or f.shape[-1] != 2:
        raise InputError(flow, f"expected a (H, W, 2) flow, got shape {f.shape}")
    return flow_to_color(f)


def side_by_side_stills(run_dir: str | Path) -> list[np.ndarray]:
    """The input photo, the depth colour map and the motion colour wheel of a run folder (uint8 RGB)."""
    run_dir = Path(run_dir)
    return [_read_rgb(run_dir / "input" / "image.png"), _read_rgb(run_dir / "depth" / "depth.png"),
            motion_picture(run_dir)]


def fit_panel(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 to exactly (height, width, 3) (area filter when shrinking)."""
    import cv2

    if image.shape[:2] == (height, width):
        return image
    shrink = width < image.shape[1] or height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def label_panel(panel: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = np.ascontiguousarray(panel.copy())
    scale = max(0.35, panel.shape[0] / 400)
    thick = max(1, round(scale * 1.5))
    org = (int(6 * scale) + 2, int(20 * scale) + 4)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def side_by_side_frames(statics: list[np.ndarray], novel: np.ndarray, labels: bool = True) -> np.ndarray:
    """statics: the 3 still panels (any size); novel (T, H, W, 3) -> (T, H, 4 W, 3) uint8."""
    t, h, w, _ = novel.shape
    still = [fit_panel(s, w, h) for s in statics]
    if labels:
        still = [label_panel(s, name) for s, name in zip(still, PANEL_TITLES)]
    row = np.concatenate(still, axis=1)  # (H, 3W, 3)
    out = np.empty((t, h, 4 * w, 3), np.uint8)
    out[:, :, :3 * w] = row
    out[:, :, 3 * w:] = novel
    if labels:
        for i in range(t):  # one text draw per frame
            out[i, :, 3 * w:] = label_panel(novel[i], PANEL_TITLES[3])
    return out


def export_side_by_side(run_dir: str | Path, scene: Scene4D, header: dict, path: str | Path, spec: VideoSpec,
                        backend: str = "torch", progress: Callable | None = None,
                        frames: np.ndarray | None = None) -> dict:
    """An .mp4 of "input | depth | motion | novel view"; each panel is spec's size (default: the input's)."""
    from .io.video import write_mp4

    run_dir = Path(run_dir)
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise InputError(path, "the side-by-side video must be .mp4")
    statics = side_by_side_stills(run_dir)
    novel = render_frames(scene, header, spec, backend, progress) if frames is None else frames
    out = side_by_side_frames(statics, novel)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, out, spec.fps or float(header.get("fps", 30)))
    return {"frames": int(len(out)), "width": int(out.shape[2]), "height": int(out.shape[1])}
