"""``gpulink.exploratory``: Splink 5's ``splink.exploratory``, computed with Arrow.

:func:`profile_columns` charts, for each column or column expression, how often its values
occur (a percentile chart of the value counts, the ``top_n`` and the ``bottom_n`` values);
:func:`completeness_chart` charts the share of non-null values of each column in each input
table. The charts plot Splink's records, field for field (:func:`column_profiles` and
:func:`completeness_records` give them without drawing), and are drawn with Altair, an optional
dependency (``pip install "gpulink[charts]"``).

The inputs are what a :class:`~gpulink.Linker` reads (a DataFrame, an Arrow table, a file path,
a table registered with a ``db_api``, or a list of them); a list is profiled as one table, its
tables one under the other, as Splink does. gpulink keeps no database: ``db_api`` is accepted,
for Splink code, and not used.

>>> import pandas as pd
>>> df = pd.DataFrame({"city": ["Leeds", "Leeds", "York", None]})
>>> [(r["value"], r["value_count"]) for r in column_profiles(df)[0].top_n]
[('Leeds', 2), ('York', 1)]
>>> [r["completeness"] for r in completeness_records(df)]
[0.75]
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from numbers import Integral
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.errors import InputError, SettingsError
from gpulink.expressions import Expression, _as_string, parse
from gpulink.io import find_column, split_inputs, to_arrow, vertical_concat
from gpulink.levels import ColumnExpression
from gpulink.visualisations import require_altair

__all__ = [
    "ColumnProfile",
    "column_profiles",
    "completeness_chart",
    "completeness_records",
    "profile_columns",
]

logger = logging.getLogger("gpulink")
_EPOCH = datetime(1970, 1, 1)


# -- inputs ---------------------------------------------------------------------------------------


def _read_tables(table_or_tables, used_by: str) -> list[pa.Table]:
    items, _ = split_inputs(table_or_tables)
    if not items:
        raise InputError(
            f"{used_by} was given an empty list of tables; pass a DataFrame, an Arrow table, a "
            "table from db_api.register(...) or a list of them"
        )
    return [to_arrow(x, what=f"input table {i}") for i, x in enumerate(items)]


def _looks_like_columns(value) -> bool:
    """Column names or expressions (Splink 5's second positional argument), not a db_api."""
    if isinstance(value, str) or hasattr(value, "raw_sql_expression"):
        return True
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, (str, list, tuple)) or hasattr(v, "raw_sql_expression") for v in value
    )


def _columns_argument(db_api, columns, name: str, used_by: str):
    """``columns``, or the columns Splink 5 code passed second (where gpulink takes db_api).

    Splink 4 took ``(table, db_api, columns)`` and Splink 5 takes ``(table, columns)``: both
    run. ``db_api`` is otherwise any database API (gpulink's or Splink's), and ignored.
    """
    if db_api is None:
        return columns
    if not _looks_like_columns(db_api):
        if not hasattr(db_api, "register"):
            raise SettingsError(
                f"{used_by}: db_api must be a database API (gpulink.DuckDBAPI() or Splink's, "
                f"accepted and not used) or None, got {db_api!r}; pass the columns as {name}=..."
            )
        return columns
    if columns is not None:
        raise SettingsError(
            f"{used_by} got column expressions both as db_api ({db_api!r}) and as {name}; pass "
            f"them once, as {name}=..."
        )
    return db_api


def _resolve(table: pa.Table, name: str, where: str, used_by: str) -> str:
    """The column of ``table`` that ``name`` names: exact or, as in DuckDB, case-insensitive."""
    available = table.column_names
    found = find_column(available, name)
    if found is not None:
        return found
    close = difflib.get_close_matches(name, available, n=3)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    shown = ", ".join(available[:30]) + (" ..." if len(available) > 30 else "")
    raise InputError(
        f"column {name!r} used by {used_by} is missing from {where}{hint}; it has columns: {shown}"
    )


def _where(i: int, n_tables: int) -> str:
    return "the input" if n_tables == 1 else f"input table {i}"


# -- profile_columns --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnProfile:
    """The records of one column expression's row of :func:`profile_columns`' chart.

    ``expression``: the column or expression as the chart titles it; ``percentiles``: one
    record per distinct value count, largest first, then the first again at percentile 1.0 (the
    line's start); ``top_n`` / ``bottom_n``: the most and least frequent values.
    """

    expression: str
    percentiles: list[dict[str, Any]]
    top_n: list[dict[str, Any]]
    bottom_n: list[dict[str, Any]]


