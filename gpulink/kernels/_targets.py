"""One source, two targets: kernel bodies compiled for the CPU (numba.njit) and the GPU.

A *kernel body* is a plain Python function in the restricted subset Numba compiles on both
targets: arrays, ints and floats, fixed scratch buffers passed in, no allocation and no objects.
Mark it with :func:`kernel_body`; it stays an ordinary Python function (the slow reference).

``cpu(body)`` and ``gpu(body)`` return compiled versions. A body may call other bodies by their
global names; each target gets its own copy of the body whose globals point at that target's
compiled versions of the bodies it calls, so the CPU build calls CPU code and the GPU build calls
device functions, from one source text. A body module's global ``ON_GPU`` reads True in the
GPU build and False in the CPU build (a compile-time constant: the other branch is dropped).
A module with a global ``LIBDEVICE`` gets ``numba.cuda.libdevice`` there in the GPU build, and
``REAL_GPU`` True (False under the CUDA simulator, which has no libdevice).

>>> import numpy as np
>>> @kernel_body
... def add_one(x):
...     return x + 1
>>> cpu(add_one)(41)
42
"""

from __future__ import annotations

import types
import warnings

import numba

_BODIES: dict[int, object] = {}  # id(python function) -> python function
_COMPILED: dict[tuple[str, int], object] = {}


def kernel_body(fn):
    """Register ``fn`` as a single-source kernel body and return it unchanged."""
    _BODIES[id(fn)] = fn
    fn.__gpulink_body__ = True
    return fn


def _is_body(obj) -> bool:
    return getattr(obj, "__gpulink_body__", False) is True


def _retarget(fn, target: str, jit):
    key = (target, id(fn))
    if key in _COMPILED:
        return _COMPILED[key]
    new_globals = dict(fn.__globals__)
    if "ON_GPU" in new_globals:
        new_globals["ON_GPU"] = target == "gpu"
    if target == "gpu" and "LIBDEVICE" in new_globals:
        # libdevice's functions (fma...) exist on a device, not in the simulator
        from gpulink.kernels._cuda import SIMULATOR

        if not SIMULATOR:
            from numba.cuda import libdevice

            new_globals["LIBDEVICE"] = libdevice
            new_globals["REAL_GPU"] = True
    for name in fn.__code__.co_names:
        obj = new_globals.get(name)
        if _is_body(obj) and obj is not fn:
            new_globals[name] = _retarget(obj, target, jit)
    clone = types.FunctionType(
        fn.__code__, new_globals, fn.__name__, fn.__defaults__, fn.__closure__
    )
    clone.__qualname__ = fn.__qualname__
    clone.__module__ = fn.__module__
    clone.__doc__ = fn.__doc__
    if fn.__kwdefaults__:
        clone.__kwdefaults__ = dict(fn.__kwdefaults__)
    new_globals[fn.__name__] = clone  # direct recursion stays on this target
    compiled = jit(clone)
    new_globals[fn.__name__] = compiled
    _COMPILED[key] = compiled
    return compiled


def cpu_jit(fn=None, **options):
    """``numba.njit`` with ``cache=True`` that falls back quietly on a read-only install."""
    options.setdefault("cache", True)
    options.setdefault("nogil", True)

    def wrap(f):
        try:
            return numba.njit(**options)(f)
        except Exception:  # pragma: no cover - cache locator refused (read-only install)
            options["cache"] = False
            return numba.njit(**options)(f)

    if fn is None:
        return wrap
    return wrap(fn)


def _body_jit(fn):
    # Bodies never allocate, so they need no reference counting of their array arguments
    # (Numba's NRT): without it every call saves an atomic increment/decrement per array.
    try:
        return cpu_jit(fn, _nrt=False)
    except Exception:  # pragma: no cover - an older Numba without the option
        return cpu_jit(fn)


def cpu(fn):
    """The CPU (``numba.njit``) build of kernel body ``fn``."""
    return _retarget(fn, "cpu", _body_jit)


def gpu(fn):
    """The GPU (CUDA device function) build of kernel body ``fn``; imports the CUDA compiler."""
    from gpulink.kernels._cuda import device_function

    return _retarget(fn, "gpu", device_function)


def retarget_launcher(fn, target: str):
    """Rebind the kernel bodies a launcher calls to their ``target`` builds, without compiling it.

    Used for launchers (``prange`` loops, CUDA kernels) written once over bodies, which the
    caller then compiles with ``numba.njit(parallel=True)`` or ``cuda.jit``.
    """
    build = cpu if target == "cpu" else gpu
    new_globals = dict(fn.__globals__)
    for name in fn.__code__.co_names:
        obj = new_globals.get(name)
        if _is_body(obj):
            new_globals[name] = build(obj)
    clone = types.FunctionType(
        fn.__code__, new_globals, fn.__name__, fn.__defaults__, fn.__closure__
    )
    clone.__qualname__ = fn.__qualname__
    clone.__module__ = fn.__module__
    return clone


warnings.filterwarnings("ignore", category=numba.NumbaPerformanceWarning)
