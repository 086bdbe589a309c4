"""Splink 5's prediction errors against labels: the labelled pairs the model gets wrong.

A pair is a *false positive* when its clerical score is below the threshold and its match
probability above it (``clerical < t and p > t``), a *false negative* when the clerical score is
above and the probability below (``clerical > t and p < t``); both comparisons are strict, as in
Splink, so a pair exactly at the threshold is neither.

From a labels column (the true cluster of each record), as Splink does: the pairs the prediction
rules produce and the pairs sharing a label (blocked on it, Splink's extra rule, whose
``match_key`` is the number of rules) are scored; ``clerical_match_score`` is 1.0 where the labels
are equal (nulls never are), else 0.0; a positive the rules miss (``found_by_blocking_rules``
False) is also a false negative, whatever its probability. Negatives the rules miss are never
enumerated: no pair of them can be a false positive. Columns: ``clerical_match_score``,
``found_by_blocking_rules``, then predict's columns with the labels column ``_l``/``_r``.

From a labels table: every labelled pair is scored (``match_key`` ``"from_labels"``) and the pairs
the rules would not produce are not false negatives for that alone. Columns: predict's columns,
``clerical_match_score``, ``found_by_blocking_rules``, ``truth_status`` (``"FP"`` or ``"FN"``).

>>> import numpy as np
>>> status(np.array([0.0, 1.0, 1.0, 0.5]), np.array([0.9, 0.2, 0.9, 0.9]), 0.5).tolist()
['FP', 'FN', None, None]
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pyarrow as pa

from gpulink.blocking import prediction_rules
from gpulink.errors import SettingsError

__all__ = ["prediction_errors_from_column", "prediction_errors_from_table", "status"]


def status(clerical: np.ndarray, probability: np.ndarray, threshold: float) -> np.ndarray:
    """``"FP"``, ``"FN"`` or None per pair: Splink's strict comparisons with the threshold."""
    fp = (clerical < threshold) & (probability > threshold)
    fn = (clerical > threshold) & (probability < threshold)
    out = np.full(len(clerical), None, dtype=object)
    out[fn] = "FN"
    out[fp] = "FP"
    return out


def _check_include(include_false_positives: bool, include_false_negatives: bool) -> None:
    if not (include_false_positives or include_false_negatives):
        # Splink builds an empty WHERE clause and its SQL fails
        raise SettingsError(
            "include_false_positives and include_false_negatives are both False, so there is "
            "nothing to select; set at least one of them to True"
        )


def _subset(scored, keep: np.ndarray):
    from gpulink.predict import ScoredPairs

    return ScoredPairs(
        left=scored.left[keep], right=scored.right[keep],
        match_weight=scored.match_weight[keep], match_key=scored.match_key[keep],
        gammas=None if scored.gammas is None else scored.gammas[keep],
    )  # fmt: skip


def prediction_errors_from_column(
    linker,
    label_column: str,
    *,
    include_false_positives: bool = True,
    include_false_negatives: bool = True,
    threshold: float = 0.5,
):
    """Splink's ``prediction_errors_from_labels_column`` as a LinkResult (see the module)."""
    from gpulink.accuracy import _label_codes
    from gpulink.blocking import block_on
    from gpulink.predict import keeps_gammas, match_probability, pairs_table
    from gpulink.results import LinkResult

    _check_include(include_false_positives, include_false_negatives)
    rules = prediction_rules(linker.settings)
    codes = _label_codes(linker, label_column)
    s = copy.copy(linker.settings)
    if label_column not in s.additional_columns_to_retain:
        s.additional_columns_to_retain = [*s.additional_columns_to_retain, label_column]
    scorer = linker._scorer(rules + [block_on(label_column)])
    scorer.settings = s
    scored = scorer.score(-math.inf, keep_gammas=keeps_gammas(s))
    left, right = scored.left.astype(np.int64), scored.right.astype(np.int64)
    clerical = ((codes[left] >= 0) & (codes[left] == codes[right])).astype(np.float64)
    found = scored.match_key < len(rules)
    probability = match_probability(scored.match_weight)
    t = threshold
    keep = np.zeros(len(left), bool)
    if include_false_positives:
        keep |= (clerical < t) & (probability > t)
    if include_false_negatives:
        keep |= (clerical > t) & ((probability < t) | ~found)
    table = pairs_table(scorer, _subset(scored, keep))
    table = table.add_column(0, "found_by_blocking_rules", pa.array(found[keep]))
    table = table.add_column(0, "clerical_match_score", pa.array(clerical[keep]))
    return LinkResult(table)


def prediction_errors_from_table(
    linker,
    labels,
    *,
    include_false_positives: bool = True,
    include_false_negatives: bool = True,
    threshold: float = 0.5,
):
    """Splink's ``prediction_errors_from_labels_table`` as a LinkResult (see the module)."""
    from gpulink.accuracy import labelled_pairs_from_table
    from gpulink.predict import ScoredPairs, keeps_gammas, match_probability, pairs_table
    from gpulink.results import LinkResult

    _check_include(include_false_positives, include_false_negatives)
    pairs = labelled_pairs_from_table(linker, labels)
    which = status(pairs.clerical, match_probability(pairs.match_weight), threshold)
    keep = np.zeros(len(which), bool)
    if include_false_positives:
        keep |= which == "FP"
    if include_false_negatives:
        keep |= which == "FN"
    left, right = pairs.left[keep], pairs.right[keep]
    s = linker.settings
    scorer = linker._scorer(prediction_rules(linker.settings))
    scored = ScoredPairs(
        left=left, right=right, match_weight=pairs.match_weight[keep],
        match_key=np.zeros(len(left), np.int32),
        gammas=scorer.gammas_of_pairs(left, right) if keeps_gammas(s) else None,
    )  # fmt: skip
    table = pairs_table(scorer, scored)
    key = table.column_names.index("match_key")
    table = table.set_column(key, "match_key", pa.array(["from_labels"] * len(left), pa.string()))
    table = table.append_column("clerical_match_score", pa.array(pairs.clerical[keep]))
    table = table.append_column("found_by_blocking_rules", pa.array(pairs.found[keep]))
    table = table.append_column("truth_status", pa.array(which[keep].tolist(), pa.string()))
    return LinkResult(table)
