"""Numeric comparator kernel bodies (single source, CPU and GPU): differences, dates, distance.

Every body takes and returns float64; NaN (a null) propagates to NaN, which fails every
``<=``/``<`` threshold, the way a NULL makes Splink's SQL predicate not TRUE.

Dates and timestamps. The record table stores dates as float64 *days* since 1970-01-01 and
timestamps as float64 *seconds* since the epoch. Splink's ``AbsoluteDateDifferenceLevel`` and
``AbsoluteTimeDifferenceLevel`` compile (DuckDB) to
``ABS(EPOCH(l) - EPOCH(r)) <= threshold_seconds`` where ``threshold_seconds`` is the threshold
times a fixed factor (a month is 365.25 / 12 days, a year 365.25 days; see
:func:`splink_time_threshold_seconds`). So the caller must:

* compute ``threshold_seconds = splink_time_threshold_seconds(threshold, metric)`` on the host,
* compare ``abs_date_difference_seconds(days_l, days_r) <= threshold_seconds`` for dates, or
  ``abs_difference(seconds_l, seconds_r) <= threshold_seconds`` for timestamps.

Both sides are exact in float64 for whole days (``days * 86400`` is an integer below 2**53), so
the outcome is Splink's to the last bit, including thresholds such as 1 month = 30.4375 days.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import types
from numba.core.extending import intrinsic, overload

from gpulink.kernels._targets import kernel_body

# Set in the GPU build by gpulink.kernels._targets (see there): the device's fma, except under
# the CUDA simulator, which runs the Python fma below.
ON_GPU = False
REAL_GPU = False
LIBDEVICE = None

FLOAT32_MIN_NORMAL = float(np.finfo(np.float32).tiny)
FLOAT64_MIN_NORMAL = float(np.finfo(np.float64).tiny)

EARTH_RADIUS_KM = 6371.0
SECONDS_PER_DAY = 86400.0
_RADIANS = math.pi / 180.0  # DuckDB's radians(x) is x * (pi / 180)

#: Seconds per unit, exactly as Splink's ``AbsoluteTimeDifferenceLevel`` converts thresholds.
SPLINK_SECONDS_PER = {
    "second": 1,
    "minute": 60,
    "hour": 60 * 60,
    "day": 60 * 60 * 24,
    "month": 60 * 60 * 24 * 365.25 / 12,
    "year": 60 * 60 * 24 * 365.25,
}


def splink_time_threshold_seconds(threshold: float, metric: str) -> float:
    """Splink's threshold in seconds for a date/time difference level (host-side helper).

    >>> splink_time_threshold_seconds(1, "month")
    2629800.0
    """
    if metric not in SPLINK_SECONDS_PER:
        raise ValueError(f"unknown time metric {metric!r}; use one of {sorted(SPLINK_SECONDS_PER)}")
    return float(threshold * SPLINK_SECONDS_PER[metric])


def splink_km_threshold(km: float) -> float:
    """The km threshold as DuckDB compares it with the FLOAT distance: rounded to float32.

    >>> splink_km_threshold(0.1) > 0.1
    True
    """
    return float(np.float32(km))


@kernel_body
def abs_difference(x, y):
    """``|x - y|`` (NaN if either is NaN)."""
    return abs(x - y)


@kernel_body
def abs_date_difference_seconds(days_x, days_y):
    """``|x - y|`` in seconds for dates given as days since the epoch: DuckDB's
    ``ABS(EPOCH(l) - EPOCH(r))``, which Splink's date-difference levels compare with
    :func:`splink_time_threshold_seconds`."""
    return abs(days_x - days_y) * SECONDS_PER_DAY


@kernel_body
def percentage_difference(x, y):
    """Splink's ``PercentageDifferenceLevel`` quantity ``|x - y| / (y if y > x else x)``.

    Note the denominator is the larger *value*, not the larger magnitude. IEEE semantics as
    DuckDB: a zero denominator gives inf (or NaN for 0/0), which fails every ``<`` threshold.
    """
    den = y if y > x else x
    num = abs(x - y)
    if den == 0.0:
        # Spelled out: Numba's CPU build would raise ZeroDivisionError where IEEE gives inf/NaN.
        if num == 0.0 or num != num:
            return np.nan
        return math.copysign(np.inf, den)
    return num / den


@kernel_body
def great_circle_km(lat1, lng1, lat2, lng2):
    """Great-circle distance in km by the spherical law of cosines, as Splink's
    ``DistanceInKMLevel`` SQL: ``acos(clamp(sin φ1 sin φ2 + cos φ1 cos φ2 cos Δλ, -1, 1)) * 6371``
    with ``Δλ = radians(lng2 - lng1)``, then ``CAST(... AS FLOAT)``.

    The result is rounded to float32 (returned as float64) because Splink casts it to FLOAT;
    DuckDB then compares it with the threshold cast to FLOAT too, so compare with
    :func:`splink_km_threshold` ``(km)`` to reproduce Splink's levels exactly.
    """
    p1 = lat1 * _RADIANS
    p2 = lat2 * _RADIANS
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(
        (lng2 - lng1) * _RADIANS
    )
    if c > 1.0:
        c = 1.0
    elif c < -1.0:
        c = -1.0
    return np.float64(np.float32(math.acos(c) * EARTH_RADIUS_KM))


@kernel_body
def _to_precision(x, single):
    """``x`` rounded to float32 (kept as float64) when ``single``, else ``x``.

    float32 arithmetic is emulated exactly by float64 arithmetic rounded to float32 after
    every +, -, *, / and sqrt: float64 has more than 2 * 24 + 2 significant bits.
    """
    if single:
        return np.float64(np.float32(x))
    return x


def exact_fma(x, y, z):
    """``x * y + z`` rounded once to float64 (IEEE fused multiply-add); in Python by exact
    rational arithmetic, in the CPU build by LLVM's ``llvm.fma.f64``.

    >>> exact_fma(0.1, 10.0, -1.0) == 2.0 ** -54, 0.1 * 10.0 - 1.0
    (True, 0.0)
    """
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
        return x * y + z
    try:
        return float(Fraction(x) * Fraction(y) + Fraction(z))
    except OverflowError:
        return math.copysign(math.inf, float(Fraction(x) * Fraction(y) + Fraction(z) > 0) - 0.5)


@intrinsic
def _llvm_fma(typingctx, x, y, z):
    def codegen(context, builder, signature, args):
        from llvmlite import ir

        f64 = ir.DoubleType()
        fnty = ir.FunctionType(f64, [f64, f64, f64])
        fn = builder.module.declare_intrinsic("llvm.fma", [f64], fnty)
        return builder.call(fn, args)

    return types.float64(types.float64, types.float64, types.float64), codegen


@overload(exact_fma, target="cpu")
def _exact_fma_cpu(x, y, z):
    def impl(x, y, z):
        return _llvm_fma(np.float64(x), np.float64(y), np.float64(z))

    return impl


@kernel_body
def fused_multiply_add(x, y, z):
    """``x * y + z`` rounded once, on every target (DuckDB's cosine sums are fused)."""
    if ON_GPU and REAL_GPU:
        return LIBDEVICE.fma(x, y, z)
    else:
        return exact_fma(x, y, z)


@kernel_body
def _clamp_similarity(s):
    """DuckDB's clamp of a cosine to [-1, 1]; NaN stays NaN."""
    if s != s:
        return s
    if s > 1.0:
        return 1.0
    if s < -1.0:
        return -1.0
    return s


@kernel_body
def _cosine_sums(values, a0, b0, n, scale_a, scale_b, single):
    """(x.y, x.x, y.y) over ``values[a0:a0+n]``, ``values[b0:b0+n]``, each element divided by
    its vector's scale (1.0: unscaled), summed left to right with fused multiply-adds, as
    DuckDB's build does. For float32 vectors the fma rounds to float64 then to float32: the
    two roundings differ from one only when the float64 sum falls exactly halfway between two
    float32 numbers (about one term in 2**29); exact otherwise."""
    dot = 0.0
    norm_a = 0.0
    norm_b = 0.0
    for t in range(n):
        x = values[a0 + t]
        y = values[b0 + t]
        if scale_a != 1.0:
            x = _to_precision(x / scale_a, single)
        if scale_b != 1.0:
            y = _to_precision(y / scale_b, single)
        dot = _to_precision(fused_multiply_add(x, y, dot), single)
        norm_a = _to_precision(fused_multiply_add(x, x, norm_a), single)
        norm_b = _to_precision(fused_multiply_add(y, y, norm_b), single)
    return dot, norm_a, norm_b


@kernel_body
def cosine_similarity(values, a0, b0, n, single):
    """Cosine similarity of ``values[a0:a0+n]`` and ``values[b0:b0+n]``, as DuckDB's
    ``array_cosine_similarity``: ``x.y / sqrt(x.x * y.y)`` clamped to [-1, 1], in float32 when
    ``single`` (FLOAT[n] vectors) else float64, sums by :func:`fused_multiply_add`.

    When the sums overflow or underflow (not finite, or ``x.x * y.y`` below the smallest normal
    number) DuckDB divides each vector by its largest magnitude and sums again: a zero vector,
    or one holding an infinity, then gives NaN; NaN elements give NaN.
    """
    dot, norm_a, norm_b = _cosine_sums(values, a0, b0, n, 1.0, 1.0, single)
    norms = _to_precision(norm_a * norm_b, single)
    smallest = FLOAT32_MIN_NORMAL if single else FLOAT64_MIN_NORMAL
    if math.isfinite(dot) and math.isfinite(norms) and norms >= smallest:
        return _clamp_similarity(
            _to_precision(dot / _to_precision(math.sqrt(norms), single), single)
        )
    max_a = 0.0
    max_b = 0.0
    for t in range(n):
        x = abs(values[a0 + t])
        y = abs(values[b0 + t])
        if max_a < x:  # std::max(max, |x|): a NaN element leaves the maximum as it was
            max_a = x
        if max_b < y:
            max_b = y
    if max_a == 0.0 or max_b == 0.0 or max_a == math.inf or max_b == math.inf:
        return math.nan
    dot, norm_a, norm_b = _cosine_sums(values, a0, b0, n, max_a, max_b, single)
    norms = _to_precision(norm_a * norm_b, single)
    if norms != norms:
        return math.nan
    return _clamp_similarity(_to_precision(dot / _to_precision(math.sqrt(norms), single), single))
