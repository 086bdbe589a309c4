"""CUDA launchers of the fused pass: blocked pair -> gammas -> match weight -> filter -> output.

The same kernel bodies as the CPU launchers (:mod:`gpulink.kernels.score`): ``decode_pair`` /
``pair_is_emitted`` (:mod:`.pairs`), ``pair_gammas`` (:mod:`.compare`) and
``pair_match_weight`` (:mod:`.weights`), compiled as device functions, so a pair gets the same
gammas and the same float64 weight to the last bit on both targets.

Kernels (one thread per pair index, every index decoded on its own by a binary search over the
segment prefix sums, so load balance does not depend on block skew):

* ``score``: a block-stride loop. Per step each thread of a block takes one pair index, scores
  it, and kept pairs take a slot with a shared-memory atomic; thread 0 then reserves the block's
  run of the output with **one global atomic per block step**, and each thread writes its pair
  and its pair index. Why this rather than count + exclusive scan + write: scoring is the
  expensive part (string comparators), and a two-pass scheme would run it twice or store every
  candidate's result; a threshold keeps few pairs, so the host-side order fix is a sort of a
  short array. The wrapper sorts the kept pairs by pair index (on the device when on a GPU),
  which gives the CPU launcher's order exactly.
* ``histogram_shared`` / ``histogram_global``: a grid-stride loop counting pairs per agreement
  pattern (mixed-radix index of the gamma vector). With at most :data:`SHARED_BINS` patterns
  each block counts in shared memory (uint32) and flushes its non-zero bins to the global int64
  histogram with one atomic per bin; otherwise every pair adds to the global histogram.
* ``gammas``: a grid-stride loop writing the gammas of explicit pairs.

Per-thread buffers: comparator scratch is a global ``int32[n_threads, scratch_ints]`` buffer
sized by the launched grid (the grid is fixed, the loops stride over the pairs); the metric
cache, predicate stack and gamma row are ``cuda.local`` arrays of compile-time size
(:data:`MAX_SLOTS`, ``MAX_STACK``, :data:`MAX_COMPARISONS`); a model beyond those caps gets a
:class:`~gpulink.errors.SettingsError`.

Arrays live in cupy (one memory pool, see :mod:`gpulink.device`) on a GPU and stay on the device
across calls (cached on the scorer and the plan); under Numba's CUDA simulator they are numpy
arrays. Nothing here runs at import time; kernels compile at their first launch.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types as nbt

from gpulink.errors import SettingsError
from gpulink.kernels import _cuda
from gpulink.kernels._cuda import cuda
from gpulink.kernels._targets import retarget_launcher
from gpulink.kernels.compare import pair_gammas
from gpulink.kernels.pairs import decode_pair, pair_is_emitted
from gpulink.kernels.program import MAX_STACK
from gpulink.kernels.weights import pair_match_weight

MAX_SLOTS = 64  # similarity slots per model (per-thread metric cache, cuda.local)
MAX_COMPARISONS = 64  # comparisons per model (per-thread gamma row, cuda.local)
SHARED_BINS = 8192  # patterns counted in shared memory (uint32: 32 KiB per block)
DEFAULT_THREADS = 256
MAX_BLOCKS = 4096
SCRATCH_BUDGET_BYTES = 256 << 20  # global comparator scratch of one launch, at most

#: Output bytes per pair index of one ``score`` launch, before the gamma columns: left, right,
#: rule (int32 each), weight and pair index (8 bytes each).
SCORE_BYTES_PER_PAIR = 4 + 4 + 4 + 8 + 8


# --------------------------------------------------------------------------------------------
# Kernels (CUDA launchers over the single-source bodies)
# --------------------------------------------------------------------------------------------


def _score_kernel(
    p0, p1, threshold, prior_weight, keep_gammas,
    seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members, groups, source_codes, link_type,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    program, level_start, level_gamma, comparison_start,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    tf, tf_base, log2_bf, tf_col, tf_weight, tf_log2_u, tf_min_u,
    n_slots, scratch_all,
    out_i, out_j, out_w, out_k, out_p, out_gammas, counter,
):  # fmt: skip
    n_comparisons = comparison_start.shape[0] - 1
    n_seg = seg_start.shape[0] - 1
    cache_buf = cuda.local.array(MAX_SLOTS, nbt.float64)
    metric_cache = cache_buf[:n_slots]  # pair_gammas resets exactly the model's slots
    stack = cuda.local.array(MAX_STACK, nbt.int8)
    gam = cuda.local.array((1, MAX_COMPARISONS), nbt.int8)
    scratch = scratch_all[cuda.grid(1)]
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
        keep = False
        i = np.int64(0)
        j = np.int64(0)
        k = np.int64(0)
        w = 0.0
        if p < p1:
            i, j, k = decode_pair(
                p, seg_start, n_seg, seg_a, seg_na, seg_b, seg_nb, seg_rule, members
            )
            if pair_is_emitted(i, j, k, groups, source_codes, link_type):
                pair_gammas(
                    i, j, gam, 0,
                    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
                    program, level_start, level_gamma, comparison_start,
                    codes, chars, str_offsets, str_base, values, val_base,
                    elements, arr_offsets, arr_base, metric_cache, scratch, stack,
                )  # fmt: skip
                w = pair_match_weight(
                    gam, 0, i, j, prior_weight,
                    log2_bf, tf_col, tf_weight, tf_log2_u, tf_min_u, codes, tf, tf_base,
                )  # fmt: skip
                keep = w >= threshold
        slot = np.int64(0)
        if keep:
            slot = cuda.atomic.add(block_count, 0, 1)
        cuda.syncthreads()
        if tid == 0 and block_count[0] > 0:
            block_base[0] = cuda.atomic.add(counter, 0, block_count[0])
        cuda.syncthreads()
        if keep:
            d = block_base[0] + slot
            out_i[d] = i
            out_j[d] = j
            out_w[d] = w
            out_k[d] = k
            out_p[d] = p
            if keep_gammas:
                for cc in range(n_comparisons):
                    out_gammas[d, cc] = gam[0, cc]
        base += stride
        cuda.syncthreads()  # block_count is reset next step only once everyone has read it


def _histogram_shared_kernel(
    p0, p1, radix,
    seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members, groups, source_codes, link_type,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    program, level_start, level_gamma, comparison_start,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    n_slots, scratch_all, out_hist,
):  # fmt: skip
    n_comparisons = comparison_start.shape[0] - 1
    n_seg = seg_start.shape[0] - 1
    n_bins = out_hist.shape[0]
    hist = cuda.shared.array(SHARED_BINS, nbt.uint32)
    tid = cuda.threadIdx.x
    for b in range(tid, n_bins, cuda.blockDim.x):
        hist[b] = 0
    cuda.syncthreads()
    cache_buf = cuda.local.array(MAX_SLOTS, nbt.float64)
    metric_cache = cache_buf[:n_slots]
    stack = cuda.local.array(MAX_STACK, nbt.int8)
    gam = cuda.local.array((1, MAX_COMPARISONS), nbt.int8)
    scratch = scratch_all[cuda.grid(1)]
    p = p0 + cuda.grid(1)
    stride = cuda.gridsize(1)
    while p < p1:
        i, j, k = decode_pair(p, seg_start, n_seg, seg_a, seg_na, seg_b, seg_nb, seg_rule, members)
        if pair_is_emitted(i, j, k, groups, source_codes, link_type):
            pair_gammas(
                i, j, gam, 0,
                leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
                program, level_start, level_gamma, comparison_start,
                codes, chars, str_offsets, str_base, values, val_base,
                elements, arr_offsets, arr_base, metric_cache, scratch, stack,
            )  # fmt: skip
            index = np.int64(0)
            for cc in range(n_comparisons):
                index = index * radix[cc] + (gam[0, cc] + 1)
            cuda.atomic.add(hist, index, np.uint32(1))
        p += stride
    cuda.syncthreads()
    for b in range(tid, n_bins, cuda.blockDim.x):
        if hist[b] != 0:
            cuda.atomic.add(out_hist, b, np.int64(hist[b]))


def _histogram_global_kernel(
    p0, p1, radix,
    seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members, groups, source_codes, link_type,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    program, level_start, level_gamma, comparison_start,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    n_slots, scratch_all, out_hist,
):  # fmt: skip
    n_comparisons = comparison_start.shape[0] - 1
    n_seg = seg_start.shape[0] - 1
    cache_buf = cuda.local.array(MAX_SLOTS, nbt.float64)
    metric_cache = cache_buf[:n_slots]
    stack = cuda.local.array(MAX_STACK, nbt.int8)
    gam = cuda.local.array((1, MAX_COMPARISONS), nbt.int8)
    scratch = scratch_all[cuda.grid(1)]
    p = p0 + cuda.grid(1)
    stride = cuda.gridsize(1)
    while p < p1:
        i, j, k = decode_pair(p, seg_start, n_seg, seg_a, seg_na, seg_b, seg_nb, seg_rule, members)
        if pair_is_emitted(i, j, k, groups, source_codes, link_type):
            pair_gammas(
                i, j, gam, 0,
                leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
                program, level_start, level_gamma, comparison_start,
                codes, chars, str_offsets, str_base, values, val_base,
                elements, arr_offsets, arr_base, metric_cache, scratch, stack,
            )  # fmt: skip
            index = np.int64(0)
            for cc in range(n_comparisons):
                index = index * radix[cc] + (gam[0, cc] + 1)
            cuda.atomic.add(out_hist, index, np.int64(1))
        p += stride


def _gammas_kernel(
    left, right,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    program, level_start, level_gamma, comparison_start,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    n_slots, scratch_all, out_gammas,
):  # fmt: skip
    cache_buf = cuda.local.array(MAX_SLOTS, nbt.float64)
    metric_cache = cache_buf[:n_slots]
    stack = cuda.local.array(MAX_STACK, nbt.int8)
    t = cuda.grid(1)
    scratch = scratch_all[t]
    for r in range(t, left.shape[0], cuda.gridsize(1)):
        pair_gammas(
            left[r], right[r], out_gammas, r,
            leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
            program, level_start, level_gamma, comparison_start,
            codes, chars, str_offsets, str_base, values, val_base,
            elements, arr_offsets, arr_base, metric_cache, scratch, stack,
        )  # fmt: skip


_SOURCES = {
    "score": _score_kernel,
    "histogram_shared": _histogram_shared_kernel,
    "histogram_global": _histogram_global_kernel,
    "gammas": _gammas_kernel,
}
KERNEL_NAMES = tuple(_SOURCES)
_KERNELS: dict[str, object] = {}


def python_kernel(name: str):
    """Kernel ``name`` retargeted at the GPU bodies, not compiled (for ``compile_ptx``)."""
    return retarget_launcher(_SOURCES[name], "gpu")


def gpu_kernel(name: str):
    """The CUDA kernel ``name`` (one of :data:`KERNEL_NAMES`), compiled at its first launch."""
    if name not in _KERNELS:
        _KERNELS[name] = _cuda.kernel(python_kernel(name))
    return _KERNELS[name]


def kernel_signature(name: str) -> tuple:
    """The argument types the host wrappers launch kernel ``name`` with (for ``compile_ptx``)."""
    i8, i32, i64, u32, f64 = nbt.int8, nbt.int32, nbt.int64, nbt.uint32, nbt.float64
    plan = (i64[::1],) * 6 + (i32[::1], i32[:, ::1], i32[::1], i64)
    prog = (i32[::1], i32[::1], i32[::1], f64[::1], i32[::1], f64[::1]) + (i32[::1],) * 4
    packed = (i32[:, ::1], u32[::1], i64[::1], i64[::1], f64[::1], i64[::1])
    packed += (i32[::1], i64[::1], i64[::1])
    tail = (i64, i32[:, ::1])  # n_slots, scratch_all
    if name == "score":
        weights = (f64[::1], i64[::1], f64[:, ::1], i32[:, ::1], f64[:, ::1], f64[:, ::1])
        weights += (f64[:, ::1],)
        outs = (i32[::1], i32[::1], f64[::1], i32[::1], i64[::1], i8[:, ::1], i64[::1])
        head = (i64, i64, f64, f64, nbt.boolean)
        return head + plan + prog + packed + weights + tail + outs
    if name in ("histogram_shared", "histogram_global"):
        return (i64, i64, i64[::1]) + plan + prog + packed + tail + (i64[::1],)
    return (i64[::1], i64[::1]) + prog + packed + tail + (i8[:, ::1],)


def compile_all_ptx(cc=(9, 0)) -> dict[str, str]:
    """PTX of every kernel here for compute capability ``cc`` (no GPU or driver needed).

    >>> sorted(compile_all_ptx())  # doctest: +SKIP
    ['gammas', 'histogram_global', 'histogram_shared', 'score']
    """
    return {
        name: _cuda.compile_ptx(python_kernel(name), kernel_signature(name), cc=cc)[0]
        for name in KERNEL_NAMES
    }


# --------------------------------------------------------------------------------------------
# Host side: device arrays, launch shape
# --------------------------------------------------------------------------------------------


def array_module():
    """cupy on a GPU; numpy under the CUDA simulator (which takes host arrays)."""
    if _cuda.SIMULATOR:
        return np
    from gpulink.device import cupy_module

    return cupy_module()


def _to_device(array):
    xp = array_module()
    return xp.ascontiguousarray(xp.asarray(array))


def device_args(scorer) -> dict[str, tuple]:
    """The scorer's program, packed columns and weight tables on the device, copied once.

    Cached on the scorer as ``scorer._device_args`` (``"prog"``, ``"packed"``: the 9 column
    arrays, ``"tf"``: ``(tf, tf_base)``, ``"weights"``: the 5 weight tables).
    """
    cached = getattr(scorer, "_device_args", None)
    if cached is None:
        from gpulink.device import check_fits, device_memory_guard, memory_budget

        _check_caps(scorer)
        host = {
            "prog": tuple(scorer.prog.arrays()),
            "packed": tuple(scorer._packed_args()),
            "tf": (scorer.packed.tf, scorer.packed.tf_base),
            "weights": tuple(scorer.weights.arrays()),
        }
        if not _cuda.SIMULATOR:
            nbytes = sum(int(a.nbytes) for group in host.values() for a in group)
            check_fits(nbytes, memory_budget(), "the record table, dictionaries and model")
        with device_memory_guard("copying the record table to the device"):
            cached = {k: tuple(_to_device(a) for a in v) for k, v in host.items()}
        scorer._device_args = cached
    return cached


def device_plan_arrays(plan) -> tuple:
    """The plan's kernel arrays on the device, in kernel order (copied once, cached on the plan)."""
    cached = getattr(plan, "_score_device_arrays", None)
    if cached is None:
        from gpulink.device import device_memory_guard

        with device_memory_guard("copying the blocking plan to the device"):
            cached = tuple(
                _to_device(a)
                for a in (
                    plan.seg_start, plan.seg_a, plan.seg_na, plan.seg_b, plan.seg_nb,
                    plan.seg_rule, plan.members, plan.groups, plan.source_codes,
                )
            )  # fmt: skip
        plan._score_device_arrays = cached
    return (*cached, np.int64(plan.link_type_code))


