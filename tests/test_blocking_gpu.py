"""GPU pair kernels: the CUDA simulator (in a subprocess) and PTX for sm_90 against the CPU build."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_under_cuda_simulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Runs under NUMBA_ENABLE_CUDASIM=1 (set before numba is imported, hence the subprocess).
SIM_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from types import SimpleNamespace
    from gpulink.blocking import block_on, build_plan
    from gpulink.kernels.pairs import count_range_cpu, enumerate_range_cpu
    from gpulink.kernels.pairs_gpu import count_range_gpu, enumerate_range_gpu

    rng = np.random.default_rng(5)
    n = 48
    cols = {
        f"c{t}": np.where(rng.random(n) < 0.15, -1, rng.integers(0, card, n)).astype(np.int32)
        for t, card in enumerate((4, 3, 6))
    }
    table = SimpleNamespace(
        n_records=n,
        source_codes=rng.integers(0, 3, n).astype(np.int32),
        source_names=["a", "b", "c"],
        columns={k: SimpleNamespace(codes=v) for k, v in cols.items()},
    )
    rules = [block_on("c0"), block_on("c1", "c2"), block_on("c1")]
    checked = 0
    for link_type in ("dedupe_only", "link_only", "link_and_dedupe"):
        plan = build_plan(table, rules, link_type)
        P = plan.n_candidates
        for p0, p1 in ((0, P), (5, P - 3), (P // 3, P // 3 + 17)):
            for threads, blocks in ((8, 1), (8, 3), (32, 2)):
                c = enumerate_range_cpu(plan, p0, p1)
                g = enumerate_range_gpu(plan, p0, p1, threads=threads, blocks=blocks)
                assert all(np.array_equal(x, y) for x, y in zip(c, g)), (link_type, p0, p1)
                cc = count_range_cpu(plan, p0, p1)
                gc = count_range_gpu(plan, p0, p1, threads=threads, blocks=blocks)
                assert np.array_equal(cc, gc), (link_type, p0, p1, cc, gc)
                checked += 1
    print("OK", checked)
    """
)


def test_gpu_launchers_match_cpu_under_cuda_simulator():
    proc = run_under_cuda_simulator(SIM_SCRIPT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK 27" in proc.stdout


@pytest.mark.parametrize("name", ["count", "enumerate"])
def test_gpu_kernels_compile_to_ptx_for_sm90(name):
    pytest.importorskip("numba.cuda")
    from gpulink.kernels._cuda import SIMULATOR, compile_ptx
    from gpulink.kernels.pairs_gpu import kernel_signature, python_kernel

    if SIMULATOR:
        pytest.skip("PTX compilation is not available under the CUDA simulator")
    ptx, _ = compile_ptx(python_kernel(name), kernel_signature(name), cc=(9, 0))
    assert ".target sm_90" in ptx
    assert "atom." in ptx  # the atomic counters / compaction made it into the kernel


@pytest.mark.gpu
def test_gpu_counts_and_pairs_on_device():
    from gpulink.backend import gpu_status

    ok, why = gpu_status()
    if not ok:
        pytest.skip(why)
    from types import SimpleNamespace

    from gpulink.blocking import block_on, blocked_pairs, build_plan, count_pairs

    rng = np.random.default_rng(11)
    n = 200_000
    table = SimpleNamespace(
        n_records=n,
        source_codes=rng.integers(0, 2, n).astype(np.int32),
        source_names=["a", "b"],
        columns={
            "a": SimpleNamespace(codes=rng.integers(-1, 2000, n).astype(np.int32)),
            "b": SimpleNamespace(codes=rng.integers(-1, 300, n).astype(np.int32)),
        },
    )
    for link_type in ("dedupe_only", "link_only"):
        plan = build_plan(table, [block_on("a"), block_on("b")], link_type)
        assert np.array_equal(count_pairs(plan, backend="gpu"), count_pairs(plan, backend="cpu"))
        g = blocked_pairs(plan, chunk_pairs=1 << 24, backend="gpu")
        c = blocked_pairs(plan, chunk_pairs=1 << 24, backend="cpu")
        assert all(np.array_equal(x, y) for x, y in zip(g, c))
