"""Comparison levels with Splink's names, signatures, defaults, SQL and labels.

Each level renders the DuckDB ``sql_condition`` and ``label_for_charts`` that Splink's level of
the same name renders, so a model written with these levels is a valid Splink model and the
reverse. gpulink runs the condition as a predicate over its kernels' leaves
(:mod:`gpulink.levels`).

>>> import gpulink.comparison_level_library as cll
>>> lvl = cll.JaroWinklerLevel("first_name", 0.9).configure(m_probability=0.8)
>>> lvl.create_level_dict()["sql_condition"]
'jaro_winkler_similarity("first_name_l", "first_name_r") >= 0.9'
"""

from __future__ import annotations

from copy import copy
from typing import Any

from gpulink.checks import is_number
from gpulink.errors import SettingsError
from gpulink.levels import ColumnExpression, condition_to_predicate

_UNSUPPLIED = object()

_CONFIGURABLE = (
    "m_probability",
    "u_probability",
    "tf_adjustment_column",
    "tf_adjustment_weight",
    "tf_minimum_u_value",
    "is_null_level",
    "label_for_charts",
    "disable_tf_exact_match_detection",
    "fix_m_probability",
    "fix_u_probability",
)

ColumnLike = str | ColumnExpression


def _col(value: ColumnLike) -> ColumnExpression:
    return ColumnExpression.instantiate_if_str(value)


def _number(value, lower: float, upper: float, level: str, name: str) -> float:
    # numpy scalars stay as given: the SQL shows them as written (np.float32(0.9) as 0.9)
    if not is_number(value):
        raise SettingsError(f"{level}: '{name}' must be a number, got {value!r}")
    if not lower <= value <= upper:
        raise SettingsError(f"{level}: '{name}' must be between {lower} and {upper}, got {value}")
    return value


def _choice(value, allowed: list[str], level: str, name: str) -> str:
    if value not in allowed:
        options = "', '".join(allowed)
        raise SettingsError(f"{level}: '{name}' must be one of '{options}', got {value!r}")
    return value


