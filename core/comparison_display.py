"""A method comparison as a person reads it: the chart (accuracy against training examples per
class) and the summary table, in the reader's language."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from core.i18n import format_count, format_duration, has, t

_TEMPLATE = "plotly_white"


def method_name(method: str, lang: str = "en") -> str:
    """A method as the Train page names it ("LoRA (adapters)"), or its code when it has no name."""
    return t(f"train.method.{method}", lang) if has(f"train.method.{method}") else method


def size_label(size: Any, lang: str = "en") -> str:
    return t("lab.size_all", lang) if size == "all" else f"{int(size):,}"


SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "triangle-down", "pentagon",
           "hexagon", "hourglass", "bowtie")


def methods_figure(summary: list[dict[str, Any]], sizes: list[Any], lang: str = "en") -> go.Figure:
    """One line per method through the sizes (in the order given, evenly spaced), the mean test
    accuracy over seeds with the spread as error bars; the TF-IDF baseline dashed. Each method has
    its own marker and is set a little to the side of its size, so methods that reach the same
    accuracy stay visible side by side instead of hiding one another (the hover says the value)."""
    fig = go.Figure()
    labels = [size_label(s, lang) for s in sizes]
    methods = list(dict.fromkeys(row["method"] for row in summary))
    step = min(0.5 / max(len(methods), 1), 0.08)
    for i, method in enumerate(methods):
        cells = {row["per_class"]: row for row in summary if row["method"] == method}
        y = [(cells.get(s) or {}).get("accuracy_mean") for s in sizes]
        spread = [(cells.get(s) or {}).get("accuracy_spread") or 0.0 for s in sizes]
        offset = (i - (len(methods) - 1) / 2) * step
        fig.add_scatter(x=[k + offset for k in range(len(sizes))], y=y, name=method_name(method, lang),
                        mode="lines+markers", connectgaps=False, customdata=labels,
                        marker=dict(symbol=SYMBOLS[i % len(SYMBOLS)], size=9),
                        hovertemplate=f"{method_name(method, lang)}<br>%{{customdata}}: %{{y:.1%}}<extra></extra>",
                        error_y=dict(type="data", array=spread, visible=True),
                        line=dict(dash="dash") if method == "baseline" else None)
    fig.update_layout(template=_TEMPLATE, height=380, margin=dict(t=30, b=40, l=50, r=10),
                      xaxis=dict(title=t("lab.chart.per_class", lang), tickmode="array",
                                 tickvals=list(range(len(sizes))), ticktext=labels, range=[-0.5, len(sizes) - 0.5]),
                      yaxis=dict(title=t("lab.chart.accuracy", lang), tickformat=".0%"),
                      legend_title_text=t("lab.chart.method", lang))
    return fig


def mean_spread(mean: float | None, spread: float | None, seeds: int, digits: int = 3) -> str:
    """``mean ± spread``; one finished seed has no spread to show."""
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" if seeds <= 1 else f"{mean:.{digits}f} ± {spread or 0.0:.{digits}f}"


def summary_table(summary: list[dict[str, Any]], lang: str = "en") -> pd.DataFrame:
    """One row per method and size: accuracy and macro F1 as mean ± spread (3 decimals), trainable
    parameters and peak memory as counts, time as a duration, and how many seeds have finished."""
    rows = [{
        t("lab.col.method", lang): method_name(row["method"], lang),
        t("lab.col.per_class", lang): size_label(row["per_class"], lang),
        t("lab.col.accuracy", lang): mean_spread(row["accuracy_mean"], row["accuracy_spread"], row["finished"]),
        t("lab.col.macro_f1", lang): mean_spread(row["macro_f1_mean"], row["macro_f1_spread"], row["finished"]),
        t("lab.col.parameters", lang): t("lab.col.none", lang) if row["method"] == "baseline" and row["finished"]
        else format_count(row["trainable_parameters"], lang),
        t("lab.col.seconds", lang): format_duration(row["seconds"], lang),
        t("lab.col.memory", lang): format_count(row["peak_memory_mb"], lang),
        t("lab.col.seeds", lang): f"{row['finished']}/{row['seeds']}",
    } for row in summary]
    return pd.DataFrame(rows, dtype="str")
