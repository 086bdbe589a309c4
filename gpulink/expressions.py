"""Column expressions, as Splink users write them in SQL, parsed and evaluated with Arrow.

Blocking rules and comparisons name columns or simple SQL transforms of them:
``first_name``, ``"first name"``, ``lower(surname)``, ``substr(dob, 1, 4)``,
``regexp_extract(email, '@([^@]+)$', 1)``, ``try_strptime(dob, '%Y-%m-%d')``... This module parses
that small SQL subset, gives each expression a stable canonical text (the key of the encoded column
in :class:`gpulink.table.RecordTable`) and evaluates it, vectorised, with ``pyarrow.compute``,
following DuckDB's semantics (Splink's default backend) exactly where the tests could check them:

* ``substr``/``substring`` are 1-based, count code points, and treat ``start <= 0`` and negative
  lengths as DuckDB does (``substr('hello', 0, 3) = 'he'``, ``substr('hello', -2, 3) = 'lo'``).
* ``regexp_extract`` uses RE2 (as DuckDB does); no match gives ``''``, a null input gives null.
* ``trim`` removes spaces only (DuckDB), not every kind of whitespace.
* ``try_strptime`` gives null for an unparsable value; ``strptime`` raises
  :class:`~gpulink.errors.InputError` naming the value (DuckDB raises too).

>>> import pyarrow as pa
>>> e = parse("SUBSTRING(\\"surname\\", 1, 3)")
>>> e.canonical, e.columns
('substr(surname, 1, 3)', ('surname',))
>>> e.evaluate(pa.table({"surname": ["Smith", None, "Li"]})).to_pylist()
['Smi', None, 'Li']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.errors import InputError, SettingsError

__all__ = [
    "SUPPORTED_FUNCTIONS",
    "Cast",
    "Column",
    "Expression",
    "Function",
    "Literal",
    "canonical",
    "parse",
]

# function name -> (canonical name, min args, max args)
_FUNCTIONS: dict[str, tuple[str, int, int]] = {
    "lower": ("lower", 1, 1),
    "upper": ("upper", 1, 1),
    "trim": ("trim", 1, 2),
    "ltrim": ("ltrim", 1, 2),
    "rtrim": ("rtrim", 1, 2),
    "substr": ("substr", 2, 3),
    "substring": ("substr", 2, 3),
    "left": ("left", 2, 2),
    "right": ("right", 2, 2),
    "regexp_extract": ("regexp_extract", 2, 3),
    "regex_extract": ("regexp_extract", 2, 3),
    "strptime": ("strptime", 2, 2),
    "try_strptime": ("try_strptime", 2, 2),
    "nullif": ("nullif", 2, 2),
    "coalesce": ("coalesce", 1, 64),
    "concat": ("concat", 1, 64),
    "length": ("length", 1, 1),
}

# SQL type name -> canonical type name
_CAST_TYPES = {
    "varchar": "varchar",
    "text": "varchar",
    "string": "varchar",
    "char": "varchar",
    "bpchar": "varchar",
    "int": "bigint",
    "integer": "bigint",
    "int4": "bigint",
    "bigint": "bigint",
    "int8": "bigint",
    "int64": "bigint",
    "smallint": "bigint",
    "tinyint": "bigint",
    "double": "double",
    "float8": "double",
    "float": "double",
    "real": "double",
    "float4": "double",
    "numeric": "double",
    "decimal": "double",
    "date": "date",
    "timestamp": "timestamp",
    "datetime": "timestamp",
}

SUPPORTED_FUNCTIONS = (
    "lower(x), upper(x), trim(x[, chars]), ltrim, rtrim, substr(x, start[, length]) / "
    "substring, left(x, n), right(x, n), regexp_extract(x, 'pattern'[, group]) / regex_extract, "
    "strptime(x, 'format'), try_strptime(x, 'format'), nullif(x, value), coalesce(x, ...), "
    "concat(x, ...), x || y, length(x), cast(x AS varchar|bigint|double|date|timestamp), "
    "try_cast(...), x[i] (array element, 1-based)"
)

_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TIME_DIRECTIVES = re.compile(r"%[HIMSpfzZTcXrR]")

logger = logging.getLogger("gpulink")


# ---------------------------------------------------------------------------------------------
# the syntax tree
# ---------------------------------------------------------------------------------------------


class Expression:
    """A parsed column expression. ``columns``: the raw input columns it reads, in order."""

    @property
    def columns(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def canonical(self) -> str:
        raise NotImplementedError

    @property
    def is_column(self) -> bool:
        """True for a bare column reference (no transform)."""
        return False

    def evaluate(self, data: pa.Table | Mapping[str, pa.Array] | pa.Array) -> pa.Array:
        """Evaluate on ``data``: a table (or mapping) holding :attr:`columns`, or, for an
        expression of a single column, the array of that column itself.

        >>> parse("lower(x)").evaluate(pa.array(["Ab", None])).to_pylist()
        ['ab', None]
        """
        if isinstance(data, (pa.Array, pa.ChunkedArray)):
            if len(self.columns) != 1:
                raise SettingsError(
                    f"expression {self.canonical!r} reads {len(self.columns)} columns "
                    f"({', '.join(self.columns)}); pass a table, not a single array"
                )
            env = {self.columns[0]: _combine(data)}
        else:
            env = {}
            for name in self.columns:
                if name not in (data.column_names if isinstance(data, pa.Table) else data):
                    raise InputError(
                        f"column {name!r} used by expression {self.canonical!r} is missing"
                    )
                env[name] = _combine(data[name])
        return self._eval(env)

    def _eval(self, env: dict[str, pa.Array]) -> pa.Array:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.canonical

    def __repr__(self) -> str:
        return f"Expression({self.canonical!r})"


@dataclass(frozen=True, repr=False)
class Column(Expression):
    """A raw input column."""

    name: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def canonical(self) -> str:
        return _quote_name(self.name)

    @property
    def is_column(self) -> bool:
        return True

    def _eval(self, env):
        return env[self.name]


@dataclass(frozen=True, repr=False)
class Literal(Expression):
    """A string or integer literal (only as a function argument)."""

    value: str | int | None

    @property
    def columns(self) -> tuple[str, ...]:
        return ()

    @property
    def canonical(self) -> str:
        if self.value is None:
            return "null"
        if isinstance(self.value, str):
            return "'" + self.value.replace("'", "''") + "'"
        return str(self.value)

    def _eval(self, env):
        raise SettingsError(
            f"a literal ({self.canonical}) cannot be a column expression on its own"
        )


@dataclass(frozen=True, repr=False)
class Cast(Expression):
    """``cast(x AS type)`` or ``try_cast(x AS type)``."""

    arg: Expression
    type_name: str
    try_: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return self.arg.columns

    @property
    def canonical(self) -> str:
        fn = "try_cast" if self.try_ else "cast"
        return f"{fn}({self.arg.canonical} as {self.type_name})"

    def _eval(self, env):
        return _cast(self.arg._eval(env), self.type_name, self.try_, self.canonical)


@dataclass(frozen=True, repr=False)
class Index(Expression):
    """``x[i]``: the i-th element of an array column, 1-based; negative counts from the end."""

    arg: Expression
    index: int

    @property
    def columns(self) -> tuple[str, ...]:
        return self.arg.columns

    @property
    def canonical(self) -> str:
        return f"{self.arg.canonical}[{self.index}]"

    def _eval(self, env):
        return _array_element(self.arg._eval(env), self.index, self.canonical)


@dataclass(frozen=True, repr=False)
class Function(Expression):
    """A function call such as ``substr(x, 1, 3)`` (``name`` is the canonical function name)."""

    name: str
    args: tuple[Expression, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for a in self.args:
            for c in a.columns:
                seen.setdefault(c, None)
        return tuple(seen)

    @property
    def canonical(self) -> str:
        if self.name == "||":
            return "(" + " || ".join(a.canonical for a in self.args) + ")"
        return f"{self.name}({', '.join(a.canonical for a in self.args)})"

    def _eval(self, env):
        return _EVALUATORS[self.name](self, env)


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<quoted>"(?:[^"]|"")*")
      | (?P<string>'(?:[^']|'')*')
      | (?P<punct>\|\||[(),\[\]])
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _syntax_error(text, f"unexpected character {text[pos:].lstrip()[:1]!r}")
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise _syntax_error(self.text, "it ends too early")
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1].lower() != value:
            raise _syntax_error(self.text, f"expected {value!r} but found {tok[1]!r}")

    def parse(self) -> Expression:
        if not self.tokens:
            raise SettingsError("an empty column expression; name a column such as 'first_name'")
        expr = self.concat()
        if self.peek() is not None:
            raise _syntax_error(self.text, f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return expr

    def concat(self) -> Expression:
        parts = [self.postfix()]
        while self.peek() == ("punct", "||"):
            self.take()
            parts.append(self.postfix())
        if len(parts) == 1:
            return parts[0]
        flat: list[Expression] = []
        for p in parts:  # a || (b || c) and (a || b) || c are the same string
            flat.extend(p.args if isinstance(p, Function) and p.name == "||" else (p,))
        return Function("||", tuple(flat))

    def postfix(self) -> Expression:
        expr = self.primary()
        while self.peek() == ("punct", "["):
            self.take()
            kind, value = self.take()
            if kind != "number":
                raise _syntax_error(self.text, "an array index must be an integer literal")
            self.expect("]")
            expr = Index(expr, int(value))
        return expr

    def primary(self) -> Expression:
        kind, value = self.take()
        if kind == "number":
            return Literal(int(value))
        if kind == "string":
            return Literal(value[1:-1].replace("''", "'"))
        if kind == "quoted":
            return Column(value[1:-1].replace('""', '"'))
        if kind == "punct" and value == "(":
            inner = self.concat()
            self.expect(")")
            return inner
        if kind == "name":
            if self.peek() == ("punct", "("):
                return self.call(value)
            if value.lower() == "null":
                return Literal(None)
            return Column(value)
        raise _syntax_error(self.text, f"unexpected {value!r}")

    def call(self, name: str) -> Expression:
        self.expect("(")
        lname = name.lower()
        if lname in ("cast", "try_cast"):
            arg = self.concat()
            self.expect("as")
            kind, type_name = self.take()
            if kind != "name" or type_name.lower() not in _CAST_TYPES:
                raise SettingsError(
                    f"cannot cast to {type_name!r} in column expression {self.text!r}; "
                    f"supported types: {', '.join(sorted(set(_CAST_TYPES)))}"
                )
            if self.peek() == ("punct", "("):  # varchar(20), decimal(10, 2): size is irrelevant
                while self.take() != ("punct", ")"):
                    pass
            self.expect(")")
            return Cast(arg, _CAST_TYPES[type_name.lower()], lname == "try_cast")
        if lname not in _FUNCTIONS:
            raise SettingsError(
                f"unknown function {name!r} in column expression {self.text!r}; "
                f"supported: {SUPPORTED_FUNCTIONS}"
            )
        canon, lo, hi = _FUNCTIONS[lname]
        args: list[Expression] = []
        if self.peek() != ("punct", ")"):
            args.append(self.concat())
            while self.peek() == ("punct", ","):
                self.take()
                args.append(self.concat())
        self.expect(")")
        if not lo <= len(args) <= hi:
            raise SettingsError(
                f"{name}() takes {lo}{'' if lo == hi else f' to {hi}'} arguments, got {len(args)}, "
                f"in column expression {self.text!r}"
            )
        return _check_call(Function(canon, tuple(args)), self.text)


def _check_call(fn: Function, text: str) -> Function:
    """Check literal argument types, and drop default arguments so the canonical text is stable."""

    def literal(i: int, typ: type) -> None:
        a = fn.args[i]
        if not (isinstance(a, Literal) and isinstance(a.value, typ)):
            want = "an integer" if typ is int else "a quoted string"
            raise SettingsError(
                f"argument {i + 1} of {fn.name}() must be {want} literal in column expression "
                f"{text!r}, not {a.canonical}"
            )

    if isinstance(fn.args[0], Literal):
        raise SettingsError(
            f"the first argument of {fn.name}() must be a column in {text!r}, not a literal"
        )
    name = fn.name
    if name in ("substr", "left", "right"):
        for i in range(1, len(fn.args)):
            literal(i, int)
    elif name in ("trim", "ltrim", "rtrim") and len(fn.args) == 2:
        literal(1, str)
    elif name in ("strptime", "try_strptime"):
        literal(1, str)
    elif name == "nullif":
        if not isinstance(fn.args[1], Literal):
            raise SettingsError(f"nullif() compares with a literal value in {text!r}")
    elif name == "regexp_extract":
        literal(1, str)
        _compile_regex(fn.args[1].value, text)  # type: ignore[attr-defined]
        if len(fn.args) == 3:
            literal(2, int)
            group = fn.args[2].value  # type: ignore[attr-defined]
            if not 0 <= group <= 8:
                raise SettingsError(f"regexp_extract group must be 0..8 in {text!r}")
            if group == 0:
                fn = Function(name, fn.args[:2])
    return fn


def _syntax_error(text: str, why: str) -> SettingsError:
    return SettingsError(
        f"cannot parse column expression {text!r}: {why}. Write a column name (bare or "
        f'"double quoted") or one of: {SUPPORTED_FUNCTIONS}'
    )


def _quote_name(name: str) -> str:
    return name if _SIMPLE_NAME.match(name) else '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=4096)
def parse(text: str) -> Expression:
    """Parse a column expression written as in Splink's SQL.

    Raises :class:`~gpulink.errors.SettingsError` naming the expression for bad syntax or an
    unknown function.

    >>> parse("lower(substr(first_name, 1, 3))").columns
    ('first_name',)
    >>> parse("regex_extract(email, '^[^@]+', 0)").canonical
    "regexp_extract(email, '^[^@]+')"
    """
    if isinstance(text, Expression):
        return text
    if not isinstance(text, str):
        raise SettingsError(f"a column expression must be a string, not {type(text).__name__}")
    return _Parser(text).parse()


def canonical(text: str) -> str:
    """The stable normal form of an expression: the key of its encoded column.

    Function names lower case, aliases resolved (``substring`` -> ``substr``), default arguments
    dropped, one space after each comma; raw column names stay as written (bare when they can be).

    >>> canonical('SUBSTRING("surname",1,4)')
    'substr(surname, 1, 4)'
    >>> canonical('"first name"')
    '"first name"'
    """
    return parse(text).canonical


# ---------------------------------------------------------------------------------------------
# evaluation (DuckDB semantics, vectorised with pyarrow.compute)
# ---------------------------------------------------------------------------------------------


def _combine(arr) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.large_string())
    return arr


def _as_string(arr: pa.Array) -> pa.Array:
    """Strings stay strings; dates and numbers become their SQL text (as DuckDB casts them)."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    if pa.types.is_null(arr.type):
        return arr.cast(pa.string())
    return _cast(arr, "varchar", False, "")


