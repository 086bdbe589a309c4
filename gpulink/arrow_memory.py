"""The allocator pyarrow uses in a gpulink process.

pyarrow's wheels allocate through mimalloc by default. In gpulink's pipeline that allocator's
per-thread heaps hold far more memory than Arrow asks for: on ``historical_50k`` Arrow never
has more than 20 MiB allocated, yet the process peaks at ~390 MiB with mimalloc and ~306 MiB
with the C library's allocator, and the whole 1M-record pipeline ran in 8.6 s instead of 10.2 s
(``benchmarks/vs_splink.py``, 2-core VM; see ``benchmarks/NOTES.md``). Importing gpulink
therefore makes the system allocator pyarrow's default, unless the process chose one itself
with pyarrow's own switch, the ``ARROW_DEFAULT_MEMORY_POOL`` environment variable
(``ARROW_DEFAULT_MEMORY_POOL=mimalloc`` keeps pyarrow's default).
"""

from __future__ import annotations

import os

import pyarrow as pa

#: pyarrow's environment variable naming the default memory pool's allocator.
POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_system_memory_pool() -> bool:
    """Make the system allocator pyarrow's default memory pool, unless ``ARROW_DEFAULT_MEMORY_POOL``
    names one; returns whether it did. gpulink calls this once, when it is imported.

    >>> import os
    >>> import pyarrow as pa
    >>> import gpulink
    >>> pa.default_memory_pool().backend_name == (os.environ.get(POOL_VARIABLE) or "system")
    True
    """
    if os.environ.get(POOL_VARIABLE):
        return False
    pa.set_memory_pool(pa.system_memory_pool())
    return True
