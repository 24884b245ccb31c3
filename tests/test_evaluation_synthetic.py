"""Synthetic ground-truth scenes: determinism, depth against the analytic geometry, mask/motion consistency,
true motion against the rendered frames, exact loops, hints and the saved files."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from landscape4d.camera import project
from landscape4d.evaluation.scenes import FALL, GROUND, SKY, WATER, Hits, SceneRenderer
from landscape4d.evaluation.synthetic import SyntheticConfig, generate_scene, image_flow, load_scene_json
from landscape4d.io.images import read_png

W, H, N = 96, 64, 12
MOVING = {"river": WATER, "waterfall": FALL, "lake": SKY}


@pytest.fixture(scope="module", params=["river", "waterfall", "lake"])
def scene(request):
    return generate_scene(request.param, seed=1, width=W, height=H, num_frames=N)


def test_same_seed_same_arrays_other_seed_differs():
    a = generate_scene("lake", 5, 64, 40, 8)
    b = generate_scene("lake", 5, 64, 40, 8)
    for name in ("image", "mask", "depth", "motion3d", "flow2d", "hints"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.render_video([np.eye(4)], 3), b.render_video([np.eye(4)], 3))
    c = generate_scene("lake", 6, 64, 40, 8)
    assert not np.array_equal(a.image, c.image)


def test_outputs_shapes_and_ranges(scene):
    assert scene.image.shape == (H, W, 3) and scene.image.dtype == np.float32
    assert 0 <= scene.image.min() and scene.image.max() <= 1
    assert scene.mask.shape == (H, W) and scene.mask.dtype == bool
    assert scene.depth.shape == (H, W) and (scene.depth > 0).all()
    assert scene.motion3d.shape == (H, W, 3) and scene.flow2d.shape == (H, W, 2)
    assert 0.01 < scene.mask.mean() < 0.6
    assert scene.sky.any() and (~scene.sky).any()
    assert scene.scene_depth == pytest.approx(float(np.median(scene.depth[~scene.sky])))


def test_depth_matches_the_analytic_geometry(scene):
    r = scene.renderer
    lay = r.layout
    hits = r.cast(np.eye(4))
    o, d = r.rays(np.eye(4))  # scene frame, camera z = 1 so the ray parameter is the depth
    depth = torch.from_numpy(scene.depth.reshape(-1).astype(np.float64))
    mat = hits.material
    water, sky, ground, fall = mat == WATER, mat == SKY, mat == GROUND, mat == FALL
    # water plane (elevation 0): y_scene = h_cam; sky plane: z_scene = sky_z; waterfall sheet: z_scene = z
    if water.any():
        assert torch.allclose(depth[water], lay.h_cam / d[water, 1], rtol=1e-6)
    assert torch.allclose(depth[sky], lay.sky_z / d[sky, 2], rtol=1e-6)
    if fall.any():
        assert torch.allclose(depth[fall], lay.waterfall.z / d[fall, 2], rtol=1e-6)
    # terrain: the hit point lies on the heightfield
    p = o[ground] + depth[ground, None] * d[ground]
    residual = (lay.h_cam - p[:, 1]) - lay.heightfield.elevation(p[:, 0], p[:, 2])
    assert bool((residual.abs() <= 2e-3 * depth[ground]).all())
    # and nothing is hit before: the terrain is above the ray nowhere in front of the hit (checked on samples)
    t = torch.linspace(0.3, 0.97, 24, dtype=torch.float64)[None, :] * depth[ground, None]
    q = o[ground][:, None] + t[..., None] * d[ground][:, None]
    clear = (lay.h_cam - q[..., 1]) - lay.heightfield.elevation(q[..., 0], q[..., 2])
    assert float((clear < -1e-6).float().mean()) < 0.002  # at most a few grazing rays


def test_mask_is_where_the_motion_is_and_on_the_moving_surface(scene):
    moving = np.linalg.norm(scene.motion3d, axis=-1) > 0
    assert np.array_equal(scene.mask, moving)
    material = scene.renderer.cast(np.eye(4)).material.reshape(H, W).numpy()
    assert np.array_equal(scene.mask, material == MOVING[scene.config.kind])
    assert (scene.flow2d[~scene.mask] == 0).all()
    assert (np.linalg.norm(scene.flow2d[scene.mask], axis=-1) > 0).all()


def test_video_loops_and_static_pixels_stay(scene):
    video = scene.render_video([np.eye(4)], N + 1)
    assert np.array_equal(video[N], video[0])
    assert np.array_equal(video[N // 2][~scene.mask], video[0][~scene.mask])  # only the moving surface changes
    assert np.abs(video[N // 2][scene.mask] - video[0][scene.mask]).mean() > 1e-3
    # render_video re-shades only the moving pixels: it equals shading the whole frame
    full = scene.renderer.shade(scene.renderer.cast(np.eye(4)), float(N // 2)).reshape(H, W, 3).numpy()
    assert np.array_equal(video[N // 2], full)


def _warp(frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """frame sampled at pixel + flow (bilinear): the colour that moved into each pixel's next position."""
    h, w = flow.shape[:2]
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    gx = (u + flow[..., 0]) / w * 2 - 1
    gy = (v + flow[..., 1]) / h * 2 - 1
    grid = torch.from_numpy(np.stack([gx, gy], -1)[None]).float()
    img = torch.from_numpy(frame).permute(2, 0, 1)[None]
    return F.grid_sample(img, grid, align_corners=False, padding_mode="border")[0].permute(1, 2, 0).numpy()


