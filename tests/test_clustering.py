"""Clustering on the CPU: against a plain union-find, networkx and Splink 5's own clustering."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from gpulink.clustering import (
    cluster_at_multiple_thresholds,
    cluster_at_threshold,
    cluster_pairwise_predictions_at_multiple_thresholds,
    cluster_pairwise_predictions_at_threshold,
    connected_components,
    threshold_column_name,
)
from gpulink.errors import InputError, SettingsError
from gpulink.kernels.components import connected_components_cpu, connected_components_reference

nx = pytest.importorskip("networkx")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def graph_cases():
    """Named (n_nodes, edges_l, edges_r) graphs covering the shapes that break union-finds."""
    rng = np.random.default_rng(2024)
    n = 200
    chain = np.arange(n - 1)
    cases = {
        "empty": (0, np.array([], int), np.array([], int)),
        "no_edges": (7, np.array([], int), np.array([], int)),
        "chain": (n, chain, chain + 1),
        "chain_reversed": (n, chain[::-1] + 1, chain[::-1]),
        "star_to_max": (n, np.full(n - 1, n - 1), np.arange(n - 1)),
        "star_from_middle": (n, np.full(n - 1, 100), np.delete(np.arange(n), 100)),
        "self_loops": (10, np.arange(10), np.arange(10)),
        "duplicates": (10, np.array([3, 3, 4, 3, 9]), np.array([4, 4, 3, 4, 0])),
        "sparse_random": (1000, rng.integers(0, 1000, 300), rng.integers(0, 1000, 300)),
        "dense_random": (300, rng.integers(0, 300, 2000), rng.integers(0, 300, 2000)),
        "two_cliques": (
            20,
            np.array(
                [i for i in range(10) for j in range(10)]
                + [10 + i for i in range(10) for j in range(10)]
            ),
            np.array(
                [j for i in range(10) for j in range(10)]
                + [10 + j for i in range(10) for j in range(10)]
            ),
        ),
    }
    return cases


def networkx_min_labels(n, edges_l, edges_r):
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(edges_l.tolist(), edges_r.tolist()))
    labels = np.empty(n, dtype=np.int64)
    for comp in nx.connected_components(g):
        labels[list(comp)] = min(comp)
    return labels


@pytest.mark.parametrize("name", list(graph_cases()))
def test_cpu_components_equal_networkx_and_reference(name):
    n, el, er = graph_cases()[name]
    expected = networkx_min_labels(n, el, er)
    assert connected_components_cpu(n, el, er).tolist() == expected.tolist()
    assert connected_components_reference(n, el, er).tolist() == expected.tolist()
    assert connected_components(n, el, er, backend="cpu").tolist() == expected.tolist()


def test_cpu_components_do_not_depend_on_edge_order():
    rng = np.random.default_rng(5)
    n = 5000
    el, er = rng.integers(0, n, 4000), rng.integers(0, n, 4000)
    base = connected_components_cpu(n, el, er)
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(el.size)
        assert (connected_components_cpu(n, er[perm], el[perm]) == base).all()


def test_cluster_ids_are_the_smallest_unique_id_not_the_smallest_index():
    uid = pa.array(["m", "c", "x", "a", "q"])
    t = cluster_at_threshold(
        uid, [0, 2, 3], [1, 1, 4], [0.9, 0.9, 0.2], threshold_match_probability=0.5
    )
    assert t.column_names == ["cluster_id", "unique_id"]
    assert t.column("cluster_id").to_pylist() == ["c", "c", "c", "a", "q"]
    # numbers order numerically, not as text
    t = cluster_at_threshold(pa.array([10, 9, 100]), [0, 2], [1, 0], None)
    assert t.column("cluster_id").to_pylist() == [9, 9, 9]


def test_threshold_is_inclusive_nulls_dropped_and_weights_converted():
    uid = pa.array([1, 2, 3, 4])
    mp = pa.array([0.75, None, 0.7499])
    el, er = [0, 1, 2], [1, 2, 3]
    t = cluster_at_threshold(uid, el, er, mp, threshold_match_probability=0.75)
    assert t.column("cluster_id").to_pylist() == [1, 1, 3, 4]
    t = cluster_at_threshold(uid, el, er, mp, threshold_match_weight=math.log2(3))
    assert t.column("cluster_id").to_pylist() == [1, 1, 3, 4]
    t = cluster_at_threshold(uid, el, er, mp)  # no threshold: every edge, null or not
    assert t.column("cluster_id").to_pylist() == [1, 1, 1, 1]
    with pytest.raises(SettingsError):
        cluster_at_threshold(
            uid, el, er, mp, threshold_match_probability=0.5, threshold_match_weight=1.0
        )


def test_link_jobs_use_splinks_composite_ids():
    t = cluster_at_threshold(
        pa.array([2, 1, 1]),
        [0],
        [1],
        [0.99],
        source_dataset=pa.array(["b", "b", "a"]),
        threshold_match_probability=0.9,
    )
    assert t.column_names == ["cluster_id", "source_dataset", "unique_id"]
    assert t.column("cluster_id").to_pylist() == ["b-__-1", "b-__-1", "a-__-1"]


def test_input_errors_name_the_problem():
    with pytest.raises(InputError, match="more than once"):
        cluster_at_threshold(pa.array([1, 1]), [], [], None)
    with pytest.raises(InputError, match="null"):
        cluster_at_threshold(pa.array([1, None]), [], [], None)
    with pytest.raises(InputError, match="record indices"):
        cluster_at_threshold(pa.array([1, 2]), [0], [2], None)
    with pytest.raises(InputError, match="not in the nodes"):
        cluster_pairwise_predictions_at_threshold(
            [{"id": 1}], [{"id_l": 1, "id_r": 5, "match_probability": 1.0}], None, "id"
        )
    with pytest.raises(InputError, match="no column"):
        cluster_pairwise_predictions_at_threshold([{"uid": 1}], [], node_id_column_name="id")
    # gpulink's old order (no db_api) is refused with the fix, not misread
    with pytest.raises(SettingsError, match="node_id_column_name='id'"):
        cluster_pairwise_predictions_at_threshold([{"id": 1}], [], "id")
    with pytest.raises(SettingsError, match="needs node_id_column_name"):
        cluster_pairwise_predictions_at_multiple_thresholds([{"id": 1}], [], None)


def test_multiple_thresholds_equal_one_threshold_at_a_time():
    rng = np.random.default_rng(11)
    n = 500
    uid = pa.array(rng.permutation(10 * n)[:n])
    el, er = rng.integers(0, n, 600), rng.integers(0, n, 600)
    mp = rng.random(600)
    thresholds = [0.9, 0.2, 0.5]
    t = cluster_at_multiple_thresholds(uid, el, er, mp, match_probability_thresholds=thresholds)
    assert t.column_names == ["unique_id", "cluster_p_0_2", "cluster_p_0_5", "cluster_p_0_9"]
    for th in thresholds:
        single = cluster_at_threshold(uid, el, er, mp, threshold_match_probability=th)
        assert t.column(threshold_column_name(th)).equals(single.column("cluster_id"))
    stats = cluster_at_multiple_thresholds(
        uid, el, er, mp, match_probability_thresholds=thresholds, output_cluster_summary_stats=True
    )
    assert stats.column("num_clusters").to_pylist() == [
        len(set(t.column(threshold_column_name(th)).to_pylist())) for th in sorted(thresholds)
    ]


# --------------------------------------------------------------------------------------------
# Splink parity
# --------------------------------------------------------------------------------------------


def _splink_clustering():
    splink_clustering = pytest.importorskip("splink.clustering")
    from splink import DuckDBAPI

    return splink_clustering, DuckDBAPI


def _random_edges(seed, n_nodes, n_edges, string_ids=False):
    rng = np.random.default_rng(seed)
    ids = rng.permutation(100 * n_nodes)[:n_nodes]
    ids = [f"id{x}" for x in ids] if string_ids else ids.tolist()
    el, er = rng.integers(0, n_nodes, n_edges), rng.integers(0, n_nodes, n_edges)
    mp = np.round(rng.random(n_edges), 3)  # rounded so that ties at the threshold occur
    nodes = pa.table({"uid": ids})
    edges = pa.table(
        {
            "uid_l": [ids[i] for i in el],
            "uid_r": [ids[i] for i in er],
            "match_probability": mp,
        }
    )
    return nodes, edges


@pytest.mark.parametrize("string_ids", [False, True])
def test_equals_splink_cluster_pairwise_predictions_at_threshold(string_ids):
    splink_clustering, DuckDBAPI = _splink_clustering()
    nodes, edges = _random_edges(3, 400, 350, string_ids)
    for kwargs in ({"threshold_match_probability": 0.5}, {"threshold_match_weight": 1.5}, {}):
        # Splink's positional order, its db_api included (gpulink ignores it)
        result = cluster_pairwise_predictions_at_threshold(
            nodes, edges, DuckDBAPI(), "uid", backend="cpu", **kwargs
        )
        theirs_sdf = splink_clustering.cluster_pairwise_predictions_at_threshold(
            nodes.to_pandas(), edges.to_pandas(), DuckDBAPI(), "uid", **kwargs
        )
        theirs = theirs_sdf.as_pandas_dataframe()
        ours = result.as_pandas_dataframe()
        assert list(ours.columns) == list(theirs.columns)
        assert result.metadata == theirs_sdf.metadata
        assert len(theirs) == len(ours)
        expected = dict(zip(theirs["uid"], theirs["cluster_id"]))
        assert dict(zip(ours["uid"], ours["cluster_id"])) == expected
        # keyword calls, as before, give the same
        again = cluster_pairwise_predictions_at_threshold(
            nodes, edges, node_id_column_name="uid", backend="cpu", **kwargs
        )
        assert again.to_arrow().equals(result.to_arrow())


def test_equals_splink_at_multiple_thresholds():
    # Splink 5 keeps this function in splink.internals.clustering (not re-exported publicly).
    _, DuckDBAPI = _splink_clustering()
    import splink.internals.clustering as splink_clustering

    nodes, edges = _random_edges(9, 300, 300)
    for kw in (
        {"match_probability_thresholds": [0.5, 0.9, 0.2]},
        {"match_weight_thresholds": [0.5, 2.5]},
    ):  # Splink fails on negative ones
        ours = cluster_pairwise_predictions_at_multiple_thresholds(
            nodes, edges, DuckDBAPI(), "uid", **kw
        ).to_arrow()
        theirs = splink_clustering.cluster_pairwise_predictions_at_multiple_thresholds(
            nodes.to_pandas(), edges.to_pandas(), DuckDBAPI(), "uid", **kw
        ).as_pandas_dataframe()
        assert sorted(ours.column_names) == sorted(theirs.columns)
        theirs = theirs.set_index("uid").loc[ours.column("uid").to_pylist()]
        for name in ours.column_names[1:]:
            assert ours.column(name).to_pylist() == theirs[name].tolist(), name
        stats_ours = cluster_pairwise_predictions_at_multiple_thresholds(
            nodes, edges, node_id_column_name="uid", output_cluster_summary_stats=True, **kw
        ).to_arrow()
        stats_theirs = (
            splink_clustering.cluster_pairwise_predictions_at_multiple_thresholds(
                nodes.to_pandas(),
                edges.to_pandas(),
                db_api=DuckDBAPI(),
                node_id_column_name="uid",
                output_cluster_summary_stats=True,
                **kw,
            )
            .as_pandas_dataframe()
            .sort_values("threshold_match_probability")
        )
        assert stats_ours.column_names == list(stats_theirs.columns)
        for name in ("num_clusters", "max_cluster_size"):
            assert stats_ours.column(name).to_pylist() == stats_theirs[name].tolist()
        assert stats_ours.column("avg_cluster_size").to_pylist() == pytest.approx(
            stats_theirs["avg_cluster_size"].tolist()
        )


def test_equals_splink_linker_clustering_on_a_link_job():
    pd = pytest.importorskip("pandas")
    splink = pytest.importorskip("splink")
    import splink.comparison_library as cl

    csv = DATA / "fake_1000.csv"
    if not csv.exists():
        pytest.skip(f"reference data {csv} is absent (shared/data is not checked out)")
    df = pd.read_csv(csv).drop(columns=["cluster"])
    df_a, df_b = df.iloc[::2].copy(), df.iloc[1::2].copy()
    comparisons = [
        cl.ExactMatch(c).configure(m_probabilities=[0.9, 0.1], u_probabilities=[0.01, 0.99])
        for c in ("first_name", "surname", "dob", "city", "email")
    ]
    settings = splink.SettingsCreator(
        link_type="link_and_dedupe",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[splink.block_on("surname"), splink.block_on("dob")],
        probability_two_random_records_match=0.001,
    )
    db = splink.DuckDBAPI()
    linker = splink.Linker(
        [db.register(df_a, dataset_display_name="a"), db.register(df_b, dataset_display_name="b")],
        settings,
        log_level=logging.ERROR,
    )
    pred = linker.inference.predict()
    theirs = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold_match_probability=0.95
    ).as_pandas_dataframe()
    p = pred.as_pandas_dataframe()

    records = pd.concat([df_a.assign(source_dataset="a"), df_b.assign(source_dataset="b")])
    index = {
        (s, u): i for i, (s, u) in enumerate(zip(records["source_dataset"], records["unique_id"]))
    }
    el = [index[k] for k in zip(p["source_dataset_l"], p["unique_id_l"])]
    er = [index[k] for k in zip(p["source_dataset_r"], p["unique_id_r"])]
    ours = cluster_at_threshold(
        pa.array(records["unique_id"].to_numpy()),
        el,
        er,
        p["match_probability"].to_numpy(),
        source_dataset=pa.array(records["source_dataset"].tolist()),
        threshold_match_probability=0.95,
        backend="cpu",
    )
    assert len(theirs) == len(records) == ours.num_rows
    expected = {
        (s, u): c
        for s, u, c in zip(theirs["source_dataset"], theirs["unique_id"], theirs["cluster_id"])
    }
    got = {
        (s, u): c
        for s, u, c in zip(
            ours.column("source_dataset").to_pylist(),
            ours.column("unique_id").to_pylist(),
            ours.column("cluster_id").to_pylist(),
        )
    }
    assert got == expected
    assert len(set(got.values())) < len(got)  # some records did cluster
