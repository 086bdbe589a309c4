"""Accuracy of predicted pairs and clusters against known true clusters.

Pairwise: a predicted pair is a true positive when both records belong to the same true cluster;
the number of true pairs is the sum of n(n-1)/2 over true clusters (never materialised).
Cluster-level: B-cubed precision and recall average, over records, the share of a record's
predicted cluster that is truly its own, and the share of its true cluster that it was put with.

Inputs are anything with ``to_arrow()`` (gpulink results), Splink dataframes (``as_pyarrow_table``),
pyarrow tables, pandas or polars dataframes, DuckDB relations.

>>> import pyarrow as pa
>>> truth = pa.table({"unique_id": [1, 2, 3, 4], "cluster": [0, 0, 0, 1]})
>>> pairs = pa.table({"unique_id_l": [1, 2], "unique_id_r": [2, 4], "match_probability": [0.99, 0.95]})
>>> m = pairwise_accuracy(pairs, truth, threshold=0.9)
>>> (m["tp"], m["fp"], m["fn"], round(m["precision"], 2), round(m["recall"], 3))
(1, 1, 2, 0.5, 0.333)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

from gpulink.errors import InputError

__all__ = [
    "accuracy_at_thresholds",
    "b_cubed",
    "clusters_from_pairs",
    "pairwise_accuracy",
]


def _to_arrow(data, what: str) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if hasattr(data, "to_arrow"):
        out = data.to_arrow()
        if isinstance(out, pa.Table):
            return out
    if callable(getattr(data, "as_pyarrow_table", None)):  # a Splink dataframe: Arrow, no pandas
        return data.as_pyarrow_table()
    if hasattr(data, "as_pandas_dataframe"):
        data = data.as_pandas_dataframe()
    try:
        return pa.table(data)
    except Exception as exc:
        raise InputError(
            f"{what} of type {type(data).__name__} is not a table; pass a pyarrow table, a "
            "pandas/polars dataframe or a gpulink result"
        ) from exc


def _column(table: pa.Table, name: str, what: str) -> np.ndarray:
    if name not in table.column_names:
        raise InputError(
            f"{what} has no column {name!r} (columns: {table.column_names}); pass the column "
            "name as an argument"
        )
    col = table[name]
    if col.null_count:
        raise InputError(f"{what} column {name!r} has {col.null_count} nulls; ids must be set")
    return col.to_numpy()


def _dense(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's index among them."""
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.astype(np.int64)


