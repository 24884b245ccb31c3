"""The landscape prior sees structure: upright things stand at the depth where they meet the ground, a branch in
front of the sky is near, a cloud is not, a forest canopy is not sky. Built photos with known layout."""

from __future__ import annotations

import numpy as np
import pytest

from landscape4d.config import DepthConfig
from landscape4d.depth.layout import contact_scan, plane_disparity
from landscape4d.depth.prior import CUES, landscape_prior, segment_sky

H, W = 120, 200


def _noise(shape, rng, lo, hi) -> np.ndarray:
    return lo + (hi - lo) * rng.random(shape)


def _landscape(rng: np.random.Generator, sky_rows: int = 45) -> np.ndarray:
    """Blue sky above `sky_rows`, textured ground below (horizontal streaks, like ground seen at a grazing angle)."""
    img = np.zeros((H, W, 3), np.float32)
    t = np.linspace(0, 1, sky_rows)[:, None, None]
    img[:sky_rows] = np.array([0.45, 0.65, 0.95]) * (1 - 0.2 * t) + 0.1 * t
    streaks = _noise((H - sky_rows, 1, 1), rng, 0.8, 1.2) * _noise((H - sky_rows, W, 1), rng, 0.9, 1.1)
    img[sky_rows:] = np.array([0.45, 0.38, 0.25]) * streaks
    return np.clip(img, 0, 1)


def _tree(img: np.ndarray, rng, top: int, base: int, c0: int, c1: int) -> None:
    """A dark upright with vertical bark stripes from row `top` down to its base row."""
    stripes = _noise((1, c1 - c0, 1), rng, 0.6, 1.4) * _noise((base - top, c1 - c0, 1), rng, 0.95, 1.05)
    img[top:base, c0:c1] = np.clip(np.array([0.16, 0.2, 0.1]) * stripes, 0, 1)


def test_an_upright_stands_at_the_depth_where_it_meets_the_ground():
    rng = np.random.default_rng(0)
    img = _landscape(rng)
    _tree(img, rng, 10, 95, 60, 90)  # rises from the ground (base row 95) into the sky
    cfg = DepthConfig()
    depth, _ = landscape_prior(img, cfg)
    base = np.median(depth[88:94, 65:85])
    trunk = np.median(depth[50:80, 65:85])
    crown = np.median(depth[15:40, 65:85])
    ground_beside = np.median(depth[55:60, 120:180])  # ground at the trunk's rows, farther away
    assert trunk == pytest.approx(base, rel=0.25) and crown == pytest.approx(base, rel=0.25)
    assert ground_beside > 1.5 * trunk
    flat, _ = landscape_prior(img, cfg, CUES - {"contact"})  # without the contact scan: the ground ramp
    assert np.median(flat[50:80, 65:85]) > 1.5 * trunk


def test_a_branch_in_front_of_the_sky_is_near_and_a_cloud_is_not():
    rng = np.random.default_rng(1)
    img = _landscape(rng)
    _tree(img, rng, 0, 18, 0, 40)  # a dark branch hanging into the top-left corner, sky all around below it
    img[0:12, 120:170] = np.clip(0.92 + 0.04 * rng.standard_normal((12, 50, 1)), 0, 1)  # a cloud at the top
    cfg = DepthConfig()
    depth, _ = landscape_prior(img, cfg)
    far_sky = cfg.sky_depth * cfg.near
    assert np.median(depth[2:14, 5:35]) < 3 * cfg.near  # the branch: near
    assert np.median(depth[2:10, 125:165]) >= cfg.max_ground_depth * cfg.near  # the cloud: far
    no_occluders, _ = landscape_prior(img, cfg, CUES - {"occluders"})
    assert np.median(no_occluders[2:14, 5:35]) == pytest.approx(far_sky)


