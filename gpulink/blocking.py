"""Blocking: rules (``block_on``), the blocking plan, and exact pair enumeration and counting.

Semantics are Splink's (``splink.internals.blocking``):

* a rule is a conjunction of equalities ``expr(l) = expr(r)``; a pair satisfies it when every key
  expression is non-null on both sides and equal (nulls never satisfy an equality);
* rule ``k`` emits a pair only if no earlier rule ``k' < k`` is satisfied by it, so every pair
  comes from the first rule it satisfies; its ``match_key`` is ``k``. Splink writes match_key as
  the *string* ``'0'``, ``'1'``, ... in blocked pairs and predictions (``'{k}' as match_key``),
  and as an integer in ``splink.blocking_analysis`` results; here it is the int32 rule index,
  which the output layer formats;
* dedupe_only and link_and_dedupe: all pairs of a block, oriented ``uid_l < uid_r`` (the
  RecordTable's record order); link_only: only pairs from different source datasets.

The plan (:func:`build_plan`) is host-side numpy; the kernels in :mod:`gpulink.kernels.pairs`
walk its pair-index space in bounded chunks, never holding all pairs.

>>> rule = block_on("first_name", "substr(surname,1,2)")
>>> rule.sql
'(l."first_name" = r."first_name") AND (SUBSTRING(l.surname, 1, 2) = SUBSTRING(r.surname, 1, 2))'
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpulink.checks import is_integer
from gpulink.errors import SettingsError
from gpulink.kernels.grouping import dense_ids, stable_order

SUPPORTED = (
    "gpulink supports blocking rules that are conjunctions (AND) of equalities of the same "
    "column expression on both sides, e.g. block_on('first_name', 'substr(surname,1,4)') or "
    "'l.first_name = r.first_name and l.dob = r.dob'"
)


# --------------------------------------------------------------------------------------------
# Expressions and Splink's SQL text
# --------------------------------------------------------------------------------------------


def _canonical(expression: str) -> str:
    """Canonical text of a column expression (gpulink.expressions.canonical when present)."""
    try:
        from gpulink.expressions import canonical
    except ImportError:  # the expressions module is not there yet: a whitespace-normal form
        return " ".join(expression.split())
    return canonical(expression)


def _is_pure_column(expression: str) -> bool:
    # Splink's heuristic (ColumnExpression.raw_sql_is_pure_column_or_column_reference)
    return not re.search(r"\([^)]*\)", expression) and "||" not in expression


def _quote_identifier(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('""', '"')
    return '"' + name.replace('"', '""') + '"'


def _side_sql(expression: str, table: str) -> str:
    """``expression`` with its columns on table ``l`` or ``r``, as Splink writes it (DuckDB)."""
    if _is_pure_column(expression):
        return f"{table}.{_quote_identifier(expression)}"
    try:
        import sqlglot
        from sqlglot import expressions as sge
    except ImportError:  # pragma: no cover - sqlglot ships with splink; fallback without it
        return _prefix_columns_fallback(expression, table)
    tree = sqlglot.parse_one(expression, read="duckdb")
    for column in tree.find_all(sge.Column):
        column.set("table", sge.to_identifier(table))
    return tree.sql(dialect="duckdb")


_TOKEN = re.compile(r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|([A-Za-z_][A-Za-z0-9_]*)(\s*\()?""")


def _prefix_columns_fallback(expression: str, table: str) -> str:
    """Prefix bare identifiers (not function names, keywords or literals) with ``table.``."""
    keywords = {"as", "and", "or", "not", "null", "true", "false", "varchar", "text", "int"}

    def sub(m: re.Match) -> str:
        if m.group(1) or (m.group(3) and m.group(4)):
            return m.group(0)
        if m.group(2):
            return f"{table}.{m.group(2)}"
        if m.group(3).lower() in keywords:
            return m.group(0)
        return f"{table}.{m.group(3)}"

    return _TOKEN.sub(sub, expression)


