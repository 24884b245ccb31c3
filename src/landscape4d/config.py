"""Typed configs for every stage, and the presets.

`preview` (512 px) runs in about 6 minutes on a 2-core CPU; `full` (1024 px) in under 30 there, minutes on a GPU.
Each stage declares what it reads (whole sections such as "animate", or single values such as "gaussians.backend";
`size` and `seed` always) and sees the config through a `ConfigView` that refuses anything else, and the stage cache
hashes exactly those values, so changing one value reruns exactly the stages that read it (and those after them).
`device` and `threads` say how to compute, not what: no stage reads them and no cache key holds them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import UndeclaredConfigError

PRESETS = ("preview", "full")
TRAJECTORIES = ("up-down", "zoom-in", "side", "circle")
# the allowed values of the string options, checked by `validate` (and used by the CLI and the modules that read them)
DEVICES = ("auto", "cpu", "cuda")
DEPTH_BACKENDS = ("auto", "prior", "depth-anything-v2", "file")
DEPTH_FILE_KINDS = ("depth", "disparity")
INPAINT_METHODS = ("telea", "ns", "none")
INTERPOLATIONS = ("laplace", "rbf")
UNHINTED = ("nearest", "mean", "zero")
RASTER_BACKENDS = ("auto", "torch", "numba", "gsplat")
GAUSSIAN_INITS = ("footprint", "knn")


@dataclass
class DepthConfig:
    backend: str = "auto"  # auto (Depth Anything V2 when it can be had, else prior) | prior | depth-anything-v2 | file
    fov_deg: float = 60.0  # horizontal field of view of the photo when EXIF gives no focal length
    use_exif_focal: bool = True
    model: str = "depth-anything/Depth-Anything-V2-Small-hf"  # hub id or local directory (auto, depth-anything-v2)
    file: str | None = None  # user depth/disparity map (backend file)
    file_kind: str = "depth"  # depth | disparity (backend file)
    near: float = 1.0  # depth of the nearest ground, world units
    sky_depth: float = 20.0  # finite depth given to the sky, as a multiple of `near` (behind max_ground_depth)
    max_ground_depth: float = 12.0  # prior: ground depth is clamped below this multiple of `near`
    guided_radius: int = 8  # edge-aware refinement window (pixels at the working size)
    guided_eps: float = 1e-3


@dataclass
class ViewsConfig:
    num_views: int = 25  # training views, the input view included (view 000)
    max_angle_deg: float = 4.0  # largest yaw/pitch offset of the training grid
    max_shift: float = 0.06  # largest camera translation, as a fraction of the median scene depth
    inpaint: str = "telea"  # telea | ns | none
    inpaint_radius: int = 5
    point_radius: float = 1.2  # splat footprint in pixels at the input resolution


@dataclass
class MotionConfig:
    direction: tuple[float, float] | None = None  # (dx, dy) in image pixels for the whole mask, when no hints
    speed: float | None = None  # px/frame; set: hint/direction vectors are normalised to it; None: length / hint_frames
    hint_frames: float = 60.0  # a hint arrow is the displacement over this many frames (3D-Cinemagraphy)
    hint_points: int = 1  # constraint pixels per arrow: its start, plus (n-1) more evenly along it to its end
    interpolation: str = "laplace"  # laplace | rbf
    unhinted: str = "nearest"  # mask components without a hint: nearest (hint's value) | mean | zero
    visibility_tol: float = 0.03  # relative z-test tolerance against a view's rendered depth
    refine_iters: int = 300
    refine_lr: float = 0.05  # Adam step, in px/frame (the velocity is optimised in pixel units at its depth)
    smooth_weight: float = 0.05  # weight of the neighbour smoothness term (squared px/frame differences)
    reference_video: str | None = None  # estimate M from a short video instead (OpenCV DIS)
    model: str | None = None  # local path of a learned motion estimator (TorchScript, or torch.export .pt2)


@dataclass
class GaussiansConfig:
    backend: str = "auto"  # auto (numba on CPU, gsplat on CUDA when installed) | torch | numba | gsplat
    # preview defaults: one Gaussian per pixel at 512 px, the photo every second iteration (README, "Recipe")
    iters: int = 400
    downsample: int = 1  # one Gaussian per downsample x downsample pixels of the point cloud
    sh_degree: int = 0
    lr_means: float = 1.6e-4  # multiplied by the scene extent
    lr_means_final: float = 1.6e-6  # position LR decays exponentially to this over `iters`
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_colors: float = 2.5e-3  # SH degree-0 coefficients; higher bands use lr_colors / 20 (as 3DGS)
    sh_up_every: int = 1000  # SH degree grows by one every this many iterations up to sh_degree
    ssim_weight: float = 0.2
    densify_from: int = 100
    densify_until: int = 300
    densify_every: int = 100
    densify_grad_threshold: float = 2e-4  # mean |d loss / d means2d| in NDC units (pixels * 0.5 * W, 0.5 * H)
    percent_dense: float = 0.01  # Gaussians larger than this fraction of the scene extent are split, else cloned
    opacity_reset_every: int = 3000  # (counted while densifying, as 3DGS)
    prune_opacity: float = 0.005
    prune_screen_radius: float = 20.0  # after the first opacity reset: prune radii above this (pixels) ...
    prune_world_scale: float = 0.1  # ... or scales above this fraction of the scene extent
    max_gaussians: int = 300_000
    batch_views: int = 1
    input_view_every: int = 2  # if > 0, every this many iterations trains on view 0 (the real photo)
    init: str = "footprint"  # footprint: flat Gaussians covering each pixel at its depth (the first render of the input
    # view is the photo) | knn: isotropic, scale = distance to the nearest points, opacity 0.1 (3DGS)
    init_sigma_px: float = 0.5  # footprint init: standard deviation in pixels (times `downsample`) at the depth
    init_opacity: float = 1.48  # opacity of every initial Gaussian, below gaussians.model.OPACITY_MAX = 1.5
    # (flat-topped footprints; 3DGS: 0.1, with knn)
    border: float = 0.08  # the point cloud is extended (edge colour and depth) by this fraction of the long side
    hole_weight: float = 1.0  # loss weight of the inpainted hole pixels of the side views (view 0 is the photo: 1)


@dataclass
class AnimateConfig:
    num_frames: int = 60
    fps: int = 30
    sampled_views: int = 3  # two-stage mode: input view and the extremes
    all_views: bool = False  # single-stage ablation: animate every training view
    softmax_beta: float = 1.0  # weight of the importance in softmax splatting
    importance_motion: float = 1.0  # importance term: speed / max speed (faster pixels win)
    importance_depth: float = 10.0  # importance term: disparity / max disparity (nearer wins), when depth is given
    hole_coverage: float = 1e-3  # pixels with less splatted (bilinear) coverage are holes, filled from the input
    video_crf: int = 18  # H.264 constant rate factor of the mp4 videos (0 lossless .. 51 worst)


@dataclass
class DynamicsConfig:
    iters: int = 250
    motion_init: bool = True  # --no-motion-init ablation: deformation learnt from zero
    all_views: bool = False  # --all-views ablation: single stage (no stage-1 fit) on the videos of every view
    single_stage_iters: int = 650  # iterations of the single-stage 4D training: stage 1's plus stage 2's
    fourier_order: int = 2  # per-Gaussian periodic residual: sin/cos of 1..order cycles per loop
    # learning rates: README "Recipe" (`bench pipeline` on river_0, side/circle LPIPS vs GT): position training at
    # 2e-4 and velocity at 1e-5 made each moving Gaussian drift on its own (grainy water, 0.054 -> 0.077)
    lr_deform: float = 2e-5  # Fourier coefficients of position (multiplied by the scene depth)
    lr_deform_rot_scale: float = 2e-3  # Fourier coefficients of rotation and log-scale
    lr_velocity: float = 0.0  # fine-tuning of the refined 3D velocity (scene depth units per frame); 0: kept as is
    lr_velocity_from_zero: float = 1e-5  # the --no-motion-init ablation learns the velocity from zero at this rate
    lr_colors: float = 1e-3
    lr_opacities: float = 1e-2
    ssim_weight: float = 0.2
    train_static: bool = False  # also fine-tune the colour and opacity of static Gaussians on the animated clips
    backing: float = 0.02  # a static copy of each moving Gaussian this much (relative depth) behind it; 0: none
    extent_radius: float = 2.0  # a moving draw is shown while it stays this many pixels (input view) from where
    # some moving Gaussian rests (dynamics/extent.py: no water above the top of a fall); 0: over its whole path
    moving_radius: float = 3.0  # a Gaussian moves when its nearest point moves and lies within this many pixels
    ablations: bool = False  # --ablations: also train the no-motion-init variant (the paper's Table III) and the
    # single-stage variant on every view's video (Table IV), and report both comparisons


@dataclass
class RenderConfig:
    trajectories: tuple[str, ...] = TRAJECTORIES
    custom: str | None = None  # JSON list of poses
    width: int | None = None  # default: working size
    height: int | None = None
    fps: int = 30
    num_frames: int | None = None  # default: animate.num_frames (one loop)
    loops: int = 1
    gif: bool = True
    fill_holes: bool = True  # inpaint what no Gaussian covers (seen past the scene's border) instead of black
    lossless: bool = False  # also write <path>.npy: the rendered uint8 frames before video encoding (for `eval`;
    # H.264 yuv420p at crf 18 alone costs ~0.04 SSIM and ~0.02 LPIPS on textured landscapes)


@dataclass
class RunConfig:
    preset: str = "preview"
    size: int = 512  # working size: long side of the photo in pixels
    max_input_pixels: int = 40_000_000  # larger inputs are refused
    min_input_side: int = 64
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads; 0 = the cores this process may use (its CPU affinity)
    seed: int = 0
    depth: DepthConfig = field(default_factory=DepthConfig)
    views: ViewsConfig = field(default_factory=ViewsConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    gaussians: GaussiansConfig = field(default_factory=GaussiansConfig)
    animate: AnimateConfig = field(default_factory=AnimateConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    render: RenderConfig = field(default_factory=RenderConfig)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def section(self, name: str) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(getattr(self, name))))


# top-level values every stage's results depend on (in every cache key, readable by every stage)
KEYED_TOP_LEVEL = ("size", "seed")
# the ablation switches and their normal values (`--no-ablations` sets these)
ABLATIONS_OFF = ("dynamics.motion_init=true", "dynamics.all_views=false", "animate.all_views=false",
                 "dynamics.ablations=false")


def declared_values(cfg: RunConfig, reads: tuple[str, ...]) -> dict[str, Any]:
    """The values named by `reads` ("section" or "section.key"), plus size and seed, as JSON-able data: what a
    stage's cache key holds."""
    out: dict[str, Any] = {k: getattr(cfg, k) for k in KEYED_TOP_LEVEL}
    for name in reads:
        section, _, key = name.partition(".")
        out[name] = cfg.section(section) if not key else cfg.section(section)[key]
    return out


