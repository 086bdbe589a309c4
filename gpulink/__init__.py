"""gpulink: GPU-accelerated Fellegi-Sunter record linkage with Splink's model and API.

>>> import gpulink as gl
>>> list(gl.block_on("first_name", "dob").expressions)
['first_name', 'dob']
"""

# First, before anything reads data through pyarrow: see gpulink.arrow_memory.
from gpulink.arrow_memory import use_system_memory_pool

use_system_memory_pool()

from gpulink import comparison_level_library, comparison_library, exploratory
from gpulink.backend import resolve_backend
from gpulink.blocking import block_on
from gpulink.db_api import DuckDBAPI
from gpulink.errors import (
    BackendUnavailable,
    DeviceMemoryError,
    GpulinkError,
    InputError,
    MissingDependency,
    SettingsError,
    TableExistsError,
)
from gpulink.levels import ColumnExpression
from gpulink.linker import Linker
from gpulink.settings import Settings, SettingsCreator

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "ColumnExpression",
    "DeviceMemoryError",
    "DuckDBAPI",
    "GpulinkError",
    "InputError",
    "Linker",
    "MissingDependency",
    "Settings",
    "SettingsCreator",
    "SettingsError",
    "TableExistsError",
    "__version__",
    "block_on",
    "comparison_level_library",
    "comparison_library",
    "exploratory",
    "resolve_backend",
]