def _equality_sql(expression: str) -> str:
    return f"{_side_sql(expression, 'l')} = {_side_sql(expression, 'r')}"


def _block_on_sql(expressions: Sequence[str]) -> str:
    """The SQL Splink's ``block_on(*expressions)`` writes for the DuckDB dialect."""
    if len(expressions) == 1:
        return _equality_sql(expressions[0])
    return " AND ".join(f"({_equality_sql(e)})" for e in expressions)


# --------------------------------------------------------------------------------------------
# Parsing Splink SQL rules: conjunctions of equalities
# --------------------------------------------------------------------------------------------


def _top_level_scan(sql: str):
    """Yield ``(position, char, depth)`` for characters outside quotes."""
    depth = 0
    quote = None
    for pos, ch in enumerate(sql):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"`":
            quote = ch
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        yield pos, ch, depth


def _strip_outer_parens(sql: str) -> str:
    sql = sql.strip()
    while sql.startswith("(") and sql.endswith(")"):
        closes_at_end = True
        for pos, _ch, depth in _top_level_scan(sql):
            if depth == 0 and pos < len(sql) - 1:
                closes_at_end = False
                break
        if not closes_at_end:
            break
        sql = sql[1:-1].strip()
    return sql


def _split_top_level(sql: str, word: str) -> list[str]:
    """Split ``sql`` on the keyword ``word`` (case-insensitive) outside parentheses and quotes."""
    parts, start = [], 0
    pattern = re.compile(rf"\b{word}\b", re.IGNORECASE)
    depth_at = {pos: depth for pos, _ch, depth in _top_level_scan(sql)}
    for m in pattern.finditer(sql):
        if depth_at.get(m.start()) == 0 and m.start() >= start:
            parts.append(sql[start : m.start()])
            start = m.end()
    parts.append(sql[start:])
    return parts


_QUALIFIED = re.compile(r"""\b([lrLR])\s*\.\s*("(?:[^"]|"")*"|`[^`]*`|[A-Za-z_][A-Za-z0-9_]*)""")


def _strip_table(side: str) -> tuple[str, set[str]]:
    """Remove ``l.``/``r.`` qualifiers (outside string literals); return the tables seen."""
    tables: set[str] = set()
    out, last = [], 0
    in_literal = {pos for pos in range(len(side))}
    for pos, _ch, _depth in _top_level_scan(side):
        in_literal.discard(pos)
    for m in _QUALIFIED.finditer(side):
        if m.start() in in_literal:
            continue
        tables.add(m.group(1).lower())
        out.append(side[last : m.start()])
        name = m.group(2)
        out.append(name if not name.startswith("`") else '"' + name[1:-1] + '"')
        last = m.end()
    out.append(side[last:])
    return "".join(out).strip(), tables


def _find_equals(sql: str) -> list[int]:
    hits = []
    for pos, ch, depth in _top_level_scan(sql):
        if ch == "=" and depth == 0:
            before = sql[pos - 1] if pos else ""
            after = sql[pos + 1] if pos + 1 < len(sql) else ""
            if before not in "<>!=" and after != "=":
                hits.append(pos)
    return hits


