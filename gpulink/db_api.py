"""``DuckDBAPI``: Splink's database API, so that Splink code runs after an import change.

gpulink runs its own kernels on Arrow tables and needs no database. This class takes the place of
``splink.DuckDBAPI`` in code such as::

    db_api = DuckDBAPI()
    df_sdf = db_api.register(df)                      # or [register(a), register(b)] to link
    linker = Linker(df_sdf, settings)

Its constructor accepts Splink's arguments (``connection``, ``output_schema``,
``materialisation``, ...) and ignores them; DuckDB is not imported. ``register`` reads the table
(anything :func:`gpulink.io.to_arrow` reads: a DataFrame, an Arrow table, a parquet or CSV path,
a DuckDB relation) and returns a :class:`RegisteredTable` that remembers the dataset name Splink
would give it: ``dataset_display_name``, else ``table_name``, else ``__splink__input_table_<n>``
counted per API object, as Splink counts. Linking a list of registered tables puts those names in
the ``source_dataset`` column, as Splink does. gpulink also accepts Splink's own registered tables
(``splink.DuckDBAPI().register(df)``) and plain DataFrames, so registering is optional.

>>> import pandas as pd
>>> db_api = DuckDBAPI()
>>> a = db_api.register(pd.DataFrame({"unique_id": [1, 2]}))
>>> b = db_api.register(pd.DataFrame({"unique_id": [1]}), dataset_display_name="crm")
>>> a.dataset_display_name, b.dataset_display_name, b.as_pyarrow_table().num_rows
('__splink__input_table_0', 'crm', 1)
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from gpulink.errors import InputError
from gpulink.io import default_dataset_name, to_arrow

__all__ = ["DuckDBAPI", "RegisteredTable"]


class RegisteredTable:
    """A table registered with :class:`DuckDBAPI`: its Arrow data and its dataset name.

    Plays the part of Splink's ``SplinkDataFrame`` as an input: ``templated_name`` /
    ``physical_name`` (the table name), ``dataset_display_name`` (the ``source_dataset`` value in
    link jobs), ``as_pyarrow_table()``, ``as_pandas_dataframe()``, ``columns`` (names).

    >>> t = RegisteredTable(pa.table({"unique_id": [1, 2, 3]}), "people")
    >>> len(t), t.columns, t.as_pyarrow_table(limit=2).num_rows
    (3, ['unique_id'], 2)
    """

    def __init__(
        self, table: pa.Table, templated_name: str, dataset_display_name: str | None = None
    ):
        self._table = table
        self.templated_name = templated_name
        self.physical_name = templated_name
        self.dataset_display_name = dataset_display_name or templated_name

    @property
    def columns(self) -> list[str]:
        return list(self._table.column_names)

    def as_pyarrow_table(self, limit: int | None = None) -> pa.Table:
        """The table (its first ``limit`` rows when given) as a pyarrow Table."""
        return self._table if limit is None else self._table.slice(0, limit)

    def as_pandas_dataframe(self, limit: int | None = None):
        """The table (its first ``limit`` rows when given) as a pandas DataFrame."""
        return self.as_pyarrow_table(limit).to_pandas()

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        return (
            f"RegisteredTable({self.templated_name!r}, "
            f"dataset_display_name={self.dataset_display_name!r}, rows={len(self)})"
        )


class DuckDBAPI:
    """Splink's ``DuckDBAPI``, accepted and ignored: gpulink uses no database.

    ``connection``, ``output_schema`` and every keyword Splink's constructor takes are accepted
    and not used. :meth:`register` reads a table and names it as Splink does.

    >>> import pyarrow as pa
    >>> DuckDBAPI(connection=":memory:").register(pa.table({"unique_id": [1]}), table_name="t")
    RegisteredTable('t', dataset_display_name='t', rows=1)
    """

    def __init__(self, connection: Any = ":memory:", output_schema: str | None = None, **kwargs):
        self.connection = connection
        self.output_schema = output_schema
        self._input_table_counter = 0
        self._registered_table_names: set[str] = set()

    def register(
        self,
        table,
        *,
        dataset_display_name: str | None = None,
        table_name: str | None = None,
    ) -> RegisteredTable:
        """Read ``table`` (DataFrame, Arrow table, path, ...) and name it as Splink's ``register``.

        The name is ``table_name``, else ``dataset_display_name``, else
        ``__splink__input_table_<n>`` (n counts this API's unnamed tables from 0); the dataset
        name (``source_dataset`` in link jobs) is ``dataset_display_name``, else that name.
        """
        if table_name is None and dataset_display_name is None:
            table_name = default_dataset_name(self._input_table_counter)
            self._input_table_counter += 1
        name = table_name or dataset_display_name
        assert name is not None
        if name in self._registered_table_names:
            raise InputError(
                f"a table has already been registered with table_name={name!r}; each registered "
                f"table needs its own name (pass table_name=... or dataset_display_name=...)"
            )
        data = to_arrow(table, what=f"the table registered as {name!r}")
        self._registered_table_names.add(name)
        return RegisteredTable(data, name, dataset_display_name or name)

    def __repr__(self) -> str:
        return "gpulink.DuckDBAPI(accepted and ignored: gpulink uses no database)"
