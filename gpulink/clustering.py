"""Clustering: connected components over the pairs scored at or above a threshold.

Splink 5's semantics (``splink/internals/connected_components.py`` and ``clustering.py``):

* an edge is kept when ``match_probability >= threshold`` (a match-weight threshold ``w`` is
  first turned into the probability ``2^w / (1 + 2^w)``, and compared as a probability); with no
  threshold every edge is kept; an edge whose probability is null is dropped by any threshold;
* every node is in the output, singletons too, and ``cluster_id`` is the *smallest node id* of
  its component (Splink's representative: the minimum over the component, in the id column's
  own order: numbers numerically, strings byte-wise);
* in a linker job with several source datasets the node id is Splink's composite
  ``source_dataset || '-__-' || unique_id`` (a string), and so is the cluster id;
* at several thresholds the output has one ``cluster_<threshold>`` column per threshold, named
  as Splink names them (``cluster_p_0_95``, ``cluster_mw_3_5``...). Splink computes the higher
  thresholds incrementally, re-clustering only the clusters an edge below the new threshold
  touches; that gives exactly the components at each threshold, which is what we compute.

The union-find runs on node *ranks* (positions in id order), so the smallest rank of a
component, which the kernel returns, is the smallest id.

>>> import numpy as np, pyarrow as pa
>>> t = cluster_at_threshold(pa.array([10, 20, 30, 40]), np.array([1, 2]), np.array([2, 3]),
...                          np.array([0.9, 0.4]), threshold_match_probability=0.5)
>>> t.column("cluster_id").to_pylist()
[10, 20, 20, 40]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.backend import resolve_backend
from gpulink.checks import number_argument
from gpulink.errors import InputError, SettingsError
from gpulink.kernels.components import connected_components_cpu
from gpulink.results import LinkResult

CONCAT_SEPARATOR = "-__-"


# --------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------


def connected_components(n_nodes: int, edges_l, edges_r, *, backend="auto") -> np.ndarray:
    """Per node the smallest node index of its connected component, on the CPU or the GPU.

    >>> connected_components(4, np.array([3]), np.array([1]), backend="cpu").tolist()
    [0, 1, 2, 1]
    """
    be = resolve_backend(backend)
    if be.is_gpu:
        from gpulink.kernels.components_gpu import connected_components_gpu

        return connected_components_gpu(n_nodes, edges_l, edges_r)
    edges_l = be.to_host(edges_l)
    edges_r = be.to_host(edges_r)
    return connected_components_cpu(n_nodes, edges_l, edges_r)


# --------------------------------------------------------------------------------------------
# Thresholds (Splink's conversions and column names)
# --------------------------------------------------------------------------------------------


def weight_to_probability(weight: float) -> float:
    """Splink's ``bayes_factor_to_prob(match_weight_to_bayes_factor(w))``.

    >>> weight_to_probability(0.0)
    0.5
    """
    bf = 2**weight
    return bf / (1 + bf)


def threshold_probability(
    threshold_match_probability: float | None = None, threshold_match_weight: float | None = None
) -> float | None:
    """The probability threshold for the given arguments (Splink: at most one may be given).

    >>> threshold_probability(threshold_match_weight=math.log2(3))
    0.75
    """
    if threshold_match_probability is not None and threshold_match_weight is not None:
        raise SettingsError("pass threshold_match_probability or threshold_match_weight, not both")
    if threshold_match_probability is not None:
        p = number_argument(threshold_match_probability, "threshold_match_probability")
        if not 0 <= p <= 1:
            raise SettingsError(f"threshold_match_probability must be in [0, 1], got {p}")
        return p
    if threshold_match_weight is not None:
        return weight_to_probability(
            number_argument(threshold_match_weight, "threshold_match_weight")
        )
    return None


def threshold_column_name(p: float, is_match_weight: bool = False) -> str:
    """Splink's ``cluster_...`` column name of a threshold (``_threshold_to_str``).

    >>> threshold_column_name(0.95), threshold_column_name(0.5, is_match_weight=True)
    ('cluster_p_0_95', 'cluster_mw_0')
    """
    if is_match_weight:
        if p == 0.0:
            text = "mw_minus_inf"
        elif p == 1.0:
            text = "mw_inf"
        else:
            text = "mw_" + _trim(f"{math.log2(p / (1 - p)):.6f}").replace(".", "_")
    elif p == 0.0:
        text = "0_0"
    elif p == 1.0:
        text = "1_0"
    else:
        text = "p_" + _trim(f"{p:.6f}").replace(".", "_")
    return f"cluster_{text}"


def _trim(formatted: str) -> str:
    formatted = formatted.rstrip("0")
    return formatted[:-1] if formatted.endswith(".") else formatted


def _kept_edges(match_probability, threshold: float | None, n_edges: int) -> np.ndarray:
    if threshold is None:
        return np.ones(n_edges, dtype=bool)
    if match_probability is None:
        raise InputError(
            "a threshold was given but the pairs have no match_probability; pass the "
            "predictions' match_probability column, or no threshold"
        )
    mp = _float_array(match_probability)
    if mp.shape[0] != n_edges:
        raise InputError(f"match_probability has {mp.shape[0]} values for {n_edges} edges")
    return mp >= threshold  # NaN (null) is never kept, as SQL's NULL >= t


def _float_array(values) -> np.ndarray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return pc.fill_null(pc.cast(values, pa.float64()), np.nan).to_numpy()
    return np.asarray(values, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Node keys and ranks
# --------------------------------------------------------------------------------------------


def _as_arrow(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(np.asarray(values) if not isinstance(values, list) else values)


def node_keys(unique_id, source_dataset=None) -> pa.Array:
    """Splink's node id: ``unique_id``, or ``source_dataset || '-__-' || unique_id`` for links.

    >>> node_keys(pa.array([1, 2]), pa.array(["a", "b"])).to_pylist()
    ['a-__-1', 'b-__-2']
    """
    uid = _as_arrow(unique_id)
    if source_dataset is None:
        return uid
    sd = pc.cast(_as_arrow(source_dataset), pa.string())
    return pc.binary_join_element_wise(sd, pc.cast(uid, pa.string()), CONCAT_SEPARATOR)


def _ranks(keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``order`` (rank -> node) and ``rank`` (node -> rank) of the node keys, checked unique."""
    if keys.null_count:
        first = int(np.flatnonzero(pc.is_null(keys).to_numpy(zero_copy_only=False))[0])
        raise InputError(
            f"node ids must not be null (record {first} has a null id); give every record an id"
        )
    order = pc.sort_indices(keys).to_numpy().astype(np.int64)
    sorted_keys = keys.take(pa.array(order))
    if len(keys) > 1:
        dup = pc.equal(sorted_keys[1:], sorted_keys[:-1]).to_numpy(zero_copy_only=False)
        if dup.any():
            value = sorted_keys[int(np.flatnonzero(dup)[0])].as_py()
            raise InputError(
                f"node id {value!r} occurs more than once; node ids must be unique "
                "(for a link job pass source_dataset too)"
            )
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys), dtype=np.int64)
    return order, rank


