"""Walks: a contribution split over the paths it travels.

``C(φ→a, ·)`` is the sum, over every walk ``φ = v0 → v1 → … → vK = a`` of ``A + I``, of
``P[φ]`` pushed through each step: the step's operator entries ``Op_t[v_{l+1}, v_l]`` on a
propagating step, the unit derivatives ``σ'`` at the walk's node and the weights. A walk is
active when every node it passes after a step with an activation has at least one unit with
``σ' ≠ 0``; inactive walks contribute nothing.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from namjax.engine.globalpass import global_pass
from namjax.graph import Graph
from namjax.model import GNN
from namjax.subgraph import khop


def paths(
    model: GNN, graph: Graph, target: int, source: int
) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """Every active walk ``source = v0 → … → vK = target`` with its contribution ``(C,)``.

    Summed over the walks the contributions equal ``C(source→target, ·)`` (computed in float64
    on the host from the model's float32 quantities).
    """
    target, source = (int(x) for x in graph.check_nodes([target, source]))
    k = model.config.depth
    gp, _ = global_pass(model, graph, jnp.float32)
    p = np.asarray(gp.p, np.float64)
    slopes = [None if s is None else np.asarray(s, np.float64) for s in gp.slopes]
    values = [[np.asarray(v, np.float64) for v in vs] for vs in gp.values]
    pattern = graph.pattern
    dist = khop(graph, [target], k)
    hop_of = dict(zip(dist.nodes.tolist(), dist.hops.tolist(), strict=True))
    if source not in hop_of:
        return []
    walks = [(source,)]
    for step in range(1, k + 1):  # extend walks that can still reach the target in time
        walks = [
            (*w, int(v))
            for w in walks
            for v in pattern.indices[pattern.indptr[w[-1]] : pattern.indptr[w[-1] + 1]]
            if hop_of.get(int(v), k + 1) <= k - step
        ]
    out = []
    for walk in walks:
        value, active = _walk_value(gp.steps, values, slopes, p, pattern, walk)
        if active:
            out.append((walk, value))
    return out


def _walk_value(steps, values, slopes, p, pattern, walk) -> tuple[np.ndarray, bool]:
    """The contribution ``(C,)`` carried along ``walk`` and whether the walk is active (every
    node after an activated step has a live unit, every entry it crosses is non-zero)."""
    level, active = 0, True
    x = p[walk[0]]
    for s, step in enumerate(steps):
        if s == 0:
            inputs = np.split(x, len(step.terms))
        else:
            if slopes[s - 1] is not None:
                mask = slopes[s - 1][walk[level]]
                active &= bool(mask.any())
                x = x * mask
            inputs = [
                x if t.weight is None else x @ np.asarray(t.weight, np.float64) for t in step.terms
            ]
        if step.local:
            x = sum(float(sum(t.coefs)) * v for t, v in zip(step.terms, inputs, strict=True))
            continue
        receiver, sender = walk[level + 1], walk[level]
        row = slice(pattern.indptr[receiver], pattern.indptr[receiver + 1])
        entry = pattern.indptr[receiver] + np.searchsorted(pattern.indices[row], sender)
        weights = [w[entry] for w in values[s]]
        active &= any(w != 0 for w in weights)
        x = sum(w * v for w, v in zip(weights, inputs, strict=True))
        level += 1
    return x, active
