"""PairwiseStringDistanceFunctionLevel / AtThresholds against Splink 5 + DuckDB.

Oracles: Splink's own library objects (SQL to the whitespace, labels, descriptions), DuckDB's
``list_min`` / ``list_max`` over ``list_transform`` (the SQL Splink generates) on every pair of
an adversarial set of arrays (the kernel body, value for value), and Splink's full pipeline on
DuckDB (pairs, gammas, match_key, weights) on a 30-record edge table and on fake_1000.

Splink writes the level with DuckDB's single-arrow lambdas (``x -> ...``), which DuckDB 1.3+
refuses unless ``SET lambda_syntax='ENABLE_SINGLE_ARROW'``: the oracle runs on such a
connection (without it, Splink 5 cannot run these levels on DuckDB 2 at all).
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
from gpulink.kernels._cuda import cuda  # no GPU is touched: _pairwise_launcher names it
from gpulink.kernels.compare import pairwise_string_metric
from gpulink.settings import SettingsCreator, compile_program

pd = pytest.importorskip("pandas")
duckdb = pytest.importorskip("duckdb")
splink = pytest.importorskip("splink")
import splink.comparison_level_library as scll  # noqa: E402
import splink.comparison_library as scl  # noqa: E402
from splink import DuckDBAPI, block_on  # noqa: E402

from tests.conftest import run_under_cuda_simulator  # noqa: E402
from tests.test_more_levels import _with_parameters  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ["levenshtein", "damerau_levenshtein", "jaro", "jaro_winkler"]
DUCKDB_NAME = {
    "levenshtein": "levenshtein",
    "damerau_levenshtein": "damerau_levenshtein",
    "jaro": "jaro_similarity",
    "jaro_winkler": "jaro_winkler_similarity",
}
SIMILARITIES = {"jaro", "jaro_winkler"}
THRESHOLDS = {
    "levenshtein": [1, 2, 5],
    "damerau_levenshtein": [1, 2, 4],
    "jaro": [0.9, 0.8, 0.6],
    "jaro_winkler": [0.95, 0.85, 0.7],
}

LONG = "abcdefghij" * 7  # 70 code points: past the 64-bit fast paths
LONG_EDIT = LONG[:20] + "XY" + LONG[22:50] + LONG[51:] + "z"

#: Arrays full of edge cases: empty arrays, NULL arrays, NULL elements (alone and mixed),
#: repeated elements, empty strings, non-ASCII (accents, CJK, an emoji), long strings,
#: transpositions, ties.
ARRAYS = [
    ["anna", "bob"],
    ["ana"],
    ["bob", "anna"],
    [],
    None,
    [None],
    [None, "bobby"],
    ["anna", "anna"],
    [""],
    ["", "x"],
    ["jöhn"],
    ["john", None, "jon"],
    ["日本語"],
    ["日本", "にほん"],
    ["😀smith"],
    ["smith", "smyth"],
    [LONG],
    [LONG_EDIT, "abc"],
    ["ab", "ba"],
    ["ba"],
    ["abc", None, "abd"],
    ["martha", "marhta"],
    ["dwayne"],
    ["duane", "dwane"],
    ["dixon"],
    ["dicksonx"],
    ["jellyfish", ""],
    ["smellyfish"],
    [None, None],
    ["a", "b", "a"],
]


def _duckdb():
    con = duckdb.connect()
    con.execute("SET lambda_syntax='ENABLE_SINGLE_ARROW'")
    return con


# -- the library objects are Splink's ------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("column", ["names", "lower_names", "my col"])
def test_level_equals_splink(function, column):
    t = THRESHOLDS[function][1]
    s = scll.PairwiseStringDistanceFunctionLevel(column, function, t).configure(m_probability=0.7)
    g = gcll.PairwiseStringDistanceFunctionLevel(column, function, t).configure(m_probability=0.7)
    expected = s.create_level_dict("duckdb")
    expected.pop("is_null_level")
    assert g.create_level_dict() == expected


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("n_thresholds", [1, 3])
def test_comparison_equals_splink(function, n_thresholds):
    ts = THRESHOLDS[function][:n_thresholds]
    s = scl.PairwiseStringDistanceFunctionAtThresholds("names", function, ts)
    g = gcl.PairwiseStringDistanceFunctionAtThresholds("names", function, ts)
    n = g.num_non_null_levels
    m = [round(0.9 / (i + 1), 6) for i in range(n)]
    u = [round(0.01 * (i + 1), 6) for i in range(n)]
    for c in (s, g):
        c.configure(m_probabilities=m, u_probabilities=u)
    got = SettingsCreator("dedupe_only", [g]).get_settings().comparisons[0].to_dict()
    assert got == s.get_comparison("duckdb").as_dict()
    assert g.create_description() == s.create_description()


def _program(*levels):
    comparison = gcl.CustomComparison([*levels, gcll.ElseLevel()], "x")
    return compile_program(SettingsCreator("dedupe_only", [comparison]).get_settings())


@pytest.mark.parametrize(
    "function,kind",
    [
        ("levenshtein", P.LEAF_PAIRWISE_LEV_LE),
        ("damerau_levenshtein", P.LEAF_PAIRWISE_DAMERAU_LE),
        ("jaro", P.LEAF_PAIRWISE_JARO_GE),
        ("jaro_winkler", P.LEAF_PAIRWISE_JW_GE),
    ],
)
def test_thresholds_share_one_metric_slot(function, kind):
    ts = THRESHOLDS[function]
    p = _program(*[gcll.PairwiseStringDistanceFunctionLevel("x", function, t) for t in ts])
    assert p.leaf_kind.tolist()[:-1] == [kind] * len(ts)
    assert p.leaf_threshold.tolist()[:-1] == [float(t) for t in ts]
    assert len(set(p.leaf_metric.tolist()[:-1])) == 1  # computed once per pair


def _custom_sql(function: str, op: str, t) -> str:
    """Splink's SQL for the level with its comparison operator replaced by ``op``."""
    sql = (
        scll.PairwiseStringDistanceFunctionLevel("x", function, t)
        .get_comparison_level("duckdb")
        .sql_condition
    )
    default = ">=" if function in SIMILARITIES else "<="
    head, tail = sql.rsplit(f") {default} ", 1)
    return f"{head}) {op} {tail}"


