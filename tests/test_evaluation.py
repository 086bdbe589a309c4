"""gpulink.evaluation against naive references (all pairs, per-record sets) and networkx."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest

from gpulink.errors import InputError
from gpulink.evaluation import (
    accuracy_at_thresholds,
    b_cubed,
    clusters_from_pairs,
    pairwise_accuracy,
)


def _random_case(seed: int, n: int = 60, n_pairs: int = 150):
    rng = np.random.default_rng(seed)
    uid = rng.permutation(np.arange(1000, 1000 + n))  # non-contiguous, unsorted ids
    cluster = rng.integers(0, n // 3, size=n)
    truth = pa.table({"unique_id": uid, "cluster": cluster})
    left = rng.choice(uid, n_pairs)
    right = rng.choice(uid, n_pairs)
    ok = left != right
    # Bias towards true pairs so precision and recall are both interesting.
    same = rng.random(n) < 0.5
    extra_l = uid[same]
    extra_r = np.array([rng.choice(uid[cluster == c]) for c in cluster[same]])
    keep = extra_l != extra_r
    left = np.concatenate([left[ok], extra_l[keep]])
    right = np.concatenate([right[ok], extra_r[keep]])
    prob = rng.random(left.size)
    pairs = pa.table({"unique_id_l": left, "unique_id_r": right, "match_probability": prob})
    return truth, pairs


def _naive_pairwise(truth: pa.Table, pairs: pa.Table, threshold: float):
    cl = dict(zip(truth["unique_id"].to_pylist(), truth["cluster"].to_pylist()))
    true_pairs = {frozenset(p) for p in itertools.combinations(cl, 2) if cl[p[0]] == cl[p[1]]}
    predicted = {
        frozenset((a, b))
        for a, b, s in zip(
            *(pairs[c].to_pylist() for c in ("unique_id_l", "unique_id_r", "match_probability"))
        )
        if s >= threshold
    }
    tp = len(predicted & true_pairs)
    p = tp / len(predicted) if predicted else 1.0
    r = tp / len(true_pairs) if true_pairs else 1.0
    return tp, len(predicted) - tp, len(true_pairs) - tp, p, r


def _naive_b_cubed(pred: dict, true: dict):
    members_p, members_t = {}, {}
    for k, v in pred.items():
        members_p.setdefault(v, set()).add(k)
    for k, v in true.items():
        members_t.setdefault(v, set()).add(k)
    prec = np.mean(
        [len(members_p[pred[r]] & members_t[true[r]]) / len(members_p[pred[r]]) for r in true]
    )
    rec = np.mean(
        [len(members_p[pred[r]] & members_t[true[r]]) / len(members_t[true[r]]) for r in true]
    )
    return prec, rec


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.8])
def test_pairwise_matches_all_pairs_reference(seed, threshold):
    truth, pairs = _random_case(seed)
    got = pairwise_accuracy(pairs, truth, threshold=threshold)
    tp, fp, fn, p, r = _naive_pairwise(truth, pairs, threshold)
    assert (got["tp"], got["fp"], got["fn"]) == (tp, fp, fn)
    assert got["precision"] == pytest.approx(p)
    assert got["recall"] == pytest.approx(r)
    assert got["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)


def test_accuracy_at_thresholds_equals_pairwise_each():
    truth, pairs = _random_case(11)
    ths = [0.0, 0.1, 0.5, 0.5001, 0.95, 1.0]
    rows = accuracy_at_thresholds(pairs, truth, ths)
    for row, th in zip(rows, ths):
        one = pairwise_accuracy(pairs, truth, threshold=th)
        assert {k: row[k] for k in one} == pytest.approx(one)


def test_duplicate_and_reversed_pairs_count_once():
    truth = pa.table({"unique_id": ["a", "b", "c"], "cluster": [0, 0, 1]})
    pairs = pa.table({"unique_id_l": ["a", "b", "a"], "unique_id_r": ["b", "a", "c"]})
    m = pairwise_accuracy(pairs, truth)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 0)


@pytest.mark.parametrize("seed", range(5))
def test_clusters_from_pairs_matches_networkx(seed):
    truth, pairs = _random_case(seed, n=80, n_pairs=60)
    uids = truth["unique_id"].to_numpy()
    got = clusters_from_pairs(pairs, uids, threshold=0.5)
    g = nx.Graph()
    g.add_nodes_from(uids.tolist())
    for a, b, s in zip(
        *(pairs[c].to_pylist() for c in ("unique_id_l", "unique_id_r", "match_probability"))
    ):
        if s >= 0.5:
            g.add_edge(a, b)
    expected = {n: min(comp) for comp in nx.connected_components(g) for n in comp}
    assert dict(zip(got["unique_id"].to_pylist(), got["cluster_id"].to_pylist())) == expected


def test_components_on_a_long_chain():
    n = 5000
    ids = np.arange(n)
    pairs = pa.table({"unique_id_l": ids[1:][::-1], "unique_id_r": ids[:-1][::-1]})
    assert set(clusters_from_pairs(pairs, ids)["cluster_id"].to_pylist()) == {0}


@pytest.mark.parametrize("seed", range(5))
def test_b_cubed_matches_per_record_reference(seed):
    rng = np.random.default_rng(seed)
    uid = np.arange(50) * 3
    true = rng.integers(0, 12, 50)
    pred = rng.integers(0, 15, 50)
    got = b_cubed(
        pa.table({"unique_id": uid, "cluster_id": pred}),
        pa.table({"unique_id": uid, "cluster": true}),
    )
    p, r = _naive_b_cubed(dict(zip(uid, pred)), dict(zip(uid, true)))
    assert got["precision"] == pytest.approx(p)
    assert got["recall"] == pytest.approx(r)


def test_b_cubed_missing_records_are_singletons_and_cluster_metrics():
    truth, pairs = _random_case(3)
    rows = accuracy_at_thresholds(pairs, truth, [0.5], cluster_metrics=True)
    clusters = clusters_from_pairs(pairs, truth["unique_id"].to_numpy(), threshold=0.5)
    bc = b_cubed(clusters, truth)
    assert rows[0]["b_cubed_precision"] == pytest.approx(bc["precision"])
    assert rows[0]["b_cubed_recall"] == pytest.approx(bc["recall"])
    # Dropping singleton rows from the prediction changes nothing.
    sizes = {}
    for c in clusters["cluster_id"].to_pylist():
        sizes[c] = sizes.get(c, 0) + 1
    keep = pa.array([sizes[c] > 1 for c in clusters["cluster_id"].to_pylist()])
    assert b_cubed(clusters.filter(keep), truth) == pytest.approx(bc)


def test_perfect_prediction_and_pandas_input():
    truth = pa.table({"unique_id": [1, 2, 3, 4], "cluster": [5, 5, 5, 6]})
    pairs = pa.table(
        {"unique_id_l": [1, 1, 2], "unique_id_r": [2, 3, 3], "match_probability": [1.0] * 3}
    )
    assert pairwise_accuracy(pairs.to_pandas(), truth.to_pandas(), threshold=0.5)["f1"] == 1.0
    pred = pa.table({"unique_id": [1, 2, 3, 4], "cluster_id": [0, 0, 0, 9]})
    assert b_cubed(pred, truth) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_errors_name_the_problem():
    truth = pa.table({"unique_id": [1, 2], "cluster": [0, 0]})
    with pytest.raises(InputError, match="unique_id 9"):
        pairwise_accuracy(pa.table({"unique_id_l": [1], "unique_id_r": [9]}), truth)
    with pytest.raises(InputError, match="match_probability"):
        pairwise_accuracy(pa.table({"unique_id_l": [1], "unique_id_r": [2]}), truth, threshold=0.5)
    with pytest.raises(InputError, match="more than once"):
        pairwise_accuracy(
            pa.table({"unique_id_l": [1], "unique_id_r": [2]}),
            pa.table({"unique_id": [1, 1], "cluster": [0, 0]}),
        )
