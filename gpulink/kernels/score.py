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
from gpulink.kernels.compare import gammas_of_rows
from gpulink.kernels.pairs import find_segment, local_pair, walk_pairs
from gpulink.kernels.program import MAX_STACK
from gpulink.kernels.strings import PATTERN_TABLE_INTS
from gpulink.kernels.weights import match_weights_of_rows, pair_term_frequency, tf_pair_key

#: Pairs a launcher part gathers before scoring them in one body call (the calls' fixed cost,
#: over a dozen array arguments, is then paid once per batch instead of once per pair).
BATCH = 256


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
        scratch = np.empty(max(scratch_ints, PATTERN_TABLE_INTS), np.int32)
        stack = np.empty(MAX_STACK, np.int8)
        buf_i = np.empty(BATCH, np.int64)
        buf_j = np.empty(BATCH, np.int64)
        buf_k = np.empty(BATCH, np.int64)
        buf_w = np.empty(BATCH, np.float64)
        gam = np.empty((BATCH, n_comparisons), np.int8)
        out = start - p0  # this part's own region of the outputs
        n_out = 0
        if start < end:
            s = find_segment(seg_start, n_seg, start)
            a, b = local_pair(s, start - seg_start[s], seg_a, seg_na, seg_b, seg_nb)
            p = start
            while p < end:
                p, s, a, b, n_buf = walk_pairs(
                    p, end, s, a, b, seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members,
                    groups, source_codes, link_type, buf_i, buf_j, buf_k, 0, BATCH,
                )  # fmt: skip
                if n_buf > 0:
                    # score the batch (pairs stay in index order)
                    gammas_of_rows(
                        0, 0, buf_i, buf_j, 0, n_buf, gam, 0,
                        leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
                        program, level_start, level_gamma, comparison_start,
                        codes, chars, str_offsets, str_base, values, val_base,
                        elements, arr_offsets, arr_base, metric_cache, scratch, stack,
                    )  # fmt: skip
                    match_weights_of_rows(
                        0, 0, buf_i, buf_j, 0, n_buf, gam, 0, prior_weight,
                        log2_bf, tf_col, tf_weight, tf_log2_u, tf_min_u, codes, tf, tf_base,
                        buf_w,
                    )  # fmt: skip
                    for t in range(n_buf):
                        w = buf_w[t]
                        if w >= threshold:
                            out_i[out + n_out] = buf_i[t]
                            out_j[out + n_out] = buf_j[t]
                            out_w[out + n_out] = w
                            out_k[out + n_out] = buf_k[t]
                            if keep_gammas:
                                for cc in range(n_comparisons):
                                    out_gammas[out + n_out, cc] = gam[t, cc]
                            n_out += 1
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
        scratch = np.empty(max(scratch_ints, PATTERN_TABLE_INTS), np.int32)
        stack = np.empty(MAX_STACK, np.int8)
        buf_i = np.empty(BATCH, np.int64)
        buf_j = np.empty(BATCH, np.int64)
        buf_k = np.empty(BATCH, np.int64)
        gam = np.empty((BATCH, n_comparisons), np.int8)
        if start < end:
            s = find_segment(seg_start, n_seg, start)
            a, b = local_pair(s, start - seg_start[s], seg_a, seg_na, seg_b, seg_nb)
            p = start
            while p < end:
                p, s, a, b, n_buf = walk_pairs(
                    p, end, s, a, b, seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members,
                    groups, source_codes, link_type, buf_i, buf_j, buf_k, 0, BATCH,
                )  # fmt: skip
                if n_buf > 0:
                    gammas_of_rows(
                        0, 0, buf_i, buf_j, 0, n_buf, gam, 0,
                        leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
                        program, level_start, level_gamma, comparison_start,
                        codes, chars, str_offsets, str_base, values, val_base,
                        elements, arr_offsets, arr_base, metric_cache, scratch, stack,
                    )  # fmt: skip
                    for t in range(n_buf):
                        index = 0
                        for cc in range(n_comparisons):
                            index = index * radix[cc] + (gam[t, cc] + 1)
                        out_hist[part, index] += 1


