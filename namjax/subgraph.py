"""Host-side K-hop subgraphs: extraction for many targets at once, local edge lists, bucketing.

A :class:`KHop` holds, for T targets, each target's K-hop node set in one flat CSR-like layout:
target ``t`` owns the slice ``offsets[t]:offsets[t+1]`` of ``nodes``/``hops``; inside a slice
nodes are sorted by hop distance, then by node id, so the target comes first (hop 0) and the
nodes within ``d`` hops form a prefix. Extraction expands all targets' frontiers together with
sparse matrix products; there is no Python loop over nodes.

Local edge lists (:meth:`KHop.edges`) carry the *global* ``Â`` weights (a subgraph is never
renormalised) and the raw ``A`` weights. :func:`bucket` packs targets into a few groups whose
per-hop prefix sizes are padded to powers of two, so one compiled function serves each group;
:func:`size_buckets` makes fewer, coarser groups by whole subgraph size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from namjax.graph import Graph, GraphError, unit_pattern


@dataclass(frozen=True, eq=False)
class KHop:
    """K-hop neighbourhoods of T targets in a flat layout (P pairs in total).

    Attributes:
        targets: ``(T,)`` int64 target node ids.
        offsets: ``(T+1,)`` int64; target ``t`` owns pairs ``offsets[t]:offsets[t+1]``.
        nodes: ``(P,)`` int64 global node ids (target first, then by hop, then by id).
        hops: ``(P,)`` int8 hop distance of each node from its target (0..K).
        depth: K.
        num_nodes: N, the number of nodes of the graph.
    """

    targets: np.ndarray
    offsets: np.ndarray
    nodes: np.ndarray
    hops: np.ndarray
    depth: int
    num_nodes: int
    _by_node: np.ndarray | None = field(default=None, repr=False)

    @property
    def by_node(self) -> np.ndarray:
        """``(P,)`` pair positions in (target, node id) order: ``by_node[j]`` is the layout
        position of the j-th smallest ``(target, node)`` pair."""
        if self._by_node is not None:
            return self._by_node
        return np.argsort(self.pair_target * self.num_nodes + self.nodes, kind="stable")

    def rows(self, start: int, stop: int) -> KHop:
        """The sub-layout of targets ``start:stop`` (a view, no copy of the pair arrays)."""
        lo, hi = self.offsets[start], self.offsets[stop]
        return KHop(
            targets=self.targets[start:stop],
            offsets=self.offsets[start : stop + 1] - lo,
            nodes=self.nodes[lo:hi],
            hops=self.hops[lo:hi],
            depth=self.depth,
            num_nodes=self.num_nodes,
            _by_node=self.by_node[lo:hi] - lo,
        )

    @property
    def num_pairs(self) -> int:
        return len(self.nodes)

    @cached_property
    def pair_target(self) -> np.ndarray:
        """``(P,)`` index (into ``targets``) of the target owning each pair."""
        return np.repeat(np.arange(len(self.targets)), np.diff(self.offsets))

    @cached_property
    def level_sizes(self) -> np.ndarray:
        """``(T, K+1)`` int64: ``[t, d]`` = number of nodes within ``d`` hops of target ``t``."""
        k1 = self.depth + 1
        counts = np.bincount(
            self.pair_target * k1 + self.hops, minlength=len(self.targets) * k1
        ).reshape(-1, k1)
        return np.cumsum(counts, axis=1)

    def local_index(self, t: np.ndarray, node: np.ndarray) -> np.ndarray:
        """Position of ``node`` inside target ``t``'s slice (``-1`` where absent); shapes match."""
        n = self.num_nodes
        order = self.by_node
        sorted_keys = (self.pair_target * n + self.nodes)[order]
        query = np.asarray(t, np.int64) * n + np.asarray(node, np.int64)
        pos = np.minimum(np.searchsorted(sorted_keys, query), len(sorted_keys) - 1)
        found = sorted_keys[pos] == query
        return np.where(found, order[pos] - self.offsets[np.asarray(t)], -1)

    def edges(
        self, graph: Graph, max_sender_hop: int | None = None, max_receiver_hop: int | None = None
    ) -> LocalEdges:
        """Directed local edges of every subgraph, self-loops included, as pattern entries.

        Lists each edge ``sender -> receiver`` of ``A + I`` whose two ends lie in the target's
        subgraph, whose sender is within ``max_sender_hop`` hops and whose receiver is within
        ``max_receiver_hop`` hops (defaults K: the whole induced subgraph, both directions of
        every edge). Edges between two hop-K nodes are never on a walk of length K ending at
        the target, so ``max_sender_hop = K-1`` gives what forward propagation to the target
        needs and ``max_receiver_hop = K-1`` what back-propagation from it needs. Edges are
        enumerated from the more restricted end.
        """
        max_send = self.depth if max_sender_hop is None else max_sender_hop
        max_recv = self.depth if max_receiver_hop is None else max_receiver_hop
        from_receivers = max_recv < max_send
        # row x of the pattern of A + I: the other ends y of x's edges (the pattern is
        # symmetric, so the same rows serve either end)
        pattern = graph.pattern
        own_max, other_max = (max_recv, max_send) if from_receivers else (max_send, max_recv)
        pair = np.flatnonzero(self.hops <= own_max)
        x = self.nodes[pair]
        owner, pos = expand(pattern.indptr, x)
        e_pair = pair[owner]
        t = self.pair_target[e_pair]
        other = self.local_index(t, pattern.indices[pos])
        keep = other >= 0
        keep[keep] = self.hops[self.offsets[t[keep]] + other[keep]] <= other_max
        t, pos, other, e_pair = t[keep], pos[keep], other[keep], e_pair[keep]
        own = e_pair - self.offsets[t]
        senders, receivers = (other, own) if from_receivers else (own, other)
        return LocalEdges(
            offsets=np.concatenate([[0], np.cumsum(np.bincount(t, minlength=len(self.targets)))]),
            senders=senders.astype(np.int32),
            receivers=receivers.astype(np.int32),
            pos=pos if from_receivers else graph.transpose_positions[pos],
        )


