"""The allocator pyarrow uses in a gpulink process.

pyarrow's wheels allocate through mimalloc by default. In gpulink's pipeline that allocator's
per-thread heaps hold far more memory than Arrow asks for: on ``historical_50k`` Arrow never
has more than 20 MiB allocated, yet the process peaks at ~390 MiB with mimalloc and ~306 MiB
with the C library's allocator, and the whole 1M-record pipeline ran in 8.6 s instead of 10.2 s
(2-core VM; ``benchmarks/results/allocator-ab-20261125/``, ``benchmarks/NOTES.md``). Importing
gpulink therefore makes the system allocator Arrow's default, unless the process chose one
itself with Arrow's own switch, the ``ARROW_DEFAULT_MEMORY_POOL`` environment variable
(``ARROW_DEFAULT_MEMORY_POOL=mimalloc`` keeps pyarrow's default).

Arrow's C++ readers and writers allocate from the pool the variable names when Arrow first
needs one, pyarrow's Python calls from ``pyarrow.default_memory_pool()``: gpulink sets both.
Import gpulink before anything reads data with pyarrow for the first to take effect; the
variable is also inherited by the processes this one starts (Dask workers among them).
"""

from __future__ import annotations

import os

#: Arrow's environment variable naming the allocator of its default memory pool.
POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_system_memory_pool() -> bool:
    """Make the system allocator Arrow's default memory pool, unless ``ARROW_DEFAULT_MEMORY_POOL``
    names one; returns whether it did. gpulink calls this first thing when it is imported.

    >>> import os
    >>> import pyarrow as pa
    >>> import gpulink
    >>> pa.default_memory_pool().backend_name == os.environ[POOL_VARIABLE]
    True
    """
    if os.environ.get(POOL_VARIABLE):
        return False
    os.environ[POOL_VARIABLE] = "system"  # read when Arrow's C++ default pool is first made
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())  # pyarrow's own calls, if already made
    return True
