"""Splink 5's prediction chunks: records split by a hash of their id, pairs by their two chunks.

Splink gives each record the chunk ``(ABS(hash(id)) % n) + 1`` of DuckDB's ``hash()`` of its
composite unique id (the id for dedupe_only; ``source_dataset || '-__-' || id`` for link jobs),
and chunk ``(i of n) x (j of m)`` holds the blocked pairs whose left record (the smaller id,
Splink's orientation) is in left chunk ``i`` and whose right record is in right chunk ``j``.
:func:`duckdb_hash` is DuckDB's ``hash()`` for integer and string ids (checked against DuckDB
in ``tests/test_chunks.py``), so the chunks are Splink's; the chunks over all ``(i, j)`` are
disjoint and together are every pair predict scores.

A chunk's pairs are planned, not filtered (:func:`build_chunk_plan`): each rule's blocks are
cut into the left chunk's records, one segment per record, against the right chunk's records
after it, so a chunk walks only its own pairs (and, for link_only, the same-source pairs
among them, which the kernels never emit).

>>> import pyarrow as pa
>>> duckdb_hash(pa.array([0, 1], pa.int64())).tolist()
[0, 4717996019076358352]
>>> record_chunks(pa.array([0, 1, 2, 3], pa.int64()), 3).tolist()
[1, 3, 2, 1]
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.checks import is_integer
from gpulink.errors import SettingsError

_MIX = np.uint64(0xD6E8FEB86659FD93)  # DuckDB's MurmurHash64 multiplier
_SEED = np.uint64(0xE17A1465)  # DuckDB's string hash seed
_LENGTH_MIX = np.uint64(0xC6A4A7935BD1E995)
_SEPARATOR = "-__-"  # splink.internals.unique_id_concat.CONCAT_SEPARATOR


@numba.njit(cache=True)
def _murmur64(x):  # pragma: no cover - compiled
    """DuckDB's ``MurmurHash64`` finaliser of a uint64 (all arithmetic modulo 2^64)."""
    x ^= x >> np.uint64(32)
    x *= _MIX
    x ^= x >> np.uint64(32)
    x *= _MIX
    x ^= x >> np.uint64(32)
    return x


@numba.njit(cache=True)
def _murmur64_all(values, out):  # pragma: no cover - compiled
    for r in range(values.shape[0]):
        out[r] = _murmur64(values[r])


@numba.njit(cache=True)
def _hash_strings(data, offsets, out):  # pragma: no cover - compiled
    """DuckDB's ``HashBytes`` of each UTF-8 string ``data[offsets[r]:offsets[r + 1]]``:
    ``h = seed ^ (len * c)``, then per little-endian 8-byte word (the last zero-padded)
    ``h = (h ^ word) * MIX``, finalised by :func:`_murmur64`."""
    for r in range(out.shape[0]):
        start = offsets[r]
        n = offsets[r + 1] - start
        h = _SEED ^ (np.uint64(n) * _LENGTH_MIX)
        p = 0
        while p < n:
            word = np.uint64(0)
            for t in range(min(8, n - p)):
                word |= np.uint64(data[start + p + t]) << np.uint64(8 * t)
            h ^= word
            h *= _MIX
            p += 8
        out[r] = _murmur64(h)


