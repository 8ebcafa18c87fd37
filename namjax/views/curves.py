"""Deletion-curve figures and files: the views of a :class:`~namjax.perturb.Perturbation`.

:func:`deletion_figure` draws the paper's Fig. 6 (accuracy against the fraction of neighbours
deleted) and two more panels (predictions unchanged, drop of the predicted class's
probability), random rankings as mean ± sd; :func:`write_deletion` writes the curves table and
the figure into a directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from namjax.outputs import write_table
from namjax.perturb import RANKINGS, Perturbation

PALETTE = ("#d62728", "#ff7f0e", "#9467bd", "#2ca02c", "#1f77b4", "#8c564b", "#7f7f7f")
DELETION_FILES = frozenset({"curves.parquet", "deletion.html", "deletion.png"})
"""The files :func:`write_deletion` writes."""
METRICS = {
    "accuracy": "Accuracy",
    "unchanged": "Predictions unchanged",
    "prob_drop": "Drop of P(predicted class)",
}


def deletion_figure(result: Perturbation, title: str | None = None) -> go.Figure:
    """Plotly figure of ``result``'s deletion curves: accuracy, fraction unchanged and
    probability drop against ``p``; random rankings as mean ± sd over their seeds."""
    cols = result.curves()
    fig = make_subplots(rows=1, cols=3, subplot_titles=list(METRICS.values()))
    x = 100 * result.levels
    for name in dict.fromkeys(r for r, _ in result.rankings):
        color = PALETTE[list(RANKINGS).index(name) % len(PALETTE)]
        for col, metric in enumerate(METRICS, start=1):
            y = cols[metric][cols["ranking"] == name].reshape(-1, len(result.levels))
            mean = y.mean(axis=0)
            if len(y) > 1:
                sd = y.std(axis=0, ddof=1)
                fig.add_trace(
                    go.Scatter(
                        x=np.concatenate([x, x[::-1]]),
                        y=np.concatenate([mean + sd, (mean - sd)[::-1]]),
                        fill="toself",
                        fillcolor=color,
                        opacity=0.2,
                        line={"width": 0},
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=name,
                    ),
                    row=1,
                    col=col,
                )
            label = f"{name} (mean ± sd of {len(y)})" if len(y) > 1 else name
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=mean,
                    mode="lines+markers",
                    name=label,
                    line={"color": color},
                    legendgroup=name,
                    showlegend=col == 1,
                    hovertemplate=f"{name}: %{{y:.3f}} at p=%{{x:.0f}}%<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="neighbours deleted, p (%)")
    fig.update_layout(
        title=title or f"Deletion curves ({result.mode} mode, {len(result.targets)} targets)",
        template="plotly_white",
        height=450,
        width=1350,
    )
    return fig


def write_deletion(
    result: Perturbation, out_dir: str | Path, title: str | None = None
) -> dict[str, Path | str]:
    """Write ``curves.parquet``, ``deletion.html`` and, when a static renderer (kaleido) is
    available, ``deletion.png`` into ``out_dir``; returns the paths written, and
    ``png_skipped``, a one-line reason, when no PNG was written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "curves.parquet", result.to_table())
    fig = deletion_figure(result, title)
    fig.write_html(out / "deletion.html", include_plotlyjs=True, full_html=True)
    paths: dict[str, Path | str] = {"curves": out / "curves.parquet", "html": out / "deletion.html"}
    try:
        fig.write_image(out / "deletion.png", scale=2)
        paths["png"] = out / "deletion.png"
    except Exception as e:  # kaleido missing, or unable to start its browser
        paths["png_skipped"] = (
            f"deletion.png not written: no static image renderer ({type(e).__name__}); "
            "install kaleido for PNG output"
        )
    return paths
