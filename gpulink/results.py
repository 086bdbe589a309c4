"""Result objects: Arrow tables with the conversions users expect.

>>> import pyarrow as pa
>>> r = LinkResult(pa.table({"unique_id_l": [1], "unique_id_r": [2]}))
>>> len(r), r.to_pandas().shape
(1, (1, 2))
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gpulink.io import atomic_output


def write_parquet_atomically(table: pa.Table, path: str | os.PathLike) -> Path:
    """Write ``table`` to ``path`` through a temporary file renamed when complete; a path that
    cannot be written is an InputError naming it (see :func:`gpulink.io.atomic_output`)."""
    with atomic_output(path, what="parquet file") as tmp:
        pq.write_table(table, tmp)
    return Path(path)


class LinkResult:
    """An Arrow-backed result (scored pairs, clusters): ``to_arrow()``, ``to_pandas()``...

    On the GPU backend ``to_cupy()`` gives the numeric columns as device arrays and ``to_cudf()``
    a cudf DataFrame when cudf is installed.
    """

    def __init__(self, table: pa.Table, *, device_columns: dict | None = None):
        self._table = table
        self._device_columns = device_columns or {}

    def to_arrow(self) -> pa.Table:
        """The result as a ``pyarrow.Table``."""
        return self._table

    def to_pandas(self):
        """The result as a pandas DataFrame."""
        return self._table.to_pandas()

    as_pandas_dataframe = to_pandas

    def as_record_dict(self, limit: int | None = None) -> list[dict]:
        """The rows as a list of dicts (Splink's name), optionally the first ``limit``."""
        table = self._table if limit is None else self._table.slice(0, limit)
        return table.to_pylist()

    def to_parquet(self, path: str | os.PathLike) -> Path:
        """Write the result to a parquet file, atomically."""
        return write_parquet_atomically(self._table, path)

    def to_cupy(self) -> dict:
        """Numeric columns as CuPy device arrays (names -> arrays)."""
        import cupy

        out = dict(self._device_columns)
        for name in self._table.column_names:
            if (
                name not in out
                and pa.types.is_integer(self._table.schema.field(name).type)
                or (name not in out and pa.types.is_floating(self._table.schema.field(name).type))
            ):
                out[name] = cupy.asarray(self._table.column(name).to_numpy())
        return out

    def to_cudf(self):
        """The result as a cudf DataFrame (needs cudf)."""
        try:
            import cudf
        except ImportError as exc:  # pragma: no cover - cudf is optional
            from gpulink.errors import BackendUnavailable

            raise BackendUnavailable(
                "to_cudf() needs cudf; install RAPIDS cudf, or use to_arrow()/to_cupy()"
            ) from exc
        return cudf.DataFrame.from_arrow(self._table)

    @property
    def columns(self) -> list[str]:
        return self._table.column_names

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self)} rows, columns {self.columns}>"
