"""The viewer's web page: built assets, the static export folder, and a loopback-only HTTP server.

The page (index.html + viewer.js + viewer.css) is bundled from viewer/web/ by `make viewer` into
landscape4d/viewer/static/; it loads `scene/scene.json` and `scene/scene.bin` relative to itself. The same build
writes annotate.html/.js/.css, the page of `landscape4d annotate` (served by viewer/annotate.py through
`bind_loopback`).
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import InputError
from .bake import DATA_FILE, WebScene

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE_FILES = ("index.html", "viewer.js", "viewer.css")
SCENE_DIR = "scene"
ANNOTATE_PREFIX = "annotate"  # annotate.html, annotate.js, annotate.css: the page of `landscape4d annotate`
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".json": "application/json", ".bin": "application/octet-stream",
                 ".txt": "text/plain; charset=utf-8"}


def page_files(static_dir: Path | None = None) -> dict[str, Path]:
    """The built page files by URL name (from STATIC_DIR by default); InputError when they have not been built."""
    static_dir = Path(static_dir) if static_dir is not None else STATIC_DIR
    missing = [name for name in PAGE_FILES if not (static_dir / name).is_file()]
    if missing:
        raise InputError(static_dir, f"viewer assets not built (missing {', '.join(missing)}): {build_hint()}")
    extra = [p for p in static_dir.iterdir() if p.is_file() and p.suffix in CONTENT_TYPES and p.name not in PAGE_FILES
             and not p.name.startswith(ANNOTATE_PREFIX)]  # the annotate page is served by `annotate` only
    return {p.name: p for p in [static_dir / n for n in PAGE_FILES] + sorted(extra)}


def build_hint() -> str:
    """What to do when the bundle is missing: build it in a source checkout, else reinstall a package that has it."""
    web = Path(__file__).resolve().parents[3] / "viewer" / "web"
    if (web / "build.mjs").is_file():
        return f"run `make viewer` in {web.parents[1]} (needs Node.js and npm; or: cd {web} && npm ci && node build.mjs)"
    return ("this installation has no viewer bundle: install landscape4d from a wheel or sdist built with Node.js "
            "present (`python -m build` in a source checkout builds it), or from a source checkout with `make install`")


def write_web_folder(ws: WebScene, out_dir: str | Path, static_dir: Path | None = None) -> Path:
    """A static site: the page files + scene/scene.json + scene/scene.bin (host it with any web server)."""
    files = page_files(static_dir)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    try:
        (out / SCENE_DIR).mkdir(parents=True, exist_ok=True)
        for name, src in files.items():
            shutil.copyfile(src, out / name)
        head, data = ws.to_bytes()
        (out / SCENE_DIR / DATA_FILE).write_bytes(data)
        (out / SCENE_DIR / "scene.json").write_bytes(head)
    except OSError as e:
        raise InputError(out, f"cannot write the web folder ({e.strerror or e})") from None
    return out


# ---------------------------------------------------------------------------------------------------------------
# serving


def loopback_host(host: str) -> str:
    """The address to bind for --host: loopback addresses (127.0.0.0/8, ::1) and `localhost` only."""
    name = host.strip()
    if name.lower() == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        raise InputError("--host", f"{host!r} is not an IP address; the viewer serves on loopback only "
                         "(127.0.0.1, ::1 or localhost)") from None
    if not ip.is_loopback:
        raise InputError("--host", f"{host} is not a loopback address; the viewer serves on loopback only "
                         "(127.0.0.1, ::1 or localhost)")
    return str(ip)


def _routes(ws: WebScene, static_dir: Path | None) -> dict[str, tuple[str, bytes | Path]]:
    head, data = ws.to_bytes()
    routes: dict[str, tuple[str, bytes | Path]] = {}
    for name, path in page_files(static_dir).items():
        routes["/" + name] = (CONTENT_TYPES[path.suffix], path)
    routes["/"] = routes["/index.html"]
    routes[f"/{SCENE_DIR}/scene.json"] = (CONTENT_TYPES[".json"], head)
    routes[f"/{SCENE_DIR}/{DATA_FILE}"] = (CONTENT_TYPES[".bin"], data)
    return routes


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[str, bytes | Path]] = {}

    def _send(self, body: bool) -> None:
        route = self.routes.get(self.path.split("?", 1)[0].split("#", 1)[0])
        if route is None:
            self.send_error(404, "not found")
            return
        ctype, content = route
        payload = content.read_bytes() if isinstance(content, Path) else content
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self._send(True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(False)

    def log_message(self, format: str, *args) -> None:  # quiet
        pass


@dataclass
class ViewerServer:
    httpd: ThreadingHTTPServer
    url: str

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start_thread(self) -> threading.Thread:
        th = threading.Thread(target=self.serve_forever, daemon=True)
        th.start()
        return th

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_server(ws: WebScene, host: str = "127.0.0.1", port: int = 8000,
                static_dir: Path | None = None) -> ViewerServer:
    """A (not yet serving) HTTP server of the page and the scene, bound to a loopback address; port 0 = any."""
    handler = type("ViewerHandler", (_Handler,), {"routes": _routes(ws, static_dir)})
    return bind_loopback(handler, host, port)


def bind_loopback(handler: type[BaseHTTPRequestHandler], host: str, port: int) -> ViewerServer:
    """A (not yet serving) threading HTTP server of `handler` on a loopback address (refused otherwise)."""
    addr = loopback_host(host)
    if not 0 <= int(port) <= 65535:
        raise InputError("--port", f"{port} is not a TCP port (0..65535)")
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    server_cls = type("ViewerHTTPServer", (ThreadingHTTPServer,), {"address_family": family,
                                                                   "daemon_threads": True})
    try:
        httpd = server_cls((addr, int(port)), handler)
    except OSError as e:
        raise InputError("--port", f"cannot listen on {addr}:{port} ({e.strerror or e})") from None
    bound = httpd.server_address[1]
    shown = f"[{addr}]" if family == socket.AF_INET6 else addr
    return ViewerServer(httpd, f"http://{shown}:{bound}/")
