"""Real-time scoring: Splink 5's ``score_pair`` / ``score_pairs`` for records of the caller's.

The records need not be in the linker's input (typically one incoming record against one
candidate). They become a small record table of their own, read with the input's column types
and encoded with the model's column kinds; the kernels predict uses give the gammas, and
:func:`gpulink.predict.pairs_table` the output columns. Term frequencies are Splink's: where a
side's records carry a ``tf_<column>`` column its values are used, otherwise each value gets its
frequency in the linker's input, and a value the input does not hold gets none (null), as
Splink's left join gives. Every pair of the cartesian product is scored; no blocking rule
applies.

>>> import gpulink as gl
>>> import gpulink.comparison_library as cl
>>> from gpulink.datasets import synthetic_people
>>> df = synthetic_people(200, seed=3)
>>> settings = gl.SettingsCreator(
...     link_type="dedupe_only",
...     comparisons=[cl.ExactMatch("surname").configure(term_frequency_adjustments=True),
...                  cl.ExactMatch("dob")],
...     blocking_rules_to_generate_predictions=[gl.block_on("dob")],
... )
>>> linker = gl.Linker(df, settings, backend="cpu")
>>> a = {"unique_id": "a", "surname": df["surname"][0], "dob": "1990-01-02"}
>>> b = {"unique_id": "b", "surname": df["surname"][0], "dob": "1990-01-03"}
>>> out = score_records(linker, [a], [b], include_found_by_blocking_rules=True).to_pandas()
>>> out[["gamma_surname", "gamma_dob", "found_by_blocking_rules"]].values.tolist()
[[1, 0, False]]
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.backend import CPU
from gpulink.blocking import to_blocking_rules
from gpulink.errors import InputError
from gpulink.expressions import parse
from gpulink.io import to_arrow
from gpulink.predict import ScoredPairs, Scorer, match_probability, pairs_table
from gpulink.results import LinkResult
from gpulink.table import RecordTable, _plain, encode_column

#: Splink's unique id for records that have none (``find_matches_to_new_records``).
MISSING_ID = {"left": "_left", "right": "_right"}
#: Splink's source dataset for records without one (link jobs).
NEW_RECORD_SOURCE = "new_record"


@dataclass
class _ModelColumns:
    required: list[str]  # the input columns the model reads (comparisons, rules, retained)
    schema: pa.Schema  # the linker's input schema: the records are read in its types
    kinds: dict[str, str]
    rules: list
    needed: dict[str, tuple[str, str | None]]  # canonical -> (expression, kind) to encode
    tf_names: dict[str, str]  # TF expression -> the records' tf_ column that may give it


class _RecordPairScorer(Scorer):
    """A :class:`Scorer` whose term frequencies are per record (``record_tf[packed column]``,
    NaN where a record has none) instead of per value of the record table."""

    record_tf: dict[int, np.ndarray]

    def tf_of_pairs(self, col, left, right):
        tf = self.record_tf.get(col)
        if tf is None:
            return super().tf_of_pairs(col, left, right)
        return tf[left], tf[right]


class RecordScorer:
    """Scores caller's records with a linker's model; keeps what does not change between calls
    (the columns the model reads, the input's types, the term-frequency lookups)."""

    def __init__(self, linker):
        self._linker = linker
        self._tf_lookups: dict[tuple[str, str | None], dict] = {}
        self._model_key: tuple | None = None
        self._model: _ModelColumns | None = None

    def _columns(self) -> _ModelColumns:
        """What the model reads, derived again only when its comparisons or rules change
        (training changes m, u and λ only; the weights are read afresh on every call)."""
        linker = self._linker
        s = linker.settings
        key = (id(s), tuple(map(id, s.comparisons)), tuple(map(id, s.blocking_rules)))
        if key != self._model_key:
            data = linker._data
            raw = set(linker._raw_columns_used())
            raw |= set(s.retained_input_columns(data.column_names))
            kinds = s.column_kinds()
            rules = to_blocking_rules(s.blocking_rules)
            needed = {expr: kinds.get(expr) for expr in s.column_expressions()}
            for rule in rules:
                for expr in rule.expressions:
                    needed.setdefault(expr, None)
            prefix = s.term_frequency_adjustment_column_prefix
            self._model = _ModelColumns(
                required=[c for c in data.column_names if c in raw],
                schema=data.schema,
                kinds=kinds,
                rules=rules,
                needed={_canonical(e): (e, k) for e, k in needed.items()},
                tf_names={e: f"{prefix}{parse(e).columns[0]}" for e in s.tf_columns()},
            )
            self._model_key = key
        return self._model

    def _side(self, records, side: str) -> pa.Table:
        """One side's records as an Arrow table (a dict is one record)."""
        what = f"record_{side}"
        if isinstance(records, Mapping):
            return _table_of_dicts([records], what)
        if isinstance(records, (list, tuple)):
            if not all(isinstance(r, Mapping) for r in records):
                raise TypeError(f"{what}: a list of records must hold dicts, one per record")
            return _table_of_dicts(list(records), what)
        try:
            return to_arrow(records, what=what)
        except InputError:
            raise TypeError(
                f"{what} must be a dict (one record), a list of dicts, or a table (pandas, "
                f"polars, pyarrow, a gpulink result); got {type(records).__name__}"
            ) from None

    def _record_table(self, left: pa.Table, right: pa.Table, model: _ModelColumns):
        """The records of both sides (left first) as one record table, in the input's types,
        every column the model reads encoded; and per side the ``tf_`` columns it carries."""
        s = self._linker.settings
        uid = s.unique_id_column_name
        sd_col = s.source_dataset_column_name if s.link_type != "dedupe_only" else None
        schema = model.schema
        names = list(dict.fromkeys([*([sd_col] if sd_col else []), uid, *model.required]))
        columns = {}
        for name in names:
            parts = []
            for side, t in (("left", left), ("right", right)):
                if name in t.column_names:
                    parts.append(_plain(t.column(name)))
                elif name == uid:
                    parts.append(pa.array([MISSING_ID[side]] * t.num_rows, pa.string()))
                elif name == sd_col:
                    parts.append(pa.array([NEW_RECORD_SOURCE] * t.num_rows, pa.string()))
                else:
                    raise InputError(
                        f"column {name!r} used by the model is missing from the {side}-hand "
                        f"records (they have: {', '.join(t.column_names)}); add it (None for "
                        "a missing value)"
                    )
            columns[name] = _concat_as(parts, _value_type(schema, name), name)
        data = pa.table(columns)
        n = data.num_rows
        table = RecordTable(
            data=data,
            unique_id_column=uid,
            unique_id=data.column(uid).chunk(0),
            source_dataset=data.column(sd_col).chunk(0) if sd_col else None,
            source_codes=np.zeros(n, np.int32),
            source_names=[],
            columns={},
            link_type=s.link_type,
            input_row=np.arange(n),
            source_dataset_column=sd_col,
        )
        for key, (expr, kind) in model.needed.items():  # a few rows: one thread, no pool
            table.columns[key] = encode_column(data, expr, kind=kind)
        given = {}
        for expr, tf_name in model.tf_names.items():
            given[expr] = [
                _float_column(t, tf_name) if tf_name in t.column_names else None
                for t in (left, right)
            ]
        return table, given

    def _tf_lookup(self, expr: str, kind: str | None) -> dict:
        """Value -> its term frequency in the linker's input (built once per column)."""
        key = (expr, kind)
        if key not in self._tf_lookups:
            table = self._linker._record_table()
            col = table.ensure_column(expr, kind)
            registered = table.tf_lookups.get(col.expression)
            if registered is not None and registered.column(0).type == col.dictionary.type:
                # a registered lookup gives values the input lacks too (Splink joins to it)
                values, tf = registered.column(0).to_pylist(), registered.column(1).to_pylist()
            else:
                values = col.dictionary.to_pylist()
                # -1.0: a value a registered lookup lacks
                tf = np.where(col.tf >= 0, col.tf, np.nan).tolist()
            self._tf_lookups[key] = dict(zip(values, tf))
        return self._tf_lookups[key]

    def _record_tf(self, table: RecordTable, given: dict, n_left: int, kinds) -> dict:
        """Per TF expression, float64[n_records]: a record's own ``tf_`` value, else its value's
        frequency in the linker's input, NaN for none (null, or a value the input lacks)."""
        out = {}
        for expr, (tf_left, tf_right) in given.items():
            col = table.column(expr)
            tf = np.empty(table.n_records)
            if tf_left is None or tf_right is None:
                lookup = self._tf_lookup(expr, kinds.get(expr))
                per_value = [lookup.get(v, np.nan) for v in col.dictionary.to_pylist()]
                tf[:] = np.array([*per_value, np.nan])[col.codes]  # code -1 (null): NaN
            if tf_left is not None:
                tf[:n_left] = tf_left
            if tf_right is not None:
                tf[n_left:] = tf_right
            out[expr] = tf
        return out

    def score(self, records_left, records_right, *, include_found_by_blocking_rules=False):
        """Every pair (left record, right record) scored; see :func:`score_records`."""
        linker = self._linker
        left = self._side(records_left, "left")
        right = self._side(records_right, "right")
        model = self._columns()
        table, given = self._record_table(left, right, model)
        s = copy.copy(linker.settings)  # Splink's score_pair keeps every column
        s.retain_matching_columns = True
        s.retain_intermediate_calculation_columns = True
        rules = model.rules
        scorer = _RecordPairScorer(table, s, rules, use_tf=True, backend=CPU)
        record_tf = self._record_tf(table, given, left.num_rows, model.kinds)
        scorer.record_tf = {scorer.columns.index(e): tf for e, tf in record_tf.items()}

        n_left, n_right = left.num_rows, right.num_rows
        li = np.repeat(np.arange(n_left, dtype=np.int64), n_right)
        ri = np.tile(np.arange(n_left, n_left + n_right, dtype=np.int64), n_left)
        with _threads_for(len(li)):
            out = scored_pairs_table(scorer, s, li, ri)
        if include_found_by_blocking_rules:
            found = _found_by_rules(table, rules, li, ri)
            out = out.append_column("found_by_blocking_rules", pa.array(found))
        return LinkResult(out)


def score_records(linker, records_left, records_right, *, include_found_by_blocking_rules=False):
    """Splink 5's ``linker.inference.score_pairs``: every (left, right) pair of the records.

    ``records_left`` / ``records_right``: a dict (one record), a list of dicts, or a table
    (pandas, polars, pyarrow, a gpulink result). They need the columns the model reads; a
    missing unique id becomes ``'_left'`` / ``'_right'`` and, for link jobs, a missing source
    dataset ``'new_record'``, as in Splink. Output: predict's columns with
    ``retain_matching_columns`` and ``retain_intermediate_calculation_columns`` on, pairs in
    left-major order, ``match_key`` the integer 0, then (``include_found_by_blocking_rules``)
    whether any prediction rule would have paired the records.
    """
    cache = linker.__dict__.setdefault("_record_scorer", None)
    if cache is None:
        cache = linker.__dict__["_record_scorer"] = RecordScorer(linker)
    return cache.score(
        records_left, records_right, include_found_by_blocking_rules=include_found_by_blocking_rules
    )


def score_pair(linker, record_left, record_right, include_found_by_blocking_rules=False):
    """Splink 5's ``linker.inference.score_pair``: :func:`score_records` of two records, each a
    dict or a table (Splink takes a dict or its table); a list is for ``score_pairs``."""
    for what, record in (("record_left", record_left), ("record_right", record_right)):
        if isinstance(record, (list, tuple)):
            raise TypeError(
                f"{what} must be a dict (one record) or a table; for lists of records use "
                "linker.inference.score_pairs"
            )
    return score_records(
        linker, record_left, record_right,
        include_found_by_blocking_rules=include_found_by_blocking_rules,
    )  # fmt: skip


# -- helpers -----------------------------------------------------------------------------------


#: Fewer pairs than this are scored on the calling thread only.
SERIAL_PAIRS = 4096


@contextmanager
def _threads_for(n_pairs: int):
    """One Numba thread for a few pairs: a parallel region must wait for every worker thread,
    which on a busy machine costs milliseconds, far more than scoring a pair."""
    if n_pairs >= SERIAL_PAIRS:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _canonical(expr: str) -> str:
    from gpulink.expressions import canonical

    return canonical(expr)


def _table_of_dicts(rows: list, what: str) -> pa.Table:
    if not rows:
        raise InputError(f"{what}: no records; give at least one")
    names = list(dict.fromkeys(k for r in rows for k in r))
    columns = {}
    for name in names:
        values = [r.get(name) for r in rows]
        try:
            columns[str(name)] = pa.array(values, from_pandas=True)  # NaN, pd.NA: null
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise InputError(
                f"{what}: the values of {name!r} ({values[:3]!r}) cannot be read as one type "
                f"({exc}); give them one type"
            ) from None
    return pa.table(columns)


def _value_type(schema: pa.Schema, name: str) -> pa.DataType | None:
    if name not in schema.names:
        return None
    t = schema.field(name).type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string_view(t):
        t = pa.large_string()
    return t


def _concat_as(parts: list[pa.Array], target: pa.DataType | None, name: str) -> pa.ChunkedArray:
    """Both sides' values in the input's type (a side's own type where the input lacks the
    column; strings where a filled-in id does not fit the input's id type)."""
    if target is None:
        target = next((p.type for p in parts if not pa.types.is_null(p.type)), pa.string())
    try:
        arr = pa.concat_arrays([p if p.type == target else p.cast(target) for p in parts])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        if all(pa.types.is_integer(p.type) or pa.types.is_string(p.type) for p in parts):
            arr = pa.concat_arrays([p.cast(pa.string()) for p in parts])
        else:
            raise InputError(
                f"column {name!r} of the records cannot be read as {target}, its type in the "
                f"linker's input ({exc}); give the records the input's types"
            ) from None
    return pa.chunked_array([arr])


def _float_column(t: pa.Table, name: str) -> np.ndarray:
    col = _plain(t.column(name))
    try:
        return pc.fill_null(col.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"term frequency column {name!r} must hold numbers ({exc})") from None


def weights_from_columns(out: pa.Table, settings) -> np.ndarray:
    """prior + Σ mw_ + Σ mw_tf_adj_ of a pairs table with intermediate columns: the weight
    adds up to the columns' own values (per-record term frequencies included)."""
    weight = np.full(out.num_rows, settings.log2_prior_odds)
    mw = settings.match_weight_column_prefix
    tf_adj = f"{mw}{settings.term_frequency_adjustment_column_prefix}adj_"
    for comparison in settings.comparisons:
        name = comparison.output_column_name
        for col in (f"{mw}{name}", f"{tf_adj}{name}"):
            if col in out.column_names:
                weight = weight + out.column(col).to_numpy()
    return weight


def scored_pairs_table(scorer, settings, left: np.ndarray, right: np.ndarray) -> pa.Table:
    """Explicit record pairs ``(left[k], right[k])`` scored by ``scorer`` as predict's output
    table, with ``match_weight`` and ``match_probability`` summed from its intermediate columns
    (``settings`` retains them; :func:`weights_from_columns`)."""
    scored = ScoredPairs(
        left=left, right=right, match_weight=np.zeros(len(left)),
        match_key=np.zeros(len(left), np.int32), gammas=scorer.gammas_of_pairs(left, right),
    )  # fmt: skip
    return _with_weights(pairs_table(scorer, scored), settings)


def _with_weights(out: pa.Table, settings) -> pa.Table:
    """match_weight (:func:`weights_from_columns`), match_probability from it, and Splink's
    integer match_key."""
    weight = weights_from_columns(out, settings)
    out = out.set_column(0, "match_weight", pa.array(weight))
    out = out.set_column(1, "match_probability", pa.array(match_probability(weight)))
    key = out.column_names.index("match_key")
    return out.set_column(key, "match_key", pa.array(np.zeros(out.num_rows, np.int32)))


def _found_by_rules(table: RecordTable, rules, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Splink's ``found_by_blocking_rules``: some rule's expressions are all equal and non-null
    (no rules: True)."""
    if not rules:
        return np.ones(len(left), bool)
    found = np.zeros(len(left), bool)
    for rule in rules:
        ok = np.ones(len(left), bool)
        for expr in rule.expressions:
            codes = table.column(expr).codes
            ok &= (codes[left] >= 0) & (codes[left] == codes[right])
        found |= ok
    return found
