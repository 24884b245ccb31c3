"""Other sources of the input view's 2D motion than hints.

- `motion_from_video`: a short reference video of the same scene (same framing): OpenCV DIS optical flow between
  consecutive frames, averaged, at the working size (frames are resized to the mask's size first).
- `load_motion_model`: a learned motion estimator loaded from a local file: TorchScript (`torch.jit.save`, any
  suffix) or, for a `.pt2` file, a `torch.export` program (`torch.export.save`). Model contract: input
  (1, 4, H, W) float32 = RGB in [0, 1] and the motion mask (0/1); output (1, 2, H, W) or (1, H, W, 2), the
  velocity field in px/frame at that size.
Both return (H, W, 2) float32, 0 outside the mask.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import InputError


def motion_from_video(
    frames: np.ndarray,  # (T, H0, W0, 3) uint8 RGB
    mask: np.ndarray,  # (H, W) bool, at the working size
    preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
) -> np.ndarray:
    """Mean DIS optical flow over the T - 1 consecutive frame pairs (H, W, 2) float32, px/frame at the mask's size,
    0 outside the mask."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 2:
        raise InputError(None, f"reference video: need at least 2 RGB frames, got an array of shape {frames.shape}")
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    if frames.dtype != np.uint8:
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    gray = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (w, h), interpolation=cv2.INTER_AREA) for f in frames]
    dis = cv2.DISOpticalFlow_create(preset)
    acc = np.zeros((h, w, 2), np.float64)
    for a, b in zip(gray[:-1], gray[1:]):
        acc += dis.calc(a, b, None)
    flow = (acc / (len(gray) - 1)).astype(np.float32)
    flow[~mask] = 0
    return flow


def read_video_frames(path: str | Path, max_frames: int = 120) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of a video file (imageio), at most `max_frames`."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "reference video not found")
    frames = []
    try:
        for i, fr in enumerate(iio.imiter(path)):
            if i >= max_frames:
                break
            fr = np.asarray(fr)
            if fr.ndim == 2:
                fr = np.repeat(fr[..., None], 3, axis=-1)
            frames.append(fr[..., :3])
    except Exception as e:  # imageio raises many types for unreadable files
        raise InputError(path, f"cannot read the video ({type(e).__name__}: {e})") from None
    if len(frames) < 2:
        raise InputError(path, "the reference video needs at least 2 frames")
    return np.stack(frames).astype(np.uint8)


def load_motion_model(path: str | Path, device: str | torch.device = "cpu") -> Callable[[np.ndarray, np.ndarray],
                                                                                          np.ndarray]:
    """Load a motion estimator (TorchScript, or torch.export for .pt2). Returns
    predict(image (H, W, 3) float [0, 1] or uint8, mask (H, W) bool) -> (H, W, 2) float32 px/frame
    (model contract in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "motion model file not found")
    try:
        with warnings.catch_warnings():  # torch >= 2.10 marks TorchScript deprecated; it still loads
            warnings.simplefilter("ignore", DeprecationWarning)
            if path.suffix == ".pt2":
                module = torch.export.load(str(path)).module()
            else:
                module = torch.jit.load(str(path), map_location=device)
                module.eval()
    except Exception as e:  # torch raises RuntimeError/ValueError/... for other files
        kind = "torch.export program" if path.suffix == ".pt2" else "TorchScript module"
        raise InputError(path, f"not a {kind} ({type(e).__name__})") from None

    def predict(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        img = np.asarray(image)
        img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
        m = np.asarray(mask, bool)
        h, w = m.shape
        if img.shape != (h, w, 3):
            raise ValueError(f"image {img.shape} and mask {m.shape} do not match")
        x = np.concatenate([img, m[..., None].astype(np.float32)], axis=-1).transpose(2, 0, 1)[None]
        with torch.no_grad():
            y = module(torch.from_numpy(np.ascontiguousarray(x)).to(device))
        if isinstance(y, (tuple, list)) and len(y) == 1:
            y = y[0]
        if not isinstance(y, torch.Tensor):
            raise InputError(path, "the motion model must return a tensor")
        y = y.detach().float().cpu().numpy()
        if y.shape == (1, 2, h, w):
            flow = y[0].transpose(1, 2, 0)
        elif y.shape == (1, h, w, 2):
            flow = y[0]
        else:
            raise InputError(path, f"the motion model returned shape {y.shape}, expected (1, 2, {h}, {w})")
        if not np.isfinite(flow).all():
            raise InputError(path, "the motion model returned non-finite values")
        flow = np.ascontiguousarray(flow, dtype=np.float32)
        flow[~m] = 0
        return flow

    return predict
