"""Prediction: every blocked pair scored in one fused pass, in bounded chunks of the pair space.

For each chunk of the blocking plan's pair-index space the kernel decodes pairs, applies
Splink's cross-rule dedup, computes the gammas (each similarity once), sums the match weight with
TF adjustments, keeps the pairs at or above the threshold and writes them compactly. Nothing
ever holds all candidate pairs at once: memory is the record table plus one chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.backend import CPU
from gpulink.blocking import build_plan, to_blocking_rules
from gpulink.checks import number_argument
from gpulink.errors import InputError, SettingsError
from gpulink.kernels._targets import cpu
from gpulink.kernels.compare import pack_columns, program_arrays, scratch_size
from gpulink.kernels.pairs import plan_arrays
from gpulink.kernels.program import (
    LEAF_PAIRWISE_DAMERAU_LE,
    LEAF_PAIRWISE_JARO_GE,
    LEAF_PAIRWISE_JW_GE,
    LEAF_PAIRWISE_LEV_LE,
)
from gpulink.kernels.score import launcher
from gpulink.kernels.weights import match_probability as probability_of_weight
from gpulink.kernels.weights import pair_term_frequency
from gpulink.settings import Settings, compile_program

#: Pair indices scored per kernel launch; bounds the per-chunk output buffers (~25 B per index).
DEFAULT_CHUNK_PAIRS = 1 << 22


@dataclass
class WeightTables:
    """Per comparison and gamma (index gamma + 1): the level weight and its TF adjustment."""

    log2_bf: np.ndarray
    tf_col: np.ndarray
    tf_weight: np.ndarray
    tf_log2_u: np.ndarray
    tf_min_u: np.ndarray

    def arrays(self) -> tuple:
        return (self.log2_bf, self.tf_col, self.tf_weight, self.tf_log2_u, self.tf_min_u)


def weight_tables(settings: Settings, columns: list[str], *, use_tf: bool = True) -> WeightTables:
    """Weight tables of ``settings``; TF columns are looked up by index in ``columns``."""
    n = len(settings.comparisons)
    width = max(c.num_levels for c in settings.comparisons) + 1
    log2_bf = np.zeros((n, width))
    tf_col = np.full((n, width), -1, np.int32)
    tf_weight = np.zeros((n, width))
    tf_log2_u = np.zeros((n, width))
    tf_min_u = np.zeros((n, width))
    for c, comparison in enumerate(settings.comparisons):
        mw = comparison.match_weights()
        log2_bf[c, : len(mw)] = mw
        if not use_tf:
            continue
        for info in comparison.tf_levels():
            g = info.comparison_vector_value + 1
            tf_col[c, g] = columns.index(info.column)
            tf_weight[c, g] = info.tf_adjustment_weight
            tf_log2_u[c, g] = math.log2(info.u_exact)
            tf_min_u[c, g] = info.tf_minimum_u_value
    return WeightTables(log2_bf, tf_col, tf_weight, tf_log2_u, tf_min_u)


def threshold_to_weight(
    threshold_match_probability: float | None, threshold_match_weight: float | None
) -> float:
    """The match-weight threshold of Splink's two threshold arguments (-inf for none)."""
    if threshold_match_probability is not None and threshold_match_weight is not None:
        raise SettingsError("give threshold_match_probability or threshold_match_weight, not both")
    if threshold_match_probability is not None:
        p = number_argument(threshold_match_probability, "threshold_match_probability")
        if not 0 <= p <= 1:
            raise SettingsError(f"threshold_match_probability must be within [0, 1], got {p}")
        if p == 0:
            return -math.inf
        if p == 1:
            return math.inf
        return math.log2(p / (1 - p))
    if threshold_match_weight is not None:
        return number_argument(threshold_match_weight, "threshold_match_weight")
    return -math.inf