class _Truth:
    """True clusters as dense integers, with a lookup from unique id to cluster."""

    def __init__(self, truth, uid_col: str, cluster_col: str):
        table = _to_arrow(truth, "truth")
        uid = _column(table, uid_col, "truth")
        _, cluster = _dense(_column(table, cluster_col, "truth"))
        order = np.argsort(uid, kind="stable")
        self.uid = uid[order]
        self.cluster = cluster[order]
        if self.uid.size > 1 and (self.uid[1:] == self.uid[:-1]).any():
            dup = self.uid[1:][self.uid[1:] == self.uid[:-1]][0]
            raise InputError(f"truth has unique_id {dup!r} more than once; ids must be unique")
        sizes = np.bincount(self.cluster).astype(np.int64)
        self.cluster_sizes = sizes
        self.true_pairs = int((sizes * (sizes - 1) // 2).sum())

    def lookup(self, ids: np.ndarray, what: str) -> np.ndarray:
        """Dense cluster of each id; every id must be in the truth."""
        if self.uid.dtype.kind in "OUS" or np.asarray(ids).dtype.kind in "OUS":
            ids = np.asarray(ids).astype(str)
            uid = self.uid.astype(str)
        else:
            uid = self.uid
        pos = np.searchsorted(uid, ids)
        pos_c = np.minimum(pos, max(uid.size - 1, 0))
        found = (pos < uid.size) & (uid[pos_c] == ids) if uid.size else np.zeros(len(ids), bool)
        if not found.all():
            missing = np.asarray(ids)[~found][0]
            raise InputError(
                f"{what} has unique_id {missing.item() if hasattr(missing, 'item') else missing!r} that the truth table lacks; evaluate against a truth table covering every record"
            )
        return self.cluster[pos_c]


def _pair_clusters(pairs, truth: _Truth, prob_col: str | None, l_col: str, r_col: str):
    """(same-cluster flag, score) per distinct unordered pair; score is None without prob_col."""
    table = _to_arrow(pairs, "pairs")
    left = _column(table, l_col, "pairs")
    right = _column(table, r_col, "pairs")
    score = _column(table, prob_col, "pairs").astype(np.float64) if prob_col else None
    cl = truth.lookup(left, "pairs")
    cr = truth.lookup(right, "pairs")
    # A pair listed twice (or both ways round) counts once, at its best score.
    key_l, key_r = _record_index(truth, left), _record_index(truth, right)
    lo, hi = np.minimum(key_l, key_r), np.maximum(key_l, key_r)
    self_pair = lo == hi
    if self_pair.any():
        raise InputError(f"pairs pairs a record with itself (unique_id {left[self_pair][0]!r})")
    key = lo * np.int64(truth.uid.size) + hi
    order = np.lexsort((-(score if score is not None else np.zeros(key.size)), key))
    key = key[order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    keep = order[first]
    same = cl[keep] == cr[keep]
    return same, (score[keep] if score is not None else None)


def _record_index(truth: _Truth, ids: np.ndarray) -> np.ndarray:
    uid = truth.uid.astype(str) if truth.uid.dtype.kind in "OUS" else truth.uid
    ids = np.asarray(ids).astype(str) if uid.dtype.kind in "OUS" else ids
    return np.searchsorted(uid, ids).astype(np.int64)


def _scores(tp: int, n_pred: int, n_true: int) -> dict:
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "tp": int(tp),
        "fp": int(n_pred - tp),
        "fn": int(n_true - tp),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def pairwise_accuracy(
    pairs,
    truth,
    *,
    threshold: float | None = None,
    probability_column: str = "match_probability",
    uid_column: str = "unique_id",
    cluster_column: str = "cluster",
) -> dict:
    """Pairwise precision, recall and F1 of predicted pairs against the true clusters.

    ``pairs`` has ``unique_id_l``/``unique_id_r`` (and ``match_probability`` when ``threshold``
    is given: pairs at or above it count as predicted matches); ``truth`` maps every
    ``unique_id`` to its true ``cluster``. A pair listed twice, in either order, counts once.
    Returns tp, fp, fn, precision, recall, f1 (precision is 1 with no predicted pairs).

    >>> import pyarrow as pa
    >>> truth = pa.table({"unique_id": [1, 2, 3], "cluster": [7, 7, 8]})
    >>> pairwise_accuracy(pa.table({"unique_id_l": [2], "unique_id_r": [1]}), truth)["f1"]
    1.0
    """
    t = _Truth(truth, uid_column, cluster_column)
    same, score = _pair_clusters(
        pairs,
        t,
        probability_column if threshold is not None else None,
        f"{uid_column}_l",
        f"{uid_column}_r",
    )
    if threshold is not None:
        same = same[score >= threshold]
    return _scores(int(same.sum()), int(same.size), t.true_pairs)


def accuracy_at_thresholds(
    pairs,
    truth,
    thresholds: Sequence[float] | Iterable[float],
    *,
    probability_column: str = "match_probability",
    uid_column: str = "unique_id",
    cluster_column: str = "cluster",
    cluster_metrics: bool = False,
) -> list[dict]:
    """Pairwise precision/recall/F1 at each threshold, in one sort of the pairs.

    With ``cluster_metrics=True`` each row also has B-cubed precision/recall/F1 of the connected
    components of the pairs at or above that threshold (one clustering per threshold).

    >>> import pyarrow as pa
    >>> truth = pa.table({"unique_id": [1, 2, 3], "cluster": [0, 0, 1]})
    >>> pairs = pa.table({"unique_id_l": [1, 1], "unique_id_r": [2, 3],
    ...                   "match_probability": [0.9, 0.6]})
    >>> [round(r["precision"], 2) for r in accuracy_at_thresholds(pairs, truth, [0.5, 0.8])]
    [0.5, 1.0]
    """
    thresholds = [float(x) for x in thresholds]
    t = _Truth(truth, uid_column, cluster_column)
    same, score = _pair_clusters(pairs, t, probability_column, f"{uid_column}_l", f"{uid_column}_r")
    order = np.argsort(-score, kind="stable")
    desc = score[order]
    cum_tp = np.concatenate([[0], np.cumsum(same[order])])
    rows = []
    for th in thresholds:
        n_pred = int(np.searchsorted(-desc, -th, side="right"))  # pairs with score >= th
        row = {"threshold": th, **_scores(int(cum_tp[n_pred]), n_pred, t.true_pairs)}
        if cluster_metrics:
            table = _to_arrow(pairs, "pairs")
            keep = table[probability_column].to_numpy() >= th
            left = _record_index(t, _column(table, f"{uid_column}_l", "pairs")[keep])
            right = _record_index(t, _column(table, f"{uid_column}_r", "pairs")[keep])
            labels = _components(t.uid.size, left, right)
            bc = _b_cubed_dense(labels, t.cluster)
            row.update({f"b_cubed_{k}": v for k, v in bc.items()})
        rows.append(row)
    return rows


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected-component label (smallest member index) of each of n nodes: label propagation
    with pointer jumping, vectorised; converges in O(log diameter) rounds on typical graphs."""
    labels = np.arange(n, dtype=np.int64)
    if left.size == 0:
        return labels
    while True:
        ll, lr = labels[left], labels[right]
        low = np.minimum(ll, lr)
        before = labels.copy()
        # Hook: each endpoint's root and the endpoint itself take the smaller label.
        np.minimum.at(labels, ll, low)
        np.minimum.at(labels, lr, low)
        np.minimum.at(labels, left, low)
        np.minimum.at(labels, right, low)
        # Shortcut: jump pointers to their roots.
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, before):
            return labels


def clusters_from_pairs(
    pairs,
    uids,
    *,
    threshold: float | None = None,
    probability_column: str = "match_probability",
    uid_column: str = "unique_id",
) -> pa.Table:
    """Connected components of the pairs (at or above ``threshold``) over the records ``uids``.

    Returns a table of ``unique_id`` and ``cluster_id`` (the smallest unique id of the cluster);
    records in no pair are singletons.

    >>> import pyarrow as pa
    >>> c = clusters_from_pairs(pa.table({"unique_id_l": [3], "unique_id_r": [1]}), [1, 2, 3])
    >>> c["cluster_id"].to_pylist()
    [1, 2, 1]
    """
    uids = np.sort(np.asarray(uids))
    fake = _Truth(
        pa.table({"unique_id": uids, "cluster": np.arange(uids.size)}), "unique_id", "cluster"
    )
    table = _to_arrow(pairs, "pairs")
    left = _column(table, f"{uid_column}_l", "pairs")
    right = _column(table, f"{uid_column}_r", "pairs")
    if threshold is not None:
        keep = _column(table, probability_column, "pairs") >= threshold
        left, right = left[keep], right[keep]
    fake.lookup(left, "pairs"), fake.lookup(right, "pairs")  # raise on unknown ids
    labels = _components(uids.size, _record_index(fake, left), _record_index(fake, right))
    return pa.table({"unique_id": uids, "cluster_id": uids[labels]})


def _b_cubed_dense(pred: np.ndarray, true: np.ndarray) -> dict:
    """B-cubed from dense-able labels: with n_pt the records in predicted p and true t,
    precision = Σ n_pt² / |P_p| / N and recall = Σ n_pt² / |T_t| / N."""
    n = pred.size
    if n == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    _, p = _dense(pred)
    _, t = _dense(true)
    p_size = np.bincount(p)
    t_size = np.bincount(t)
    key = p * np.int64(t_size.size) + t
    cells, n_pt = np.unique(key, return_counts=True)
    cp, ct = cells // t_size.size, cells % t_size.size
    sq = n_pt.astype(np.float64) ** 2
    precision = float((sq / p_size[cp]).sum() / n)
    recall = float((sq / t_size[ct]).sum() / n)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def b_cubed(
    predicted,
    truth,
    *,
    uid_column: str = "unique_id",
    predicted_column: str = "cluster_id",
    cluster_column: str = "cluster",
) -> dict:
    """B-cubed precision, recall and F1 of predicted clusters against true clusters.

    ``predicted`` maps ``unique_id`` to ``cluster_id`` (Splink's and gpulink's clustering output);
    records of the truth absent from it count as singletons.

    >>> import pyarrow as pa
    >>> truth = pa.table({"unique_id": [1, 2, 3], "cluster": [0, 0, 1]})
    >>> pred = pa.table({"unique_id": [1, 2, 3], "cluster_id": [1, 1, 1]})
    >>> {k: round(v, 3) for k, v in b_cubed(pred, truth).items()}
    {'precision': 0.556, 'recall': 1.0, 'f1': 0.714}
    """
    t = _Truth(truth, uid_column, cluster_column)
    table = _to_arrow(predicted, "predicted clusters")
    uid = _column(table, uid_column, "predicted clusters")
    pc_ = _column(table, predicted_column, "predicted clusters")
    _, pred_dense = _dense(pc_)
    pos = _record_index(t, uid)
    t.lookup(uid, "predicted clusters")  # raise on unknown ids
    labels = np.full(t.uid.size, -1, dtype=np.int64)
    labels[pos] = pred_dense
    unassigned = labels < 0
    # Absent records are singletons: give each a fresh label.
    labels[unassigned] = pred_dense.max(initial=-1) + 1 + np.arange(int(unassigned.sum()))
    return _b_cubed_dense(labels, t.cluster)
