"""The single place that imports the CUDA compiler.

Moving to another CUDA Python compiler (numba-cuda-mlir, say) is a change to this module alone.
Nothing here touches a GPU at import time: importing numba's ``cuda`` module neither creates a
context nor probes the driver; ``cuda.is_available()`` (called by :mod:`gpulink.backend`) does.
"""

from __future__ import annotations

import os

from numba import cuda  # noqa: F401  (re-exported: the compiler entry point)

#: True when Numba runs CUDA kernels in its pure-Python simulator (NUMBA_ENABLE_CUDASIM=1).
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def device_function(fn):
    """Compile a plain Python kernel body as a CUDA device function."""
    return cuda.jit(device=True)(fn)


def kernel(fn):
    """Compile a launcher as a CUDA kernel (lazily, at its first launch)."""
    return cuda.jit(fn)


def compile_ptx(fn, signature, cc=(9, 0)):
    """Compile kernel ``fn`` to PTX for compute capability ``cc``, with no GPU or driver needed.

    Device functions that ``fn`` calls are compiled by their dispatchers, which ask the current
    device for its compute capability; without a driver there is none, so we answer ``cc`` for
    the duration of this compilation.
    """
    from types import SimpleNamespace
    from unittest import mock

    from numba.cuda import dispatcher

    fake_device = SimpleNamespace(compute_capability=cc)
    with mock.patch.object(dispatcher, "get_current_device", return_value=fake_device):
        return cuda.compile_ptx(fn, signature, cc=cc)