_PAIRWISE_KINDS = (
    LEAF_PAIRWISE_LEV_LE,
    LEAF_PAIRWISE_DAMERAU_LE,
    LEAF_PAIRWISE_JARO_GE,
    LEAF_PAIRWISE_JW_GE,
)


def check_pairwise_columns(program, table) -> None:
    """Raise InputError when a pairwise string distance reads a list column whose elements
    are not strings (DuckDB refuses ``levenshtein(INTEGER, INTEGER)`` too).

    >>> import pyarrow as pa
    >>> import gpulink.comparison_library as cl
    >>> from gpulink.settings import SettingsCreator
    >>> from gpulink.table import encode_records
    >>> comparison = cl.PairwiseStringDistanceFunctionAtThresholds("ids", "levenshtein", 1)
    >>> program = compile_program(SettingsCreator("dedupe_only", [comparison]).get_settings())
    >>> table = encode_records(pa.table({"unique_id": [1, 2], "ids": [[1], [2]]}), ["ids"])
    >>> check_pairwise_columns(program, table)
    Traceback (most recent call last):
    ...
    gpulink.errors.InputError: 'ids' holds lists of int64, but a pairwise string distance (PairwiseStringDistanceFunctionLevel) compares lists of strings; cast the column to lists of strings before linking (pyarrow: .cast(pa.list_(pa.string()))), or compare the lists with ArrayIntersectLevel
    """
    for k in np.flatnonzero(np.isin(program.leaf_kind, _PAIRWISE_KINDS)):
        expr = program.columns[int(program.leaf_col[k])]
        col = table.column(expr)
        if col.kind == "array" and col.element_offsets is None:
            element_type = (
                col.element_dictionary.type if col.element_dictionary is not None else "?"
            )
            raise InputError(
                f"{expr!r} holds lists of {element_type}, but a pairwise string distance "
                "(PairwiseStringDistanceFunctionLevel) compares lists of strings; cast the "
                "column to lists of strings before linking (pyarrow: "
                ".cast(pa.list_(pa.string()))), or compare the lists with ArrayIntersectLevel"
            )


@dataclass
class ScoredPairs:
    """Record indices, weights, rule and (optionally) gammas of the pairs a predict kept."""

    left: np.ndarray
    right: np.ndarray
    match_weight: np.ndarray
    match_key: np.ndarray
    gammas: np.ndarray | None


