"""Plotly figure builders. Pages only place the figures these return, with :func:`plotly_config`
so that plotly itself (month and day names, date ticks, toolbar tips) speaks the UI language."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from core.i18n import has, t

_TEMPLATE = "plotly_white"

# Streamlit's plotly bundle registers only the English locales, but plotly reads a locale from
# its config too (``config.locales``): date ticks such as "Mar 2026" become "2026年3月".
_ZH_CN = {
    "format": {
        "days": ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
        "shortDays": ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
        "months": [f"{m}月" for m in ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二")],
        "shortMonths": [f"{m}月" for m in range(1, 13)],
        "periods": ["上午", "下午"],
        "date": "%Y-%m-%d", "time": "%H:%M:%S", "dateTime": "%Y-%m-%d %H:%M:%S",
        "year": "%Y年", "month": "%Y年%-m月", "dayMonth": "%-m月%-d日", "dayMonthYear": "%Y年%-m月%-d日",
        "decimal": ".", "thousands": ",", "grouping": [3], "currency": ["¥", ""],
    },
    "dictionary": {
        "Zoom": "缩放", "Pan": "平移", "Box Select": "框选", "Lasso Select": "套索选择", "Zoom in": "放大",
        "Zoom out": "缩小", "Autoscale": "自动缩放", "Reset axes": "重置坐标轴", "Reset view": "重置视图",
        "Download plot as a png": "下载为 PNG 图片", "Download plot": "下载图表",
        "Double-click to zoom back out": "双击还原缩放", "Show closest data on hover": "悬停时显示最近的数据",
        "Compare data on hover": "悬停时比较数据", "Toggle Spike Lines": "切换辅助线",
        "Taking snapshot - this may take a few seconds": "正在生成图片，可能需要几秒钟",
        "Snapshot succeeded": "图片已生成",
    },
}
PLOTLY_LOCALES: dict[str, tuple[str, dict[str, Any]]] = {"zh": ("zh-CN", _ZH_CN)}


def plotly_config(lang: str = "en") -> dict[str, Any]:
    """The plotly config that renders a chart in ``lang`` (empty for English, plotly's default)."""
    if lang not in PLOTLY_LOCALES:
        return {}
    name, locale = PLOTLY_LOCALES[lang]
    return {"locale": name, "locales": {name: locale}}


def _split_name(split: str, lang: str) -> str:
    return t(f"data.split.{split}", lang) if has(f"data.split.{split}") else split


def class_balance_figure(split_counts: dict[str, dict[str, int]], labels: list[str], lang: str = "en") -> go.Figure:
    """One bar group per split, one bar per label."""
    fig = go.Figure()
    splits = list(split_counts)
    names = [_split_name(s, lang) for s in splits]
    for label in labels:
        fig.add_bar(name=label, x=names, y=[split_counts[s].get(label, 0) for s in splits])
    fig.update_layout(barmode="group", template=_TEMPLATE, height=320, margin=dict(t=30, b=30, l=40, r=10),
                      xaxis_title=t("chart.split", lang), yaxis_title=t("chart.rows", lang),
                      legend_title_text=t("chart.label", lang))
    return fig


def text_length_figure(lengths: pd.Series, lang: str = "en") -> go.Figure:
    """Histogram of text lengths in characters (log-scaled counts, since lengths are skewed)."""
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=60, name=t("chart.length", lang)))
    fig.update_layout(template=_TEMPLATE, height=320, margin=dict(t=30, b=30, l=40, r=10),
                      xaxis_title=t("chart.length", lang), yaxis_title=t("chart.texts", lang))
    return fig


def training_curves_figure(events: list[dict], lang: str = "en") -> go.Figure:
    """Training loss per step and validation macro F1 per evaluation, on two y-axes."""
    from plotly.subplots import make_subplots

    steps = [e for e in events if e.get("event") == "step"]
    evals = [e for e in events if e.get("event") == "eval"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=[e["step"] for e in steps], y=[e["loss"] for e in steps], mode="lines",
                             name=t("chart.loss", lang)), secondary_y=False)
    fig.add_trace(go.Scatter(x=[e["step"] for e in evals], y=[e["metrics"].get("macro_f1") for e in evals],
                             mode="lines+markers", name=t("chart.val_f1", lang)), secondary_y=True)
    fig.update_layout(template=_TEMPLATE, height=260, margin=dict(t=20, b=30, l=40, r=40),
                      legend=dict(orientation="h", y=1.15), xaxis_title=t("chart.step", lang))
    fig.update_yaxes(title_text=t("chart.loss", lang), secondary_y=False)
    fig.update_yaxes(title_text=t("chart.val_f1", lang), range=[0, 1], secondary_y=True)
    return fig


