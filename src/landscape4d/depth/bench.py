"""Benchmark of a depth backend against ground-truth depth: scale-free metrics and the row-ramp baseline.

    landscape4d bench depth DIR [--backend prior] [--size 384]
    landscape4d bench depth --synthetic 9 [--synthetic-dir DIR]   # synthetic scenes with exact depth
    landscape4d bench depth DIR --ablate                          # the prior with each of its cues off in turn

DIR holds `rgb/<name>.png|jpg` and `depth/<name>.png|npy`: a 16-bit PNG holds metres * 256 (the KITTI / ORFD
convention), a .npy holds depth in any unit; 0 or non-finite = no ground truth. A flat folder of `<name>.jpg` +
`<name>_depth.npy|png` is read too.

Metrics (per photo, then the mean over photos), on the pixels with ground truth, the prediction bilinearly resized
to the ground truth's size:
- ordinal: random pixel pairs whose true depths differ by a ratio > 1.1; the fraction ordered correctly (a tie in
  the prediction counts one half);
- AbsRel = mean |d - g| / g and delta<1.25 = share of max(d/g, g/d) < 1.25, after scaling d by median(g)/median(d).
The ramp baseline ("lower in the image is nearer") is a ground plane with its horizon at the top row:
depth = H / (row + 0.5).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..config import DEPTH_BACKENDS, DepthConfig

PHOTO_EXTS = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class Sample:
    name: str
    rgb: Path
    depth: Path


@dataclass
class Scores:
    ordinal: float
    absrel: float
    delta1: float
    pairs: int = 0

    def as_dict(self) -> dict:
        return {"ordinal": self.ordinal, "absrel": self.absrel, "delta1": self.delta1, "pairs": self.pairs}


@dataclass
class Row:
    """One method's scores on one folder: the mean over photos, and each photo's."""
    method: str
    mean: Scores
    per_photo: dict[str, Scores] = field(default_factory=dict)


def find_samples(folder: str | Path) -> list[Sample]:
    """The (photo, depth) pairs of a folder, sorted by name. Raises FileNotFoundError naming the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    out = []
    if (folder / "rgb").is_dir() and (folder / "depth").is_dir():
        for p in sorted((folder / "rgb").iterdir()):
            d = _first_existing(folder / "depth", p.stem, ("", ))
            if p.suffix.lower() in PHOTO_EXTS and d is not None:
                out.append(Sample(p.stem, p, d))
    else:
        for p in sorted(folder.iterdir()):
            d = _first_existing(folder, p.stem, ("_depth", ))
            if p.suffix.lower() in PHOTO_EXTS and not p.stem.endswith("_depth") and d is not None:
                out.append(Sample(p.stem, p, d))
    if not out:
        raise FileNotFoundError(f"{folder}: no photo with ground-truth depth (rgb/NAME.png + depth/NAME.png|npy, "
                                "or NAME.jpg + NAME_depth.npy|png)")
    return out


def _first_existing(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    for s in suffixes:
        for ext in (".npy", ".png"):
            p = folder / f"{stem}{s}{ext}"
            if p.exists():
                return p
    return None


def read_gt_depth(path: str | Path) -> np.ndarray:
    """-> (H, W) float64 depth, 0 where there is no ground truth. 16-bit PNG: metres * 256."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        d = np.asarray(np.load(path, allow_pickle=False), np.float64).squeeze()
    else:
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if a is None or a.ndim != 2 or a.dtype != np.uint16:
            raise ValueError(f"{path}: expected a single-channel 16-bit PNG (metres * 256)")
        d = a.astype(np.float64) / 256.0
    if d.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D depth map, got shape {d.shape}")
    return np.where(np.isfinite(d) & (d > 0), d, 0.0)


def read_photo(path: str | Path, size: int) -> np.ndarray:
    """-> (h, w, 3) float32 in [0, 1], the long side resized to `size`."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not a readable photo")
    h, w = bgr.shape[:2]
    s = size / max(h, w)
    if s != 1:
        bgr = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def ramp_depth(h: int, w: int) -> np.ndarray:
    """The row-ramp baseline (h, w): a ground plane whose horizon is the top row, lower = nearer."""
    v = np.arange(h, dtype=np.float64) + 0.5
    return np.repeat((h / v)[:, None], w, axis=1)