def _check_caps(scorer) -> None:
    n_slots = int(scorer.prog.n_slots)
    n_comparisons = int(scorer.program.n_comparisons)
    if n_slots > MAX_SLOTS:
        raise SettingsError(
            f"the model computes {n_slots} distinct similarities per pair; the GPU kernels hold "
            f"at most {MAX_SLOTS} per thread. Share columns between comparisons or use "
            "backend='cpu'"
        )
    if n_comparisons > MAX_COMPARISONS:
        raise SettingsError(
            f"the model has {n_comparisons} comparisons; the GPU kernels support at most "
            f"{MAX_COMPARISONS}. Merge comparisons or use backend='cpu'"
        )


def launch_shape(span: int, scratch_ints: int, threads: int, blocks: int | None) -> tuple[int, int]:
    """(blocks, threads) for ``span`` work items: one item per thread up to :data:`MAX_BLOCKS`
    blocks, fewer when the per-thread comparator scratch would pass
    :data:`SCRATCH_BUDGET_BYTES` (the loops stride, so any grid covers the span).

    >>> launch_shape(1000, 100, 256, None)
    (4, 256)
    """
    if blocks is None:
        by_scratch = SCRATCH_BUDGET_BYTES // (4 * max(scratch_ints, 1) * threads)
        blocks = max(1, min(MAX_BLOCKS, math.ceil(span / threads), by_scratch))
    return int(blocks), int(threads)


