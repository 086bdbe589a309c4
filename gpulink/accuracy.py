"""Splink 5's label-based accuracy analysis: the truth-space table over match-weight thresholds.

Every labelled pair gets a *truth threshold*: its match weight rounded to the nearest
``match_weight_round_to_nearest`` (Splink's ``cast(step as float) * round(w / step)``: the step in
single precision, halves away from zero), or ``-999`` when the prediction blocking rules would not
have produced the pair (such a pair is predicted a non-match at every threshold). At each distinct
truth threshold ``t`` a pair scored at or above ``t`` is a predicted match, so with the labels
grouped by threshold

    TP(t) = clerical positives scored >= t        FP(t) = pairs scored >= t  - TP(t)
    TN(t) = clerical negatives scored <  t        FN(t) = pairs scored <  t  - TN(t)

and precision, recall, F-scores, P4 and φ follow (Splink's formulas, in double precision, with
Splink's conventions: precision and NPV are 1 with nothing predicted, φ is 0 where undefined,
other zero divisions give inf/NaN as DuckDB's). Rows at the ``-999`` sentinel are dropped.

From a labels column (the true cluster of each record) the labels are every pair of records:
positives are pairs with equal non-null labels, everything else is a negative. Only the pairs
the blocking rules produce are scored; the positives they miss are counted from the cluster sizes
(``Σ n(n-1)/2``, across datasets only for link_only), and the negatives they miss from the size of
the cartesian product. With ``positives_not_captured_by_blocking_rules_scored_as_zero=False`` the
missed positives are scored too (the pairs sharing a label are blocked on it, as Splink does).

>>> import numpy as np
>>> t = truth_space_table(np.array([2.0, 2.0, -1.0]), np.array([1, 0, 1], bool))
>>> t["truth_threshold"].to_pylist(), t["tp"].to_pylist(), t["fp"].to_pylist()
([-1.0, 2.0], [2.0, 1.0], [1.0, 1.0])
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.blocking import block_on, prediction_rules
from gpulink.errors import InputError, SettingsError

__all__ = [
    "ALLOWED_METRICS",
    "OUTPUT_TYPES",
    "accuracy_analysis",
    "labelled_pairs_from_column",
    "labelled_pairs_from_table",
    "round_truth_threshold",
    "truth_space_table",
]

ALLOWED_METRICS = ("specificity", "npv", "accuracy", "f1", "f2", "f0_5", "p4", "phi")
OUTPUT_TYPES = ("threshold_selection", "roc", "precision_recall", "table", "accuracy")
#: Splink's truth threshold of a pair the blocking rules miss (rows below -998 are dropped).
NOT_FOUND = -999.0


def round_truth_threshold(match_weight: np.ndarray, step: float | None) -> np.ndarray:
    """Splink's ``cast(step as float) * round(match_weight / step)`` (DuckDB: ``float`` is single
    precision, ``round`` takes halves away from zero); ``step=None`` keeps the weights.

    >>> round_truth_threshold(np.array([0.25, -0.25, 1.04]), 0.5).tolist()
    [0.5, -0.5, 1.0]
    """
    w = np.asarray(match_weight, dtype=np.float64)
    if step is None:
        return w
    x = w / float(step)
    r = np.trunc(x)
    r = r + np.copysign(1.0, x) * (np.abs(x - r) >= 0.5)  # x - trunc(x) is exact
    return float(np.float32(step)) * r


def truth_space_table(
    truth_threshold: np.ndarray,
    positive: np.ndarray,
    *,
    extra_positives_not_found: int = 0,
    total_labels: float | None = None,
) -> pa.Table:
    """Splink's truth-space table from each labelled pair's truth threshold and clerical label.

    ``extra_positives_not_found``: positives absent from the arrays, scored at the -999 sentinel;
    ``total_labels``: the number of labels when the arrays miss some negatives (labels column:
    the cartesian product), Splink's ``total_labels`` adjustment.
    """
    tt = np.asarray(truth_threshold, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    if extra_positives_not_found:
        tt = np.concatenate([tt, [NOT_FOUND]])
        weight = np.ones(tt.size, np.int64)
        weight[-1] = extra_positives_not_found
        pos = np.concatenate([pos, [True]])
    else:
        weight = np.ones(tt.size, np.int64)
    if tt.size == 0:
        return _empty_table()
    thresholds, group = np.unique(tt, return_inverse=True)
    count = np.bincount(group, weights=weight).astype(np.int64)
    n_pos = np.bincount(group, weights=weight * pos).astype(np.int64)
    n_neg = count - n_pos
    cum_pos_ge = np.cumsum(n_pos[::-1])[::-1]
    cum_neg_below = np.cumsum(n_neg) - n_neg
    below = np.cumsum(count) - count
    at_or_above = np.cumsum(count[::-1])[::-1]
    total_p, total_n, total = int(n_pos.sum()), int(n_neg.sum()), int(count.sum())
    if total_labels is None:
        p = np.full(thresholds.size, total_p, np.float64)
        n = np.full(thresholds.size, total_n, np.float64)
        labels = np.full(thresholds.size, total, np.float64)
    else:
        ghost = float(total_labels) - total_p - total_n  # pairs no rule produced: negatives
        cum_neg_below = cum_neg_below + ghost
        below = below + ghost
        p = np.full(thresholds.size, total_p, np.float64)
        n = np.full(thresholds.size, float(total_labels) - total_p)
        labels = np.full(thresholds.size, float(total_labels))
    tp = cum_pos_ge.astype(np.float64)
    fp = (at_or_above - cum_pos_ge).astype(np.float64)
    tn = np.asarray(cum_neg_below, dtype=np.float64)
    fn = np.asarray(below - cum_neg_below, dtype=np.float64)
    keep = thresholds >= -998.0
    cols = _metrics(thresholds, labels, p, n, tp, tn, fp, fn, total_labels is None)
    return pa.table({k: pa.array(v[keep]) for k, v in cols.items()})


def _metrics(t, labels, p, n, tp, tn, fp, fn, integer_counts=True) -> dict[str, np.ndarray]:
    """Splink's ``__splink__truth_space_table`` columns (same formulas, same order);
    ``integer_counts``: the counts are integers in Splink's SQL (no ``total_labels``)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        power = np.power(2.0, t)
        phi_den = np.sqrt((tp + fp) * p * n * (tn + fn))
        phi_undefined = (tn + fn == 0) | (tp + fp == 0) | (p == 0) | (n == 0)
        return {
            "truth_threshold": t,
            "match_probability": power / (1 + power),
            "total_clerical_labels": labels,
            "p": p,
            "n": n,
            "tp": tp,
            "tn": tn,
            "fp": fp,
            "fn": fn,
            "P_rate": p / labels,
            # Splink's ``cast(N as float)/total``: N in single precision; over an integer total
            # (labels table) DuckDB divides in single precision too and the column is float32
            "N_rate": (
                n.astype(np.float32) / labels.astype(np.float32)
                if integer_counts
                else n.astype(np.float32).astype(np.float64) / labels
            ),
            "tp_rate": tp / p,
            "tn_rate": tn / n,
            "fp_rate": fp / n,
            "fn_rate": fn / p,
            "precision": np.where(tp + fp == 0, 1.0, tp / (tp + fp)),
            "recall": tp / p,
            "specificity": tn / n,
            "npv": np.where(tn + fn == 0, 1.0, tn / (tn + fn)),
            "accuracy": (tp + tn) / (p + n),
            "f1": 2.0 * tp / (2 * tp + fn + fp),
            "f2": 5.0 * tp / (5 * tp + 4 * fn + fp),
            "f0_5": 1.25 * tp / (1.25 * tp + 0.25 * fn + fp),
            "p4": 4.0 * tp * tn / ((4.0 * tp * tn) + ((tp + tn) * (fp + fn))),
            "phi": np.where(phi_undefined, 0.0, ((tp * tn) - (fp * fn)) / phi_den),
        }