class ComparisonLevelCreator:
    """Base of every level: SQL, label, and the options of ``.configure()`` (Splink's)."""

    def create_sql(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def create_label_for_charts(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def configure(
        self,
        *,
        m_probability=_UNSUPPLIED,
        u_probability=_UNSUPPLIED,
        tf_adjustment_column=_UNSUPPLIED,
        tf_adjustment_weight=_UNSUPPLIED,
        tf_minimum_u_value=_UNSUPPLIED,
        is_null_level=_UNSUPPLIED,
        label_for_charts=_UNSUPPLIED,
        disable_tf_exact_match_detection=_UNSUPPLIED,
        fix_m_probability=_UNSUPPLIED,
        fix_u_probability=_UNSUPPLIED,
    ) -> ComparisonLevelCreator:
        """Set the options common to all levels (only those given); returns the level.

        >>> ExactMatchLevel("city").configure(tf_adjustment_column="city").tf_adjustment_column
        'city'
        """
        given = dict(locals())
        del given["self"]
        for key, value in given.items():
            if value is not _UNSUPPLIED:
                setattr(self, "_cfg_" + key, value)
        return self

    def _cfg(self, key: str):
        return getattr(self, "_cfg_" + key, None)

    @property
    def is_null_level(self) -> bool:
        return bool(getattr(self, "_cfg_is_null_level", False))

    @property
    def is_exact_match_level(self) -> bool:
        return False

    def __getattr__(self, name: str):
        # .m_probability, .tf_adjustment_column ... read back what configure() set
        if name in _CONFIGURABLE:
            return self.__dict__.get("_cfg_" + name)
        raise AttributeError(name)

    def create_level_dict(self) -> dict[str, Any]:
        """The level as a Splink settings dict (DuckDB SQL), before it joins a comparison."""
        out: dict[str, Any] = {
            "sql_condition": self.create_sql(),
            "label_for_charts": self.create_label_for_charts(),
        }
        for key in _CONFIGURABLE:
            value = self.__dict__.get("_cfg_" + key)
            if key == "is_null_level":
                value = value or None  # a non-bool passes on, for the settings to refuse
            if value is not None:
                out[key] = value
        return out

    def predicate(self):
        """This level's predicate (raises SettingsError if gpulink cannot run it)."""
        return condition_to_predicate(self.create_sql(), self.create_label_for_charts())

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.create_label_for_charts()}>"


class NullLevel(ComparisonLevelCreator):
    """Either value is NULL (optionally: does not match ``valid_string_pattern``).

    >>> NullLevel("dob").create_sql()
    '"dob_l" IS NULL OR "dob_r" IS NULL'
    """

    def __init__(self, col_name: ColumnLike, valid_string_pattern: str | None = None):
        col = _col(col_name)
        if valid_string_pattern is not None:
            col = col.regex_extract(valid_string_pattern)
        self.col_expression = col
        self.configure(is_null_level=True)

    def create_sql(self) -> str:
        return f"{self.col_expression.name_l} IS NULL OR {self.col_expression.name_r} IS NULL"

    def create_label_for_charts(self) -> str:
        return f"{self.col_expression.label} is NULL"


class ElseLevel(ComparisonLevelCreator):
    """All other pairs (SQL ``ELSE``).

    >>> ElseLevel().create_label_for_charts()
    'All other comparisons'
    """

    def create_sql(self) -> str:
        return "ELSE"

    def create_label_for_charts(self) -> str:
        return "All other comparisons"


class CustomLevel(ComparisonLevelCreator):
    """A level written as SQL; gpulink runs it if it is a form its leaves express.

    >>> CustomLevel('"a_l" = "a_r" AND "b_l" = "b_r"', "a and b").create_label_for_charts()
    'a and b'
    """

    def __init__(
        self,
        sql_condition: str,
        label_for_charts: str | None = None,
        base_dialect_str: str | None = None,
    ):
        if base_dialect_str not in (None, "duckdb"):
            raise SettingsError(
                f"CustomLevel: base_dialect_str={base_dialect_str!r}; gpulink reads DuckDB "
                "SQL only; write the condition in DuckDB SQL"
            )
        self.sql_condition = sql_condition
        self.label_for_charts_text = label_for_charts
        self.base_dialect_str = base_dialect_str

    def create_sql(self) -> str:
        return self.sql_condition

    def create_label_for_charts(self) -> str:
        if self.__dict__.get("_cfg_label_for_charts"):
            return self.__dict__["_cfg_label_for_charts"]
        return self.label_for_charts_text or self.sql_condition

    @staticmethod
    def _convert_to_creator(cl) -> ComparisonLevelCreator:
        if isinstance(cl, ComparisonLevelCreator):
            return cl
        if isinstance(cl, dict):
            d = dict(cl)
            d.pop("comparison_vector_value", None)
            configurables = {k: d.pop(k) for k in list(d) if k in _CONFIGURABLE}
            unknown = set(d) - {"sql_condition", "label_for_charts", "base_dialect_str"}
            if unknown or "sql_condition" not in d:
                raise SettingsError(
                    f"comparison level {cl!r} has unknown keys {sorted(unknown)} or no "
                    "'sql_condition'; a level dict needs 'sql_condition' and may have "
                    f"'label_for_charts' and {', '.join(_CONFIGURABLE)}"
                )
            level = CustomLevel(**d)
            if configurables:
                level.configure(**configurables)
            return level
        raise SettingsError(
            f"a comparison level must be a level object or a dict, got {type(cl).__name__} ({cl!r})"
        )


class ExactMatchLevel(ComparisonLevelCreator):
    """The two values are equal; ``term_frequency_adjustments=True`` adds TF on the column.

    >>> ExactMatchLevel("city", term_frequency_adjustments=True).create_level_dict()["tf_adjustment_column"]
    'city'
    """

    def __init__(self, col_name: ColumnLike, term_frequency_adjustments: bool = False):
        self.col_expression = _col(col_name)
        self.term_frequency_adjustments = term_frequency_adjustments

    @property
    def is_exact_match_level(self) -> bool:
        return True

    @property
    def term_frequency_adjustments(self) -> bool:
        return self.__dict__.get("_cfg_tf_adjustment_column") is not None

    @term_frequency_adjustments.setter
    def term_frequency_adjustments(self, value: bool) -> None:
        if value:
            if not self.col_expression.is_pure_column_or_column_reference:
                raise SettingsError(
                    f"ExactMatchLevel({self.col_expression.raw_sql_expression!r}): "
                    "term_frequency_adjustments=True needs a plain column, not an expression "
                    "(lower(), substr()...); derive the column before linking or use "
                    ".configure(tf_adjustment_column='<plain column>')"
                )
            self.configure(
                tf_adjustment_column=self.col_expression.raw_sql_expression,
                tf_adjustment_weight=1.0,
            )
        else:
            self.configure(tf_adjustment_column=None, tf_adjustment_weight=None)

    def create_sql(self) -> str:
        return f"{self.col_expression.name_l} = {self.col_expression.name_r}"

    def create_label_for_charts(self) -> str:
        return f"Exact match on {self.col_expression.label}"


class LiteralMatchLevel(ComparisonLevelCreator):
    """Column equals a literal (Splink's); gpulink cannot run it yet and says so at compile.

    >>> LiteralMatchLevel("sex", "m", "string").create_sql()
    '"sex_l" = \\'m\\' AND "sex_r" = \\'m\\''
    """

    def __init__(
        self,
        col_name: ColumnLike,
        literal_value: str,
        literal_datatype: str,
        side_of_comparison: str = "both",
    ):
        name = type(self).__name__
        self.side_of_comparison = _choice(
            side_of_comparison, ["left", "right", "both"], name, "side_of_comparison"
        )
        self.col_expression = _col(col_name)
        self.literal_value = literal_value
        self.literal_datatype = _choice(
            literal_datatype, ["string", "int", "float", "date"], name, "literal_datatype"
        )

    def create_sql(self) -> str:
        lit = self.literal_value
        dialected = {
            "string": f"'{lit}'",
            "date": f"CAST('{lit}' AS DATE)",
            "int": f"CAST({lit} AS INT)",
            "float": f"CAST({lit} AS REAL)",
        }[self.literal_datatype]
        col = self.col_expression
        if self.side_of_comparison == "left":
            return f"{col.name_l} = {dialected}"
        if self.side_of_comparison == "right":
            return f"{col.name_r} = {dialected}"
        return f"{col.name_l} = {dialected} AND {col.name_r} = {dialected}"

    def create_label_for_charts(self) -> str:
        return f"{self.col_expression.label} = {self.literal_value} on {self.side_of_comparison}"


class ColumnsReversedLevel(ComparisonLevelCreator):
    """``col_1`` of one record equals ``col_2`` of the other (both ways if ``symmetrical``).

    >>> ColumnsReversedLevel("first_name", "surname", symmetrical=True).create_sql()
    '"first_name_l" = "surname_r" AND "first_name_r" = "surname_l"'
    """

    def __init__(self, col_name_1: ColumnLike, col_name_2: ColumnLike, symmetrical: bool = False):
        self.col_expression_1 = _col(col_name_1)
        self.col_expression_2 = _col(col_name_2)
        self.symmetrical = symmetrical

    def create_sql(self) -> str:
        c1, c2 = self.col_expression_1, self.col_expression_2
        if self.symmetrical:
            return f"{c1.name_l} = {c2.name_r} AND {c1.name_r} = {c2.name_l}"
        return f"{c1.name_l} = {c2.name_r}"

    def create_label_for_charts(self) -> str:
        direction = "both directions" if self.symmetrical else "one direction"
        c1, c2 = self.col_expression_1, self.col_expression_2
        return f"Match on reversed cols: {c1.label} and {c2.label} ({direction})"


class _FunctionThresholdLevel(ComparisonLevelCreator):
    _function = ""
    _op = ">="

    def __init__(self, col_name: ColumnLike, distance_threshold):
        self.col_expression = _col(col_name)
        self.distance_threshold = self._validate(distance_threshold)

    def _validate(self, value):
        return _number(value, 0, 1, type(self).__name__, "distance_threshold")

    def create_sql(self) -> str:
        c = self.col_expression
        return f"{self._function}({c.name_l}, {c.name_r}) {self._op} {self.distance_threshold}"


class LevenshteinLevel(_FunctionThresholdLevel):
    """Levenshtein distance <= ``distance_threshold``.

    >>> LevenshteinLevel("name", 2).create_label_for_charts()
    'Levenshtein distance of name <= 2'
    """

    _function = "levenshtein"
    _op = "<="

    def _validate(self, value):
        return _number(value, 0, float("inf"), type(self).__name__, "distance_threshold")

    def create_label_for_charts(self) -> str:
        return f"Levenshtein distance of {self.col_expression.label} <= {self.distance_threshold}"


class DamerauLevenshteinLevel(LevenshteinLevel):
    """Damerau-Levenshtein distance <= ``distance_threshold``.

    >>> DamerauLevenshteinLevel("name", 1).create_sql()
    'damerau_levenshtein("name_l", "name_r") <= 1'
    """

    _function = "damerau_levenshtein"

    def create_label_for_charts(self) -> str:
        return (
            f"Damerau-Levenshtein distance of {self.col_expression.label} "
            f"<= {self.distance_threshold}"
        )


class JaroWinklerLevel(_FunctionThresholdLevel):
    """Jaro-Winkler similarity >= ``distance_threshold``.

    >>> JaroWinklerLevel("name", 0.9).create_label_for_charts()
    'Jaro-Winkler distance of name >= 0.9'
    """

    _function = "jaro_winkler_similarity"

    def create_label_for_charts(self) -> str:
        return f"Jaro-Winkler distance of {self.col_expression.label} >= {self.distance_threshold}"


class JaroLevel(_FunctionThresholdLevel):
    """Jaro similarity >= ``distance_threshold``.

    >>> JaroLevel("name", 0.9).create_sql()
    'jaro_similarity("name_l", "name_r") >= 0.9'
    """

    _function = "jaro_similarity"

    def create_label_for_charts(self) -> str:
        return f"Jaro distance of '{self.col_expression.label} >= {self.distance_threshold}'"


class JaccardLevel(_FunctionThresholdLevel):
    """Character-set Jaccard similarity >= ``distance_threshold``.

    >>> JaccardLevel("name", 0.9).create_sql()
    'jaccard("name_l", "name_r") >= 0.9'
    """

    _function = "jaccard"

    def create_label_for_charts(self) -> str:
        return f"Jaccard distance of '{self.col_expression.label} >= {self.distance_threshold}'"


class AbsoluteDifferenceLevel(ComparisonLevelCreator):
    """``abs(l - r) <= difference_threshold`` on a numeric column.

    >>> AbsoluteDifferenceLevel("age", 2).create_sql()
    'ABS("age_l" - "age_r") <= 2'
    """

    def __init__(self, col_name: ColumnLike, difference_threshold):
        self.col_expression = _col(col_name)
        self.difference_threshold = _number(
            difference_threshold, 0, float("inf"), type(self).__name__, "difference_threshold"
        )

    def create_sql(self) -> str:
        c = self.col_expression
        return f"ABS({c.name_l} - {c.name_r}) <= {self.difference_threshold}"

    def create_label_for_charts(self) -> str:
        return (
            f"Absolute difference of '{self.col_expression.label}' <= {self.difference_threshold}"
        )


class PercentageDifferenceLevel(ComparisonLevelCreator):
    """``abs(l - r) / greatest(l, r) < percentage_threshold`` (Splink's form).

    >>> PercentageDifferenceLevel("income", 0.1).create_label_for_charts()
    "Percentage difference of 'income' within 10.00%"
    """

    def __init__(self, col_name: ColumnLike, percentage_threshold: float):
        self.col_expression = _col(col_name)
        self.percentage_threshold = _number(
            percentage_threshold, 0, 1, type(self).__name__, "percentage_threshold"
        )

    def create_sql(self) -> str:
        c = self.col_expression
        return (
            f"(ABS({c.name_l} - {c.name_r}) / (CASE WHEN {c.name_r} > {c.name_l} THEN "
            f"{c.name_r} ELSE {c.name_l} END)) < {self.percentage_threshold}"
        )

    def create_label_for_charts(self) -> str:
        return (
            f"Percentage difference of '{self.col_expression.label}' "
            f"within {self.percentage_threshold:,.2%}"
        )


_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 60 * 60,
    "day": 60 * 60 * 24,
    "month": 60 * 60 * 24 * 365.25 / 12,
    "year": 60 * 60 * 24 * 365.25,
}


