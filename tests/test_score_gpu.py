"""GPU launchers of the fused pass (score, pattern histogram, gammas of pairs) against the CPU.

Three ways: the CUDA simulator (in a subprocess, since NUMBA_ENABLE_CUDASIM must be set before
numba is imported) with 8-thread blocks so tiny inputs cross block boundaries; PTX for sm_90 of
every kernel with the argument types the host wrappers launch them with; and, marked ``gpu``,
the same comparisons on a real device. The oracle is the CPU build of the same bodies
(:class:`gpulink.predict.Scorer`), itself tested against rapidfuzz / DuckDB / Splink elsewhere.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import run_under_cuda_simulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# A model with every comparator family the fused kernel interprets: Jaro-Winkler, Levenshtein,
# exact with TF, DateOfBirthComparison (string dates: Levenshtein/Jaro-Winkler/abs date
# difference levels), EmailComparison (exact, substr/regex-derived columns, Jaro-Winkler).
# m/u are fixed at seeded random values so that every level has a distinct weight.
MODEL = textwrap.dedent(
    """
    import numpy as np
    import pandas as pd
    import gpulink as gl
    import gpulink.comparison_library as cl


    def build_scorer(csv, n_records=60, link_type="dedupe_only"):
        df = pd.read_csv(csv).head(n_records)
        if link_type != "dedupe_only":
            df["source_dataset"] = np.where(df["unique_id"] % 3 == 0, "a", "b")
            df = [df[df.source_dataset == "a"].drop(columns="source_dataset"),
                  df[df.source_dataset == "b"].drop(columns="source_dataset")]
        settings = gl.SettingsCreator(
            link_type=link_type,
            comparisons=[
                cl.JaroWinklerAtThresholds("first_name", [0.9, 0.7]),
                cl.LevenshteinAtThresholds("surname", [1, 2]),
                cl.ExactMatch("city").configure(term_frequency_adjustments=True),
                cl.DateOfBirthComparison("dob", input_is_string=True),
                cl.EmailComparison("email"),
            ],
            blocking_rules_to_generate_predictions=[
                gl.block_on("cluster"), gl.block_on("substr(surname,1,1)"),
            ],
        )
        linker = gl.Linker(df, settings, backend="cpu", set_up_basic_logging=False)
        rng = np.random.default_rng(3)
        for comparison in linker.settings.comparisons:
            for level in comparison.levels:
                if not level.is_null_level:
                    level.m_probability = float(rng.uniform(0.05, 0.9))
                    level.u_probability = float(rng.uniform(0.001, 0.5))
        scorer = linker._scorer(linker.settings.blocking_rules)
        return scorer, scorer.plan()


    def cpu_histogram(scorer, plan, p0, p1, radix):
        from gpulink.kernels.pairs import plan_arrays
        from gpulink.kernels.score import launcher

        hist = np.zeros((3, int(np.prod(radix))), np.int64)
        launcher("gamma_histogram_range")(
            np.int64(p0), np.int64(p1), 3, radix,
            *plan_arrays(plan), *scorer.prog.arrays(), *scorer._packed_args(),
            scorer.prog.n_slots, scorer.scratch_ints, hist,
        )
        return hist.sum(axis=0)


    def assert_scored_equal(cpu, gpu, keep_gammas, where):
        for field in ("left", "right", "match_key"):
            assert np.array_equal(getattr(cpu, field), getattr(gpu, field)), (field, where)
        assert cpu.left.dtype == gpu.left.dtype and cpu.match_weight.dtype == gpu.match_weight.dtype
        np.testing.assert_allclose(gpu.match_weight, cpu.match_weight, rtol=0, atol=1e-12)
        if keep_gammas:
            assert np.array_equal(cpu.gammas, gpu.gammas), where
        else:
            assert gpu.gammas is None
    """
)

SIM_SCRIPT = MODEL + textwrap.dedent(
    """
    import sys
    from gpulink.kernels.pairs import enumerate_range_cpu
    from gpulink.kernels.score_gpu import (
        gamma_histogram_gpu, gammas_of_pairs_gpu, score_range_gpu,
    )

    checked = 0
    for link_type in ("dedupe_only", "link_only"):
        scorer, plan = build_scorer(sys.argv[1], link_type=link_type)
        P = plan.n_candidates
        assert P > 48, P  # more pair indices than 2-3 blocks of 8 threads: blocks stride
        radix = np.array([c.num_levels + 1 for c in scorer.settings.comparisons], np.int64)
        median = float(np.median(scorer.score_range(plan, 0, P, -np.inf, keep_gammas=False).match_weight))
        for p0, p1 in ((0, P), (7, P - 5)):
            for threads, blocks in ((8, 3), (8, 2)):
                for threshold, keep in ((-np.inf, True), (median, False), (median, True)):
                    cpu = scorer.score_range(plan, p0, p1, threshold, keep_gammas=keep)
                    gpu = score_range_gpu(
                        scorer, plan, p0, p1, threshold, keep_gammas=keep,
                        threads=threads, blocks=blocks,
                    )
                    assert_scored_equal(cpu, gpu, keep, (link_type, p0, p1, threshold))
                    checked += 1
                hist = gamma_histogram_gpu(scorer, plan, p0, p1, radix, threads=threads, blocks=blocks)
                assert np.array_equal(hist, cpu_histogram(scorer, plan, p0, p1, radix))
                assert hist.sum() == len(enumerate_range_cpu(plan, p0, p1)[0])
                checked += 1
        # the global-atomic histogram (models with more patterns than fit in shared memory)
        import gpulink.kernels.score_gpu as sg
        saved, sg.SHARED_BINS = sg.SHARED_BINS, 0
        try:
            hist = gamma_histogram_gpu(scorer, plan, 0, P, radix, threads=8, blocks=3)
        finally:
            sg.SHARED_BINS = saved
        assert np.array_equal(hist, cpu_histogram(scorer, plan, 0, P, radix))
        left, right, _ = enumerate_range_cpu(plan, 0, P)
        g = gammas_of_pairs_gpu(scorer, left, right, threads=8, blocks=3)
        assert np.array_equal(g, scorer.gammas_of_pairs(left, right))
        assert (g >= -1).all() and len(np.unique(g, axis=0)) > 5  # a varied set of patterns
        # a selection of comparisons (u estimation scores only the pending ones)
        which = [len(radix) - 1, 0]
        sub = gammas_of_pairs_gpu(scorer, left, right, scorer.prog.select(which), threads=8,
                                  blocks=3)  # fmt: skip
        assert np.array_equal(sub, g[:, which])
        # empty ranges
        assert len(score_range_gpu(scorer, plan, 5, 5, 0.0, keep_gammas=True).left) == 0
        assert gamma_histogram_gpu(scorer, plan, 5, 5, radix).sum() == 0
        assert gammas_of_pairs_gpu(scorer, left[:0], right[:0]).shape == (0, len(radix))
        checked += 3
    print("OK", checked)
    """
)


def _need_data():
    if not (DATA / "fake_1000.csv").exists():
        pytest.skip(f"reference data not found at {DATA} (../shared/data of the checkout)")


def test_gpu_launchers_match_cpu_under_cuda_simulator():
    _need_data()
    proc = run_under_cuda_simulator(SIM_SCRIPT, str(DATA / "fake_1000.csv"))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-6000:]
    # 2 link types x 2 ranges x 2 grids x (3 score + 1 histogram) + 2 x 3 extras
    assert "OK 38" in proc.stdout, proc.stdout


@pytest.mark.parametrize("name", ["score", "histogram_shared", "histogram_global", "gammas"])
def test_gpu_kernels_compile_to_ptx_for_sm90(name):
    from gpulink.kernels._cuda import SIMULATOR, compile_ptx
    from gpulink.kernels.score_gpu import kernel_signature, python_kernel

    if SIMULATOR:
        pytest.skip("PTX compilation is not available under the CUDA simulator")
    ptx, _ = compile_ptx(python_kernel(name), kernel_signature(name), cc=(9, 0))
    assert ".target sm_90" in ptx
    assert ".entry" in ptx
    if name == "score":
        assert "atom.shared" in ptx and "atom.global" in ptx  # block-level compaction
        assert "bar.sync" in ptx
    if name == "histogram_shared":
        assert "atom.shared" in ptx and "atom.global" in ptx
    if name == "histogram_global":
        assert "atom.global" in ptx and "atom.shared" not in ptx


def test_model_beyond_kernel_caps_is_a_settings_error():
    from gpulink.errors import SettingsError
    from gpulink.kernels.score_gpu import MAX_COMPARISONS, MAX_SLOTS, _check_caps

    ok = SimpleNamespace(prog=SimpleNamespace(n_slots=3), program=SimpleNamespace(n_comparisons=6))
    _check_caps(ok)
    too_many_slots = SimpleNamespace(
        prog=SimpleNamespace(n_slots=MAX_SLOTS + 1), program=SimpleNamespace(n_comparisons=6)
    )
    with pytest.raises(SettingsError, match="backend='cpu'"):
        _check_caps(too_many_slots)
    too_many = SimpleNamespace(
        prog=SimpleNamespace(n_slots=1), program=SimpleNamespace(n_comparisons=MAX_COMPARISONS + 1)
    )
    with pytest.raises(SettingsError, match="comparisons"):
        _check_caps(too_many)


def test_launch_shape_caps_grid_by_blocks_and_scratch():
    from gpulink.kernels.score_gpu import MAX_BLOCKS, SCRATCH_BUDGET_BYTES, launch_shape

    assert launch_shape(10, 1, 8, None) == (2, 8)
    assert launch_shape(10, 1, 8, 3) == (3, 8)
    assert launch_shape(1 << 40, 1, 256, None) == (MAX_BLOCKS, 256)
    blocks, threads = launch_shape(1 << 40, 10_000, 256, None)
    assert blocks * threads * 10_000 * 4 <= SCRATCH_BUDGET_BYTES and blocks >= 1


def test_chunk_pairs_for_budget_and_fixed_part_check():
    from gpulink.device import check_fits, chunk_pairs_for_budget
    from gpulink.errors import DeviceMemoryError

    assert chunk_pairs_for_budget(28, 28 * 1000 + 500, 500) == 1000
    assert chunk_pairs_for_budget(40, 1 << 30, 1 << 28) == ((1 << 30) - (1 << 28)) // 40
    with pytest.raises(DeviceMemoryError, match="record table and dictionaries need 2,048 MiB"):
        chunk_pairs_for_budget(28, 1 << 30, 2 << 30)
    with pytest.raises(DeviceMemoryError, match="no room for even one pair"):
        chunk_pairs_for_budget(1000, 1000, 500)
    with pytest.raises(DeviceMemoryError, match="backend='cpu'"):
        check_fits(100, 100, "the dictionaries")
    with pytest.raises(ValueError):
        chunk_pairs_for_budget(0, 100, 0)


def test_device_memory_guard_wraps_out_of_memory_only():
    from gpulink.device import device_memory_guard
    from gpulink.errors import DeviceMemoryError

    class CudaAPIError(Exception):
        pass

    with pytest.raises(DeviceMemoryError, match="while scoring 5 pairs.*chunk_pairs"):
        with device_memory_guard("scoring 5 pairs"):
            raise CudaAPIError("[2] Call to cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY")
    with pytest.raises(KeyError):  # anything else passes through untouched
        with device_memory_guard("scoring"):
            raise KeyError("x")


def test_device_module_without_cupy_says_how_to_fix(monkeypatch):
    import gpulink.device as device
    from gpulink.errors import BackendUnavailable

    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(BackendUnavailable, match=r"gpulink\[gpu\]"):
        device.memory_budget()


# --------------------------------------------------------------------------------------------
# Real device
# --------------------------------------------------------------------------------------------


def _need_gpu():
    from gpulink.backend import gpu_status

    ok, why = gpu_status()
    if not ok:
        pytest.skip(why)


@pytest.mark.gpu
def test_gpu_score_histogram_gammas_equal_cpu_on_device():
    _need_data()
    _need_gpu()
    namespace: dict = {}
    exec(MODEL, namespace)  # noqa: S102 - the shared model source above, not user input
    from gpulink.kernels.pairs import enumerate_range_cpu
    from gpulink.kernels.score_gpu import gamma_histogram_gpu, gammas_of_pairs_gpu, score_gpu

    for link_type in ("dedupe_only", "link_only"):
        scorer, plan = namespace["build_scorer"](
            str(DATA / "fake_1000.csv"), n_records=1000, link_type=link_type
        )
        P = plan.n_candidates
        for threshold, keep in ((-np.inf, True), (0.0, False)):
            cpu = scorer.score(threshold, keep_gammas=keep, plan=plan)
            gpu = score_gpu(scorer, threshold, keep_gammas=keep, plan=plan, chunk_pairs=4099)
            namespace["assert_scored_equal"](cpu, gpu, keep, (link_type, threshold))
        radix = np.array([c.num_levels + 1 for c in scorer.settings.comparisons], np.int64)
        hist = gamma_histogram_gpu(scorer, plan, 0, P, radix)
        assert np.array_equal(hist, namespace["cpu_histogram"](scorer, plan, 0, P, radix))
        left, right, _ = enumerate_range_cpu(plan, 0, P)
        assert np.array_equal(
            gammas_of_pairs_gpu(scorer, left, right), scorer.gammas_of_pairs(left, right)
        )


@pytest.mark.gpu
def test_memory_budget_on_device():
    _need_gpu()
    from gpulink.device import memory_budget

    assert 0 < memory_budget(0.5) <= memory_budget(1.0)
