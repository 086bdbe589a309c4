"""Input normalisation: whatever the user passes becomes one Arrow table, checked.

Accepted: a pandas / polars / cudf / dask DataFrame, a pyarrow Table, RecordBatch or
RecordBatchReader, a parquet file or directory, a CSV file (``str`` or ``Path``), anything with
``to_arrow()``, anything that exports an Arrow stream (``__arrow_c_stream__``: a DuckDB relation),
a table registered with a database API (Splink's ``db_api.register(df)``, a ``SplinkDataFrame``,
or gpulink's :class:`~gpulink.db_api.DuckDBAPI`; read as Arrow, duck-typed so that Splink stays
optional); for link jobs a list (or a ``{name: table}`` dict) of these. As in Splink, a list of
several tables is concatenated with a ``source_dataset`` column whose values are the tables' names:
a registered table's ``dataset_display_name`` (the name ``register`` gave it), else
``__splink__input_table_0``, ``__splink__input_table_1``... by position (the names Splink's
``db_api.register`` gives unnamed tables). A single table that already has the source dataset
column can be linked too.

Checks, each with an :class:`~gpulink.errors.InputError` that names the column or value and the fix:
the unique id column exists, has no nulls and is unique (within each source dataset for link jobs);
``link_only`` has at least two datasets; :func:`check_columns` checks that the model's columns exist
(suggesting close names) and have usable types.

Null semantics: pandas NaN and None become null (as DuckDB reads a pandas frame); empty strings stay
empty strings, not null, as in Splink; an empty field of a CSV file is null (as pandas and DuckDB
read it).

>>> import pandas as pd
>>> t = normalise_input([pd.DataFrame({"unique_id": [1, 2]}), pd.DataFrame({"unique_id": [1]})],
...                     link_type="link_only")
>>> t.column("source_dataset").to_pylist()
['__splink__input_table_0', '__splink__input_table_0', '__splink__input_table_1']
"""

from __future__ import annotations

import contextlib
import difflib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.errors import InputError

__all__ = [
    "DEFAULT_SOURCE_DATASET_COLUMN",
    "LINK_TYPES",
    "atomic_output",
    "check_columns",
    "check_output_path",
    "default_dataset_name",
    "normalise_input",
    "split_inputs",
    "to_arrow",
    "vertical_concat",
]

DEFAULT_SOURCE_DATASET_COLUMN = "source_dataset"
LINK_TYPES = ("dedupe_only", "link_only", "link_and_dedupe")
#: Schema metadata set when :func:`normalise_input` added the source dataset column (Splink's
#: clustering output then lists it after the input's own columns); the value is its name.
ADDED_SOURCE_COLUMN_KEY = b"gpulink.added_source_dataset_column"


def default_dataset_name(i: int) -> str:
    """The name Splink gives the ``i``-th unnamed input table (``db_api.register``).

    >>> default_dataset_name(1)
    '__splink__input_table_1'
    """
    return f"__splink__input_table_{i}"


def _from_columns(columns: dict) -> pa.Table:
    """A table from a dict of columns (lists or arrays), naming a column Arrow cannot type."""
    try:
        return pa.table(columns)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        for name, values in columns.items():
            try:
                pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise InputError(
                    f"column {name!r} of the dict mixes types ({exc}); give it one type, with "
                    "None for missing values (a pandas frame's to_dict() turns them into NaN: "
                    "pass the DataFrame itself instead)"
                ) from None
        raise InputError(f"the dict of columns cannot be made a table: {exc}") from None


