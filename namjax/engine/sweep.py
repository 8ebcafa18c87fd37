"""The local sweep: a target's logits under many deletions of its neighbours, exactly, on its
K-hop subgraph.

Every deleted node lies inside the target's K-hop set ``S``, and after a deletion the target's
receptive field is a subset of ``S``. Each operator of the model is ``diag(r) (A° + sI)
diag(c)`` with scales from the degrees ``d = A° 1 + s`` (:func:`namjax.graph.degree_scales`);
after deleting nodes (``"remove"`` mode) a node's degree is ``d'_u = d_u - Σ_{w deleted}
A°[u, w]``, which only needs the induced edges of ``S`` and the global degrees, and the
deleted nodes' columns vanish. In ``"zero"`` mode the operators stay and the deleted nodes'
features are zeroed. A step is needed only on the nodes within the hops it still has to
travel (a prefix of the hop-sorted subgraph), so the forward pass on the padded subgraph
reproduces the full-graph prediction of the target exactly, up to rounding.

Vectorisation: targets are packed into buckets (:func:`namjax.subgraph.bucket`, coarsened to a
few groups); per bucket one jitted function builds every keep mask from per-ranking rank
arrays and per-level deletion intervals and runs the forward vmapped over (targets x rankings
x levels). The dense induced adjacency of a subgraph is shared by all its masks, so a step is
one matrix product per target, and the first step's mask-independent products are factored
out. The first step's inputs ``P = X W`` are computed once for the whole graph and gathered.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from namjax.graph import Graph, degree_scales
from namjax.layers import ACTIVATIONS, Operator, Step
from namjax.model import multiply, operators
from namjax.subgraph import Bucket, KHop, bucket

MODES = ("remove", "zero")

# Targets per jitted call are limited so that their dense arrays (adjacency, factored first
# step, per-mask vectors) hold about this many floats (128 MB in float32).
_CHUNK_FLOATS = 1 << 25
_MIN_WIDTH = 32  # smaller subgraphs are padded to this many slots (cheap, fewer compilations)
NEVER = np.iinfo(np.int32).max  # rank of padding slots: no interval reaches it


# ---------------------------------------------------------------------------- local operators
def _block(op: Operator, adj: jax.Array) -> jax.Array | None:
    """The operator's neighbour matrix ``A°`` on the subgraph (``None``: no neighbour part)."""
    if op.neighbours == "none":
        return None
    return adj if op.neighbours == "weighted" else (adj > 0).astype(adj.dtype)


def _scales(op: Operator, a, degree: jax.Array, keep: jax.Array, mode: str):
    """Row and column scales ``(r, c)`` of the operator under the keep mask."""
    base = degree if a is None or mode == "zero" else degree - a @ (1.0 - keep)
    r, c = degree_scales(op.norm, base + op.self_loop, jnp)
    return (r * keep, c * keep) if mode == "remove" else (r, c)


def local_forward(
    steps: tuple[Step, ...],
    mode: str,
    sizes: tuple[int, ...],
    adj: jax.Array,
    degrees: dict[str, jax.Array],
    p0: jax.Array,
    keep: jax.Array,
) -> jax.Array:
    """Logits ``(C,)`` of the target (slot 0) of one padded subgraph under one keep mask.

    ``adj (M, M)`` raw induced ``A`` (no self-loops); ``degrees`` maps ``"weighted"`` and
    ``"binary"`` to the global ``(M,)`` row sums of ``A`` and of its 0/1 pattern (1 on
    padding); ``p0 (M, D0)`` rows of the first step's inputs ``[X W_1 | ...]``; ``keep (M,)``
    False on deleted and padding slots. ``sizes = (1, n_1, ..., n_K)`` padded hop-prefix sizes.
    """
    keepf = keep.astype(p0.dtype)
    depth = sum(not s.local for s in steps)
    scaled = {op: _masked(op, adj, degrees, keepf, mode) for op in operators(steps)}
    level, h = 0, None
    for i, step in enumerate(steps):
        n_in = sizes[depth - level]
        n_out = n_in if step.local else sizes[depth - level - 1]
        if i == 0:
            inputs = jnp.split(p0, len(step.terms), axis=1)
        else:
            inputs = [multiply(t, h[:n_in]) for t in step.terms]
        z = 0.0
        for t, x in zip(step.terms, inputs, strict=True):
            for coef, op in zip(t.coefs, t.ops, strict=True):
                z = z + coef * _apply(op, *scaled[op], keepf, mode, x, n_in, n_out, i == 0)
        z = z if step.bias is None else z + step.bias
        h = z if step.act is None else ACTIVATIONS[step.act](z)
        level += not step.local
    return h[0]


