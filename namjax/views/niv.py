"""Node Importance Visualization (NIV): interactive Plotly views of NAM attributions.

Three views, each a plain ``plotly.graph_objects.Figure`` (shown inline in Jupyter, written to
HTML/PNG/SVG with :func:`write_figure`):

* :func:`niv`: a target and its neighbours up to ``hops`` away. Marker area is proportional to
  |contribution| (with a size key), fill colour is the node's predicted class, ▲/▼ is the sign,
  the target is ringed, graph edges are drawn, and nodes sit on hop rings (or a seeded spring
  layout). Only the ``top_k`` neighbours by |contribution| are drawn; the figure says how many
  are hidden and what they carry in total.
* :func:`niv_bars`: the top-k contributors of a target as signed bars.
* :func:`niv_paths`: the paths from one source to a target, with their contributions and shares.

Plotly renders labels and hover text as a small HTML subset, so every user-supplied string
(node, class and dataset names) is HTML-escaped before it reaches a figure.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import plotly.graph_objects as go
import scipy.sparse as sp

from namjax.errors import ViewError
from namjax.graph import Graph
from namjax.outputs import check_output_file

# Okabe & Ito's colour-blind-safe palette (black moved last); colours repeat beyond 8 classes.
PALETTE: tuple[str, ...] = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#000000",
)
UNKNOWN_COLOUR = "#BBBBBB"
MAX_DIAMETER = 44.0  # px, the largest |contribution| in a figure
MIN_DIAMETER = 6.0  # px, smaller markers are drawn at this size so they stay hoverable
_SYMBOL = {1: "triangle-up", -1: "triangle-down", 0: "circle"}

Layout = Literal["rings", "spring"]
FORMATS = (".html", ".json", ".png", ".svg", ".pdf", ".htm", ".jpg", ".jpeg", ".webp")
"""Output formats of :func:`write_figure`, by suffix."""


def class_colour(cls_id: int) -> str:
    """The fixed fill colour of class ``cls_id`` (grey for ``-1``, "not predicted")."""
    return UNKNOWN_COLOUR if cls_id < 0 else PALETTE[cls_id % len(PALETTE)]


def _esc(text: object) -> str:
    return html.escape(str(text), quote=False)


def _node_text(graph: Graph, node: int) -> str:
    """``node 12`` or ``node 12 (name)``, escaped."""
    label = graph.node_label(node)
    return f"node {node}" if label == str(node) else f"node {node} ({_esc(label)})"


# ------------------------------------------------------------------------------ data access
def _target_row(attribution, target: int) -> int:
    rows = np.flatnonzero(np.asarray(attribution.targets) == target)
    if rows.size == 0:
        shown = ", ".join(str(t) for t in np.asarray(attribution.targets)[:5])
        more = ", ..." if len(attribution.targets) > 5 else ""
        raise ViewError(
            f"node {target} is not among the attributed targets ({shown}{more}); "
            "run nam() with this target"
        )
    return int(rows[0])


def _class_slot(attribution, row: int, cls: int | None) -> tuple[int, int]:
    """Slot index into ``contributions[:, q]`` and the class id it holds."""
    classes = np.asarray(attribution.classes)[row]
    cls = int(attribution.predicted[row]) if cls is None else int(cls)
    slots = np.flatnonzero(classes == cls)
    if slots.size == 0:
        raise ViewError(
            f"class {cls} was not attributed for node {int(attribution.targets[row])} "
            f"(attributed: {', '.join(str(int(c)) for c in classes)}); run nam(classes='all')"
        )
    return int(slots[0]), cls


def _check_class(graph: Graph, cls: int | None) -> None:
    if cls is not None and not 0 <= cls < graph.num_classes:
        raise ViewError(
            f"class {cls} is out of range: {graph.name} has classes 0..{graph.num_classes - 1}"
        )


def _check_graph(attribution, graph: Graph) -> None:
    attribution.check(graph)


def predicted_classes(
    attribution, graph: Graph, predictions: np.ndarray | None = None
) -> np.ndarray:
    """``(N,)`` predicted class per node, ``-1`` where unknown.

    ``predictions`` may be ``(N,)`` class ids or ``(N, C)`` logits; without it the predictions
    stored in ``attribution`` for its targets are used (run NAM for all nodes to colour every node).
    """
    if predictions is None:
        out = np.full(graph.num_nodes, -1, np.int64)
        out[np.asarray(attribution.targets)] = np.asarray(attribution.predicted)
        return out
    p = np.asarray(predictions)
    if p.ndim == 2:
        p = p.argmax(axis=1)
    if p.shape != (graph.num_nodes,):
        raise ViewError(
            f"predictions must have shape ({graph.num_nodes},) or ({graph.num_nodes}, C), "
            f"got {np.shape(predictions)}"
        )
    if p.size and (p.min() < -1 or p.max() >= graph.num_classes):
        raise ViewError(f"predictions hold class ids outside -1..{graph.num_classes - 1}")
    return p.astype(np.int64)


class _Sources(NamedTuple):
    """One target's sources and their contributions to one class."""

    nodes: np.ndarray  # (n,) source ids, the target first
    hops: np.ndarray  # (n,) hop distances
    values: np.ndarray  # (n,) contributions to class ``cls``
    cls: int
    logit: float  # the target's logit for ``cls``