def to_arrow(data, *, what: str = "input") -> pa.Table:
    """Convert one input (frame, Arrow object, file path) to a ``pa.Table``, without checks.

    >>> to_arrow({"a": [1, 2]}).num_rows
    2
    """
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif isinstance(data, pa.RecordBatchReader):
        table = data.read_all()
    elif isinstance(data, (str, os.PathLike)):
        table = _read_path(Path(data), what)
    elif _is_pandas(data):
        table = _from_pandas(data)
    elif _is_registered_table(data):  # Splink's SplinkDataFrame, gpulink's RegisteredTable
        table = data.as_pyarrow_table()  # DuckDB: Arrow straight from the engine, no pandas
    elif hasattr(data, "to_arrow"):  # polars, cudf, our own results
        table = data.to_arrow()
        if isinstance(table, pa.RecordBatchReader):
            table = table.read_all()
    elif hasattr(data, "__arrow_c_stream__"):  # a DuckDB relation, any Arrow stream exporter
        table = pa.RecordBatchReader.from_stream(data).read_all()
    elif hasattr(data, "compute") and hasattr(data, "npartitions"):  # dask
        return to_arrow(data.compute(), what=what)
    elif isinstance(data, Mapping):
        table = _from_columns(dict(data))
    else:
        raise InputError(
            f"cannot read {what} of type {type(data).__name__}; pass a pandas, polars or cudf "
            f"DataFrame, a pyarrow Table, a table from db_api.register(...), or the path of a "
            f"parquet or CSV file"
        )
    if not isinstance(table, pa.Table):
        raise InputError(f"{what}: to_arrow() returned {type(table).__name__}, not a pyarrow Table")
    return _normalise_types(table)


def _is_registered_table(data) -> bool:
    """A table registered with a database API: Splink's SplinkDataFrame or gpulink's stand-in."""
    return callable(getattr(data, "as_pyarrow_table", None)) and hasattr(data, "templated_name")


def _registered_name(data) -> str | None:
    """The dataset name ``db_api.register`` gave ``data`` (Splink's source dataset value)."""
    if not _is_registered_table(data):
        return None
    name = getattr(data, "dataset_display_name", None) or data.templated_name
    return name if isinstance(name, str) else None


def _is_pandas(data) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return False
    return isinstance(data, pd.DataFrame)


def _from_pandas(df) -> pa.Table:
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()][0]
        raise InputError(f"the DataFrame has two columns named {dup!r}; rename one of them")
    try:
        # preserve_index=False: the index is not data (Splink ignores it too); NaN -> null
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        bad = _first_unconvertible_column(df)
        where = f"column {bad!r}" if bad else "a column"
        raise InputError(
            f"{where} of the DataFrame cannot be converted to Arrow ({exc}); give it one type "
            f"(e.g. df[{bad!r}] = df[{bad!r}].astype('string'))"
        ) from None


def _first_unconvertible_column(df) -> str | None:
    for name in df.columns:
        try:
            pa.Array.from_pandas(df[name])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return str(name)
    return None


