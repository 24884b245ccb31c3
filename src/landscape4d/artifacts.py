"""Readers for the files stages leave in a run folder (the contract between stages), and `RunArtifacts`, the one
accessor a stage uses to read them: each artifact is loaded once, on first use.

A file that an earlier stage wrote but that cannot be read back (truncated, corrupt, the wrong shape) raises
CorruptArtifactError naming the file and the command that makes it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
from PIL import Image

from .camera import Intrinsics, c2w_from_nerfstudio
from .errors import CorruptArtifactError, InputError, StageError, one_line
from .io.images import read_png

T = TypeVar("T")


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


@dataclass
class MotionResult:
    velocity: np.ndarray  # (H*W, 3) float32 refined 3D velocity of every input-view point, world units per frame
    moving: np.ndarray  # (H*W,) bool: the point is inside the motion mask
    input_motion: np.ndarray  # (H, W, 2) float32 dense 2D motion of the input view, px/frame


def intrinsics_from_json(d: dict) -> Intrinsics:
    return Intrinsics(float(d["fl_x"]), float(d["fl_y"]), float(d["cx"]), float(d["cy"]), int(d["w"]), int(d["h"]))


def intrinsics_to_json(intr: Intrinsics) -> dict:
    return {"fl_x": intr.fx, "fl_y": intr.fy, "cx": intr.cx, "cy": intr.cy, "w": intr.width, "h": intr.height}


# ------------------------------------------------------------------------------------------------ reading files


def finished_stage(run_dir: Path, name: str) -> Path:
    """The folder of a finished stage; StageError when the stage has not finished."""
    d = Path(run_dir) / name
    if not (d / ".stage.json").exists():
        raise StageError(f"{d}: the {name} stage has not finished; run it first")
    return d


def remake_command(run_dir: Path, stage: str) -> str:
    """The command that makes a stage's outputs again."""
    if stage == "input":
        return f"landscape4d run PHOTO --mask ... -o {run_dir}"
    return f"landscape4d {stage} -o {run_dir} --force"


def read_artifact(path: Path, reader: Callable[[Path], T], run_dir: Path, stage: str) -> T:
    """reader(path), with any failure to read or parse it turned into CorruptArtifactError naming the file."""
    try:
        return reader(path)
    except MemoryError:
        raise
    except FileNotFoundError as e:
        problem, path = "missing (deleted after its stage finished?)", Path(e.filename or path)
    except InputError as e:
        problem, path = e.problem, Path(e.path or path)
    except Exception as e:  # np.load, PIL, json: each raises its own kinds on truncated or corrupt files
        problem = f"unreadable, truncated or corrupt ({one_line(e, 200, with_type=True)})"
    raise CorruptArtifactError(path, problem, remake_command(run_dir, stage)) from None


def check_shape(path: Path, array: np.ndarray, shape: tuple[int, ...], run_dir: Path, stage: str) -> np.ndarray:
    if array.shape != shape:
        raise CorruptArtifactError(path, f"has shape {array.shape}, expected {shape}", remake_command(run_dir, stage))
    return array


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _read_mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")) > 127


def load_depth(run_dir: Path) -> DepthResult:
    d = finished_stage(run_dir, "depth")

    def camera(path: Path) -> tuple[Intrinsics, float]:
        cam = _read_json(path)
        return intrinsics_from_json(cam), float(cam["scene_depth"])

    intr, scene_depth = read_artifact(d / "camera.json", camera, run_dir, "depth")
    depth = read_artifact(d / "depth.npy", np.load, run_dir, "depth")
    return DepthResult(check_shape(d / "depth.npy", depth, (intr.height, intr.width), run_dir, "depth"), intr,
                       scene_depth)


def load_views(run_dir: Path, indices: list[int] | None = None) -> ViewSet:
    d = finished_stage(run_dir, "views")

    def transforms(path: Path) -> tuple[Intrinsics, list[dict], Any]:
        tr = _read_json(path)
        frames = [{k: f[k] for k in ("transform_matrix", "file_path", "motion_mask_path", "z_depth_path",
                                     "holes_path")} for f in tr["frames"]]
        return intrinsics_from_json(tr), frames, tr.get("applied_transform")

    intr, frames, applied = read_artifact(d / "transforms.json", transforms, run_dir, "views")
    vs = ViewSet(intr, [], [], [], [], [])
    hw = (intr.height, intr.width)
    for i in range(len(frames)) if indices is None else indices:
        f = frames[i]
        vs.c2w.append(c2w_from_nerfstudio(f["transform_matrix"], applied))
        for name, reader, out, shape in (("file_path", read_png, vs.rgb, (*hw, 3)),
                                         ("motion_mask_path", _read_mask, vs.mask, hw),
                                         ("z_depth_path", np.load, vs.depth, hw),
                                         ("holes_path", _read_mask, vs.holes, hw)):
            path = d / f[name]
            out.append(check_shape(path, read_artifact(path, reader, run_dir, "views"), shape, run_dir, "views"))
    return vs


def load_motion(run_dir: Path) -> MotionResult:
    d = finished_stage(run_dir, "motion")
    m0 = read_artifact(d / "input_motion.npy", np.load, run_dir, "motion")
    n = m0.shape[0] * m0.shape[1] if m0.ndim == 3 else -1
    arrays = [check_shape(d / name, read_artifact(d / name, np.load, run_dir, "motion"), shape, run_dir, "motion")
              for name, shape in (("points_motion.npy", (n, 3)), ("points_moving.npy", (n,)))]
    return MotionResult(arrays[0], arrays[1], m0)


# ------------------------------------------------------------------------------------------------ the accessor


class RunArtifacts:
    """The finished stages' outputs of one run folder, each loaded once, on first use (a stage reads the depth map,
    the views or the motion as often as it likes without reloading them): `input`, `depth`, `views`, `motion`,
    `gaussians(device)`, `scene4d(device)`. Every read is checked: a missing stage raises StageError, a damaged
    file CorruptArtifactError naming it."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._cache: dict[Any, Any] = {}

    def _once(self, key: Any, load: Callable[[], T]) -> T:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    @property
    def input(self):
        """The validated input (inputs.RunInput: working-size photo, motion mask and hints, meta)."""
        from .inputs import load_input

        return self._once("input", lambda: read_artifact(self.run_dir / "input", lambda p: load_input(p.parent),
                                                         self.run_dir, "input"))

    @property
    def depth(self) -> DepthResult:
        return self._once("depth", lambda: load_depth(self.run_dir))

    @property
    def views(self) -> ViewSet:
        """Every training view."""
        return self._once("views", lambda: load_views(self.run_dir))

    @property
    def motion(self) -> MotionResult:
        return self._once("motion", lambda: load_motion(self.run_dir))

    def gaussians(self, device: Any = "cpu"):
        """The stage-1 Gaussians (gaussians/scene.ply) as a GaussianModel on `device`."""
        from .gaussians.ply import read_ply

        path = finished_stage(self.run_dir, "gaussians") / "scene.ply"
        return self._once(("gaussians", str(device)),
                          lambda: read_artifact(path, lambda p: read_ply(p, device), self.run_dir, "gaussians"))

    def scene4d(self, device: Any = "cpu") -> tuple[Any, dict]:
        """The 4D scene (dynamics/scene4d.safetensors) on `device`: (Scene4D, header)."""
        from .dynamics.scene_file import load_scene4d

        path = finished_stage(self.run_dir, "dynamics") / "scene4d.safetensors"
        return self._once(("scene4d", str(device)),
                          lambda: read_artifact(path, lambda p: load_scene4d(p, device), self.run_dir, "dynamics"))
