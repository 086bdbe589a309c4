"""Altair charts of the truth-space table (Splink 5's accuracy chart types).

``threshold_selection`` and ``accuracy``: precision, recall and the ``add_metrics`` against the
match weight (``threshold_selection`` adds the match probability as a tooltip and a second
panel of the counts); ``roc``: recall (TPR) against the false positive rate; ``precision_recall``:
precision against recall. The charts draw the same rows as ``output_type="table"``. Altair is an
optional dependency (``pip install "gpulink[charts]"``).
"""

from __future__ import annotations

import pyarrow as pa

from gpulink.visualisations import require_altair

_LABELS = {
    "precision": "Precision",
    "recall": "Recall",
    "specificity": "Specificity",
    "npv": "NPV",
    "accuracy": "Accuracy",
    "f1": "F1",
    "f2": "F2",
    "f0_5": "F0.5",
    "p4": "P4",
    "phi": "φ (MCC)",
}


def accuracy_chart(table: pa.Table, output_type: str, add_metrics: list[str]):
    """An Altair chart of the truth-space ``table`` for ``output_type`` (not ``"table"``)."""
    alt = require_altair()
    data = alt.Data(values=table.to_pylist())
    tooltip = [
        alt.Tooltip("truth_threshold:Q", title="Match weight", format=".2f"),
        alt.Tooltip("match_probability:Q", title="Match probability", format=".4f"),
        alt.Tooltip("tp:Q", title="TP"),
        alt.Tooltip("fp:Q", title="FP"),
        alt.Tooltip("tn:Q", title="TN"),
        alt.Tooltip("fn:Q", title="FN"),
    ]
    curves = {
        "roc": ("Receiver operating characteristic", "fp_rate", "False positive rate",
                "tp_rate", "True positive rate (recall)"),
        "precision_recall": ("Precision-recall", "recall", "Recall", "precision", "Precision"),
    }  # fmt: skip
    if output_type in curves:
        title, x, x_title, y, y_title = curves[output_type]
        return (
            alt.Chart(data, title=title)
            .mark_line(point=True)
            .encode(
                x=alt.X(f"{x}:Q", title=x_title), y=alt.Y(f"{y}:Q", title=y_title), tooltip=tooltip
            )
        )
    metrics = ["precision", "recall"] + [m for m in add_metrics if m not in ("precision", "recall")]
    lines = (
        alt.Chart(data, title="Accuracy by threshold")
        .transform_fold(metrics, as_=["metric", "value"])
        .mark_line()
        .encode(
            x=alt.X("truth_threshold:Q", title="Match weight threshold"),
            y=alt.Y("value:Q", title="Value"),
            color=alt.Color("metric:N", title="Metric", sort=metrics),
            tooltip=tooltip + [alt.Tooltip("metric:N"), alt.Tooltip("value:Q", format=".4f")],
        )
    )
    if output_type == "accuracy":
        return lines
    counts = (
        alt.Chart(data, title="Confusion counts by threshold")
        .transform_fold(["tp", "fp", "tn", "fn"], as_=["count", "value"])
        .mark_line()
        .encode(
            x=alt.X("truth_threshold:Q", title="Match weight threshold"),
            y=alt.Y("value:Q", title="Pairs", scale=alt.Scale(type="symlog")),
            color=alt.Color("count:N", title="Count"),
            tooltip=tooltip,
        )
    )
    return alt.vconcat(lines, counts)
