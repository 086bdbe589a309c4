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

import numpy as np

from gpulink.kernels._targets import kernel_body

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
