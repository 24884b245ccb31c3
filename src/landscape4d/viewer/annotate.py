"""`landscape4d annotate PHOTO [-o OUT.json]`: draw the motion mask and hint arrows on the photo in a local page.

The page (viewer/web/src/annotate*.{html,js,css}, bundled by `make viewer` into viewer/static/, or served from the
source folder when the bundle is not built) paints the mask at a display size (long side <= `display_side`) and
keeps the arrows in photo pixels. The server, on loopback only:

    GET  /            the page              GET /photo.jpg   the photo at the display size
    GET  /state.json  sizes, arrows, paths  GET /mask.png    the mask being edited (display size, alpha)
    POST /preview     {mask, arrows} -> the 2D loop at `preview_side` as a JPEG strip of frames (top to bottom, one
                      every X-Frame-Pitch rows),
                      computed like the pipeline: dense_motion_from_hints, then Euler integration and symmetric
                      softmax splatting (landscape4d.animate.animate_image)
    POST /save        {mask, maskChanged, arrows} -> OUT.json (labelme: `motion` polygons traced from the mask,
                      `hintK` lines) + OUT_mask.png (the mask the polygons give, photo size)
    POST /close       stops the server (the command returns)

POST bodies are JSON (`mask` a PNG data URL); requests whose Host or Origin is not a loopback name are refused.
An existing OUT.json is opened for editing: its polygons fill the mask, its hint lines become arrows, its other
shapes and keys are kept, and its polygons are kept as they are unless the mask is edited.
"""

from __future__ import annotations

import argparse
import base64
import io
import ipaddress
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..config import AnimateConfig, MotionConfig, RunConfig
from ..errors import InputError
from .server import CONTENT_TYPES, STATIC_DIR, ViewerServer, bind_loopback

PAGE = ("annotate.html", "annotate.js", "annotate.css")
SOURCE_DIR = Path(__file__).resolve().parents[3] / "viewer" / "web" / "src"
MAX_BODY = 64 << 20


