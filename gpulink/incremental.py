"""Splink 5's ``predict_within`` / ``predict_between``: blocked predictions over supplied records.

Incremental linkage: the matches of a batch of new records, among themselves
(``predict_within(new)``) or in the linker's input (``predict_between(input, new)``), without
predicting over everything again. The records become one record table of their own, read in the
input's types and encoded with the model's column kinds (as :mod:`gpulink.realtime` does); the
blocking plan pairs them by the prediction rules (the model's, or those given) and the fused
kernel scores the candidates, so only blocked pairs are ever formed. ``predict_between`` plans
the two roles as two sources of a link job: every pair has one record of each, the left-hand
record on the left.

Term frequencies are those of the linker's input, or a side's own ``tf_<column>`` column where
it carries one (Splink requires registered TF tables; registering the input's,
``compute_tf_table``, gives the same values). A value the input does not hold, or a null, has
none.

>>> import gpulink as gl
>>> import gpulink.comparison_library as cl
>>> from gpulink.datasets import synthetic_people
>>> df = synthetic_people(300, seed=3).to_pandas()
>>> settings = gl.SettingsCreator(
...     link_type="dedupe_only",
...     comparisons=[cl.ExactMatch("surname").configure(term_frequency_adjustments=True),
...                  cl.ExactMatch("dob")],
...     blocking_rules_to_generate_predictions=[gl.block_on("dob")],
... )
>>> linker = gl.Linker(df, settings, backend="cpu")
>>> new = df.head(2).assign(unique_id=df["unique_id"].head(2) + 1000)
>>> found = linker.inference.predict_between(df, new, threshold_match_weight=0).to_pandas()
>>> found[["unique_id_l", "unique_id_r", "gamma_surname", "gamma_dob"]].values.tolist()
[[0, 1000, 1, 1], [1, 1001, 1, 1], [3, 1001, 1, 1], [63, 1001, 1, 1], [84, 1001, 1, 1], [258, 1001, 1, 1]]

"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.backend import CPU
from gpulink.blocking import to_blocking_rules
from gpulink.errors import InputError, SettingsError
from gpulink.expressions import parse
from gpulink.io import to_arrow
from gpulink.predict import ScoredPairs, pairs_table, threshold_to_weight
from gpulink.realtime import RecordScorer, _RecordPairScorer, _threads_for, weights_from_columns
from gpulink.results import LinkResult
from gpulink.table import orientation_order

WARNING_MODES = ("auto", "always", "never")
LINK_TYPES = ("dedupe_only", "link_only", "link_and_dedupe")


def predict_within(
    linker, records, *, link_type=None, blocking_rules_to_generate_predictions=None,
    threshold_match_probability=None, threshold_match_weight=None, warning_mode="auto",
) -> LinkResult:  # fmt: skip
    """Splink 5's ``linker.inference.predict_within``: the blocked pairs within ``records``.

    ``records``: a table (pandas, polars, pyarrow, a gpulink result) or a list of them (link
    jobs: each carries its source dataset column). Pairs as predict forms them over an input of
    these records alone (``unique_id_l < unique_id_r`` for dedupe jobs), scored with the model;
    columns as predict's. ``link_type`` and ``blocking_rules_to_generate_predictions`` override
    the model's for this call; the thresholds keep pairs at or above them.
    """
    settings, rules = _call_settings(linker, link_type, blocking_rules_to_generate_predictions)
    _check_warning_mode(warning_mode)
    threshold = threshold_to_weight(threshold_match_probability, threshold_match_weight)
    data = _records(records, "records", settings)
    order = orientation_order(
        data,
        unique_id_column=settings.unique_id_column_name,
        source_dataset_column=settings.source_dataset_column_name,
        link_type=settings.link_type,
    )
    data = data.take(pa.array(order))
    return _predict(linker, settings, rules, data, None, threshold)


def predict_between(
    linker, left, right, *, link_type=None, blocking_rules_to_generate_predictions=None,
    threshold_match_probability=None, threshold_match_weight=None, warning_mode="auto",
) -> LinkResult:  # fmt: skip
    """Splink 5's ``linker.inference.predict_between``: blocked pairs of one ``left`` record and
    one ``right`` record, never two of one side; the left-hand record is ``_l``.

    ``left`` / ``right``: roles (say the linker's input and new records), each a table or a
    list of tables. For ``link_only`` a pair's records must also come from different source
    datasets. Other arguments as :func:`predict_within`.
    """
    settings, rules = _call_settings(linker, link_type, blocking_rules_to_generate_predictions)
    _check_warning_mode(warning_mode)
    threshold = threshold_to_weight(threshold_match_probability, threshold_match_weight)
    left_data = _records(left, "left", settings)
    right_data = _records(right, "right", settings)
    return _predict(linker, settings, rules, left_data, right_data, threshold)


# -- helpers -----------------------------------------------------------------------------------


def _check_warning_mode(warning_mode) -> None:
    if warning_mode not in WARNING_MODES:
        raise ValueError(
            f"warning_mode must be one of 'auto', 'always' or 'never'; got {warning_mode!r}"
        )


def _call_settings(linker, link_type, rules):
    """The model's settings with this call's link type and prediction rules (a copy)."""
    settings = copy.copy(linker.settings)
    if link_type is not None:
        if link_type not in LINK_TYPES:
            raise SettingsError(
                f"link_type must be one of {', '.join(LINK_TYPES)}; got {link_type!r}"
            )
        settings.link_type = link_type
    rules = to_blocking_rules(settings.blocking_rules if rules is None else rules)
    if not rules:
        raise SettingsError(
            "no blocking rules to generate predictions; give blocking_rules_to_generate_"
            "predictions, e.g. [block_on('surname')]"
        )
    return settings, rules


def _records(records, what: str, settings) -> pa.Table:
    """One side's records as one Arrow table (a list of tables: concatenated, each needs its
    source dataset column in link jobs)."""
    tables = list(records) if isinstance(records, (list, tuple)) else [records]
    if not tables:
        raise InputError(f"{what}: no tables; give a table of records")
    tables = [to_arrow(t, what=what) for t in tables]
    sd = settings.source_dataset_column_name
    if settings.link_type != "dedupe_only":
        for t in tables:
            if sd not in t.column_names:
                raise InputError(
                    f"{what}: a {settings.link_type} job needs the source dataset column "
                    f"{sd!r} on every table of records; add it (the dataset's name)"
                )
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def _predict(linker, settings, rules, left: pa.Table, right: pa.Table | None, threshold):
    """Score the blocked pairs of ``left`` (alone, or against ``right``); Splink's columns."""
    cache = linker.__dict__.setdefault("_record_scorer", None)
    if cache is None:
        cache = linker.__dict__["_record_scorer"] = RecordScorer(linker)
    model = cache._columns()
    raw = {c for rule in rules for e in rule.expressions for c in parse(e).columns}
    model = dataclasses.replace(
        model,
        required=list(
            dict.fromkeys([*model.required, *(c for c in raw if c not in model.required)])
        ),
        rules=rules,
    )
    between = right is not None
    if not between:
        right = left.slice(0, 0)
    saved = linker.settings
    linker.settings = settings  # the record table's source dataset follows this call's link type
    try:
        table, given = cache._record_table(left, right, model)
    finally:
        linker.settings = saved
    n_left = left.num_rows
    if between:  # the two roles as the two sources of a link job: only cross pairs
        table.source_codes = np.r_[np.zeros(n_left, np.int32), np.ones(right.num_rows, np.int32)]
        plan_link_type = "link_only"
    else:
        table.source_codes = _source_codes(table, settings)
        plan_link_type = settings.link_type
    table.link_type = plan_link_type

    full = copy.copy(settings)  # every column, to add the weight up as Splink does
    full.retain_matching_columns = True
    full.retain_intermediate_calculation_columns = True
    full.link_type = plan_link_type
    scorer = _RecordPairScorer(table, full, rules, use_tf=True, backend=CPU)
    record_tf = cache._record_tf(table, given, n_left, model.kinds)
    scorer.record_tf = {scorer.columns.index(e): tf for e, tf in record_tf.items()}
    plan = scorer.plan()
    with _threads_for(plan.n_candidates):
        scored = scorer.score(-np.inf, keep_gammas=True, plan=plan)
        if between and settings.link_type == "link_only" and table.source_dataset is not None:
            sd = table.source_dataset
            l_sd = pc.take(sd, pa.array(scored.left.astype(np.int64)))
            r_sd = pc.take(sd, pa.array(scored.right.astype(np.int64)))
            keep = np.asarray(pc.fill_null(pc.not_equal(l_sd, r_sd), False))
            scored = _take(scored, keep)
        weight = weights_from_columns(pairs_table(scorer, scored), full)
        scored.match_weight = weight
        scored = _take(scored, weight >= threshold)
        out_scorer = copy.copy(scorer)
        out_scorer.settings = settings
        return LinkResult(pairs_table(out_scorer, scored))


def _source_codes(table, settings) -> np.ndarray:
    if settings.link_type == "dedupe_only" or table.source_dataset is None:
        return np.zeros(table.n_records, np.int32)
    names = pc.unique(table.source_dataset).to_pylist()
    return np.asarray(
        pc.index_in(table.source_dataset, pa.array(sorted(n for n in names if n is not None))),
        np.int32,
    )


def _take(scored: ScoredPairs, keep: np.ndarray) -> ScoredPairs:
    return ScoredPairs(
        left=scored.left[keep], right=scored.right[keep], match_weight=scored.match_weight[keep],
        match_key=scored.match_key[keep],
        gammas=None if scored.gammas is None else scored.gammas[keep],
    )  # fmt: skip
