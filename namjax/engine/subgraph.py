"""The subgraph engine: per-target reverse mode on each K-hop subgraph, vmapped per bucket.

``nam(..., engine="subgraph")`` computes the same contributions as the default pairs engine
(:mod:`namjax.engine.pairs`) the other way round, one target at a time:

* The host extracts every target's K-hop subgraph (:func:`namjax.subgraph.khop`, target at
  local index 0) with its local edges as entries of the graph's pattern of ``A + I``
  (:meth:`namjax.subgraph.KHop.edges`), only those into nodes within K-1 hops: the others
  never lie on a walk of length K that ends at the target.
* :func:`explain_one` runs reverse mode for all C classes at once on one padded subgraph:
  starting from the logits' cotangent ``e_a ⊗ I_C`` (kept factored while it stays one), each
  step pulls the cotangent back through its terms' operators (one segment sum over the local
  edges weighted by the operator's values at their entries), its weights and the previous
  step's unit derivatives. The cotangent left at the first step's term inputs is
  ``∂Z[a, :]/∂P[φ, :]``; contracted with ``P[φ]`` it is ``C(φ→a, :)``. ``P`` and ``σ'`` come
  from the shared global pass, gathered per subgraph.
* Targets are packed into a few buckets by the power of two of their edge count only
  (:func:`namjax.subgraph.size_buckets`; groups of few targets merge into the next one); node
  and edge slots are padded to the bucket's largest, rounded to 8 steps per power of two
  (padding edges point at a zero value). :func:`explain_bucket` is ``explain_one`` vmapped
  over a chunk of a bucket's targets; each bucket is split evenly into as few chunks as the
  memory budget allows (sizes rounded the same way), so each (bucket shape, chunk size)
  compiles once per process and repeat calls compile nothing.

Work per target is about ``#edges x C x h`` (a C x h cotangent per node and edge, where the
pairs engine carries an h-vector per pair and shares partial walks between targets), so this
engine is the slower one; it stays closest to the definition and cross-checks the other.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from namjax.engine.globalpass import GlobalPass
from namjax.engine.pairs import level_widths, progress_bar
from namjax.graph import Graph
from namjax.kernel import Kernel
from namjax.layers import Step, step_widths
from namjax.subgraph import Bucket, KHop, LocalEdges, round_up, size_buckets


def explain_one(
    steps: tuple[Step, ...],
    values: tuple[tuple[jax.Array, ...], ...],
    p: jax.Array,
    slopes: tuple[jax.Array | None, ...],
    senders: jax.Array,
    receivers: jax.Array,
    pos: jax.Array,
) -> jax.Array:
    """``(n, C)`` contributions of the n (padded) nodes of one subgraph to its target (slot 0).

    Args:
        steps: the model's steps.
        values: per step and term, the operator's values on the pattern of ``A + I``.
        p: ``(n, D0)`` rows of the first step's term inputs ``[X W_1 | ...]``.
        slopes: per step, ``(n, d_s)`` rows of ``σ'(z_s)`` (or ``None``).
        senders, receivers: ``(e,)`` local edge ends (self-loops included).
        pos: ``(e,)`` the edges' entries in the pattern (the zero slot on padding edges).
    """
    grads = cotangents(steps, values, slopes, senders, receivers, pos, p.shape[0])
    blocks = jnp.split(p, len(grads), axis=1)
    return sum(jnp.einsum("nj,ncj->nc", b, g) for b, g in zip(blocks, grads, strict=True))


def cotangents(steps, values, slopes, senders, receivers, pos, n: int) -> list[jax.Array]:
    """Per first-step term, ``(n, C, d_1)``: the target's logits' gradient with respect to that
    term's input ``X W_t`` at each local node (reverse mode from the target, slot 0)."""

    def pull(w, y):  # Σ over edges u -> v of Op[v, u] y[v], collected at u
        w = w.reshape(-1, *(1,) * (y.ndim - 1))
        return jax.ops.segment_sum(w * y[receivers], senders, num_segments=n)

    u = jnp.zeros(n, values[0][0].dtype).at[0].set(1)  # cotangent u ⊗ m while factored
    m = jnp.eye(step_widths(steps)[-1], dtype=u.dtype)
    y = None  # the full (n, C, d) cotangent once it stops factoring
    for s in range(len(steps) - 1, -1, -1):
        step = steps[s]
        cot = u if y is None else y
        gs = [
            sum(t.coefs) * cot if t.local else pull(w[pos], cot)
            for t, w in zip(step.terms, values[s], strict=True)
        ]
        if s == 0:
            break
        below = slopes[s - 1]
        if y is None and len(gs) == 1 and below is None:  # still one factor: u ⊗ (m W^T)
            u, t = gs[0], step.terms[0]
            m = m if t.weight is None else m @ t.weight.T
            continue
        if y is None:
            gs = [g[:, None, None] * m[None] for g in gs]
        y = sum(
            g if t.weight is None else g @ t.weight.T for g, t in zip(gs, step.terms, strict=True)
        )
        if below is not None:
            y = y * below[:, None, :]
    return gs if y is not None else [g[:, None, None] * m[None] for g in gs]


