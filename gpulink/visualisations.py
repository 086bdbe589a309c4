"""``linker.visualisations``: Splink 5's model charts, drawn with Altair.

Each chart plots the same records as Splink's chart of the same name (same rows, same fields,
same values): :func:`parameter_records` for ``match_weights_chart`` and
``m_u_parameters_chart``, :func:`parameter_estimate_records` for
``parameter_estimate_comparisons_chart``, :func:`waterfall_records` for ``waterfall_chart``,
:func:`histogram_records` for ``match_weights_histogram`` and :func:`tf_adjustment_records` for
``tf_adjustment_chart`` (``linker.evaluation.unlinkables_chart`` plots
:func:`gpulink.unlinkables.unlinkables_records`, and ``chart_comparisons_from_blocking_rules``
in :mod:`gpulink.blocking_analysis` and ``linker.blocking_analysis`` plots
:func:`blocking_rule_comparisons_records`).
The charts are ``altair`` objects (``.to_dict()``, ``.save("chart.html")``); Altair is an
optional dependency (``pip install "gpulink[charts]"``), imported when a chart is drawn.

>>> import gpulink as gl, gpulink.comparison_library as cl
>>> from gpulink.datasets import synthetic_people
>>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("surname"), cl.ExactMatch("dob")])
>>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
>>> chart = linker.visualisations.match_weights_chart()
>>> [r["comparison_name"] for r in chart_records(chart)][:3]
['probability_two_random_records_match', 'surname', 'surname']
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from gpulink.errors import InputError, MissingDependency, SettingsError
from gpulink.settings import LEVEL_NOT_OBSERVED_TEXT


def require_altair():
    """``altair``, or a :class:`~gpulink.errors.MissingDependency` naming the extra to install
    (every chart of gpulink's, the accuracy charts included, is drawn with Altair)."""
    try:
        import altair as alt
    except ModuleNotFoundError as exc:
        if exc.name != "altair":
            raise
        raise MissingDependency(
            "gpulink's charts are drawn with Altair, which is not installed; "
            'run pip install "gpulink[charts]" (or pip install altair)'
        ) from exc
    return alt


def _level_axis(alt, field: str):
    """A comparison's levels down the y axis, the first (highest gamma) at the top."""
    return alt.Y(
        f"{field}:N",
        title=None,
        sort=alt.EncodingSortField("comparison_vector_value", order="descending"),
    )


def _comparison_rows(alt):
    """One row of panels per comparison, in the model's order."""
    return alt.Row(
        "comparison_name:N",
        title=None,
        sort=alt.EncodingSortField("comparison_sort_order"),
        header=alt.Header(labelAngle=0, labelAlign="left"),
    )


def chart_datasets(chart) -> dict[str, list[dict[str, Any]]]:
    """The data sets a chart from this module plots, by name (a chart, or its ``to_dict()``).

    Charts with one data set give it under Altair's name for it; ``tf_adjustment_chart``
    gives ``"data"`` and ``"hist"``.
    """
    spec = chart if isinstance(chart, dict) else chart.to_dict()
    if "datasets" in spec:
        return dict(spec["datasets"])
    return {"data": spec["data"]["values"]}


def chart_records(chart) -> list[dict[str, Any]]:
    """The records a chart from this module plots (its one data set; a chart or its dict)."""
    datasets = chart_datasets(chart)
    if len(datasets) != 1:
        raise InputError(
            f"this chart plots {len(datasets)} data sets ({', '.join(datasets)}); read them "
            "with chart_datasets(chart)"
        )
    (values,) = datasets.values()
    return values


# -- the records each chart plots (Splink's, field for field) ----------------------------------


def _num_fmt_dp_or_sf(val: float) -> str:
    return f"{val:,.0f}" if val >= 100 else f"{val:,.4g}"


def _probability_description(p: float | None, label: str, who: str) -> str:
    if p is None:
        return ""
    one_in_n = 1 / p if p > 0 else float("inf")
    return (
        f"Amongst {who} record comparisons, {p * 100:.4g}% of records (i.e. one in "
        f"{_num_fmt_dp_or_sf(one_in_n)}) are in the {label.lower()} comparison level"
    )


def _bayes_factor(level) -> float | None:
    if level.is_null_level:
        return 1.0
    m, u = level.m, level.u
    if m is None or u is None:
        return None
    return math.inf if u == 0 else m / u


def _bayes_factor_description(bf: float | None, label: str) -> str | None:
    text = f"If comparison level is `{label.lower()}` then comparison is"
    if bf is None:
        return None
    if bf == math.inf:
        return f"{text} certain to be a match"
    if bf == 0.0:
        return f"{text} impossible to be a match"
    if bf >= 1.0:
        return f"{text} {_num_fmt_dp_or_sf(bf)} times more likely to be a match"
    return f"{text} {_num_fmt_dp_or_sf(1 / bf)} times less likely to be a match"


def _chart_label(level, comparison) -> str:
    """Splink's label without duplicates: ``"<gamma>. <label>"`` where two levels share one."""
    labels = [lvl.label for lvl in comparison.levels]
    if len(labels) == len(set(labels)):
        return level.label
    return f"{level.comparison_vector_value}. {level.label}"


def level_record(level, comparison) -> dict[str, Any]:
    """Splink's ``ComparisonLevelDetailedRecord`` of one level, as a dict."""
    bf = _bayes_factor(level)
    if level.is_null_level:
        log2_bf = 0.0
    elif bf is None:
        log2_bf = None
    else:
        log2_bf = -math.inf if bf == 0 else math.log2(bf)
    return {
        "sql_condition": level.sql_condition,
        "label_for_charts": _chart_label(level, comparison),
        "has_tf_adjustments": level.has_tf_adjustments,
        "tf_adjustment_column": level.tf_adjustment_column,
        "tf_adjustment_weight": level.tf_adjustment_weight,
        "is_null_level": level.is_null_level,
        "m_probability": level.m,
        "u_probability": level.u,
        # Splink words these with the level's own label (duplicates not numbered)
        "m_probability_description": _probability_description(level.m, level.label, "matching"),
        "u_probability_description": _probability_description(level.u, level.label, "non-matching"),
        "bayes_factor": bf,
        "log2_bayes_factor": log2_bf,
        "bayes_factor_description": _bayes_factor_description(bf, level.label),
        "comparison_vector_value": level.comparison_vector_value,
        "max_comparison_vector_value": comparison.num_levels - 1,
        "comparison_name": comparison.output_column_name,
    }


def parameter_records(settings) -> list[dict[str, Any]]:
    """Splink's ``parameters_as_detailed_records``: the prior, then every level of every comparison.

    Each level's m, u, Bayes factor and their descriptions, with ``comparison_sort_order`` (the
    comparison's position; -1 for the prior) and ``probability_two_random_records_match``.
    """
    lam = settings.probability_two_random_records_match
    out = []
    for i, comparison in enumerate(settings.comparisons):
        for level in comparison.levels:
            rec = level_record(level, comparison)
            rec["probability_two_random_records_match"] = lam
            rec["comparison_sort_order"] = i
            out.append(rec)
    bf = lam / (1 - lam) if lam != 1 else math.inf
    prior = {
        "sql_condition": None,
        "label_for_charts": "",
        "has_tf_adjustments": False,
        "tf_adjustment_column": None,
        "tf_adjustment_weight": None,
        "is_null_level": False,
        "m_probability": None,
        "u_probability": None,
        "m_probability_description": None,
        "u_probability_description": None,
        "bayes_factor": bf,
        "log2_bayes_factor": math.log2(bf),
        "bayes_factor_description": (
            f"The probability that two random records drawn at random match is {lam:.3f} or "
            f"one in  {1 / lam:,.1f} records.This is equivalent to a starting match weight of "
            f"{math.log2(bf):.3f}."
        ),
        "comparison_vector_value": 0,
        "max_comparison_vector_value": 0,
        "comparison_name": "probability_two_random_records_match",
        "probability_two_random_records_match": lam,
        "comparison_sort_order": -1,
    }
    return [prior, *out]


def parameter_estimate_records(
    settings, estimates, *, include_m: bool = True, include_u: bool = False
) -> list[dict[str, Any]]:
    """Splink's ``_parameter_estimates_as_records``: every training step's estimate of each level.

    Per comparison and level (in model order), the u estimates then the m estimates, in the
    order the steps ran; ``estimated_probability_as_log_odds`` is log2(p / (1 - p)), None for
    0, 1 and levels a step did not observe.
    """
    kinds = [k for k, keep in (("m", include_m), ("u", include_u)) if keep]
    values = estimates._values
    out = []
    for i, comparison in enumerate(settings.comparisons):
        for level in comparison.levels:
            g = level.comparison_vector_value
            label = _chart_label(level, comparison)
            for kind in ("u", "m"):
                if kind not in kinds:
                    continue
                for p, description in values.get((comparison.output_column_name, g, kind), []):
                    observed = p != LEVEL_NOT_OBSERVED_TEXT and 0.0 < p < 1.0
                    out.append(
                        {
                            "m_or_u": kind,
                            "estimated_probability": p,
                            "estimate_description": description,
                            "estimated_probability_as_log_odds": (
                                math.log2(p / (1 - p)) if observed else None
                            ),
                            "sql_condition": level.sql_condition,
                            "comparison_level_label": label,
                            "comparison_vector_value": g,
                            "comparison_name": comparison.output_column_name,
                            "comparison_sort_order": i,
                        }
                    )
    return out


def _columns_read(comparison) -> list[str]:
    """The input columns a comparison's levels read (``_l``/``_r`` removed), without repeats.

    Splink lists each level's columns as sqlglot finds them (roughly last first); this takes
    each level's columns last first too, so single-column comparisons always agree and
    multi-column ones usually do.
    """
    from gpulink.levels import _columns, parse_sql

    seen: list[str] = []
    for level in comparison.levels:
        if level.is_else_level:
            continue
        for col in reversed(_columns(parse_sql(level.sql_condition))):
            name = col.name[:-2] if col.name[-2:].lower() in ("_l", "_r") else col.name
            if name not in seen:
                seen.append(name)
    return seen


def waterfall_records(settings, records, *, hide_details: bool = False) -> list[dict[str, Any]]:
    """Splink's ``records_to_waterfall_data``: per record, the prior, each comparison's weight
    (and its term-frequency adjustment), and the final score, with ``bar_sort_order`` and
    ``record_number``.

    ``records``: rows (dicts) of ``predict()`` output with
    ``retain_intermediate_calculation_columns=True``.
    """
    lam = settings.probability_two_random_records_match
    prefix_g = settings.comparison_vector_value_column_prefix
    prefix_mw = settings.match_weight_column_prefix
    prefix_tf = settings.term_frequency_adjustment_column_prefix
    blank = {
        "sql_condition": None,
        "comparison_vector_value": None,
        "m_probability": None,
        "u_probability": None,
        "bayes_factor_description": None,
        "value_l": "",
        "value_r": "",
        "term_frequency_adjustment": None,
    }
    cols = {c.output_column_name: _columns_read(c) for c in settings.comparisons}
    out = []
    for number, row in enumerate(records):
        bf = lam / (1 - lam) if lam != 1 else math.inf
        recs = [
            {
                **blank,
                "column_name": "Prior",
                "label_for_charts": "Starting match weight (prior)",
                "log2_bayes_factor": math.log2(bf),
                "bayes_factor": bf,
            }
        ]
        for comparison in settings.comparisons:
            name = comparison.output_column_name
            gamma_col = f"{prefix_g}{name}"
            if gamma_col not in row:
                raise InputError(
                    f"record {number} has no column {gamma_col!r}; the waterfall chart needs "
                    "predict() output with retain_intermediate_calculation_columns=True"
                )
            level = comparison.level_for_gamma(int(row[gamma_col]))
            full = level_record(level, comparison)
            rec = {
                k: full[k]
                for k in (
                    "sql_condition",
                    "label_for_charts",
                    "log2_bayes_factor",
                    "bayes_factor",
                    "comparison_vector_value",
                    "m_probability",
                    "u_probability",
                    "bayes_factor_description",
                )
            }
            rec["column_name"] = name
            if hide_details:
                rec["value_l"] = rec["value_r"] = ""
            else:
                rec["value_l"] = ", ".join(str(row[f"{c}_l"]) for c in cols[name])
                rec["value_r"] = ", ".join(str(row[f"{c}_r"]) for c in cols[name])
            rec["term_frequency_adjustment"] = False
            recs.append(rec)
            if not any(lvl.has_tf_adjustments for lvl in comparison.levels):
                continue
            tf = dict(rec, column_name=f"tf_{name}", term_frequency_adjustment=True)
            tf["bayes_factor"] = 1.0
            tf["log2_bayes_factor"] = 0.0
            if level.has_tf_adjustments:
                col = level.tf_adjustment_column
                if not hide_details:
                    tf["value_l"] = str(row[f"{col}_l"])
                    tf["value_r"] = str(row[f"{col}_r"])
                else:
                    tf["value_l"] = tf["value_r"] = ""
                mw = row[f"{prefix_mw}{prefix_tf}adj_{name}"]
                tf_bf = 2**mw if mw != 0 else 1.0
                tf["label_for_charts"] = f"Term freq adjustment on {col}"
                tf["log2_bayes_factor"] = mw
                tf["bayes_factor"] = tf_bf
                tf["m_probability"] = tf["u_probability"] = None
                text = f"Term frequency adjustment on {col} makes comparison"
                if tf_bf >= 1.0:
                    text = f"{text} {tf_bf:,.2f} times more likely to be a match"
                else:
                    mult = 1 / tf_bf if tf_bf > 0 else float("inf")
                    text = f"{text}  {mult:,.2f} times less likely to be a match"
                tf["bayes_factor_description"] = text
            else:
                tf["value_l"] = tf["value_r"] = ""
            recs.append(tf)
        mw = row["match_weight"]
        recs.append(
            {
                **blank,
                "column_name": "Final score",
                "label_for_charts": "Final score",
                "log2_bayes_factor": mw,
                "bayes_factor": 2**mw,
            }
        )
        for i, rec in enumerate(recs):
            rec["bar_sort_order"] = i
            rec["record_number"] = number
        out.extend(recs)
    return out


#: Splink's histogram bin widths: the one closest to (max - min) / target_bins is used.
HISTOGRAM_BIN_WIDTHS = (0.01, 0.1, 0.2, 0.25, 0.5, 1, 2, 5)


def histogram_bin_width(lowest: float, highest: float, target_bins: int) -> float:
    """Splink's ``_bins`` choice: the width in :data:`HISTOGRAM_BIN_WIDTHS` closest to
    ``(highest - lowest) / target_bins`` (the narrower on a tie).

    >>> histogram_bin_width(-5.0, 25.0, 30), histogram_bin_width(-5.0, 25.0, 100)
    (1, 0.25)
    """
    rough = (highest - lowest) / target_bins
    best = HISTOGRAM_BIN_WIDTHS[0]
    for width in HISTOGRAM_BIN_WIDTHS:
        if abs(width - rough) < abs(best - rough):
            best = width
    return best


def histogram_records(match_weight, target_bins: int = 30) -> list[dict[str, Any]]:
    """Splink's ``histogram_data``: predictions counted in bins of match weight.

    One row per bin holding a weight, in increasing order: ``splink_score_bin_low`` (the width
    times ``floor(weight / width)``), ``binwidth``, ``count_rows`` and
    ``splink_score_bin_high``, which is the low edge plus the width in single precision
    (Splink adds ``cast(width as float)``, a 32-bit float: 0.1 becomes 0.10000000149011612).
    The width (:func:`histogram_bin_width`) comes from the smallest and largest finite weight;
    null and NaN weights are not counted.

    >>> rows = histogram_records(np.array([-1.2, 0.3, 0.7, 5.0]), target_bins=12)
    >>> [(r["splink_score_bin_low"], r["splink_score_bin_high"], r["count_rows"]) for r in rows]
    [(-1.5, -1.0, 1), (0.0, 0.5, 1), (0.5, 1.0, 1), (5.0, 5.5, 1)]
    >>> histogram_records(np.array([0.0, 3.0]), target_bins=30)[0]
    {'splink_score_bin_low': 0.0, 'binwidth': 0.1, 'count_rows': 1,
     'splink_score_bin_high': 0.10000000149011612}
    """
    weights = np.asarray(match_weight, dtype=np.float64)
    weights = weights[~np.isnan(weights)]
    finite = weights[np.isfinite(weights)]
    if len(finite) == 0:
        raise InputError(
            "match_weights_histogram: the predictions hold no finite match weight "
            f"({len(weights)} rows); predict with a lower threshold to have pairs to plot"
        )
    width = histogram_bin_width(float(finite.min()), float(finite.max()), target_bins)
    low = width * np.floor(weights / width)
    bins, counts = np.unique(low, return_counts=True)
    step = float(np.float32(width))
    return [
        {"splink_score_bin_low": float(b), "binwidth": width, "count_rows": int(c),
         "splink_score_bin_high": float(b) + step}
        for b, c in zip(bins, counts)
    ]  # fmt: skip


def _rank(order: np.ndarray) -> np.ndarray:
    """1-based position of each row in ``order`` (SQL's ``row_number()``)."""
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return rank


def _tf_level_values(linker, level, rec: dict) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """A TF level's values (Splink's TF table of its column), each value's TF adjustment
    log2(u / tf) * tf_adjustment_weight, and each value's rank from the most frequent and
    from the least frequent. ``rec``: the level's :func:`level_record`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from gpulink.table_management import tf_table

    comparison_name = rec["comparison_name"]
    u = rec["u_probability"]
    if u is None or u == LEVEL_NOT_OBSERVED_TEXT or not u > 0:
        raise SettingsError(
            f"tf_adjustment_chart: level {rec['label_for_charts']!r} of "
            f"{comparison_name!r} has u probability {u!r}; the chart needs a "
            "positive u: estimate u (linker.training.estimate_u_using_random_sampling) first"
        )
    if not math.isfinite(rec["log2_bayes_factor"]):
        raise SettingsError(
            f"tf_adjustment_chart: level {rec['label_for_charts']!r} of "
            f"{comparison_name!r} has match weight {rec['log2_bayes_factor']} "
            f"(m = {rec['m_probability']}, u = {u}); the chart needs a finite weight: "
            "re-estimate the level's m and u"
        )
    table = tf_table(linker._record_table(), level.tf_adjustment_column)
    values = table.column(0)
    tf = table.column(1).to_numpy()
    adjustment = np.log2(u / tf) * rec["tf_adjustment_weight"]
    # Splink ranks with row_number() over the adjustment alone, so equally frequent values
    # come in the database's order; here they come in order of value
    ranked = pa.table({"v": values, "a": adjustment})
    most = pc.sort_indices(ranked, sort_keys=[("a", "ascending"), ("v", "ascending")])
    least = pc.sort_indices(ranked, sort_keys=[("a", "descending"), ("v", "ascending")])
    return values.to_pylist(), adjustment, _rank(most.to_numpy()), _rank(least.to_numpy())


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """DuckDB's ``histogram(values, edges)`` for values within the edges: per edge, the number
    of values above the edge before it and at most it.

    >>> bin_counts(np.array([0.0, 0.2, 0.5, 0.7]), np.array([0.0, 0.5, 1.0])).tolist()
    [1, 2, 1]
    """
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges))


def tf_adjustment_records(
    linker, comparison, *, n_most_freq=10, n_least_freq=10, vals_to_include=()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Splink's ``tf_chart_data``: per level of ``comparison`` with term-frequency adjustments,
    its values' weights, and a histogram of them.

    Data rows (``gamma``, ``value``, ``log2_bf_final``, ``log2_bf_tf``, ``log2_bf``): every
    non-null value of the level's TF column with ``log2_bf_tf`` = log2(u / tf) *
    tf_adjustment_weight (the level's own u; no ``tf_minimum_u_value``), ``log2_bf`` the level's
    weight and ``log2_bf_final`` their sum. As Splink's, only values ranked below
    ``n_most_freq`` from the most frequent or below ``n_least_freq`` from the least frequent
    are kept (a rank starts at 1, so 10 keeps 9 of each), and ``vals_to_include``, where given,
    keeps of those only the values it lists; ``None`` for either count keeps every value.
    Rows come in order of ``log2_bf_tf``.

    Histogram rows (``gamma``, ``count``, ``log2_bf_desc``, ``log2_bf_tf``,
    ``log2_bf_final``): every value of each level counted in half-unit bins of
    ``log2_bf_final`` (a bin holds the weights above its lower edge up to its upper edge;
    edges run from the floor of the smallest weight to the ceiling of the largest over all the
    levels), non-empty bins only, ``log2_bf_final`` the bin's centre.
    """
    data: list[dict[str, Any]] = []
    hist_levels = []
    all_values = []
    for level in comparison.levels:
        if not level.has_tf_adjustments:
            continue
        rec = level_record(level, comparison)
        values, adjustment, most, least = _tf_level_values(linker, level, rec)
        all_values.append(values)
        log2_bf = rec["log2_bayes_factor"]
        final = adjustment + log2_bf
        gamma = level.comparison_vector_value
        hist_levels.append((gamma, log2_bf, final))
        keep = np.ones(len(values), bool)
        if n_most_freq is not None and n_least_freq is not None:
            keep = (least < n_least_freq) | (most < n_most_freq)
        if vals_to_include:
            wanted = {str(v) for v in vals_to_include}
            keep &= np.array([str(v) in wanted for v in values], bool)
        for i in np.flatnonzero(keep)[np.argsort(most[keep], kind="stable")]:
            data.append(
                {"gamma": gamma, "value": values[i], "log2_bf_final": float(final[i]),
                 "log2_bf_tf": float(adjustment[i]), "log2_bf": log2_bf}
            )  # fmt: skip
    if vals_to_include:
        seen = {str(v) for level_values in all_values for v in level_values}
        missing = [v for v in vals_to_include if str(v) not in seen]
        if missing:
            warnings.warn(
                f"tf_adjustment_chart: values {missing} of vals_to_include are not in the "
                f"term-frequency columns of {comparison.output_column_name!r}, so they are "
                "not in the chart",
                stacklevel=3,
            )
    every = np.concatenate([f for _, _, f in hist_levels]) if hist_levels else np.zeros(0)
    if len(every) == 0:
        raise InputError(
            f"tf_adjustment_chart: the term-frequency columns of {comparison.output_column_name!r}"
            " hold no non-null value; there is nothing to chart"
        )
    edges = np.arange(2 * math.floor(every.min()), 2 * math.ceil(every.max()) + 1) / 2
    hist: list[dict[str, Any]] = []
    for gamma, log2_bf, final in hist_levels:
        counts = bin_counts(final, edges)
        for upper, count in zip(edges, counts):
            if count:
                centre = float(upper) - 0.25
                hist.append(
                    {"gamma": gamma, "count": int(count),
                     "log2_bf_desc": f"{upper - 0.5:.1f}-{upper:.1f}",
                     "log2_bf_tf": centre - log2_bf, "log2_bf_final": centre}
                )  # fmt: skip
    return data, hist


# -- the charts ---------------------------------------------------------------------------------


def _weight_colour(alt, domain: float):
    """Red for evidence against a match, green for evidence for, as Splink's charts."""
    return alt.Color(
        "log2_bayes_factor:Q",
        title="Match weight",
        scale=alt.Scale(domain=[-domain, 0, domain], range=["red", "#f0f0f0", "green"]),
        legend=None,
    )


def _max_abs_weight(records) -> int:
    finite = [
        abs(r["log2_bayes_factor"])
        for r in records
        if r["log2_bayes_factor"] is not None and not math.isinf(r["log2_bayes_factor"])
    ]
    return max(1, math.ceil(max(finite, default=1)))


def match_weights_chart(settings):
    """Bars of each level's match weight, a row per comparison, under the prior's bar."""
    alt = require_altair()
    records = [r for r in parameter_records(settings) if r["comparison_vector_value"] != -1]
    dom = _max_abs_weight(records)
    x = alt.X(
        "log2_bayes_factor:Q",
        title="Match weight (log2 Bayes factor)",
        scale=alt.Scale(domain=[-dom, dom]),
    )
    tooltip = [
        alt.Tooltip("comparison_name:N", title="Comparison"),
        alt.Tooltip("label_for_charts:N", title="Level"),
        alt.Tooltip("m_probability:Q", title="m", format=".4g"),
        alt.Tooltip("u_probability:Q", title="u", format=".4g"),
        alt.Tooltip("bayes_factor:Q", title="Bayes factor", format=",.4g"),
        alt.Tooltip("log2_bayes_factor:Q", title="Match weight", format=",.4g"),
        alt.Tooltip("bayes_factor_description:N", title="Meaning"),
    ]
    prior = (
        alt.Chart(title="Prior (starting) match weight")
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("label_for_charts:N", title=None, axis=alt.Axis(labels=False, ticks=False)),
            color=_weight_colour(alt, dom),
            tooltip=tooltip,
        )
        .transform_filter("datum.comparison_name == 'probability_two_random_records_match'")
        .properties(width=500, height=20)
    )
    levels = (
        alt.Chart()
        .mark_bar()
        .encode(
            x=x,
            y=_level_axis(alt, "label_for_charts"),
            row=_comparison_rows(alt),
            color=_weight_colour(alt, dom),
            tooltip=tooltip,
        )
        .transform_filter("datum.comparison_name != 'probability_two_random_records_match'")
        .resolve_scale(y="independent")
        .properties(width=500, title="Match weights of each comparison level")
    )
    return alt.vconcat(prior, levels, data=alt.Data(values=records)).properties(
        title="Model parameters (components of final match weight)"
    )


