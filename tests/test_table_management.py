"""Splink 5's registered tables (``linker.table_management.register_table``,
``register_table_predict``, ``register_labels_table``,
``delete_tables_created_by_splink_from_db``) and ``linker.misc.query_sql``, with Splink 5 +
DuckDB as the oracle: the same tables registered with both engines, the same workflows run,
the outputs compared."""

from __future__ import annotations

import copy
import gc
import logging
import sys

import numpy as np
import pyarrow as pa
import pytest

pd = pytest.importorskip("pandas")
splink = pytest.importorskip("splink")
pytest.importorskip("duckdb")

import splink.comparison_library as scl  # noqa: E402
from splink import DuckDBAPI, SettingsCreator, block_on  # noqa: E402

import gpulink as gl  # noqa: E402
from tests.conftest import DATA  # noqa: E402
from tests.test_accuracy_parity import assert_same_table  # noqa: E402


@pytest.fixture(scope="module")
def trained(fake_1000, tmp_path_factory):
    """A Splink model trained on fake_1000 and the gpulink linker loaded from its JSON."""
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            scl.NameComparison("first_name"),
            scl.JaroAtThresholds("surname"),
            scl.DateOfBirthComparison("dob", input_is_string=True),
            scl.ExactMatch("city").configure(term_frequency_adjustments=True),
            scl.EmailComparison("email"),
        ],
        blocking_rules_to_generate_predictions=[block_on("first_name"), block_on("surname")],
    )
    db = DuckDBAPI()
    sl = splink.Linker(db.register(fake_1000), settings, log_level=logging.ERROR)
    sl.training.estimate_u_using_random_sampling(max_pairs=1e5)
    sl.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    path = tmp_path_factory.mktemp("tables") / "model.json"
    sl.misc.save_model_to_json(str(path), overwrite=True)
    gk = gl.Linker(fake_1000, str(path), backend="cpu", set_up_basic_logging=False)
    return db, sl, gk


@pytest.fixture(scope="module")
def splink_predictions(trained, tmp_path_factory):
    """Splink's predictions, written to parquet and read back (the documented workflow)."""
    _, sl, _ = trained
    path = tmp_path_factory.mktemp("pred") / "predict.parquet"
    sl.inference.predict(threshold_match_probability=0.01).to_parquet(str(path))
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def labels():
    path = DATA / "fake_1000_labels.csv"
    if not path.exists():
        pytest.skip(f"reference labels {path} are absent")
    return pd.read_csv(path)


def _assignments(clusters) -> dict:
    df = clusters.as_pandas_dataframe()
    return dict(zip(df["unique_id"].astype(str), df["cluster_id"].astype(str)))


def _fresh(trained, fake_1000):
    """A gpulink linker of the trained model with an empty table registry."""
    _, _, gk = trained
    return gl.Linker(fake_1000, copy.deepcopy(gk.settings), backend="cpu")


# -- register_table_predict -----------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.999])
def test_clusters_of_registered_predictions_are_splinks(trained, splink_predictions, threshold):
    db, sl, gk = trained
    s_pred = sl.table_management.register_table_predict(db.register(splink_predictions))
    g_pred = gk.table_management.register_table_predict(splink_predictions)
    assert g_pred.templated_name == s_pred.templated_name == "__splink__df_predict"
    s = sl.clustering.cluster_pairwise_predictions_at_threshold(s_pred, threshold)
    g = gk.clustering.cluster_pairwise_predictions_at_threshold(g_pred, threshold)
    expected = _assignments(s)
    assert len(set(expected.values())) < len(expected)  # some records do cluster
    assert _assignments(g) == expected
    assert g.metadata["threshold_match_probability"] == threshold


def test_registered_splink_dataframe_keeps_its_physical_name(trained, splink_predictions):
    db, sl, gk = trained
    sdf = db.register(splink_predictions)
    s_pred = sl.table_management.register_table_predict(sdf)
    g_pred = gk.table_management.register_table_predict(sdf)
    assert g_pred.physical_name == s_pred.physical_name == sdf.physical_name
    own = gl.DuckDBAPI().register(splink_predictions, table_name="old_predictions")
    assert gk.table_management.register_table_predict(own).physical_name == "old_predictions"


