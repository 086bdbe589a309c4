"""Blocking analysis with Splink's function names and result shapes, counted exactly.

Splink counts blocked pairs by generating them in SQL (by default on a 5% sample, scaled up).
gpulink counts them exactly with counting passes over the pair-index space that produce no pairs,
so ``record_sample_proportion`` is accepted for compatibility and every count is exact
(``is_estimate`` is always False).

Inputs: ``splink_dataframe_or_dataframes`` (Splink's name) is an encoded
:class:`~gpulink.table.RecordTable`, or anything :func:`gpulink.io.normalise_input` accepts (a DataFrame, Arrow table, path, DuckDB relation, a
table from Splink's or gpulink's ``db_api.register(df)``, or a list of them), which is then
encoded with the rules' expressions. ``db_api`` is accepted and ignored.

:func:`chart_comparisons_from_blocking_rules` draws the per-rule counts as Splink's chart (Altair);
``linker.blocking_analysis`` runs the same analyses over a linker's records.

>>> import pandas as pd
>>> df = pd.DataFrame({"unique_id": [1, 2, 3], "city": ["a", "a", None]})
>>> r = count_comparisons_from_blocking_rules(df, blocking_rules=["l.city = r.city"],
...     link_type="dedupe_only")
>>> r[0]["marginal_comparison_count"], r[0]["total_possible_comparison_count"]
(1, 3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gpulink.blocking import (
    BlockingRule,
    build_plan,
    count_pairs,
    to_blocking_rule,
    to_blocking_rules,
)
from gpulink.checks import is_integer
from gpulink.errors import InputError, SettingsError

if TYPE_CHECKING:
    import pandas as pd


def _record_table(
    table_or_tables,
    rules: list[BlockingRule],
    link_type: str,
    unique_id_column_name: str,
    source_dataset_column_name: str | None,
):
    """An encoded RecordTable holding every expression the rules use."""
    from gpulink.table import RecordTable

    if isinstance(table_or_tables, RecordTable) or (
        hasattr(table_or_tables, "source_codes") and hasattr(table_or_tables, "columns")
    ):  # encoded already (a RecordTable, or a stand-in with its fields)
        return table_or_tables
    try:
        from gpulink.io import normalise_input
        from gpulink.table import encode_records
    except ImportError as exc:  # pragma: no cover - during development only
        raise InputError(
            f"cannot encode raw input here ({exc}); pass an encoded gpulink RecordTable"
        ) from None
    data = normalise_input(
        table_or_tables,
        unique_id_column=unique_id_column_name,
        source_dataset_column=source_dataset_column_name,
        link_type=link_type,
    )
    expressions = list(dict.fromkeys(e for r in rules for e in r.expressions))
    return encode_records(
        data,
        expressions,
        unique_id_column=unique_id_column_name,
        source_dataset_column=source_dataset_column_name
        or ("source_dataset" if link_type != "dedupe_only" else None),
        link_type=link_type,
    )


def _source_sizes(table) -> np.ndarray:
    src = np.asarray(table.source_codes)
    n_sources = max(len(table.source_names), int(src.max()) + 1 if len(src) else 0, 1)
    return np.bincount(src, minlength=n_sources).astype(np.int64)


def total_possible_comparisons(table, link_type: str) -> int:
    """Splink's ``calculate_cartesian``: all pairs the link type allows, with no blocking."""
    n = int(table.n_records)
    if link_type == "link_only":
        sizes = _source_sizes(table)
        return int((int(sizes.sum()) ** 2 - int((sizes**2).sum())) // 2)
    return n * (n - 1) // 2


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _link_type_join_condition(link_type: str, uid: str, sd: str | None) -> str:
    """Splink's ``_sql_gen_where_condition`` text for the link type."""
    if sd is None:
        return f"where l.{_quoted(uid)} < r.{_quoted(uid)}"
    idl = f"l.{_quoted(sd)} || '-__-' || l.{_quoted(uid)}"
    idr = f"r.{_quoted(sd)} || '-__-' || r.{_quoted(uid)}"
    where = f"where {idl} < {idr}"
    if link_type == "link_only":
        where += f" and l.{_quoted(sd)} != r.{_quoted(sd)}"
    return where


def count_comparisons_from_blocking_rules(
    splink_dataframe_or_dataframes,
    *,
    blocking_rules: Any,
    link_type: str,
    unique_id_column_name: str = "unique_id",
    source_dataset_column_name: str | None = None,
    record_sample_proportion: float = 1.0,
    db_api: Any = None,
    backend: str = "cpu",
) -> list[dict[str, Any]]:
    """Splink 5's ``count_comparisons_from_blocking_rules``: one record per rule with the exact
    marginal (after earlier rules) and cumulative number of pairs it generates.

    Keys: blocking_rule, equi_join_conditions, filter_conditions, link_type_join_condition,
    marginal_comparison_count, cumulative_comparison_count, total_possible_comparison_count,
    match_key (int), record_sample_proportion (1.0), is_estimate (False).

    >>> # count_comparisons_from_blocking_rules(df, blocking_rules=[block_on("dob")],
    >>> #     link_type="dedupe_only")[0]["marginal_comparison_count"]
    """
    rules = to_blocking_rules(blocking_rules)
    table = _record_table(
        splink_dataframe_or_dataframes,
        rules,
        link_type,
        unique_id_column_name,
        source_dataset_column_name,
    )
    plan = build_plan(table, rules, link_type)
    marginal = count_pairs(plan, backend=backend)
    cumulative = np.cumsum(marginal)
    total = total_possible_comparisons(table, link_type)
    sd = None
    if link_type != "dedupe_only" or source_dataset_column_name is not None:
        sd = source_dataset_column_name or "source_dataset"
    where = _link_type_join_condition(link_type, unique_id_column_name, sd)
    return [
        {
            "blocking_rule": rule.sql,
            "equi_join_conditions": rule.equi_join_conditions,
            "filter_conditions": "",
            "link_type_join_condition": where,
            "marginal_comparison_count": int(marginal[k]),
            "cumulative_comparison_count": int(cumulative[k]),
            "total_possible_comparison_count": total,
            "match_key": k,
            "record_sample_proportion": 1.0,
            "is_estimate": False,
        }
        for k, rule in enumerate(rules)
    ]


def cumulative_comparisons_to_be_scored_from_blocking_rules_data(
    splink_dataframe_or_dataframes,
    *,
    blocking_rules: Any,
    link_type: str,
    unique_id_column_name: str = "unique_id",
    max_rows_limit: int = int(1e9),
    source_dataset_column_name: str | None = None,
    db_api: Any = None,
    backend: str = "cpu",
) -> pd.DataFrame:
    """Splink 4's cumulative counts as a DataFrame with columns blocking_rule, row_count,
    cumulative_rows, cartesian, match_key (str), start. ``max_rows_limit`` is not needed
    (counting generates no pairs) and is ignored.

    >>> # cumulative_comparisons_to_be_scored_from_blocking_rules_data(df,
    >>> #     blocking_rules=[block_on("dob")], link_type="dedupe_only")
    """
    records = count_comparisons_from_blocking_rules(
        splink_dataframe_or_dataframes,
        blocking_rules=blocking_rules,
        link_type=link_type,
        unique_id_column_name=unique_id_column_name,
        source_dataset_column_name=source_dataset_column_name,
        backend=backend,
    )
    import pandas as pd

    return pd.DataFrame(
        {
            "blocking_rule": [r["blocking_rule"] for r in records],
            "row_count": [r["marginal_comparison_count"] for r in records],
            "cumulative_rows": [r["cumulative_comparison_count"] for r in records],
            "cartesian": [r["total_possible_comparison_count"] for r in records],
            "match_key": [str(r["match_key"]) for r in records],
            "start": [
                r["cumulative_comparison_count"] - r["marginal_comparison_count"] for r in records
            ],
        }
    )


def chart_comparisons_from_blocking_rules(
    splink_dataframe_or_dataframes,
    *,
    blocking_rules: Any,
    link_type: str,
    db_api: Any = None,
    unique_id_column_name: str = "unique_id",
    source_dataset_column_name: str | None = None,
    record_sample_proportion: float = 1.0,
    backend: str = "cpu",
):
    """Splink 5's ``chart_comparisons_from_blocking_rules``: an Altair bar chart of the pairs
    each rule adds to those of the rules before it (marginal), stacked up to the cumulative
    count, one bar per rule.

    Its data are Splink's records (:func:`count_comparisons_from_blocking_rules`, plus
    ``chart_start``, where each bar starts), counted exactly: ``record_sample_proportion`` is
    accepted for compatibility and nothing is sampled, so the title is Splink's for exact counts.
    Altair is an optional dependency (``pip install "gpulink[charts]"``).

    >>> import pandas as pd
    >>> from gpulink import block_on
    >>> from gpulink.visualisations import chart_records
    >>> df = pd.DataFrame({"unique_id": [1, 2, 3, 4], "city": ["a", "a", "a", "b"],
    ...                    "dob": ["x", "y", "x", "x"]})
    >>> chart = chart_comparisons_from_blocking_rules(
    ...     df, blocking_rules=[block_on("city"), block_on("dob")], link_type="dedupe_only")
    >>> [(r["marginal_comparison_count"], r["chart_start"], r["cumulative_comparison_count"])
    ...  for r in chart_records(chart)]
    [(3, 0, 3), (2, 3, 5)]
    >>> chart.save("/tmp/gpulink_blocking_rules.html")
    """
    from gpulink.visualisations import (
        blocking_rule_comparisons_chart,
        blocking_rule_comparisons_records,
        require_altair,
    )

    require_altair()  # before the counting, which takes a while on big inputs
    records = count_comparisons_from_blocking_rules(
        splink_dataframe_or_dataframes,
        blocking_rules=blocking_rules,
        link_type=link_type,
        unique_id_column_name=unique_id_column_name,
        source_dataset_column_name=source_dataset_column_name,
        backend=backend,
    )
    return blocking_rule_comparisons_chart(blocking_rule_comparisons_records(records))


def _block_sides(table, rule: BlockingRule, link_type: str, plan_groups: np.ndarray):
    """Per non-null group: (count_l, count_r) as Splink's pre-filter SQL counts them.

    Splink joins the concatenated input with itself (every record on both sides), except for
    link_only with exactly two input datasets, where it joins dataset 0 with dataset 1.
    """
    g = plan_groups
    valid = g >= 0
    n_groups = int(g.max()) + 1 if valid.any() else 0
    two_dataset = link_type == "link_only" and len(table.source_names) == 2
    if two_dataset:
        src = np.asarray(table.source_codes)
        count_l = np.bincount(g[valid & (src == 0)], minlength=n_groups)
        count_r = np.bincount(g[valid & (src == 1)], minlength=n_groups)
    else:
        count_l = np.bincount(g[valid], minlength=n_groups)
        count_r = count_l
    return count_l.astype(np.int64), count_r.astype(np.int64)


def count_comparisons_from_blocking_rule(
    splink_dataframe_or_dataframes,
    *,
    blocking_rule: Any,
    link_type: str,
    unique_id_column_name: str = "unique_id",
    source_dataset_column_name: str | None = None,
    compute_post_filter_count: bool = True,
    max_rows_limit: int = int(1e9),
    db_api: Any = None,
    backend: str = "cpu",
) -> dict[str, Any]:
    """Splink 4's single-rule analysis: pairs *pre* filter conditions (Splink's join count:
    sum over blocks of count_l * count_r, self-pairs and both orders included) and *post*
    filter conditions (the pairs the rule alone generates, link type applied), both exact.

    >>> # count_comparisons_from_blocking_rule(df, blocking_rule=block_on("dob"),
    >>> #     link_type="dedupe_only")["number_of_comparisons_to_be_scored_post_filter_conditions"]
    """
    rule = to_blocking_rule(blocking_rule)
    table = _record_table(
        splink_dataframe_or_dataframes,
        [rule],
        link_type,
        unique_id_column_name,
        source_dataset_column_name,
    )
    plan = build_plan(table, [rule], link_type)
    count_l, count_r = _block_sides(table, rule, link_type, plan.groups[0])
    pre = int((count_l * count_r).sum())
    post: int | str = int(count_pairs(plan, backend=backend)[0])
    if not compute_post_filter_count:
        post = "not computed"
    sd = None
    if link_type != "dedupe_only" or source_dataset_column_name is not None:
        sd = source_dataset_column_name or "source_dataset"
    return {
        "number_of_comparisons_generated_pre_filter_conditions": pre,
        "number_of_comparisons_to_be_scored_post_filter_conditions": post,
        "filter_conditions_identified": "",
        "equi_join_conditions_identified": rule.equi_join_conditions,
        "link_type_join_condition": _link_type_join_condition(link_type, unique_id_column_name, sd),
    }


def _key_values(table, rule: BlockingRule, groups: np.ndarray, group_index: np.ndarray):
    """The key values (Python objects) of the given groups, one list per key expression."""
    first = np.full(int(groups.max()) + 1 if (groups >= 0).any() else 0, -1, np.int64)
    valid = np.flatnonzero(groups >= 0)
    # the first record of each group (reverse assignment keeps the smallest index)
    first[groups[valid[::-1]]] = valid[::-1]
    records = first[group_index]
    out = []
    for e in rule.expressions:
        col = table.columns[e] if e in table.columns else table.column(e)
        codes = np.asarray(col.codes)[records]
        out.append(col.dictionary.take(codes).to_pylist() if len(codes) else [])
    return out


def check_n_largest(n_largest) -> int:
    """``n_largest`` as an int, or a SettingsError naming the value (a positive integer).

    >>> check_n_largest(0)
    Traceback (most recent call last):
    ...
    gpulink.errors.SettingsError: n_largest must be a positive integer (the number of blocks to return), got 0; pass e.g. n_largest=5
    """
    if not is_integer(n_largest) or n_largest < 1:
        raise SettingsError(
            "n_largest must be a positive integer (the number of blocks to return), got "
            f"{n_largest!r}; pass e.g. n_largest=5"
        )
    return int(n_largest)


def n_largest_blocks(
    splink_dataframe_or_dataframes,
    *,
    blocking_rule: Any,
    link_type: str,
    n_largest: int = 5,
    unique_id_column_name: str = "unique_id",
    source_dataset_column_name: str | None = None,
    db_api: Any = None,
) -> pd.DataFrame:
    """Splink's ``n_largest_blocks``: the key values of the blocks with most pre-filter pairs.

    Columns ``key_0, key_1, ..., count_l, count_r, block_count`` (Splink's), largest first; a
    block's pre-filter pairs are ``count_l * count_r`` (every record on both sides, so self-pairs
    and both orders are in; with two link_only inputs, left is the first, right the second).
    Blocks with the same ``block_count`` come in the order of gpulink's group ids (the encoded
    key values'); Splink's ``ORDER BY ... LIMIT`` leaves their order (and so which tied blocks
    make the cut) to DuckDB.

    >>> import pandas as pd
    >>> from gpulink import block_on
    >>> df = pd.DataFrame({"unique_id": [1, 2, 3, 4], "city": ["a", "a", "a", "b"]})
    >>> n_largest_blocks(df, blocking_rule=block_on("city"), link_type="dedupe_only")
      key_0  count_l  count_r  block_count
    0     a        3        3            9
    1     b        1        1            1
    """
    n_largest = check_n_largest(n_largest)
    rule = to_blocking_rule(blocking_rule)
    table = _record_table(
        splink_dataframe_or_dataframes,
        [rule],
        link_type,
        unique_id_column_name,
        source_dataset_column_name,
    )
    plan = build_plan(table, [rule], link_type)
    return _largest(table, rule, link_type, plan.groups[0], n_largest)


def _largest(table, rule, link_type, groups, n_largest) -> pd.DataFrame:
    count_l, count_r = _block_sides(table, rule, link_type, groups)
    block_count = count_l * count_r
    joined = np.flatnonzero(block_count > 0)  # Splink's inner join keeps blocks on both sides
    top = joined[np.argsort(-block_count[joined], kind="stable")][:n_largest]
    keys = _key_values(table, rule, groups, top)
    data: dict[str, Any] = {f"key_{i}": v for i, v in enumerate(keys)}
    data.update(count_l=count_l[top], count_r=count_r[top], block_count=block_count[top])
    import pandas as pd

    return pd.DataFrame(data)


def largest_blocks(
    splink_dataframe_or_dataframes,
    *,
    blocking_rules: Any,
    link_type: str,
    n_largest: int = 5,
    unique_id_column_name: str = "unique_id",
    source_dataset_column_name: str | None = None,
) -> pd.DataFrame:
    """The ``n_largest`` blocks of every rule: columns match_key, blocking_rule, key_0...,
    count_l, count_r, block_count (pre-filter pairs, as :func:`n_largest_blocks`).

    >>> # largest_blocks(df, blocking_rules=[block_on("dob"), block_on("city")],
    >>> #     link_type="dedupe_only")
    """
    n_largest = check_n_largest(n_largest)
    rules = to_blocking_rules(blocking_rules)
    table = _record_table(
        splink_dataframe_or_dataframes,
        rules,
        link_type,
        unique_id_column_name,
        source_dataset_column_name,
    )
    plan = build_plan(table, rules, link_type)
    frames = []
    for k, rule in enumerate(rules):
        df = _largest(table, rule, link_type, plan.groups[k], n_largest)
        df.insert(0, "blocking_rule", rule.sql)
        df.insert(0, "match_key", k)
        frames.append(df)
    import pandas as pd

    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


__all__ = [
    "chart_comparisons_from_blocking_rules",
    "check_n_largest",
    "count_comparisons_from_blocking_rule",
    "count_comparisons_from_blocking_rules",
    "cumulative_comparisons_to_be_scored_from_blocking_rules_data",
    "largest_blocks",
    "n_largest_blocks",
    "total_possible_comparisons",
]
