"""gpulink: GPU-accelerated Fellegi-Sunter record linkage with Splink's model and API."""

from gpulink.backend import resolve_backend
from gpulink.errors import (
    BackendUnavailable,
    DeviceMemoryError,
    GpulinkError,
    InputError,
    SettingsError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "DeviceMemoryError",
    "GpulinkError",
    "InputError",
    "SettingsError",
    "__version__",
    "resolve_backend",
]
