"""Result objects: Arrow tables with the conversions users expect.

>>> import pyarrow as pa
>>> r = LinkResult(pa.table({"unique_id_l": [1], "unique_id_r": [2]}))
>>> len(r), r.to_pandas().shape, r.as_pandas_dataframe(limit=1).shape
(1, (1, 2), (1, 2))
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gpulink.errors import InputError
from gpulink.io import atomic_output


def write_parquet_atomically(table: pa.Table, path: str | os.PathLike) -> Path:
    """Write ``table`` to ``path`` through a temporary file renamed when complete; a path that
    cannot be written is an InputError naming it (see :func:`gpulink.io.atomic_output`)."""
    return _write_atomically(table, path, pq.write_table, "parquet file")


def _write_csv(table: pa.Table, path: str) -> None:
    import pyarrow.csv as pcsv

    pcsv.write_csv(table, path, write_options=pcsv.WriteOptions(quoting_style="needed"))


def _write_atomically(table: pa.Table, path: str | os.PathLike, write, what: str) -> Path:
    with atomic_output(path, what=what) as tmp:
        write(table, tmp)
    return Path(path)


def _refuse_existing(filepath: str | os.PathLike, overwrite: bool) -> None:
    if not overwrite and Path(filepath).exists():
        # Splink's SplinkDataFrame.check_file_exists message
        raise FileExistsError(
            f"The filepath you've supplied ({os.fspath(filepath)}) already exists. Please use "
            "either `overwrite = True` or manually move or delete the existing file."
        )


class LinkResult:
    """An Arrow-backed result (scored pairs, clusters) with Splink's ``SplinkDataFrame`` methods.

    ``as_pandas_dataframe(limit=)``, ``as_pyarrow_table(limit=)``, ``as_record_list(limit=)``,
    ``as_dict(limit=)``, ``to_parquet(path, overwrite=False)``, ``to_csv(path,
    overwrite=False)``, ``metadata`` and ``drop_table_from_database_and_remove_from_cache()``
    behave as Splink's (``limit`` of None or 0 means every row; writing refuses an existing file
    unless ``overwrite=True``). ``to_arrow()`` / ``to_pandas()`` give the whole table. On the GPU
    backend ``to_cupy()`` gives the numeric columns as device arrays and ``to_cudf()`` a cudf
    DataFrame when cudf is installed. Results a linker names (predict's, the clusters',
    registered tables: see :mod:`gpulink.named_tables`) carry Splink's ``templated_name`` and
    ``physical_name``, under which ``linker.misc.query_sql`` sees them; nothing here needs a
    database, and ``as_duckdbpyrelation()`` is not provided.

    >>> r = LinkResult(pa.table({"unique_id_l": [1, 3], "unique_id_r": [2, 4]}))
    >>> r.as_record_list(limit=1), r.as_dict()
    ([{'unique_id_l': 1, 'unique_id_r': 2}], {'unique_id_l': [1, 3], 'unique_id_r': [2, 4]})
    """

    def __init__(
        self, table: pa.Table, *, device_columns: dict | None = None, metadata: dict | None = None
    ):
        self._arrow = table
        self._device_columns = device_columns or {}
        #: Splink's ``SplinkDataFrame.metadata`` (clusters carry ``threshold_match_probability``).
        self.metadata: dict = dict(metadata or {})

    @property
    def _table(self) -> pa.Table:
        if self._arrow is None:
            raise InputError(
                "this result was dropped (drop_table_from_database_and_remove_from_cache); "
                "keep a reference to its to_arrow() table if you need the rows afterwards"
            )
        return self._arrow

    def to_arrow(self) -> pa.Table:
        """The result as a ``pyarrow.Table``."""
        return self._table

    def to_pandas(self):
        """The result as a pandas DataFrame."""
        return self._table.to_pandas()

    def _head(self, limit: int | None) -> pa.Table:
        # Splink's ``if limit:``: None and 0 both mean every row.
        return self._table.slice(0, int(limit)) if limit else self._table

    def as_pyarrow_table(self, limit: int | None = None) -> pa.Table:
        """The first ``limit`` rows (all with None) as a ``pyarrow.Table`` (Splink's name)."""
        return self._head(limit)

    def as_pandas_dataframe(self, limit: int | None = None):
        """The first ``limit`` rows (all with None) as a pandas DataFrame (Splink's name)."""
        return self._head(limit).to_pandas()

    def as_record_list(self, limit: int | None = None) -> list[dict]:
        """The first ``limit`` rows (all with None) as a list of dicts (Splink's name)."""
        return self._head(limit).to_pylist()

    #: gpulink's earlier name for :meth:`as_record_list`.
    as_record_dict = as_record_list

    def as_dict(self, limit: int | None = None) -> dict[str, list]:
        """The first ``limit`` rows (all with None) as ``{column: values}`` (Splink's name)."""
        return self._head(limit).to_pydict()

    def to_parquet(self, filepath: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the result to a parquet file, atomically (parent folders are created).

        As Splink's: an existing file raises ``FileExistsError`` unless ``overwrite=True``.
        """
        _refuse_existing(filepath, overwrite)
        return write_parquet_atomically(self._table, filepath)

    def to_csv(self, filepath: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the result to a CSV file with a header row, atomically (nulls are empty fields).

        As Splink's: an existing file raises ``FileExistsError`` unless ``overwrite=True``.
        """
        _refuse_existing(filepath, overwrite)
        return _write_atomically(self._table, filepath, _write_csv, "CSV file")

    def drop_table_from_database_and_remove_from_cache(self, force_non_splink_table=False):
        """Release the rows (Splink's name); using the result afterwards raises."""
        self._arrow = None
        self._device_columns = {}

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