def _check_edge_indices(edges_l, edges_r, n_nodes: int):
    edges_l = np.asarray(edges_l, dtype=np.int64).reshape(-1)
    edges_r = np.asarray(edges_r, dtype=np.int64).reshape(-1)
    if edges_l.shape != edges_r.shape:
        raise InputError(f"edges_l has {edges_l.size} entries but edges_r has {edges_r.size}")
    if edges_l.size and (
        min(edges_l.min(), edges_r.min()) < 0 or max(edges_l.max(), edges_r.max()) >= n_nodes
    ):
        raise InputError(f"edge endpoints must be record indices in [0, {n_nodes})")
    return edges_l, edges_r


def _cluster_ids(keys, order, rank, edges_l, edges_r, kept, backend) -> pa.Array:
    n = len(keys)
    labels = connected_components(n, rank[edges_l[kept]], rank[edges_r[kept]], backend=backend)
    return keys.take(pa.array(order[np.asarray(labels, dtype=np.int64)[rank]]))


# --------------------------------------------------------------------------------------------
# Internal entry points (the Linker calls these with record indices)
# --------------------------------------------------------------------------------------------


def _id_columns(unique_id, source_dataset, unique_id_column_name, source_dataset_column_name):
    names, cols = [], []
    if source_dataset is not None:
        names.append(source_dataset_column_name)
        cols.append(_as_arrow(source_dataset))
    names.append(unique_id_column_name)
    cols.append(_as_arrow(unique_id))
    return names, cols