def _sources(attribution, target: int, cls: int | None) -> _Sources:
    row = _target_row(attribution, target)
    slot, cls = _class_slot(attribution, row, cls)
    sources, hops, contributions = attribution.for_target(target)
    return _Sources(
        np.asarray(sources, np.int64),
        np.asarray(hops, np.int64),
        np.asarray(contributions, np.float64)[:, slot],
        cls,
        float(attribution.logits[row, slot]),
    )


def _top(values: np.ndarray, k: int | None) -> np.ndarray:
    """Indices of the ``k`` largest ``|values|`` (all when ``k`` is None), largest first."""
    order = np.argsort(-np.abs(values), kind="stable")
    return order if k is None else order[:k]


# ------------------------------------------------------------------------------ layout
def ring_layout(nodes: np.ndarray, hops: np.ndarray, order: np.ndarray, graph: Graph) -> np.ndarray:
    """``(n, 2)`` positions: ``nodes[0]`` (hop 0) at the centre, hop ``h`` on a ring of radius h.

    Hop-1 nodes are spread evenly in ``order`` (a sort key, e.g. class then |contribution|);
    each further ring is ordered by the mean angle of a node's neighbours on the ring inside it,
    so a node sits near the nodes that connect it to the target. Deterministic.
    """
    n = len(nodes)
    pos = np.zeros((n, 2))
    t = np.zeros(n)  # position along the ring in [0, 1), clockwise from the top
    adj = graph.adjacency[nodes][:, nodes].tocsr()
    for h in range(1, int(hops.max(initial=0)) + 1):
        ring = np.flatnonzero(hops == h)
        if h == 1:
            ranked = ring[np.argsort(order[ring], kind="stable")]
        else:
            inner = np.flatnonzero(hops == h - 1)
            theta = 2 * np.pi * t[inner]
            link = (adj[ring][:, inner] > 0).astype(np.float64)
            sx, sy = link @ np.cos(theta), link @ np.sin(theta)
            anchor = np.mod(np.arctan2(sy, sx) / (2 * np.pi), 1.0)
            anchor[np.asarray(link.sum(axis=1)).ravel() == 0] = np.inf
            ranked = ring[np.lexsort((order[ring], anchor))]
        t[ranked] = (np.arange(len(ranked)) + 0.5) / len(ranked)
        angle = np.pi / 2 - 2 * np.pi * t[ranked]
        pos[ranked] = h * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return pos


