"""Videos: H.264 mp4 (bundled ffmpeg of imageio-ffmpeg), looping GIF (Pillow), PNG frames; reading back.

Every writer is atomic: it writes a temporary file in the target's folder and renames it over the target.
Frames are (T, H, W, 3) uint8 RGB; float frames in [0, 1] are accepted and rounded.
"""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from ..errors import InputError
from .atomic import atomic_path

# RGB <-> yuv420p conversion: accurate rounding and full-resolution chroma interpolation (ffmpeg's default
# upsamples chroma crudely, which costs ~15 dB PSNR on colourful content when reading a video back)
_SWS_FLAGS = "spline+accurate_rnd+full_chroma_int"


def frames_to_uint8(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) float in [0, 1] (or uint8) -> uint8, rounded and clipped."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    return np.clip(np.rint(frames.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must have shape (T >= 1, H, W, 3), got {frames.shape}")
    return np.ascontiguousarray(frames_to_uint8(frames))


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Repeat the last row / column where H or W is odd (yuv420p needs even sizes): (T, H, W, 3)."""
    _, H, W, _ = frames.shape
    if H % 2 == 0 and W % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)), mode="edge")


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, crf: int = 18, preset: str = "medium") -> Path:
    """Write H.264 (libx264, yuv420p) mp4.  Odd sizes gain one edge-replicated row/column.

    crf: 0 (lossless) .. 51 (worst); 18 is visually lossless for most content.
    """
    frames = pad_to_even(_check_frames(frames))
    if not 0 <= int(crf) <= 51:
        raise ValueError(f"crf must be in 0..51, got {crf}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = Path(path)
    T, H, W, _ = frames.shape
    with atomic_path(path, suffix=".mp4") as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (W, H), pix_fmt_in="rgb24", pix_fmt_out="yuv420p", fps=fps, quality=None, codec="libx264",
            macro_block_size=1, ffmpeg_log_level="error",
            output_params=["-crf", str(int(crf)), "-preset", preset, "-movflags", "+faststart",
                           "-sws_flags", _SWS_FLAGS + "+full_chroma_inp"])
        writer.send(None)  # start ffmpeg
        try:
            for frame in frames:
                writer.send(frame.tobytes())
        finally:
            writer.close()
    return path


def write_gif(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Write a GIF that loops forever, with one global palette (no dithering, so still pixels do not flicker).

    GIF delays are whole centiseconds: the frame time is 1/fps rounded to 10 ms.
    """
    frames = _check_frames(frames)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    T = frames.shape[0]
    sample = frames[np.unique(np.linspace(0, T - 1, min(T, 8)).round().astype(int))]
    palette = Image.fromarray(np.concatenate(list(sample), axis=0)).quantize(
        colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    duration = max(20, int(round(100.0 / fps)) * 10)  # browsers treat delays below 20 ms as 100 ms
    path = Path(path)
    with atomic_path(path, suffix=".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0,
                       optimize=False)
    return path


def write_png_frames(directory: str | Path, frames: np.ndarray, prefix: str = "frame_") -> list[Path]:
    """Write frames as `directory/{prefix}0000.png`, ... (each file atomically); returns the paths."""
    frames = _check_frames(frames)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, frame in enumerate(frames):
        p = directory / f"{prefix}{k:04d}.png"
        with atomic_path(p, suffix=".png") as tmp:
            Image.fromarray(frame).save(tmp, format="PNG")
        paths.append(p)
    return paths


def read_video(path: str | Path) -> np.ndarray:
    """Read all frames of a video or (animated) GIF as (T, H, W, 3) uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found" if not path.exists() else "not a file")
    if path.suffix.lower() == ".gif":
        try:
            with Image.open(path) as im:
                frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise InputError(path, f"cannot decode GIF ({e})") from None
        return np.stack(frames)
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", output_params=["-sws_flags", _SWS_FLAGS])
        meta = next(reader)
        W, H = meta["size"]
        frames = [np.frombuffer(b, dtype=np.uint8).reshape(H, W, 3) for b in reader]
    except (RuntimeError, OSError, StopIteration) as e:
        raise InputError(path, f"cannot decode video ({str(e).strip().splitlines()[-1] if str(e).strip() else e})") \
            from None
    if not frames:
        raise InputError(path, "video has no frames")
    return np.stack(frames)