def duckdb_hash(ids: pa.Array) -> np.ndarray:
    """DuckDB's ``hash()`` (UBIGINT) of integer or string ids, as uint64.

    Integers hash in DuckDB's type for their Arrow type: 8-, 16- and 32-bit signed values as
    their 32-bit pattern, 64-bit values as theirs, unsigned values as they are; strings hash
    their UTF-8 bytes.

    >>> duckdb_hash(pa.array(["a", ""])).tolist()
    [12561829011207016135, 5104928228550385088]
    """
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if pa.types.is_dictionary(ids.type):
        ids = ids.dictionary_decode()
    t = ids.type
    out = np.empty(len(ids), np.uint64)
    if pa.types.is_integer(t):
        values = ids.to_numpy(zero_copy_only=False)
        if pa.types.is_signed_integer(t) and t.bit_width <= 32:
            values = values.astype(np.int32).view(np.uint32).astype(np.uint64)
        elif pa.types.is_signed_integer(t):
            values = values.astype(np.int64).view(np.uint64)
        else:
            values = values.astype(np.uint64)
        _murmur64_all(values, out)
        return out
    if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)):
        raise SettingsError(
            f"chunks need integer or string unique ids (got {t}); cast the id column, e.g. "
            "df['unique_id'] = df['unique_id'].astype('string')"
        )
    ids = ids.cast(pa.large_string())
    if len(ids) == 0:
        return out
    buffers = ids.buffers()
    offsets = np.frombuffer(buffers[1], np.int64)[ids.offset : ids.offset + len(ids) + 1]
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(1, np.uint8)
    _hash_strings(data, np.ascontiguousarray(offsets), out)
    return out


def composite_ids(unique_id: pa.Array, source_dataset: pa.Array | None) -> pa.Array:
    """Splink's composite unique id: the id (dedupe_only, ``source_dataset`` None), else the
    string ``source_dataset || '-__-' || id``.

    >>> composite_ids(pa.array([7]), pa.array(["a"])).to_pylist()
    ['a-__-7']
    """
    if source_dataset is None:
        return unique_id
    return pc.binary_join_element_wise(
        pc.cast(source_dataset, pa.large_string()),
        pc.cast(unique_id, pa.large_string()),
        pa.scalar(_SEPARATOR, pa.large_string()),
    )


def record_chunks(ids: pa.Array, total_chunks: int) -> np.ndarray:
    """Splink's chunk of each record, ``(ABS(hash(id)) % total_chunks) + 1`` (int64, 1-based);
    ``ids`` are the composite unique ids (:func:`composite_ids`)."""
    return (duckdb_hash(ids) % np.uint64(total_chunks)).astype(np.int64) + 1


def check_chunk(chunk, name: str) -> tuple[int, int] | None:
    """``chunk`` as ``(chunk_number, total_chunks)`` with ``1 <= chunk_number <= total_chunks``
    (None: no chunking); anything else is a SettingsError naming ``name`` and the fix.

    >>> check_chunk([2, 3], "left_chunk")
    (2, 3)
    >>> check_chunk((0, 3), "left_chunk")
    Traceback (most recent call last):
    ...
    gpulink.errors.SettingsError: left_chunk=(0, 3) is not a chunk: pass (chunk_number, total_chunks) with 1 <= chunk_number <= total_chunks, e.g. (1, 3) for the first of three chunks (or None for all records)
    """
    if chunk is None:
        return None
    ok = (
        isinstance(chunk, (tuple, list))
        and len(chunk) == 2
        and all(is_integer(v) for v in chunk)
        and 1 <= int(chunk[0]) <= int(chunk[1])
    )
    if not ok:
        raise SettingsError(
            f"{name}={chunk!r} is not a chunk: pass (chunk_number, total_chunks) with "
            "1 <= chunk_number <= total_chunks, e.g. (1, 3) for the first of three chunks "
            "(or None for all records)"
        )
    return int(chunk[0]), int(chunk[1])


def chunk_mask(table, chunk: tuple[int, int] | None) -> np.ndarray | None:
    """Boolean mask of the records of ``table`` (a RecordTable) in ``chunk`` (None: all)."""
    if chunk is None or chunk[1] == 1:
        return None
    sd = table.source_dataset if table.link_type != "dedupe_only" else None
    return record_chunks(composite_ids(table.unique_id, sd), chunk[1]) == chunk[0]