def _ring_order(classes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``(n,)`` sort key for the hop-1 ring: grouped by class; inside a class the largest
    |contribution| nodes are spread over the class's arc (golden-ratio sequence of their
    ranks) so that big markers and their labels do not pile up side by side."""
    rank = np.empty(len(values), np.int64)
    by_class = np.lexsort((-np.abs(values), classes))
    starts = np.searchsorted(classes[by_class], classes[by_class])
    rank[by_class] = np.arange(len(values)) - starts
    spread = np.mod(rank * 0.6180339887498949, 1.0)
    key = np.empty(len(values), np.int64)
    key[np.lexsort((spread, classes))] = np.arange(len(values))
    return key


def _outward(pos: np.ndarray) -> np.ndarray:
    """Text position pointing away from the centre for each ``(x, y)``."""
    radius = np.maximum(np.hypot(pos[:, 0], pos[:, 1]), 1e-12)
    c, s = pos[:, 0] / radius, pos[:, 1] / radius
    side = np.where(c >= 0, "middle right", "middle left")
    out = np.where(s > 0.5, "top center", np.where(s < -0.5, "bottom center", side))
    out[np.hypot(pos[:, 0], pos[:, 1]) < 1e-9] = "top center"
    return out.astype(object)


def _spring_layout(nodes: np.ndarray, start: np.ndarray, graph: Graph, seed: int) -> np.ndarray:
    import networkx as nx

    sub = nx.from_scipy_sparse_array(graph.adjacency[nodes][:, nodes])
    init = {i: start[i] for i in range(len(nodes))}
    pos = nx.spring_layout(sub, pos=init, fixed=[0], seed=seed, k=1.0 / np.sqrt(len(nodes)))
    return np.array([pos[i] for i in range(len(nodes))])


def _diameter(magnitude: np.ndarray, scale: float) -> np.ndarray:
    """Marker diameters in px with area ∝ magnitude; ``scale`` maps to ``MAX_DIAMETER``."""
    d = MAX_DIAMETER * np.sqrt(np.abs(magnitude) / scale) if scale > 0 else np.zeros_like(magnitude)
    return np.maximum(d, MIN_DIAMETER)


def _size_key(scale: float) -> list[float]:
    """Up to three round |contribution| values for the size key, largest first."""
    values = []
    for v in (scale, scale / 4, scale / 16):
        r = float(f"{v:.1g}")
        if r > 0 and r not in values and _diameter(np.array([r]), scale)[0] > MIN_DIAMETER:
            values.append(r)
    return values


# ------------------------------------------------------------------------------ views
def _legend_traces(classes: list[int], graph: Graph) -> list[go.Scatter]:
    """One legend entry per class (a marker-less trace sharing the class's legend group)."""
    return [
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={"color": class_colour(c), "size": 12, "symbol": "circle"},
            name=_esc(graph.class_label(c)) if c >= 0 else "prediction not computed",
            legendgroup=f"class{c}",
            legendrank=100 + c if c >= 0 else 999,
            hoverinfo="skip",
        )
        for c in classes
    ]


def _hover(
    graph: Graph,
    nodes: np.ndarray,
    hops: np.ndarray,
    values: np.ndarray,
    predicted: np.ndarray,
    total: float,
    about: str,
) -> list[str]:
    lines = []
    for v, h, c in zip(nodes.tolist(), hops.tolist(), values.tolist(), strict=True):
        share = f"{100 * c / total:+.1f}% of Σ|C|" if total > 0 else "n/a"
        lines.append(
            f"<b>{_node_text(graph, v)}</b><br>hop {h}<br>"
            f"true class: {_esc(graph.class_label(int(graph.labels[v])))}<br>"
            f"predicted: "
            f"{_esc(graph.class_label(int(predicted[v]))) if predicted[v] >= 0 else 'not computed'}"
            f"<br>contribution to {about}: {c:+.4g}<br>share: {share}"
        )
    return lines


