"""The one exception family of gpulink.

Every error a user can cause is a :class:`GpulinkError` whose message names the column, rule,
record or setting at fault and says what to do. Catch ``gpulink.GpulinkError`` to catch them all.
"""

from __future__ import annotations


class GpulinkError(Exception):
    """Base class of every error gpulink raises on purpose."""


class InputError(GpulinkError, ValueError):
    """The input data is unusable: a missing column, a duplicate id, a value of the wrong type.

    >>> raise InputError("column 'dob' is missing; pass a table with a 'dob' column")
    Traceback (most recent call last):
    ...
    gpulink.errors.InputError: column 'dob' is missing; pass a table with a 'dob' column
    """


class SettingsError(GpulinkError, ValueError):
    """The model specification is invalid (unknown comparison, bad threshold, bad JSON...)."""


class BackendUnavailable(GpulinkError, RuntimeError):
    """The requested backend cannot run here (no GPU, no CUDA driver, missing package)."""


class DeviceMemoryError(GpulinkError, MemoryError):
    """The job does not fit in the device memory budget; the message says how to make it fit."""


class MissingDependency(GpulinkError, ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` to run."""


class TableExistsError(GpulinkError, ValueError):
    """A table name is taken (Splink's ``register_table`` without ``overwrite=True``).

    >>> raise TableExistsError("table 'people' is already registered with this linker")
    Traceback (most recent call last):
    ...
    gpulink.errors.TableExistsError: table 'people' is already registered with this linker
    """


__all__ = [
    "BackendUnavailable",
    "DeviceMemoryError",
    "GpulinkError",
    "InputError",
    "MissingDependency",
    "SettingsError",
    "TableExistsError",
]