def _parse_conjunction(sql: str, rule: str | None = None) -> list[tuple[str, str, str]]:
    """``(expression, left side SQL, right side SQL)`` of each equality of a Splink SQL rule, or
    SettingsError if the rule is not a conjunction of equalities of one expression."""
    rule = sql if rule is None else rule
    body = _strip_outer_parens(sql)
    if not body:
        raise SettingsError(f"blocking rule {rule!r} is empty; {SUPPORTED}")
    conjuncts = _split_top_level(body, "and")
    if len(conjuncts) > 1:
        out: list[tuple[str, str, str]] = []
        for c in conjuncts:
            out.extend(_parse_conjunction(c, rule))
        return out
    if re.search(r"\b(or|not|like|between|in|is)\b", body, re.IGNORECASE) and not _find_equals(
        body
    ):
        raise SettingsError(f"blocking rule {rule!r} is not an equality; {SUPPORTED}")
    eqs = _find_equals(body)
    if len(eqs) != 1:
        raise SettingsError(
            f"blocking rule {rule!r}: the condition {body!r} is not a single equality; {SUPPORTED}"
        )
    left, right = body[: eqs[0]], body[eqs[0] + 1 :]
    for side in (left, right):
        if _split_top_level(side, "or")[1:] or re.search(r"[<>!]", side):
            raise SettingsError(
                f"blocking rule {rule!r}: {body!r} is not an equality of expressions; {SUPPORTED}"
            )
    lexpr, ltables = _strip_table(left)
    rexpr, rtables = _strip_table(right)
    if len(ltables) != 1 or len(rtables) != 1 or ltables == rtables:
        raise SettingsError(
            f"blocking rule {rule!r}: {body.strip()!r} must compare an expression of the left "
            f"record (l.) with the same expression of the right record (r.); {SUPPORTED}"
        )
    if _canonical(lexpr) != _canonical(rexpr):
        raise SettingsError(
            f"blocking rule {rule!r}: {body.strip()!r} compares different expressions "
            f"({lexpr!r} and {rexpr!r}); {SUPPORTED}"
        )
    return [(lexpr, left.strip(), right.strip())]


# --------------------------------------------------------------------------------------------
# BlockingRule
# --------------------------------------------------------------------------------------------


class BlockingRule:
    """An equi-join blocking rule: pairs whose key expressions are all equal and non-null.

    ``expressions``: canonical column expressions; ``sql``: Splink's SQL text of the rule (what
    Splink's charts and model JSON show); ``salting_partitions``: accepted for Splink 3/4
    compatibility (salting only splits Splink's SQL join; it never changes the pairs).

    >>> r = BlockingRule.from_dict({"blocking_rule": "l.dob = r.dob", "sql_dialect": "duckdb"})
    >>> r.expressions, r.to_dict()
    (('dob',), {'blocking_rule': 'l.dob = r.dob', 'sql_dialect': 'duckdb'})
    """

    def __init__(
        self,
        expressions: Sequence[str],
        sql: str | None = None,
        *,
        salting_partitions: int | None = None,
        sql_dialect: str = "duckdb",
        sides: Sequence[tuple[str, str]] | None = None,
    ):
        if not expressions:
            raise SettingsError(f"a blocking rule needs at least one expression; {SUPPORTED}")
        exprs = []
        for e in expressions:
            if not isinstance(e, str) or not e.strip():
                raise SettingsError(
                    f"blocking rule expression {e!r} is not a column name or expression; "
                    f"{SUPPORTED}"
                )
            e = e.strip()
            if _is_pure_column(e) and not re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*|"(?:[^"]|"")*"', e):
                e = _quote_identifier(e)  # Splink reads 'first name' as one column name
            exprs.append(_canonical(e))
        if salting_partitions is not None:
            if not is_integer(salting_partitions) or salting_partitions < 1:
                raise SettingsError(
                    f"salting_partitions={salting_partitions!r} must be a positive integer or None"
                )
            salting_partitions = int(salting_partitions)
        self.expressions: tuple[str, ...] = tuple(exprs)
        self._raw = tuple(e.strip() for e in expressions)
        self._sql = sql
        self._sides = list(sides) if sides is not None else None
        self.salting_partitions = salting_partitions
        self.sql_dialect = sql_dialect

    @property
    def sql(self) -> str:
        """Splink's SQL text for this rule (computed on first use)."""
        if self._sql is None:
            self._sql = _block_on_sql(self._raw)
        return self._sql

    @property
    def equi_join_conditions(self) -> str:
        """The equalities as Splink's blocking analysis describes them (``l.x = r.x AND ...``)."""
        if self._sides is None:
            return " AND ".join(_equality_sql(e) for e in self._raw)
        return " AND ".join(f"{_render(a)} = {_render(b)}" for a, b in self._sides)

    def to_dict(self) -> dict[str, Any]:
        """Splink's JSON form: ``{"blocking_rule": sql, "sql_dialect": "duckdb"}``."""
        d: dict[str, Any] = {"blocking_rule": self.sql, "sql_dialect": self.sql_dialect}
        if self.salting_partitions is not None:
            d["salting_partitions"] = self.salting_partitions
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BlockingRule:
        """Inverse of :meth:`to_dict`; accepts Splink's blocking rule dicts."""
        return to_blocking_rule(d)

    def __eq__(self, other: object) -> bool:
        # Equal rules produce the same pairs: the same set of key expressions.
        if not isinstance(other, BlockingRule):
            return NotImplemented
        return set(self.expressions) == set(other.expressions)

    def __hash__(self) -> int:
        return hash(frozenset(self.expressions))

    def __repr__(self) -> str:
        args = ", ".join(repr(e) for e in self.expressions)
        if self.salting_partitions is not None:
            args += f", salting_partitions={self.salting_partitions}"
        return f"block_on({args})"


