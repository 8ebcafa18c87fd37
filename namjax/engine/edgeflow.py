"""Edge flows: the part of NAM's walk sum that crosses each edge of each layer.

``Σ_φ C(φ→a, c)`` is the sum over every walk ending at ``a`` of its contribution; at a
propagating step ``l`` each walk crosses one entry ``v ← u`` of the step's operators, so the
walks split the sum by edge, per layer: ``F_l(u→v) = Σ_t Op_t[v, u] ⟨ẋ_t[u], y_l[v, c]⟩``,
where ``ẋ_t[u]`` is the tangent of the term's input at ``u`` along ``P`` from every source
(the linearised forward pass, one global quantity) and ``y_l[v]`` the target's logits'
cotangent at ``v`` after step ``l`` (reverse mode from the target, per subgraph, as the
subgraph engine). Each layer's flows add up to ``Σ_φ C(φ→a, c)`` exactly (conservation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from namjax.engine.globalpass import GlobalPass
from namjax.engine.subgraph import chunk_size, pack
from namjax.graph import Graph
from namjax.kernel import Kernel
from namjax.layers import Step, step_widths
from namjax.model import DeviceGraph, apply_term, multiply
from namjax.subgraph import KHop


def input_tangents(steps: tuple[Step, ...], dg: DeviceGraph, p, slopes) -> tuple:
    """Per step, per term, ``(N, d)``: the term's input ``h W_t`` linearised along ``P`` from
    every source at once (the first step's: the blocks of ``P``); and the logits' tangent
    ``(N, C)``, which is ``Σ_φ C(φ→a, ·)`` for every node ``a``."""
    out, z = [], None
    for s, step in enumerate(steps):
        if s == 0:
            xs = list(jnp.split(p, len(step.terms), axis=1))
        else:
            h = z if slopes[s - 1] is None else z * slopes[s - 1]
            xs = [multiply(t, h) for t in step.terms]
        out.append(tuple(xs))
        z = sum(apply_term(t, dg, x) for t, x in zip(step.terms, xs, strict=True))
    return tuple(out), z


TANGENTS = Kernel(input_tangents)


def flows_one(steps, values, tangents, slopes, senders, receivers, pos) -> jax.Array:
    """``(K, e, C)``: the flow through each local edge at each propagating step (forward order)
    for one padded subgraph whose target is slot 0; ``tangents`` and ``slopes`` are the
    subgraph's rows."""
    n = tangents[0][0].shape[0]

    def pull(w, y):  # Σ over edges u -> v of Op[v, u] y[v], collected at u
        return jax.ops.segment_sum(w[:, None, None] * y[receivers], senders, num_segments=n)

    c = step_widths(steps)[-1]
    dtype = tangents[0][0].dtype
    y = jnp.zeros((n, c, c), dtype).at[0].set(jnp.eye(c, dtype=dtype))  # ∂Z[a, :]/∂z_S
    flows = []
    for s in range(len(steps) - 1, -1, -1):
        step = steps[s]
        weights = [w[pos] for w in values[s]]
        if not step.local:
            flows.append(
                sum(
                    w[:, None] * jnp.einsum("ed,ecd->ec", x[senders], y[receivers])
                    for w, x in zip(weights, tangents[s], strict=True)
                )
            )
        if s == 0:
            break
        gs = [
            sum(t.coefs) * y if t.local else pull(w, y)
            for t, w in zip(step.terms, weights, strict=True)
        ]
        y = sum(
            g if t.weight is None else g @ t.weight.T for g, t in zip(gs, step.terms, strict=True)
        )
        if slopes[s - 1] is not None:
            y = y * slopes[s - 1][:, None, :]
    return jnp.stack(flows[::-1])


def flows_bucket(steps, values, tangents, slopes, nodes, senders, receivers, pos) -> jax.Array:
    """:func:`flows_one` vmapped over B subgraphs: ``(B, K, e, C)``."""
    gathered = jax.vmap(
        lambda ids: (
            jax.tree.map(lambda x: x[ids], tangents),
            tuple(None if s is None else s[ids] for s in slopes),
        )
    )(nodes)
    return jax.vmap(flows_one, in_axes=(None, None, 0, 0, 0, 0, 0))(
        steps, values, *gathered, senders, receivers, pos
    )


FLOWS = Kernel(flows_bucket)


def run_flows(graph: Graph, kh: KHop, gp: GlobalPass, dg: DeviceGraph, budget: int):
    """Flows of every local edge (those into nodes within K-1 hops of the target) at every
    propagating step: ``(local edges, (K, E_local, C) flows, (N, C) Σ_φ C(φ→a, ·))``."""
    fn, _ = TANGENTS.compiled(gp.steps, dg, gp.p, gp.slopes)
    tangents, totals = fn(gp.steps, dg, gp.p, gp.slopes)
    packed, edges = pack(graph, kh)
    widths = step_widths(gp.steps)
    out = np.zeros((kh.depth, len(edges.senders), widths[-1]), np.dtype(gp.p.dtype))
    state = (gp.steps, gp.values, tangents, gp.slopes)
    for bk, arrays, (sel, (row, slot)) in packed:
        b, n, e = len(bk.rows), arrays[0].shape[1], arrays[1].shape[1]
        size = chunk_size(n, e, widths, budget, b)
        for start in range(0, b, size):
            part = [a[start : start + size] for a in arrays]
            chunk = [np.pad(a, [(0, size - len(a)), (0, 0)]) for a in part]
            kernel, _ = FLOWS.compiled(*state, *chunk)
            res = np.asarray(kernel(*state, *chunk))  # (size, K, e, C)
            mine = (row >= start) & (row < start + size)
            out[:, sel[mine]] = np.moveaxis(res[row[mine] - start, :, slot[mine]], 0, 1)
    return edges, out, np.asarray(totals)
