"""The explorer's payload: what the page embeds about every explained target, compactly.

:func:`payload` turns one or more attributions into plain arrays (lists of numbers, no per-node
dicts) and :func:`to_json` writes them as JSON with rounded numbers and every ``<`` escaped, ready
for a ``<script type="application/json">`` block. The layout (format ``namjax-explorer/1``) is
documented on :func:`payload`; the page's app (``explorer_assets/explorer.js``) is its only reader.

Node references inside the payload are *page indices* ``i`` into ``nodes`` (the graph ids of the
nodes the page holds: the targets and every listed source), so a page about a few targets of a
large graph holds only their neighbourhoods.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from namjax.errors import ViewError
from namjax.graph import Graph
from namjax.views.niv import STYLE, UNKNOWN_COLOUR, class_colour

FORMAT = "namjax-explorer/1"
DIGITS = 4  # significant digits of contributions and Σ|C|
EXACT_DIGITS = 7  # of logits, bias and per-hop sums (float32 precision: they must add up)
SPLITS = ("none", "train", "val", "test")
_FIELDS = (
    "targets",
    "offsets",
    "sources",
    "hops",
    "contributions",
    "classes",
    "logits",
    "bias",
    "predicted",
    "num_nodes",
    "depth",
    "check",
)


class Numbers:
    """An array that :func:`to_json` writes as a flat JSON list with ``digits`` significant
    digits (``None``: integers)."""

    def __init__(self, values: np.ndarray, digits: int | None = None):
        self.values = np.asarray(values).ravel()
        self.digits = digits

    def json(self) -> str:
        if self.digits is None:
            return "[" + ",".join(map(str, self.values.astype(np.int64).tolist())) + "]"
        fmt = ",".join([f"%.{self.digits}g"] * self.values.size)
        return "[" + fmt % tuple(self.values.astype(np.float32).astype(np.float64).tolist()) + "]"


def to_json(value: object) -> str:
    """JSON text of nested dicts/lists/strings/numbers/:class:`Numbers`, with ``<`` written as
    ``\\u003c`` so that no string (a hostile ``</script>`` name) can end the script block."""
    if isinstance(value, Numbers):
        return value.json()
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{to_json(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


# ------------------------------------------------------------------------------ checks
def methods(attributions) -> dict[str, object]:
    """``{method name: attribution}`` from one attribution (named by its ``method``), a list
    of them (each named by its ``method``; names must differ) or a mapping; checks the
    fields."""
    if isinstance(attributions, Mapping):
        found = {str(k): v for k, v in attributions.items()}
    elif isinstance(attributions, Sequence) and not isinstance(attributions, str):
        found = {}
        for att in attributions:
            name = str(getattr(att, "method", "nam"))
            if name in found:
                raise ViewError(
                    f"two attributions are both named {name!r}: pass {{name: Attribution}}"
                )
            found[name] = att
    else:
        found = {str(getattr(attributions, "method", "nam")): attributions}
    if not found:
        raise ViewError("no attributions given: pass an Attribution or {method: Attribution}")
    for name, att in found.items():
        missing = [f for f in _FIELDS if not hasattr(att, f)]
        if missing:
            raise ViewError(
                f"attribution {name!r} is a {type(att).__name__}, not an Attribution "
                f"(it has no {missing[0]!r})"
            )
    return found


def check(found: dict[str, object], graph: Graph) -> None:
    """Refuse attributions that do not share one layout, were computed on another graph
    (``att.check(graph)``: :class:`~namjax.errors.AttributionError`) or with different models."""
    first_name, first = next(iter(found.items()))
    models = {}
    for name, att in found.items():
        att.check(graph)
        if getattr(att, "model_fingerprint", ""):
            models.setdefault(att.model_fingerprint, name)
        if len(models) > 1:
            a, b = models.values()
            raise ViewError(f"attributions {a!r} and {b!r} were computed with different models")
        for field, what in (("targets", "targets"), ("classes", "class slots")):
            a, b = np.asarray(getattr(att, field)), np.asarray(getattr(first, field))
            if a.shape != b.shape or not np.array_equal(a, b):
                raise ViewError(
                    f"attributions {first_name!r} and {name!r} explain different {what}"
                )
        if int(att.depth) != int(first.depth):
            raise ViewError(
                f"attributions {first_name!r} and {name!r} have different depths "
                f"({first.depth} and {att.depth})"
            )
        for field in ("contributions", "logits", "bias"):
            if not np.isfinite(np.asarray(getattr(att, field))).all():
                raise ViewError(f"attribution {name!r} holds non-finite {field}")
    targets = np.asarray(first.targets)
    if targets.size == 0:
        raise ViewError("the attributions explain no targets")
    classes = np.asarray(first.classes)
    if classes.size and (classes.min() < 0 or classes.max() >= graph.num_classes):
        raise ViewError(f"the attributions hold class ids outside 0..{graph.num_classes - 1}")


# ------------------------------------------------------------------------------ top-k lists
def _ranked_lists(
    hops: np.ndarray, values: np.ndarray, sub: sp.csr_matrix, top_k: int, depth: int
) -> list[np.ndarray]:
    """One target's neighbours to list, per class slot, in rank order.

    Args:
        hops: ``(n,)`` hop of each neighbour (≥ 1).
        values: ``(n, Q)`` their contributions.
        sub: ``(n, n)`` adjacency among them.

    Returns:
        ``Q`` index arrays into the neighbours, each sorted by decreasing |contribution|
        (ties: neighbour order). Each holds the top ``top_k`` within ``h`` hops for every
        ``h`` in 1..K, and for every listed hop-``g`` node (g ≥ 2) a listed hop-``g-1``
        neighbour of it (the largest such), so that any prefix the page draws can be joined
        to the target through listed nodes.
    """
    order = np.argsort(-np.abs(values), axis=0, kind="stable")  # (n, Q)
    lists = []
    for q in range(values.shape[1]):
        ranked = order[:, q]
        rank = np.empty(len(hops), np.int64)
        rank[ranked] = np.arange(len(hops))
        keep = np.zeros(len(hops), bool)
        for h in range(1, depth + 1):
            keep[ranked[hops[ranked] <= h][:top_k]] = True
        for g in range(depth, 1, -1):
            joined = sub @ (keep & (hops == g - 1)).astype(np.float64) > 0
            for v in np.flatnonzero(keep & (hops == g) & ~joined):
                near = sub.indices[sub.indptr[v] : sub.indptr[v + 1]]
                inner = near[hops[near] == g - 1]
                if inner.size and not keep[inner].any():
                    keep[inner[np.argmin(rank[inner])]] = True
        listed = np.flatnonzero(keep)
        lists.append(listed[np.argsort(rank[listed])])
    return lists


def _method_lists(att, graph: Graph, top_k: int) -> tuple[list[tuple], np.ndarray]:
    """Per target: ``(listed neighbour ids (m,), their hops (m,), Q positions into them,
    Q contribution arrays)``, plus the ``(T, K)`` neighbour counts per hop."""
    offsets = np.asarray(att.offsets)
    sources, hops = np.asarray(att.sources), np.asarray(att.hops).astype(np.int64)
    contributions = np.asarray(att.contributions)
    depth = int(att.depth)
    rows, counts = [], np.zeros((len(offsets) - 1, depth), np.int64)
    for t in range(len(offsets) - 1):
        s = slice(offsets[t], offsets[t + 1])
        near = hops[s] > 0
        ids, h, c = sources[s][near], hops[s][near], contributions[s][near]
        counts[t] = np.bincount(h, minlength=depth + 1)[1 : depth + 1]
        sub = graph.adjacency[ids][:, ids].tocsr()
        lists = _ranked_lists(h, c, sub, top_k, depth)
        union = np.unique(np.concatenate(lists)) if lists else np.zeros(0, np.int64)
        rows.append(
            (
                ids[union],
                h[union],
                [np.searchsorted(union, li) for li in lists],
                [c[li, q] for q, li in enumerate(lists)],
            )
        )
    return rows, counts


def _hop_sums(att) -> tuple[np.ndarray, np.ndarray]:
    """``(T, Q, K+1)`` contributions summed per hop (float64) and ``(T, Q)`` Σ|C|."""
    offsets = np.asarray(att.offsets)
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    c = np.asarray(att.contributions, np.float64)
    sums = np.zeros((len(offsets) - 1, int(att.depth) + 1, c.shape[1]))
    np.add.at(sums, (owner, np.asarray(att.hops).astype(np.int64)), c)
    total = np.zeros((len(offsets) - 1, c.shape[1]))
    np.add.at(total, owner, np.abs(c))
    return sums.transpose(0, 2, 1), total


# ------------------------------------------------------------------------------ payload
def payload(
    found: dict[str, object], graph: Graph, *, top_k: int, title: str, max_nodes: int
) -> dict:
    """The page's data (checked attributions in, JSON-ready dict out).

    Layout (``T`` targets, ``Q`` class slots, ``K`` hops, ``M`` page nodes; node references are
    page indices into ``nodes``; flat arrays are row-major):

    * ``format``, ``title``, ``dataset``, ``depth`` K, ``top_k``, ``slots`` Q; optionally
      ``start``, the graph id shown first (the widget's page carries its ``node``);
      ``style``: the marker encoding shared with NIV (:data:`namjax.views.niv.STYLE`);
    * ``nodes`` (M,) graph ids (ascending), ``names`` (M,) or null, ``labels`` (M,) true class
      (-1 unknown), ``split`` (M,) index into ``splits``; ``indptr`` (M+1,), ``indices``:
      the CSR adjacency among the page nodes;
    * ``class_names`` (C,), ``colours`` (C,) fills and ``unknown_colour``;
    * ``targets`` (T,) page indices, ``classes`` (T*Q,) class id per slot;
    * ``methods``: one entry per method with ``name``, ``predicted`` (T,), ``logits``,
      ``bias``, ``rest`` (T*Q,) (what a top-k attribution dropped, else 0), ``abs_sum``
      (T*Q,) (Σ|C| over all sources), ``hop_sums`` (T*Q*(K+1),) (self, 1-hop, ..., K-hop:
      with ``bias`` and ``rest`` they add up to the logit for NAM on ReLU models),
      ``counts`` (T*K,) neighbours per hop, and ``lists``: per target
      ``[sources (m,), hops (m,), positions (Q lists), contributions (Q lists)]``: slot
      ``q``'s ranked contributors are ``sources[positions[q]]`` with ``contributions[q]``
      (see :func:`_ranked_lists`; the target itself is not listed: its contribution is
      ``hop_sums[..., 0]``).
    """
    first = next(iter(found.values()))
    targets = np.asarray(first.targets, np.int64)
    if targets.size > max_nodes:
        raise _too_big(targets.size, max_nodes)
    built = {name: _method_lists(att, graph, top_k) for name, att in found.items()}
    listed = [row[0] for rows, _ in built.values() for row in rows]
    nodes = np.unique(np.concatenate([targets, *listed]))
    if nodes.size > max_nodes:
        raise _too_big(nodes.size, max_nodes)
    sub = graph.adjacency[nodes][:, nodes].tocsr()
    split = np.zeros(graph.num_nodes, np.int64)
    for code, mask in ((3, graph.test_mask), (2, graph.val_mask), (1, graph.train_mask)):
        split[np.asarray(mask, bool)] = code
    names = None if graph.node_names is None else [graph.node_names[v] for v in nodes.tolist()]
    page = lambda ids: Numbers(np.searchsorted(nodes, ids))
    return {
        "format": FORMAT,
        "title": title,
        "dataset": graph.name,
        "depth": int(first.depth),
        "top_k": int(top_k),
        "slots": int(np.asarray(first.classes).shape[1]),
        "style": STYLE,
        "nodes": Numbers(nodes),
        "names": names,
        "labels": Numbers(graph.labels[nodes]),
        "split": Numbers(split[nodes]),
        "splits": list(SPLITS),
        "indptr": Numbers(sub.indptr),
        "indices": Numbers(sub.indices),
        "class_names": [graph.class_label(c) for c in range(graph.num_classes)],
        "colours": [class_colour(c) for c in range(graph.num_classes)],
        "unknown_colour": UNKNOWN_COLOUR,
        "targets": page(targets),
        "classes": Numbers(first.classes),
        "methods": [
            _method_entry(name, found[name], rows, counts, page)
            for name, (rows, counts) in built.items()
        ],
    }


def _method_entry(name: str, att, rows, counts: np.ndarray, page) -> dict:
    sums, total = _hop_sums(att)
    return {
        "name": name,
        "predicted": Numbers(att.predicted),
        "logits": Numbers(np.asarray(att.logits, np.float64), EXACT_DIGITS),
        "bias": Numbers(np.asarray(att.bias, np.float64), EXACT_DIGITS),
        "rest": Numbers(_rest(att), EXACT_DIGITS),
        "abs_sum": Numbers(total, DIGITS),
        "hop_sums": Numbers(sums, EXACT_DIGITS),
        "counts": Numbers(counts),
        "lists": [
            [page(ids), Numbers(h), [Numbers(p) for p in pos], [Numbers(v, DIGITS) for v in vals]]
            for ids, h, pos, vals in rows
        ],
    }


def _rest(att) -> np.ndarray:
    rest = getattr(att, "rest", None)
    return np.zeros(np.shape(att.logits)) if rest is None else np.asarray(rest, np.float64)


def _too_big(count: int, max_nodes: int) -> ViewError:
    return ViewError(
        f"the page would hold {count:,} nodes (max_nodes={max_nodes:,}), too many for a "
        "browser: explain fewer targets or lower the top k (namjax explore: --targets, --top-k)"
    )