def _read_path(path: Path, what: str = "input") -> pa.Table:
    label = "input path" if what.startswith("input") else what
    if not path.exists():
        raise InputError(f"{label} {str(path)!r} does not exist")
    name = path.name.lower()
    if path.is_dir() or name.endswith((".parquet", ".pq", ".parq")):
        import pyarrow.parquet as pq

        try:
            if path.is_dir():
                return pq.read_table(path)
            # one file: ParquetFile reads it without pyarrow.dataset (and Acero) loaded
            return pq.ParquetFile(path).read()
        except (pa.ArrowException, OSError) as exc:
            if path.is_dir():
                others = sorted(
                    f.name
                    for f in path.iterdir()
                    if f.is_file() and not f.name.startswith(("_", "."))
                    and not f.name.lower().endswith((".parquet", ".pq", ".parq"))
                )  # fmt: skip
                why = f"it holds {others[0]!r}" if others else _first_line(exc)
                raise InputError(
                    f"{label} {str(path)!r} is not a folder of parquet files ({why}); give a "
                    f"folder that holds only parquet files, or one parquet or CSV file"
                ) from None
            raise InputError(
                f"{label} {str(path)!r} cannot be read as parquet: {_first_line(exc)}; give a "
                f"parquet file (or a .csv file)"
            ) from None
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")):
        import pyarrow.csv as pcsv

        delimiter = "\t" if ".tsv" in name else ","
        try:
            return pcsv.read_csv(
                path,
                parse_options=pcsv.ParseOptions(delimiter=delimiter),
                # empty fields are null, as pandas.read_csv and DuckDB's read_csv make them
                convert_options=pcsv.ConvertOptions(strings_can_be_null=True),
            )
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                f"{label} {str(path)!r} cannot be read as CSV: {_first_line(exc)}; fix the file "
                f"or read it yourself and pass a DataFrame"
            ) from None
    raise InputError(
        f"cannot tell the format of {label} {str(path)!r}; use a .parquet or .csv file (or a "
        f"directory of parquet files), or read it yourself and pass a DataFrame"
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")


def _normalise_types(table: pa.Table) -> pa.Table:
    """Make string views plain strings (pyarrow.compute supports them only partly) and NaN null."""
    changed = False
    arrays, fields = [], []
    for fld, col in zip(table.schema, table.columns):
        t = fld.type
        if pa.types.is_string_view(t):
            col, t, changed = col.cast(pa.large_string()), pa.large_string(), True
        elif pa.types.is_binary_view(t):
            col, t, changed = col.cast(pa.large_binary()), pa.large_binary(), True
        elif pa.types.is_floating(t) and col.null_count < len(col):
            # NaN is null, as DuckDB reads pandas (Splink's most common input)
            nan = pc.is_nan(col)
            if pc.any(nan).as_py():
                col = pc.if_else(nan, pa.scalar(None, t), col)
                changed = True
        arrays.append(col)
        fields.append(pa.field(fld.name, t, fld.nullable))
    if not changed:
        return table
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=table.schema.metadata))


def split_inputs(data) -> tuple[list, list[str] | None]:
    """The input tables in ``data`` and their dataset names (``None`` for a single table).

    A list (or tuple) holds tables named as Splink names them (a registered table's
    ``dataset_display_name``, else ``__splink__input_table_<i>``); a ``{name: table}`` dict names
    its own; anything else is one table (a dict of column lists is one table too).

    >>> import pyarrow as pa
    >>> t = pa.table({"a": [1]})
    >>> split_inputs([t, t])[1], split_inputs({"crm": t})[1], split_inputs(t)[1]
    (['__splink__input_table_0', '__splink__input_table_1'], ['crm'], None)
    """
    if (
        isinstance(data, Mapping)
        and data
        and all(isinstance(k, str) for k in data)
        and not all(isinstance(v, (list, np.ndarray)) for v in data.values())
    ):
        return list(data.values()), list(data.keys())
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        items = list(data)
        return items, [_registered_name(x) or default_dataset_name(i) for i, x in enumerate(items)]
    return [data], None


def normalise_input(
    data,
    *,
    unique_id_column: str = "unique_id",
    source_dataset_column: str | None = None,
    link_type: str = "dedupe_only",
) -> pa.Table:
    """Turn the user's input into one checked Arrow table (see the module docstring).

    For link jobs the result has the source dataset column (``source_dataset_column``, default
    ``"source_dataset"``) as its first column when it was added here, as Splink adds it.

    >>> import pyarrow as pa
    >>> normalise_input(pa.table({"unique_id": ["a", "b"], "x": [1, 2]})).num_rows
    2
    """
    if link_type not in LINK_TYPES:
        raise InputError(f"unknown link_type {link_type!r}; use one of {', '.join(LINK_TYPES)}")
    sd_col = source_dataset_column or DEFAULT_SOURCE_DATASET_COLUMN
    items, names = split_inputs(data)
    if not items:
        raise InputError("no input tables were given; pass a DataFrame or a list of them")
    tables = [to_arrow(x, what=f"input table {i}") for i, x in enumerate(items)]
    empty = [names[i] if names else i for i, t in enumerate(tables) if t.num_rows == 0]
    if link_type == "link_only" and len(tables) > 1 and len(tables) - len(empty) < 2:
        raise InputError(
            f"link_type='link_only' needs records in at least two datasets, but input "
            f"table(s) {', '.join(map(repr, empty))} are empty"
        )
    if len(tables) == 1 and names is None:
        table = tables[0]
        if link_type != "dedupe_only" and sd_col not in table.column_names:
            if link_type == "link_only":
                raise InputError(
                    f"link_type='link_only' needs at least two datasets: pass a list of tables, "
                    f"or one table with a {sd_col!r} column naming each record's dataset"
                )
            name = _registered_name(data) or default_dataset_name(0)
            table = _add_source_column(table, sd_col, name)
    else:
        table = _concatenate(tables, names, sd_col, link_type)
    if sd_col in table.column_names and sd_col not in tables[0].column_names:
        meta = {**(table.schema.metadata or {}), ADDED_SOURCE_COLUMN_KEY: sd_col.encode()}
        table = table.replace_schema_metadata(meta)

    _check_unique_id(table, unique_id_column, sd_col if link_type != "dedupe_only" else None)
    if link_type != "dedupe_only":
        _check_source_dataset(table, sd_col, link_type)
    return table


