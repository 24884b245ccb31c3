"""Depth Anything V2 through transformers: a hub id (downloaded once into the Hugging Face cache) or a local model
directory (a `save_pretrained` folder, or a cache snapshot folder)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError

HOW_TO = ("download the model on a machine with internet (e.g. `hf download depth-anything/"
          "Depth-Anything-V2-Small-hf --local-dir DIR`) and pass --depth-model DIR, or use --depth-backend prior")


def load_depth_anything(model: str, device: str = "cpu"):
    """-> (model, processor), kept for the process (a bench or batch loads it once). Raises InputError with
    instructions when transformers or the weights cannot be had."""
    try:
        import torch  # noqa: F401
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation  # noqa: F401
    except ImportError:
        raise InputError(model, "the depth-anything-v2 backend needs transformers: pip install 'landscape4d[hf]'") \
            from None
    return _load(model, str(device))


@lru_cache(maxsize=2)
def _load(model: str, device: str):
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    from .auto import hf_cache_dir

    local = Path(model).expanduser()
    kwargs = {"local_files_only": True} if local.exists() else {"cache_dir": str(hf_cache_dir())}
    source = str(local) if local.exists() else model
    try:
        processor = AutoImageProcessor.from_pretrained(source, **kwargs)
        net = AutoModelForDepthEstimation.from_pretrained(source, **kwargs)
    except (OSError, ValueError, EnvironmentError) as e:
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise InputError(model, f"cannot load Depth Anything V2 weights ({reason}); {HOW_TO}") from None
    return net.to(device).eval(), processor


def depth_anything(image: np.ndarray, model: str, device: str = "cpu") -> np.ndarray:
    """image (H, W, 3) float in [0, 1] -> relative disparity (H, W) float32 (larger = nearer)."""
    import torch
    import torch.nn.functional as F

    net, processor = load_depth_anything(model, device)
    h, w, _ = image.shape
    rgb8 = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    inputs = processor(images=rgb8, return_tensors="pt").to(device)
    with torch.no_grad():
        pred = net(**inputs).predicted_depth  # (1, h', w')
    pred = F.interpolate(pred[:, None].float(), size=(h, w), mode="bicubic", align_corners=False)[0, 0]
    return pred.clamp_min(0).cpu().numpy().astype(np.float32)
