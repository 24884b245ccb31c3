"""The `view` and `export` sub-commands (wired into cli.py with `add_parsers` and `dispatch`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError, StageError

COMMANDS = ("view", "export")


def add_parsers(subparsers) -> None:
    from ..config import TRAJECTORIES
    from .annotate import add_parser as add_annotate_parser

    add_annotate_parser(subparsers)  # `annotate` (viewer/annotate.py)
    v = subparsers.add_parser(
        "view", help="play the 4D scene in a web browser (local server on loopback)",
        description="Serve a local web page that plays the 4D scene of RUN in real time (orbit/zoom camera from the "
                    "input view, play/pause, time scrubber, loop). Needs the viewer bundle: wheels and sdists built "
                    "with Node.js present carry it; in a source checkout `make install` builds it when npm is "
                    "there (or `make viewer`).")
    v.add_argument("run", metavar="RUN", help="run folder (or a scene4d.safetensors file)")
    v.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    v.add_argument("--host", default="127.0.0.1", help="loopback address to listen on: 127.0.0.1 (default), ::1 "
                                                       "or localhost; other addresses are refused")
    v.add_argument("--open", action="store_true", help="also open the page in the default browser")

    e = subparsers.add_parser(
        "export", help="export the 4D scene: web folder, .ply/.splat/.spz at a time, videos, PNG frames",
        description="Export the 4D scene of RUN to other tools. Any number of outputs can be asked for at once.")
    e.add_argument("run", metavar="RUN", help="run folder (or a scene4d.safetensors file; --side-by-side needs the "
                                              "run folder)")
    g = e.add_argument_group("static exports (the scene at loop time --time)")
    g.add_argument("--web", metavar="DIR", help="a static web page of the viewer (host the folder anywhere)")
    g.add_argument("--ply", metavar="FILE", help="INRIA 3DGS .ply")
    g.add_argument("--splat", metavar="FILE", help=".splat (antimatter15 layout, 32 bytes per Gaussian)")
    g.add_argument("--spz", metavar="FILE", help=".spz (Niantic, version 3) through the optional PyPI package gsply "
                                                 "(pip install 'gsply[spz]==0.4.6'); refused when it is missing")
    g.add_argument("--time", type=float, default=0.0, help="loop time t in [0, 1) of the static exports (default 0)")
    g = e.add_argument_group("4D exports (one whole loop)")
    g.add_argument("--ply-sequence", metavar="DIR", help="one INRIA .ply per frame of one loop, DIR/frame_0000.ply, "
                                                         "... (every draw in every frame, same order; for timeline "
                                                         "players such as SuperSplat)")
    g.add_argument("--splatv", metavar="FILE", help=".splatv (antimatter15 splaTV layout, read by gsplat.js): per "
                                                    "Gaussian a cubic motion, a linear rotation change and a Gaussian "
                                                    "time window, least-squares fitted to one loop")
    g = e.add_argument_group("videos (rendered along a camera path while the loop plays)")
    g.add_argument("--video", metavar="FILE", help="an .mp4 or .gif")
    g.add_argument("--frames", metavar="DIR", help="PNG frames frame_0000.png, ...")
    g.add_argument("--side-by-side", metavar="FILE", help="an .mp4 of input | depth | motion | novel view")
    g.add_argument("--width", type=int, help="frame (panel) width; default the input camera's")
    g.add_argument("--height", type=int, help="frame (panel) height; default keeps the input's aspect")
    g.add_argument("--fps", type=float, help="frames per second (default: the scene's)")
    g.add_argument("--trajectory", default="circle", choices=(*TRAJECTORIES, "custom"),
                   help="camera path (default circle); custom needs --custom-path")
    g.add_argument("--custom-path", metavar="JSON", help="JSON list of 4x4 camera-to-world poses")
    g.add_argument("--num-frames", type=int, help="number of frames (default: one loop per --loops); with "
                                                  "--ply-sequence, frames spread over one loop (default: the "
                                                  "scene's frames per loop)")
    g.add_argument("--loops", type=int, default=1, help="loops to render (default 1)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to render videos")


def dispatch(args: argparse.Namespace) -> int | None:
    """Run `view` or `export`; None when args.command is another command."""
    if getattr(args, "command", None) == "annotate":
        from .annotate import cmd_annotate

        return cmd_annotate(args)
    if getattr(args, "command", None) not in COMMANDS:
        return None
    try:
        return cmd_view(args) if args.command == "view" else cmd_export(args)
    except (InputError, StageError, ValueError) as e:
        print(f"landscape4d: error: {' '.join(str(e).split()) or type(e).__name__}", file=sys.stderr)
        return 2


def scene_path(run: str | Path) -> tuple[Path, Path | None]:
    """(scene4d.safetensors, run folder or None) for a RUN argument."""
    p = Path(run)
    if p.is_dir():
        return p / "dynamics" / "scene4d.safetensors", p
    if p.suffix == ".safetensors":
        return p, (p.parent.parent if p.parent.name == "dynamics" else None)
    if not p.exists():
        raise InputError(p, "no such run folder or scene file")
    raise InputError(p, "expected a run folder or a scene4d.safetensors file")


def check_run(run: str | Path) -> tuple[Path, Path | None]:
    """`scene_path` and the scene file's existence: the checks of RUN that need no loading (done before the
    viewer bundle is looked for, so a mistyped RUN is reported as such)."""
    path, run_dir = scene_path(run)
    if not path.is_file():
        raise InputError(path, "file not found (has the dynamics stage run?)" if run_dir is not None else
                         "no such scene file")
    return path, run_dir


def load_run_scene(run: str | Path, device: str = "cpu"):
    from ..dynamics.scene_file import load_scene4d

    path, run_dir = check_run(run)
    scene, header = load_scene4d(path, device)
    if "camera" not in header:
        raise InputError(path, "the scene header has no camera")
    return scene, header, run_dir


def cmd_view(args: argparse.Namespace) -> int:
    from .bake import bake_web_scene
    from .server import loopback_host, make_server, page_files

    loopback_host(args.host)  # refuse early, before loading anything
    check_run(args.run)  # the user's input first, then the bundle
    page_files()
    scene, header, _ = load_run_scene(args.run)
    server = make_server(bake_web_scene(scene, header), args.host, args.port)
    print(f"[landscape4d] view: {len(scene)} Gaussians; open {server.url} (Ctrl-C stops)", file=sys.stderr)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..gaussians.rasterize import resolve_backend
    from ..pipeline import resolve_device
    from .. import exports

    outputs = [args.web, args.ply, args.splat, args.spz, args.ply_sequence, args.splatv, args.video, args.frames,
               args.side_by_side]
    if not any(outputs):
        raise InputError(None, "export: nothing to do; give at least one of --web, --ply, --splat, --spz, "
                               "--ply-sequence, --splatv, --video, --frames, --side-by-side")
    if not 0.0 <= args.time < 1.0:
        raise InputError("--time", f"{args.time} is outside the loop [0, 1)")
    for opt, value in (("--width", args.width), ("--height", args.height), ("--num-frames", args.num_frames),
                       ("--loops", args.loops), ("--fps", args.fps)):
        if value is not None and value <= 0:
            raise InputError(opt, f"{value} must be positive")
    if args.video and Path(args.video).suffix.lower() not in (".mp4", ".gif"):
        raise InputError(args.video, "the video must be .mp4 or .gif")
    if args.side_by_side and Path(args.side_by_side).suffix.lower() != ".mp4":
        raise InputError(args.side_by_side, "the side-by-side video must be .mp4")
    if args.splatv and Path(args.splatv).suffix.lower() != ".splatv":
        raise InputError(args.splatv, "the splaTV file must end in .splatv")
    if args.ply_sequence and Path(args.ply_sequence).exists() and not Path(args.ply_sequence).is_dir():
        raise InputError(args.ply_sequence, "exists and is not a folder")
    if args.spz and not exports.spz_available():
        raise InputError(args.spz, f"writing .spz needs the optional package gsply: pip install "
                                   f"'{exports.SPZ_PACKAGE}'")
    check_run(args.run)
    if args.web:
        from .server import page_files

        page_files()
    videos = args.video or args.frames or args.side_by_side
    device = resolve_device(args.device) if videos else "cpu"
    scene, header, run_dir = load_run_scene(args.run, device)
    if args.side_by_side and run_dir is None:
        raise InputError(args.run, "--side-by-side needs the run folder (input, depth and motion pictures)")
    done = []
    if args.web:
        from .bake import bake_web_scene
        from .server import write_web_folder

        write_web_folder(bake_web_scene(scene.to("cpu"), header), args.web)
        done.append(f"web page {args.web} (serve the folder, e.g. python -m http.server -d {args.web})")
    if args.ply:
        exports.export_ply(scene, args.ply, args.time)
        done.append(f"ply {args.ply}")
    if args.splat:
        exports.export_splat(scene, args.splat, args.time)
        done.append(f"splat {args.splat}")
    if args.spz:
        exports.export_spz(scene, args.spz, args.time)
        done.append(f"spz {args.spz}")
    if args.ply_sequence or args.splatv:
        done += _export_4d(scene, header, args)
    if videos:
        spec = exports.VideoSpec(args.width, args.height, args.fps, args.trajectory, args.custom_path,
                                 args.num_frames, args.loops)
        backend = resolve_backend("auto", device)
        if args.side_by_side:  # read the still pictures first: a missing one fails before the long render
            exports.side_by_side_stills(run_dir)
        frames = exports.render_frames(scene, header, spec, backend, _progress())
        if args.video:
            info = exports.export_video(scene, header, args.video, spec, frames=frames)
            done.append(f"video {args.video} ({info['frames']} frames {info['width']}x{info['height']})")
        if args.frames:
            paths = exports.export_frames(scene, header, args.frames, spec, frames=frames)
            done.append(f"frames {args.frames} ({len(paths)} PNG)")
        if args.side_by_side:
            info = exports.export_side_by_side(run_dir, scene, header, args.side_by_side, spec, frames=frames)
            done.append(f"side-by-side {args.side_by_side} ({info['frames']} frames {info['width']}x{info['height']})")
    for line in done:
        print(f"[landscape4d] export: {line}", file=sys.stderr)
    return 0


def _export_4d(scene, header: dict, args: argparse.Namespace) -> list[str]:
    from .. import exports_4d

    done = []
    if args.ply_sequence:
        paths = exports_4d.export_ply_sequence(scene, args.ply_sequence, args.num_frames)
        done.append(f"ply sequence {args.ply_sequence} ({len(paths)} frames {paths[0].name} .. {paths[-1].name})")
    if args.splatv:
        info = exports_4d.export_splatv(scene, header, args.splatv)
        done.append(f"splatv {args.splatv} ({info['gaussians']} Gaussians; vs the loop at {info['check_times']} "
                    f"times: position error {info['position_rms']:.3g} rms ({info['position_rms_rel']:.2%} of the "
                    f"scene depth), opacity error {info['opacity_rms']:.3f} rms)")
    return done


def _progress():
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return lambda it, total, desc: tqdm(it, total=total, desc=desc, leave=False)
