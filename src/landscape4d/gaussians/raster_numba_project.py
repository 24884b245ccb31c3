"""numba kernels: EWA projection of 3D Gaussians (forward and its hand-written backward), one Gaussian per
prange iteration.

Computes what `projection.project_gaussians` computes (same near plane, Jacobian clamp, low-pass, culling, radii,
extents), for float32 or float64 arrays. The backward chains dL/d(means2d, conics, depths) to dL/d(means, quats,
scales); culled Gaussians get zero gradients, as in the torch backend.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .projection import ALPHA_MIN, LOW_PASS, NEAR_PLANE, SIGMA_CUTOFF
from .raster_numba_jit import kernel

_DET_MIN = 1e-12
_QUAT_EPS = 1e-12


@kernel()
def quat_rotmat(qw, qx, qy, qz, R):
    """Rotation matrix of the unit quaternion (qw, qx, qy, qz) into R (3, 3)."""
    R[0, 0] = 1 - 2 * (qy * qy + qz * qz)
    R[0, 1] = 2 * (qx * qy - qw * qz)
    R[0, 2] = 2 * (qx * qz + qw * qy)
    R[1, 0] = 2 * (qx * qy + qw * qz)
    R[1, 1] = 1 - 2 * (qx * qx + qz * qz)
    R[1, 2] = 2 * (qy * qz - qw * qx)
    R[2, 0] = 2 * (qx * qz - qw * qy)
    R[2, 1] = 2 * (qy * qz + qw * qx)
    R[2, 2] = 1 - 2 * (qx * qx + qy * qy)


@kernel()
def camera_limits(K, width, height):
    """fx, fy, cx, cy and the clamp limits of x/z and y/z (1.3x the field of view, as 3DGS)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim = np.empty(4, K.dtype)
    lim[0] = (width - cx) / fx + 0.3 * tan_x  # x/z upper
    lim[1] = cx / fx + 0.3 * tan_x  # -(x/z lower)
    lim[2] = (height - cy) / fy + 0.3 * tan_y
    lim[3] = cy / fy + 0.3 * tan_y
    return fx, fy, cx, cy, lim


@kernel()
def _stack(means, quats, scales, view, i, q, R, A, M, cam, txy, J, lim, fx, fy):
    """Per-Gaussian intermediates shared by forward and backward, written into the small work arrays:
    cam (3,) camera coordinates, q (4,) unit quaternion (q[4] = its original norm), R (3, 3) its rotation,
    A = W R S (3, 3), J (2, 3) the projection Jacobian, M = J A (2, 3), txy (2,) the clamped x/z, y/z.
    Returns z clamped for division (1 when behind the near plane)."""
    for r in range(3):
        cam[r] = view[r, 0] * means[i, 0] + view[r, 1] * means[i, 1] + view[r, 2] * means[i, 2] + view[r, 3]
    z = cam[2]
    zs = z if z > NEAR_PLANE else means.dtype.type(1)
    txy[0] = min(max(cam[0] / zs, -lim[1]), lim[0])
    txy[1] = min(max(cam[1] / zs, -lim[3]), lim[2])
    n = math.sqrt(quats[i, 0] ** 2 + quats[i, 1] ** 2 + quats[i, 2] ** 2 + quats[i, 3] ** 2)
    q[4] = n
    n = max(n, _QUAT_EPS)
    for k in range(4):
        q[k] = quats[i, k] / n
    quat_rotmat(q[0], q[1], q[2], q[3], R)
    for r in range(3):
        for c in range(3):
            A[r, c] = (view[r, 0] * R[0, c] + view[r, 1] * R[1, c] + view[r, 2] * R[2, c]) * scales[i, c]
    J[0, 0], J[0, 1], J[0, 2] = fx / zs, 0, -fx * txy[0] / zs
    J[1, 0], J[1, 1], J[1, 2] = 0, fy / zs, -fy * txy[1] / zs
    for r in range(2):
        for c in range(3):
            M[r, c] = J[r, 0] * A[0, c] + J[r, 1] * A[1, c] + J[r, 2] * A[2, c]
    return zs


@kernel()
def _cov2d(M):
    """(xx, xy, yy) of M M^T + the low-pass."""
    low = M.dtype.type(LOW_PASS)
    cxx = M[0, 0] * M[0, 0] + M[0, 1] * M[0, 1] + M[0, 2] * M[0, 2] + low
    cxy = M[0, 0] * M[1, 0] + M[0, 1] * M[1, 1] + M[0, 2] * M[1, 2]
    cyy = M[1, 0] * M[1, 0] + M[1, 1] * M[1, 1] + M[1, 2] * M[1, 2] + low
    return cxx, cxy, cyy


