"""Graph metrics of clusters: Splink 5's ``linker.clustering.compute_graph_metrics``.

The graph: one node per clustered record, one edge per scored pair with ``match_probability >=
threshold`` (Splink's ``__splink__truncated_edges``). Metrics, with Splink's definitions:

* nodes: ``node_degree`` (edges at the node; a self loop counts twice), ``node_centrality`` =
  ``node_degree / (cluster_size - 1)``, 0 for a single-node cluster.
* edges: ``is_bridge``, whether removing the edge disconnects its ends (what Splink asks igraph
  for; computed here by :mod:`gpulink.kernels.bridges` in O(V + E)).
* clusters: ``n_nodes``; ``n_edges`` = half the summed degree; ``density`` = ``2 n_edges /
  (n_nodes (n_nodes - 1))``, null for one node; ``cluster_centralisation`` = ``(n_nodes max
  degree - summed degree) / ((n_nodes - 1)(n_nodes - 2))``, null below three nodes.

Degrees and cluster sums come from the truncated edges whatever clusters they join, as in
Splink: with a threshold other than the clustering one an edge may cross clusters.

>>> import pyarrow as pa
>>> g = graph_metrics(pa.array([1, 2, 3]), pa.array([1, 1, 1]),
...                   pa.array([1, 2]), pa.array([2, 3]), pa.array([0.99, 0.97]), 0.95)
>>> g.nodes.as_dict()["node_degree"], g.edges.as_dict()["is_bridge"]
([1, 2, 1], [True, True])
>>> g.clusters.as_record_list()
[{'cluster_id': 1, 'n_nodes': 3, 'n_edges': 2.0, 'density': 0.6666666666666666, \
'cluster_centralisation': 1.0}]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.errors import InputError
from gpulink.results import LinkResult


@dataclass
class GraphMetricsResults:
    """Splink's container: node, edge and cluster metrics as :class:`LinkResult` tables."""

    nodes: LinkResult
    edges: LinkResult
    clusters: LinkResult

    def __repr__(self) -> str:
        return (
            "A data class of gpulink results containing metrics for nodes, edges and clusters.\n"
            "Access them via attributes: `.nodes` (composite_unique_id, cluster_id, node_degree, "
            "node_centrality), `.edges` (composite_unique_id_l, composite_unique_id_r, "
            "is_bridge) and `.clusters` (cluster_id, n_nodes, n_edges, density, "
            "cluster_centralisation)\n"
        )


