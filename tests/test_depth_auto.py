"""Backend `auto`: Depth Anything V2 from a local folder, the Hugging Face cache or the hub, else the prior with one
line; and the depth stage's pre-flight `check`. No test touches the network: the hub is a local server, an
unroutable or silent endpoint, or switched off."""

from __future__ import annotations

import http.server
import json
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from landscape4d.config import DepthConfig, RunConfig
from landscape4d.depth import auto, estimate_depth
from landscape4d.stages.depth import check

MODEL = DepthConfig().model  # the default hub id


def _save_tiny_model(folder: Path) -> None:
    """A tiny, randomly initialised Depth Anything model and its processor, as `save_pretrained` writes them."""
    transformers = pytest.importorskip("transformers")
    import torch

    bb = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                                   image_size=56, patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"],
                                   reshape_hidden_states=False)
    cfg = transformers.DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=32,
                                           neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
                                           head_hidden_size=8, patch_size=14)
    torch.manual_seed(0)
    transformers.DepthAnythingForDepthEstimation(cfg).save_pretrained(folder)
    transformers.DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True,
                                   ensure_multiple_of=14).save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-da") / "model"
    _save_tiny_model(folder)
    return folder


def _cache_layout(cache: Path, model: str, files: Path, rev: str = "0123456789abcdef") -> Path:
    """Lay `files` out as the Hugging Face hub cache does: models--org--name/snapshots/<rev>/ + refs/main."""
    repo = cache / ("models--" + model.replace("/", "--"))
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    for f in files.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    return snap


@pytest.fixture
def offline_env(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache, the hub on an unroutable address, and a fresh probe memo."""
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_ENDPOINT", "http://10.255.255.1")  # unroutable: connecting can only time out
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(auto, "_PROBES", {})
    return cache


def _photo() -> np.ndarray:
    return np.random.default_rng(0).random((42, 70, 3)).astype(np.float32)


def test_auto_picks_depth_anything_from_the_cache(tiny_model, offline_env):
    snap = _cache_layout(offline_env, MODEL, tiny_model)
    choice = auto.choose(DepthConfig())
    assert choice.backend == "depth-anything-v2" and Path(choice.source) == snap
    lines: list[str] = []
    t0 = time.perf_counter()
    depth, info = estimate_depth(_photo(), DepthConfig(), log=lines.append)
    assert depth.shape == (42, 70) and np.isfinite(depth).all()
    assert info["backend"] == "depth-anything-v2" and info["requested"] == "auto" and Path(info["model"]) == snap
    assert len(lines) == 1 and "Depth Anything V2" in lines[0] and "cache" in lines[0]
    assert time.perf_counter() - t0 < 60  # no network wait (the model loads from disk)


def test_auto_picks_a_local_model_folder(tiny_model, offline_env):
    choice = auto.choose(DepthConfig(model=str(tiny_model)))
    assert choice.backend == "depth-anything-v2" and choice.source == str(tiny_model)


def test_auto_falls_back_when_the_hub_is_unreachable(offline_env):
    lines: list[str] = []
    t0 = time.perf_counter()
    depth, info = estimate_depth(_photo(), DepthConfig(), log=lines.append)
    took = time.perf_counter() - t0
    assert info["backend"] == "prior" and info["requested"] == "auto" and "prior" in info["model"]
    assert len(lines) == 1 and "offline landscape prior" in lines[0] and "--depth-model" in lines[0]
    assert took < auto.PROBE_TIMEOUT_S + 5
    t0 = time.perf_counter()
    auto.choose(DepthConfig())  # asked once per process: the second time costs nothing
    assert time.perf_counter() - t0 < 0.5


def test_a_silent_hub_cannot_hold_the_run(offline_env, monkeypatch):
    """An endpoint that accepts the connection and never answers: the probe gives up after its timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)  # never accepted, never answered
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        t0 = time.perf_counter()
        assert auto.hub_answers(MODEL, timeout=0.5) is False
        assert time.perf_counter() - t0 < 2.0
    finally:
        server.close()


def test_auto_uses_the_hub_when_it_answers(offline_env, monkeypatch):
    seen: list[str] = []

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        choice = auto.choose(DepthConfig())
    finally:
        server.shutdown()
        server.server_close()
    assert choice.backend == "depth-anything-v2" and choice.source == MODEL and "downloading" in choice.line
    assert seen == [f"/api/models/{MODEL}"]