def niv(
    attribution,
    graph: Graph,
    target: int,
    hops: int = 1,
    *,
    cls: int | None = None,
    top_k: int | None = 60,
    predictions: np.ndarray | None = None,
    layout: Layout = "rings",
    labels: int = 10,
    seed: int = 0,
) -> go.Figure:
    """The NIV graph of ``target``: its neighbours up to ``hops`` away and their contributions.

    Args:
        attribution: an :class:`namjax.nam.Attribution` covering ``target``.
        graph: the graph it was computed on.
        target: the node to explain.
        hops: neighbourhood radius, 1..K.
        cls: the class whose score is explained; default the target's predicted class.
        top_k: how many neighbours to draw, largest |contribution| first (``None``: all);
            the rest are hidden and summarised in the subtitle.
        predictions: ``(N,)`` class ids or ``(N, C)`` logits colouring every node; default the
            predictions stored in ``attribution`` (nodes that are not targets there are grey).
        layout: ``"rings"`` (hop rings, deterministic) or ``"spring"`` (seeded force layout).
        labels: how many of the largest neighbours get a text label (the target always does).
        seed: seed of the spring layout.

    Returns:
        A figure whose node markers are one ``go.Scatter`` per predicted class (uid
        ``niv-nodes-<class>``, the target first in its trace), ``1 + min(top_k, #neighbours)``
        markers in all; ``layout.meta`` holds the view, target, class and shown/hidden counts.
    """
    _check_graph(attribution, graph)
    target = int(graph.check_nodes(target, "target")[0])
    if not 1 <= hops <= attribution.depth:
        raise ViewError(
            f"hops must be between 1 and the model depth {attribution.depth}, got {hops}"
        )
    if top_k is not None and top_k < 0:
        raise ViewError(f"top_k must be non-negative, got {top_k}")
    if layout not in ("rings", "spring"):
        raise ViewError(f"layout must be 'rings' or 'spring', got {layout!r}")
    _check_class(graph, cls)
    src = _sources(attribution, target, cls)
    predicted = predicted_classes(attribution, graph, predictions)
    total = float(np.abs(src.values).sum())

    near = np.flatnonzero((src.nodes != target) & (src.hops <= hops))
    keep = near[_top(src.values[near], top_k)]
    hidden = np.setdiff1d(near, keep)
    idx = np.concatenate([np.flatnonzero(src.nodes == target), keep])
    nodes, node_hops, values = src.nodes[idx], src.hops[idx], src.values[idx]

    pcls = predicted[nodes]
    order = _ring_order(pcls, values)
    pos = ring_layout(nodes, node_hops, order, graph)
    if layout == "spring":
        pos = _spring_layout(nodes, pos, graph, seed)

    scale = float(np.abs(values).max(initial=0.0))
    diameter = _diameter(values, scale)
    cls_name = _esc(graph.class_label(src.cls))
    labelled = set((1 + _top(values[1:], labels)).tolist())  # the halo labels the target
    markers = {
        "size": diameter,
        "symbol": np.array([_SYMBOL[int(v)] for v in np.sign(values)], dtype=object),
        "textposition": _outward(pos),
        "text": np.array(
            [_esc(graph.node_label(v)) if i in labelled else "" for i, v in enumerate(nodes)],
            dtype=object,
        ),
        "hover": np.array(
            _hover(
                graph,
                nodes,
                node_hops,
                values,
                predicted,
                total,
                f"class {cls_name} of node {target}",
            ),
            dtype=object,
        ),
    }
    present = sorted(set(pcls.tolist()))
    fig = go.Figure(
        [
            _edge_trace(nodes, pos, graph),
            _halo_trace(pos[0], diameter[0], graph, target),
            *(_class_trace(c, pcls == c, pos, markers) for c in present),
            *_legend_traces(present, graph),
            *_sign_key(),
            _size_key_trace(scale),
        ]
    )

    hidden_note = ""
    if hidden.size:
        share = 100 * np.abs(src.values[hidden]).sum() / total if total > 0 else 0.0
        hidden_note = (
            f"; {hidden.size} more hidden (sum {src.values[hidden].sum():+.3g}, "
            f"{share:.1f}% of Σ|C|)"
        )
    true = graph.class_label(int(graph.labels[target]))
    fig.update_layout(
        title={
            "text": f"NIV: {_esc(graph.name)} {_node_text(graph, target)}, "
            f"class {cls_name} (true: {_esc(true)})",
            "subtitle": {
                "text": f"contributions to score {src.logit:.3g} from the {keep.size} largest of "
                f"{near.size} neighbours within {hops} hop{'s' if hops > 1 else ''}{hidden_note}"
            },
        },
        template="simple_white",
        width=950,
        height=780,
        hovermode="closest",
        legend={"x": 0.81, "y": 1.0, "xanchor": "left", "itemclick": "toggleothers"},
        xaxis={"visible": False, "domain": [0.0, 0.79]},
        yaxis={"visible": False, "scaleanchor": "x"},
        xaxis2={"visible": False, "domain": [0.81, 1.0], "range": [-0.5, 3.0], "fixedrange": True},
        yaxis2={"visible": False, "domain": [0.0, 0.3], "range": [-0.5, 3.2], "fixedrange": True},
        annotations=[
            {
                "text": "marker area ∝ |contribution|",
                "xref": "x2",
                "yref": "y2",
                "x": -0.3,
                "y": 3.0,
                "showarrow": False,
                "xanchor": "left",
            }
        ],
        margin={"l": 20, "r": 20, "t": 90, "b": 20},
        meta={
            "view": "niv",
            "target": target,
            "class": src.cls,
            "hops": hops,
            "shown": int(keep.size),
            "hidden": int(hidden.size),
        },
    )
    if layout == "rings":
        for h in range(1, int(node_hops.max(initial=0)) + 1):
            fig.add_shape(
                type="circle",
                x0=-h,
                y0=-h,
                x1=h,
                y1=h,
                line={"color": "#CCCCCC", "width": 1, "dash": "dot"},
                fillcolor="rgba(0, 0, 0, 0)",
                layer="below",
            )
    return fig


