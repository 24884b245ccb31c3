"""Backend `auto`: Depth Anything V2 when it can be had, otherwise the offline prior.

"Can be had" means: transformers is installed, and the model is a local folder, or is in the Hugging Face cache
(`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`), or the hub answers within
`PROBE_TIMEOUT_S` seconds (then it is downloaded once, into that cache). Nothing here imports transformers: the
choice costs a file look-up and at most one short network probe (none when `HF_HUB_OFFLINE` is set), and the probe
runs in a daemon thread so a hanging resolver or connection cannot hold the run longer than the timeout.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..config import DepthConfig

PROBE_TIMEOUT_S = 3.0
LEARNED = "depth-anything-v2"
INSTALL = "pip install 'landscape4d[hf]'"
_PROBES: dict[str, bool] = {}  # hub answers, once per process and (endpoint, model)


@dataclass(frozen=True)
class Choice:
    backend: str  # "depth-anything-v2" | "prior"
    source: str | None  # what to load: a local folder, a cache snapshot folder or a hub id (None for the prior)
    line: str  # one line for the user: which backend, and how to get the learned one when it is not used


def transformers_available() -> bool:
    """Whether transformers can be imported, without importing it (that takes seconds)."""
    try:
        return importlib.util.find_spec("transformers") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["transformers"] is None (import blocked)
        return False


def looks_local(model: str) -> bool:
    """Whether `model` names a folder rather than a hub id ("org/name")."""
    return (Path(model).expanduser().exists() or model.startswith((".", "~", "/")) or "\\" in model
            or model.count("/") != 1)


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "huggingface" / "hub"


def is_model_dir(path: Path) -> bool:
    """A folder with a model config and weights."""
    weights = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
    return (path / "config.json").is_file() and any((path / w).is_file() for w in weights)


def cached_snapshot(model: str, cache: Path | None = None) -> Path | None:
    """The cache's snapshot folder of hub id `model` (the one refs/main points to, else any complete one)."""
    repo = (cache or hf_cache_dir()) / ("models--" + model.replace("/", "--"))
    snaps = repo / "snapshots"
    ref = repo / "refs" / "main"
    if ref.is_file():
        snap = snaps / ref.read_text().strip()
        if is_model_dir(snap):
            return snap
    if snaps.is_dir():
        for snap in sorted(snaps.iterdir()):
            if is_model_dir(snap):
                return snap
    return None


def hub_answers(model: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the hub knows `model`, asked once per process; False at once when offline mode is set."""
    if any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on") for k in ("HF_HUB_OFFLINE",
                                                                              "TRANSFORMERS_OFFLINE")):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    key = f"{endpoint} {model}"
    if key not in _PROBES:
        answer: list[bool] = []

        def probe() -> None:
            try:
                req = urllib.request.Request(f"{endpoint}/api/models/{model}", method="HEAD")
                with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (fixed https endpoint)
                    answer.append(r.status == 200)
            except Exception:  # any failure (DNS, refused, TLS, HTTP error) means: not reachable now
                answer.append(False)

        t = threading.Thread(target=probe, daemon=True, name="landscape4d-hub-probe")
        t.start()
        t.join(timeout)
        _PROBES[key] = bool(answer and answer[0])
    return _PROBES[key]


def choose(cfg: DepthConfig, probe_timeout: float = PROBE_TIMEOUT_S) -> Choice:
    """Resolve backend `auto` (any other backend is returned as it is)."""
    if cfg.backend != "auto":
        return Choice(cfg.backend, cfg.model if cfg.backend == LEARNED else None, "")
    model = cfg.model
    fallback = "offline landscape prior"
    if not transformers_available():
        return Choice("prior", None, f"depth: {fallback}; for learned depth (Depth Anything V2): {INSTALL}")
    if looks_local(model):
        path = Path(model).expanduser()
        if is_model_dir(path):
            return Choice(LEARNED, str(path), f"depth: Depth Anything V2 from {path}")
        return Choice("prior", None, f"depth: {fallback} ({path} is not a model folder); for learned depth: "
                                     "--depth-model DIR with a downloaded model")
    snap = cached_snapshot(model)
    if snap is not None:
        return Choice(LEARNED, str(snap), f"depth: Depth Anything V2 ({model}, from the Hugging Face cache)")
    if hub_answers(model, probe_timeout):
        return Choice(LEARNED, model, f"depth: Depth Anything V2 ({model}, downloading once into {hf_cache_dir()})")
    return Choice("prior", None, f"depth: {fallback} ({model} is not in the Hugging Face cache and the hub is out of "
                                 "reach); for learned depth: run once online, or --depth-model DIR")


def cache_key(cfg) -> str | None:
    """The depth stage's environment key (`pipeline.Stage.environment`): for backend auto, which backend and model
    `choose` resolves to now (a model id, not its cache folder, so that downloading it does not change the key), so
    that installing transformers or getting the model reruns the depth stage. None for any other backend."""
    if cfg.depth.backend != "auto":
        return None
    c = choose(cfg.depth)
    if c.backend != LEARNED:
        return c.backend
    model = cfg.depth.model
    return f"{LEARNED} {c.source if looks_local(model) else model}"
