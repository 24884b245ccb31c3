"""The sdist and wheel that `python -m build` makes carry the built web viewer (setup.py's hook), a wheel built
from the sdist needs no Node.js, and (slow) a wheel installed into a fresh virtual environment serves the viewer.

The build runs on a copy of the source tree in a temporary folder (the checkout is left alone). Skips when the
`build` package is missing, or when the bundle is not built and Node.js cannot build it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "landscape4d" / "viewer" / "static"
BUNDLE = ("index.html", "viewer.js", "viewer.css", "THIRD_PARTY_LICENSES.txt")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("build") is None,
                                reason="the `build` package is not installed (pip install build)")


def source_copy(dest: Path, with_bundle: bool) -> Path:
    """The files an sdist is made from (no .git, caches, build outputs or node_modules)."""
    dest.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules", ".pytest_cache", "build", "dist")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "Makefile"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("src", "tests", "benchmarks", "viewer"):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)
    if not with_bundle:
        shutil.rmtree(dest / "src" / "landscape4d" / "viewer" / "static", ignore_errors=True)
    return dest


def run_build(src: Path, out: Path, path_env: str) -> subprocess.CompletedProcess:
    """`python -m build` (sdist, then a wheel from the sdist) without isolation, with PATH = path_env."""
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PATH": path_env}
    return subprocess.run([sys.executable, "-m", "build", "--no-isolation", "-o", str(out), str(src)], env=env,
                          capture_output=True, text=True, timeout=600)


def python_only_path(tmp_path: Path) -> str:
    """A PATH holding python and nothing else (no node, no npm)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    return str(bin_dir)


def built(out: Path) -> tuple[Path, Path]:
    return next(out.glob("landscape4d-*.tar.gz")), next(out.glob("landscape4d-*.whl"))


def test_wheel_built_from_the_sdist_carries_the_viewer_without_node(tmp_path):
    if not all((STATIC / f).is_file() for f in BUNDLE):
        pytest.skip("the viewer bundle is not built here (make viewer)")
    src = source_copy(tmp_path / "src", with_bundle=True)
    proc = run_build(src, tmp_path / "dist", python_only_path(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "landscape4d build: WARNING" not in proc.stdout + proc.stderr
    sdist, wheel = built(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    for f in BUNDLE:
        assert f"landscape4d/viewer/static/{f}" in names
        assert zipfile.ZipFile(wheel).read(f"landscape4d/viewer/static/{f}") == (STATIC / f).read_bytes()
    members = tarfile.open(sdist).getnames()
    top = members[0].split("/")[0]
    for f in BUNDLE:
        assert f"{top}/src/landscape4d/viewer/static/{f}" in members
    assert f"{top}/viewer/web/package-lock.json" in members and not any("node_modules" in m for m in members)


@pytest.mark.slow
def test_without_node_or_bundle_the_build_warns_and_still_succeeds(tmp_path):
    src = source_copy(tmp_path / "src", with_bundle=False)
    proc = run_build(src, tmp_path / "dist", python_only_path(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Node.js (node) is not on PATH" in proc.stdout + proc.stderr
    names = zipfile.ZipFile(built(tmp_path / "dist")[1]).namelist()
    assert "landscape4d/viewer/server.py" in names and not any("/static/" in n for n in names)


@pytest.mark.slow
def test_installed_wheel_serves_the_viewer(tmp_path):
    """From a tree without the bundle, the hook builds it with node; the wheel goes into a fresh venv (no system
    site-packages) with its dependencies from the package index, and `landscape4d view` serves page and scene."""
    node_modules = ROOT / "viewer" / "web" / "node_modules"
    if shutil.which("node") is None or not node_modules.is_dir():
        pytest.skip("needs node and viewer/web/node_modules (make viewer)")
    src = source_copy(tmp_path / "src", with_bundle=False)
    (src / "viewer" / "web" / "node_modules").symlink_to(node_modules)
    proc = run_build(src, tmp_path / "dist", os.environ["PATH"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = built(tmp_path / "dist")[1]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # the venv must not see this checkout (PYTHONPATH=src would make pip think landscape4d is installed)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert pip.returncode == 0, pip.stderr[-3000:]
    assert (venv / "bin" / "landscape4d").is_file(), pip.stdout[-3000:]
    from landscape4d.viewer.demo_scene import write_demo_run

    run = write_demo_run(tmp_path / "run", cols=8, rows=6)
    serve_and_fetch(venv / "bin" / "landscape4d", run, zipfile.ZipFile(wheel), env)


def serve_and_fetch(exe: Path, run: Path, wheel: zipfile.ZipFile, env: dict) -> None:
    proc = subprocess.Popen([str(exe), "view", str(run), "--port", "0"], stderr=subprocess.PIPE, text=True,
                            cwd=run.parent, env=env)
    try:
        line = proc.stderr.readline()
        assert "open http://127.0.0.1:" in line, line
        url = line.split("open ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "viewer.js", timeout=30) as r:
            assert r.read() == wheel.read("landscape4d/viewer/static/viewer.js")
        with urllib.request.urlopen(url, timeout=30) as r:
            assert b"<html" in r.read().lower()
        with urllib.request.urlopen(url + "scene/scene.json", timeout=30) as r:
            assert b"num_splats" in r.read()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
