"""The 3D Gaussian model: raw (unconstrained) parameters and their activations."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from .sh import num_sh_bases, rgb_to_sh0, sh0_to_rgb, sh_degree_from_bases

PARAM_NAMES = ("means", "log_scales", "quats", "opacity_logits", "sh")
# opacity = OPACITY_MAX * sigmoid(logit). Above 1 the rasterizer's alpha min(0.99, opacity * G(d)) is flat-topped:
# a Gaussian is opaque over a core around its mean and falls off beyond it, closer to the photo's own pixel than a
# bell (3DGS: OPACITY_MAX = 1). Seen from a moved camera the static texture stays crisp instead of being
# interpolated by overlapping bells: `bench static --kind waterfall --seed 23`, LPIPS 0.110 -> 0.102 (README).
OPACITY_MAX = 1.5


def opacity_from_logits(logits: torch.Tensor, opacity_max: float = OPACITY_MAX) -> torch.Tensor:
    """(N,) logits -> (N,) opacities in (0, opacity_max)."""
    return opacity_max * torch.sigmoid(logits)


def logits_from_opacity(opacity: np.ndarray | float, opacity_max: float = OPACITY_MAX) -> np.ndarray:
    """The inverse of opacity_from_logits (float64 numpy); opacity must lie in (0, opacity_max)."""
    q = np.asarray(opacity, dtype=np.float64) / opacity_max
    return np.log(q / (1.0 - q))


def logits_of(opacity: torch.Tensor, opacity_max: float = OPACITY_MAX) -> torch.Tensor:
    """Torch twin of logits_from_opacity; opacities are clipped into (0, opacity_max) first (1e-6 of it)."""
    return torch.logit((opacity / opacity_max).clamp(1e-6, 1 - 1e-6))


def convert_logits(logits: torch.Tensor, opacity_max_from: float, opacity_max_to: float = OPACITY_MAX) -> torch.Tensor:
    """Logits written under another OPACITY_MAX (a file of an older version, a 3DGS PLY: 1) -> logits of the same
    opacities under `opacity_max_to`; opacities at or above opacity_max_to are kept just below it."""
    if opacity_max_from == opacity_max_to:
        return logits
    q = (torch.sigmoid(logits.double()) * (opacity_max_from / opacity_max_to)).clamp(1e-12, 1 - 1e-6)
    return torch.log(q / (1 - q)).to(logits.dtype)


@dataclass
class GaussianModel:
    means: torch.Tensor  # (N, 3) world positions
    log_scales: torch.Tensor  # (N, 3) log of the standard deviations along the local axes
    quats: torch.Tensor  # (N, 4) rotations, wxyz, not necessarily normalised
    opacity_logits: torch.Tensor  # (N,) opacity = OPACITY_MAX * sigmoid(logit)
    sh: torch.Tensor  # (N, K, 3) SH coefficients, K = (degree + 1)^2; K = 1 is plain colour

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        shapes = {
            "means": (n, 3), "log_scales": (n, 3), "quats": (n, 4), "opacity_logits": (n,),
        }
        for name, shape in shapes.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"GaussianModel.{name} has shape {tuple(getattr(self, name).shape)}, expected {shape}")
        if self.sh.dim() != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise ValueError(f"GaussianModel.sh has shape {tuple(self.sh.shape)}, expected ({n}, K, 3)")
        sh_degree_from_bases(self.sh.shape[1])

    # --- activated views -----------------------------------------------------------------------------------
    @property
    def num(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_bases(self.sh.shape[1])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def scales(self) -> torch.Tensor:  # (N, 3)
        return torch.exp(self.log_scales)

    @property
    def opacities(self) -> torch.Tensor:  # (N,)
        return opacity_from_logits(self.opacity_logits)

    @property
    def rotations(self) -> torch.Tensor:  # (N, 4) unit quaternions
        return self.quats / self.quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    @property
    def base_colors(self) -> torch.Tensor:  # (N, 3) view-independent (degree-0) colour
        return sh0_to_rgb(self.sh[:, 0, :]).clamp(0.0, 1.0)

    # --- bookkeeping ---------------------------------------------------------------------------------------
    def params(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def map(self, fn) -> "GaussianModel":
        """A new model with fn applied to every parameter tensor."""
        return GaussianModel(**{k: fn(v) for k, v in self.params().items()})

    def to(self, device: torch.device | str) -> "GaussianModel":
        return self.map(lambda t: t.to(device))

    def detach(self) -> "GaussianModel":
        return self.map(lambda t: t.detach().clone())

    def subset(self, index: torch.Tensor) -> "GaussianModel":
        """Rows selected by a boolean mask or an index tensor."""
        return self.map(lambda t: t[index])

    # --- construction --------------------------------------------------------------------------------------
    @staticmethod
    def from_pixel_footprints(
        points: np.ndarray,  # (N, 3) one point per pixel (world = the camera that saw them, OpenCV axes)
        colors: np.ndarray,  # (N, 3) RGB in [0, 1]
        sigma_px: float,  # standard deviation of each Gaussian in pixels of that camera
        fx: float,
        fy: float,
        opacity: float = 1.48,
        sh_degree: int = 0,
        device: torch.device | str = "cpu",
    ) -> "GaussianModel":
        """Flat Gaussians facing the camera, each covering its pixel's footprint at its depth: x/y standard
        deviations sigma_px * z / fx and sigma_px * z / fy, a tenth of that along the viewing axis, identity
        rotation, opacity `opacity` (< OPACITY_MAX), colour of its pixel. Seen from that camera their render is the
        photo (up to the rasterizer's low-pass), so training starts from the picture instead of from blobs."""
        pts = np.asarray(points, dtype=np.float64)
        col = np.clip(np.asarray(colors, dtype=np.float64), 0.0, 1.0)
        if pts.ndim != 2 or pts.shape[1] != 3 or col.shape != pts.shape:
            raise ValueError(f"points and colors must both be (N, 3), got {pts.shape} and {col.shape}")
        z = np.maximum(pts[:, 2], 1e-6)
        sx, sy = sigma_px * z / fx, sigma_px * z / fy
        scales = np.stack([sx, sy, 0.1 * np.minimum(sx, sy)], axis=1)
        f32 = dict(dtype=torch.float32, device=device)
        n = pts.shape[0]
        quats = torch.zeros(n, 4, **f32)
        quats[:, 0] = 1.0
        logit = float(logits_from_opacity(opacity))
        sh = torch.zeros(n, num_sh_bases(sh_degree), 3, **f32)
        sh[:, 0, :] = rgb_to_sh0(torch.tensor(col, **f32))
        return GaussianModel(torch.tensor(pts, **f32), torch.log(torch.tensor(scales, **f32)), quats,
                             torch.full((n,), logit, **f32), sh)

    @staticmethod
    def from_points(
        points: np.ndarray | torch.Tensor,  # (N, 3)
        colors: np.ndarray | torch.Tensor,  # (N, 3) RGB in [0, 1] (uint8 0..255 also accepted)
        sh_degree: int = 0,
        opacity: float = 0.1,
        scale_mult: float = 1.0,
        device: torch.device | str = "cpu",
    ) -> "GaussianModel":
        """Isotropic Gaussians on a point cloud (3DGS initialisation): scale = mean distance to the 3 nearest
        neighbours (scipy cKDTree) times `scale_mult`, identity rotation, opacity `opacity`, DC colour from
        `colors`, higher SH bands zero. Downsampling the cloud is the caller's job."""
        from scipy.spatial import cKDTree

        pts = np.asarray(points.detach().cpu() if torch.is_tensor(points) else points, dtype=np.float64)
        col = np.asarray(colors.detach().cpu() if torch.is_tensor(colors) else colors)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"points must be (N, 3), got {pts.shape}")
        if col.shape != pts.shape:
            raise ValueError(f"colors must be (N, 3) like points, got {col.shape}")
        col = col.astype(np.float64) / 255.0 if col.dtype == np.uint8 else col.astype(np.float64)
        n = pts.shape[0]
        if n >= 2:
            k = min(4, n)
            dist, _ = cKDTree(pts).query(pts, k=k)
            d = dist[:, 1:].mean(axis=1)
            pos = d[d > 0]
            floor = pos.min() if pos.size else 1e-3
            d = np.maximum(d, floor)  # duplicate points would get scale 0
        else:
            d = np.full(n, 1e-2)
        f32 = dict(dtype=torch.float32, device=device)
        means = torch.tensor(pts, **f32)
        log_scales = torch.log(torch.tensor(d * scale_mult, **f32)).unsqueeze(1).repeat(1, 3)
        quats = torch.zeros(n, 4, **f32)
        quats[:, 0] = 1.0
        logit = float(logits_from_opacity(opacity))
        opacity_logits = torch.full((n,), logit, **f32)
        sh = torch.zeros(n, num_sh_bases(sh_degree), 3, **f32)
        sh[:, 0, :] = rgb_to_sh0(torch.tensor(np.clip(col, 0.0, 1.0), **f32))
        return GaussianModel(means, log_scales, quats, opacity_logits, sh)
