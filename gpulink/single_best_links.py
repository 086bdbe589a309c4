"""Single best links clustering: Splink 5's ``cluster_using_single_best_links``.

Splink's algorithm (``splink/internals/one_to_one_clustering.py``), on node *ranks* (positions
in node id order, so the smallest rank is Splink's smallest id):

* edges are the pairs with ``match_probability >= threshold`` (all pairs without a threshold),
  taken in both directions, ``u -> v``;
* ``ties_method="drop"`` first removes, once, every edge ``u -> v`` that ties: another edge from
  ``u`` into the same source dataset ``v`` comes from, with the same probability, where that
  dataset is duplicate-free (and the same seen from ``v``);
* every node starts as its own representative ``rep``. Each iteration, an edge ``u -> v`` is a
  candidate when ``rep[u] != rep[v]`` and the two clusters (nodes sharing a representative) do
  not both hold a record of one duplicate-free dataset. A candidate is selected when it ranks
  first (SQL ``rank() = 1``) both among the candidates leaving ``rep[u]``, ordered by
  probability descending then ``v``, and among those entering ``rep[v]``, ordered by
  probability descending then ``u``;
* the endpoint ``u`` of a selected edge (only that node, not its whole cluster, as in Splink)
  takes ``min(rep[u], rep[v])``; iterations stop when no representative changes. The cluster
  id is the representative.

Each iteration is a few vectorised passes over the edges (grouped max / min with
``np.maximum.at`` / ``np.minimum.at``), O(E) per iteration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.errors import InputError

TIES_METHODS = ("drop", "lowest_id")


def _dataset_codes(source_dataset, duplicate_free_datasets: Sequence[str]):
    """Per node a dataset code, and for each duplicate-free dataset its code (-1 if absent)."""
    sd = pc.cast(
        source_dataset.combine_chunks()
        if isinstance(source_dataset, pa.ChunkedArray)
        else pa.array(source_dataset),
        pa.string(),
    )
    encoded = pc.dictionary_encode(sd)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    names = encoded.dictionary.to_pylist()
    dup_free = np.array(
        sorted({names.index(d) for d in duplicate_free_datasets if d in names}), dtype=np.int64
    )
    return codes, len(names), dup_free


def _tied(key_node, key_dataset, p, other, flagged: np.ndarray) -> np.ndarray:
    """Edges whose group (node, other end's dataset, probability) has several distinct other
    ends, where that dataset is flagged duplicate-free (Splink's ``tie_l`` / ``tie_r``)."""
    m = key_node.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((other, p, key_dataset, key_node))
    kn, kd, kp, ko = key_node[order], key_dataset[order], p[order], other[order]
    new_group = np.ones(m, dtype=bool)
    new_group[1:] = (kn[1:] != kn[:-1]) | (kd[1:] != kd[:-1]) | (kp[1:] != kp[:-1])
    new_other = new_group.copy()
    new_other[1:] |= ko[1:] != ko[:-1]
    group = np.cumsum(new_group) - 1
    distinct = np.bincount(group, weights=new_other).astype(np.int64)
    tie = np.empty(m, dtype=bool)
    tie[order] = (distinct[group] > 1) & flagged[kd]
    return tie


def _first_ranked(group, p, other, n_groups: int) -> np.ndarray:
    """Edges with SQL ``rank() over (partition by group order by p desc, other) = 1``."""
    best_p = np.full(n_groups, -np.inf)
    np.maximum.at(best_p, group, p)
    at_best = p == best_p[group]
    best_other = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best_other, group[at_best], other[at_best])
    return at_best & (other == best_other[group])


def single_best_link_representatives(
    n_nodes: int,
    edges_l,
    edges_r,
    match_probability,
    dataset_code,
    duplicate_free_codes,
    *,
    ties_method: str = "lowest_id",
) -> np.ndarray:
    """Splink's one-to-one clustering on node ranks: each node's representative (a rank).

    ``edges_l`` / ``edges_r`` are node ranks of the (already thresholded) pairs,
    ``dataset_code`` each node's source dataset code, ``duplicate_free_codes`` the codes of the
    duplicate-free datasets. Node 2 ties between 0 and 1 (both dataset 0, duplicate-free):
    ``lowest_id`` keeps the link to 0, ``drop`` keeps neither.

    >>> import numpy as np
    >>> args = (3, np.array([0, 1]), np.array([2, 2]), np.array([0.9, 0.9]), np.array([0, 0, 1]),
    ...         np.array([0]))
    >>> single_best_link_representatives(*args).tolist()
    [0, 1, 0]
    >>> single_best_link_representatives(*args, ties_method="drop").tolist()
    [0, 1, 2]
    """
    if ties_method not in TIES_METHODS:
        raise ValueError("ties_method must be one of 'drop', or 'lowest_id'")
    el = np.asarray(edges_l, dtype=np.int64)
    er = np.asarray(edges_r, dtype=np.int64)
    p = np.asarray(match_probability, dtype=np.float64)
    code = np.asarray(dataset_code, dtype=np.int64)
    dup_free = np.asarray(duplicate_free_codes, dtype=np.int64)
    n_codes = int(max(code.max(initial=-1), dup_free.max(initial=-1))) + 2
    flagged = np.zeros(n_codes, dtype=bool)  # index -1 (null dataset) is never flagged
    flagged[dup_free] = True

    u = np.concatenate([el, er])  # both directions, as Splink's "reverse edges"
    v = np.concatenate([er, el])
    pp = np.concatenate([p, p])
    if ties_method == "drop":
        # Splink joins on match_probability, so a null probability never survives
        known = ~np.isnan(pp)
        u, v, pp = u[known], v[known], pp[known]
        keep = ~_tied(u, code[v], pp, v, flagged) & ~_tied(v, code[u], pp, u, flagged)
        u, v, pp = u[keep], v[keep], pp[keep]
    # SQL orders NULLs last in a descending order: rank them below every number
    pp = np.where(np.isnan(pp), -np.inf, pp)

    node_flags = [code == c for c in dup_free]  # which nodes hold each duplicate-free dataset
    rep = np.arange(n_nodes, dtype=np.int64)
    while True:
        conflict = np.zeros(u.size, dtype=bool)
        for holds in node_flags:
            contains = np.zeros(n_nodes, dtype=bool)
            contains[rep[holds]] = True
            conflict |= contains[rep[u]] & contains[rep[v]]
        ru, rv = rep[u], rep[v]
        cand = (ru != rv) & ~conflict
        cu, cv, cp, cru, crv = u[cand], v[cand], pp[cand], ru[cand], rv[cand]
        selected = _first_ranked(cru, cp, cv, n_nodes) & _first_ranked(crv, cp, cu, n_nodes)
        new_rep = rep.copy()
        np.minimum.at(new_rep, cu[selected], crv[selected])
        if np.array_equal(new_rep, rep):
            return rep
        rep = new_rep


def cluster_single_best_links(
    keys: pa.Array,
    order: np.ndarray,
    rank: np.ndarray,
    source_dataset,
    edges_l,
    edges_r,
    match_probability,
    kept: np.ndarray,
    duplicate_free_datasets: Sequence[str],
    ties_method: str,
) -> pa.Array:
    """Cluster ids (node keys) per record, from record-index edges (``kept`` selects them)."""
    if isinstance(duplicate_free_datasets, str) or not isinstance(
        duplicate_free_datasets, Sequence
    ):
        raise InputError(
            "duplicate_free_datasets must be a list of source dataset names, "
            f"got {duplicate_free_datasets!r}; pass e.g. ['a', 'b']"
        )
    codes, _, dup_free = _dataset_codes(source_dataset, duplicate_free_datasets)
    code_by_rank = np.empty_like(codes)
    code_by_rank[rank] = codes
    mp = np.asarray(match_probability, dtype=np.float64)
    rep = single_best_link_representatives(
        len(keys),
        rank[edges_l[kept]],
        rank[edges_r[kept]],
        mp[kept],
        code_by_rank,
        dup_free,
        ties_method=ties_method,
    )
    return keys.take(pa.array(order[rep[rank]]))


def linker_single_best_links(
    linker,
    df_predict,
    duplicate_free_datasets: Sequence[str],
    threshold_match_probability: float | None,
    threshold_match_weight: float | None,
    ties_method: str,
):
    """``linker.clustering.cluster_using_single_best_links``: every record with its cluster id.

    >>> import gpulink as gl
    >>> from gpulink import block_on
    >>> import gpulink.comparison_library as cl
    >>> a = {"unique_id": [1, 2], "name": ["ann", "bob"]}
    >>> b = {"unique_id": [1, 2], "name": ["ann", "ann"]}
    >>> settings = gl.SettingsCreator(link_type="link_only",
    ...     comparisons=[cl.ExactMatch("name").configure(m_probabilities=[0.9, 0.1],
    ...                                                  u_probabilities=[0.1, 0.9])],
    ...     blocking_rules_to_generate_predictions=[block_on("name")])
    >>> linker = gl.Linker([a, b], settings, input_table_aliases=["a", "b"])
    >>> pairs = linker.inference.predict()
    >>> out = linker.clustering.cluster_using_single_best_links(pairs, ["a", "b"])
    >>> out.to_arrow().column("cluster_id").to_pylist()   # a-1 ties b-1 and b-2: lowest id
    ['a-__-1', 'a-__-2', 'a-__-1', 'b-__-2']
    """
    from gpulink.clustering import (
        _ranks,
        clusters_with_records,
        node_keys,
        threshold_probability,
    )
    from gpulink.linker import PredictionResult
    from gpulink.results import LinkResult

    if ties_method not in TIES_METHODS:
        raise ValueError("ties_method must be one of 'drop', or 'lowest_id'")
    if not isinstance(df_predict, PredictionResult) or df_predict.linker_id not in (
        None,
        id(linker),
    ):
        raise InputError(
            "cluster_using_single_best_links needs the result of linker.inference.predict() "
            "from this linker (its pairs are record positions in this linker's input), or a "
            "predictions table registered with linker.table_management.register_table_predict"
        )
    table = linker._record_table()
    if linker.settings.link_type == "dedupe_only" or table.source_dataset is None:
        raise InputError(
            "cluster_using_single_best_links needs a link job (link_only or link_and_dedupe "
            "with several source datasets); for dedupe_only use "
            "cluster_pairwise_predictions_at_threshold"
        )
    pairs = df_predict.to_arrow()
    if "match_probability" not in pairs.column_names:
        raise InputError(
            "cluster_using_single_best_links ranks links by match_probability, which these "
            "pairs (deterministic_link()'s) lack; pass linker.inference.predict()'s pairs"
        )
    mp = pc.fill_null(pc.cast(pairs.column("match_probability"), pa.float64()), np.nan)
    mp = mp.to_numpy()
    p = threshold_probability(threshold_match_probability, threshold_match_weight)
    kept = np.ones(mp.size, dtype=bool) if p is None else mp >= p
    keys = node_keys(table.unique_id, table.source_dataset)
    order, rank = _ranks(keys)
    cluster_id = cluster_single_best_links(
        keys,
        order,
        rank,
        table.source_dataset,
        np.asarray(df_predict.left_index, dtype=np.int64),
        np.asarray(df_predict.right_index, dtype=np.int64),
        mp,
        kept,
        duplicate_free_datasets,
        ties_method,
    )
    out = clusters_with_records(cluster_id, table.data)
    return LinkResult(out, metadata={} if p is None else {"threshold_match_probability": p})
