"""The per-target NAM engine: reverse mode on each target's K-hop subgraph, vmapped per bucket.

``nam(..., engine="subgraph")`` computes the same contributions as the default pairs engine
(:mod:`namjax.nam`) the other way round, one target at a time:

* The host extracts every target's K-hop subgraph (:func:`namjax.subgraph.khop`, target at
  local index 0) with its local edges and their *global* ``Â[receiver, sender]`` weights
  (:meth:`namjax.subgraph.KHop.edges`), only those into nodes within K-1 hops: the others
  never lie on a walk of length K that ends at the target.
* :func:`explain_one` runs reverse mode for all C classes at once on one padded subgraph:
  ``Y_K[u] = Â[a, u] I_C`` is the logits' derivative with respect to layer K's propagated
  input, and ``Y_{l-1}[u] = Σ_v Â[v, u] ((Y_l[v] W_l^T) ⊙ σ'(z_{l-1}[v]))`` is one segment sum
  over the local edges; finally ``C(φ, :) = Σ_j P[φ, j] Y_1[φ, :, j]``. ``P = X W1`` and
  ``σ'`` come from the shared global pass, gathered per subgraph.
* Targets are packed into a few buckets by the power of two of their edge count only
  (:func:`namjax.subgraph.size_buckets`; groups of few targets merge into the next one); node
  and edge slots are padded to the bucket's largest, rounded to 8 steps per power of two
  (padding edges have weight 0). :func:`explain_bucket` is ``explain_one`` vmapped over a chunk
  of a bucket's targets; each bucket is split evenly into as few chunks as the memory budget
  allows (sizes rounded the same way), so each (bucket shape, chunk size) compiles once per
  process and repeat calls compile nothing.

Work per target is about ``#edges x C x h`` (a C x h cotangent per node and edge, where the
pairs engine carries an h-vector per pair and shares partial walks between targets), so this
engine is the slower one; it stays closest to the definition and cross-checks the other.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from namjax.graph import Graph
from namjax.model import GCNParams
from namjax.nam import TRACES, compiled, progress_bar
from namjax.subgraph import Bucket, KHop, round_up, size_buckets


def explain_one(
    params: GCNParams,
    p: jax.Array,
    sig: tuple[jax.Array, ...],
    senders: jax.Array,
    receivers: jax.Array,
    weights: jax.Array,
) -> jax.Array:
    """``(n, C)`` contributions of the n (padded) nodes of one subgraph to its target (slot 0).

    Args:
        params: ``((W1, b1), ..., (WK, bK))``.
        p: ``(n, h1)`` rows of ``P = X W1``.
        sig: per hidden layer l, ``(n, h_l)`` rows of ``σ'(z_l)``.
        senders, receivers: ``(e,)`` local edge ends (self-loops included).
        weights: ``(e,)`` ``Â[receiver, sender]``; 0 on padding edges.
    """
    TRACES["subgraph"] += 1
    n = p.shape[0]

    def pull(y):  # Σ over edges u -> v of Â[v, u] y[v], collected at u
        w = weights.reshape(-1, *(1,) * (y.ndim - 1))
        return jax.ops.segment_sum(w * y[receivers], senders, num_segments=n)

    at_target = pull(jnp.zeros(n, p.dtype).at[0].set(1))  # Â[a, u]
    y = at_target[:, None, None] * jnp.eye(params[-1][0].shape[1], dtype=p.dtype)
    for layer in range(len(params) - 1, 0, -1):  # Y_{l+1} -> Y_l for l = K-1 .. 1
        y = pull((y @ params[layer][0].T) * sig[layer - 1][:, None, :])
    return jnp.einsum("nj,ncj->nc", p, y)


def explain_bucket(
    params: GCNParams,
    p: jax.Array,
    sig: tuple[jax.Array, ...],
    nodes: jax.Array,
    senders: jax.Array,
    receivers: jax.Array,
    weights: jax.Array,
) -> jax.Array:
    """:func:`explain_one` vmapped over B subgraphs: ``(B, n, C)``.

    ``p (N, h1)`` and ``sig`` are the global arrays; ``nodes (B, n)`` the subgraphs' global
    node ids (target first); ``senders``, ``receivers``, ``weights`` are ``(B, e)``.
    """
    gathered = jax.vmap(lambda ids: (p[ids], tuple(s[ids] for s in sig)))(nodes)
    return jax.vmap(explain_one, in_axes=(None, 0, 0, 0, 0, 0))(
        params, *gathered, senders, receivers, weights
    )


_bucket_jit = jax.jit(explain_bucket)
MIN_WIDTH = 32  # smaller subgraphs (edges, nodes) share one bucket: cheaper than compiling more


# ---------------------------------------------------------------------------- host packing
def pack(graph: Graph, kh: KHop, dtype) -> tuple[list[tuple[Bucket, tuple]], int]:
    """Each bucket with its ``(nodes (B, n), senders, receivers, weights (B, e))`` arrays, and
    the number of real edges."""
    edges = kh.edges(graph, max_receiver_hop=kh.depth - 1)
    counts = np.diff(edges.offsets)
    owner = np.repeat(np.arange(len(kh.targets)), counts)
    rank = np.arange(len(owner)) - edges.offsets[owner]  # edge slot within its subgraph
    local = (edges.senders, edges.receivers, edges.a_hat)
    buckets = size_buckets(kh, size=counts, min_width=MIN_WIDTH)  # work scales with edges
    where = np.empty((2, len(kh.targets)), np.int64)  # bucket, row in bucket
    for i, bk in enumerate(buckets):
        where[0, bk.rows], where[1, bk.rows] = i, np.arange(len(bk.rows))
    packed = []
    for i, bk in enumerate(buckets):
        sel = np.flatnonzero(where[0, owner] == i)
        e_pad = round_up(counts[bk.rows].max(initial=1))
        at = (where[1, owner[sel]], rank[sel])
        arrays = [np.zeros((len(bk.rows), e_pad), t) for t in (np.int32, np.int32, dtype)]
        for out, values in zip(arrays, local, strict=True):
            out[at] = values[sel]
        packed.append((bk, (bk.nodes.astype(np.int32), *arrays)))
    return packed, len(owner)


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


def explain_subgraphs(
    graph: Graph, kh: KHop, state: tuple, budget: int, progress: bool
) -> tuple[np.ndarray, dict]:
    """``(P, C)`` contributions in ``kh``'s pair layout, and stats (``state``: the global
    pass's ``(params, P, σ')``); the ``engine="subgraph"`` back end of :func:`namjax.nam.nam`."""
    t0 = time.perf_counter()
    params, p, sig = state
    widths = tuple(int(w.shape[1]) for w, _ in params)
    packed, num_edges = pack(graph, kh, np.dtype(p.dtype))
    calls = []  # (bucket, first row, padded inputs)
    stats = {"compile_s": 0.0, "compiled": 0}
    padded_slots = padded_edges = 0
    for bk, arrays in packed:
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
    for _, _, chunk in calls:  # dispatched asynchronously
        fn, secs = compiled(_bucket_jit, {}, params, p, sig, *chunk)
        stats["compile_s"] += secs
        stats["compiled"] += int(secs > 0)
        results.append(fn(params, p, sig, *chunk))
    out = np.zeros((kh.num_pairs, widths[-1]), np.dtype(p.dtype))
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