def _masked(op: Operator, adj, degrees, keep, mode: str) -> tuple:
    """The operator's neighbour matrix and its row and column scales under the keep mask
    (computed once per operator and mask)."""
    a = _block(op, adj)
    key = "binary" if op.neighbours == "binary" else "weighted"
    return (a, *_scales(op, a, degrees[key], keep, mode))


def _apply(op, a, r, c, keep, mode, x, n_in: int, n_out: int, first: bool) -> jax.Array:
    """``(Op' x)[:n_out]`` for the operator (``a, r, c`` from :func:`_masked`), from rows
    ``x[:n_in]``; on the first step (``x`` = rows of ``P``, zero mode masks them) the product
    with the neighbour matrix is factored so that under vmap over masks it is one matrix
    product per target."""
    col = c * keep if first and mode == "zero" else c
    out = op.self_loop * col[:n_out, None] * x[:n_out]
    if a is not None:
        block = a[:n_out, :n_in]
        if first:  # Σ_w A°[u, w] col_w x[w] with the mask-independent A°[u, w] x[w] factored out
            out = out + jnp.einsum("w,uwh->uh", col[:n_in], block[:, :, None] * x[None, :n_in])
        else:
            out = out + block @ (col[:n_in, None] * x[:n_in])
    return r[:n_out, None] * out


@functools.partial(jax.jit, static_argnames=("mode", "sizes"))
def sweep_logits(steps, adj, degrees, p0, valid, ranks, lo, hi, *, mode, sizes):
    """``(B, R, L, C)`` logits: slot ``j`` is deleted under (ranking r, level l) iff
    ``lo[b, l] <= ranks[b, r, j] < hi[b, l]``."""
    r = ranks[:, :, None, :]
    deleted = (r >= lo[:, None, :, None]) & (r < hi[:, None, :, None])
    keep = valid[:, None, None, :] & ~deleted
    nb, nr, nl, m = keep.shape
    fwd = functools.partial(local_forward, steps, mode, sizes)
    per_mask = jax.vmap(fwd, in_axes=(None, None, None, 0))
    z = jax.vmap(per_mask)(adj, degrees, p0, keep.reshape(nb, nr * nl, m))
    return z.reshape(nb, nr, nl, -1)


@jax.jit
def structure_scores(steps, adj, degrees, valid):
    """Per slot ``(B, M)``: the structural weight of ``u`` in row ``v`` (the target) of the
    product of the model's operators, weights and activations left out (``(Â^K)[v, u]`` for a
    GCN); exact on the K-hop subgraph."""

    def one(adj, degrees, valid):
        keep = valid.astype(adj.dtype)
        walk = jnp.zeros_like(keep).at[0].set(1.0)  # row v of the operator product
        for step in steps:
            if step.local:
                continue
            nxt = 0.0
            for t in step.terms:
                for coef, op in zip(t.coefs, t.ops, strict=True):
                    a, r, cs = _masked(op, adj, degrees, keep, "zero")
                    rw = walk * r
                    part = op.self_loop * rw * cs
                    if a is not None:
                        part = part + (rw @ a) * cs
                    nxt = nxt + coef * part
            walk = nxt
        return walk

    return jax.vmap(one)(adj, degrees, valid)