class AbsoluteTimeDifferenceLevel(ComparisonLevelCreator):
    """Elapsed time between two timestamps <= ``threshold`` ``metric`` (inclusive).

    >>> AbsoluteTimeDifferenceLevel("ts", input_is_string=False, threshold=3, metric="hour").create_sql()
    'ABS(EPOCH("ts_l") - EPOCH("ts_r")) <= 10800'
    """

    _parse = "try_parse_timestamp"

    def __init__(
        self,
        col_name: ColumnLike,
        *,
        input_is_string: bool,
        threshold,
        metric: str,
        datetime_format: str | None = None,
    ):
        name = type(self).__name__
        self.col_expression = _col(col_name)
        self.time_threshold_raw = _number(threshold, 0, float("inf"), name, "threshold")
        self.time_metric = _choice(metric, list(_SECONDS), name, "metric")
        self.time_threshold_seconds = self.time_threshold_raw * _SECONDS[metric]
        self.datetime_format = datetime_format
        self.input_is_string = input_is_string

    def _parsed(self) -> ColumnExpression:
        if self.input_is_string:
            return getattr(self.col_expression, self._parse)(self.datetime_format)
        return self.col_expression

    def create_sql(self) -> str:
        c = self._parsed()
        return f"ABS(EPOCH({c.name_l}) - EPOCH({c.name_r})) <= {self.time_threshold_seconds}"

    def create_label_for_charts(self) -> str:
        return (
            f"Abs difference of '{self._parsed().label} <= "
            f"{self.time_threshold_raw} {self.time_metric}'"
        )


