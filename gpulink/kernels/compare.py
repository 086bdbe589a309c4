"""The generic comparison kernel: a model's :class:`ComparisonProgram` evaluated for one pair.

Models are data: every comparison of every model runs through the same bodies here, which walk
the level programs of :mod:`gpulink.kernels.program` over the packed record columns below.
Each similarity is computed at most once per pair (a per-pair *metric cache* indexed by the
program's slots), whatever the number of thresholds that read it.

Packed columns (built on the host by :func:`pack_columns`, moved to the device as a whole):

* ``codes``: int32[n_columns, n_records], -1 = null; stored record-major (a transposed view of
  an [n_records, n_columns] C array) so that the codes of one record's columns share a cache
  line: a pair reads several columns of two random records.
* strings: code points of every column's dictionary concatenated in ``chars``; the value with
  code ``k`` of column ``c`` spans ``chars[str_offsets[str_base[c] + k] : ...[... + k + 1]]``.
* numbers / dates: ``values[val_base[c] + k]``.
* arrays: element codes of value ``k`` of column ``c`` span
  ``elements[arr_offsets[arr_base[c] + k] : arr_offsets[arr_base[c] + k + 1]]``; its length as
  written (duplicates and null elements counted) is ``values[val_base[c] + k]``. For arrays of
  strings, the strings section of ``c`` holds the *element* dictionary: element ``e`` spans
  ``chars[str_offsets[str_base[c] + e] : ...[... + e + 1]]``, so the string comparators run
  on elements as they run on a string column's values (pairwise string distances).
* vectors (lists of floats): ``arr_offsets[arr_base[c]]`` is 1 for float32 vectors, else 0;
  vector ``k`` is ``values[arr_offsets[arr_base[c] + 1 + k] : ...[... + 2 + k]]``.
* character sets of strings: for a string column ``c`` (which has no array offsets of its
  own), ``e = arr_offsets[arr_base[c]]`` and ``elements[e + 4k : e + 4k + 4]`` hold the set of
  the code points (mod 128) of value ``k`` as four 32-bit words: the Jaro bound reads two
  sets instead of two strings.
* term frequencies: ``tf[tf_base[c] + k]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpulink.kernels._targets import cpu_jit, kernel_body
from gpulink.kernels.numeric import abs_difference, cosine_similarity, great_circle_km
from gpulink.kernels.program import (
    LEAF_ABS_DIFF_LE,
    LEAF_ARRAY_INTERSECT_GE,
    LEAF_ARRAY_LEAST_LEN_LE,
    LEAF_ARRAY_SUBSET,
    LEAF_COLUMNS_REVERSED,
    LEAF_COSINE_GE,
    LEAF_DAMERAU_LE,
    LEAF_DISTANCE_KM_LE,
    LEAF_ELSE,
    LEAF_EXACT,
    LEAF_EXACT_AS_STRING,
    LEAF_JACCARD_GE,
    LEAF_JARO_GE,
    LEAF_JARO_WINKLER_GE,
    LEAF_LEVENSHTEIN_LE,
    LEAF_NULL,
    LEAF_PAIRWISE_DAMERAU_LE,
    LEAF_PAIRWISE_JARO_GE,
    LEAF_PAIRWISE_JW_GE,
    LEAF_PAIRWISE_LEV_LE,
    LEAF_PERCENT_DIFF_LE,
    MAX_STACK,
    OP_AND,
    OP_NOT,
    OP_OR,
    ComparisonProgram,
)
from gpulink.kernels.strings import (
    damerau_levenshtein,
    jaccard,
    jaro,
    jaro_winkler,
    levenshtein,
    popcount,
    scratch_ints_needed,
    winkler_boost,
)

U32 = np.uint64(32)

# Three-valued logic, as SQL's CASE WHEN sees it.
FALSE = 0
TRUE = 1
UNKNOWN = 2


@dataclass
class PackedColumns:
    """The columns a program reads, packed into flat arrays (see the module docstring)."""

    codes: np.ndarray
    chars: np.ndarray
    str_offsets: np.ndarray
    str_base: np.ndarray
    values: np.ndarray
    val_base: np.ndarray
    elements: np.ndarray
    arr_offsets: np.ndarray
    arr_base: np.ndarray
    tf: np.ndarray
    tf_base: np.ndarray
    max_string_length: int

    def arrays(self) -> tuple:
        """The arrays in the order the kernels take them."""
        return (
            self.codes,
            self.chars,
            self.str_offsets,
            self.str_base,
            self.values,
            self.val_base,
            self.elements,
            self.arr_offsets,
            self.arr_base,
            self.tf,
            self.tf_base,
        )

    def to_backend(self, backend) -> PackedColumns:
        """A copy whose arrays live on ``backend`` (cupy arrays on the GPU)."""
        if not backend.is_gpu:
            return self
        moved = {
            k: backend.asarray(v) for k, v in self.__dict__.items() if k != "max_string_length"
        }
        return PackedColumns(**moved, max_string_length=self.max_string_length)


@cpu_jit(nogil=True)
def char_set_words(chars, offsets):
    """Per string ``k`` (``chars[offsets[k]:offsets[k+1]]``), its code points mod 128 as a
    128-bit set in four int32 words ``out[4k:4k+4]`` (low bits first).

    >>> char_set_words(np.array([0, 33, 64], np.uint32), np.array([0, 3])).tolist()
    [1, 2, 1, 0]
    """
    n = offsets.shape[0] - 1
    out = np.zeros(4 * max(n, 0), np.int32)
    for k in range(n):
        words = np.zeros(4, np.uint32)
        for t in range(offsets[k], offsets[k + 1]):
            c = chars[t] & 127
            words[c >> 5] |= np.uint32(1) << np.uint32(c & 31)
        for w in range(4):
            out[4 * k + w] = np.int32(words[w])
    return out


def pack_columns(table, expressions: list[str]) -> PackedColumns:
    """Pack the encoded columns ``expressions`` of a :class:`~gpulink.table.RecordTable`.

    >>> import pyarrow as pa
    >>> from gpulink.table import encode_records
    >>> t = encode_records(pa.table({"unique_id": [1, 2], "name": ["ann", None]}), ["name"])
    >>> pack_columns(t, ["name"]).codes.tolist()
    [[0, -1]]
    """
    n = table.n_records
    # record-major storage, indexed codes[c, i] (see the module docstring)
    codes = np.full((n, max(len(expressions), 1)), -1, dtype=np.int32).T
    chars_parts, str_off_parts, val_parts, elem_parts, arr_off_parts, tf_parts = (
        [] for _ in range(6)
    )
    str_base, val_base, arr_base, tf_base = (np.zeros(len(expressions), np.int64) for _ in range(4))
    n_chars = n_str = n_val = n_elem = n_arr = n_tf = 0
    max_len = 0
    for c, expr in enumerate(expressions):
        col = table.column(expr)
        codes[c] = col.codes
        offsets = np.asarray(col.offsets, dtype=np.int64)
        if col.kind == "string":
            str_offsets, str_chars = offsets, np.asarray(col.chars, dtype=np.uint32)
        elif col.kind == "array" and col.element_offsets is not None:
            str_offsets = np.asarray(col.element_offsets, dtype=np.int64)
            str_chars = np.asarray(col.element_chars, dtype=np.uint32)
        else:
            str_offsets, str_chars = np.zeros(1, np.int64), np.zeros(0, np.uint32)
        if len(str_chars):
            max_len = max(max_len, int(np.diff(str_offsets).max()))
        str_base[c] = n_str
        str_off_parts.append(str_offsets + n_chars)
        chars_parts.append(str_chars)
        n_str += len(str_off_parts[-1])
        n_chars += len(chars_parts[-1])
        val_base[c] = n_val
        if col.kind == "array":
            val_parts.append(np.asarray(col.list_lengths, dtype=np.float64))
        else:
            val_parts.append(np.asarray(col.values, dtype=np.float64))
        arr_base[c] = n_arr
        if col.kind == "array":
            arr_off_parts.append(offsets + n_elem)
            elem_parts.append(np.asarray(col.elements, dtype=np.int32))
        elif col.kind == "vector":
            flag = np.array([1 if col.float32 else 0], np.int64)
            arr_off_parts.append(np.concatenate([flag, offsets + n_val]))
            elem_parts.append(np.zeros(0, np.int32))
        elif col.kind == "string":
            arr_off_parts.append(np.array([n_elem], np.int64))
            elem_parts.append(char_set_words(np.asarray(col.chars, np.uint32), offsets))
        else:
            arr_off_parts.append(np.zeros(1, np.int64))
            elem_parts.append(np.zeros(0, np.int32))
        n_val += len(val_parts[-1])
        n_arr += len(arr_off_parts[-1])
        n_elem += len(elem_parts[-1])
        tf_base[c] = n_tf
        tf_parts.append(np.asarray(col.tf, dtype=np.float64))
        n_tf += len(tf_parts[-1])

    def cat(parts, dtype, pad=0):
        """The parts end to end then ``pad`` zeros, in one allocation (the buffers are big)."""
        if not parts:
            return np.zeros(1, dtype)
        out = np.empty(sum(len(part) for part in parts) + pad, dtype)
        at = 0
        for part in parts:
            out[at : at + len(part)] = part
            at += len(part)
        out[at:] = 0
        return out

    return PackedColumns(
        codes=codes,
        chars=cat(chars_parts, np.uint32, pad=1),
        str_offsets=cat(str_off_parts, np.int64),
        str_base=str_base,
        values=cat(val_parts, np.float64, pad=1),
        val_base=val_base,
        elements=cat(elem_parts, np.int32, pad=1),
        arr_offsets=cat(arr_off_parts, np.int64),
        arr_base=arr_base,
        tf=cat(tf_parts, np.float64, pad=1),
        tf_base=tf_base,
        max_string_length=max_len,
    )


@dataclass
class ProgramArrays:
    """A :class:`ComparisonProgram` plus the per-slot early-exit bounds, as kernel arguments."""

    leaf_kind: np.ndarray
    leaf_col: np.ndarray
    leaf_col2: np.ndarray
    leaf_threshold: np.ndarray
    leaf_metric: np.ndarray
    slot_bound: np.ndarray
    program: np.ndarray
    level_start: np.ndarray
    level_gamma: np.ndarray
    comparison_start: np.ndarray
    n_slots: int

    def arrays(self) -> tuple:
        return (
            self.leaf_kind,
            self.leaf_col,
            self.leaf_col2,
            self.leaf_threshold,
            self.leaf_metric,
            self.slot_bound,
            self.program,
            self.level_start,
            self.level_gamma,
            self.comparison_start,
        )

    def select(self, comparisons) -> ProgramArrays:
        """The program of ``comparisons`` only (indices, in that order); leaves and slots kept.

        Its gammas are the columns ``comparisons`` of the full program's gammas.
        """
        level_start = [0]
        program, level_gamma, comparison_start = [], [], [0]
        for c in comparisons:
            for v in range(int(self.comparison_start[c]), int(self.comparison_start[c + 1])):
                ops = self.program[self.level_start[v] : self.level_start[v + 1]]
                program.extend(ops.tolist())
                level_start.append(len(program))
                level_gamma.append(int(self.level_gamma[v]))
            comparison_start.append(len(level_gamma))
        return ProgramArrays(
            leaf_kind=self.leaf_kind,
            leaf_col=self.leaf_col,
            leaf_col2=self.leaf_col2,
            leaf_threshold=self.leaf_threshold,
            leaf_metric=self.leaf_metric,
            slot_bound=self.slot_bound,
            program=np.asarray(program if program else [0], dtype=np.int32),
            level_start=np.asarray(level_start, dtype=np.int32),
            level_gamma=np.asarray(level_gamma, dtype=np.int32),
            comparison_start=np.asarray(comparison_start, dtype=np.int32),
            n_slots=self.n_slots,
        )

    def to_backend(self, backend) -> ProgramArrays:
        if not backend.is_gpu:
            return self
        moved = {k: backend.asarray(v) for k, v in self.__dict__.items() if k != "n_slots"}
        return ProgramArrays(**moved, n_slots=self.n_slots)


_DISTANCE_KINDS = (
    LEAF_LEVENSHTEIN_LE,
    LEAF_DAMERAU_LE,
    LEAF_PAIRWISE_LEV_LE,
    LEAF_PAIRWISE_DAMERAU_LE,
)
_SIMILARITY_KINDS = (LEAF_JARO_GE, LEAF_JARO_WINKLER_GE)


def program_arrays(program: ComparisonProgram) -> ProgramArrays:
    """Kernel arguments for ``program``: its arrays plus each slot's early-exit bound.

    A distance slot read by thresholds 1 and 2 only needs to know distances up to 2: anything
    larger fails every threshold, so the comparator may stop early. A Jaro or Jaro-Winkler slot
    read by thresholds 0.92 and 0.8 only needs to know similarities from 0.8 up: its bound is
    0.8, and a pair whose cheap upper bound is below it skips the matching.
    """
    n_slots = max(int(program.n_slots), 1)
    slot_bound = np.full(n_slots, -1.0, dtype=np.float64)
    lowest = np.full(n_slots, np.inf)
    for k in range(len(program.leaf_kind)):
        slot = int(program.leaf_metric[k])
        kind = int(program.leaf_kind[k])
        if slot < 0:
            continue
        if kind in _DISTANCE_KINDS:
            slot_bound[slot] = max(slot_bound[slot], math.floor(program.leaf_threshold[k]))
        elif kind in _SIMILARITY_KINDS:
            lowest[slot] = min(lowest[slot], float(program.leaf_threshold[k]))
    for slot in range(n_slots):
        if np.isfinite(lowest[slot]) and slot_bound[slot] < 0:
            slot_bound[slot] = lowest[slot]
    thresholds = np.array(program.leaf_threshold, dtype=np.float64)
    is_km = np.asarray(program.leaf_kind) == LEAF_DISTANCE_KM_LE
    # Splink compares CAST(km AS FLOAT) with the threshold as FLOAT: both in float32
    thresholds[is_km] = thresholds[is_km].astype(np.float32).astype(np.float64)
    return ProgramArrays(
        leaf_kind=np.ascontiguousarray(program.leaf_kind, dtype=np.int32),
        leaf_col=np.ascontiguousarray(program.leaf_col, dtype=np.int32),
        leaf_col2=np.ascontiguousarray(program.leaf_col2, dtype=np.int32),
        leaf_threshold=thresholds,
        leaf_metric=np.ascontiguousarray(program.leaf_metric, dtype=np.int32),
        slot_bound=slot_bound,
        program=np.ascontiguousarray(program.program, dtype=np.int32),
        level_start=np.ascontiguousarray(program.level_start, dtype=np.int32),
        level_gamma=np.ascontiguousarray(program.level_gamma, dtype=np.int32),
        comparison_start=np.ascontiguousarray(program.comparison_start, dtype=np.int32),
        n_slots=n_slots,
    )


def scratch_size(packed: PackedColumns) -> int:
    """Ints of comparator scratch one thread needs for the longest string in ``packed``."""
    return max(int(scratch_ints_needed(max(packed.max_string_length, 1))), 1)


@kernel_body
def kleene(op, x, y):
    """SQL's three-valued AND (``op == OP_AND``) or OR of x and y (FALSE, TRUE, UNKNOWN)."""
    if op == OP_AND:
        if x == FALSE or y == FALSE:
            return FALSE
        return TRUE if x == TRUE and y == TRUE else UNKNOWN
    if x == TRUE or y == TRUE:
        return TRUE
    return FALSE if x == FALSE and y == FALSE else UNKNOWN