@dataclass
class AnnotateConfig:
    display_side: int = 1280  # long side of the picture the page paints on (pixels)
    preview_side: int = 256  # long side of the live preview (pixels)
    num_frames: int = 60  # loop length (frames at `fps`), as the pipeline's animate.num_frames
    fps: int = 30
    frame_step: int = 2  # the preview computes every frame_step-th frame (velocity x frame_step), shown at fps/step
    jpeg_quality: int = 88
    motion: MotionConfig = field(default_factory=MotionConfig)

    @property
    def sampled_frames(self) -> int:
        return max(2, self.num_frames // max(1, self.frame_step))

    @property
    def sampled_fps(self) -> float:
        return self.fps * self.sampled_frames / self.num_frames


def page_assets(static_dir: Path | None = None, source_dir: Path | None = None) -> dict[str, Path]:
    """URL name -> file of the annotate page: the built bundle, else the ES-module sources (a source checkout)."""
    static_dir = Path(static_dir) if static_dir is not None else STATIC_DIR
    if all((static_dir / n).is_file() for n in PAGE):
        return {n: static_dir / n for n in PAGE}
    source_dir = Path(source_dir) if source_dir is not None else SOURCE_DIR
    if all((source_dir / n).is_file() for n in PAGE):
        return {p.name: p for p in sorted(source_dir.glob("annotate*")) if p.suffix in CONTENT_TYPES}
    raise InputError(static_dir, "the annotate page is not built (missing annotate.html/.js/.css): run `make viewer`")


def out_path(photo: str | Path, out: str | Path | None) -> Path:
    """OUT.json (default: the photo's name with .json, labelme's convention); refused if it is not .json or is the
    photo itself, or its folder does not exist or is not writable."""
    p = Path(out) if out is not None else Path(photo).with_suffix(".json")
    if p.suffix.lower() != ".json":
        raise InputError(p, "the annotation file must be a .json (labelme) file")
    if p.resolve() == Path(photo).resolve():
        raise InputError(p, "the annotation file would overwrite the photo")
    parent = p.resolve().parent
    if not parent.is_dir():
        raise InputError(p, f"folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise InputError(p, "not writable")
    return p


def _encode(image: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **({"quality": quality, "subsampling": 0} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def fit_size(width: int, height: int, side: int) -> tuple[int, int]:
    """(w, h) scaled so that the long side is at most `side` (never enlarged)."""
    s = min(1.0, side / max(width, height))
    return max(1, round(width * s)), max(1, round(height * s))


def decode_mask(data_url: object, width: int, height: int) -> np.ndarray:
    """A PNG data URL (or base64) of the page's mask canvas -> (height, width) bool (alpha, or grey, > 127)."""
    if not isinstance(data_url, str):
        raise ValueError("mask must be a PNG data URL")
    try:
        raw = base64.b64decode(data_url.split(",", 1)[-1], validate=False)
        im = Image.open(io.BytesIO(raw))
        if im.size != (width, height):
            raise ValueError(f"mask is {im.size[0]}x{im.size[1]}, expected {width}x{height}")
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"mask is not a readable PNG ({e})") from None
    a = np.asarray(im.getchannel("A") if im.mode in ("RGBA", "LA") else im.convert("L"))
    return a > 127


def parse_arrows(value: object) -> np.ndarray:
    """[[x0, y0, x1, y1], ...] (photo pixels) -> (K, 2, 2) float64; ValueError when malformed."""
    try:
        a = np.asarray(value if value is not None else [], np.float64).reshape(-1, 4)
    except (TypeError, ValueError):
        raise ValueError("arrows must be a list of [x0, y0, x1, y1]") from None
    if not np.isfinite(a).all():
        raise ValueError("arrows must be finite numbers")
    return a.reshape(-1, 2, 2)


def preview_frames(image: np.ndarray, mask: np.ndarray, arrows: np.ndarray, cfg: AnnotateConfig) -> np.ndarray:
    """The 2D loop the pipeline's motion gives: image (h, w, 3) float, mask (h, w) bool, arrows (K, 2, 2) in the
    image's pixels -> frames 0..n-1 (n = cfg.sampled_frames, the loop sampled every cfg.frame_step frames; (n, h, w, 3)
    uint8). ValueError (a message for the page) without a mask or hints."""
    from ..animate import animate_image
    from ..motion import dense_motion_from_hints

    if not mask.any():
        raise ValueError("paint the moving region to see the preview")
    if len(arrows) == 0:
        raise ValueError("drag an arrow inside the region to set its motion")
    try:
        M = dense_motion_from_hints(mask, arrows, cfg.motion, warn=False)
    except InputError as e:
        raise ValueError(e.problem) from None
    n = cfg.sampled_frames  # n frames of velocity M * num_frames / n: the same loop, sampled every step frames
    frames = animate_image(image, M * (cfg.num_frames / n), mask, n, AnimateConfig(num_frames=n), device="cpu")
    return (np.clip(frames[:-1], 0, 1) * 255 + 0.5).astype(np.uint8)


def encode_strip(frames: np.ndarray, quality: int) -> tuple[bytes, int]:
    """(N, h, w, 3) uint8 -> (one JPEG (4:4:4) of the frames stacked top to bottom, the row pitch of the frames).
    Each frame is padded (edge rows repeated) to a multiple of 16 rows, so that every frame starts on a JPEG block
    row: the still parts of all frames are then compressed alike and do not flicker."""
    h = frames.shape[1]
    pitch = -(-h // 16) * 16
    padded = np.pad(frames, ((0, 0), (0, pitch - h), (0, 0), (0, 0)), mode="edge")
    return _encode(padded.reshape(-1, *frames.shape[2:]), "JPEG", quality), pitch


class AnnotateSession:
    """One photo and its annotation file: what the page shows, previews and saves."""

    def __init__(self, photo: str | Path, out: str | Path | None = None, cfg: AnnotateConfig | None = None):
        from ..io.images import load_photo
        from ..io.masks import labelme_shapes, read_labelme

        self.cfg = cfg or AnnotateConfig()
        rc = RunConfig()
        self.photo = Path(photo)
        p = load_photo(self.photo, rc.min_input_side, rc.max_input_pixels)
        self.out = out_path(self.photo, out)
        self.width, self.height = p.size
        self.display_size = fit_size(self.width, self.height, self.cfg.display_side)
        self.preview_size = fit_size(self.width, self.height, self.cfg.preview_side)
        u8 = (np.clip(p.image, 0, 1) * 255 + 0.5).astype(np.uint8)
        self.photo_jpeg = _encode(_resize(u8, *self.display_size), "JPEG", 90)
        self.small = _resize(p.image, *self.preview_size).astype(np.float32)
        self.base: dict | None = None
        mask, self.arrows = np.zeros((self.height, self.width), bool), np.zeros((0, 2, 2))
        if self.out.exists():
            self.base, mi = read_labelme(self.out, self.width, self.height)
            mask, self.arrows = mi.mask, labelme_shapes(self.base)[1]
        self.mask_png = self._display_png(mask)
        self.lock = threading.Lock()
        self.saved: dict | None = None

    def _display_png(self, mask: np.ndarray) -> bytes:
        """(H, W) bool photo-size mask -> grey PNG at the display size (what GET /mask.png serves)."""
        m = _resize_mask(mask, *self.display_size)
        return _encode(np.where(m, 255, 0).astype(np.uint8), "PNG")

    def state(self) -> dict:
        return {"photo": self.photo.name, "out": str(self.out), "imageWidth": self.width,
                "imageHeight": self.height, "displayWidth": self.display_size[0],
                "displayHeight": self.display_size[1], "previewWidth": self.preview_size[0],
                "previewHeight": self.preview_size[1], "frames": self.cfg.sampled_frames, "fps": self.cfg.sampled_fps,
                "hintFrames": self.cfg.motion.hint_frames, "arrows": self.arrows.reshape(-1, 4).tolist(),
                "hasMask": self.base is not None}

    def preview(self, body: dict) -> tuple[bytes, int, float]:
        """-> (JPEG strip of the preview loop, its row pitch, seconds it took)."""
        t0 = time.perf_counter()
        mask = decode_mask(body.get("mask"), *self.display_size)
        pw, ph = self.preview_size
        small_mask = _resize_mask(mask, pw, ph)
        arrows = parse_arrows(body.get("arrows")) * np.array([pw / self.width, ph / self.height])
        with self.lock:
            frames = preview_frames(self.small, small_mask, arrows, self.cfg)
        return *encode_strip(frames, self.cfg.jpeg_quality), time.perf_counter() - t0

    def save(self, body: dict) -> dict:
        """Write OUT.json and OUT_mask.png; -> what was written."""
        from ..io.images import save_png
        from ..io.masks import (labelme_document, labelme_motion, labelme_shapes, mask_png_path, mask_polygons,
                                write_labelme)

        arrows = parse_arrows(body.get("arrows"))
        dw, dh = self.display_size
        if body.get("maskChanged", True) or self.base is None:
            mask = decode_mask(body.get("mask"), dw, dh)
            full = _resize_mask(mask, self.width, self.height)
            polygons = mask_polygons(full, tolerance=0.5 * self.width / dw if self.width > dw else 0.0)
        else:
            polygons = labelme_shapes(self.base)[0]
        image_path = os.path.relpath(self.photo.resolve(), self.out.resolve().parent)
        doc = labelme_document(polygons, arrows, self.width, self.height, image_path, self.base)
        full = labelme_motion(doc, self.width, self.height, self.out).mask
        try:
            write_labelme(self.out, doc)
            save_png(mask_png_path(self.out), full.astype(np.uint8) * 255)
        except OSError as e:
            raise ValueError(f"{self.out}: cannot write ({e.strerror or e})") from None
        self.base, self.arrows, self.mask_png = doc, arrows, self._display_png(full)
        self.saved = {"ok": True, "json": str(self.out), "mask": str(mask_png_path(self.out)),
                      "polygons": len(polygons), "hints": len(arrows), "moving": round(float(full.mean()), 4)}
        return self.saved


def _resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """(h, w) bool -> (height, width) bool, edges interpolated (a painted disc stays round when enlarged)."""
    if mask.shape == (height, width):
        return mask
    interp = cv2.INTER_LINEAR if width > mask.shape[1] else cv2.INTER_AREA
    return cv2.resize(mask.astype(np.float32), (width, height), interpolation=interp) >= 0.5


# ---------------------------------------------------------------------------------------------------------------
# HTTP


def _loopback_name(value: str | None) -> bool:
    """A Host or Origin header (with or without scheme and port) names a loopback host."""
    if not value:
        return False
    v = value.split("://", 1)[-1].split("/", 1)[0].lower()
    host = v[:v.find("]") + 1] if v.startswith("[") else v.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _AnnotateHandler(BaseHTTPRequestHandler):
    session: AnnotateSession
    assets: dict[str, Path] = {}

    def _reply(self, code: int, ctype: str, payload: bytes, headers: dict | None = None, body: bool = True) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the page went away (reloaded, closed)
                pass

    def _json(self, code: int, data: dict) -> None:
        self._reply(code, CONTENT_TYPES[".json"], json.dumps(data).encode())

    def _get(self, body: bool) -> None:
        if not _loopback_name(self.headers.get("Host")):
            return self._reply(403, "text/plain", b"forbidden host", body=body)
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        name = "annotate.html" if path == "/" else path.lstrip("/")
        s = self.session
        if name in self.assets:
            f = self.assets[name]
            return self._reply(200, CONTENT_TYPES[f.suffix], f.read_bytes(), body=body)
        content = {"photo.jpg": ("image/jpeg", s.photo_jpeg), "mask.png": ("image/png", s.mask_png),
                   "state.json": (CONTENT_TYPES[".json"], json.dumps(s.state()).encode())}.get(name)
        if content is None:
            return self._reply(404, "text/plain", b"not found", body=body)
        self._reply(200, *content, body=body)

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self._get(True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._get(False)

    def do_POST(self) -> None:  # noqa: N802
        origin = self.headers.get("Origin")
        if not _loopback_name(self.headers.get("Host")) or (origin is not None and not _loopback_name(origin)):
            return self._json(403, {"error": "requests from other sites are refused"})
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return self._json(415, {"error": "expected application/json"})
        n = int(self.headers.get("Content-Length") or 0)
        if not 0 <= n <= MAX_BODY:
            return self._json(413, {"error": "request too large"})
        try:
            body = json.loads(self.rfile.read(n) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            self._post(self.path.split("?", 1)[0], body)
        except ValueError as e:  # bad request or a message for the page (json.JSONDecodeError is a ValueError)
            self._json(422, {"error": " ".join(str(e).split())})

    def _post(self, path: str, body: dict) -> None:
        if path == "/preview":
            strip, pitch, seconds = self.session.preview(body)
            return self._reply(200, "image/jpeg", strip, {"X-Frames": str(self.session.cfg.sampled_frames),
                                                          "X-Frame-Pitch": str(pitch), "X-Seconds": f"{seconds:.3f}"})
        if path == "/save":
            return self._json(200, self.session.save(body))
        if path == "/close":
            self._json(200, {"ok": True})
            threading.Thread(target=self.server.shutdown, daemon=True).start()
            return None
        self._json(404, {"error": "not found"})

    def log_message(self, format: str, *args) -> None:  # quiet
        pass


def make_annotate_server(session: AnnotateSession, host: str = "127.0.0.1", port: int = 8000,
                         assets: dict[str, Path] | None = None) -> ViewerServer:
    """A (not yet serving) loopback server of the annotate page for `session`; port 0 = any free port."""
    handler = type("AnnotateHandler", (_AnnotateHandler,),
                   {"session": session, "assets": assets if assets is not None else page_assets()})
    return bind_loopback(handler, host, port)


# ---------------------------------------------------------------------------------------------------------------
# command line


def add_parser(subparsers) -> None:
    a = subparsers.add_parser(
        "annotate", help="draw the motion mask and hint arrows on a photo in the browser (live preview)",
        description="Open a local web page to paint the moving region of PHOTO (brush, eraser, polygons), drag "
                    "hint arrows and watch a live 2D preview of the loop; Save writes OUT.json (labelme, read by "
                    "`landscape4d run PHOTO --mask OUT.json` and by 3D-Cinemagraphy) and OUT_mask.png. An existing "
                    "OUT.json is opened for editing.")
    a.add_argument("photo", metavar="PHOTO", help="the photo (jpg/png/webp)")
    a.add_argument("-o", "--out", metavar="OUT.json", help="annotation file (default: PHOTO with .json)")
    a.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    a.add_argument("--host", default="127.0.0.1", help="loopback address: 127.0.0.1 (default), ::1 or localhost")
    a.add_argument("--no-browser", action="store_true", help="only print the page's URL (do not open a browser)")


def cmd_annotate(args: argparse.Namespace) -> int:
    """Serve the page until it is closed (Close button) or Ctrl-C; exit 2 with one line on bad input."""
    try:
        session = AnnotateSession(args.photo, args.out)
        server = make_annotate_server(session, args.host, args.port)
    except (InputError, ValueError) as e:
        print(f"landscape4d: error: {' '.join(str(e).split()) or type(e).__name__}", file=sys.stderr)
        return 2
    print(server.url, flush=True)
    print(f"[landscape4d] annotate: {session.photo.name} ({session.width}x{session.height}) in {server.url}; Save "
          f"writes {session.out}; Close (or Ctrl-C) stops", file=sys.stderr, flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    s = session.saved
    done = (f"saved {s['json']} ({s['polygons']} polygons, {s['hints']} hints, {100 * s['moving']:.0f}% moving) and "
            f"{s['mask']}" if s else "nothing saved")
    print(f"[landscape4d] annotate: {done}", file=sys.stderr)
    return 0
