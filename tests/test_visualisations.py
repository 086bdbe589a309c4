"""``linker.visualisations`` against Splink 5 (the oracle): each chart plots the same records.

The model is trained in Splink and loaded into gpulink through its model JSON, so both hold the
same parameters; the parameter-estimates chart compares the same training steps run in both (u
from every pair, EM from the same start). Splink's records are read from its chart dict, ours
from the Altair chart's data.
"""

from __future__ import annotations

import copy
import logging
import math

import pytest

pytest.importorskip("altair")
pd = pytest.importorskip("pandas")
splink = pytest.importorskip("splink")

import splink.comparison_library as scl  # noqa: E402
from splink import DuckDBAPI, SettingsCreator, block_on  # noqa: E402

import gpulink as gl  # noqa: E402
from gpulink.errors import MissingDependency  # noqa: E402
from gpulink.visualisations import chart_records  # noqa: E402


def comparisons():
    return [
        scl.NameComparison("first_name").configure(term_frequency_adjustments=True),
        scl.JaroAtThresholds("surname"),
        scl.LevenshteinAtThresholds("dob", [1, 2]),
        scl.ExactMatch("city").configure(term_frequency_adjustments=True),
        scl.EmailComparison("email"),
    ]


def splink_linker(df, settings):
    db = DuckDBAPI()
    return splink.Linker(db.register(df), copy.deepcopy(settings), log_level=logging.ERROR)


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isinf(a) or math.isinf(b):
            return a == b
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
    return a == b


def assert_same_records(splink_records, ours):
    assert len(ours) == len(splink_records), (len(ours), len(splink_records))
    for i, (s, g) in enumerate(zip(splink_records, ours)):
        assert set(g) == set(s), f"row {i}: fields {sorted(set(g) ^ set(s))} differ"
        bad = {k: (s[k], g[k]) for k in s if not same(s[k], g[k])}
        assert not bad, f"row {i} ({s.get('comparison_name')}): {bad}"


@pytest.fixture(scope="module")
def trained(fake_1000):
    """A model trained in Splink (u from every pair, two EM sessions) and its JSON."""
    s = SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[block_on("first_name"), block_on("surname")],
        retain_intermediate_calculation_columns=True,
    )
    sl = splink_linker(fake_1000, s.create_settings_dict("duckdb"))
    sl.training.estimate_u_using_random_sampling(max_pairs=1e6, min_count_per_level=None)
    sl.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    sl.training.estimate_parameters_using_expectation_maximisation(block_on("first_name"))
    model = sl.misc.save_model_to_json()
    gk = gl.Linker(fake_1000, copy.deepcopy(model), backend="cpu")
    return sl, gk


def test_match_weights_chart_records_are_splinks(trained):
    sl, gk = trained
    expected = sl.visualisations.match_weights_chart().chart_dict["data"]["values"]
    chart = gk.visualisations.match_weights_chart()
    assert_same_records(expected, chart_records(chart))
    assert "Exact match on first_name" in {r["label_for_charts"] for r in expected}


def test_m_u_parameters_chart_records_are_splinks(trained):
    sl, gk = trained
    expected = sl.visualisations.m_u_parameters_chart().chart_dict["data"]["values"]
    assert_same_records(expected, chart_records(gk.visualisations.m_u_parameters_chart()))


def test_charts_render_and_save(trained, tmp_path):
    _, gk = trained
    vis = gk.visualisations
    for name, chart in [
        ("mw", vis.match_weights_chart()),
        ("mu", vis.m_u_parameters_chart()),
        ("pe", vis.parameter_estimate_comparisons_chart()),
    ]:
        spec = chart.to_dict()
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
        chart.save(tmp_path / f"{name}.html")
        assert "vega" in (tmp_path / f"{name}.html").read_text()


