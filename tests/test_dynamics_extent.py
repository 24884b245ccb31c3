"""Travel extent of moving Gaussians: the fast KD-tree search against its plain-loop reference, no water drawn
beyond the moving region (the ghost above a waterfall), the loop still closing, and the scene file versions."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from landscape4d.camera import Intrinsics, unproject_depth
from landscape4d.dynamics import build_scene4d, gaussians_at, load_scene4d, save_scene4d
from landscape4d.dynamics.extent import travel_extent, travel_extent_reference, with_extent
from landscape4d.dynamics.model import Scene4D
from landscape4d.errors import InputError
from landscape4d.gaussians.model import OPACITY_MAX, convert_logits, logits_from_opacity

CAMERA = {"fl_x": 40.0, "fl_y": 40.0, "cx": 24.0, "cy": 20.0, "w": 48, "h": 40}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extent_matches_its_reference(seed):
    rng = np.random.default_rng(seed)
    n = 60
    means = np.column_stack([rng.uniform(-1, 1, (n, 2)), rng.uniform(2, 4, n)])
    drift = rng.normal(0, 0.3, (n, 3))
    moving = rng.random(n) < 0.6
    K = np.array([[40.0, 0, 24], [0, 40.0, 20], [0, 0, 1]])
    fast = travel_extent(means, drift, moving, K, radius_px=3.0)
    ref = travel_extent_reference(means, drift, moving, K, radius_px=3.0)
    np.testing.assert_array_equal(fast, ref)
    assert (fast[~moving] == [-1, 1]).all() and (fast[:, 0] <= 0).all() and (fast[:, 1] >= 0).all()
    assert (fast[moving, 0] > -1).any() and (fast[moving, 1] < 1).any()  # some paths leave the region


def _fall(h=40, w=48, z=3.0, frames=12, v_px=1.0):
    """A waterfall: a vertical strip (columns 18..29, rows 10..29) of a plane at depth z flows down v_px pixels per
    frame (one loop: 12 px, over half the strip's height); the rest is static."""
    intr = Intrinsics(fx=40.0, fy=40.0, cx=24.0, cy=20.0, width=w, height=h)
    pts = torch.from_numpy(unproject_depth(np.full((h, w), z, np.float32), intr)).float()
    yy, xx = np.mgrid[0:h, 0:w]
    strip = torch.from_numpy(((xx >= 18) & (xx < 30) & (yy >= 10) & (yy < 30)).reshape(-1))
    n = h * w
    vel = torch.zeros(n, 3)
    vel[:, 1] = v_px * z / intr.fx
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1
    scene = build_scene4d(pts, quats, torch.full((n, 3), np.log(0.5 * z / intr.fx)), torch.full((n,), 3.0),
                          torch.zeros(n, 1, 3), vel * strip[:, None], strip, frames, 1)
    return scene, intr


def _draw_rows(scene: Scene4D, intr: Intrinsics, t: float) -> np.ndarray:
    """Image rows of the moving draws that are visible (opacity >= 1/255) at loop time t."""
    g = gaussians_at(scene, t)
    n = len(scene)
    idx = torch.cat([torch.nonzero(scene.moving).squeeze(1), torch.arange(n, n + scene.num_moving)])
    keep = idx[g.opacities[idx] >= 1 / 255]
    m = g.means[keep]
    return (intr.fy * m[:, 1] / m[:, 2] + intr.cy).numpy()


def test_no_water_is_drawn_above_the_top_or_below_the_foot_of_the_fall():
    """Without an extent the phase-1 draws of the fall's top rows hang (half faded) up to a loop's travel (12 px)
    above the fall at mid-loop, over what is cliff in the photo; with it every visible draw stays over the strip
    (rows 10..29, within the 2 px radius plus one fade step)."""
    scene, intr = _fall()
    rows_without = np.concatenate([_draw_rows(scene, intr, t) for t in (0.25, 0.5, 0.75)])
    assert rows_without.min() < 10 - 5 and rows_without.max() > 29 + 5  # the ghost the extent removes
    scene = with_extent(scene, intr.matrix(), radius_px=2.0)
    rows = np.concatenate([_draw_rows(scene, intr, t) for t in np.linspace(0, 1, 13)[:-1]])
    assert rows.min() >= 10 - 2 - 1 and rows.max() <= 29 + 2 + 1


def test_the_loop_closes_with_an_extent():
    scene, intr = _fall()
    scene = with_extent(scene, intr.matrix(), radius_px=2.0)
    n = len(scene)
    mov = torch.nonzero(scene.moving).squeeze(1)
    start, end = gaussians_at(scene, 0.0), gaussians_at(scene, 1 - 1e-7)
    torch.testing.assert_close(end.means[n:], start.means[mov], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(end.opacities[n:], start.opacities[mov], atol=1e-5, rtol=1e-5)


def test_radius_zero_keeps_whole_paths():
    scene, intr = _fall()
    assert with_extent(scene, intr.matrix(), radius_px=0.0).extent is None


def test_version_2_files_read_as_whole_paths_and_bad_extents_are_refused(tmp_path):
    from safetensors.torch import save_file

    scene, intr = _fall()
    scene = with_extent(scene, intr.matrix(), radius_px=2.0)
    # opacities a version-2 file can hold (at most 1)
    scene = dataclasses.replace(scene, opacity_logits=torch.full_like(scene.opacity_logits,
                                                                      float(logits_from_opacity(0.95))))
    head = save_scene4d(tmp_path / "v4.safetensors", scene, {"fps": 30, "camera": CAMERA, "scene_depth": 3.0})
    assert head["version"] == 4 and head["opacity_max"] == OPACITY_MAX
    tensors = {name: getattr(scene, name).float().contiguous() for name in Scene4D.TENSORS}
    tensors["moving"] = tensors["moving"].to(torch.uint8)
    # versions 2 and 3 stored 3DGS logits, opacity = sigmoid(logit)
    tensors["opacity_logits"] = convert_logits(scene.opacity_logits, OPACITY_MAX, 1.0).float()
    v2 = {**head, "version": 2}
    save_file(tensors, str(tmp_path / "v2.safetensors"), metadata={"landscape4d": json.dumps(v2)})
    back, _ = load_scene4d(tmp_path / "v2.safetensors")
    assert back.extent is None
    torch.testing.assert_close(gaussians_at(back, 0.4).opacities,
                               gaussians_at(with_extent(scene, intr.matrix(), 0.0), 0.4).opacities,
                               rtol=1e-5, atol=1e-6)
    bad = dict(tensors, extent=torch.tensor([[0.5, 1.0]]).repeat(len(scene), 1))
    save_file(bad, str(tmp_path / "bad.safetensors"), metadata={"landscape4d": json.dumps(head)})
    with pytest.raises(InputError, match="bad.safetensors.*extent"):
        load_scene4d(tmp_path / "bad.safetensors")
