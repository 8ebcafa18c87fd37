"""Deletion-curve figures and files: the views of a :class:`~namjax.perturb.Perturbation`.

:func:`deletion_figure` draws the paper's Fig. 6 (accuracy against the fraction of neighbours
deleted) and two more panels (predictions unchanged, drop of the predicted class's
probability), random rankings as mean ± sd; each legend entry carries the ranking's accuracy
AUC (lower is better: a ranking that deletes the nodes that matter first makes accuracy fall
fastest). :func:`write_deletion` writes the curves table and the figure into a directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from namjax.outputs import write_table
from namjax.perturb import RANKINGS, Perturbation

RANKING_COLOURS: dict[str, str] = {
    "nam": "#D62728",
    "nam_reversed": "#E65100",
    "nam_abs": "#9467BD",
    "saliency": "#1F77B4",
    "integrated_gradients": "#00838F",
    "deeplift": "#C2185B",
    "smoothgrad": "#827717",
    "occlusion": "#8C564B",
    "structure": "#2CA02C",
    "random": "#6D6D6D",
}
"""One distinct colour per ranking of :data:`namjax.perturb.RANKINGS`, each at least 3:1
against white (WCAG 2.1 non-text contrast); rankings without an entry cycle through
:data:`EXTRA_COLOURS`."""
EXTRA_COLOURS = ("#000000", "#5D4037", "#283593", "#33691E")
DELETION_FILES = frozenset({"curves.parquet", "deletion.html", "deletion.png"})
"""The files :func:`write_deletion` writes."""
METRICS = {
    "accuracy": "Accuracy",
    "unchanged": "Predictions unchanged",
    "prob_drop": "Drop of P(predicted class)",
}


def ranking_colour(name: str) -> str:
    """The line colour of ranking ``name``."""
    if name in RANKING_COLOURS:
        return RANKING_COLOURS[name]
    others = [*sorted(set(RANKINGS) - set(RANKING_COLOURS)), name]
    return EXTRA_COLOURS[others.index(name) % len(EXTRA_COLOURS)]


def _legend_name(name: str, runs: int, auc: dict[str, float]) -> str:
    """``nam · AUC 0.676`` or ``random (mean ± sd of 5) · AUC 0.767 ± 0.005``."""
    if runs > 1:
        return f"{name} (mean ± sd of {runs}) · AUC {auc[name]:.3f} ± {auc['random_sd']:.3f}"
    return f"{name} · AUC {auc[name]:.3f}"


def deletion_figure(
    result: Perturbation, title: str | None = None, *, dataset: str | None = None
) -> go.Figure:
    """Plotly figure of ``result``'s deletion curves: accuracy, fraction unchanged and
    probability drop against ``p``; random rankings as mean ± sd over their seeds.

    The default title names ``dataset`` (when given), the mode and the number of targets; the
    subtitle always does. Legend entries carry each ranking's accuracy AUC
    (:meth:`~namjax.perturb.Perturbation.auc`; lower is better for deletion).
    """
    cols = result.curves()
    auc = result.auc()
    fig = make_subplots(rows=1, cols=3, subplot_titles=list(METRICS.values()))
    x = 100 * result.levels
    for name in dict.fromkeys(r for r, _ in result.rankings):
        color = ranking_colour(name)
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
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=mean,
                    mode="lines+markers",
                    name=_legend_name(name, len(y), auc),
                    line={"color": color, "width": 2},
                    marker={"size": 5},
                    legendgroup=name,
                    showlegend=col == 1,
                    hovertemplate=f"{name}: %{{y:.3f}} at p=%{{x:.0f}}%<extra></extra>",
                    uid=f"deletion-{metric}-{name}",
                ),
                row=1,
                col=col,
            )
    where = f" on {dataset}" if dataset else ""
    about = f"{result.mode} mode, {len(result.targets)} targets"
    fig.update_xaxes(title_text="neighbours deleted, p (%)")
    fig.update_layout(
        title={
            "text": title or f"Deletion curves{where}: {about}",
            "subtitle": {
                "text": f"{dataset + ', ' if dataset else ''}{about}, {len(result.levels)} "
                "levels; the highest-ranked neighbours are deleted first, so the lower a "
                "ranking's accuracy curve (and AUC), the better it found what matters"
            },
        },
        legend={"title": {"text": "ranking · accuracy AUC (lower is better)"}},
        template="simple_white",
        height=480,
        width=1400,
        margin={"t": 110},
        meta={
            "view": "deletion",
            "dataset": dataset,
            "mode": result.mode,
            "targets": len(result.targets),
            "auc": auc,
        },
    )
    return fig


def write_deletion(
    result: Perturbation,
    out_dir: str | Path,
    title: str | None = None,
    dataset: str | None = None,
) -> dict[str, Path | str]:
    """Write ``curves.parquet``, ``deletion.html`` and, when a static renderer (kaleido) is
    available, ``deletion.png`` into ``out_dir``; returns the paths written, and
    ``png_skipped``, a one-line reason, when no PNG was written. ``title`` and ``dataset`` are
    those of :func:`deletion_figure`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "curves.parquet", result.to_table())
    fig = deletion_figure(result, title, dataset=dataset)
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
