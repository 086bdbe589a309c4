"""``gpulink.exploratory`` against Splink 5's ``splink.exploratory`` (the oracle).

Both run on the same inputs; Splink's records are read from its chart dict, ours from the Altair
chart's Vega-Lite spec. Values and labels must be equal, floats to 1e-9 (Splink's are DuckDB
FLOATs: float32). Where values tie on their count, which of them make a top/bottom list and in
what order is up to DuckDB in Splink (gpulink orders them by value): there the test checks the
counts row by row, that every value we list has that count in Splink's full frequency table,
and that the values above the cut are Splink's.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("altair")
pd = pytest.importorskip("pandas")
pytest.importorskip("splink")

import splink.exploratory as sx  # noqa: E402
from splink import DuckDBAPI  # noqa: E402

import gpulink as gl  # noqa: E402
import gpulink.exploratory as gx  # noqa: E402
from gpulink.errors import InputError, MissingDependency, SettingsError  # noqa: E402
from gpulink.exploratory import completeness_chart, profile_columns  # noqa: E402
from gpulink.visualisations import chart_records  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EVERY_VALUE = 10**7  # a top_n no column reaches: the full frequency table


@pytest.fixture(scope="module")
def historical():
    path = DATA / "historical_50k.parquet"
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (shared/data is not checked out)")
    return pd.read_parquet(path)


def register(frames):
    db = DuckDBAPI()
    if isinstance(frames, list):
        return [db.register(f) for f in frames]
    return db.register(frames)


# -- reading the two charts ---------------------------------------------------------------------


def splink_profile(frames, exprs, top_n=10, bottom_n=10):
    """Per expression: (title, subtitle, [percentiles, top, bottom]) from Splink's chart."""
    chart = sx.profile_columns(
        register(frames), column_expressions=exprs, top_n=top_n, bottom_n=bottom_n
    )
    out = []
    for row in chart.chart_dict["vconcat"]:
        dist, top, bottom = row["hconcat"]
        data = [dist["data"]["values"], top["data"]["values"], bottom["data"]["values"]]
        out.append((dist["title"]["text"], dist["title"]["subtitle"], data))
    return out


def our_profile(chart):
    """The same from our Altair chart: titles, then each panel's data resolved by name."""
    spec = chart.to_dict()
    datasets = spec.get("datasets", {})

    def values(panel):
        data = panel["data"]
        return datasets[data["name"]] if "name" in data else data["values"]

    out = []
    for row in spec["vconcat"]:
        dist, top, bottom = row["hconcat"]
        assert top["title"] == f"Top {len(values(top))} values by value count"
        assert bottom["title"] == f"Bottom {len(values(bottom))} values by value count"
        out.append(
            (dist["title"]["text"], dist["title"]["subtitle"], [values(p) for p in row["hconcat"]])
        )
    return out


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
    return a == b


def assert_same_records(expected, ours, what):
    assert len(ours) == len(expected), (what, len(ours), len(expected))
    for i, (s, g) in enumerate(zip(expected, ours)):
        assert set(g) == set(s), f"{what} row {i}: fields {sorted(set(g) ^ set(s))} differ"
        bad = {k: (s[k], g[k]) for k in s if not same(s[k], g[k])}
        assert not bad, f"{what} row {i}: {bad}"


def assert_same_ranking(expected, ours, full, what):
    """Top/bottom lists: equal row by row but for the values of tied counts (see module doc)."""
    no_value = [{k: v for k, v in r.items() if k != "value"} for r in expected]
    assert_same_records(
        no_value, [{k: v for k, v in r.items() if k != "value"} for r in ours], what
    )
    values = [r["value"] for r in ours]
    assert len(set(values)) == len(values), f"{what}: a value listed twice"
    for r in ours:
        assert full.get(r["value"]) == r["value_count"], (what, r, full.get(r["value"]))
    if ours:
        cut = ours[-1]["value_count"]
        inside = Counter(r["value"] for r in ours if r["value_count"] != cut)
        assert inside == Counter(r["value"] for r in expected if r["value_count"] != cut), what


