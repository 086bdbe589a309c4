"""CUDA launchers for pair counting and chunked pair enumeration (bodies: :mod:`.pairs`).

Both kernels decode every pair index of ``[p0, p1)`` independently (``decode_pair``: a binary
search over the segment prefix sums), so work is balanced however skewed the blocks are.

* ``count``: a grid-stride loop; each thread counts emitted pairs per rule in registers (a local
  array of ``MAX_RULES``) and adds them to the global counts with at most one atomic per rule.
* ``enumerate``: a block-stride loop in which every thread of a block takes one index per step;
  emitting threads take a slot with a shared-memory atomic, thread 0 reserves the block's run of
  the output with one global atomic, then each writes its pair. The output order therefore
  depends on scheduling; the host wrapper sorts it by pair index (``out_p``) when asked, which
  gives the CPU launcher's order exactly.

Nothing here runs at import time; CUDA is imported through :mod:`gpulink.kernels._cuda` only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types as nbt

from gpulink.errors import SettingsError
from gpulink.kernels._cuda import cuda
from gpulink.kernels._targets import retarget_launcher
from gpulink.kernels.pairs import decode_pair, pair_is_emitted

MAX_RULES = 64  # per-thread register counters of the count kernel
DEFAULT_THREADS = 256
MAX_BLOCKS = 8192


def _count_kernel(
    p0,
    p1,
    seg_start,
    seg_a,
    seg_na,
    seg_b,
    seg_nb,
    seg_rule,
    members,
    groups,
    source_codes,
    link_type_code,
    counts,
):
    n_seg = seg_start.shape[0] - 1
    n_rules = counts.shape[0]
    local = cuda.local.array(MAX_RULES, nbt.int64)
    for r in range(n_rules):
        local[r] = 0
    p = p0 + cuda.grid(1)
    stride = cuda.gridsize(1)
    while p < p1:
        i, j, k = decode_pair(p, seg_start, n_seg, seg_a, seg_na, seg_b, seg_nb, seg_rule, members)
        if pair_is_emitted(i, j, k, groups, source_codes, link_type_code):
            local[k] += 1
        p += stride
    for r in range(n_rules):
        if local[r] != 0:
            cuda.atomic.add(counts, r, local[r])


def _enumerate_kernel(
    p0,
    p1,
    seg_start,
    seg_a,
    seg_na,
    seg_b,
    seg_nb,
    seg_rule,
    members,
    groups,
    source_codes,
    link_type_code,
    out_l,
    out_r,
    out_k,
    out_p,
    counter,
):
    n_seg = seg_start.shape[0] - 1
    block_count = cuda.shared.array(1, nbt.int64)
    block_base = cuda.shared.array(1, nbt.int64)
    tid = cuda.threadIdx.x
    stride = cuda.blockDim.x * cuda.gridDim.x
    base = p0 + cuda.blockIdx.x * cuda.blockDim.x
    while base < p1:  # uniform across the block: every thread reaches each syncthreads
        if tid == 0:
            block_count[0] = 0
        cuda.syncthreads()
        p = base + tid
        emit = False
        i = np.int64(0)
        j = np.int64(0)
        k = np.int64(0)
        if p < p1:
            i, j, k = decode_pair(
                p, seg_start, n_seg, seg_a, seg_na, seg_b, seg_nb, seg_rule, members
            )
            emit = pair_is_emitted(i, j, k, groups, source_codes, link_type_code)
        slot = np.int64(0)
        if emit:
            slot = cuda.atomic.add(block_count, 0, 1)
        cuda.syncthreads()
        if tid == 0:
            block_base[0] = cuda.atomic.add(counter, 0, block_count[0])
        cuda.syncthreads()
        if emit:
            d = block_base[0] + slot
            out_l[d] = i
            out_r[d] = j
            out_k[d] = k
            out_p[d] = p
        base += stride
        cuda.syncthreads()


_KERNELS: dict[str, object] = {}


def gpu_kernel(name: str):
    """The CUDA kernel ``"count"`` or ``"enumerate"`` (compiled lazily, at first launch)."""
    if name not in _KERNELS:
        fn = {"count": _count_kernel, "enumerate": _enumerate_kernel}[name]
        _KERNELS[name] = cuda.jit(retarget_launcher(fn, "gpu"))
    return _KERNELS[name]


def kernel_signature(name: str) -> tuple:
    """Argument types of kernel ``name`` (for ``compile_ptx``)."""
    i64, i32 = nbt.int64, nbt.int32
    plan = (
        i64,
        i64,
        i64[::1],
        i64[::1],
        i64[::1],
        i64[::1],
        i64[::1],
        i64[::1],
        i32[::1],
        i32[:, ::1],
        i32[::1],
        i64,
    )
    if name == "count":
        return (*plan, i64[::1])
    return (*plan, i32[::1], i32[::1], i32[::1], i64[::1], i64[::1])


def python_kernel(name: str):
    """The launcher retargeted at the GPU bodies, uncompiled (for ``compile_ptx``)."""
    fn = {"count": _count_kernel, "enumerate": _enumerate_kernel}[name]
    return retarget_launcher(fn, "gpu")


def device_plan(plan):
    """The plan's kernel arrays on the device (copied once, cached on the plan)."""
    cached = getattr(plan, "_device_arrays", None)
    if cached is None:
        cached = tuple(
            cuda.to_device(np.ascontiguousarray(a))
            for a in (
                plan.seg_start,
                plan.seg_a,
                plan.seg_na,
                plan.seg_b,
                plan.seg_nb,
                plan.seg_rule,
                plan.members,
                plan.groups,
                plan.source_codes,
            )
        )
        plan._device_arrays = cached
    return cached


