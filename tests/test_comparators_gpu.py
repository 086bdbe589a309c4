"""The GPU build of the comparator launcher: compiled to PTX for sm_90 (no GPU needed), run under
Numba's CUDA simulator in a subprocess (NUMBA_ENABLE_CUDASIM must be set before Numba is
imported), and on a real GPU when there is one (``-m gpu``)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_under_cuda_simulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METRIC_NAMES = ("jaro", "jaro_winkler", "levenshtein", "damerau_levenshtein", "jaccard")


def _pairs(n: int, seed: int, long_every: int = 25) -> tuple[list, list]:
    """Short names with edits, Unicode, empties, nulls, and some > 64 code points (slow paths)."""
    rng = random.Random(seed)
    alphabets = ["abcdefghij", "ab", "aéñ\u0301日本😀ж"]
    a, b = [], []
    for k in range(n):
        alphabet = alphabets[k % 3]
        if k % long_every == 0:
            length = rng.randint(65, 140)
        else:
            length = rng.randint(0, 12)
        x = "".join(rng.choice(alphabet) for _ in range(length))
        y = list(x)
        for _ in range(rng.randint(0, 4)):
            if y and rng.random() < 0.5:
                y[rng.randrange(len(y))] = rng.choice(alphabet)
            else:
                y.insert(rng.randint(0, len(y)), rng.choice(alphabet))
        y = "".join(y)
        if k % long_every == 7:  # mixed: one side short, the other long
            y = x[:10] + "".join(rng.choice(alphabet) for _ in range(rng.randint(55, 90)))
        a.append(None if k % 31 == 5 else x)
        b.append(None if k % 37 == 9 else y)
    return a, b


def _expected(metric: str, a: list, b: list) -> np.ndarray:
    from rapidfuzz.distance import DamerauLevenshtein, Jaro, JaroWinkler, Levenshtein

    import tests.reference as ref

    oracle = {
        "jaro": Jaro.similarity,
        "jaro_winkler": JaroWinkler.similarity,
        "levenshtein": Levenshtein.distance,
        "damerau_levenshtein": DamerauLevenshtein.distance,
        "jaccard": ref.jaccard,
    }[metric]
    return np.array(
        [np.nan if x is None or y is None else oracle(x, y) for x, y in zip(a, b)], np.float64
    )


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    return bool(np.all((got == want) | (np.isnan(got) & np.isnan(want))))


# ---------------------------------------------------------------------------------------------
# (a) PTX for compute capability 9.0, with the launcher's real signature
# ---------------------------------------------------------------------------------------------


def test_gpu_launcher_compiles_to_ptx_for_sm90():
    pytest.importorskip("numba.cuda")
    from gpulink.kernels import comparator_launch as launch
    from gpulink.kernels._cuda import compile_ptx

    try:
        ptx, restype = compile_ptx(launch.gpu_launcher_source(), launch.GPU_SIGNATURE, cc=(9, 0))
    except Exception as exc:  # pragma: no cover - missing NVVM / NVRTC wheels
        if "NVVM" in str(exc) or "nvrtc" in str(exc).lower():
            pytest.skip(f"CUDA compiler libraries not installed: {exc}")
        raise
    assert ".target sm_90" in ptx
    assert ".entry" in ptx
    # Every comparator is inlined, and none spills to thread-local memory: the short-string
    # fast paths live in registers, long strings use the caller's scratch rows.
    assert ".local" not in ptx


# ---------------------------------------------------------------------------------------------
# (b) The CUDA simulator, in a subprocess, with blocks of 8 threads and a grid-stride loop
# ---------------------------------------------------------------------------------------------


def simulator_main() -> None:
    """Run in a subprocess with NUMBA_ENABLE_CUDASIM=1: GPU launcher == CPU launcher == oracle."""
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    import warnings

    from gpulink import comparators as gc
    from gpulink.kernels import comparator_launch as launch

    warnings.simplefilter("ignore")  # uint64 wrap-around in simulated bit-parallel code
    a, b = _pairs(300, seed=11)
    ea, eb = gc.encode(a), gc.encode(b)
    valid = (ea.valid & eb.valid).astype(np.uint8)
    assert max(ea.max_len, eb.max_len) > 64
    for name in METRIC_NAMES:
        code = launch.METRICS[name]
        cpu = launch.run_cpu(code, ea.chars, ea.offsets, eb.chars, eb.offsets, valid)
        # 8 threads per block and 24 threads in all: every thread strides over many pairs.
        gpu = launch.run_gpu(
            code, ea.chars, ea.offsets, eb.chars, eb.offsets, valid,
            threads_per_block=8, max_threads=24,
        )  # fmt: skip
        assert _same(gpu, cpu), (name, np.flatnonzero(~((gpu == cpu) | np.isnan(cpu)))[:5])
        assert _same(cpu, _expected(name, a, b)), name
        if name in ("levenshtein", "damerau_levenshtein"):
            for bound in (0, 2):
                got = launch.run_gpu(
                    code, ea.chars, ea.offsets, eb.chars, eb.offsets, valid, bound,
                    threads_per_block=8, max_threads=16,
                )  # fmt: skip
                want = np.where(cpu > bound, bound + 1, cpu)
                assert _same(got, want), (name, bound)
    print("simulator ok")


def test_gpu_launcher_under_cuda_simulator():
    pytest.importorskip("numba.cuda")
    pytest.importorskip("rapidfuzz")
    proc = run_under_cuda_simulator("import tests.test_comparators_gpu as t; t.simulator_main()")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "simulator ok" in proc.stdout


# ---------------------------------------------------------------------------------------------
# (c) A real GPU
# ---------------------------------------------------------------------------------------------


def _need_gpu():
    from gpulink.backend import gpu_status

    ok, reason = gpu_status()
    if not ok:
        pytest.skip(f"no usable GPU: {reason}")


@pytest.mark.gpu
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_gpu_backend_equals_cpu_backend(metric):
    _need_gpu()
    from gpulink import comparators as gc

    a, b = _pairs(20000, seed=5, long_every=40)
    f = getattr(gc, metric)
    cpu = f(a, b, backend="cpu")
    gpu = f(a, b, backend="gpu")
    assert _same(gpu, cpu)
    assert _same(cpu, _expected(metric, a, b))


@pytest.mark.gpu
def test_gpu_small_blocks_and_bounds():
    _need_gpu()
    import cupy as cp

    from gpulink import comparators as gc
    from gpulink.kernels import comparator_launch as launch

    a, b = _pairs(3000, seed=9)
    ea, eb = gc.encode(a), gc.encode(b)
    valid = (ea.valid & eb.valid).astype(np.uint8)
    dev = [cp.asarray(x) for x in (ea.chars, ea.offsets, eb.chars, eb.offsets, valid)]
    for name in METRIC_NAMES:
        code = launch.METRICS[name]
        cpu = launch.run_cpu(code, ea.chars, ea.offsets, eb.chars, eb.offsets, valid, 3)
        gpu = launch.run_gpu(code, *dev, 3, threads_per_block=8, max_threads=64, xp=cp)
        assert _same(cp.asnumpy(gpu), cpu), name
