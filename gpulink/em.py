"""Training maths on agreement-pattern counts: EM, u from samples, m from labels, λ from rules.

Pure numpy, no I/O. The caller (the training module) computes, over the pairs of a training
rule, the distinct gamma vectors and how often each occurs; everything here works on those
counts, so one EM iteration costs microseconds whatever the number of pairs.

Conventions (Splink 4/5, checked against ``splink/internals/expectation_maximisation.py``,
``em_training_session.py``, ``m_u_records_to_parameters.py``, ``predict.py``):

* ``patterns: int8[n_patterns, n_comparisons]`` holds gammas: -1 the null level, 0 the else
  level, ... n-1 the first level. ``counts[n_patterns]`` how many pairs have that pattern.
* ``m`` and ``u`` are lists, one float64 array per comparison, indexed by gamma (the null level
  has no parameters). ``NaN`` means Splink's *"level not observed in training dataset"*: the level
  had no pair in the data it was trained on. Within a session Splink reads such a level as
  probability ``1e-6`` (``ComparisonLevel.m_probability`` returns 1e-6 for the marker); across
  sessions it leaves it out of the median, and a level no session observed keeps its previous
  value (or Splink's default start value): so do we.
* A level's match weight is ``log2(max(m, 1e-300) / max(u, 1e-300))``; the null level adds 0.
  A pair's weight is ``log2(λ / (1 - λ))`` plus its levels' weights (plus TF adjustments), and
  its match probability ``1 / (1 + 2^-w)`` for ``w >= 0`` else ``2^w / (1 + 2^w)``.
* Maximisation: ``m_l = Σ p·count [γ=l] / Σ p·count [γ≠-1]`` over the patterns (pairs with a
  null gamma in a comparison do not count towards that comparison), ``u_l`` likewise with
  ``1 - p``, ``λ = Σ p·count / Σ count``. A level with no pattern row gets "not observed" (NaN).
* Convergence: after each iteration the largest absolute change of any m or u of a non-null
  level of an active comparison, and of λ, is compared with ``em_convergence``; EM stops when it
  is below (strictly), or after ``max_iterations`` iterations. ``EMResult.iterations`` has one
  record per iteration run.

>>> import numpy as np
>>> patterns = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], dtype=np.int8)
>>> counts = np.array([90, 10, 10, 890])
>>> m = [np.array([0.2, 0.8]), np.array([0.2, 0.8])]
>>> u = [np.array([0.9, 0.1]), np.array([0.9, 0.1])]
>>> r = expectation_maximisation(patterns, counts, m, u, 0.1)
>>> r.converged, round(r.lambda_, 3)
(True, 0.081)
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np

from gpulink.errors import InputError, SettingsError
from gpulink.kernels._targets import cpu
from gpulink.kernels.weights import tf_pair_key

logger = logging.getLogger("gpulink")

#: Probability Splink reads for a level whose m or u was "not observed" in training.
NOT_OBSERVED_PROBABILITY = 1e-6
#: Splink clamps m and u to this before taking log2(m/u) (``M_U_CLAMP_MIN``).
M_U_CLAMP_MIN = 1e-300

LINK_TYPES = ("dedupe_only", "link_only", "link_and_dedupe")


# --------------------------------------------------------------------------------------------
# Small pieces of the model maths
# --------------------------------------------------------------------------------------------


def prob_to_match_weight(p: float) -> float:
    """``log2(p / (1 - p))``, with ``p == 1`` giving +inf (Splink's ``prob_to_match_weight``).

    >>> prob_to_match_weight(0.5)
    0.0
    """
    if p == 1:
        return math.inf
    if p == 0:
        return -math.inf
    return math.log2(p / (1 - p))


def match_probability_from_weight(weight):
    """``2^w / (1 + 2^w)`` computed without overflow for large ``|w|`` (as Splink's SQL).

    >>> float(match_probability_from_weight(0.0))
    0.5
    """
    w = np.asarray(weight, dtype=np.float64)
    with np.errstate(over="ignore"):
        pos = 1.0 / (1.0 + np.power(2.0, -w))
        two_w = np.power(2.0, w)
        neg = two_w / (1.0 + two_w)
    return np.where(w >= 0, pos, neg)


def effective_probabilities(values: np.ndarray) -> np.ndarray:
    """The probabilities Splink computes with: "not observed" (NaN) reads as 1e-6.

    >>> effective_probabilities(np.array([0.5, np.nan])).tolist()
    [0.5, 1e-06]
    """
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isnan(values), NOT_OBSERVED_PROBABILITY, values)


def level_match_weights(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per level ``log2(max(m, 1e-300) / max(u, 1e-300))``, NaN (not observed) read as 1e-6.

    >>> level_match_weights(np.array([0.1, 0.9]), np.array([0.9, 0.1 / 8])).round(6).tolist()
    [-3.169925, 6.169925]
    """
    m_eff = np.maximum(effective_probabilities(m), M_U_CLAMP_MIN)
    u_eff = np.maximum(effective_probabilities(u), M_U_CLAMP_MIN)
    return np.log2(m_eff / u_eff)


def default_m_values(num_levels: int) -> np.ndarray:
    """Splink's starting m of a comparison with ``num_levels`` non-null levels, by gamma.

    0.95 on the first (top) level, the remaining 0.05 shared equally by the others.

    >>> default_m_values(3).round(12).tolist()
    [0.025, 0.025, 0.95]
    """
    split = (1 - 0.95) / (num_levels - 1)
    return np.array([split] * (num_levels - 1) + [0.95])


def default_u_values(num_levels: int) -> np.ndarray:
    """Splink's starting u of a comparison with ``num_levels`` non-null levels, by gamma.

    Match weights interpolated from -5 (else level) to 3, and 10 on the top level.

    >>> default_u_values(2).round(6).tolist()
    [1.6, 0.000928]
    """
    m = default_m_values(num_levels)
    if num_levels == 2:
        weights = [-5.0]
    else:
        steps = num_levels - 2
        weights = [-5 + i * (8 / steps) for i in range(num_levels - 1)]
    weights.append(10.0)
    return np.array([mi / 2**w for mi, w in zip(m, weights)])


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _as_params(values: Sequence, name: str) -> list[np.ndarray]:
    """Copies as float64 arrays, checked. u may exceed 1: Splink's default start u of a level
    (``m / 2**w`` with a negative weight ``w``) does, e.g. 1.6 for ExactMatch's else level, and
    Splink runs EM from it when no u was estimated first."""
    out = []
    for c, v in enumerate(values):
        arr = np.array(v, dtype=np.float64, copy=True)
        if arr.ndim != 1 or arr.size == 0:
            raise InputError(f"{name}[{c}] must be a non-empty 1-d array of probabilities by gamma")
        bad = ~np.isnan(arr) & ((arr < 0) | ((arr > 1) if name == "m" else np.isinf(arr)))
        if bad.any():
            raise SettingsError(
                f"{name}[{c}] has a value outside [0, 1] at gamma {int(np.flatnonzero(bad)[0])}: "
                f"{arr[bad][0]!r}; probabilities must lie in [0, 1]"
            )
        out.append(arr)
    return out


def _check_patterns(patterns, counts, n_levels: Sequence[int], label: str):
    patterns = np.asarray(patterns)
    if patterns.ndim != 2:
        raise InputError("patterns must be a 2-d array [n_patterns, n_comparisons] of gammas")
    if patterns.shape[1] != len(n_levels):
        raise InputError(
            f"patterns has {patterns.shape[1]} comparisons but the model has {len(n_levels)}"
        )
    counts = np.asarray(counts, dtype=np.float64).reshape(-1)
    if counts.shape[0] != patterns.shape[0]:
        raise InputError(
            f"counts has {counts.shape[0]} rows but patterns has {patterns.shape[0]}; pass one "
            "count per pattern"
        )
    if (counts < 0).any():
        raise InputError("counts must be non-negative")
    keep = counts > 0  # Splink's GROUP BY never yields a pattern with no pair
    patterns, counts = patterns[keep], counts[keep]
    if patterns.shape[0] == 0:
        raise InputError(
            f"{label} resulted in no record pairs, so EM has nothing to learn from; revise the "
            "rule so that it admits pairs (usually at least a few thousand)"
        )
    for c, n in enumerate(n_levels):
        g = patterns[:, c]
        if g.min() < -1 or g.max() >= n:
            raise InputError(
                f"comparison {c} has gamma values outside -1..{n - 1} (found {int(g.min())}.."
                f"{int(g.max())}); patterns and parameters disagree on the number of levels"
            )
    return patterns.astype(np.int64), counts


def _fixed_mask(fix, n_levels: Sequence[int], name: str) -> list[np.ndarray]:
    """Expand ``fix`` (a bool, or per comparison a bool array by gamma) to per-level masks."""
    if isinstance(fix, (bool, np.bool_)):
        return [np.full(n, bool(fix)) for n in n_levels]
    fix = list(fix)
    if len(fix) != len(n_levels):
        raise InputError(f"{name} needs one entry per comparison ({len(n_levels)})")
    masks = [np.broadcast_to(np.asarray(f, dtype=bool), (n,)).copy() for f, n in zip(fix, n_levels)]
    return masks


# --------------------------------------------------------------------------------------------
# EM
# --------------------------------------------------------------------------------------------


@dataclass
class EMIteration:
    """The parameters after one iteration and the largest change that iteration made."""

    iteration: int  # 1-based, as Splink's log
    m: list[np.ndarray]
    u: list[np.ndarray]
    lambda_: float
    max_change: float  # largest |Δ| over m, u (non-null levels of active comparisons) and λ
    max_change_kind: str  # "m_probability", "u_probability" or "probability_two_random_..."
    max_change_comparison: int | None  # comparison index, None for λ
    max_change_gamma: int | None


@dataclass
class EMResult:
    """The outcome of one EM session (see :func:`expectation_maximisation`)."""

    m: list[np.ndarray]
    u: list[np.ndarray]
    lambda_: float
    iterations: list[EMIteration] = field(default_factory=list)
    converged: bool = False
    active: np.ndarray | None = None

    @property
    def n_iterations(self) -> int:
        return len(self.iterations)

    def trained_m(self) -> list[np.ndarray | None]:
        """Per comparison the m this session estimated (NaN = not observed), None if inactive."""
        return [mc if a else None for mc, a in zip(self.m, self.active)]

    def trained_u(self) -> list[np.ndarray | None]:
        """Per comparison the u this session estimated (NaN = not observed), None if inactive."""
        return [uc if a else None for uc, a in zip(self.u, self.active)]


def _pattern_weights(patterns, m, u, lambda_, active, extra: Callable | None):
    """Per pattern: prior + Σ level weights (+ TF terms), in Splink's summation order."""
    weight = np.full(patterns.shape[0], prob_to_match_weight(lambda_), dtype=np.float64)
    tf_terms = extra(m, u) if extra is not None else None
    for c in np.flatnonzero(active):
        g = patterns[:, c]
        w_levels = level_match_weights(m[c], u[c])
        weight = weight + np.where(g >= 0, w_levels[np.maximum(g, 0)], 0.0)
        if tf_terms is not None and tf_terms[c] is not None:
            weight = weight + tf_terms[c]
    return weight


def _proportions(gammas, weights, n_levels):
    """Σ weights per level over non-null rows, normalised; levels with no row -> NaN."""
    nonnull = gammas >= 0
    g = gammas[nonnull]
    sums = np.bincount(g, weights=weights[nonnull], minlength=n_levels)
    present = np.bincount(g, minlength=n_levels) > 0
    total = sums.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        props = sums / total
    props[~present] = np.nan
    if total == 0 or not np.isfinite(total):
        # Splink divides 0 by 0 here; we report every level as not observed instead of NaN/NULL.
        props[:] = np.nan
    return props


def _largest_change(prev_m, prev_u, prev_lam, m, u, lam, active):
    """Splink's ``_max_change_in_parameters_comparison_levels``: max |Δ| over m, u and λ."""
    best = (-0.1, "none", None, None)
    for c in np.flatnonzero(active):
        dm = effective_probabilities(m[c]) - effective_probabilities(prev_m[c])
        du = effective_probabilities(u[c]) - effective_probabilities(prev_u[c])
        for gamma in range(len(dm)):
            change = max(abs(dm[gamma]), abs(du[gamma]))
            if change > best[0]:
                kind = "m_probability" if abs(dm[gamma]) > abs(du[gamma]) else "u_probability"
                best = (change, kind, int(c), gamma)
    dl = abs(lam - prev_lam)
    if dl > best[0]:
        best = (dl, "probability_two_random_records_match", None, None)
    return best


def _run_em(
    patterns,
    counts,
    m,
    u,
    lambda_,
    *,
    active,
    fix_m,
    fix_u,
    fix_lambda,
    max_iterations,
    em_convergence,
    extra,
    label,
    expect: Callable | None = None,
) -> EMResult:
    m = _as_params(m, "m")
    u = _as_params(u, "u")
    if len(m) != len(u):
        raise InputError(f"m has {len(m)} comparisons but u has {len(u)}")
    n_levels = [len(mc) for mc in m]
    for c, (mc, uc) in enumerate(zip(m, u)):
        if len(mc) != len(uc):
            raise InputError(f"comparison {c}: m has {len(mc)} levels but u has {len(uc)}")
    patterns, counts = _check_patterns(patterns, counts, n_levels, label)
    active = (
        np.ones(len(m), dtype=bool) if active is None else np.asarray(active, dtype=bool).copy()
    )
    if active.shape != (len(m),):
        raise InputError(f"active needs one flag per comparison ({len(m)})")
    fixed_m = _fixed_mask(fix_m, n_levels, "fix_m")
    fixed_u = _fixed_mask(fix_u, n_levels, "fix_u")
    if all(a.all() for a in fixed_m) and all(a.all() for a in fixed_u):
        raise SettingsError("Can't train model if you fix both m and u probabilities")
    if not 0 <= lambda_ <= 1:
        raise SettingsError(f"probability_two_random_records_match must be in [0, 1]: {lambda_}")
    if max_iterations < 1:
        raise SettingsError(f"max_iterations must be at least 1, got {max_iterations}")

    lam = float(lambda_)
    result = EMResult(m=m, u=u, lambda_=lam, active=active)
    total = counts.sum()
    for it in range(1, max_iterations + 1):
        # Expectation: the match probability of every pattern under the current parameters.
        if expect is not None:
            m_weights, u_weights = expect(m, u, lam, active)
        else:
            p = match_probability_from_weight(_pattern_weights(patterns, m, u, lam, active, extra))
            m_weights = p * counts
            u_weights = (1.0 - p) * counts
        # Maximisation.
        new_m = [mc.copy() for mc in m]
        new_u = [uc.copy() for uc in u]
        for c in np.flatnonzero(active):
            m_est = _proportions(patterns[:, c], m_weights, n_levels[c])
            u_est = _proportions(patterns[:, c], u_weights, n_levels[c])
            new_m[c] = np.where(fixed_m[c], m[c], m_est)
            new_u[c] = np.where(fixed_u[c], u[c], u_est)
        new_lam = lam if fix_lambda else float(m_weights.sum() / total)
        change, kind, comp, gamma = _largest_change(m, u, lam, new_m, new_u, new_lam, active)
        m, u, lam = new_m, new_u, new_lam
        result.iterations.append(EMIteration(it, m, u, lam, change, kind, comp, gamma))
        logger.info("EM iteration %d: largest change %.3g in %s", it, change, kind)
        if change < em_convergence:
            result.converged = True
            break
    result.m, result.u, result.lambda_ = m, u, lam
    _warn_not_observed(m, u, active, fixed_m, fixed_u)
    return result


def _warn_not_observed(m, u, active, fixed_m, fixed_u):
    for c in np.flatnonzero(active):
        for gamma in np.flatnonzero(np.isnan(m[c]) & ~fixed_m[c]):
            logger.warning(
                "Level %d of comparison %d not observed in the training pairs; "
                "unable to train its m value",
                gamma,
                c,
            )
        for gamma in np.flatnonzero(np.isnan(u[c]) & ~fixed_u[c]):
            logger.warning(
                "Level %d of comparison %d not observed in the training pairs; "
                "unable to train its u value",
                gamma,
                c,
            )


def expectation_maximisation(
    patterns,
    counts,
    m: Sequence,
    u: Sequence,
    lambda_: float,
    *,
    active=None,
    fix_m=False,
    fix_u=True,
    fix_lambda: bool = False,
    max_iterations: int = 25,
    em_convergence: float = 1e-4,
    label: str = "the training blocking rule",
) -> EMResult:
    """Splink's EM (``estimate_without_term_frequencies=True``) on agreement-pattern counts.

    ``m``/``u``: one array per comparison indexed by gamma (NaN = "not observed"), ``lambda_``
    the starting probability two random records match (the caller applies Splink's adjustment
    for the training rule, :func:`blocking_adjusted_lambda`). ``active``: bool per comparison;
    comparisons that use the training rule's columns are left out of the whole session (their
    parameters are returned unchanged). ``fix_m``/``fix_u``: a bool, or per comparison a bool
    array by gamma (Splink's per-level ``fix_m_probability``). Returns an :class:`EMResult`.

    >>> import numpy as np
    >>> patterns = np.array([[1, 2], [1, 1], [0, 2], [1, 0]], dtype=np.int8)
    >>> r = expectation_maximisation(patterns, [2, 2, 2, 2],
    ...     [[0.1, 0.9], [0.1, 0.2, 0.7]], [[0.8, 0.2], [0.5, 0.25, 0.25]], 0.4,
    ...     fix_u=False, max_iterations=1)
    >>> round(r.lambda_, 9)
    0.540922141
    """
    return _run_em(
        patterns,
        counts,
        m,
        u,
        lambda_,
        active=active,
        fix_m=fix_m,
        fix_u=fix_u,
        fix_lambda=fix_lambda,
        max_iterations=max_iterations,
        em_convergence=em_convergence,
        extra=None,
        label=label,
    )


@dataclass
class TermFrequencySpec:
    """How one comparison's levels are adjusted for term frequency (all arrays by gamma).

    ``weight[g]``: ``tf_adjustment_weight`` of level g, 0 where the level has no adjustment
    (the null and else levels never have one). ``minimum_u[g]``: ``tf_minimum_u_value``.
    ``exact_gamma[g]``: the gamma of the level whose u is the base of the adjustment (the
    comparison's exact-match level on the TF column, or g itself when Splink's
    ``disable_tf_exact_match_detection`` is set).
    """

    weight: np.ndarray
    minimum_u: np.ndarray
    exact_gamma: np.ndarray

    @classmethod
    def single_level(cls, n_levels: int, gamma: int, *, weight=1.0, minimum_u=0.0):
        """The common case: TF on the exact-match level ``gamma`` only."""
        w = np.zeros(n_levels)
        w[gamma] = weight
        return cls(w, np.full(n_levels, float(minimum_u)), np.full(n_levels, gamma))


def tf_adjustment_terms(gammas, tf_values, u_exact_by_level, spec: TermFrequencySpec):
    """Per row the TF adjustment (log2 units) of one comparison, as Splink's ``_tf_adjustment_sql``.

    ``tf_values``: per row ``max(coalesce(tf_l, tf_r), coalesce(tf_r, tf_l))`` (NaN when both
    sides are null, which adjusts by 0). ``u_exact_by_level``: the comparison's current u array.

    >>> spec = TermFrequencySpec.single_level(2, 1)
    >>> tf_adjustment_terms(np.array([1, 1, 0]), np.array([0.25, np.nan, 0.5]),
    ...                     np.array([0.9, 0.125]), spec).tolist()
    [-1.0, 0.0, 0.0]
    """
    gammas = np.asarray(gammas, dtype=np.int64)
    tf_values = np.asarray(tf_values, dtype=np.float64)
    g = np.maximum(gammas, 0)
    weight = np.where(gammas >= 0, np.asarray(spec.weight, dtype=np.float64)[g], 0.0)
    u_base = effective_probabilities(u_exact_by_level)[np.asarray(spec.exact_gamma)[g]]
    floor = np.asarray(spec.minimum_u, dtype=np.float64)[g]
    has_tf = ~np.isnan(tf_values)
    with np.errstate(divide="ignore", invalid="ignore"):
        adj = weight * (np.log2(u_base) - np.log2(np.maximum(tf_values, floor)))
    return np.where((weight != 0) & has_tf, adj, 0.0)


_tf_pair_key = cpu(tf_pair_key)


@numba.njit(cache=True, parallel=True)
def _tf_keys(gammas, tf_values, radix, tf_comparisons, tf_weight, tf_floor):  # pragma: no cover
    """Per pair: the key (pattern, which TF terms apply) and Σ -w·log2(max(tf, tf_min))."""
    n = gammas.shape[0]
    keys = np.empty(n, np.int64)
    constant = np.zeros(n)
    for r in numba.prange(n):
        keys[r], constant[r] = _tf_pair_key(
            gammas, tf_values, r, radix, tf_comparisons, tf_weight, tf_floor
        )
    return keys, constant


def expectation_maximisation_tf(
    gammas,
    tf_values,
    m: Sequence,
    u: Sequence,
    lambda_: float,
    *,
    tf_specs: Sequence[TermFrequencySpec | None],
    counts=None,
    active=None,
    fix_m=False,
    fix_u=True,
    fix_lambda: bool = False,
    max_iterations: int = 25,
    em_convergence: float = 1e-4,
    label: str = "the training blocking rule",
) -> EMResult:
    """Splink's EM with term-frequency adjustments (``estimate_without_term_frequencies=False``).

    Splink scores every pair in the expectation step with its TF adjustments, recomputed each
    iteration from the current u of the exact-match level, and sums ``p`` per level over pairs
    (weight 1 each). ``gammas[n, C]`` per pair (or per distinct (gamma, tf) row with ``counts``:
    the sums are the same), ``tf_values[n, C]`` per pair and comparison as in
    :func:`tf_adjustment_terms` (ignored where ``tf_specs[c]`` is None).

    >>> import numpy as np
    >>> g = np.array([[1], [1], [0], [0]], dtype=np.int8)
    >>> tf = np.array([[0.5], [0.01], [np.nan], [np.nan]])
    >>> r = expectation_maximisation_tf(g, tf, [[0.1, 0.9]], [[0.9, 0.1]], 0.5,
    ...     tf_specs=[TermFrequencySpec.single_level(2, 1)], max_iterations=1)
    >>> r.m[0].round(3).tolist()
    [0.109, 0.891]
    """
    gammas = np.asarray(gammas)
    tf_values = np.asarray(tf_values, dtype=np.float64)
    if tf_values.shape != gammas.shape:
        raise InputError(f"tf_values has shape {tf_values.shape} but gammas has {gammas.shape}")
    if len(tf_specs) != gammas.shape[1]:
        raise InputError(f"tf_specs needs one entry (or None) per comparison ({gammas.shape[1]})")
    if counts is None:
        counts = np.ones(gammas.shape[0])
    counts = np.asarray(counts, dtype=np.float64)
    keep = counts > 0
    n_levels = [len(np.asarray(mc)) for mc in m]
    keys, constant = tf_pair_keys(gammas[keep], tf_values[keep], tf_specs, n_levels, active=active)
    return expectation_maximisation_tf_keys(
        keys, constant, m, u, lambda_, tf_specs=tf_specs, counts=counts[keep], active=active,
        fix_m=fix_m, fix_u=fix_u, fix_lambda=fix_lambda, max_iterations=max_iterations,
        em_convergence=em_convergence, label=label,
    )  # fmt: skip


def _tf_tables(tf_specs, n_levels):
    n_comparisons = len(n_levels)
    width = max(n_levels) if n_levels else 1
    tf_weight = np.zeros((n_comparisons, width))
    tf_floor = np.zeros((n_comparisons, width))
    tf_exact = np.zeros((n_comparisons, width), np.int64)
    for c, spec in enumerate(tf_specs):
        if spec is None:
            continue
        n = len(spec.weight)
        tf_weight[c, :n] = spec.weight
        tf_floor[c, :n] = spec.minimum_u
        tf_exact[c, :n] = spec.exact_gamma
    return tf_weight, tf_floor, tf_exact


def _active_specs(tf_specs, active):
    """TF specs of the active comparisons only: an inactive comparison adds no TF term."""
    if active is None:
        return list(tf_specs)
    return [spec if bool(a) else None for spec, a in zip(tf_specs, active)]


def tf_pair_keys(gammas, tf_values, tf_specs, n_levels, *, active=None):
    """Per pair: its EM key and the parameter-free part of its TF adjustment.

    A pair's match weight is ``W(key) + K`` where the key is its gamma vector plus a flag per TF
    comparison saying whether a TF term applies, and ``K = Σ -w·log2(max(tf, tf_min))`` over the
    terms that apply. ``W`` depends on the parameters, ``K`` never does, so EM iterates over
    ``(key, K)`` (16 bytes a pair) and the keys of several chunks of pairs simply concatenate.
    ``n_levels``: non-null levels per comparison (fixes the key layout); ``active``: the
    session's active comparisons (pass the same to :func:`expectation_maximisation_tf_keys`).

    >>> spec = TermFrequencySpec.single_level(2, 1)
    >>> k, c = tf_pair_keys(np.array([[1], [0]]), np.array([[0.25], [0.5]]), [spec], [2])
    >>> k.tolist(), c.tolist()
    ([5, 2], [2.0, 0.0])
    """
    gammas = np.ascontiguousarray(gammas, dtype=np.int64)
    tf_values = np.ascontiguousarray(tf_values, dtype=np.float64)
    tf_specs = _active_specs(tf_specs, active)
    radix = np.asarray(n_levels, dtype=np.int64) + 1
    tf_comparisons = np.asarray([c for c, s in enumerate(tf_specs) if s is not None], np.int64)
    tf_weight, tf_floor, _ = _tf_tables(tf_specs, list(n_levels))
    return _tf_keys(gammas, tf_values, radix, tf_comparisons, tf_weight, tf_floor)


def _decode_keys(keys, n_levels, tf_comparisons):
    """Gamma vectors and TF flags of keys made by :func:`tf_pair_keys`."""
    rest = keys.copy()
    applies = np.zeros((len(keys), len(n_levels)), bool)
    for c in tf_comparisons[::-1]:
        applies[:, c] = rest % 2 == 1
        rest //= 2
    gammas = np.zeros((len(keys), len(n_levels)), np.int64)
    for c in range(len(n_levels) - 1, -1, -1):
        radix = n_levels[c] + 1
        gammas[:, c] = rest % radix - 1
        rest //= radix
    return gammas, applies


def expectation_maximisation_tf_keys(
    keys, constant, m, u, lambda_, *, tf_specs, counts=None, active=None, fix_m=False,
    fix_u=True, fix_lambda=False, max_iterations=25, em_convergence=1e-4,
    label="the training blocking rule",
) -> EMResult:  # fmt: skip
    """EM with term-frequency adjustments over pairs given as (key, constant) rows.

    See :func:`tf_pair_keys`. Each iteration computes the weight of every distinct key, one
    gather and one sigmoid per pair, and one bincount back to the keys: linear in the pairs.
    """
    n_levels = [len(np.asarray(mc)) for mc in m]
    tf_specs = _active_specs(tf_specs, active)
    keys = np.asarray(keys, np.int64)
    constant = np.asarray(constant, np.float64)
    pair_counts = np.ones(len(keys)) if counts is None else np.asarray(counts, np.float64)
    distinct, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1)
    tf_comparisons = [c for c, spec in enumerate(tf_specs) if spec is not None]
    key_gammas, key_applies = _decode_keys(distinct, n_levels, tf_comparisons)
    tf_weight, _, tf_exact = _tf_tables(tf_specs, n_levels)
    coefs = {}
    for c in tf_comparisons:
        g = np.maximum(key_gammas[:, c], 0)
        coefs[c] = (np.where(key_applies[:, c], tf_weight[c, g], 0.0), tf_exact[c, g])
    key_counts = np.bincount(inverse, weights=pair_counts, minlength=len(distinct))

    def expect(m_now, u_now, lam_now, active_now):
        w_key = _pattern_weights(key_gammas, m_now, u_now, lam_now, active_now, None)
        for c in tf_comparisons:
            if not active_now[c]:
                continue
            coef, exact = coefs[c]
            u_base = effective_probabilities(u_now[c])[exact]
            with np.errstate(divide="ignore"):
                w_key = w_key + np.where(coef != 0, coef * np.log2(u_base), 0.0)
        p = match_probability_from_weight(w_key[inverse] + constant)
        m_w = np.bincount(inverse, weights=p * pair_counts, minlength=len(distinct))
        return m_w, key_counts - m_w

    return _run_em(
        key_gammas.astype(np.int8), key_counts, m, u, lambda_, active=active, fix_m=fix_m,
        fix_u=fix_u, fix_lambda=fix_lambda, max_iterations=max_iterations,
        em_convergence=em_convergence, extra=None, label=label, expect=expect,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Combining sessions, λ from sessions
# --------------------------------------------------------------------------------------------


def combine_em_sessions(
    trained: Sequence[Sequence[np.ndarray | None]], current: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """The final m (or u) per level: the median of every trained estimate, as Splink 5 does.

    Splink keeps, per level, the list of values each training step produced (EM sessions where
    the comparison was active, u sampling, m from labels) and sets the parameter to
    ``statistics.median`` of the numeric ones: "not observed" values are left out, an even
    number of estimates gives the mean of the middle two, and a level with no estimate keeps
    its ``current`` value. ``trained``: per session, per comparison an array by gamma (NaN = not
    observed) or None (not trained in that session).

    >>> combine_em_sessions([[np.array([0.2, 0.8])], [np.array([0.4, np.nan])]],
    ...                     [np.array([0.5, 0.5])])[0].tolist()
    [0.30000000000000004, 0.8]
    """
    out = []
    for c, cur in enumerate(current):
        cur = np.asarray(cur, dtype=np.float64)
        values = [np.asarray(s[c], dtype=np.float64) for s in trained if s[c] is not None]
        combined = cur.copy()
        for gamma in range(len(cur)):
            vals = [float(v[gamma]) for v in values if not np.isnan(v[gamma])]
            if vals:
                combined[gamma] = statistics.median(vals)
        out.append(combined)
    return out


def blocking_adjusted_lambda(lambda_: float, bayes_factors: Sequence[float]) -> float:
    """The λ an EM session starts from: λ's odds times the Bayes factors of the levels that the
    training rule forces (Splink's ``_blocking_adjusted_probability_two_random_records_match``).

    >>> round(blocking_adjusted_lambda(0.01, [50.0]), 6)
    0.33557
    """
    bf = lambda_ / (1 - lambda_) if lambda_ != 1 else math.inf
    for level_bf in bayes_factors:
        bf = level_bf * bf
    return bf / (1 + bf)


def lambda_from_em_sessions(
    session_lambdas: Sequence[float], reversed_bayes_factors: Sequence[Sequence[float]]
) -> float:
    """λ from trained EM sessions (``populate_probability_two_random_records_match_from_trained
    _values``): each session's λ odds divided by the Bayes factors (median m / median u) of the
    levels its rule forced; the result is ``1 / median(1 / p_session)``.

    >>> round(lambda_from_em_sessions([0.33557046979865773], [[50.0]]), 6)
    0.01
    """
    reciprocals = []
    for lam, bfs in zip(session_lambdas, reversed_bayes_factors):
        bf = lam / (1 - lam) if lam != 1 else math.inf
        for level_bf in bfs:
            bf = bf / level_bf
        reciprocals.append(1 / (bf / (1 + bf)))
    return 1 / statistics.median(reciprocals)


# --------------------------------------------------------------------------------------------
# λ from deterministic rules, u from sampled pairs, m from labels
# --------------------------------------------------------------------------------------------


def total_possible_comparisons(row_counts: Sequence[int], link_type: str) -> int:
    """How many pairs ``link_type`` could compare, given the row count of each input table.

    Splink's ``calculate_cartesian``: dedupe_only ``n(n-1)/2`` (one table), link_only the sum
    over pairs of tables of ``n_i n_j``, link_and_dedupe ``N(N-1)/2`` over all rows.

    >>> total_possible_comparisons([2, 4], "link_only")
    8
    """
    n = [int(x) for x in row_counts]
    if link_type == "link_only":
        if len(n) <= 1:
            raise InputError("link_type 'link_only' needs at least two input tables")
        return (sum(n) ** 2 - sum(x * x for x in n)) // 2
    if link_type == "dedupe_only":
        if len(n) > 1:
            raise InputError("link_type 'dedupe_only' takes a single input table")
        return n[0] * (n[0] - 1) // 2
    if link_type == "link_and_dedupe":
        total = sum(n)
        return total * (total - 1) // 2
    raise SettingsError(f"link_type must be one of {', '.join(LINK_TYPES)}, got {link_type!r}")


def probability_two_random_records_match_from_counts(
    n_matched_by_rules: int, total_comparisons: int, recall: float
) -> float:
    """Splink's ``estimate_probability_two_random_records_match``: ``matches / recall / total``.

    ``n_matched_by_rules``: distinct pairs that any deterministic rule admits;
    ``total_comparisons``: :func:`total_possible_comparisons`. Raises
    :class:`~gpulink.errors.SettingsError` for a recall outside (0, 1], or one too low for the
    observed matches (λ would exceed 1); warns when λ is 0 or 1.

    >>> round(probability_two_random_records_match_from_counts(4, 15, 0.9), 6)
    0.296296
    """
    if recall > 1 or recall <= 0:
        raise SettingsError(
            f"recall must be greater than 0 and no more than 1; supplied value {recall}"
        )
    if n_matched_by_rules > total_comparisons * recall:
        raise SettingsError(
            "the deterministic matching rules admit more pairs than is consistent with the "
            f"supplied recall ({n_matched_by_rules:,} of {total_comparisons:,} possible pairs); "
            f"with these rules recall must be at least "
            f"{n_matched_by_rules / total_comparisons:,.2f}"
        )
    expected = n_matched_by_rules / recall
    prob = expected / total_comparisons
    if n_matched_by_rules == 0:
        logger.warning(
            "WARNING: the deterministic matching rules admit no pairs, so the probability two "
            "random records match is estimated as 0 and no records would ever link; the rules "
            "probably have an error (expected recall %.0f%%)",
            100 * recall,
        )
    if prob == 1:
        logger.warning(
            "WARNING: the probability two random records match is estimated to be 1: every "
            "possible pair is a match. The deterministic rules probably admit false positives."
        )
    return prob


def _level_proportions_from_counts(patterns, counts, n_levels: Sequence[int] | None):
    patterns = np.asarray(patterns).astype(np.int64)
    counts = np.asarray(counts, dtype=np.float64).reshape(-1)
    if patterns.ndim != 2 or counts.shape[0] != patterns.shape[0]:
        raise InputError("patterns must be [n_patterns, n_comparisons] with one count per row")
    if n_levels is None:
        n_levels = [int(patterns[:, c].max(initial=-1)) + 1 for c in range(patterns.shape[1])]
    out = []
    for c, n in enumerate(n_levels):
        g = patterns[:, c]
        if g.size and (g.min() < -1 or g.max() >= n):
            raise InputError(f"comparison {c} has gamma values outside -1..{n - 1}")
        nonnull = g >= 0
        sums = np.bincount(g[nonnull], weights=counts[nonnull], minlength=n)
        total = sums.sum()
        props = np.full(n, np.nan) if total == 0 else sums / total
        props[sums == 0] = np.nan  # a level with no pair is "not observed", not 0
        out.append(props)
    return out


def u_from_counts(patterns, counts, n_levels: Sequence[int] | None = None) -> list[np.ndarray]:
    """u per level from the pattern counts of randomly sampled pairs (all taken as non-matches).

    ``u_l = count(γ=l) / count(γ≠-1)``; a level no sampled pair reached is "not observed" (NaN)
    as in Splink 5's ``estimate_u_values`` (not 0). ``n_levels``: non-null levels per
    comparison (default: the largest gamma seen + 1).

    >>> u_from_counts(np.array([[2], [1], [0], [-1]]), [1, 1, 13, 5], [3])[0].round(4).tolist()
    [0.8667, 0.0667, 0.0667]
    """
    return _level_proportions_from_counts(patterns, counts, n_levels)


def m_from_label_counts(
    patterns, counts, n_levels: Sequence[int] | None = None
) -> list[np.ndarray]:
    """m per level from the pattern counts of labelled matching pairs.

    Splink's ``estimate_m_from_label_column`` (pairs whose label column is equal) and
    ``estimate_m_from_pairwise_labels`` both score every pair with match probability 1, so
    ``m_l = count(γ=l) / count(γ≠-1)``; unobserved levels are NaN ("not observed").

    >>> m_from_label_counts(np.array([[1], [0]]), [9, 1], [2])[0].tolist()
    [0.1, 0.9]
    """
    return _level_proportions_from_counts(patterns, counts, n_levels)


__all__ = [
    "expectation_maximisation_tf_keys",
    "tf_pair_keys",
    "count_patterns",
    "EMIteration",
    "EMResult",
    "TermFrequencySpec",
    "blocking_adjusted_lambda",
    "combine_em_sessions",
    "default_m_values",
    "default_u_values",
    "expectation_maximisation",
    "expectation_maximisation_tf",
    "lambda_from_em_sessions",
    "level_match_weights",
    "m_from_label_counts",
    "match_probability_from_weight",
    "prob_to_match_weight",
    "probability_two_random_records_match_from_counts",
    "tf_adjustment_terms",
    "total_possible_comparisons",
    "u_from_counts",
]


def count_patterns(gammas, n_levels: Sequence[int]):
    """Distinct gamma vectors of ``gammas`` (int8[n, C]) and their counts, via one bincount.

    Each row is read as a mixed-radix number (digit ``gamma + 1`` in base ``n_levels[c] + 1``),
    which is far faster than ``np.unique(axis=0)`` on millions of rows.

    >>> p, c = count_patterns(np.array([[1, 0], [1, 0], [-1, 1]], np.int8), [2, 2])
    >>> p.tolist(), c.tolist()
    ([[-1, 1], [1, 0]], [1, 2])
    """
    gammas = np.asarray(gammas)
    radix = np.asarray(n_levels, dtype=np.int64) + 1
    if gammas.shape[0] == 0:
        return np.zeros((0, len(radix)), np.int8), np.zeros(0, np.int64)
    if float(np.prod(radix.astype(np.float64))) > 2**26:
        patterns, counts = np.unique(gammas, axis=0, return_counts=True)
        return patterns.astype(np.int8), counts.astype(np.int64)
    index = np.zeros(gammas.shape[0], np.int64)
    for c in range(gammas.shape[1]):
        index *= radix[c]
        index += gammas[:, c].astype(np.int64) + 1
    hist = np.bincount(index, minlength=int(np.prod(radix)))
    present = np.flatnonzero(hist)
    patterns = np.empty((len(present), len(radix)), np.int8)
    rest = present.copy()
    for c in range(len(radix) - 1, -1, -1):
        patterns[:, c] = rest % radix[c] - 1
        rest //= radix[c]
    return patterns, hist[present].astype(np.int64)
