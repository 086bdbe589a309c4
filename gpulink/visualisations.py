"""``linker.visualisations``: Splink 5's model charts, drawn with Altair.

Each chart plots the same records as Splink's chart of the same name (same rows, same fields,
same values): :func:`parameter_records` for ``match_weights_chart`` and
``m_u_parameters_chart``, :func:`parameter_estimate_records` for
``parameter_estimate_comparisons_chart`` and :func:`waterfall_records` for ``waterfall_chart``.
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
from typing import Any

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


def chart_records(chart) -> list[dict[str, Any]]:
    """The records a chart from this module plots (its one inline data set)."""
    spec = chart.to_dict()
    if "datasets" in spec:
        (values,) = spec["datasets"].values()
        return values
    return spec["data"]["values"]


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
