"""compute_graph_metrics: the bridge kernel against networkx and a naive reference; every
node, edge and cluster metric against Splink 5 on fake_1000 (same model, several thresholds)."""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import pyarrow as pa
import pytest

import gpulink as gl
from gpulink.errors import InputError
from gpulink.graph_metrics import graph_metrics
from gpulink.kernels.bridges import bridges_cpu
from tests import reference


def _random_graph(rng, n_nodes, n_edges, simple):
    edges_l = rng.integers(0, n_nodes, n_edges)
    edges_r = rng.integers(0, n_nodes, n_edges)
    if simple:  # no self loops, no parallel edges (networkx.Graph would merge them)
        pairs = {(min(a, b), max(a, b)) for a, b in zip(edges_l, edges_r) if a != b}
        pairs = sorted(pairs)
        rng.shuffle(pairs)
        edges_l = np.array([a for a, _ in pairs], dtype=np.int64)
        edges_r = np.array([b for _, b in pairs], dtype=np.int64)
    return edges_l, edges_r


@pytest.mark.parametrize("seed", range(40))
def test_bridges_equal_networkx_on_random_graphs(seed):
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    # sparse graphs (forests, many bridges) to dense ones (few)
    edges_l, edges_r = _random_graph(rng, n, int(rng.integers(0, 2 * n + 1)), simple=True)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(edges_l.tolist(), edges_r.tolist()))
    expected = {frozenset(e) for e in nx.bridges(g)}
    got = bridges_cpu(n, edges_l, edges_r)
    assert {frozenset((a, b)) for a, b, x in zip(edges_l, edges_r, got) if x} == expected


@pytest.mark.parametrize("seed", range(25))
def test_bridges_equal_reference_on_multigraphs(seed):
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(1, 25))
    edges_l, edges_r = _random_graph(rng, n, int(rng.integers(0, 2 * n + 1)), simple=False)
    got = bridges_cpu(n, edges_l, edges_r).tolist()
    assert got == reference.bridges(n, edges_l, edges_r)


def test_bridges_long_chain_needs_no_recursion():
    n = 200_000  # a path: every edge a bridge; recursion would overflow the stack
    got = bridges_cpu(n, np.arange(n - 1), np.arange(1, n))
    assert got.all()
    cycle = bridges_cpu(n, np.arange(n), (np.arange(n) + 1) % n)
    assert not cycle.any()


def test_parallel_edges_and_self_loops_are_not_bridges():
    got = bridges_cpu(4, np.array([0, 0, 1, 3]), np.array([1, 1, 2, 3]))
    assert got.tolist() == [False, False, True, False]


def test_graph_metrics_errors_name_the_problem():
    with pytest.raises(InputError, match="not a record of df_clustered"):
        graph_metrics([1, 2], [1, 1], [1], [3], [0.99], 0.5)
    with pytest.raises(InputError, match="repeats a record id"):
        graph_metrics([1, 1], [1, 1], [], [], pa.array([], pa.float64()), 0.5)


# -- parity with Splink 5 --------------------------------------------------------------------

splink = pytest.importorskip("splink")
import splink.comparison_library as scl  # noqa: E402
from splink import DuckDBAPI, block_on  # noqa: E402


def _settings(link_type="dedupe_only"):
    return splink.SettingsCreator(
        link_type=link_type,
        comparisons=[
            scl.NameComparison("first_name"),
            scl.JaroWinklerAtThresholds("surname"),
            scl.DateOfBirthComparison("dob", input_is_string=True),
            scl.ExactMatch("city").configure(term_frequency_adjustments=True),
            scl.EmailComparison("email"),
        ],
        blocking_rules_to_generate_predictions=[block_on("first_name"), block_on("surname")],
    )


@pytest.fixture(scope="module")
def both_linkers(fake_1000):
    """A model trained in Splink, and gpulink loading it through the model JSON."""
    df = fake_1000.drop(columns=["cluster"])
    sl = splink.Linker(
        DuckDBAPI().register(df), _settings().create_settings_dict("duckdb"), log_level=40
    )
    sl.training.estimate_u_using_random_sampling(max_pairs=1e5, seed=3)
    sl.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    model = sl.misc.save_model_to_json()
    gk = gl.Linker(df, copy.deepcopy(model), backend="cpu", set_up_basic_logging=False)
    return sl, gk


def _sorted(df, keys):
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def assert_frames_equal(theirs, ours, keys):
    """Same columns in the same order, same rows; floats to 1e-9 and nulls where Splink's are."""
    assert list(ours.columns) == list(theirs.columns)
    assert len(ours) == len(theirs)
    theirs, ours = _sorted(theirs, keys), _sorted(ours, keys)
    for name in theirs.columns:
        a, b = theirs[name].tolist(), ours[name].tolist()
        if theirs[name].dtype.kind == "f" or ours[name].dtype.kind == "f":
            a_null = [x is None or (isinstance(x, float) and math.isnan(x)) for x in a]
            b_null = [x is None or (isinstance(x, float) and math.isnan(x)) for x in b]
            assert a_null == b_null, name
            pairs = [(x, y) for x, y, z in zip(a, b, a_null) if not z]
            assert all(abs(float(x) - float(y)) <= 1e-9 for x, y in pairs), name
        else:
            assert [bool(x) if isinstance(x, (bool, np.bool_)) else x for x in a] == b, name