def build_chunk_plan(
    table, rules, link_type: str, left: np.ndarray | None, right: np.ndarray | None
):
    """The blocking plan of the pairs ``(i, j)``, ``i < j``, with ``left[i]`` and ``right[j]``
    (boolean masks over the records; None: every record), with predict's rule and cross-rule
    dedup (the ``groups`` are the full plan's).

    Per rule and block (records in record order), each left-chunk record ``i`` is one
    rectangle segment: one row, ``i``, against the right-chunk records after it in its block
    (contiguous in the rule's ``members``, where the right-chunk records follow the left-chunk
    ones). Memory: at most one segment (48 B) and two members (8 B) per record per rule.

    >>> from gpulink.blocking import block_on, build_plan
    >>> from gpulink.table import encode_records
    >>> t = encode_records(pa.table({"unique_id": [1, 2, 3, 4], "x": ["a"] * 4}), ["x"])
    >>> mask = np.array([True, False, True, False])
    >>> from gpulink.blocking import blocked_pairs
    >>> p = blocked_pairs(build_chunk_plan(t, [block_on("x")], "dedupe_only", mask, ~mask))
    >>> list(zip(p.left.tolist(), p.right.tolist()))
    [(0, 1), (0, 3), (2, 3)]
    """
    from gpulink.blocking import build_plan
    from gpulink.kernels.grouping import stable_order

    full = build_plan(table, rules, link_type)
    n = full.n_records
    left = np.ones(n, bool) if left is None else left
    right = np.ones(n, bool) if right is None else right
    parts = []
    base = 0
    for k in range(full.n_rules):
        g = full.groups[k]
        idx = np.flatnonzero(g >= 0)
        gv = g[idx].astype(np.int64)
        n_groups = int(gv.max()) + 1 if len(gv) else 0
        order = stable_order(gv, n_groups)  # idx ascending: record order within a group
        members = idx[order].astype(np.int64)
        gs = gv[order]
        key = gs * n + members  # increasing along members
        in_a, in_b = left[members], right[members]
        a_members, a_groups = members[in_a], gs[in_a]
        b_members, b_key = members[in_b], key[in_b]
        start = np.searchsorted(b_key, key[in_a], side="right")
        end = np.searchsorted(b_key, (a_groups + 1) * n, side="left")
        keep = end > start
        rows = a_members[keep]
        n_rows = len(rows)
        parts.append(
            dict(
                members=np.concatenate([rows, b_members]).astype(np.int32),
                seg_a=base + np.arange(n_rows, dtype=np.int64),
                seg_b=base + n_rows + start[keep],
                seg_nb=(end - start)[keep],
                rule=k,
            )
        )
        base += n_rows + len(b_members)

    def cat(name, dtype):
        pieces = [p[name] for p in parts]
        return np.concatenate(pieces).astype(dtype) if pieces else np.zeros(0, dtype)

    seg_nb = cat("seg_nb", np.int64)
    seg_start = np.zeros(len(seg_nb) + 1, np.int64)
    np.cumsum(seg_nb, out=seg_start[1:])
    per_rule = np.array([int(p["seg_nb"].sum()) for p in parts], np.int64)
    rule_pair_start = np.zeros(full.n_rules + 1, np.int64)
    np.cumsum(per_rule, out=rule_pair_start[1:])
    seg_rule = (
        np.concatenate([np.full(len(p["seg_nb"]), p["rule"], np.int64) for p in parts])
        if parts
        else np.zeros(0, np.int64)
    )
    return type(full)(
        n_records=n,
        link_type=full.link_type,
        link_type_code=full.link_type_code,
        groups=full.groups,
        members=cat("members", np.int32),
        seg_start=seg_start,
        seg_a=cat("seg_a", np.int64),
        seg_na=np.ones(len(seg_nb), np.int64),
        seg_b=cat("seg_b", np.int64),
        seg_nb=seg_nb,
        seg_rule=seg_rule,
        rule_pair_start=rule_pair_start,
        source_codes=full.source_codes,
    )


__all__ = [
    "build_chunk_plan",
    "check_chunk",
    "chunk_mask",
    "composite_ids",
    "duckdb_hash",
    "record_chunks",
]