def assert_same_profile(frames, exprs, *, top_n=10, bottom_n=10, gl_input=None):
    expected = splink_profile(frames, exprs, top_n, bottom_n)
    full = splink_profile(frames, exprs, EVERY_VALUE, 0)
    ours = our_profile(
        profile_columns(
            frames if gl_input is None else gl_input,
            column_expressions=exprs,
            top_n=top_n,
            bottom_n=bottom_n,
        )
    )
    assert [o[0] for o in ours] == [e[0] for e in expected]
    for (title, subtitle, data), (_, e_subtitle, e_data), (_, _, f_data) in zip(
        ours, expected, full
    ):
        assert subtitle == e_subtitle, title
        assert_same_records(e_data[0], data[0], f"{title} percentiles")
        freq = {r["value"]: r["value_count"] for r in f_data[1]}
        assert_same_ranking(e_data[1], data[1], freq, f"{title} top {top_n}")
        assert_same_ranking(e_data[2], data[2], freq, f"{title} bottom {bottom_n}")
        # every value and its count, exactly
        (profile,) = gx.column_profiles(
            frames if gl_input is None else gl_input, [_expr_of(title, exprs)], EVERY_VALUE, 0
        )
        assert_same_records(
            sorted(f_data[1], key=lambda r: r["value"]),
            sorted(profile.top_n, key=lambda r: r["value"]),
            f"{title} all values",
        )
    return ours


def _expr_of(title, exprs):
    """The expression whose chart has this title (Splink titles a list as concat(a, b))."""
    for e in exprs:
        text = "concat(" + ", ' ', ".join(e) + ")" if isinstance(e, list) else e
        if title.endswith(" " + text.replace(", ' '", "")):
            return e
    raise AssertionError(title)


# -- profile_columns ----------------------------------------------------------------------------


FAKE_EXPRESSIONS = [
    "first_name",  # 169 nulls
    "substr(dob, 1, 4)",
    "lower(city)",
    "surname",
    "NULLIF(regexp_extract(email, '@([^@]+)$', 1), '')",
    ["first_name", "surname"],  # joined with a space, null where either is null
    "unique_id",  # integers, as text
]


def test_profile_columns_matches_splink_on_fake_1000(fake_1000):
    ours = assert_same_profile(fake_1000, FAKE_EXPRESSIONS, top_n=5, bottom_n=7)
    assert len(ours) == len(FAKE_EXPRESSIONS)
    # a failing comparison would show: the derived column really is derived
    top_years = [r["value"] for r in ours[1][2][1]]
    assert all(len(y) == 4 and y.isdigit() for y in top_years)


def test_profile_columns_matches_splink_on_historical_50k(historical):
    exprs = [
        "first_name",
        "surname",  # 4515 nulls
        "substr(dob, 1, 4)",
        "occupation",  # half null
        "upper(substr(postcode_fake, 1, 2))",
        "gender",
    ]
    assert_same_profile(historical, exprs, top_n=10, bottom_n=10)


def test_profile_columns_default_is_every_column(fake_1000):
    expected = splink_profile(fake_1000, None)
    ours = our_profile(profile_columns(fake_1000))
    assert [o[0] for o in ours] == [e[0] for e in expected]
    assert ours[0][0] == 'Distribution of counts of values in column "unique_id"'
    for (title, subtitle, data), (_, e_subtitle, e_data) in zip(ours, expected):
        assert subtitle == e_subtitle
        assert_same_records(e_data[0], data[0], title)
        assert [r["value_count"] for r in data[1]] == [r["value_count"] for r in e_data[1]]


def test_profile_columns_of_a_list_of_tables(fake_1000, historical):
    # two tables profiled as one, Splink's vertical concatenation
    a, b = fake_1000.iloc[:600], fake_1000.iloc[600:]
    assert_same_profile([a, b], ["city", "substr(dob, 1, 4)"], top_n=4, bottom_n=4)
    h = historical[["unique_id", "first_name", "surname", "dob"]]
    assert_same_profile([h.iloc[:20000], h.iloc[20000:]], ["surname", "left(dob, 7)"])