def cluster_at_threshold(
    unique_id,
    edges_l,
    edges_r,
    match_probability=None,
    *,
    source_dataset=None,
    threshold_match_probability: float | None = None,
    threshold_match_weight: float | None = None,
    unique_id_column_name: str = "unique_id",
    source_dataset_column_name: str = "source_dataset",
    backend="auto",
) -> pa.Table:
    """Cluster records given pairs as record indices; one output row per record, in order.

    ``unique_id`` (and ``source_dataset`` for links) per record; ``edges_l``/``edges_r`` record
    indices of each scored pair, ``match_probability`` per pair. Returns an Arrow table with
    ``cluster_id`` then the id column(s), rows in record order (so the caller can append the
    records' other columns, as Splink's output has them).

    >>> t = cluster_at_threshold(pa.array(["b", "a", "c"]), [0], [1], [0.99],
    ...                          threshold_match_probability=0.95)
    >>> t.to_pydict()
    {'cluster_id': ['a', 'a', 'c'], 'unique_id': ['b', 'a', 'c']}
    """
    keys = node_keys(unique_id, source_dataset)
    order, rank = _ranks(keys)
    edges_l, edges_r = _check_edge_indices(edges_l, edges_r, len(keys))
    threshold = threshold_probability(threshold_match_probability, threshold_match_weight)
    kept = _kept_edges(match_probability, threshold, edges_l.size)
    cluster_id = _cluster_ids(keys, order, rank, edges_l, edges_r, kept, backend)
    names, cols = _id_columns(
        unique_id, source_dataset, unique_id_column_name, source_dataset_column_name
    )
    return pa.table([cluster_id, *cols], names=["cluster_id", *names])


def clusters_with_records(cluster_id, data: pa.Table) -> pa.Table:
    """Splink's ``linker.clustering`` output: ``cluster_id``, then every input column in the
    first input table's order, then the source dataset column if it was added on input (Splink
    appends the ``source_dataset`` column it creates after the input's own columns).

    ``cluster_id`` and ``data`` are in the same (record) order.

    >>> data = pa.table({"unique_id": [1, 2], "name": ["a", "b"]})
    >>> clusters_with_records(pa.array([1, 1]), data).column_names
    ['cluster_id', 'unique_id', 'name']
    """
    from gpulink.io import ADDED_SOURCE_COLUMN_KEY

    names = list(data.column_names)
    added = (data.schema.metadata or {}).get(ADDED_SOURCE_COLUMN_KEY)
    if added is not None and added.decode() in names:
        names.remove(added.decode())
        names.append(added.decode())
    ids = cluster_id if isinstance(cluster_id, pa.ChunkedArray) else pa.chunked_array([cluster_id])
    return pa.table([ids, *(data.column(n) for n in names)], names=["cluster_id", *names])


def _threshold_list(match_probability_thresholds, match_weight_thresholds):
    if match_probability_thresholds is not None and match_weight_thresholds is not None:
        raise SettingsError(
            "pass match_probability_thresholds or match_weight_thresholds, not both"
        )
    if match_probability_thresholds is not None:
        thresholds = sorted(float(t) for t in match_probability_thresholds)
    elif match_weight_thresholds is not None:
        thresholds = sorted(weight_to_probability(float(w)) for w in match_weight_thresholds)
    else:
        thresholds = []
    if not thresholds:
        raise SettingsError("pass match_probability_thresholds or match_weight_thresholds")
    return thresholds