def block_on(*expressions: Any, salting_partitions: int | None = None) -> BlockingRule:
    """A rule blocking on equality of every column expression given (Splink's ``block_on``).

    Each expression is a column name, a SQL expression, or a
    :class:`~gpulink.ColumnExpression`; the rule's SQL is the text Splink writes for it.

    >>> block_on("first_name", "dob").sql
    '(l."first_name" = r."first_name") AND (l."dob" = r."dob")'
    >>> block_on("lower(city)").expressions
    ('lower(city)',)
    >>> from gpulink import ColumnExpression
    >>> block_on(ColumnExpression("surname").lower().substr(1, 3)).sql
    'SUBSTRING(LOWER(l."surname"), 1, 3) = SUBSTRING(LOWER(r."surname"), 1, 3)'
    """
    if len(expressions) == 1 and isinstance(expressions[0], list | tuple):
        raise SettingsError(
            "block_on takes expressions as separate arguments: block_on('first_name', 'dob'), "
            "not block_on(['first_name', 'dob'])"
        )
    from gpulink.levels import ColumnExpression

    for e in expressions:
        if not isinstance(e, str | ColumnExpression):
            splink_ce = hasattr(e, "raw_sql_expression") and hasattr(e, "operations")
            fix = (
                "; use gpulink.ColumnExpression (from gpulink import ColumnExpression)"
                if splink_ce
                else ""
            )
            raise SettingsError(
                f"block_on expression {e!r} must be a column name, a SQL expression or a "
                f"gpulink ColumnExpression{fix}"
            )
    if all(isinstance(e, str) for e in expressions):
        return BlockingRule(expressions, salting_partitions=salting_partitions)
    # A ColumnExpression brings its own SQL for each side (Splink's l_name / r_name).
    sides = [
        (e.l_name, e.r_name)
        if isinstance(e, ColumnExpression)
        else (_side_sql(e, "l"), _side_sql(e, "r"))
        for e in expressions
    ]
    equalities = [f"{a} = {b}" for a, b in sides]
    sql = equalities[0] if len(equalities) == 1 else " AND ".join(f"({q})" for q in equalities)
    names = [e.name if isinstance(e, ColumnExpression) else e for e in expressions]
    return BlockingRule(names, sql=sql, sides=sides, salting_partitions=salting_partitions)


def _rule_from_sql(sql: str, **kwargs) -> BlockingRule:
    parsed = _parse_conjunction(sql)
    return BlockingRule(
        [e for e, _, _ in parsed], sql=sql, sides=[(a, b) for _, a, b in parsed], **kwargs
    )


def _render(side: str) -> str:
    """One side of an equality as sqlglot (hence Splink) writes it for DuckDB."""
    try:
        import sqlglot
    except ImportError:  # pragma: no cover
        return side
    return sqlglot.parse_one(side, read="duckdb").sql(dialect="duckdb")


