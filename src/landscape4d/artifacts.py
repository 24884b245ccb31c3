"""Readers for the files stages leave in a run folder (the contract between stages)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .camera import Intrinsics, c2w_from_nerfstudio
from .errors import StageError
from .io.images import read_png


@dataclass
class DepthResult:
    depth: np.ndarray  # (H, W) float32 z-depth of the input view
    intr: Intrinsics  # input camera (all views share it)
    scene_depth: float  # median depth of the non-sky scene, the unit trajectories scale with


@dataclass
class ViewSet:
    intr: Intrinsics
    c2w: list[np.ndarray]  # (4, 4) per view; view 0 is the input camera (identity)
    rgb: list[np.ndarray]  # (H, W, 3) float32, holes inpainted
    mask: list[np.ndarray]  # (H, W) bool motion mask
    depth: list[np.ndarray]  # (H, W) float32, 0 at holes
    holes: list[np.ndarray]  # (H, W) bool

    def __len__(self) -> int:
        return len(self.c2w)


def intrinsics_from_json(d: dict) -> Intrinsics:
    return Intrinsics(float(d["fl_x"]), float(d["fl_y"]), float(d["cx"]), float(d["cy"]), int(d["w"]), int(d["h"]))


def intrinsics_to_json(intr: Intrinsics) -> dict:
    return {"fl_x": intr.fx, "fl_y": intr.fy, "cx": intr.cx, "cy": intr.cy, "w": intr.width, "h": intr.height}


def load_depth(run_dir: Path) -> DepthResult:
    d = Path(run_dir) / "depth"
    if not (d / ".stage.json").exists():
        raise StageError(f"{d}: the depth stage has not finished")
    cam = json.loads((d / "camera.json").read_text())
    return DepthResult(np.load(d / "depth.npy"), intrinsics_from_json(cam), float(cam["scene_depth"]))


def load_views(run_dir: Path, indices: list[int] | None = None) -> ViewSet:
    d = Path(run_dir) / "views"
    if not (d / ".stage.json").exists():
        raise StageError(f"{d}: the views stage has not finished")
    tr = json.loads((d / "transforms.json").read_text())
    frames = tr["frames"]
    idx = range(len(frames)) if indices is None else indices
    vs = ViewSet(intrinsics_from_json(tr), [], [], [], [], [])
    for i in idx:
        f = frames[i]
        vs.c2w.append(c2w_from_nerfstudio(f["transform_matrix"], tr.get("applied_transform")))
        vs.rgb.append(read_png(d / f["file_path"]))
        vs.mask.append(np.asarray(Image.open(d / f["motion_mask_path"]).convert("L")) > 127)
        vs.depth.append(np.load(d / f["z_depth_path"]))
        vs.holes.append(np.asarray(Image.open(d / f["holes_path"]).convert("L")) > 127)
    return vs