@kernel_body
def kleene_not(x):
    """SQL's three-valued NOT: NOT UNKNOWN is UNKNOWN."""
    if x == UNKNOWN:
        return UNKNOWN
    return TRUE if x == FALSE else FALSE


@kernel_body
def strings_equal(chars, a0, a1, b0, b1):
    """True when the code points ``chars[a0:a1]`` equal ``chars[b0:b1]``."""
    if a1 - a0 != b1 - b0:
        return False
    for t in range(a1 - a0):
        if chars[a0 + t] != chars[b0 + t]:
            return False
    return True


@kernel_body
def sorted_intersection_size(elements, a0, a1, b0, b1):
    """Size of the intersection of two sorted, de-duplicated runs of ``elements``."""
    count = 0
    while a0 < a1 and b0 < b1:
        x = elements[a0]
        y = elements[b0]
        if x == y:
            count += 1
            a0 += 1
            b0 += 1
        elif x < y:
            a0 += 1
        else:
            b0 += 1
    return count


@kernel_body
def _set_word(elements, at):
    """Two int32 words of a character set as one uint64."""
    return np.uint64(np.uint32(elements[at])) | (np.uint64(np.uint32(elements[at + 1])) << U32)


@kernel_body
def jaro_set_bound(elements, sa, sb, a, a0, la, b, b0, lb, winkler):
    """An upper bound of Jaro (``winkler``: Jaro-Winkler) from the strings' character sets
    (``elements[sa:sa+4]``, ``elements[sb:sb+4]``, see the module docstring) and lengths.

    Each distinct character of one string missing from the other removes at least one possible
    match: ``m <= min(|a| - |A \\ B|, |b| - |B \\ A|)``, so, transpositions aside,
    ``jaro <= (m/|a| + m/|b| + 1) / 3``; Winkler's boost grows with Jaro, so the bound with the
    true common prefix bounds Jaro-Winkler. Code points are taken mod 128: a collision only
    loosens the bound.
    """
    a_lo = _set_word(elements, sa)
    a_hi = _set_word(elements, sa + 2)
    b_lo = _set_word(elements, sb)
    b_hi = _set_word(elements, sb + 2)
    m_a = la - popcount(a_lo & ~b_lo) - popcount(a_hi & ~b_hi)
    m_b = lb - popcount(b_lo & ~a_lo) - popcount(b_hi & ~a_hi)
    m = m_a if m_a < m_b else m_b
    if m <= 0:
        return 0.0
    sim = (m / la + m / lb + 1.0) / 3.0
    if winkler:
        return winkler_boost(sim, a, a0, la, b, b0, lb)
    return sim


