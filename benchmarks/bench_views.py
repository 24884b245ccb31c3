"""Benchmark: seconds and peak memory of the depth and views stages on a 1280x720 photo (goal: under 20 s together
for 25 views at 512 px on 2 CPU cores).

    .venv/bin/landscape4d bench views [--size 512] [--views 25]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="landscape4d bench views", description=__doc__)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--views", type=int, default=25)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    from landscape4d.cli import main as cli
    from landscape4d.demo import make_demo_input

    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_demo_input(Path(tmp) / "in", 1280, 720)
        run = Path(tmp) / "run"
        code = cli(["views", str(inputs["image"]), "--mask", str(inputs["mask"]), "--hints", str(inputs["hints"]),
                    "-o", str(run), "--size", str(args.size), "--num-views", str(args.views), "--device",
                    args.device])
        if code:
            return code
        rep = json.loads((run / "report.json").read_text())["stages"]
    total = rep["depth"]["seconds"] + rep["views"]["seconds"]
    print(f"photo 1280x720 -> working size {args.size} px, {args.views} views, device {args.device}")
    print(f"{'stage':<8} {'seconds':>8} {'peak RSS MB':>12}")
    for s in ("depth", "views"):
        print(f"{s:<8} {rep[s]['seconds']:>8.2f} {rep[s]['peak_rss_mb']:>12.0f}")
    print(f"{'total':<8} {total:>8.2f}   (goal < 20 s on 2 CPU cores)")
    print(f"mean hole fraction before inpainting: {rep['views']['metrics']['hole_fraction_mean']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