def confusion_matrix_figure(matrix: list[list[float]], labels: list[str], normalised: bool = False,
                            lang: str = "en") -> go.Figure:
    """Heatmap with rows = true label and columns = predicted label, in ``labels`` order."""
    text = [[f"{v:.0%}" if normalised else f"{int(v):,}" for v in row] for row in matrix]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, text=text, texttemplate="%{text}",
                               colorscale="Blues", showscale=False,
                               hovertemplate=f"{t('chart.true', lang)} %{{y}} → {t('chart.predicted', lang)} %{{x}}: "
                                             "%{text}<extra></extra>"))
    fig.update_layout(template=_TEMPLATE, height=120 + 50 * len(labels), margin=dict(t=20, b=40, l=80, r=10),
                      xaxis_title=t("chart.predicted", lang), yaxis_title=t("chart.true", lang))
    fig.update_yaxes(autorange="reversed")
    return fig


def roc_figure(curves: dict[str, dict], lang: str = "en") -> go.Figure:
    fig = go.Figure()
    for lab, c in curves.items():
        fig.add_scatter(x=c["fpr"], y=c["tpr"], mode="lines", name=f"{lab} (AUC {c['roc_auc']:.3f})")
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), showlegend=False)
    fig.update_layout(template=_TEMPLATE, height=320, margin=dict(t=20, b=40, l=50, r=10),
                      xaxis_title=t("chart.fpr", lang), yaxis_title=t("chart.tpr", lang))
    return fig


def pr_figure(curves: dict[str, dict], lang: str = "en") -> go.Figure:
    fig = go.Figure()
    for lab, c in curves.items():
        fig.add_scatter(x=c["recall"], y=c["precision"], mode="lines", name=f"{lab} (AP {c['average_precision']:.3f})")
    fig.update_layout(template=_TEMPLATE, height=320, margin=dict(t=20, b=40, l=50, r=10),
                      xaxis_title=t("chart.recall", lang), yaxis_title=t("chart.precision", lang))
    return fig


def calibration_figure(calibration: dict, lang: str = "en") -> go.Figure:
    bins = [b for b in calibration["bins"] if b["count"]]
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name=t("chart.perfect", lang))
    fig.add_scatter(x=[b["mean_confidence"] for b in bins], y=[b["accuracy"] for b in bins], mode="lines+markers",
                    name=f"ECE {calibration['ece']:.3f}", text=[f"{b['count']:,}" for b in bins])
    fig.update_layout(template=_TEMPLATE, height=320, margin=dict(t=20, b=40, l=50, r=10),
                      xaxis_title=t("chart.confidence", lang), yaxis_title=t("chart.accuracy", lang))
    return fig


def confidence_histogram_figure(counts: list[int], lang: str = "en") -> go.Figure:
    edges = [i / len(counts) for i in range(len(counts) + 1)]
    fig = go.Figure(go.Bar(x=[f"{edges[i]:.1f}–{edges[i + 1]:.1f}" for i in range(len(counts))], y=counts))
    fig.update_layout(template=_TEMPLATE, height=280, margin=dict(t=20, b=40, l=50, r=10),
                      xaxis_title=t("chart.confidence", lang), yaxis_title=t("chart.texts", lang))
    return fig


_RUN_LEGEND = dict(orientation="h", yanchor="top", y=-0.25)  # under the chart: run names are long