@dataclass(frozen=True)
class _Profiled:
    """One column expression to profile: Splink's SQL text for it and how gpulink computes it."""

    sql: str  # the expression Splink groups by: names the group and titles the chart
    parts: tuple[Expression, ...]  # one expression, or the columns of a concatenated list

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(c for e in self.parts for c in e.columns))

    @property
    def title(self) -> str:
        return self.sql.replace(", ' '", "")

    @property
    def group_name(self) -> str:
        return re.sub(r"\s+", "_", re.sub(r"[^0-9a-zA-Z_]", " ", self.sql))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _profiled(item, used_by: str) -> _Profiled:
    if hasattr(item, "raw_sql_expression"):
        if not isinstance(item, ColumnExpression):  # Splink's: its SQL needs a dialect
            raise SettingsError(
                f"{used_by} takes gpulink's ColumnExpression, not Splink's ({item!r}); use "
                "gpulink.ColumnExpression (from gpulink import ColumnExpression) or the SQL text"
            )
        item = item.name
    if isinstance(item, (list, tuple)):
        if not item or not all(isinstance(c, str) for c in item):
            raise SettingsError(
                f"{used_by}: a list in column_expressions is profiled as its columns joined "
                f"with spaces and must hold column names or expressions, got {item!r}"
            )
        sql = "concat(" + ", ' ', ".join(item) + ")"
        return _Profiled(sql, tuple(parse(c) for c in item))
    if not isinstance(item, str):
        raise SettingsError(
            f"{used_by}: column expression {item!r} must be a column name or SQL expression "
            "(a string), a gpulink ColumnExpression or a list of column names"
        )
    return _Profiled(item, (parse(item),))


def _evaluate(p: _Profiled, data: pa.Table) -> pa.Array:
    if len(p.parts) == 1:
        return p.parts[0].evaluate(data)
    # Splink: concat(a, ' ', b), null where any part is null (concat alone skips nulls)
    parts = [e.evaluate(data) for e in p.parts]
    joined = parse(p.sql).evaluate(data)
    any_null = parts[0].is_null()
    for arr in parts[1:]:
        any_null = pc.or_(any_null, arr.is_null())
    return pc.if_else(any_null, pa.scalar(None, joined.type), joined)


def _sql_text(values: pa.Array) -> pa.Array:
    """``cast(value as varchar)`` as DuckDB writes it (``1.0``, ``1e-05``, no trailing zeros
    on fractional seconds); gpulink's SQL cast for the other types."""
    t = values.type
    if pa.types.is_timestamp(t) and t.tz is None:
        digits = {"s": 0, "ms": 3, "us": 6, "ns": 9}[t.unit]
        ticks = values.cast(pa.int64()).to_pylist()
        return pa.array([_timestamp_text(v, digits) for v in ticks], pa.string())
    return _as_string(values)


def _timestamp_text(ticks: int, digits: int) -> str:
    """DuckDB's text of a timestamp ``ticks`` (10**-digits seconds) after 1970: the fraction of a
    second without trailing zeros, none when whole."""
    seconds, fraction = divmod(ticks, 10**digits)
    text = (_EPOCH + timedelta(seconds=seconds)).isoformat(sep=" ")
    return f"{text}.{fraction:0{digits}d}".rstrip("0") if fraction else text


def _float32_percentiles(cumulative: np.ndarray, total: int) -> np.ndarray:
    """Splink's ``1 - (cast(cumsum as float) / total)``: DuckDB's FLOAT, so float32 throughout."""
    return np.float32(1) - cumulative.astype(np.float32) / np.float32(total)