class AbsoluteDateDifferenceLevel(AbsoluteTimeDifferenceLevel):
    """Elapsed time between two dates <= ``threshold`` ``metric`` (inclusive).

    >>> AbsoluteDateDifferenceLevel("dob", input_is_string=True, threshold=1, metric="year").create_label_for_charts()
    "Abs difference of 'transformed dob <= 1 year'"
    """

    _parse = "try_parse_date"


def _great_circle_km_sql(lat_l: str, lat_r: str, long_l: str, long_r: str) -> str:
    # Splink's text, verbatim: the spherical law of cosines clamped to [-1, 1], cast to FLOAT
    partial = f"""
        sin( radians({lat_l}) ) * sin( radians({lat_r}) ) +
        cos( radians({lat_l}) ) * cos( radians({lat_r}) )
            * cos( radians({long_r} - {long_l}) )
    """
    partial = f"""
        case
            when ({partial}) > 1 then 1
            when ({partial}) < -1 then -1
            else ({partial})
        end
    """
    return f"""
        cast(
            acos(
                {partial}
            ) * 6371
            as float
        )
    """


class DistanceInKMLevel(ComparisonLevelCreator):
    """Great-circle distance between (lat, long) points <= ``km_threshold``.

    >>> DistanceInKMLevel("lat", "long", 10).create_label_for_charts()
    'Distance less than 10km'
    """

    def __init__(self, lat_col: ColumnLike, long_col: ColumnLike, km_threshold, not_null=False):
        self.lat_col_expression = _col(lat_col)
        self.long_col_expression = _col(long_col)
        self.km_threshold = _number(
            km_threshold, 0, float("inf"), type(self).__name__, "km_threshold"
        )
        self.not_null = not_null

    def create_sql(self) -> str:
        lat, lng = self.lat_col_expression, self.long_col_expression
        sql = (
            f"{_great_circle_km_sql(lat.name_l, lat.name_r, lng.name_l, lng.name_r)} "
            f"<= {self.km_threshold}"
        )
        if self.not_null:
            cols = [lat.name_r, lat.name_l, lng.name_l, lng.name_r]
            sql = "(" + " AND ".join(f"{c} is not null" for c in cols) + f") AND {sql}"
        return sql

    def create_label_for_charts(self) -> str:
        return f"Distance less than {self.km_threshold}km"


