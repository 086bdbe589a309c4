"""Comparisons with Splink's names, signatures, defaults, levels and labels.

Moving a model from Splink is an import change: ``import gpulink.comparison_library as cl``.

>>> import gpulink.comparison_library as cl
>>> c = cl.JaroWinklerAtThresholds("first_name", [0.9, 0.7])
>>> [lvl["label_for_charts"] for lvl in c.create_comparison_dict()["comparison_levels"]]
['first_name is NULL', 'Exact match on first_name', 'Jaro-Winkler distance of first_name >= 0.9', 'Jaro-Winkler distance of first_name >= 0.7', 'All other comparisons']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpulink import comparison_level_library as cll
from gpulink.checks import as_python_number, is_number
from gpulink.comparison_level_library import ComparisonLevelCreator, CustomLevel
from gpulink.errors import SettingsError
from gpulink.levels import ColumnExpression

_UNSUPPLIED = object()
ColumnLike = str | ColumnExpression


def _as_list(value) -> list:
    """One threshold or metric, or any iterable of them (a numpy array too), as a list."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


class ComparisonCreator:
    """Base of every comparison: its levels, name, description and ``.configure()``."""

    DEFAULT = "__default__"

    def __init__(self, col_name_or_names):
        if isinstance(col_name_or_names, dict):
            cols = col_name_or_names
        else:
            cols = {self.DEFAULT: col_name_or_names}
        self.col_expressions = {
            key: ColumnExpression.instantiate_if_str(c) for key, c in cols.items()
        }
        self.create_comparison_levels()  # validate early, as Splink does

    @property
    def col_expression(self) -> ColumnExpression:
        return self.col_expressions[self.DEFAULT]

    def create_comparison_levels(self) -> list[ComparisonLevelCreator]:  # pragma: no cover
        raise NotImplementedError

    def create_output_column_name(self) -> str | None:  # pragma: no cover
        raise NotImplementedError

    def create_description(self) -> str:
        return type(self).__name__

    @property
    def num_non_null_levels(self) -> int:
        return sum(not cl.is_null_level for cl in self.create_comparison_levels())

    def configure(
        self,
        *,
        term_frequency_adjustments=_UNSUPPLIED,
        m_probabilities=_UNSUPPLIED,
        u_probabilities=_UNSUPPLIED,
    ) -> ComparisonCreator:
        """Switch on TF for the exact-match levels and/or set m and u per non-null level.

        >>> c = ExactMatch("city").configure(term_frequency_adjustments=True,
        ...                                  m_probabilities=[0.9, 0.1])
        >>> c.create_comparison_dict()["comparison_levels"][1]["m_probability"]
        0.9
        """
        if term_frequency_adjustments is not _UNSUPPLIED:
            self._tf = bool(term_frequency_adjustments)
        for name, values in (("m", m_probabilities), ("u", u_probabilities)):
            if values is _UNSUPPLIED or values is None:
                continue
            values = _as_list(values)
            if not values:
                continue
            n = self.num_non_null_levels
            if len(values) != n:
                raise SettingsError(
                    f"{type(self).__name__} ({self.create_output_column_name()}) has {n} "
                    f"non-null levels but {len(values)} {name}_probabilities were given; "
                    f"give one per non-null level, in order"
                )
            for v in values:
                if not is_number(v) or not 0 <= v <= 1:
                    raise SettingsError(
                        f"{type(self).__name__}: {name}_probabilities must be numbers in "
                        f"[0, 1], got {v!r}"
                    )
            setattr(self, f"_{name}", [as_python_number(v) for v in values])
        return self

    @property
    def term_frequency_adjustments(self) -> bool:
        return getattr(self, "_tf", False)

    @term_frequency_adjustments.setter
    def term_frequency_adjustments(self, value: bool) -> None:
        self._tf = bool(value)

    def get_configured_comparison_levels(self) -> list[ComparisonLevelCreator]:
        """The levels with this comparison's TF switch and m/u lists applied (Splink's rules)."""
        levels = self.create_comparison_levels()
        if self.term_frequency_adjustments:
            for cl in levels:
                col = getattr(cl, "col_expression", None)
                if col is not None and col.is_pure_column_or_column_reference:
                    if cl.is_exact_match_level:
                        cl.term_frequency_adjustments = True
        for name in ("m", "u"):
            values = list(getattr(self, f"_{name}", None) or [])
            if values:
                for cl in levels:
                    cl.configure(
                        **{f"{name}_probability": None if cl.is_null_level else values.pop(0)}
                    )
        return levels

    def create_comparison_dict(self) -> dict[str, Any]:
        """The comparison as a Splink settings dict (DuckDB SQL)."""
        return {
            "comparison_description": self.create_description(),
            "output_column_name": self.create_output_column_name(),
            "comparison_levels": [
                cl.create_level_dict() for cl in self.get_configured_comparison_levels()
            ],
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.create_output_column_name()}>"


