"""The encoded record table: every used column as int32 codes into a dictionary of distinct values.

CONTRACT (shared by blocking, kernels, training and prediction; the encoder fills it):

* Records are sorted in *Splink's orientation order*: record ``i`` comes before record ``j``
  exactly when Splink would put ``i`` on the left of a pair with ``j``
  (``unique_id_l < unique_id_r`` for dedupe_only, the
  ``source_dataset || '-__-' || unique_id`` string order for link_only / link_and_dedupe).
  So a pair is always ``(i, j)`` with ``i < j``.
* Every used column, raw or derived (``lower(name)``, ``substr(dob, 1, 4)``...), is an
  :class:`EncodedColumn` keyed by its canonical expression text (see
  :func:`gpulink.expressions.canonical`).
* ``codes[i] == -1`` means null. Equal codes mean equal values, so exact-match is integer equality.
* Strings: the dictionary as Unicode code points, ``chars[offsets[k]:offsets[k+1]]`` (uint32).
  Numbers: ``values[k]`` (float64). Dates: ``values[k]`` is days since 1970-01-01 (float64,
  exact); timestamps: seconds since the epoch. Arrays: ``offsets``/``elements`` give each distinct
  array as sorted, de-duplicated int32 element codes into a per-column element dictionary, and
  ``list_lengths`` its length as written (duplicates and null elements counted); for arrays of
  strings, element ``e`` is ``element_chars[element_offsets[e]:element_offsets[e+1]]`` (code
  points, as strings' ``chars``), for the pairwise string distances. Vectors (lists
  of floats, for cosine similarity): ``values[offsets[k]:offsets[k+1]]`` holds vector ``k`` in
  order; every vector of a column has the same length; ``float32`` says they were FLOAT[n].
* ``tf[k] = count(value k) / count(non-null)`` over all input records (Splink's term frequency).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink import expressions as _expr
from gpulink import io as _io
from gpulink.errors import InputError

COLUMN_KINDS = ("string", "number", "date", "timestamp", "array", "vector")


@dataclass
class EncodedColumn:
    """One column (raw or derived) as dictionary codes. See the module docstring for the layout."""

    expression: str
    kind: str
    codes: np.ndarray  # int32[n_records], -1 = null
    dictionary: pa.Array  # the distinct values, host-side, code k -> dictionary[k]
    tf: np.ndarray  # float64[n_values]
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))  # strings, arrays
    chars: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))  # string code points
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # numbers, dates
    elements: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # array elements
    # arrays: the per-column dictionary of distinct elements (``elements`` index into it)
    element_dictionary: pa.Array | None = None
    # per-value counts over all records (``tf = counts / counts.sum()``)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # arrays: each distinct array's length as written (duplicates and null elements counted)
    list_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # vectors: the input held float32 elements (DuckDB computes their cosine in float32)
    float32: bool = False
    # arrays of strings: the element dictionary as code points (pairwise string distances)
    element_offsets: np.ndarray | None = None
    element_chars: np.ndarray | None = None

    @property
    def n_values(self) -> int:
        return len(self.dictionary)

    @property
    def lengths(self) -> np.ndarray:
        """Per dictionary value: code points (strings) or element count (arrays)."""
        return np.diff(self.offsets)

    @property
    def max_length(self) -> int:
        """The longest dictionary string in code points (arrays: most elements); 0 if none."""
        return int(self.lengths.max()) if len(self.offsets) > 1 else 0

    @property
    def null_count(self) -> int:
        return int((self.codes < 0).sum())

    def decode(self) -> pa.Array:
        """The column's value per record (in record order), rebuilt from codes and dictionary.

        >>> import pyarrow as pa
        >>> t = encode_records(pa.table({"unique_id": [2, 1], "x": ["b", None]}), ["x"])
        >>> t.column("x").decode().to_pylist()
        [None, 'b']
        """
        idx = pa.array(self.codes, mask=self.codes < 0)
        return self.dictionary.take(idx)


@dataclass
class RecordTable:
    """All records of a job, encoded. ``data`` holds the input rows in record order."""

    data: pa.Table
    unique_id_column: str
    unique_id: pa.Array
    source_dataset: pa.Array | None  # per record, link jobs only
    source_codes: np.ndarray  # int32 per record; 0 everywhere for dedupe_only
    source_names: list[str]
    columns: dict[str, EncodedColumn]
    link_type: str = "dedupe_only"
    # input_row[i]: the row of the (normalised) input table that became record i
    input_row: np.ndarray | None = None
    source_dataset_column: str | None = None
    # user-registered term frequencies (``register_term_frequency_lookup``): canonical
    # expression of an input column -> its lookup table (values in the column's type, tf)
    tf_lookups: dict[str, pa.Table] = field(default_factory=dict)

    @property
    def n_records(self) -> int:
        return len(self.unique_id)

    def column(self, expression: str) -> EncodedColumn:
        """The encoded column for ``expression`` (raw name or derived expression)."""
        from gpulink.expressions import canonical

        key = canonical(expression)
        if key not in self.columns:
            raise KeyError(
                f"{expression!r} was not encoded; encoded: {', '.join(self.columns)} "
                f"(use RecordTable.ensure_column to add it)"
            )
        return self.columns[key]

    def max_string_length(self, expression: str) -> int:
        """The longest value of a string column in code points (kernels size scratch by it).

        >>> import pyarrow as pa
        >>> t = encode_records(pa.table({"unique_id": [1, 2], "x": ["ab", "héllo"]}), ["x"])
        >>> t.max_string_length("x")
        5
        """
        return self.column(expression).max_length

    def ensure_column(self, expression: str, kind: str | None = None) -> EncodedColumn:
        """Encode one more expression over these records (no-op if already encoded).

        A column first encoded in its own type (say numbers, for a blocking rule) and then
        needed as another ``kind`` (say strings, for Jaro-Winkler) is encoded again in that
        kind; equality, all that blocking reads, is the same in both.
        """
        from gpulink.expressions import canonical

        key = canonical(expression)
        existing = self.columns.get(key)
        if existing is None or (kind is not None and existing.kind != kind):
            self.columns[key] = self.with_tf_lookup(encode_column(self.data, expression, kind=kind))
        return self.columns[key]

    def with_tf_lookup(self, encoded: EncodedColumn) -> EncodedColumn:
        """``encoded`` with the registered term frequencies of its column, if any (see
        :func:`looked_up_tf`); otherwise unchanged."""
        lookup = self.tf_lookups.get(encoded.expression)
        if lookup is None:
            return encoded
        return replace(encoded, tf=looked_up_tf(self.data, encoded, lookup))

    def ensure_columns(self, expressions: dict[str, str | None]) -> None:
        """Encode the missing ones of ``{expression: kind}`` at once, on several threads.

        Encoding is mostly Arrow compute and NumPy, which release the GIL: the columns of a
        model (names, dates, regex-derived postcode parts, email user names) encode in parallel.

        >>> import pyarrow as pa
        >>> t = encode_records(pa.table({"unique_id": [1, 2], "x": ["ab", "cd"]}), [])
        >>> t.ensure_columns({"x": None, "substr(x, 1, 1)": None})
        >>> t.column("substr(x,1,1)").dictionary.to_pylist()
        ['a', 'c']
        """
        import os
        from concurrent.futures import ThreadPoolExecutor

        from gpulink.expressions import canonical

        todo = {}
        for expression, kind in expressions.items():
            key = canonical(expression)
            existing = self.columns.get(key)
            stale = existing is not None and kind is not None and existing.kind != kind
            if (existing is None or stale) and (key not in todo or kind is not None):
                todo[key] = (expression, kind)
        if len(todo) <= 1:
            for expression, kind in todo.values():
                self.ensure_column(expression, kind)
            return
        workers = min(len(todo), os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {
                key: pool.submit(encode_column, self.data, expression, kind=kind)
                for key, (expression, kind) in todo.items()
            }
            encoded = {key: future.result() for key, future in futures.items()}
        self.columns.update({key: self.with_tf_lookup(col) for key, col in encoded.items()})


def looked_up_tf(data: pa.Table, encoded: EncodedColumn, lookup: pa.Table) -> np.ndarray:
    """Per dictionary value of ``encoded`` (an input column), its term frequency in ``lookup``
    (columns: the values, in the column's type, and their tf), as Splink's ``LEFT JOIN`` of the
    records to the lookup on the column: a value the lookup lacks has none, -1.0 (the kernels'
    "no term frequency", as for a null).

    >>> t = encode_records(pa.table({"unique_id": [1, 2, 3], "x": ["a", "b", "a"]}), ["x"])
    >>> lookup = pa.table({"x": ["a"], "tf_x": [0.25]})
    >>> looked_up_tf(t.data, t.column("x"), lookup).tolist()
    [0.25, -1.0]
    """
    raw = _plain(data.column(lookup.column_names[0]))
    position = pc.index_in(raw, value_set=_plain(lookup.column(0))).to_numpy(zero_copy_only=False)
    tf_values = np.append(lookup.column(1).to_numpy(zero_copy_only=False), -1.0)
    per_record = tf_values[np.where(np.isnan(position), -1, position).astype(np.int64)]
    out = np.full(encoded.n_values, -1.0)
    valid = encoded.codes >= 0
    out[encoded.codes[valid]] = per_record[valid]
    return out


# ---------------------------------------------------------------------------------------------
# encoding
# ---------------------------------------------------------------------------------------------


def orientation_order(
    table: pa.Table,
    *,
    unique_id_column: str = "unique_id",
    source_dataset_column: str | None = None,
    link_type: str = "dedupe_only",
) -> np.ndarray:
    """The permutation that sorts ``table``'s rows into Splink's orientation order.

    dedupe_only: by the unique id in its own type (integers numerically, strings by UTF-8 bytes,
    i.e. code points, as DuckDB compares VARCHAR). Link jobs: by the string
    ``source_dataset || '-__-' || unique_id``, Splink's composite id. For link_only with exactly
    two datasets Splink instead joins the dataset with the smaller name (left) to the other, so
    there records sort by (dataset name, composite id): every cross pair is still ``(i, j)``,
    ``i < j``.

    >>> import pyarrow as pa
    >>> orientation_order(pa.table({"unique_id": ["b", "a", "c"]})).tolist()
    [1, 0, 2]
    """
    uid = _plain(table.column(unique_id_column))
    if link_type == "dedupe_only":
        return pc.sort_indices(uid).to_numpy().astype(np.int64)
    sd_col = source_dataset_column or _io.DEFAULT_SOURCE_DATASET_COLUMN
    sd = _plain(table.column(sd_col)).cast(pa.large_string())
    key = pc.binary_join_element_wise(
        sd, uid.cast(pa.large_string()), pa.scalar(_CONCAT_SEPARATOR, pa.large_string())
    )
    sort_table = pa.table({"sd": sd, "key": key})
    n_sources = len(pc.unique(sd))
    if link_type == "link_only" and n_sources == 2:
        keys = [("sd", "ascending"), ("key", "ascending")]
    else:
        keys = [("key", "ascending")]
    return pc.sort_indices(sort_table, sort_keys=keys).to_numpy().astype(np.int64)


_CONCAT_SEPARATOR = "-__-"  # splink.internals.unique_id_concat.CONCAT_SEPARATOR


def encode_records(
    table,
    expressions: list[str],
    *,
    unique_id_column: str = "unique_id",
    source_dataset_column: str | None = None,
    link_type: str = "dedupe_only",
    kinds: dict[str, str] | None = None,
) -> RecordTable:
    """Sort the records into Splink's orientation order and encode every expression.

    ``table`` is normally the output of :func:`gpulink.io.normalise_input` (anything else is passed
    through it first). ``kinds`` maps an expression to a forced kind (``"string"``, ``"number"``,
    ``"date"``, ``"timestamp"``), e.g. ``{"dob": "date"}`` parses an ISO-date string column.
    Each derived expression is computed once per distinct value of its input column.

    >>> import pyarrow as pa
    >>> rt = encode_records(pa.table({"unique_id": [3, 1, 2], "name": ["Ann", "Bob", "ann"]}),
    ...                     ["name", "lower(name)"])
    >>> rt.unique_id.to_pylist()
    [1, 2, 3]
    >>> col = rt.column("lower(name)")
    >>> col.codes.tolist(), col.dictionary.to_pylist(), col.tf.tolist()
    ([0, 1, 1], ['bob', 'ann'], [0.3333333333333333, 0.6666666666666666])
    """
    if not isinstance(table, pa.Table):
        table = _io.normalise_input(
            table,
            unique_id_column=unique_id_column,
            source_dataset_column=source_dataset_column,
            link_type=link_type,
        )
    if link_type not in _io.LINK_TYPES:
        raise InputError(f"unknown link_type {link_type!r}; use one of {', '.join(_io.LINK_TYPES)}")
    sd_col = (
        (source_dataset_column or _io.DEFAULT_SOURCE_DATASET_COLUMN)
        if link_type != "dedupe_only"
        else None
    )
    if sd_col is not None and sd_col not in table.column_names:
        raise InputError(
            f"link_type={link_type!r} needs the source dataset column {sd_col!r}, which the input "
            f"lacks; pass a list of tables (gpulink.io.normalise_input adds it) or name the column"
        )
    _io._check_unique_id(table, unique_id_column, sd_col, check_duplicates=False)
    if sd_col is not None:
        _io._check_source_dataset(table, sd_col, link_type)

    order = orientation_order(
        table,
        unique_id_column=unique_id_column,
        source_dataset_column=sd_col,
        link_type=link_type,
    )
    data = table.take(pa.array(order))
    _check_sorted_ids_distinct(data, unique_id_column, sd_col)

    kinds_by_key = {_expr.canonical(k): v for k, v in (kinds or {}).items()}
    columns: dict[str, EncodedColumn] = {}
    for text in expressions:
        key = _expr.canonical(text)
        if key not in columns:
            columns[key] = encode_column(data, text, kind=kinds_by_key.get(key))

    if sd_col is not None:
        names = [str(v) for v in pc.unique(_plain(table.column(sd_col))).to_pylist()]
        source = _plain(data.column(sd_col))
        source_str = source.cast(pa.string())
        source_codes = pc.index_in(source_str, pa.array(names)).to_numpy().astype(np.int32)
    else:
        names, source = [_io.default_dataset_name(0)], None
        source_codes = np.zeros(data.num_rows, np.int32)

    return RecordTable(
        data=data,
        unique_id_column=unique_id_column,
        unique_id=_plain(data.column(unique_id_column)),
        source_dataset=source,
        source_codes=source_codes,
        source_names=names,
        columns=columns,
        link_type=link_type,
        input_row=order,
        source_dataset_column=sd_col,
    )


def _check_sorted_ids_distinct(data: pa.Table, uid: str, sd_col: str | None) -> None:
    """Duplicate ids are neighbours once sorted: a cheap check (no hash group-by)."""
    if data.num_rows < 2:
        return
    ids = _plain(data.column(uid))
    same = pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    if sd_col is not None:
        sd = _plain(data.column(sd_col))
        same = pc.and_(same, pc.equal(sd.slice(1), sd.slice(0, len(sd) - 1)))
    if pc.any(same).as_py():
        # let the group-by check build the full message (count, first value, dataset)
        _io._check_unique_id(data, uid, sd_col)


def encode_column(data: pa.Table, expression: str, *, kind: str | None = None) -> EncodedColumn:
    """Encode one expression over the rows of ``data`` (already in record order).

    A single-column expression is evaluated on the column's distinct values only, then re-coded.

    >>> import pyarrow as pa
    >>> c = encode_column(pa.table({"x": ["Smith", "Smithers", None, "Li"]}), "substr(x, 1, 3)")
    >>> c.codes.tolist(), c.dictionary.to_pylist(), c.kind
    ([0, 0, -1, 1], ['Smi', 'Li'], 'string')
    """
    expr = _expr.parse(expression)
    if kind is not None and kind not in COLUMN_KINDS:
        raise InputError(f"unknown kind {kind!r} for {expression!r}; use one of {COLUMN_KINDS}")
    _io.check_columns(data, list(expr.columns), used_by=f"expression {expression!r}")
    n = data.num_rows

    base_codes: np.ndarray | None = None  # row -> index into `values`, -1 = null
    maybe_unused = False  # only a pre-encoded input dictionary can carry unused values
    if len(expr.columns) == 1:
        col = _combine(data.column(expr.columns[0]))
        if pa.types.is_dictionary(col.type):
            base_codes = _codes(col.indices)
            base = col.dictionary
            maybe_unused = True
        elif not _is_list(col.type):
            enc = pc.dictionary_encode(col)
            base_codes = _codes(enc.indices)
            base = enc.dictionary
        else:
            base = col
        base = _plain(base)
        if base_codes is not None and (base_codes < 0).any():
            # a null input may give a value (coalesce, nullif, concat...): one more slot for it
            base_codes = np.where(base_codes < 0, len(base), base_codes)
            base = pa.concat_arrays([base, pa.nulls(1, base.type)])
        values = expr.evaluate(base)
    else:
        values = expr.evaluate(data)
    values = _null_nan(_plain(values))
    values, natural = _apply_kind(values, kind, expression)

    if natural == "array":
        value_codes, dictionary, extra = _encode_arrays(values)
    elif natural == "vector":
        value_codes, dictionary, extra = _encode_vectors(values, expression)
    else:
        enc = pc.dictionary_encode(values)
        value_codes, dictionary, extra = _codes(enc.indices), enc.dictionary, {}

    codes = value_codes if base_codes is None else _take_codes(value_codes, base_codes)
    if maybe_unused:
        codes, dictionary, extra = _compact(codes, dictionary, extra)
    counts = np.bincount(codes[codes >= 0], minlength=len(dictionary)).astype(np.int64)
    total = counts.sum()
    tf = counts / total if total else np.zeros(len(dictionary), np.float64)
    assert len(codes) == n

    out = EncodedColumn(
        expression=expr.canonical,
        kind=natural,
        codes=codes,
        dictionary=dictionary,
        tf=tf,
        counts=counts,
        **extra,
    )
    if natural == "string":
        out.offsets, out.chars = _code_points(dictionary)
    elif natural == "array":
        lengths = pc.list_value_length(dictionary)
        out.list_lengths = lengths.to_numpy(zero_copy_only=False).astype(np.int64)
        elements = out.element_dictionary
        if elements is not None and (
            pa.types.is_string(elements.type) or pa.types.is_large_string(elements.type)
        ):
            out.element_offsets, out.element_chars = _code_points(elements)
    elif natural in ("number", "date", "timestamp"):
        out.values = _as_float64(dictionary, natural)
    return out


def _plain(arr) -> pa.Array:
    """One contiguous array, dictionaries decoded, string views as large strings."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.large_string())
    return arr


def _combine(arr) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        if pa.types.is_dictionary(arr.type) and arr.num_chunks > 1:
            arr = arr.unify_dictionaries()
            indices = pa.concat_arrays([c.indices for c in arr.chunks])
            return pa.DictionaryArray.from_arrays(indices, arr.chunk(0).dictionary)
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.large_string())
    return arr


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _codes(indices: pa.Array) -> np.ndarray:
    """Arrow dictionary indices (null = null) -> int32 codes (-1 = null)."""
    return pc.fill_null(indices, -1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def _take_codes(value_codes: np.ndarray, base_codes: np.ndarray) -> np.ndarray:
    """codes[row] = value_codes[base_codes[row]], keeping -1 for null rows."""
    lookup = np.append(value_codes, np.int32(-1))  # index -1 -> the appended null
    return lookup[base_codes]


def _null_nan(values: pa.Array) -> pa.Array:
    """NaN is null (as pandas input reaches Splink through DuckDB)."""
    if pa.types.is_floating(values.type) and values.null_count < len(values):
        nan = pc.is_nan(values)
        if pc.any(nan).as_py():
            return pc.if_else(nan, pa.scalar(None, values.type), values)
    return values


def _natural_kind(t: pa.DataType, expression: str) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return "string"
    if (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_boolean(t)
    ):
        return "number"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if _is_list(t):
        v = t.value_type
        if pa.types.is_string(v) or pa.types.is_large_string(v) or pa.types.is_integer(v):
            return "array"
        if pa.types.is_float32(v) or pa.types.is_float64(v):
            return "vector"
    raise InputError(
        f"{expression!r} has type {t}, which gpulink cannot compare; usable types are strings, "
        f"numbers, dates, timestamps, lists of strings or integers and lists of floats"
    )


def _apply_kind(values: pa.Array, kind: str | None, expression: str) -> tuple[pa.Array, str]:
    """Convert the distinct values to the requested kind (once per distinct value)."""
    natural = _natural_kind(values.type, expression)
    if pa.types.is_null(values.type):
        values = values.cast(pa.string())
    if kind is None or kind == natural:
        return values, natural
    text = f"{expression!r} (forced kind {kind!r})"
    if kind == "string" and natural != "array":
        return _expr._as_string(values), "string"
    if kind == "number" and natural == "string":
        numbers = _expr._cast(values, "double", True, text)
        lost = pc.and_(values.is_valid(), numbers.is_null())
        if pc.any(lost).as_py():
            first = pc.filter(values, lost)[0].as_py()
            raise InputError(
                f"{expression!r} holds text (e.g. {first!r}) where a numeric comparison "
                "(absolute/percentage difference, distance in km) needs numbers; compare it "
                "with a string comparison, or convert the column to numbers first"
            )
        return numbers, "number"
    if kind == "date":
        if natural == "string":
            return _expr._strptime(values, "%Y-%m-%d", True, text), "date"
        if natural == "timestamp":
            return values.cast(pa.date32()), "date"
    if kind == "timestamp" and natural in ("string", "date"):
        return _expr._cast(values, "timestamp", True, text), "timestamp"
    uses = {
        "string": "a string comparison (exact match on text, Jaro-Winkler, Levenshtein...)",
        "number": "a numeric comparison",
        "date": "a date comparison",
        "timestamp": "a date-time comparison",
        "array": "an array comparison (lists of strings or integers)",
        "vector": "cosine similarity (lists of floats: float32 or float64)",
    }
    raise InputError(
        f"{expression!r} holds {natural} values ({values.type}), which {uses.get(kind, kind)} "
        "cannot read; choose a comparison for that type (e.g. ArrayIntersectAtSizes for "
        "lists) or convert the column first"
    )


def _encode_arrays(values: pa.Array) -> tuple[np.ndarray, pa.Array, dict]:
    """Distinct arrays (as ordered lists) and, per distinct array, its sorted set of element codes."""
    if pa.types.is_fixed_size_list(values.type):
        values = values.cast(pa.list_(values.type.value_type))
    flat = values.flatten()
    elem_enc = pc.dictionary_encode(flat)
    elem_dict = elem_enc.dictionary
    elem_codes = _codes(elem_enc.indices)
    # one binary key per row: its element codes in order; equal keys <=> equal arrays
    offs = values.offsets.to_numpy().astype(np.int64)
    offs = offs - offs[0]
    keys = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        len(values),
        [None, pa.py_buffer((offs * 4).tobytes()), pa.py_buffer(elem_codes.tobytes())],
    )
    keys = pc.if_else(values.is_valid(), keys, pa.scalar(None, pa.large_binary()))
    key_enc = pc.dictionary_encode(keys)
    row_codes = _codes(key_enc.indices)
    n_distinct = len(key_enc.dictionary)
    valid_rows = np.flatnonzero(row_codes >= 0)
    first = np.full(n_distinct, -1, np.int64)
    # the first row of each distinct array (reverse so the earliest write wins)
    first[row_codes[valid_rows[::-1]]] = valid_rows[::-1]
    dictionary = values.take(pa.array(first))
    # sorted, de-duplicated element codes of each distinct array (nulls dropped)
    lengths = np.diff(offs)
    row_of_elem = np.repeat(np.arange(len(values)), lengths)
    dist_of_elem = row_codes[row_of_elem]
    chosen = first[np.maximum(dist_of_elem, 0)] == row_of_elem
    keep = (dist_of_elem >= 0) & chosen & (elem_codes >= 0)
    combined = dist_of_elem[keep].astype(np.int64) * (len(elem_dict) + 1) + elem_codes[keep]
    combined = np.unique(combined)
    owners = combined // (len(elem_dict) + 1)
    elements = (combined % (len(elem_dict) + 1)).astype(np.int32)
    offsets = np.zeros(n_distinct + 1, np.int64)
    np.cumsum(np.bincount(owners, minlength=n_distinct), out=offsets[1:])
    return (
        row_codes,
        dictionary,
        {"offsets": offsets, "elements": elements, "element_dictionary": elem_dict},
    )


