"""Synthetic ground-truth scenes: a procedural landscape photo with its exact motion mask, depth, 3D motion and
motion hints, plus ground-truth looping videos along any camera path, from an independent ray-casting renderer.

    scene = generate_scene("river", seed=0, width=256, height=144, num_frames=60)
    video = scene.render_trajectory("side")        # (60, 144, 256, 3) float32, frame 60 == frame 0
    scene.save("out/river0")                       # image.png, mask.png, hints.json, depth.npy, ...

Conventions: world = the input camera's frame (c2w = identity), OpenCV axes, depth = z, pixel (i, j) centre at
(j + 0.5, i + 0.5) (landscape4d.camera). 3D motion is in world units per frame; hints are arrows whose length is
the displacement over `hint_frames` frames at the pixel's velocity (the motion stage's convention).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..camera import Intrinsics, project, trajectory
from ..config import TRAJECTORIES
from ..io.atomic import atomic_path, write_json, write_npy
from ..io.images import save_png, to_uint8
from .scenes import KINDS, SKY, Layout, RenderOutput, SceneRenderer, build_layout


@dataclass(frozen=True)
class SyntheticConfig:
    kind: str = "river"  # river | waterfall | lake
    seed: int = 0
    width: int = 256
    height: int = 144
    num_frames: int = 60  # loop length: frame num_frames equals frame 0
    fov_deg: float = 60.0  # horizontal field of view of the input camera
    hint_frames: float = 60.0  # a hint arrow is the displacement over this many frames
    num_hints: int = 5

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown scene kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.width < 16 or self.height < 16:
            raise ValueError(f"scene size must be at least 16x16, got {self.width}x{self.height}")
        if self.num_frames < 2:
            raise ValueError("num_frames must be at least 2")
        if not 1.0 <= self.fov_deg <= 170.0:
            raise ValueError(f"fov_deg must be in [1, 170], got {self.fov_deg}")
        if self.hint_frames <= 0 or self.num_hints < 0:
            raise ValueError("hint_frames must be positive and num_hints non-negative")


@dataclass
class SyntheticScene:
    config: SyntheticConfig
    intrinsics: Intrinsics
    image: np.ndarray  # (H, W, 3) float32 in [0, 1]: the input photo (t = 0, c2w = identity)
    mask: np.ndarray  # (H, W) bool: pixels whose surface moves
    depth: np.ndarray  # (H, W) float32 z-depth
    sky: np.ndarray  # (H, W) bool: sky pixels (finite depth on a far plane)
    motion3d: np.ndarray  # (H, W, 3) float32 world units per frame (0 outside the mask)
    flow2d: np.ndarray  # (H, W, 2) float32 image velocity in pixels per frame at t = 0 (0 outside the mask)
    hints: np.ndarray  # (K, 2, 2) float32 arrows [[u0, v0], [u1, v1]] in pixels
    scene_depth: float  # median depth of the non-sky pixels: the unit the trajectories scale with
    renderer: SceneRenderer

    @property
    def num_frames(self) -> int:
        return self.config.num_frames

    @property
    def layout(self) -> Layout:
        return self.renderer.layout

    def render(self, c2w: np.ndarray, t: float = 0.0) -> RenderOutput:
        """RGB, depth, motion mask, 3D motion and material ids for camera c2w (4, 4) at frame t."""
        return self.renderer.render(np.asarray(c2w, np.float64), t)

    def render_video(self, c2ws: list[np.ndarray], num_frames: int | None = None) -> np.ndarray:
        """(T, H, W, 3) float32 frames: frame k is seen from c2ws[k % len(c2ws)] at time k.

        T = num_frames, or len(c2ws). The scene loops with `config.num_frames`. Each distinct camera is ray-cast
        once and shaded at all of its frames.
        """
        if not c2ws:
            raise ValueError("render_video needs at least one camera")
        count = len(c2ws) if num_frames is None else int(num_frames)
        h, w = self.intrinsics.height, self.intrinsics.width
        out = np.empty((count, h, w, 3), np.float32)
        groups: dict[bytes, list[int]] = {}
        for k in range(count):
            key = np.round(np.asarray(c2ws[k % len(c2ws)], np.float64), 12).tobytes()
            groups.setdefault(key, []).append(k)
        for frames in groups.values():
            c2w = np.asarray(c2ws[frames[0] % len(c2ws)], np.float64)
            hits = self.renderer.cast(c2w)
            first = self.renderer.shade(hits, float(frames[0]))
            moving = torch.linalg.vector_norm(self.renderer.world_velocity(hits), dim=1) > 0
            sub = hits.select(moving)  # only moving surfaces change with time
            for k in frames:
                frame = first.clone()
                if k != frames[0] and bool(moving.any()):
                    frame[moving] = self.renderer.shade(sub, float(k))
                out[k] = frame.reshape(h, w, 3).numpy()
        return out

    def trajectory(self, name: str, num_frames: int | None = None) -> list[np.ndarray]:
        """Camera path `name` (see landscape4d.camera.trajectory) scaled by this scene's depth."""
        return trajectory(name, num_frames or self.num_frames, self.scene_depth)

    def render_trajectory(self, name: str, num_frames: int | None = None) -> np.ndarray:
        """Ground-truth video (T, H, W, 3) along a named trajectory, one loop by default."""
        return self.render_video(self.trajectory(name, num_frames))

    def save(self, out_dir: str | Path, trajectories: tuple[str, ...] = TRAJECTORIES, video_format: str = "mp4",
             fps: int = 30) -> dict[str, Path]:
        """Write image.png, mask.png, hints.json, depth.npy, motion3d.npy, flow2d.npy, scene.json and
        gt/<trajectory>.mp4 (or .npy (T, H, W, 3) uint8 with video_format="npy", lossless). Returns the paths."""
        if video_format not in ("mp4", "npy"):
            raise ValueError(f"video_format must be mp4 or npy, got {video_format!r}")
        out = Path(out_dir)
        paths = {"image": out / "image.png", "mask": out / "mask.png", "hints": out / "hints.json",
                 "depth": out / "depth.npy", "motion3d": out / "motion3d.npy", "flow2d": out / "flow2d.npy",
                 "scene": out / "scene.json"}
        save_png(paths["image"], self.image)
        save_png(paths["mask"], self.mask.astype(np.uint8) * 255)
        write_json(paths["hints"], hints_to_json(self.hints))
        write_npy(paths["depth"], self.depth.astype(np.float32))
        write_npy(paths["motion3d"], self.motion3d.astype(np.float32))
        write_npy(paths["flow2d"], self.flow2d.astype(np.float32))
        odd = self.intrinsics.width % 2 or self.intrinsics.height % 2  # H.264 4:2:0 needs even sizes
        fmt = "npy" if odd else video_format
        for name in trajectories:
            frames = to_uint8(self.render_trajectory(name))
            path = out / "gt" / f"{name}.{fmt}"
            if fmt == "npy":
                write_npy(path, frames)
            else:
                write_mp4(path, frames, fps)
            paths[f"gt/{name}"] = path
        write_json(paths["scene"], {
            **asdict(self.config),
            "intrinsics": {"fl_x": self.intrinsics.fx, "fl_y": self.intrinsics.fy, "cx": self.intrinsics.cx,
                           "cy": self.intrinsics.cy, "w": self.intrinsics.width, "h": self.intrinsics.height},
            "scene_depth": self.scene_depth, "fps": fps, "trajectories": list(trajectories),
            "convention": "OpenCV, input camera = world, depth = z, motion3d in world units per frame",
            "files": {k: str(v.relative_to(out)) for k, v in paths.items()},
        })
        return paths