def _scratch(xp, blocks: int, threads: int, scratch_ints: int):
    return xp.empty((blocks * threads, max(int(scratch_ints), 1)), np.int32)


def _host(array) -> np.ndarray:
    get = getattr(array, "get", None)
    return get() if get is not None else np.asarray(array)


# --------------------------------------------------------------------------------------------
# Host wrappers (same meaning as the CPU launchers driven by gpulink.predict.Scorer)
# --------------------------------------------------------------------------------------------


def score_range_gpu(
    scorer, plan, p0: int, p1: int, threshold_weight: float, *, keep_gammas: bool,
    threads: int = DEFAULT_THREADS, blocks: int | None = None,
):  # fmt: skip
    """Score pair indices ``[p0, p1)`` of ``plan`` on the GPU; keep weights >= the threshold.

    Same result as :meth:`gpulink.predict.Scorer.score_range` (numpy arrays in pair-index
    order, identical gammas and float64 weights). Device memory: the cached record table plus
    ``(28 + n_comparisons * keep_gammas)`` bytes per pair index of the span (see
    :func:`gpulink.device.chunk_pairs_for_budget` to size spans).

    >>> scored = score_range_gpu(scorer, plan, 0, plan.n_candidates, 0.0,
    ...                          keep_gammas=False)  # doctest: +SKIP
    """
    from gpulink.device import device_memory_guard
    from gpulink.predict import ScoredPairs

    n_comparisons = scorer.program.n_comparisons
    span = int(p1 - p0)
    if span <= 0 or plan.n_segments == 0:
        return _empty_scored(n_comparisons, keep_gammas)
    xp = array_module()
    args = device_args(scorer)
    blocks, threads = launch_shape(span, scorer.scratch_ints, threads, blocks)
    with device_memory_guard(f"scoring {span:,} pair indices (lower chunk_pairs)"):
        out_i = xp.empty(span, np.int32)
        out_j = xp.empty(span, np.int32)
        out_w = xp.empty(span, np.float64)
        out_k = xp.empty(span, np.int32)
        out_p = xp.empty(span, np.int64)
        out_g = xp.empty((span if keep_gammas else 1, n_comparisons), np.int8)
        counter = xp.zeros(1, np.int64)
        scratch = _scratch(xp, blocks, threads, scorer.scratch_ints)
        gpu_kernel("score")[blocks, threads](
            np.int64(p0), np.int64(p1), np.float64(threshold_weight),
            np.float64(scorer.settings.log2_prior_odds), bool(keep_gammas),
            *device_plan_arrays(plan), *args["prog"], *args["packed"], *args["tf"],
            *args["weights"], np.int64(scorer.prog.n_slots), scratch,
            out_i, out_j, out_w, out_k, out_p, out_g, counter,
        )  # fmt: skip
        n = int(_host(counter)[0])
        # Blocks reserve their output runs in scheduling order; the pair index restores the
        # CPU's order (pair indices are unique, so any sort gives the same permutation).
        order = xp.argsort(out_p[:n])
        gammas = _host(out_g[:n][order]) if keep_gammas else None
        return ScoredPairs(
            left=_host(out_i[:n][order]), right=_host(out_j[:n][order]),
            match_weight=_host(out_w[:n][order]), match_key=_host(out_k[:n][order]),
            gammas=gammas,
        )  # fmt: skip