class Scorer:
    """Everything the fused kernel needs for one model on one record table, prepared once."""

    backend = CPU

    def __init__(
        self, table, settings: Settings, rules, *, use_tf: bool = True, backend=None,
        packed_cache: dict | None = None,
    ):  # fmt: skip
        self.backend = backend or CPU
        self.settings = settings
        self.program = compile_program(settings)
        self.columns = list(self.program.columns)
        kinds = settings.column_kinds()
        for expr in settings.tf_columns():
            if expr not in self.columns:
                self.columns.append(expr)
        self.table = table
        self.rules = to_blocking_rules(rules)
        needed = {expr: kinds.get(expr) for expr in self.columns}
        for rule in self.rules:
            for expr in rule.expressions:
                needed.setdefault(expr, None)
        table.ensure_columns(needed)
        check_pairwise_columns(self.program, table)
        key = tuple(self.columns)
        if packed_cache is not None and key in packed_cache:
            self.packed = packed_cache[key]
        else:
            self.packed = pack_columns(table, self.columns)
            if packed_cache is not None:
                packed_cache[key] = self.packed
        self.prog = program_arrays(self.program)
        self.weights = weight_tables(settings, self.columns, use_tf=use_tf)
        self.scratch_ints = scratch_size(self.packed)

    #: Boolean mask over the records: only their pairs are planned (EM sampling); None: all.
    record_mask = None

    def plan(self):
        return build_plan(self.table, self.rules, self.settings.link_type, records=self.record_mask)

    def _packed_args(self) -> tuple:
        p = self.packed
        return (
            p.codes, p.chars, p.str_offsets, p.str_base, p.values, p.val_base,
            p.elements, p.arr_offsets, p.arr_base,
        )  # fmt: skip

    def score(
        self, threshold_weight: float, *, keep_gammas: bool, chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
        plan=None, p0: int = 0, p1: int | None = None, progress=None,
    ) -> ScoredPairs:  # fmt: skip
        """Score the blocked pairs of pair indices ``[p0, p1)`` (default: all) in chunks; keep
        those with match weight >= ``threshold_weight``. Results are in pair-index order."""
        plan = self.plan() if plan is None else plan
        if self.backend.is_gpu:
            from gpulink.kernels.score_gpu import score_gpu

            return score_gpu(
                self, threshold_weight, keep_gammas=keep_gammas, plan=plan, p0=p0, p1=p1,
                progress=progress,
            )  # fmt: skip
        p1 = plan.n_candidates if p1 is None else p1
        pieces = []
        for c0 in range(p0, p1, chunk_pairs):
            c1 = min(p1, c0 + chunk_pairs)
            pieces.append(self.score_range(plan, c0, c1, threshold_weight, keep_gammas=keep_gammas))
            if progress is not None:
                progress.update(c1 - c0)
        return concat_scored(pieces, self.program.n_comparisons, keep_gammas)

    def score_range(
        self, plan, p0: int, p1: int, threshold_weight: float, *, keep_gammas: bool
    ) -> ScoredPairs:
        """Score pair indices ``[p0, p1)`` of ``plan`` in one launch (memory ~25 B per index)."""
        if self.backend.is_gpu:
            from gpulink.kernels.score_gpu import score_range_gpu

            return score_range_gpu(self, plan, p0, p1, threshold_weight, keep_gammas=keep_gammas)
        n_comparisons = self.program.n_comparisons
        span = p1 - p0
        n_parts = int(max(1, min(numba.get_num_threads() * 8, span // 2048 + 1)))
        out_i = np.empty(span, np.int32)
        out_j = np.empty(span, np.int32)
        out_w = np.empty(span, np.float64)
        out_k = np.empty(span, np.int32)
        out_g = np.empty((span if keep_gammas else 1, n_comparisons), np.int8)
        out_count = np.zeros(n_parts, np.int64)
        launcher("score_range")(
            np.int64(p0), np.int64(p1), n_parts, threshold_weight,
            self.settings.log2_prior_odds, keep_gammas,
            *plan_arrays(plan), *self.prog.arrays(), *self._packed_args(),
            self.packed.tf, self.packed.tf_base, *self.weights.arrays(),
            self.prog.n_slots, self.scratch_ints,
            out_i, out_j, out_w, out_k, out_g, out_count,
        )  # fmt: skip
        outputs = (out_i, out_j, out_w, out_k) + ((out_g,) if keep_gammas else ())
        left, right, weight, key, *gammas = compact_parts(span, out_count, *outputs)
        return ScoredPairs(
            left=left, right=right, match_weight=weight, match_key=key,
            gammas=gammas[0] if keep_gammas else None,
        )  # fmt: skip

    def gammas_of_pairs(self, left: np.ndarray, right: np.ndarray, comparisons=None) -> np.ndarray:
        """Gammas (int8[n, n_comparisons]) of explicit record pairs ``left[r] < right[r]``.

        ``comparisons``: indices of the comparisons to score (default all), one column each.
        """
        n = len(left)
        prog = self.prog if comparisons is None else self.prog.select(comparisons)
        out = np.empty((n, len(prog.comparison_start) - 1), np.int8)
        if n == 0:
            return out
        if self.backend.is_gpu:
            from gpulink.kernels.score_gpu import gammas_of_pairs_gpu

            return gammas_of_pairs_gpu(self, left, right, prog)
        n_parts = int(max(1, min(numba.get_num_threads() * 8, n // 1024 + 1)))
        launcher("gammas_of_pairs")(
            np.ascontiguousarray(left, np.int64), np.ascontiguousarray(right, np.int64),
            *prog.arrays(), *self._packed_args(),
            prog.n_slots, self.scratch_ints, n_parts, out,
        )  # fmt: skip
        return out

    def tf_values(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Per pair and comparison: max(coalesce(tf_l, tf_r), coalesce(tf_r, tf_l)), NaN if none.

        The TF column of a comparison is that of its TF levels (one per comparison).
        """
        return _pair_tf_values(
            np.ascontiguousarray(left, np.int64), np.ascontiguousarray(right, np.int64),
            self.packed.codes, self.tf_columns_of_comparisons(), self.packed.tf,
            self.packed.tf_base,
        )  # fmt: skip

    def tf_of_pairs(self, col: int, left: np.ndarray, right: np.ndarray):
        """Term frequencies of the left and right values of packed column ``col`` (NaN: none).

        Here every value has the frequency of the record table; records scored against a
        linker's input (:mod:`gpulink.realtime`) override it with per-record frequencies.
        """
        return _tf_of_pairs(self, col, left, right)

    def packed_column_codes(self, col: int) -> np.ndarray:
        """The int32 codes of packed column ``col``, one per record (contiguous)."""
        return np.ascontiguousarray(self.packed.codes[col])

    def tf_columns_of_comparisons(self) -> np.ndarray:
        """Per comparison, the packed column of its TF levels (-1 without TF)."""
        tf_cols = np.full(self.program.n_comparisons, -1, np.int64)
        for c, comparison in enumerate(self.settings.comparisons):
            infos = comparison.tf_levels()
            if infos:
                tf_cols[c] = self.columns.index(infos[0].column)
        return tf_cols

    def iter_tf_rows(self, tf_specs, n_levels, *, active=None, chunk_pairs=DEFAULT_CHUNK_PAIRS):
        """Per chunk of the blocked pairs, their EM rows with TF, ``(keys, constants)``, as
        :func:`gpulink.em.tf_pair_keys` of their gammas and :meth:`tf_values` (one pass)."""
        from gpulink import em

        plan = self.plan()
        specs = em._active_specs(tf_specs, active)
        radix = np.asarray(n_levels, dtype=np.int64) + 1
        tf_comparisons = np.asarray([c for c, sp in enumerate(specs) if sp is not None], np.int64)
        tf_weight, tf_floor, _ = em._tf_tables(specs, list(n_levels))
        tf_cols = self.tf_columns_of_comparisons()
        run = launcher("tf_rows_range")
        n_threads = numba.get_num_threads()
        for p0 in range(0, plan.n_candidates, chunk_pairs):
            p1 = min(plan.n_candidates, p0 + chunk_pairs)
            span = p1 - p0
            n_parts = int(max(1, min(n_threads * 4, span // 4096 + 1)))
            keys = np.empty(span, np.int64)
            constants = np.empty(span, np.float64)
            counts = np.zeros(n_parts, np.int64)
            run(
                np.int64(p0), np.int64(p1), n_parts, radix, tf_comparisons, tf_weight, tf_floor,
                tf_cols, *plan_arrays(plan), *self.prog.arrays(), *self._packed_args(),
                self.packed.tf, self.packed.tf_base, self.prog.n_slots, self.scratch_ints,
                keys, constants, counts,
            )  # fmt: skip
            keys, constants = compact_parts(span, counts, keys, constants)
            if len(keys):
                yield keys, constants

    def pattern_counts(self, chunk_pairs: int = DEFAULT_CHUNK_PAIRS):
        """Distinct gamma vectors of the blocked pairs and how many pairs have each."""
        plan = self.plan()
        radix = np.array([c.num_levels + 1 for c in self.settings.comparisons], dtype=np.int64)
        n_patterns = int(np.prod(radix)) if len(radix) else 1
        total = plan.n_candidates
        if n_patterns > (1 << 20):
            return self._pattern_counts_by_pairs(plan, chunk_pairs)
        n_threads = numba.get_num_threads()
        hist = np.zeros(n_patterns, np.int64)
        run = launcher("gamma_histogram_range")
        for p0 in range(0, total, chunk_pairs):
            if self.backend.is_gpu:
                from gpulink.kernels.score_gpu import gamma_histogram_gpu

                hist += gamma_histogram_gpu(self, plan, p0, min(total, p0 + chunk_pairs), radix)
                continue
            p1 = min(total, p0 + chunk_pairs)
            n_parts = int(max(1, min(n_threads * 2, (p1 - p0) // 4096 + 1)))
            part_hist = np.zeros((n_parts, n_patterns), np.int64)
            run(
                np.int64(p0), np.int64(p1), n_parts, radix,
                *plan_arrays(plan), *self.prog.arrays(), *self._packed_args(),
                self.prog.n_slots, self.scratch_ints, part_hist,
            )  # fmt: skip
            hist += part_hist.sum(axis=0)
        index = np.flatnonzero(hist)
        patterns = np.empty((len(index), len(radix)), np.int8)
        rest = index.copy()
        for c in range(len(radix) - 1, -1, -1):
            patterns[:, c] = rest % radix[c] - 1
            rest //= radix[c]
        return patterns, hist[index]

    def _pattern_counts_by_pairs(self, plan, chunk_pairs):
        from gpulink.kernels.pairs import enumerate_range_cpu

        found: dict[bytes, int] = {}
        rows = []
        counts = []
        for p0 in range(0, plan.n_candidates, chunk_pairs):
            p1 = min(plan.n_candidates, p0 + chunk_pairs)
            left, right, _ = enumerate_range_cpu(plan, p0, p1)
            g = self.gammas_of_pairs(left, right)
            uniq, cnt = np.unique(g, axis=0, return_counts=True)
            for row, n in zip(uniq, cnt):
                key = row.tobytes()
                if key in found:
                    counts[found[key]] += int(n)
                else:
                    found[key] = len(rows)
                    rows.append(row)
                    counts.append(int(n))
        patterns = np.array(rows, np.int8).reshape(-1, self.program.n_comparisons)
        return patterns, np.array(counts, np.int64)


def compact_parts(span: int, counts: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The rows a CPU launcher wrote, end to end: part ``k`` of ``len(counts)`` owns the rows
    from ``span * k // len(counts)`` and wrote ``counts[k]`` of them (slices, copied once).

    >>> compact_parts(6, np.array([1, 2]), np.arange(6))[0].tolist()
    [0, 3, 4]
    >>> rows = np.arange(6)
    >>> compact_parts(6, np.array([3, 3]), rows)[0] is rows  # every row written: no copy
    True
    """
    n_parts = len(counts)
    if int(np.sum(counts)) == span:
        return arrays
    pieces = [
        (span * k // n_parts, int(c)) for k, c in enumerate(np.asarray(counts).tolist()) if c > 0
    ]
    return tuple(
        np.concatenate([a[s : s + c] for s, c in pieces]) if pieces else a[:0].copy()
        for a in arrays
    )


def concat_scored(pieces: list[ScoredPairs], n_comparisons: int, keep_gammas: bool) -> ScoredPairs:
    """One :class:`ScoredPairs` from several, in order."""

    def cat(name, dtype):
        parts = [getattr(p, name) for p in pieces]
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    gammas = None
    if keep_gammas:
        parts = [p.gammas for p in pieces]
        gammas = np.concatenate(parts) if parts else np.zeros((0, n_comparisons), np.int8)
    return ScoredPairs(
        left=cat("left", np.int32), right=cat("right", np.int32),
        match_weight=cat("match_weight", np.float64), match_key=cat("match_key", np.int32),
        gammas=gammas,
    )  # fmt: skip


_pair_term_frequency = cpu(pair_term_frequency)
_probability = cpu(probability_of_weight)


@numba.njit(cache=True, parallel=True)
def _pair_tf_values(left, right, codes, tf_cols, tf, tf_base):  # pragma: no cover
    out = np.full((left.shape[0], tf_cols.shape[0]), np.nan)
    for r in numba.prange(left.shape[0]):
        for c in range(tf_cols.shape[0]):
            if tf_cols[c] >= 0:
                value = _pair_term_frequency(tf_cols[c], left[r], right[r], codes, tf, tf_base)
                if value >= 0.0:
                    out[r, c] = value
    return out


def _tf_of_pairs(scorer: Scorer, col: int, left: np.ndarray, right: np.ndarray):
    """Term frequencies of the left and right values of packed column ``col`` (NaN for null)."""
    codes = scorer.packed_column_codes(col)
    base = scorer.packed.tf_base[col]
    tf = scorer.packed.tf
    out = []
    for side in (left, right):
        c = codes[side]
        value = tf[base + np.maximum(c, 0)]
        # -1.0 in ``tf``: a value without a term frequency (a registered lookup lacks it)
        out.append(np.where((c >= 0) & (value >= 0), value, np.nan))
    return out[0], out[1]


def match_probability(weights: np.ndarray) -> np.ndarray:
    """2^w / (1 + 2^w), stable for large |w| (on all cores).

    >>> match_probability(np.array([0.0, 1.0, -2000.0])).tolist()
    [0.5, 0.6666666666666666, 0.0]
    """
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    out = np.empty_like(weights)
    _match_probability(weights, out)
    return out


@numba.njit(parallel=True, cache=True)
def _match_probability(weights, out):  # pragma: no cover - compiled
    for r in numba.prange(weights.shape[0]):
        out[r] = _probability(weights[r])


def keeps_gammas(settings: Settings) -> bool:
    """Whether predict needs the gammas: Splink outputs ``gamma_*`` with the matching columns
    (``retain_matching_columns``) and derives ``mw_*`` from them (intermediate columns)."""
    return bool(
        settings.retain_matching_columns or settings.retain_intermediate_calculation_columns
    )


def blocking_rule_columns(settings: Settings) -> list[str]:
    """The raw columns the prediction rules read, in order of first use (Splink adds those no
    comparison reads to the output as ``<col>_l``/``<col>_r`` with ``retain_matching_columns``).

    >>> from gpulink import SettingsCreator, block_on
    >>> import gpulink.comparison_library as cl
    >>> s = Settings.from_any(SettingsCreator(link_type="dedupe_only",
    ...     comparisons=[cl.ExactMatch("city")],
    ...     blocking_rules_to_generate_predictions=[block_on("substr(dob, 1, 4)", "city")]))
    >>> blocking_rule_columns(s)
    ['dob', 'city']
    """
    from gpulink.expressions import parse

    out: list[str] = []
    for rule in to_blocking_rules(settings.blocking_rules):
        for expr in rule.expressions:
            for raw in parse(expr).columns:
                if raw not in out:
                    out.append(raw)
    return out


def pairs_table(scorer: Scorer, scored: ScoredPairs) -> pa.Table:
    """Splink's predict output columns for the kept pairs, in Splink's order.

    Splink 5's layout (``Settings.columns_to_select_for_predict``): match_weight,
    match_probability, the source dataset column ``_l``/``_r`` (link jobs), the unique id
    ``_l``/``_r``; then per comparison, with ``retain_matching_columns``, the columns it reads
    ``_l``/``_r`` and its ``gamma_`` (int32), and with ``retain_intermediate_calculation_columns``
    its ``tf_`` columns, ``mw_`` and ``mw_tf_adj_``; then, with ``retain_matching_columns``, the
    columns only the blocking rules read; then ``additional_columns_to_retain``; match_key.
    Splink orders the blocking-rule-only columns by a Python set (it varies between runs when
    there are several); here they come in the rules' order.
    """
    settings = scorer.settings
    table = scorer.table
    left = pa.array(scored.left.astype(np.int64))
    right = pa.array(scored.right.astype(np.int64))
    cols: dict[str, pa.Array] = {
        "match_weight": pa.array(scored.match_weight),
        "match_probability": pa.array(match_probability(scored.match_weight)),
    }
    uid = settings.unique_id_column_name
    seen: set[str] = {uid}
    if settings.link_type != "dedupe_only" and table.source_dataset is not None:
        sd = settings.source_dataset_column_name
        seen.add(sd)
        cols[f"{sd}_l"] = pc.take(table.source_dataset, left)
        cols[f"{sd}_r"] = pc.take(table.source_dataset, right)
    cols[f"{uid}_l"] = pc.take(table.unique_id, left)
    cols[f"{uid}_r"] = pc.take(table.unique_id, right)
    data = table.data
    from gpulink.expressions import parse

    matching = settings.retain_matching_columns
    intermediate = settings.retain_intermediate_calculation_columns
    if (matching or intermediate) and scored.gammas is None:
        raise ValueError("pairs_table needs the gammas: score with keep_gammas=keeps_gammas(...)")

    def add_column(raw: str) -> None:
        if raw not in seen and raw in data.column_names:
            seen.add(raw)
            cols[f"{raw}_l"] = pc.take(data.column(raw), left)
            cols[f"{raw}_r"] = pc.take(data.column(raw), right)

    def add_raw(expr: str) -> None:
        for raw in parse(expr).columns:
            add_column(raw)

    program = scorer.program
    gamma_prefix = settings.comparison_vector_value_column_prefix
    for c, comparison in enumerate(settings.comparisons):
        name = comparison.output_column_name
        if matching:
            first = program.comparison_start[c]
            last = program.comparison_start[c + 1]
            leaves = {
                int(op)
                for v in range(first, last)
                for op in program.program[program.level_start[v] : program.level_start[v + 1]]
                if op >= 0
            }
            for k in sorted(leaves):
                for col in (program.leaf_col[k], program.leaf_col2[k]):
                    if col >= 0:
                        add_raw(program.columns[col])
            cols[f"{gamma_prefix}{name}"] = pa.array(scored.gammas[:, c].astype(np.int32))
        if not intermediate:
            continue
        g = scored.gammas[:, c].astype(np.intp)
        infos = comparison.tf_levels()
        tf_prefix = settings.term_frequency_adjustment_column_prefix
        w = scorer.weights
        level_col = w.tf_col[c][g + 1]
        adj = np.zeros(len(g))
        for column in dict.fromkeys(info.column for info in infos):
            col = scorer.columns.index(column)
            tf_l, tf_r = scorer.tf_of_pairs(col, scored.left, scored.right)
            raw = parse(column).columns[0]
            cols[f"{tf_prefix}{raw}_l"] = pa.array(tf_l, from_pandas=True)
            cols[f"{tf_prefix}{raw}_r"] = pa.array(tf_r, from_pandas=True)
            use = (level_col == col) & ~(np.isnan(tf_l) & np.isnan(tf_r))
            value = np.fmax(np.fmax(tf_l, tf_r), w.tf_min_u[c][g + 1])
            with np.errstate(divide="ignore", invalid="ignore"):
                term = w.tf_weight[c][g + 1] * (w.tf_log2_u[c][g + 1] - np.log2(value))
            adj[use] = term[use]
        cols[f"{settings.match_weight_column_prefix}{name}"] = pa.array(w.log2_bf[c][g + 1])
        if infos:
            cols[f"{settings.match_weight_column_prefix}{tf_prefix}adj_{name}"] = pa.array(adj)
    if matching:
        for raw in blocking_rule_columns(settings):
            add_raw(raw)
    for raw in settings.retained_input_columns(data.column_names):
        add_column(raw)
    keys = scored.match_key
    names = pa.array([str(k) for k in range(int(keys.max()) + 1 if len(keys) else 0)], pa.string())
    cols["match_key"] = pc.take(names, pa.array(keys.astype(np.int32, copy=False)))
    return pa.table(cols)
