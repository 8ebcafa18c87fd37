"""Edge-level attributions: how much of each target's NAM sum flows through each edge, per
layer (:mod:`namjax.engine.edgeflow`), for every target and class at once."""

from __future__ import annotations

from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from namjax.checks import check_classes, check_features, check_targets
from namjax.engine.edgeflow import run_flows
from namjax.engine.pairs import DEFAULT_CHUNK_BUDGET
from namjax.errors import AttributionError
from namjax.explainer import class_slots
from namjax.graph import Graph
from namjax.methods import Context
from namjax.model import GNN, model_fingerprint
from namjax.subgraph import khop


@dataclass(frozen=True, eq=False)
class EdgeAttribution:
    """Flows of T targets for Q class slots over R (target, layer, edge) rows.

    Attributes:
        targets: ``(T,)`` int64; target ``t`` owns rows ``offsets[t]:offsets[t+1]``.
        offsets: ``(T+1,)`` int64.
        layer: ``(R,)`` int8 propagating step ``1..K`` (forward order) the edge is crossed at.
        sender, receiver: ``(R,)`` int64 global node ids of the edge ``sender → receiver`` of
            ``A + I`` (self-loops included).
        flows: ``(R, Q)`` the part of ``Σ_φ C(φ→a, c)`` crossing the edge at that layer.
        classes: ``(T, Q)`` int64; ``predicted``: ``(T,)``.
        totals: ``(T, Q)`` ``Σ_φ C(φ→a, c)``: every layer's flows add up to it.
        depth: K; ``graph_fingerprint``, ``model_fingerprint``: provenance.
    """

    targets: np.ndarray
    offsets: np.ndarray
    layer: np.ndarray
    sender: np.ndarray
    receiver: np.ndarray
    flows: np.ndarray
    classes: np.ndarray
    predicted: np.ndarray
    totals: np.ndarray
    depth: int
    graph_fingerprint: str = ""
    model_fingerprint: str = ""
    stats: dict = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return (
            f"EdgeAttribution({len(self.targets)} targets x {self.classes.shape[1]} class "
            f"slots, {len(self.layer)} (target, layer, edge) rows, depth {self.depth})"
        )

    def for_target(self, node: int) -> tuple[np.ndarray, ...]:
        """``(layer, sender, receiver, flows (n, Q))`` of one target."""
        hit = np.flatnonzero(self.targets == node)
        if hit.size == 0:
            raise AttributionError(f"node {node} is not among the explained targets")
        s = slice(self.offsets[hit[0]], self.offsets[hit[0] + 1])
        return self.layer[s], self.sender[s], self.receiver[s], self.flows[s]

    def edge_scores(
        self, cls: int | None = None, *, slot: int | None = None
    ) -> tuple[np.ndarray, ...]:
        """``(target, sender, receiver, score)``, one row per (target, edge): the flows summed
        over layers for class ``cls`` (default each target's predicted class), or for class
        slot ``slot`` (e.g. 0 of ``classes="true"``) — an edge score comparable with PyG's
        ``edge_mask``."""
        row = np.repeat(np.arange(len(self.targets)), np.diff(self.offsets))
        if slot is not None:
            if cls is not None:
                raise AttributionError("give cls or slot, not both")
            value = self.flows[:, slot]
        else:
            want = self.predicted if cls is None else np.full(len(self.targets), int(cls))
            match = self.classes == want[:, None]
            if not match.any(axis=1).all():
                raise AttributionError(f"class {cls} was not computed for every target")
            value = self.flows[np.arange(len(row)), np.argmax(match, axis=1)[row]]
        n = int(max(self.sender.max(initial=0), self.receiver.max(initial=0))) + 1
        key = (row * n + self.sender) * n + self.receiver
        uniq, inverse = np.unique(key, return_inverse=True)
        score = np.bincount(inverse, weights=value, minlength=len(uniq))
        return (
            self.targets[uniq // (n * n)],
            (uniq // n) % n,
            uniq % n,
            score,
        )


def edge_contributions(
    model: GNN,
    graph: Graph,
    targets=None,
    classes: str | int = "all",
    *,
    dtype=jnp.float32,
    chunk_budget_bytes: int = DEFAULT_CHUNK_BUDGET,
) -> EdgeAttribution:
    """For each target, class and propagating layer, the part of the NAM walk sum that flows
    through each edge ``u → v`` (self-loops included) of the target's computation graph.

    Exact conservation: at every layer the flows of one (target, class) add up to
    ``Σ_φ C(φ→a, c)``. Summed over layers (:meth:`EdgeAttribution.edge_scores`) they give an
    edge score comparable with PyG's ``edge_mask``.
    """
    check_features(model, graph)
    targets = check_targets(graph, targets)
    classes = check_classes(classes, model.config.num_classes)
    ctx = Context.create(model, graph, dtype)
    k = model.config.depth
    kh = khop(graph, targets, k)
    edges, flows, totals = run_flows(graph, kh, ctx.gp, ctx.dg, chunk_budget_bytes)
    logits = np.asarray(ctx.gp.logits)[targets]
    labels = graph.labels[targets].astype(np.int64)
    slots = class_slots(classes, logits, labels, targets)
    # keep, per layer l, the edges whose receiver is within K - l hops of the target (the
    # others carry no walk of length K to it)
    owner = np.repeat(np.arange(len(targets)), np.diff(edges.offsets))
    base = kh.offsets[owner]
    recv_hop = kh.hops[base + edges.receivers]
    rows = [np.flatnonzero(recv_hop <= k - layer) for layer in range(1, k + 1)]
    order = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)])
    index = np.concatenate(rows)
    by_target = np.lexsort((index, order, owner[index]))  # target, then layer, then edge
    layer_of, edge_of = order[by_target], index[by_target]
    flow = flows[layer_of, edge_of]  # (R, C)
    flow = np.take_along_axis(flow, slots[owner[edge_of]], axis=1)
    counts = np.bincount(owner[edge_of], minlength=len(targets))
    return EdgeAttribution(
        targets=targets,
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        layer=(layer_of + 1).astype(np.int8),
        sender=kh.nodes[base[edge_of] + edges.senders[edge_of]],
        receiver=kh.nodes[base[edge_of] + edges.receivers[edge_of]],
        flows=flow,
        classes=slots,
        predicted=logits.argmax(1).astype(np.int64),
        totals=np.take_along_axis(totals[targets], slots, axis=1),
        depth=k,
        graph_fingerprint=graph.fingerprint,
        model_fingerprint=model_fingerprint(model),
    )
