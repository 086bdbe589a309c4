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
  array as sorted, de-duplicated int32 element codes into a per-column element dictionary.
* ``tf[k] = count(value k) / count(non-null)`` over all input records (Splink's term frequency).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

COLUMN_KINDS = ("string", "number", "date", "timestamp", "array")


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

    @property
    def n_values(self) -> int:
        return len(self.dictionary)


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

    @property
    def n_records(self) -> int:
        return len(self.unique_id)

    def column(self, expression: str) -> EncodedColumn:
        """The encoded column for ``expression`` (raw name or derived expression)."""
        from gpulink.expressions import canonical

        return self.columns[canonical(expression)]