def cluster_at_multiple_thresholds(
    unique_id,
    edges_l,
    edges_r,
    match_probability,
    *,
    match_probability_thresholds: Sequence[float] | None = None,
    match_weight_thresholds: Sequence[float] | None = None,
    source_dataset=None,
    output_cluster_summary_stats: bool = False,
    unique_id_column_name: str = "unique_id",
    source_dataset_column_name: str = "source_dataset",
    backend="auto",
) -> pa.Table:
    """Clusters at several thresholds: id column(s) then one ``cluster_<t>`` column per threshold
    (ascending), or with ``output_cluster_summary_stats`` one row per threshold with
    ``threshold_match_probability``, ``threshold_match_weight``, ``num_clusters``,
    ``max_cluster_size`` and ``avg_cluster_size``.

    >>> t = cluster_at_multiple_thresholds(pa.array([1, 2, 3]), [0, 1], [1, 2], [0.8, 0.95],
    ...                                    match_probability_thresholds=[0.9, 0.5])
    >>> t.column_names, t.column("cluster_p_0_9").to_pylist()
    (['unique_id', 'cluster_p_0_5', 'cluster_p_0_9'], [1, 2, 2])
    """
    thresholds = _threshold_list(match_probability_thresholds, match_weight_thresholds)
    is_weight = match_weight_thresholds is not None
    keys = node_keys(unique_id, source_dataset)
    order, rank = _ranks(keys)
    edges_l, edges_r = _check_edge_indices(edges_l, edges_r, len(keys))
    per_threshold = {}
    for t in thresholds:
        kept = _kept_edges(match_probability, t, edges_l.size)
        per_threshold[t] = _cluster_ids(keys, order, rank, edges_l, edges_r, kept, backend)
    if output_cluster_summary_stats:
        return _summary_stats(per_threshold)
    names, cols = _id_columns(
        unique_id, source_dataset, unique_id_column_name, source_dataset_column_name
    )
    for t, ids in per_threshold.items():
        names.append(threshold_column_name(t, is_weight))
        cols.append(ids)
    return pa.table(cols, names=names)


def _summary_stats(per_threshold: dict[float, pa.Array]) -> pa.Table:
    rows = {
        k: []
        for k in (
            "threshold_match_probability",
            "threshold_match_weight",
            "num_clusters",
            "max_cluster_size",
            "avg_cluster_size",
        )
    }
    for t, ids in per_threshold.items():
        sizes = pc.value_counts(ids).field("counts").to_numpy()
        rows["threshold_match_probability"].append(t)
        rows["threshold_match_weight"].append(None if t in (0, 1) else math.log2(t / (1 - t)))
        rows["num_clusters"].append(int(sizes.size))
        rows["max_cluster_size"].append(int(sizes.max()) if sizes.size else None)
        rows["avg_cluster_size"].append(float(sizes.mean()) if sizes.size else None)
    # Splink casts the two thresholds to SQL FLOAT (32-bit); we keep that column type.
    return pa.table(
        {
            "threshold_match_probability": pa.array(
                rows["threshold_match_probability"], pa.float32()
            ),
            "threshold_match_weight": pa.array(rows["threshold_match_weight"], pa.float32()),
            "num_clusters": pa.array(rows["num_clusters"], pa.int64()),
            "max_cluster_size": pa.array(rows["max_cluster_size"], pa.int64()),
            "avg_cluster_size": pa.array(rows["avg_cluster_size"], pa.float64()),
        }
    )


# --------------------------------------------------------------------------------------------
# Splink's standalone functions (splink.clustering), on tables
# --------------------------------------------------------------------------------------------


