"""Match weights of a pair from its gammas: the prior, each level's weight and TF adjustments.

Splink 5 works in log space and so do we::

    match_weight = log2(λ / (1 - λ)) + Σ_c log2(m_cl / u_cl) + Σ_c tf_adjustment_c

A TF adjustment applies on a level with ``tf_adjustment_column`` (not the null or else level):
``w_tf · (log2 u_exact − log2 max(tf_l, tf_r, tf_minimum_u_value))`` where a null side takes the
other side's term frequency, and the adjustment is 0 when both are null.

Weight tables (built by :mod:`gpulink.predict` from the trained model) are indexed
``[comparison, gamma + 1]`` so that the null level (gamma -1) sits in column 0:

* ``log2_bf``: float64, the level's match weight (0 for the null level).
* ``tf_col``: int32, the packed column holding the TF of this level, or -1 when none.
* ``tf_weight``, ``tf_log2_u``, ``tf_min_u``: float64, the adjustment's parameters.
"""

from __future__ import annotations

import math

import numpy as np

from gpulink.kernels._targets import kernel_body


@kernel_body
def pair_term_frequency(col, i, j, codes, tf, tf_base):
    """``max(tf_l, tf_r)`` of packed column ``col`` for the pair (i, j), a side without a term
    frequency (null, or a value a registered lookup lacks: -1.0 in ``tf``) taking the other's;
    -1.0 when neither has one."""
    code_l = codes[col, i]
    code_r = codes[col, j]
    value = -1.0
    if code_l >= 0:
        value = tf[tf_base[col] + code_l]
    if code_r >= 0:
        value = max(value, tf[tf_base[col] + code_r])
    return value


@kernel_body
def tf_adjustment(c, g, i, j, tf_col, tf_weight, tf_log2_u, tf_min_u, codes, tf, tf_base):
    """TF adjustment (log2 units) of comparison ``c`` at gamma ``g`` for the pair (i, j)."""
    col = tf_col[c, g + 1]
    if col < 0:
        return 0.0
    value = pair_term_frequency(col, i, j, codes, tf, tf_base)
    if value < 0.0:
        return 0.0
    value = max(value, tf_min_u[c, g + 1])
    return tf_weight[c, g + 1] * (tf_log2_u[c, g + 1] - math.log2(value))


@kernel_body
def tf_pair_key(gammas, tf_values, r, radix, tf_comparisons, tf_weight, tf_floor):
    """EM with term frequencies: the key and constant of the pair in row ``r``.

    The key is the gamma pattern (digit ``gamma + 1`` in base ``radix[c]``) followed by one bit
    per TF comparison (does a TF term apply); the constant is ``Σ -w·log2(max(tf, tf_min))``
    over the terms that apply. ``tf_values[r, c]``: the pair's term frequency, NaN if none.
    See :func:`gpulink.em.tf_pair_keys`.
    """
    key = 0
    for c in range(gammas.shape[1]):
        key = key * radix[c] + (gammas[r, c] + 1)
    constant = 0.0
    for t in range(tf_comparisons.shape[0]):
        c = tf_comparisons[t]
        g = gammas[r, c]
        applies = 0
        if g >= 0:
            w = tf_weight[c, g]
            value = tf_values[r, c]
            if w != 0.0 and not math.isnan(value):
                applies = 1
                constant -= w * np.log2(max(value, tf_floor[c, g]))
        key = key * 2 + applies
    return key, constant


@kernel_body
def match_weights_of_rows(
    i0, j0, left, right, r0, r1, gammas, row0, prior_weight,
    log2_bf, tf_col, tf_weight, tf_log2_u, tf_min_u, codes, tf, tf_base, out_w,
):  # fmt: skip
    """Match weights of many pairs in one call: the CPU launchers' form of
    :func:`pair_match_weight`.

    With ``r0 < r1``: for each ``r`` in ``[r0, r1)`` the pair ``(left[r], right[r])`` with
    gammas ``gammas[row0 + r - r0, :]``; its weight goes to ``out_w[row0 + r - r0]``. With
    ``r1 <= r0``: the single pair ``(i0, j0)`` with gammas ``gammas[row0, :]`` (``left``,
    ``right`` and ``out_w`` unread). Returns the weight of the last pair. The TF adjustment is
    :func:`tf_adjustment`'s, in line (a call per comparison costs more than the sum itself).
    """
    n_rows = r1 - r0 if r1 > r0 else 1
    total = prior_weight
    for t in range(n_rows):
        if r1 > r0:
            i = left[r0 + t]
            j = right[r0 + t]
        else:
            i = i0
            j = j0
        row = row0 + t
        total = prior_weight
        for c in range(log2_bf.shape[0]):
            g = gammas[row, c] + 1
            total += log2_bf[c, g]
            col = tf_col[c, g]
            if col >= 0:
                code_l = codes[col, i]
                code_r = codes[col, j]
                # -1.0: no term frequency (a null, or a value a registered lookup lacks)
                tf_l = tf[tf_base[col] + code_l] if code_l >= 0 else -1.0
                tf_r = tf[tf_base[col] + code_r] if code_r >= 0 else -1.0
                value = max(tf_l, tf_r)
                if value >= 0.0:
                    value = max(value, tf_min_u[c, g])
                    total += tf_weight[c, g] * (tf_log2_u[c, g] - math.log2(value))
        if r1 > r0:
            out_w[row] = total
    return total


@kernel_body
def pair_match_weight(
    gammas, row, i, j, prior_weight,
    log2_bf, tf_col, tf_weight, tf_log2_u, tf_min_u, codes, tf, tf_base,
):  # fmt: skip
    """The match weight of the pair (i, j) whose gammas are ``gammas[row, :]``."""
    return match_weights_of_rows(
        i, j, tf_base, tf_base, 0, 0, gammas, row, prior_weight,
        log2_bf, tf_col, tf_weight, tf_log2_u, tf_min_u, codes, tf, tf_base, tf_min_u[0],
    )  # fmt: skip


@kernel_body
def match_probability(weight):
    """``2^w / (1 + 2^w)``, computed without overflow for large ``|w|``."""
    if weight >= 0:
        return 1.0 / (1.0 + math.pow(2.0, -weight))
    e = math.pow(2.0, weight)
    return e / (1.0 + e)