def test_a_forest_canopy_is_not_sky():
    rng = np.random.default_rng(2)
    img = np.zeros((H, W, 3), np.float32)
    img[:70] = np.array([0.12, 0.3, 0.1]) * _noise((70, W, 1), rng, 0.5, 1.5)  # canopy: no sky at all
    img[70:] = np.array([0.4, 0.3, 0.18]) * _noise((50, W, 1), rng, 0.7, 1.3)  # forest floor
    for c0, base in ((20, 110), (90, 85), (150, 100)):
        _tree(img, rng, 0, base, c0, c0 + 14)
    cfg = DepthConfig()
    sky, _ = segment_sky(img, cfg)
    depth, info = landscape_prior(img, cfg)
    assert not sky.any() and info["sky_fraction"] == 0
    assert np.all(depth[:40] < cfg.sky_depth * cfg.near) and np.median(depth[-5:]) < 2 * cfg.near
    assert np.median(depth[10:60, 22:32]) < np.median(depth[10:60, 92:102])  # the nearer trunk is nearer


def test_segment_sky_signature():
    rng = np.random.default_rng(3)
    img = _landscape(rng)
    sky, matte = segment_sky(img, DepthConfig())
    assert sky.shape == matte.shape == (H, W) and sky.dtype == bool and matte.dtype.kind == "f"
    assert 0 <= matte.min() and matte.max() <= 1 and sky[:40].mean() > 0.9 and not sky[50:].any()


def test_contact_scan():
    plane = plane_disparity(6, 0.5, 10.0)  # (v - 0.5) / 5: 0.2 ... 1.0, never below 0.1
    np.testing.assert_allclose(plane, [0.1, 0.2, 0.4, 0.6, 0.8, 1.0])
    p = np.array([[0, 0], [0, 0], [0, 1], [0, 1], [1, 1], [1, 1]], np.float64)  # column 0: upright above row 4
    sky = np.zeros((6, 2), bool)
    sky[1, 1] = True
    disp, hanging = contact_scan(p, plane, sky)
    np.testing.assert_allclose(disp[:, 0], [0.8, 0.8, 0.8, 0.8, 0.8, 1.0])  # stands where it meets the ground
    np.testing.assert_allclose(disp[:, 1], [0.0, 0.0, 0.4, 0.6, 0.8, 1.0])  # ground, then sky (0), then above it
    assert hanging.tolist() == [[False, True], [False, False], [False, False], [False, False], [False, False],
                                [False, False]]


def test_the_sky_reaches_down_to_a_cliff_top():
    """A textured grey cliff under a blue sky with white clouds: the sky score's smoothness term is low within a few
    pixels of the cliff's top edge; those sky pixels join the sky (`grow_sky_edge`) instead of standing between
    the cliff and the sky (streaks hanging in the sky seen from a moved camera), and no cliff pixel becomes sky.
    Before the band was grown, 3-4 rows of sky above the edge stood at cliff-like depths."""
    rng = np.random.default_rng(3)
    img = _landscape(rng, sky_rows=80)
    edge = (40 + 8 * np.sin(np.arange(W) / 17.0)).astype(int)  # the cliff's top row in each column
    rows = np.arange(H)[:, None]
    cliff = (rows >= edge[None, :]) & (rows < 80)
    grain = _noise((H, W, 1), rng, 0.75, 1.25) * _noise((1, W, 1), rng, 0.8, 1.2)
    img = np.where(cliff[..., None], np.clip(np.array([0.5, 0.48, 0.46]) * grain, 0, 1), img)
    cloud = (rows < edge[None, :]) & (np.abs(np.arange(W)[None, :] - 100) < 30)
    img = np.where(cloud[..., None], np.array([0.92, 0.94, 0.96], np.float32), img).astype(np.float32)
    cfg = DepthConfig()
    depth, _ = landscape_prior(img, cfg)
    sky_depth = cfg.sky_depth * cfg.near
    above = rows < edge[None, :]  # sky in every column
    assert (depth[above] >= sky_depth * 0.999).mean() > 0.995
    assert (depth[cliff] < 0.5 * sky_depth).all()
