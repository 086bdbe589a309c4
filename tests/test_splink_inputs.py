"""Splink 5 code runs after an import change: registered tables, DuckDBAPI, ColumnExpression in
block_on, and the top-level names. Splink 5 + DuckDB is the oracle."""

from __future__ import annotations

import copy
import importlib
import logging
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

import gpulink as gl  # noqa: E402
from gpulink.blocking_analysis import (  # noqa: E402
    count_comparisons_from_blocking_rules,
)
from gpulink.errors import SettingsError  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def fake_1000():
    path = DATA / "fake_1000.csv"
    if not path.exists():
        pytest.skip(f"reference data {path} is absent")
    return pd.read_csv(path)


def halves(df):
    return df.iloc[:500].reset_index(drop=True), df.iloc[500:].reset_index(drop=True)


def model(m, link_type="dedupe_only", rules=None):
    """Settings with fixed m, u and λ (built by library ``m``: splink or gpulink)."""
    cl = importlib.import_module(f"{m.__name__}.comparison_library")
    settings = m.SettingsCreator(
        link_type=link_type,
        comparisons=[
            cl.ExactMatch("first_name").configure(
                m_probabilities=[0.9, 0.1], u_probabilities=[0.01, 0.99]
            ),
            cl.LevenshteinAtThresholds("surname", [2]).configure(
                m_probabilities=[0.8, 0.15, 0.05], u_probabilities=[0.005, 0.02, 0.975]
            ),
            cl.ExactMatch("dob").configure(
                m_probabilities=[0.85, 0.15], u_probabilities=[0.002, 0.998]
            ),
            cl.ExactMatch("city").configure(
                term_frequency_adjustments=True,
                m_probabilities=[0.7, 0.3],
                u_probabilities=[0.1, 0.9],
            ),
        ],
        blocking_rules_to_generate_predictions=rules
        or [m.block_on("first_name"), m.block_on("dob")],
        probability_two_random_records_match=0.002,
        retain_matching_columns=False,
    )
    return settings


def gp_frame(linker) -> pd.DataFrame:
    return linker.inference.predict().to_pandas()


def keyed(df: pd.DataFrame) -> dict:
    """{(source_l, uid_l, source_r, uid_r): (match_key, match_weight)}."""
    sl = df["source_dataset_l"] if "source_dataset_l" in df else [None] * len(df)
    sr = df["source_dataset_r"] if "source_dataset_r" in df else [None] * len(df)
    out = {}
    for a, b, c, d, k, w in zip(
        sl, df["unique_id_l"], sr, df["unique_id_r"], df["match_key"], df["match_weight"]
    ):
        out[(a, str(b), c, str(d))] = (str(k), float(w))
    assert len(out) == len(df)
    return out


def assert_same(expected: pd.DataFrame, got: pd.DataFrame):
    e, g = keyed(expected), keyed(got)
    assert len(e) > 50
    assert e.keys() == g.keys()
    assert all(e[k][0] == g[k][0] for k in e), "match_key differs"
    we = np.array([e[k][1] for k in e])
    wg = np.array([g[k][1] for k in e])
    np.testing.assert_allclose(wg, we, rtol=0, atol=1e-9)


# -- 3. ColumnExpression in block_on ---------------------------------------------------------

CE_RULES = [
    lambda m, CE: m.block_on(CE("surname").lower().substr(1, 3), "dob"),
    lambda m, CE: m.block_on(CE("email").regex_extract("^[^@]+")),
    lambda m, CE: m.block_on(CE("dob").try_parse_date(), CE("first_name").nullif("")),
    lambda m, CE: m.block_on(CE("city").cast_to_string().lower(), CE("substr(dob, 1, 4)")),
]


def test_block_on_column_expressions_equals_splink(fake_1000):
    splink = pytest.importorskip("splink")
    ours = [make(gl, gl.ColumnExpression) for make in CE_RULES]
    theirs = [make(splink, splink.ColumnExpression) for make in CE_RULES]
    for o, t in zip(ours, theirs):
        assert o.sql == t.get_blocking_rule("duckdb").blocking_rule_sql
    settings = model(splink, rules=theirs)
    sp = splink.Linker(
        splink.DuckDBAPI().register(fake_1000), copy.deepcopy(settings), log_level=logging.ERROR
    )
    expected = sp.inference.predict().as_pandas_dataframe()
    assert set(expected["match_key"].astype(str)) == {"0", "1", "2", "3"}
    got = gp_frame(gl.Linker(fake_1000, model(gl, rules=ours), backend="cpu"))
    assert_same(expected, got)
    counts = splink.blocking_analysis.count_comparisons_from_blocking_rules(
        splink.DuckDBAPI().register(fake_1000), blocking_rules=theirs, link_type="dedupe_only",
        record_sample_proportion=1.0,
    )  # fmt: skip
    assert (
        count_comparisons_from_blocking_rules(
            fake_1000, blocking_rules=ours, link_type="dedupe_only"
        )
        == counts
    )


def test_block_on_column_expression_model_json_round_trip(fake_1000, tmp_path):
    rule = gl.block_on(gl.ColumnExpression("surname").lower().substr(1, 3), "dob")
    linker = gl.Linker(fake_1000, model(gl, rules=[rule]), backend="cpu")
    linker.misc.save_model_to_json(str(tmp_path / "m.json"))
    again = gl.Linker(fake_1000, str(tmp_path / "m.json"), backend="cpu")
    assert_same(gp_frame(linker), gp_frame(again))
    assert (
        again.settings.to_splink_dict()["blocking_rules_to_generate_predictions"][0][
            "blocking_rule"
        ]
        == rule.sql
    )


def test_block_on_rejects_other_objects_naming_the_fix():
    splink = pytest.importorskip("splink")
    with pytest.raises(SettingsError, match="use gpulink.ColumnExpression"):
        gl.block_on(splink.ColumnExpression("surname"))
    with pytest.raises(SettingsError, match="must be a column name"):
        gl.block_on(3)