def test_other_directions_are_a_not_over_the_leaf():
    lev = _program(gcll.CustomLevel(_custom_sql("levenshtein", ">", 2)))
    assert lev.leaf_kind.tolist()[:-1] == [P.LEAF_PAIRWISE_LEV_LE]
    assert lev.program.tolist()[:2] == [0, P.OP_NOT]  # > 2 is NOT (<= 2)
    jaro = _program(gcll.CustomLevel(_custom_sql("jaro", "<=", 0.8)))
    assert jaro.leaf_threshold[0] == math.nextafter(0.8, math.inf)
    assert jaro.program.tolist()[:2] == [0, P.OP_NOT]  # <= 0.8 is NOT (>= 0.8+)


# -- errors --------------------------------------------------------------------------------------


def test_unknown_function_names_the_column_the_value_and_the_choices():
    with pytest.raises(SettingsError) as err:
        gcll.PairwiseStringDistanceFunctionLevel("aliases", "jaccard", 0.5)
    msg = str(err.value)
    assert "'jaccard'" in msg and "'aliases'" in msg and "'jaro_winkler'" in msg
    with pytest.raises(SettingsError, match="spells it 'jaro_winkler'"):
        gcl.PairwiseStringDistanceFunctionAtThresholds("aliases", "jaro_winkler_similarity", 0.9)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gcll.PairwiseStringDistanceFunctionLevel("x", "levenshtein", "2"),
        lambda: gcll.PairwiseStringDistanceFunctionLevel("x", "levenshtein", None),
        lambda: gcll.PairwiseStringDistanceFunctionLevel("x", "levenshtein", -1),
        lambda: gcll.PairwiseStringDistanceFunctionLevel("x", "jaro", 1.5),
        lambda: gcl.PairwiseStringDistanceFunctionAtThresholds("x", "jaro", [0.9, -0.1]),
        lambda: gcl.PairwiseStringDistanceFunctionAtThresholds("x", "levenshtein", [1, "2"]),
    ],
)
def test_bad_thresholds_are_settings_errors(make):
    with pytest.raises(SettingsError, match="'distance_threshold' must be"):
        make()


