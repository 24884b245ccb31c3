"""numba kernels: EWA projection of 3D Gaussians (forward and its hand-written backward), contiguous blocks of
Gaussians per worker.

Computes what `projection.project_gaussians` computes (same near plane, Jacobian clamp, low-pass, culling, radii,
extents) for float32 or float64 arrays; the arithmetic is done in float64 (scalars and tuples, which numba keeps
in registers) and stored in the arrays' type. The backward chains dL/d(means2d, conics, depths) to dL/d(means,
quats, scales); culled Gaussians get zero gradients, as in the torch backend.

Notation: W the world-to-camera rotation, R the Gaussian's rotation, S its scales, A = W R S, J the 2 x 3
Jacobian of the perspective projection at the mean (x/z, y/z clamped), M = J A, 2D covariance M M^T + low-pass.
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
def camera_consts(view, K, width, height):
    """(W rows (3 x 3-tuple), t (3-tuple), (fx, fy, cx, cy), x/z and y/z clamp limits (x_hi, x_lo, y_hi, y_lo))
    in float64; the limits are 1.3x the field of view, as 3DGS."""
    v = view.astype(np.float64)
    W = ((v[0, 0], v[0, 1], v[0, 2]), (v[1, 0], v[1, 1], v[1, 2]), (v[2, 0], v[2, 1], v[2, 2]))
    t = (v[0, 3], v[1, 3], v[2, 3])
    fx, fy, cx, cy = np.float64(K[0, 0]), np.float64(K[1, 1]), np.float64(K[0, 2]), np.float64(K[1, 2])
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim = ((width - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x, (height - cy) / fy + 0.3 * tan_y,
           cy / fy + 0.3 * tan_y)
    return W, t, (fx, fy, cx, cy), lim


@kernel()
def _dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


@kernel()
def _unit_quat(quats, i):
    """(unit quaternion (w, x, y, z), original norm) of row i."""
    w, x, y, z = (np.float64(quats[i, 0]), np.float64(quats[i, 1]), np.float64(quats[i, 2]),
                  np.float64(quats[i, 3]))
    n = math.sqrt(w * w + x * x + y * y + z * z)
    inv = 1.0 / max(n, _QUAT_EPS)
    return (w * inv, x * inv, y * inv, z * inv), n


@kernel()
def _rotmat(q):
    """Rows of the rotation matrix of the unit quaternion q = (w, x, y, z)."""
    w, x, y, z = q
    return ((1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
            (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
            (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)))


@kernel(inline=True)
def _stack(means, quats, scales, i, W, t, f, lim):
    """Intermediates shared by forward and backward for Gaussian i: camera coordinates cam, z for division
    (1 behind the near plane), clamped (x/z, y/z), unit quaternion and its norm, R, s, A, J (j00, j02, j11, j12;
    j01 = j10 = 0), M rows."""
    m = (np.float64(means[i, 0]), np.float64(means[i, 1]), np.float64(means[i, 2]))
    cam = (_dot(W[0], m) + t[0], _dot(W[1], m) + t[1], _dot(W[2], m) + t[2])
    zs = cam[2] if cam[2] > NEAR_PLANE else 1.0
    iz = 1.0 / zs
    txy = (min(max(cam[0] * iz, -lim[1]), lim[0]), min(max(cam[1] * iz, -lim[3]), lim[2]))
    q, qn = _unit_quat(quats, i)
    R = _rotmat(q)
    s = (np.float64(scales[i, 0]), np.float64(scales[i, 1]), np.float64(scales[i, 2]))
    A = ((_dot(W[0], (R[0][0], R[1][0], R[2][0])) * s[0], _dot(W[0], (R[0][1], R[1][1], R[2][1])) * s[1],
          _dot(W[0], (R[0][2], R[1][2], R[2][2])) * s[2]),
         (_dot(W[1], (R[0][0], R[1][0], R[2][0])) * s[0], _dot(W[1], (R[0][1], R[1][1], R[2][1])) * s[1],
          _dot(W[1], (R[0][2], R[1][2], R[2][2])) * s[2]),
         (_dot(W[2], (R[0][0], R[1][0], R[2][0])) * s[0], _dot(W[2], (R[0][1], R[1][1], R[2][1])) * s[1],
          _dot(W[2], (R[0][2], R[1][2], R[2][2])) * s[2]))
    J = (f[0] * iz, -f[0] * txy[0] * iz, f[1] * iz, -f[1] * txy[1] * iz)
    M0 = (J[0] * A[0][0] + J[1] * A[2][0], J[0] * A[0][1] + J[1] * A[2][1], J[0] * A[0][2] + J[1] * A[2][2])
    M1 = (J[2] * A[1][0] + J[3] * A[2][0], J[2] * A[1][1] + J[3] * A[2][1], J[2] * A[1][2] + J[3] * A[2][2])
    return cam, zs, txy, q, qn, R, s, A, J, M0, M1


@kernel(inline=True)
def _project_one(means, quats, scales, opacities, i, W, t, f, lim, width, height,
                 means2d, conics, depths, extents, reach, radii, valid):
    """Project Gaussian i (see project_forward)."""
    cam, zs, txy, q, qn, R, s, A, J, M0, M1 = _stack(means, quats, scales, i, W, t, f, lim)
    iz = 1.0 / zs
    u = f[0] * cam[0] * iz + f[2]
    v = f[1] * cam[1] * iz + f[3]
    cxx, cxy, cyy = _dot(M0, M0) + LOW_PASS, _dot(M0, M1), _dot(M1, M1) + LOW_PASS
    det = max(cxx * cyy - cxy * cxy, _DET_MIN)
    idet = 1.0 / det
    a, b, c = cyy * idet, -cxy * idet, cxx * idet
    means2d[i, 0], means2d[i, 1] = u, v
    conics[i, 0], conics[i, 1], conics[i, 2] = a, b, c
    depths[i] = cam[2]
    sdx, sdy = math.sqrt(max(cxx, 0.0)), math.sqrt(max(cyy, 0.0))
    rch = math.sqrt(max(2.0 * math.log(max(np.float64(opacities[i]), ALPHA_MIN) / ALPHA_MIN), 0.0))
    reach[i] = rch
    extents[i, 0], extents[i, 1] = rch * sdx, rch * sdy
    ex, ey = SIGMA_CUTOFF * sdx, SIGMA_CUTOFF * sdy
    on_screen = (u + ex > 0) & (u - ex < width) & (v + ey > 0) & (v - ey < height)
    finite = np.isfinite(u) & np.isfinite(v) & np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
    ok = (cam[2] > NEAR_PLANE) & on_screen & finite
    valid[i] = ok
    mid = 0.5 * (cxx + cyy)
    lam = mid + math.sqrt(max(mid * mid - det, 0.1))
    radii[i] = np.int32(math.ceil(SIGMA_CUTOFF * math.sqrt(lam))) if ok else np.int32(0)


@kernel(parallel=True)
def project_forward(means, quats, scales, opacities, view, K, width, height, n_chunks,
                    means2d, conics, depths, extents, reach, radii, valid):
    """means (N, 3), quats (N, 4), scales (N, 3), opacities (N,), view (4, 4), K (3, 3) -> fills means2d (N, 2),
    conics (N, 3), depths (N,), extents (N, 2), reach (N,), radii (N,) int32, valid (N,) bool."""
    n = means.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        _project_block(ch * size, min(n, (ch + 1) * size), means, quats, scales, opacities, view, K, width, height,
                       means2d, conics, depths, extents, reach, radii, valid)


@kernel()
def _project_block(lo, hi, means, quats, scales, opacities, view, K, width, height,
                   means2d, conics, depths, extents, reach, radii, valid):
    """Gaussians lo..hi-1 of project_forward. (Its own function: numba's parallel-loop analysis fails on the
    inlined tuple code, and tuples cannot enter a prange body.)"""
    W, t, f, lim = camera_consts(view, K, width, height)
    for i in range(lo, hi):
        _project_one(means, quats, scales, opacities, i, W, t, f, lim, width, height,
                     means2d, conics, depths, extents, reach, radii, valid)


@kernel()
def _conic_grads(M0, M1, ga, gb, gc):
    """dL/dM rows from dL/d(conic a, b, c), conic = inverse of M M^T + low-pass (determinant clamped)."""
    cxx, cxy, cyy = _dot(M0, M0) + LOW_PASS, _dot(M0, M1), _dot(M1, M1) + LOW_PASS
    det_raw = cxx * cyy - cxy * cxy
    idet = 1.0 / max(det_raw, _DET_MIN)
    a, b, c = cyy * idet, -cxy * idet, cxx * idet
    gdet = -(ga * a + gb * b + gc * c) * idet if det_raw >= _DET_MIN else 0.0
    gxx = gc * idet + gdet * cyy
    gyy = ga * idet + gdet * cxx
    gxy = -gb * idet - 2 * gdet * cxy
    g0 = (2 * gxx * M0[0] + gxy * M1[0], 2 * gxx * M0[1] + gxy * M1[1], 2 * gxx * M0[2] + gxy * M1[2])
    g1 = (2 * gyy * M1[0] + gxy * M0[0], 2 * gyy * M1[1] + gxy * M0[1], 2 * gyy * M1[2] + gxy * M0[2])
    return g0, g1


@kernel()
def _quat_grads(q, qn, gR):
    """dL/d(quaternion as given) from dL/dR (rows), through the normalisation."""
    w, x, y, z = q
    g = gR
    gw = 2 * (-z * g[0][1] + y * g[0][2] + z * g[1][0] - x * g[1][2] - y * g[2][0] + x * g[2][1])
    gx = 2 * (y * g[0][1] + z * g[0][2] + y * g[1][0] - 2 * x * g[1][1] - w * g[1][2] + z * g[2][0]
              + w * g[2][1] - 2 * x * g[2][2])
    gy = 2 * (-2 * y * g[0][0] + x * g[0][1] + w * g[0][2] + x * g[1][0] + z * g[1][2] - w * g[2][0]
              + z * g[2][1] - 2 * y * g[2][2])
    gz = 2 * (-2 * z * g[0][0] - w * g[0][1] + x * g[0][2] + w * g[1][0] - 2 * z * g[1][1] + y * g[1][2]
              + x * g[2][0] + y * g[2][1])
    if qn > _QUAT_EPS:  # d(q / |q|) = (g - qhat (qhat . g)) / |q|
        dot, inv = w * gw + x * gx + y * gy + z * gz, 1.0 / qn
        return (gw - w * dot) * inv, (gx - x * dot) * inv, (gy - y * dot) * inv, (gz - z * dot) * inv
    return gw / _QUAT_EPS, gx / _QUAT_EPS, gy / _QUAT_EPS, gz / _QUAT_EPS


@kernel()
def _camera_grads(cam, zs, txy, J, gJ, gu, gv, gz, f, lim):
    """dL/dcam from dL/d(u, v, depth) and dL/dJ (j00, j02, j11, j12)."""
    fx, fy, iz = f[0], f[1], 1.0 / zs
    gx, gy = fx * gu * iz, fy * gv * iz
    gzz = gz - (fx * cam[0] * gu + fy * cam[1] * gv) * iz * iz
    gzz += (-fx * gJ[0] + fx * txy[0] * gJ[1] - fy * gJ[2] + fy * txy[1] * gJ[3]) * iz * iz
    gtx, gty = -fx * gJ[1] * iz, -fy * gJ[3] * iz  # through the clamped x/z, y/z where not clamped
    tx, ty = cam[0] * iz, cam[1] * iz
    if -lim[1] < tx < lim[0]:
        gx += gtx * iz
        gzz -= gtx * tx * iz
    if -lim[3] < ty < lim[2]:
        gy += gty * iz
        gzz -= gty * ty * iz
    return gx, gy, gzz


@kernel(inline=True)
def _backward_one(means, quats, scales, i, W, t, f, lim, g_means2d, g_conics, g_depths, g_means, g_quats,
                  g_scales):
    """Gradients of Gaussian i (see project_backward)."""
    cam, zs, txy, q, qn, R, s, A, J, M0, M1 = _stack(means, quats, scales, i, W, t, f, lim)
    gM0, gM1 = _conic_grads(M0, M1, np.float64(g_conics[i, 0]), np.float64(g_conics[i, 1]),
                            np.float64(g_conics[i, 2]))
    gJ = (_dot(gM0, A[0]), _dot(gM0, A[2]), _dot(gM1, A[1]), _dot(gM1, A[2]))  # M = J A
    gA = ((J[0] * gM0[0], J[0] * gM0[1], J[0] * gM0[2]), (J[2] * gM1[0], J[2] * gM1[1], J[2] * gM1[2]),
          (J[1] * gM0[0] + J[3] * gM1[0], J[1] * gM0[1] + J[3] * gM1[1], J[1] * gM0[2] + J[3] * gM1[2]))
    # A = W R S: (W^T dL/dA)[r][c] = wt; dL/dR = wt s_c, dL/ds_c = sum_r wt R[r][c]
    wt = ((W[0][0] * gA[0][0] + W[1][0] * gA[1][0] + W[2][0] * gA[2][0],
           W[0][0] * gA[0][1] + W[1][0] * gA[1][1] + W[2][0] * gA[2][1],
           W[0][0] * gA[0][2] + W[1][0] * gA[1][2] + W[2][0] * gA[2][2]),
          (W[0][1] * gA[0][0] + W[1][1] * gA[1][0] + W[2][1] * gA[2][0],
           W[0][1] * gA[0][1] + W[1][1] * gA[1][1] + W[2][1] * gA[2][1],
           W[0][1] * gA[0][2] + W[1][1] * gA[1][2] + W[2][1] * gA[2][2]),
          (W[0][2] * gA[0][0] + W[1][2] * gA[1][0] + W[2][2] * gA[2][0],
           W[0][2] * gA[0][1] + W[1][2] * gA[1][1] + W[2][2] * gA[2][1],
           W[0][2] * gA[0][2] + W[1][2] * gA[1][2] + W[2][2] * gA[2][2]))
    for c in range(3):
        g_scales[i, c] = wt[0][c] * R[0][c] + wt[1][c] * R[1][c] + wt[2][c] * R[2][c]
    gR = ((wt[0][0] * s[0], wt[0][1] * s[1], wt[0][2] * s[2]), (wt[1][0] * s[0], wt[1][1] * s[1], wt[1][2] * s[2]),
          (wt[2][0] * s[0], wt[2][1] * s[1], wt[2][2] * s[2]))
    gq = _quat_grads(q, qn, gR)
    for k in range(4):
        g_quats[i, k] = gq[k]
    gcam = _camera_grads(cam, zs, txy, J, gJ, np.float64(g_means2d[i, 0]), np.float64(g_means2d[i, 1]),
                         np.float64(g_depths[i]), f, lim)
    for k in range(3):  # cam = W m + t
        g_means[i, k] = W[0][k] * gcam[0] + W[1][k] * gcam[1] + W[2][k] * gcam[2]


@kernel(parallel=True)
def project_backward(means, quats, scales, view, K, width, height, valid, g_means2d, g_conics, g_depths,
                     n_chunks, g_means, g_quats, g_scales):
    """dL/d(means2d (N, 2), conics (N, 3), depths (N,)) -> fills g_means (N, 3), g_quats (N, 4), g_scales (N, 3)
    (zero for culled Gaussians)."""
    n = means.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        _backward_block(ch * size, min(n, (ch + 1) * size), means, quats, scales, view, K, width, height, valid,
                        g_means2d, g_conics, g_depths, g_means, g_quats, g_scales)


@kernel()
def _backward_block(lo, hi, means, quats, scales, view, K, width, height, valid, g_means2d, g_conics, g_depths,
                    g_means, g_quats, g_scales):
    """Gaussians lo..hi-1 of project_backward (see _project_block)."""
    W, t, f, lim = camera_consts(view, K, width, height)
    for i in range(lo, hi):
        if valid[i]:
            _backward_one(means, quats, scales, i, W, t, f, lim, g_means2d, g_conics, g_depths,
                          g_means, g_quats, g_scales)
        else:
            g_means[i, :] = 0
            g_quats[i, :] = 0
            g_scales[i, :] = 0