class ArrayIntersectLevel(ComparisonLevelCreator):
    """The arrays share at least ``min_intersection`` elements.

    >>> ArrayIntersectLevel("aliases", 2).create_sql()
    'array_length(list_intersect("aliases_l", "aliases_r")) >= 2'
    """

    def __init__(self, col_name: ColumnLike, min_intersection: int = 1):
        self.col_expression = _col(col_name)
        self.min_intersection = _number(
            min_intersection, 0, float("inf"), type(self).__name__, "min_intersection"
        )

    def create_sql(self) -> str:
        c = self.col_expression
        return f"array_length(list_intersect({c.name_l}, {c.name_r})) >= {self.min_intersection}"

    def create_label_for_charts(self) -> str:
        return f"Array intersection size >= {self.min_intersection}"


#: DistanceFunctionLevel's functions: DuckDB's names of the string metrics gpulink's kernels
#: compute, and whether a higher value means more similar.
DISTANCE_FUNCTIONS = {
    "levenshtein": False,
    "damerau_levenshtein": False,
    "jaro_similarity": True,
    "jaro_winkler_similarity": True,
    "jaccard": True,
}
# other dialects' spellings, for the error message
_DISTANCE_SPELLINGS = {"jaro": "jaro_similarity", "jaro_winkler": "jaro_winkler_similarity"}


