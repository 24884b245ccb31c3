"""views/transforms.json read the way nerfstudio documents it (docs.nerf.studio, "Data conventions"): camera axes
OpenGL/Blender (+x right, +y up, +z back, looking along -z), `transform_matrix` camera-to-world, intrinsics
fl_x, fl_y, cx, cy, w, h at the top, pixel centres at +0.5, `applied_transform` the 3x4 transform applied to the
original world. The reader below is written from that description only; it never imports landscape4d.camera."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from landscape4d.artifacts import load_views
from landscape4d.camera import (WORLD_TO_Z_UP, Intrinsics, c2w_from_nerfstudio, c2w_to_nerfstudio, project,
                                training_cameras, unproject_depth, w2c_from_c2w)
from landscape4d.cli import main


class NerfstudioStyleReader:
    """A minimal independent reader of a nerfstudio transforms.json."""

    def __init__(self, path):
        self.root = path.parent
        self.meta = json.loads(path.read_text())
        m = self.meta
        self.fx, self.fy, self.cx, self.cy = (float(m[k]) for k in ("fl_x", "fl_y", "cx", "cy"))
        self.w, self.h = int(m["w"]), int(m["h"])
        applied = np.eye(4)
        if "applied_transform" in m:
            applied[:3] = np.asarray(m["applied_transform"], float)
        self.applied = applied

    def c2w(self, i: int) -> np.ndarray:
        return np.asarray(self.meta["frames"][i]["transform_matrix"], float)

    def to_file_world(self, p: np.ndarray) -> np.ndarray:
        """A point of the original world (before applied_transform) -> this file's world."""
        return (self.applied @ np.append(p, 1.0))[:3]

    def project(self, i: int, p_world: np.ndarray) -> tuple[float, float, float]:
        """-> (u, v, distance in front of the camera) of a point of the file's world, pixel centres at +0.5."""
        x, y, z = (np.linalg.inv(self.c2w(i)) @ np.append(p_world, 1.0))[:3]
        front = -z  # the camera looks along -z
        return self.fx * x / front + self.cx, self.cy - self.fy * y / front, front

    def unproject(self, i: int, u: float, v: float, depth: float) -> np.ndarray:
        """The file-world point at z-depth `depth` along the ray through pixel coordinates (u, v)."""
        ray = np.array([(u - self.cx) / self.fx, -(v - self.cy) / self.fy, -1.0]) * depth
        return (self.c2w(i) @ np.append(ray, 1.0))[:3]


def test_convention_helpers_round_trip_and_orient():
    poses = training_cameras(12, 5.0, 0.1, 8.0)
    for c2w in poses:
        m = c2w_to_nerfstudio(c2w)
        np.testing.assert_allclose(np.linalg.det(m[:3, :3]), 1.0, atol=1e-12)  # still a rotation
        np.testing.assert_allclose(c2w_from_nerfstudio(m, WORLD_TO_Z_UP[:3].tolist()), c2w, atol=1e-12)
    m0 = c2w_to_nerfstudio(np.eye(4))
    # the input camera looks into the scene (+y of the z-up world) with its up axis (+y camera) along world +z
    np.testing.assert_allclose(-m0[:3, 2], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(m0[:3, 1], [0, 0, 1], atol=1e-12)


@pytest.fixture(scope="module")
def views_run(demo_input, tmp_path_factory):
    run = tmp_path_factory.mktemp("ns") / "run"
    argv = ["views", str(demo_input["image"]), "--mask", str(demo_input["mask"]), "--hints",
            str(demo_input["hints"]), "-o", str(run), "--num-views", "14"]
    assert main(argv) == 0
    return run


def test_transforms_json_reads_as_nerfstudio_and_reprojects(views_run):
    path = views_run / "views" / "transforms.json"
    ns = NerfstudioStyleReader(path)
    vs = load_views(views_run)
    assert (ns.w, ns.h) == (vs.intr.width, vs.intr.height) and len(ns.meta["frames"]) == len(vs) == 14
    K = torch.tensor(vs.intr.matrix())
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(-2, 2, 20), rng.uniform(-1, 1, 20), rng.uniform(4, 12, 20)], axis=1)
    for i in (0, 3, 9, 13):
        ours_uv, ours_z = project(torch.from_numpy(pts), K, torch.from_numpy(w2c_from_c2w(vs.c2w[i])))
        for k, p in enumerate(pts):
            u, v, front = ns.project(i, ns.to_file_world(p))
            np.testing.assert_allclose([u, v, front], [*ours_uv[k].tolist(), float(ours_z[k])], rtol=1e-9, atol=1e-7)
    for f in ns.meta["frames"]:
        assert (ns.root / f["file_path"]).is_file()
        assert "mask_path" not in f and "depth_path" not in f  # nerfstudio would treat ours as training masks / mm


def test_depth_of_one_view_lands_on_the_same_surface_in_another(views_run):
    """A pixel of view 9 unprojected with its z-depth (nerfstudio reader) projects into the input view where our
    own geometry (unproject_depth with our c2w, project) puts it."""
    ns = NerfstudioStyleReader(views_run / "views" / "transforms.json")
    vs = load_views(views_run, [0, 9])
    depth = vs.depth[1]
    ours = unproject_depth(depth, vs.intr, vs.c2w[1]).reshape(depth.shape + (3,))
    K = torch.tensor(vs.intr.matrix())
    rows, cols = np.nonzero(depth > 0)
    pick = np.linspace(0, len(rows) - 1, 25).astype(int)
    for r, c in zip(rows[pick], cols[pick]):
        p_file = ns.unproject(9, c + 0.5, r + 0.5, float(depth[r, c]))
        u, v, _ = ns.project(0, p_file)
        uv, _ = project(torch.from_numpy(ours[r, c][None].astype(np.float64)), K,
                        torch.from_numpy(w2c_from_c2w(vs.c2w[0])))
        np.testing.assert_allclose([u, v], uv[0].tolist(), atol=1e-3)
    assert Intrinsics(ns.fx, ns.fy, ns.cx, ns.cy, ns.w, ns.h) == vs.intr


def test_views_transforms_json_works_as_a_custom_path(views_run, tmp_path):
    """--custom-path RUN/views/transforms.json renders along the training cameras (converted back to ours)."""
    from landscape4d.camera import load_custom_trajectory
    from landscape4d.errors import InputError

    poses = load_custom_trajectory(views_run / "views" / "transforms.json")
    np.testing.assert_allclose(np.stack(poses), np.stack(load_views(views_run).c2w), atol=1e-12)
    bad = json.loads((views_run / "views" / "transforms.json").read_text())
    bad["applied_transform"] = [[1, 0], [0, 1]]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="applied_transform"):
        load_custom_trajectory(tmp_path / "bad.json")
