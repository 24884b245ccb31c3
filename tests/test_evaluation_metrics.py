"""Metrics of landscape4d.evaluation: hand-computed values on tiny inputs, reference implementations, and
scikit-image's SSIM where it is installed."""

import math

import numpy as np
import pytest
import torch

from landscape4d.evaluation.metrics import (flow_epe, laplacian_variance, loop_seam_ssim, masked_psnr, masked_ssim,
                                            mean_gradient_magnitude, psnr, psnr_in_mask, sharpness_reference, ssim,
                                            ssim_map, ssim_reference)
from landscape4d.evaluation.report import image_metrics, video_metrics


def rand(shape, seed=0):
    return np.random.default_rng(seed).random(shape)


# --------------------------------------------------------------------------------------------------------------
# PSNR


def test_psnr_hand_computed():
    a = np.zeros((4, 5, 3))
    b = np.full((4, 5, 3), 0.1)  # mse 0.01
    assert psnr(a, b) == pytest.approx(20.0, abs=1e-12)
    assert psnr(a, b, data_range=2.0) == pytest.approx(20.0 + 20 * math.log10(2.0), abs=1e-12)
    assert psnr(a, a) == math.inf
    assert psnr(torch.from_numpy(b), b) == math.inf  # tensors and arrays mix


def test_masked_psnr_variants_hand_computed():
    a = np.zeros((4, 4, 3))
    b = np.zeros((4, 4, 3))
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    b[:2] = 0.1  # the error is inside the mask only
    assert psnr_in_mask(a, b, mask) == pytest.approx(20.0, abs=1e-12)  # mse over mask pixels: 0.01
    assert psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.005), abs=1e-12)  # half the pixels wrong
    assert masked_psnr(a, b, mask) == pytest.approx(10 * math.log10(1 / 0.005), abs=1e-12)  # M.PSNR: multiplied
    b2 = np.zeros((4, 4, 3))
    b2[2:] = 0.3  # error outside the mask only
    assert psnr_in_mask(a, b2, mask) == math.inf
    assert masked_psnr(a, b2, mask) == math.inf
    with pytest.raises(ValueError, match="empty"):
        psnr_in_mask(a, b, np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="mask shape"):
        psnr_in_mask(a, b, np.ones((3, 4), bool))


def test_shape_and_dtype_errors():
    with pytest.raises(ValueError, match="differ"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="uint8"):
        psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((10, 12, 3)), np.zeros((10, 12, 3)))


# --------------------------------------------------------------------------------------------------------------
# SSIM


def test_ssim_constant_images_hand_computed():
    # constant images: variances and covariance are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = 1e-4
    a, b = 0.2, 0.5
    expected = (2 * a * b + 1e-4) / (a * a + b * b + 1e-4)
    got = ssim(np.full((13, 16, 3), a), np.full((13, 16, 3), b))
    assert got == pytest.approx(expected, abs=1e-12)
    assert ssim_map(np.full((13, 16, 3), a), np.full((13, 16, 3), b)).shape == (3, 6, 3)  # valid windows


def test_ssim_identity_symmetry_and_grey():
    x, y = rand((20, 24, 3), 1), rand((20, 24, 3), 2)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    assert ssim(x, y) == pytest.approx(ssim(y, x), abs=1e-12)
    assert ssim(x, y) < 0.2
    # channels are averaged: a grey image equals its 3-channel copy
    g = rand((16, 16), 3)
    assert ssim(g, g * 0.5) == pytest.approx(ssim(np.repeat(g[..., None], 3, -1), np.repeat(g[..., None] * 0.5, 3, -1)))


def test_ssim_matches_direct_sum_reference():
    x = rand((19, 23, 3), 4)
    y = np.clip(x + 0.1 * np.random.default_rng(5).standard_normal(x.shape), 0, 1)
    assert ssim(x, y) == pytest.approx(ssim_reference(x, y), abs=1e-12)


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(6)
    base = np.cumsum(np.cumsum(rng.standard_normal((40, 52, 3)), 0), 1)
    x = (base - base.min()) / (base.max() - base.min())
    for y in (np.clip(x + 0.05 * rng.standard_normal(x.shape), 0, 1), x[::-1].copy(), x * 0.7 + 0.1):
        ref = metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                            data_range=1, channel_axis=-1)
        assert ssim(x, y) == pytest.approx(ref, abs=1e-10)


def test_masked_ssim():
    x, y = rand((16, 16, 3), 7), rand((16, 16, 3), 8)
    assert masked_ssim(x, y, np.ones((16, 16))) == pytest.approx(ssim(x, y), abs=1e-12)
    assert masked_ssim(x, y, np.zeros((16, 16), bool)) == pytest.approx(1.0)  # both images become black
    m = np.zeros((16, 16))
    m[:, :8] = 1
    assert masked_ssim(x, y, m) == pytest.approx(ssim(x * m[..., None], y * m[..., None]), abs=1e-12)


