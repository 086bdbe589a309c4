"""``linker.table_management``: Splink's term-frequency tables, from the encoded records.

gpulink keeps no database, so of Splink's ``table_management`` methods only the one that
computes something is here: :meth:`LinkerTableManagement.compute_tf_table`. A column's term
frequencies are those the encoder already counts (``EncodedColumn.counts``), over every input
record (all tables of a link job together), as Splink's
``count(*) / count(<col>)`` grouped by the non-null values.

>>> import pyarrow as pa
>>> from gpulink.table import encode_records
>>> t = encode_records(pa.table({"unique_id": [1, 2, 3, 4], "x": ["a", "b", "a", None]}), [])
>>> tf_table(t, "x").to_pydict()
{'x': ['a', 'b'], 'tf_x': [0.6666666666666666, 0.3333333333333333]}
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.errors import InputError
from gpulink.io import find_column
from gpulink.results import LinkResult
from gpulink.table import EncodedColumn, RecordTable, encode_column

if TYPE_CHECKING:
    from gpulink.linker import Linker


def input_column_name(table: RecordTable, column_name: str) -> str:
    """The input column ``column_name`` names: exact, unquoted (``"first name"``) or, as in
    DuckDB, case-insensitive; anything else is an InputError naming the columns there are."""
    name = column_name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('""', '"')
    available = table.data.column_names
    found = find_column(available, name)
    if found is not None:
        return found
    close = difflib.get_close_matches(name, available, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InputError(
        f"column {column_name!r} is not in the input{hint}; term frequencies are computed for "
        f"input columns (not expressions): {', '.join(available[:30])}"
        f"{' ...' if len(available) > 30 else ''}"
    )


def _own_kind(data_type: pa.DataType) -> str | None:
    """The kind the encoder gives a column of this type (None: one it would reject)."""
    from gpulink.table import _natural_kind

    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    if pa.types.is_string_view(data_type):
        data_type = pa.large_string()
    try:
        return _natural_kind(data_type, "")
    except InputError:
        return None


def term_frequency_column(table: RecordTable, column: str) -> EncodedColumn:
    """Input column ``column`` encoded in its own type, whose ``tf``/``counts`` are Splink's
    term frequencies of that column (a model may have encoded it as another kind, say a date
    string parsed to dates, whose values and frequencies can differ: then it is encoded again,
    without replacing the model's)."""
    from gpulink.expressions import canonical

    key = canonical(_quoted(column))
    existing = table.columns.get(key)
    kind = _own_kind(table.data.schema.field(column).type)
    if existing is not None and existing.kind == kind:
        return existing
    encoded = encode_column(table.data, _quoted(column))
    if existing is None:
        table.columns[key] = encoded
    return encoded


def _quoted(column: str) -> str:
    """A column name as an expression gpulink parses (quoted unless a plain identifier)."""
    if column.isidentifier():
        return column
    return '"' + column.replace('"', '""') + '"'


def record_tf(encoded: EncodedColumn) -> pa.Array:
    """Per record, the term frequency of its value (null for a null value), float64."""
    codes = encoded.codes
    values = encoded.tf[np.maximum(codes, 0)] if len(encoded.tf) else np.zeros(len(codes))
    return pa.array(values, pa.float64(), mask=codes < 0)


def tf_table(table: RecordTable, column_name: str, *, tf_prefix: str = "tf_") -> pa.Table:
    """Splink's term-frequency table of an input column: ``<column>`` (each non-null value
    once, in its input type) and ``<tf_prefix><column_name>`` (its count over the count of
    non-null values), in order of first appearance in the records (Splink's order is that of
    a SQL group-by: unspecified)."""
    name = input_column_name(table, column_name)
    encoded = term_frequency_column(table, name)
    values = encoded.dictionary
    source_type = table.data.schema.field(name).type
    if pa.types.is_dictionary(source_type):
        source_type = source_type.value_type
    if values.type != source_type:
        try:
            values = values.cast(source_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # keep the encoder's type (e.g. large_string for a string view)
    tf = pa.array(encoded.tf, pa.float64())
    if len(values) != len(tf):  # an all-null column: no values, no frequencies
        values, tf = values.slice(0, 0), tf.slice(0, 0)
    unquoted = column_name.strip()
    if len(unquoted) >= 2 and unquoted[0] == unquoted[-1] == '"':
        unquoted = unquoted[1:-1]
    return pa.table({name: values, f"{tf_prefix}{unquoted}": pc.cast(tf, pa.float64())})


class LinkerTableManagement:
    """``linker.table_management``: Splink's term-frequency tables (gpulink keeps no database
    tables, so Splink's ``register_*``, ``invalidate_cache`` and the like are not here)."""

    def __init__(self, linker: Linker):
        self._linker = linker

    def compute_tf_table(self, column_name: str) -> LinkResult:
        """Splink's term-frequency table of an input column.

        Columns ``<column_name>`` (each distinct non-null value once) and
        ``tf_<column_name>`` (the model's ``term_frequency_adjustment_column_prefix``): the
        value's count divided by the number of non-null values, over every input record (all
        tables of a link job). Nulls (and NaN) are neither rows nor counted. Rows come in order
        of first appearance in id order (Splink's order is unspecified). The column may be
        named as in Splink: quoted, or in another case.

        >>> import gpulink as gl
        >>> import gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> settings = gl.SettingsCreator(link_type="dedupe_only",
        ...     comparisons=[cl.ExactMatch("city")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), settings, backend="cpu")
        >>> tf = linker.table_management.compute_tf_table("city")
        >>> tf.columns
        ['city', 'tf_city']
        >>> round(sum(tf.as_dict()["tf_city"]), 12)
        1.0
        """
        linker = self._linker
        return LinkResult(
            tf_table(
                linker._record_table(),
                column_name,
                tf_prefix=linker.settings.term_frequency_adjustment_column_prefix,
            )
        )


__all__ = [
    "LinkerTableManagement",
    "input_column_name",
    "record_tf",
    "term_frequency_column",
    "tf_table",
]