def score(pred: np.ndarray, gt: np.ndarray, rng: np.random.Generator, pairs: int = 20000,
          min_ratio: float = 1.1) -> Scores:
    """pred (H, W) > 0 any scale, gt (H, W) with 0 = invalid -> Scores (scale-free)."""
    valid = gt > 0
    p, g = pred[valid].astype(np.float64), gt[valid]
    if g.size < 2:
        return Scores(float("nan"), float("nan"), float("nan"), 0)
    i, j = rng.integers(0, g.size, pairs), rng.integers(0, g.size, pairs)
    ratio = np.maximum(g[i], g[j]) / np.minimum(g[i], g[j])
    keep = ratio > min_ratio
    i, j = i[keep], j[keep]
    agree = np.sign(p[i] - p[j]) * np.sign(g[i] - g[j])
    ordinal = float(np.mean(np.where(agree == 0, 0.5, agree > 0))) if i.size else float("nan")
    p = p * (np.median(g) / max(np.median(p), 1e-12))
    absrel = float(np.mean(np.abs(p - g) / g))
    delta1 = float(np.mean(np.maximum(p / g, g / np.maximum(p, 1e-12)) < 1.25))
    return Scores(ordinal, absrel, delta1, int(i.size))


def mean_scores(per: dict[str, Scores]) -> Scores:
    vals = list(per.values())
    return Scores(*(float(np.nanmean([getattr(s, k) for s in vals])) for k in ("ordinal", "absrel", "delta1")),
                  int(sum(s.pairs for s in vals)))


def predict(image: np.ndarray, cfg: DepthConfig, device: str = "cpu", cues: frozenset[str] | None = None,
            log=None) -> tuple[np.ndarray, dict]:
    """One backend's depth (h, w) for image (h, w, 3); `cues` switches prior cues off (ablation)."""
    if cues is not None and cfg.backend == "prior":
        from .prior import landscape_prior

        return landscape_prior(image, cfg, cues=cues)
    from . import estimate_depth

    return estimate_depth(image, cfg, device, **({"log": log} if log else {}))


def _once(seen: set[str]):
    """A log function that prints each distinct line once (the auto backend's choice, not once per photo)."""
    def log(line: str) -> None:
        if line not in seen:
            seen.add(line)
            print(line, file=sys.stderr)
    return log


def evaluate(samples: list[Sample], methods: dict[str, tuple[DepthConfig, frozenset[str] | None]], size: int,
             pairs: int = 20000, seed: int = 0, device: str = "cpu") -> tuple[list[Row], dict]:
    """Score every method (and the ramp) on every sample -> (rows, info: backends used, seconds)."""
    per: dict[str, dict[str, Scores]] = {m: {} for m in [*methods, "ramp"]}
    info: dict = {"seconds": {m: 0.0 for m in methods}, "backend": {}}
    log = _once(set())
    for k, s in enumerate(samples):
        gt = read_gt_depth(s.depth)
        image = read_photo(s.rgb, size)
        for name, (cfg, cues) in methods.items():
            t0 = time.perf_counter()
            depth, meta = predict(image, cfg, device, cues, log)
            info["seconds"][name] += time.perf_counter() - t0
            info["backend"][name] = {"backend": meta.get("backend", cfg.backend), "model": meta.get("model")}
            up = cv2.resize(depth.astype(np.float32), gt.shape[::-1], interpolation=cv2.INTER_LINEAR)
            per[name][s.name] = score(up, gt, np.random.default_rng([seed, k]), pairs)
        per["ramp"][s.name] = score(ramp_depth(*gt.shape), gt, np.random.default_rng([seed, k]), pairs)
    return [Row(m, mean_scores(v), v) for m, v in per.items()], info


def write_synthetic(folder: str | Path, count: int, width: int = 320, height: int = 180) -> Path:
    """Write `count` synthetic scenes (river, waterfall, lake in turn, seeds 0, 1, ...) as rgb/NAME.png +
    depth/NAME.npy (exact z-depth, sky = 0: it has no true depth). Scenes already written are kept."""
    from ..evaluation.scenes import KINDS
    from ..evaluation.synthetic import generate_scene
    from ..io.atomic import write_npy
    from ..io.images import save_png

    folder = Path(folder)
    for n in range(count):
        kind, seed = KINDS[n % len(KINDS)], n // len(KINDS)
        name = f"{kind}{seed}_{width}x{height}"
        if (folder / "depth" / f"{name}.npy").exists() and (folder / "rgb" / f"{name}.png").exists():
            continue
        s = generate_scene(kind, seed, width, height, num_frames=2, num_hints=0)
        save_png(folder / "rgb" / f"{name}.png", s.image)
        write_npy(folder / "depth" / f"{name}.npy", np.where(s.sky, 0.0, s.depth).astype(np.float32))
    return folder