def m_u_parameters_chart(settings):
    """Bars of each level's m (matches) and u (non-matches), a row per comparison."""
    alt = require_altair()
    records = [
        r
        for r in parameter_records(settings)
        if r["comparison_vector_value"] != -1
        and r["comparison_name"] != "probability_two_random_records_match"
    ]
    y = _level_axis(alt, "label_for_charts")
    row = _comparison_rows(alt)

    def panel(field: str, title: str, colour: str):
        return (
            alt.Chart()
            .mark_bar(color=colour)
            .encode(
                x=alt.X(f"{field}:Q", title=title, scale=alt.Scale(domain=[0, 1])),
                y=y,
                row=row,
                tooltip=[
                    alt.Tooltip("comparison_name:N", title="Comparison"),
                    alt.Tooltip("label_for_charts:N", title="Level"),
                    alt.Tooltip(f"{field}:Q", format=".4g"),
                    alt.Tooltip(f"{field}_description:N", title="Meaning"),
                ],
            )
            .resolve_scale(y="independent")
            .properties(width=250, title=title)
        )

    return alt.hconcat(
        panel("m_probability", "Amongst matching record comparisons", "green"),
        panel("u_probability", "Amongst non-matching record comparisons", "red"),
        data=alt.Data(values=records),
    ).properties(title="Proportion of record comparisons in each comparison level")


