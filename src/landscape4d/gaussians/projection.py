"""EWA projection of 3D Gaussians to the image plane (pure PyTorch, differentiable by autograd).

Shared by the tiled torch rasterizer and the dense reference, so both see identical 2D Gaussians.

Conventions (see landscape4d.camera): OpenCV camera axes, viewmat = world-to-camera (4, 4), pixel centre of
(row i, col j) at (u, v) = (j + 0.5, i + 0.5), depth = camera z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .sh import eval_sh

NEAR_PLANE = 0.01  # Gaussians with camera z <= this are culled
LOW_PASS = 0.3  # added to the diagonal of every 2D covariance (pixels^2), as in 3DGS
SIGMA_CUTOFF = 3.0  # screen radius (3DGS `radii`) and on-screen culling use the 3-sigma extent
ALPHA_MIN = 1.0 / 255.0  # contributions below this alpha are skipped
MAX_REACH = math.sqrt(2.0 * math.log(1.0 / ALPHA_MIN))  # mahalanobis reach of an opacity-1 Gaussian (3.33)
ALPHA_MAX = 0.99  # alpha is clamped to this
T_MIN = 1e-4  # compositing stops before transmittance falls below this


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """quats (N, 4) wxyz, any norm -> rotation matrices (N, 3, 3)."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    r = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    return r.reshape(quats.shape[:-1] + (3, 3))