class DistanceFunctionLevel(ComparisonLevelCreator):
    """``distance_function_name(l, r) >= distance_threshold`` (``<=`` when
    ``higher_is_more_similar=False``), for the string metrics in :data:`DISTANCE_FUNCTIONS`.

    >>> DistanceFunctionLevel("name", "levenshtein", 2, higher_is_more_similar=False).create_sql()
    'levenshtein("name_l", "name_r") <= 2'
    >>> DistanceFunctionLevel("name", "jaro_similarity", 0.8).create_label_for_charts()
    "`jaro_similarity` distance of 'name greater than 0.8'"
    """

    def __init__(
        self,
        col_name: ColumnLike,
        distance_function_name: str,
        distance_threshold,
        higher_is_more_similar: bool = True,
    ):
        name = type(self).__name__
        self.col_expression = _col(col_name)
        if distance_function_name not in DISTANCE_FUNCTIONS:
            supported = "', '".join(DISTANCE_FUNCTIONS)
            hint = ""
            if distance_function_name in _DISTANCE_SPELLINGS:
                hint = f" (DuckDB spells it '{_DISTANCE_SPELLINGS[distance_function_name]}')"
            raise SettingsError(
                f"{name}({self.col_expression.raw_sql_expression!r}): distance function "
                f"{distance_function_name!r} is not one gpulink computes{hint}; use one of "
                f"'{supported}', or derive the distance as a column and compare it with "
                "AbsoluteDifferenceLevel"
            )
        if not isinstance(higher_is_more_similar, bool):
            raise SettingsError(
                f"{name}: 'higher_is_more_similar' must be True or False, got "
                f"{higher_is_more_similar!r}"
            )
        upper = 1 if DISTANCE_FUNCTIONS[distance_function_name] else float("inf")
        self.distance_function_name = distance_function_name
        self.distance_threshold = _number(distance_threshold, 0, upper, name, "distance_threshold")
        self.higher_is_more_similar = higher_is_more_similar

    def create_sql(self) -> str:
        c = self.col_expression
        op = ">=" if self.higher_is_more_similar else "<="
        return (
            f"{self.distance_function_name}({c.name_l}, {c.name_r}) {op} {self.distance_threshold}"
        )

    def create_label_for_charts(self) -> str:
        more = "greater" if self.higher_is_more_similar else "less"
        return (
            f"`{self.distance_function_name}` distance of '{self.col_expression.label} "
            f"{more} than {self.distance_threshold}'"
        )


class ArraySubsetLevel(ComparisonLevelCreator):
    """One array is a subset of the other (order and repeats ignored in the intersection;
    lengths as written, so ``[1, 1]`` is no subset of ``[1, 2]``). Empty arrays are subsets of
    everything only with ``empty_is_subset=True``.

    >>> ArraySubsetLevel("aliases").create_label_for_charts()
    'Array subset'
    >>> ArraySubsetLevel("aliases", empty_is_subset=True).create_sql()
    'ARRAY_LENGTH(ARRAY_INTERSECT("aliases_l", "aliases_r")) = LEAST(ARRAY_LENGTH("aliases_l"), ARRAY_LENGTH("aliases_r"))'
    """

    def __init__(self, col_name: ColumnLike, empty_is_subset: bool = False):
        self.col_expression = _col(col_name)
        self.empty_is_subset = empty_is_subset

    def create_sql(self) -> str:
        c = self.col_expression
        least = f"LEAST(ARRAY_LENGTH({c.name_l}), ARRAY_LENGTH({c.name_r}))"
        subset = f"ARRAY_LENGTH(ARRAY_INTERSECT({c.name_l}, {c.name_r})) = {least}"
        if self.empty_is_subset:
            return subset
        return f"{least} <> 0 AND {subset}"

    def create_label_for_charts(self) -> str:
        return "Array subset"