def test_sql_the_kernel_cannot_run_is_refused_with_a_reason():
    # the greatest distance over pairs is not what the level computes
    sql = _custom_sql("levenshtein", "<=", 2).replace("list_min", "list_max")
    with pytest.raises(SettingsError, match="most similar pair"):
        _program(gcll.CustomLevel(sql))
    # a similarity threshold past 1
    sql = _custom_sql("jaro", ">=", 0.8).replace(">= 0.8", ">= 1.5")
    with pytest.raises(SettingsError, match="between 0 and 1"):
        _program(gcll.CustomLevel(sql))


def _predict(table, comparison):
    settings = SettingsCreator(
        "dedupe_only", [comparison], blocking_rules_to_generate_predictions=[block_on("grp")]
    )
    return gl.Linker(table, settings, backend="cpu").inference.predict()


def test_columns_that_are_no_lists_of_strings_are_input_errors():
    comparison = gcl.PairwiseStringDistanceFunctionAtThresholds("v", "levenshtein", [1])
    ints = pa.table({"unique_id": [1, 2], "grp": [1, 1], "v": [[1, 2], [2, 3]]})
    with pytest.raises(InputError, match="'v' holds lists of int64.*lists of strings"):
        _predict(ints, comparison)
    strings = pa.table({"unique_id": [1, 2], "grp": [1, 1], "v": ["ab", "ac"]})
    with pytest.raises(InputError, match="'v'.*array comparison"):
        _predict(strings, comparison)


# -- the kernel body is DuckDB's, pair for pair --------------------------------------------------


def _duckdb_pairwise(function: str, arrays: list) -> np.ndarray:
    """DuckDB's value of Splink's pairwise expression for every ordered pair (NaN: NULL)."""
    aggregate = "list_max" if function in SIMILARITIES else "list_min"
    sql = (
        scll.PairwiseStringDistanceFunctionLevel("a", function, 0)
        .get_comparison_level("duckdb")
        .sql_condition
    )
    expression = sql.rsplit(")", 1)[0] + ")"  # the aggregate, without "<= 0"
    assert expression.lstrip().startswith(aggregate)
    n = len(arrays)
    pairs = pa.table(
        {
            "a_l": pa.array([arrays[i] for i in range(n) for _ in range(n)], pa.list_(pa.string())),
            "a_r": pa.array([arrays[j] for _ in range(n) for j in range(n)], pa.list_(pa.string())),
        }
    )
    con = _duckdb()
    con.register("pairs", pairs)
    values = con.execute(f"select ({expression})::double as v from pairs").fetchnumpy()["v"]
    return np.asarray(np.ma.filled(values, np.nan), dtype=np.float64).reshape(n, n)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_pairwise_body_equals_duckdb(function):
    from gpulink.kernels._targets import cpu
    from gpulink.kernels.compare import pack_columns, scratch_size
    from gpulink.kernels.strings import PATTERN_TABLE_INTS
    from gpulink.levels import condition_to_predicate
    from gpulink.table import encode_records

    expected = _duckdb_pairwise(function, ARRAYS)
    n = len(ARRAYS)
    data = pa.table({"unique_id": list(range(n)), "a": pa.array(ARRAYS, pa.list_(pa.string()))})
    table = encode_records(data, [])
    table.ensure_columns({"a": "array"})
    packed = pack_columns(table, ["a"])
    kind = condition_to_predicate(
        scll.PairwiseStringDistanceFunctionLevel("a", function, 1)
        .get_comparison_level("duckdb")
        .sql_condition
    ).kind
    scratch = np.zeros(max(scratch_size(packed), PATTERN_TABLE_INTS), np.int32)
    codes = packed.codes[0]
    uid = table.unique_id.to_numpy()
    fast = cpu(pairwise_string_metric)
    for body in (fast, pairwise_string_metric):  # the CPU build and the Python reference
        with np.errstate(over="ignore"):  # uint64 bit tricks wrap on purpose in Python too
            got = _all_pairs(body, kind, -1.0, packed, codes, uid, scratch)
        same = (got == expected) | (np.isnan(got) & np.isnan(expected))
        bad = np.argwhere(~same)
        assert not len(bad), [(ARRAYS[i], ARRAYS[j], got[i, j], expected[i, j]) for i, j in bad[:5]]
    assert np.isnan(expected).sum() > 4 * n  # empty, NULL and NULL-element-only arrays
    assert len(np.unique(expected[~np.isnan(expected)])) > 8