def _add_source_column(table: pa.Table, name: str, value: str) -> pa.Table:
    col = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(table.num_rows, np.int32)), pa.array([value])
    ).dictionary_decode()
    return table.add_column(0, name, col)


def _concatenate(tables: list[pa.Table], names: list[str] | None, sd_col: str, link_type: str):
    """Splink's vertical concatenation: the first table's columns, a source dataset column."""
    first = tables[0].column_names
    for i, t in enumerate(tables[1:], start=1):
        if set(t.column_names) != set(first):
            missing = sorted(set(first) - set(t.column_names))
            extra = sorted(set(t.column_names) - set(first))
            raise InputError(
                f"input table {i} does not have the columns of input table 0 "
                f"(missing: {missing}, extra: {extra}); all inputs need the same columns"
            )
    has_sd = [sd_col in t.column_names for t in tables]
    if any(has_sd) and not all(has_sd):
        raise InputError(
            f"some input tables have a {sd_col!r} column and some do not; give it to all or none"
        )
    if len(set(names or [])) != len(names or []):
        raise InputError(f"input table names must be distinct, got {names}")
    if not all(has_sd):
        assert names is not None
        tables = [_add_source_column(t, sd_col, n) for t, n in zip(tables, names)]
        first = [sd_col, *first]
    return vertical_concat(tables, first)


def vertical_concat(tables: Sequence[pa.Table], columns: Sequence[str]) -> pa.Table:
    """``columns`` of every table, one table under the other (Splink's ``union all``): types
    that differ between tables are promoted (``int64`` and ``double`` give ``double``).

    The tables must hold ``columns``; an :class:`~gpulink.errors.InputError` says which types
    cannot be combined.

    >>> a, b = pa.table({"x": [1], "y": ["p"]}), pa.table({"y": ["q"], "x": [2.5]})
    >>> vertical_concat([a, b], ["x"]).column("x").to_pylist()
    [1.0, 2.5]
    """
    parts = _unify_schemas([t.select(list(columns)) for t in tables])
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(
            f"the input tables' column types cannot be combined ({exc}); give each column the "
            f"same type in every table"
        ) from None


def _unify_schemas(tables: list[pa.Table]) -> list[pa.Table]:
    """Decode dictionaries and widen strings where the tables disagree, so concat can promote."""
    out = list(tables)
    for name in tables[0].column_names:
        types = {t.schema.field(name).type for t in tables}
        if len(types) == 1:
            continue
        target = None
        if any(pa.types.is_dictionary(t) for t in types):
            values = {t.value_type if pa.types.is_dictionary(t) else t for t in types}
            if all(pa.types.is_string(v) or pa.types.is_large_string(v) for v in values):
                target = pa.large_string()
        elif all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in types):
            target = pa.large_string()
        if target is not None:
            for i, t in enumerate(out):
                j = t.schema.get_field_index(name)
                out[i] = t.set_column(j, name, t.column(j).cast(target))
    return out