@kernel(parallel=True)
def project_forward(means, quats, scales, opacities, view, K, width, height,
                    means2d, conics, depths, extents, reach, radii, valid):
    """means (N, 3), quats (N, 4), scales (N, 3), opacities (N,), view (4, 4), K (3, 3) -> fills means2d (N, 2),
    conics (N, 3), depths (N,), extents (N, 2), reach (N,), radii (N,) int32, valid (N,) bool."""
    dt = means.dtype.type
    fx, fy, cx, cy, lim = camera_limits(K, width, height)
    for i in prange(means.shape[0]):
        q, cam, txy = np.empty(5, means.dtype), np.empty(3, means.dtype), np.empty(2, means.dtype)
        R, A = np.empty((3, 3), means.dtype), np.empty((3, 3), means.dtype)
        M, J = np.empty((2, 3), means.dtype), np.empty((2, 3), means.dtype)
        zs = _stack(means, quats, scales, view, i, q, R, A, M, cam, txy, J, lim, fx, fy)
        u = fx * cam[0] / zs + cx
        v = fy * cam[1] / zs + cy
        cxx, cxy, cyy = _cov2d(M)
        det = max(cxx * cyy - cxy * cxy, dt(_DET_MIN))
        a, b, c = cyy / det, -cxy / det, cxx / det
        means2d[i, 0], means2d[i, 1] = u, v
        conics[i, 0], conics[i, 1], conics[i, 2] = a, b, c
        depths[i] = cam[2]
        sdx, sdy = math.sqrt(max(cxx, dt(0))), math.sqrt(max(cyy, dt(0)))
        o = min(opacities[i], dt(1))
        rch = math.sqrt(max(dt(2) * math.log(max(o, dt(ALPHA_MIN)) / dt(ALPHA_MIN)), dt(0)))
        reach[i] = rch
        extents[i, 0], extents[i, 1] = rch * sdx, rch * sdy
        ex, ey = dt(SIGMA_CUTOFF) * sdx, dt(SIGMA_CUTOFF) * sdy
        on_screen = (u + ex > 0) and (u - ex < width) and (v + ey > 0) and (v - ey < height)
        finite = (np.isfinite(u) and np.isfinite(v) and np.isfinite(a) and np.isfinite(b)
                  and np.isfinite(c))
        ok = cam[2] > NEAR_PLANE and on_screen and finite
        valid[i] = ok
        mid = dt(0.5) * (cxx + cyy)
        lam = mid + math.sqrt(max(mid * mid - det, dt(0.1)))
        radii[i] = np.int32(math.ceil(dt(SIGMA_CUTOFF) * math.sqrt(lam))) if ok else np.int32(0)


@kernel()
def _conic_grads(M, det_raw, cxx, cxy, cyy, ga, gb, gc, gM):
    """dL/dM (2, 3) into gM from dL/d(conic a, b, c), conic = inverse of M M^T + low-pass."""
    det = max(det_raw, _DET_MIN)
    a, b, c = cyy / det, -cxy / det, cxx / det
    gdet = -(ga * a + gb * b + gc * c) / det if det_raw >= _DET_MIN else det * 0
    gxx = gc / det + gdet * cyy
    gyy = ga / det + gdet * cxx
    gxy = -gb / det - 2 * gdet * cxy
    for k in range(3):
        gM[0, k] = 2 * gxx * M[0, k] + gxy * M[1, k]
        gM[1, k] = 2 * gyy * M[1, k] + gxy * M[0, k]


@kernel()
def _quat_grads(q, gR, out, i):
    """dL/dquats[i] from dL/dR (3, 3), through the normalisation (q[:4] unit quaternion, q[4] original norm)."""
    w, x, y, z = q[0], q[1], q[2], q[3]
    gw = 2 * (-z * gR[0, 1] + y * gR[0, 2] + z * gR[1, 0] - x * gR[1, 2] - y * gR[2, 0] + x * gR[2, 1])
    gx = 2 * (y * gR[0, 1] + z * gR[0, 2] + y * gR[1, 0] - 2 * x * gR[1, 1] - w * gR[1, 2] + z * gR[2, 0]
              + w * gR[2, 1] - 2 * x * gR[2, 2])
    gy = 2 * (-2 * y * gR[0, 0] + x * gR[0, 1] + w * gR[0, 2] + x * gR[1, 0] + z * gR[1, 2] - w * gR[2, 0]
              + z * gR[2, 1] - 2 * y * gR[2, 2])
    gz = 2 * (-2 * z * gR[0, 0] - w * gR[0, 1] + x * gR[0, 2] + w * gR[1, 0] - 2 * z * gR[1, 1] + y * gR[1, 2]
              + x * gR[2, 0] + y * gR[2, 1])
    if q[4] > _QUAT_EPS:  # d(q / |q|) = (g - qhat (qhat . g)) / |q|
        dot = w * gw + x * gx + y * gy + z * gz
        out[i, 0] = (gw - w * dot) / q[4]
        out[i, 1] = (gx - x * dot) / q[4]
        out[i, 2] = (gy - y * dot) / q[4]
        out[i, 3] = (gz - z * dot) / q[4]
    else:
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = gw / _QUAT_EPS, gx / _QUAT_EPS, gy / _QUAT_EPS, gz / _QUAT_EPS


