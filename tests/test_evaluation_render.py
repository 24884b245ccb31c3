"""Building blocks of the synthetic-scene renderer: periodic textures, the flowing-texture loop, the heightfield
ray march (against a brute-force reference) and its conservative elevation bound."""

import math

import numpy as np
import pytest
import torch

from landscape4d.evaluation.raycast import (ElevationBound, Heightfield, intersect_plane, march_heightfield,
                                            march_heightfield_reference)
from landscape4d.evaluation.textures import (Texture, fft_noise, flow_phases, flowing_sample, make_tileable,
                                             photo_texture)


def test_fft_noise_is_seeded_and_periodic():
    a = fft_noise(64, np.random.default_rng(1))
    b = fft_noise(64, np.random.default_rng(1))
    assert np.array_equal(a, b) and a.shape == (64, 64) and a.dtype == np.float32
    assert not np.array_equal(a, fft_noise(64, np.random.default_rng(2)))
    # tileable: the jump across the wrap-around is like any other neighbour step
    inner = np.abs(np.diff(a, axis=1)).mean()
    assert np.abs(a[:, 0] - a[:, -1]).mean() < 2 * inner
    long = fft_noise(64, np.random.default_rng(3), stretch=(1.0, 4.0))  # elongated along columns
    assert np.abs(np.diff(long, axis=1)).mean() < 0.6 * np.abs(np.diff(long, axis=0)).mean()


def test_make_tileable_removes_the_seam():
    ramp = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))  # a hard seam when wrapped
    t = make_tileable(ramp)
    assert abs(float(t[:, 0].mean() - t[:, -1].mean())) < 0.1
    assert abs(float(ramp[:, 0].mean() - ramp[:, -1].mean())) == pytest.approx(1.0)


def test_photo_texture_is_tileable_grey_or_absent():
    img = photo_texture("grass")
    if img is None:
        pytest.skip("scikit-image not installed: procedural textures are used")
    assert img.ndim == 2 and img.shape[0] == img.shape[1] and img.min() >= -0.5 and img.max() <= 1.5
    with pytest.raises(ValueError):
        photo_texture("astronaut")


def test_texture_lookup_is_periodic_and_mipmapped():
    tex = Texture(fft_noise(32, np.random.default_rng(4)), (2.0, 4.0))
    u = torch.linspace(-3, 3, 101, dtype=torch.float64)
    v = torch.linspace(1, 7, 101, dtype=torch.float64)
    assert torch.allclose(tex.sample(u, v), tex.sample(u + 2.0, v - 4.0), atol=1e-5)
    # texel centres return the stored values
    assert float(tex.sample(torch.tensor([0.5 * 2 / 32]), torch.tensor([0.5 * 4 / 32]))[0]) == pytest.approx(
        float(tex.levels[0][0, 0]), abs=1e-6)
    # a footprint of 8 texels reads level 3, whose texels are the 8x8 block means of the image
    block = tex.levels[0].reshape(4, 8, 4, 8).mean(dim=(1, 3))
    jj, ii = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="xy")
    uc = ((jj + 0.5) * 2.0 / 4).reshape(-1).to(torch.float64)
    vc = ((ii + 0.5) * 4.0 / 4).reshape(-1).to(torch.float64)
    got = tex.sample(uc, vc, torch.full_like(uc, 8 * 2.0 / 32))
    assert torch.allclose(got, block[ii.reshape(-1), jj.reshape(-1)], atol=1e-5)
    # and between levels it blends linearly: footprint 4 * sqrt(2) texels is halfway from level 2 to level 3
    mid = tex.sample(uc, vc, torch.full_like(uc, 4 * math.sqrt(2) * 2.0 / 32))
    assert torch.allclose(mid, 0.5 * (got + tex.sample(uc, vc, torch.full_like(uc, 4 * 2.0 / 32))), atol=1e-5)


def test_flow_phases_loop():
    for t in (0.0, 7.0, 13.5, 29.0):
        ta, tb, wa, wb = flow_phases(t, 30)
        assert wa + wb == pytest.approx(1.0) and 0 <= ta < 30 and 0 <= tb < 30
    assert flow_phases(30, 30) == flow_phases(0, 30)
    assert flow_phases(0, 30)[2] == 0.0  # layer a restarts where its weight is zero
    assert flow_phases(15, 30)[3] == 0.0  # and layer b half a period later