class _ThresholdComparison(ComparisonCreator):
    _level: type = cll.LevenshteinLevel
    _exact = True

    def __init__(self, col_name: ColumnLike, thresholds):
        self.thresholds = _as_list(thresholds)
        super().__init__(col_name)

    def create_comparison_levels(self):
        c = self.col_expression
        levels = [cll.NullLevel(c)]
        if self._exact:
            levels.append(cll.ExactMatchLevel(c))
        levels += [self._level(c, t) for t in self.thresholds]
        return levels + [cll.ElseLevel()]

    def create_output_column_name(self) -> str:
        return self.col_expression.output_column_name


class ExactMatch(ComparisonCreator):
    """Null / exact match / anything else.

    >>> ExactMatch("city").create_output_column_name()
    'city'
    """

    def __init__(self, col_name: ColumnLike):
        super().__init__(col_name)

    def create_comparison_levels(self):
        c = self.col_expression
        return [cll.NullLevel(c), cll.ExactMatchLevel(c), cll.ElseLevel()]

    def create_output_column_name(self) -> str:
        return self.col_expression.output_column_name


class LevenshteinAtThresholds(_ThresholdComparison):
    """Null / exact / Levenshtein <= each threshold / else.

    >>> LevenshteinAtThresholds("name").thresholds
    [1, 2]
    """

    def __init__(self, col_name: ColumnLike, distance_threshold_or_thresholds=(1, 2)):
        super().__init__(col_name, distance_threshold_or_thresholds)


class DamerauLevenshteinAtThresholds(_ThresholdComparison):
    """Null / exact / Damerau-Levenshtein <= each threshold / else.

    >>> DamerauLevenshteinAtThresholds("name", 1).create_description()
    "Exact match 'name' vs. Damerau-Levenshtein distance at thresholds 1 vs. anything else"
    """

    _level = cll.DamerauLevenshteinLevel

    def __init__(self, col_name: ColumnLike, distance_threshold_or_thresholds=(1, 2)):
        super().__init__(col_name, distance_threshold_or_thresholds)

    def create_description(self) -> str:
        ts = ", ".join(map(str, self.thresholds))
        return (
            f"Exact match '{self.col_expression.label}' vs. Damerau-Levenshtein distance at "
            f"thresholds {ts} vs. anything else"
        )


class JaccardAtThresholds(_ThresholdComparison):
    """Null / exact / Jaccard >= each threshold / else.

    >>> JaccardAtThresholds("name").thresholds
    [0.9, 0.7]
    """

    _level = cll.JaccardLevel

    def __init__(self, col_name: ColumnLike, score_threshold_or_thresholds=(0.9, 0.7)):
        super().__init__(col_name, score_threshold_or_thresholds)


class JaroAtThresholds(_ThresholdComparison):
    """Null / exact / Jaro >= each threshold / else.

    >>> JaroAtThresholds("name", 0.8).thresholds
    [0.8]
    """

    _level = cll.JaroLevel

    def __init__(self, col_name: ColumnLike, score_threshold_or_thresholds=(0.9, 0.7)):
        super().__init__(col_name, score_threshold_or_thresholds)


class JaroWinklerAtThresholds(_ThresholdComparison):
    """Null / exact / Jaro-Winkler >= each threshold / else.

    >>> JaroWinklerAtThresholds("name").thresholds
    [0.9, 0.7]
    """

    _level = cll.JaroWinklerLevel

    def __init__(self, col_name: ColumnLike, score_threshold_or_thresholds=(0.9, 0.7)):
        super().__init__(col_name, score_threshold_or_thresholds)