@kernel_body
def string_metric(
    kind, bound, ci, cj, c, chars, str_offsets, str_base, elements, arr_offsets, arr_base, scratch
):  # fmt: skip
    """The similarity (or distance) ``kind`` between values ``ci`` and ``cj`` of string column c.

    ``bound``: for distances the largest threshold read (the comparator may stop above it);
    for Jaro and Jaro-Winkler the lowest threshold read: a pair whose cheap upper bound is
    below it returns that bound (below every threshold) without matching characters.
    """
    base = str_base[c]
    a0 = str_offsets[base + ci]
    a1 = str_offsets[base + ci + 1]
    b0 = str_offsets[base + cj]
    b1 = str_offsets[base + cj + 1]
    if kind == LEAF_JARO_GE or kind == LEAF_JARO_WINKLER_GE:
        if a1 == a0 and b1 == b0:
            return 0.0  # DuckDB (so Splink) scores two empty strings 0; rapidfuzz says 1
        if bound > 0.0 and a1 > a0 and b1 > b0:
            # The margin absorbs rounding in the bound's arithmetic.
            winkler = kind == LEAF_JARO_WINKLER_GE
            sets = arr_offsets[arr_base[c]]
            upper = jaro_set_bound(
                elements, sets + 4 * ci, sets + 4 * cj, chars, a0, a1 - a0, chars, b0, b1 - b0,
                winkler,
            )  # fmt: skip
            if upper < bound - 1e-9:
                return upper
    if kind == LEAF_JARO_GE:
        return jaro(chars, a0, a1, chars, b0, b1, scratch)
    if kind == LEAF_JARO_WINKLER_GE:
        return jaro_winkler(chars, a0, a1, chars, b0, b1, scratch)
    if kind == LEAF_JACCARD_GE:
        return jaccard(chars, a0, a1, chars, b0, b1, scratch)
    if kind == LEAF_LEVENSHTEIN_LE:
        return float(levenshtein(chars, a0, a1, chars, b0, b1, np.int64(bound), scratch))
    return float(damerau_levenshtein(chars, a0, a1, chars, b0, b1, np.int64(bound), scratch))