def to_blocking_rule(rule: Any) -> BlockingRule:
    """Accept a :class:`BlockingRule`, a Splink SQL string, a Splink rule dict or a Splink
    ``BlockingRuleCreator`` / ``BlockingRule`` object; anything else is a SettingsError.

    >>> to_blocking_rule("l.first_name = r.first_name and l.dob = r.dob").expressions
    ('first_name', 'dob')
    """
    if isinstance(rule, BlockingRule):
        return rule
    if isinstance(rule, str):
        return _rule_from_sql(rule)
    if isinstance(rule, dict):
        sql = rule.get("blocking_rule")
        if not isinstance(sql, str):
            raise SettingsError(
                f"blocking rule dict {rule!r} has no 'blocking_rule' SQL string; {SUPPORTED}"
            )
        if rule.get("arrays_to_explode"):
            raise SettingsError(
                f"blocking rule {sql!r} uses arrays_to_explode, which gpulink does not support "
                f"yet; {SUPPORTED}"
            )
        return _rule_from_sql(
            sql,
            salting_partitions=rule.get("salting_partitions"),
            sql_dialect=rule.get("sql_dialect") or "duckdb",
        )
    # Splink objects, duck-typed so that splink stays optional.
    if hasattr(rule, "create_blocking_rule_dict"):  # splink BlockingRuleCreator
        return to_blocking_rule(rule.create_blocking_rule_dict("duckdb"))
    if hasattr(rule, "blocking_rule_sql"):  # splink.internals.blocking.BlockingRule
        explode = getattr(rule, "array_columns_to_explode", None)
        return to_blocking_rule(
            {"blocking_rule": rule.blocking_rule_sql, "arrays_to_explode": explode}
        )
    raise SettingsError(f"cannot use {rule!r} as a blocking rule; {SUPPORTED}")


def to_blocking_rules(rules: Any) -> list[BlockingRule]:
    """A list of rules from one rule or an iterable of rules (Splink's ``ensure_is_list``)."""
    if rules is None:
        return []
    if isinstance(rules, str | dict | BlockingRule) or hasattr(rules, "create_sql"):
        rules = [rules]
    return [to_blocking_rule(r) for r in rules]


def prediction_rules(settings) -> list[BlockingRule]:
    """The model's ``blocking_rules_to_generate_predictions``; a SettingsError when it has none
    (every step that scores the model's pairs needs at least one).

    >>> import gpulink as gl, gpulink.comparison_library as cl
    >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("city")],
    ...     blocking_rules_to_generate_predictions=[gl.block_on("dob")]).get_settings()
    >>> [r.sql for r in prediction_rules(s)]
    ['l."dob" = r."dob"']
    """
    rules = to_blocking_rules(settings.blocking_rules)
    if not rules:
        raise SettingsError(
            "the model has no blocking_rules_to_generate_predictions; add at least one, "
            "e.g. block_on('surname', 'dob')"
        )
    return rules


# --------------------------------------------------------------------------------------------
# The blocking plan
# --------------------------------------------------------------------------------------------


