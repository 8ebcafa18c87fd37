"""The page of a ground-truth evaluation (:class:`namjax.evaluation.Evaluation`): runs and
summary tables and one motif node's NIV per method, offline."""

from __future__ import annotations

import html

import numpy as np
import plotly.offline

from namjax.views.niv import niv


def evaluation_page(ev) -> str:
    """The HTML page of an :class:`~namjax.evaluation.Evaluation` ``ev``: its runs, its
    summary and, per benchmark, one motif node's NIV for each method side by side (plotly.js
    embedded once)."""
    summary = ev.summary().to_pylist()
    head = ("benchmark", "method", "variant", "metric", "mean ± sd", "seeds", "beats controls")
    cells = []
    for r in summary:
        mean = "nan" if not np.isfinite(r["mean"]) else f"{r['mean']:.3f} ± {r['sd']:.3f}"
        beats = {None: "", True: "yes", False: "no"}[r["beats_controls"]]
        cells.append(
            (r["benchmark"], r["method"], r["variant"], r["metric"], mean, r["seeds"], beats)
        )
    runs = ev.meta.get("runs", [])
    run_head = ("benchmark", "seed", "train acc", "test acc", "bar", "passed", "targets", "seconds")
    run_cells = [
        (
            r["benchmark"],
            r["seed"],
            _fmt(r.get("train_accuracy")),
            _fmt(r.get("test_accuracy")),
            r.get("bar", ""),
            r.get("passed", ""),
            r["targets"],
            _fmt(r.get("seconds"), 1),
        )
        for r in runs
    ]
    figures = []
    for name, (graph, target, atts) in ev.examples.items():
        divs = []
        for method, att in atts.items():
            fig = niv(att, graph, target, hops=min(2, att.depth), top_k=30)
            fig.update_layout(title=f"{method}", width=460, height=460, showlegend=False)
            divs.append(fig.to_html(full_html=False, include_plotlyjs=False))
        figures.append(
            f"<h2>{html.escape(name)}: node {target}</h2><div class='row'>{''.join(divs)}</div>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>namjax evaluation</title>"
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;"
        "font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}.row{display:flex;"
        "flex-wrap:wrap}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
        "<h1>Ground-truth evaluation</h1><p>Means over the seeds whose model passed its accuracy "
        "bar. Controls: random, hop_distance, walk_weight and each method on a randomised model "
        "(<code>:random_model</code>).</p>"
        f"<h2>Runs</h2>{_html_table(run_head, run_cells)}"
        f"<h2>Summary</h2>{_html_table(head, cells)}{''.join(figures)}</body></html>"
    )


def _fmt(x, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _html_table(head, rows) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"
