"""The model specification: SettingsCreator (Splink's), the resolved Settings, JSON round trips.

A model is what Splink calls settings: the link type, the comparisons (each an ordered list of
levels with m and u), the blocking rules, λ (``probability_two_random_records_match``) and the
training options. gpulink keeps Splink's field names and its model JSON format, so a Splink model
file loads here and a gpulink model loads in Splink (see :meth:`Settings.to_splink_dict`).

>>> import gpulink.comparison_library as cl
>>> s = SettingsCreator(link_type="dedupe_only",
...                     comparisons=[cl.ExactMatch("city"), cl.LevenshteinAtThresholds("name")],
...                     blocking_rules_to_generate_predictions=["l.city = r.city"]).get_settings()
>>> [lvl.comparison_vector_value for lvl in s.comparisons[1].levels]
[-1, 3, 2, 1, 0]
>>> compile_program(s).n_comparisons
2
"""

from __future__ import annotations

import difflib
import json
import logging
import math
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpulink.checks import as_python_number, is_integer, is_number
from gpulink.comparison_library import ComparisonCreator, CustomComparison
from gpulink.errors import SettingsError
from gpulink.kernels.program import (
    LEAF_ARRAY_LEAST_LEN_LE,
    LEAF_ARRAY_SUBSET,
    LEAF_ELSE,
    LEAF_EXACT,
    LEAF_EXACT_AS_STRING,
    LEAF_NULL,
    MAX_STACK,
    OP_AND,
    OP_LEAF,
    OP_NOT,
    OP_OR,
    ComparisonProgram,
)
from gpulink.levels import (
    Leaf,
    condition_to_predicate,
    is_single_exact_on,
    iter_leaves,
)

logger = logging.getLogger("gpulink")

FORMAT_VERSION = 1
LINK_TYPES = ("dedupe_only", "link_only", "link_and_dedupe")
LEVEL_NOT_OBSERVED_TEXT = "level not observed in training dataset"  # Splink: an m/u never seen
M_U_CLAMP_MIN = 1e-300  # Splink clamps m and u here before taking log2(m/u)
DEFAULT_LAMBDA = 0.0001

_SETTINGS_FIELDS = (
    "link_type",
    "comparisons",
    "blocking_rules_to_generate_predictions",
    "probability_two_random_records_match",
    "em_convergence",
    "max_iterations",
    "retain_matching_columns",
    "retain_intermediate_calculation_columns",
    "additional_columns_to_retain",
    "unique_id_column_name",
    "source_dataset_column_name",
    "match_weight_column_prefix",
    "term_frequency_adjustment_column_prefix",
    "comparison_vector_value_column_prefix",
    "linker_uid",
)
# Keys Splink writes or used to accept, that carry nothing gpulink needs
_IGNORED_KEYS = ("sql_dialect", "bayes_factor_column_prefix")


@dataclass
class SettingsCreator:
    """The model you write: Splink's ``SettingsCreator`` fields and defaults.

    >>> import gpulink.comparison_library as cl
    >>> sc = SettingsCreator(link_type="dedupe_only", comparisons=[cl.ExactMatch("city")])
    >>> sc.get_settings().probability_two_random_records_match
    0.0001
    """

    link_type: str
    comparisons: list = field(default_factory=list)
    blocking_rules_to_generate_predictions: list = field(default_factory=list)
    probability_two_random_records_match: float = DEFAULT_LAMBDA
    em_convergence: float = 0.0001
    max_iterations: int = 25
    retain_matching_columns: bool = True
    retain_intermediate_calculation_columns: bool = False
    additional_columns_to_retain: list = field(default_factory=list)
    unique_id_column_name: str = "unique_id"
    source_dataset_column_name: str = "source_dataset"
    match_weight_column_prefix: str = "mw_"
    term_frequency_adjustment_column_prefix: str = "tf_"
    comparison_vector_value_column_prefix: str = "gamma_"
    linker_uid: str | None = None

    def get_settings(self) -> Settings:
        """Validate and resolve into a :class:`Settings` (raises SettingsError)."""
        return Settings._from_creator(self)

    def create_settings_dict(self) -> dict[str, Any]:
        """The model as a Splink settings dict (DuckDB SQL)."""
        return self.get_settings().to_splink_dict()

    @classmethod
    def from_path_or_dict(cls, path_or_dict) -> SettingsCreator:
        """A creator from a Splink settings / model dict, a JSON file path or a JSON string."""
        d = _load_json_like(path_or_dict)
        return cls(**_creator_kwargs(d))


# ---------------------------------------------------------------------------------------------
# Resolved model
# ---------------------------------------------------------------------------------------------


def _default_m_values(num_levels: int) -> list[float]:
    # Splink's starting values (indexed by comparison vector value)
    if num_levels < 2:
        return [0.95] * max(num_levels, 1)
    rest = (1 - 0.95) / (num_levels - 1)  # as Splink computes it, to the last bit
    return [rest] * (num_levels - 1) + [0.95]


def _default_u_values(num_levels: int) -> list[float]:
    m_vals = _default_m_values(num_levels)
    if num_levels < 2:
        return [m_vals[0] / 2**10]
    if num_levels == 2:
        weights = [-5.0]
    else:
        step = (3 - -5) / (num_levels - 2)
        weights = [-5 + i * step for i in range(num_levels - 1)]
    weights.append(10)
    return [m / 2**w for m, w in zip(m_vals, weights)]


