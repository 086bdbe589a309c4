"""DistanceFunction, ArraySubset and CosineSimilarity levels against Splink 5 + DuckDB.

Oracles: Splink's own library objects (SQL, labels, levels), Splink's full pipeline on DuckDB
(pairs, gammas, match weights, same fixed m/u), and DuckDB's ``array_cosine_similarity`` on the
same vectors (the cosine kernel body, bit for bit). Tables are small and built here to hold the
edge cases (nulls, empty arrays, repeated and null elements, zero / huge / tiny vectors,
float32 vectors, ties at thresholds); fake_1000 is read from ../shared/data.
"""

from __future__ import annotations

import copy
import logging
import math
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import gpulink as gl
import gpulink.comparison_level_library as gcll
import gpulink.comparison_library as gcl
from gpulink.errors import InputError, SettingsError
from gpulink.kernels import program as P
from gpulink.settings import SettingsCreator, compile_program

pd = pytest.importorskip("pandas")
duckdb = pytest.importorskip("duckdb")
splink = pytest.importorskip("splink")
import splink.comparison_level_library as scll  # noqa: E402
import splink.comparison_library as scl  # noqa: E402
from splink import DuckDBAPI, block_on  # noqa: E402

from tests.conftest import run_under_cuda_simulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FUNCTIONS = ["levenshtein", "damerau_levenshtein", "jaro_similarity", "jaro_winkler_similarity"]
SIMILARITIES = {"jaro_similarity", "jaro_winkler_similarity", "jaccard"}


# -- the library objects are Splink's ------------------------------------------------------------

LEVEL_CASES = [
    ("DistanceFunctionLevel", ("name", "levenshtein", 2), {"higher_is_more_similar": False}),
    ("DistanceFunctionLevel", ("name", "levenshtein", 2), {}),
    ("DistanceFunctionLevel", ("lower(name)", "jaro_winkler_similarity", 0.9), {}),
    ("DistanceFunctionLevel", ("name", "jaccard", 0.5), {"higher_is_more_similar": False}),
    ("ArraySubsetLevel", ("arr",), {}),
    ("ArraySubsetLevel", ("arr",), {"empty_is_subset": True}),
    ("CosineSimilarityLevel", ("vec", 0.8), {}),
]
COMPARISON_CASES = [
    ("DistanceFunctionAtThresholds", ("name", "jaro_similarity", [0.9, 0.7]), {}),
    (
        "DistanceFunctionAtThresholds",
        ("name", "damerau_levenshtein", 1),
        {"higher_is_more_similar": False},
    ),
    ("CosineSimilarityAtThresholds", ("vec",), {}),
    ("CosineSimilarityAtThresholds", ("vec", [0.95, 0.5]), {}),
]


@pytest.mark.parametrize("name,args,kwargs", LEVEL_CASES)
def test_level_equals_splink(name, args, kwargs):
    s = getattr(scll, name)(*args, **kwargs).configure(m_probability=0.7)
    g = getattr(gcll, name)(*args, **kwargs).configure(m_probability=0.7)
    expected = s.create_level_dict("duckdb")
    expected.pop("is_null_level")
    assert g.create_level_dict() == expected


@pytest.mark.parametrize("name,args,kwargs", COMPARISON_CASES)
def test_comparison_equals_splink(name, args, kwargs):
    s = getattr(scl, name)(*args, **kwargs)
    g = getattr(gcl, name)(*args, **kwargs)
    n = g.num_non_null_levels
    m = [round(0.9 / (i + 1), 6) for i in range(n)]
    u = [round(0.01 * (i + 1), 6) for i in range(n)]
    for c in (s, g):
        c.configure(term_frequency_adjustments=True, m_probabilities=m, u_probabilities=u)
    got = SettingsCreator("dedupe_only", [g]).get_settings().comparisons[0].to_dict()
    assert got == s.get_comparison("duckdb").as_dict()


def _program(*levels):
    comparison = gcl.CustomComparison([*levels, gcll.ElseLevel()], "x")
    return compile_program(SettingsCreator("dedupe_only", [comparison]).get_settings())