@kernel_body
def pairwise_string_metric(
    kind, bound, a0, a1, b0, b1, c, chars, str_offsets, str_base, elements, arr_offsets, arr_base,
    scratch,
):  # fmt: skip
    """Splink's pairwise string distance of two arrays of strings: over every pair ``(x, y)``
    with ``x`` in ``elements[a0:a1]`` and ``y`` in ``elements[b0:b1]`` (element codes of
    column ``c``, see the module docstring), the least levenshtein / damerau_levenshtein or
    the greatest jaro / jaro_winkler (``kind``: a LEAF_PAIRWISE_* kind).

    The runs hold each array's distinct non-null elements: null elements drop out as DuckDB's
    ``list_min`` / ``list_max`` skip the NULL each gives, and repeats never change a minimum.
    No pair left (an empty array, or only null elements) gives NaN: DuckDB's NULL.
    ``bound`` (distances only; < 0: none) is the largest threshold read: a result above it is
    reported as ``bound + 1``. The running minimum tightens each comparator's early exit.
    """
    if a1 <= a0 or b1 <= b0:
        return math.nan
    if kind == LEAF_PAIRWISE_LEV_LE or kind == LEAF_PAIRWISE_DAMERAU_LE:
        inner = LEAF_LEVENSHTEIN_LE if kind == LEAF_PAIRWISE_LEV_LE else LEAF_DAMERAU_LE
        best = -1.0
        for s in range(a0, a1):
            for t in range(b0, b1):
                if elements[s] == elements[t]:
                    return 0.0  # the same string: no distance is smaller
                limit = bound
                if best >= 0.0 and (limit < 0.0 or best - 1.0 < limit):
                    limit = best - 1.0  # only a smaller distance matters now
                d = string_metric(
                    inner, limit, elements[s], elements[t], c, chars, str_offsets, str_base,
                    elements, arr_offsets, arr_base, scratch,
                )  # fmt: skip
                if best < 0.0 or d < best:
                    best = d
        return best
    inner = LEAF_JARO_GE if kind == LEAF_PAIRWISE_JARO_GE else LEAF_JARO_WINKLER_GE
    best = 0.0
    for s in range(a0, a1):
        for t in range(b0, b1):
            # bound -1: no character-set bound (an array column has no sets of its elements)
            sim = string_metric(
                inner, -1.0, elements[s], elements[t], c, chars, str_offsets, str_base,
                elements, arr_offsets, arr_base, scratch,
            )  # fmt: skip
            if sim > best:
                best = sim
                if best >= 1.0:
                    return best
    return best