def _to_arrow_table(table, what: str) -> pa.Table:
    if isinstance(table, pa.Table):
        return table
    if hasattr(table, "to_arrow") and not hasattr(table, "iloc"):
        return table.to_arrow()
    if hasattr(table, "as_pyarrow_table"):  # a Splink SplinkDataFrame
        return table.as_pyarrow_table()
    if isinstance(table, list):
        return pa.Table.from_pylist(table)
    try:
        import pandas as pd

        if isinstance(table, pd.DataFrame):
            return pa.Table.from_pandas(table, preserve_index=False)
    except ImportError:  # pragma: no cover
        pass
    from gpulink.io import to_arrow  # Splink / DuckDB tables, Arrow streams; else InputError

    return to_arrow(table, what=what)


def _column(table: pa.Table, name: str, what: str) -> pa.Array:
    if name not in table.column_names:
        raise InputError(
            f"the {what} table has no column {name!r} (columns: {', '.join(table.column_names)})"
        )
    return table.column(name).combine_chunks()


def _edge_indices(node_ids: pa.Array, edges: pa.Table, left: str, right: str):
    out = []
    for name in (left, right):
        ids = _column(edges, name, "edges")
        if ids.type != node_ids.type:
            try:
                ids = pc.cast(ids, node_ids.type)
            except pa.ArrowInvalid as exc:
                raise InputError(
                    f"edge column {name!r} ({ids.type}) cannot be matched to the node ids "
                    f"({node_ids.type}): {exc}"
                ) from None
        idx = pc.index_in(ids, value_set=node_ids)
        if idx.null_count:
            missing = ids.filter(pc.is_null(idx))[0].as_py()
            raise InputError(
                f"edge column {name!r} refers to node {missing!r}, which is not in the nodes "
                "table; pass every node that an edge mentions"
            )
        out.append(idx.to_numpy().astype(np.int64))
    return out


def _edge_names(node_id_column_name, left, right):
    return left or f"{node_id_column_name}_l", right or f"{node_id_column_name}_r"


def _node_id_column_name(db_api, node_id_column_name, function: str) -> str:
    """The node id column of a call in Splink's order ``(nodes, edges, db_api,
    node_id_column_name, ...)``, whose ``db_api`` gpulink ignores."""
    if isinstance(db_api, str):
        raise SettingsError(
            f"{function}: the third argument is Splink's db_api, not the node id column "
            f"({db_api!r}); call {function}(nodes, edges, node_id_column_name={db_api!r}, ...) "
            f"or {function}(nodes, edges, None, {db_api!r}, ...)"
        )
    if not isinstance(node_id_column_name, str) or not node_id_column_name:
        raise SettingsError(
            f"{function} needs node_id_column_name, the nodes' id column, e.g. "
            f"{function}(nodes, edges, node_id_column_name='unique_id', ...)"
        )
    return node_id_column_name


