"""Benchmark: frame rate of the web viewer in headless Chromium on a demo scene of about N Gaussians.

    python -m landscape4d.viewer.bench --gaussians 200000 --size 640x480 --seconds 10

Needs the built assets (`make viewer`), node, viewer/web/node_modules (playwright-core) and Chromium. Prints the
requestAnimationFrame rate while playing and while paused. Without a GPU Chromium renders with SwiftShader (software
GL), which is far slower than any GPU: the numbers then measure this machine's CPU, not the viewer on a real device.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

WEB = Path(__file__).resolve().parents[3] / "viewer" / "web"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gaussians", type=int, default=200_000,
                    help="about this many Gaussian draws (a moving Gaussian is drawn at two phases)")
    ap.add_argument("--size", default="640x480", help="browser window WxH")
    ap.add_argument("--seconds", type=float, default=10.0, help="measuring time, playing and paused each")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    from .bake import bake_web_scene
    from .demo_scene import make_demo_scene
    from .server import make_server

    # half of the plane moves and each moving Gaussian is drawn twice: draws = 1.5 * rows * cols, rows:cols = 3:4
    cells = args.gaussians / 1.5
    cols = max(4, round(math.sqrt(cells * 4 / 3)))
    rows = max(3, round(cells / cols))
    t0 = time.perf_counter()
    scene, header = make_demo_scene(cols=cols, rows=rows)
    ws = bake_web_scene(scene, header)
    bake_s = time.perf_counter() - t0
    server = make_server(ws, "127.0.0.1", 0)
    server.start_thread()
    try:
        proc = subprocess.run(["node", str(WEB / "test" / "measure_fps.mjs"), "--url", server.url, "--seconds",
                               str(args.seconds), "--size", args.size, "--chromium", args.chromium],
                              cwd=WEB, capture_output=True, text=True, timeout=1800)
    finally:
        server.close()
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    data_mb = sum(a.nbytes for _, a in ws.arrays()) / 1e6
    print(f"viewer fps: {res['numSplats']} Gaussians ({ws.num_moving} moving), window {res['width']}x{res['height']}, "
          f"{res['renderer']}")
    print(f"  bake {bake_s:.2f} s, scene data {data_mb:.1f} MB, page load {res['loadSeconds']:.1f} s")
    print(f"  playing {res['playingFps']:.2f} fps, paused {res['pausedFps']:.2f} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