def test_offline_mode_skips_the_probe(offline_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(auto.urllib.request, "urlopen", lambda *a, **k: pytest.fail("probed while offline"))
    assert auto.choose(DepthConfig()).backend == "prior"


def test_auto_without_transformers(offline_env, monkeypatch, tiny_model):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    _cache_layout(offline_env, MODEL, tiny_model)  # even a cached model cannot be used
    lines: list[str] = []
    _, info = estimate_depth(_photo(), DepthConfig(), log=lines.append)
    assert info["backend"] == "prior"
    assert len(lines) == 1 and "pip install 'landscape4d[hf]'" in lines[0]
    cfg = RunConfig()
    cfg.depth.backend = "depth-anything-v2"
    with pytest.raises(ValueError, match=r"pip install 'landscape4d\[hf\]'"):
        check(cfg)


def test_auto_falls_back_when_the_cached_model_is_broken(offline_env, tmp_path, tiny_model):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"\0" * 16)
    _cache_layout(offline_env, MODEL, broken)
    lines: list[str] = []
    _, info = estimate_depth(_photo(), DepthConfig(), log=lines.append)
    assert info["backend"] == "prior" and "Depth Anything V2" in lines[0] and "prior" in lines[-1]


@pytest.mark.parametrize("backend, key, value, message", [
    ("depth-anything-v2", "model", "/nonexistent/model-dir", "no such model folder"),
    ("auto", "model", "./missing/model", "no such model folder"),
    ("depth-anything-v2", "model", "{tmp}", "not a model folder"),
    ("file", "file", None, "--depth-file"),
    ("file", "file", "/nonexistent/depth.npy", "file not found"),
])
def test_check_refuses_impossible_depth_configs(tmp_path, backend, key, value, message):
    cfg = RunConfig()
    cfg.depth.backend = backend
    setattr(cfg.depth, key, value.format(tmp=tmp_path) if isinstance(value, str) else value)
    with pytest.raises(ValueError, match=message) as e:
        check(cfg)
    assert "\n" not in str(e.value)


def test_check_accepts_possible_configs(tiny_model, tmp_path):
    check(RunConfig())  # auto, hub id: fine whatever the network
    cfg = RunConfig()
    cfg.depth.backend, cfg.depth.model = "depth-anything-v2", str(tiny_model)
    check(cfg)
    np.save(tmp_path / "d.npy", np.ones((4, 4), np.float32))
    cfg.depth.backend, cfg.depth.file = "file", str(tmp_path / "d.npy")
    check(cfg)


def test_stage_reports_the_backend_used(demo_input, tmp_path, offline_env, capsys):
    from landscape4d.cli import main

    run = tmp_path / "run"
    code = main(["depth", str(demo_input["image"]), "--mask", str(demo_input["mask"]), "--hints",
                 str(demo_input["hints"]), "-o", str(run), "--size", "96"])
    assert code == 0
    err = capsys.readouterr().err
    assert sum("offline landscape prior" in line for line in err.splitlines()) == 1
    metrics = json.loads((run / "report.json").read_text())["stages"]["depth"]["metrics"]
    assert metrics["backend"] == "prior" and metrics["requested"] == "auto" and "prior" in metrics["model"]


def test_a_model_that_appears_in_the_cache_reruns_the_depth_stage(demo_input, tiny_model, tmp_path, offline_env,
                                                                   capsys):
    """Backend auto resolves on this machine, so what it resolves to is part of the depth stage's cache key: a rerun
    after the model became available uses it instead of keeping the prior's depth."""
    from landscape4d.cli import main

    run = tmp_path / "run"
    argv = ["depth", str(demo_input["image"]), "--mask", str(demo_input["mask"]), "--hints", str(demo_input["hints"]),
            "-o", str(run), "--size", "96"]

    def backend() -> str:
        return json.loads((run / "report.json").read_text())["stages"]["depth"]["metrics"]["backend"]

    assert main(argv) == 0 and backend() == "prior"
    assert main(argv) == 0 and "depth: unchanged" in capsys.readouterr().err  # nothing changed: cached
    _cache_layout(offline_env, MODEL, tiny_model)
    assert main(argv) == 0 and backend() == "depth-anything-v2"