def test_levels_compile_to_existing_leaves_or_a_not_over_them():
    same = _program(gcll.DistanceFunctionLevel("x", "levenshtein", 2, higher_is_more_similar=False))
    assert same.leaf_kind.tolist()[:-1] == [P.LEAF_LEVENSHTEIN_LE]
    assert same.program.tolist()[:1] == [0]
    # levenshtein >= 2 is NOT (levenshtein <= 1.999...)
    other = _program(gcll.DistanceFunctionLevel("x", "levenshtein", 2))
    assert other.leaf_kind.tolist()[:-1] == [P.LEAF_LEVENSHTEIN_LE]
    assert other.leaf_threshold[0] == math.nextafter(2, -math.inf)
    assert other.program.tolist()[:2] == [0, P.OP_NOT]
    # jaro <= 0.8 is NOT (jaro >= nextafter(0.8))
    jaro = _program(gcll.DistanceFunctionLevel("x", "jaro_similarity", 0.8, False))
    assert jaro.leaf_kind.tolist()[:-1] == [P.LEAF_JARO_GE]
    assert jaro.leaf_threshold[0] == math.nextafter(0.8, math.inf)
    subset = _program(gcll.ArraySubsetLevel("x"))
    assert subset.leaf_kind.tolist()[:-1] == [P.LEAF_ARRAY_LEAST_LEN_LE, P.LEAF_ARRAY_SUBSET]
    cosine = _program(gcll.CosineSimilarityLevel("x", 0.5), gcll.CosineSimilarityLevel("x", 0.2))
    assert cosine.leaf_kind.tolist()[:-1] == [P.LEAF_COSINE_GE] * 2
    assert cosine.n_slots == 1  # the similarity is computed once per pair


# -- errors --------------------------------------------------------------------------------------


def test_unsupported_distance_function_names_it_the_column_and_the_choices():
    with pytest.raises(SettingsError) as err:
        gcll.DistanceFunctionLevel("surname", "hamming", 2)
    msg = str(err.value)
    assert "'hamming'" in msg and "'surname'" in msg and "jaro_winkler_similarity" in msg
    with pytest.raises(SettingsError, match="DuckDB spells it 'jaro_similarity'"):
        gcl.DistanceFunctionAtThresholds("surname", "jaro", [0.9])


@pytest.mark.parametrize(
    "make",
    [
        lambda: gcll.DistanceFunctionLevel("x", "jaro_similarity", 1.5),
        lambda: gcll.DistanceFunctionLevel("x", "levenshtein", -1, higher_is_more_similar=False),
        lambda: gcll.DistanceFunctionLevel("x", "levenshtein", "2"),
        lambda: gcll.DistanceFunctionLevel("x", "levenshtein", 2, higher_is_more_similar="no"),
        lambda: gcll.CosineSimilarityLevel("x", 1.2),
        lambda: gcl.CosineSimilarityAtThresholds("x", [0.9, -0.1]),
    ],
)
def test_bad_arguments_are_settings_errors(make):
    with pytest.raises(SettingsError, match="must be"):
        make()


def test_cosine_sql_the_kernel_cannot_run_exactly_is_refused():
    level = gcll.CustomLevel('array_cosine_similarity("v_l", "v_r") > 0.5')
    with pytest.raises(SettingsError, match=">= t"):
        _program(level)
    level = gcll.CustomLevel('array_cosine_similarity("v_l", "v_r") >= 1.5')
    with pytest.raises(SettingsError, match="between -1 and 1"):
        _program(level)


def _predict(table, comparison):
    settings = SettingsCreator(
        "dedupe_only", [comparison], blocking_rules_to_generate_predictions=[block_on("grp")]
    )
    return gl.Linker(table, settings, backend="cpu").inference.predict()


@pytest.mark.parametrize(
    "vectors,match",
    [
        ([[1.0, 2.0], [1.0, 2.0, 3.0]], "length"),
        ([[1.0, None], [1.0, 2.0]], "null element"),
        ([[], []], "length"),
    ],
)
def test_bad_vectors_are_input_errors(vectors, match):
    v = pa.array(vectors, pa.list_(pa.float64()))
    table = pa.table({"unique_id": [1, 2], "grp": [1, 1], "v": v})
    with pytest.raises(InputError, match=f"'v'.*{match}"):
        _predict(table, gcl.CosineSimilarityAtThresholds("v"))


def test_integer_lists_are_no_vectors_and_float_lists_no_arrays():
    ints = pa.table({"unique_id": [1, 2], "grp": [1, 1], "v": [[1, 2], [2, 3]]})
    with pytest.raises(InputError, match="'v'.*cosine similarity"):
        _predict(ints, gcl.CosineSimilarityAtThresholds("v"))
    floats = pa.table({"unique_id": [1, 2], "grp": [1, 1], "v": [[1.0], [2.0]]})
    with pytest.raises(InputError, match="'v'.*array comparison"):
        _predict(floats, gcl.CustomComparison([gcll.ArraySubsetLevel("v"), gcll.ElseLevel()]))


# -- the cosine body is DuckDB's, bit for bit ----------------------------------------------------