def test_profile_columns_writes_values_as_duckdb_does():
    df = pd.DataFrame(
        {
            "f": [1.0, 1.0, 2.5, None, 1e-5, 1e16, 123456789012.0, -0.0],
            "i": pd.array([3, 3, None, 7, 7, 7, 1, 2], dtype="Int64"),
            "d": pd.to_datetime(
                ["2020-01-01", "2020-01-01", None, "2021-02-03 04:05:06.5", None, None, None, None],
                format="ISO8601",
            ),
            "b": [True, True, False, None, True, False, True, True],
        }
    )
    df["ns"] = df["d"].astype("datetime64[ns]") - pd.Timedelta(days=20000, nanoseconds=7)
    ours = assert_same_profile(df, ["f", "i", "d", "b", "ns"], top_n=3, bottom_n=3)
    assert [r["value"] for r in ours[0][2][1]][:1] == ["1.0"]


def test_registered_tables_and_db_api_are_accepted(fake_1000):
    exprs = ["city", "substr(dob, 1, 4)"]
    expected = our_profile(profile_columns(fake_1000, column_expressions=exprs))
    gl_db = gl.DuckDBAPI()
    for table, db_api in [
        (gl_db.register(fake_1000), gl_db),
        (DuckDBAPI().register(fake_1000), DuckDBAPI()),
        (fake_1000, None),
    ]:
        assert our_profile(profile_columns(table, db_api, column_expressions=exprs)) == expected
    # Splink 5 passes the expressions second; Splink 4 passed db_api second
    assert our_profile(profile_columns(fake_1000, exprs)) == expected
    assert our_profile(profile_columns(fake_1000, DuckDBAPI(), exprs)) == expected
    assert_same_profile(fake_1000, exprs, gl_input=gl_db.register(fake_1000, table_name="t"))


def test_column_expression_objects(fake_1000):
    ce = gl.ColumnExpression("city").lower().substr(1, 3)
    (title, _, data), *_ = our_profile(profile_columns(fake_1000, column_expressions=[ce]))
    assert title == f"Distribution of counts of values in column {ce.name}"
    assert_same_profile(fake_1000, [ce.name])
    from splink import ColumnExpression as SplinkColumnExpression

    with pytest.raises(SettingsError, match="gpulink.ColumnExpression"):
        profile_columns(fake_1000, column_expressions=[SplinkColumnExpression("city")])


def test_all_null_expression_is_left_out_with_a_warning(fake_1000, caplog):
    df = fake_1000.assign(empty=None)
    with caplog.at_level(logging.WARNING, logger="gpulink"):
        ours = our_profile(profile_columns(df, column_expressions=["empty", "city"]))
    assert [o[0] for o in ours] == ["Distribution of counts of values in column city"]
    assert "empty" in caplog.text
    with pytest.raises(InputError, match=r"only null values in empty"):
        profile_columns(df, column_expressions=["empty"])


def test_top_n_zero_gives_an_empty_list(fake_1000):
    # Splink fails here (it reads the first of the top values); gpulink draws no bars
    ((_, _, data),) = our_profile(profile_columns(fake_1000, column_expressions="city", top_n=0))
    assert data[1] == [] and len(data[2]) == 10


@pytest.mark.parametrize("bad", [-1, 2.5, True, "10", None])
def test_bad_top_n_and_bottom_n(fake_1000, bad):
    with pytest.raises(SettingsError, match=rf"top_n must be .* got {bad!r}"):
        profile_columns(fake_1000, column_expressions=["city"], top_n=bad)
    with pytest.raises(SettingsError, match=rf"bottom_n must be .* got {bad!r}"):
        profile_columns(fake_1000, column_expressions=["city"], bottom_n=bad)


