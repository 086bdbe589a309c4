"""``chart_comparisons_from_blocking_rules`` (module and linker) and
``linker.blocking_analysis.n_largest_blocks`` against Splink 5 (the oracle), computed here.

Splink counts exactly with ``record_sample_proportion=1.0`` (gpulink always counts exactly), so
its chart records are compared with ours field for field. DuckDB orders blocks of equal
``block_count`` arbitrarily under ``ORDER BY ... LIMIT``: the tests pin everything above the
last count returned and check that the tied blocks at it are some of Splink's blocks of that
count.
"""

from __future__ import annotations

import copy
import logging

import pytest

pd = pytest.importorskip("pandas")
splink = pytest.importorskip("splink")

from splink import DuckDBAPI  # noqa: E402
from splink.blocking_analysis import (  # noqa: E402
    chart_comparisons_from_blocking_rules as splink_chart,
)

import gpulink as gl  # noqa: E402
from gpulink.blocking_analysis import chart_comparisons_from_blocking_rules  # noqa: E402
from gpulink.errors import InputError, SettingsError  # noqa: E402

# The second rule admits no pairs: ids are unique, and pairs need l.unique_id < r.unique_id.
RULES = [
    lambda m: m.block_on("first_name"),
    lambda m: m.block_on("unique_id"),
    lambda m: "l.surname = r.surname and l.dob = r.dob",
]


def _inputs(df, link_type):
    if link_type == "dedupe_only":
        return [df]
    return [df[df.unique_id % 2 == t].reset_index(drop=True) for t in range(2)]


def _registered(dfs):
    db = DuckDBAPI()
    tables = [db.register(d) for d in dfs]
    return tables if len(tables) > 1 else tables[0]


def _splink_records(chart):
    return chart.chart_dict["data"]["values"]


def _settings(link_type, rules):
    return {
        "link_type": link_type,
        "comparisons": [],
        "blocking_rules_to_generate_predictions": rules,
    }


def _splink_linker(dfs, link_type, rules):
    settings = splink.SettingsCreator(
        link_type=link_type, comparisons=[], blocking_rules_to_generate_predictions=rules
    )
    return splink.Linker(_registered(dfs), settings, log_level=logging.ERROR)


def _gpulink_linker(dfs, link_type, rules):
    data = dfs if len(dfs) > 1 else dfs[0]
    return gl.Linker(data, _settings(link_type, rules), backend="cpu")


def _check_spec(ours, theirs):
    """Splink's title, size, mark and the field of every encoding channel."""
    assert ours["title"] == theirs["title"]
    assert (ours["width"], ours["height"]) == (theirs["width"], theirs["height"])
    assert ours["mark"]["type"] == theirs["mark"]
    for channel, enc in theirs["encoding"].items():
        if channel == "tooltip":
            assert [t["field"] for t in ours["encoding"][channel]] == [t["field"] for t in enc]
        else:
            assert ours["encoding"][channel]["field"] == enc["field"], channel


@pytest.mark.parametrize("link_type", ["dedupe_only", "link_only"])
def test_chart_records_are_splinks(fake_1000, link_type):
    pytest.importorskip("altair")
    from gpulink.visualisations import chart_records

    dfs = _inputs(fake_1000, link_type)
    theirs = splink_chart(
        _registered(dfs),
        blocking_rules=[make(splink) for make in RULES],
        link_type=link_type,
        record_sample_proportion=1.0,
    )
    expected = _splink_records(theirs)
    assert [r["marginal_comparison_count"] for r in expected][1] == 0  # the rule that adds none
    assert all(r["marginal_comparison_count"] > 0 for r in expected[::2])
    chart = chart_comparisons_from_blocking_rules(
        dfs if len(dfs) > 1 else dfs[0],
        blocking_rules=[make(gl) for make in RULES],
        link_type=link_type,
    )
    assert chart_records(chart) == expected
    _check_spec(chart.to_dict(), theirs.chart_spec)


@pytest.mark.parametrize("link_type", ["dedupe_only", "link_only"])
def test_linker_chart_records_are_splinks(fake_1000, link_type):
    pytest.importorskip("altair")
    from gpulink.visualisations import chart_records

    dfs = _inputs(fake_1000, link_type)
    model_rules = [RULES[0], RULES[2]]
    sl = _splink_linker(dfs, link_type, [make(splink) for make in model_rules])
    gk = _gpulink_linker(dfs, link_type, [make(gl) for make in model_rules])

    # the model's rules by default
    expected = _splink_records(
        sl.blocking_analysis.chart_comparisons_from_blocking_rules(record_sample_proportion=1.0)
    )
    assert len(expected) == 2
    assert chart_records(gk.blocking_analysis.chart_comparisons_from_blocking_rules()) == expected

    # rules passed in, on columns the model's rules do not use
    other = [splink.block_on("dob"), splink.block_on("unique_id"), splink.block_on("city")]
    expected = _splink_records(
        sl.blocking_analysis.chart_comparisons_from_blocking_rules(
            other, record_sample_proportion=1.0
        )
    )
    ours = gk.blocking_analysis.chart_comparisons_from_blocking_rules(
        [gl.block_on("dob"), gl.block_on("unique_id"), gl.block_on("city")],
        record_sample_proportion=0.05,  # accepted, ignored: gpulink counts exactly
    )
    assert chart_records(ours) == expected
    assert expected[1]["marginal_comparison_count"] == 0