def test_waterfall_chart_records_are_splinks(fake_1000, trained):
    sl, gk = trained
    s_rows = sl.inference.predict(threshold_match_weight=-5).as_pandas_dataframe()
    g_rows = gk.inference.predict(threshold_match_weight=-5).to_pandas()
    keys = ["unique_id_l", "unique_id_r"]
    # the same 12 pairs, in the same order: a spread of weights, TF on and off
    picked = s_rows.sort_values("match_weight").iloc[:: max(1, len(s_rows) // 12)][keys]
    s_pick = picked.merge(s_rows, on=keys, how="left").to_dict("records")
    g_pick = picked.merge(g_rows, on=keys, how="left").to_dict("records")
    assert any(r["gamma_city"] == 1 for r in g_pick) or any(
        r["gamma_first_name"] == 4 for r in g_pick
    ), "pick pairs whose TF adjustments apply"
    for filter_nulls in (True, False):
        expected = sl.visualisations.waterfall_chart(s_pick, filter_nulls).chart_dict
        chart = gk.visualisations.waterfall_chart(g_pick, filter_nulls=filter_nulls)
        assert_same_records(expected["data"]["values"], chart_records(chart))
    hidden = sl.visualisations.waterfall_chart(s_pick, remove_sensitive_data=True).chart_dict
    ours = gk.visualisations.waterfall_chart(g_pick, remove_sensitive_data=True)
    assert_same_records(hidden["data"]["values"], chart_records(ours))


def test_waterfall_needs_intermediate_columns(fake_1000):
    s = gl.SettingsCreator(
        "dedupe_only",
        [gl.comparison_library.ExactMatch("surname")],
        blocking_rules_to_generate_predictions=[gl.block_on("dob")],
    )
    gk = gl.Linker(fake_1000, s, backend="cpu")
    rows = gk.inference.predict().to_pandas().to_dict("records")[:2]
    with pytest.raises(gl.GpulinkError, match="retain_intermediate_calculation_columns"):
        gk.visualisations.waterfall_chart(rows)


@pytest.mark.parametrize("include_m, include_u", [(True, False), (True, True), (False, True)])
def test_parameter_estimate_records_are_splinks(fake_1000, include_m, include_u):
    """The same steps in both engines: exact u (every pair), then EM from that start."""
    s = SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[block_on("first_name")],
        probability_two_random_records_match=0.002,
        max_iterations=3,
    )
    d = s.create_settings_dict("duckdb")
    sl = splink_linker(fake_1000, d)
    gk = gl.Linker(fake_1000, copy.deepcopy(d), backend="cpu")
    sl.training.estimate_u_using_random_sampling(max_pairs=1e6, min_count_per_level=None)
    gk.training.estimate_u_using_random_sampling(max_pairs=1e6, min_count_per_level=None)
    for rule in (block_on("dob"), block_on("first_name", "surname")):
        for linker in (sl, gk):
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
    expected = sl.visualisations.parameter_estimate_comparisons_chart(include_m, include_u)
    expected = expected.chart_dict["data"]["values"]
    chart = gk.visualisations.parameter_estimate_comparisons_chart(include_m, include_u)
    assert_same_records(expected, chart_records(chart))
    kinds = {k for k, keep in (("m", include_m), ("u", include_u)) if keep}
    assert {r["m_or_u"] for r in expected} == kinds
    if include_m:  # email's level 1 is never seen by EM on dob: Splink's text, not a number
        assert any(isinstance(r["estimated_probability"], str) for r in expected)


def test_missing_altair_names_the_extra(monkeypatch, fake_1000):
    import builtins

    real_import = builtins.__import__

    def no_altair(name, *args, **kwargs):
        if name == "altair" or name.startswith("altair."):
            raise ModuleNotFoundError("No module named 'altair'", name="altair")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_altair)
    s = gl.SettingsCreator("dedupe_only", [gl.comparison_library.ExactMatch("surname")])
    gk = gl.Linker(fake_1000, s, backend="cpu")
    with pytest.raises(MissingDependency, match=r'pip install "gpulink\[charts\]"'):
        gk.visualisations.match_weights_chart()