class AbsoluteDifferenceAtThresholds(_ThresholdComparison):
    """Null / exact / abs(l - r) <= each threshold / else (numbers).

    >>> len(AbsoluteDifferenceAtThresholds("age", [1, 5]).create_comparison_levels())
    5
    """

    _level = cll.AbsoluteDifferenceLevel

    def __init__(self, col_name: ColumnLike, difference_threshold_or_thresholds=(1,)):
        super().__init__(col_name, difference_threshold_or_thresholds)


class AbsoluteTimeDifferenceAtThresholds(ComparisonCreator):
    """Null / exact / elapsed time <= each (threshold, metric) / else.

    >>> c = AbsoluteTimeDifferenceAtThresholds("ts", input_is_string=False,
    ...                                        metrics=["hour"], thresholds=[3])
    >>> c.create_comparison_levels()[2].create_sql()
    'ABS(EPOCH("ts_l") - EPOCH("ts_r")) <= 10800'
    """

    _level = cll.AbsoluteTimeDifferenceLevel
    _parse = "try_parse_timestamp"

    def __init__(
        self,
        col_name: ColumnLike,
        *,
        input_is_string: bool,
        metrics,
        thresholds,
        datetime_format: str | None = None,
        term_frequency_adjustments: bool = False,
        invalid_dates_as_null: bool = True,
    ):
        self.time_metrics = _as_list(metrics)
        self.time_thresholds = _as_list(thresholds)
        if not self.time_thresholds or not self.time_metrics:
            raise SettingsError(f"{type(self).__name__}: give at least one threshold and metric")
        if len(self.time_metrics) != len(self.time_thresholds):
            raise SettingsError(
                f"{type(self).__name__}: {len(self.time_thresholds)} thresholds but "
                f"{len(self.time_metrics)} metrics; give one metric per threshold"
            )
        self.input_is_string = input_is_string
        self.invalid_dates_as_null = invalid_dates_as_null if input_is_string else False
        self.datetime_format = datetime_format
        self.term_frequency_adjustments = term_frequency_adjustments
        super().__init__(col_name)

    def create_comparison_levels(self):
        col = self.col_expression
        null_col = (
            getattr(col, self._parse)(self.datetime_format) if self.invalid_dates_as_null else col
        )
        return [
            cll.NullLevel(null_col),
            cll.ExactMatchLevel(col, term_frequency_adjustments=self.term_frequency_adjustments),
            *[
                self._level(
                    col,
                    input_is_string=self.input_is_string,
                    threshold=t,
                    metric=m,
                    datetime_format=self.datetime_format,
                )
                for t, m in zip(self.time_thresholds, self.time_metrics)
            ],
            cll.ElseLevel(),
        ]

    def create_output_column_name(self) -> str:
        return self.col_expression.output_column_name


class AbsoluteDateDifferenceAtThresholds(AbsoluteTimeDifferenceAtThresholds):
    """Null / exact / elapsed days <= each (threshold, metric) / else.

    >>> c = AbsoluteDateDifferenceAtThresholds("dob", input_is_string=True,
    ...                                        metrics=["year"], thresholds=[1])
    >>> c.create_comparison_levels()[0].create_sql()
    'try_strptime("dob_l", \\'%Y-%m-%d\\') IS NULL OR try_strptime("dob_r", \\'%Y-%m-%d\\') IS NULL'
    """

    _level = cll.AbsoluteDateDifferenceLevel
    _parse = "try_parse_date"


class ArrayIntersectAtSizes(_ThresholdComparison):
    """Null / intersection size >= each threshold / else.

    >>> len(ArrayIntersectAtSizes("aliases", [2, 1]).create_comparison_levels())
    4
    """

    _exact = False

    def __init__(self, col_name: ColumnLike, size_threshold_or_thresholds=(1,)):
        super().__init__(col_name, size_threshold_or_thresholds)

    def _level(self, col, threshold):
        return cll.ArrayIntersectLevel(col, min_intersection=threshold)


