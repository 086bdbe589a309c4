"""Splink 5's blocked pairs for predict: computed (whole or by chunk) and registered.

``linker.inference.compute_blocked_pairs_for_predict(_chunk)`` materialises the candidate
pairs predict (or ``predict_chunk``) scores, as Splink's table: ``match_key`` (the rule, a
string), ``join_key_l``/``join_key_r`` (Splink's composite unique ids: the id for dedupe_only,
``source_dataset || '-__-' || id`` for link jobs), then the source dataset ``_l``/``_r``
(link jobs) and unique id ``_l``/``_r`` columns of predict's output, so that the pairs join to
predictions. ``linker.table_management.register_blocked_pairs_for_predict(pairs)`` makes
predict score exactly the pairs of such a table (Splink's, or gpulink's, or any table with
``join_key_l``/``join_key_r``, or predict's id columns, and ``match_key``).

Registered pairs are scored by the same fused kernels as predict's: they are laid out as a
blocking plan of one-pair segments (:func:`registered_plan`) whose rule is the pair's
registered ``match_key``, with no cross-rule dedup and no link-type filter (Splink scores a
registered table as it is), so a pair gets the very weight predict gives it.

>>> import gpulink as gl, gpulink.comparison_library as cl
>>> from gpulink.datasets import synthetic_people
>>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")],
...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
>>> linker = gl.Linker(synthetic_people(100, seed=1), s, backend="cpu")
>>> pairs = linker.inference.compute_blocked_pairs_for_predict()
>>> pairs.columns
['match_key', 'join_key_l', 'join_key_r', 'unique_id_l', 'unique_id_r']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.chunking import composite_ids
from gpulink.errors import InputError

#: Registered pairs may carry at most this many distinct match keys (Splink's are the indices
#: of the prediction rules; each key costs 4 bytes per record in the plan).
MAX_MATCH_KEYS = 1024


def _record_sources(linker, table):
    return table.source_dataset if linker.settings.link_type != "dedupe_only" else None


def blocked_pairs_result(linker, plan):
    """The pairs of ``plan`` (all, or a chunk's) as Splink's blocked-pairs table, a
    :class:`~gpulink.linker.PredictionResult` keeping the record indices."""
    from gpulink.blocking import iter_blocked_pairs
    from gpulink.linker import PredictionResult

    table = linker._record_table()
    chunks = list(iter_blocked_pairs(plan, backend=linker.backend))
    if chunks:
        left = np.concatenate([c.left for c in chunks]).astype(np.int64)
        right = np.concatenate([c.right for c in chunks]).astype(np.int64)
        key = np.concatenate([c.match_key for c in chunks])
    else:
        left = right = np.zeros(0, np.int64)
        key = np.zeros(0, np.int32)
    s = linker.settings
    sd = _record_sources(linker, table)
    ids = composite_ids(table.unique_id, sd)
    names = pa.array([str(k) for k in range(plan.n_rules)], pa.string())
    li, ri = pa.array(left), pa.array(right)
    cols = {
        "match_key": pc.take(names, pa.array(key.astype(np.int32))),
        "join_key_l": pc.take(ids, li),
        "join_key_r": pc.take(ids, ri),
    }
    if sd is not None:
        cols[f"{s.source_dataset_column_name}_l"] = pc.take(sd, li)
        cols[f"{s.source_dataset_column_name}_r"] = pc.take(sd, ri)
    cols[f"{s.unique_id_column_name}_l"] = pc.take(table.unique_id, li)
    cols[f"{s.unique_id_column_name}_r"] = pc.take(table.unique_id, ri)
    result = PredictionResult(pa.table(cols), left, right)
    result.linker_id = id(linker)
    return result


@dataclass
class RegisteredPairs:
    """Blocked pairs registered for predict: record indices and the ``match_key`` of each
    (an index into ``match_keys``, the distinct registered keys as strings)."""

    left: np.ndarray  # int64 record index per pair
    right: np.ndarray
    key_code: np.ndarray  # int64 index into match_keys
    match_keys: pa.Array  # string

    def __len__(self) -> int:
        return len(self.left)


def _side_keys(linker, t: pa.Table, side: str) -> tuple[pa.Array, str]:
    """The composite ids of one side of a pairs table: ``join_key_<side>``, else predict's
    id columns; and the names read (for messages)."""
    s = linker.settings
    uid, sd = f"{s.unique_id_column_name}_{side}", f"{s.source_dataset_column_name}_{side}"
    if f"join_key_{side}" in t.column_names:
        return t.column(f"join_key_{side}"), f"join_key_{side}"
    link = s.link_type != "dedupe_only"
    if uid in t.column_names and (not link or sd in t.column_names):
        return composite_ids(t.column(uid), t.column(sd) if link else None), uid
    need = f"{sd}/{uid}" if link else uid
    raise InputError(
        f"the blocked pairs table has no join_key_{side} column (nor {need}); its columns: "
        f"{t.column_names}. Pass the output of compute_blocked_pairs_for_predict() (Splink's "
        "or gpulink's): match_key, join_key_l, join_key_r"
    )


def registered_pairs(linker, input_data) -> RegisteredPairs:
    """Read a blocked-pairs table (anything :func:`gpulink.io.to_arrow` reads, Splink's
    registered tables and gpulink results included) into record indices; every pair must name
    two records of the linker's input and carry a ``match_key``."""
    from gpulink.io import to_arrow

    t = to_arrow(input_data, what="the blocked pairs table")
    if "match_key" not in t.column_names:
        raise InputError(
            f"the blocked pairs table has no match_key column (columns: {t.column_names}); "
            "pass the output of compute_blocked_pairs_for_predict() (Splink's or gpulink's), or "
            "add match_key (the index of the blocking rule that found each pair, e.g. '0')"
        )
    table = linker._record_table()
    records = pc.cast(
        composite_ids(table.unique_id, _record_sources(linker, table)), pa.large_string()
    )
    index = {}
    for side in ("l", "r"):
        keys, name = _side_keys(linker, t, side)
        try:
            keys = pc.cast(keys, pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(
                f"the blocked pairs table's {name} has type {keys.type}, which is not an id; "
                "pass the join keys compute_blocked_pairs_for_predict() writes"
            ) from None
        found = pc.index_in(keys, value_set=records)
        if found.null_count:
            missing = pc.filter(keys, pc.is_null(found))
            raise InputError(
                f"the blocked pairs table's {name} has {len(missing)} ids that name no record "
                f"of this linker's input (first: {missing[0].as_py()!r}); register pairs "
                "computed from this input (compute_blocked_pairs_for_predict())"
            )
        index[side] = found.to_numpy(zero_copy_only=False).astype(np.int64)
    match_key = pc.cast(t.column("match_key"), pa.string())
    if match_key.null_count:
        raise InputError(
            f"the blocked pairs table's match_key has {match_key.null_count} nulls; give every "
            "pair the index of the blocking rule that found it (e.g. '0')"
        )
    encoded = pc.dictionary_encode(match_key).combine_chunks()
    if len(encoded.dictionary) > MAX_MATCH_KEYS:
        raise InputError(
            f"the blocked pairs table's match_key has {len(encoded.dictionary)} distinct values "
            f"(at most {MAX_MATCH_KEYS}); Splink's match_key is the index of the blocking rule"
        )
    return RegisteredPairs(
        left=index["l"],
        right=index["r"],
        key_code=encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        match_keys=encoded.dictionary,
    )


def registered_plan(table, pairs: RegisteredPairs):
    """A blocking plan whose segment ``t`` is the one registered pair ``t`` (rule: its match
    key's code; every group null, so no pair is dropped as an earlier rule's; the dedupe link
    type, so no pair is dropped for its sources). Pairs come out oriented ``left < right`` in
    record order, as predict orients them."""
    from gpulink.blocking import BlockingPlan

    n = len(pairs)
    members = np.empty(2 * n, np.int32)
    members[0::2] = pairs.left
    members[1::2] = pairs.right
    ones = np.ones(n, np.int64)
    n_keys = max(1, len(pairs.match_keys))
    rule_pair_start = np.zeros(n_keys + 1, np.int64)
    np.cumsum(np.bincount(pairs.key_code, minlength=n_keys), out=rule_pair_start[1:])
    return BlockingPlan(
        n_records=table.n_records,
        link_type="dedupe_only",
        link_type_code=0,
        groups=np.full((n_keys, table.n_records), -1, np.int32),
        members=members,
        seg_start=np.arange(n + 1, dtype=np.int64),
        seg_a=np.arange(0, 2 * n, 2, dtype=np.int64),
        seg_na=ones,
        seg_b=np.arange(1, 2 * n, 2, dtype=np.int64),
        seg_nb=ones.copy(),
        seg_rule=pairs.key_code.astype(np.int64),
        rule_pair_start=rule_pair_start,
        source_codes=np.zeros(table.n_records, np.int32),
    )


__all__ = ["RegisteredPairs", "blocked_pairs_result", "registered_pairs", "registered_plan"]
