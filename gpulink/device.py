"""Device memory budget: how much of the GPU a job may use, and chunk sizes that fit in it.

All of gpulink's device arrays come from cupy's default memory pool (the kernels take cupy
arrays through ``__cuda_array_interface__``), so one number describes what is in use:
free device memory plus the bytes the pool holds but does not use. Chunks of the pair space are
sized from that budget, and out-of-memory errors from cupy become
:class:`~gpulink.errors.DeviceMemoryError` with a message that says what to change.

cupy is imported here lazily, at the first call, never at ``import gpulink``.

>>> chunk_pairs_for_budget(bytes_per_pair=40, budget=1 << 30, fixed_bytes=1 << 28)
20132659
"""

from __future__ import annotations

import contextlib

from gpulink.errors import BackendUnavailable, DeviceMemoryError

_MIB = 1 << 20


def cupy_module():
    """The cupy module, or :class:`~gpulink.errors.BackendUnavailable` saying how to get it."""
    try:
        import cupy
    except Exception as exc:  # ImportError or a broken CUDA install
        raise BackendUnavailable(
            f"cupy is not importable ({exc}); install gpulink[gpu] or use backend='cpu'"
        ) from exc
    return cupy


def memory_pool():
    """cupy's default device memory pool (the one every gpulink device array comes from)."""
    return cupy_module().get_default_memory_pool()


def memory_budget(fraction: float = 0.8) -> int:
    """Bytes of device memory gpulink may use: ``fraction`` of (free memory + memory the pool
    holds but does not use).

    >>> memory_budget(0.5) > 0  # doctest: +SKIP
    True
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be within (0, 1], got {fraction}")
    cp = cupy_module()
    free, _total = cp.cuda.runtime.memGetInfo()
    pool = cp.get_default_memory_pool()
    reusable = int(pool.total_bytes()) - int(pool.used_bytes())
    return int((int(free) + reusable) * fraction)


def check_fits(
    fixed_bytes: int, budget: int, what: str = "the record table and dictionaries"
) -> None:
    """Raise :class:`~gpulink.errors.DeviceMemoryError` when ``fixed_bytes`` (data that must
    stay on the device for the whole job) leave no room within ``budget``.

    >>> check_fits(10, 100)
    >>> check_fits(200, 100)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gpulink.errors.DeviceMemoryError: the record table and dictionaries need 0 MiB of device memory but the budget is 0 MiB; ...
    """
    if fixed_bytes >= budget:
        raise DeviceMemoryError(
            f"{what} need {fixed_bytes // _MIB:,} MiB of device memory but the budget is "
            f"{budget // _MIB:,} MiB; free GPU memory (other processes, cupy pools), use a GPU "
            "with more memory, split the job across GPUs with Dask (client=...), compare "
            "fewer columns, or use backend='cpu'"
        )


def chunk_pairs_for_budget(bytes_per_pair: int, budget: int, fixed_bytes: int = 0) -> int:
    """Pair indices per launch so that ``fixed_bytes + n * bytes_per_pair <= budget``.

    Raises :class:`~gpulink.errors.DeviceMemoryError` when even the fixed part does not fit.

    >>> chunk_pairs_for_budget(28, 28 * 1000 + 500, 500)
    1000
    """
    if bytes_per_pair <= 0:
        raise ValueError(f"bytes_per_pair must be positive, got {bytes_per_pair}")
    check_fits(fixed_bytes, budget)
    n = (int(budget) - int(fixed_bytes)) // int(bytes_per_pair)
    if n < 1:
        raise DeviceMemoryError(
            f"no room for even one pair ({bytes_per_pair} bytes) beyond the "
            f"{fixed_bytes // _MIB:,} MiB the job keeps on the device; free GPU memory or use "
            "backend='cpu'"
        )
    return int(n)


def _is_out_of_memory(exc: BaseException) -> bool:
    try:
        import cupy

        if isinstance(exc, cupy.cuda.memory.OutOfMemoryError):
            return True
    except Exception:  # cupy absent (simulator): only numba's error can be an OOM
        pass
    text = f"{type(exc).__name__}: {exc}"
    return "CUDA_ERROR_OUT_OF_MEMORY" in text or "cudaErrorMemoryAllocation" in text


@contextlib.contextmanager
def device_memory_guard(doing: str):
    """Turn a device out-of-memory error raised inside the block into a
    :class:`~gpulink.errors.DeviceMemoryError` that says what was being done and the fix.

    >>> with device_memory_guard("scoring"):
    ...     pass
    """
    try:
        yield
    except DeviceMemoryError:
        raise
    except Exception as exc:
        if not _is_out_of_memory(exc):
            raise
        raise DeviceMemoryError(
            f"the GPU ran out of memory while {doing}: {exc}. Lower chunk_pairs, free GPU "
            "memory held by other processes, or use backend='cpu'"
        ) from exc


def peak_tracker():
    """A callable returning the pool's bytes in use now and the largest value seen at calls.

    Benchmarks call it between stages; a cheap stand-in for a true high-water mark.
    """
    pool = memory_pool()
    state = {"peak": 0}

    def sample() -> tuple[int, int]:
        now = int(pool.total_bytes())
        state["peak"] = max(state["peak"], now)
        return now, state["peak"]

    return sample


__all__ = [
    "check_fits",
    "chunk_pairs_for_budget",
    "cupy_module",
    "device_memory_guard",
    "memory_budget",
    "memory_pool",
    "peak_tracker",
]