class DistanceFunctionAtThresholds(_ThresholdComparison):
    """Null / exact / ``distance_function_name`` at each threshold / else (see
    :class:`~gpulink.comparison_level_library.DistanceFunctionLevel` for the functions).

    >>> c = DistanceFunctionAtThresholds("name", "levenshtein", [1, 2], higher_is_more_similar=False)
    >>> c.create_comparison_levels()[2].create_sql()
    'levenshtein("name_l", "name_r") <= 1'
    """

    def __init__(
        self,
        col_name: ColumnLike,
        distance_function_name: str,
        distance_threshold_or_thresholds,
        higher_is_more_similar: bool = True,
    ):
        self.distance_function_name = distance_function_name
        self.higher_is_more_similar = higher_is_more_similar
        super().__init__(col_name, distance_threshold_or_thresholds)

    def _level(self, col, threshold):
        return cll.DistanceFunctionLevel(
            col,
            self.distance_function_name,
            threshold,
            higher_is_more_similar=self.higher_is_more_similar,
        )


class CosineSimilarityAtThresholds(_ThresholdComparison):
    """Null / cosine similarity >= each threshold / else, over float vectors.

    >>> CosineSimilarityAtThresholds("embedding").thresholds
    [0.9, 0.8, 0.7]
    """

    _exact = False
    _level = cll.CosineSimilarityLevel

    def __init__(self, col_name: ColumnLike, score_threshold_or_thresholds=(0.9, 0.8, 0.7)):
        super().__init__(col_name, score_threshold_or_thresholds)


class PairwiseStringDistanceFunctionAtThresholds(_ThresholdComparison):
    """Null / the arrays share an element / the most similar pair of elements at each
    threshold / else, over arrays of strings (see
    :class:`~gpulink.comparison_level_library.PairwiseStringDistanceFunctionLevel`).

    >>> c = PairwiseStringDistanceFunctionAtThresholds("names", "levenshtein", [1, 3])
    >>> [lvl.create_label_for_charts() for lvl in c.create_comparison_levels()]
    ['names is NULL', 'Array intersection size >= 1', "Min `levenshtein` distance of 'names' <= than 1'", "Min `levenshtein` distance of 'names' <= than 3'", 'All other comparisons']
    >>> c.create_description()
    'Pairwise levenshtein distance at thresholds 1, 3 vs. anything else'
    """

    _exact = False

    def __init__(
        self, col_name: ColumnLike, distance_function_name: str, distance_threshold_or_thresholds
    ):
        self.distance_function_name = distance_function_name
        super().__init__(col_name, distance_threshold_or_thresholds)

    def create_comparison_levels(self):
        c = self.col_expression
        # Splink: identical arrays are taken to be the most similar, whatever the metric
        return [
            cll.NullLevel(c),
            cll.ArrayIntersectLevel(c, min_intersection=1),
            *[self._level(c, t) for t in self.thresholds],
            cll.ElseLevel(),
        ]

    def _level(self, col, threshold):
        return cll.PairwiseStringDistanceFunctionLevel(col, self.distance_function_name, threshold)

    def create_description(self) -> str:
        plural = "s" if len(self.thresholds) > 1 else ""
        listed = ", ".join(map(str, self.thresholds))
        return (
            f"Pairwise {self.distance_function_name} distance at threshold{plural} {listed} "
            "vs. anything else"
        )


class DistanceInKMAtThresholds(ComparisonCreator):
    """Null (either coordinate) / distance <= each km threshold / else.

    >>> DistanceInKMAtThresholds("lat", "long", [1, 10]).create_output_column_name()
    'lat_long'
    """

    def __init__(self, lat_col: ColumnLike, long_col: ColumnLike, km_thresholds):
        self.thresholds = _as_list(km_thresholds)
        super().__init__({"latitude_column": lat_col, "longitude_column": long_col})

    def create_comparison_levels(self):
        lat = self.col_expressions["latitude_column"]
        lng = self.col_expressions["longitude_column"]
        return [
            cll.Or(cll.NullLevel(lat), cll.NullLevel(lng)),
            *[cll.DistanceInKMLevel(lat, lng, km_threshold=t) for t in self.thresholds],
            cll.ElseLevel(),
        ]

    def create_output_column_name(self) -> str:
        lat = self.col_expressions["latitude_column"]
        lng = self.col_expressions["longitude_column"]
        return f"{lat.output_column_name}_{lng.output_column_name}"