def test_flowing_texture_loops_and_moves_with_its_velocity():
    tex = Texture(fft_noise(64, np.random.default_rng(5), beta=1.2), (4.0, 4.0))
    u = torch.linspace(0, 4, 400, dtype=torch.float64)
    v = torch.full_like(u, 1.3)
    vel = torch.full_like(u, 0.2)  # 3.2 texels per frame
    zero = torch.zeros_like(u)
    f0 = flowing_sample(tex, u, v, vel, zero, 0, 200)
    assert torch.equal(f0, flowing_sample(tex, u, v, vel, zero, 200, 200))
    # mid-phase, the pattern one frame later sits 0.2 further along u (the weights change by only 1/100)
    a = flowing_sample(tex, u, v, vel, zero, 50, 200)
    b = flowing_sample(tex, u + 0.2, v, vel, zero, 51, 200)
    still = flowing_sample(tex, u, v, vel, zero, 51, 200)
    assert float((a - b).abs().mean()) < 0.1 * float((a - still).abs().mean())


def _hills(x, z):
    return 0.6 * np.sin(0.7 * x) * np.cos(0.5 * z) + 0.002 * z ** 2


def test_march_matches_brute_force_reference():
    hf = Heightfield.from_function(_hills, a_max=1.2, z_max=40.0, na=128, nb=128)
    bound = ElevationBound.from_heightfield(hf, bands=16, segments=8)
    h_cam = 1.5
    rng = np.random.default_rng(6)
    dirs = np.stack([rng.uniform(-0.5, 0.5, 24), rng.uniform(-0.05, 0.4, 24), np.ones(24)], -1)
    origins = np.stack([rng.uniform(-0.3, 0.3, 24), rng.uniform(-0.2, 0.2, 24), rng.uniform(0, 0.5, 24)], -1)
    o, d = torch.from_numpy(origins), torch.from_numpy(dirs)
    t_end = torch.full((24,), 60.0, dtype=torch.float64)
    fast = march_heightfield(hf, o, d, h_cam, 0.2, t_end, bound=bound)
    unbounded = march_heightfield(hf, o, d, h_cam, 0.2, t_end, bound=None, steps=200)
    hits = 0
    for i in range(24):
        ref = march_heightfield_reference(hf, origins[i], dirs[i], h_cam, 0.2, 60.0)
        if math.isinf(ref):
            assert math.isinf(float(fast[i]))
            continue
        hits += 1
        assert float(fast[i]) == pytest.approx(ref, rel=1e-4)
        assert float(unbounded[i]) == pytest.approx(ref, rel=1e-4)
    assert hits >= 12  # the test rays mostly hit the ground


def test_elevation_bound_is_conservative():
    hf = Heightfield.from_function(_hills, a_max=1.2, z_max=40.0, na=128, nb=128)
    bound = ElevationBound.from_heightfield(hf, bands=16, segments=8)
    rng = np.random.default_rng(7)
    n = 400
    d = torch.from_numpy(np.stack([rng.uniform(-0.6, 0.6, n), rng.uniform(-0.2, 0.4, n), np.ones(n)], -1))
    o = torch.from_numpy(np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-0.3, 0.3, n), rng.uniform(-0.2, 1, n)], -1))
    t_lo = torch.full((n,), 0.2, dtype=torch.float64)
    t_hi = torch.full((n,), 80.0, dtype=torch.float64)
    start, stop = bound.ray_range(o, d, 1.5, t_lo, t_hi)
    t = torch.linspace(0.2, 80.0, 4000, dtype=torch.float64)
    p = o[:, None, :] + t[None, :, None] * d[:, None, :]
    below = (1.5 - p[..., 1]) - hf.elevation(p[..., 0], p[..., 2]) <= 0  # (n, 4000)
    tt = t.expand(n, -1)
    assert bool((~below | ((tt >= start[:, None]) & (tt <= stop[:, None]))).all())
    assert float(torch.isinf(start).float().mean()) > 0.05  # some rays are culled entirely


def test_intersect_plane():
    o = torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    d = torch.tensor([[0.0, 0.5, 1.0], [0.0, 0.5, 1.0]], dtype=torch.float64)
    t = intersect_plane(o, d, 1, 1.0)
    assert float(t[0]) == pytest.approx(2.0) and math.isinf(float(t[1]))  # behind the second ray