def test_surface_points_carry_their_colour_along_the_true_motion(scene):
    # shading the hit points moved by k frames of true motion, k frames later, gives the same colours (up to
    # the two-phase blend, kept negligible by a very long loop and frames symmetric about its middle)
    r = SceneRenderer(scene.layout, scene.intrinsics, 10000)
    hits = r.cast(np.eye(4))
    sel = torch.from_numpy(scene.mask.reshape(-1))
    sub = Hits(*(getattr(hits, f.name)[sel] for f in dataclasses.fields(Hits)))
    k = 6
    before = r.shade(sub, 5000 - k / 2)
    after = r.shade(dataclasses.replace(sub, points=sub.points + k * r.scene_velocity(sub)), 5000 + k / 2)
    static = r.shade(sub, 5000 + k / 2)
    assert float((after - before).abs().mean()) < 0.05 * float((static - before).abs().mean())


@pytest.mark.parametrize("kind", ["waterfall", "lake"])
def test_true_image_motion_explains_the_rendered_frames(kind):
    sc = generate_scene(kind, seed=2, width=128, height=96, num_frames=10000)
    hits = sc.renderer.cast(np.eye(4))
    m = sc.mask & np.roll(sc.mask, 4, 0) & np.roll(sc.mask, -4, 0) & np.roll(sc.mask, 4, 1) & np.roll(sc.mask, -4, 1)
    m[:4] = m[-4:] = False  # away from the moving region's edges and the image border
    k = max(1, round(2.0 / float(np.linalg.norm(sc.flow2d[m], axis=-1).mean())))  # about 2 pixels of motion
    f0 = sc.renderer.shade(hits, 5000 - k / 2).reshape(96, 128, 3).numpy()
    f1 = sc.renderer.shade(hits, 5000 + k / 2).reshape(96, 128, 3).numpy()
    moved = np.abs(_warp(f1, k * sc.flow2d) - f0)[m].mean()
    still = np.abs(f1 - f0)[m].mean()
    assert moved < 0.25 * still


def test_image_flow_hand_computed():
    # a point 10 units ahead moving 0.1 units per frame sideways moves f * 0.1 / 10 pixels per frame
    from landscape4d.camera import Intrinsics
    intr = Intrinsics(200.0, 200.0, 50.0, 40.0, 100, 80)
    flow = image_flow(np.array([[0.0, 0.0, 10.0]]), np.array([[0.1, 0.0, 0.0]]), intr)
    assert flow[0] == pytest.approx([2.0, 0.0])


