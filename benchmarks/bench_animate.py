"""Speed of the single-image animator: seconds per looping video (default 60 frames at 512x512).

Usage: python benchmarks/bench_animate.py [--size 512] [--frames 60] [--mask-fraction 1.0 0.5] [--threads 1 2]
Runs on CPU, and on CUDA when present (or only --device). Prints seconds; CPU timings on a shared machine are
noisy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from landscape4d.animate import animate_image, integrate_points
from landscape4d.config import AnimateConfig


def _inputs(size: int, mask_fraction: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    H = W = size
    yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    img = np.stack([0.5 + 0.3 * np.sin(xx / 9.0 + c) * np.cos(yy / 13.0 - c) for c in range(3)], -1)
    img = (img + 0.05 * rng.random((H, W, 3))).astype(np.float32)
    mask = yy >= int(round(H * (1 - mask_fraction)))  # the lower part of the image moves ("water")
    M = np.zeros((H, W, 2), np.float32)
    M[..., 0] = -1.2 + 0.3 * np.sin(yy / 20.0)
    M[..., 1] = 0.2 * np.cos(xx / 25.0)
    return img, M, mask


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(device: torch.device, size: int, frames: int, mask_fraction: float, repeat: int) -> dict[str, float]:
    img, M, mask = _inputs(size, mask_fraction)
    cfg = AnimateConfig(num_frames=frames)
    animate_image(img[:64, :64], M[:64, :64], mask[:64, :64], 4, cfg, device=device)  # warm-up
    Mt = torch.from_numpy(M).to(device)
    pts = torch.nonzero(torch.from_numpy(mask)).flip(-1).float().to(device)
    best = {"integrate_s": float("inf"), "animate_s": float("inf"), "animate_cpu_s": float("inf")}
    for _ in range(repeat):
        _sync(device)
        t0 = time.perf_counter()
        integrate_points(Mt, pts, frames, signs=(1.0, -1.0))
        _sync(device)
        t1, c1 = time.perf_counter(), time.process_time()
        animate_image(img, M, mask, frames, cfg, device=device)
        _sync(device)
        t2, c2 = time.perf_counter(), time.process_time()
        best["integrate_s"] = min(best["integrate_s"], t1 - t0)
        best["animate_s"] = min(best["animate_s"], t2 - t1)
        best["animate_cpu_s"] = min(best["animate_cpu_s"], c2 - c1)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--mask-fraction", type=float, nargs="+", default=[1.0, 0.5])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="torch CPU thread counts to try (on a busy machine 1 thread can beat 2: OpenMP waits)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    args = ap.parse_args(argv)
    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(f"animate: {args.frames} frames at {args.size}x{args.size}, best of {args.repeat}")
    for dev in devices:
        for threads in args.threads if dev.type == "cpu" else args.threads[:1]:
            torch.set_num_threads(threads)
            label = f"cpu, {threads} thread{'s' if threads > 1 else ''}" if dev.type == "cpu" else dev.type
            for frac in args.mask_fraction:
                r = bench(dev, args.size, args.frames, frac, args.repeat)
                print(f"  {label:14s} mask {frac:4.0%}: {r['animate_s']:7.3f} s per video (process CPU time "
                      f"{r['animate_cpu_s']:.3f} s; integration of both field sets {r['integrate_s']:.3f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