def _class_trace(cls: int, mask: np.ndarray, pos: np.ndarray, markers: dict) -> go.Scatter:
    """The node markers of one predicted class (``mask`` selects them)."""
    return go.Scatter(
        x=pos[mask, 0],
        y=pos[mask, 1],
        mode="markers+text",
        marker={
            "size": markers["size"][mask],
            "color": class_colour(cls),
            "symbol": markers["symbol"][mask].tolist(),
            "line": {"width": 1, "color": "#333333"},
            "opacity": 0.9,
        },
        text=markers["text"][mask].tolist(),
        textposition=markers["textposition"][mask].tolist(),
        textfont={"size": 10},
        hovertext=markers["hover"][mask].tolist(),
        hoverinfo="text",
        legendgroup=f"class{cls}",
        showlegend=False,
        uid=f"niv-nodes-{cls}",
    )


def _halo_trace(xy: np.ndarray, diameter: float, graph: Graph, target: int) -> go.Scatter:
    """The labelled ring around the target."""
    return go.Scatter(
        x=[xy[0]],
        y=[xy[1]],
        mode="markers+text",
        text=[_esc(graph.node_label(target))],
        textposition="top center",
        textfont={"size": 12},
        marker={
            "size": diameter + 16,
            "symbol": "circle-open",
            "color": "#000000",
            "line": {"width": 3},
        },
        name=f"target: {_node_text(graph, target)}",
        legendrank=1,
        hoverinfo="skip",
        uid="niv-halo",
    )


