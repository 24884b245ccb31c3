"""The user's input, validated and brought to the working size before anything is written, and its copy in the
run folder (input/image.png, mask.png, hints.json, input.json)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .config import RunConfig
from .errors import InputError
from .io.atomic import swap_dir, write_json
from .io.images import load_photo, read_png, resize_image, save_png, working_size
from .io.masks import MotionInput, load_motion_input, parse_direction


@dataclass
class RunInput:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1], working size
    motion: MotionInput  # mask (H, W) and hints at the working size
    meta: dict  # original size, scale, EXIF focal, file names

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


def prepare_input(photo: str | Path, mask: str | Path | None, hints: str | Path | None, cfg: RunConfig,
                  require_motion: bool) -> RunInput:
    """Load and validate everything; raises InputError (naming the file) before anything is written."""
    p = load_photo(photo, cfg.min_input_side, cfg.max_input_pixels)
    w0, h0 = p.size
    mi = load_motion_input(mask, w0, h0, hints)
    if cfg.motion.direction is not None:
        mi.direction = parse_direction(cfg.motion.direction)
    if cfg.motion.speed is not None:
        mi.speed = float(cfg.motion.speed)
    if require_motion:
        src = mask if mask is not None else photo
        if not mi.mask.any():
            raise InputError(src, "the motion mask is empty (no moving pixels); give --mask with the moving region")
        if len(mi.arrows) == 0 and mi.direction is None and not cfg.motion.reference_video and not cfg.motion.model:
            raise InputError(src, "no motion hints: add hintK lines to the labelme file, a --hints JSON, or "
                                  "--direction dx,dy [--speed s]")
    w, h = working_size(w0, h0, cfg.size)
    image = resize_image(p.image, w, h)
    mi = mi.resized(w, h)
    note = None if (w, h) == (w0, h0) else f"photo downscaled from {w0}x{h0} to the working size {w}x{h}"
    meta = {"photo": str(Path(photo).resolve()), "mask": None if mask is None else str(Path(mask).resolve()),
            "hints": None if hints is None else str(Path(hints).resolve()), "original_size": [w0, h0],
            "working_size": [w, h], "scale": w / w0, "focal_35mm": p.focal_35mm, "note": note}
    return RunInput(image.astype(np.float32), mi, meta)


def write_input(run_dir: Path, inp: RunInput) -> None:
    """Write input/ atomically (a temporary folder renamed into place). A full disk or an unwritable folder raises
    InputError naming the run folder; the input/ already there is then kept unchanged."""
    tmp = run_dir / f".input.tmp-{os.getpid()}"
    final = run_dir / "input"
    old = run_dir / f".input.old-{os.getpid()}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_png(tmp / "image.png", inp.image)
        save_png(tmp / "mask.png", inp.motion.mask.astype(np.uint8) * 255)
        write_json(tmp / "hints.json", inp.motion.to_json())
        write_json(tmp / "input.json", inp.meta)
        swap_dir(tmp, final, old)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        raise InputError(run_dir, f"cannot write the run's input ({e.strerror or e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_input(run_dir: Path) -> RunInput:
    d = Path(run_dir) / "input"
    image = read_png(d / "image.png")
    mask = np.asarray(Image.open(d / "mask.png").convert("L")) > 127
    hints = json.loads((d / "hints.json").read_text())
    arrows = np.asarray([[h["start"], h["end"]] for h in hints["hints"]], np.float32).reshape(-1, 2, 2)
    direction = tuple(hints["direction"]) if hints.get("direction") else None
    mi = MotionInput(mask, arrows, direction, hints.get("speed"))
    meta = json.loads((d / "input.json").read_text())
    return RunInput(image, mi, meta)