def test_bad_inputs_name_the_value_and_the_fix(fake_1000):
    with pytest.raises(InputError, match=r"'citty'.*did you mean 'city'"):
        profile_columns(fake_1000, column_expressions=["lower(citty)"])
    renamed = fake_1000.rename(columns={"dob": "dob_x"})
    with pytest.raises(InputError, match=r"'dob' .*input table 1 \(did you mean 'dob_x'"):
        profile_columns([fake_1000, renamed], column_expressions=["substr(dob, 1, 4)"])
    with pytest.raises(
        SettingsError, match=r"unknown function 'soundex' in column expression 'soundex\(city\)'"
    ):
        profile_columns(fake_1000, column_expressions=["soundex(city)"])
    with pytest.raises(SettingsError, match=r"cannot parse column expression 'lower\(city'"):
        profile_columns(fake_1000, column_expressions=["lower(city"])
    with pytest.raises(InputError, match=r"cannot count the values of 'tags', of type list"):
        profile_columns(pd.DataFrame({"tags": [["a"], ["b"]]}), column_expressions=["tags"])
    with pytest.raises(InputError, match="empty list of tables"):
        profile_columns([])
    with pytest.raises(InputError, match="empty list of tables"):
        completeness_chart([])
    with pytest.raises(SettingsError, match="db_api must be a database API"):
        profile_columns(fake_1000, 42)
    with pytest.raises(SettingsError, match="both as db_api"):
        profile_columns(fake_1000, ["city"], column_expressions=["dob"])


def test_case_insensitive_columns_as_in_duckdb(fake_1000):
    ((title, _, data),) = assert_same_profile(fake_1000, ["lower(CITY)"])
    assert title.endswith("lower(CITY)") and data[1][0]["value"] == "london"


# -- completeness_chart -------------------------------------------------------------------------


def splink_completeness(frames, **kwargs):
    return sx.completeness_chart(register(frames), **kwargs).chart_dict["data"]["values"]


def test_completeness_matches_splink_on_two_tables(fake_1000, historical):
    pairs = [
        [fake_1000, fake_1000.sample(300, random_state=1)],
        [historical.iloc[:30000], historical.iloc[30000:]],
    ]
    for frames in pairs:
        expected = splink_completeness(frames)
        ours = chart_records(completeness_chart(frames))
        assert_same_records(expected, ours, "completeness")
        assert len(ours) == 2 * len(frames[0].columns)
        assert any(r["completeness"] < 1 for r in ours)


def test_completeness_cols_and_names(fake_1000, historical):
    frames = [historical.iloc[:100], historical.iloc[100:]]
    names = ["early", "late"]
    for kwargs in [
        {"cols": ["surname", "dob", "occupation"]},
        {"cols": ['"surname"'], "table_names_for_chart": names},
        {"table_names_for_chart": names},
    ]:
        expected = splink_completeness(frames, **kwargs)
        assert_same_records(expected, chart_records(completeness_chart(frames, **kwargs)), kwargs)
    # one table, Splink 5's positional cols, either db_api
    expected = splink_completeness(fake_1000, cols=["first_name", "email"])
    for chart in [
        completeness_chart(fake_1000, ["first_name", "email"]),
        completeness_chart(fake_1000, gl.DuckDBAPI(), ["first_name", "email"]),
        completeness_chart(register(fake_1000), DuckDBAPI(), cols=["first_name", "email"]),
    ]:
        assert_same_records(expected, chart_records(chart), "one table")


def test_completeness_bad_input(fake_1000):
    with pytest.raises(InputError, match=r"'emial'.*did you mean 'email'"):
        completeness_chart(fake_1000, cols=["emial"])
    with pytest.raises(InputError, match=r"'email'.*input table 1"):
        completeness_chart([fake_1000, fake_1000.drop(columns="email")], cols=["email"])
    with pytest.raises(
        SettingsError, match=r"one name .* per input table: 2 table\(s\), got \['a'\]"
    ):
        completeness_chart([fake_1000, fake_1000], table_names_for_chart=["a"])


def test_module_exports():
    import gpulink.exploratory

    assert gpulink.exploratory.profile_columns is profile_columns
    assert gl.exploratory.completeness_chart is completeness_chart
    assert set(sx.__all__) <= set(gx.__all__)


def test_missing_altair_names_the_extra(without_altair, fake_1000):
    with pytest.raises(MissingDependency, match=r'pip install "gpulink\[charts\]"'):
        profile_columns(fake_1000, column_expressions=["city"])
    with pytest.raises(MissingDependency, match=r'pip install "gpulink\[charts\]"'):
        completeness_chart(fake_1000)
    # the records need no Altair
    assert gx.completeness_records(fake_1000, ["city"])[0]["total_null_rows"] > 0