def _probability(value, what: str) -> float | None:
    """Validate a stored m or u: None, Splink's 'level not observed', or a number in [0, 1].

    Splink, loading a settings dict, treats its 'level not observed' text as unset (the level
    then scores with the default start value); so do we.
    """
    if value is None or value == LEVEL_NOT_OBSERVED_TEXT:
        return None
    return _fraction(value, what)


def _fraction(value, what: str) -> float:
    """``value`` as a float, checked to be a number in [0, 1]."""
    if not is_number(value) or math.isnan(value):
        raise SettingsError(f"{what} must be a number in [0, 1], got {value!r}")
    if not 0 <= value <= 1:
        raise SettingsError(f"{what} = {value} is outside [0, 1]; give a probability")
    return float(value)


@dataclass
class Level:
    """One resolved comparison level (Splink's ComparisonLevel, plus its compiled predicate)."""

    sql_condition: str
    label_for_charts: str | None
    predicate: Any
    comparison_vector_value: int = 0
    is_null_level: bool = False
    m_probability: Any = None  # as stored: None (unset), a float or LEVEL_NOT_OBSERVED_TEXT
    u_probability: Any = None
    tf_adjustment_column: str | None = None
    tf_adjustment_weight: float = 1.0
    tf_minimum_u_value: float = 0.0
    disable_tf_exact_match_detection: bool = False
    fix_m_probability: bool = False
    fix_u_probability: bool = False
    default_m_probability: float | None = None
    default_u_probability: float | None = None

    @property
    def is_else_level(self) -> bool:
        return self.sql_condition.strip().upper() == "ELSE"

    @property
    def label(self) -> str:
        return self.label_for_charts or str(self.comparison_vector_value)

    @property
    def has_tf_adjustments(self) -> bool:
        return self.tf_adjustment_column is not None

    def _effective(self, value, default):
        if value == LEVEL_NOT_OBSERVED_TEXT:
            return 1e-6  # Splink's stand-in for a level never observed
        return default if value is None else value

    @property
    def m(self) -> float | None:
        """m used for scoring: the stored value, else Splink's default start value."""
        return (
            None
            if self.is_null_level
            else self._effective(self.m_probability, self.default_m_probability)
        )

    @property
    def u(self) -> float | None:
        """u used for scoring: the stored value, else Splink's default start value."""
        return (
            None
            if self.is_null_level
            else self._effective(self.u_probability, self.default_u_probability)
        )

    @property
    def bayes_factor(self) -> float:
        """m / u (1 for the null level; inf where u is 0)."""
        if self.is_null_level:
            return 1.0
        return math.inf if self.u == 0 else self.m / self.u

    @property
    def log2_bayes_factor(self) -> float:
        """log2(m / u), 0 for the null level."""
        if self.is_null_level:
            return 0.0
        bf = self.bayes_factor
        return -math.inf if bf == 0 else math.log2(bf)

    @property
    def match_weight(self) -> float:
        """The weight predict adds for this level: log2(max(m,1e-300) / max(u,1e-300)); null: 0."""
        if self.is_null_level:
            return 0.0
        return math.log2(max(self.m, M_U_CLAMP_MIN) / max(self.u, M_U_CLAMP_MIN))

    def to_dict(self) -> dict[str, Any]:
        """Splink's ``ComparisonLevel.as_dict()`` for this level."""
        out: dict[str, Any] = {"sql_condition": self.sql_condition}
        if self.label_for_charts:
            out["label_for_charts"] = self.label_for_charts
        if not self.is_null_level:
            if self.m_probability is not None and self.m_probability != LEVEL_NOT_OBSERVED_TEXT:
                out["m_probability"] = self.m_probability
            if self.u_probability is not None and self.u_probability != LEVEL_NOT_OBSERVED_TEXT:
                out["u_probability"] = self.u_probability
        out["fix_m_probability"] = self.fix_m_probability
        out["fix_u_probability"] = self.fix_u_probability
        if self.has_tf_adjustments:
            out["tf_adjustment_column"] = self.tf_adjustment_column
            if self.tf_minimum_u_value != 0:
                out["tf_minimum_u_value"] = self.tf_minimum_u_value
            if self.tf_adjustment_weight != 0:
                out["tf_adjustment_weight"] = self.tf_adjustment_weight
        if self.is_null_level:
            out["is_null_level"] = True
        if self.disable_tf_exact_match_detection:
            out["disable_tf_exact_match_detection"] = True
        return out


@dataclass
class TFInfo:
    """What predict needs to add a level's term-frequency adjustment.

    adjustment = tf_adjustment_weight * (log2(u_exact) - log2(max(tf_l, tf_r, tf_minimum_u_value)))
    where tf_l / tf_r are the TF of each record's value in ``column`` (0 if both are null).
    """

    comparison_vector_value: int
    column: str  # canonical expression of the TF column
    tf_adjustment_weight: float
    tf_minimum_u_value: float
    u_exact: float