def test_hints_follow_the_flow(scene):
    hints = scene.hints
    assert hints.ndim == 3 and hints.shape[1:] == (2, 2) and 1 <= hints.shape[0] <= 5
    for (u0, v0), (u1, v1) in hints:
        i, j = int(v0), int(u0)
        assert scene.mask[i, j]
        assert (u1 - u0, v1 - v0) == pytest.approx(tuple(60.0 * scene.flow2d[i, j]), abs=1e-3)
        assert 0 <= u1 <= W and 0 <= v1 <= H
    starts = hints[:, 0]
    if len(starts) > 1:  # spread out, not clustered
        dists = np.linalg.norm(starts[:, None] - starts[None], axis=-1) + np.eye(len(starts)) * 1e9
        assert dists.min() > 3


def test_trajectory_video_and_camera_motion(scene):
    video = scene.render_trajectory("side", num_frames=4)
    assert video.shape == (4, H, W, 3)
    assert np.array_equal(video[0], scene.image)  # side starts at the input camera, frame 0
    assert np.abs(video[1] - video[0]).mean() > 1e-3
    # a moved camera sees the same world point where projection says: the depth of a ground pixel
    c2w = scene.trajectory("side", 4)[1]
    out = scene.render(c2w, 0.0)
    k = torch.from_numpy(scene.intrinsics.matrix())
    i, j = H - 6, W // 2  # near ground, seen by both cameras
    hits = scene.renderer.cast(np.eye(4))
    point_world = (hits.points[i * W + j] @ scene.renderer.r_ws)[None]
    uv, z = project(point_world, k, torch.from_numpy(np.linalg.inv(c2w)))
    u, v = uv[0].numpy()
    assert out.depth[int(v), int(u)] == pytest.approx(float(z[0]), rel=0.02)


def test_save_writes_the_documented_files(tmp_path):
    sc = generate_scene("river", seed=3, width=64, height=48, num_frames=6)
    paths = sc.save(tmp_path / "s", trajectories=("up-down",), video_format="npy")
    d = tmp_path / "s"
    for name in ("image.png", "mask.png", "hints.json", "depth.npy", "motion3d.npy", "flow2d.npy", "scene.json",
                 "gt/up-down.npy"):
        assert (d / name).exists(), name
    assert np.abs(read_png(d / "image.png") - sc.image).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(read_png(d / "mask.png") > 0.5, sc.mask)
    assert np.array_equal(np.load(d / "depth.npy"), sc.depth)
    hints = json.loads((d / "hints.json").read_text())["hints"]
    assert len(hints) == len(sc.hints) and set(hints[0]) == {"start", "end"}
    assert hints[0]["start"] == pytest.approx(sc.hints[0, 0].tolist(), abs=1e-3)
    gt = np.load(d / "gt/up-down.npy")
    assert gt.shape == (6, 48, 64, 3) and gt.dtype == np.uint8
    assert load_scene_json(d / "scene.json") == sc.config
    assert paths["gt/up-down"] == d / "gt/up-down.npy"


def test_save_mp4(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    sc = generate_scene("lake", seed=4, width=64, height=48, num_frames=4)
    sc.save(tmp_path, trajectories=("circle",))
    import imageio.v3 as iio
    frames = iio.imread(tmp_path / "gt" / "circle.mp4")
    assert frames.shape == (4, 48, 64, 3)
    ref = (sc.render_trajectory("circle") * 255).round()
    assert np.abs(frames.astype(np.float64) - ref).mean() < 6  # near-lossless H.264


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="unknown scene kind"):
        generate_scene("desert")
    with pytest.raises(ValueError, match="num_frames"):
        SyntheticConfig(num_frames=1).validate()