def _encode_vectors(values: pa.Array, expression: str) -> tuple[np.ndarray, pa.Array, dict]:
    """Distinct float vectors (in order, as float64) and their codes; refuses what DuckDB's
    ``array_cosine_similarity`` refuses: null elements, and vectors of different lengths."""
    single = pa.types.is_float32(values.type.value_type)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
    lengths = np.where(valid, np.nan_to_num(lengths.astype(np.float64)), 0).astype(np.int64)
    flat = values.flatten()  # the elements of non-null vectors only
    if flat.null_count:
        raise InputError(
            f"{expression!r} has {flat.null_count} null element(s) inside vectors; cosine "
            "similarity needs every element (DuckDB refuses NULL elements too): fill or drop "
            "them, or set the whole vector to null"
        )
    sizes = np.unique(lengths[valid])
    if len(sizes) > 1 or (len(sizes) == 1 and sizes[0] == 0):
        found = ", ".join(str(int(x)) for x in sizes[:5])
        raise InputError(
            f"{expression!r} holds vectors of length(s) {found}; cosine similarity compares "
            "vectors of one length, at least 1 (DuckDB's FLOAT[n] / DOUBLE[n]): pad or truncate "
            "them, or set empty ones to null"
        )
    dim = int(sizes[0]) if len(sizes) else 0
    rows = np.flatnonzero(valid)
    matrix = flat.to_numpy(zero_copy_only=False).astype(np.float64).reshape(len(rows), dim)
    # one key per vector, by value: -0.0 is 0.0 and every NaN is the same NaN (DuckDB's equality)
    key = np.where(np.isnan(matrix), np.nan, matrix + 0.0)
    key = np.ascontiguousarray(key).view(np.dtype((np.void, 8 * max(dim, 1))))[:, 0]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    codes = np.full(len(values), -1, np.int32)
    codes[rows] = inverse.reshape(-1).astype(np.int32)
    distinct = matrix[first]
    offsets = np.arange(len(first) + 1, dtype=np.int64) * dim
    dictionary = values.take(pa.array(rows[first], pa.int64()))
    return (
        codes,
        dictionary,
        {"offsets": offsets, "values": distinct.reshape(-1), "float32": single},
    )