@dataclass
class BlockingPlan:
    """Every rule's candidate pairs as one pair-index space (layout: :mod:`gpulink.kernels.pairs`).

    Memory per record per rule: ``groups`` 4 B, ``members`` at most 4 B, and at most one
    segment per two records (48 B: ``seg_start``/``seg_a``/``seg_na``/``seg_b``/``seg_nb``/
    ``seg_rule`` int64), so at most 32 B per record per rule, usually far less (a segment per
    block of 2+ records; link_only: one per source present in a block, less one).
    """

    n_records: int
    link_type: str
    link_type_code: int
    groups: np.ndarray  # int32[n_rules, n_records], dense group id, -1 = null key
    members: np.ndarray  # int32[n_members], record indices per block, rule after rule
    seg_start: np.ndarray  # int64[n_segments + 1], pair-index prefix
    seg_a: np.ndarray  # int64 start of rows in members
    seg_na: np.ndarray  # int64 rows
    seg_b: np.ndarray  # int64 start of columns in members (== seg_a: triangle)
    seg_nb: np.ndarray  # int64 columns
    seg_rule: np.ndarray  # int64 rule of each segment
    rule_pair_start: np.ndarray  # int64[n_rules + 1]: rule k owns [start[k], start[k+1])
    source_codes: np.ndarray  # int32[n_records]

    @property
    def n_rules(self) -> int:
        return int(self.groups.shape[0])

    @property
    def n_segments(self) -> int:
        return int(self.seg_start.shape[0] - 1)

    @property
    def n_candidates(self) -> int:
        """Size of the pair-index space (candidate pairs before cross-rule dedup)."""
        return int(self.seg_start[-1])

    def rule_candidates(self) -> np.ndarray:
        """Candidate pairs per rule (each rule alone, link type applied; int64[n_rules])."""
        return np.diff(self.rule_pair_start)

    @property
    def nbytes(self) -> int:
        arrays = (self.groups, self.members, self.seg_start, self.seg_a, self.seg_na)
        arrays += (self.seg_b, self.seg_nb, self.seg_rule)
        return int(sum(a.nbytes for a in arrays))