class ConfigView:
    """A stage's read-only window on the RunConfig: size, seed and the sections or single values it declares;
    reading anything else raises UndeclaredConfigError (the value would be missing from the stage's cache key)."""

    def __init__(self, cfg: RunConfig, reads: tuple[str, ...], stage: str):
        self._cfg, self._stage = cfg, stage
        self._whole = {r for r in reads if "." not in r}
        self._keys: dict[str, set[str]] = {}
        for r in reads:
            if "." in r:
                section, key = r.split(".", 1)
                self._keys.setdefault(section, set()).add(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in KEYED_TOP_LEVEL:
            return getattr(self._cfg, name)
        if name in self._whole:  # a copy: what a stage changes in it stays in that stage
            return copy.copy(getattr(self._cfg, name))
        if name in self._keys:
            return _SectionView(getattr(self._cfg, name), name, self._keys[name], self._stage)
        raise UndeclaredConfigError(f"stage {self._stage} reads config {name!r} but does not declare it in "
                                    "pipeline.STAGES (its cache key would not change with it)")

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            raise AttributeError(f"stage {self._stage}: the config is read-only")
        object.__setattr__(self, name, value)


class _SectionView:
    """The declared values of one section (see ConfigView)."""

    def __init__(self, section: Any, name: str, keys: set[str], stage: str):
        self._section, self._name, self._keys, self._stage = section, name, keys, stage

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        if key in self._keys:
            return getattr(self._section, key)
        raise UndeclaredConfigError(f"stage {self._stage} reads config {self._name}.{key} but declares only "
                                    f"{', '.join(sorted(f'{self._name}.{k}' for k in self._keys))} of that section "
                                    "in pipeline.STAGES (its cache key would not change with it)")


def preset(name: str) -> RunConfig:
    """The config of a preset: `preview` (512 px, <= 6 CPU minutes) or `full` (1024 px, <= 30 CPU minutes)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = RunConfig(preset=name)
    if name == "full":  # one Gaussian per pixel at 1024 px (~900k Gaussians; README: its time on a 2-core CPU)
        cfg.size = 1024
        cfg.gaussians.iters = 400
        cfg.gaussians.densify_until = 300
        cfg.gaussians.max_gaussians = 1_500_000
        cfg.dynamics.iters = 250
        cfg.dynamics.single_stage_iters = cfg.gaussians.iters + cfg.dynamics.iters
    return cfg


def _coerce(value: str, current: Any, name: str) -> Any:
    if isinstance(current, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected true/false, got {value!r}")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, tuple) or current is None and value.startswith("["):
        items = json.loads(value) if value.startswith("[") else [v for v in value.split(",") if v]
        return tuple(items)
    if current is None:
        if value.lower() in ("none", "null", ""):
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply `section.key=value` (or top-level `key=value`) overrides, e.g. `gaussians.iters=500`."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        target: Any = cfg
        for p in parts[:-1]:
            if not hasattr(target, p) or not dataclasses.is_dataclass(getattr(target, p)):
                raise ValueError(f"override {item!r}: no config section {p!r}")
            target = getattr(target, p)
        leaf = parts[-1]
        if not hasattr(target, leaf) or dataclasses.is_dataclass(getattr(target, leaf)):
            raise ValueError(f"override {item!r}: no config value {key!r}")
        setattr(target, leaf, _coerce(value.strip(), getattr(target, leaf), key))
    validate(cfg)
    return cfg


CHOICES = {"device": DEVICES, "depth.backend": DEPTH_BACKENDS, "depth.file_kind": DEPTH_FILE_KINDS,
           "views.inpaint": INPAINT_METHODS, "motion.interpolation": INTERPOLATIONS, "motion.unhinted": UNHINTED,
           "gaussians.backend": RASTER_BACKENDS, "gaussians.init": GAUSSIAN_INITS}
# values that must be > 0 (or >= 1 for counts); every other number must be finite and >= 0 (seed: any integer)
POSITIVE = ("size", "max_input_pixels", "min_input_side", "depth.fov_deg", "depth.near", "depth.sky_depth",
            "depth.max_ground_depth", "depth.guided_eps", "views.num_views", "views.point_radius",
            "motion.hint_frames", "motion.hint_points", "gaussians.downsample", "gaussians.sh_up_every",
            "gaussians.init_sigma_px", "gaussians.init_opacity",
            "gaussians.densify_every", "gaussians.max_gaussians", "gaussians.batch_views", "animate.num_frames",
            "animate.fps", "animate.sampled_views", "render.width", "render.height", "render.fps",
            "render.num_frames", "render.loops")


def validate(cfg: RunConfig) -> None:
    """Raise ValueError naming the first config value out of its range."""
    for key, value in _flat(cfg):
        if key in CHOICES and value not in CHOICES[key]:
            raise ValueError(f"config {key}={value!r}: choose one of {', '.join(CHOICES[key])}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or key in ("seed", "motion.speed"):
            continue
        if not math.isfinite(value) or value < 0 or (key in POSITIVE and value <= 0):
            raise ValueError(f"config {key}={value!r}: must be {'> 0' if key in POSITIVE else 'finite and >= 0'}")
    if not cfg.depth.fov_deg < 180:
        raise ValueError(f"config depth.fov_deg={cfg.depth.fov_deg!r}: must be below 180")
    from .gaussians.model import OPACITY_MAX

    if not cfg.gaussians.init_opacity < OPACITY_MAX:
        raise ValueError(f"config gaussians.init_opacity={cfg.gaussians.init_opacity!r}: must be below {OPACITY_MAX}")
    if cfg.animate.num_frames < 2:
        raise ValueError(f"config animate.num_frames={cfg.animate.num_frames}: a loop needs at least 2 frames")
    if cfg.motion.speed is not None and not (math.isfinite(cfg.motion.speed) and cfg.motion.speed >= 0):
        raise ValueError(f"config motion.speed={cfg.motion.speed!r}: must be finite and >= 0")
    unknown = [t for t in cfg.render.trajectories if t not in TRAJECTORIES]
    if unknown:
        raise ValueError(f"config render.trajectories: unknown {unknown[0]!r}; choose from {', '.join(TRAJECTORIES)}")


def _flat(cfg: RunConfig) -> Iterator[tuple[str, Any]]:
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            for g in dataclasses.fields(v):
                yield f"{f.name}.{g.name}", getattr(v, g.name)
        else:
            yield f.name, v


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Inverse of RunConfig.to_dict (unknown keys are ignored, missing ones keep their defaults)."""
    cfg = RunConfig()
    for f in dataclasses.fields(cfg):
        if f.name not in data:
            continue
        cur = getattr(cfg, f.name)
        if dataclasses.is_dataclass(cur):
            for g in dataclasses.fields(cur):
                if g.name in data[f.name]:
                    v = data[f.name][g.name]
                    setattr(cur, g.name, tuple(v) if isinstance(v, list) else v)
        else:
            setattr(cfg, f.name, data[f.name])
    return cfg
