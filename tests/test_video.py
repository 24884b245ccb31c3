"""Tests of landscape4d.io.video: mp4/GIF/PNG writing, reading back, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from landscape4d.errors import InputError
from landscape4d.io.video import frames_to_uint8, read_video, write_gif, write_mp4, write_png_frames


def smooth_frames(T: int, H: int, W: int) -> np.ndarray:
    yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    frames = []
    for t in range(T):
        r = 0.5 + 0.4 * np.sin(2 * np.pi * (xx + 2 * t) / 32.0)
        g = 0.5 + 0.4 * np.cos(2 * np.pi * (yy - t) / 24.0)
        b = 0.5 + 0.3 * np.sin(2 * np.pi * (xx + yy) / 40.0)
        frames.append(np.stack([r, g, b], axis=-1))
    return frames_to_uint8(np.stack(frames))


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


def only_file(folder, name):
    assert sorted(p.name for p in folder.iterdir()) == [name]  # no temporary file left behind


def test_mp4_round_trip(tmp_path):
    frames = smooth_frames(10, 48, 64)
    out = write_mp4(tmp_path / "v.mp4", frames, fps=30)
    only_file(tmp_path, "v.mp4")
    back = read_video(out)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert psnr_u8(back, frames) > 32.0  # crf 18 on a tiny colourful clip (measured 35.5)
    assert psnr_u8(back[3], frames[4]) < psnr_u8(back[3], frames[3]) - 5  # frames in order


def test_mp4_odd_size_is_padded(tmp_path):
    frames = smooth_frames(4, 33, 47)
    back = read_video(write_mp4(tmp_path / "odd.mp4", frames, fps=12, crf=10))
    assert back.shape == (4, 34, 48, 3)
    assert psnr_u8(back[:, :33, :47], frames) > 36.0  # crf 10


def test_mp4_overwrites_atomically(tmp_path):
    p = tmp_path / "v.mp4"
    write_mp4(p, smooth_frames(3, 16, 16), fps=10)
    write_mp4(p, smooth_frames(5, 16, 16), fps=10)
    only_file(tmp_path, "v.mp4")
    assert read_video(p).shape[0] == 5


def test_gif_loops_and_reads_back(tmp_path):
    frames = smooth_frames(6, 40, 50)
    frames[:, :10, :10] = 0  # a still corner stays exactly still (one global palette, no dithering)
    p = write_gif(tmp_path / "a.gif", frames, fps=20)
    only_file(tmp_path, "a.gif")
    with Image.open(p) as im:
        assert im.info.get("loop") == 0 and im.n_frames == 6
        assert im.info.get("duration") == 50
    back = read_video(p)
    assert back.shape == frames.shape
    assert psnr_u8(back, frames) > 25.0  # 256-colour palette
    assert np.all(back[:, :10, :10] == back[0, :10, :10])


def test_png_frames_exact(tmp_path):
    frames = smooth_frames(3, 20, 30)
    paths = write_png_frames(tmp_path / "frames", frames)
    assert [p.name for p in paths] == ["frame_0000.png", "frame_0001.png", "frame_0002.png"]
    for p, f in zip(paths, frames):
        assert np.array_equal(np.asarray(Image.open(p).convert("RGB")), f)


def test_float_frames_and_bad_input(tmp_path):
    f = np.full((2, 8, 8, 3), 0.5, np.float32)
    assert frames_to_uint8(f).max() == 128
    with pytest.raises(ValueError):
        write_mp4(tmp_path / "x.mp4", np.zeros((2, 8, 8), np.uint8), fps=10)
    with pytest.raises(InputError):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError):
        read_video(tmp_path / "junk.mp4")


def test_atomic_writes_have_the_usual_file_mode(tmp_path):
    import os

    from landscape4d.io.atomic import write_json

    write_json(tmp_path / "a.json", {"x": 1})
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
