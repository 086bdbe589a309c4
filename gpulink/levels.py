"""Comparison-level internals: column expressions, a small SQL reader, and level predicates.

A level is stored the way Splink stores it (a DuckDB ``sql_condition`` and a label), so that a
model moves between Splink and gpulink unchanged. To run it on gpulink the condition is read
back into a *predicate*: a tree of :class:`Leaf` (one test from the table in
:mod:`gpulink.kernels.program`) combined with AND / OR / NOT. Library levels and hand-written or
imported SQL take the same road, so what a level means never depends on where it came from.

The SQL reader understands the forms Splink's comparison libraries generate for DuckDB and the
simple hand-written equivalents (``"name_l" = "name_r"``, ``levenshtein(a_l, a_r) <= 2`` ...).
Anything else raises :class:`~gpulink.errors.SettingsError` naming the level and saying how to
express it with library levels. Nothing is ever evaluated.

>>> pred = condition_to_predicate('jaro_winkler_similarity("name_l", "name_r") >= 0.9')
>>> pred.kind == LEAF_JARO_WINKLER_GE, pred.cols, pred.threshold
(True, ('name',), 0.9)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from gpulink.errors import SettingsError
from gpulink.kernels.program import (
    LEAF_ABS_DIFF_LE,
    LEAF_ARRAY_INTERSECT_GE,
    LEAF_ARRAY_LEAST_LEN_LE,
    LEAF_ARRAY_SUBSET,
    LEAF_COSINE_GE,
    LEAF_DAMERAU_LE,
    LEAF_DISTANCE_KM_LE,
    LEAF_ELSE,
    LEAF_EXACT,
    LEAF_EXACT_AS_STRING,
    LEAF_JACCARD_GE,
    LEAF_JARO_GE,
    LEAF_JARO_WINKLER_GE,
    LEAF_LEVENSHTEIN_LE,
    LEAF_NULL,
    LEAF_PAIRWISE_DAMERAU_LE,
    LEAF_PAIRWISE_JARO_GE,
    LEAF_PAIRWISE_JW_GE,
    LEAF_PAIRWISE_LEV_LE,
    LEAF_PERCENT_DIFF_LE,
)

# ---------------------------------------------------------------------------------------------
# Tokens and AST
# ---------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<qid>"(?:[^"]|"")*")
  | (?P<str>'(?:[^']|'')*')
  | (?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op><=|>=|<>|!=|==|->|\|\||[=<>+\-*/(),\[\]])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Col:
    name: str
    quoted: bool = False


@dataclass(frozen=True)
class Lit:
    value: str | float | int | None


@dataclass(frozen=True)
class Func:
    name: str  # lower case
    args: tuple


@dataclass(frozen=True)
class Cast:
    expr: object
    to: str  # upper case type name


@dataclass(frozen=True)
class Bin:
    op: str  # = <> < > <= >= + - * / || AND OR
    a: object
    b: object


@dataclass(frozen=True)
class Unary:
    op: str  # NOT, -, ISNULL, NOTNULL
    a: object


@dataclass(frozen=True)
class Case:
    whens: tuple  # ((cond, value), ...)
    default: object


@dataclass(frozen=True)
class Lambda:
    param: str  # DuckDB's ``x -> body`` (a function argument)
    body: object


@dataclass(frozen=True)
class ListLit:
    items: tuple  # ``[a, b]``


@dataclass(frozen=True)
class Index:
    expr: object  # ``expr[index]`` (1-based, as DuckDB)
    index: object


class _SqlSyntaxError(Exception):
    pass


class _ThresholdError(Exception):
    """A condition gpulink can run, with a threshold its metric can never meet sensibly."""


def _tokenize(sql: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    while pos < len(sql):
        m = _TOKEN_RE.match(sql, pos)
        if m is None:
            raise _SqlSyntaxError(f"unexpected character {sql[pos]!r} at position {pos}")
        pos = m.end()
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group()))
    return out


class _Parser:
    """Precedence climbing over the SQL subset Splink's level conditions use."""

    def __init__(self, sql: str):
        self.toks = _tokenize(sql)
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("eof", "")

    def kw(self, word: str, k: int = 0) -> bool:
        kind, text = self.peek(k)
        return kind == "id" and text.upper() == word

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        kind, got = self.take()
        if got.upper() != text:
            raise _SqlSyntaxError(f"expected {text!r} but found {got!r}")

    def parse(self):
        node = self.or_()
        if self.peek()[0] != "eof":
            raise _SqlSyntaxError(f"unexpected {self.peek()[1]!r}")
        return node

    def or_(self):
        node = self.and_()
        while self.kw("OR"):
            self.take()
            node = Bin("OR", node, self.and_())
        return node

    def and_(self):
        node = self.not_()
        while self.kw("AND"):
            self.take()
            node = Bin("AND", node, self.not_())
        return node

    def not_(self):
        if self.kw("NOT"):
            self.take()
            return Unary("NOT", self.not_())
        return self.cmp()

    def cmp(self):
        node = self.concat()
        while True:
            kind, text = self.peek()
            if kind == "op" and text in ("=", "==", "<>", "!=", "<", ">", "<=", ">="):
                self.take()
                op = {"==": "=", "!=": "<>"}.get(text, text)
                node = Bin(op, node, self.concat())
            elif self.kw("IS"):
                self.take()
                negated = False
                if self.kw("NOT"):
                    self.take()
                    negated = True
                self.expect("NULL")
                node = Unary("NOTNULL" if negated else "ISNULL", node)
            else:
                return node

    def concat(self):
        node = self.add()
        while self.peek() == ("op", "||"):
            self.take()
            node = Bin("||", node, self.add())
        return node

    def add(self):
        node = self.mul()
        while self.peek()[0] == "op" and self.peek()[1] in "+-":
            op = self.take()[1]
            node = Bin(op, node, self.mul())
        return node

    def mul(self):
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            node = Bin(op, node, self.unary())
        return node

    def unary(self):
        if self.peek() == ("op", "-"):
            self.take()
            inner = self.unary()
            if isinstance(inner, Lit) and isinstance(inner.value, (int, float)):
                return Lit(-inner.value)
            return Unary("-", inner)
        node = self.primary()
        while self.peek() == ("op", "["):
            self.take()
            index = self.or_()
            self.expect("]")
            node = Index(node, index)
        return node

    def argument(self):
        """A function argument: an expression, or a lambda ``x -> body``."""
        kind, text = self.peek()
        if kind == "id" and self.peek(1) == ("op", "->"):
            self.take()
            self.take()
            return Lambda(text, self.or_())
        return self.or_()

    def primary(self):
        kind, text = self.take()
        if kind == "op" and text == "(":
            node = self.or_()
            self.expect(")")
            return node
        if kind == "op" and text == "[":
            items = []
            if self.peek() != ("op", "]"):
                items.append(self.or_())
                while self.peek() == ("op", ","):
                    self.take()
                    items.append(self.or_())
            self.expect("]")
            return ListLit(tuple(items))
        if kind == "num":
            value: float | int = float(text) if any(c in text for c in ".eE") else int(text)
            return Lit(value)
        if kind == "str":
            return Lit(text[1:-1].replace("''", "'"))
        if kind == "qid":
            return Col(text[1:-1].replace('""', '"'), quoted=True)
        if kind == "id":
            upper = text.upper()
            if upper == "NULL":
                return Lit(None)
            if upper == "CASE":
                return self.case()
            if upper == "CAST" and self.peek() == ("op", "("):
                self.take()
                expr = self.or_()
                self.expect("AS")
                type_words = []
                while self.peek() != ("op", ")"):
                    type_words.append(self.take()[1].upper())
                self.expect(")")
                return Cast(expr, " ".join(type_words))
            if self.peek() == ("op", "("):
                self.take()
                args = []
                if self.peek() != ("op", ")"):
                    args.append(self.argument())
                    while self.peek() == ("op", ","):
                        self.take()
                        args.append(self.argument())
                self.expect(")")
                return Func(text.lower(), tuple(args))
            return Col(text)
        raise _SqlSyntaxError(f"unexpected {text!r}")

    def case(self):
        whens = []
        while self.kw("WHEN"):
            self.take()
            cond = self.or_()
            self.expect("THEN")
            whens.append((cond, self.or_()))
        default = None
        if self.kw("ELSE"):
            self.take()
            default = self.or_()
        self.expect("END")
        return Case(tuple(whens), default)