def test_registered_predictions_work_as_predict_results(trained, fake_1000):
    """Clusters, graph metrics and charts of a re-registered predict output are those of the
    predict output itself; so is a link job's, with its source datasets."""
    gk = _fresh(trained, fake_1000)
    pairs = gk.inference.predict(threshold_match_probability=0.01)
    again = gk.table_management.register_table_predict(
        pairs.to_pandas().sample(frac=1, random_state=3)
    )
    a = gk.clustering.cluster_pairwise_predictions_at_threshold(pairs, 0.9)
    b = gk.clustering.cluster_pairwise_predictions_at_threshold(again, 0.9)
    assert _assignments(a) == _assignments(b)
    ga = gk.clustering.compute_graph_metrics(pairs, a).nodes.to_pandas()
    gb = gk.clustering.compute_graph_metrics(again, b).nodes.to_pandas()
    key = "composite_unique_id"
    pd.testing.assert_frame_equal(
        ga.sort_values(key).reset_index(drop=True), gb.sort_values(key).reset_index(drop=True)
    )
    # by name, as Splink's methods taking a table name
    c = gk.clustering.cluster_pairwise_predictions_at_threshold(again.physical_name, 0.9)
    assert _assignments(c) == _assignments(a)
    assert gk.visualisations.match_weights_histogram(again) is not None


def test_link_job_registered_predictions_cluster_as_splink(fake_1000):
    halves = [
        fake_1000.iloc[::2].reset_index(drop=True),
        fake_1000.iloc[1::2].reset_index(drop=True),
    ]
    settings = SettingsCreator(
        link_type="link_and_dedupe",
        comparisons=[scl.ExactMatch("first_name"), scl.ExactMatch("dob"), scl.ExactMatch("city")],
        blocking_rules_to_generate_predictions=[block_on("surname")],
    )
    db = DuckDBAPI()
    sl = splink.Linker(
        [db.register(h, dataset_display_name=n) for h, n in zip(halves, "ab")],
        copy.deepcopy(settings), log_level=logging.ERROR,
    )  # fmt: skip
    gk = gl.Linker(halves, copy.deepcopy(settings), "cpu", input_table_aliases=["a", "b"])
    predictions = sl.inference.predict().as_pandas_dataframe()
    s = sl.clustering.cluster_pairwise_predictions_at_threshold(
        sl.table_management.register_table_predict(db.register(predictions)), 0.5
    ).as_pandas_dataframe()
    g = gk.clustering.cluster_pairwise_predictions_at_threshold(
        gk.table_management.register_table_predict(predictions), 0.5
    ).to_pandas()
    key = lambda df: dict(  # noqa: E731
        zip(df["source_dataset"] + "-" + df["unique_id"].astype(str), df["cluster_id"].astype(str))
    )
    assert len(set(key(s).values())) < len(s)
    assert key(g) == key(s)
    with pytest.raises(gl.InputError, match="source_dataset_l"):
        gk.table_management.register_table_predict(predictions.drop(columns="source_dataset_l"))


def test_bad_predictions_tables_are_errors_naming_the_fix(trained, fake_1000, splink_predictions):
    gk = _fresh(trained, fake_1000)
    tm = gk.table_management
    with pytest.raises(gl.InputError, match=r"lacks the column\(s\) \['unique_id_r'\]"):
        tm.register_table_predict(splink_predictions.drop(columns="unique_id_r"))
    stranger = splink_predictions.head(3).copy()
    stranger.loc[1, "unique_id_r"] = 10_000
    with pytest.raises(gl.InputError, match="1 of the 3 pairs.*10000"):
        tm.register_table_predict(stranger)
    with pytest.raises(gl.InputError, match="no table named 'nope'"):
        gk.clustering.cluster_pairwise_predictions_at_threshold("nope", 0.5)
    with pytest.raises(gl.InputError, match="register_table_predict"):
        gk.clustering.cluster_pairwise_predictions_at_threshold(
            gl.linker.LinkResult(pa.Table.from_pandas(splink_predictions)), 0.5
        )


# -- register_labels_table ------------------------------------------------------------------------


