"""Rasterizer speed and memory: forward / backward seconds and peak memory per backend, scene size and thread count.

    landscape4d bench rasterizer [--quick] [--threads 1,2] [--repeats 3] [--json rows.json]

Scenes: N random Gaussians inside the camera frustum (depth 2..8), anisotropic, random rotations, projected
standard deviations log-normal around 2 px at 256 px width (scaled with the image width), opacities 0.1..1.
The loss is sum(colour^2) + 1e-3 sum(depth), so the backward runs through colour and depth.

Timing: for each scene and thread count one fresh process runs every CPU backend (torch, numba) on the same
scene, a warm-up each (numba kernels compiled or loaded from the disk cache here), then --repeats rounds in which
the backends take turns (order alternating), so that a load change on a shared machine hits all of them alike;
the table shows the best forward and backward seconds of the rounds, and "cpu s" the process CPU time of the
best forward + backward (all threads). "x torch": the torch backend's total over this backend's, same threads.
Peak memory: the growth of the resident set during one forward + backward of the scene in a process of its own,
after a tiny warm-up scene (so that JIT compilation is not counted): Linux's peak-RSS counter is reset through
/proc/self/clear_refs just before the run (without it: the growth of ru_maxrss). CUDA rows (when available):
torch.cuda.max_memory_allocated. Threads: torch.set_num_threads(t); numba follows torch's count.
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

CPU_BACKENDS = ("torch", "numba")


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


def _step(backend: str, params, viewmat, K, size: int, sync) -> tuple[float, float, float, int]:
    """One forward + backward: (forward s, backward s, process CPU s, visible Gaussians)."""
    from landscape4d.gaussians import rasterize

    for p in params:
        p.grad = None
    sync()
    c0, t0 = time.process_time(), time.perf_counter()
    out = rasterize(*params, viewmat, K, size, size, backend=backend)
    sync()
    t1 = time.perf_counter()
    (out.color.square().sum() + out.depth.sum() * 1e-3).backward()
    sync()
    t2, c2 = time.perf_counter(), time.process_time()
    return t1 - t0, t2 - t1, c2 - c0, int((out.radii > 0).sum())


def time_backends(backends: list[str], device: str, n: int, size: int, repeats: int) -> list[dict]:
    """Best-of-`repeats` timings of each backend on one scene, the backends taking turns round by round."""
    params, viewmat, K = make_scene(n, size, size, device=device)
    params = [p.requires_grad_() for p in params]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    runs = {b: [] for b in backends}
    visible = {}
    for b in backends:  # warm-up
        visible[b] = _step(b, params, viewmat, K, size, sync)[3]
    for r in range(repeats):
        for b in (backends if r % 2 == 0 else backends[::-1]):
            runs[b].append(_step(b, params, viewmat, K, size, sync)[:3])
    rows = []
    for b in backends:
        best = min(runs[b], key=lambda x: x[0] + x[1])
        rows.append({"backend": b, "device": device, "n": n, "size": size, "threads": torch.get_num_threads(),
                     "forward_s": min(x[0] for x in runs[b]), "backward_s": min(x[1] for x in runs[b]),
                     "total_s": best[0] + best[1], "cpu_s": best[2], "visible": visible[b]})
    return rows


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_memory(backend: str, device: str, n: int, size: int) -> float:
    """MiB: growth of the resident set (CPU) or of CUDA allocations during one forward + backward."""
    params, viewmat, K = make_scene(n, size, size, device=device)
    params = [p.requires_grad_() for p in params]
    tiny = [p.detach().clone().requires_grad_() for p in make_scene(64, 32, 32, device=device)[0]]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    _step(backend, tiny, viewmat, make_scene(64, 32, 32, device=device)[2], 32, sync)  # JIT, lazy imports
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        _step(backend, params, viewmat, K, size, sync)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current resident set
        reset = True
    except OSError:
        reset = False
    base = _status_kib("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _step(backend, params, viewmat, K, size, sync)
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(0, peak - base) / 1024


def _subprocess(call: str, threads: int) -> object:
    """Run bench_rasterizer.<call> in a fresh process with `threads` torch threads; its JSON result."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import json, sys, torch; sys.path.insert(0, {here!r}); torch.set_num_threads({threads}); "
            f"import bench_rasterizer as b; print(json.dumps(b.{call}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": res.stderr.strip()[-300:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _print_row(r: dict, torch_total: float | None) -> None:
    head = f"{r['backend']:7} {r['device']:5} {r['n']:>8} {r['size']:>5} {r['threads']:>4}"
    if "error" in r:
        print(f"{head}  error: {r['error']}", flush=True)
        return
    speed = f"{torch_total / r['total_s']:>8.1f}" if torch_total else f"{'':>8}"
    print(f"{head} {r['forward_s']:>9.3f} {r['backward_s']:>9.3f} {r['total_s']:>8.3f} {r['cpu_s']:>7.3f} "
          f"{r['peak_mem_mib']:>9.1f} {speed}", flush=True)


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10k and 50k Gaussians at 256 px only")
    ap.add_argument("--threads", default=None,
                    help="comma-separated torch thread counts (default: 1 and all cores this process may use)")
    ap.add_argument("--backends", default=",".join(CPU_BACKENDS), help="CPU backends to compare")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the rows to this JSON file")
    return ap.parse_args(argv)


def run(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark, print the table and return its rows."""
    args = _args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = sorted({int(t) for t in args.threads.split(",")}) if args.threads else sorted({1, cores})
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    scenes = [(256, 10_000), (256, 50_000)] if args.quick else [
        (256, 10_000), (256, 50_000), (256, 200_000), (512, 10_000), (512, 50_000), (512, 200_000)]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"torch {torch.__version__}; {cores} cores; load average before: {load}; timings: best of {args.repeats} "
          "interleaved rounds (noisy on a shared machine)")
    hdr = (f"{'backend':7} {'dev':5} {'N':>8} {'px':>5} {'thr':>4} {'fwd s':>9} {'bwd s':>9} {'total s':>8} "
           f"{'cpu s':>7} {'peak MiB':>9} {'x torch':>8}")
    print(hdr + "\n" + "-" * len(hdr))
    rows = []
    for size, n in scenes:
        mem = {b: _subprocess(f"peak_memory({b!r}, 'cpu', {n}, {size})", 1) for b in backends}
        for t in threads:
            timed = _subprocess(f"time_backends({backends!r}, 'cpu', {n}, {size}, {args.repeats})", t)
            timed = timed if isinstance(timed, list) else [dict(timed, backend=b, device="cpu", n=n, size=size,
                                                               threads=t) for b in backends]
            ref = next((r["total_s"] for r in timed if r["backend"] == "torch" and "error" not in r), None)
            for r in timed:
                m = mem[r["backend"]]
                r["peak_mem_mib"] = m if isinstance(m, float) else float("nan")
                rows.append(r)
                _print_row(r, ref)
    rows += _cuda_rows(scenes, args.repeats)
    print(f"load average after: {os.getloadavg() if hasattr(os, 'getloadavg') else None}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


def _cuda_rows(scenes, repeats: int) -> list[dict]:
    if not torch.cuda.is_available():
        return []
    from landscape4d.gaussians.raster_gsplat import gsplat_available

    backends = ["torch"] + (["gsplat"] if gsplat_available() else [])
    rows = []
    for size, n in scenes:
        timed = _subprocess(f"time_backends({backends!r}, 'cuda', {n}, {size}, {repeats})", 1)
        for r in (timed if isinstance(timed, list) else []):
            r["peak_mem_mib"] = _subprocess(f"peak_memory({r['backend']!r}, 'cuda', {n}, {size})", 1)
            rows.append(r)
            _print_row(r, None)
    return rows


if __name__ == "__main__":
    main()
