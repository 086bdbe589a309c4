"""Column expressions: parsing, canonical text, and evaluation identical to DuckDB's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gpulink.errors import InputError, SettingsError
from gpulink.expressions import canonical, parse

duckdb = pytest.importorskip("duckdb")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

TRICKY = [
    "",
    "a",
    "ab",
    "hello",
    "héllo wörld",
    "日本語テキスト",
    None,
    "john@x.com",
    "a@b@c",
    " AB12 3CD ",
    "sw1a 1aa",
    "ÉCOLE ß straße",
    "x\ny@z",
    "  tab\t ",
    "O'Brien",
]


def duck(sql: str, table: pa.Table) -> list:
    """The oracle: DuckDB evaluating the same SQL on the same Arrow table."""
    con = duckdb.connect()
    con.register("t", table)
    return [r[0] for r in con.sql(f"select {sql} from t").fetchall()]


def dates(values: list) -> list:
    return [None if v is None else v.date() for v in values]


@pytest.mark.parametrize(
    ("text", "canon", "columns"),
    [
        ("first_name", "first_name", ("first_name",)),
        ('"first_name"', "first_name", ("first_name",)),
        ('"first name"', '"first name"', ("first name",)),
        ("SUBSTRING(surname,1,4)", "substr(surname, 1, 4)", ("surname",)),
        ("substr(surname, 1, 4)", "substr(surname, 1, 4)", ("surname",)),
        ('LOWER("name")', "lower(name)", ("name",)),
        ("regex_extract(email, '^[^@]+', 0)", "regexp_extract(email, '^[^@]+')", ("email",)),
        (
            "regexp_extract(email, '@([^@]+)$', 1)",
            "regexp_extract(email, '@([^@]+)$', 1)",
            ("email",),
        ),
        ("try_strptime(dob, '%Y-%m-%d')", "try_strptime(dob, '%Y-%m-%d')", ("dob",)),
        ("CAST(x AS TEXT)", "cast(x as varchar)", ("x",)),
        ("cast(x as varchar(20))", "cast(x as varchar)", ("x",)),
        ("first_name || surname", "(first_name || surname)", ("first_name", "surname")),
        ("arr[1]", "arr[1]", ("arr",)),
        ("lower(substr(x, 1, 3))", "lower(substr(x, 1, 3))", ("x",)),
        ("nullif(x, 'it''s')", "nullif(x, 'it''s')", ("x",)),
    ],
)
def test_parse_canonical_columns(text, canon, columns):
    e = parse(text)
    assert e.canonical == canon
    assert canonical(text) == canon
    assert canonical(canon) == canon  # idempotent
    assert e.columns == columns


@pytest.mark.parametrize(
    "text",
    [
        "soundex(x)",
        "substr(x, 'a')",
        "lower(",
        "lower(x))",
        "x +",
        "",
        "cast(x as blob)",
        "substr(1, 2)",
        "regexp_extract(x, '(')",
        "regexp_extract(x, '(a)', 2)",
        "x[y]",
        "a b",
    ],
)
def test_bad_expressions_raise_settings_error(text):
    with pytest.raises(SettingsError) as info:
        e = parse(text)
        e.evaluate(pa.table({"x": ["a"]}))
    if text:
        assert repr(text) in str(info.value) or "regexp_extract" in str(info.value)


def test_unknown_function_lists_supported():
    with pytest.raises(SettingsError, match=r"unknown function 'soundex'.*supported: lower\(x\)"):
        parse("soundex(name)")


def test_substr_left_right_match_duckdb_exhaustively():
    t = pa.table({"x": TRICKY})
    for start in range(-9, 10):
        for length in [*range(-9, 10), None]:
            sql = f"substr(x, {start})" if length is None else f"substring(x, {start}, {length})"
            assert parse(sql).evaluate(t).to_pylist() == duck(sql, t), sql
    for n in range(-9, 10):
        for fn in ("left", "right"):
            sql = f"{fn}(x, {n})"
            assert parse(sql).evaluate(t).to_pylist() == duck(sql, t), sql


# Every expression Splink 5's comparison library generates for DuckDB from a ColumnExpression
SPLINK_GENERATED = [
    "NULLIF(regexp_extract(\"x\", '^[^@]+', 0), '')",  # EmailComparison username
    "NULLIF(regexp_extract(\"x\", '@([^@]+)$', 1), '')",  # email domain
    "NULLIF(regexp_extract(\"x\", '^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? [0-9]', 0), '')",  # sector
    "NULLIF(regexp_extract(\"x\", '^[A-Za-z]{1,2}[0-9][A-Za-z0-9]?', 0), '')",  # district
    "NULLIF(regexp_extract(\"x\", '^[A-Za-z]{1,2}', 0), '')",  # area
    "NULLIF(regexp_extract(\"x\", '^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? [0-9][A-Za-z]{2}$', 0), '')",
    'LOWER("x")',
    'SUBSTRING("x", 1, 3)',
    'CAST("x" AS TEXT)',
    "NULLIF(\"x\", '')",
    "SUBSTRING(lower(x), 1, 2)",
]

OTHER = [
    "regexp_extract(x, '(a|b)(c)?', 2)",
    "regexp_extract(x, '.')",
    "regexp_extract(x, '(?i)ab')",
    "regex_extract(x, 'l+')",
    "regexp_extract(x, 'z*')",  # an empty match
    "regexp_extract(x, 'o$|@.')",  # top-level alternation
    "regexp_extract(x, '(?:l|ö)+')",  # a non-capturing group
    "regexp_extract(x, '[^ ]+$')",
    "upper(x)",
    "trim(x)",
    "ltrim(x)",
    "rtrim(x)",
    "trim(x, ' A')",
    "x || x",
    "concat(x, x)",
    "length(x)",
    "coalesce(x, 'zz')",
    "lower(substr(x, 2, 3))",
    "upper(left(trim(x), 2))",
]


def test_splink_column_expressions_are_the_ones_we_test():
    """Guard: the SQL Splink generates for DuckDB is what SPLINK_GENERATED lists."""
    from splink.internals.column_expression import ColumnExpression as CE
    from splink.internals.comparison_library import EmailComparison, PostcodeComparison
    from splink.internals.dialects import DuckDBDialect

    d = DuckDBDialect()
    made = []
    for regex in (
        EmailComparison.USERNAME_REGEX,
        PostcodeComparison.SECTOR_REGEX,
        PostcodeComparison.DISTRICT_REGEX,
        PostcodeComparison.AREA_REGEX,
    ):
        ce = CE("x").regex_extract(regex)
        ce.sql_dialect = d
        made.append(ce.name)
    ce = CE("x").regex_extract(EmailComparison.DOMAIN_REGEX, 1)
    ce.sql_dialect = d
    made.append(ce.name)
    for ce in (CE("x").lower(), CE("x").substr(1, 3), CE("x").cast_to_string(), CE("x").nullif("")):
        ce.sql_dialect = d
        made.append(ce.name)
    for sql in made:
        assert sql in SPLINK_GENERATED, sql


@pytest.mark.parametrize("sql", SPLINK_GENERATED + OTHER)
def test_expressions_match_duckdb_on_tricky_strings(sql):
    t = pa.table({"x": TRICKY})
    assert parse(sql).evaluate(t).to_pylist() == duck(sql.replace("regex_", "regexp_"), t)


DATE_STRINGS = [
    "1990-02-30",
    "1990-2-3",
    "1990-02-03",
    "1990-02-03x",
    " 1990-02-03",
    "03/02/1990",
    "2000-02-29",
    "1900-02-29",
    "1990-13-01",
    "1990-00-10",
    "1990-01-00",
    "0990-01-01",
    "19900101",
    "1990-01-01 12:00:00",
    "",
    None,
    "1990-1-1 ",
    "31/04/2001",
    "29/02/2004",
    "1/1/2001",
    "19901301",
]


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%d/%m/%Y", "%Y%m%d"])
def test_try_strptime_matches_duckdb(fmt):
    t = pa.table({"x": DATE_STRINGS})
    sql = f"try_strptime(x, '{fmt}')"
    got = parse(sql).evaluate(t)
    assert got.type == pa.date32()
    assert got.to_pylist() == dates(duck(sql, t))


def test_try_strptime_with_time_gives_timestamps():
    t = pa.table({"x": ["2020-01-02T03:04:05Z", "bad", None]})
    sql = "try_strptime(x, '%Y-%m-%dT%H:%M:%SZ')"
    got = parse(sql).evaluate(t)
    assert pa.types.is_timestamp(got.type)
    assert got.to_pylist() == duck(sql, t)


def test_strptime_raises_on_unparsable_value():
    with pytest.raises(InputError, match=r"'31/02/1990'.*try_strptime"):
        parse("strptime(x, '%Y-%m-%d')").evaluate(pa.array(["1990-01-01", "31/02/1990"]))


def test_casts_match_duckdb():
    t = pa.table(
        {
            "i": [1, -5, None],
            "f": [1.5, -2.5, 0.5],
            "s": ["12", " 7 ", None],
            "d": ["2020-01-02", "1999-12-31", None],
        }
    )
    for sql in [
        "cast(i as varchar)",
        "cast(f as bigint)",
        "cast(s as integer)",
        "cast(i as double)",
        "cast(d as date)",
        "try_cast(s as bigint)",
    ]:
        assert parse(sql).evaluate(t).to_pylist() == duck(sql, t), sql
    with pytest.raises(InputError, match="try_cast"):
        parse("cast(x as bigint)").evaluate(pa.array(["1", "x"]))
    assert parse("try_cast(x as bigint)").evaluate(pa.array(["1", "x"])).to_pylist() == [1, None]


def test_float_to_text_matches_duckdb():
    """DuckDB writes DOUBLE as its shortest round-trip text ('1.0', '1e-05'); FLOAT too for
    values of up to 7 significant digits (the ones gpulink promises)."""
    rng = np.random.default_rng(5)
    doubles = rng.standard_normal(3000) * 10.0 ** rng.integers(-300, 300, 3000)
    values = [1.0, 1e-05, 0.1, 123456789.0, 1.5e20, 1e16, 1e15, -0.0, 2.5e-7, 1 / 3, None]
    values += [1e-4, 12345.678, -2.0, float("inf"), float("-inf"), float("nan")]
    t = pa.table({"d": pa.array(values + doubles.tolist(), pa.float64())})
    for sql in ["cast(d as varchar)", "d || '|'"]:
        assert parse(sql).evaluate(t).to_pylist() == duck(sql, t), sql
    floats = [1.0, 1e-05, 0.1, 1.5e20, 1e16, -0.0, 2.5e-7, 1e-4, 12345.67, -2.0, 3.3, None]
    floats += [float("inf"), float("nan"), 1234567.0, 0.001953125]
    t = pa.table({"f": pa.array(floats, pa.float32())})
    for sql in ["cast(f as varchar)", "lower(cast(f as text))"]:
        assert parse(sql).evaluate(t).to_pylist() == duck(sql, t), sql


def test_array_index_matches_duckdb():
    t = pa.table({"a": pa.array([["x", "y", "z"], [], None, ["q"]])})
    for sql in ["a[1]", "a[2]", "a[-1]", "a[-3]", "a[5]"]:
        assert parse(sql).evaluate(t).to_pylist() == duck(sql, t), sql


def test_large_dictionary_and_chunked_strings():
    base = ["Ann", None, "bob", "Ann"]
    for arr in (
        pa.array(base, pa.large_string()),
        pa.array(base).dictionary_encode(),
        pa.chunked_array([base[:2], base[2:]]),
    ):
        assert parse("upper(substr(x, 1, 2))").evaluate(arr).to_pylist() == ["AN", None, "BO", "AN"]


def test_multi_column_expression_needs_a_table():
    with pytest.raises(SettingsError, match="reads 2 columns"):
        parse("a || b").evaluate(pa.array(["x"]))
    with pytest.raises(InputError, match="'b'"):
        parse("a || b").evaluate(pa.table({"a": ["x"]}))


def test_on_reference_data_matches_duckdb():
    if not DATA.exists():
        pytest.skip(f"reference data not found at {DATA}")
    hist = pq.read_table(DATA / "historical_50k.parquet").slice(0, 20000)
    for sql in [
        "substr(surname, 1, 4)",
        "lower(first_name)",
        "upper(postcode_fake)",
        "NULLIF(regexp_extract(postcode_fake, '^[A-Za-z]{1,2}[0-9][A-Za-z0-9]?', 0), '')",
        "regexp_extract(postcode_fake, '^[A-Za-z]{1,2}')",
        "substr(dob, 1, 4)",
        "right(full_name, 3)",
        "first_name || surname",
    ]:
        assert parse(sql).evaluate(hist).to_pylist() == duck(sql, hist), sql
    sql = "try_strptime(dob, '%Y-%m-%d')"
    assert parse(sql).evaluate(hist).to_pylist() == dates(duck(sql, hist))
    fake = duckdb.read_csv(str(DATA / "fake_1000.csv")).arrow()
    fake = fake.read_all() if isinstance(fake, pa.RecordBatchReader) else fake
    for sql in [
        "NULLIF(regexp_extract(email, '^[^@]+', 0), '')",
        "NULLIF(regexp_extract(email, '@([^@]+)$', 1), '')",
        "lower(city)",
        "substr(first_name, -3, 2)",
        "cast(dob as varchar)",
    ]:
        assert parse(sql).evaluate(fake).to_pylist() == duck(sql, fake), sql
