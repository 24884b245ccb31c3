"""The user's input, validated and brought to the working size before anything is written, and its copy in the
run folder (input/image.png, mask.png, hints.json, input.json).

Without --mask, a command that needs motion animates a proposed region (`landscape4d.motion.propose`: the sky
drifting, water flowing) and saves it as input/proposal.json (labelme) + input/proposal_mask.png, to refine with
`landscape4d annotate`. `--mask none` turns the proposal off (the run then needs a mask and stops without one)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .config import RunConfig
from .errors import InputError
from .io.atomic import swap_dir, write_json
from .io.images import load_photo, read_png, resize_image, save_png, working_size
from .io.masks import MotionInput, labelme_motion, load_motion_input, parse_direction

NO_MASK = "none"  # --mask none: no proposal, a missing mask is an error
PROPOSAL_FILE = "proposal.json"  # in RUN/input/, beside proposal_mask.png


@dataclass
class RunInput:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1], working size
    motion: MotionInput  # mask (H, W) and hints at the working size
    meta: dict  # original size, scale, EXIF focal, file names; "proposal" when the mask was proposed
    proposal: dict | None = None  # the proposed mask and hints as a labelme document (photo pixels)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


def prepare_input(photo: str | Path, mask: str | Path | None, hints: str | Path | None, cfg: RunConfig,
                  require_motion: bool) -> RunInput:
    """Load and validate everything; raises InputError (naming the file) before anything is written."""
    p = load_photo(photo, cfg.min_input_side, cfg.max_input_pixels)
    w0, h0 = p.size
    no_mask = mask is not None and str(mask) == NO_MASK
    mask = None if no_mask else mask
    mi = load_motion_input(mask, w0, h0, hints)
    if cfg.motion.direction is not None:
        mi.direction = parse_direction(cfg.motion.direction)
    if cfg.motion.speed is not None:
        mi.speed = float(cfg.motion.speed)
    proposal = None
    if require_motion and mask is None and not no_mask:
        mi, proposal = _proposed_motion(photo, p.image, mi, cfg)
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
    if proposal is not None:
        meta["proposal"] = {"text": proposal[1].describe(w / w0), "regions": [
            {"name": r.name, "fraction": round(r.fraction, 4),
             "velocity_px_per_frame": [round(v * w / w0, 4) for v in r.velocity]} for r in proposal[1].regions]}
    return RunInput(image.astype(np.float32), mi, meta, None if proposal is None else proposal[0])


def _proposed_motion(photo: str | Path, image: np.ndarray, mi: MotionInput, cfg: RunConfig):
    """The proposed mask (and its hints, unless the user gave hints or a direction) -> (MotionInput, (labelme
    document, Proposal)); InputError when the photo has neither sky nor water."""
    from .motion.propose import propose_motion

    prop = propose_motion(image, cfg.depth, cfg.motion.hint_frames)
    if not prop.regions:
        raise InputError(photo, "no --mask given and no sky or water found to animate: draw the moving region "
                                f"with `landscape4d annotate {photo}` and pass --mask with the saved JSON")
    h, w = image.shape[:2]
    doc = prop.labelme(os.path.abspath(photo))
    proposed = labelme_motion(doc, w, h, PROPOSAL_FILE)  # exactly what --mask proposal.json reads back
    user_hints = len(mi.arrows) > 0 or mi.direction is not None
    arrows = mi.arrows if user_hints else proposed.arrows
    return MotionInput(proposed.mask, arrows, mi.direction, mi.speed), (doc, prop)


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
        if inp.proposal is not None:
            _write_proposal(tmp, final, inp)
        write_json(tmp / "input.json", inp.meta)
        swap_dir(tmp, final, old)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        raise InputError(run_dir, f"cannot write the run's input ({e.strerror or e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if inp.proposal is not None:
        print(f"[landscape4d] {inp.meta['proposal']['message']}", file=sys.stderr)


def _write_proposal(tmp: Path, final: Path, inp: RunInput) -> None:
    """input/proposal.json (labelme, photo pixels, imagePath relative to it) + proposal_mask.png (photo size)."""
    from .io.masks import mask_png_path, write_labelme

    doc = dict(inp.proposal)
    photo = Path(inp.meta["photo"])
    try:
        doc["imagePath"] = os.path.relpath(photo, final.resolve())
    except ValueError:  # another drive (Windows)
        doc["imagePath"] = str(photo)
    w0, h0 = inp.meta["original_size"]
    write_labelme(tmp / PROPOSAL_FILE, doc)
    save_png(mask_png_path(tmp / PROPOSAL_FILE), labelme_motion(doc, w0, h0).mask.astype(np.uint8) * 255)
    saved = final / PROPOSAL_FILE
    inp.meta["mask"] = str(saved.resolve())
    inp.meta["proposal"]["file"] = str(saved)
    inp.meta["proposal"]["message"] = (
        f"no --mask: proposed {inp.meta['proposal']['text']}; saved as {saved} (+ {mask_png_path(saved).name}); "
        f"refine it with `landscape4d annotate {photo} -o {saved}` and rerun with --mask {saved}")


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
