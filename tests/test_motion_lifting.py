"""Lifting 2D motion to 3D, projecting it back, sampling and drawing flows into views, arrow projection."""

import numpy as np
import pytest

from landscape4d.camera import Intrinsics, look_at, unproject_depth
from landscape4d.config import MotionConfig
from landscape4d.motion import (
    ViewMotion,
    lift_arrows,
    lift_motion,
    per_view_motion,
    project_arrows,
    project_motion,
    render_flow,
    sample_flow,
)
from landscape4d.motion.geometry import sample_flow_reference
from landscape4d.motion.lifting import lift_motion_reference, render_flow_reference, warp_flow_to_view
from landscape4d.motion.synthetic import tilted_plane_scene

INTR = Intrinsics.from_fov(16, 12, 60.0)


def random_inputs(seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(2.0, 6.0, (12, 16))
    depth[0, 0] = np.inf
    depth[1, 3] = 0.0
    flow = rng.normal(size=(12, 16, 2)) * 0.7
    c2w = look_at(np.array([0.3, -0.1, 0.2]), np.array([0.0, 0.0, 4.0]))
    return depth, flow, c2w


def test_lift_matches_reference():
    depth, flow, c2w = random_inputs()
    for pose in (None, c2w):
        fast = lift_motion(flow, depth, INTR, pose)
        ref = lift_motion_reference(flow, depth, INTR, pose)
        assert fast.shape == (12 * 16, 3)
        np.testing.assert_allclose(fast, ref, atol=1e-6)
    assert np.all(lift_motion(flow, depth, INTR)[[0, 19]] == 0)  # invalid depths


def test_lift_project_round_trip():
    depth, flow, c2w = random_inputs(1)
    ok = np.isfinite(depth) & (depth > 0)
    # in the input view (identity) and in another view whose own depth/flow are given
    for pose in (np.eye(4), c2w):
        vel = lift_motion(flow, depth, INTR, pose)
        pts = unproject_depth(np.where(ok, depth, 1.0), INTR, pose).astype(np.float64)
        back, _, z = project_motion(pts, vel.astype(np.float64), INTR, pose)
        np.testing.assert_allclose(back[ok.reshape(-1)], flow.reshape(-1, 2)[ok.reshape(-1)], atol=2e-5)
        # constant depth in that view
        cam = (pts + vel) @ np.linalg.inv(pose)[:3, :3].T + np.linalg.inv(pose)[:3, 3]
        np.testing.assert_allclose(cam[ok.reshape(-1), 2], depth[ok], rtol=1e-6)


def test_sample_flow_matches_reference():
    rng = np.random.default_rng(2)
    flow = rng.normal(size=(12, 16, 2))
    mask = rng.random((12, 16)) > 0.3
    uv = np.concatenate([rng.uniform(-1, 17, (200, 2)), [[np.nan, 3.0], [0.5, 0.5], [15.99, 11.99]]])
    fast, ok = sample_flow(flow, mask, uv)
    ref, ok_ref = sample_flow_reference(flow, mask, uv)
    np.testing.assert_array_equal(ok, ok_ref)
    np.testing.assert_allclose(fast, ref, atol=1e-12)
    # at a pixel centre inside the mask the value is the pixel's own
    i, j = np.argwhere(mask)[0]
    v, _ = sample_flow(flow, mask, np.array([[j + 0.5, i + 0.5]]))
    np.testing.assert_allclose(v[0], flow[i, j])


def test_render_flow_matches_reference_and_zbuffer():
    rng = np.random.default_rng(3)
    pts = np.concatenate([rng.uniform([-1, -1, 3], [1, 1, 6], (300, 3)),
                          [[0.0, 0.0, 2.0], [0.0, 0.0, 5.0]]])  # two points on the same pixel
    vel = rng.normal(size=(302, 3)) * 0.01
    c2w = look_at(np.array([0.1, 0.0, 0.0]), np.array([0.0, 0.0, 4.0]))
    fast, cov = render_flow(pts, vel, INTR, c2w)
    ref, cov_ref = render_flow_reference(pts, vel, INTR, c2w)
    np.testing.assert_array_equal(cov, cov_ref)
    np.testing.assert_allclose(fast, ref, atol=1e-6)
    near, _, _ = project_motion(pts[-2:-1], vel[-2:-1], INTR, np.eye(4))
    flow0, _ = render_flow(pts, vel, INTR, np.eye(4))
    np.testing.assert_allclose(flow0[6, 8], near[0], atol=1e-6)  # nearer point wins
    mask = np.zeros((12, 16), bool)
    mask[2:10, 3:12] = True
    filled, _ = render_flow(pts, vel, INTR, c2w, mask=mask)
    assert np.all(filled[~mask] == 0) and np.all(np.abs(filled[mask]).sum(-1) > 0)


def test_warp_flow_to_view_matches_analytic_flow():
    s = tilted_plane_scene()
    vel = np.where(s.mask.reshape(-1, 1), s.velocity, 0.0)
    for v in s.views:
        flow = warp_flow_to_view(vel, s.mask, s.depth, s.intr, v.c2w, v.depth, v.mask)
        assert np.all(flow[~v.mask] == 0)
        err = np.linalg.norm(flow - v.flow, axis=-1)[v.mask]
        assert np.median(err) < 1e-4 and err.mean() < 0.01, (np.median(err), err.mean())


def test_arrows_projected_into_views():
    s = tilted_plane_scene()
    ij = np.argwhere(s.mask)[::97]
    start = ij[:, ::-1] + 0.5
    p = s.points.reshape(s.intr.height, s.intr.width, 3)[ij[:, 0], ij[:, 1]]
    from landscape4d.motion import project_points

    end, _ = project_points(p + 5 * s.velocity, s.intr, np.eye(4))
    arrows = np.stack([start, end], 1)
    world, valid = lift_arrows(arrows, s.depth, s.intr)
    assert valid.all()
    np.testing.assert_allclose(world[:, 0], p, atol=1e-5)
    # the end is lifted with the bilinear depth: back on the plane, 5 frames of the true motion away
    np.testing.assert_allclose(world[:, 1] - world[:, 0], np.broadcast_to(5 * s.velocity, p.shape), atol=2e-4)
    a0, vis0 = project_arrows(arrows, s.depth, s.intr, s.views[0])
    assert vis0.all()
    np.testing.assert_allclose(a0, arrows, atol=1e-6)
    # a view looking away sees none of them
    away = ViewMotion(look_at(np.zeros(3), np.array([0.0, 0.0, -4.0])), s.mask, s.depth)
    _, vis = project_arrows(arrows, s.depth, s.intr, away)
    assert not vis.any()
    # occluded: a view whose rendered depth is much nearer than the points
    wall = ViewMotion(np.eye(4), s.mask, np.full_like(s.depth, 0.5))
    _, vis = project_arrows(arrows, s.depth, s.intr, wall)
    assert not vis.any()


@pytest.mark.parametrize("method,tol", [("laplace", 0.05), ("rbf", 0.02)])
def test_per_view_motion_close_to_truth(method, tol):
    # 18 hints of 5 frames each (short arrows: a 60-frame arrow is an average velocity along a perspective path)
    s = tilted_plane_scene()
    ij = np.argwhere(s.mask)[::50]
    start = ij[:, ::-1] + 0.5
    p = s.points.reshape(s.intr.height, s.intr.width, 3)[ij[:, 0], ij[:, 1]]
    from landscape4d.motion import project_points

    cfg = MotionConfig(hint_frames=5.0, interpolation=method)
    end, _ = project_points(p + cfg.hint_frames * s.velocity, s.intr, np.eye(4))
    flows = per_view_motion(np.stack([start, end], 1), s.mask, s.depth, s.intr, s.views, cfg)
    assert len(flows) == len(s.views)
    for f, v in zip(flows, s.views):
        assert f.shape == v.flow.shape and np.all(f[~v.mask] == 0)
        err = np.linalg.norm(f - v.flow, axis=-1)[v.mask].mean()
        assert err < tol * np.linalg.norm(v.flow, axis=-1)[v.mask].mean()
    # direction mode: pseudo-arrows from the constant field
    flows = per_view_motion(None, s.mask, s.depth, s.intr, s.views, MotionConfig(direction=(1.0, 0.0), speed=0.3))
    np.testing.assert_allclose(flows[0][s.mask], np.broadcast_to([0.3, 0.0], (s.mask.sum(), 2)), atol=1e-3)


@pytest.mark.parametrize("bad", [np.zeros((12, 16, 3)), np.zeros((10, 16, 2))])
def test_lift_shape_check(bad):
    with pytest.raises(ValueError):
        lift_motion(bad, np.ones((12, 16)), INTR)


def test_flows_from_3d_paths_agree_with_analytic_flow():
    from landscape4d.motion import flows_from_3d

    s = tilted_plane_scene()
    m = s.mask.reshape(-1)
    vel = np.where(m[:, None], s.velocity, 0.0)
    backward = flows_from_3d(s.points, vel, s.views, s.intr, m)  # input depth taken from the points' z
    explicit = flows_from_3d(s.points, vel, s.views, s.intr, m, s.depth)
    forward = flows_from_3d(s.points, vel, s.views, s.intr)  # z-buffered splat
    for b, e, f, v in zip(backward, explicit, forward, s.views):
        np.testing.assert_allclose(b, e, atol=1e-6)
        assert np.median(np.linalg.norm(b - v.flow, axis=-1)[v.mask]) < 1e-4
        assert np.median(np.linalg.norm(f - v.flow, axis=-1)[v.mask]) < 0.02