class CustomComparison(ComparisonCreator):
    """A comparison of your own levels (level objects or Splink level dicts).

    >>> c = CustomComparison([cll.NullLevel("a"), cll.ExactMatchLevel("a"), cll.ElseLevel()],
    ...                      output_column_name="a")
    >>> c.create_output_column_name()
    'a'
    """

    def __init__(
        self,
        comparison_levels: list,
        output_column_name: str | None = None,
        comparison_description: str | None = None,
    ):
        if not isinstance(comparison_levels, (list, tuple)) or not comparison_levels:
            raise SettingsError(
                f"CustomComparison({output_column_name!r}) needs a non-empty list of levels"
            )
        self._output_column_name = output_column_name
        self._levels = list(comparison_levels)
        self._description = comparison_description
        self.col_expressions = {}

    def create_comparison_levels(self):
        return [CustomLevel._convert_to_creator(cl) for cl in self._levels]

    def create_output_column_name(self) -> str | None:
        return self._output_column_name

    def create_description(self) -> str:
        return self._description or type(self).__name__

    @staticmethod
    def _convert_to_creator(comparison) -> ComparisonCreator:
        if isinstance(comparison, ComparisonCreator):
            return comparison
        if isinstance(comparison, dict):
            allowed = {"comparison_levels", "output_column_name", "comparison_description"}
            unknown = set(comparison) - allowed
            if unknown or "comparison_levels" not in comparison:
                raise SettingsError(
                    f"comparison dict {comparison.get('output_column_name')!r} has unknown "
                    f"keys {sorted(unknown)} or no 'comparison_levels'; allowed: "
                    f"{sorted(allowed)}"
                )
            return CustomComparison(**comparison)
        if hasattr(comparison, "create_comparison_dict"):  # a Splink comparison object
            return CustomComparison(**comparison.create_comparison_dict("duckdb"))
        raise SettingsError(
            f"a comparison must be a gpulink comparison, a Splink comparison or a dict, got "
            f"{type(comparison).__name__} ({comparison!r})"
        )


class DateOfBirthComparison(ComparisonCreator):
    """Splink's date-of-birth comparison: exact, Levenshtein 1, then date differences.

    >>> c = DateOfBirthComparison("dob", input_is_string=True)
    >>> [lvl.create_level_dict()["label_for_charts"] for lvl in c.create_comparison_levels()][1:3]
    ['Exact match on date of birth', 'Levenshtein distance <= 1']
    """

    def __init__(
        self,
        col_name: ColumnLike,
        *,
        input_is_string: bool,
        datetime_thresholds=(1, 1, 10),
        datetime_metrics=("month", "year", "year"),
        datetime_format: str | None = None,
        invalid_dates_as_null: bool = True,
    ):
        self.datetime_thresholds = _as_list(datetime_thresholds)
        self.datetime_metrics = _as_list(datetime_metrics)
        if not self.datetime_thresholds or not self.datetime_metrics:
            raise SettingsError("DateOfBirthComparison: give at least one threshold and metric")
        if len(self.datetime_thresholds) != len(self.datetime_metrics):
            raise SettingsError(
                f"DateOfBirthComparison: {len(self.datetime_thresholds)} thresholds but "
                f"{len(self.datetime_metrics)} metrics; give one metric per threshold"
            )
        self.datetime_format = datetime_format
        self.input_is_string = input_is_string
        self.invalid_dates_as_null = invalid_dates_as_null
        super().__init__(col_name)

    def create_comparison_levels(self):
        col = self.col_expression
        if self.invalid_dates_as_null and self.input_is_string:
            null_col = col.try_parse_date(self.datetime_format)
        else:
            null_col = col
        as_string = col if self.input_is_string else col.cast_to_string()
        levels = [
            cll.NullLevel(null_col),
            cll.ExactMatchLevel(col).configure(label_for_charts="Exact match on date of birth"),
            cll.LevenshteinLevel(as_string, 1).configure(
                label_for_charts="Levenshtein distance <= 1"
            ),
        ]
        for t, m in zip(self.datetime_thresholds, self.datetime_metrics):
            levels.append(
                cll.AbsoluteDateDifferenceLevel(
                    col,
                    threshold=t,
                    metric=m,
                    input_is_string=self.input_is_string,
                    datetime_format=self.datetime_format,
                ).configure(label_for_charts=f"Abs date difference <= {t} {m}")
            )
        return levels + [cll.ElseLevel()]

    def create_output_column_name(self) -> str:
        return self.col_expression.output_column_name