def _compact(codes: np.ndarray, dictionary: pa.Array, extra: dict):
    """Drop dictionary values no record uses (a pre-encoded input dictionary may carry some)."""
    used = np.zeros(len(dictionary), bool)
    used[codes[codes >= 0]] = True
    if used.all():
        return codes, dictionary, extra
    new_index = np.cumsum(used, dtype=np.int64) - 1
    keep = np.flatnonzero(used)
    codes = np.where(codes >= 0, new_index[np.maximum(codes, 0)], -1).astype(np.int32)
    if "offsets" in extra:  # arrays: keep the kept arrays' element runs
        offs, elems = extra["offsets"], extra["elements"]
        lengths = np.diff(offs)[keep]
        starts = offs[:-1][keep]
        idx = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        idx = idx + np.arange(lengths.sum())
        new_offs = np.zeros(len(keep) + 1, np.int64)
        np.cumsum(lengths, out=new_offs[1:])
        extra = {**extra, "offsets": new_offs, "elements": elems[idx]}
    return codes, dictionary.take(pa.array(keep)), extra


def _code_points(dictionary: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Strings as code points: ``offsets`` (int64, n+1) and ``chars`` (uint32), vectorised by
    decoding the dictionary's whole UTF-8 buffer once and re-encoding it as UTF-32-LE."""
    if len(dictionary) == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.uint32)
    if pa.types.is_null(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    lengths = pc.utf8_length(dictionary).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.zeros(len(dictionary) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    off_type = np.int64 if pa.types.is_large_string(dictionary.type) else np.int32
    bufs = dictionary.buffers()
    byte_offs = np.frombuffer(bufs[1], dtype=off_type)[
        dictionary.offset : dictionary.offset + len(dictionary) + 1
    ]
    raw = (
        memoryview(bufs[2])[int(byte_offs[0]) : int(byte_offs[-1])] if bufs[2] is not None else b""
    )
    chars = np.frombuffer(bytes(raw).decode("utf-8").encode("utf-32-le"), dtype=np.uint32)
    if len(chars) != offsets[-1]:  # null slots with bytes behind them would break the layout
        raise AssertionError("string dictionary layout mismatch")
    return offsets, chars.copy()


def _as_float64(dictionary: pa.Array, kind: str) -> np.ndarray:
    t = dictionary.type
    if kind == "date":
        if pa.types.is_date64(t):
            ms = dictionary.cast(pa.int64()).to_numpy(zero_copy_only=False)
            return (ms // 86_400_000).astype(np.float64)
        return dictionary.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.float64)
    if kind == "timestamp":
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[t.unit]
        ticks = dictionary.cast(pa.int64()).to_numpy(zero_copy_only=False)
        return ticks.astype(np.float64) / per_second
    if pa.types.is_boolean(t) or pa.types.is_decimal(t):
        dictionary = dictionary.cast(pa.float64())
    return dictionary.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