@kernel_body
def eval_leaf(
    k, i, j,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    metric_cache, scratch,
):  # fmt: skip
    """Evaluate leaf ``k`` on records ``i`` (left) and ``j`` (right): FALSE, TRUE or UNKNOWN."""
    kind = leaf_kind[k]
    if kind == LEAF_ELSE:
        return TRUE
    c = leaf_col[k]
    ci = codes[c, i]
    cj = codes[c, j]
    c2 = leaf_col2[k]
    if kind == LEAF_NULL:
        if ci < 0 or cj < 0:
            return TRUE
        if c2 >= 0 and (codes[c2, i] < 0 or codes[c2, j] < 0):
            return TRUE
        return FALSE
    if ci < 0 or cj < 0:
        return UNKNOWN
    if kind == LEAF_EXACT:
        return TRUE if ci == cj else FALSE
    threshold = leaf_threshold[k]
    if (
        kind == LEAF_JARO_GE
        or kind == LEAF_JARO_WINKLER_GE
        or kind == LEAF_JACCARD_GE
        or kind == LEAF_LEVENSHTEIN_LE
        or kind == LEAF_DAMERAU_LE
    ):
        slot = leaf_metric[k]
        if slot >= 0 and not math.isnan(metric_cache[slot]):
            metric = metric_cache[slot]
        else:
            bound = slot_bound[slot] if slot >= 0 else -1.0
            metric = string_metric(
                kind, bound, ci, cj, c, chars, str_offsets, str_base, elements, arr_offsets,
                arr_base, scratch,
            )  # fmt: skip
            if slot >= 0:
                metric_cache[slot] = metric
        if kind == LEAF_LEVENSHTEIN_LE or kind == LEAF_DAMERAU_LE:
            return TRUE if metric <= threshold else FALSE
        return TRUE if metric >= threshold else FALSE
    if kind == LEAF_ABS_DIFF_LE:
        x = values[val_base[c] + ci]
        y = values[val_base[c] + cj]
        return TRUE if abs_difference(x, y) <= threshold else FALSE
    if kind == LEAF_PERCENT_DIFF_LE:
        x = values[val_base[c] + ci]
        y = values[val_base[c] + cj]
        denominator = y if y > x else x  # Splink: CASE WHEN r > l THEN r ELSE l END
        if denominator == 0.0:
            return UNKNOWN  # SQL division by zero gives NULL
        return TRUE if abs(x - y) / denominator < threshold else FALSE
    if kind == LEAF_DISTANCE_KM_LE:
        di = codes[c2, i]
        dj = codes[c2, j]
        if di < 0 or dj < 0:
            return UNKNOWN
        lat1 = values[val_base[c] + ci]
        lat2 = values[val_base[c] + cj]
        lng1 = values[val_base[c2] + di]
        lng2 = values[val_base[c2] + dj]
        return TRUE if great_circle_km(lat1, lng1, lat2, lng2) <= threshold else FALSE
    if kind == LEAF_ARRAY_SUBSET or kind == LEAF_ARRAY_LEAST_LEN_LE:
        len_i = values[val_base[c] + ci]
        len_j = values[val_base[c] + cj]
        least = len_i if len_i < len_j else len_j
        if kind == LEAF_ARRAY_LEAST_LEN_LE:
            return TRUE if least <= threshold else FALSE
    if kind == LEAF_ARRAY_INTERSECT_GE or kind == LEAF_ARRAY_SUBSET:
        base = arr_base[c]
        size = sorted_intersection_size(
            elements,
            arr_offsets[base + ci],
            arr_offsets[base + ci + 1],
            arr_offsets[base + cj],
            arr_offsets[base + cj + 1],
        )
        if kind == LEAF_ARRAY_INTERSECT_GE:
            return TRUE if size >= threshold else FALSE
        return TRUE if size == least else FALSE
    if (
        kind == LEAF_PAIRWISE_LEV_LE
        or kind == LEAF_PAIRWISE_DAMERAU_LE
        or kind == LEAF_PAIRWISE_JARO_GE
        or kind == LEAF_PAIRWISE_JW_GE
    ):
        slot = leaf_metric[k]
        if slot >= 0 and not math.isnan(metric_cache[slot]):
            metric = metric_cache[slot]
        else:
            base = arr_base[c]
            bound = slot_bound[slot] if slot >= 0 else -1.0
            metric = pairwise_string_metric(
                kind, bound,
                arr_offsets[base + ci], arr_offsets[base + ci + 1],
                arr_offsets[base + cj], arr_offsets[base + cj + 1],
                c, chars, str_offsets, str_base, elements, arr_offsets, arr_base, scratch,
            )  # fmt: skip
            if slot >= 0:
                metric_cache[slot] = metric  # NaN (no pair) is computed again: no work
        if math.isnan(metric):
            return UNKNOWN  # DuckDB's list_min / list_max of no values is NULL
        if kind == LEAF_PAIRWISE_LEV_LE or kind == LEAF_PAIRWISE_DAMERAU_LE:
            return TRUE if metric <= threshold else FALSE
        return TRUE if metric >= threshold else FALSE
    if kind == LEAF_COSINE_GE:
        base = arr_base[c]
        single = arr_offsets[base] != 0
        slot = leaf_metric[k]
        if slot >= 0 and not math.isnan(metric_cache[slot]):
            metric = metric_cache[slot]
        else:
            a0 = arr_offsets[base + 1 + ci]
            b0 = arr_offsets[base + 1 + cj]
            metric = cosine_similarity(values, a0, b0, arr_offsets[base + 2 + ci] - a0, single)
            if slot >= 0:
                metric_cache[slot] = metric  # a NaN is computed again: rare (zero vectors)
        if math.isnan(metric):
            return TRUE  # DuckDB orders NaN above every number: NaN >= t holds
        if single:
            threshold = np.float64(np.float32(threshold))  # FLOAT >= literal compares as FLOAT
        return TRUE if metric >= threshold else FALSE
    if kind == LEAF_COLUMNS_REVERSED:
        di = codes[c2, i]
        dj = codes[c2, j]
        if di < 0 or dj < 0:
            return UNKNOWN
        b1 = str_base[c]
        b2 = str_base[c2]
        first = strings_equal(
            chars,
            str_offsets[b1 + ci], str_offsets[b1 + ci + 1],
            str_offsets[b2 + dj], str_offsets[b2 + dj + 1],
        )  # fmt: skip
        second = strings_equal(
            chars,
            str_offsets[b2 + di], str_offsets[b2 + di + 1],
            str_offsets[b1 + cj], str_offsets[b1 + cj + 1],
        )  # fmt: skip
        return TRUE if first and second else FALSE
    if kind == LEAF_EXACT_AS_STRING:
        dj = codes[c2, j]
        if dj < 0:
            return UNKNOWN
        b1 = str_base[c]
        b2 = str_base[c2]
        same = strings_equal(
            chars,
            str_offsets[b1 + ci], str_offsets[b1 + ci + 1],
            str_offsets[b2 + dj], str_offsets[b2 + dj + 1],
        )  # fmt: skip
        return TRUE if same else FALSE
    return UNKNOWN