def _edge_trace(nodes: np.ndarray, pos: np.ndarray, graph: Graph) -> go.Scatter:
    """Graph edges among the drawn nodes as one line trace (NaN separates the segments)."""
    sub = sp.triu(graph.adjacency[nodes][:, nodes], k=1).tocoo()
    xs = np.full((sub.nnz, 3), np.nan)
    ys = np.full((sub.nnz, 3), np.nan)
    xs[:, 0], xs[:, 1] = pos[sub.row, 0], pos[sub.col, 0]
    ys[:, 0], ys[:, 1] = pos[sub.row, 1], pos[sub.col, 1]
    return go.Scatter(
        x=xs.ravel(),
        y=ys.ravel(),
        mode="lines",
        line={"width": 0.7, "color": "#9A9A9A"},
        hoverinfo="skip",
        showlegend=False,
        uid="niv-edges",
    )


def _sign_key() -> list[go.Scatter]:
    return [
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={"symbol": _SYMBOL[s], "size": 12, "color": "#666666"},
            name=name,
            legendgroup="sign",
            legendrank=50 + i,
            hoverinfo="skip",
        )
        for i, (s, name) in enumerate(
            ((1, "raises the class score"), (-1, "lowers the class score"))
        )
    ]


def _size_key_trace(scale: float) -> go.Scatter:
    values = _size_key(scale)
    return go.Scatter(
        x=[0.0] * len(values),
        y=[2.2 - 0.9 * i for i in range(len(values))],
        xaxis="x2",
        yaxis="y2",
        mode="markers+text",
        marker={
            "size": _diameter(np.array(values), scale) if values else [],
            "color": "#FFFFFF",
            "symbol": "triangle-up",
            "line": {"width": 1, "color": "#333333"},
        },
        text=[f"|C| = {v:g}" for v in values],
        textposition="middle right",
        hoverinfo="skip",
        showlegend=False,
        cliponaxis=False,
        uid="niv-sizekey",
    )


def niv_bars(
    attribution,
    graph: Graph,
    target: int,
    top_k: int = 10,
    *,
    cls: int | None = None,
    predictions: np.ndarray | None = None,
) -> go.Figure:
    """The ``top_k`` largest contributors (by |contribution|, the target itself included) as bars.

    Bars point right for positive and left for negative contributions; the fill is the
    contributor's predicted class and the text its signed share of Σ|C|.
    """
    _check_graph(attribution, graph)
    target = int(graph.check_nodes(target, "target")[0])
    if top_k < 1:
        raise ViewError(f"top_k must be at least 1, got {top_k}")
    _check_class(graph, cls)
    src = _sources(attribution, target, cls)
    predicted = predicted_classes(attribution, graph, predictions)
    total = float(np.abs(src.values).sum())
    top = _top(src.values, top_k)
    nodes, node_hops, node_values = src.nodes[top], src.hops[top], src.values[top]
    about = f"class {_esc(graph.class_label(src.cls))} of node {target}"
    fig = go.Figure(
        [
            go.Bar(
                x=node_values,
                y=[
                    f"{_node_text(graph, v)} · {'target' if h == 0 else f'hop {h}'}"
                    for v, h in zip(nodes, node_hops, strict=True)
                ],
                orientation="h",
                marker={
                    "color": [class_colour(int(predicted[v])) for v in nodes],
                    "line": {"width": 1, "color": "#333333"},
                },
                text=[f"{100 * c / total:+.1f}%" if total > 0 else "" for c in node_values],
                textposition="outside",
                cliponaxis=False,
                hovertext=_hover(graph, nodes, node_hops, node_values, predicted, total, about),
                hoverinfo="text",
                showlegend=False,
                uid="niv-bars",
            ),
            *_legend_traces(sorted(set(predicted[nodes].tolist())), graph),
        ]
    )
    fig.update_layout(
        title={
            "text": f"Top {len(top)} contributors to {about}",
            "subtitle": {"text": f"of {len(src.nodes)} sources; Σ|C| = {total:.3g}"},
        },
        template="simple_white",
        height=160 + 26 * len(top),
        xaxis={"title": {"text": "contribution", "standoff": 5}, "zeroline": True},
        yaxis={"autorange": "reversed"},
        margin={"t": 90},
        meta={"view": "bars", "target": target, "class": src.cls, "shown": int(top.size)},
    )
    return fig