def parameter_estimate_comparisons_chart(settings, estimates, *, include_m=True, include_u=False):
    """Each training step's estimate of each level's m (and/or u), as log odds, per comparison."""
    alt = require_altair()
    records = parameter_estimate_records(
        settings, estimates, include_m=include_m, include_u=include_u
    )
    return (
        alt.Chart(alt.Data(values=records))
        .mark_point(filled=True, size=80, opacity=0.8)
        .encode(
            x=alt.X(
                "estimated_probability_as_log_odds:Q",
                title="Estimated probability as log odds (log2(p / (1 - p)))",
            ),
            y=_level_axis(alt, "comparison_level_label"),
            row=_comparison_rows(alt),
            color=alt.Color("estimate_description:N", title="Estimate"),
            shape=alt.Shape("m_or_u:N", title="m or u"),
            tooltip=[
                alt.Tooltip("comparison_name:N", title="Comparison"),
                alt.Tooltip("comparison_level_label:N", title="Level"),
                alt.Tooltip("m_or_u:N"),
                alt.Tooltip("estimated_probability:Q", format=".4g"),
                alt.Tooltip("estimate_description:N", title="Estimate"),
            ],
        )
        .resolve_scale(y="independent")
        .properties(width=450, title="Comparison of parameter estimates across training steps")
    )