@kernel_body
def gammas_of_rows(
    i0, j0, left, right, r0, r1, out_gammas, row0,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    program, level_start, level_gamma, comparison_start,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    metric_cache, scratch, stack,
):  # fmt: skip
    """Gammas of many pairs in one call: the CPU launchers' form of :func:`pair_gammas`.

    With ``r0 < r1``: for each ``r`` in ``[r0, r1)``, the gammas of pair ``(left[r], right[r])``
    go to ``out_gammas[row0 + r - r0, :]``. With ``r1 <= r0``: the single pair ``(i0, j0)``
    goes to ``out_gammas[row0, :]`` (``left``/``right`` unread). Batching matters on the CPU:
    a call with this many array arguments costs more than an exact-match comparison itself.
    Else, null, exact, string-metric (through :func:`string_metric` and the metric cache) and
    absolute-difference leaves are evaluated in line, the rare ones through :func:`eval_leaf`;
    each gives what :func:`eval_leaf` gives.
    """
    n_rows = r1 - r0 if r1 > r0 else 1
    for t in range(n_rows):
        if r1 > r0:
            i = left[r0 + t]
            j = right[r0 + t]
        else:
            i = i0
            j = j0
        row = row0 + t
        for s in range(metric_cache.shape[0]):
            metric_cache[s] = math.nan
        for c in range(comparison_start.shape[0] - 1):
            gamma = 0
            for v in range(comparison_start[c], comparison_start[c + 1]):
                top = 0
                for p in range(level_start[v], level_start[v + 1]):
                    op = program[p]
                    if op >= 0:
                        kind = leaf_kind[op]
                        if kind == LEAF_ELSE:
                            x = TRUE
                        else:
                            col = leaf_col[op]
                            ci = codes[col, i]
                            cj = codes[col, j]
                            slot = leaf_metric[op]
                            if kind == LEAF_NULL:
                                x = FALSE
                                if ci < 0 or cj < 0:
                                    x = TRUE
                                else:
                                    c2 = leaf_col2[op]
                                    if c2 >= 0 and (codes[c2, i] < 0 or codes[c2, j] < 0):
                                        x = TRUE
                            elif ci < 0 or cj < 0:
                                x = UNKNOWN
                            elif kind == LEAF_EXACT:
                                x = TRUE if ci == cj else FALSE
                            elif (
                                kind == LEAF_JARO_WINKLER_GE
                                or kind == LEAF_JARO_GE
                                or kind == LEAF_LEVENSHTEIN_LE
                                or kind == LEAF_DAMERAU_LE
                                or kind == LEAF_JACCARD_GE
                            ):
                                # as eval_leaf does, without its long argument list
                                if slot >= 0 and not math.isnan(metric_cache[slot]):
                                    metric = metric_cache[slot]
                                else:
                                    bound = slot_bound[slot] if slot >= 0 else -1.0
                                    metric = string_metric(
                                        kind, bound, ci, cj, col, chars, str_offsets, str_base,
                                        elements, arr_offsets, arr_base, scratch,
                                    )  # fmt: skip
                                    if slot >= 0:
                                        metric_cache[slot] = metric
                                if kind == LEAF_LEVENSHTEIN_LE or kind == LEAF_DAMERAU_LE:
                                    x = TRUE if metric <= leaf_threshold[op] else FALSE
                                else:
                                    x = TRUE if metric >= leaf_threshold[op] else FALSE
                            elif kind == LEAF_ABS_DIFF_LE:
                                base = val_base[col]
                                diff = abs_difference(values[base + ci], values[base + cj])
                                x = TRUE if diff <= leaf_threshold[op] else FALSE
                            else:
                                x = eval_leaf(
                                    op, i, j,
                                    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric,
                                    slot_bound, codes, chars, str_offsets, str_base, values,
                                    val_base, elements, arr_offsets, arr_base, metric_cache, scratch,
                                )  # fmt: skip
                        stack[top] = x
                        top += 1
                    elif op == OP_NOT:
                        stack[top - 1] = kleene_not(stack[top - 1])
                    else:
                        top -= 1
                        stack[top - 1] = kleene(op, stack[top - 1], stack[top])
                if top > 0 and stack[0] == TRUE:
                    gamma = level_gamma[v]
                    break
            out_gammas[row, c] = gamma


@kernel_body
def pair_gammas(
    i, j, out_gammas, row,
    leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
    program, level_start, level_gamma, comparison_start,
    codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
    metric_cache, scratch, stack,
):  # fmt: skip
    """Write the gamma of every comparison for pair (i, j) into ``out_gammas[row, :]``.

    The gamma of a comparison is the ``level_gamma`` of its first level whose postfix program
    is TRUE in Kleene logic (0 when none is, as Splink's CASE gives); ``metric_cache`` (one
    float per slot) is reset here, ``stack`` is int8 scratch of MAX_STACK.
    """
    gammas_of_rows(
        i, j, level_start, level_start, 0, 0, out_gammas, row,
        leaf_kind, leaf_col, leaf_col2, leaf_threshold, leaf_metric, slot_bound,
        program, level_start, level_gamma, comparison_start,
        codes, chars, str_offsets, str_base, values, val_base, elements, arr_offsets, arr_base,
        metric_cache, scratch, stack,
    )  # fmt: skip


_ = (OP_OR, MAX_STACK)
