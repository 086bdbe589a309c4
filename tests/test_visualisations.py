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
from gpulink.visualisations import chart_datasets, chart_records  # noqa: E402


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


@pytest.fixture(scope="module")
def predictions(trained):
    """Both engines' predictions of the trained model (the same pairs, weights to 1e-9)."""
    sl, gk = trained
    return (
        sl.inference.predict(threshold_match_weight=-5),
        gk.inference.predict(threshold_match_weight=-5),
    )


def test_waterfall_chart_records_are_splinks(fake_1000, trained, predictions):
    sl, gk = trained
    s_rows = predictions[0].as_pandas_dataframe()
    g_rows = predictions[1].to_pandas()
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


def test_missing_altair_names_the_extra(without_altair, fake_1000):
    s = gl.SettingsCreator("dedupe_only", [gl.comparison_library.ExactMatch("surname")])
    gk = gl.Linker(fake_1000, s, backend="cpu")
    with pytest.raises(MissingDependency, match=r'pip install "gpulink\[charts\]"'):
        gk.visualisations.match_weights_chart()


# -- match_weights_histogram, tf_adjustment_chart, unlinkables_chart ----------------------------


@pytest.mark.parametrize("target_bins", [30, 100, 300, 3000, 5])
def test_match_weights_histogram_records_are_splinks(trained, predictions, target_bins):
    """Bin widths 1, 0.25, 0.1, 0.01 and 5: Splink's high edges add the width as a float32."""
    sl, gk = trained
    s_pred, g_pred = predictions
    expected = sl.visualisations.match_weights_histogram(s_pred, target_bins, width=321)
    expected = expected.chart_dict
    chart = gk.visualisations.match_weights_histogram(g_pred, target_bins, width=321)
    assert_same_records(expected["data"]["values"], chart_records(chart))
    spec = chart.to_dict()
    assert (spec["width"], spec["height"]) == (expected["width"], expected["height"])
    assert sum(r["count_rows"] for r in chart_records(chart)) == len(g_pred)


def test_match_weights_histogram_takes_any_table_with_match_weight(trained, predictions):
    _, gk = trained
    g_pred = predictions[1]
    chart = gk.visualisations.match_weights_histogram(g_pred)
    for other in (g_pred.to_pandas(), g_pred.to_arrow().select(["match_weight"])):
        assert chart_records(gk.visualisations.match_weights_histogram(other)) == chart_records(
            chart
        )


def _tf_rows_key(r):
    return (r["gamma"], r["log2_bf_tf"], str(r.get("value")))


def assert_same_tf_rows(expected, ours, every):
    """The same rows, except that among values of the same frequency (the same ``log2_bf_tf``)
    Splink's rank cut picks some in the database's order and gpulink in order of value: those
    rows must agree in everything but the value, and each value must be one of that frequency.
    """
    expected = sorted(expected, key=_tf_rows_key)
    ours = sorted(ours, key=_tf_rows_key)
    drop = [{k: v for k, v in r.items() if k != "value"} for r in expected]
    assert_same_records(drop, [{k: v for k, v in r.items() if k != "value"} for r in ours])
    adjustment = {(r["gamma"], r["value"]): r["log2_bf_tf"] for r in every}
    tied = {}
    for r in every:
        tied.setdefault((r["gamma"], r["log2_bf_tf"]), []).append(r["value"])
    for s, g in zip(expected, ours):
        assert same(adjustment[(g["gamma"], g["value"])], g["log2_bf_tf"]), g
        if len(tied[(s["gamma"], s["log2_bf_tf"])]) == 1:
            assert s["value"] == g["value"], (s, g)


TF_CASES = [
    ("first_name", {}),
    ("city", {"n_most_freq": 3, "n_least_freq": 2}),
    ("first_name", {"n_most_freq": 10**6, "n_least_freq": 10**6}),
    ("city", {"n_most_freq": 0, "n_least_freq": 5}),
]


@pytest.mark.parametrize("column, kwargs", TF_CASES)
def test_tf_adjustment_chart_records_are_splinks(trained, column, kwargs):
    sl, gk = trained
    expected = sl.visualisations.tf_adjustment_chart(column, **kwargs).chart_dict
    every = sl.visualisations.tf_adjustment_chart(column, 10**6, 10**6).chart_dict
    spec = gk.visualisations.tf_adjustment_chart(column, **kwargs, as_dict=True)
    ours = chart_datasets(spec)
    assert set(ours) == {"data", "hist"}
    assert len(ours["data"]) > 0
    assert_same_tf_rows(expected["datasets"]["data"], ours["data"], every["datasets"]["data"])
    hist_key = lambda r: (r["gamma"], r["log2_bf_final"])  # noqa: E731
    assert_same_records(
        sorted(expected["datasets"]["hist"], key=hist_key), sorted(ours["hist"], key=hist_key)
    )
    s_param = expected["config"]["params"][0]
    g_param = spec["params"][0]
    assert (g_param["name"], g_param["value"]) == (s_param["name"], s_param["value"])
    for k in ("options", "labels", "name"):
        assert g_param["bind"][k] == s_param["bind"][k]