def _tf_rows_range(
    p0, p1, n_parts, radix, tf_comparisons, tf_weight, tf_floor, tf_col,
    seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members, groups, source_codes, link_type,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    program, level_start, level_gamma, comparison_start,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    tf, tf_base, n_slots, scratch_ints, out_keys, out_const, out_count,
):  # fmt: skip
    """Per blocked pair, its EM row with term frequencies (:func:`tf_pair_key`: the gamma
    pattern and TF flags as key, ``Σ -w·log2(max(tf, tf_min))`` as constant), as
    :func:`gpulink.em.tf_pair_keys` computes from gammas and TF values."""
    n_comparisons = comparison_start.shape[0] - 1
    n_seg = seg_start.shape[0] - 1
    total = p1 - p0
    for part in numba.prange(n_parts):
        start = p0 + total * part // n_parts
        end = p0 + total * (part + 1) // n_parts
        metric_cache = np.empty(max(n_slots, 1), np.float64)
        scratch = np.empty(max(scratch_ints, PATTERN_TABLE_INTS), np.int32)
        stack = np.empty(MAX_STACK, np.int8)
        buf_i = np.empty(BATCH, np.int64)
        buf_j = np.empty(BATCH, np.int64)
        buf_k = np.empty(BATCH, np.int64)
        gam = np.empty((BATCH, n_comparisons), np.int8)
        tf_values = np.empty((BATCH, n_comparisons), np.float64)
        out = start - p0
        n_out = 0
        if start < end:
            s = find_segment(seg_start, n_seg, start)
            a, b = local_pair(s, start - seg_start[s], seg_a, seg_na, seg_b, seg_nb)
            p = start
            while p < end:
                p, s, a, b, n_buf = walk_pairs(
                    p, end, s, a, b, seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members,
                    groups, source_codes, link_type, buf_i, buf_j, buf_k, 0, BATCH,
                )  # fmt: skip
                if n_buf > 0:
                    gammas_of_rows(
                        0, 0, buf_i, buf_j, 0, n_buf, gam, 0,
                        leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
                        program, level_start, level_gamma, comparison_start,
                        codes, chars, str_offsets, str_base, values, val_base,
                        elements, arr_offsets, arr_base, metric_cache, scratch, stack,
                    )  # fmt: skip
                    for t in range(n_buf):
                        for q in range(tf_comparisons.shape[0]):
                            cc = tf_comparisons[q]
                            value = pair_term_frequency(
                                tf_col[cc], buf_i[t], buf_j[t], codes, tf, tf_base
                            )  # fmt: skip
                            tf_values[t, cc] = value if value >= 0.0 else np.nan
                        key, constant = tf_pair_key(
                            gam, tf_values, t, radix, tf_comparisons, tf_weight, tf_floor
                        )  # fmt: skip
                        out_keys[out + n_out] = key
                        out_const[out + n_out] = constant
                        n_out += 1
        out_count[part] = n_out


@cpu_jit(_nrt=False)
def touch_records(left, right, r0, r1, codes, chars, str_offsets, str_base):
    """Load, without using, what scoring pairs ``left[r0:r1]``/``right[r0:r1]`` will read.

    Random pairs of a large table miss the cache three times in a row per string column
    (record codes, then string offsets, then characters), and the comparators wait for each.
    Touching a batch level by level first lets the core overlap the misses of many pairs.
    Returns a checksum so the loads are not optimised away.
    """
    acc = 0
    n_off = str_offsets.shape[0]
    n_chars = chars.shape[0]
    n_cols = codes.shape[0]
    for r in range(r0, r1):
        acc += codes[0, left[r]] + codes[0, right[r]]
    for c in range(n_cols):
        base = str_base[c]
        for r in range(r0, r1):
            ci = codes[c, left[r]]
            cj = codes[c, right[r]]
            if ci >= 0 and base + ci < n_off:
                acc += str_offsets[base + ci]
            if cj >= 0 and base + cj < n_off:
                acc += str_offsets[base + cj]
    for c in range(n_cols):
        base = str_base[c]
        for r in range(r0, r1):
            ci = codes[c, left[r]]
            cj = codes[c, right[r]]
            if ci >= 0 and base + ci < n_off:
                k = str_offsets[base + ci]
                if k < n_chars:
                    acc += chars[k]
            if cj >= 0 and base + cj < n_off:
                k = str_offsets[base + cj]
                if k < n_chars:
                    acc += chars[k]
    return acc


TOUCH_BATCH = 64


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
        scratch = np.empty(max(scratch_ints, PATTERN_TABLE_INTS), np.int32)
        stack = np.empty(MAX_STACK, np.int8)
        for r0 in range(start, end, TOUCH_BATCH):
            r1 = min(r0 + TOUCH_BATCH, end)
            touched = touch_records(left, right, r0, r1, codes, chars, str_offsets, str_base)
            stack[0] = np.int8(touched & 1)
            gammas_of_rows(
                0, 0, left, right, r0, r1, out_gammas, r0,
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
            "tf_rows_range": _tf_rows_range,
        }[name]
        _LAUNCHERS[name] = cpu_jit(parallel=True)(retarget_launcher(source, "cpu"))
    return _LAUNCHERS[name]
