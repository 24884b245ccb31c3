"""Shared numba plumbing of the native CPU rasterizer: the kernel decorator, its on-disk cache, threads, and a
vectorisable exp.

Compiled kernels are cached on disk (numba `cache=True`) in `NUMBA_CACHE_DIR` when that is set, else in the user
cache directory (`$XDG_CACHE_HOME/landscape4d/numba`, by default `~/.cache/landscape4d/numba`), in a subfolder
named after a hash of the kernel sources (numba only notices edits in the file of the kernel itself, not in the
helpers it calls from other files). If that place is not writable, a folder in the temporary directory is used.
The first call in a fresh cache compiles the kernels (seconds); later processes load them.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import tempfile
import types as types_module
from pathlib import Path

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

_KERNEL_FILES = ("raster_numba_jit.py", "raster_numba_project.py", "raster_numba_tiles.py",
                 "raster_numba_render.py")


def _source_digest() -> str:
    here = Path(__file__).resolve().parent
    h = hashlib.sha1(numba.__version__.encode())
    for name in _KERNEL_FILES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)
        probe.close()
        return True
    except OSError:
        return False


def cache_dir() -> Path:
    """Where the compiled kernels of this version of the sources live (created if missing)."""
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        base = Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = Path(xdg) / "landscape4d" / "numba"
    path = base / f"landscape4d-{_source_digest()}"
    if not _writable(path):
        path = Path(tempfile.gettempdir()) / f"landscape4d-numba-{os.getuid()}" / path.name
        path.mkdir(parents=True, exist_ok=True)
    return path


CACHE_DIR = str(cache_dir())

# numba's OpenMP threading layer loads the libgomp that torch uses and sets its thread count when it starts
# (torch.get_num_threads() then reports numba's pool size, which silently overrides --threads), and its idle
# threads spin: on a loaded machine a 2-thread launch took ~15 ms. numba's own "workqueue" pool has neither
# problem (~0.05 ms per launch); it must not be entered by two threads at once, hence the lock around every
# launch (raster_numba). An explicit NUMBA_THREADING_LAYER is respected.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"
# Fast-math flag sets. Never 'nnan'/'ninf' (the culling tests isfinite). The alpha of a pixel is computed by one
# helper with CONTRACT only (fused multiply-adds, no reordering), so that the forward and the backward, which
# inline the same instructions, take the same alpha cut-off decisions; REDUCE_MATH (reordering, so that sums
# over pixels vectorise) is for the backward's accumulations.
CONTRACT = {"contract"}
REDUCE_MATH = {"reassoc", "nsz", "arcp", "contract"}


def _njit(fn, **options):
    old = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = CACHE_DIR
    try:
        return numba.njit(cache=True, error_model="numpy", nogil=True, **options)(fn)
    finally:
        numba.config.CACHE_DIR = old


class ParallelKernel:
    """A prange kernel compiled twice: with numba's thread pool, and as a plain loop that runs in the calling
    thread, used when numba's thread count (use_threads) is 1. Handing work to the pool and waiting for it costs
    a thread wake-up per launch (milliseconds on a loaded machine); the serial twin skips it. Each is compiled
    on its first use. Call from Python only."""

    def __init__(self, fn, fastmath):
        self.parallel = _njit(fn, parallel=True, fastmath=fastmath)
        twin = types_module.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__,
                                         fn.__closure__)
        twin.__qualname__ = fn.__qualname__ + "_serial"  # its own cache file
        self.serial = _njit(twin, parallel=False, fastmath=fastmath)
        functools.update_wrapper(self, fn)

    def __call__(self, *args):
        return (self.serial if numba.get_num_threads() == 1 else self.parallel)(*args)


def kernel(parallel: bool = False, fastmath=False, inline: bool = False):
    """numba.njit with on-disk caching in CACHE_DIR; numpy error model (no zero-division checks, which would
    keep the pixel loops from vectorising). The cache folder is chosen when the function is decorated.
    parallel=True gives a ParallelKernel. inline=True inlines the function into its callers in numba's own IR:
    LLVM does not inline large numba functions, and a call passes every array argument as a ~56-byte struct on
    the stack (~0.1 us per call), which matters for helpers called per Gaussian."""

    def deco(fn):
        if parallel:
            return ParallelKernel(fn, fastmath)
        return _njit(fn, fastmath=fastmath, inline="always" if inline else "never")

    return deco


def use_threads(threads: int | None = None) -> int:
    """Set numba's thread count for the calling thread: `threads`, else torch's current count, at most the size
    of numba's pool. Returns the count."""
    n = torch.get_num_threads() if threads is None else int(threads)
    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