def _grid(span: int, threads: int, blocks: int | None) -> int:
    return blocks or max(1, min(MAX_BLOCKS, math.ceil(span / threads)))


def count_range_gpu(
    plan, p0: int, p1: int, *, threads: int = DEFAULT_THREADS, blocks: int | None = None
) -> np.ndarray:
    """Emitted pairs per rule among pair indices ``[p0, p1)``, on the GPU (int64[n_rules])."""
    n_rules = plan.n_rules
    if n_rules > MAX_RULES:
        raise SettingsError(
            f"{n_rules} blocking rules: the GPU counting kernel supports at most {MAX_RULES}; "
            "merge rules or count on backend='cpu'"
        )
    if p1 <= p0 or plan.n_segments == 0:
        return np.zeros(n_rules, np.int64)
    counts = cuda.to_device(np.zeros(max(n_rules, 1), np.int64))
    grid = _grid(p1 - p0, threads, blocks)
    gpu_kernel("count")[grid, threads](
        np.int64(p0), np.int64(p1), *device_plan(plan), np.int64(plan.link_type_code), counts
    )
    return counts.copy_to_host()[:n_rules]


def enumerate_range_gpu(
    plan,
    p0: int,
    p1: int,
    *,
    threads: int = DEFAULT_THREADS,
    blocks: int | None = None,
    to_host: bool = True,
):
    """Emitted pairs among pair indices ``[p0, p1)`` on the GPU.

    ``to_host=True``: numpy ``(left, right, match_key)`` (int32) in pair-index order, equal to
    :func:`gpulink.kernels.pairs.enumerate_range_cpu`. ``to_host=False``: device arrays
    ``(left, right, match_key, pair_index, n)`` in scheduling order, for device-side consumers.
    """
    span = int(p1 - p0)
    if span <= 0 or plan.n_segments == 0:
        empty = np.zeros(0, np.int32)
        return (empty, empty.copy(), empty.copy()) if to_host else (empty,) * 4 + (0,)
    out_l = cuda.device_array(span, np.int32)
    out_r = cuda.device_array(span, np.int32)
    out_k = cuda.device_array(span, np.int32)
    out_p = cuda.device_array(span, np.int64)
    counter = cuda.to_device(np.zeros(1, np.int64))
    grid = _grid(span, threads, blocks)
    gpu_kernel("enumerate")[grid, threads](
        np.int64(p0),
        np.int64(p1),
        *device_plan(plan),
        np.int64(plan.link_type_code),
        out_l,
        out_r,
        out_k,
        out_p,
        counter,
    )
    n = int(counter.copy_to_host()[0])
    if not to_host:
        return out_l, out_r, out_k, out_p, n
    order = np.argsort(out_p.copy_to_host()[:n], kind="stable")
    return (
        out_l.copy_to_host()[:n][order],
        out_r.copy_to_host()[:n][order],
        out_k.copy_to_host()[:n][order],
    )


__all__ = [
    "MAX_RULES",
    "count_range_gpu",
    "device_plan",
    "enumerate_range_gpu",
    "gpu_kernel",
    "kernel_signature",
    "python_kernel",
]