def parse_sql(sql: str):
    """Parse one SQL expression of the supported subset into a small AST (raises SettingsError).

    >>> parse_sql('"a_l" = "a_r"')
    Bin(op='=', a=Col(name='a_l', quoted=True), b=Col(name='a_r', quoted=True))
    """
    try:
        return _Parser(sql).parse()
    except _SqlSyntaxError as exc:
        raise SettingsError(f"cannot read the SQL {sql!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Rendering (DuckDB SQL) and column-side handling
# ---------------------------------------------------------------------------------------------

_PLAIN_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Functions sqlglot spells in upper case when it renders DuckDB SQL (so that our text matches
# Splink's); anything else keeps the case it was written in, lower-cased.
_UPPER_FUNCS = {"lower", "upper", "substring", "nullif", "abs", "epoch", "coalesce", "trim"}
_RENAME_FUNCS = {"substr": "substring"}


def _quote_id(name: str, force: bool) -> str:
    if not force and _PLAIN_ID.match(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _render_lit(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value) if isinstance(value, float) else str(value)


def render(node, *, keep_quotes: bool = True) -> str:
    """Render an AST back to DuckDB SQL (identifiers quoted as written when ``keep_quotes``)."""
    r = lambda n: render(n, keep_quotes=keep_quotes)  # noqa: E731
    if isinstance(node, Col):
        return _quote_id(node.name, node.quoted and keep_quotes)
    if isinstance(node, Lit):
        return _render_lit(node.value)
    if isinstance(node, Func):
        name = _RENAME_FUNCS.get(node.name, node.name)
        name = name.upper() if name in _UPPER_FUNCS else name
        return f"{name}({', '.join(r(a) for a in node.args)})"
    if isinstance(node, Cast):
        return f"CAST({r(node.expr)} AS {node.to})"
    if isinstance(node, Bin):
        return f"({r(node.a)} {node.op} {r(node.b)})"
    if isinstance(node, Unary):
        if node.op == "ISNULL":
            return f"({r(node.a)} IS NULL)"
        if node.op == "NOTNULL":
            return f"({r(node.a)} IS NOT NULL)"
        sep = " " if node.op == "NOT" else ""
        return f"({node.op}{sep}{r(node.a)})"
    if isinstance(node, Lambda):
        return f"{node.param} -> {r(node.body)}"
    if isinstance(node, ListLit):
        return f"[{', '.join(r(x) for x in node.items)}]"
    if isinstance(node, Index):
        return f"{r(node.expr)}[{r(node.index)}]"
    if isinstance(node, Case):
        parts = " ".join(f"WHEN {r(c)} THEN {r(v)}" for c, v in node.whens)
        default = f" ELSE {r(node.default)}" if node.default is not None else ""
        return f"CASE {parts}{default} END"
    raise TypeError(node)


def _columns(node) -> list[Col]:
    if isinstance(node, Col):
        return [node]
    if isinstance(node, Func):
        return [c for a in node.args for c in _columns(a)]
    if isinstance(node, Cast):
        return _columns(node.expr)
    if isinstance(node, Bin):
        return _columns(node.a) + _columns(node.b)
    if isinstance(node, Unary):
        return _columns(node.a)
    if isinstance(node, Case):
        out = [c for w in node.whens for part in w for c in _columns(part)]
        return out + (_columns(node.default) if node.default is not None else [])
    if isinstance(node, Lambda):  # the parameter is no column
        return [c for c in _columns(node.body) if c != Col(node.param)]
    if isinstance(node, ListLit):
        return [c for x in node.items for c in _columns(x)]
    if isinstance(node, Index):
        return _columns(node.expr) + _columns(node.index)
    return []


def _map_columns(node, fn):
    if isinstance(node, Col):
        return fn(node)
    if isinstance(node, Func):
        return Func(node.name, tuple(_map_columns(a, fn) for a in node.args))
    if isinstance(node, Cast):
        return Cast(_map_columns(node.expr, fn), node.to)
    if isinstance(node, Bin):
        return Bin(node.op, _map_columns(node.a, fn), _map_columns(node.b, fn))
    if isinstance(node, Unary):
        return Unary(node.op, _map_columns(node.a, fn))
    if isinstance(node, Index):
        return Index(_map_columns(node.expr, fn), _map_columns(node.index, fn))
    if isinstance(node, ListLit):
        return ListLit(tuple(_map_columns(x, fn) for x in node.items))
    return node


def side_of(node) -> tuple[str | None, object]:
    """('l' | 'r' | None, the expression with the _l/_r suffix removed from every column).

    Raises _SqlSyntaxError when the expression mixes sides or names a column without a suffix.
    """
    cols = _columns(node)
    if not cols:
        return None, node
    sides = set()
    for c in cols:
        suffix = c.name[-2:].lower()
        if suffix not in ("_l", "_r"):
            raise _SqlSyntaxError(
                f"column {c.name!r} has no _l/_r suffix, so it is not known which record it "
                "belongs to"
            )
        sides.add(suffix[1])
    if len(sides) > 1:
        raise _SqlSyntaxError(f"{render(node)} mixes columns of the left and right records")
    return sides.pop(), _map_columns(node, lambda c: Col(c.name[:-2], c.quoted))


def _canonical_fallback(text: str) -> str:
    return text


def canonical_text(expr_node) -> str:
    """Canonical expression text of a side-free column expression (gpulink.expressions form)."""
    text = render(expr_node, keep_quotes=False)
    try:
        from gpulink.expressions import canonical
    except ImportError:  # the expressions module is optional while it is being written
        canonical = _canonical_fallback
    return canonical(text)


def duckdb_text(expr_node) -> str:
    """DuckDB SQL of a side-free column expression (evaluates it over the input table)."""
    return render(expr_node, keep_quotes=False)


# ---------------------------------------------------------------------------------------------
# Predicates
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """One test from the leaf table of :mod:`gpulink.kernels.program`.

    ``cols`` are canonical column expressions (one, or two for distance / reversed columns);
    ``sql`` the same as DuckDB SQL; ``kinds`` the value kind each column must be encoded as
    (None: any kind).
    """

    kind: int
    cols: tuple = ()
    threshold: float = 0.0
    sql: tuple = ()
    kinds: tuple = ()


@dataclass(frozen=True)
class Node:
    op: str  # "and" | "or" | "not"
    children: tuple = field(default_factory=tuple)


Predicate = Leaf | Node

ELSE_LEAF = Leaf(LEAF_ELSE)

_STRING_METRICS = {
    "levenshtein": (LEAF_LEVENSHTEIN_LE, "le"),
    "damerau_levenshtein": (LEAF_DAMERAU_LE, "le"),
    "jaro_similarity": (LEAF_JARO_GE, "ge"),
    "jaro": (LEAF_JARO_GE, "ge"),
    "jaro_winkler_similarity": (LEAF_JARO_WINKLER_GE, "ge"),
    "jaro_winkler": (LEAF_JARO_WINKLER_GE, "ge"),
    "jaccard": (LEAF_JACCARD_GE, "ge"),
}
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "<>": "<>"}
_LENGTH_FUNCS = ("array_length", "len", "length", "array_size", "size")
_INTERSECT_FUNCS = ("list_intersect", "array_intersect")
_COSINE_FUNCS = ("array_cosine_similarity", "list_cosine_similarity")
# Splink's PairwiseStringDistanceFunctionLevel: the metric over element pairs, and whether its
# aggregate is the maximum (a similarity) or the minimum (a distance)
_PAIRWISE_METRICS = {
    "levenshtein": (LEAF_PAIRWISE_LEV_LE, "le"),
    "damerau_levenshtein": (LEAF_PAIRWISE_DAMERAU_LE, "le"),
    "jaro_similarity": (LEAF_PAIRWISE_JARO_GE, "ge"),
    "jaro": (LEAF_PAIRWISE_JARO_GE, "ge"),
    "jaro_winkler_similarity": (LEAF_PAIRWISE_JW_GE, "ge"),
    "jaro_winkler": (LEAF_PAIRWISE_JW_GE, "ge"),
}
_LIST_AGGREGATES = {"list_min": "le", "array_min": "le", "list_max": "ge", "array_max": "ge"}
_TRANSFORM_FUNCS = ("list_transform", "array_transform", "list_apply", "array_apply", "apply")


def _leaf(kind: int, exprs: list, threshold: float, kind_needed: str | None) -> Leaf:
    return Leaf(
        kind,
        tuple(canonical_text(e) for e in exprs),
        float(threshold),
        tuple(duckdb_text(e) for e in exprs),
        tuple(kind_needed for _ in exprs),
    )


def _pair(a, b):
    """The shared side-free expression of an l/r pair of expressions, or raise."""
    sa, ea = side_of(a)
    sb, eb = side_of(b)
    if {sa, sb} != {"l", "r"}:
        raise _SqlSyntaxError(f"{render(a)} and {render(b)} are not a left/right pair")
    if ea != eb:
        raise _SqlSyntaxError(f"{render(a)} and {render(b)} compare different expressions")
    return ea


def _num(node) -> float:
    if isinstance(node, Lit) and isinstance(node.value, (int, float)):
        return float(node.value)
    # Splink writes thresholds like floor(86400 / 86400) in some dialects; not in DuckDB.
    raise _SqlSyntaxError(f"expected a number but found {render(node)}")


def _ge_threshold(op: str, t: float) -> float:
    """Threshold t' such that (x op t) == (x >= t') for float64 x, op in (>=, >)."""
    return t if op == ">=" else math.nextafter(t, math.inf)


def _le_threshold(op: str, t: float) -> float:
    """Threshold t' such that (x op t) == (x <= t') for float64 x, op in (<=, <)."""
    return t if op == "<=" else math.nextafter(t, -math.inf)


def _unwrap_epoch(node):
    if isinstance(node, Func) and node.name == "epoch" and len(node.args) == 1:
        return node.args[0], "timestamp"
    return node, "number"


def _abs_diff_operands(node):
    """(a, b, kind) of ABS(a - b) (or ABS(EPOCH(a) - EPOCH(b))), else None."""
    if not (isinstance(node, Func) and node.name == "abs" and len(node.args) == 1):
        return None
    inner = node.args[0]
    if not (isinstance(inner, Bin) and inner.op == "-"):
        return None
    a, ka = _unwrap_epoch(inner.a)
    b, kb = _unwrap_epoch(inner.b)
    if ka != kb:
        return None
    return a, b, ka


def _percent_operands(node):
    """(a, b) of Splink's ABS(a - b) / (CASE WHEN b > a THEN b ELSE a END), else None."""
    if not (isinstance(node, Bin) and node.op == "/"):
        return None
    diff = _abs_diff_operands(node.a)
    case = node.b
    if diff is None or diff[2] != "number" or not isinstance(case, Case):
        return None
    a, b, _ = diff
    if len(case.whens) != 1:
        return None
    (cond, then), other = case.whens[0], case.default
    # CASE WHEN y > x THEN y ELSE x END == greatest(x, y) for non-null x, y
    if not (isinstance(cond, Bin) and cond.op in (">", ">=")):
        return None
    if {cond.a, cond.b} != {a, b} or then != cond.a or other != cond.b:
        return None
    return a, b


def _distance_operands(node):
    """(lat, long) side-free expressions of Splink's great-circle SQL, else None."""
    if not (isinstance(node, Cast) and node.to in ("FLOAT", "REAL", "FLOAT4")):
        return None
    prod = node.expr
    if not (isinstance(prod, Bin) and prod.op == "*" and prod.b == Lit(6371)):
        return None
    acos = prod.a
    if not (isinstance(acos, Func) and acos.name == "acos" and isinstance(acos.args[0], Case)):
        return None
    radians = []

    def walk(n):
        if isinstance(n, Func) and n.name == "radians":
            radians.append(n.args[0])
        elif isinstance(n, Func):
            for a in n.args:
                walk(a)
        elif isinstance(n, Bin):
            walk(n.a)
            walk(n.b)
        elif isinstance(n, Case):
            for c, v in n.whens:
                walk(c)
                walk(v)
            if n.default is not None:
                walk(n.default)

    walk(acos.args[0])
    lats = [x for x in radians if not isinstance(x, Bin)]
    longs = [x for x in radians if isinstance(x, Bin) and x.op == "-"]
    if not lats or not longs:
        return None
    lat = _pair(*lats[:2])
    lng = _pair(longs[0].a, longs[0].b)
    for x in lats:
        if side_of(x)[1] != lat:
            return None
    for x in longs:
        if _pair(x.a, x.b) != lng:
            return None
    return lat, lng


def _length_of(node):
    """The argument of ``array_length(x)`` (or a DuckDB synonym), else None."""
    if isinstance(node, Func) and node.name in _LENGTH_FUNCS and len(node.args) == 1:
        return node.args[0]
    return None


def _intersect_size_operand(node):
    """The side-free array of ``array_length(list_intersect(x_l, x_r))``, else None."""
    inner = _length_of(node)
    if isinstance(inner, Func) and inner.name in _INTERSECT_FUNCS and len(inner.args) == 2:
        return _pair(*inner.args)
    return None


def _least_length_operand(node):
    """The side-free array of ``least(array_length(x_l), array_length(x_r))``, else None."""
    if not (isinstance(node, Func) and node.name == "least" and len(node.args) == 2):
        return None
    a, b = (_length_of(x) for x in node.args)
    if a is None or b is None:
        return None
    return _pair(a, b)


def _transform_args(node):
    """(list, lambda) of ``list_transform(list, x -> ...)`` (or a DuckDB synonym), else None."""
    if (
        isinstance(node, Func)
        and node.name in _TRANSFORM_FUNCS
        and len(node.args) == 2
        and isinstance(node.args[1], Lambda)
    ):
        return node.args
    return None


def _pairwise_operand(node):
    """(metric name, aggregate direction, side-free array) of the SQL Splink's
    PairwiseStringDistanceFunctionLevel writes, else None::

        list_min(list_transform(flatten(list_transform(a_l, x -> list_transform(a_r,
            y -> [x, y]))), pair -> levenshtein(pair[1], pair[2])))
    """
    if not (isinstance(node, Func) and node.name in _LIST_AGGREGATES and len(node.args) == 1):
        return None
    scored = _transform_args(node.args[0])
    if scored is None:
        return None
    flat, score = scored
    if not (isinstance(flat, Func) and flat.name == "flatten" and len(flat.args) == 1):
        return None
    outer = _transform_args(flat.args[0])
    if outer is None:
        return None
    left, lam_x = outer
    inner = _transform_args(lam_x.body)
    if inner is None:
        return None
    right, lam_y = inner
    if lam_x.param == lam_y.param or lam_y.body != ListLit((Col(lam_x.param), Col(lam_y.param))):
        return None
    metric = score.body
    p = Col(score.param)
    if not (
        isinstance(metric, Func)
        and metric.name in _PAIRWISE_METRICS
        and metric.args == (Index(p, Lit(1)), Index(p, Lit(2)))
    ):
        return None
    return metric.name, _LIST_AGGREGATES[node.name], _pair(left, right)


def _other_direction(
    kind: int, direction: str, op: str, expr, t: float, kind_needed: str = "string"
) -> Predicate:
    """A string metric compared against its leaf's direction, as NOT over that leaf.

    ``d >= t`` is ``NOT (d < t)`` and ``d > t`` is ``NOT (d <= t)`` for a distance ``d``;
    ``s <= t`` is ``NOT (s > t)`` and ``s < t`` is ``NOT (s >= t)`` for a similarity ``s``.
    Three-valued logic keeps a null UNKNOWN under NOT, as in SQL.
    """
    if direction == "le":
        t2 = _le_threshold("<" if op == ">=" else "<=", t)
        leaf = _leaf(kind, [expr], t2, kind_needed)
        if t2 < 0:  # a distance is never negative: TRUE for every non-null pair
            leaf0 = _leaf(kind, [expr], 0.0, kind_needed)
            return Node("or", (leaf0, Node("not", (leaf0,))))
        return Node("not", (leaf,))
    t2 = _ge_threshold(">" if op == "<=" else ">=", t)
    return Node("not", (_leaf(kind, [expr], t2, kind_needed),))


def _check_fraction(t: float, what: str) -> None:
    # The level library refuses these thresholds (JaroWinklerLevel(c, 1.5)); SQL must too.
    if not 0 <= t <= 1:
        raise _ThresholdError(
            f"{what} must be between 0 and 1 (the metric's range), got {t}; a level past the "
            "range never (or always) matches"
        )


def _comparison_to_leaf(node: Bin) -> Predicate:
    op, a, b = node.op, node.a, node.b
    if isinstance(a, Lit) and not isinstance(b, Lit):  # 0.9 <= f(x_l, x_r)
        op, a, b = _FLIP[op], b, a
    if op == "=":
        for x, y in ((a, b), (b, a)):
            subset = _intersect_size_operand(x)
            if subset is not None and _least_length_operand(y) == subset:
                return _leaf(LEAF_ARRAY_SUBSET, [subset], 0.0, "array")
        least = _least_length_operand(a)
        if least is not None and b == Lit(0):  # lengths are never negative
            return _leaf(LEAF_ARRAY_LEAST_LEN_LE, [least], 0.0, "array")
        if isinstance(b, Lit):
            raise _SqlSyntaxError(
                "comparing a column with a literal value is not supported on gpulink "
                "(LiteralMatchLevel); derive a column (e.g. a 0/1 flag) before linking and "
                "use ExactMatchLevel on it"
            )
        sa, ea = side_of(a)
        sb, eb = side_of(b)
        if {sa, sb} != {"l", "r"}:
            raise _SqlSyntaxError(f"{render(node)} does not compare the two records")
        if ea == eb:
            return _leaf(LEAF_EXACT, [ea], 0.0, None)
        left, right = (ea, eb) if sa == "l" else (eb, ea)
        return _leaf(LEAF_EXACT_AS_STRING, [left, right], 0.0, None)
    pairwise = _pairwise_operand(a)
    if pairwise is not None:
        name, aggregate, expr = pairwise
        kind, direction = _PAIRWISE_METRICS[name]
        if aggregate != direction:
            raise _SqlSyntaxError(
                f"the {'greatest' if aggregate == 'ge' else 'least'} {name} over element pairs "
                "is not supported; gpulink computes the most similar pair (list_min of a "
                "distance, list_max of a similarity), as PairwiseStringDistanceFunctionLevel"
            )
        t = _num(b)
        if direction == "ge":
            _check_fraction(t, f"the pairwise {name} threshold")
        if direction == "le" and op in ("<=", "<"):
            return _leaf(kind, [expr], _le_threshold(op, t), "array")
        if direction == "ge" and op in (">=", ">"):
            return _leaf(kind, [expr], _ge_threshold(op, t), "array")
        if op in ("<=", "<", ">=", ">"):
            return _other_direction(kind, direction, op, expr, t, "array")
        raise _SqlSyntaxError(f"the pairwise {name} {op} is not a level gpulink can run")
    if isinstance(a, Func) and a.name in _STRING_METRICS and len(a.args) == 2:
        kind, direction = _STRING_METRICS[a.name]
        expr = _pair(*a.args)
        t = _num(b)
        if direction == "ge":
            _check_fraction(t, f"the {a.name} threshold")
        if direction == "le" and op in ("<=", "<"):
            return _leaf(kind, [expr], _le_threshold(op, t), "string")
        if direction == "ge" and op in (">=", ">"):
            return _leaf(kind, [expr], _ge_threshold(op, t), "string")
        if op in ("<=", "<", ">=", ">"):
            return _other_direction(kind, direction, op, expr, t)
        raise _SqlSyntaxError(f"{a.name}(...) {op} is not a similarity level gpulink can run")
    if isinstance(a, Func) and a.name in _COSINE_FUNCS and len(a.args) == 2:
        expr = _pair(*a.args)
        t = _num(b)
        if not -1 <= t <= 1:
            raise _ThresholdError(
                f"the {a.name} threshold must be between -1 and 1 (the metric's range), got {t}"
            )
        if op != ">=":
            # FLOAT[n] vectors compare in float32, where nextafter in float64 is no help
            raise _SqlSyntaxError(
                f"{a.name}(...) {op} is not supported; write the level as {a.name}(...) >= t "
                "(CosineSimilarityLevel)"
            )
        return _leaf(LEAF_COSINE_GE, [expr], t, "vector")
    if op in ("<=", "<"):
        least = _least_length_operand(a)
        if least is not None:
            return _leaf(LEAF_ARRAY_LEAST_LEN_LE, [least], _le_threshold(op, _num(b)), "array")
        diff = _abs_diff_operands(a)
        if diff is not None:
            expr = _pair(diff[0], diff[1])
            return _leaf(LEAF_ABS_DIFF_LE, [expr], _le_threshold(op, _num(b)), diff[2])
        dist = _distance_operands(a)
        if dist is not None:
            return _leaf(LEAF_DISTANCE_KM_LE, list(dist), _le_threshold(op, _num(b)), "number")
        if op == "<":
            pct = _percent_operands(a)
            if pct is not None:
                _check_fraction(_num(b), "the percentage difference threshold")
                return _leaf(LEAF_PERCENT_DIFF_LE, [_pair(*pct)], _num(b), "number")
    if op in (">=", ">"):
        if (
            isinstance(a, Func)
            and a.name in ("array_length", "len", "length", "array_size", "size")
            and len(a.args) == 1
            and isinstance(a.args[0], Func)
            and a.args[0].name in ("list_intersect", "array_intersect")
        ):
            expr = _pair(*a.args[0].args)
            return _leaf(LEAF_ARRAY_INTERSECT_GE, [expr], _ge_threshold(op, _num(b)), "array")
    raise _SqlSyntaxError(f"{render(node)} is not a comparison gpulink can run")


def _flatten(node, op: str) -> list:
    if isinstance(node, Bin) and node.op == op:
        return _flatten(node.a, op) + _flatten(node.b, op)
    return [node]


def _to_predicate_group(parts: list, negated: bool) -> list:
    """Children of a flattened OR (or AND, ``negated``), in their written order.

    One-sided null tests pair up: ``x_l IS NULL OR x_r IS NULL`` is LEAF_NULL(x) and
    ``x_l IS NOT NULL AND x_r IS NOT NULL`` is NOT LEAF_NULL(x); the pair takes the place of its
    first test. A test of one side only raises.
    """
    want = "NOTNULL" if negated else "ISNULL"
    sides: dict = {}
    slots: list = []
    for p in parts:
        if isinstance(p, Unary) and p.op == want:
            side, expr = side_of(p.a)
            if side is None:
                raise _SqlSyntaxError(f"{render(p)} does not test a record's column")
            if expr not in sides:
                sides[expr] = set()
                slots.append(("null", expr))
            sides[expr].add(side)
        else:
            slots.append(("other", p))
    children: list[Predicate] = []
    for what, item in slots:
        if what == "other":
            children.append(_to_predicate(item))
            continue
        if sides[item] != {"l", "r"}:
            raise _SqlSyntaxError(
                f"a null test on one record only ({render(item)}) is not supported; test "
                "both records (NullLevel)"
            )
        leaf = _leaf(LEAF_NULL, [item], 0.0, None)
        children.append(Node("not", (leaf,)) if negated else leaf)
    return children


def _to_predicate(node) -> Predicate:
    if isinstance(node, Bin) and node.op in ("AND", "OR"):
        children = _to_predicate_group(_flatten(node, node.op), negated=node.op == "AND")
        if len(children) == 1:
            return children[0]
        return Node(node.op.lower(), tuple(children))
    if isinstance(node, Unary) and node.op == "NOT":
        return Node("not", (_to_predicate(node.a),))
    if isinstance(node, Unary) and node.op in ("ISNULL", "NOTNULL"):
        raise _SqlSyntaxError(
            f"a null test on one record only ({render(node)}) is not supported; test both "
            "records (NullLevel)"
        )
    if isinstance(node, Bin) and node.op in ("=", "<>", "<", ">", "<=", ">="):
        if node.op == "<>":
            return Node("not", (_comparison_to_leaf(Bin("=", node.a, node.b)),))
        return _comparison_to_leaf(node)
    raise _SqlSyntaxError(f"{render(node)} is not a condition gpulink can run")


def condition_to_predicate(sql_condition: str, where: str = "") -> Predicate:
    """Read a Splink level ``sql_condition`` into a predicate (raises SettingsError).

    ``where`` names the level in the error message.

    >>> condition_to_predicate("ELSE") == ELSE_LEAF
    True
    >>> condition_to_predicate('"dob_l" IS NULL OR "dob_r" IS NULL').kind == LEAF_NULL
    True
    """
    if sql_condition.strip().upper() == "ELSE":
        return ELSE_LEAF
    at = f" in {where}" if where else ""
    try:
        return _to_predicate(parse_sql(sql_condition))
    except _ThresholdError as exc:
        raise SettingsError(f"the level condition {sql_condition.strip()!r}{at}: {exc}") from None
    except (_SqlSyntaxError, SettingsError) as exc:
        raise SettingsError(
            f"the level condition {sql_condition.strip()!r}{at} cannot run on gpulink: {exc}. "
            "gpulink runs the conditions of Splink's comparison libraries (exact, null, "
            "Levenshtein, Damerau-Levenshtein, Jaro, Jaro-Winkler, Jaccard, absolute, date "
            "and percentage difference, distance in km, array intersection and subset, "
            "cosine similarity, pairwise string distances of arrays, reversed columns) "
            "combined with And/Or/Not; write the level with "
            "gpulink.comparison_level_library (e.g. cll.And(cll.ExactMatchLevel('a'), "
            "cll.LevenshteinLevel('b', 1))) or derive a column before linking"
        ) from None


def iter_leaves(pred: Predicate):
    """Every leaf of a predicate, in postfix order."""
    if isinstance(pred, Leaf):
        yield pred
    else:
        for c in pred.children:
            yield from iter_leaves(c)


def is_single_exact_on(pred: Predicate) -> str | None:
    """The column of a level that is exactly ``col_l = col_r`` on a pure column, else None.

    Mirrors Splink's ``_is_exact_match`` / ``_exact_match_colnames``, used to find the u of the
    exact-match level for term-frequency adjustments.
    """
    if isinstance(pred, Leaf) and pred.kind == LEAF_EXACT and _PLAIN_ID.match(pred.sql[0]):
        return pred.sql[0]
    return None


# ---------------------------------------------------------------------------------------------
# Column expressions (Splink's ColumnExpression, DuckDB SQL only)
# ---------------------------------------------------------------------------------------------


class ColumnExpression:
    """A column, or a SQL expression of columns, with optional transforms (Splink's API).

    >>> ce = ColumnExpression("name").lower().substr(1, 3)
    >>> ce.name_l
    'SUBSTRING(LOWER("name_l"), 1, 3)'
    >>> ce.label
    'transformed name'
    """

    def __init__(self, sql_expression: str):
        if not isinstance(sql_expression, str) or not sql_expression.strip():
            raise SettingsError(
                f"a column must be a non-empty string, got {sql_expression!r}; pass a column "
                "name such as 'first_name' or an expression such as 'lower(first_name)'"
            )
        self.raw_sql_expression = sql_expression
        self.operations: list[tuple] = []

    @staticmethod
    def instantiate_if_str(value: str | ColumnExpression) -> ColumnExpression:
        if isinstance(value, ColumnExpression):
            return value
        return ColumnExpression(value)

    def _with(self, op: tuple) -> ColumnExpression:
        clone = ColumnExpression(self.raw_sql_expression)
        clone.operations = [*self.operations, op]
        return clone

    def lower(self) -> ColumnExpression:
        """Lower-case the value."""
        return self._with(("lower",))

    def substr(self, start: int, length: int) -> ColumnExpression:
        """Substring of ``length`` characters from ``start`` (1-based)."""
        return self._with(("substr", start, length))

    def cast_to_string(self) -> ColumnExpression:
        """Cast the value to text."""
        return self._with(("cast_to_string",))

    def regex_extract(self, pattern: str, capture_group: int = 0) -> ColumnExpression:
        """The part matching ``pattern`` (NULL when nothing matches)."""
        return self._with(("regex_extract", pattern, capture_group))

    def nullif(self, null_value: str) -> ColumnExpression:
        """NULL where the value equals ``null_value``."""
        return self._with(("nullif", null_value))

    def try_parse_date(self, date_format: str | None = None) -> ColumnExpression:
        """Parse a string as a date (NULL where it does not parse)."""
        return self._with(("try_parse", date_format or "%Y-%m-%d"))

    def try_parse_timestamp(self, timestamp_format: str | None = None) -> ColumnExpression:
        """Parse a string as a timestamp (NULL where it does not parse)."""
        return self._with(("try_parse", timestamp_format or "%Y-%m-%dT%H:%M:%SZ"))

    @property
    def raw_sql_is_pure_column_or_column_reference(self) -> bool:
        # Splink's heuristic: parentheses or || mean an expression
        raw = self.raw_sql_expression
        return not (re.search(r"\([^)]*\)", raw) or "||" in raw)

    @property
    def is_pure_column_or_column_reference(self) -> bool:
        return not self.operations and self.raw_sql_is_pure_column_or_column_reference

    def _base(self, suffix: str) -> str:
        raw = self.raw_sql_expression
        if self.raw_sql_is_pure_column_or_column_reference:
            name = raw[1:-1] if len(raw) > 1 and raw[0] == raw[-1] == '"' else raw
            return _quote_id(name + suffix, True)
        node = _map_columns(parse_sql(raw), lambda c: Col(c.name + suffix, c.quoted))
        return render(node)

    def _apply(self, sql: str) -> str:
        for op in self.operations:
            if op[0] == "lower":
                sql = f"LOWER({sql})"
            elif op[0] == "substr":
                sql = f"SUBSTRING({sql}, {op[1]}, {op[2]})"
            elif op[0] == "cast_to_string":
                sql = f"CAST({sql} AS TEXT)"
            elif op[0] == "regex_extract":
                sql = f"NULLIF(regexp_extract({sql}, '{op[1]}', {op[2]}), '')"
            elif op[0] == "nullif":
                sql = f"NULLIF({sql}, {_render_lit(op[1])})"
            elif op[0] == "try_parse":
                sql = f"try_strptime({sql}, '{op[1]}')"
        return sql

    @property
    def name(self) -> str:
        return self._apply(self._base(""))

    @property
    def name_l(self) -> str:
        return self._apply(self._base("_l"))

    @property
    def name_r(self) -> str:
        return self._apply(self._base("_r"))

    @property
    def l_name(self) -> str:
        """The expression on the left record of a blocking rule, as Splink writes it.

        >>> ColumnExpression("surname").lower().substr(1, 3).l_name
        'SUBSTRING(LOWER(l."surname"), 1, 3)'
        """
        from gpulink.blocking import _side_sql

        return self._apply(_side_sql(self.raw_sql_expression, "l"))

    @property
    def r_name(self) -> str:
        """The expression on the right record of a blocking rule, as Splink writes it."""
        from gpulink.blocking import _side_sql

        return self._apply(_side_sql(self.raw_sql_expression, "r"))

    @property
    def output_column_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9_]", "_", self.raw_sql_expression)

    @property
    def label(self) -> str:
        prefix = "transformed " if self.operations else ""
        return prefix + self.raw_sql_expression

    def __repr__(self) -> str:
        return f"ColumnExpression(sql_expression='{self.raw_sql_expression}')"
