"""Node Importance Visualization (NIV): interactive Plotly views of NAM attributions.

Three views, each a plain ``plotly.graph_objects.Figure`` (shown inline in Jupyter, written to
HTML/PNG/SVG with :func:`write_figure`):

* :func:`niv`: a target and its neighbours up to ``hops`` away. Marker area is proportional to
  |contribution| (with a size key), fill colour is the node's predicted class, the sign is
  ▲/▼ and the outline (black: raises, white ring inside the black rim: lowers), the target is
  ringed, training nodes are circled, graph edges are drawn, and nodes sit on labelled hop
  rings (or a seeded spring layout). Only the ``top_k`` neighbours by |contribution| are
  drawn, plus faded *bridge* nodes where the top k hides the node joining a drawn one to the
  target (so no node floats); the subtitle says how many are hidden, what they carry, and
  splits the score into self, 1-hop, ..., bias.
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
# WCAG 2.1 contrast on white (non-text objects need 3:1): #E69F00 2.25, #56B4E9 2.31,
# #F0E442 1.32 and UNKNOWN_COLOUR 1.92 fail, the others pass (tests/test_niv.py computes
# them). The hues stay; every node marker sits on a black rim (RIM) and every class swatch is
# outlined, so each one stands out from the white background whatever its fill.
MAX_DIAMETER = 44.0  # px, the largest |contribution| in a figure
MIN_DIAMETER = 6.0  # px, smaller markers are drawn at this size so they stay hoverable
_SYMBOL = {1: "triangle-up", -1: "triangle-down", 0: "circle"}
OUTLINE = {1: "#000000", -1: "#FFFFFF", 0: "#777777"}
"""The sign's second cue: the marker's outline (drawn inside the black rim)."""
OUTLINE_WIDTH = 1.0  # px
RIM = "#000000"
RIM_EXTRA = 6.0  # px: the rim marker's size exceeds the node marker's by this much
"""A plotly triangle of size s has inradius s/4, so the rim shows a (RIM_EXTRA/4 -
OUTLINE_WIDTH/2) = 1 px black band beyond the 1 px outline, on every side, at any size."""
BRIDGE_OPACITY = 0.35
TRAIN_RING = "#5A5A5A"
STYLE = {
    "max_diameter": MAX_DIAMETER,
    "min_diameter": MIN_DIAMETER,
    "outline": {str(k): v for k, v in OUTLINE.items()},
    "outline_width": OUTLINE_WIDTH,
    "rim": RIM,
    "rim_extra": RIM_EXTRA,
    "bridge_opacity": BRIDGE_OPACITY,
    "train_ring": TRAIN_RING,
}
"""The marker encoding, shared with the explorer page (its payload's ``style``)."""

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
    bias: float  # the attribution's reference term for ``cls``
    rest: float  # the sum of the contributions a top-k attribution dropped (0 otherwise)


def _sources(attribution, target: int, cls: int | None) -> _Sources:
    row = _target_row(attribution, target)
    slot, cls = _class_slot(attribution, row, cls)
    sources, hops, contributions = attribution.for_target(target)
    rest = getattr(attribution, "rest", None)
    return _Sources(
        np.asarray(sources, np.int64),
        np.asarray(hops, np.int64),
        np.asarray(contributions, np.float64)[:, slot],
        cls,
        float(attribution.logits[row, slot]),
        float(attribution.bias[row, slot]),
        0.0 if rest is None else float(np.asarray(rest)[row, slot]),
    )


def _bridges(src: _Sources, drawn_idx: np.ndarray, graph: Graph) -> np.ndarray:
    """Indices into ``src`` of the hidden nodes to draw faded as bridges, so that no drawn node
    floats: for g = (the largest drawn hop) .. 2, each drawn hop-g node (in |contribution|
    order) with no drawn hop-(g-1) neighbour gets its hop-(g-1) neighbour of largest
    |contribution| (ties: source order), itself bridged in turn. The explorer page does the
    same. (A hop-g node always has a hop-(g-1) neighbour among a full attribution's sources;
    a top-k attribution may lack it.)"""
    n = len(src.nodes)
    drawn = np.zeros(n, bool)
    drawn[drawn_idx] = True
    rank = np.empty(n, np.int64)
    rank[_top(src.values, None)] = np.arange(n)
    adj = graph.adjacency[src.nodes][:, src.nodes].tocsr()
    added: list[int] = []
    for g in range(int(src.hops[drawn].max(initial=0)), 1, -1):
        ring = np.flatnonzero(drawn & (src.hops == g))
        for v in ring[np.argsort(rank[ring])]:
            near = adj.indices[adj.indptr[v] : adj.indptr[v + 1]]
            inner = near[src.hops[near] == g - 1]
            if inner.size and not drawn[inner].any():
                best = int(inner[np.argmin(rank[inner])])
                drawn[best] = True
                added.append(best)
    return np.array(added, np.int64)


def _score_split(src: _Sources, depth: int) -> str:
    """``score +1.2 = self +0.5 + 1-hop +0.4 + ... + bias +0.1``: the target's score split by
    hop (every source, not only the drawn ones); says so where the parts do not add up to the
    logit (methods without completeness)."""
    per_hop = np.bincount(src.hops, weights=src.values, minlength=depth + 1)
    names = ["self", *(f"{h}-hop" for h in range(1, depth + 1))]
    parts = [f"{name} {v:+.3g}" for name, v in zip(names, per_hop, strict=True)]
    parts.append(f"bias {src.bias:+.3g}")
    if src.rest:
        parts.append(f"dropped by top-k {src.rest:+.3g}")
    total = float(per_hop.sum() + src.bias + src.rest)
    if abs(total - src.logit) <= 1e-3 * max(1.0, abs(src.logit)):
        return f"score {src.logit:+.3g} = " + " + ".join(parts)
    return (
        f"score {src.logit:+.3g} ≠ " + " + ".join(parts) + f" = {total:+.3g} (this method's "
        "parts do not add up to the score)"
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
    """One legend entry per class (a marker-less trace sharing the class's legend group); the
    swatches are outlined so that light fills stand out from the white background."""
    return [
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={
                "color": class_colour(c),
                "size": 12,
                "symbol": "circle",
                "line": {"width": 1, "color": RIM},
            },
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
    notes: list[str] | None = None,
) -> list[str]:
    lines = []
    notes = notes or [""] * len(nodes)
    rows = zip(nodes.tolist(), hops.tolist(), values.tolist(), notes, strict=True)
    for v, h, c, note in rows:
        share = f"{100 * c / total:+.1f}% of Σ|C|" if total > 0 else "n/a"
        split = next(
            (name for name, mask in _SPLITS if np.asarray(getattr(graph, mask))[v]), "none"
        )
        lines.append(
            f"<b>{_node_text(graph, v)}</b><br>hop {h}<br>"
            f"true class: {_esc(graph.class_label(int(graph.labels[v])))}<br>"
            f"predicted: "
            f"{_esc(graph.class_label(int(predicted[v]))) if predicted[v] >= 0 else 'not computed'}"
            f"<br>split: {split}<br>contribution to {about}: {c:+.4g}<br>share: {share}{note}"
        )
    return lines


_SPLITS = (("train", "train_mask"), ("val", "val_mask"), ("test", "test_mask"))
BRIDGE_NOTE = "<br><i>not in the top k: drawn faded as a bridge</i>"


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
        attribution: an :class:`namjax.Attribution` covering ``target``.
        graph: the graph it was computed on.
        target: the node to explain.
        hops: neighbourhood radius, 1..K.
        cls: the class whose score is explained; default the target's predicted class.
        top_k: how many neighbours to draw, largest |contribution| first (``None``: all);
            the rest are hidden and summarised in the subtitle, except the bridges (hidden
            nodes joining a drawn node to the target), drawn faded.
        predictions: ``(N,)`` class ids or ``(N, C)`` logits colouring every node; default the
            predictions stored in ``attribution`` (nodes that are not targets there are grey).
        layout: ``"rings"`` (hop rings, deterministic, labelled "hop h") or ``"spring"``
            (seeded force layout).
        labels: how many of the largest neighbours get a text label (the target always does).
        seed: seed of the spring layout.

    Returns:
        A figure whose node markers are one ``go.Scatter`` per predicted class (uid
        ``niv-nodes-<class>``, the target first in its trace), ``1 + min(top_k, #neighbours)``
        markers in all, plus the faded bridges (uid ``niv-bridges``), each node on a black rim
        (``niv-rims``), training nodes circled (``niv-train``); every node trace carries the
        node ids as ``customdata``. ``layout.meta`` holds the view, target, class, hops and
        the shown/hidden/bridge counts.
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
    shown = np.concatenate([np.flatnonzero(src.nodes == target), keep])
    bridges = _bridges(src, shown, graph)
    idx = np.concatenate([shown, bridges])
    nodes, node_hops, values = src.nodes[idx], src.hops[idx], src.values[idx]
    faded = np.arange(len(idx)) >= len(shown)

    pcls = predicted[nodes]
    order = _ring_order(pcls, values)
    pos = ring_layout(nodes, node_hops, order, graph)
    if layout == "spring":
        pos = _spring_layout(nodes, pos, graph, seed)

    scale = float(np.abs(values).max(initial=0.0))
    diameter = _diameter(values, scale)
    cls_name = _esc(graph.class_label(src.cls))
    labelled = set((1 + _top(values[1 : len(shown)], labels)).tolist())  # the halo: target
    signs = np.sign(values).astype(np.int64)
    markers = {
        "ids": nodes,
        "size": diameter,
        "symbol": np.array([_SYMBOL[s] for s in signs], dtype=object),
        "outline": np.array([OUTLINE[s] for s in signs], dtype=object),
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
                [BRIDGE_NOTE if f else "" for f in faded],
            ),
            dtype=object,
        ),
    }
    train = np.asarray(graph.train_mask, bool)[nodes]
    present = sorted(set(pcls.tolist()))
    fig = go.Figure(
        [
            _edge_trace(nodes, pos, graph),
            _train_trace(pos[train], diameter[train], nodes[train]),
            _rim_trace(pos, diameter, markers["symbol"], faded),
            _bridge_trace(faded, pos, pcls, markers),
            *(_class_trace(c, (pcls == c) & ~faded, pos, markers) for c in present),
            _halo_trace(pos[0], diameter[0], graph, target),
            *_legend_traces(present, graph),
            *_sign_key(),
            *_mark_key(train.any(), faded.any()),
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
        if bridges.size:
            hidden_note += f", {bridges.size} of them drawn faded as bridges"
    true = graph.class_label(int(graph.labels[target]))
    fig.update_layout(
        title={
            "text": f"NIV: {_esc(graph.name)} {_node_text(graph, target)}, "
            f"class {cls_name} (true: {_esc(true)})",
            "subtitle": {
                "text": f"contributions to score {src.logit:.3g} from the {keep.size} largest of "
                f"{near.size} neighbours within {hops} hop{'s' if hops > 1 else ''}"
                f"{hidden_note}<br>{_score_split(src, int(attribution.depth))}"
            },
        },
        template="simple_white",
        width=950,
        height=800,
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
        margin={"l": 20, "r": 20, "t": 110, "b": 20},
        meta={
            "view": "niv",
            "target": target,
            "class": src.cls,
            "hops": hops,
            "shown": int(keep.size),
            "hidden": int(hidden.size),
            "bridges": int(bridges.size),
        },
    )
    if layout == "rings":
        _label_rings(fig, int(node_hops.max(initial=0)))
    return fig


def _label_rings(fig: go.Figure, rings: int) -> None:
    """Dotted hop rings, each labelled "hop h" below the plot where the ring meets the x axis
    (as on the explorer page)."""
    r = rings + 0.45
    fig.update_layout(
        xaxis={
            "visible": True,
            "range": [-r, r],
            "showgrid": False,
            "zeroline": False,
            "showline": False,
            "ticks": "",
            "tickvals": list(range(1, rings + 1)),
            "ticktext": [f"hop {h}" for h in range(1, rings + 1)],
            "tickfont": {"size": 11, "color": "#444444"},
        },
        yaxis={"range": [-r, r]},
    )
    for h in range(1, rings + 1):
        fig.add_shape(
            type="circle",
            x0=-h,
            y0=-h,
            x1=h,
            y1=h,
            line={"color": "#B5B5B5", "width": 1, "dash": "dot"},
            fillcolor="rgba(0, 0, 0, 0)",
            layer="below",
        )
        fig.add_shape(
            type="line",
            x0=h,
            x1=h,
            y0=0,
            y1=-r,
            line={"color": "#CFCFCF", "width": 1, "dash": "dot"},
            layer="below",
        )


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
            "line": {"width": OUTLINE_WIDTH, "color": markers["outline"][mask].tolist()},
            "opacity": 1.0,
        },
        customdata=markers["ids"][mask].tolist(),
        text=markers["text"][mask].tolist(),
        textposition=markers["textposition"][mask].tolist(),
        textfont={"size": 10},
        hovertext=markers["hover"][mask].tolist(),
        hoverinfo="text",
        legendgroup=f"class{cls}",
        showlegend=False,
        uid=f"niv-nodes-{cls}",
    )


def _bridge_trace(faded: np.ndarray, pos: np.ndarray, pcls: np.ndarray, markers: dict):
    """The bridge nodes: hidden by the top k but joining drawn nodes to the target; faded."""
    return go.Scatter(
        x=pos[faded, 0],
        y=pos[faded, 1],
        mode="markers",
        marker={
            "size": markers["size"][faded],
            "color": [class_colour(int(c)) for c in pcls[faded]],
            "symbol": markers["symbol"][faded].tolist(),
            "line": {"width": OUTLINE_WIDTH, "color": markers["outline"][faded].tolist()},
            "opacity": BRIDGE_OPACITY,
        },
        customdata=markers["ids"][faded].tolist(),
        hovertext=markers["hover"][faded].tolist(),
        hoverinfo="text",
        showlegend=False,
        uid="niv-bridges",
    )


def _rim_trace(pos: np.ndarray, diameter: np.ndarray, symbols: np.ndarray, faded: np.ndarray):
    """A black marker ``RIM_EXTRA`` px wider behind every node marker: with the outline on top
    it makes ▲ (black outline) and ▼ (white ring inside the black rim) differ at any size."""
    return go.Scatter(
        x=pos[:, 0],
        y=pos[:, 1],
        mode="markers",
        marker={
            "size": diameter + RIM_EXTRA,
            "color": RIM,
            "symbol": symbols.tolist(),
            "line": {"width": 0},
            "opacity": np.where(faded, BRIDGE_OPACITY, 1.0),
        },
        hoverinfo="skip",
        showlegend=False,
        uid="niv-rims",
    )


def _train_trace(pos: np.ndarray, diameter: np.ndarray, ids: np.ndarray) -> go.Scatter:
    """Grey circles around the training nodes (their labels were seen in training)."""
    return go.Scatter(
        x=pos[:, 0],
        y=pos[:, 1],
        mode="markers",
        marker={
            "size": diameter + RIM_EXTRA + 8,
            "symbol": "circle-open",
            "color": TRAIN_RING,
            "line": {"width": 1.5},
        },
        customdata=ids.tolist(),
        hoverinfo="skip",
        showlegend=False,
        uid="niv-train",
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


SIGN_NAMES = {
    1: "▲ raises the class score (black outline)",
    -1: "▼ lowers it (white ring inside the black rim)",
}


def _key(name: str, marker: dict, rank: int) -> go.Scatter:
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        marker=marker,
        name=name,
        legendrank=rank,
        hoverinfo="skip",
    )


def _sign_key() -> list[go.Scatter]:
    return [
        _key(
            SIGN_NAMES[s],
            {
                "symbol": _SYMBOL[s],
                "size": 12,
                "color": "#999999",
                "line": {"width": 2, "color": OUTLINE[s] if s > 0 else RIM},
            },
            50 + i,
        )
        for i, s in enumerate((1, -1))
    ]


def _mark_key(train: bool, bridges: bool) -> list[go.Scatter]:
    keys = []
    if train:
        marker = {"symbol": "circle-open", "size": 14, "color": TRAIN_RING, "line": {"width": 1.5}}
        keys.append(_key("training node (label seen in training)", marker, 60))
    if bridges:
        marker = {"symbol": "circle", "size": 12, "color": "#999999", "opacity": BRIDGE_OPACITY}
        keys.append(_key("faded: bridge outside the top k", marker, 61))
    return keys


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
