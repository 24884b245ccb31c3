"""3D motion error against a synthetic scene's ground truth, and the motion numbers eval reads from a run."""

from __future__ import annotations

import numpy as np
import pytest

from landscape4d.evaluation.motion3d import consistency_metrics, motion3d_error, resize_field


def _field(h=6, w=8, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(h, w, 3)).astype(np.float32)
    depth = rng.uniform(2, 5, size=(h, w)).astype(np.float32)
    return v, depth


def test_motion3d_error_is_zero_up_to_the_depth_scale():
    v, depth = _field()
    mask = np.ones(depth.shape, bool)
    res = motion3d_error(v / 3, depth / 3, v, depth, mask)  # a run at a third of the GT's scale
    assert res["depth_scale"] == pytest.approx(3.0) and res["epe"] == pytest.approx(0.0, abs=1e-6)
    assert res["angle_deg"] == pytest.approx(0.0, abs=0.05) and res["pixels"] == mask.size


def test_motion3d_error_of_wrong_motion():
    v, depth = _field()
    mask = np.zeros(depth.shape, bool)
    mask[:, :4] = True
    still = motion3d_error(np.zeros_like(v), depth, v, depth, mask)
    assert still["relative_epe"] == pytest.approx(1.0) and still["angle_deg"] == pytest.approx(90.0)
    flipped = motion3d_error(-v, depth, v, depth, mask)
    assert flipped["relative_epe"] == pytest.approx(2.0) and flipped["angle_deg"] == pytest.approx(180.0)
    rot = np.stack([-v[..., 1], v[..., 0], np.zeros_like(v[..., 0])], -1)  # perpendicular (in x, y)
    v2 = v.copy()
    v2[..., 2] = 0
    assert motion3d_error(rot, depth, v2, depth, mask)["angle_deg"] == pytest.approx(90.0, abs=1e-3)
    assert motion3d_error(v, depth, v, depth, np.zeros_like(mask)) == {"pixels": 0}


def test_resize_field_keeps_values():
    v, _ = _field()
    assert resize_field(v, 6, 8) is v
    big = resize_field(np.ones((6, 8, 3), np.float32) * 2, 12, 16)
    assert big.shape == (12, 16, 3) and np.allclose(big, 2)


def test_consistency_metrics_name_each_number_for_what_it_is():
    cons = {"agreement_with_views": {"initial": {"epe": 0.3}, "refined": {"epe": 0.1}},
            "independent_flows_consistency": {"epe": 0.05},
            "refined_flows_consistency_by_construction": {"epe": 0.001}}
    assert consistency_metrics(cons) == {"views_epe_initial_3d": 0.3, "views_epe_refined_3d": 0.1,
                                         "consistency_epe_before": 0.05,
                                         "consistency_epe_after_by_construction": 0.001}
    old = {"before": {"epe": 0.05}, "after": {"epe": 0.001}}  # a run of the earlier consistency.json
    assert consistency_metrics(old) == {"consistency_epe_before": 0.05, "consistency_epe_after_by_construction": 0.001}