def covariance_3d(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """quats (N, 4), scales (N, 3) linear -> world covariances (N, 3, 3) = R S S R^T."""
    m = quat_to_rotmat(quats) * scales.unsqueeze(-2)
    return m @ m.transpose(-1, -2)


@dataclass
class Projected:
    """Per-Gaussian 2D quantities for one camera (N = number of input Gaussians)."""

    means2d: torch.Tensor  # (N, 2) pixel coordinates of the projected means (u, v)
    conics: torch.Tensor  # (N, 3) inverse 2D covariance (a, b, c): [[a, b], [b, c]]
    depths: torch.Tensor  # (N,) camera z of the means
    extents: torch.Tensor  # (N, 2) half width/height (pixels) of the box holding every pixel it can draw
    reach: torch.Tensor  # (N,) mahalanobis distance of the farthest pixel it can draw
    radii: torch.Tensor  # (N,) int32, ceil(3 sqrt(largest eigenvalue)); 0 = culled
    valid: torch.Tensor  # (N,) bool, not culled
    cov2d: torch.Tensor  # (N, 3) 2D covariance (xx, xy, yy), low-pass included


def project_gaussians(
    means: torch.Tensor,  # (N, 3)
    quats: torch.Tensor,  # (N, 4) wxyz
    scales: torch.Tensor,  # (N, 3) linear
    viewmat: torch.Tensor,  # (4, 4) world-to-camera
    K: torch.Tensor,  # (3, 3)
    width: int,
    height: int,
    opacities: torch.Tensor | None = None,  # (N,) tightens `extents` (optional)
) -> Projected:
    """EWA splatting projection: cov2d = J W Sigma W^T J^T + 0.3 I, with the Jacobian J of the perspective
    projection at the mean (its x/z, y/z clamped to 1.3x the field of view, as 3DGS does for stability).

    Culls Gaussians with z <= NEAR_PLANE or whose 3-sigma bounding box misses the image. Culled entries get
    finite placeholder values (never NaN) so gradients through them are zero, not NaN.

    A Gaussian draws the pixels where opacity * exp(-0.5 d^T conic d) >= ALPHA_MIN, i.e. within mahalanobis
    distance sqrt(2 ln(opacity / ALPHA_MIN)) (3.33 for opacity 1, 3.45 for a flat-topped 1.5). `extents` bound that
    region (for opacity 1 when `opacities` is not given); only the tile lists use them. `radii` and the on-screen test
    use the 3-sigma extent, as 3DGS.
    """
    dtype = means.dtype
    viewmat = viewmat.to(device=means.device, dtype=dtype)
    K = K.to(device=means.device, dtype=dtype)
    rot = viewmat[:3, :3]
    cam = means @ rot.T + viewmat[:3, 3]  # (N, 3)
    z = cam[:, 2]
    in_front = z > NEAR_PLANE
    zs = torch.where(in_front, z, torch.ones_like(z))
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    u = fx * cam[:, 0] / zs + cx
    v = fy * cam[:, 1] / zs + cy
    means2d = torch.stack([u, v], dim=-1)

    # Jacobian at the (clamped) mean
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim_xp, lim_xn = (width - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lim_yp, lim_yn = (height - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    txz = torch.minimum(torch.maximum(cam[:, 0] / zs, -lim_xn), lim_xp)
    tyz = torch.minimum(torch.maximum(cam[:, 1] / zs, -lim_yn), lim_yp)
    zero = torch.zeros_like(zs)
    jac = torch.stack(
        [fx / zs, zero, -fx * txz / zs, zero, fy / zs, -fy * tyz / zs], dim=-1
    ).reshape(-1, 2, 3)
    m = jac @ rot @ (quat_to_rotmat(quats) * scales.unsqueeze(-2))  # (N, 2, 3)
    cov = m @ m.transpose(-1, -2)  # (N, 2, 2)
    cxx = cov[:, 0, 0] + LOW_PASS
    cxy = cov[:, 0, 1]
    cyy = cov[:, 1, 1] + LOW_PASS
    det = (cxx * cyy - cxy * cxy).clamp_min(1e-12)
    conics = torch.stack([cyy / det, -cxy / det, cxx / det], dim=-1)

    with torch.no_grad():
        sd = torch.stack([cxx, cyy], dim=-1).clamp_min(0).sqrt()  # (N, 2)
        ext = SIGMA_CUTOFF * sd
        if opacities is None:
            reach = torch.full_like(cxx, MAX_REACH)
        else:
            reach = opacity_reach(opacities.detach().to(dtype))
        mid = 0.5 * (cxx + cyy)
        lam = mid + (mid * mid - det).clamp_min(0.1).sqrt()
        radius = torch.ceil(SIGMA_CUTOFF * lam.sqrt())
        on_screen = (
            (u + ext[:, 0] > 0) & (u - ext[:, 0] < width) & (v + ext[:, 1] > 0) & (v - ext[:, 1] < height)
        )
        finite = torch.isfinite(means2d).all(-1) & torch.isfinite(conics).all(-1)
        valid = in_front & on_screen & finite
        radii = torch.where(valid, radius, torch.zeros_like(radius)).to(torch.int32)
    return Projected(means2d, conics, z, reach.unsqueeze(-1) * sd, reach, radii, valid,
                     torch.stack([cxx, cxy, cyy], dim=-1))


def opacity_reach(opacities: torch.Tensor) -> torch.Tensor:
    """(N,) mahalanobis distance within which opacity * exp(-r^2 / 2) >= ALPHA_MIN (0 if opacity <= ALPHA_MIN)."""
    return (2.0 * torch.log(opacities.clamp_min(ALPHA_MIN) / ALPHA_MIN)).clamp_min(0).sqrt()


def gaussian_colors(
    colors: torch.Tensor,  # (N, 3) RGB or (N, K, 3) SH coefficients
    means: torch.Tensor,  # (N, 3)
    viewmat: torch.Tensor,  # (4, 4)
    sh_degree: int | None,
) -> torch.Tensor:
    """Per-Gaussian RGB (N, 3): RGB passed through, SH evaluated along camera-centre -> mean directions."""
    if colors.dim() == 2:
        return colors
    from .sh import sh_degree_from_bases

    degree = sh_degree_from_bases(colors.shape[1]) if sh_degree is None else int(sh_degree)
    viewmat = viewmat.to(device=means.device, dtype=means.dtype)
    campos = -viewmat[:3, :3].T @ viewmat[:3, 3]
    return eval_sh(colors, means - campos, degree)
