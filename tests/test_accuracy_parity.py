"""Label-based accuracy analysis (``linker.evaluation.accuracy_analysis_from_labels_*``) against
Splink 5 + DuckDB: a model trained in Splink, loaded into gpulink from its model JSON, and the
truth-space tables compared row by row, column by column (floats to 1e-9, dtypes equal)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pyarrow as pa
import pytest

pd = pytest.importorskip("pandas")
splink = pytest.importorskip("splink")

import splink.comparison_library as scl  # noqa: E402
from splink import DuckDBAPI, SettingsCreator, block_on  # noqa: E402

import gpulink as gl  # noqa: E402
from gpulink.accuracy import round_truth_threshold, truth_space_table  # noqa: E402
from tests.conftest import DATA  # noqa: E402


@pytest.fixture(scope="module")
def trained(fake_1000, tmp_path_factory):
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            scl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            scl.JaroAtThresholds("surname"),
            scl.DateOfBirthComparison("dob", input_is_string=True),
            scl.ExactMatch("city").configure(term_frequency_adjustments=True),
            scl.EmailComparison("email"),
        ],
        blocking_rules_to_generate_predictions=[block_on("first_name"), block_on("surname")],
    )
    db = DuckDBAPI()
    sl = splink.Linker(db.register(fake_1000), settings, log_level=logging.ERROR)
    sl.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname")], recall=0.7
    )
    sl.training.estimate_u_using_random_sampling(max_pairs=1e5)
    sl.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    path = tmp_path_factory.mktemp("acc") / "model.json"
    sl.misc.save_model_to_json(str(path), overwrite=True)
    gk = gl.Linker(fake_1000, str(path), backend="cpu")
    return db, sl, gk


@pytest.fixture(scope="module")
def labels():
    path = DATA / "fake_1000_labels.csv"
    if not path.exists():
        pytest.skip(f"reference labels {path} are absent")
    return pd.read_csv(path)


def assert_same_table(s, g):
    assert list(g.columns) == list(s.columns)
    assert g.dtypes.to_dict() == s.dtypes.to_dict()
    s = s.sort_values("truth_threshold").reset_index(drop=True)
    g = g.sort_values("truth_threshold").reset_index(drop=True)
    assert len(g) == len(s) > 0
    for col in s.columns:
        a, b = s[col].to_numpy(float), g[col].to_numpy(float)
        ok = np.isclose(a, b, rtol=1e-9, atol=1e-9) | (np.isnan(a) & np.isnan(b))
        assert ok.all(), f"column {col!r} differs on {int((~ok).sum())} rows"


COLUMN_CASES = [
    {},
    {"match_weight_round_to_nearest": None},
    {"match_weight_round_to_nearest": 0.25, "threshold_match_probability": 0.9},
    {"positives_not_captured_by_blocking_rules_scored_as_zero": False},
]


@pytest.mark.parametrize("kwargs", COLUMN_CASES, ids=str)
def test_truth_space_from_labels_column_as_splink(trained, kwargs):
    _, sl, gk = trained
    s = sl.evaluation.accuracy_analysis_from_labels_column("cluster", output_type="table", **kwargs)
    g = gk.evaluation.accuracy_analysis_from_labels_column("cluster", output_type="table", **kwargs)
    assert isinstance(g, gl.linker.LinkResult)
    assert_same_table(s.as_pandas_dataframe(), g.as_pandas_dataframe())


@pytest.mark.parametrize(
    "kwargs", [{}, {"match_weight_round_to_nearest": None, "threshold_match_probability": 0.3}]
)
def test_truth_space_from_labels_table_as_splink(trained, labels, kwargs):
    db, sl, gk = trained
    table = sl.table_management.register_labels_table(db.register(labels))
    s = sl.evaluation.accuracy_analysis_from_labels_table(table, output_type="table", **kwargs)
    g = gk.evaluation.accuracy_analysis_from_labels_table(labels, output_type="table", **kwargs)
    assert_same_table(s.as_pandas_dataframe(), g.as_pandas_dataframe())
    # the same labels as an Arrow table, ids swapped: lower id goes left, as in Splink
    swapped = pa.table(
        {
            "unique_id_l": labels["unique_id_r"],
            "unique_id_r": labels["unique_id_l"],
            "clerical_match_score": labels["clerical_match_score"],
        }
    )
    g2 = gk.evaluation.accuracy_analysis_from_labels_table(swapped, output_type="table", **kwargs)
    assert_same_table(s.as_pandas_dataframe(), g2.as_pandas_dataframe())


def test_missed_positives_counted_not_enumerated(trained, fake_1000):
    """P is every within-cluster pair, though the blocking rules miss some."""
    _, _, gk = trained
    t = gk.evaluation.accuracy_analysis_from_labels_column("cluster", output_type="table")
    sizes = fake_1000["cluster"].value_counts().to_numpy()
    assert t.as_record_list()[0]["p"] == (sizes * (sizes - 1) // 2).sum()
    n = len(fake_1000)
    assert t.as_record_list()[0]["total_clerical_labels"] == n * (n - 1) / 2


def test_rounding_is_duckdbs():
    # halves away from zero; the step in single precision (cast(0.1 as float))
    assert round_truth_threshold(np.array([2.5, -2.5]), 1.0).tolist() == [3.0, -3.0]
    assert round_truth_threshold(np.array([0.49999999999999994]), 1.0).tolist() == [0.0]
    assert round_truth_threshold(np.array([1.0]), 0.1)[0] == 10 * float(np.float32(0.1))


def test_truth_space_naive_reference():
    """Each row equals a direct count at its threshold."""
    rng = np.random.default_rng(0)
    tt = np.round(rng.normal(0, 3, 200), 1)
    pos = rng.random(200) < 0.4
    t = truth_space_table(tt, pos).to_pandas()
    for row in t.itertuples():
        pred = tt >= row.truth_threshold
        assert row.tp == (pred & pos).sum() and row.fp == (pred & ~pos).sum()
        assert row.fn == (~pred & pos).sum() and row.tn == (~pred & ~pos).sum()


def test_bad_arguments(trained):
    _, _, gk = trained
    ev = gk.evaluation
    with pytest.raises(gl.SettingsError, match="add_metrics"):
        ev.accuracy_analysis_from_labels_column("cluster", add_metrics=["bogus"])
    with pytest.raises(gl.SettingsError, match="output_type"):
        ev.accuracy_analysis_from_labels_column("cluster", output_type="pie")
    with pytest.raises(gl.InputError, match="nope"):
        ev.accuracy_analysis_from_labels_column("nope", output_type="table")
    with pytest.raises(gl.InputError, match="clerical_match_score"):
        ev.accuracy_analysis_from_labels_table(pa.table({"unique_id_l": [0], "unique_id_r": [1]}))


@pytest.mark.parametrize(
    "output_type", ["threshold_selection", "accuracy", "roc", "precision_recall"]
)
def test_charts(trained, output_type):
    alt = pytest.importorskip("altair")
    _, _, gk = trained
    chart = gk.evaluation.accuracy_analysis_from_labels_column(
        "cluster", output_type=output_type, add_metrics=["f1", "phi"]
    )
    assert isinstance(chart, alt.TopLevelMixin)
    assert chart.to_dict()


def test_charts_without_altair(trained, monkeypatch):
    _, _, gk = trained
    monkeypatch.setitem(sys.modules, "altair", None)
    with pytest.raises(gl.MissingDependency, match=r'pip install "gpulink\[charts\]"'):
        gk.evaluation.accuracy_analysis_from_labels_column("cluster")
