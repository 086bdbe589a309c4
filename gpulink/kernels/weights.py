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

from gpulink.kernels._targets import kernel_body


@kernel_body
def tf_adjustment(c, g, i, j, tf_col, tf_weight, tf_log2_u, tf_min_u, codes, tf, tf_base):
    """TF adjustment (log2 units) of comparison ``c`` at gamma ``g`` for the pair (i, j)."""
    col = tf_col[c, g + 1]
    if col < 0:
        return 0.0
    code_l = codes[col, i]
    code_r = codes[col, j]
    if code_l < 0 and code_r < 0:
        return 0.0
    tf_l = tf[tf_base[col] + code_l] if code_l >= 0 else -1.0
    tf_r = tf[tf_base[col] + code_r] if code_r >= 0 else -1.0
    value = max(tf_l, tf_r)
    value = max(value, tf_min_u[c, g + 1])
    return tf_weight[c, g + 1] * (tf_log2_u[c, g + 1] - math.log2(value))


@kernel_body
def pair_match_weight(
    gammas, row, i, j, prior_weight,
    log2_bf, tf_col, tf_weight, tf_log2_u, tf_min_u, codes, tf, tf_base,
):  # fmt: skip
    """The match weight of the pair (i, j) whose gammas are ``gammas[row, :]``."""
    total = prior_weight
    for c in range(log2_bf.shape[0]):
        g = gammas[row, c]
        total += log2_bf[c, g + 1]
        total += tf_adjustment(
            c, g, i, j, tf_col, tf_weight, tf_log2_u, tf_min_u, codes, tf, tf_base
        )
    return total


@kernel_body
def match_probability(weight):
    """``2^w / (1 + 2^w)``, computed without overflow for large ``|w|``."""
    if weight >= 0:
        return 1.0 / (1.0 + math.pow(2.0, -weight))
    e = math.pow(2.0, weight)
    return e / (1.0 + e)