def waterfall_chart(settings, records, *, filter_nulls: bool = True, hide_details=False):
    """Per record (pick it with the slider), how the prior and each comparison add up to the
    final match weight; ``filter_nulls`` drops levels with no effect (Bayes factor 1)."""
    alt = require_altair()
    data = waterfall_records(settings, records, hide_details=hide_details)
    pick = alt.param(
        name="record_number",
        value=0,
        bind=alt.binding_range(min=0, max=max(len(records) - 1, 0), step=1, name="Record "),
    )
    base = alt.Chart(alt.Data(values=data)).transform_filter("datum.record_number == record_number")
    if filter_nulls:
        base = base.transform_filter("datum.bayes_factor !== 1.0")
    base = (
        base.transform_window(
            running="sum(log2_bayes_factor)", sort=[alt.SortField("bar_sort_order")]
        )
        .transform_calculate(
            # the final score's bar spans 0..score; the others start where the sum stood
            end="datum.column_name == 'Final score' ? datum.log2_bayes_factor : datum.running",
            start="datum.column_name == 'Final score' ? 0 : datum.running - datum.log2_bayes_factor",
        )
        .encode(
            x=alt.X(
                "column_name:N",
                title=None,
                sort=alt.EncodingSortField("bar_sort_order"),
                axis=alt.Axis(labelAngle=-30),
            )
        )
    )
    bars = base.mark_bar().encode(
        y=alt.Y("start:Q", title="Cumulative match weight"),
        y2="end:Q",
        color=alt.condition("datum.log2_bayes_factor < 0", alt.value("red"), alt.value("green")),
        tooltip=[
            alt.Tooltip("column_name:N", title="Comparison"),
            alt.Tooltip("label_for_charts:N", title="Level"),
            alt.Tooltip("value_l:N", title="Left"),
            alt.Tooltip("value_r:N", title="Right"),
            alt.Tooltip("log2_bayes_factor:Q", title="Match weight", format=",.4g"),
            alt.Tooltip("bayes_factor_description:N", title="Meaning"),
        ],
    )
    text = base.mark_text(dy=-6).encode(
        y=alt.Y("end:Q"), text=alt.Text("log2_bayes_factor:Q", format=".2f")
    )
    return (
        alt.layer(bars, text)
        .add_params(pick)
        .properties(width=600, height=300, title="Match weights waterfall chart")
    )