def _rows(frame):
    return [tuple(r) for r in frame.itertuples(index=False, name=None)]


@pytest.mark.parametrize("link_type", ["dedupe_only", "link_only"])
@pytest.mark.parametrize(
    "exprs", [("first_name",), ("substr(surname,1,2)", "lower(city)"), ("dob",)]
)
def test_linker_n_largest_blocks_are_splinks(fake_1000, link_type, exprs):
    dfs = _inputs(fake_1000, link_type)
    sl = _splink_linker(dfs, link_type, [splink.block_on("surname")])
    gk = _gpulink_linker(dfs, link_type, [gl.block_on("surname")])

    every = sl.blocking_analysis.n_largest_blocks(
        splink.block_on(*exprs), n_largest=1_000_000
    ).as_pandas_dataframe()
    ours_every = gk.blocking_analysis.n_largest_blocks(
        gl.block_on(*exprs), n_largest=1_000_000
    ).as_pandas_dataframe()
    assert len(every) > 10
    assert list(ours_every.columns) == list(every.columns)
    assert sorted(_rows(ours_every), key=repr) == sorted(_rows(every), key=repr)
    assert ours_every["block_count"].is_monotonic_decreasing

    for n in (1, 5, 12):
        theirs = sl.blocking_analysis.n_largest_blocks(
            splink.block_on(*exprs), n_largest=n
        ).as_pandas_dataframe()
        ours = gk.blocking_analysis.n_largest_blocks(gl.block_on(*exprs), n_largest=n)
        ours = ours.as_pandas_dataframe()
        assert list(ours.columns) == list(theirs.columns)
        assert ours["block_count"].tolist() == theirs["block_count"].tolist()
        cut = int(theirs["block_count"].iloc[-1])
        above = theirs["block_count"] > cut
        assert set(_rows(ours[ours["block_count"] > cut])) == set(_rows(theirs[above]))
        # ties at the cut: DuckDB picks some of them, gpulink others; all are Splink's blocks
        assert set(_rows(ours[ours["block_count"] == cut])) <= set(
            _rows(every[every["block_count"] == cut])
        )


def test_linker_n_largest_blocks_default_is_five(fake_1000):
    gk = _gpulink_linker([fake_1000], "dedupe_only", [gl.block_on("surname")])
    sl = _splink_linker([fake_1000], "dedupe_only", [splink.block_on("surname")])
    ours = gk.blocking_analysis.n_largest_blocks(gl.block_on("surname")).as_pandas_dataframe()
    theirs = sl.blocking_analysis.n_largest_blocks(splink.block_on("surname"))
    assert len(ours) == len(theirs.as_pandas_dataframe()) == 5


@pytest.mark.parametrize("bad", [0, -1, 2.5, "5", True, None])
def test_n_largest_must_be_a_positive_int(fake_1000, bad):
    from gpulink.blocking_analysis import n_largest_blocks

    gk = _gpulink_linker([fake_1000], "dedupe_only", [gl.block_on("surname")])
    with pytest.raises(SettingsError, match=r"n_largest must be a positive integer.*n_largest=5"):
        gk.blocking_analysis.n_largest_blocks(gl.block_on("surname"), n_largest=bad)
    with pytest.raises(SettingsError, match=repr(bad).replace(".", r"\.")):
        n_largest_blocks(
            fake_1000, blocking_rule=gl.block_on("surname"), link_type="dedupe_only", n_largest=bad
        )


def test_unknown_column_names_it_and_the_columns(fake_1000):
    pytest.importorskip("altair")
    gk = _gpulink_linker([fake_1000], "dedupe_only", [gl.block_on("surname")])
    calls = [
        lambda: gk.blocking_analysis.n_largest_blocks(gl.block_on("lower(surnme)")),
        lambda: gk.blocking_analysis.chart_comparisons_from_blocking_rules(
            [gl.block_on("first_name"), "l.surnme = r.surnme"]
        ),
        lambda: gk.blocking_analysis.count_comparisons_from_blocking_rules([gl.block_on("surnme")]),
        lambda: chart_comparisons_from_blocking_rules(
            fake_1000, blocking_rules=[gl.block_on("surnme")], link_type="dedupe_only"
        ),
    ]
    for call in calls:
        with pytest.raises(InputError, match=r"'surnme'.*the input has columns: unique_id"):
            call()


def test_linker_without_rules_says_to_pass_them(fake_1000):
    pytest.importorskip("altair")
    gk = gl.Linker(fake_1000, copy.deepcopy(_settings("dedupe_only", [])), backend="cpu")
    with pytest.raises(SettingsError, match="pass blocking_rules"):
        gk.blocking_analysis.chart_comparisons_from_blocking_rules()
    with pytest.raises(SettingsError, match="pass blocking_rules"):
        gk.blocking_analysis.count_comparisons_from_blocking_rules()


def test_chart_renders_and_saves(fake_1000, tmp_path):
    pytest.importorskip("altair")
    chart = chart_comparisons_from_blocking_rules(
        fake_1000, blocking_rules=[gl.block_on("first_name")], link_type="dedupe_only"
    )
    chart.save(tmp_path / "chart.html")
    assert (tmp_path / "chart.html").stat().st_size > 0