def test_tf_adjustment_chart_vals_to_include_as_splink(trained):
    """As in Splink 5, ``vals_to_include`` narrows the rank cut (it does not add values), and
    a value missing from the data warns."""
    sl, gk = trained
    every = sl.visualisations.tf_adjustment_chart("first_name", 10**6, 10**6).chart_dict
    every = sorted(every["datasets"]["data"], key=_tf_rows_key)
    frequent, middle = every[0]["value"], every[len(every) // 2]["value"]
    assert every[0]["log2_bf_tf"] < every[1]["log2_bf_tf"], "the most frequent name is unique"
    vals = [frequent, middle, "Not-a-name"]
    with pytest.warns(UserWarning, match="Not-a-name"):
        expected = sl.visualisations.tf_adjustment_chart("first_name", vals_to_include=vals)
    with pytest.warns(UserWarning, match="Not-a-name"):
        chart = gk.visualisations.tf_adjustment_chart("first_name", vals_to_include=vals)
    ours = chart_datasets(chart)["data"]
    assert_same_tf_rows(expected.chart_dict["datasets"]["data"], ours, every)
    assert frequent in {r["value"] for r in ours}
    single = gk.visualisations.tf_adjustment_chart("first_name", vals_to_include=frequent)
    assert [r["value"] for r in chart_datasets(single)["data"]] == [frequent]


@pytest.mark.parametrize(
    "x_col, name", [("match_weight", None), ("match_probability", "fake_1000")]
)
def test_unlinkables_chart_records_are_splinks(trained, x_col, name):
    """Each record scored against itself (nulls in city, TF on first_name and city).

    Splink 5 builds its match_probability spec from a key its spec file lacks (KeyError
    'selection'), so the spec compared is its match_weight one; the rows do not depend on
    ``x_col``.
    """
    sl, gk = trained
    expected = sl.evaluation.unlinkables_chart("match_weight", name)
    assert expected.raw_records == sl.evaluation.unlinkables_chart(x_col, name).raw_records
    expected = expected.chart_dict
    spec = gk.evaluation.unlinkables_chart(x_col, name, as_dict=True)
    assert_same_records(expected["data"]["values"], chart_records(spec))
    assert len(expected["data"]["values"]) > 20
    assert spec["title"]["text"] == expected["title"]["text"]
    x = spec["layer"][0]["encoding"]["x"]
    assert x["field"] == x_col
    axis_title = {"match_weight": expected["layer"][0]["encoding"]["x"]["axis"]["title"]}
    axis_title["match_probability"] = "Threshold match probability"  # Splink's, in its code
    assert x["axis"]["title"] == axis_title[x_col]


@pytest.mark.parametrize("link_type", ["link_only", "link_and_dedupe"])
def test_unlinkables_in_link_jobs_are_splinks(fake_1000, link_type):
    """Every record of both tables is scored against itself (u from a sample, default m)."""
    s = SettingsCreator(
        link_type=link_type,
        comparisons=[
            scl.ExactMatch("first_name").configure(term_frequency_adjustments=True),
            scl.LevenshteinAtThresholds("surname", [2]),
            scl.ExactMatch("dob"),
            scl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[block_on("surname")],
    ).create_settings_dict("duckdb")
    tables = [fake_1000.iloc[:500], fake_1000.iloc[500:]]
    db = DuckDBAPI()
    sl = splink.Linker([db.register(t) for t in tables], copy.deepcopy(s), log_level=logging.ERROR)
    sl.training.estimate_u_using_random_sampling(max_pairs=1e5, seed=1)
    gk = gl.Linker(tables, copy.deepcopy(sl.misc.save_model_to_json()), backend="cpu")
    expected = sl.evaluation.unlinkables_chart().chart_dict["data"]["values"]
    assert len(expected) > 20
    assert_same_records(expected, chart_records(gk.evaluation.unlinkables_chart()))


def test_unlinkables_self_link_scores_are_splinks(trained):
    """The self-link weights themselves, record by record, before Splink's rounding."""
    from gpulink.unlinkables import self_link_scores

    sl, gk = trained
    s = sl._self_link().as_pandas_dataframe().sort_values("unique_id_l")
    ours = self_link_scores(gk).to_pandas().sort_values("unique_id")
    assert ours["unique_id"].tolist() == s["unique_id_l"].tolist()
    diff = abs(ours["match_weight"].to_numpy() - s["match_weight"].to_numpy())
    assert diff.max() < 1e-9
    diff = abs(ours["match_probability"].to_numpy() - s["match_probability"].to_numpy())
    assert diff.max() < 1e-9


def test_duckdb_round_is_duckdbs():
    """Near-halves (the product with 10**k rounds to exactly .5 in doubles), exact halves,
    and random values, rounded to 2 and 5 places by DuckDB and by gpulink."""
    duckdb = pytest.importorskip("duckdb")
    import numpy as np

    from gpulink.unlinkables import duckdb_round

    rng = np.random.default_rng(7)
    halves = (rng.integers(-3000, 3000, 400) + 0.5) / 100
    near = np.concatenate(
        [halves, np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf), [0.125, -0.375]]
    )
    values = np.concatenate([near, rng.normal(0, 20, 2000), rng.uniform(0, 1, 2000)])
    import pyarrow as pa

    con = duckdb.connect()
    con.register("v", pa.table({"i": np.arange(len(values)), "x": values}))
    for decimals in (2, 5):
        rows = con.execute(f"select round(x, {decimals}) from v order by i").fetchall()
        expected = np.array([r[0] for r in rows])
        assert np.array_equal(duckdb_round(values, decimals), expected)


def test_bin_counts_are_duckdbs_histogram():
    """Values on the edges, between them and on the first edge, as DuckDB's histogram()."""
    duckdb = pytest.importorskip("duckdb")
    import numpy as np

    from gpulink.visualisations import bin_counts

    edges = np.arange(-6, 9) / 2
    values = np.concatenate([edges, edges[1:] - 0.25, np.nextafter(edges[:-1], np.inf)])
    (hist,) = duckdb.execute(
        "select histogram(x, ?::double[]) from (select unnest(?::double[]) as x)",
        [edges.tolist(), values.tolist()],
    ).fetchone()
    expected = [hist.get(e, 0) for e in edges.tolist()]
    assert sum(expected) == len(values)
    assert bin_counts(values, edges).tolist() == expected


def test_unlinkables_records_are_splinks_sql():
    """Splink's unlinkables SQL (splink/internals/unlinkables.py) run by DuckDB on self-link
    scores with halves to round, shared probabilities and probabilities that round to 1."""
    duckdb = pytest.importorskip("duckdb")
    import numpy as np
    import pyarrow as pa

    from gpulink.unlinkables import unlinkables_records

    rng = np.random.default_rng(3)
    weight = np.concatenate(
        [[0.125, -0.375, 2.675, 0.125, 17.5, 30.0], np.round(rng.normal(0, 8, 500), 1)]
    )
    prob = 2**weight / (1 + 2**weight)
    prob[:3] = [0.000125, 0.123455, 0.999995]  # halves at 5 places; the last rounds to 1
    scores = pa.table({"match_weight": weight, "match_probability": prob})
    con = duckdb.connect()
    con.register("self_link", scores)
    rows = con.execute(
        """
        with r as (
            select round(match_weight, 2) as match_weight,
                round(match_probability, 5) as match_probability
            from self_link),
        p as (
            select max(match_weight) as match_weight, match_probability,
                count(*) / cast(sum(count(*)) over () as float) as prop
            from r group by match_probability order by match_probability)
        select *, sum(prop) over(order by match_probability) as cum_prop
        from p where match_probability < 1 order by match_probability
        """
    ).fetchall()
    names = ["match_weight", "match_probability", "prop", "cum_prop"]
    expected = [dict(zip(names, row)) for row in rows]
    assert any(r["match_weight"] == 0.13 for r in expected)  # DuckDB: halves away from zero
    assert_same_records(expected, unlinkables_records(scores))


def test_new_charts_render_and_as_dict(trained, predictions, tmp_path):
    _, gk = trained
    charts = {
        "hist": gk.visualisations.match_weights_histogram(predictions[1]),
        "tf": gk.visualisations.tf_adjustment_chart("city"),
        "unl": gk.evaluation.unlinkables_chart(),
    }
    for name, chart in charts.items():
        spec = chart.to_dict()
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
        chart.save(tmp_path / f"{name}.html")
        assert "vega" in (tmp_path / f"{name}.html").read_text()
    assert gk.visualisations.tf_adjustment_chart("city", as_dict=True) == charts["tf"].to_dict()
    assert gk.evaluation.unlinkables_chart(as_dict=True) == charts["unl"].to_dict()


def test_new_charts_refuse_bad_input(trained, predictions):
    _, gk = trained
    vis = gk.visualisations
    with pytest.raises(gl.SettingsError, match=r"'surnam'.*'first_name', 'surname'"):
        vis.tf_adjustment_chart("surnam")
    with pytest.raises(gl.SettingsError, match=r"'surname' has no level with term-frequency.*"
                       r"'first_name', 'city'"):  # fmt: skip
        vis.tf_adjustment_chart("surname")
    with pytest.raises(gl.SettingsError, match="n_most_freq must be a non-negative integer"):
        vis.tf_adjustment_chart("city", n_most_freq=-1)
    with pytest.raises(gl.SettingsError, match="target_bins must be a positive integer"):
        vis.match_weights_histogram(predictions[1], target_bins=0)
    no_weights = predictions[1].to_arrow().drop_columns(["match_weight"])
    with pytest.raises(gl.InputError, match="no 'match_weight' column.*predict"):
        vis.match_weights_histogram(no_weights)
    with pytest.raises(gl.InputError, match="no finite match weight"):
        vis.match_weights_histogram(predictions[1].to_arrow().slice(0, 0))
    with pytest.raises(gl.SettingsError, match="x_col must be 'match_weight' or 'match_prob"):
        gk.evaluation.unlinkables_chart(x_col="weight")
    with pytest.raises(gl.InputError, match="2 data sets.*chart_datasets"):
        chart_records(vis.tf_adjustment_chart("city"))
