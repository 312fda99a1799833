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