# ---------------------------------------------------------------------------------------------------------------
# exp: numba's math.exp is a libm call per element (no vector version without Intel SVML), which keeps the pixel
# loops scalar. fexp is exp for float64 and, for float32, a branch-free exp that vectorises: x = n ln 2 + r with
# |r| <= ln(2) / 2, exp(r) by its Taylor polynomial of degree 6 (truncation < 1.2e-7 relative), 2^n built from
# its IEEE exponent bits. About 2 ulp; arguments below -87 return exp(-87) ~ 1.6e-38 instead of smaller values (the
# rasterizer only compares the results with 1/255).

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375  # ln 2 split in a part with few mantissa bits (n * _LN2_HI is exact) and the rest
_LN2_LO = math.log(2.0) - 0.693359375
_INV_FACT = tuple(1.0 / math.factorial(k) for k in range(7))


@intrinsic
def _f32_from_bits(typingctx, bits):
    """Reinterpret the low 32 bits of an integer as a float32."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if bits.bitwidth > 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(bits), codegen


def fexp(x):
    """exp(x); see the note above for float32 arguments inside numba kernels."""
    return math.exp(x)


@overload(fexp)
def _fexp_overload(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        f = np.float32
        log2e, hi, lo, lo_clamp, hi_clamp = f(_LOG2E), f(_LN2_HI), f(_LN2_LO), f(-87.0), f(88.0)
        c = tuple(f(v) for v in _INV_FACT)

        def impl32(x):
            x = min(max(x, lo_clamp), hi_clamp)
            n = np.floor(x * log2e + f(0.5))
            r = (x - n * hi) - n * lo
            p = c[6]
            p = p * r + c[5]
            p = p * r + c[4]
            p = p * r + c[3]
            p = p * r + c[2]
            p = p * r + c[1]
            p = p * r + c[0]
            return p * _f32_from_bits((np.int32(n) + 127) << 23)

        return impl32
    if isinstance(x, types.Float):
        return lambda x: math.exp(x)
    return None


_LN2 = math.log(2.0)
_LN2_POW_FACT = tuple(_LN2**k / math.factorial(k) for k in range(7))
LOG2E = _LOG2E


def fexp2(x):
    """2 ** x; inside kernels, for float32, like fexp without its range reduction multiply: n = round(x),
    2^(x - n) by the Taylor polynomial of exp((x - n) ln 2) of degree 6 (truncation < 1.2e-7 relative), about
    2 ulp. x must be <= 127; x below -100 gives 2^-100."""
    return 2.0**x


@overload(fexp2)
def _fexp2_overload(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        f = np.float32
        half, lo_clamp = f(0.5), f(-100.0)
        c = tuple(f(v) for v in _LN2_POW_FACT)

        def impl32(x):
            x = max(x, lo_clamp)
            n = np.floor(x + half)
            r = x - n
            p = c[6]
            p = p * r + c[5]
            p = p * r + c[4]
            p = p * r + c[3]
            p = p * r + c[2]
            p = p * r + c[1]
            p = p * r + c[0]
            return p * _f32_from_bits((np.int32(n) + 127) << 23)

        return impl32
    if isinstance(x, types.Float):
        return lambda x: math.exp(x * _LN2)
    return None


def like(x, v):
    """v as a float of x's type (inside kernels a float64 literal would turn float32 arithmetic into float64)."""
    return type(x)(v)


@overload(like)
def _like_overload(x, v):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x, v: np.float32(v)
    if isinstance(x, types.Float):
        return lambda x, v: np.float64(v)
    return None