class PostcodeComparison(ComparisonCreator):
    """Splink's UK postcode comparison: full / sector / district / area, or km distances.

    >>> len(PostcodeComparison("postcode").create_comparison_levels())
    6
    """

    SECTOR_REGEX = "^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? [0-9]"
    DISTRICT_REGEX = "^[A-Za-z]{1,2}[0-9][A-Za-z0-9]?"
    AREA_REGEX = "^[A-Za-z]{1,2}"
    VALID_POSTCODE_REGEX = "^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? [0-9][A-Za-z]{2}$"

    def __init__(
        self,
        col_name: ColumnLike,
        *,
        invalid_postcodes_as_null: bool = False,
        lat_col: ColumnLike | None = None,
        long_col: ColumnLike | None = None,
        km_thresholds=(1, 10, 100),
    ):
        self.valid_postcode_regex = self.VALID_POSTCODE_REGEX if invalid_postcodes_as_null else None
        cols = {"postcode": col_name}
        self.km_thresholds = _as_list(km_thresholds)
        if lat_col is None or long_col is None:
            self.km_thresholds = []
        else:
            cols["latitude"] = lat_col
            cols["longitude"] = long_col
        super().__init__(cols)

    def create_comparison_levels(self):
        full = self.col_expressions["postcode"]
        sector = full.regex_extract(self.SECTOR_REGEX)
        null = cll.NullLevel(full, valid_string_pattern=self.valid_postcode_regex)
        if not self.km_thresholds:
            levels = [
                null,
                cll.ExactMatchLevel(full).configure(
                    label_for_charts="Exact match on full postcode"
                ),
                cll.ExactMatchLevel(sector).configure(label_for_charts="Exact match on sector"),
                cll.ExactMatchLevel(full.regex_extract(self.DISTRICT_REGEX)).configure(
                    label_for_charts="Exact match on district"
                ),
                cll.ExactMatchLevel(full.regex_extract(self.AREA_REGEX)).configure(
                    label_for_charts="Exact match on area"
                ),
            ]
        else:
            lat, lng = self.col_expressions["latitude"], self.col_expressions["longitude"]
            levels = [null, cll.ExactMatchLevel(full), cll.ExactMatchLevel(sector)]
            levels += [
                cll.DistanceInKMLevel(lat, lng, t).configure(
                    label_for_charts=f"Distance in km <= {t}"
                )
                for t in self.km_thresholds
            ]
        return levels + [cll.ElseLevel()]

    def create_output_column_name(self) -> str:
        return self.col_expressions["postcode"].output_column_name


class EmailComparison(ComparisonCreator):
    """Splink's email comparison: full / username exact, then Jaro-Winkler 0.88 on each.

    >>> EmailComparison("email").create_comparison_levels()[2].create_level_dict()["label_for_charts"]
    'Exact match on username'
    """

    USERNAME_REGEX = "^[^@]+"
    DOMAIN_REGEX = "@([^@]+)$"

    def __init__(self, col_name: ColumnLike):
        super().__init__(col_name)

    def create_comparison_levels(self):
        full = self.col_expression
        user = full.regex_extract(self.USERNAME_REGEX)
        return [
            cll.NullLevel(full),
            cll.ExactMatchLevel(full).configure(tf_adjustment_column=full.raw_sql_expression),
            cll.ExactMatchLevel(user).configure(label_for_charts="Exact match on username"),
            cll.JaroWinklerLevel(full, 0.88),
            cll.JaroWinklerLevel(user, 0.88).configure(
                label_for_charts="Jaro-Winkler >0.88 on username"
            ),
            cll.ElseLevel(),
        ]

    def create_output_column_name(self) -> str:
        return self.col_expression.output_column_name


