"""Multi-view rendering of the photo's point cloud: forward splatting with a z-buffer, hole masks, inpainting.

Every input pixel is a 3D point (from depth). A point splats into the 3x3 pixels around its projection with a
sharp Gaussian weight; its footprint grows with magnification so close-ups do not crack. The z-buffer is soft:
a pixel blends the contributions within a relative depth tolerance of its nearest one, and the nearest depth is
taken from points landing on the pixel itself when there are any (so foreground does not dilate over a background
pixel that has its own point). Pixels nobody reaches are holes; they are inpainted (OpenCV Telea by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .camera import Intrinsics, project, w2c_from_c2w

Z_TOLERANCE = 0.03  # relative depth band of the soft z-buffer
SHARPNESS = 0.28  # Gaussian sigma (pixels) of a point's weight at unit magnification
COVER = 0.75  # a point covers pixels within COVER * max(1, magnification) * point_radius


@dataclass
class SplatResult:
    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1], holes inpainted unless inpaint == "none"
    mask: np.ndarray  # (H, W) bool, motion mask seen from this view
    depth: np.ndarray  # (H, W) float32 z-depth, 0 at holes
    holes: np.ndarray  # (H, W) bool, pixels no point reached


def splat_points(points: torch.Tensor, values: torch.Tensor, src_depth: torch.Tensor, intr: Intrinsics,
                 c2w: np.ndarray, point_radius: float = 1.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward-splat coloured points into a camera.

    points (N, 3) world; values (N, C) per-point channels; src_depth (N,) the points' depth in the input view (for
    the magnification of each point's footprint).  Returns (image (H, W, C), depth (H, W), weight (H, W));
    weight 0 marks holes, depth is 0 there.
    """
    dev = points.device
    h, w = intr.height, intr.width
    K = torch.tensor(intr.matrix(), dtype=points.dtype, device=dev)
    w2c = torch.tensor(w2c_from_c2w(c2w), dtype=points.dtype, device=dev)
    uv, z = project(points, K, w2c)
    ok = z > 1e-3
    uv, z, values, src_depth = uv[ok], z[ok], values[ok], src_depth[ok]
    mag = (src_depth / z).clamp(min=1.0)  # same focal length: a point's pixel footprint scales like z_src / z
    radius = COVER * mag * point_radius
    sigma = SHARPNESS * mag
    # each point reaches the pixel centres within `radius`: a 2x2 block around it when radius <= 1, else 4x4
    small = radius <= 1.0
    parts = [_footprint(uv, radius, sigma, torch.nonzero(sel).squeeze(1), k, h, w)
             for sel, k in ((small, 2), (~small, 4)) if bool(sel.any())]
    pix, d2w, is_centre, src = (torch.cat(t) for t in zip(*parts))
    wt = d2w.clamp_min(1e-12)
    zz = z[src]
    inf = torch.full((h * w,), float("inf"), dtype=z.dtype, device=dev)
    zmin_all = inf.clone().scatter_reduce(0, pix, zz, reduce="amin")
    zc = torch.where(is_centre, zz, torch.full_like(zz, float("inf")))
    zmin_centre = inf.clone().scatter_reduce(0, pix, zc, reduce="amin")
    zmin = torch.where(torch.isfinite(zmin_centre), zmin_centre, zmin_all)
    keep = zz <= zmin[pix] * (1 + Z_TOLERANCE)
    pix, zz, wt, src = pix[keep], zz[keep], wt[keep], src[keep]
    weight = torch.zeros(h * w, dtype=values.dtype, device=dev).index_add_(0, pix, wt)
    acc = torch.zeros(h * w, values.shape[1], dtype=values.dtype, device=dev).index_add_(
        0, pix, values[src] * wt[:, None])
    dacc = torch.zeros(h * w, dtype=values.dtype, device=dev).index_add_(0, pix, zz * wt)
    safe = weight.clamp_min(1e-12)
    image = torch.where(weight[:, None] > 0, acc / safe[:, None], torch.zeros_like(acc))
    depth = torch.where(weight > 0, dacc / safe, torch.zeros_like(dacc))
    depth, weight = _remove_leaks(depth.view(h, w), weight.view(h, w))
    image = image.view(h, w, -1) * (weight > 0)[..., None]
    return image, depth, weight


