"""Feature-level NAM: which input features of a source carry its contribution to a target.

``C(φ→a, c) = Σ_i X[φ,i] ∂Z[a,c]/∂X[φ,i]``; each term is one feature's share. The gradient
``∂Z[a,c]/∂X[φ] = W ∂Z[a,c]/∂P[φ]`` comes from the subgraph engine's reverse pass on the
target's K-hop subgraph (:func:`namjax.engine.subgraph.cotangents`), computed on demand for
the requested pairs only, never as an ``(N, N, F)`` array.
"""

from __future__ import annotations

import jax
import numpy as np
import scipy.sparse as sp

from namjax.engine.subgraph import cotangents, pack
from namjax.errors import AttributionError
from namjax.graph import Graph
from namjax.kernel import Kernel
from namjax.methods import Context
from namjax.model import GNN
from namjax.subgraph import khop


def _gradients(steps, values, slopes, nodes, senders, receivers, pos):
    """``(B, n, C, D0)``: each subgraph's logits' gradient w.r.t. the first step's inputs."""

    def one(slopes_rows, senders, receivers, pos):
        grads = cotangents(steps, values, slopes_rows, senders, receivers, pos, nodes.shape[1])
        return jax.numpy.concatenate(grads, axis=-1)

    rows = jax.vmap(lambda ids: tuple(None if s is None else s[ids] for s in slopes))(nodes)
    return jax.vmap(one)(rows, senders, receivers, pos)


GRADIENTS = Kernel(_gradients)


def feature_contributions(
    model: GNN,
    graph: Graph,
    pairs,
    cls=None,
    *,
    top_k: int | None = 10,
) -> list[list[tuple[int, float]]]:
    """For each ``(target, source)`` of ``pairs`` ``(M, 2)``, the source's features with their
    ``X[φ,i] ∂Z[a,c]/∂X[φ,i]`` for class ``cls`` (default each target's predicted class; an
    int or one class per pair), largest ``|value|`` first, the first ``top_k`` (all when
    ``None``); over all features they sum to ``C(φ→a, c)``."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    graph.check_nodes(pairs.ravel())
    ctx = Context.create(model, graph)
    targets, rows = np.unique(pairs[:, 0], return_inverse=True)
    logits = np.asarray(ctx.gp.logits)
    classes = np.broadcast_to(
        logits[pairs[:, 0]].argmax(1) if cls is None else np.asarray(cls, np.int64), len(pairs)
    )
    kh = khop(graph, targets, model.config.depth)
    local = kh.local_index(rows, pairs[:, 1])
    if (local < 0).any():
        bad = pairs[np.flatnonzero(local < 0)[0]]
        raise AttributionError(
            f"node {bad[1]} is not within {model.config.depth} hops of target {bad[0]}"
        )
    weights = np.asarray(ctx.first_weights(), np.float64)  # (F, D0)
    x = sp.csr_matrix(graph.features, dtype=np.float64)
    state = (ctx.steps, ctx.gp.values, ctx.gp.slopes)
    grad = np.zeros((len(pairs), weights.shape[1]))
    packed, _ = pack(graph, kh)
    for bk, arrays, _ in packed:
        fn, _ = GRADIENTS.compiled(*state, *arrays)
        g = np.asarray(fn(*state, *arrays), np.float64)  # (B, n, C, D0)
        where = np.full(len(targets), -1)
        where[bk.rows] = np.arange(len(bk.rows))
        mine = np.flatnonzero(where[rows] >= 0)
        grad[mine] = g[where[rows[mine]], local[mine], classes[mine]]
    out = []
    for (_, source), g in zip(pairs, grad, strict=True):
        row = x[source]
        values = row.data * (weights[row.indices] @ g)  # features the source does not have: 0
        order = np.argsort(-np.abs(values), kind="stable")[:top_k]
        out.append([(int(row.indices[i]), float(values[i])) for i in order])
    return out