def _profile(values: pa.Array, p: _Profiled, top_n: int, bottom_n: int) -> ColumnProfile | None:
    total = len(values)
    non_null = pc.drop_null(values)
    if len(non_null) == 0:
        return None
    try:
        counted = pc.value_counts(non_null)
    except pa.ArrowNotImplementedError:
        raise InputError(
            f"profile_columns cannot count the values of {p.sql!r}, of type {values.type}; "
            "leave it out of column_expressions, or profile one element of a list (x[1])"
        ) from None
    counts = counted.field("counts").to_numpy().astype(np.int64)
    common = {
        "total_non_null_rows": len(non_null),
        "total_rows_inc_nulls": total,
        "distinct_value_count": len(counts),
    }

    # one point per distinct value count: how many rows hold values that occur that often
    value_counts, n_values = np.unique(counts, return_counts=True)
    value_counts, n_values = value_counts[::-1], n_values[::-1]
    tokens = value_counts * n_values
    cumulative = np.cumsum(tokens)
    ex_nulls = _float32_percentiles(cumulative, len(non_null))
    inc_nulls = _float32_percentiles(cumulative, total)
    percentiles = [
        {
            "percentile_ex_nulls": float(ex_nulls[i]),
            "percentile_inc_nulls": float(inc_nulls[i]),
            "value_count": int(value_counts[i]),
            "group_name": p.group_name,
            "total_non_null_rows": common["total_non_null_rows"],
            "total_rows_inc_nulls": total,
            "sum_tokens_in_value_count_group": int(tokens[i]),
            "distinct_value_count": common["distinct_value_count"],
        }
        for i in range(len(value_counts))
    ]
    percentiles.append({**percentiles[0], "percentile_ex_nulls": 1.0, "percentile_inc_nulls": 1.0})

    # Ties are ordered by value (Splink leaves their order, and which ones make the cut, to
    # DuckDB's hash aggregation).
    freq = pa.table({"value_count": counts, "value": _sql_text(counted.field("values"))})

    def ranked(order: str, n: int) -> list[dict[str, Any]]:
        idx = pc.sort_indices(freq, [("value_count", order), ("value", "ascending")])[:n]
        rows = freq.take(idx).to_pylist()
        return [
            {"value_count": r["value_count"], "group_name": p.group_name, "value": r["value"]}
            | common
            for r in rows
        ]

    return ColumnProfile(
        p.title, percentiles, ranked("descending", top_n), ranked("ascending", bottom_n)
    )