def _all_pairs(body, kind, bound, packed, codes, uid, scratch):
    """``body`` on every ordered pair of non-null arrays of column 0, indexed by unique id."""
    n = len(codes)
    got = np.full((n, n), np.nan)
    base = packed.arr_base[0]
    for i in range(n):
        for j in range(n):
            ci, cj = codes[i], codes[j]
            if ci < 0 or cj < 0:
                continue  # a NULL array: the leaf is UNKNOWN before the body runs
            got[uid[i], uid[j]] = body(
                kind, bound,
                packed.arr_offsets[base + ci], packed.arr_offsets[base + ci + 1],
                packed.arr_offsets[base + cj], packed.arr_offsets[base + cj + 1],
                0, packed.chars, packed.str_offsets, packed.str_base, packed.elements,
                packed.arr_offsets, packed.arr_base, scratch,
            )  # fmt: skip
    return got


def test_running_minimum_with_a_bound_keeps_every_threshold_decision():
    """The early exits (a slot bound, the running minimum) never change a threshold's verdict."""
    from gpulink.kernels._targets import cpu
    from gpulink.kernels.compare import pack_columns, scratch_size
    from gpulink.kernels.strings import PATTERN_TABLE_INTS
    from gpulink.table import encode_records

    arrays = [a for a in ARRAYS if a is not None]
    data = pa.table({"unique_id": list(range(len(arrays))), "a": pa.array(arrays)})
    table = encode_records(data, [])
    table.ensure_columns({"a": "array"})
    packed = pack_columns(table, ["a"])
    scratch = np.zeros(max(scratch_size(packed), PATTERN_TABLE_INTS), np.int32)
    codes, uid = packed.codes[0], table.unique_id.to_numpy()
    for kind in (P.LEAF_PAIRWISE_LEV_LE, P.LEAF_PAIRWISE_DAMERAU_LE):
        expected = _duckdb_pairwise(
            "levenshtein" if kind == P.LEAF_PAIRWISE_LEV_LE else "damerau_levenshtein", arrays
        )
        for bound in (0.0, 1.0, 3.0):
            got = _all_pairs(cpu(pairwise_string_metric), kind, bound, packed, codes, uid, scratch)
            nan = np.isnan(expected)
            assert np.array_equal(np.isnan(got), nan)
            within = ~nan & (expected <= bound)
            assert np.array_equal(got[within], expected[within])
            assert (got[~nan & ~within] > bound).all()
            assert within.any() and (~nan & ~within).any()


# -- pipeline parity with Splink + DuckDB -------------------------------------------------------