@kernel()
def _jacobian_grads(cam, txy, gJ, gcam, fx, fy, lim):
    """Add dL/dcam (3,) from dL/dJ (2, 3) (J depends on z and the clamped x/z, y/z)."""
    z = cam[2]
    gcam[2] += (-fx * gJ[0, 0] + fx * txy[0] * gJ[0, 2] - fy * gJ[1, 1] + fy * txy[1] * gJ[1, 2]) / (z * z)
    gt = (-fx * gJ[0, 2] / z, -fy * gJ[1, 2] / z)
    for k in range(2):
        t = cam[k] / z
        if -lim[2 * k + 1] < t < lim[2 * k]:  # not clamped
            gcam[k] += gt[k] / z
            gcam[2] -= gt[k] * t / z


@kernel(parallel=True)
def project_backward(means, quats, scales, view, K, width, height, valid, g_means2d, g_conics, g_depths,
                     g_means, g_quats, g_scales):
    """dL/d(means2d (N, 2), conics (N, 3), depths (N,)) -> fills g_means (N, 3), g_quats (N, 4), g_scales (N, 3)
    (zero for culled Gaussians)."""
    dt = means.dtype
    fx, fy, cx, cy, lim = camera_limits(K, width, height)
    for i in prange(means.shape[0]):
        for k in range(4):
            g_quats[i, k] = 0
        for k in range(3):
            g_means[i, k], g_scales[i, k] = 0, 0
        if not valid[i]:
            continue
        q, cam, txy = np.empty(5, dt), np.empty(3, dt), np.empty(2, dt)
        R, A, M, J = np.empty((3, 3), dt), np.empty((3, 3), dt), np.empty((2, 3), dt), np.empty((2, 3), dt)
        zs = _stack(means, quats, scales, view, i, q, R, A, M, cam, txy, J, lim, fx, fy)
        cxx, cxy, cyy = _cov2d(M)
        gM = np.empty((2, 3), dt)
        _conic_grads(M, cxx * cyy - cxy * cxy, cxx, cxy, cyy, g_conics[i, 0], g_conics[i, 1], g_conics[i, 2], gM)
        gJ, gA, gR = np.empty((2, 3), dt), np.empty((3, 3), dt), np.empty((3, 3), dt)
        for r in range(2):  # M = J A
            for c in range(3):
                gJ[r, c] = gM[r, 0] * A[c, 0] + gM[r, 1] * A[c, 1] + gM[r, 2] * A[c, 2]
        for r in range(3):  # dL/dA = J^T dL/dM
            for c in range(3):
                gA[r, c] = J[0, r] * gM[0, c] + J[1, r] * gM[1, c]
        for r in range(3):  # A = W R S: dL/dR = W^T dL/dA S, dL/ds = sum_r (W^T dL/dA)[r, c] R[r, c]
            for c in range(3):
                wt = view[0, r] * gA[0, c] + view[1, r] * gA[1, c] + view[2, r] * gA[2, c]
                gR[r, c] = wt * scales[i, c]
                g_scales[i, c] += wt * R[r, c]
        _quat_grads(q, gR, g_quats, i)
        gcam = np.zeros(3, dt)
        gu, gv = g_means2d[i, 0], g_means2d[i, 1]
        gcam[0] = fx * gu / zs
        gcam[1] = fy * gv / zs
        gcam[2] = g_depths[i] - (fx * cam[0] * gu + fy * cam[1] * gv) / (zs * zs)
        _jacobian_grads(cam, txy, gJ, gcam, fx, fy, lim)
        for k in range(3):  # cam = W m + t
            g_means[i, k] = view[0, k] * gcam[0] + view[1, k] * gcam[1] + view[2, k] * gcam[2]