class NameComparison(ComparisonCreator):
    """Splink's name comparison: exact (with TF), Jaro-Winkler levels, optional dmetaphone.

    >>> len(NameComparison("first_name").create_comparison_levels())
    6
    """

    def __init__(
        self,
        col_name: ColumnLike,
        *,
        jaro_winkler_thresholds=(0.92, 0.88, 0.7),
        dmeta_col_name: str | None = None,
    ):
        self.jaro_winkler_thresholds = _as_list(jaro_winkler_thresholds)
        cols = {"name": col_name}
        self.dmeta_col = dmeta_col_name is not None
        if self.dmeta_col:
            cols["dmeta_name"] = dmeta_col_name
        super().__init__(cols)

    def create_comparison_levels(self):
        name = self.col_expressions["name"]
        exact = cll.ExactMatchLevel(name)
        if name.is_pure_column_or_column_reference:
            exact.configure(tf_adjustment_column=name.raw_sql_expression)
        levels = [cll.NullLevel(name), exact]
        levels += [cll.JaroWinklerLevel(name, t) for t in self.jaro_winkler_thresholds if t >= 0.88]
        if self.dmeta_col:
            levels.append(cll.ArrayIntersectLevel(self.col_expressions["dmeta_name"], 1))
        levels += [cll.JaroWinklerLevel(name, t) for t in self.jaro_winkler_thresholds if t < 0.88]
        return levels + [cll.ElseLevel()]

    def create_output_column_name(self) -> str:
        return self.col_expressions["name"].output_column_name


class ForenameSurnameComparison(ComparisonCreator):
    """Splink's forename + surname comparison (reversed names, joint Jaro-Winkler, TF).

    >>> ForenameSurnameComparison("first_name", "surname").create_output_column_name()
    'first_name_surname'
    """

    def __init__(
        self,
        forename_col_name: ColumnLike,
        surname_col_name: ColumnLike,
        *,
        jaro_winkler_thresholds=(0.92, 0.88),
        forename_surname_concat_col_name: str | None = None,
    ):
        self.jaro_winkler_thresholds = _as_list(jaro_winkler_thresholds)
        cols = {"forename": forename_col_name, "surname": surname_col_name}
        if forename_surname_concat_col_name is not None:
            cols["forename_surname_concat"] = forename_surname_concat_col_name
        super().__init__(cols)

    def create_comparison_levels(self):
        fn, sn = self.col_expressions["forename"], self.col_expressions["surname"]
        levels = [cll.And(cll.NullLevel(fn), cll.NullLevel(sn))]
        if "forename_surname_concat" in self.col_expressions:
            concat = self.col_expressions["forename_surname_concat"]
            levels.append(
                cll.ExactMatchLevel(concat).configure(
                    tf_adjustment_column=concat.raw_sql_expression
                )
            )
        else:
            levels.append(cll.And(cll.ExactMatchLevel(fn), cll.ExactMatchLevel(sn)))
        levels.append(cll.ColumnsReversedLevel(fn, sn, symmetrical=True))
        levels += [
            cll.And(cll.JaroWinklerLevel(fn, t), cll.JaroWinklerLevel(sn, t))
            for t in self.jaro_winkler_thresholds
        ]
        levels.append(cll.ExactMatchLevel(sn).configure(tf_adjustment_column=sn.raw_sql_expression))
        levels.append(cll.ExactMatchLevel(fn).configure(tf_adjustment_column=fn.raw_sql_expression))
        return levels + [cll.ElseLevel()]

    def create_output_column_name(self) -> str:
        fn, sn = self.col_expressions["forename"], self.col_expressions["surname"]
        return f"{fn.output_column_name}_{sn.output_column_name}"


__all__ = [
    "AbsoluteDateDifferenceAtThresholds",
    "AbsoluteDifferenceAtThresholds",
    "AbsoluteTimeDifferenceAtThresholds",
    "ArrayIntersectAtSizes",
    "ComparisonCreator",
    "CosineSimilarityAtThresholds",
    "CustomComparison",
    "DamerauLevenshteinAtThresholds",
    "DateOfBirthComparison",
    "DistanceFunctionAtThresholds",
    "DistanceInKMAtThresholds",
    "EmailComparison",
    "ExactMatch",
    "ForenameSurnameComparison",
    "JaccardAtThresholds",
    "JaroAtThresholds",
    "JaroWinklerAtThresholds",
    "LevenshteinAtThresholds",
    "NameComparison",
    "PairwiseStringDistanceFunctionAtThresholds",
    "PostcodeComparison",
]