class CosineSimilarityLevel(ComparisonLevelCreator):
    """Cosine similarity of two float vectors >= ``similarity_threshold`` (DuckDB's
    ``array_cosine_similarity``: float32 for FLOAT[n] vectors; a zero vector gives NaN, which
    DuckDB, so Splink, counts as above every threshold).

    >>> CosineSimilarityLevel("embedding", 0.8).create_sql()
    'array_cosine_similarity("embedding_l", "embedding_r") >= 0.8'
    """

    def __init__(self, col_name: ColumnLike, similarity_threshold: float):
        self.col_expression = _col(col_name)
        self.similarity_threshold = _number(
            similarity_threshold, 0, 1, type(self).__name__, "similarity_threshold"
        )

    def create_sql(self) -> str:
        c = self.col_expression
        return f"array_cosine_similarity({c.name_l}, {c.name_r}) >= {self.similarity_threshold}"

    def create_label_for_charts(self) -> str:
        return f"Cosine similarity of {self.col_expression.label} >= {self.similarity_threshold}"


#: PairwiseStringDistanceFunctionLevel's functions (Splink's names) -> DuckDB's function, and
#: whether a higher value means more similar (then the best pair is the maximum).
PAIRWISE_DISTANCE_FUNCTIONS = {
    "levenshtein": ("levenshtein", False),
    "damerau_levenshtein": ("damerau_levenshtein", False),
    "jaro_winkler": ("jaro_winkler_similarity", True),
    "jaro": ("jaro_similarity", True),
}

# Splink's SQL, to the whitespace: a model written here is byte-identical to Splink's
_PAIRWISE_SQL = (
    "{aggregate}(\n"
    "                    list_transform(\n"
    "                        flatten(\n"
    "                            list_transform(\n"
    "                                {left},\n"
    "                                x -> list_transform(\n"
    "                                    {right},\n"
    "                                    y -> [x, y]\n"
    "                                )\n"
    "                            )\n"
    "                        ),\n"
    "                        pair -> {function}(\n"
    "                            pair[1],\n"
    "                            pair[2]\n"
    "                        )\n"
    "                    )\n"
    "                ) {op} {threshold}"
)


def _pairwise_function(value, level: str, column: ColumnExpression) -> str:
    if isinstance(value, str) and value in PAIRWISE_DISTANCE_FUNCTIONS:
        return value
    supported = "', '".join(PAIRWISE_DISTANCE_FUNCTIONS)
    spelling = {v[0]: k for k, v in PAIRWISE_DISTANCE_FUNCTIONS.items()}
    hint = ""
    if isinstance(value, str) and value in spelling:
        hint = f" (this level spells it {spelling[value]!r}, as Splink's)"
    raise SettingsError(
        f"{level}({column.raw_sql_expression!r}): 'distance_function_name' {value!r} is not "
        f"a pairwise string distance{hint}; use one of '{supported}'"
    )


class PairwiseStringDistanceFunctionLevel(ComparisonLevelCreator):
    """The most similar pair of strings across two arrays of strings, against a threshold:
    the least ``levenshtein`` / ``damerau_levenshtein`` (``<= distance_threshold``) or the
    greatest ``jaro`` / ``jaro_winkler`` (``>= distance_threshold``) over every pair
    ``(x, y)``, ``x`` in the left record's array and ``y`` in the right's.

    As DuckDB (so Splink): null elements are skipped; an empty array, or one of null elements
    only, makes the level not match (no pair: NULL); Jaro of two empty strings is 0.
    Columns must hold lists of strings (else ``InputError``).

    >>> lvl = PairwiseStringDistanceFunctionLevel("names", "levenshtein", 2)
    >>> lvl.create_label_for_charts()
    "Min `levenshtein` distance of 'names' <= than 2'"
    >>> print(PairwiseStringDistanceFunctionLevel("names", "jaro", 0.9).create_sql())
    list_max(
                        list_transform(
                            flatten(
                                list_transform(
                                    "names_l",
                                    x -> list_transform(
                                        "names_r",
                                        y -> [x, y]
                                    )
                                )
                            ),
                            pair -> jaro_similarity(
                                pair[1],
                                pair[2]
                            )
                        )
                    ) >= 0.9
    """

    def __init__(self, col_name: ColumnLike, distance_function_name: str, distance_threshold):
        name = type(self).__name__
        self.col_expression = _col(col_name)
        self.distance_function_name = _pairwise_function(
            distance_function_name, name, self.col_expression
        )
        # Splink allows any threshold >= 0; a similarity above 1 could never match
        upper = 1 if self._higher_is_more_similar() else float("inf")
        self.distance_threshold = _number(distance_threshold, 0, upper, name, "distance_threshold")

    def _higher_is_more_similar(self) -> bool:
        return PAIRWISE_DISTANCE_FUNCTIONS[self.distance_function_name][1]

    def _aggregator(self) -> str:
        return "max" if self._higher_is_more_similar() else "min"

    def _comparator(self) -> str:
        return ">=" if self._higher_is_more_similar() else "<="

    def create_sql(self) -> str:
        c = self.col_expression
        return _PAIRWISE_SQL.format(
            aggregate=f"list_{self._aggregator()}",
            left=c.name_l,
            right=c.name_r,
            function=PAIRWISE_DISTANCE_FUNCTIONS[self.distance_function_name][0],
            op=self._comparator(),
            threshold=self.distance_threshold,
        )

    def create_label_for_charts(self) -> str:
        return (
            f"{self._aggregator().title()} `{self.distance_function_name}` distance of "
            f"'{self.col_expression.label}' {self._comparator()} than {self.distance_threshold}'"
        )