def _empty_table() -> pa.Table:
    z = np.zeros(0)
    return pa.table({k: pa.array(v) for k, v in _metrics(z, z, z, z, z, z, z, z).items()})


# -- labelled pairs -------------------------------------------------------------------------------


class LabelledPairs:
    """Record-index pairs (``left < right``) with a clerical score, whether the prediction rules
    produce them, and (where scored) their match weight; ``missed_positives`` counts positive
    pairs left out of the arrays (labels column, not scored)."""

    def __init__(self, left, right, clerical, found, weight, *, missed_positives=0, total=None):
        self.left = left
        self.right = right
        self.clerical = clerical
        self.found = found
        self.match_weight = weight
        self.missed_positives = missed_positives
        self.total_labels = total


def _label_codes(linker, label_column: str) -> np.ndarray:
    if label_column not in linker._data.column_names:
        raise InputError(
            f"the input has no labels column {label_column!r} (columns: "
            f"{linker._data.column_names}); pass the name of the column holding the true cluster"
        )
    table = linker._record_table()
    table.ensure_columns({label_column: None})
    return table.column(label_column).codes


def _cartesian(linker) -> float:
    """Splink's ``calculate_cartesian``: the number of pairs the job could compare."""
    table = linker._record_table()
    n = table.n_records
    if linker.settings.link_type == "link_only":
        sizes = np.bincount(table.source_codes).astype(np.float64)
        return (sizes.sum() ** 2 - (sizes**2).sum()) / 2
    return n * (n - 1) / 2


