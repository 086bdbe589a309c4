"""Deterministic linkage: the pairs the prediction blocking rules admit, unscored.

Splink 5's ``linker.inference.deterministic_link()``: every pair some rule of
``blocking_rules_to_generate_predictions`` admits (the first rule it satisfies is its
``match_key``; nulls never match; link types and pair orientation as predict's), with the columns
Splink selects for blocking. Pairs are enumerated from gpulink's blocking plan in bounded
chunks of its pair-index space, on the linker's backend (the kernels of
:func:`gpulink.blocking.iter_blocked_pairs`); only the emitted pairs, the output, are held.

>>> import pyarrow as pa
>>> import gpulink as gl
>>> settings = gl.SettingsCreator(link_type="dedupe_only",
...     blocking_rules_to_generate_predictions=[gl.block_on("x")])
>>> linker = gl.Linker(pa.table({"unique_id": [3, 1, 2], "x": ["a", "b", "a"]}), settings,
...                    backend="cpu")
>>> deterministic_link(linker).as_dict()
{'unique_id_l': [2], 'unique_id_r': [3], 'x_l': ['a'], 'x_r': ['a'], 'match_key': ['0']}
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.blocking import build_plan, prediction_rules
from gpulink.expressions import parse
from gpulink.levels import iter_leaves
from gpulink.settings import Settings
from gpulink.table_management import record_tf, term_frequency_column

if TYPE_CHECKING:
    from gpulink.linker import Linker, PredictionResult
    from gpulink.table import RecordTable


def output_columns(settings: Settings, available: list[str]) -> list[tuple[str, str]]:
    """The columns of deterministic_link's output before ``match_key``, in Splink's order, as
    ``(what, input column)`` pairs: ``("value", c)`` gives ``c_l``, ``c_r`` and ``("tf", c)``
    gives ``tf_c_l``, ``tf_c_r``.

    Splink's ``Settings._columns_to_select_for_blocking``: the source dataset column (link
    jobs) and the unique id; per comparison, per level, each input column the level reads
    followed, where the level has term-frequency adjustments, by its TF column; then, with
    ``retain_matching_columns``, the columns only the blocking rules read; then
    ``additional_columns_to_retain``; each once. Splink lists the columns of a level reading
    several as a Python set (its order varies between runs) and the blocking-rule-only columns
    likewise; here they come in order of appearance.

    >>> import gpulink.comparison_library as cl
    >>> from gpulink import SettingsCreator, block_on
    >>> s = Settings.from_any(SettingsCreator(link_type="dedupe_only",
    ...     comparisons=[cl.ExactMatch("city").configure(term_frequency_adjustments=True)],
    ...     blocking_rules_to_generate_predictions=[block_on("dob")]))
    >>> output_columns(s, ["unique_id", "city", "dob"])
    [('value', 'unique_id'), ('value', 'city'), ('tf', 'city'), ('value', 'dob')]
    """
    out: list[tuple[str, str]] = []

    def add(what: str, column: str) -> None:
        if (what, column) not in out:
            out.append((what, column))

    if settings.link_type != "dedupe_only":
        add("value", settings.source_dataset_column_name)
    add("value", settings.unique_id_column_name)
    used = {column for _, column in out}
    for comparison in settings.comparisons:
        for level in comparison.levels:
            if level.is_else_level:
                continue
            tf_column = None
            if level.tf_adjustment_column is not None:
                tf_column = parse(level.tf_adjustment_column).columns[0]
            for leaf in iter_leaves(level.predicate):
                for expr in leaf.cols:
                    for raw in parse(expr).columns:
                        used.add(raw)
                        add("value", raw)
                        if tf_column is not None:
                            add("tf", tf_column)
    if settings.retain_matching_columns:
        from gpulink.predict import blocking_rule_columns

        for raw in blocking_rule_columns(settings):
            if raw not in used:
                add("value", raw)
    for raw in settings.retained_input_columns(available):
        add("value", raw)
    return out


def deterministic_table(
    table: RecordTable,
    settings: Settings,
    left: np.ndarray,
    right: np.ndarray,
    match_key: np.ndarray,
) -> pa.Table:
    """deterministic_link's output table for record pairs ``(left, right)`` and their rules."""
    left_idx = pa.array(np.asarray(left, np.int64))
    right_idx = pa.array(np.asarray(right, np.int64))
    data = table.data
    tf_prefix = settings.term_frequency_adjustment_column_prefix
    cols: dict[str, pa.Array] = {}
    for what, column in output_columns(settings, data.column_names):
        if what == "value":
            values = data.column(column)
            name = column
        else:
            values = record_tf(term_frequency_column(table, column))
            name = f"{tf_prefix}{column}"
        cols[f"{name}_l"] = pc.take(values, left_idx)
        cols[f"{name}_r"] = pc.take(values, right_idx)
    keys = np.asarray(match_key, np.int32)
    names = pa.array([str(k) for k in range(int(keys.max()) + 1 if len(keys) else 0)], pa.string())
    cols["match_key"] = pc.take(names, pa.array(keys))
    return pa.table(cols)


def deterministic_link(linker: Linker, *, chunk_pairs: int = 1 << 22) -> PredictionResult:
    """Every pair the model's prediction blocking rules admit, with Splink's columns (see
    :func:`output_columns`) and ``metadata["is_deterministic_link"]``; rows in rule order."""
    from gpulink.linker import PredictionResult, progress_bar

    settings = linker.settings
    rules = prediction_rules(settings)  # deterministic_link returns the pairs they admit
    start = time.perf_counter()
    table = linker._record_table()
    table.ensure_columns({expr: None for rule in rules for expr in rule.expressions})
    plan = build_plan(table, rules, settings.link_type)
    if linker.backend.is_gpu:
        from gpulink.kernels.pairs_gpu import enumerate_range_gpu as enumerate_range
    else:
        from gpulink.kernels.pairs import enumerate_range_cpu as enumerate_range
    lefts, rights, keys = [], [], []
    total = plan.n_candidates
    with progress_bar(total, "enumerating pairs") as progress:
        for p0 in range(0, total, chunk_pairs):
            p1 = min(total, p0 + chunk_pairs)
            left, right, key = enumerate_range(plan, p0, p1)
            if len(left):  # exactly the emitted pairs (int32): the output, nothing more
                lefts.append(left)
                rights.append(right)
                keys.append(key)
            progress.update(p1 - p0)
    empty = np.zeros(0, np.int32)
    left = np.concatenate(lefts) if lefts else empty
    right = np.concatenate(rights) if rights else empty
    key = np.concatenate(keys) if keys else empty
    out = deterministic_table(table, settings, left, right, key)
    linker.timings["deterministic_link"] = time.perf_counter() - start
    result = PredictionResult(out, left, right, metadata={"is_deterministic_link": True})
    result.linker_id = id(linker)
    return result


__all__ = ["deterministic_link", "deterministic_table", "output_columns"]