# --------------------------------------------------------------------------------------------------------------
# motion and loops


def test_flow_epe_hand_computed():
    f1 = np.zeros((2, 2, 2))
    f2 = np.zeros((2, 2, 2))
    f2[0, 0] = [3, 4]  # error 5 at one pixel of four
    assert flow_epe(f1, f2) == pytest.approx(1.25)
    mask = np.array([[True, True], [False, False]])
    assert flow_epe(f1, f2, mask) == pytest.approx(2.5)
    assert flow_epe(f1, f2, np.array([[0.0, 0.0], [1.0, 1.0]])) == pytest.approx(0.0)
    m3 = np.zeros((2, 2, 3))
    m3[1, 1] = [1, 2, 2]  # 3D motion: norm 3
    assert flow_epe(m3, np.zeros((2, 2, 3))) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="empty"):
        flow_epe(f1, f2, np.zeros((2, 2)))


def test_loop_seam_ssim():
    rng = np.random.default_rng(9)
    frames = [rand((16, 16, 3), 10)]
    for _ in range(4):
        frames.append(np.clip(frames[-1] + 0.05 * rng.standard_normal((16, 16, 3)), 0, 1))
    frames.append(frames[0])  # last == first: a perfect seam
    video = np.stack(frames)
    r = loop_seam_ssim(video)
    assert r.seam == pytest.approx(1.0, abs=1e-12)
    assert r.consecutive == pytest.approx(np.mean([ssim(video[t], video[t + 1]) for t in range(5)]), abs=1e-12)
    broken = video.copy()
    broken[-1] = rand((16, 16, 3), 11)  # an unrelated last frame: the seam is a jump
    rb = loop_seam_ssim(broken)
    assert rb.seam < 0.2 and rb.gap > 0.3
    with pytest.raises(ValueError):
        loop_seam_ssim(video[:1])


# --------------------------------------------------------------------------------------------------------------
# sharpness


def test_laplacian_variance_hand_computed():
    ramp = np.repeat((0.1 * np.arange(8))[None, :, None], 6, 0).repeat(3, -1)
    assert laplacian_variance(ramp) == pytest.approx(0.0, abs=1e-20)  # a linear ramp has no curvature
    checker = (np.indices((6, 6)).sum(0) % 2).astype(np.float64)  # grey: luma equals the value
    # interior Laplacian is -4 on the ones and +4 on the zeros, 8 of each in the 4x4 interior -> variance 16
    assert laplacian_variance(np.repeat(checker[..., None], 3, -1)) == pytest.approx(16.0)


def test_mean_gradient_magnitude_hand_computed():
    i, j = np.indices((7, 9)).astype(np.float64)
    assert mean_gradient_magnitude(0.1 * j) == pytest.approx(0.1)
    assert mean_gradient_magnitude(0.03 * i + 0.04 * j) == pytest.approx(0.05)
    assert mean_gradient_magnitude(np.full((5, 5, 3), 0.3)) == pytest.approx(0.0)


def test_sharpness_matches_reference_and_orders_blur():
    x = rand((24, 30, 3), 12)
    lv, gm = sharpness_reference(x)
    assert laplacian_variance(x) == pytest.approx(lv, rel=1e-12)
    assert mean_gradient_magnitude(x) == pytest.approx(gm, rel=1e-12)
    blurred = (x + np.roll(x, 1, 0) + np.roll(x, 1, 1) + np.roll(x, (1, 1), (0, 1))) / 4
    assert laplacian_variance(blurred) < laplacian_variance(x)
    assert mean_gradient_magnitude(blurred) < mean_gradient_magnitude(x)


# --------------------------------------------------------------------------------------------------------------
# bundles


def test_image_and_video_metrics_bundles():
    gt = rand((3, 16, 16, 3), 13)
    pred = gt.copy()
    pred[1] = np.clip(pred[1] + 0.1, 0, 1)
    mask = np.zeros((16, 16))
    mask[4:12, 4:12] = 1
    one = image_metrics(pred[1], gt[1], mask, use_lpips=False)
    assert set(one) == {"psnr", "ssim", "m_psnr", "m_ssim", "psnr_in_mask"}
    assert one["psnr"] == pytest.approx(psnr(pred[1], gt[1]))
    v = video_metrics(pred, gt, mask, use_lpips=False)
    assert v["psnr"] == pytest.approx(psnr(pred[1], gt[1]))  # identical frames (inf) are left out of the mean
    assert v["ssim"] == pytest.approx((2 + ssim(pred[1], gt[1])) / 3)
    assert v["loop_seam_ssim"] == pytest.approx(ssim(pred[2], pred[0]))
    assert v["sharpness_gradient"] > 0