def _vector_cases(rng, dim, n):
    out = [rng.normal(size=dim) for _ in range(n)]
    out += [rng.integers(-3, 4, size=dim).astype(float) for _ in range(n)]  # ties, exact values
    out += [np.zeros(dim), np.full(dim, 1e200), np.full(dim, 1e-200), np.full(dim, -1e-310)]
    inf, nan = np.zeros(dim), np.zeros(dim)
    inf[0], nan[-1] = np.inf, np.nan
    big = rng.normal(size=dim) * 1e170
    big[0] = 1e-300
    return out + [inf, nan, big, -big, rng.normal(size=dim) * 1e-160]


@pytest.mark.parametrize("single", [False, True], ids=["DOUBLE", "FLOAT"])
@pytest.mark.parametrize("dim", [1, 3, 40])
def test_cosine_body_equals_duckdb_bit_for_bit(single, dim):
    from gpulink.kernels._targets import cpu
    from gpulink.kernels.numeric import cosine_similarity

    rng = np.random.default_rng(dim)
    vectors = _vector_cases(rng, dim, 12)
    if single:
        vectors += [np.full(dim, 1e30), np.full(dim, 1e-30), rng.normal(size=dim) * 1e-20]
        vectors = [v.astype(np.float32).astype(np.float64) for v in vectors]
    pairs = [(i, j) for i in range(len(vectors)) for j in range(len(vectors))]
    sql_type = f"{'FLOAT' if single else 'DOUBLE'}[{dim}]"
    con = duckdb.connect()
    as_list = pa.list_(pa.float64())  # Arrow keeps NaN elements NaN (pandas would make NULLs)
    con.register(
        "p",
        pa.table({"a": pa.array([vectors[i].tolist() for i, _ in pairs], as_list),
                  "b": pa.array([vectors[j].tolist() for _, j in pairs], as_list)}),
    )  # fmt: skip
    sql = f"select array_cosine_similarity(a::{sql_type}, b::{sql_type})::double as s from p"
    expected = con.execute(sql).fetchnumpy()["s"].astype(np.float64)
    values = np.concatenate(vectors)
    fast = cpu(cosine_similarity)
    for body in (fast, cosine_similarity):  # the CPU build and the Python reference
        got = np.array([body(values, i * dim, j * dim, dim, single) for i, j in pairs])
        same = (got == expected) | (np.isnan(got) & np.isnan(expected))
        assert same.all(), [(pairs[k], got[k], expected[k]) for k in np.flatnonzero(~same)[:5]]
    assert np.isnan(expected).sum() > len(vectors)  # zero / infinite / NaN vectors
    assert (expected == 1.0).sum() > 5  # identical and parallel vectors, clamped


# -- pipeline parity with Splink + DuckDB -------------------------------------------------------


