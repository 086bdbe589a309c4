"""Type tests shared by the settings and the level and comparison libraries.

A number may come from Python, numpy or pandas (``np.float32(0.1)``, ``np.int64(5)``): any
:class:`numbers.Real` is a number and any :class:`numbers.Integral` an integer. ``True`` and
``False`` are neither, though Python counts them as ints: a flag where a number belongs is a
mistake to report, not the number 1.

>>> import numpy as np
>>> is_number(np.float32(0.1)), is_integer(np.int64(5)), is_number(True), is_integer(5.0)
(True, True, False, False)
"""

from __future__ import annotations

import math
import numbers


def is_number(value) -> bool:
    """True for a real number of any numeric type (bool excluded; NaN included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_integer(value) -> bool:
    """True for an integer of any integral type (bool excluded)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def as_python_number(value) -> int | float:
    """``value`` (a number, see :func:`is_number`) as a Python int or float, for JSON and SQL.

    >>> import numpy as np
    >>> as_python_number(np.int64(3)), as_python_number(np.float64(0.5))
    (3, 0.5)
    """
    return int(value) if is_integer(value) else float(value)


def number_argument(value, name: str) -> float:
    """``value`` as a float, or a SettingsError naming the argument (NaN and text refused).

    >>> import numpy as np
    >>> number_argument(np.float32(0.5), "threshold_match_probability")
    0.5
    >>> number_argument("0.5", "threshold_match_probability")
    Traceback (most recent call last):
    ...
    gpulink.errors.SettingsError: threshold_match_probability must be a number, got '0.5'
    """
    from gpulink.errors import SettingsError

    if not is_number(value) or math.isnan(value):
        raise SettingsError(f"{name} must be a number, got {value!r}")
    return float(value)


__all__ = ["as_python_number", "is_integer", "is_number", "number_argument"]