def format_table(rows: list[Row], title: str) -> str:
    lines = [title, f"{'method':<26}{'ordinal':>9}{'AbsRel':>9}{'d<1.25':>9}{'pairs':>9}"]
    for r in rows:
        m = r.mean
        lines.append(f"{r.method:<26}{m.ordinal:>9.3f}{m.absrel:>9.3f}{m.delta1:>9.3f}{m.pairs:>9d}")
    return "\n".join(lines)


def depth_config(backend: str, model: str | None, overrides: list[str]) -> DepthConfig:
    """The DepthConfig of a bench run; overrides are `key=value` of the depth section (checked like the CLI's)."""
    from ..config import RunConfig, apply_overrides

    cfg = RunConfig()
    cfg.depth.backend = backend
    if model:
        cfg.depth.model = model
    apply_overrides(cfg, [f"depth.{o}" for o in overrides])
    return cfg.depth


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="landscape4d bench depth", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", help="rgb/ + depth/ folder of photos with ground-truth depth")
    p.add_argument("--backend", choices=DEPTH_BACKENDS, default="prior")
    p.add_argument("--model", help="Depth Anything V2 hub id or local folder (backends auto, depth-anything-v2)")
    p.add_argument("--size", type=int, default=384, help="working size: long side of the photo (default 384)")
    p.add_argument("--pairs", type=int, default=20000, help="random pixel pairs per photo (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--synthetic", type=int, default=0, metavar="N", help="also score N synthetic scenes")
    p.add_argument("--synthetic-dir", help="where the synthetic scenes are written / reused "
                                            "(default: a folder in the system temp dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a depth config value, e.g. --set max_ground_depth=16 (repeatable)")
    p.add_argument("--ablate", action="store_true", help="prior only: each cue off in turn")
    p.add_argument("--per-photo", action="store_true", help="print each photo's scores too")
    p.add_argument("--json", help="write all scores to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    folders: list[tuple[str, Path]] = []
    if args.folder:
        folders.append((args.folder, Path(args.folder)))
    if args.synthetic > 0:
        import tempfile

        out = Path(args.synthetic_dir or Path(tempfile.gettempdir()) / "landscape4d-depth-synthetic")
        folders.append((f"synthetic ({args.synthetic} scenes)", write_synthetic(out, args.synthetic)))
    if not folders:
        print("landscape4d bench depth: error: give a FOLDER, --synthetic N, or both", file=sys.stderr)
        return 2
    try:
        cfg = depth_config(args.backend, args.model, args.set)
    except ValueError as e:
        print(f"landscape4d bench depth: error: {e}", file=sys.stderr)
        return 2
    methods: dict[str, tuple[DepthConfig, frozenset[str] | None]] = {args.backend: (cfg, None)}
    if args.ablate:
        from .prior import CUES

        cfg = dataclasses.replace(cfg, backend="prior")
        methods = {"prior (all cues)": (cfg, CUES)}
        methods.update({f"prior without {c}": (cfg, CUES - {c}) for c in sorted(CUES)})
    report = {}
    for title, folder in folders:
        try:
            samples = find_samples(folder)
        except FileNotFoundError as e:
            print(f"landscape4d bench depth: error: {e}", file=sys.stderr)
            return 2
        rows, info = evaluate(samples, methods, args.size, args.pairs, args.seed, args.device)
        print(format_table(rows, f"{title}: {len(samples)} photos, working size {args.size}"))
        for name, used in info["backend"].items():
            print(f"  {name}: backend {used['backend']}" + (f", model {used['model']}" if used["model"] else "")
                  + f", {info['seconds'][name] / len(samples):.2f} s/photo")
        if args.per_photo:
            for r in rows:
                for n, s in r.per_photo.items():
                    print(f"  {r.method:<24}{n:<28}{s.ordinal:8.3f}{s.absrel:8.3f}{s.delta1:8.3f}")
        report[title] = {"photos": len(samples), "size": args.size, **info,
                         "methods": {r.method: {"mean": r.mean.as_dict(),
                                                "per_photo": {n: s.as_dict() for n, s in r.per_photo.items()}}
                                     for r in rows}}
    if args.json:
        from ..io.atomic import write_json

        write_json(Path(args.json), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