# ---------------------------------------------------------------------------- packing
@dataclass(frozen=True, eq=False)
class Packed:
    """One bucket's host-side inputs for the jitted functions; the dense ``(M, M)`` induced
    adjacencies are built chunk by chunk from the bucket's edge list."""

    bucket: Bucket
    pairs: np.ndarray  # (B, M) flat pair index of each slot, -1 on padding
    edges: tuple[np.ndarray, ...]  # (row in bucket, receiver slot, sender slot, raw A weight)
    degrees: dict[str, np.ndarray]  # "weighted", "binary": (B, M) global degrees in A
    p0: np.ndarray  # (B, M, D0) rows of the first step's inputs

    def _adjacency(self, start: int, size: int) -> np.ndarray:
        """``(size, M, M)`` raw induced ``A`` of targets ``start..start+size-1`` (zero-padded)."""
        row, receiver, sender, weight = self.edges
        m = self.pairs.shape[1]
        sel = (row >= start) & (row < start + size)
        adj = np.zeros((size, m, m), np.float32)
        adj[row[sel] - start, receiver[sel], sender[sel]] = weight[sel]
        return adj

    def _chunked(self, fn, masks_per_target: int, *arrays) -> list[np.ndarray]:
        """Apply ``fn(adj, *arrays)`` to chunks of this bucket's targets (each padded to one
        size, so a bucket compiles once per call site); concatenate its outputs."""
        n, m = self.pairs.shape
        h, n1 = self.p0.shape[-1], self.bucket.sizes[-2]
        per_target = m * m + n1 * m * h + masks_per_target * (m + n1 * h)
        size = int(max(1, min(n, _CHUNK_FLOATS // per_target)))

        def cut(a, start):
            pad = [(0, max(0, start + size - n))] + [(0, 0)] * (a.ndim - 1)
            return np.pad(a[start : start + size], pad)

        outs = []
        for start in range(0, n, size):
            chunk = jax.tree.map(lambda a, start=start: cut(a, start), list(arrays))
            outs.append([np.asarray(o) for o in fn(self._adjacency(start, size), *chunk)])
        return [np.concatenate(parts)[:n] for parts in zip(*outs, strict=True)]

    def sweep(self, steps, mode: str, ranks, lo, hi) -> np.ndarray:
        """``(B, R, L, C)`` logits for per-slot ``ranks (B, R, M)`` and intervals ``(B, L)``."""
        fn = functools.partial(sweep_logits, steps, mode=mode, sizes=self.bucket.sizes)
        inputs = (self.degrees, self.p0, self.bucket.mask, ranks, lo, hi)
        return self._chunked(lambda *a: (fn(*a),), ranks.shape[1] * lo.shape[1], *inputs)[0]

    def structure(self, steps) -> np.ndarray:
        """``(B, M)`` structural weights (:func:`structure_scores`)."""
        fn = functools.partial(structure_scores, steps)
        return self._chunked(lambda *a: (fn(*a),), 1, self.degrees, self.bucket.mask)[0]

    def occlusion(self, steps, mode: str, delete_target: bool = False) -> np.ndarray:
        """``(B, 1 + M, C)`` logits: column 0 with nothing deleted, column ``1 + j`` with slot
        ``j`` alone deleted (the target, slot 0, only with ``delete_target``; otherwise its
        column repeats column 0)."""
        n, m = self.pairs.shape
        slot = np.broadcast_to(np.arange(m, dtype=np.int32), (n, m))
        allowed = self.bucket.mask & ((slot > 0) | delete_target)
        ranks = np.where(allowed, slot, NEVER)[:, None, :]
        none = np.zeros((n, 1), np.int32)
        lo, hi = np.concatenate([none, slot], 1), np.concatenate([none, slot + 1], 1)
        return self.sweep(steps, mode, ranks, lo, hi)[:, 0]


def _coarse_buckets(kh: KHop) -> list[Bucket]:
    """Merge :func:`namjax.subgraph.bucket`'s groups to bound the number of compilations.

    Widths (padded K-hop sizes) below :data:`_MIN_WIDTH` are padded up to it; the groups of one
    width are merged into two: those whose inner prefix sizes are all small (at most
    ``max(width / 16, 4)``) and the rest. A merged group takes the largest prefix sizes, which
    keeps the prefix layout valid. On Cora's test nodes this turns 31 groups into 8.
    """
    groups: dict[tuple[int, bool], list[Bucket]] = {}
    for bk in bucket(kh)[0]:
        width = max(bk.sizes[-1], _MIN_WIDTH)
        small = max(bk.sizes[1:-1], default=1) <= max(width // 16, 4)
        groups.setdefault((width, small), []).append(bk)
    merged = []
    for (width, _), group in groups.items():
        sizes = np.max([b.sizes for b in group], axis=0)
        sizes[-1] = width
        merged.append(
            Bucket(
                rows=np.concatenate([b.rows for b in group]),
                sizes=tuple(int(x) for x in sizes),
                nodes=np.concatenate(
                    [np.pad(b.nodes, [(0, 0), (0, width - b.nodes.shape[1])]) for b in group]
                ),
                mask=np.concatenate(
                    [np.pad(b.mask, [(0, 0), (0, width - b.mask.shape[1])]) for b in group]
                ),
            )
        )
    return merged


def pack(graph: Graph, kh: KHop, p_all: np.ndarray) -> list[Packed]:
    """Pack the K-hop subgraphs into buckets with their induced edges, degrees and first-step
    input rows ``p_all (N, D0)``."""
    buckets = _coarse_buckets(kh)
    edges = kh.edges(graph)
    edge_target = np.repeat(np.arange(len(kh.targets)), np.diff(edges.offsets))
    raw = np.where(edges.senders == edges.receivers, 0.0, graph.pattern.data[edges.pos])
    where_bucket = np.empty(len(kh.targets), np.int64)
    where_row = np.empty(len(kh.targets), np.int64)
    for i, bk in enumerate(buckets):
        where_bucket[bk.rows] = i
        where_row[bk.rows] = np.arange(len(bk.rows))
    degree = {
        "weighted": np.asarray(graph.adjacency.sum(axis=1), np.float64).ravel(),
        "binary": np.diff(graph.adjacency.indptr).astype(np.float64),
    }
    packed = []
    for i, bk in enumerate(buckets):
        m = bk.nodes.shape[1]
        sel = np.flatnonzero(where_bucket[edge_target] == i)
        local = (where_row[edge_target[sel]], edges.receivers[sel], edges.senders[sel])
        pairs = np.where(bk.mask, kh.offsets[bk.rows][:, None] + np.arange(m), -1)
        deg = {k: np.where(bk.mask, d[bk.nodes], 1.0).astype(np.float32) for k, d in degree.items()}
        p0 = np.where(bk.mask[..., None], p_all[bk.nodes], 0.0).astype(np.float32)
        packed.append(Packed(bk, pairs, (*local, raw[sel].astype(np.float32)), deg, p0))
    return packed


def first_inputs(model, graph: Graph) -> np.ndarray:
    """``(N, D0)`` float32 rows of the first step's inputs ``[X W_1 | ...]``, computed in
    float64 on the host."""
    ws = [np.asarray(t.weight, np.float64) for t in model.steps()[0].terms]
    return np.asarray(graph.features @ np.concatenate(ws, axis=1), np.float32)


def unpack(packed: list[Packed], per_slot: list[np.ndarray], num_pairs: int) -> np.ndarray:
    """Scatter per-bucket ``(B, M, ...)`` slot values back to the flat ``(P, ...)`` pair
    layout."""
    out = np.zeros((num_pairs, *per_slot[0].shape[2:]), np.float64)
    for pk, values in zip(packed, per_slot, strict=True):
        out[pk.pairs[pk.bucket.mask]] = values[pk.bucket.mask]
    return out
