"""The GPU connected-components kernels: CUDA simulator (in a subprocess, 8-thread blocks so
that tiny graphs cross blocks), PTX for sm_90 without a GPU, and real-device tests (``gpu``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_under_cuda_simulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SIMULATOR_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from gpulink.kernels.components import connected_components_cpu
    from gpulink.kernels.components_gpu import connected_components_gpu

    rng = np.random.default_rng(0)
    chain = np.arange(39)
    cases = [
        (0, np.array([], int), np.array([], int)),
        (5, np.array([], int), np.array([], int)),
        (40, chain, chain + 1),                          # a chain crossing 5 blocks
        (40, chain[::-1] + 1, chain[::-1]),
        (40, np.full(39, 39), np.arange(39)),            # star hooked at the largest id
        (12, np.arange(12), np.arange(12)),              # self loops
        (10, np.array([3, 3, 4, 3, 9]), np.array([4, 4, 3, 4, 0])),  # duplicates
    ]
    for seed in range(4):
        r = np.random.default_rng(seed)
        cases.append((60, r.integers(0, 60, 45), r.integers(0, 60, 45)))
        cases.append((30, r.integers(0, 30, 90), r.integers(0, 30, 90)))
    bad = 0
    for n, el, er in cases:
        cpu = connected_components_cpu(n, el, er)
        gpu = connected_components_gpu(n, el, er, threads_per_block=8)
        if cpu.tolist() != gpu.tolist():
            bad += 1
            print("MISMATCH", n, el.tolist(), er.tolist(), cpu.tolist(), gpu.tolist())
    # int64 device arrays passed straight through are re-typed like host ones
    print("CASES", len(cases), "BAD", bad)
    """
)


def test_gpu_kernels_under_the_cuda_simulator_equal_the_cpu():
    proc = run_under_cuda_simulator(SIMULATOR_SCRIPT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BAD 0" in proc.stdout, proc.stdout[-3000:]


def test_gpu_kernels_compile_to_ptx_for_sm90():
    pytest.importorskip("numba.cuda")
    from gpulink.kernels.components_gpu import compile_ptx_for

    try:
        ptx = compile_ptx_for((9, 0))
    except Exception as exc:  # no NVVM/NVRTC in this environment
        pytest.skip(f"the CUDA compiler is not usable here: {exc}")
    assert set(ptx) == {"union_int32", "union_int64", "label_int32", "label_int64"}
    for name, text in ptx.items():
        assert ".target sm_90" in text, name
    assert "atom.global.cas.b32" in ptx["union_int32"]
    assert "atom.global.cas.b64" in ptx["union_int64"]


def _real_gpu():
    from gpulink.backend import gpu_status

    ok, reason = gpu_status()
    if not ok:
        pytest.skip(f"no usable GPU: {reason}")


@pytest.mark.gpu
def test_real_gpu_equals_cpu_on_large_random_graphs():
    _real_gpu()
    from gpulink.kernels.components import connected_components_cpu
    from gpulink.kernels.components_gpu import connected_components_gpu

    rng = np.random.default_rng(1)
    for n, e in [(1000, 800), (2_000_000, 1_500_000), (1_000_000, 5_000_000)]:
        el, er = rng.integers(0, n, e), rng.integers(0, n, e)
        assert (connected_components_gpu(n, el, er) == connected_components_cpu(n, el, er)).all()
    chain = np.arange(1_000_000 - 1)
    assert (connected_components_gpu(1_000_000, chain[::-1] + 1, chain[::-1]) == 0).all()


@pytest.mark.gpu
def test_real_gpu_clustering_equals_cpu_clustering():
    _real_gpu()
    import pyarrow as pa

    from gpulink.clustering import cluster_at_threshold

    rng = np.random.default_rng(2)
    n, e = 100_000, 120_000
    uid = pa.array(rng.permutation(10 * n)[:n])
    el, er, mp = rng.integers(0, n, e), rng.integers(0, n, e), rng.random(e)
    cpu = cluster_at_threshold(uid, el, er, mp, threshold_match_probability=0.3, backend="cpu")
    gpu = cluster_at_threshold(uid, el, er, mp, threshold_match_probability=0.3, backend="gpu")
    assert cpu.equals(gpu)