def _positive_pairs(linker, codes: np.ndarray) -> int:
    """Pairs with equal non-null labels that the job could compare, from the cluster sizes."""
    valid = codes >= 0
    sizes = np.bincount(codes[valid]).astype(np.int64)
    total = int((sizes * (sizes - 1) // 2).sum())
    if linker.settings.link_type == "link_only":
        source = linker._record_table().source_codes[valid].astype(np.int64)
        key = codes[valid].astype(np.int64) * (int(source.max(initial=0)) + 1) + source
        same_source = np.unique(key, return_counts=True)[1].astype(np.int64)
        total -= int((same_source * (same_source - 1) // 2).sum())
    return total


def labelled_pairs_from_column(
    linker, label_column: str, *, score_missed_positives: bool
) -> LabelledPairs:
    """The blocked pairs, labelled by ``label_column``; positives the rules miss are counted (or,
    with ``score_missed_positives``, blocked on the label and scored, Splink's extra rule)."""

    rules = prediction_rules(linker.settings)
    codes = _label_codes(linker, label_column)
    all_rules = rules + [block_on(label_column)] if score_missed_positives else rules
    scorer = linker._scorer(all_rules)
    scored = scorer.score(-math.inf, keep_gammas=False)
    left, right = scored.left.astype(np.int64), scored.right.astype(np.int64)
    positive = (codes[left] >= 0) & (codes[left] == codes[right])
    found = scored.match_key < len(rules)
    missed = 0 if score_missed_positives else _positive_pairs(linker, codes) - int(positive.sum())
    return LabelledPairs(
        left, right, positive.astype(np.float64), found, scored.match_weight,
        missed_positives=missed, total=_cartesian(linker),
    )  # fmt: skip


def _labels_arrow(linker, labels) -> pa.Table:
    """A labels table: a table, or (Splink's ``labels_splinkdataframe_or_table_name``) the name
    of one registered with the linker (``register_labels_table``, ``register_table``), else a
    file path."""
    from gpulink.evaluation import _to_arrow

    if isinstance(labels, str):
        from gpulink.named_tables import _as_table

        return _as_table(linker, labels, "the labels table")[0]
    return _to_arrow(labels, "labels")


def _record_keys(linker, uid, sd) -> pa.Array:
    """Join keys of records (``source_dataset`` + id for link jobs, the id for dedupe)."""
    key = pc.cast(uid, pa.large_string())
    if linker.settings.link_type != "dedupe_only" and sd is not None:
        sep = pa.scalar("-__-", pa.large_string())  # a str would be a (small) string
        key = pc.binary_join_element_wise(pc.cast(sd, pa.large_string()), key, sep)
    return key


def labelled_pairs_from_table(linker, labels) -> LabelledPairs:
    """The labelled pairs of a labels table (``unique_id_l``/``_r``, for link jobs
    ``source_dataset_l``/``_r``, ``clerical_match_score``), scored; rows naming a record the input
    lacks are dropped (Splink's inner join)."""
    s = linker.settings
    uid, sd = s.unique_id_column_name, s.source_dataset_column_name
    t = _labels_arrow(linker, labels)
    link = s.link_type != "dedupe_only"
    need = [f"{uid}_l", f"{uid}_r", "clerical_match_score"]
    if link:
        need += [f"{sd}_l", f"{sd}_r"]
    missing = [c for c in need if c not in t.column_names]
    if missing:
        raise InputError(
            f"the labels table lacks {missing} (columns: {t.column_names}); it needs "
            f"{need}, as Splink's register_labels_table"
        )
    table = linker._record_table()
    keys = _record_keys(linker, table.unique_id, table.source_dataset)
    li = pc.index_in(_record_keys(linker, t[f"{uid}_l"], t[f"{sd}_l"] if link else None), keys)
    ri = pc.index_in(_record_keys(linker, t[f"{uid}_r"], t[f"{sd}_r"] if link else None), keys)
    ok = pc.and_(pc.is_valid(li), pc.is_valid(ri)).to_numpy(zero_copy_only=False)
    li = li.to_numpy(zero_copy_only=False)[ok].astype(np.int64)
    ri = ri.to_numpy(zero_copy_only=False)[ok].astype(np.int64)
    score = pc.cast(t["clerical_match_score"], pa.float64()).to_numpy(zero_copy_only=False)[ok]
    left, right = np.minimum(li, ri), np.maximum(li, ri)
    weight, found = score_record_pairs(linker, left, right)
    return LabelledPairs(left, right, score, found, weight)


def score_record_pairs(linker, left: np.ndarray, right: np.ndarray):
    """Match weights of explicit record pairs (indices into the linker's records, ``left <
    right``) and whether a prediction rule produces each pair."""
    from gpulink.realtime import _found_by_rules, scored_pairs_table

    rules = prediction_rules(linker.settings)
    s = copy.copy(linker.settings)
    s.retain_matching_columns = True
    s.retain_intermediate_calculation_columns = True
    scorer = linker._scorer(rules)
    scorer.settings = s
    out = scored_pairs_table(scorer, s, left, right)
    weight = out["match_weight"].to_numpy()
    return weight, _found_by_rules(linker._record_table(), rules, left, right)


# -- the linker methods -----------------------------------------------------------------------------


def _check_options(add_metrics, output_type) -> None:
    if not isinstance(add_metrics, (list, tuple)):
        raise SettingsError(
            f"add_metrics must be a list of metric names from {list(ALLOWED_METRICS)}, got "
            f"{add_metrics!r}"
        )
    bad = [m for m in add_metrics if m not in ALLOWED_METRICS]
    if bad:
        raise SettingsError(
            f"add_metrics has unknown metrics {bad}; allowed: {', '.join(ALLOWED_METRICS)}"
        )
    if output_type not in OUTPUT_TYPES:
        raise SettingsError(
            f"output_type {output_type!r} is not one of {', '.join(map(repr, OUTPUT_TYPES))}"
        )


def accuracy_analysis(
    pairs: LabelledPairs,
    *,
    threshold_match_probability: float,
    match_weight_round_to_nearest: float | None,
    output_type: str,
    add_metrics,
    not_found_scored_as_zero: bool = True,
):
    """The truth-space table of ``pairs`` as a LinkResult (``output_type="table"``) or a chart."""
    from gpulink.results import LinkResult

    tt = round_truth_threshold(pairs.match_weight, match_weight_round_to_nearest)
    if not_found_scored_as_zero:
        tt = np.where(pairs.found, tt, NOT_FOUND)
    table = truth_space_table(
        tt,
        pairs.clerical >= threshold_match_probability,
        extra_positives_not_found=pairs.missed_positives,
        total_labels=pairs.total_labels,
    )
    if output_type == "table":
        return LinkResult(table)
    from gpulink.accuracy_charts import accuracy_chart

    return accuracy_chart(table, output_type, list(add_metrics))