def _check_n(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise SettingsError(
            f"{name} must be a whole number of values to chart (0 or more), got {value!r}; pass "
            f"e.g. {name}=10"
        )
    return int(value)


def column_profiles(
    table_or_tables,
    column_expressions=None,
    top_n: int = 10,
    bottom_n: int = 10,
) -> list[ColumnProfile]:
    """The records :func:`profile_columns` plots, one :class:`ColumnProfile` per expression.

    An expression whose values are all null has no profile (a warning says so), as in Splink.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"dob": ["1990-01-02", "1990-05-06", "1985-01-01"]})
    >>> (p,) = column_profiles(df, ["substr(dob, 1, 4)"], top_n=1)
    >>> p.expression, p.top_n[0]["value"], p.top_n[0]["value_count"], p.top_n[0]["group_name"]
    ('substr(dob, 1, 4)', '1990', 2, 'substr_dob_1_4_')
    """
    used_by = "profile_columns"
    top_n, bottom_n = _check_n("top_n", top_n), _check_n("bottom_n", bottom_n)
    tables = _read_tables(table_or_tables, used_by)
    if not column_expressions:
        items: list = [_quoted(c) for c in tables[0].column_names]
    elif isinstance(column_expressions, (list, tuple)):
        items = list(column_expressions)
    else:
        items = [column_expressions]
    profiled = [_profiled(item, used_by) for item in items]

    # Each table's columns, resolved as DuckDB resolves them, then all tables one under another.
    wanted = list(dict.fromkeys(c for p in profiled for c in p.columns))
    parts = []
    for i, t in enumerate(tables):
        found = {
            c: _resolve(t, c, _where(i, len(tables)), f"expression {p.sql!r}")
            for p in profiled
            for c in p.columns
        }
        parts.append(t.select([found[c] for c in wanted]).rename_columns(wanted))
    stacked = vertical_concat(parts, wanted)

    profiles = []
    for p in profiled:
        profile = _profile(_evaluate(p, stacked), p, top_n, bottom_n)
        if profile is None:
            logger.warning("profile_columns: no chart for %s, whose values are all null", p.title)
        else:
            profiles.append(profile)
    if not profiles:
        raise InputError(
            f"profile_columns found only null values in {', '.join(p.sql for p in profiled)} "
            f"({stacked.num_rows} rows); profile columns that hold values"
        )
    return profiles


def _profile_chart(alt, p: ColumnProfile):
    first = p.percentiles[0]
    total, non_null = first["total_rows_inc_nulls"], first["total_non_null_rows"]
    share = non_null / total
    subtitle = (
        f"In this col, {total * (1 - share):,.0f} values ({1 - share:,.1%}) are null and there "
        f"are {first['distinct_value_count']} distinct values"
    )
    distribution = (
        alt.Chart(
            alt.Data(values=p.percentiles),
            title=alt.Title(
                f"Distribution of counts of values in column {p.expression}", subtitle=subtitle
            ),
        )
        .mark_line(interpolate="step-before")
        .encode(
            x=alt.X("percentile_ex_nulls:Q", sort="descending", title="Percentile"),
            y=alt.Y("value_count:Q", title="Count of values"),
            tooltip=[
                "value_count:Q",
                "percentile_ex_nulls:Q",
                "percentile_inc_nulls:Q",
                "total_non_null_rows:Q",
                "total_rows_inc_nulls:Q",
            ],
        )
    )

    def bars(records, title: str, scale):
        return (
            alt.Chart(alt.Data(values=records), title=title)
            .mark_bar()
            .encode(
                x=alt.X("value:N", sort="-y", title=None),
                y=alt.Y("value_count:Q", title="Value count", scale=scale),
                tooltip=[
                    "value:N",
                    "value_count:Q",
                    "total_non_null_rows:Q",
                    "total_rows_inc_nulls:Q",
                ],
            )
        )

    # the bottom values on the top values' scale, so that their bars read as small
    top_scale = alt.Scale(domain=[0, first["value_count"]])
    return alt.hconcat(
        distribution,
        bars(p.top_n, f"Top {len(p.top_n)} values by value count", alt.Undefined),
        bars(p.bottom_n, f"Bottom {len(p.bottom_n)} values by value count", top_scale),
    )


def profile_columns(
    table_or_tables,
    db_api=None,
    column_expressions=None,
    top_n: int = 10,
    bottom_n: int = 10,
):
    """Splink's ``profile_columns``: for each column expression (default: every column), the
    distribution of its value counts, its ``top_n`` and its ``bottom_n`` values.

    ``column_expressions`` holds column names, SQL expressions in gpulink's subset
    (``lower(city)``, ``substr(dob, 1, 4)``, see :mod:`gpulink.expressions`),
    :class:`gpulink.ColumnExpression` objects, or lists of columns (profiled joined with
    spaces, null where one is null). ``db_api`` is accepted and ignored; Splink 5's order
    ``profile_columns(table, column_expressions)`` works too. Returns an Altair chart, a row per
    expression; an expression whose values are all null gets no row (a warning says so).

    Where values tie on their count, the top and bottom lists order them by value (Splink
    leaves which of the tied values are shown to the database).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"city": ["Leeds", "Leeds", "York", None], "dob": ["1990-01-02"] * 4})
    >>> chart = profile_columns(df, column_expressions=["city", "substr(dob, 1, 4)"], top_n=5)
    >>> [row.hconcat[0].title.text for row in chart.vconcat]
    ['Distribution of counts of values in column city',
     'Distribution of counts of values in column substr(dob, 1, 4)']
    >>> chart.save("/tmp/gpulink_profile_columns.html")
    """
    alt = require_altair()
    column_expressions = _columns_argument(
        db_api, column_expressions, "column_expressions", "profile_columns"
    )
    profiles = column_profiles(table_or_tables, column_expressions, top_n, bottom_n)
    return alt.vconcat(*(_profile_chart(alt, p) for p in profiles))


# -- completeness_chart ---------------------------------------------------------------------------


def _column_name(name) -> str:
    """A column as Splink's ``cols`` name it: plain, or double-quoted (``"first name"``)."""
    if not isinstance(name, str) or not name.strip():
        raise SettingsError(
            f"completeness_chart: cols must be column names (strings), got {name!r}"
        )
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('""', '"')
    return name


def completeness_records(
    table_or_tables, cols=None, table_names_for_chart=None
) -> list[dict[str, Any]]:
    """The records :func:`completeness_chart` plots: per column, per input table (most rows
    first), its null count, row count and completeness (share of non-null values, as Splink's
    DuckDB FLOAT: float32 precision). A table with no rows has no records, as in Splink.

    >>> import pandas as pd
    >>> a = pd.DataFrame({"city": ["Leeds", None]})
    >>> b = pd.DataFrame({"city": ["York", "Hull", None]})
    >>> [(r["source_dataset"], r["total_null_rows"]) for r in completeness_records([a, b])]
    [('input_data_2', 1), ('input_data_1', 1)]
    """
    used_by = "completeness_chart"
    tables = _read_tables(table_or_tables, used_by)
    if table_names_for_chart is None:
        names = [f"input_data_{i + 1}" for i in range(len(tables))]
    else:
        names = (
            [table_names_for_chart]
            if isinstance(table_names_for_chart, str)
            else list(table_names_for_chart)
        )
        if len(names) != len(tables) or not all(isinstance(n, str) for n in names):
            raise SettingsError(
                f"table_names_for_chart must hold one name (a string) per input table: "
                f"{len(tables)} table(s), got {table_names_for_chart!r}"
            )
    if cols is None:
        columns = list(tables[0].column_names)
    else:
        columns = [_column_name(c) for c in ([cols] if isinstance(cols, str) else cols)]
    resolved = [
        [_resolve(t, c, _where(i, len(tables)), used_by) for c in columns]
        for i, t in enumerate(tables)
    ]
    # Splink orders each column's tables by row count, largest first
    order = sorted(range(len(tables)), key=lambda i: -tables[i].num_rows)
    records = []
    for j, column in enumerate(columns):
        for i in order:
            table = tables[i]
            n = table.num_rows
            if n == 0:
                continue
            nulls = table.column(resolved[i][j]).null_count
            records.append(
                {
                    "source_dataset": names[i],
                    "column_name": column,
                    "total_null_rows": nulls,
                    "total_rows_inc_nulls": n,
                    # cast(count(col) * 1.0 / count(*) as float): a double, rounded to float32
                    "completeness": float(np.float32((n - nulls) / n)),
                }
            )
    return records


def completeness_chart(table_or_tables, db_api=None, cols=None, table_names_for_chart=None):
    """Splink's ``completeness_chart``: the share of non-null values of each column (``cols``,
    default every column of the first table) in each input table, as a heat map.

    Tables are named ``input_data_1``, ``input_data_2``... in the order given, or by
    ``table_names_for_chart`` (one name per table). ``db_api`` is accepted and ignored;
    Splink 5's order ``completeness_chart(tables, cols)`` works too.

    >>> import pandas as pd
    >>> a = pd.DataFrame({"city": ["Leeds", None], "dob": ["1990-01-02", "1985-03-04"]})
    >>> b = pd.DataFrame({"city": ["York", "Hull", None], "dob": [None, None, "2001-09-10"]})
    >>> chart = completeness_chart([a, b], table_names_for_chart=["crm", "web"])
    >>> from gpulink.visualisations import chart_records
    >>> [(r["source_dataset"], r["column_name"], r["completeness"]) for r in chart_records(chart)]
    [('web', 'city', 0.6666666865348816), ('crm', 'city', 0.5),
     ('web', 'dob', 0.3333333432674408), ('crm', 'dob', 1.0)]
    >>> chart.save("/tmp/gpulink_completeness.html")
    """
    alt = require_altair()
    cols = _columns_argument(db_api, cols, "cols", "completeness_chart")
    records = completeness_records(table_or_tables, cols, table_names_for_chart)
    x_sort = alt.EncodingSortField("mean_comp", order="descending")
    y = alt.Y("source_dataset:N", title="Source dataset")
    base = alt.Chart().transform_joinaggregate(
        mean_comp="mean(completeness)", groupby=["column_name"]
    )
    cells = base.mark_rect().encode(
        x=alt.X("column_name:N", sort=x_sort, title="Column name", axis=alt.Axis(labelAngle=20)),
        y=y,
        color=alt.Color(
            "completeness:Q", legend=None, scale=alt.Scale(scheme="darkred", zero=True)
        ),
        tooltip=[
            alt.Tooltip("source_dataset:N", title="Source dataset"),
            alt.Tooltip("total_rows_inc_nulls:Q", format=",", title="# of records"),
            alt.Tooltip("column_name:N", title="Column name"),
            alt.Tooltip("total_null_rows:Q", format=",", title="# of nulls"),
            alt.Tooltip("completeness:Q", format=".1%"),
        ],
    )
    labels = base.mark_text().encode(
        x=alt.X("column_name:N", sort=x_sort, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("source_dataset:N"),
        text=alt.Text("completeness:Q", format=".0%"),
        color=alt.condition("datum['completeness'] < 0.5", alt.value("white"), alt.value("black")),
    )
    return alt.layer(cells, labels, data=alt.Data(values=records)).properties(
        title="Column completeness by source dataset",
        width=alt.Step(40),
        height=alt.Step(40),
    )