@dataclass(frozen=True, eq=False)
class LocalEdges:
    """Edges of each target's subgraph, flat: target ``t`` owns ``offsets[t]:offsets[t+1]``.

    Attributes:
        offsets: ``(T+1,)`` int64.
        senders, receivers: ``(E,)`` int32 *local* indices into the target's slice of
            :attr:`KHop.nodes`.
        pos: ``(E,)`` int64 position of the entry ``receiver ← sender`` in the graph's pattern of
            ``A + I`` (:attr:`~namjax.graph.Graph.pattern`): where every operator's value
            ``Op[receiver, sender]`` is found.
    """

    offsets: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    pos: np.ndarray


def reach(step: sp.csr_matrix, keys: np.ndarray, K: int) -> tuple[np.ndarray, ...]:
    """Nodes within ``K`` hops of each key, sorted by (key, node id): ``(indptr (T+1,), nodes
    (P,), hops (P,) int8)``.

    ``step`` is the bool pattern of ``A + I`` with sorted indices (:func:`step_pattern`). All
    keys are expanded together: ``R_d = R_{d-1} (A + I)`` as sparse ``(T, N)`` 0/1 patterns
    (``R_1`` is a row selection), each in sorted CSR; a node's hop is the first ``d`` at which
    it is reached. Memory is O(pairs), never O(N^2).
    """
    n = step.shape[0]
    num_t = len(keys)
    front = sp.csr_matrix((np.ones(num_t, bool), keys, np.arange(num_t + 1)), shape=(num_t, n))
    # seen counts at how many of the levels 0..K a (key, node) pair was within reach;
    # hop = K + 1 - seen. Sorted operands make each sum a linear merge; a product's columns
    # are sorted by converting to CSC and back (two counting sorts, faster than sorting rows).
    seen = unit_pattern(front)
    for d in range(K):
        front = step[keys] if d == 0 else (front @ step).tocsc().tocsr()
        seen = seen + unit_pattern(front)
    return seen.indptr.astype(np.int64), seen.indices.astype(np.int64), K + 1 - seen.data