def hints_to_json(hints: np.ndarray) -> dict:
    """(K, 2, 2) arrows -> {"hints": [{"start": [u, v], "end": [u, v]}, ...]} (the CLI's hints format)."""
    return {"hints": [{"start": [round(float(a[0, 0]), 3), round(float(a[0, 1]), 3)],
                       "end": [round(float(a[1, 0]), 3), round(float(a[1, 1]), 3)]} for a in hints]}


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """(T, H, W, 3) uint8 -> H.264 mp4 (near-lossless, crf 12), atomically."""
    import imageio_ffmpeg

    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(str(tmp), (frames.shape[2], frames.shape[1]), fps=fps,
                                             codec="libx264", macro_block_size=1, pix_fmt_out="yuv420p",
                                             output_params=["-crf", "12"], ffmpeg_log_level="error")
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f))
        writer.close()


# ---------------------------------------------------------------------------------------------------------------
# generation


def image_flow(points: np.ndarray, velocity: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Image velocity (N, 2) in pixels per frame of world points (N, 3) moving at velocity (N, 3) per frame,
    seen from the input camera: projection after one frame minus projection now."""
    k = torch.from_numpy(intr.matrix())
    eye = torch.eye(4, dtype=torch.float64)
    p = torch.from_numpy(np.asarray(points, np.float64))
    uv0, _ = project(p, k, eye)
    uv1, _ = project(p + torch.from_numpy(np.asarray(velocity, np.float64)), k, eye)
    return (uv1 - uv0).numpy()


def pick_hints(mask: np.ndarray, flow2d: np.ndarray, count: int, hint_frames: float,
               rng: np.random.Generator) -> np.ndarray:
    """Up to `count` arrows (K, 2, 2) from well-spread mask pixels (farthest-point sampling, seeded), each of
    length hint_frames x the pixel's image velocity, with both ends inside the image, the start at least two
    pixels inside the mask and three pixels off the image border."""
    h, w = mask.shape
    inner = mask.copy()
    for axis in (0, 1):  # erode by 2 pixels along both axes
        for shift in (1, 2):
            inner &= np.roll(mask, shift, axis) & np.roll(mask, -shift, axis)
    ii, jj = np.nonzero(inner)
    start = np.stack([jj + 0.5, ii + 0.5], axis=-1)
    end = start + hint_frames * flow2d[ii, jj]
    speed = np.linalg.norm(flow2d[ii, jj], axis=-1)
    margin = 3.0  # keep starts off the image border
    ok = ((end[:, 0] >= 0) & (end[:, 0] <= w) & (end[:, 1] >= 0) & (end[:, 1] <= h) & (speed > 1e-6)
          & (start[:, 0] >= margin) & (start[:, 0] <= w - margin) & (start[:, 1] >= margin)
          & (start[:, 1] <= h - margin))
    start, end = start[ok], end[ok]
    if count <= 0 or start.shape[0] == 0:
        return np.zeros((0, 2, 2), np.float32)
    chosen = [int(rng.integers(start.shape[0]))]
    dist = np.linalg.norm(start - start[chosen[0]], axis=-1)
    while len(chosen) < min(count, start.shape[0]):
        nxt = int(np.argmax(dist))
        if dist[nxt] <= 0:
            break
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(start - start[nxt], axis=-1))
    return np.stack([start[chosen], end[chosen]], axis=1).astype(np.float32)


def generate_scene(kind: str, seed: int = 0, width: int = 256, height: int = 144, num_frames: int = 60,
                   fov_deg: float = 60.0, hint_frames: float = 60.0, num_hints: int = 5) -> SyntheticScene:
    """A seeded synthetic scene of `kind` (river | waterfall | lake); the same arguments give identical arrays."""
    cfg = SyntheticConfig(kind, int(seed), int(width), int(height), int(num_frames), float(fov_deg),
                          float(hint_frames), int(num_hints))
    cfg.validate()
    intr = Intrinsics.from_fov(cfg.width, cfg.height, cfg.fov_deg)
    grid = int(min(512, max(192, 2 * max(cfg.width, cfg.height))))  # terrain samples follow the image size
    renderer = SceneRenderer(build_layout(cfg.kind, cfg.seed, grid), intr, cfg.num_frames)
    out = renderer.render(np.eye(4), 0.0)
    sky = out.material == SKY
    hits = renderer.cast(np.eye(4))
    world_points = (hits.points @ renderer.r_ws).numpy()  # scene -> world: R_ws^T p (rows)
    flow = image_flow(world_points, out.motion3d.reshape(-1, 3), intr).reshape(cfg.height, cfg.width, 2)
    flow = np.where(out.mask[..., None], flow, 0.0).astype(np.float32)
    rng = np.random.default_rng([cfg.seed, 7919])
    hints = pick_hints(out.mask, flow, cfg.num_hints, cfg.hint_frames, rng)
    ground = out.depth[~sky]
    scene_depth = float(np.median(ground)) if ground.size else float(np.median(out.depth))
    return SyntheticScene(config=cfg, intrinsics=intr, image=out.rgb, mask=out.mask, depth=out.depth, sky=sky,
                          motion3d=out.motion3d, flow2d=flow, hints=hints, scene_depth=scene_depth,
                          renderer=renderer)


def load_scene_json(path: str | Path) -> SyntheticConfig:
    """The SyntheticConfig stored in a saved scene's scene.json (to regenerate it exactly)."""
    data = json.loads(Path(path).read_text())
    fields = SyntheticConfig.__dataclass_fields__
    return SyntheticConfig(**{k: data[k] for k in fields if k in data})