def _empty_scored(n_comparisons: int, keep_gammas: bool):
    from gpulink.predict import ScoredPairs

    return ScoredPairs(
        left=np.zeros(0, np.int32), right=np.zeros(0, np.int32),
        match_weight=np.zeros(0, np.float64), match_key=np.zeros(0, np.int32),
        gammas=np.zeros((0, n_comparisons), np.int8) if keep_gammas else None,
    )  # fmt: skip


def score_gpu(
    scorer, threshold_weight: float, *, keep_gammas: bool, plan=None, p0: int = 0,
    p1: int | None = None, chunk_pairs: int | None = None, progress=None,
):  # fmt: skip
    """Score pair indices ``[p0, p1)`` (default: all) in chunks sized to the device memory
    budget; the GPU counterpart of :meth:`gpulink.predict.Scorer.score`.

    >>> scored = score_gpu(scorer, 0.0, keep_gammas=False)  # doctest: +SKIP
    """
    from gpulink.predict import concat_scored

    plan = scorer.plan() if plan is None else plan
    p1 = plan.n_candidates if p1 is None else int(p1)
    if chunk_pairs is None:
        chunk_pairs = default_chunk_pairs(scorer, keep_gammas=keep_gammas)
    pieces = []
    for c0 in range(int(p0), p1, chunk_pairs):
        c1 = min(p1, c0 + chunk_pairs)
        pieces.append(
            score_range_gpu(scorer, plan, c0, c1, threshold_weight, keep_gammas=keep_gammas)
        )
        if progress is not None:
            progress.update(c1 - c0)
    return concat_scored(pieces, scorer.program.n_comparisons, keep_gammas)