def match_weights_histogram(records, *, width=600, height=250):
    """Bars of the number of predicted pairs in each match-weight bin; the mouse wheel zooms
    the count axis."""
    alt = require_altair()
    zoom = alt.selection_interval(name="mouse_zoom", encodings=["y"], bind="scales")
    return (
        alt.Chart(alt.Data(values=records))
        .mark_bar()
        .encode(
            x=alt.X("splink_score_bin_low:Q", bin="binned", axis=alt.Axis(title="Match weight")),
            x2="splink_score_bin_high:Q",
            y=alt.Y("count_rows:Q", axis=alt.Axis(title="Count of record comparisons in bin")),
            tooltip=[alt.Tooltip("count_rows:Q", title="Count in bin")],
        )
        .add_params(zoom)
        .properties(
            width=width,
            height=height,
            title=alt.Title("Histogram of match weights", subtitle="Use mousewheel to zoom"),
        )
    )


def tf_adjustment_chart(data, hist, levels: list[int], labels: list[str]):
    """Per value of a TF level (pick the level in the menu), its match weight after the
    term-frequency adjustment, with the level's own weight as a rule; beside it, how many
    values fall at each weight."""
    alt = require_altair()
    gamma = alt.param(
        name="gamma_sel",
        value=max(levels),
        bind=alt.binding_select(options=levels, labels=labels, name="Gamma level:"),
    )
    colour = alt.Color(
        "log2_bf_tf:Q",
        title="TF adjustment weight",
        scale=alt.Scale(domain=[-2.5, 2.5], scheme="redyellowgreen"),
    )
    x = alt.X(
        "value:N",
        title="TF column value",
        sort=alt.EncodingSortField("log2_bf_final", order="ascending"),
        axis=alt.Axis(labelAngle=-60),
    )
    points = (
        alt.Chart()
        .mark_point(filled=True, size=100, stroke="black", strokeWidth=1)
        .encode(
            x=x,
            y=alt.Y("log2_bf_final:Q", title="Match weight", axis=alt.Axis(format="+")),
            color=colour,
            tooltip=[
                alt.Tooltip("value:N", title="Value"),
                alt.Tooltip("log2_bf:Q", title="Match weight", format="+.3"),
                alt.Tooltip("log2_bf_tf:Q", title="TF adjusted match weight", format="+.3"),
                alt.Tooltip("log2_bf_final:Q", title="Final match weight", format="+.3"),
            ],
        )
    )
    level_weight = alt.Chart().mark_rule().encode(y="log2_bf:Q")
    stems = (
        alt.Chart()
        .mark_rule(strokeWidth=2, opacity=0.5)
        .encode(x=x, y="log2_bf_final:Q", y2="log2_bf:Q", color=colour.legend(None))
    )
    values = (
        alt.layer(points, level_weight, stems, data=alt.Data(name="data"))
        .transform_filter("datum.gamma == gamma_sel")
        .properties(height=400, width=alt.Step(20))
    )
    counts = (
        alt.Chart(alt.Data(name="hist"))
        .transform_filter("datum.gamma == gamma_sel")
        .mark_bar(stroke="black", strokeWidth=1, fillOpacity=0.8)
        .encode(
            y=alt.Y("log2_bf_final:Q", bin=alt.Bin(step=0.5), axis=None),
            x=alt.X("count:Q", title="Count of values"),
            color=colour.legend(None),
            tooltip=[
                alt.Tooltip("log2_bf_desc:N", title="Match weight"),
                alt.Tooltip("count:Q", title="Number of values"),
            ],
        )
        .properties(width=100)
    )
    return (
        alt.hconcat(values, counts, spacing=10)
        .resolve_scale(color="shared", y="shared")
        .add_params(gamma)
        .properties(
            title=alt.Title(
                "Term frequency adjusted match weights",
                subtitle="For selected values, incl. the lowest and highest frequency",
            ),
            datasets={"data": data, "hist": hist},
        )
    )