def test_accuracy_from_registered_labels_is_splinks(trained, labels):
    db, sl, gk = trained
    s_labels = sl.table_management.register_labels_table(db.register(labels))
    g_labels = gk.table_management.register_labels_table(labels)
    assert g_labels.templated_name == s_labels.templated_name == "__splink__df_labels"
    kw = {"output_type": "table", "match_weight_round_to_nearest": None}
    s = sl.evaluation.accuracy_analysis_from_labels_table(s_labels, **kw).as_pandas_dataframe()
    g = gk.evaluation.accuracy_analysis_from_labels_table(g_labels, **kw).as_pandas_dataframe()
    assert_same_table(s, g)
    # by table name, as Splink's labels_splinkdataframe_or_table_name
    sl.table_management.register_table(labels, "my_labels", overwrite=True)
    gk.table_management.register_table(labels, "my_labels", overwrite=True)
    s = sl.evaluation.accuracy_analysis_from_labels_table("my_labels", **kw).as_pandas_dataframe()
    g = gk.evaluation.accuracy_analysis_from_labels_table("my_labels", **kw).as_pandas_dataframe()
    assert_same_table(s, g)


@pytest.mark.parametrize("threshold", [0.5, 0.95])
def test_prediction_errors_from_registered_labels_are_splinks(trained, labels, threshold):
    db, sl, gk = trained
    s = sl.evaluation.prediction_errors_from_labels_table(
        sl.table_management.register_labels_table(db.register(labels)),
        threshold_match_probability=threshold,
    ).as_pandas_dataframe()
    g = gk.evaluation.prediction_errors_from_labels_table(
        gk.table_management.register_labels_table(labels), threshold_match_probability=threshold
    ).to_pandas()
    cols = ["unique_id_l", "unique_id_r", "truth_status"]
    rows = lambda df: sorted(map(tuple, df[cols].astype(str).values))  # noqa: E731
    assert len(s) > 0
    assert rows(g) == rows(s)


def test_bad_labels_tables_are_errors(trained, fake_1000, labels):
    gk = _fresh(trained, fake_1000)
    with pytest.raises(gl.InputError, match=r"\['clerical_match_score'\]"):
        gk.table_management.register_labels_table(labels.drop(columns="clerical_match_score"))
    bad = labels.assign(clerical_match_score="yes")
    with pytest.raises(
        gl.InputError, match="clerical_match_score has type (large_)?string; it must hold numbers"
    ):
        gk.table_management.register_labels_table(bad)
    with pytest.raises(gl.InputError, match="no table named 'absent'"):
        gk.evaluation.accuracy_analysis_from_labels_table("absent", output_type="table")


# -- register_table and query_sql -----------------------------------------------------------------


QUERIES = [
    "select city, count(*) as n from people group by city order by n desc, city nulls last",
    "select first_name, surname from people where dob < '1975-01-01' order by 1, 2",
    "select p.unique_id, q.x from people p join extra q on p.unique_id = q.id order by 1",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_query_sql_over_registered_tables_is_splinks(trained, fake_1000, sql):
    _, sl, gk = trained
    extra = {"id": [3, 1, 2, 999], "x": ["c", "a", "b", "z"]}
    for linker in (sl, gk):
        linker.table_management.register_table(fake_1000, "people", overwrite=True)
        linker.table_management.register_table(extra, "extra", overwrite=True)
    expected = sl.misc.query_sql(sql, output_type="pandas")
    got = gk.misc.query_sql(sql, output_type="pandas")
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected)
    s_df, g_df = sl.misc.query_sql(sql), gk.misc.query_sql(sql)  # Splink's default: splink_df
    pd.testing.assert_frame_equal(g_df.as_pandas_dataframe(), s_df.as_pandas_dataframe())
    assert g_df.templated_name == s_df.templated_name == "__splink__df_sql_query"


def test_query_sql_over_predictions_by_physical_name_is_splinks(trained):
    _, sl, gk = trained
    sql = (
        "select unique_id_l, unique_id_r, match_weight from {} "
        "where match_probability > 0.9 order by unique_id_l, unique_id_r"
    )
    s_pred, g_pred = sl.inference.predict(), gk.inference.predict()
    assert g_pred.physical_name.startswith("__splink__df_predict_")
    s = sl.misc.query_sql(sql.format(s_pred.physical_name), output_type="pandas")
    g = gk.misc.query_sql(sql.format(g_pred.physical_name), output_type="pandas")
    assert len(s) > 0
    assert g[["unique_id_l", "unique_id_r"]].values.tolist() == (
        s[["unique_id_l", "unique_id_r"]].values.tolist()
    )
    assert np.allclose(g["match_weight"], s["match_weight"], rtol=1e-9, atol=1e-9)
    clusters = gk.clustering.cluster_pairwise_predictions_at_threshold(g_pred, 0.9)
    n = gk.misc.query_sql(
        f"select count(distinct cluster_id) as n from {clusters.physical_name}", "pandas"
    )
    assert n["n"][0] == clusters.to_pandas()["cluster_id"].nunique()
    latest = gk.misc.query_sql("select count(*) as n from __splink__df_predict", "pandas")
    assert latest["n"][0] == len(g_pred)


