"""Splink's named tables without a database: each linker's registry of named Arrow tables.

Splink keeps every table in its database under a *physical* name (``__splink__df_predict_``
followed by 9 hex digits, or the name a user gave) and knows each by a *templated* name too
(``__splink__df_predict``, ``__splink__df_labels``...). gpulink keeps no database, so a linker
keeps a :class:`TableRegistry` instead:

* tables the user registers (``linker.table_management.register_table``,
  ``register_table_predict``, ``register_labels_table``) are held until replaced;
* results the linker produces (predict, clusters, term-frequency tables, ``query_sql``) get
  Splink's names but are held *weakly*: one stays visible while the caller holds it (gpulink
  does not keep a copy of every prediction alive, as a database would), and
  ``delete_tables_created_by_splink_from_db()`` forgets them all, as Splink drops its own tables.

A name resolves to the table with that physical name, else the latest live table with that
templated name. :func:`query_sql` runs SQL over them with DuckDB (optional: ``pip install
duckdb``).

>>> import pyarrow as pa
>>> from gpulink.results import LinkResult
>>> reg = TableRegistry()
>>> t = reg.add(LinkResult(pa.table({"a": [1, 2]})), "my_table", physical_name="my_table")
>>> t.templated_name, t.physical_name, reg.get("my_table").as_dict()
('my_table', 'my_table', {'a': [1, 2]})
>>> p = reg.add(LinkResult(pa.table({"b": [3]})), "__splink__df_predict", produced=True)
>>> p.physical_name.startswith("__splink__df_predict_"), reg.get("__splink__df_predict") is p
(True, True)
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import weakref

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.errors import InputError, MissingDependency, SettingsError, TableExistsError
from gpulink.results import LinkResult

#: Splink's templated names of the tables gpulink's steps stand for.
PREDICT = "__splink__df_predict"
LABELS = "__splink__df_labels"
CLUSTERS = "__splink__df_clustered_with_input_data"
SQL_QUERY = "__splink__df_sql_query"

#: ``query_sql``'s ``output_type`` values (Splink's).
QUERY_OUTPUT_TYPES = ("splink_df", "splinkdf", "pandas")


def tf_table_name(column: str) -> str:
    """Splink's templated name of a term-frequency table (``colname_to_tf_tablename``).

    >>> tf_table_name('"first name"')
    '__splink__df_tf_first_name'
    """
    name = column.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('""', '"')
    return f"__splink__df_tf_{name.replace(' ', '_')}"


def _live(table) -> bool:
    """Whether a result still has its rows (``drop_table_from_database...`` releases them)."""
    return getattr(table, "_arrow", True) is not None


class TableRegistry:
    """One linker's named tables: ``add`` names a table, ``get`` finds one by name, ``views``
    lists every visible name with its Arrow table (for :func:`query_sql`)."""

    def __init__(self):
        self._user: dict[str, LinkResult] = {}  # physical name -> registered table
        self._produced: weakref.WeakValueDictionary[str, LinkResult] = weakref.WeakValueDictionary()
        self._seq: dict[str, int] = {}  # physical name -> when added (latest wins)
        self._counter = itertools.count()
        self._uid = secrets.token_hex(8)

    def new_physical_name(self, templated_name: str) -> str:
        """``<templated>_<9 hex digits>``, Splink's form, unique within this registry."""
        digest = hashlib.sha256(f"{self._uid}{next(self._counter)}".encode()).hexdigest()
        return f"{templated_name}_{digest[:9]}"

    def exists(self, name: str) -> bool:
        """Whether a live table has this physical name (Splink's ``table_exists_in_database``)."""
        table = self._user.get(name)
        if table is None:  # not ``or``: an empty table is falsy
            table = self._produced.get(name)
        return table is not None and _live(table)

    def add(
        self,
        table: LinkResult,
        templated_name: str,
        *,
        physical_name: str | None = None,
        produced: bool = False,
    ) -> LinkResult:
        """Name ``table`` (its ``templated_name``/``physical_name`` attributes are set) and keep
        it: weakly when the linker ``produced`` it, else until replaced. A new physical name is
        made unless one is given; a table already under that name is replaced."""
        physical_name = physical_name or self.new_physical_name(templated_name)
        table.templated_name = templated_name
        table.physical_name = physical_name
        self._user.pop(physical_name, None)
        self._produced.pop(physical_name, None)
        (self._produced if produced else self._user)[physical_name] = table
        self._seq[physical_name] = next(self._counter)
        return table

    def _entries(self) -> list[tuple[str, LinkResult]]:
        items = list(self._user.items()) + list(self._produced.items())
        items = [(name, t) for name, t in items if _live(t)]
        return sorted(items, key=lambda item: self._seq.get(item[0], -1))

    def get(self, name: str) -> LinkResult | None:
        """The live table with this physical name, else the latest with this templated name."""
        entries = self._entries()
        for physical, table in entries:
            if physical == name:
                return table
        for _, table in reversed(entries):
            if table.templated_name == name:
                return table
        return None

    def views(self) -> dict[str, pa.Table]:
        """Every visible name (physical names, and templated names no physical name shadows)
        with its Arrow table."""
        entries = self._entries()
        out = {physical: table.to_arrow() for physical, table in entries}
        for _, table in entries:  # in order: the latest of a templated name wins
            if table.templated_name not in {p for p, _ in entries}:
                out[table.templated_name] = table.to_arrow()
        return out

    def names(self) -> list[str]:
        """The visible names, sorted (for messages)."""
        return sorted(self.views())

    def forget_produced(self) -> None:
        """Forget the tables the linker produced (the caller's references stay usable)."""
        for name in list(self._produced.keys()):
            self._seq.pop(name, None)
        self._produced = weakref.WeakValueDictionary()


