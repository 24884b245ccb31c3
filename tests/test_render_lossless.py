"""`render.lossless`: the rendered frames before video encoding, which `eval` scores instead of the mp4 (the GT and
the baseline are scored before any encoding)."""

from __future__ import annotations

import numpy as np

from landscape4d.config import RenderConfig
from landscape4d.evaluation.commands import read_frames, video_file
from landscape4d.render import render_paths
from landscape4d.viewer.demo_scene import make_demo_scene


def test_lossless_render_writes_the_frames_the_mp4_was_encoded_from(tmp_path):
    scene, header = make_demo_scene(cols=32, rows=24, width=96, height=72, num_frames=6)
    cfg = RenderConfig(trajectories=("side",), gif=False, lossless=True)
    render_paths(scene, header, cfg, tmp_path)
    frames = np.load(tmp_path / "side.npy")
    decoded = read_frames(tmp_path / "side.mp4")
    assert frames.dtype == np.uint8 and frames.shape == decoded.shape == (6, 72, 96, 3)
    # the codec changes the frames (yuv420p, crf 18): what eval must not charge to the method
    assert np.abs(frames.astype(int) - decoded).max() > 0
    render_paths(scene, header, RenderConfig(trajectories=("circle",), gif=False), tmp_path)
    assert not (tmp_path / "circle.npy").exists()  # off by default: users get videos only


def test_eval_reads_the_lossless_frames_when_the_run_has_them(tmp_path):
    (tmp_path / "side.mp4").write_bytes(b"")
    assert video_file(tmp_path, "side") == tmp_path / "side.mp4"
    np.save(tmp_path / "side.npy", np.zeros((2, 4, 4, 3), np.uint8))
    assert video_file(tmp_path, "side") == tmp_path / "side.npy"
    assert video_file(tmp_path, "circle") is None