def _as_array(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values if isinstance(values, pa.Array) else pa.array(values)


def _positions(node_ids: pa.Array, ids: pa.Array, side: str) -> np.ndarray:
    pos = pc.index_in(ids, value_set=node_ids)
    if pos.null_count:
        missing = ids.filter(pc.is_null(pos))[0].as_py()
        raise InputError(
            f"df_predict's {side} id {missing!r} is not a record of df_clustered; pass the "
            "clusters of the same records (cluster_pairwise_predictions_at_threshold on this "
            "df_predict)"
        )
    return pos.to_numpy().astype(np.int64)


def graph_metrics(
    node_ids,
    cluster_ids,
    edge_ids_l,
    edge_ids_r,
    match_probability,
    threshold_match_probability: float,
) -> GraphMetricsResults:
    """Node, edge and cluster metrics of clustered records (see the module docstring).

    ``node_ids`` (Splink's composite unique ids) and ``cluster_ids``, one per node;
    ``edge_ids_l`` / ``edge_ids_r`` (node ids) and ``match_probability``, one per scored pair.
    Pairs below the threshold, or with a null probability, are not edges. Rows come in input
    order: nodes as given, edges as the kept pairs, clusters by first appearance.

    >>> g = graph_metrics(["a", "b", "c"], ["a", "a", "c"], ["a"], ["b"], [0.5], 0.9)
    >>> len(g.edges), g.nodes.as_dict()["node_centrality"]
    (0, [0.0, 0.0, 0.0])
    """
    from gpulink.kernels.bridges import bridges_cpu

    node_ids, cluster_ids = _as_array(node_ids), _as_array(cluster_ids)
    edge_ids_l, edge_ids_r = _as_array(edge_ids_l), _as_array(edge_ids_r)
    n = len(node_ids)
    if len(cluster_ids) != n:
        raise InputError(f"{n} node ids but {len(cluster_ids)} cluster ids; give one per node")
    if pc.count_distinct(node_ids).as_py() != n or node_ids.null_count:
        raise InputError(
            "df_clustered repeats a record id (or has a null one); pass one row per record"
        )
    p = _as_array(match_probability).cast(pa.float64())
    keep = pc.fill_null(pc.greater_equal(p, float(threshold_match_probability)), False)
    edge_ids_l, edge_ids_r = edge_ids_l.filter(keep), edge_ids_r.filter(keep)
    el = _positions(node_ids, edge_ids_l, "left")
    er = _positions(node_ids, edge_ids_r, "right")

    degree = np.bincount(el, minlength=n) + np.bincount(er, minlength=n)
    encoded = pc.dictionary_encode(cluster_ids)
    codes = encoded.indices.to_numpy().astype(np.int64)
    n_clusters = len(encoded.dictionary)
    size = np.bincount(codes, minlength=n_clusters)
    node_size = size[codes]
    with np.errstate(divide="ignore", invalid="ignore"):
        centrality = np.where(node_size > 1, degree / (node_size - 1.0), 0.0)
    nodes = pa.table(
        {
            "composite_unique_id": node_ids,
            "cluster_id": cluster_ids,
            "node_degree": pa.array(degree.astype(np.int64)),
            "node_centrality": pa.array(centrality, pa.float64()),
        }
    )

    edges = pa.table(
        {
            "composite_unique_id_l": edge_ids_l,
            "composite_unique_id_r": edge_ids_r,
            "is_bridge": pa.array(bridges_cpu(n, el, er)),
        }
    )

    degree_sum = np.bincount(codes, weights=degree, minlength=n_clusters).astype(np.int64)
    degree_max = np.zeros(n_clusters, dtype=np.int64)
    np.maximum.at(degree_max, codes, degree)
    n_edges = degree_sum / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        density = 2.0 * n_edges / (size * (size - 1.0))
        centralisation = (size * degree_max - degree_sum) / ((size - 1.0) * (size - 2.0))
    clusters = pa.table(
        {
            "cluster_id": encoded.dictionary,
            "n_nodes": pa.array(size.astype(np.int64)),
            "n_edges": pa.array(n_edges),
            "density": pa.array(density, mask=size <= 1),
            "cluster_centralisation": pa.array(centralisation, mask=size <= 2),
        }
    )
    meta = {"threshold_match_probability": threshold_match_probability}
    return GraphMetricsResults(
        nodes=LinkResult(nodes, metadata=meta),
        edges=LinkResult(edges, metadata=meta),
        clusters=LinkResult(clusters, metadata=meta),
    )


def linker_graph_metrics(
    linker, df_predict, df_clustered, threshold_match_probability: float | None = None
) -> GraphMetricsResults:
    """``linker.clustering.compute_graph_metrics``: node ids are Splink's composite ids.

    >>> import gpulink as gl
    >>> import gpulink.comparison_library as cl
    >>> from gpulink.datasets import synthetic_people
    >>> df = synthetic_people(300, seed=1)
    >>> settings = gl.SettingsCreator(
    ...     link_type="dedupe_only",
    ...     comparisons=[cl.ExactMatch("first_name"), cl.ExactMatch("surname"),
    ...                  cl.ExactMatch("dob")],
    ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")],
    ... )
    >>> linker = gl.Linker(df, settings, backend="cpu", set_up_basic_logging=False)
    >>> pairs = linker.inference.predict()
    >>> clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, 0.9)
    >>> g = linker.clustering.compute_graph_metrics(pairs, clusters)
    >>> g.nodes.columns, len(g.nodes) == len(df)
    (['composite_unique_id', 'cluster_id', 'node_degree', 'node_centrality'], True)
    >>> g.clusters.columns
    ['cluster_id', 'n_nodes', 'n_edges', 'density', 'cluster_centralisation']
    """
    from gpulink.clustering import node_keys, threshold_probability

    if threshold_match_probability is None:
        threshold_match_probability = getattr(df_clustered, "metadata", {}).get(
            "threshold_match_probability"
        )
        if threshold_match_probability is None:  # Splink's error and message
            raise TypeError(
                "As `df_clustered` has no threshold metadata associated to it, to compute graph "
                "metrics you must provide `threshold_match_probability` manually"
            )
    threshold = threshold_probability(threshold_match_probability)
    s = linker.settings
    uid = s.unique_id_column_name
    src = s.source_dataset_column_name if s.link_type != "dedupe_only" else None
    pairs, clusters = df_predict.to_arrow(), df_clustered.to_arrow()
    if "match_probability" not in pairs.column_names:
        raise InputError(
            "df_predict has no match_probability column (deterministic_link pairs?); graph "
            "metrics need the scored pairs of linker.inference.predict()"
        )
    needed = ["cluster_id", uid] + ([src] if src else [])
    missing = [c for c in needed if c not in clusters.column_names]
    if missing:
        raise InputError(
            f"df_clustered has no column(s) {missing}; pass the result of "
            "linker.clustering.cluster_pairwise_predictions_at_threshold"
        )

    def ids(table, suffix):
        return node_keys(table.column(uid + suffix), table.column(src + suffix) if src else None)

    return graph_metrics(
        ids(clusters, ""),
        clusters.column("cluster_id"),
        ids(pairs, "_l"),
        ids(pairs, "_r"),
        pairs.column("match_probability"),
        threshold,
    )
