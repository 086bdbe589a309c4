"""CPU launchers of the fused pass: blocked pair -> gammas -> match weight -> filter -> output.

Each launcher splits a range of a rule's pair-index space into ``n_parts`` contiguous parts, one
per ``prange`` iteration. A part decodes its first pair once, then walks the blocks in order, and
writes to its own slice of the output, so results never depend on the thread count.
The GPU launchers (:mod:`gpulink.kernels.score_gpu`) run the same bodies.
"""

from __future__ import annotations

import numba
import numpy as np

from gpulink.kernels._targets import cpu_jit, retarget_launcher
from gpulink.kernels.compare import pair_gammas
from gpulink.kernels.pairs import (
    advance_local,
    find_segment,
    local_pair,
    oriented_pair,
    pair_is_emitted,
)
from gpulink.kernels.program import MAX_STACK
from gpulink.kernels.weights import pair_match_weight


def _score_range(
    p0, p1, n_parts, threshold, prior_weight, keep_gammas,
    seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members, groups, source_codes, link_type,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    program, level_start, level_gamma, comparison_start,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    tf, tf_base, log2_bf, tf_col, tf_weight, tf_log2_u, tf_min_u,
    n_slots, scratch_ints,
    out_i, out_j, out_w, out_k, out_gammas, out_count,
):  # fmt: skip
    n_comparisons = comparison_start.shape[0] - 1
    n_seg = seg_start.shape[0] - 1
    total = p1 - p0
    for part in numba.prange(n_parts):
        start = p0 + total * part // n_parts
        end = p0 + total * (part + 1) // n_parts
        metric_cache = np.empty(max(n_slots, 1), np.float64)
        scratch = np.empty(scratch_ints, np.int32)
        stack = np.empty(MAX_STACK, np.int8)
        gam = np.empty((1, n_comparisons), np.int8)
        out = start - p0  # this part's own region of the outputs
        n_out = 0
        if start < end:
            s = find_segment(seg_start, n_seg, start)
            a, b = local_pair(s, start - seg_start[s], seg_a, seg_na, seg_b, seg_nb)
            for p in range(start, end):
                if p == seg_start[s + 1]:
                    s += 1
                    a, b = local_pair(s, 0, seg_a, seg_na, seg_b, seg_nb)
                i, j = oriented_pair(s, a, b, seg_a, seg_b, members)
                k = seg_rule[s]
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
                    if w >= threshold:
                        out_i[out + n_out] = i
                        out_j[out + n_out] = j
                        out_w[out + n_out] = w
                        out_k[out + n_out] = k
                        if keep_gammas:
                            for cc in range(n_comparisons):
                                out_gammas[out + n_out, cc] = gam[0, cc]
                        n_out += 1
                a, b = advance_local(a, b, s, seg_a, seg_na, seg_b, seg_nb)
        out_count[part] = n_out


def _gamma_histogram_range(
    p0, p1, n_parts, radix,
    seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members, groups, source_codes, link_type,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    program, level_start, level_gamma, comparison_start,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    n_slots, scratch_ints, out_hist,
):  # fmt: skip
    n_comparisons = comparison_start.shape[0] - 1
    n_seg = seg_start.shape[0] - 1
    total = p1 - p0
    for part in numba.prange(n_parts):
        start = p0 + total * part // n_parts
        end = p0 + total * (part + 1) // n_parts
        metric_cache = np.empty(max(n_slots, 1), np.float64)
        scratch = np.empty(scratch_ints, np.int32)
        stack = np.empty(MAX_STACK, np.int8)
        gam = np.empty((1, n_comparisons), np.int8)
        if start < end:
            s = find_segment(seg_start, n_seg, start)
            a, b = local_pair(s, start - seg_start[s], seg_a, seg_na, seg_b, seg_nb)
            for p in range(start, end):
                if p == seg_start[s + 1]:
                    s += 1
                    a, b = local_pair(s, 0, seg_a, seg_na, seg_b, seg_nb)
                i, j = oriented_pair(s, a, b, seg_a, seg_b, members)
                k = seg_rule[s]
                if pair_is_emitted(i, j, k, groups, source_codes, link_type):
                    pair_gammas(
                        i, j, gam, 0,
                        leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
                        program, level_start, level_gamma, comparison_start,
                        codes, chars, str_offsets, str_base, values, val_base,
                        elements, arr_offsets, arr_base, metric_cache, scratch, stack,
                    )  # fmt: skip
                    index = 0
                    for cc in range(n_comparisons):
                        index = index * radix[cc] + (gam[0, cc] + 1)
                    out_hist[part, index] += 1
                a, b = advance_local(a, b, s, seg_a, seg_na, seg_b, seg_nb)


def _gammas_of_pairs(
    left, right,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    program, level_start, level_gamma, comparison_start,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    n_slots, scratch_ints, n_parts, out_gammas,
):  # fmt: skip
    n = left.shape[0]
    for part in numba.prange(n_parts):
        start = n * part // n_parts
        end = n * (part + 1) // n_parts
        metric_cache = np.empty(max(n_slots, 1), np.float64)
        scratch = np.empty(scratch_ints, np.int32)
        stack = np.empty(MAX_STACK, np.int8)
        for r in range(start, end):
            pair_gammas(
                left[r], right[r], out_gammas, r,
                leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
                program, level_start, level_gamma, comparison_start,
                codes, chars, str_offsets, str_base, values, val_base,
                elements, arr_offsets, arr_base, metric_cache, scratch, stack,
            )  # fmt: skip


_LAUNCHERS: dict[str, object] = {}


def launcher(name: str):
    """The compiled CPU launcher ``name`` (compiled on first use, cached on disk)."""
    if name not in _LAUNCHERS:
        source = {
            "score_range": _score_range,
            "gamma_histogram_range": _gamma_histogram_range,
            "gammas_of_pairs": _gammas_of_pairs,
        }[name]
        _LAUNCHERS[name] = cpu_jit(parallel=True)(retarget_launcher(source, "cpu"))
    return _LAUNCHERS[name]
