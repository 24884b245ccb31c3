"""Rasterizer speed and memory: forward / backward seconds and peak memory per backend and scene size.

    .venv/bin/python benchmarks/bench_rasterizer.py [--quick] [--threads 2] [--repeats 3]

Scenes: N random Gaussians inside the camera frustum (depth 2..8), anisotropic, random rotations, projected
standard deviations log-normal around 2 px at 256 px width (scaled with the image width), opacities 0.1..1.
Times are wall-clock forward / backward (best of --repeats after a warm-up); "cpu s" is the process CPU time
of forward + backward (all threads), which is steadier than wall time on a shared machine. CPU memory: torch's
allocations are invisible to tracemalloc, so it is the growth of the process's maximum resident set size
(resource.getrusage) over the run, each configuration in a fresh subprocess; CUDA memory is
torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch


def make_scene(n: int, width: int, height: int, seed: int = 0, device: str = "cpu", dtype=torch.float32):
    """Random Gaussians filling the view of a camera at the origin looking down +z (OpenCV axes)."""
    g = torch.Generator().manual_seed(seed)
    f = 0.9 * width
    z = 2.0 + 6.0 * torch.rand(n, generator=g)
    u = torch.rand(n, generator=g) * width * 1.1 - 0.05 * width
    v = torch.rand(n, generator=g) * height * 1.1 - 0.05 * height
    means = torch.stack([(u - width / 2) / f * z, (v - height / 2) / f * z, z], dim=-1)
    sigma_px = 2.0 * (width / 256) * torch.exp(0.5 * torch.randn(n, 3, generator=g))
    scales = sigma_px * z[:, None] / f
    quats = torch.randn(n, 4, generator=g)
    opacities = 0.1 + 0.9 * torch.rand(n, generator=g)
    colors = torch.rand(n, 3, generator=g)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    viewmat = torch.eye(4)
    to = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
    return [to(t) for t in (means, quats, scales, opacities, colors)], to(viewmat), to(K)


def run_one(backend: str, device: str, n: int, size: int, repeats: int) -> dict:
    from landscape4d.gaussians import rasterize

    params, viewmat, K = make_scene(n, size, size, device=device)
    params = [p.requires_grad_() for p in params]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    fwd, bwd, cpu = [], [], []
    for i in range(repeats + 1):  # first run is a warm-up
        for p in params:
            p.grad = None
        sync()
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = rasterize(*params, viewmat, K, size, size, backend=backend)
        sync()
        t1 = time.perf_counter()
        loss = out.color.square().sum() + out.depth.sum() * 1e-3
        loss.backward()
        sync()
        t2 = time.perf_counter()
        c2 = time.process_time()
        if i > 0:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            cpu.append(c2 - c0)
        visible = int((out.radii > 0).sum())
    if device == "cuda":
        mem = torch.cuda.max_memory_allocated() / 2**20
    else:
        mem = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024  # KiB -> MiB
    return {
        "backend": backend,
        "device": device,
        "n": n,
        "size": size,
        "forward_s": min(fwd),
        "backward_s": min(bwd),
        "total_s": min(a + b for a, b in zip(fwd, bwd)),
        "cpu_s": min(cpu),
        "peak_mem_mib": mem,
        "visible": visible,
    }


def _run_isolated(backend: str, device: str, n: int, size: int, repeats: int, threads: int) -> dict:
    """Each configuration in a fresh process so the max-RSS growth belongs to it alone."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import json, sys, torch; sys.path.insert(0, {here!r});"
        f"torch.set_num_threads({threads});"
        "from bench_rasterizer import run_one;"
        f"print(json.dumps(run_one({backend!r}, {device!r}, {n}, {size}, {repeats})))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode != 0:
        return {"backend": backend, "device": device, "n": n, "size": size, "error": res.stderr.strip()[-300:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


def run(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark, print the table and return its rows."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10k and 50k Gaussians at 256 px only")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)

    sizes = [256] if args.quick else [256, 512]
    counts = [10_000, 50_000] if args.quick else [10_000, 50_000, 200_000]
    configs = [("torch", "cpu")]
    if torch.cuda.is_available():
        from landscape4d.gaussians.raster_gsplat import gsplat_available

        configs.append(("torch", "cuda"))
        if gsplat_available():
            configs.append(("gsplat", "cuda"))
    rows = []
    print(f"torch {torch.__version__}, {args.threads} CPU threads; timings are the best of {args.repeats} "
          "(noisy on a shared machine)")
    hdr = (f"{'backend':8} {'device':6} {'N':>8} {'px':>5} {'forward s':>10} {'backward s':>11} {'total s':>8} "
           f"{'cpu s':>7} {'peak MiB':>9}")
    print(hdr)
    print("-" * len(hdr))
    for backend, device in configs:
        for size in sizes:
            for n in counts:
                r = _run_isolated(backend, device, n, size, args.repeats, args.threads)
                rows.append(r)
                if "error" in r:
                    print(f"{backend:8} {device:6} {n:>8} {size:>5}  error: {r['error']}")
                else:
                    print(f"{backend:8} {device:6} {n:>8} {size:>5} {r['forward_s']:>10.3f} {r['backward_s']:>11.3f} "
                          f"{r['total_s']:>8.3f} {r['cpu_s']:>7.3f} {r['peak_mem_mib']:>9.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