def _expected_edges(theirs_edges, n_nodes):
    """Splink's edge table; without igraph Splink leaves out is_bridge, so networkx gives it."""
    if "is_bridge" in theirs_edges.columns:
        return theirs_edges
    nx = pytest.importorskip("networkx")
    g = nx.MultiGraph()
    g.add_edges_from(
        zip(theirs_edges["composite_unique_id_l"], theirs_edges["composite_unique_id_r"])
    )
    bridges = {frozenset(e) for e in nx.bridges(g)}
    out = theirs_edges.copy()
    out["is_bridge"] = [
        frozenset((a, b)) in bridges
        for a, b in zip(out["composite_unique_id_l"], out["composite_unique_id_r"])
    ]
    return out


def _assert_same_metrics(theirs, ours, n_records):
    assert_frames_equal(
        theirs.nodes.as_pandas_dataframe(), ours.nodes.to_pandas(), ["composite_unique_id"]
    )
    assert_frames_equal(
        _expected_edges(theirs.edges.as_pandas_dataframe(), n_records),
        ours.edges.to_pandas(),
        ["composite_unique_id_l", "composite_unique_id_r"],
    )
    assert_frames_equal(
        theirs.clusters.as_pandas_dataframe(), ours.clusters.to_pandas(), ["cluster_id"]
    )


@pytest.mark.parametrize("cluster_at", [0.5, 0.95])
@pytest.mark.parametrize("metrics_at", [None, 0.2, 0.9, 0.999])
def test_equals_splink_compute_graph_metrics(both_linkers, fake_1000, cluster_at, metrics_at):
    logging.getLogger("splink").setLevel(logging.ERROR)
    sl, gk = both_linkers
    sp, gp = sl.inference.predict(), gk.inference.predict()
    assert len(gp) == len(sp.as_pandas_dataframe())
    sc = sl.clustering.cluster_pairwise_predictions_at_threshold(sp, cluster_at)
    gc = gk.clustering.cluster_pairwise_predictions_at_threshold(gp, cluster_at)
    theirs = sl.clustering.compute_graph_metrics(sp, sc, threshold_match_probability=metrics_at)
    ours = gk.clustering.compute_graph_metrics(gp, gc, threshold_match_probability=metrics_at)
    _assert_same_metrics(theirs, ours, len(fake_1000))
    # the case must exercise every metric: edges, bridges and non-bridges, null densities
    edges = ours.edges.to_pandas()
    assert len(edges) > 0 and edges["is_bridge"].any()
    assert ours.clusters.to_pandas()["density"].isna().any()
    assert ours.nodes.metadata["threshold_match_probability"] == (metrics_at or cluster_at)


def test_equals_splink_on_a_link_job(fake_1000):
    """Link jobs: node ids are Splink's composite ``source_dataset-__-unique_id`` strings."""
    df = fake_1000.drop(columns=["cluster"])
    df_a, df_b = df.iloc[::2].copy(), df.iloc[1::2].copy()
    s = _settings("link_and_dedupe").create_settings_dict("duckdb")
    s["probability_two_random_records_match"] = 0.001
    db = DuckDBAPI()
    sl = splink.Linker(
        [db.register(df_a, dataset_display_name="a"), db.register(df_b, dataset_display_name="b")],
        copy.deepcopy(s),
        log_level=40,
    )
    gk = gl.Linker(
        [df_a, df_b], s, backend="cpu", input_table_aliases=["a", "b"], set_up_basic_logging=False
    )
    sp, gp = sl.inference.predict(), gk.inference.predict()
    sc = sl.clustering.cluster_pairwise_predictions_at_threshold(sp, 0.9)
    gc = gk.clustering.cluster_pairwise_predictions_at_threshold(gp, 0.9)
    theirs = sl.clustering.compute_graph_metrics(sp, sc)
    ours = gk.clustering.compute_graph_metrics(gp, gc)
    _assert_same_metrics(theirs, ours, len(df))
    assert ours.nodes.to_pandas()["composite_unique_id"].str.contains("-__-").all()


def test_threshold_is_needed_when_clusters_carry_none(both_linkers):
    _, gk = both_linkers
    gp = gk.inference.predict()
    gc = gk.clustering.cluster_pairwise_predictions_at_threshold(gp, 0.9)
    gc.metadata.clear()
    with pytest.raises(TypeError, match="threshold_match_probability"):
        gk.clustering.compute_graph_metrics(gp, gc)


def test_benchmark_script_runs(capsys, tmp_path):
    import json
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "graph_metrics.py"
    written = runpy.run_path(str(path))["main"](2000, out=tmp_path)
    assert "compute_graph_metrics" in capsys.readouterr().out
    assert json.loads(written.read_text())["sizes"]["records"] == 2000