#: ``unlinkables_chart``'s x axes: Splink's two choices.
UNLINKABLES_X = {
    "match_weight": "Threshold match weight",
    "match_probability": "Threshold match probability",
}


def unlinkables_chart(records, *, x_col: str = "match_weight", name_of_data: str | None = None):
    """The share of records whose self-link stays below each threshold (``x_col``: the match
    weight or the match probability); the nearest point to the mouse is marked."""
    alt = require_altair()
    if x_col not in UNLINKABLES_X:
        raise SettingsError(
            f"unlinkables_chart: x_col must be 'match_weight' or 'match_probability', got {x_col!r}"
        )
    title = UNLINKABLES_X[x_col]
    fmt = "+" if x_col == "match_weight" else ".2"
    near = alt.selection_point(
        name=f"x_{x_col}_y_cum_prop_coords_of_mouse",
        fields=[x_col, "cum_prop"],
        nearest=True,
        on="mouseover",
        empty=False,
    )
    y = alt.Y("cum_prop:Q", axis=alt.Axis(format="%", title="Percentage of unlinkable records"))
    line = (
        alt.Chart()
        .mark_line()
        .encode(x=alt.X(f"{x_col}:Q", axis=alt.Axis(format=fmt, title=title)), y=y)
    )
    points = (
        alt.Chart()
        .mark_point()
        .encode(
            x=alt.X(f"{x_col}:Q", axis=alt.Axis(title=title)),
            y=y,
            opacity=alt.condition(near, alt.value(1), alt.value(0)),
            tooltip=[
                alt.Tooltip("match_weight:Q", format="+.5", title="Match weight"),
                alt.Tooltip("match_probability:Q", format=".5", title="Match probability"),
                alt.Tooltip("cum_prop:Q", format=".3%", title="Proportion of unlinkable records"),
            ],
        )
        .add_params(near)
    )
    at_x = alt.Chart().mark_rule(color="gray").encode(x=f"{x_col}:Q").transform_filter(near)
    at_y = alt.Chart().mark_rule(color="gray").encode(y="cum_prop:Q").transform_filter(near)
    text = "Unlinkable records" + (f" - {name_of_data}" if name_of_data else "")
    return alt.layer(line, points, at_x, at_y, data=alt.Data(values=records)).properties(
        width=400,
        height=400,
        title=alt.Title(
            text,
            subtitle="Records with insufficient information to exceed a given match threshold",
        ),
    )


