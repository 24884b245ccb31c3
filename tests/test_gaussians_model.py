"""GaussianModel initialisation and the INRIA-layout PLY round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landscape4d.errors import InputError
from landscape4d.gaussians import GaussianModel, read_ply, write_ply
from landscape4d.gaussians.sh import C0


def test_from_points_scale_opacity_rotation_colour():
    # a regular grid with spacing 0.1: all but the 4 corners have 3 neighbours at 0.1 -> mean 3-NN distance 0.1
    g = np.stack(np.meshgrid(np.arange(6), np.arange(5), indexing="ij"), -1).reshape(-1, 2) * 0.1
    pts = np.concatenate([g, np.full((len(g), 1), 2.0)], axis=1)
    cols = np.random.default_rng(0).uniform(size=pts.shape)
    m = GaussianModel.from_points(pts, cols)
    assert m.num == 30 and m.sh.shape == (30, 1, 3) and m.sh_degree == 0
    corner = (0.1 + 0.1 + 0.1 * np.sqrt(2)) / 3
    expect = torch.full((30, 3), 0.1)
    expect[[0, 4, 25, 29]] = corner
    assert torch.allclose(m.scales, expect, atol=1e-6)
    assert torch.allclose(m.opacities, torch.full((30,), 0.1), atol=1e-6)
    assert torch.equal(m.quats, torch.tensor([1.0, 0, 0, 0]).expand(30, 4))
    assert torch.allclose(m.base_colors, torch.tensor(cols, dtype=torch.float32), atol=1e-6)
    assert torch.allclose(m.sh[:, 0], (torch.tensor(cols, dtype=torch.float32) - 0.5) / C0, atol=1e-5)


def test_from_points_irregular_matches_brute_force_knn_and_sh_degree():
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(200, 3))
    m = GaussianModel.from_points(pts, np.full((200, 3), 128, np.uint8), sh_degree=2, opacity=0.3)
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    expect = np.sort(d, axis=1)[:, 1:4].mean(axis=1)
    assert np.allclose(m.scales[:, 0].numpy(), expect, rtol=1e-5)
    assert m.sh.shape == (200, 9, 3) and m.sh_degree == 2
    assert torch.all(m.sh[:, 1:] == 0)
    assert torch.allclose(m.base_colors, torch.full((200, 3), 128 / 255), atol=1e-6)
    assert torch.allclose(m.opacities, torch.full((200,), 0.3), atol=1e-6)


def test_from_points_duplicates_get_positive_scale():
    pts = np.array([[0, 0, 1], [0, 0, 1], [0, 0, 1], [1, 0, 1], [0, 1, 1]], dtype=np.float64)
    m = GaussianModel.from_points(pts, np.zeros((5, 3)))
    assert torch.isfinite(m.log_scales).all()


def test_model_rejects_bad_shapes():
    with pytest.raises(ValueError):
        GaussianModel(torch.zeros(3, 3), torch.zeros(3, 3), torch.zeros(3, 4), torch.zeros(3), torch.zeros(3, 2, 3))
    with pytest.raises(ValueError):
        GaussianModel(torch.zeros(3, 3), torch.zeros(2, 3), torch.zeros(3, 4), torch.zeros(3), torch.zeros(3, 1, 3))


@pytest.mark.parametrize("k", [1, 4, 16])
def test_ply_round_trip(tmp_path, k):
    g = torch.Generator().manual_seed(k)
    n = 50
    m = GaussianModel(
        torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g), torch.randn(n, 4, generator=g),
        torch.randn(n, generator=g), torch.randn(n, k, 3, generator=g),
    )
    path = write_ply(m, tmp_path / "sub" / "scene.ply")
    back = read_ply(path)
    for name, a in m.params().items():
        assert torch.equal(getattr(back, name), a), name


def test_ply_layout_is_inria(tmp_path):
    from plyfile import PlyData

    m = GaussianModel(torch.zeros(2, 3), torch.log(torch.full((2, 3), 0.5)), torch.tensor([[1.0, 0, 0, 0]] * 2),
                      torch.zeros(2), torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3))
    write_ply(m, tmp_path / "a.ply")
    v = PlyData.read(str(tmp_path / "a.ply"))["vertex"]
    names = [p.name for p in v.properties]
    assert names == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [
        f"f_rest_{i}" for i in range(9)] + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2",
                                            "rot_3"]
    # f_rest is channel-major: all red coefficients (bands 1..3), then green, then blue
    row = v.data[1]
    assert [row[f"f_rest_{i}"] for i in range(3)] == [m.sh[1, 1, 0].item(), m.sh[1, 2, 0].item(), m.sh[1, 3, 0].item()]
    assert row["scale_0"] == pytest.approx(np.log(0.5))
    assert row["opacity"] == 0.0  # logit 0: opacity OPACITY_MAX / 2


def test_ply_keeps_opacities_above_1_and_reads_3dgs_files_as_sigmoid(tmp_path):
    """Our opacity is OPACITY_MAX sigmoid(logit) (flat-topped footprints above 1). The PLY says so in a comment and
    round-trips it; a file for other tools (opacity_max=1) or one written by another tool (no comment) holds 3DGS
    logits, opacity = sigmoid(logit), which read back as the same opacities."""
    from plyfile import PlyData, PlyElement

    from landscape4d.gaussians.model import OPACITY_MAX, logits_from_opacity

    assert OPACITY_MAX > 1
    a = torch.tensor([0.1, 0.5, 0.9, 1.2, 1.45])
    m = GaussianModel(torch.zeros(5, 3), torch.zeros(5, 3), torch.tensor([[1.0, 0, 0, 0]] * 5),
                      torch.tensor(logits_from_opacity(a.numpy()), dtype=torch.float32), torch.zeros(5, 1, 3))
    torch.testing.assert_close(m.opacities, a)
    torch.testing.assert_close(read_ply(write_ply(m, tmp_path / "ours.ply")).opacities, a)
    other = write_ply(m, tmp_path / "other.ply", opacity_max=1.0)
    v = PlyData.read(str(other))["vertex"].data
    np.testing.assert_allclose(1 / (1 + np.exp(-v["opacity"].astype(np.float64))), a.clamp(max=1 - 1e-6).numpy(),
                               rtol=1e-6)
    torch.testing.assert_close(read_ply(other).opacities, a.clamp(max=1 - 1e-6))
    PlyData([PlyElement.describe(v, "vertex")], text=False).write(str(tmp_path / "3dgs.ply"))  # no comment
    torch.testing.assert_close(read_ply(tmp_path / "3dgs.ply").opacities, a.clamp(max=1 - 1e-6))


def test_read_ply_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_ply(tmp_path / "missing.ply")
    bad = tmp_path / "bad.ply"
    bad.write_text("not a ply")
    with pytest.raises(InputError):
        read_ply(bad)
    from plyfile import PlyData, PlyElement

    arr = np.zeros(3, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(tmp_path / "points.ply"))
    with pytest.raises(InputError, match="missing properties"):
        read_ply(tmp_path / "points.ply")
