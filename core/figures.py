"""Plotly figure builders. Pages only place the figures these return."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from core.i18n import t

_TEMPLATE = "plotly_white"


def class_balance_figure(split_counts: dict[str, dict[str, int]], labels: list[str], lang: str = "en") -> go.Figure:
    """One bar group per split, one bar per label."""
    fig = go.Figure()
    splits = list(split_counts)
    for label in labels:
        fig.add_bar(name=label, x=splits, y=[split_counts[s].get(label, 0) for s in splits])
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
                               hovertemplate="true %{y} → predicted %{x}: %{text}<extra></extra>"))
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


def compare_curves_figure(histories: dict[str, list[dict]], lang: str = "en") -> go.Figure:
    """Validation macro F1 of several runs over their steps, overlaid."""
    fig = go.Figure()
    for run_id, events in histories.items():
        evals = [e for e in events if e.get("event") == "eval"]
        fig.add_scatter(x=[e["step"] for e in evals], y=[e["metrics"].get("macro_f1") for e in evals],
                        mode="lines+markers", name=run_id)
    fig.update_layout(template=_TEMPLATE, height=300, margin=dict(t=20, b=40, l=50, r=10),
                      xaxis_title=t("chart.step", lang), yaxis_title=t("chart.val_f1", lang))
    return fig


def label_distribution_figure(label_counts: dict[str, int], lang: str = "en") -> go.Figure:
    fig = go.Figure(go.Bar(x=list(label_counts), y=list(label_counts.values()),
                           text=[f"{v:,}" for v in label_counts.values()], textposition="auto"))
    fig.update_layout(template=_TEMPLATE, height=280, margin=dict(t=20, b=40, l=50, r=10),
                      xaxis_title=t("chart.label", lang), yaxis_title=t("chart.texts", lang))
    return fig