def _check_unique_id(
    table: pa.Table, uid: str, sd_col: str | None, *, check_duplicates: bool = True
) -> None:
    if uid not in table.column_names:
        raise InputError(
            f"the unique id column {uid!r} is missing{_did_you_mean(uid, table.column_names)}; "
            f"set unique_id_column_name or add a column of unique record ids"
        )
    col = table.column(uid)
    t = col.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if not (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise InputError(
            f"the unique id column {uid!r} has type {t}; unique ids must be integers or strings "
            f"(cast it, e.g. df[{uid!r}] = df[{uid!r}].astype('string'))"
        )
    if col.null_count:
        first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(
            f"the unique id column {uid!r} has {col.null_count} null values (first at row "
            f"{first}); every record needs an id"
        )
    if not check_duplicates:
        return
    by_dataset = sd_col is not None and sd_col in table.column_names
    keys = _id_keys(col, table.column(sd_col) if by_dataset else None)
    if len(pc.unique(keys)) == len(keys):
        return
    # value_counts, not group_by: a hash kernel, without loading Acero's libraries (+50 MiB)
    counts = pc.value_counts(keys)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    row = table.slice(pc.index(keys, dup.field("values")[0]).as_py(), 1)
    where = f" in source dataset {row[sd_col][0].as_py()!r}" if by_dataset else ""
    raise InputError(
        f"the unique id column {uid!r} has {len(dup)} duplicated values{where} (first: "
        f"{row[uid][0].as_py()!r}, {dup.field('counts')[0].as_py()} times); ids must be unique"
        f"{' within each source dataset' if by_dataset else ''}: deduplicate the rows "
        f"or create a new id column"
    )


def _id_keys(uid: pa.ChunkedArray, source_dataset: pa.ChunkedArray | None) -> pa.Array:
    """One hashable key per record: the id, or (source dataset, id) as one string."""
    if source_dataset is None:
        return uid.combine_chunks()
    sd = pc.cast(source_dataset, pa.large_string())
    # the unit separator cannot be confused with text a source dataset name holds
    separator = pa.scalar("\x1f", pa.large_string())
    return pc.binary_join_element_wise(
        sd, pc.cast(uid, pa.large_string()), separator
    ).combine_chunks()


def _check_source_dataset(table: pa.Table, sd_col: str, link_type: str) -> None:
    col = table.column(sd_col)
    if col.null_count:
        raise InputError(
            f"the source dataset column {sd_col!r} has {col.null_count} null values; every "
            f"record needs the name of its dataset"
        )
    n = len(pc.unique(col))
    if link_type == "link_only" and n < 2:
        raise InputError(
            f"link_type='link_only' needs at least two datasets, but column {sd_col!r} has {n} "
            f"distinct value(s); pass a list of tables or use link_type='dedupe_only'"
        )


_USABLE = (
    "strings, integers, floats, booleans, decimals, dates, timestamps, lists of strings, integers "
    "or floats"
)


def _usable_type(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _usable_type(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        v = t.value_type
        return (
            pa.types.is_string(v)
            or pa.types.is_large_string(v)
            or pa.types.is_integer(v)
            or pa.types.is_float32(v)
            or pa.types.is_float64(v)
        )
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_date(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_null(t)
    )


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    lower = [c for c in candidates if c.lower() == name.lower() and c not in close]
    close = lower + close
    return f" (did you mean {', '.join(map(repr, close))}?)" if close else ""


def find_column(available: Sequence[str], name: str) -> str | None:
    """The column of ``available`` that ``name`` names, as DuckDB resolves it: exactly, else
    case-insensitively when that picks one column; None when there is none.

    >>> find_column(["Surname", "dob"], "surname"), find_column(["a", "A"], "b")
    ('Surname', None)
    """
    if name in available:
        return name
    folded = [c for c in available if c.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def check_columns(table: pa.Table, required: Sequence[str], *, used_by: str = "the model") -> None:
    """Check that every column in ``required`` exists in ``table`` with a usable type.

    Raises :class:`~gpulink.errors.InputError` naming the column, suggesting close names for a
    missing one, or saying which types work for an unusable one.

    >>> import pyarrow as pa
    >>> check_columns(pa.table({"first_name": ["a"]}), ["first_nme"])
    Traceback (most recent call last):
    ...
    gpulink.errors.InputError: column 'first_nme' used by the model is missing from the input (did you mean 'first_name'?); the input has columns: first_name
    """
    names = table.column_names
    for col in required:
        if col not in names:
            shown = ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")
            raise InputError(
                f"column {col!r} used by {used_by} is missing from the input"
                f"{_did_you_mean(col, names)}; the input has columns: {shown}"
            )
        t = table.schema.field(col).type
        if not _usable_type(t):
            raise InputError(
                f"column {col!r} used by {used_by} has type {t}, which gpulink cannot compare; "
                f"usable types are {_USABLE}: convert it (e.g. to a string) or leave it out"
            )


# --------------------------------------------------------------------------------------------
# Outputs: checked before any work, written atomically
# --------------------------------------------------------------------------------------------


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe_writable(folder: Path) -> str | None:
    """Why no file can be created in ``folder`` (None if one can). A real try: os.access says
    yes to root where creating a file fails (e.g. /proc)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".gpulink-probe-", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(probe)
    return None


def check_output_path(
    path: str | os.PathLike, *, what: str = "output", directory: bool = False
) -> Path:
    """Check, before any work starts, that ``path`` can be written; return it as a ``Path``.

    A file output must not be an existing folder; a folder output (``directory=True``) must not
    be an existing file. Missing parent folders are fine (they are created when the output is
    written) if the nearest existing one is a folder in which files can be created. Raises
    :class:`~gpulink.errors.InputError` naming ``what``, the path and the fix.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> check_output_path(folder + "/new/pairs.parquet").name
    'pairs.parquet'
    >>> check_output_path(folder, what="pairs parquet")
    Traceback (most recent call last):
    ...
    gpulink.errors.InputError: pairs parquet '...' is a folder; give the path of a file to write
    """
    text = os.fspath(path)
    if not str(text).strip():
        raise InputError(f"{what} path is empty; give a file path")
    path = Path(text)
    if path.is_dir() and not directory:
        raise InputError(f"{what} {text!r} is a folder; give the path of a file to write")
    if directory and path.exists() and not path.is_dir():
        raise InputError(f"{what} {text!r} is a file, not a folder; give a folder path")
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise InputError(
            f"cannot write {what} {text!r}: {str(folder)!r} is a file, not a folder; "
            f"choose another path"
        )
    for target in [folder, path] if directory and path.is_dir() else [folder]:
        why = _probe_writable(target)
        if why is not None:
            raise InputError(
                f"cannot write {what} {text!r}: no file can be created in {str(target)!r} "
                f"({why}); choose a path in a folder you can write to"
            )
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, what: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path``, renamed to ``path`` when the block completes.

    Nothing is left behind if the block fails. A path that cannot be written (see
    :func:`check_output_path`) is an :class:`~gpulink.errors.InputError` naming ``path``, never
    the temporary file.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with atomic_output(folder + "/model.json") as tmp:
    ...     _ = tmp.write_text("{}")
    >>> with atomic_output(folder + "/model.json/m.json", what="model JSON") as tmp:
    ...     _ = tmp.write_text("{}")
    Traceback (most recent call last):
    ...
    gpulink.errors.InputError: cannot write model JSON '.../model.json/m.json': '.../model.json' is a file, not a folder; choose another path
    """
    path = check_output_path(path, what=what)

    def fail(exc: OSError) -> InputError:
        return InputError(
            f"cannot write {what} {str(path)!r}: {exc.strerror or exc}; choose a path in a "
            f"folder you can write to"
        )

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise fail(exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise fail(exc) from None
    finally:
        tmp.unlink(missing_ok=True)