def niv_paths(
    model, graph: Graph, target: int, source: int, *, cls: int | None = None, top_k: int = 20
) -> go.Figure:
    """The paths from ``source`` to ``target`` through the GCN and what each contributes.

    Uses :func:`namjax.paths`; shows the ``top_k`` largest paths by |contribution| to class
    ``cls`` (default: the target's predicted class) with their signed share of the paths' Σ|C|.
    """
    from namjax.model import predict
    from namjax.walks import paths

    target = int(graph.check_nodes(target, "target")[0])
    source = int(graph.check_nodes(source, "source")[0])
    if top_k < 1:
        raise ViewError(f"top_k must be at least 1, got {top_k}")
    _check_class(graph, cls)
    if cls is None:
        cls = int(np.asarray(predict(model, graph))[target].argmax())
    found = paths(model, graph, target, source)
    if not found:
        raise ViewError(
            f"no active path of at most K steps joins node {source} to node {target} "
            "(they are too far apart, or every path crosses only inactive units)"
        )
    walks = [walk for walk, _ in found]  # source → ... → target
    values = np.array([float(np.asarray(c)[cls]) for _, c in found])
    total = float(np.abs(values).sum())
    top = _top(values, top_k)
    labels = [" → ".join(str(v) for v in walks[i]) for i in top]  # ids: unique categories
    about = f"class {_esc(graph.class_label(cls))} of node {target}"
    hidden = len(values) - len(top)
    fig = go.Figure(
        go.Bar(
            x=values[top],
            y=labels,
            orientation="h",
            marker={"color": ["#0072B2" if v >= 0 else "#D55E00" for v in values[top]]},
            text=[f"{100 * v / total:+.1f}%" if total > 0 else "" for v in values[top]],
            textposition="outside",
            cliponaxis=False,
            hovertext=[
                "path "
                + " → ".join(_node_text(graph, v) for v in walks[i])
                + f"<br>contribution to {about}: {values[i]:+.4g}"
                for i in top
            ],
            hoverinfo="text",
            uid="niv-paths",
        )
    )
    fig.update_layout(
        title={
            "text": f"Paths from {_node_text(graph, source)} to {_node_text(graph, target)}",
            "subtitle": {
                "text": f"contribution to {about}: Σ over {len(values)} paths = "
                f"{values.sum():+.4g}" + (f" ({hidden} smallest not shown)" if hidden else "")
            },
        },
        template="simple_white",
        height=160 + 26 * len(top),
        xaxis={"title": {"text": "contribution (blue: raises, vermillion: lowers)"}},
        yaxis={"autorange": "reversed"},
        margin={"t": 90},
        meta={
            "view": "paths",
            "target": target,
            "source": source,
            "class": cls,
            "paths": len(values),
            "shown": int(top.size),
        },
    )
    return fig


# ------------------------------------------------------------------------------ output
def write_figure(fig: go.Figure, path: str | Path, *, cdn: bool = False) -> Path:
    """Write ``fig`` by suffix: ``.html`` (plotly.js embedded, or loaded from its CDN with
    ``cdn=True``), ``.json``, or a static ``.png``/``.svg``/``.pdf`` (needs ``kaleido``)."""
    path = Path(path)
    check_output_file(path, FORMATS)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in {".html", ".htm"}:
        fig.write_html(
            path,
            include_plotlyjs="cdn" if cdn else True,
            full_html=True,
            config={"displaylogo": False, "responsive": True},
        )
    elif suffix == ".json":
        fig.write_json(path)
    else:
        try:
            fig.write_image(path)
        except (ImportError, ValueError, RuntimeError) as e:
            raise ViewError(
                f"cannot write {path.name} ({type(e).__name__}): static images need the kaleido "
                "package (pip install kaleido) and a Chrome browser; write .html instead"
            ) from None
    return path