def _assert_same_predictions(table, comparisons, rules):
    creator = splink.SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules,
        retain_intermediate_calculation_columns=True,
    )
    settings = _with_parameters(creator.create_settings_dict("duckdb"))
    db = DuckDBAPI(connection=_duckdb())
    s_linker = splink.Linker(db.register(table), copy.deepcopy(settings), log_level=logging.ERROR)
    expected = s_linker.inference.predict().as_pandas_dataframe()
    got = gl.Linker(table, copy.deepcopy(settings), backend="cpu").inference.predict().to_pandas()
    keys = ["unique_id_l", "unique_id_r"]
    assert len(expected) > 0
    merged = expected.merge(got, on=keys, how="outer", suffixes=("_s", "_g"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"][keys].head()
    gammas = [c for c in expected.columns if c.startswith("gamma_")]
    assert len(gammas) == len(comparisons)
    for col in gammas + ["match_key"]:
        bad = merged[f"{col}_s"].astype(str) != merged[f"{col}_g"].astype(str)
        assert not bad.any(), merged.loc[bad, keys + [f"{col}_s", f"{col}_g"]].head()
    for col in ["match_weight", "match_probability"]:
        a, b = merged[f"{col}_s"].to_numpy(float), merged[f"{col}_g"].to_numpy(float)
        assert np.allclose(a, b, rtol=0, atol=1e-9), col
    return merged


def _edge_table() -> pa.Table:
    """30 records in one block (435 pairs), one per array of :data:`ARRAYS`."""
    n = len(ARRAYS)
    return pa.table(
        {
            "unique_id": list(range(1, n + 1)),
            "grp": [1] * n,
            "names": pa.array(ARRAYS, pa.list_(pa.string())),
            "names2": pa.array([ARRAYS[(i * 7) % n] for i in range(n)], pa.list_(pa.string())),
        }
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_pairwise_levels_equal_splink_on_edge_cases(function):
    ts = THRESHOLDS[function]
    similar, other = (">=", "<") if function in SIMILARITIES else ("<=", ">")
    comparisons = [
        scl.PairwiseStringDistanceFunctionAtThresholds("names", function, ts),
        # the levels alone: no null level, so NULL and empty arrays fall to the else level
        scl.CustomComparison(
            [scll.PairwiseStringDistanceFunctionLevel("names2", function, t) for t in ts[1:]]
            + [scll.ElseLevel()],
            output_column_name="levels_only",
        ),
        # the other direction, as SQL (a model from elsewhere)
        scl.CustomComparison(
            [
                scll.NullLevel("names2"),
                scll.CustomLevel(_custom_sql(function, other, ts[1]).replace('"x_', '"names2_')),
                scll.CustomLevel(_custom_sql(function, similar, ts[0]).replace('"x_', '"names2_')),
                scll.ElseLevel(),
            ],
            output_column_name="other_direction",
        ),
    ]
    merged = _assert_same_predictions(_edge_table(), comparisons, [block_on("grp")])
    assert len(merged) == 435
    assert merged["gamma_names_s"].nunique() == 2 + len(ts) + 1  # null, any shared, ts, else
    assert merged["gamma_levels_only_s"].nunique() == len(ts)
    assert merged["gamma_other_direction_s"].nunique() == 4


def test_pairwise_levels_equal_splink_on_fake_1000(fake_1000):
    df = fake_1000
    first = [x if isinstance(x, str) else None for x in df["first_name"]]
    last = [x if isinstance(x, str) else None for x in df["surname"]]
    city = [x if isinstance(x, str) else None for x in df["city"]]
    # [first, surname] without nulls (None when both are), and with them as NULL elements
    names = [[p for p in (f, s) if p] or None for f, s in zip(first, last)]
    with_nulls = [[f, s] for f, s in zip(first, last)]
    # name variants: lower case, first three letters, name+city
    variants = [
        None if f is None else [f.lower(), f[:3], f + (c or "")] for f, c in zip(first, city)
    ]
    surname_city = [[x for x in (s, c) if x] for s, c in zip(last, city)]  # [] when both null
    as_list = pa.list_(pa.string())
    table = pa.Table.from_pandas(df, preserve_index=False)
    for name, values in (
        ("names", names),
        ("with_nulls", with_nulls),
        ("variants", variants),
        ("surname_city", surname_city),
    ):
        table = table.append_column(name, pa.array(values, as_list))
    comparisons = [
        scl.PairwiseStringDistanceFunctionAtThresholds("names", "jaro_winkler", [0.95, 0.85]),
        scl.PairwiseStringDistanceFunctionAtThresholds("with_nulls", "levenshtein", [1, 2, 4]),
        scl.PairwiseStringDistanceFunctionAtThresholds("variants", "jaro", [0.9, 0.7]),
        scl.PairwiseStringDistanceFunctionAtThresholds("surname_city", "damerau_levenshtein", 1),
    ]
    rules = [block_on("dob"), block_on("substr(surname, 1, 2)"), block_on("city")]
    merged = _assert_same_predictions(table, comparisons, rules)
    assert len(merged) > 1000
    # every level is reached (with_nulls and surname_city are never NULL lists)
    counts = {"names": 5, "with_nulls": 5, "variants": 5, "surname_city": 3}
    for name, n_levels in counts.items():
        assert merged[f"gamma_{name}_s"].nunique() == n_levels, name


def test_a_splink_model_json_with_pairwise_levels_loads_and_runs(tmp_path):
    settings = splink.SettingsCreator(
        link_type="dedupe_only",
        comparisons=[scl.PairwiseStringDistanceFunctionAtThresholds("names", "jaro", [0.9])],
        blocking_rules_to_generate_predictions=[block_on("grp")],
    )
    d = _with_parameters(settings.create_settings_dict("duckdb"))
    linker = gl.Linker(_edge_table(), d, backend="cpu")
    comparison = linker.settings.comparisons[0]
    assert [lvl.label for lvl in comparison.levels][
        2
    ] == "Max `jaro` distance of 'names' >= than 0.9'"


# -- GPU: PTX for sm_90 and the CUDA simulator -------------------------------------------------


def _pairwise_launcher(kinds, bounds, ranges, chars, str_offsets, str_base, elements,
                       arr_offsets, arr_base, scratch_all, out):  # fmt: skip
    """One pair per thread: ``out[t]`` = the pairwise metric of the element ranges ``ranges[t]``."""
    t = cuda.grid(1)
    if t < out.shape[0]:
        out[t] = pairwise_string_metric(
            kinds[t], bounds[t], ranges[t, 0], ranges[t, 1], ranges[t, 2], ranges[t, 3], 0,
            chars, str_offsets, str_base, elements, arr_offsets, arr_base, scratch_all[t],
        )  # fmt: skip


def test_pairwise_body_compiles_to_ptx_for_sm90():
    from numba import types as nbt

    from gpulink.kernels._cuda import SIMULATOR, compile_ptx
    from gpulink.kernels._targets import retarget_launcher
    from gpulink.kernels.score_gpu import kernel_signature, python_kernel

    if SIMULATOR:
        pytest.skip("PTX compilation is not available under the CUDA simulator")
    i32, i64, u32, f64 = nbt.int32, nbt.int64, nbt.uint32, nbt.float64
    signature = (i32[::1], f64[::1], i64[:, ::1], u32[::1], i64[::1], i64[::1], i32[::1])
    signature += (i64[::1], i64[::1], i32[:, ::1], f64[::1])
    ptx, _ = compile_ptx(retarget_launcher(_pairwise_launcher, "gpu"), signature, cc=(9, 0))
    assert ".target sm_90" in ptx and ".entry" in ptx
    # the generic kernels, whose eval_leaf now reaches the pairwise body
    for name in ("gammas", "score"):
        ptx, _ = compile_ptx(python_kernel(name), kernel_signature(name), cc=(9, 0))
        assert ".target sm_90" in ptx


SIM_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import gpulink as gl
    import gpulink.comparison_library as cl
    import gpulink.comparison_level_library as cll
    from numba import cuda
    import test_pairwise_levels as T
    from gpulink.kernels._targets import retarget_launcher
    from gpulink.kernels.compare import scratch_size
    from gpulink.kernels.pairs import enumerate_range_cpu
    from gpulink.kernels.program import (LEAF_PAIRWISE_DAMERAU_LE, LEAF_PAIRWISE_JARO_GE,
        LEAF_PAIRWISE_JW_GE, LEAF_PAIRWISE_LEV_LE)
    from gpulink.kernels.score_gpu import gammas_of_pairs_gpu
    from gpulink.kernels.strings import PATTERN_TABLE_INTS

    # 1. the whole gammas kernel, GPU build == CPU build, small blocks crossing boundaries
    def pairwise(column, f, name):
        levels = cl.PairwiseStringDistanceFunctionAtThresholds(column, f, T.THRESHOLDS[f])
        return cl.CustomComparison(levels.create_comparison_levels(), name)

    comparisons = [
        pairwise("names", "levenshtein", "a"),
        pairwise("names", "jaro_winkler", "b"),
        pairwise("names2", "damerau_levenshtein", "c"),
        pairwise("names2", "jaro", "d"),
    ]
    settings = gl.SettingsCreator(
        "dedupe_only", comparisons, blocking_rules_to_generate_predictions=[gl.block_on("grp")]
    )
    linker = gl.Linker(T._edge_table(), settings, backend="cpu")
    scorer = linker._scorer(linker.settings.blocking_rules)
    plan = scorer.plan()
    left, right, _ = enumerate_range_cpu(plan, 0, plan.n_candidates)
    cpu_gammas = scorer.gammas_of_pairs(left, right)
    gpu_gammas = gammas_of_pairs_gpu(scorer, left, right, threads=8, blocks=3)
    assert np.array_equal(cpu_gammas, gpu_gammas), np.argwhere(cpu_gammas != gpu_gammas)[:5]
    assert all(len(np.unique(cpu_gammas[:, c])) >= 4 for c in range(cpu_gammas.shape[1]))

    # 2. the body itself, one pair per thread, against DuckDB
    p = scorer.packed
    c = scorer.columns.index("names")
    assert c == 0
    codes = p.codes[c]
    kinds = {"levenshtein": LEAF_PAIRWISE_LEV_LE, "damerau_levenshtein": LEAF_PAIRWISE_DAMERAU_LE,
             "jaro": LEAF_PAIRWISE_JARO_GE, "jaro_winkler": LEAF_PAIRWISE_JW_GE}
    n = len(codes)
    base = p.arr_base[c]
    ok = [(i, j) for i in range(n) for j in range(n) if codes[i] >= 0 and codes[j] >= 0]
    ranges = np.array([[p.arr_offsets[base + codes[i]], p.arr_offsets[base + codes[i] + 1],
                        p.arr_offsets[base + codes[j]], p.arr_offsets[base + codes[j] + 1]]
                       for i, j in ok], np.int64)
    launcher = cuda.jit(retarget_launcher(T._pairwise_launcher, "gpu"))
    ids = scorer.table.unique_id.to_numpy()
    for f, kind in kinds.items():
        expected = T._duckdb_pairwise(f, T.ARRAYS)
        m = len(ok)
        out = np.zeros(m)
        scratch = np.zeros((m, max(scratch_size(p), PATTERN_TABLE_INTS)), np.int32)
        launcher[(m + 7) // 8, 8](
            np.full(m, kind, np.int32), np.full(m, -1.0), ranges, p.chars, p.str_offsets,
            p.str_base, p.elements, p.arr_offsets, p.arr_base, scratch, out)
        want = np.array([expected[ids[i] - 1, ids[j] - 1] for i, j in ok])
        same = (out == want) | (np.isnan(out) & np.isnan(want))
        assert same.all(), (f, np.flatnonzero(~same)[:5])
    print("OK", len(left), len(ok))
    """
)


def test_pairwise_on_gpu_equals_cpu_and_duckdb_under_cuda_simulator():
    proc = run_under_cuda_simulator(SIM_SCRIPT, str(ROOT / "tests"), timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-6000:]
    assert "OK 435" in proc.stdout, proc.stdout


def test_readme_lists_them_and_no_longer_as_missing():
    assert hasattr(gcl, "PairwiseStringDistanceFunctionAtThresholds")
    assert hasattr(gcll, "PairwiseStringDistanceFunctionLevel")
    readme = (ROOT / "README.md").read_text()
    does_not_do = readme.split("What gpulink does not do", 1)[1].split("###", 1)[0]
    assert "PairwiseStringDistance" not in does_not_do
    assert "PairwiseStringDistanceFunctionAtThresholds" in readme