def _with_parameters(settings_dict: dict, seed: int = 0) -> dict:
    """Fixed, distinct m/u on every non-null level; λ = 0.01."""
    d = copy.deepcopy(settings_dict)
    rng = np.random.default_rng(seed)
    for comparison in d["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        m = np.sort(rng.dirichlet(np.ones(len(levels))))[::-1]
        u = np.clip(np.sort(rng.dirichlet(np.full(len(levels), 0.5))), 1e-4, None)
        for level, mm, uu in zip(levels, m, u / u.sum()):
            level["m_probability"] = float(mm)
            level["u_probability"] = float(uu)
    d["probability_two_random_records_match"] = 0.01
    return d


def _assert_same_predictions(table, comparisons, rules):
    creator = scl_settings(comparisons, rules)
    settings = _with_parameters(creator.create_settings_dict("duckdb"))
    db = DuckDBAPI()
    s_linker = splink.Linker(db.register(table), copy.deepcopy(settings), log_level=logging.ERROR)
    expected = s_linker.inference.predict().as_pandas_dataframe()
    got = gl.Linker(table, copy.deepcopy(settings), backend="cpu").inference.predict().to_pandas()
    keys = ["unique_id_l", "unique_id_r"]
    assert len(expected) > 0
    merged = expected.merge(got, on=keys, how="outer", suffixes=("_s", "_g"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"][keys].head()
    gammas = [c for c in expected.columns if c.startswith("gamma_")]
    assert gammas
    for col in gammas + ["match_key"]:
        bad = merged[f"{col}_s"].astype(str) != merged[f"{col}_g"].astype(str)
        assert not bad.any(), merged.loc[bad, keys + [f"{col}_s", f"{col}_g"]].head()
    for col in ["match_weight", "match_probability"]:
        a, b = merged[f"{col}_s"].to_numpy(float), merged[f"{col}_g"].to_numpy(float)
        assert np.allclose(a, b, rtol=0, atol=1e-9), col
    return merged


def scl_settings(comparisons, rules):
    return splink.SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules,
        retain_intermediate_calculation_columns=True,
    )


NAMES = ["anna", "ana", "anne", "hannah", "ann", "nana", "ab", "ba", "abc", "a", None, "anna"]


def _edge_table() -> pa.Table:
    """30 records in one block: names, arrays and vectors full of edge cases."""
    arrays = [[1, 2], [2, 1], [1], [1, 1], [1, 2, 3], [], [], None, [1, None], [None],
              [3, 4], [2], [1, 2, 2], [4, 3, 3], [5]]  # fmt: skip
    vectors = [[3.0, 4.0, 0.0], [4.0, 3.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 2.0],
               [2.0, 4.0, 4.0], [-1.0, -2.0, -2.0], None, [1e200, 1e200, 1e200],
               [1e-200, 0.0, 1e-200], [0.0, 0.0, 5.0], [2.0, 1.0, 2.0], [1.0, 0.0, 0.0],
               [0.6, 0.8, 0.0], [0.8, 0.6, 0.0], [1.0, 1.0, 0.0]]  # fmt: skip
    n = 30
    double = pa.list_(pa.float64(), 3)
    single = pa.list_(pa.float32(), 3)
    return pa.table(
        {
            "unique_id": list(range(1, n + 1)),
            "grp": [1] * n,
            "first_name": [NAMES[i % len(NAMES)] for i in range(n)],
            "surname": [NAMES[(i * 5 + 3) % len(NAMES)] for i in range(n)],
            "arr": pa.array([arrays[i % len(arrays)] for i in range(n)], pa.list_(pa.int64())),
            "vec": pa.array([vectors[(i * 7) % len(vectors)] for i in range(n)], double),
            "vec32": pa.array([vectors[(i * 4) % len(vectors)] for i in range(n)], single),
        }
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_distance_function_levels_equal_splink_on_edge_cases(function):
    if function in SIMILARITIES:
        ts, ts_other = [0.9, 0.8, 0.75], [0.5, 0.0]
    else:
        ts, ts_other = [1, 2], [0, 3]  # higher_is_more_similar=True: distance >= 0 always holds
    comparisons = [
        scl.DistanceFunctionAtThresholds("first_name", function, ts, higher_is_more_similar=(
            function in SIMILARITIES)),
        scl.DistanceFunctionAtThresholds("surname", function, ts_other, higher_is_more_similar=(
            function not in SIMILARITIES)),
    ]  # fmt: skip
    merged = _assert_same_predictions(_edge_table(), comparisons, [block_on("grp")])
    assert merged["gamma_first_name_s"].nunique() >= 4  # null, exact, thresholds, else
    assert merged["gamma_surname_s"].nunique() >= 3


def test_jaccard_distance_function_equals_splink():
    # DuckDB's jaccard refuses empty strings, so the table has none (neither do NAMES)
    comparisons = [
        scl.DistanceFunctionAtThresholds("first_name", "jaccard", [0.9, 0.5]),
        scl.DistanceFunctionAtThresholds("surname", "jaccard", [0.5, 0.25], False),
    ]
    _assert_same_predictions(_edge_table(), comparisons, [block_on("grp")])


def test_array_subset_and_cosine_levels_equal_splink_on_edge_cases():
    comparisons = [
        scl.CustomComparison(
            [
                scll.NullLevel("arr"),
                scll.ArraySubsetLevel("arr"),
                scll.ArraySubsetLevel("arr", empty_is_subset=True),
                scll.ArrayIntersectLevel("arr", 1),
                scll.ElseLevel(),
            ],
            output_column_name="arr",
        ),
        scl.CosineSimilarityAtThresholds("vec", [0.96, 0.9, 0.5, 0.0]),
        scl.CosineSimilarityAtThresholds("vec32", [0.96, 0.9, 0.5]),
    ]
    merged = _assert_same_predictions(_edge_table(), comparisons, [block_on("grp")])
    assert merged["gamma_arr_s"].nunique() == 5
    assert merged["gamma_vec_s"].nunique() == 6
    assert merged["gamma_vec32_s"].nunique() == 5


def test_new_levels_equal_splink_on_fake_1000(fake_1000):
    df = fake_1000.copy()
    # derived columns: name tokens as arrays, date parts as vectors
    tokens = []
    for fn, sn in zip(df["first_name"], df["surname"]):
        parts = [p for p in (fn, sn) if isinstance(p, str)]
        tokens.append(parts if parts else None)
    dob = pd.to_datetime(df["dob"], errors="coerce")
    vecs = [None if pd.isna(d) else [float(d.year - 1900), float(d.month), float(d.day)]
            for d in dob]  # fmt: skip
    table = pa.Table.from_pandas(df, preserve_index=False).append_column(
        "tokens", pa.array(tokens, pa.list_(pa.string()))
    )
    table = table.append_column("dob_vec", pa.array(vecs, pa.list_(pa.float64(), 3)))
    table = table.append_column("dob_vec32", pa.array(vecs, pa.list_(pa.float32(), 3)))
    comparisons = [
        scl.DistanceFunctionAtThresholds("first_name", "jaro_winkler_similarity", [0.9, 0.7]),
        scl.DistanceFunctionAtThresholds("surname", "levenshtein", [1, 3], False),
        scl.DistanceFunctionAtThresholds("city", "jaro_similarity", [0.7, 0.5], False),
        scl.DistanceFunctionAtThresholds("email", "damerau_levenshtein", [5, 10]),
        scl.CustomComparison(
            [scll.NullLevel("tokens"), scll.ArraySubsetLevel("tokens"), scll.ElseLevel()],
            output_column_name="tokens",
        ),
        scl.CosineSimilarityAtThresholds("dob_vec", [0.9999, 0.999, 0.99]),
        scl.CosineSimilarityAtThresholds("dob_vec32", [0.9999, 0.999]),
    ]
    rules = [block_on("substr(first_name, 1, 2)"), block_on("surname"), block_on("dob")]
    merged = _assert_same_predictions(table, comparisons, rules)
    assert len(merged) > 1000
    for col in [c for c in merged.columns if c.startswith("gamma_") and c.endswith("_s")]:
        assert merged[col].nunique() >= 3, col


# -- GPU: PTX for sm_90 and the CUDA simulator -------------------------------------------------


def test_gammas_kernel_with_the_new_leaves_compiles_to_ptx_for_sm90():
    from gpulink.kernels._cuda import SIMULATOR, compile_ptx
    from gpulink.kernels.score_gpu import kernel_signature, python_kernel

    if SIMULATOR:
        pytest.skip("PTX compilation is not available under the CUDA simulator")
    ptx, _ = compile_ptx(python_kernel("gammas"), kernel_signature("gammas"), cc=(9, 0))
    assert ".target sm_90" in ptx
    assert "fma.rn.f64" in ptx  # the cosine sums' fused multiply-add (libdevice's fma)


SIM_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import gpulink as gl
    import gpulink.comparison_library as cl
    import gpulink.comparison_level_library as cll
    from gpulink.kernels.pairs import enumerate_range_cpu
    from gpulink.kernels.score_gpu import gammas_of_pairs_gpu
    from test_more_levels import _edge_table

    settings = gl.SettingsCreator(
        "dedupe_only",
        [
            cl.DistanceFunctionAtThresholds("first_name", "levenshtein", [1, 2]),
            cl.DistanceFunctionAtThresholds("surname", "jaro_similarity", [0.8, 0.5], False),
            cl.CustomComparison(
                [cll.NullLevel("arr"), cll.ArraySubsetLevel("arr"),
                 cll.ArraySubsetLevel("arr", True), cll.ElseLevel()], "arr"),
            cl.CosineSimilarityAtThresholds("vec", [0.96, 0.5]),
            cl.CosineSimilarityAtThresholds("vec32", [0.96, 0.5]),
        ],
        blocking_rules_to_generate_predictions=[gl.block_on("grp")],
    )
    linker = gl.Linker(_edge_table(), settings, backend="cpu")
    scorer = linker._scorer(linker.settings.blocking_rules)
    plan = scorer.plan()
    left, right, _ = enumerate_range_cpu(plan, 0, plan.n_candidates)
    cpu = scorer.gammas_of_pairs(left, right)
    gpu = gammas_of_pairs_gpu(scorer, left, right, threads=8, blocks=3)
    assert np.array_equal(cpu, gpu), np.argwhere(cpu != gpu)[:5]
    assert all(len(np.unique(cpu[:, c])) >= 3 for c in range(cpu.shape[1]))
    print("OK", len(left))
    """
)


def test_new_leaves_on_gpu_equal_cpu_under_cuda_simulator():
    proc = run_under_cuda_simulator(SIM_SCRIPT, str(ROOT / "tests"))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-6000:]
    assert "OK 435" in proc.stdout, proc.stdout


def test_library_names_are_all_splinks():
    for splink_lib, ours in ((scl, gcl), (scll, gcll)):
        names = [n for n in dir(splink_lib) if n[0].isupper()]
        assert [n for n in names if not hasattr(ours, n)] == []