def _footprint(uv: torch.Tensor, radius: torch.Tensor, sigma: torch.Tensor, idx: torch.Tensor, k: int, h: int,
               w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels of a k x k block of pixel centres around each selected point that lie within its radius.

    uv (M, 2); radius, sigma (M,); idx (S,) selected points.  Returns flat (pixel index, weight, is the pixel
    containing the projection, point index) per contribution.
    """
    p = uv[idx]
    lo = torch.floor(p - 0.5).long() - (k // 2 - 1)  # top-left pixel of the block
    r = torch.arange(k, device=uv.device)
    jj = lo[:, 0:1, None] + r[None, None, :]  # (S, 1, k)
    ii = lo[:, 1:2, None] + r[None, :, None]  # (S, k, 1)
    du = jj.to(p.dtype) + 0.5 - p[:, 0, None, None]
    dv = ii.to(p.dtype) + 0.5 - p[:, 1, None, None]
    d2 = (du * du + dv * dv).reshape(len(idx), -1)  # (S, k*k)
    ii, jj = ii.expand(-1, k, k).reshape(len(idx), -1), jj.expand(-1, k, k).reshape(len(idx), -1)
    rad = radius[idx, None]
    inside = (d2 <= rad * rad) & (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
    centre = (ii == torch.floor(p[:, 1:2]).long()) & (jj == torch.floor(p[:, 0:1]).long())
    sig = sigma[idx, None]
    weight = torch.exp(-d2 / (2 * sig * sig))
    src = idx[:, None].expand_as(ii)
    return (ii * w + jj)[inside], weight[inside], centre[inside], src[inside]


def _remove_leaks(depth: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Background points seen through gaps of a magnified foreground: a pixel much farther than most of its
    8 neighbours, which are themselves covered, becomes a hole. depth, weight: (H, W)."""
    valid = weight > 0
    d = torch.where(valid, depth, torch.full_like(depth, float("inf")))
    nb = F.unfold(d[None, None], 3, padding=1)[0].view(9, *d.shape)  # (9, H, W)
    nb = torch.cat([nb[:4], nb[5:]])
    nearer = (nb < depth[None] / 1.15).sum(0)
    leak = valid & (nearer >= 6)
    return torch.where(leak, torch.zeros_like(depth), depth), torch.where(leak, torch.zeros_like(weight), weight)


def inpaint(image: np.ndarray, holes: np.ndarray, method: str = "telea", radius: int = 5) -> np.ndarray:
    """Fill holes of an (H, W, C) or (H, W) float image with OpenCV inpainting (telea | ns); `none` leaves them."""
    if method == "none" or not holes.any():
        return image
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}.get(method)
    if flag is None:
        raise ValueError(f"unknown inpainting method {method!r} (telea, ns, none)")
    m = holes.astype(np.uint8)
    if image.ndim == 2:
        return cv2.inpaint(image.astype(np.float32), m, radius, flag)
    u8 = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    filled = cv2.inpaint(u8, m, radius, flag).astype(np.float32) / 255.0
    return np.where(holes[..., None], filled, image).astype(np.float32)


def render_view(points: torch.Tensor, colors: torch.Tensor, motion: torch.Tensor, src_depth: torch.Tensor,
                intr: Intrinsics, c2w: np.ndarray, point_radius: float = 1.2, inpaint_method: str = "telea",
                inpaint_radius: int = 5) -> SplatResult:
    """One view of the point cloud: RGB, motion mask, depth and hole mask.

    points (N, 3); colors (N, 3) in [0, 1]; motion (N,) float 0/1 moving points; src_depth (N,).
    """
    values = torch.cat([colors, motion[:, None]], dim=1)
    image, depth, weight = splat_points(points, values, src_depth, intr, c2w, point_radius)
    holes = (weight <= 0).cpu().numpy()
    img = image.cpu().numpy()
    rgb = inpaint(img[..., :3], holes, inpaint_method, inpaint_radius)
    m = img[..., 3]
    if holes.any():  # the mask in holes follows the nearest covered pixels
        m = inpaint(m, holes, "telea", inpaint_radius)
    return SplatResult(rgb.astype(np.float32), m > 0.5, depth.cpu().numpy().astype(np.float32), holes)