def _as_table(linker, data, what: str) -> tuple[pa.Table, str | None]:
    """The Arrow table of ``data`` and the physical name it already has (a table registered
    with a database API or with this linker), if any. A string is a table name registered with
    this linker, else a file path."""
    from gpulink.io import _is_registered_table, to_arrow

    if isinstance(data, str):
        found = linker._tables.get(data)
        if found is not None:
            return found.to_arrow(), found.physical_name
        from pathlib import Path

        if not Path(data).exists():
            raise InputError(
                f"{what}: no table named {data!r} is registered with this linker (tables: "
                f"{linker._tables.names() or 'none'}) and no file has that path; register it "
                f"first with linker.table_management.register_table(df, {data!r}), or pass "
                "the table itself"
            )
        return to_arrow(data, what=what), None
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return pa.Table.from_pylist(data), None  # Splink's record-level dictionary
    physical = getattr(data, "physical_name", None) if _is_registered_table(data) else None
    return to_arrow(data, what=what), physical if isinstance(physical, str) else None


def resolve(linker, data, what: str):
    """``data`` itself, or, for a string, the table of that name registered with (or produced
    by) this linker, as Splink's methods taking a ``SplinkDataFrame`` or a table name."""
    if not isinstance(data, str):
        return data
    found = linker._tables.get(data)
    if found is None:
        raise InputError(
            f"{what}: no table named {data!r} is registered with this linker (tables: "
            f"{linker._tables.names() or 'none'}); pass the result itself, or register a "
            "table with linker.table_management.register_table_predict(...)"
        )
    return found


def _missing_columns(linker, t: pa.Table, need: list[str], what: str, fix: str) -> None:
    missing = [c for c in need if c not in t.column_names]
    if missing:
        raise InputError(
            f"the {what} lacks the column(s) {missing} (its columns: {t.column_names[:30]}"
            f"{' ...' if len(t.column_names) > 30 else ''}); it needs {need}{fix}"
        )


def _id_columns(linker) -> tuple[list[str], bool]:
    s = linker.settings
    uid, sd = s.unique_id_column_name, s.source_dataset_column_name
    link = s.link_type != "dedupe_only"
    return [f"{uid}_l", f"{uid}_r"] + ([f"{sd}_l", f"{sd}_r"] if link else []), link


def prediction_from_table(linker, t: pa.Table):
    """A predictions table (ids ``_l``/``_r``, link jobs' source datasets ``_l``/``_r``, and
    ``match_probability`` to cluster at a threshold) as a
    :class:`~gpulink.linker.PredictionResult` of this linker: each id is located among the
    linker's records, and an id the input lacks is an InputError naming it."""
    from gpulink.accuracy import _record_keys
    from gpulink.linker import PredictionResult

    need, link = _id_columns(linker)
    _missing_columns(
        linker, t, need, "predictions table",
        " and match_probability to cluster at a threshold (the columns of "
        "linker.inference.predict()'s output)",
    )  # fmt: skip
    uid_l, uid_r = need[0], need[1]
    table = linker._record_table()
    keys = _record_keys(linker, table.unique_id, table.source_dataset)
    sides = []
    for uid, sd in ((uid_l, need[2] if link else None), (uid_r, need[3] if link else None)):
        side = pc.index_in(_record_keys(linker, t[uid], t[sd] if sd else None), keys)
        sides.append(side)
    ok = pc.and_(pc.is_valid(sides[0]), pc.is_valid(sides[1])).to_numpy(zero_copy_only=False)
    if not ok.all():
        first = int(np.flatnonzero(~ok)[0])
        named = {c: t[c][first].as_py() for c in need}
        raise InputError(
            f"{int((~ok).sum())} of the {t.num_rows} pairs of the predictions table name a record "
            f"this linker's input lacks (first: {named}); register predictions of this "
            "linker's records (same unique ids and source datasets)"
        )
    left = sides[0].to_numpy(zero_copy_only=False).astype(np.int64)
    right = sides[1].to_numpy(zero_copy_only=False).astype(np.int64)
    result = PredictionResult(t, left, right)
    result.linker_id = id(linker)
    return result


