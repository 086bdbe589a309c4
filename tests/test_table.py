"""encode_records: Splink's orientation order, dictionary codes, derived columns and TF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gpulink as gl
import gpulink.comparison_library as cl
from gpulink.errors import InputError
from gpulink.io import normalise_input
from gpulink.table import encode_records

duckdb = pytest.importorskip("duckdb")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

TRICKY_IDS = ["10", "9", "1", "a", "B", "ä", "Z", "é", "ab", "a-b", "a_b", "", "日本", "-1", "010"]


def duck_order(table: pa.Table, key_sql: str) -> list:
    con = duckdb.connect()
    con.register("t", table)
    return [r[0] for r in con.sql(f"select unique_id from t order by {key_sql}").fetchall()]


def roundtrip_ok(rt, expr: str, expected: list) -> None:
    col = rt.column(expr)
    assert col.decode().to_pylist() == expected


def hist(n: int | None = None) -> pa.Table:
    if not DATA.exists():
        pytest.skip(f"reference data not found at {DATA}")
    t = pq.read_table(DATA / "historical_50k.parquet")
    return t.slice(0, n) if n else t


@pytest.mark.parametrize(
    "ids",
    [TRICKY_IDS, [5, -3, 100, 0, 42, 7], ["Q1-2", "Q10-1", "Q1-10", "Q2-1", "q1-1"]],
)
def test_dedupe_order_is_duckdbs_order(ids):
    t = pa.table({"unique_id": ids, "x": list(range(len(ids)))})
    rt = encode_records(t, ["x"])
    assert rt.unique_id.to_pylist() == duck_order(t, "unique_id")
    # every pair (i, j), i < j, satisfies Splink's l.unique_id < r.unique_id in DuckDB
    con = duckdb.connect()
    con.register("t", t)
    n_pairs = con.sql("select count(*) from t l join t r on l.unique_id < r.unique_id").fetchall()[
        0
    ][0]
    assert n_pairs == len(ids) * (len(ids) - 1) // 2
    order = {v: i for i, v in enumerate(rt.unique_id.to_pylist())}
    for a, b in con.sql(
        "select l.unique_id, r.unique_id from t l join t r on l.unique_id < r.unique_id"
    ).fetchall():
        assert order[a] < order[b]


def test_link_order_is_duckdbs_composite_id_order():
    a = pd.DataFrame({"unique_id": [10, 9, 1, 2], "x": list("abcd")})
    b = pa.table({"unique_id": [3, 100, 20], "x": list("efg")})
    c = pd.DataFrame({"unique_id": [1, 11], "x": list("hi")})
    t = normalise_input([a, b, c], link_type="link_and_dedupe")
    rt = encode_records(t, ["x"], link_type="link_and_dedupe")
    con = duckdb.connect()
    con.register("t", t)
    expect = con.sql(
        "select source_dataset, unique_id from t order by source_dataset || '-__-' || unique_id"
    ).fetchall()
    got = list(zip(rt.source_dataset.to_pylist(), rt.unique_id.to_pylist()))
    assert got == expect
    assert rt.source_names == [f"__splink__input_table_{i}" for i in range(3)]
    assert [rt.source_names[c] for c in rt.source_codes] == rt.source_dataset.to_pylist()
    # Splink's link_and_dedupe condition holds for every i < j
    keys = [f"{s}-__-{u}" for s, u in got]
    assert keys == sorted(keys)


def test_two_dataset_link_only_puts_smaller_name_left():
    # names whose composite ids interleave: 'a' vs 'a-' ('a--__-' < 'a-__-')
    t = pa.table({"source_dataset": ["a", "a-", "a", "a-"], "unique_id": [1, 1, 2, 2]})
    rt = encode_records(t, [], link_type="link_only")
    assert rt.source_dataset.to_pylist() == ["a", "a", "a-", "a-"]
    # with 3 datasets Splink compares the composite strings
    t3 = pa.table({"source_dataset": ["a", "a-", "b"], "unique_id": [1, 1, 1]})
    rt3 = encode_records(t3, [], link_type="link_only")
    assert rt3.source_dataset.to_pylist() == ["a-", "a", "b"]


def test_link_with_pandas_arrow_polars_inputs():
    pl = pytest.importorskip("polars")
    a = pd.DataFrame({"unique_id": ["x1", "x2"], "name": ["Ann", None]})
    b = pa.table({"unique_id": ["x1", "y"], "name": pa.array(["ann", "Bob"], pa.large_string())})
    c = pl.DataFrame({"unique_id": ["z"], "name": ["Ann"]})
    t = normalise_input([a, b, c], link_type="link_only")
    rt = encode_records(t, ["name", "lower(name)"], link_type="link_only")
    assert rt.n_records == 5
    col = rt.column("lower(name)")
    assert col.dictionary.to_pylist().count("ann") == 1
    assert col.counts.sum() == 4 and np.isclose(
        col.tf[col.dictionary.to_pylist().index("ann")], 3 / 4
    )


def test_codes_roundtrip_tf_and_unicode():
    names = ["José", "jose", None, "José", "", "日本", "straße", "STRASSE", None, "José"]
    t = pa.table({"unique_id": range(len(names)), "name": names})
    rt = encode_records(t, ["name", "upper(name)", "substr(name, 2, 2)"])
    for expr in ["name", "upper(name)", "substr(name, 2, 2)"]:
        con = duckdb.connect()
        con.register("t", t)
        expected = [r[0] for r in con.sql(f"select {expr} from t order by unique_id").fetchall()]
        roundtrip_ok(rt, expr, expected)
    col = rt.column("name")
    assert col.kind == "string"
    assert col.codes.dtype == np.int32 and (col.codes == -1).sum() == 2
    # empty string is a value, not null (as in Splink)
    assert "" in col.dictionary.to_pylist()
    vc = pd.Series(names).value_counts(dropna=True, normalize=True)
    for k, v in enumerate(col.dictionary.to_pylist()):
        assert col.tf[k] == pytest.approx(vc[v])
    # code points
    for k, v in enumerate(col.dictionary.to_pylist()):
        cps = col.chars[col.offsets[k] : col.offsets[k + 1]]
        assert cps.dtype == np.uint32 and "".join(map(chr, cps)) == v
    assert rt.max_string_length("name") == 7  # STRASSE
    assert rt.max_string_length("substr(name, 2, 2)") == 2


def test_dictionary_chunked_large_string_inputs():
    base = ["b", None, "a", "b", "c"]
    variants = [
        pa.chunked_array([base[:2], base[2:]], pa.large_string()),
        pa.chunked_array(
            [pa.array(base[:2]).dictionary_encode(), pa.array(base[2:]).dictionary_encode()]
        ),
        pa.DictionaryArray.from_arrays(
            pa.array([0, None, 1, 0, 3]), pa.array(["b", "a", "unused", "c"])
        ),
    ]
    for arr in variants:
        t = pa.table({"unique_id": range(5), "x": arr})
        rt = encode_records(t, ["x", "upper(x)"])
        roundtrip_ok(rt, "x", base)
        roundtrip_ok(rt, "upper(x)", [None if v is None else v.upper() for v in base])
        assert rt.column("x").n_values == 3  # unused dictionary entries dropped


def test_numbers_dates_timestamps_and_nan():
    t = pa.table(
        {
            "unique_id": [1, 2, 3, 4],
            "age": [30.0, float("nan"), None, 30.0],
            "n": [1, 2, 2, None],
            "dob": pa.array([0, 365, None, 0], pa.date32()),
            "ts": pa.array([0, 1500, 1500, None], pa.timestamp("ms")),
            "dob_s": ["1970-01-02", "bad", None, "1970-01-02"],
        }
    )
    rt = encode_records(t, ["age", "n", "dob", "ts", "dob_s"], kinds={"dob_s": "date"})
    age = rt.column("age")
    assert age.kind == "number" and (age.codes == -1).sum() == 2  # NaN is null
    assert age.values.tolist() == [30.0]
    dob = rt.column("dob")
    assert dob.kind == "date" and sorted(dob.values.tolist()) == [0.0, 365.0]
    ts = rt.column("ts")
    assert ts.kind == "timestamp" and sorted(ts.values.tolist()) == [0.0, 1.5]
    dob_s = rt.column("dob_s")
    assert dob_s.kind == "date" and dob_s.values.tolist() == [1.0]
    assert dob_s.codes.tolist() == [0, -1, -1, 0]


def test_arrays_as_element_sets():
    arr = pa.array([["b", "a", "b"], None, ["a", "b"], [], ["b", "a", "b"], ["c", None]])
    t = pa.table({"unique_id": range(6), "names": arr})
    rt = encode_records(t, ["names"])
    col = rt.column("names")
    assert col.kind == "array"
    assert col.decode().to_pylist() == arr.to_pylist()
    elems = col.element_dictionary.to_pylist()
    for k, v in enumerate(col.dictionary.to_pylist()):
        got = [elems[e] for e in col.elements[col.offsets[k] : col.offsets[k + 1]]]
        assert sorted(got) == sorted({x for x in v if x is not None})
        assert list(col.elements[col.offsets[k] : col.offsets[k + 1]]) == sorted(
            col.elements[col.offsets[k] : col.offsets[k + 1]]
        )
    assert col.codes[0] == col.codes[4] and col.codes[0] != col.codes[2]


def test_reference_data_derived_columns_match_duckdb_and_tf():
    t = hist(20000)
    exprs = [
        "surname",
        "substr(surname, 1, 4)",
        "lower(first_name)",
        "substr(dob, 1, 4)",
        "NULLIF(regexp_extract(postcode_fake, '^[A-Za-z]{1,2}[0-9][A-Za-z0-9]?', 0), '')",
        "first_name || ' ' || surname",
    ]
    rt = encode_records(t, exprs + ["try_strptime(dob, '%Y-%m-%d')"])
    con = duckdb.connect()
    con.register("t", t)
    for expr in exprs:
        expected = [r[0] for r in con.sql(f"select {expr} from t order by unique_id").fetchall()]
        roundtrip_ok(rt, expr, expected)
        col = rt.column(expr)
        # TF as Splink computes it (term_frequencies.py)
        tf_sql = (
            f"select {expr} as v, cast(count(*) as float8) / (select count({expr}) from t) "
            f"as tf from t where {expr} is not null group by 1"
        )
        tf = dict(con.sql(tf_sql).fetchall())
        got = dict(zip(col.dictionary.to_pylist(), col.tf.tolist()))
        assert got.keys() == tf.keys()
        assert all(abs(got[k] - tf[k]) < 1e-15 for k in tf)
    dates = [
        None if r[0] is None else r[0].date()
        for r in con.sql(
            "select try_strptime(dob, '%Y-%m-%d') from t order by unique_id"
        ).fetchall()
    ]
    roundtrip_ok(rt, "try_strptime(dob, '%Y-%m-%d')", dates)


def test_fake_1000_from_csv_path():
    if not DATA.exists():
        pytest.skip(f"reference data not found at {DATA}")
    t = normalise_input(DATA / "fake_1000.csv")
    rt = encode_records(
        t, ["first_name", "city", "NULLIF(regexp_extract(email, '@([^@]+)$', 1), '')"]
    )
    con = duckdb.connect()
    src = duckdb.read_csv(str(DATA / "fake_1000.csv"), connection=con)  # noqa: F841
    assert rt.unique_id.to_pylist() == [
        r[0] for r in con.sql("select unique_id from src order by unique_id").fetchall()
    ]
    for expr in ["first_name", "city", "NULLIF(regexp_extract(email, '@([^@]+)$', 1), '')"]:
        expected = [r[0] for r in con.sql(f"select {expr} from src order by unique_id").fetchall()]
        roundtrip_ok(rt, expr, expected)
    # pandas value_counts as the TF oracle
    df = pd.read_csv(DATA / "fake_1000.csv")
    vc = df["city"].value_counts(normalize=True)
    col = rt.column("city")
    for k, v in enumerate(col.dictionary.to_pylist()):
        assert col.tf[k] == pytest.approx(vc[v], abs=1e-15)


def test_encode_errors():
    t = pa.table(
        {"unique_id": [1, 2], "first_name": ["a", "b"], "s": pa.array([{"a": 1}, {"a": 2}])}
    )
    with pytest.raises(InputError, match=r"'frist_name'.*did you mean 'first_name'"):
        encode_records(t, ["lower(frist_name)"])
    with pytest.raises(InputError, match=r"column 's'.*struct"):
        encode_records(t, ["s"])
    with pytest.raises(InputError, match=r"unique id column 'id' is missing"):
        encode_records(t, [], unique_id_column="id")
    with pytest.raises(InputError, match="duplicated"):
        encode_records(pa.table({"unique_id": [1, 1]}), [])
    with pytest.raises(InputError, match="source dataset column 'source_dataset'"):
        encode_records(t, [], link_type="link_only")
    with pytest.raises(
        InputError, match=r"an array comparison \(lists of strings or integers\) cannot read"
    ):
        encode_records(t, ["first_name"], kinds={"first_name": "array"})
    with pytest.raises(InputError, match="unknown link_type"):
        encode_records(t, [], link_type="dedupe")


def test_record_table_helpers():
    t = pa.table({"unique_id": [2, 1], "x": ["bb", None]})
    rt = encode_records(t, ["x"])
    assert rt.input_row.tolist() == [1, 0]
    assert rt.data.column("x").to_pylist() == [None, "bb"]
    assert rt.source_codes.tolist() == [0, 0] and rt.source_dataset is None
    col = rt.ensure_column("upper(x)")
    assert col.decode().to_pylist() == [None, "BB"]
    with pytest.raises(KeyError, match="ensure_column"):
        rt.column("lower(x)")


def test_non_arrow_input_is_normalised():
    rt = encode_records(pd.DataFrame({"unique_id": [3, 1], "x": ["a", np.nan]}), ["x"])
    assert rt.column("x").codes.tolist() == [-1, 0]


def _predict(data, comparison):
    s = gl.SettingsCreator(
        "dedupe_only", [comparison], blocking_rules_to_generate_predictions=[gl.block_on("k")]
    )
    return gl.Linker(data, s, backend="cpu").inference.predict()


TYPED = pd.DataFrame(
    {
        "unique_id": range(6),
        "k": [1, 1, 1, 2, 2, 2],
        "name": ["ann", "bob", "cy", "di", "ed", "flo"],
        "digits": ["1", "2", "3", "4", "5", "6"],
        "when": pd.to_datetime(["2001-01-01", "2001-01-02", "2001-02-01"] * 2),
        "letters": [list("ab"), list("bc"), list("cd"), list("de"), list("ef"), list("fg")],
    }
)


@pytest.mark.parametrize(
    "comparison, match",
    [
        (lambda: cl.AbsoluteDifferenceAtThresholds("name", [1]), "holds text .*'ann'"),
        (lambda: cl.DistanceInKMAtThresholds("name", "name", [1]), "holds text"),
        (lambda: cl.DateOfBirthComparison("when", input_is_string=True), "input_is_string=False"),
        (
            lambda: cl.AbsoluteDateDifferenceAtThresholds(
                "k", input_is_string=True, metrics=["day"], thresholds=[1]
            ),
            "holds int64",
        ),
        (lambda: cl.JaroWinklerAtThresholds("letters"), "ArrayIntersectAtSizes"),
    ],
)
def test_a_comparison_on_a_column_of_the_wrong_type_is_an_input_error(comparison, match):
    """DuckDB (so Splink) refuses these; before, every pair silently scored as null."""
    with pytest.raises(InputError, match=match):
        _predict(TYPED, comparison())


def test_numeric_text_still_works_in_numeric_comparisons():
    got = _predict(TYPED, cl.AbsoluteDifferenceAtThresholds("digits", [1])).to_pandas()
    assert len(got) == 6


def test_a_date_format_no_value_matches_warns(caplog):
    data = TYPED.assign(text=["2001-01-01"] * 6)
    with caplog.at_level("WARNING", logger="gpulink"):
        _predict(data, cl.DateOfBirthComparison("text", input_is_string=True,
                                                datetime_format="%d/%m/%Y"))  # fmt: skip
    assert "no value of text matches the format '%d/%m/%Y'" in caplog.text