def compare_curves_figure(histories: dict[str, list[dict]], lang: str = "en",
                          names: dict[str, str] | None = None) -> go.Figure:
    """Validation macro F1 of several runs over their steps, overlaid, one legend entry per run
    (named by ``names``; a run without evaluations still has its entry)."""
    names = names or {}
    fig = go.Figure()
    for run_id, events in histories.items():
        evals = [e for e in events if e.get("event") == "eval"]
        fig.add_scatter(x=[e["step"] for e in evals], y=[e["metrics"].get("macro_f1") for e in evals],
                        mode="lines+markers", name=names.get(run_id, run_id), showlegend=True)
    fig.update_layout(template=_TEMPLATE, height=360, margin=dict(t=20, b=40, l=50, r=10),
                      xaxis_title=t("chart.step", lang), yaxis_title=t("chart.val_f1", lang),
                      legend=_RUN_LEGEND, legend_title_text=t("results.chart.run", lang))
    return fig


def compare_per_class_figure(per_class: dict[str, dict[str, dict]], lang: str = "en",
                             names: dict[str, str] | None = None) -> go.Figure:
    """Test F1 of each class, one bar per run side by side, one legend entry per run."""
    names = names or {}
    classes = list(dict.fromkeys(label for scores in per_class.values() for label in scores))
    fig = go.Figure()
    for run_id, scores in per_class.items():
        values = [scores[c]["f1"] if c in scores else None for c in classes]
        fig.add_bar(x=classes, y=values, name=names.get(run_id, run_id), showlegend=True,
                    text=[f"{v:.3f}" if v is not None else "" for v in values],
                    textposition="outside", cliponaxis=False)  # above the bar, so an F1 of 0 shows its 0.000
    fig.update_layout(barmode="group", template=_TEMPLATE, height=380, margin=dict(t=20, b=40, l=50, r=10),
                      xaxis_title=t("chart.label", lang), yaxis=dict(title=t("results.chart.test_f1", lang),
                                                                     range=[0, 1]),
                      legend=_RUN_LEGEND, legend_title_text=t("results.chart.run", lang))
    return fig


def label_distribution_figure(label_counts: dict[str, int], lang: str = "en") -> go.Figure:
    fig = go.Figure(go.Bar(x=list(label_counts), y=list(label_counts.values()),
                           text=[f"{v:,}" for v in label_counts.values()], textposition="auto"))
    fig.update_layout(template=_TEMPLATE, height=280, margin=dict(t=20, b=40, l=50, r=10),
                      xaxis_title=t("chart.label", lang), yaxis_title=t("chart.texts", lang))
    return fig


# ----------------------------------------------------------------------------------------
# Trends
# ----------------------------------------------------------------------------------------
SENTIMENT_COLOURS = {"negative": "#d62728", "positive": "#2ca02c"}


def sentiment_share_figure(series: pd.DataFrame, labels: list[str], lang: str = "en", positive: str | None = None,
                           negative: str | None = None) -> go.Figure:
    """Share of each label per period, stacked to 100%; negative red, positive green. A period
    without texts has no bar (a gap), not a drop to 0%."""
    fig = go.Figure()
    for label in labels:
        colour = {negative: SENTIMENT_COLOURS["negative"], positive: SENTIMENT_COLOURS["positive"]}.get(label)
        fig.add_bar(x=series["period"], y=series[f"share_{label}"], name=str(label),
                    marker_color=colour, customdata=series[str(label)],
                    hovertemplate="%{x|%Y-%m-%d}: %{y:.1%} (%{customdata:,})<extra>" + str(label) + "</extra>")
    fig.update_layout(template=_TEMPLATE, height=300, margin=dict(t=20, b=30, l=50, r=10), hovermode="x unified",
                      barmode="stack", bargap=0.1,
                      yaxis=dict(title=t("chart.share", lang), tickformat=".0%", range=[0, 1]),
                      legend_title_text=t("chart.label", lang))
    return fig


def volume_figure(series: pd.DataFrame, spikes: list | None = None, lang: str = "en") -> go.Figure:
    """Texts per period; partial first/last periods drawn paler, volume spikes marked."""
    colors = ["#a7c4e5" if p else "#4c78a8" for p in series.get("partial", [False] * len(series))]
    fig = go.Figure(go.Bar(x=series["period"], y=series["volume"], marker_color=colors, name=t("chart.volume", lang),
                           hovertemplate="%{x|%Y-%m-%d}: %{y:,}<extra></extra>"))
    marks = [s for s in spikes or [] if s.metric == "volume" and s.group is None]
    if marks:
        fig.add_scatter(x=[s.period for s in marks], y=[s.value for s in marks], mode="markers",
                        marker=dict(symbol="triangle-down", size=14, color="#d62728"), name=t("chart.spike", lang))
    fig.update_layout(template=_TEMPLATE, height=260, margin=dict(t=20, b=30, l=50, r=10),
                      yaxis_title=t("chart.volume", lang), showlegend=bool(marks))
    return fig