def _string_fn(fn):
    def run(f: Function, env):
        return fn(_as_string(f.args[0]._eval(env)), f)

    return run


def _substr_slice(start: int, length: int | None) -> tuple[int, int | None]:
    """DuckDB's substring(x, start, length) as a Python slice over code points.

    DuckDB: the first character is 1; start 0 is one position before it; a negative start counts
    from the end; a negative length takes the characters *before* start. The result is the
    intersection of that range with the string.
    """
    if length is None:
        return (start - 1 if start > 0 else start), None
    if start > 0:
        s = start - 1
        return (s, s + length) if length >= 0 else (max(0, s + length), s)
    if start == 0:  # range [-1, -1 + length)
        return (0, max(0, length - 1)) if length > 0 else (0, 0)
    # negative start: range [n + start, n + start + length) for a string of n code points
    if length >= 0:
        return (start, None) if start + length >= 0 else (start, start + length)
    return (start + length, start)


def _slice(arr: pa.Array, start: int, stop: int | None) -> pa.Array:
    if stop is not None and (stop == start or (start >= 0 and 0 <= stop < start)):
        return pc.if_else(arr.is_null(), pa.scalar(None, arr.type), pa.scalar("", arr.type))
    return pc.utf8_slice_codeunits(arr, start=start, stop=stop)


