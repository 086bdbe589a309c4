"""Launchers for the pairwise comparator API: pair ``k`` compares string ``k`` of ``a`` with ``b``.

One launcher source per target over the same kernel bodies (:mod:`gpulink.kernels.strings`):

* CPU: ``prange`` over fixed chunks of pairs; each chunk owns one scratch row, so writes never
  race and results do not depend on the thread count.
* GPU: a grid-stride loop; each thread owns one scratch row.

Inputs are code-point buffers ``chars`` (uint32) with ``offsets`` (int64, ``n + 1``) for each
side, ``valid`` (uint8, 1 when both strings of the pair are non-null) and the output ``out``
(float64): the similarity or distance, NaN for an invalid pair.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from gpulink.kernels._targets import kernel_body, retarget_launcher
from gpulink.kernels.strings import (
    PATTERN_TABLE_INTS,
    WORD,
    damerau_levenshtein,
    jaccard,
    jaro,
    jaro_winkler,
    levenshtein,
)

JARO = 0
JARO_WINKLER = 1
LEVENSHTEIN = 2
DAMERAU_LEVENSHTEIN = 3
JACCARD = 4

METRICS = {
    "jaro": JARO,
    "jaro_winkler": JARO_WINKLER,
    "levenshtein": LEVENSHTEIN,
    "damerau_levenshtein": DAMERAU_LEVENSHTEIN,
    "jaccard": JACCARD,
}

#: Numba signature of the GPU launcher (also used to compile it to PTX in CI).
GPU_SIGNATURE = (
    "void(int64, uint32[::1], int64[::1], uint32[::1], int64[::1], uint8[::1], int64, "
    "int32[:, ::1], float64[::1])"
)

cuda = None  # the GPU build binds numba.cuda here (see gpu_launcher); this module never imports it


def scratch_ints_for(metric: int, max_len: int) -> int:
    """Scratch ints per thread that ``metric`` needs on strings of at most ``max_len`` points.

    Zero for Jaro and Levenshtein when every string fits a 64-bit fast path.

    >>> scratch_ints_for(JARO, 20), scratch_ints_for(DAMERAU_LEVENSHTEIN, 20)
    (0, 88)
    """
    if metric in (JARO, JARO_WINKLER):
        return 0 if max_len <= WORD else 2 * max_len
    if metric == LEVENSHTEIN:
        return 0 if max_len <= WORD else max_len + 1
    if metric == DAMERAU_LEVENSHTEIN:
        return 4 * (max_len + 2)
    if metric == JACCARD:
        return 0 if max_len <= WORD else 2 * max_len
    raise ValueError(f"unknown metric {metric}")


@kernel_body
def compare_pair(metric, a, a0, a1, b, b0, b1, max_dist, scratch):
    """The value of comparator ``metric`` on one pair, as float64."""
    if metric == JARO:
        return jaro(a, a0, a1, b, b0, b1, scratch)
    if metric == JARO_WINKLER:
        return jaro_winkler(a, a0, a1, b, b0, b1, scratch)
    if metric == LEVENSHTEIN:
        return np.float64(levenshtein(a, a0, a1, b, b0, b1, max_dist, scratch))
    if metric == DAMERAU_LEVENSHTEIN:
        return np.float64(damerau_levenshtein(a, a0, a1, b, b0, b1, max_dist, scratch))
    return jaccard(a, a0, a1, b, b0, b1, scratch)


def _cpu_pairs(metric, a_chars, a_off, b_chars, b_off, valid, max_dist, scratch, out):
    n = out.shape[0]
    n_chunks = scratch.shape[0]
    for c in numba.prange(n_chunks):
        lo = c * n // n_chunks
        hi = (c + 1) * n // n_chunks
        s = scratch[c]
        for k in range(lo, hi):
            if valid[k]:
                out[k] = compare_pair(
                    metric, a_chars, a_off[k], a_off[k + 1], b_chars, b_off[k], b_off[k + 1],
                    max_dist, s,
                )  # fmt: skip
            else:
                out[k] = np.nan


def _gpu_pairs(metric, a_chars, a_off, b_chars, b_off, valid, max_dist, scratch, out):
    tid = cuda.grid(1)
    stride = cuda.gridsize(1)
    n = out.shape[0]
    s = scratch[tid]
    for k in range(tid, n, stride):
        if valid[k]:
            out[k] = compare_pair(
                metric, a_chars, a_off[k], a_off[k + 1], b_chars, b_off[k], b_off[k + 1],
                max_dist, s,
            )  # fmt: skip
        else:
            out[k] = np.nan


@functools.cache
def cpu_launcher():
    """The compiled CPU launcher (``numba.njit(parallel=True)``; cached on disk when possible)."""
    fn = retarget_launcher(_cpu_pairs, "cpu")
    try:
        return numba.njit(parallel=True, cache=True, nogil=True)(fn)
    except Exception:  # pragma: no cover - read-only install: no on-disk cache
        return numba.njit(parallel=True, nogil=True)(fn)


def gpu_launcher_source():
    """The GPU launcher as a Python function bound to the GPU builds (not compiled yet)."""
    from gpulink.kernels import _cuda

    fn = retarget_launcher(_gpu_pairs, "gpu")
    fn.__globals__["cuda"] = _cuda.cuda
    return fn


@functools.cache
def gpu_launcher():
    """The GPU launcher as a CUDA kernel (compiled lazily at its first launch)."""
    from gpulink.kernels import _cuda

    return _cuda.kernel(gpu_launcher_source())


def run_cpu(metric, a_chars, a_off, b_chars, b_off, valid, max_dist=-1, max_len=None):
    """Compare every pair on all CPU cores; returns float64 ``out`` (NaN where not ``valid``)."""
    n = len(valid)
    out = np.empty(n, np.float64)
    if n == 0:
        return out
    if max_len is None:
        max_len = _max_len(a_off, b_off)
    need = max(scratch_ints_for(metric, max_len), PATTERN_TABLE_INTS)
    n_chunks = min(n, max(1, numba.get_num_threads()) * 8)
    scratch = np.empty((n_chunks, need), np.int32)
    cpu_launcher()(metric, a_chars, a_off, b_chars, b_off, valid, max_dist, scratch, out)
    return out


def run_gpu(
    metric,
    a_chars,
    a_off,
    b_chars,
    b_off,
    valid,
    max_dist=-1,
    max_len=None,
    *,
    threads_per_block=256,
    max_threads=1 << 20,
    scratch_budget_bytes=256 << 20,
    xp=np,
):
    """Compare every pair on the GPU; returns float64 ``out`` as an ``xp`` array.

    ``xp`` is the array module of the inputs: cupy for device arrays, or numpy under the CUDA
    simulator (tests) where Numba copies host arrays itself. The grid is capped so that the
    per-thread scratch stays within ``scratch_budget_bytes``.
    """
    n = len(valid)
    out = xp.empty(n, xp.float64)
    if n == 0:
        return out
    if max_len is None:
        max_len = _max_len(_host(a_off), _host(b_off))
    need = max(scratch_ints_for(metric, max_len), 1)
    threads = max(min(max_threads, scratch_budget_bytes // (4 * need), n), 1)
    blocks = math.ceil(threads / threads_per_block)
    scratch = xp.empty((blocks * threads_per_block, need), xp.int32)
    gpu_launcher()[blocks, threads_per_block](
        metric, a_chars, a_off, b_chars, b_off, valid, max_dist, scratch, out
    )
    return out


def _host(array):
    get = getattr(array, "get", None)
    return get() if get is not None else np.asarray(array)


def _max_len(a_off, b_off) -> int:
    la = int(np.max(np.diff(a_off))) if len(a_off) > 1 else 0
    lb = int(np.max(np.diff(b_off))) if len(b_off) > 1 else 0
    return max(la, lb)