@dataclass
class Comparison:
    """One resolved comparison: ordered levels with Splink's gamma numbering."""

    output_column_name: str
    comparison_description: str
    levels: list[Level]

    @property
    def num_levels(self) -> int:
        """Number of non-null levels (Splink's ``_num_levels``)."""
        return sum(not lvl.is_null_level for lvl in self.levels)

    @property
    def gamma_values(self) -> list[int]:
        return [lvl.comparison_vector_value for lvl in self.levels]

    def level_for_gamma(self, gamma: int) -> Level:
        for lvl in self.levels:
            if lvl.comparison_vector_value == gamma:
                return lvl
        raise KeyError(f"comparison {self.output_column_name!r} has no level with gamma {gamma}")

    def match_weights(self) -> np.ndarray:
        """float64[num_levels + 1]: the weight of gamma g at index g + 1 (index 0: null, 0)."""
        out = np.zeros(self.num_levels + 1)
        for lvl in self.levels:
            out[lvl.comparison_vector_value + 1] = lvl.match_weight
        return out

    def u_exact_for(self, level: Level) -> float:
        """u of the exact-match level a TF level adjusts against (Splink's detection rule)."""
        if level.disable_tf_exact_match_detection:
            return level.u
        target = _canonical_column(level.tf_adjustment_column).lower()
        for lvl in self.levels:
            col = is_single_exact_on(lvl.predicate)
            if col is not None and _canonical_column(col).lower() == target:
                return lvl.u
        raise SettingsError(
            f"comparison {self.output_column_name!r}: level {level.label!r} has term-frequency "
            f"adjustments on {level.tf_adjustment_column!r} but no level is an exact match "
            f"on that column; add an ExactMatchLevel({level.tf_adjustment_column!r}) or "
            "configure(disable_tf_exact_match_detection=True)"
        )

    def tf_levels(self) -> list[TFInfo]:
        """TF adjustment info of every level that has one (weight 0, null and else excluded)."""
        out = []
        for lvl in self.levels:
            if (
                not lvl.has_tf_adjustments
                or lvl.is_null_level
                or lvl.is_else_level
                or lvl.tf_adjustment_weight == 0
            ):
                continue
            out.append(
                TFInfo(
                    lvl.comparison_vector_value,
                    _canonical_column(lvl.tf_adjustment_column),
                    float(lvl.tf_adjustment_weight),
                    float(lvl.tf_minimum_u_value),
                    float(self.u_exact_for(lvl)),
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Splink's ``Comparison.as_dict()``."""
        return {
            "output_column_name": self.output_column_name,
            "comparison_levels": [lvl.to_dict() for lvl in self.levels],
            "comparison_description": self.comparison_description,
        }


def _canonical_column(name: str) -> str:
    """Canonical expression of a column *name* (as Splink's tf_adjustment_column holds)."""
    from gpulink.levels import Col, canonical_text

    if len(name) > 1 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('""', '"')
    return canonical_text(Col(name))


def _column_list(value, name: str) -> list[str]:
    """A list of column names (None: none); a bare string is an error, as in Splink."""
    if value is None:
        return []
    if isinstance(value, str):
        raise SettingsError(f"{name} = {value!r} must be a list of column names; write [{value!r}]")
    if not isinstance(value, (list, tuple)):
        raise SettingsError(
            f"{name} must be a list of column names, got {type(value).__name__} ({value!r})"
        )
    for col in value:
        if not isinstance(col, str) or not col.strip():
            raise SettingsError(f"{name} has {col!r}, which is not a column name")
    return list(value)


def _rule_list(value) -> list:
    """The prediction rules as a list; one rule not in a list is an error, as in Splink."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise SettingsError(
            f"blocking_rules_to_generate_predictions must be a list of rules, got "
            f"{type(value).__name__} ({value!r}); write [rule]"
        )
    return list(value)


def _level_fraction(d: dict, key: str, default: float, where: str) -> float:
    """A level's ``key`` (tf_adjustment_weight, tf_minimum_u_value): a number in [0, 1]."""
    value = d.get(key)
    return default if value is None else _fraction(value, f"{where}: {key}")


def _level_flag(d: dict, key: str, where: str) -> bool:
    """A level's true/false option (absent or null: false)."""
    value = d.get(key)
    if value is None:
        return False
    if not isinstance(value, (bool, np.bool_)):
        raise SettingsError(f"{where}: {key} must be true or false, got {value!r}")
    return bool(value)


def _resolve_level(d: dict, where: str) -> Level:
    if not isinstance(d.get("sql_condition"), str):
        raise SettingsError(f"{where} has no 'sql_condition' string: {d!r}")
    label = d.get("label_for_charts")
    if label is not None and not isinstance(label, str):
        raise SettingsError(f"{where}: label_for_charts must be text, got {label!r}")
    tf_col = d.get("tf_adjustment_column")
    if tf_col is not None and not isinstance(tf_col, str):
        raise SettingsError(f"{where}: tf_adjustment_column must be a column name, got {tf_col!r}")
    pred = condition_to_predicate(d["sql_condition"], where)
    is_null = _level_flag(d, "is_null_level", where)
    lvl = Level(
        sql_condition=d["sql_condition"],
        label_for_charts=label,
        predicate=pred,
        is_null_level=is_null,
        m_probability=None
        if is_null
        else _probability(d.get("m_probability"), f"{where}: m_probability"),
        u_probability=None
        if is_null
        else _probability(d.get("u_probability"), f"{where}: u_probability"),
        tf_adjustment_column=tf_col,
        tf_adjustment_weight=_level_fraction(d, "tf_adjustment_weight", 1.0, where),
        # a u probability: above 1 it would floor every value's u and wreck each TF weight
        tf_minimum_u_value=_level_fraction(d, "tf_minimum_u_value", 0.0, where),
        disable_tf_exact_match_detection=_level_flag(d, "disable_tf_exact_match_detection", where),
        fix_m_probability=_level_flag(d, "fix_m_probability", where),
        fix_u_probability=_level_flag(d, "fix_u_probability", where),
    )
    if lvl.is_else_level and lvl.is_null_level:
        raise SettingsError(f"{where}: the ELSE level cannot be a null level")
    return lvl


def _default_output_name(levels: list[Level]) -> str:
    cols: list[str] = []
    for lvl in levels:
        for leaf in iter_leaves(lvl.predicate):
            for c in leaf.sql:
                if c not in cols:
                    cols.append(c)
    return cols[0] if len(cols) == 1 else "custom_" + "_".join(cols)


def _resolve_comparison(d: dict, index: int) -> Comparison:
    name = d.get("output_column_name")
    where_c = f"comparison {index} ({name!r})" if name else f"comparison {index}"
    for key in ("output_column_name", "comparison_description"):
        if d.get(key) is not None and not isinstance(d[key], str):
            raise SettingsError(f"{where_c}: {key} must be text, got {d[key]!r}")
    raw_levels = d.get("comparison_levels")
    if not isinstance(raw_levels, list) or not raw_levels:
        raise SettingsError(f"{where_c} has no comparison_levels; give at least two levels")
    levels = []
    for j, ld in enumerate(raw_levels):
        if not isinstance(ld, dict):
            raise SettingsError(f"{where_c}, level {j} is not a dict: {ld!r}")
        label = ld.get("label_for_charts")
        levels.append(_resolve_level(ld, f"{where_c}, level {j} ({label!r})"))
    non_null = [lvl for lvl in levels if not lvl.is_null_level]
    if not non_null:
        raise SettingsError(f"{where_c} has only null levels; add an ELSE level")
    if any(lvl.is_else_level for lvl in levels[:-1]):
        raise SettingsError(f"{where_c}: the ELSE level must be the last level")
    n = len(non_null)
    default_m, default_u = _default_m_values(n), _default_u_values(n)
    counter = n - 1
    for lvl in levels:
        if lvl.is_null_level:
            lvl.comparison_vector_value = -1
            continue
        lvl.comparison_vector_value = counter
        lvl.default_m_probability = default_m[counter]
        lvl.default_u_probability = default_u[counter]
        counter -= 1
    name = name or _default_output_name(levels)
    comp = Comparison(name, d.get("comparison_description") or name, levels)
    return comp


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass
class Settings:
    """A validated model: what training, prediction and the JSON files work from."""

    link_type: str
    comparisons: list[Comparison]
    blocking_rules: list = field(default_factory=list)
    probability_two_random_records_match: float = DEFAULT_LAMBDA
    em_convergence: float = 0.0001
    max_iterations: int = 25
    retain_matching_columns: bool = True
    retain_intermediate_calculation_columns: bool = False
    additional_columns_to_retain: list = field(default_factory=list)
    unique_id_column_name: str = "unique_id"
    source_dataset_column_name: str = "source_dataset"
    match_weight_column_prefix: str = "mw_"
    term_frequency_adjustment_column_prefix: str = "tf_"
    comparison_vector_value_column_prefix: str = "gamma_"
    linker_uid: str | None = None
    training_history: list = field(default_factory=list)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def _from_creator(cls, sc: SettingsCreator) -> Settings:
        comparisons = []
        if not isinstance(sc.comparisons, (list, tuple)):
            raise SettingsError("comparisons must be a list of comparisons")
        for i, c in enumerate(sc.comparisons):
            creator = CustomComparison._convert_to_creator(c)
            d = creator.create_comparison_dict() if isinstance(creator, ComparisonCreator) else c
            comparisons.append(_resolve_comparison(d, i))
        s = cls(
            link_type=sc.link_type,
            comparisons=comparisons,
            blocking_rules=_rule_list(sc.blocking_rules_to_generate_predictions),
            probability_two_random_records_match=sc.probability_two_random_records_match,
            em_convergence=sc.em_convergence,
            max_iterations=sc.max_iterations,
            retain_matching_columns=sc.retain_matching_columns,
            retain_intermediate_calculation_columns=sc.retain_intermediate_calculation_columns,
            additional_columns_to_retain=sc.additional_columns_to_retain,
            unique_id_column_name=sc.unique_id_column_name,
            source_dataset_column_name=sc.source_dataset_column_name,
            match_weight_column_prefix=sc.match_weight_column_prefix,
            term_frequency_adjustment_column_prefix=sc.term_frequency_adjustment_column_prefix,
            comparison_vector_value_column_prefix=sc.comparison_vector_value_column_prefix,
            linker_uid=sc.linker_uid,
        )
        s.validate()
        return s

    @classmethod
    def from_any(cls, settings) -> Settings:
        """Settings from a Settings, SettingsCreator, dict, JSON string or JSON file path.

        >>> Settings.from_any({"link_type": "dedupe_only", "comparisons": [
        ...     {"comparison_levels": [{"sql_condition": '"a_l" = "a_r"'},
        ...                            {"sql_condition": "ELSE"}]}]}).comparisons[0].output_column_name
        'a'
        """
        if isinstance(settings, Settings):
            return settings
        if isinstance(settings, SettingsCreator):
            return settings.get_settings()
        if hasattr(settings, "create_settings_dict") and hasattr(settings, "link_type"):
            settings = settings.create_settings_dict("duckdb")  # a Splink SettingsCreator
        return cls.from_dict(_load_json_like(settings))

    @classmethod
    def from_dict(cls, d: dict) -> Settings:
        """Settings from a Splink settings or model dict (optionally with a gpulink section).

        The Splink keys are the model: edit them and the edit takes effect. The gpulink section
        only adds what Splink's format cannot hold (the training history, and which m / u
        training never observed); a ``blocking_rules`` list in it, written by earlier gpulink
        versions, is ignored in favour of ``blocking_rules_to_generate_predictions``.
        """
        kwargs = _creator_kwargs(d)  # first: it checks that d is a dict
        gl = _gpulink_section(d)
        s = SettingsCreator(**kwargs).get_settings()
        s.blocking_rules = _restore_blocking_rules(s.blocking_rules)
        s.training_history = list(gl.get("training_history") or [])
        _apply_levels_not_observed(s, gl.get("levels_not_observed") or [])
        return s

    @classmethod
    def from_json(cls, path_or_str) -> Settings:
        """Settings from a model JSON file path or a JSON string.

        >>> s = Settings.from_json('{"link_type": "dedupe_only", "comparisons": []}')
        >>> s.link_type, s.comparisons
        ('dedupe_only', [])
        """
        return cls.from_dict(_load_json_like(path_or_str))

    # -- validation ------------------------------------------------------------------------

    def validate(self) -> None:
        """Check the whole model; raises SettingsError naming the setting at fault."""
        if self.link_type not in LINK_TYPES:
            raise SettingsError(
                f"link_type {self.link_type!r} is not known; use one of {', '.join(LINK_TYPES)}"
            )
        # no comparisons is a valid model for deterministic_link(); scoring checks for them
        names = [c.output_column_name for c in self.comparisons]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SettingsError(
                f"output_column_name {dupes[0]!r} is used by {names.count(dupes[0])} "
                "comparisons; give each comparison a distinct output_column_name"
            )
        lam = self.probability_two_random_records_match
        if not is_number(lam) or not 0 < lam < 1:
            raise SettingsError(
                f"probability_two_random_records_match = {lam!r} must be strictly between 0 and 1"
            )
        # NaN is no tolerance: EM would never converge and always run max_iterations
        if not is_number(self.em_convergence) or not self.em_convergence > 0:
            raise SettingsError(
                f"em_convergence = {self.em_convergence!r} must be a number > 0 (EM stops when "
                "no parameter changes by more than this; Splink's default is 0.0001)"
            )
        if not is_integer(self.max_iterations) or self.max_iterations < 1:
            raise SettingsError(f"max_iterations = {self.max_iterations!r} must be an int >= 1")
        # numpy scalars become Python numbers: they go into the model JSON
        self.probability_two_random_records_match = float(lam)
        self.em_convergence = as_python_number(self.em_convergence)
        self.max_iterations = int(self.max_iterations)
        for name in ("retain_matching_columns", "retain_intermediate_calculation_columns"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise SettingsError(
                    f"{name} = {value!r} must be true or false (a bool), got {type(value).__name__}"
                )
            setattr(self, name, bool(value))
        for name in (
            "unique_id_column_name",
            "source_dataset_column_name",
            "match_weight_column_prefix",
            "term_frequency_adjustment_column_prefix",
            "comparison_vector_value_column_prefix",
            "linker_uid",
        ):
            value = getattr(self, name)
            if value is None and name == "linker_uid":
                continue
            if not isinstance(value, str) or (name.endswith("_name") and not value):
                what = "a column name" if name.endswith("_name") else "a string"
                raise SettingsError(f"{name} = {value!r} must be {what} (a non-empty string)")
        self.additional_columns_to_retain = _column_list(
            self.additional_columns_to_retain, "additional_columns_to_retain"
        )
        for c in self.comparisons:
            for lvl in c.levels:
                for leaf in iter_leaves(lvl.predicate):
                    if leaf.kind != LEAF_ELSE and leaf.threshold < 0:
                        raise SettingsError(
                            f"comparison {c.output_column_name!r}, level {lvl.label!r}: "
                            f"threshold {leaf.threshold} is negative"
                        )
            c.tf_levels()  # raises if a TF level has no exact-match level to adjust against
        self.column_kinds()  # raises on a column needed as two kinds

    def check_has_comparisons(self) -> None:
        """Raise SettingsError unless the model has a comparison (training and scoring need
        one; a model without is valid for deterministic linkage)."""
        if not self.comparisons:
            raise SettingsError(
                "the model has no comparisons; give at least one comparison to train or score "
                "pairs (linker.inference.deterministic_link() needs none)"
            )

    # -- serialisation ---------------------------------------------------------------------

    def _blocking_rule_dicts(self) -> list[dict[str, Any]]:
        out = []
        for br in self.blocking_rules:
            if isinstance(br, str):
                out.append({"blocking_rule": br, "sql_dialect": "duckdb"})
            elif isinstance(br, dict):
                out.append({**br, "sql_dialect": "duckdb"})
            elif hasattr(br, "sql"):
                d = {"blocking_rule": br.sql, "sql_dialect": "duckdb"}
                if getattr(br, "salting_partitions", None) is not None:  # Splink writes it too
                    d["salting_partitions"] = br.salting_partitions
                out.append(d)
            else:
                raise SettingsError(
                    f"blocking rule {br!r} is neither SQL text, a dict nor a block_on() rule"
                )
        return out

    def to_splink_dict(self) -> dict[str, Any]:
        """The model in Splink's model JSON format only (loads in ``splink.Linker``)."""
        return {
            "link_type": self.link_type,
            "probability_two_random_records_match": self.probability_two_random_records_match,
            "retain_matching_columns": self.retain_matching_columns,
            "retain_intermediate_calculation_columns": self.retain_intermediate_calculation_columns,
            "additional_columns_to_retain": list(self.additional_columns_to_retain),
            "sql_dialect": "duckdb",
            "linker_uid": self.linker_uid,
            "em_convergence": self.em_convergence,
            "max_iterations": self.max_iterations,
            "match_weight_column_prefix": self.match_weight_column_prefix,
            "term_frequency_adjustment_column_prefix": self.term_frequency_adjustment_column_prefix,
            "comparison_vector_value_column_prefix": self.comparison_vector_value_column_prefix,
            "unique_id_column_name": self.unique_id_column_name,
            "source_dataset_column_name": self.source_dataset_column_name,
            "blocking_rules_to_generate_predictions": self._blocking_rule_dicts(),
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    def to_dict(self) -> dict[str, Any]:
        """Splink's model format plus a ``gpulink`` section (format version, history, and the
        levels training never observed), which only adds to the Splink keys, never repeats them.

        Splink itself rejects unknown top-level keys: give it :meth:`to_splink_dict`.
        """
        d = self.to_splink_dict()
        d["gpulink"] = {
            "format_version": FORMAT_VERSION,
            "training_history": deepcopy(self.training_history),
            "levels_not_observed": self._levels_not_observed(),
        }
        return d

    def _levels_not_observed(self) -> list[dict[str, Any]]:
        """Levels whose m or u training never observed (Splink's JSON drops these values, so a
        reload would silently score them with defaults; gpulink's section keeps them)."""
        out = []
        for c in self.comparisons:
            for lvl in c.levels:
                for kind, value in (("m", lvl.m_probability), ("u", lvl.u_probability)):
                    if value == LEVEL_NOT_OBSERVED_TEXT:
                        out.append(
                            {
                                "comparison": c.output_column_name,
                                "comparison_vector_value": lvl.comparison_vector_value,
                                "sql_condition": lvl.sql_condition,
                                "probability": kind,
                            }
                        )
        return out

    def to_json(self, *, splink_compatible: bool = False, indent: int = 4) -> str:
        """The model as JSON text (see :meth:`to_dict` / :meth:`to_splink_dict`)."""
        d = self.to_splink_dict() if splink_compatible else self.to_dict()
        return json.dumps(d, indent=indent, allow_nan=False)

    def save_model_to_json(
        self, out_path, *, overwrite: bool = False, splink_compatible: bool = False
    ) -> dict[str, Any]:
        """Write the model to ``out_path`` atomically (temporary file, then rename).

        ``splink_compatible=True`` leaves out the gpulink section so Splink loads the file.
        """
        path = Path(out_path)
        if path.is_dir():
            raise SettingsError(f"{path} is a directory; give the path of the JSON file to write")
        if path.exists() and not overwrite:
            raise SettingsError(
                f"{path} already exists; pass overwrite=True or choose another path"
            )
        text = self.to_json(splink_compatible=splink_compatible)
        from gpulink.io import atomic_output  # InputError naming the path, not the temp file

        with atomic_output(path, what="model JSON") as tmp:
            tmp.write_text(text, encoding="utf-8")
        return json.loads(text)

    # -- what the engine needs -------------------------------------------------------------

    def get_comparison(self, output_column_name: str) -> Comparison:
        for c in self.comparisons:
            if c.output_column_name == output_column_name:
                return c
        raise SettingsError(
            f"no comparison named {output_column_name!r}; the model has "
            f"{[c.output_column_name for c in self.comparisons]}"
        )

    @property
    def log2_prior_odds(self) -> float:
        """log2(λ / (1 - λ)), the starting match weight."""
        lam = self.probability_two_random_records_match
        return math.log2(lam / (1 - lam))

    def column_expressions(self) -> list[str]:
        """Every column expression comparisons and TF need encoded (canonical, in order)."""
        return list(self._column_sql())

    def column_sql(self) -> dict[str, str]:
        """canonical expression -> the same expression as DuckDB SQL over the input table."""
        return self._column_sql()

    def _column_sql(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for c in self.comparisons:
            for lvl in c.levels:
                for leaf in iter_leaves(lvl.predicate):
                    for canon, sql in zip(leaf.cols, leaf.sql):
                        out.setdefault(canon, sql)
            for info in c.tf_levels():
                out.setdefault(info.column, info.column)
        return out

    def retained_input_columns(self, available: list[str]) -> list[str]:
        """The input columns ``additional_columns_to_retain`` asks predict to keep.

        An entry is a column of the input, or an expression whose columns are kept (as
        predict keeps the columns of the comparisons). A column the input lacks is an
        InputError, as it is an error in Splink.

        >>> import gpulink.comparison_library as cl
        >>> s = SettingsCreator("dedupe_only", [cl.ExactMatch("city")],
        ...                     additional_columns_to_retain=["cluster"]).get_settings()
        >>> s.retained_input_columns(["unique_id", "city", "cluster"])
        ['cluster']
        """
        from gpulink.errors import InputError
        from gpulink.expressions import parse

        out: list[str] = []
        for entry in self.additional_columns_to_retain:
            cols = [entry] if entry in available else list(parse(entry).columns)
            for col in cols:
                if col not in available:
                    close = difflib.get_close_matches(col, available, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise InputError(
                        f"additional_columns_to_retain names column {col!r}, which is missing "
                        f"from the input{hint}; the input has columns: "
                        f"{', '.join(available[:30])}{' ...' if len(available) > 30 else ''}"
                    )
                if col not in out:
                    out.append(col)
        return out

    def tf_columns(self) -> list[str]:
        """Canonical expressions of the columns whose term frequencies predict needs."""
        out: list[str] = []
        for c in self.comparisons:
            for info in c.tf_levels():
                if info.column not in out:
                    out.append(info.column)
        return out

    def column_kinds(self) -> dict[str, str]:
        """Expression -> the kind it must be encoded as, for columns that need one.

        "string" (string metrics), "number" (absolute / percentage difference, distance),
        "timestamp" (date and time differences: seconds since the epoch, thresholds in
        seconds, as Splink's EPOCH() SQL), "array" (array intersection and subset, pairwise
        string distances), "vector" (cosine similarity of lists of floats). Columns used only
        for exact-match and null tests may be any kind and are not listed.
        """
        out: dict[str, str] = {}
        for c in self.comparisons:
            for lvl in c.levels:
                for leaf in iter_leaves(lvl.predicate):
                    for canon, kind in zip(leaf.cols, leaf.kinds):
                        if kind is None:
                            continue
                        if out.setdefault(canon, kind) != kind:
                            raise SettingsError(
                                f"column {canon!r} is used as {out[canon]} and as {kind} "
                                f"(comparison {c.output_column_name!r}, level {lvl.label!r}); "
                                "derive a separate column for one of the uses"
                            )
        return out

    def __repr__(self) -> str:
        names = ", ".join(c.output_column_name for c in self.comparisons)
        return f"<Settings {self.link_type}: {names}>"


def _creator_kwargs(d: dict) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise SettingsError(f"settings must be a dict, got {type(d).__name__}")
    d = {k: v for k, v in d.items() if k not in _IGNORED_KEYS and k != "gpulink"}
    unknown = sorted(set(d) - set(_SETTINGS_FIELDS))
    if unknown:
        raise SettingsError(
            f"unknown settings key(s) {unknown}; the settings keys are "
            f"{', '.join(_SETTINGS_FIELDS)}"
        )
    if "link_type" not in d:
        raise SettingsError("settings have no 'link_type'; give one of " + ", ".join(LINK_TYPES))
    rules = []
    for br in d.get("blocking_rules_to_generate_predictions", []) or []:
        if isinstance(br, dict) and "blocking_rule" in br:
            # keys that never change the pairs (Splink's dialect tag, no arrays); salting does
            # not change them either but stays, so that the model writes back as it was read
            br = {
                k: v
                for k, v in br.items()
                if k != "sql_dialect" and not (k == "arrays_to_explode" and not v)
            }
            rules.append(br["blocking_rule"] if set(br) == {"blocking_rule"} else br)
        else:
            rules.append(br)
    d["blocking_rules_to_generate_predictions"] = rules
    return d


def _restore_blocking_rules(rules: list) -> list:
    """Rule dicts back to block_on() rules where gpulink.blocking reads them; text and anything
    it cannot read stay as given (checked when blocking runs)."""
    try:
        from gpulink.blocking import BlockingRule
    except ImportError:  # blocking is optional here: settings never needs it to load
        return list(rules)
    out = []
    for br in rules:
        if isinstance(br, dict):
            try:
                br = BlockingRule.from_dict(br)
            except SettingsError:
                pass
        out.append(br)
    return out


def _gpulink_section(d: dict) -> dict:
    """The model's ``gpulink`` section ({} when there is none), its shape and version checked."""
    gl = d.get("gpulink")
    if gl is None:
        return {}
    if not isinstance(gl, dict):
        raise SettingsError(
            f"the model's 'gpulink' section must be a JSON object, got {type(gl).__name__} "
            f"({gl!r}); restore it from the saved model or delete the 'gpulink' key"
        )
    version = gl.get("format_version", FORMAT_VERSION)
    if not is_integer(version):
        raise SettingsError(
            f"gpulink.format_version must be an integer (this gpulink writes "
            f"{FORMAT_VERSION}), got {version!r}; restore it from the saved model"
        )
    if version > FORMAT_VERSION:
        raise SettingsError(
            f"this model file has gpulink format version {version}, newer than this gpulink "
            f"reads ({FORMAT_VERSION}); upgrade gpulink"
        )
    for key in ("training_history", "levels_not_observed"):
        if gl.get(key) is not None and not isinstance(gl[key], list):
            raise SettingsError(
                f"gpulink.{key} must be a list, got {type(gl[key]).__name__} ({gl[key]!r}); "
                "restore it from the saved model or delete it"
            )
    return gl


def _apply_levels_not_observed(settings: Settings, items: list) -> None:
    """Mark the m / u the gpulink section lists as never observed in training.

    Splink's format drops such values (the level then scores with its default start value);
    the section records them so that a reload scores them as Splink did in training. The
    Splink keys win: a value given there is kept, and an entry whose level's condition was
    edited no longer applies.
    """
    for item in items:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("comparison"), str)
            and is_integer(item.get("comparison_vector_value"))
            and item.get("probability") in ("m", "u")
        ):
            raise SettingsError(
                f"gpulink.levels_not_observed has an entry {item!r} that is not "
                '{"comparison": name, "comparison_vector_value": int, "probability": "m" or '
                '"u"}; restore it from the saved model or delete it'
            )
        try:
            level = settings.get_comparison(item["comparison"]).level_for_gamma(
                int(item["comparison_vector_value"])
            )
        except (KeyError, SettingsError):
            level = None
        condition = item.get("sql_condition")
        if level is None or (condition is not None and condition != level.sql_condition):
            logger.warning(
                "gpulink.levels_not_observed lists %s, which is no longer a level of the "
                "model's comparisons; ignored (the level scores with its stored or default m/u)",
                item,
            )
            continue
        attr = f"{item['probability']}_probability"
        if getattr(level, attr) is None:
            setattr(level, attr, LEVEL_NOT_OBSERVED_TEXT)


def _load_json_like(value) -> dict:
    if isinstance(value, dict):
        return deepcopy(value)
    if isinstance(value, Path) or (isinstance(value, str) and not value.lstrip().startswith("{")):
        path = Path(value)
        if path.is_dir():
            raise SettingsError(f"settings file {str(path)!r} is a directory; give a JSON file")
        if not path.is_file():
            raise SettingsError(f"settings file {str(path)!r} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SettingsError(
                f"settings file {str(path)!r} is not UTF-8 text (byte {exc.start}: "
                f"{exc.object[exc.start : exc.start + 1]!r}); give a model JSON file"
            ) from None
        except OSError as exc:
            raise SettingsError(
                f"cannot read settings file {str(path)!r}: {exc.strerror}"
            ) from None
        where = str(path)
    elif isinstance(value, str):
        text, where = value, "the JSON text"
    else:
        raise SettingsError(
            f"settings must be a SettingsCreator, dict, JSON text or path, got "
            f"{type(value).__name__}"
        )
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(d, dict):
        raise SettingsError(f"{where} does not hold a JSON object")
    return d


# ---------------------------------------------------------------------------------------------
# Compilation to the flat ComparisonProgram
# ---------------------------------------------------------------------------------------------


def compile_program(settings: Settings) -> ComparisonProgram:
    """Compile the model's comparisons to the flat arrays the compare kernel interprets.

    Every level becomes a postfix program over leaves (AND / OR are binary, left-deep); fuzzy
    leaves of one comparison that compute the same metric on the same columns share a metric
    slot, so each (metric, column) is computed once per pair whatever the number of thresholds.

    >>> import gpulink.comparison_library as cl
    >>> s = SettingsCreator("dedupe_only", [cl.JaroWinklerAtThresholds("name")]).get_settings()
    >>> p = compile_program(s)
    >>> p.level_gamma.tolist(), p.n_slots
    ([-1, 3, 2, 1, 0], 1)
    """
    settings.check_has_comparisons()
    no_metric = {
        LEAF_ELSE,
        LEAF_NULL,
        LEAF_EXACT,
        LEAF_EXACT_AS_STRING,
        LEAF_ARRAY_SUBSET,
        LEAF_ARRAY_LEAST_LEN_LE,
    }
    columns: list[str] = []
    col_index: dict[str, int] = {}
    kinds: list[int] = []
    cols1: list[int] = []
    cols2: list[int] = []
    thresholds: list[float] = []
    metrics: list[int] = []
    program: list[int] = []
    level_start, level_gamma, comparison_start = [0], [], [0]
    n_slots = 0

    def col(name: str) -> int:
        if name not in col_index:
            col_index[name] = len(columns)
            columns.append(name)
        return col_index[name]

    for comp in settings.comparisons:
        slots: dict = {}
        base = n_slots

        def emit(pred, slots=slots, base=base) -> int:
            """Append pred in postfix; return the stack depth it needs."""
            if isinstance(pred, Leaf):
                program.append(OP_LEAF + len(kinds))
                kinds.append(pred.kind)
                cols1.append(col(pred.cols[0]) if pred.cols else -1)
                cols2.append(col(pred.cols[1]) if len(pred.cols) > 1 else -1)
                thresholds.append(pred.threshold)
                if pred.kind in no_metric:
                    metrics.append(-1)
                else:
                    metrics.append(slots.setdefault((pred.kind, pred.cols), base + len(slots)))
                return 1
            if pred.op == "not":
                depth = emit(pred.children[0])
                program.append(OP_NOT)
                return depth
            opcode = OP_AND if pred.op == "and" else OP_OR
            depth = emit(pred.children[0])
            for child in pred.children[1:]:
                depth = max(depth, 1 + emit(child))
                program.append(opcode)
            return depth

        for lvl in comp.levels:
            depth = emit(lvl.predicate)
            if depth > MAX_STACK:
                raise SettingsError(
                    f"comparison {comp.output_column_name!r}, level {lvl.label!r} nests "
                    f"{depth} deep; gpulink allows {MAX_STACK}; simplify the level"
                )
            level_start.append(len(program))
            level_gamma.append(lvl.comparison_vector_value)
        comparison_start.append(len(level_gamma))
        n_slots += len(slots)
    return ComparisonProgram(
        columns=columns,
        leaf_kind=np.asarray(kinds, np.int32),
        leaf_col=np.asarray(cols1, np.int32),
        leaf_col2=np.asarray(cols2, np.int32),
        leaf_threshold=np.asarray(thresholds, np.float64),
        leaf_metric=np.asarray(metrics, np.int32),
        program=np.asarray(program, np.int32),
        level_start=np.asarray(level_start, np.int32),
        level_gamma=np.asarray(level_gamma, np.int32),
        comparison_start=np.asarray(comparison_start, np.int32),
        comparison_names=[c.output_column_name for c in settings.comparisons],
        n_slots=n_slots,
    )