def _eval_substr(f: Function, env):
    arr = _as_string(f.args[0]._eval(env))
    start = f.args[1].value  # type: ignore[attr-defined]
    length = f.args[2].value if len(f.args) == 3 else None  # type: ignore[attr-defined]
    return _slice(arr, *_substr_slice(start, length))


def _eval_left(f: Function, env):
    arr = _as_string(f.args[0]._eval(env))
    n = f.args[1].value  # type: ignore[attr-defined]
    return _slice(arr, 0, n)  # negative n: all but the last -n characters


def _eval_right(f: Function, env):
    arr = _as_string(f.args[0]._eval(env))
    n = f.args[1].value  # type: ignore[attr-defined]
    if n == 0:
        return _slice(arr, 0, 0)
    return _slice(arr, -n, None)  # negative n: all but the first -n characters


def _eval_trim(which: str):
    def run(f: Function, env):
        arr = _as_string(f.args[0]._eval(env))
        chars = f.args[1].value if len(f.args) == 2 else " "  # type: ignore[attr-defined]
        if chars == "":
            return arr
        op = {"trim": pc.utf8_trim, "ltrim": pc.utf8_ltrim, "rtrim": pc.utf8_rtrim}[which]
        return op(arr, characters=chars)

    return run


@lru_cache(maxsize=256)
def _compile_regex(pattern: str, text: str = "") -> str:
    """Check an RE2 pattern by running it once (Arrow, like DuckDB, uses RE2)."""
    try:
        # a NumPy input: a list would make pyarrow import pandas to check for its types
        pc.match_substring_regex(pa.array(np.array([""])), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SettingsError(
            f"invalid regular expression {pattern!r} in column expression {text!r}: {exc}"
        ) from None
    return pattern


def _eval_regexp_extract(f: Function, env):
    """regexp_extract(x, pattern[, group]): RE2's leftmost match; '' when there is none.

    Arrow's extract_regex wants every group named, so a pattern with groups is wrapped as
    ``^(?s:.*?)(PATTERN)`` and group ``k + 1`` kept with a one-shot regex replace. The lazy
    prefix finds the leftmost match, exactly as an unanchored search does.
    """
    arr = _as_string(f.args[0]._eval(env))
    pattern = f.args[1].value  # type: ignore[attr-defined]
    group = f.args[2].value if len(f.args) == 3 else 0  # type: ignore[attr-defined]
    n_groups = _count_groups(pattern)
    if group > n_groups:
        raise SettingsError(
            f"regexp_extract group {group} does not exist in {pattern!r} ({n_groups} groups), "
            f"in column expression {f.canonical!r}"
        )
    if n_groups == 0:
        # The whole match of a group-free pattern: Arrow's extract_regex (RE2's leftmost search,
        # as DuckDB's) is about 6x faster than the replace below. No match gives null: make it ''.
        found = pc.struct_field(pc.extract_regex(arr, f"(?P<g>{pattern})"), [0])
        return pc.if_else(pc.and_(arr.is_valid(), found.is_null()), pa.scalar("", arr.type), found)
    matched = pc.match_substring_regex(arr, pattern)
    extracted = pc.replace_substring_regex(
        arr,
        pattern=f"^(?s:.*?)({pattern})(?s:.*)$",
        replacement=f"\\{group + 1}",
        max_replacements=1,
    )
    empty = pa.scalar("", arr.type)
    return pc.if_else(matched, extracted, empty)


@lru_cache(maxsize=256)
def _count_groups(pattern: str) -> int:
    """Number of capture groups in an RE2 pattern (Python's parser agrees on the syntax we count)."""
    try:
        return re.compile(pattern).groups
    except re.error:
        # RE2-only syntax: count '(' not followed by '?' (or '?P<'), outside escapes/classes.
        count, i, in_class = 0, 0, False
        while i < len(pattern):
            ch = pattern[i]
            if ch == "\\":
                i += 2
                continue
            if in_class:
                in_class = ch != "]"
            elif ch == "[":
                in_class = True
            elif ch == "(" and (
                not pattern.startswith("?", i + 1) or pattern.startswith("?P<", i + 1)
            ):
                count += 1
            i += 1
        return count


def _eval_strptime(try_: bool):
    def run(f: Function, env):
        arg = f.args[0]._eval(env)
        if not (pa.types.is_string(arg.type) or pa.types.is_large_string(arg.type)
                or pa.types.is_null(arg.type)):  # fmt: skip
            # as DuckDB: strptime parses text only
            raise InputError(
                f"{f.canonical!r} parses text, but {f.args[0].canonical!r} holds "
                f"{arg.type} values; for a column that already holds dates use the comparison "
                "with input_is_string=False (AbsoluteDateDifferenceAtThresholds, "
                "DateOfBirthComparison), or convert the column to text"
            )
        fmt = f.args[1].value  # type: ignore[attr-defined]
        parsed = _strptime(arg, fmt, try_, f.canonical)
        if try_ and arg.null_count < len(arg) and parsed.null_count == len(parsed):
            logger.warning(
                "no value of %s matches the format %r (e.g. %r): %s is null for every record, "
                "so every pair falls in the comparison's null level; check datetime_format",
                f.args[0].canonical, fmt, pc.drop_null(arg)[0].as_py(), f.canonical,
            )  # fmt: skip
        return parsed

    return run


def _strptime(arr: pa.Array, fmt: str, try_: bool, text: str) -> pa.Array:
    """Parse strings to date32 (formats without a time part) or timestamp[us]; DuckDB-like."""
    arr = pc.utf8_rtrim_whitespace(arr)  # DuckDB ignores trailing whitespace; Arrow does not
    parsed = pc.strptime(arr, format=fmt, unit="us", error_is_null=True)
    if re.search(r"%[A-Za-z]%[A-Za-z]", fmt):
        parsed = _python_strptime_fallback(arr, parsed, fmt)
    parsed = _reject_overflowing_days(arr, parsed, fmt)
    if not try_:
        bad = pc.and_(parsed.is_null(), arr.is_valid())
        if pc.any(bad).as_py():
            first = pc.filter(arr, bad)[0].as_py()
            n_bad = pc.sum(bad).as_py()
            raise InputError(
                f"{n_bad} values of {text!r} do not match the format {fmt!r} (first: {first!r}); "
                f"fix the data or use try_strptime(...), which gives null for them"
            )
    if _TIME_DIRECTIVES.search(fmt):
        return parsed
    return parsed.cast(pa.date32())


def _python_strptime_fallback(arr: pa.Array, parsed: pa.Array, fmt: str) -> pa.Array:
    """Arrow's %Y is greedy, so '19900101' fails '%Y%m%d'; Python's strptime (like DuckDB) parses
    it. Retry, once per distinct value, only the values Arrow could not parse."""
    failed = pc.and_(parsed.is_null(), arr.is_valid())
    if not pc.any(failed).as_py():
        return parsed
    import datetime as _dt

    retry = pc.unique(pc.filter(arr, failed))
    out = []
    for v in retry.to_pylist():
        try:
            out.append(_dt.datetime.strptime(v, fmt))
        except ValueError:
            out.append(None)
    fixed = pc.take(pa.array(out, pa.timestamp("us")), pc.index_in(arr, retry))
    return pc.coalesce(parsed, fixed)


_DIRECTIVE_REGEX = {
    "Y": r"[+-]?\d+",
    "m": r"(?P<m>\d{1,2})",
    "d": r"(?P<d>\d{1,2})",
    "%": "%",
}


def _reject_overflowing_days(arr: pa.Array, parsed: pa.Array, fmt: str) -> pa.Array:
    """Null out dates such as '1990-02-30' that Arrow's strptime rolls over (to 1990-03-02)
    but DuckDB rejects: the day (and month) written in the text must be the parsed ones."""
    if fmt.count("%d") != 1 or fmt.count("%m") > 1 or parsed.null_count == len(parsed):
        return parsed
    parts, i = [r"^\s*"], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            directive = fmt[i + 1]
            if directive == "Y" and fmt[i + 2 : i + 3] == "%":  # '%Y%m%d': four-digit year
                parts.append(r"[+-]?\d{4}")
            else:
                parts.append(_DIRECTIVE_REGEX.get(directive, r".*?"))
            i += 2
        else:
            parts.append(r"\s*" if fmt[i].isspace() else re.escape(fmt[i]))
            i += 1
    fields = pc.extract_regex(arr, "".join(parts))
    ok = pc.equal(pc.cast(pc.struct_field(fields, "d"), pa.int64()), pc.day(parsed))
    if "%m" in fmt:
        month_ok = pc.equal(pc.cast(pc.struct_field(fields, "m"), pa.int64()), pc.month(parsed))
        ok = pc.and_kleene(ok, month_ok)
    keep = pc.fill_null(ok, True)  # the text did not fit our pattern: trust Arrow
    return pc.if_else(keep, parsed, pa.scalar(None, parsed.type))


def _eval_nullif(f: Function, env):
    arr = f.args[0]._eval(env)
    value = f.args[1].value  # type: ignore[attr-defined]
    if value is None:
        return arr
    try:
        scalar = pa.scalar(value).cast(arr.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        arr = _as_string(arr)
        scalar = pa.scalar(str(value), arr.type)
    equal = pc.fill_null(pc.equal(arr, scalar), False)
    return pc.if_else(equal, pa.scalar(None, arr.type), arr)


def _eval_coalesce(f: Function, env):
    n = len(next(iter(env.values()))) if env else 0
    arrays = [_eval_arg(a, env, n) for a in f.args]
    return pc.coalesce(*_unify(arrays))


def _eval_concat(f: Function, env):
    """concat() skips nulls; ``||`` gives null when any side is null (DuckDB)."""
    n = len(next(iter(env.values()))) if env else 0
    arrays = [_as_string(_eval_arg(a, env, n)) for a in f.args]
    arrays = [a.cast(pa.large_string()) for a in arrays]
    if f.name == "concat":
        # fill instead of null_handling="skip": pyarrow 26 drops all-null rows of large strings
        arrays = [pc.fill_null(a, pa.scalar("", pa.large_string())) for a in arrays]
    sep = pa.scalar("", pa.large_string())
    return pc.binary_join_element_wise(*arrays, sep, null_handling="emit_null")


def _eval_length(f: Function, env):
    arr = f.args[0]._eval(env)
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        return pc.list_value_length(arr).cast(pa.int64())
    return pc.utf8_length(_as_string(arr)).cast(pa.int64())


def _eval_arg(a: Expression, env, n: int) -> pa.Array:
    if isinstance(a, Literal):
        return pa.array([a.value] * n)
    return a._eval(env)


def _unify(arrays: list[pa.Array]) -> list[pa.Array]:
    types = {a.type for a in arrays if not pa.types.is_null(a.type)}
    if len(types) <= 1:
        t = types.pop() if types else pa.null()
        return [a.cast(t) for a in arrays]
    return [_as_string(a).cast(pa.large_string()) for a in arrays]


_EVALUATORS = {
    "lower": _string_fn(lambda a, f: pc.utf8_lower(a)),
    "upper": _string_fn(lambda a, f: pc.utf8_upper(a)),
    "trim": _eval_trim("trim"),
    "ltrim": _eval_trim("ltrim"),
    "rtrim": _eval_trim("rtrim"),
    "substr": _eval_substr,
    "left": _eval_left,
    "right": _eval_right,
    "regexp_extract": _eval_regexp_extract,
    "strptime": _eval_strptime(False),
    "try_strptime": _eval_strptime(True),
    "nullif": _eval_nullif,
    "coalesce": _eval_coalesce,
    "concat": _eval_concat,
    "||": _eval_concat,
    "length": _eval_length,
}


def _float_text(arr: pa.Array) -> pa.Array:
    """Floats as DuckDB casts them to VARCHAR, formatted once per distinct value.

    DOUBLE: the shortest text that reads back as the same double, with ``.0`` on whole numbers
    and an exponent outside [1e-4, 1e16) (``'1.0'``, ``'1e-05'``, ``'1.5e+20'``): Python's
    ``repr``, equal to DuckDB's text on every value tested. FLOAT: the same rules over the
    shortest float32 digits; DuckDB agrees on values of up to 7 significant digits and writes
    some others with more digits. (Arrow's own cast writes ``'1'`` and ``'0.00001'``.)

    >>> _float_text(pa.array([1.0, 1e-05, None])).to_pylist()
    ['1.0', '1e-05', None]
    """
    distinct = pc.unique(arr)
    numbers = distinct.to_numpy(zero_copy_only=False)
    valid = distinct.is_valid().to_numpy(zero_copy_only=False)
    text = _float32_text if pa.types.is_float32(arr.type) else (lambda x: repr(float(x)))
    texts = [text(x) if ok else None for x, ok in zip(numbers, valid)]
    return pa.array(texts, pa.string()).take(pc.index_in(arr, value_set=distinct))


def _float32_text(x) -> str:
    """A float32 as Python would ``repr`` it if floats were 32-bit (see :func:`_float_text`)."""
    x = np.float32(x)
    if not np.isfinite(x):
        return str(x)
    if x == 0:
        return "-0.0" if np.signbit(x) else "0.0"
    scientific = np.format_float_scientific(x, unique=True, trim="-", exp_digits=2)
    if -4 <= int(scientific.split("e")[1]) < 16:
        return np.format_float_positional(x, unique=True, trim="0")
    return scientific


def _cast(arr: pa.Array, type_name: str, try_: bool, text: str) -> pa.Array:
    """SQL cast of an Arrow array; ``try_`` gives null where the value cannot be converted."""
    t = arr.type
    if type_name == "varchar":
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return arr
        if pa.types.is_boolean(t):  # DuckDB spells booleans 'true' / 'false'
            return pc.if_else(arr, "true", "false")
        if pa.types.is_floating(t):
            return _float_text(arr)
        return arr.cast(pa.string())
    if type_name == "bigint":
        if pa.types.is_floating(t):
            # DuckDB rounds half to even where Arrow would refuse to truncate
            arr = pc.round(arr, round_mode="half_to_even")
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            arr = pc.utf8_trim_whitespace(arr)
        target: pa.DataType = pa.int64()
    elif type_name == "double":
        target = pa.float64()
    elif type_name == "date":
        if pa.types.is_timestamp(t):
            return arr.cast(pa.date32())
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return _strptime(arr, "%Y-%m-%d", try_, text)
        target = pa.date32()
    else:  # timestamp
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            out = pc.strptime(arr, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
            dated = pc.strptime(arr, format="%Y-%m-%d", unit="us", error_is_null=True)
            out = pc.coalesce(out, dated)
            if not try_:
                _raise_if_lost(arr, out, text)
            return out
        target = pa.timestamp("us")
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if not try_:
            raise InputError(
                f"cannot evaluate {text!r}: {exc}; use try_cast(...) to get null for such values"
            ) from None
    # try_cast: convert value by value through distinct values (rare, small)
    values = pc.unique(arr)
    converted = []
    for v in values:
        try:
            converted.append(pa.array([v.as_py()]).cast(target)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
            converted.append(None)
    idx = pc.index_in(arr, values)
    return pc.take(pa.array(converted, target), idx)


def _raise_if_lost(arr: pa.Array, out: pa.Array, text: str) -> None:
    bad = pc.and_(out.is_null(), arr.is_valid())
    if pc.any(bad).as_py():
        first = pc.filter(arr, bad)[0].as_py()
        raise InputError(
            f"cannot evaluate {text!r}: {first!r} is not a timestamp; use try_cast(...) "
            f"to get null for such values"
        )


def _array_element(arr: pa.Array, index: int, text: str) -> pa.Array:
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise InputError(f"{text!r} indexes a column of type {arr.type}, which is not an array")
    if index == 0:
        # DuckDB lists are 1-based; [0] gives null
        return pa.nulls(len(arr), arr.type.value_type)
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    pos = np.where(lengths >= abs(index), index - 1 if index > 0 else lengths + index, -1)
    valid = pos >= 0
    starts = arr.offsets.to_numpy()[:-1] - arr.offsets[0].as_py()
    flat = arr.flatten()
    take_idx = pa.array(np.where(valid, starts + pos, 0), mask=~valid)
    return pc.take(flat, take_idx) if len(flat) else pa.nulls(len(arr), arr.type.value_type)