def step_pattern(graph_or_csr: Graph | sp.spmatrix) -> sp.csr_matrix:
    """The bool pattern of ``A + I`` with sorted indices (the graph's cached
    :attr:`~namjax.graph.Graph.reach_pattern`, or built from an adjacency matrix)."""
    if isinstance(graph_or_csr, Graph):
        return graph_or_csr.reach_pattern
    adj = sp.csr_matrix(graph_or_csr)
    step = ((adj != 0) + sp.identity(adj.shape[0], dtype=bool, format="csr")).tocsr()
    step.sort_indices()
    return step


def khop(graph_or_csr: Graph | sp.spmatrix, targets, K: int) -> KHop:
    """K-hop neighbourhoods of ``targets`` (ids, shape ``(T,)``) over the graph's adjacency,
    vectorised over all targets (see :func:`reach`)."""
    adj = graph_or_csr.adjacency if isinstance(graph_or_csr, Graph) else sp.csr_matrix(graph_or_csr)
    n = adj.shape[0]
    if not 0 <= K <= 8:
        raise GraphError(f"hop count K must be in 0..8, got {K}")
    if isinstance(graph_or_csr, Graph):
        targets = graph_or_csr.check_nodes(targets, "target")
    else:
        targets = np.atleast_1d(np.asarray(targets, np.int64))
        if targets.size and (targets.min() < 0 or targets.max() >= n):
            raise GraphError(f"target ids must be in 0..{n - 1}")
    indptr, nodes, hops = reach(step_pattern(graph_or_csr), targets, K)
    row_of = np.repeat(np.arange(len(targets)), np.diff(indptr))
    key = row_of * (K + 1) + hops
    if len(targets) * (K + 1) <= 2**16:  # numpy's stable sort of 16-bit keys is a radix sort
        key = key.astype(np.uint16)
    order = np.argsort(key, kind="stable")  # ids stay sorted within a hop
    by_node = np.empty_like(order)
    by_node[order] = np.arange(len(order))
    return KHop(
        targets=targets,
        offsets=indptr,
        nodes=nodes[order],
        hops=hops[order].astype(np.int8),
        depth=K,
        num_nodes=n,
        _by_node=by_node,
    )


def next_pow2(x: np.ndarray) -> np.ndarray:
    """Smallest power of two ``>= x`` (elementwise, ``x >= 1``)."""
    x = np.maximum(np.asarray(x, np.int64), 1)
    return (1 << np.ceil(np.log2(x)).astype(np.int64)).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Bucket:
    """Targets whose per-hop prefix sizes pad to the same powers of two.

    Attributes:
        rows: ``(B,)`` indices into :attr:`KHop.targets` of the targets in this bucket.
        sizes: ``(K+1,)`` padded prefix sizes ``(1, n_1, ..., n_K)``: nodes within ``d`` hops
            of a target occupy local slots ``0..n_d-1`` after padding.
        nodes: ``(B, n_K)`` int64 global node ids, padded with 0.
        mask: ``(B, n_K)`` bool, True on real (target, node) pairs.
    """

    rows: np.ndarray
    sizes: tuple[int, ...]
    nodes: np.ndarray
    mask: np.ndarray