def test_a_taken_name_is_an_error_unless_overwrite(trained, fake_1000):
    _, sl, _ = trained
    gk = _fresh(trained, fake_1000)
    sl.table_management.register_table({"a": [1]}, "taken_once", overwrite=True)
    with pytest.raises(ValueError, match="already exists"):  # Splink's refusal
        sl.table_management.register_table({"a": [2]}, "taken_once")
    gk.table_management.register_table({"a": [1]}, "taken_once")
    with pytest.raises(gl.TableExistsError, match="'taken_once'.*overwrite=True"):
        gk.table_management.register_table({"a": [2]}, "taken_once")
    assert isinstance(gl.TableExistsError("x"), ValueError)  # Splink users' except clauses
    gk.table_management.register_table([{"a": 2}, {"a": 3}], "taken_once", overwrite=True)
    assert gk.misc.query_sql("select a from taken_once", "pandas")["a"].tolist() == [2, 3]
    pairs = gk.inference.predict()
    with pytest.raises(gl.TableExistsError, match=pairs.physical_name):
        gk.table_management.register_table({"a": [1]}, pairs.physical_name)


def test_query_sql_errors(trained, fake_1000, monkeypatch):
    gk = _fresh(trained, fake_1000)
    gk.table_management.register_table({"a": [1]}, "t")
    with pytest.raises(gl.SettingsError, match="'duckdb' is not supported.*'pandas'"):
        gk.misc.query_sql("select * from t", output_type="duckdb")
    with pytest.raises(gl.InputError, match=r"(?s)no_such_table.*\['t'\]"):
        gk.misc.query_sql("select * from no_such_table")
    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(gl.MissingDependency, match="pip install duckdb"):
        gk.misc.query_sql("select * from t")


def test_produced_tables_are_visible_while_held(trained, fake_1000):
    gk = _fresh(trained, fake_1000)
    pairs = gk.inference.predict()
    name = pairs.physical_name
    assert gk.misc.query_sql(f"select count(*) as n from {name}", "pandas")["n"][0] == len(pairs)
    del pairs
    gc.collect()
    with pytest.raises(gl.InputError, match=name):
        gk.misc.query_sql(f"select * from {name}")
    result = gk.misc.query_sql("select 42 as answer")
    assert gk.misc.query_sql(f"select * from {result.physical_name}", "pandas")["answer"][0] == 42
    result.drop_table_from_database_and_remove_from_cache()
    with pytest.raises(gl.InputError, match=result.physical_name):
        gk.misc.query_sql(f"select * from {result.physical_name}")


def test_delete_tables_created_by_splink_keeps_registered_tables(trained, fake_1000):
    _, sl, _ = trained
    gk = _fresh(trained, fake_1000)
    s_pairs, g_pairs = sl.inference.predict(), gk.inference.predict()
    for linker in (sl, gk):
        linker.table_management.register_table({"a": [1, 2]}, "kept", overwrite=True)
        linker.table_management.delete_tables_created_by_splink_from_db()
        # as in Splink, the user's table survives
        assert linker.misc.query_sql("select sum(a) as s from kept", "pandas")["s"][0] == 3
    for linker, pairs in ((sl, s_pairs), (gk, g_pairs)):
        with pytest.raises(Exception, match=pairs.physical_name):
            linker.misc.query_sql(f"select * from {pairs.physical_name}")
    again = gk.inference.predict()
    pd.testing.assert_frame_equal(again.to_pandas(), g_pairs.to_pandas())
    assert gk._table is not None  # rebuilt on use


def test_invalidate_cache_forgets_produced_tables(trained, fake_1000):
    gk = _fresh(trained, fake_1000)
    pairs = gk.inference.predict()
    gk.table_management.register_table({"a": [1]}, "kept")
    gk.table_management.invalidate_cache()
    assert gk._tables.names() == ["kept"]
    assert len(pairs) > 0  # the caller's result is intact