def check_labels_table(linker, t: pa.Table) -> pa.Table:
    """A labels table with Splink's columns (``unique_id_l``/``_r``, link jobs'
    ``source_dataset_l``/``_r``, ``clerical_match_score``, a number in [0, 1])."""
    need, _ = _id_columns(linker)
    need = need[:2] + ["clerical_match_score"] + need[2:]
    _missing_columns(
        linker, t, need, "labels table",
        " (source_dataset_l/_r may be left out for dedupe_only models), as Splink's "
        "register_labels_table",
    )  # fmt: skip
    score = t["clerical_match_score"]
    if not (pa.types.is_integer(score.type) or pa.types.is_floating(score.type)):
        raise InputError(
            f"the labels table's clerical_match_score has type {score.type}; it must hold "
            "numbers (1 for a match, 0 for a non-match, or a probability in between)"
        )
    return t


def register_table(linker, input_table, table_name: str, overwrite: bool = False) -> LinkResult:
    """Splink's ``register_table``: ``input_table`` under the name ``table_name`` (its
    templated and physical name); a live table of that name is a TableExistsError unless
    ``overwrite=True``. A string ``input_table`` names a table already registered here (the
    new name is then another name for it, as Splink's), else a file path."""
    if not isinstance(table_name, str) or not table_name:
        raise InputError(
            f"register_table: table_name must be a non-empty string, got {table_name!r}"
        )
    if linker._tables.exists(table_name) and not overwrite:
        raise TableExistsError(
            f"table {table_name!r} is already registered with this linker; pass overwrite=True "
            "to replace it, or register the table under another name"
        )
    data, _ = _as_table(linker, input_table, f"the table registered as {table_name!r}")
    return linker._tables.add(LinkResult(data), table_name, physical_name=table_name)


def query_sql(linker, sql: str, output_type: str = "splink_df"):
    """Splink's ``linker.misc.query_sql``: run ``sql`` with DuckDB over the linker's named
    tables (see the module); ``output_type`` ``"splink_df"``/``"splinkdf"`` (a named result,
    itself queryable afterwards) or ``"pandas"``."""
    if output_type not in QUERY_OUTPUT_TYPES:
        raise SettingsError(
            f"query_sql: output_type {output_type!r} is not supported; use one of "
            f"{', '.join(repr(t) for t in QUERY_OUTPUT_TYPES)} (Splink's), or call "
            ".to_arrow() on the 'splink_df' result for a pyarrow Table"
        )
    if not isinstance(sql, str):
        raise InputError(f"query_sql takes the SQL as a string, got {type(sql).__name__}")
    try:
        import duckdb
    except ImportError:
        raise MissingDependency(
            "linker.misc.query_sql runs SQL with DuckDB, which is not installed; "
            "pip install duckdb (or pip install 'gpulink[sql]')"
        ) from None
    views = linker._tables.views()
    con = duckdb.connect()
    try:
        for name, table in views.items():
            con.register(name, table)
        try:
            relation = con.sql(sql)
            if relation is None:
                raise InputError(
                    "query_sql: the SQL returned no rows (a statement, not a query); gpulink "
                    "runs each query on a fresh DuckDB connection over the linker's tables, so "
                    "write a SELECT"
                )
            fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
            out = fetch()
        except duckdb.Error as exc:
            raise InputError(
                f"query_sql: DuckDB could not run the SQL ({exc}); the tables it sees are this "
                f"linker's named tables: {sorted(views) or 'none'} (results the linker produced "
                "are visible while you hold them; register others with "
                "linker.table_management.register_table(df, name))"
            ) from exc
    finally:
        con.close()
    if output_type == "pandas":
        return out.to_pandas()
    return linker._tables.add(LinkResult(out), SQL_QUERY, produced=True)


__all__ = [
    "CLUSTERS",
    "LABELS",
    "PREDICT",
    "QUERY_OUTPUT_TYPES",
    "SQL_QUERY",
    "TableRegistry",
    "check_labels_table",
    "prediction_from_table",
    "query_sql",
    "register_table",
    "resolve",
    "tf_table_name",
]