def bucket(kh: KHop) -> tuple[list[Bucket], dict]:
    """Group targets by their per-hop prefix sizes rounded up to powers of two.

    Within a bucket every target's nodes within ``d`` hops fit in the first ``n_d`` slots, so
    hop-restricted operators are dense prefix blocks. Returns the buckets (largest first) and
    stats: ``pairs`` (real), ``padded_pairs`` (slots over all buckets), ``padding_overhead``
    (their ratio), ``max_padding_overhead`` (what padding everything to the largest
    neighbourhood would cost) and ``buckets``.
    """
    sizes = kh.level_sizes
    padded = next_pow2(sizes)
    keys, inverse = np.unique(padded, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    buckets = [
        _packed(kh, np.flatnonzero(inverse == b), keys[b])
        for b in np.argsort(-keys[:, -1], kind="stable")
    ]
    pairs = kh.num_pairs
    padded_pairs = sum(b.nodes.size for b in buckets)
    largest = int(sizes[:, -1].max(initial=1)) * len(kh.targets)
    stats = {
        "pairs": pairs,
        "padded_pairs": padded_pairs,
        "padding_overhead": padded_pairs / max(pairs, 1),
        "max_padding_overhead": largest / max(pairs, 1),
        "buckets": len(buckets),
    }
    return buckets, stats


def _packed(kh: KHop, rows: np.ndarray, sizes: np.ndarray) -> Bucket:
    """The targets ``rows`` laid out as one :class:`Bucket` of padded prefix sizes ``sizes``:
    each target's slice fills the first slots of its row (so nodes within ``d`` hops sit in
    the first ``n_d`` slots)."""
    width = int(sizes[-1])
    length = np.diff(kh.offsets)[rows]
    mask = np.arange(width)[None, :] < length[:, None]
    flat = (kh.offsets[rows][:, None] + np.arange(width)[None, :])[mask]
    nodes = np.zeros((len(rows), width), np.int64)
    nodes[mask] = kh.nodes[flat]
    return Bucket(rows, tuple(int(s) for s in sizes), nodes, mask)


def round_up(x, steps: int = 8, minimum: int = 1):
    """``x >= 1`` rounded up to one of ``steps`` evenly spaced sizes per power of two (waste
    below ``1 / steps`` beyond the first few integers), and to at least ``minimum``: few
    distinct padded shapes. Elementwise on an array (returns an int64 array), else an int."""
    v = np.asarray(x, np.int64)
    step = np.maximum(next_pow2(v) // steps, 1)
    out = np.maximum(-(-v // step) * step, minimum)
    return out if v.ndim else int(out)


def expand(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ``i``, the entries ``indptr[rows[i]]:indptr[rows[i]+1]`` of a CSR-like layout,
    concatenated: returns ``(i per entry, entry index)``."""
    starts, counts = indptr[rows], indptr[rows + 1] - indptr[rows]
    owner = np.repeat(np.arange(len(rows)), counts)
    return owner, np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())


def size_buckets(
    kh: KHop, size: np.ndarray | None = None, min_width: int = 16, min_targets: int = 32
) -> list[Bucket]:
    """Few buckets: targets grouped by the power of two of one per-target ``size`` only.

    ``size`` is ``(T,)`` (default: the K-hop node counts; e.g. edge counts when work scales
    with edges); sizes below ``min_width`` count as ``min_width``. Going from small to large, a group of fewer than ``min_targets`` targets is
    merged into the next larger one (its padding costs less than a compilation). A bucket's
    width is its largest subgraph rounded up (:func:`round_up`, at least ``min_width``); its
    prefix sizes are its members' largest. Returns the buckets, smallest first.
    """
    sizes = kh.level_sizes
    key = next_pow2(np.maximum(sizes[:, -1] if size is None else size, min_width))
    keys = np.unique(key)
    buckets, carry = [], np.zeros(0, np.int64)
    for i, k in enumerate(keys):
        rows = np.concatenate([carry, np.flatnonzero(key == k)])
        if len(rows) < min_targets and i < len(keys) - 1:
            carry = rows
            continue
        carry = np.zeros(0, np.int64)
        prefix = sizes[rows].max(axis=0)
        prefix[-1] = round_up(prefix[-1], minimum=min_width)
        buckets.append(_packed(kh, np.sort(rows), prefix))
    return buckets