def default_chunk_pairs(scorer, *, keep_gammas: bool, max_chunk: int = 1 << 28) -> int:
    """Pair indices per ``score`` launch that fit the device memory budget (capped)."""
    from gpulink.device import chunk_pairs_for_budget, memory_budget

    if _cuda.SIMULATOR:
        return 1 << 16
    per_pair = SCORE_BYTES_PER_PAIR * 2 + (2 * scorer.program.n_comparisons if keep_gammas else 0)
    # x2: the gathered, sorted copies of the kept pairs may coexist with the buffers
    scratch = SCRATCH_BUDGET_BYTES
    args = device_args(scorer)
    fixed = sum(int(a.nbytes) for group in args.values() for a in group) + scratch
    budget = memory_budget()
    return min(max_chunk, chunk_pairs_for_budget(per_pair, budget, fixed))


def gamma_histogram_gpu(
    scorer, plan, p0: int, p1: int, radix, *, threads: int = DEFAULT_THREADS,
    blocks: int | None = None,
) -> np.ndarray:  # fmt: skip
    """Pairs per agreement pattern among pair indices ``[p0, p1)`` (int64[prod(radix)], host).

    Pattern index: ``Σ`` mixed radix of ``gamma_c + 1`` with ``radix[c] = num_levels_c + 1``,
    as the CPU ``gamma_histogram_range`` launcher (and ``Scorer.pattern_counts``) use.

    >>> hist = gamma_histogram_gpu(scorer, plan, 0, plan.n_candidates, radix)  # doctest: +SKIP
    """
    from gpulink.device import device_memory_guard

    radix = np.ascontiguousarray(radix, dtype=np.int64)
    n_bins = int(np.prod(radix)) if len(radix) else 1
    span = int(p1 - p0)
    if span <= 0 or plan.n_segments == 0:
        return np.zeros(n_bins, np.int64)
    xp = array_module()
    args = device_args(scorer)
    blocks, threads = launch_shape(span, scorer.scratch_ints, threads, blocks)
    name = "histogram_shared" if n_bins <= SHARED_BINS else "histogram_global"
    with device_memory_guard(f"a histogram of {n_bins:,} agreement patterns"):
        hist = xp.zeros(n_bins, np.int64)
        scratch = _scratch(xp, blocks, threads, scorer.scratch_ints)
        gpu_kernel(name)[blocks, threads](
            np.int64(p0), np.int64(p1), _to_device(radix),
            *device_plan_arrays(plan), *args["prog"], *args["packed"],
            np.int64(scorer.prog.n_slots), scratch, hist,
        )  # fmt: skip
        return _host(hist)