def explain_bucket(steps, values, p, slopes, nodes, senders, receivers, pos) -> jax.Array:
    """:func:`explain_one` vmapped over B subgraphs: ``(B, n, C)``.

    ``p (N, D0)`` and ``slopes`` are the global arrays; ``nodes (B, n)`` the subgraphs' global
    node ids (target first); ``senders``, ``receivers``, ``pos`` are ``(B, e)``.
    """
    gathered = jax.vmap(lambda ids: (p[ids], tuple(None if s is None else s[ids] for s in slopes)))(
        nodes
    )
    return jax.vmap(explain_one, in_axes=(None, None, 0, 0, 0, 0, 0))(
        steps, values, *gathered, senders, receivers, pos
    )


BUCKET = Kernel(explain_bucket)
""":func:`explain_bucket` as a counted, cached kernel (one compilation per bucket shape)."""
MIN_WIDTH = 32  # smaller subgraphs (edges, nodes) share one bucket: cheaper than compiling more


# ---------------------------------------------------------------------------- host packing
def pack(graph: Graph, kh: KHop) -> tuple[list[tuple[Bucket, tuple, tuple]], LocalEdges]:
    """Each bucket with its ``(nodes (B, n), senders, receivers, pos (B, e))`` arrays and where
    its real edges lie (``(indices into the local edges, (row, slot))``), and the local edges
    (those into nodes within K-1 hops); padding edges point at entry ``E`` (the zero slot of
    every operator's values)."""
    edges = kh.edges(graph, max_receiver_hop=kh.depth - 1)
    counts = np.diff(edges.offsets)
    owner = np.repeat(np.arange(len(kh.targets)), counts)
    rank = np.arange(len(owner)) - edges.offsets[owner]  # edge slot within its subgraph
    local = (edges.senders, edges.receivers, edges.pos)
    buckets = size_buckets(kh, size=counts, min_width=MIN_WIDTH)  # work scales with edges
    where = np.empty((2, len(kh.targets)), np.int64)  # bucket, row in bucket
    for i, bk in enumerate(buckets):
        where[0, bk.rows], where[1, bk.rows] = i, np.arange(len(bk.rows))
    packed = []
    for i, bk in enumerate(buckets):
        sel = np.flatnonzero(where[0, owner] == i)
        e_pad = round_up(counts[bk.rows].max(initial=1))
        at = (where[1, owner[sel]], rank[sel])
        arrays = [
            np.full((len(bk.rows), e_pad), fill, np.int32) for fill in (0, 0, graph.pattern.nnz)
        ]
        for out, values in zip(arrays, local, strict=True):
            out[at] = values[sel]
        packed.append((bk, (bk.nodes.astype(np.int32), *arrays), (sel, at)))
    return packed, edges


def chunk_size(n: int, e: int, widths: tuple[int, ...], budget: int, targets: int) -> int:
    """Targets per device call for a bucket of ``targets`` subgraphs of ``n`` nodes and ``e``
    edges: the bucket split evenly into as few chunks as fit ``budget``, rounded up
    (:func:`~namjax.subgraph.round_up`) so that similar calls share compiled shapes.

    Per target and layer the engine holds ``C x h`` cotangents per node and per edge (the
    gathered messages) and about as much again in temporaries: ``8 (n + e) C h`` bytes.
    """
    per_target = 8 * (n + e) * widths[-1] * max(widths)
    fit = max(1, budget // per_target)
    chunks = -(-targets // fit)
    return round_up(-(-targets // chunks))


def run_subgraphs(
    graph: Graph, kh: KHop, gp: GlobalPass, budget: int, progress: bool = False
) -> tuple[np.ndarray, dict]:
    """``(P, C)`` contributions in ``kh``'s pair layout, and stats; the ``engine="subgraph"``
    back end of :func:`namjax.nam`."""
    t0 = time.perf_counter()
    widths = level_widths(gp.steps)
    packed, edges = pack(graph, kh)
    num_edges = len(edges.senders)
    calls = []  # (bucket, first row, padded inputs)
    stats = {"compile_s": 0.0, "compiled": 0}
    padded_slots = padded_edges = 0
    for bk, arrays, _ in packed:
        b, n, e = len(bk.rows), arrays[0].shape[1], arrays[1].shape[1]
        size = chunk_size(n, e, widths, budget, b)
        padded_slots += -(-b // size) * size * n
        padded_edges += -(-b // size) * size * e
        for start in range(0, b, size):
            chunk = [a[start : start + size] for a in arrays]
            calls.append((bk, start, [np.pad(a, [(0, size - len(a)), (0, 0)]) for a in chunk]))
    stats["extract_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    results = []
    state = (gp.steps, gp.values, gp.p, gp.slopes)
    for _, _, chunk in calls:  # dispatched asynchronously
        fn, secs = BUCKET.compiled(*state, *chunk)
        stats["compile_s"] += secs
        stats["compiled"] += int(secs > 0)
        results.append(fn(*state, *chunk))
    out = np.zeros((kh.num_pairs, widths[-1]), np.dtype(gp.p.dtype))
    for (bk, start, _), res in zip(calls, progress_bar(results, progress, len(calls)), strict=True):
        mask = bk.mask[start : start + len(res)]  # the chunk's real rows
        slots = kh.offsets[bk.rows[start : start + len(mask)]][:, None] + np.arange(mask.shape[1])
        out[slots[mask]] = np.asarray(res)[: len(mask)][mask]
    stats["device_s"] = time.perf_counter() - t0 - stats["compile_s"]
    stats.update(
        chunks=len(calls),
        buckets=len(packed),
        pairs=kh.num_pairs,
        edges=num_edges,
        padding_overhead=padded_slots / kh.num_pairs,
        edge_padding_overhead=padded_edges / max(num_edges, 1),
    )
    return out, stats
