"""Backend selection: where the kernels run (``"cpu"``: Numba on all cores; ``"gpu"``: CUDA).

Nothing here touches a GPU at import time. ``resolve_backend("auto")`` probes once, on first use,
and says at INFO level which backend it chose and why.

>>> resolve_backend("cpu").name
'cpu'
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from gpulink.errors import BackendUnavailable

logger = logging.getLogger("gpulink")

BACKEND_NAMES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Backend:
    """A resolved backend: its name and its array module (numpy or cupy)."""

    name: str
    xp: ModuleType

    @property
    def is_gpu(self) -> bool:
        return self.name == "gpu"

    def asarray(self, array):
        """Move a host array to this backend (a no-op on the CPU)."""
        return self.xp.asarray(array)

    def to_host(self, array) -> np.ndarray:
        """Return ``array`` as a numpy array on the host."""
        if isinstance(array, np.ndarray):
            return array
        get = getattr(array, "get", None)
        return get() if get is not None else np.asarray(array)


CPU = Backend("cpu", np)


@functools.lru_cache(maxsize=1)
def gpu_status() -> tuple[bool, str]:
    """Whether a usable CUDA GPU is present, and why not when it is not.

    Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the answer is False: the simulator
    runs kernels for tests, not jobs.
    """
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1":
        return False, "NUMBA_ENABLE_CUDASIM=1 is set (the CUDA simulator is for tests only)"
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or a broken CUDA install
        return False, f"cupy is not importable ({exc}); install gpulink[gpu]"
    try:
        from gpulink.kernels._cuda import cuda

        if not cuda.is_available():
            return False, "numba-cuda finds no CUDA driver or GPU"
    except Exception as exc:
        return False, f"numba-cuda is not usable ({exc}); install gpulink[gpu]"
    return True, "a CUDA GPU is available"


def resolve_backend(backend: str | Backend = "auto") -> Backend:
    """Resolve ``"auto"``, ``"cpu"`` or ``"gpu"`` to a :class:`Backend`.

    ``"gpu"`` raises :class:`~gpulink.errors.BackendUnavailable` with the reason when no GPU can
    be used; ``"auto"`` then falls back to the CPU.

    >>> resolve_backend("cpu").xp.__name__
    'numpy'
    """
    if isinstance(backend, Backend):
        return backend
    if backend not in BACKEND_NAMES:
        raise BackendUnavailable(
            f"unknown backend {backend!r}; use one of {', '.join(map(repr, BACKEND_NAMES))}"
        )
    if backend == "cpu":
        return CPU
    ok, reason = gpu_status()
    if ok:
        import cupy

        if backend == "auto":
            logger.info("gpulink backend: gpu (%s)", reason)
        return Backend("gpu", cupy)
    if backend == "gpu":
        raise BackendUnavailable(f"backend='gpu' cannot run here: {reason}. Use backend='cpu'.")
    logger.info("gpulink backend: cpu (%s)", reason)
    return CPU