def group_ids(code_arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Dense id of each record's key tuple (int32), -1 where any key code is null (-1).

    >>> group_ids([np.array([3, 3, -1, 5]), np.array([1, 1, 1, 1])]).tolist()
    [0, 0, -1, 1]
    """
    n = len(code_arrays[0])
    valid = np.ones(n, bool)
    for c in code_arrays:
        valid &= np.asarray(c) >= 0
    key = None
    for c in code_arrays:
        c = np.asarray(c)[valid].astype(np.int64)
        if key is None:
            key = c  # dictionary codes already identify the groups of one column
            continue
        width = int(c.max()) + 1 if len(c) else 1
        # key < n_valid and c < width <= 2^31 keep key * width + c inside int64
        ids, _ = dense_ids(key * width + c)
        key = ids.astype(np.int64)
    if len(code_arrays) == 1 and len(key):
        key, _ = dense_ids(key)  # dense, as promised, and no wider than the records
    out = np.full(n, -1, np.int32)
    out[valid] = key
    return out


def _resolve_link_type(table, link_type: str | None) -> str:
    link_type = link_type or getattr(table, "link_type", None) or "dedupe_only"
    from gpulink.kernels.pairs import LINK_TYPE_CODES

    if link_type not in LINK_TYPE_CODES:
        raise SettingsError(
            f"link_type={link_type!r} is not one of {', '.join(map(repr, LINK_TYPE_CODES))}"
        )
    return link_type


def _rule_segments(g: np.ndarray, src: np.ndarray, link_only: bool, base: int):
    """Members and segments of one rule (``base``: offset of its members in the plan)."""
    idx = np.flatnonzero(g >= 0)
    gv = g[idx].astype(np.int64)
    n_groups = int(gv.max()) + 1 if len(gv) else 0
    # idx is ascending: a stable order keeps record order within a group (and source)
    if link_only:
        n_src = int(src.max()) + 1 if len(src) else 1
        order = stable_order(gv * n_src + src[idx], n_groups * n_src)
    else:
        order = stable_order(gv, n_groups)
    members = idx[order].astype(np.int32)
    gs = gv[order]
    n = len(gs)
    if n == 0:
        z = np.zeros(0, np.int64)
        return members, z, z, z, z, z
    block_start = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    block_end = np.r_[block_start[1:], n]
    if not link_only:
        size = block_end - block_start
        keep = size >= 2
        a = block_start[keep] + base
        na = size[keep]
        return members, a, na, a.copy(), na.copy(), na * (na - 1) // 2
    ss = src[members].astype(np.int64)
    run_start = np.flatnonzero(np.r_[True, (gs[1:] != gs[:-1]) | (ss[1:] != ss[:-1])])
    run_end = np.r_[run_start[1:], n]
    run_block_end = block_end[np.searchsorted(block_start, run_start, side="right") - 1]
    keep = run_end < run_block_end  # the last source of a block has no later sources
    a = run_start[keep] + base
    na = (run_end - run_start)[keep]
    b = run_end[keep] + base
    nb = (run_block_end - run_end)[keep]
    return members, a, na, b, nb, na * nb


def build_plan(
    table, rules: Any, link_type: str | None = None, *, records: np.ndarray | None = None
) -> BlockingPlan:
    """The blocking plan of ``rules`` over an encoded :class:`~gpulink.table.RecordTable`.

    ``records``: a boolean mask over the records; only pairs of two kept records are planned
    (EM's record sampling).

    >>> import pyarrow as pa
    >>> from gpulink.table import encode_records
    >>> t = encode_records(pa.table({"unique_id": [1, 2, 3], "x": ["a", "a", "a"]}), ["x"])
    >>> build_plan(t, [block_on("x")], "dedupe_only").n_candidates
    3
    """
    rules = to_blocking_rules(rules)
    link_type = _resolve_link_type(table, link_type)
    from gpulink.kernels.pairs import LINK_TYPE_CODES

    n = int(table.n_records)
    src = np.asarray(table.source_codes, np.int32)
    if len(src) != n:
        src = np.zeros(n, np.int32)
    groups = np.full((len(rules), n), -1, np.int32)
    parts = []
    base = 0
    for k, rule in enumerate(rules):
        codes = []
        for e in rule.expressions:
            try:
                column = table.columns[e] if e in table.columns else table.column(e)
                codes.append(np.asarray(column.codes))
            except (KeyError, ImportError, AttributeError):
                raise SettingsError(
                    f"blocking rule {rule.sql!r} uses {e!r}, which is not an encoded column of "
                    f"the table (encoded: {', '.join(sorted(table.columns)) or 'none'}); "
                    "encode the table with this rule's expressions"
                ) from None
        groups[k] = group_ids(codes) if n else groups[k]
        if records is not None:
            groups[k][~records] = -1
        members, a, na, b, nb, npairs = _rule_segments(
            groups[k], src, link_type == "link_only", base
        )
        keep = npairs > 0
        parts.append((members, a[keep], na[keep], b[keep], nb[keep], npairs[keep], k))
        base += len(members)
    cat = lambda i, dt: (  # noqa: E731
        np.concatenate([p[i] for p in parts]).astype(dt) if parts else np.zeros(0, dt)
    )
    npairs = cat(5, np.int64)
    seg_start = np.zeros(len(npairs) + 1, np.int64)
    np.cumsum(npairs, out=seg_start[1:])
    seg_rule = (
        np.concatenate([np.full(len(p[5]), p[6], np.int64) for p in parts])
        if parts
        else np.zeros(0, np.int64)
    )
    per_rule = np.array([int(p[5].sum()) for p in parts], np.int64)
    rule_pair_start = np.zeros(len(rules) + 1, np.int64)
    np.cumsum(per_rule, out=rule_pair_start[1:])
    return BlockingPlan(
        n_records=n,
        link_type=link_type,
        link_type_code=LINK_TYPE_CODES[link_type],
        groups=groups,
        members=cat(0, np.int32),
        seg_start=seg_start,
        seg_a=cat(1, np.int64),
        seg_na=cat(2, np.int64),
        seg_b=cat(3, np.int64),
        seg_nb=cat(4, np.int64),
        seg_rule=seg_rule,
        rule_pair_start=rule_pair_start,
        source_codes=src,
    )


# --------------------------------------------------------------------------------------------
# Counting and enumeration (host drivers over the kernels)
# --------------------------------------------------------------------------------------------


@dataclass
class PairChunk:
    """Emitted pairs of one chunk: int32 record indices ``left < right`` and the int32 rule
    index ``match_key`` (Splink's ``match_key`` is ``str(match_key)``)."""

    left: np.ndarray
    right: np.ndarray
    match_key: np.ndarray

    def __len__(self) -> int:
        return len(self.left)

    def __iter__(self):  # so that ``left, right, key = chunk`` works
        return iter((self.left, self.right, self.match_key))


def _as_plan(table_or_plan, rules, link_type) -> BlockingPlan:
    if isinstance(table_or_plan, BlockingPlan):
        return table_or_plan
    return build_plan(table_or_plan, rules, link_type)


def _use_gpu(backend) -> bool:
    from gpulink.backend import resolve_backend

    return resolve_backend(backend).is_gpu


def count_pairs(
    table, rules: Any = None, link_type: str | None = None, *, backend="cpu"
) -> np.ndarray:
    """Exact number of pairs each rule emits (after cross-rule dedup), int64[n_rules].

    A counting pass: no pair is materialised. ``table`` may be a RecordTable or a BlockingPlan.

    >>> import pyarrow as pa
    >>> from gpulink.table import encode_records
    >>> t = encode_records(pa.table({"unique_id": [1, 2, 3], "x": ["a", "a", "a"],
    ...                              "y": ["b", "c", "c"]}), ["x", "y"])
    >>> count_pairs(t, [block_on("y"), block_on("x")], "dedupe_only").tolist()
    [1, 2]
    """
    plan = _as_plan(table, rules, link_type)
    if _use_gpu(backend):
        from gpulink.kernels.pairs_gpu import count_range_gpu

        return count_range_gpu(plan, 0, plan.n_candidates)
    from gpulink.kernels.pairs import count_range_cpu

    return count_range_cpu(plan, 0, plan.n_candidates)


def iter_blocked_pairs(
    table,
    rules: Any = None,
    link_type: str | None = None,
    *,
    chunk_pairs: int = 1 << 22,
    backend="cpu",
) -> Iterator[PairChunk]:
    """Yield the blocked pairs as :class:`PairChunk`\\ s, each from at most ``chunk_pairs``
    consecutive candidates, rule by rule, in a deterministic order.

    >>> import pyarrow as pa
    >>> from gpulink.table import encode_records
    >>> t = encode_records(pa.table({"unique_id": [1, 2, 3], "x": ["a", "a", "a"]}), ["x"])
    >>> [c.left.tolist() for c in iter_blocked_pairs(t, [block_on("x")], chunk_pairs=2)]
    [[0, 0], [1]]
    """
    if chunk_pairs < 1:
        raise SettingsError(f"chunk_pairs={chunk_pairs} must be a positive integer")
    plan = _as_plan(table, rules, link_type)
    if _use_gpu(backend):
        from gpulink.kernels.pairs_gpu import enumerate_range_gpu as enumerate_range
    else:
        from gpulink.kernels.pairs import enumerate_range_cpu as enumerate_range
    total = plan.n_candidates
    for p0 in range(0, total, chunk_pairs):
        left, right, key = enumerate_range(plan, p0, min(total, p0 + chunk_pairs))
        if len(left):
            yield PairChunk(left, right, key)


def blocked_pairs(table, rules: Any = None, link_type: str | None = None, **kwargs) -> PairChunk:
    """All blocked pairs at once (tests and small jobs; prefer :func:`iter_blocked_pairs`)."""
    chunks = list(iter_blocked_pairs(table, rules, link_type, **kwargs))
    if not chunks:
        z = np.zeros(0, np.int32)
        return PairChunk(z, z.copy(), z.copy())
    return PairChunk(
        *(np.concatenate([getattr(c, f) for c in chunks]) for f in ("left", "right", "match_key"))
    )


__all__ = [
    "BlockingPlan",
    "BlockingRule",
    "PairChunk",
    "block_on",
    "blocked_pairs",
    "build_plan",
    "count_pairs",
    "group_ids",
    "iter_blocked_pairs",
    "to_blocking_rule",
    "to_blocking_rules",
]
