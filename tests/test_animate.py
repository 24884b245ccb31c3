"""Tests of landscape4d.animate: integration, softmax splatting, the symmetric looping animation, loop metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landscape4d.animate import (animate_image, animate_image_reference, integrate_motion, integrate_motion_backward,
                                 integrate_motion_reference, loop_seam_ssim, softmax_splat, softmax_splat_reference,
                                 splat_accumulate, splat_importance, ssim, ssim_reference)
from landscape4d.config import AnimateConfig

torch.set_num_threads(2)


def periodic_texture(H: int, W: int, period: tuple[float, float], seed: int = 0):
    """A smooth random RGB texture f(x, y) in [0, 1] with f(p + period) = f(p); returns (image, function)."""
    rng = np.random.default_rng(seed)
    px, py = period
    waves = []
    for p, q in ((1, 0), (0, 1), (1, 1), (1, -1), (2, 0), (0, 2)):
        kx, ky = p / px, q / py  # k . period = p + q: an integer
        waves.append((kx, ky, rng.uniform(0.04, 0.09, 3), rng.uniform(0, 2 * np.pi, 3)))

    def f(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.full(x.shape + (3,), 0.5)
        for kx, ky, amp, phase in waves:
            out += amp * np.sin(2 * np.pi * (kx * x + ky * y)[..., None] + phase)
        return out

    yy, xx = np.meshgrid(np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64), indexing="ij")
    return f(xx, yy).astype(np.float32), f


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


# ----------------------------------------------------------------------------------------------------------------
# integration


def test_integrate_matches_reference():
    rng = np.random.default_rng(1)
    M = (rng.normal(size=(7, 9, 2)) * 0.8).astype(np.float32)
    fwd = integrate_motion(M, 6)
    assert fwd.shape == (7, 7, 9, 2)
    np.testing.assert_allclose(fwd, integrate_motion_reference(M, 6), atol=5e-5)  # float32 grid_sample
    bwd = integrate_motion_backward(M, 6)
    np.testing.assert_allclose(bwd, integrate_motion_reference(M, 6, sign=-1.0)[::-1], atol=5e-5)
    assert np.all(bwd[6] == 0) and np.all(fwd[0] == 0)


def test_integrate_constant_velocity_and_torch_input():
    M = np.zeros((10, 12, 2), np.float32)
    M[..., 0], M[..., 1] = 0.3, -0.2
    F = integrate_motion(torch.from_numpy(M), 5)
    assert isinstance(F, torch.Tensor)
    t = torch.arange(6, dtype=torch.float32).view(6, 1, 1)
    torch.testing.assert_close(F[..., 0], (0.3 * t).expand(6, 10, 12), atol=1e-5, rtol=0)
    torch.testing.assert_close(F[..., 1], (-0.2 * t).expand(6, 10, 12), atol=1e-5, rtol=0)
    B = integrate_motion_backward(M, 5)
    np.testing.assert_allclose(B[2, ..., 0], -0.3 * 3, atol=1e-5)  # F_N->t = -(N - t) v


def test_integrate_follows_the_flow_not_the_start_pixel():
    # velocity depends on position: particles starting left of the band speed up when they enter it
    M = np.zeros((4, 20, 2), np.float32)
    M[:, 5:, 0] = 2.0
    F = integrate_motion(M, 3)
    assert abs(F[3, 0, 4, 0]) < 1e-5  # zero velocity at its own pixel: stays put
    np.testing.assert_allclose(F[3, 0, 5, 0], 6.0, atol=1e-5)
    np.testing.assert_allclose(F[3, 0, 6, 0], 6.0, atol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# softmax splatting


@pytest.mark.parametrize("beta,spread", [(0.0, 2.0), (1.0, 2.0), (5.0, 2.0), (1.0, 8.0)])
def test_softmax_splat_matches_reference(beta, spread):
    rng = np.random.default_rng(2)
    img = rng.random((8, 9, 3)).astype(np.float32)
    flow = (rng.normal(size=(8, 9, 2)) * spread).astype(np.float32)  # spread 8: many land off the image
    Z = rng.random((8, 9)).astype(np.float32)
    out, den = softmax_splat(img, flow, Z, beta)
    ref, rden = softmax_splat_reference(img, flow, Z, beta)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(den, rden, atol=1e-5)
    assert (den == 0).sum() > 0  # a random flow leaves holes: they are zeros, not NaN
    assert np.isfinite(out).all()


def test_splat_accumulate_unused_layer():
    rng = np.random.default_rng(10)
    H, W, P = 6, 7, 30
    colors = torch.from_numpy(rng.random((P, 3)).astype(np.float32))
    weights = torch.from_numpy(rng.random(P).astype(np.float32)) + 0.1
    pos_a = torch.from_numpy(rng.uniform(-2, 8, (2, 2, P)).astype(np.float32))  # (T=2, 2, P)
    pos_b = torch.from_numpy(rng.uniform(-2, 8, (2, 2, P)).astype(np.float32))
    acc = splat_accumulate(colors, weights, [(pos_a, torch.tensor([1.0, 0.25])), (pos_b, torch.tensor([0.0, 0.75]))],
                           H, W)
    assert acc.shape == (5, 2, H, W)
    only_a = splat_accumulate(colors, weights, [(pos_a[:1], torch.tensor([1.0]))], H, W)
    torch.testing.assert_close(acc[:, 0], only_a[:, 0])  # alpha 0: no colour, no weight, no coverage
    a1 = splat_accumulate(colors, weights, [(pos_a[1:], torch.tensor([0.25]))], H, W)[:, 0]
    b1 = splat_accumulate(colors, weights, [(pos_b[1:], torch.tensor([0.75]))], H, W)[:, 0]
    torch.testing.assert_close(acc[:, 1], a1 + b1)
    assert float(acc[4].sum()) > 0 and float(acc[4].sum()) <= 2 * P + 1e-4  # coverage: bilinear mass on the image


def test_softmax_splat_higher_importance_wins():
    img = np.zeros((1, 4, 3), np.float32)
    img[0, 0] = 1.0  # white pixel moves onto the black pixel 2
    flow = np.zeros((1, 4, 2), np.float32)
    flow[0, 0, 0] = 2.0
    Z = np.zeros((1, 4), np.float32)
    Z[0, 0] = 10.0
    out, _ = softmax_splat(img, flow, Z, beta=1.0)
    assert out[0, 2, 0] > 0.99
    out, _ = softmax_splat(img, flow, -Z, beta=1.0)
    assert out[0, 2, 0] < 0.01
    out, _ = softmax_splat(img, flow, None, beta=1.0)
    np.testing.assert_allclose(out[0, 2], 0.5, atol=1e-6)


def test_splat_importance():
    M = np.zeros((3, 3, 2), np.float32)
    M[0, 0] = (3, 4)
    depth = np.full((3, 3), 2.0, np.float32)
    depth[1, 1] = 1.0
    Z = splat_importance(M, depth, motion_weight=1.0, depth_weight=10.0)
    assert Z[0, 0] == pytest.approx(5.0 + 1.0)  # half the max disparity, full speed
    assert Z[1, 1] == pytest.approx(10.0)
    assert Z[2, 2] == pytest.approx(5.0)


# ----------------------------------------------------------------------------------------------------------------
# the looping animation


def test_animate_matches_reference():
    rng = np.random.default_rng(3)
    img = rng.random((7, 8, 3)).astype(np.float32)
    M = (rng.normal(size=(7, 8, 2)) * 0.9).astype(np.float32)
    mask = rng.random((7, 8)) > 0.25
    Z = rng.random((7, 8)).astype(np.float32)
    cfg = AnimateConfig(softmax_beta=2.0)
    fast = animate_image(img, M, mask, 6, cfg, importance=Z, device="cpu")
    ref = animate_image_reference(img, M, mask, 6, beta=2.0, importance=Z, hole_coverage=cfg.hole_coverage)
    assert fast.dtype == np.float32 and fast.shape == (7, 7, 8, 3)
    np.testing.assert_allclose(fast, ref, atol=1e-5)


def test_animate_chunking_does_not_change_result():
    rng = np.random.default_rng(4)
    img = rng.random((12, 10, 3)).astype(np.float32)
    M = (rng.normal(size=(12, 10, 2)) * 0.5).astype(np.float32)
    mask = np.ones((12, 10), bool)
    a = animate_image(img, M, mask, 9, device="cpu")
    b = animate_image(img, M, mask, 9, device="cpu", max_rows=1)  # one frame per batch
    np.testing.assert_array_equal(a, b)


def test_constant_velocity_shifts_texture():
    H, W, N = 64, 72, 32
    v = np.array([0.75, 0.5])
    img, f = periodic_texture(H, W, period=(N * v[0], N * v[1]))  # backward splat agrees with forward
    mask = np.zeros((H, W), bool)
    mask[6:-6, 6:-6] = True
    M = np.zeros((H, W, 2), np.float32)
    M[mask] = v
    frames = animate_image(img, M, mask, N, device="cpu")
    inner = np.zeros_like(mask)
    inner[10:-10, 10:-10] = True
    yy, xx = np.meshgrid(np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64), indexing="ij")
    worst = np.inf
    for t in (1, 5, 11, 16, 23, 31):
        expected = f(xx - t * v[0], yy - t * v[1])
        worst = min(worst, psnr(frames[t][inner], expected[inner]))
        assert np.array_equal(frames[t][~mask], img[~mask])  # static pixels exact
    assert worst > 30.0, worst
    # and the animation moves: frame 11 differs from the input well beyond the tolerance above
    assert psnr(frames[11][inner], img[inner]) < 25.0


def test_zero_motion_is_still():
    img, _ = periodic_texture(20, 24, (10.0, 8.0), seed=5)
    frames = animate_image(img, np.zeros((20, 24, 2), np.float32), np.ones((20, 24), bool), 8, device="cpu")
    assert frames.shape == (9, 20, 24, 3)
    np.testing.assert_allclose(frames, np.broadcast_to(img, frames.shape), atol=1e-6)


def test_loop_closes_and_static_pixels_exact():
    rng = np.random.default_rng(6)
    H, W, N = 30, 40, 12
    img = rng.random((H, W, 3)).astype(np.float32)
    mask = np.zeros((H, W), bool)
    mask[12:, :] = True  # "water" in the lower part
    M = np.zeros((H, W, 2), np.float32)
    M[..., 0] = -1.3 + 0.4 * rng.random((H, W))
    M[..., 1] = 0.3 * rng.normal(size=(H, W))  # motion outside the mask is ignored
    frames = animate_image(img, M, mask, N, device="cpu")
    assert np.array_equal(frames[N], frames[0])
    assert np.array_equal(frames[0], img)
    assert np.array_equal(frames[:, ~mask], np.broadcast_to(img[~mask], (N + 1,) + img[~mask].shape))
    assert np.abs(frames[N // 2][mask] - img[mask]).mean() > 0.05  # the water moved
    assert np.isfinite(frames).all()


def test_empty_mask_and_bad_shapes():
    img = np.random.default_rng(7).random((5, 6, 3)).astype(np.float32)
    frames = animate_image(img, np.ones((5, 6, 2), np.float32), np.zeros((5, 6), bool), 4, device="cpu")
    assert np.array_equal(frames, np.broadcast_to(img, (5, 5, 6, 3)))
    with pytest.raises(ValueError):
        animate_image(img, np.ones((5, 7, 2), np.float32), np.ones((5, 6), bool), 4)
    with pytest.raises(ValueError):
        animate_image(img, np.ones((5, 6, 2), np.float32), np.ones((5, 6), bool), 0)


# ----------------------------------------------------------------------------------------------------------------
# metrics


def test_ssim_matches_reference():
    rng = np.random.default_rng(8)
    a = rng.random((16, 18, 3))
    b = np.clip(a + 0.1 * rng.normal(size=a.shape), 0, 1)
    assert ssim(a, b) == pytest.approx(ssim_reference(a, b), abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) < 0.95
    au8 = (a * 255).astype(np.uint8)
    assert ssim(au8, au8) == pytest.approx(1.0)


def test_loop_seam_seamless_vs_jump():
    H, W, N = 32, 40, 16
    v = np.array([1.0, 0.5])
    _, f = periodic_texture(H, W, period=(N * v[0], N * v[1]), seed=9)
    yy, xx = np.meshgrid(np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64), indexing="ij")
    loop = np.stack([f(xx - t * v[0], yy - t * v[1]) for t in range(N)])  # frame N would equal frame 0
    seam = loop_seam_ssim(loop)
    assert abs(seam.gap) < 0.02
    drift = np.stack([f(xx - 0.37 * t * v[0], yy - 0.37 * t * v[1]) for t in range(N)])  # does not loop
    jump = loop_seam_ssim(drift)
    assert jump.gap > 0.2


def test_animator_seam_measured_on_the_frames_it_plays():
    """Frame N of the 2D animation is the input by construction; the honest seam is the step from the last frame
    it plays (N - 1) back to frame 0, against its ordinary frame-to-frame step, inside the mask."""
    from landscape4d.evaluation.metrics import loop_seam_step

    rng = np.random.default_rng(10)
    H, W, N = 30, 40, 12
    img, _ = periodic_texture(H, W, period=(20.0, 15.0), seed=11)
    mask = np.zeros((H, W), bool)
    mask[10:, 4:-4] = True
    M = np.zeros((H, W, 2), np.float32)
    M[mask, 0] = 0.8 + 0.2 * rng.random(int(mask.sum()))
    frames = animate_image(img, M, mask, N, device="cpu")
    played = frames[:-1]
    seam = loop_seam_step(played, mask)
    assert 0.5 < seam.ratio < 1.5 and seam.step > 0
    # without the backward half (a forward-only warp, as a naive animator would make), the loop jumps
    fwd = np.stack([frames[0]] + [animate_image(img, M, mask, 4 * N, device="cpu")[t] for t in range(1, N)])
    assert loop_seam_step(fwd, mask).ratio > 2 * seam.ratio
