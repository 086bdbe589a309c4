"""Splink 5's unlinkable records: each input record scored against itself.

A record that cannot reach a match weight even when compared with itself does not carry
enough information to be linked at that threshold. :func:`self_link_scores` scores every
record of the linker's input (all tables of a link job) against itself with the model, as
Splink's ``linker._self_link()``: every comparison evaluates its levels on the pair (record,
record), so a null value falls in the null level, and term-frequency adjustments use the
frequency of the record's own value in the input. :func:`unlinkables_records` gives what
``linker.evaluation.unlinkables_chart()`` plots: Splink's ``unlinkables_data`` rows.

>>> import gpulink as gl, gpulink.comparison_library as cl
>>> from gpulink.datasets import synthetic_people
>>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("surname"), cl.ExactMatch("dob")])
>>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
>>> scores = self_link_scores(linker)
>>> scores.column_names
['unique_id', 'match_weight', 'match_probability']
>>> rows = unlinkables_records(scores)
>>> sorted(rows[0])
['cum_prop', 'match_probability', 'match_weight', 'prop']
"""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pyarrow as pa


def self_link_scores(linker) -> pa.Table:
    """Every input record scored against itself (Splink's ``linker._self_link()``).

    Columns: the source dataset column (link jobs), the unique id, ``match_weight`` and
    ``match_probability``, one row per input record in the linker's record order. The weight
    is the prior plus each comparison's level weight and term-frequency adjustment, added up
    as predict's ``mw_*`` columns are.
    """
    from gpulink.predict import Scorer, match_probability
    from gpulink.realtime import scored_pairs_table

    s = copy.copy(linker.settings)  # the intermediate columns hold every term of the weight
    s.retain_matching_columns = False
    s.retain_intermediate_calculation_columns = True
    table = linker._record_table()
    scorer = Scorer(
        table, s, [], use_tf=True, backend=linker.backend,
        packed_cache=linker.__dict__.setdefault("_packed_cache", {}),
    )  # fmt: skip
    records = np.arange(table.n_records, dtype=np.int64)
    weight = scored_pairs_table(scorer, s, records, records)["match_weight"].to_numpy()
    cols = {}
    if s.link_type != "dedupe_only" and table.source_dataset is not None:
        cols[s.source_dataset_column_name] = table.source_dataset
    cols[s.unique_id_column_name] = table.unique_id
    cols["match_weight"] = pa.array(weight)
    cols["match_probability"] = pa.array(match_probability(weight))
    return pa.table(cols)


def duckdb_round(values: np.ndarray, decimals: int) -> np.ndarray:
    """DuckDB's ``round(x, decimals)`` of doubles: the exact value of each double rounded to
    ``decimals`` places, halves away from zero, as the nearest double.

    ``x * 10**decimals`` rounded in double arithmetic is only ambiguous where the product is
    exactly a half (the true product may lie just below or above it): those few are settled
    with exact decimal arithmetic. Infinities and NaN are returned as they are.

    >>> duckdb_round(np.array([0.125, -0.125, 2.675, 1.005, 6.6049999999999995]), 2).tolist()
    [0.13, -0.13, 2.67, 1.0, 6.6]
    """
    x = np.asarray(values, dtype=np.float64)
    scale = 10.0**decimals
    y = x * scale
    whole = np.trunc(y)
    with np.errstate(invalid="ignore"):
        frac = np.abs(y - whole)
        out = (whole + np.where(frac > 0.5, np.sign(y), 0.0)) / scale
        ties = np.flatnonzero(frac == 0.5)
    quantum = Decimal(1).scaleb(-decimals)
    for i in ties:
        out[i] = float(Decimal(float(x[i])).quantize(quantum, rounding=ROUND_HALF_UP))
    bad = ~np.isfinite(x)
    out[bad] = x[bad]
    return out


def unlinkables_records(scores: pa.Table) -> list[dict]:
    """Splink's ``unlinkables_data``: the self-link scores grouped by match probability.

    The weights are rounded to 2 places and the probabilities to 5 (DuckDB's ``round``, see
    :func:`duckdb_round`); per rounded probability, in increasing order: the largest rounded
    weight (``match_weight``), ``match_probability``, the share of all records (``prop``,
    computed in single precision as Splink's ``count(*) / cast(total as float)``) and the
    running total of the shares (``cum_prop``); rows whose rounded probability is 1 are left
    out.
    """
    weight = duckdb_round(scores.column("match_weight").to_numpy(), 2)
    prob = duckdb_round(scores.column("match_probability").to_numpy(), 5)
    groups, inverse, counts = np.unique(prob, return_inverse=True, return_counts=True)
    top = np.full(len(groups), -np.inf)
    np.maximum.at(top, inverse, weight)
    prop = (counts.astype(np.float32) / np.float32(len(prob))).astype(np.float64)
    keep = groups < 1
    cum = np.cumsum(prop[keep])
    return [
        {"match_weight": float(w), "match_probability": float(p), "prop": float(q),
         "cum_prop": float(c)}
        for w, p, q, c in zip(top[keep], groups[keep], prop[keep], cum)
    ]  # fmt: skip


__all__ = ["duckdb_round", "self_link_scores", "unlinkables_records"]