def gammas_of_pairs_gpu(
    scorer, left, right, prog=None, *, threads: int = DEFAULT_THREADS, blocks: int | None = None
) -> np.ndarray:
    """Gammas (int8[n, n_comparisons], host) of explicit record pairs ``(left[r], right[r])``;
    same as :meth:`gpulink.predict.Scorer.gammas_of_pairs`. ``prog``: a
    :meth:`~gpulink.kernels.compare.ProgramArrays.select` of the scorer's program (default all).

    >>> g = gammas_of_pairs_gpu(scorer, np.array([0]), np.array([1]))  # doctest: +SKIP
    """
    from gpulink.device import device_memory_guard

    n = len(left)
    args = device_args(scorer)
    if prog is None:
        prog, prog_args = scorer.prog, args["prog"]
    else:
        prog_args = tuple(_to_device(a) for a in prog.arrays())
    n_comparisons = len(prog.comparison_start) - 1
    if n == 0:
        return np.empty((0, n_comparisons), np.int8)
    xp = array_module()
    blocks, threads = launch_shape(n, scorer.scratch_ints, threads, blocks)
    with device_memory_guard(f"gammas of {n:,} pairs"):
        d_left = xp.ascontiguousarray(xp.asarray(left), dtype=np.int64)
        d_right = xp.ascontiguousarray(xp.asarray(right), dtype=np.int64)
        out = xp.empty((n, n_comparisons), np.int8)
        scratch = _scratch(xp, blocks, threads, scorer.scratch_ints)
        gpu_kernel("gammas")[blocks, threads](
            d_left, d_right, *prog_args, *args["packed"],
            np.int64(prog.n_slots), scratch, out,
        )  # fmt: skip
        return _host(out)


__all__ = [
    "KERNEL_NAMES",
    "MAX_COMPARISONS",
    "MAX_SLOTS",
    "SHARED_BINS",
    "compile_all_ptx",
    "default_chunk_pairs",
    "device_args",
    "gamma_histogram_gpu",
    "gammas_of_pairs_gpu",
    "gpu_kernel",
    "kernel_signature",
    "launch_shape",
    "score_gpu",
    "score_range_gpu",
]