def blocking_rule_comparisons_records(records) -> list[dict[str, Any]]:
    """Splink's records for ``chart_comparisons_from_blocking_rules``: each record of
    ``count_comparisons_from_blocking_rules`` with ``chart_start`` (cumulative minus marginal
    count), where the rule's bar starts.

    >>> blocking_rule_comparisons_records(
    ...     [{"marginal_comparison_count": 3, "cumulative_comparison_count": 5}])
    [{'marginal_comparison_count': 3, 'cumulative_comparison_count': 5, 'chart_start': 2}]
    """
    out = []
    for record in records:
        row = dict(record)
        row["chart_start"] = row["cumulative_comparison_count"] - row["marginal_comparison_count"]
        out.append(row)
    return out


def blocking_rule_comparisons_chart(records):
    """One bar per blocking rule from the pairs earlier rules generated to the pairs all rules
    up to it generate (``records``: :func:`blocking_rule_comparisons_records`); Splink's
    ``blocking_rule_generated_comparisons`` chart. Counts are exact, so the title is Splink's
    for exact counts."""
    alt = require_altair()
    return (
        alt.Chart(alt.Data(values=records))
        .mark_bar()
        .encode(
            x=alt.X("chart_start:Q", title="Comparisons Generated by Rule(s)"),
            x2="cumulative_comparison_count",
            y=alt.Y(
                "blocking_rule:N",
                title="SQL Blocking Rule",
                axis=alt.Axis(labelLimit=370, maxExtent=400),
                sort=["-x2"],
            ),
            order=alt.Order("cumulative_comparison_count:Q"),
            tooltip=[
                alt.Tooltip("blocking_rule:N", title="SQL Condition"),
                alt.Tooltip(
                    "marginal_comparison_count:Q", title="Comparisons Generated", format=","
                ),
                alt.Tooltip(
                    "cumulative_comparison_count:Q", title="Cumulative Comparisons", format=","
                ),
                alt.Tooltip(
                    "total_possible_comparison_count:Q",
                    title="Total comparisons in Cartesian product",
                    format=",",
                ),
            ],
        )
        .properties(
            width=450,
            height=alt.Step(20),
            title=alt.Title(
                "Count of Additional Comparisons Generated by Each Blocking Rule",
                subtitle="(Counts exclude comparisons already generated by previous rules)",
            ),
        )
    )