def _as_level(cl) -> ComparisonLevelCreator:
    if isinstance(cl, ComparisonLevelCreator):
        return cl
    if isinstance(cl, dict):
        return CustomLevel._convert_to_creator(cl)
    raise SettingsError(f"And/Or/Not take levels or level dicts, got {type(cl).__name__} ({cl!r})")


class _Merge(ComparisonLevelCreator):
    _clause = ""

    def __init__(self, *comparison_levels):
        if not comparison_levels:
            raise SettingsError(f"{type(self).__name__}() needs at least one level")
        self.comparison_levels = [_as_level(cl) for cl in comparison_levels]
        self.configure(is_null_level=all(cl.is_null_level for cl in self.comparison_levels))

    def create_sql(self) -> str:
        return f" {self._clause} ".join(f"({cl.create_sql()})" for cl in self.comparison_levels)

    def create_label_for_charts(self) -> str:
        return f" {self._clause} ".join(
            f"({cl.create_label_for_charts()})" for cl in self.comparison_levels
        )


class And(_Merge):
    """All of the given levels hold.

    >>> And(ExactMatchLevel("a"), ExactMatchLevel("b")).create_sql()
    '("a_l" = "a_r") AND ("b_l" = "b_r")'
    """

    _clause = "AND"


class Or(_Merge):
    """Any of the given levels holds.

    >>> Or(NullLevel("a"), NullLevel("b")).is_null_level
    True
    """

    _clause = "OR"


class Not(ComparisonLevelCreator):
    """The given level does not hold (a null level becomes an ordinary level).

    >>> Not(ExactMatchLevel("a")).create_label_for_charts()
    'NOT (Exact match on a)'
    """

    def __init__(self, comparison_level):
        self.comparison_level = _as_level(comparison_level)
        if self.comparison_level.is_null_level:
            self.configure(is_null_level=False)

    def create_sql(self) -> str:
        return f"NOT ({self.comparison_level.create_sql()})"

    def create_label_for_charts(self) -> str:
        return f"NOT ({self.comparison_level.create_label_for_charts()})"


def copy_level(level: ComparisonLevelCreator) -> ComparisonLevelCreator:
    """A shallow copy whose configure() does not touch the original."""
    return copy(level)


__all__ = [
    "AbsoluteDateDifferenceLevel",
    "AbsoluteDifferenceLevel",
    "AbsoluteTimeDifferenceLevel",
    "And",
    "ArrayIntersectLevel",
    "ArraySubsetLevel",
    "ColumnExpression",
    "ColumnsReversedLevel",
    "ComparisonLevelCreator",
    "CosineSimilarityLevel",
    "CustomLevel",
    "DamerauLevenshteinLevel",
    "DistanceFunctionLevel",
    "DistanceInKMLevel",
    "ElseLevel",
    "ExactMatchLevel",
    "JaccardLevel",
    "JaroLevel",
    "JaroWinklerLevel",
    "LevenshteinLevel",
    "LiteralMatchLevel",
    "Not",
    "NullLevel",
    "PairwiseStringDistanceFunctionLevel",
    "Or",
    "PercentageDifferenceLevel",
]
