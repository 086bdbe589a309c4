"""``linker.evaluation.prediction_errors_from_labels_*`` against Splink 5 + DuckDB: a model trained
in Splink, loaded into gpulink from its model JSON, and the error tables compared as sets of pairs,
column by column (same columns in the same order, dtypes, floats to 1e-9)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("splink")

import gpulink as gl  # noqa: E402
from gpulink.prediction_errors import status  # noqa: E402
from tests import test_accuracy_parity as acc  # noqa: E402

trained, labels = acc.trained, acc.labels  # the accuracy tests' Splink model and labels

KEYS = ["unique_id_l", "unique_id_r"]
THRESHOLDS = [0.5, 0.05, 0.9, 1e-4]
INCLUDE = [(True, True), (True, False), (False, True)]


def assert_same_errors(s: pd.DataFrame, g: pd.DataFrame):
    assert list(g.columns) == list(s.columns)
    if len(s):  # an empty DuckDB result reads back with object columns
        assert {c: str(t) for c, t in g.dtypes.items()} == {c: str(t) for c, t in s.dtypes.items()}
    s = s.sort_values(KEYS).reset_index(drop=True)
    g = g.sort_values(KEYS).reset_index(drop=True)
    assert len(g) == len(s)
    for col in s.columns:
        if s[col].dtype.kind == "f":
            a, b = s[col].to_numpy(float), g[col].to_numpy(float)
            ok = np.isclose(a, b, rtol=1e-9, atol=1e-9) | (np.isnan(a) & np.isnan(b))
            assert ok.all(), f"column {col!r} differs on {int((~ok).sum())} rows"
        else:
            assert s[col].isna().tolist() == g[col].isna().tolist(), col
            a, b = s[col].dropna().tolist(), g[col].dropna().tolist()
            assert a == b, f"column {col!r} differs"


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("fp,fn", INCLUDE)
def test_prediction_errors_from_labels_column_as_splink(trained, threshold, fp, fn):
    _, sl, gk = trained
    kwargs = dict(
        include_false_positives=fp,
        include_false_negatives=fn,
        threshold_match_probability=threshold,
    )
    s = sl.evaluation.prediction_errors_from_labels_column("cluster", **kwargs)
    g = gk.evaluation.prediction_errors_from_labels_column("cluster", **kwargs)
    assert isinstance(g, gl.linker.LinkResult)
    s, g = s.as_pandas_dataframe(), g.as_pandas_dataframe()
    assert_same_errors(s, g)
    if threshold == 1e-4 and fp and fn:  # the case exercises both kinds and missed positives
        assert (s["clerical_match_score"] == 0).any() and (s["clerical_match_score"] == 1).any()
        assert (~s["found_by_blocking_rules"]).any()


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("fp,fn", INCLUDE)
def test_prediction_errors_from_labels_table_as_splink(trained, labels, threshold, fp, fn):
    db, sl, gk = trained
    kwargs = dict(
        include_false_positives=fp,
        include_false_negatives=fn,
        threshold_match_probability=threshold,
    )
    table = sl.table_management.register_labels_table(db.register(labels))
    s = sl.evaluation.prediction_errors_from_labels_table(table, **kwargs).as_pandas_dataframe()
    g = gk.evaluation.prediction_errors_from_labels_table(labels, **kwargs).as_pandas_dataframe()
    assert_same_errors(s, g)
    if threshold == 1e-4 and fp and fn:
        assert set(s["truth_status"]) == {"FP", "FN"}


def test_status_naive_reference():
    """Each pair's status equals Splink's two strict comparisons, pair by pair."""
    rng = np.random.default_rng(0)
    clerical = rng.choice([0.0, 0.5, 1.0], 300)
    prob = np.round(rng.random(300), 1)
    for t in (0.0, 0.5, 1.0):
        got = status(clerical, prob, t)
        for c, p, s in zip(clerical, prob, got):
            want = "FP" if c < t and p > t else "FN" if c > t and p < t else None
            assert s == want


def test_bad_arguments(trained):
    _, _, gk = trained
    ev = gk.evaluation
    with pytest.raises(gl.SettingsError, match="include_false_positives"):
        ev.prediction_errors_from_labels_column(
            "cluster", include_false_positives=False, include_false_negatives=False
        )
    with pytest.raises(gl.InputError, match="nope"):
        ev.prediction_errors_from_labels_column("nope")
    with pytest.raises(gl.InputError, match="clerical_match_score"):
        ev.prediction_errors_from_labels_table(pa.table({"unique_id_l": [0], "unique_id_r": [1]}))


def test_labels_table_with_blocking_rule_only_columns(trained, labels, fake_1000):
    """A column only a blocking rule reads is in the output, where Splink puts it."""
    import json
    import logging

    import splink

    db, sl, _ = trained
    model = sl.misc.save_model_to_json()
    model["comparisons"] = [c for c in model["comparisons"] if c["output_column_name"] != "city"]
    model["blocking_rules_to_generate_predictions"] = ["l.surname = r.surname", "l.city = r.city"]
    sl2 = splink.Linker(
        db.register(fake_1000), json.loads(json.dumps(model)), log_level=logging.ERROR
    )
    gk2 = gl.Linker(fake_1000, json.loads(json.dumps(model)), backend="cpu")
    assert "city_l" in gk2.inference.predict().columns
    table = sl2.table_management.register_labels_table(db.register(labels))
    kwargs = dict(threshold_match_probability=1e-4)
    s = sl2.evaluation.prediction_errors_from_labels_table(table, **kwargs).as_pandas_dataframe()
    g = gk2.evaluation.prediction_errors_from_labels_table(labels, **kwargs).as_pandas_dataframe()
    assert "city_l" in s.columns
    assert_same_errors(s, g)