class LinkerVisualisations:
    """``linker.visualisations``: Splink 5's model charts (Altair objects)."""

    def __init__(self, linker):
        self._linker = linker

    def match_weights_chart(self):
        """The prior and every level's match weight (log2 Bayes factor), per comparison.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("surname")])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> chart = linker.visualisations.match_weights_chart()
        >>> [(r["comparison_name"], r["label_for_charts"]) for r in chart_records(chart)]
        [('probability_two_random_records_match', ''), ('surname', 'Exact match on surname'),
         ('surname', 'All other comparisons')]
        >>> chart.save("/tmp/gpulink_match_weights.html")
        """
        return match_weights_chart(self._linker.settings)

    def m_u_parameters_chart(self):
        """Every level's m and u probability, per comparison.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("surname")])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> chart = linker.visualisations.m_u_parameters_chart()
        >>> [r["m_probability"] for r in chart_records(chart)]
        [0.95, 0.050000000000000044]
        """
        return m_u_parameters_chart(self._linker.settings)

    def parameter_estimate_comparisons_chart(self, include_m: bool = True, include_u: bool = False):
        """Each training step's estimate of each level's m (``include_m``) and u (``include_u``).

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("surname")])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> linker.training.estimate_u_using_random_sampling(max_pairs=1e5, seed=1)
        >>> chart = linker.visualisations.parameter_estimate_comparisons_chart(include_u=True)
        >>> sorted({(r["m_or_u"], r["estimate_description"]) for r in chart_records(chart)})
        [('u', 'estimate u by random sampling')]
        """
        linker = self._linker
        return parameter_estimate_comparisons_chart(
            linker.settings, linker._estimates, include_m=include_m, include_u=include_u
        )

    def waterfall_chart(self, records, filter_nulls: bool = True, remove_sensitive_data=False):
        """How each record's match weight adds up: the prior, each comparison, the final score.

        ``records``: rows (dicts) of ``predict()`` output made with
        ``retain_intermediate_calculation_columns=True``, e.g. ``df.as_record_list(limit=5)``.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("surname")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("dob")],
        ...     retain_intermediate_calculation_columns=True)
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> rows = linker.inference.predict().to_pandas().to_dict("records")[:2]
        >>> chart = linker.visualisations.waterfall_chart(rows)
        >>> [r["column_name"] for r in chart_records(chart)][:3]
        ['Prior', 'surname', 'Final score']
        """
        s = self._linker.settings
        if not (s.retain_intermediate_calculation_columns and s.retain_matching_columns):
            raise SettingsError(
                "waterfall_chart needs predict() output with each comparison's columns, gamma and "
                "match weights: set retain_intermediate_calculation_columns=True and "
                "retain_matching_columns=True in the settings (now "
                f"{s.retain_intermediate_calculation_columns} and {s.retain_matching_columns}) "
                "and predict again"
            )
        records = (
            records.to_pandas().to_dict("records") if hasattr(records, "to_pandas") else records
        )
        return waterfall_chart(
            self._linker.settings,
            list(records),
            filter_nulls=filter_nulls,
            hide_details=remove_sensitive_data,
        )

    def match_weights_histogram(self, df_predict, target_bins: int = 30, width=600, height=250):
        """How many predicted pairs fall at each match weight, in bins of a width near
        (largest - smallest weight) / ``target_bins`` (Splink's choice among 0.01, 0.1, 0.2,
        0.25, 0.5, 1, 2 and 5; see :func:`histogram_records`).

        ``df_predict``: ``linker.inference.predict()`` output, or any table with a
        ``match_weight`` column (pandas, pyarrow, a gpulink result).

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("surname"), cl.ExactMatch("dob")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> pairs = linker.inference.predict()
        >>> chart = linker.visualisations.match_weights_histogram(pairs, target_bins=10)
        >>> sum(r["count_rows"] for r in chart_records(chart)) == len(pairs)
        True
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        from gpulink.checks import is_integer
        from gpulink.io import to_arrow

        if not is_integer(target_bins) or target_bins < 1:
            raise SettingsError(
                f"match_weights_histogram: target_bins must be a positive integer, got "
                f"{target_bins!r}"
            )
        table = to_arrow(df_predict, what="df_predict")
        if "match_weight" not in table.column_names:
            raise InputError(
                "match_weights_histogram: df_predict has no 'match_weight' column (it has: "
                f"{', '.join(table.column_names[:20])}); pass linker.inference.predict() "
                "output (deterministic_link() pairs are not scored)"
            )
        try:
            weights = table.column("match_weight").cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(
                f"match_weights_histogram: df_predict's 'match_weight' column must hold "
                f"numbers ({exc})"
            ) from None
        weights = pc.fill_null(weights, np.nan).to_numpy()
        records = histogram_records(weights, int(target_bins))
        return match_weights_histogram(records, width=width, height=height)

    def tf_adjustment_chart(
        self,
        output_column_name: str,
        n_most_freq: int | None = 10,
        n_least_freq: int | None = 10,
        vals_to_include=None,
        as_dict: bool = False,
    ):
        """Per value of a comparison's term-frequency column, the match weight of its levels
        with term-frequency adjustments once the value's adjustment is added (a menu picks the
        level), and how many values fall at each weight.

        Shown: the values ranked below ``n_most_freq`` from the most frequent and below
        ``n_least_freq`` from the least (Splink's ``row_number() < n``: 10 shows 9 of each;
        ``None`` for either shows every value); ``vals_to_include`` (a value or a list), as
        in Splink, keeps of those only the values it lists. The histogram counts every
        value. ``as_dict=True`` returns the Vega-Lite spec (a dict) instead of the chart; its
        ``datasets`` ``"data"`` and ``"hist"`` are :func:`tf_adjustment_records`.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only",
        ...     [cl.ExactMatch("surname").configure(term_frequency_adjustments=True)])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> spec = linker.visualisations.tf_adjustment_chart("surname", n_most_freq=3,
        ...     n_least_freq=1, as_dict=True)
        >>> len(spec["datasets"]["data"]), spec["params"][0]["bind"]["labels"]
        (2, ['Exact match on surname (TF col: surname)'])
        """
        from gpulink.checks import is_integer

        comparison = _comparison_named(self._linker.settings, output_column_name)
        levels = [
            level_record(lvl, comparison) for lvl in comparison.levels if lvl.has_tf_adjustments
        ]
        if not levels:
            with_tf = [
                c.output_column_name
                for c in self._linker.settings.comparisons
                if any(lvl.has_tf_adjustments for lvl in c.levels)
            ]
            raise SettingsError(
                f"tf_adjustment_chart: comparison {output_column_name!r} has no level with "
                "term-frequency adjustments; chart one that has "
                f"({', '.join(map(repr, with_tf)) or 'none in this model'}) or give it "
                ".configure(term_frequency_adjustments=True)"
            )
        for name, n in (("n_most_freq", n_most_freq), ("n_least_freq", n_least_freq)):
            if n is not None and (not is_integer(n) or n < 0):
                raise SettingsError(
                    f"tf_adjustment_chart: {name} must be a non-negative integer or None "
                    f"(every value), got {n!r}"
                )
        if vals_to_include is None:
            vals_to_include = []
        elif isinstance(vals_to_include, (str, bytes)) or not hasattr(vals_to_include, "__iter__"):
            vals_to_include = [vals_to_include]
        data, hist = tf_adjustment_records(
            self._linker, comparison, n_most_freq=n_most_freq, n_least_freq=n_least_freq,
            vals_to_include=list(vals_to_include),
        )  # fmt: skip
        chart = tf_adjustment_chart(
            data,
            hist,
            [r["comparison_vector_value"] for r in levels],
            [f"{r['label_for_charts']} (TF col: {r['tf_adjustment_column']})" for r in levels],
        )
        return chart.to_dict() if as_dict else chart


def _comparison_named(settings, output_column_name: str):
    """The comparison with this output column name, or a SettingsError listing them."""
    for comparison in settings.comparisons:
        if comparison.output_column_name == output_column_name:
            return comparison
    names = [c.output_column_name for c in settings.comparisons]
    raise SettingsError(
        f"no comparison has output_column_name {output_column_name!r}; the model's comparisons "
        f"are: {', '.join(map(repr, names))}"
    )
