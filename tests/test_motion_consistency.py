"""Multi-view consistency metric, and the whole chain: hints -> per-view maps (inconsistent) -> refined 3D motion
(consistent)."""

from pathlib import Path

import numpy as np
import pytest

from landscape4d.camera import unproject_depth
from landscape4d.config import MotionConfig
from landscape4d.motion import (
    ViewMotion,
    flows_from_3d,
    lift_motion,
    multiview_consistency_epe,
    per_view_motion,
    project_points,
    refine_motion,
)
from landscape4d.motion.synthetic import tilted_plane_scene

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "samples" / "cinemagraphy-demo1"


@pytest.fixture(scope="module")
def scene():
    return tilted_plane_scene()


def test_consistent_flows_score_zero(scene):
    s = scene
    res = multiview_consistency_epe([v.flow for v in s.views], s.views, s.depth, s.intr, s.mask)
    assert res["pixels"] == s.mask.sum() and res["mean_views"] > 6
    assert res["epe"] == res["epe_3d"] < 2e-4
    # the constant-depth reprojection variant has a floor for motion with a depth component (documented)
    assert res["epe_reproject"] < 0.05 * np.linalg.norm(s.views[0].flow, axis=-1)[s.mask].mean()


def test_perturbed_flows_score_positive(scene):
    s = scene
    rng = np.random.default_rng(0)
    flows = [v.flow + (rng.normal(scale=0.05, size=v.flow.shape) * v.mask[..., None]).astype(np.float32)
             for v in s.views]
    res = multiview_consistency_epe(flows, s.views, s.depth, s.intr, s.mask)
    assert res["epe_3d"] > 0.02 and res["epe_reproject"] > 0.02 and res["epe_vs_input"] > 0.02
    # a consistent but different 3D motion (all flows of another velocity) is still consistent
    other = tilted_plane_scene(velocity=(-0.01, 0.03, 0.0))
    res = multiview_consistency_epe([v.flow for v in other.views], other.views, other.depth, other.intr, other.mask)
    assert res["epe_3d"] < 2e-4
    # one view disagreeing with all the others
    flows = [v.flow for v in s.views]
    flows[3] = flows[3] * 1.5
    res = multiview_consistency_epe(flows, s.views, s.depth, s.intr, s.mask)
    assert res["per_view_3d"][3] > max(res["per_view_3d"][:3] + res["per_view_3d"][4:])


def test_metric_ignores_views_that_cannot_see(scene):
    s = scene
    blind = [ViewMotion(v.c2w, np.zeros_like(v.mask), v.depth) for v in s.views[1:]]
    res = multiview_consistency_epe([v.flow for v in s.views], [s.views[0]] + blind, s.depth, s.intr, s.mask)
    assert res["pixels"] == 0 and res["epe"] == 0.0


def chain(arrows, mask, depth, intr, geometry, cfg):
    flows = per_view_motion(arrows, mask, depth, intr, geometry, cfg)
    views = [ViewMotion(g.c2w, g.mask, g.depth, f) for g, f in zip(geometry, flows)]
    points = unproject_depth(depth, intr).astype(np.float64)
    init = lift_motion(flows[0], depth, intr)
    vel, info = refine_motion(points, mask.reshape(-1), init, views, intr, cfg)
    before = multiview_consistency_epe(flows, views, depth, intr, mask)
    refined = flows_from_3d(points, vel, views, intr, mask.reshape(-1), depth)
    after = multiview_consistency_epe(refined, views, depth, intr, mask)
    return before, after, refined, vel


def test_refinement_makes_hint_motion_consistent(scene):
    s = scene
    rng = np.random.default_rng(1)
    ij = np.argwhere(s.mask)
    sel = ij[rng.choice(len(ij), 6, replace=False)]
    p = s.points.reshape(s.intr.height, s.intr.width, 3)[sel[:, 0], sel[:, 1]]
    cfg = MotionConfig()
    end, _ = project_points(p + cfg.hint_frames * s.velocity, s.intr, np.eye(4))
    arrows = np.stack([sel[:, ::-1] + 0.5, end], 1)
    before, after, refined, _ = chain(arrows, s.mask, s.depth, s.intr, s.views, cfg)
    print(f"synthetic consistency epe_3d {before['epe']:.5f} -> {after['epe']:.6f} px/frame")
    assert before["epe"] > 1e-3
    assert after["epe"] < before["epe"] / 20
    for f, v in zip(refined, s.views):
        assert np.all(f[~v.mask] == 0)


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared sample not available")
def test_real_sample_consistency():
    from landscape4d.motion.bench import sample

    res = sample(SAMPLE.resolve(), 192, MotionConfig(refine_iters=200), num_views=9)
    print(f"sample consistency epe_3d {res['before']['epe']:.5f} -> {res['after']['epe']:.6f} px/frame")
    assert res["after"]["epe"] < res["before"]["epe"] / 20