def net_sentiment_figure(series: pd.DataFrame, spikes: list | None = None, negative_label: str | None = None,
                         lang: str = "en") -> go.Figure:
    """Net sentiment ((positive − negative) / total) per period, with negative-share spikes marked.

    Without a net sentiment (labels that are not positive/negative) the negative share, or
    else the volume, is drawn instead, so the chart is never empty."""
    if "net_sentiment" in series:
        column, title, fmt = "net_sentiment", t("chart.net_sentiment", lang), ".0%"
    elif negative_label is not None:
        column, title, fmt = f"share_{negative_label}", t("chart.negative_share", lang), ".0%"
    else:
        column, title, fmt = "volume", t("chart.volume", lang), ","
    fig = go.Figure(go.Scatter(x=series["period"], y=series[column], mode="lines+markers", name=title,
                               line=dict(color="#4c78a8"), connectgaps=False))
    marks = [s for s in spikes or [] if s.metric == "negative_share" and s.group is None]
    if marks:
        by_period = series.set_index("period")[column]
        fig.add_scatter(x=[s.period for s in marks], y=[by_period.get(s.period) for s in marks], mode="markers",
                        marker=dict(symbol="x", size=14, color="#d62728", line=dict(width=2)),
                        name=t("chart.spike", lang),
                        text=[t("trends.chart.against_usual", lang, value=f"{s.value:.0%}", usual=f"{s.baseline:.0%}")
                              for s in marks],
                        hovertemplate="%{x|%Y-%m-%d}: %{text}<extra></extra>")
    if column == "net_sentiment":
        fig.add_hline(y=0, line_dash="dot", line_color="#999")
    fig.update_layout(template=_TEMPLATE, height=280, margin=dict(t=20, b=30, l=50, r=10),
                      yaxis=dict(title=title, tickformat=fmt))
    return fig


def group_heatmap_figure(group_series: pd.DataFrame, value: str, lang: str = "en", other: str | None = None) -> go.Figure:
    """Groups × periods, coloured by ``value`` (net sentiment, a share or volume); a period
    without texts in a group is an empty cell. ``other`` names the catch-all group, shown in ``lang``."""
    pivot = group_series.pivot(index="group", columns="period", values=value)
    diverging = value == "net_sentiment"
    names = [t("trends.group_other", lang) if g == other else str(g) for g in pivot.index]
    shown = "%{z:,}" if value == "volume" else "%{z:.0%}"
    fig = go.Figure(go.Heatmap(
        z=pivot.to_numpy(), x=pivot.columns, y=names,
        colorscale="RdBu" if diverging else "Reds", zmid=0 if diverging else None,
        hovertemplate="%{y} · %{x|%Y-%m-%d}: " + shown + "<extra></extra>"))
    fig.update_layout(template=_TEMPLATE, height=120 + 28 * len(pivot), margin=dict(t=20, b=30, l=120, r=10))
    return fig


def keywords_figure(keywords: list[dict], lang: str = "en") -> go.Figure:
    """Keywords of a spike, strongest on top, bar length = how over-represented (z-score)."""
    items = list(reversed(keywords))
    fig = go.Figure(go.Bar(
        x=[k["score"] for k in items], y=[k["term"] for k in items], orientation="h",
        customdata=[[k["count"], k["share"], k["baseline_share"]] for k in items],
        hovertemplate="%{y}: z=%{x:.1f}, " + t("trends.chart.keyword_hover", lang, count="%{customdata[0]}",
                                               share="%{customdata[1]:.0%}", before="%{customdata[2]:.0%}")
                      + "<extra></extra>",
        marker_color="#d62728"))
    fig.update_layout(template=_TEMPLATE, height=80 + 24 * len(items), margin=dict(t=10, b=30, l=140, r=10),
                      xaxis_title=t("chart.overrepresented", lang))
    return fig
