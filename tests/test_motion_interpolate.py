"""Hints -> dense 2D motion: exactness at hints, zero outside the mask, harmonic solve vs Jacobi reference,
unhinted components, direction mode, error and warning paths."""

import warnings

import numpy as np
import pytest

from landscape4d.config import MotionConfig
from landscape4d.errors import InputError
from landscape4d.motion import dense_motion_from_hints, hint_constraints
from landscape4d.motion.interpolate import laplace_interpolate, laplace_interpolate_reference


def ring_mask(h=20, w=24):
    m = np.zeros((h, w), bool)
    m[3:17, 2:20] = True
    m[8:12, 8:14] = False  # a hole in the middle
    return m


ARROWS = np.array([[[4.5, 5.5], [14.5, 8.5]], [[15.2, 14.1], [10.0, 10.0]], [[3.0, 15.0], [3.0, 20.0]]])


@pytest.mark.parametrize("method", ["laplace", "rbf"])
def test_exact_at_hints_and_zero_outside(method):
    mask = ring_mask()
    cfg = MotionConfig(hint_frames=5.0, interpolation=method)
    field = dense_motion_from_hints(mask, ARROWS, cfg)
    assert field.shape == (20, 24, 2) and field.dtype == np.float32
    assert np.all(field[~mask] == 0)
    for a in ARROWS:
        r, c = int(np.floor(a[0, 1])), int(np.floor(a[0, 0]))
        np.testing.assert_array_equal(field[r, c], ((a[1] - a[0]) / 5.0).astype(np.float32))
    assert np.abs(field[mask]).max() > 0


def test_laplace_matches_jacobi_reference():
    mask = ring_mask()
    cons = hint_constraints(mask, ARROWS, MotionConfig(hint_frames=5.0))
    fast = laplace_interpolate(mask, cons)
    ref = laplace_interpolate_reference(mask, cons, iters=20000)
    np.testing.assert_allclose(fast, ref, atol=1e-8)


def test_laplace_is_harmonic_and_bounded():
    mask = ring_mask()
    cons = hint_constraints(mask, ARROWS, MotionConfig(hint_frames=5.0))
    f = laplace_interpolate(mask, cons)
    # maximum principle: values stay within the hint range
    assert f[mask, 0].min() >= cons.velocity[:, 0].min() - 1e-9
    assert f[mask, 0].max() <= cons.velocity[:, 0].max() + 1e-9
    # interior free pixel with 4 mask neighbours equals their mean
    fixed = np.zeros_like(mask)
    fixed[cons.rows, cons.cols] = True
    i, j = 5, 16
    assert mask[i - 1:i + 2, j - 1:j + 2].all() and not fixed[i, j]
    mean = (f[i - 1, j] + f[i + 1, j] + f[i, j - 1] + f[i, j + 1]) / 4
    np.testing.assert_allclose(f[i, j], mean, atol=1e-10)


def test_mask_boundary_not_crossed():
    # two regions side by side, separated by one off-mask column: each follows its own hint
    mask = np.zeros((10, 21), bool)
    mask[:, :10] = True
    mask[:, 11:] = True
    arrows = np.array([[[2.5, 5.5], [2.5 + 10, 5.5]], [[18.5, 5.5], [18.5, 5.5 + 10]]])
    f = dense_motion_from_hints(mask, arrows, MotionConfig(hint_frames=10.0))
    np.testing.assert_allclose(f[:, :10], np.broadcast_to([1.0, 0.0], (10, 10, 2)), atol=1e-6)
    np.testing.assert_allclose(f[:, 11:], np.broadcast_to([0.0, 1.0], (10, 10, 2)), atol=1e-6)


@pytest.mark.parametrize("mode,expected", [("nearest", (1.0, 0.0)), ("mean", (0.5, 0.5)), ("zero", (0.0, 0.0))])
def test_unhinted_component(mode, expected):
    mask = np.zeros((12, 30), bool)
    mask[:, :8] = True  # hinted (+u)
    mask[:, 22:] = True  # hinted (+v), far away
    mask[:, 11:14] = True  # no hint, nearest to the left block
    arrows = np.array([[[6.5, 5.5], [16.5, 5.5]], [[25.5, 5.5], [25.5, 15.5]]])
    f = dense_motion_from_hints(mask, arrows, MotionConfig(hint_frames=10.0, unhinted=mode))
    np.testing.assert_allclose(f[:, 11:14], np.broadcast_to(expected, (12, 3, 2)), atol=1e-6)


