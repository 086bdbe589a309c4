"""The compiled form of a model's comparisons: flat arrays that one generic kernel interprets.

CONTRACT between :mod:`gpulink.settings` (which compiles comparisons into a
:class:`ComparisonProgram`) and :mod:`gpulink.kernels.compare` (which evaluates it per pair).

A comparison is an ordered list of levels; the gamma of a pair is given by the first level
whose predicate is TRUE, with Splink's numbering: the null level -1, the else level 0, the other
levels n-1 ... 1 in order. A level's predicate is a postfix program over *leaves*, evaluated in
SQL's three-valued logic (a fuzzy leaf on a null value is UNKNOWN, and so is NOT UNKNOWN; a
level matches only when its predicate is TRUE).

Leaves (one row each in the ``leaf_*`` arrays):

=====================  ==================================================================
kind                    TRUE when (``l``/``r``: the pair's values in ``leaf_col``)
=====================  ==================================================================
LEAF_ELSE               always
LEAF_NULL               ``l`` or ``r`` is null in ``leaf_col`` (or in ``leaf_col2`` if set)
LEAF_EXACT              codes equal (UNKNOWN if either is null)
LEAF_JARO_GE            jaro(l, r) >= threshold
LEAF_JARO_WINKLER_GE    jaro_winkler(l, r) >= threshold
LEAF_LEVENSHTEIN_LE     levenshtein(l, r) <= threshold
LEAF_DAMERAU_LE         damerau_levenshtein(l, r) <= threshold
LEAF_JACCARD_GE         jaccard(l, r) >= threshold
LEAF_ABS_DIFF_LE        abs(l - r) <= threshold (numbers, dates in days, timestamps in s)
LEAF_PERCENT_DIFF_LE    abs(l - r) / greatest(l, r) < threshold (Splink's form; 0 -> UNKNOWN)
LEAF_DISTANCE_KM_LE     great-circle km between (lat=leaf_col, lng=leaf_col2) <= threshold
LEAF_ARRAY_INTERSECT_GE size of the intersection of the arrays >= threshold
LEAF_COLUMNS_REVERSED   l[col] == r[col2] and l[col2] == r[col] (by value)
LEAF_EXACT_AS_STRING    value equality across two dictionaries (col on the left, col2 right)
LEAF_ARRAY_SUBSET       size of the intersection == least(len(l), len(r)): one array is a
                        subset of the other (lengths as written: duplicates and null
                        elements count, as DuckDB's ``array_length``)
LEAF_ARRAY_LEAST_LEN_LE least(len(l), len(r)) <= threshold (lengths as written)
LEAF_COSINE_GE          cosine_similarity(l, r) >= threshold over float vectors, as DuckDB's
                        ``array_cosine_similarity`` (in float32 for FLOAT[n] vectors); a NaN
                        similarity (a zero vector) is TRUE: DuckDB orders NaN above every
                        number
LEAF_PAIRWISE_LEV_LE    min over element pairs (x in l, y in r) of levenshtein(x, y) <=
                        threshold, over arrays of strings (Splink's
                        PairwiseStringDistanceFunctionLevel, DuckDB's ``list_min`` of
                        ``list_transform``): null elements are skipped, and with no pair
                        left (an empty array, only null elements) the minimum is NULL:
                        UNKNOWN
LEAF_PAIRWISE_DAMERAU_LE  the same with damerau_levenshtein
LEAF_PAIRWISE_JARO_GE   max over element pairs of jaro(x, y) >= threshold (nulls, empty
                        arrays as above; two empty strings score 0, as DuckDB)
LEAF_PAIRWISE_JW_GE     the same with jaro_winkler
=====================  ==================================================================

A comparison a leaf kind does not state in its own direction is a NOT over one: for integer
distances ``levenshtein(l, r) >= 2`` is ``NOT (levenshtein(l, r) <= 1.999...)``, and
``jaro_similarity(l, r) <= 0.8`` is ``NOT (jaro_similarity(l, r) >= nextafter(0.8))``; both
equalities hold for every float64 metric value, and a null stays UNKNOWN under NOT.

``leaf_metric[k]`` is the similarity slot a fuzzy leaf reads: leaves of one comparison that
compute the same metric on the same column share a slot, so the metric is computed once per
pair whatever the number of thresholds. Slots are numbered 0..n_slots-1 across the model.

Programs: ``program`` holds int32 opcodes; ``OP_LEAF + k`` pushes leaf k, ``OP_AND``, ``OP_OR``
(binary) and ``OP_NOT`` (unary) combine. Level ``v`` runs ``program[level_start[v]:
level_start[v+1]]``. Comparison ``c`` owns levels ``comparison_start[c]:comparison_start[c+1]``
and ``level_gamma`` holds each level's gamma.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEAF_ELSE = 0
LEAF_NULL = 1
LEAF_EXACT = 2
LEAF_JARO_GE = 3
LEAF_JARO_WINKLER_GE = 4
LEAF_LEVENSHTEIN_LE = 5
LEAF_DAMERAU_LE = 6
LEAF_JACCARD_GE = 7
LEAF_ABS_DIFF_LE = 8
LEAF_PERCENT_DIFF_LE = 9
LEAF_DISTANCE_KM_LE = 10
LEAF_ARRAY_INTERSECT_GE = 11
LEAF_COLUMNS_REVERSED = 12
LEAF_EXACT_AS_STRING = 13
LEAF_ARRAY_SUBSET = 14
LEAF_ARRAY_LEAST_LEN_LE = 15
LEAF_COSINE_GE = 16
LEAF_PAIRWISE_LEV_LE = 17
LEAF_PAIRWISE_DAMERAU_LE = 18
LEAF_PAIRWISE_JARO_GE = 19
LEAF_PAIRWISE_JW_GE = 20

OP_AND = -1
OP_OR = -2
OP_NOT = -3
OP_LEAF = 0  # opcodes >= 0 are leaf indices

MAX_STACK = 16  # deepest predicate a level may have (checked when compiling)


@dataclass
class ComparisonProgram:
    """A model's comparisons as flat arrays (see the module docstring)."""

    columns: list[str]  # canonical column expressions, indexed by leaf_col / leaf_col2
    leaf_kind: np.ndarray  # int32[L]
    leaf_col: np.ndarray  # int32[L]  index into ``columns`` (-1 for ELSE)
    leaf_col2: np.ndarray  # int32[L] second column or -1
    leaf_threshold: np.ndarray  # float64[L]
    leaf_metric: np.ndarray  # int32[L] similarity slot or -1
    program: np.ndarray  # int32[P]
    level_start: np.ndarray  # int32[V + 1]
    level_gamma: np.ndarray  # int32[V]
    comparison_start: np.ndarray  # int32[C + 1]
    comparison_names: list[str]  # output_column_name of each comparison
    n_slots: int

    @property
    def n_comparisons(self) -> int:
        return len(self.comparison_names)