def cluster_pairwise_predictions_at_threshold(
    nodes,
    edges,
    db_api=None,
    node_id_column_name: str | None = None,
    edge_id_column_name_left: str | None = None,
    edge_id_column_name_right: str | None = None,
    threshold_match_probability: float | None = None,
    threshold_match_weight: float | None = None,
    *,
    backend="auto",
) -> LinkResult:
    """Splink's ``splink.clustering.cluster_pairwise_predictions_at_threshold``, same arguments.

    ``nodes`` (a column of node ids) and ``edges`` (``<id>_l``, ``<id>_r``, ``match_probability``)
    as Arrow tables, pandas frames, lists of dicts, gpulink results or Splink dataframes;
    ``db_api`` (Splink's third argument) is accepted and ignored so that Splink code runs
    unchanged. Returns a :class:`~gpulink.results.LinkResult` with ``node_id_column_name`` and
    ``cluster_id`` per node, as Splink's.

    >>> nodes = [{"my_id": i} for i in range(1, 7)]
    >>> edges = [{"n_1": 1, "n_2": 2, "match_probability": 0.8},
    ...          {"n_1": 3, "n_2": 2, "match_probability": 0.9},
    ...          {"n_1": 4, "n_2": 5, "match_probability": 0.99}]
    >>> cc = cluster_pairwise_predictions_at_threshold(nodes, edges, None, "my_id", "n_1", "n_2",
    ...     threshold_match_probability=0.5)
    >>> cc.as_pandas_dataframe()["cluster_id"].tolist()
    [1, 1, 1, 4, 4, 6]
    """
    node_id_column_name = _node_id_column_name(
        db_api, node_id_column_name, "cluster_pairwise_predictions_at_threshold"
    )
    nodes_t = _to_arrow_table(nodes, "nodes")
    edges_t = _to_arrow_table(edges, "edges")
    node_ids = _column(nodes_t, node_id_column_name, "nodes")
    left, right = _edge_names(
        node_id_column_name, edge_id_column_name_left, edge_id_column_name_right
    )
    threshold = threshold_probability(threshold_match_probability, threshold_match_weight)
    mp = None
    if threshold is not None:
        mp = _column(edges_t, "match_probability", "edges")
    edges_l, edges_r = _edge_indices(node_ids, edges_t, left, right)
    out = cluster_at_threshold(
        node_ids,
        edges_l,
        edges_r,
        mp,
        threshold_match_probability=threshold,
        unique_id_column_name=node_id_column_name,
        backend=backend,
    )
    return LinkResult(
        out.select([node_id_column_name, "cluster_id"]),
        metadata={"threshold_match_probability": threshold},
    )


def cluster_pairwise_predictions_at_multiple_thresholds(
    nodes,
    edges,
    db_api=None,
    node_id_column_name: str | None = None,
    match_probability_thresholds: Sequence[float] | None = None,
    match_weight_thresholds: Sequence[float] | None = None,
    edge_id_column_name_left: str | None = None,
    edge_id_column_name_right: str | None = None,
    output_cluster_summary_stats: bool = False,
    *,
    backend="auto",
) -> LinkResult:
    """Splink's ``cluster_pairwise_predictions_at_multiple_thresholds``, same arguments
    (``db_api`` accepted and ignored); returns a :class:`~gpulink.results.LinkResult`.

    >>> nodes = [{"id": i} for i in range(4)]
    >>> edges = [{"id_l": 0, "id_r": 1, "match_probability": 0.6},
    ...          {"id_l": 2, "id_r": 3, "match_probability": 0.99}]
    >>> cc = cluster_pairwise_predictions_at_multiple_thresholds(nodes, edges, None, "id",
    ...     [0.5, 0.9])
    >>> cc.as_dict()["cluster_p_0_9"]
    [0, 1, 2, 2]
    """
    node_id_column_name = _node_id_column_name(
        db_api, node_id_column_name, "cluster_pairwise_predictions_at_multiple_thresholds"
    )
    nodes_t = _to_arrow_table(nodes, "nodes")
    edges_t = _to_arrow_table(edges, "edges")
    node_ids = _column(nodes_t, node_id_column_name, "nodes")
    left, right = _edge_names(
        node_id_column_name, edge_id_column_name_left, edge_id_column_name_right
    )
    edges_l, edges_r = _edge_indices(node_ids, edges_t, left, right)
    return LinkResult(
        cluster_at_multiple_thresholds(
            node_ids,
            edges_l,
            edges_r,
            _column(edges_t, "match_probability", "edges"),
            match_probability_thresholds=match_probability_thresholds,
            match_weight_thresholds=match_weight_thresholds,
            output_cluster_summary_stats=output_cluster_summary_stats,
            unique_id_column_name=node_id_column_name,
            backend=backend,
        )
    )


__all__ = [
    "cluster_at_multiple_thresholds",
    "cluster_at_threshold",
    "cluster_pairwise_predictions_at_multiple_thresholds",
    "cluster_pairwise_predictions_at_threshold",
    "clusters_with_records",
    "connected_components",
    "node_keys",
    "threshold_column_name",
    "threshold_probability",
]
