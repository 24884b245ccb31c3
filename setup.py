"""Build hook: the web viewer's bundle ships inside the package (sdist and wheel), so `pip install` users get
`landscape4d view` without Node.js.

The bundle (src/landscape4d/viewer/static/: index.html, viewer.js, viewer.css, THIRD_PARTY_LICENSES.txt) is built
from viewer/web/ (`npm ci`, then `node build.mjs`) when it is missing and Node.js is there. An sdist carries the
built bundle, so a wheel built from it (what `python -m build` does) never needs Node.js. Without Node.js and
without a bundle the package still builds, without the viewer: a warning says so, and `landscape4d view` says what
to do. Metadata lives in pyproject.toml; this file only adds the hook to setuptools' build_py and sdist.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
WEB = ROOT / "viewer" / "web"
STATIC = ROOT / "src" / "landscape4d" / "viewer" / "static"
PAGE_FILES = ("index.html", "viewer.js", "viewer.css")


def _warn(message: str) -> None:
    print(f"landscape4d build: WARNING: {message}; the package will have no web viewer (`landscape4d view` says "
          "how to get it)", file=sys.stderr)


def ensure_viewer_bundle() -> bool:
    """Build the viewer bundle if it is missing; True when the bundle is there afterwards."""
    if all((STATIC / name).is_file() for name in PAGE_FILES):
        return True
    if not (WEB / "build.mjs").is_file():
        _warn(f"the viewer bundle is missing and its sources ({WEB}) are not here")
        return False
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        _warn("the viewer bundle is missing and Node.js (node) is not on PATH to build it")
        return False
    try:
        if not (WEB / "node_modules").is_dir():
            if npm is None:
                _warn("the viewer bundle is missing and npm is not on PATH to install its packages")
                return False
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True)
        subprocess.run([node, "build.mjs"], cwd=WEB, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        _warn(f"building the viewer bundle failed ({e})")
        return False
    return True


class BuildPyWithViewer(build_py):
    def run(self) -> None:
        ensure_viewer_bundle()
        super().run()


class SdistWithViewer(sdist):
    def run(self) -> None:
        ensure_viewer_bundle()  # before the file list is made: the package data then includes the bundle
        super().run()


setup(cmdclass={"build_py": BuildPyWithViewer, "sdist": SdistWithViewer})
