"""Optional motion estimators (reference video with DIS optical flow, TorchScript model) and the pictures."""

import warnings

import cv2
import numpy as np
import pytest
import torch

from landscape4d.errors import InputError
from landscape4d.motion import flow_to_color, load_motion_model, motion_from_video, quiver_image


def texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.random((h // 4, w // 4, 3)).astype(np.float32)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 1.0)


def test_motion_from_video_recovers_translation():
    h, w, vel = 96, 128, (1.5, -0.5)  # px/frame at the frame size
    base = texture(h + 40, w + 40)
    frames = []
    for t in range(6):
        m = np.float32([[1, 0, -20 + vel[0] * t], [0, 1, -20 + vel[1] * t]])
        frames.append((np.clip(cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_CUBIC), 0, 1) * 255).astype(np.uint8))
    frames = np.stack(frames)
    mask = np.zeros((48, 64), bool)  # working size = half the video size
    mask[10:38, 12:52] = True
    flow = motion_from_video(frames, mask)
    assert flow.shape == (48, 64, 2) and np.all(flow[~mask] == 0)
    inner = flow[16:32, 20:44].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), [0.75, -0.25], atol=0.1)  # scaled to the working size
    with pytest.raises(InputError):
        motion_from_video(frames[:1], mask)


class ConstantFlow(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (1, 4, H, W) -> (1, 2, H, W)
        m = x[:, 3:4]
        red = x[:, 0:1]
        return torch.cat([2.0 * m + red, -1.0 * m], dim=1)


def script(module, path):
    with warnings.catch_warnings():  # TorchScript is deprecated in recent torch, still supported
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module).save(str(path))


def test_torchscript_model_hook(tmp_path):
    path = tmp_path / "motion.pt"
    script(ConstantFlow(), path)
    predict = load_motion_model(path)
    img = np.zeros((10, 12, 3), np.float32)
    img[..., 0] = 0.2
    mask = np.zeros((10, 12), bool)
    mask[2:8, 3:9] = True
    flow = predict(img, mask)
    assert flow.shape == (10, 12, 2) and flow.dtype == np.float32
    np.testing.assert_allclose(flow[mask], np.broadcast_to([2.2, -1.0], (mask.sum(), 2)))
    assert np.all(flow[~mask] == 0)
    flow8 = predict(np.round(img * 255).astype(np.uint8), mask)  # uint8 input is scaled to [0, 1]
    np.testing.assert_allclose(flow8, flow, atol=1e-6)


def test_exported_program_hook(tmp_path):
    path = tmp_path / "motion.pt2"
    torch.export.save(torch.export.export(ConstantFlow(), (torch.zeros(1, 4, 10, 12),)), str(path))
    mask = np.zeros((10, 12), bool)
    mask[1:4, 1:4] = True
    flow = load_motion_model(path)(np.zeros((10, 12, 3), np.float32), mask)
    np.testing.assert_allclose(flow[mask], np.broadcast_to([2.0, -1.0], (mask.sum(), 2)))


def test_model_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_motion_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="TorchScript"):
        load_motion_model(bad)

    class Wrong(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :3]

    path = tmp_path / "wrong.pt"
    script(Wrong(), path)
    with pytest.raises(InputError, match="shape"):
        load_motion_model(path)(np.zeros((4, 5, 3), np.float32), np.ones((4, 5), bool))


def test_flow_to_color():
    flow = np.zeros((4, 4, 2), np.float32)
    flow[0, 0] = (1, 0)  # +u: red
    flow[0, 1] = (-1, 0)  # -u: cyan
    flow[0, 2] = (0.5, 0)  # half magnitude: paler red
    img = flow_to_color(flow)
    assert img.shape == (4, 4, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[1, 1], [255, 255, 255])  # still = white
    np.testing.assert_array_equal(img[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(img[0, 1], [0, 255, 255])
    assert img[0, 2, 0] == 255 and 100 < img[0, 2, 1] < 160
    assert np.array_equal(flow_to_color(np.zeros((3, 3, 2))), np.full((3, 3, 3), 255, np.uint8))


def test_quiver_image():
    img = np.full((40, 60, 3), 0.5, np.float32)
    flow = np.zeros((40, 60, 2), np.float32)
    flow[:, 30:] = (1.0, 0.0)
    out = quiver_image(img, flow, step=10, color=(255, 0, 0))
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    changed = np.any(out != 128, axis=-1)
    assert changed[:, 30:].any() and not changed[:, :25].any()  # arrows only where it moves, pointing right
    cols = np.nonzero(changed.any(axis=0))[0]
    assert cols.max() > 50
    assert np.array_equal(quiver_image(img, np.zeros_like(flow)), np.full((40, 60, 3), 128, np.uint8))
