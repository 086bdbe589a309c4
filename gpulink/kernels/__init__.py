"""Single-source kernels: plain Python bodies compiled for the CPU (Numba) and the GPU (CUDA).

See :mod:`gpulink.kernels._targets` for how one body becomes two builds.

Numba's on-disk cache checks only the source file of the function it caches, but a cached
launcher embeds the bodies it calls from other files here. So on import we compare a hash of
every kernel source with the one the cache was built from and drop the cache when they differ
(an upgrade, or an edit to ``strings.py``). A read-only install is left alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def _refresh_stale_cache() -> None:
    here = Path(__file__).resolve().parent
    cache = here / "__pycache__"
    digest = hashlib.sha256()
    for source in sorted(here.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    stamp = cache / "gpulink-kernels.sha256"
    current = digest.hexdigest()
    try:
        if stamp.exists() and stamp.read_text() == current:
            return
        for pattern in ("*.nbi", "*.nbc"):
            for stale in cache.glob(pattern):
                stale.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(current)
    except OSError:
        pass  # read-only install: Numba falls back to compiling in memory


_refresh_stale_cache()