def test_direction_mode_and_speed():
    mask = ring_mask()
    f = dense_motion_from_hints(mask, None, MotionConfig(direction=(3.0, 4.0), speed=2.0))
    np.testing.assert_allclose(f[mask], np.broadcast_to([1.2, 1.6], (mask.sum(), 2)), rtol=1e-6)
    assert np.all(f[~mask] == 0)
    f = dense_motion_from_hints(mask, np.zeros((0, 2, 2)), MotionConfig(direction=(6.0, 0.0), hint_frames=3.0))
    np.testing.assert_allclose(f[mask], np.broadcast_to([2.0, 0.0], (mask.sum(), 2)), rtol=1e-6)


def test_speed_normalises_arrows():
    mask = ring_mask()
    f = dense_motion_from_hints(mask, ARROWS[:1], MotionConfig(speed=0.5))
    np.testing.assert_allclose(np.linalg.norm(f[5, 4]), 0.5, rtol=1e-6)
    np.testing.assert_allclose(f[mask], np.broadcast_to(f[5, 4], (mask.sum(), 2)), atol=1e-6)


def test_empty_hints_without_direction_raise():
    with pytest.raises(InputError, match="no motion hints"):
        dense_motion_from_hints(ring_mask(), None, MotionConfig())
    with pytest.raises(InputError) as e:
        dense_motion_from_hints(ring_mask(), np.zeros((0, 2, 2)), MotionConfig(), source="hints.json")
    assert "hints.json" in str(e.value)
    # an empty mask needs no hints
    assert not dense_motion_from_hints(np.zeros((5, 5), bool), None, MotionConfig()).any()


def test_bad_input_errors():
    with pytest.raises(InputError, match="shape"):
        dense_motion_from_hints(ring_mask(), np.zeros((3, 2)), MotionConfig())
    with pytest.raises(InputError, match="non-finite"):
        dense_motion_from_hints(ring_mask(), np.full((1, 2, 2), np.nan), MotionConfig())
    with pytest.raises(InputError, match="interpolation"):
        dense_motion_from_hints(ring_mask(), ARROWS, MotionConfig(interpolation="cubic"))
    with pytest.raises(InputError, match="speed"):
        dense_motion_from_hints(ring_mask(), ARROWS, MotionConfig(speed=-1.0))


def test_hints_outside_image_ignored_and_outside_mask_snapped():
    mask = ring_mask()
    far = np.array([[[100.0, 100.0], [110.0, 100.0]]])
    with pytest.warns(UserWarning, match="outside the image"):
        with pytest.raises(InputError, match="none of the 1"):
            dense_motion_from_hints(mask, far, MotionConfig())
    off_mask = np.array([[[0.5, 0.5], [10.5, 0.5]]])  # pixel (0, 0) is off the mask; nearest mask pixel (3, 2)
    with pytest.warns(UserWarning) as rec:
        f = dense_motion_from_hints(mask, np.concatenate([off_mask, far]), MotionConfig(hint_frames=10.0))
    msgs = " | ".join(str(r.message) for r in rec)
    assert "nearest mask pixel" in msgs and "outside the image" in msgs
    np.testing.assert_array_equal(f[3, 2], [1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dense_motion_from_hints(mask, off_mask, MotionConfig(hint_frames=10.0), warn=False)


def test_hint_points_along_arrow():
    mask = ring_mask()
    arrow = np.array([[[3.5, 4.5], [18.5, 4.5]]])
    cons1 = hint_constraints(mask, arrow, MotionConfig(hint_points=1))
    cons4 = hint_constraints(mask, arrow, MotionConfig(hint_points=4))
    assert len(cons1) == 1 and len(cons4) == 4
    np.testing.assert_array_equal(cons4.cols, [3, 8, 13, 18])
    np.testing.assert_allclose(cons4.velocity, np.broadcast_to([0.25, 0.0], (4, 2)))


def test_duplicate_hints_averaged():
    mask = ring_mask()
    arrows = np.array([[[4.2, 5.2], [6.2, 5.2]], [[4.8, 5.8], [4.8, 7.8]]])  # same pixel (5, 4)
    cons = hint_constraints(mask, arrows, MotionConfig(hint_frames=2.0))
    assert len(cons) == 1
    np.testing.assert_allclose(cons.velocity[0], [0.5, 0.5])
