"""Host planning of the pairs engine: which (node, source) pairs and pair edges a chunk of
targets needs, padded so one compiled function serves many calls.

For a chunk of targets with K-hop layout ``kh``, level ``l`` (0..K) holds the pairs ``(v, φ)``
with ``v`` within ``K-l`` hops of some target and ``φ`` within ``l`` hops of ``v``: exactly the
partial walks of ``A + I`` that end at a target. Level K is the targets' (target, source)
layout itself. Pair edges ``(w, φ) → (v, φ)`` follow the entries ``v ← w`` of the pattern of
``A + I``; each carries the entry's position, so the plan holds no weights and serves every
model of the same depth on the graph (the engine gathers each term's operator values at those
positions on the device).

Planning is vectorised with sparse products (:func:`namjax.subgraph.reach`) and pair lookups
through a scratch table filled one block of rows at a time (binary search where rows are
sparse); no ``N x N`` array is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from namjax.graph import Graph
from namjax.subgraph import KHop, expand, reach, round_up, step_pattern

MIN_SLOTS = 1024
"""Smallest padded level or edge count of a chunk, so that small calls (e.g. one target at a
time) share one compiled function; above it counts round up to 8 steps per power of two."""


@jax.tree_util.register_pytree_node_class
@dataclass(frozen=True, eq=False)
class Chunk:
    """Host (or device) arrays of one device call for a range of targets.

    Level ``l`` (0..K) has ``sizes[l]`` pair slots; level K is the targets' (target, source)
    :class:`~namjax.subgraph.KHop` layout. Attributes:
        nodes: per level 0..K, ``(n_l,)`` int32 node ``v`` of each pair ``(v, φ)`` (level 0:
            the sources φ of the pairs ``(φ, φ)``; level K: each pair's target).
        edges: per level 1..K, ``(src (E_l,), dst (E_l,), pos (E_l,))`` int32: pair ``src`` of
            level ``l-1`` feeds pair ``dst`` of level ``l`` through the entry ``pos`` of the
            pattern of ``A + I`` (``v ← w``).
        sizes: ``(n_0, ..., n_K)`` (static).
        ordered: (static) level 1's pair edges are its pairs, one each and in order
            (``dst = arange``), so the engine gathers that level instead of summing it. True
            for K >= 2 (level 1's pairs ``(v, w)`` are exactly the pattern entries ``v ← w``);
            at K = 1, level 1 is the targets' layout.
    """

    nodes: tuple[np.ndarray, ...]
    edges: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    sizes: tuple[int, ...]
    ordered: bool = False

    def tree_flatten(self):
        return (self.nodes, self.edges), (self.sizes, self.ordered)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n_0, ..., n_K, E_1, ..., E_K)``: what a compiled function is specialised to."""
        return (*self.sizes, *(len(e[0]) for e in self.edges))

    def padded(self, shape: tuple[int, ...], num_entries: int) -> Chunk:
        """This chunk with every level and edge list padded to ``shape`` (see :attr:`shape`);
        padded edges point at entry ``num_entries`` (where every operator's values hold a 0)
        and into the last slot."""
        k = len(self.edges)
        sizes, lengths = shape[: k + 1], shape[k + 1 :]
        edges = tuple(
            (_pad(s, e), _pad(d, e, sizes[i + 1] - 1), _pad(p, e, num_entries))
            for i, ((s, d, p), e) in enumerate(zip(self.edges, lengths, strict=True))
        )
        nodes = tuple(_pad(v, n) for v, n in zip(self.nodes, sizes, strict=True))
        # padded edges of an ordered level 1 feed padding slots with zeros, in order or not
        return Chunk(nodes, edges, tuple(sizes), self.ordered and sizes[1] == lengths[0])


def _pad(x: np.ndarray, n: int, value=0) -> np.ndarray:
    return np.concatenate([x, np.full(n - len(x), value, x.dtype)])


def plan_chunk(graph: Graph, kh: KHop) -> Chunk:
    """Host-side arrays for the targets of ``kh`` (their K-hop layout), no padding.

    Level ``l`` holds the pairs ``(v, φ)`` with ``v`` within ``K-l`` hops of some target and
    ``φ`` within ``l`` hops of ``v``: exactly the partial walks that end at a target. Pair
    edges are enumerated from the receiving side, ``v → w ∈ N[v] → (w, φ)``, so every
    candidate is a real edge and the lookups of ``(v, φ)`` come grouped by ``v``.
    """
    k, n = kh.depth, graph.num_nodes
    a_hat = graph.pattern  # row v: senders w of the entries v <- w
    step = step_pattern(graph)
    within = np.zeros((k + 1, n), bool)  # within[d, v]: v is within d hops of some target
    for d in range(k + 1):
        within[d, kh.nodes[kh.hops <= d]] = True
    # previous level: pairs of key i are prev_src[prev_indptr[i]:prev_indptr[i+1]]
    prev_keys = np.flatnonzero(within[k])
    sources = prev_keys.astype(np.int32)
    prev_indptr, prev_src = np.arange(len(prev_keys) + 1), prev_keys
    key_index = np.empty(n, np.int64)  # key_index[prev_keys[i]] = i
    nodes, edges, sizes = [], [], [len(prev_keys)]
    for level in range(1, k + 1):
        keys = kh.targets if level == k else np.flatnonzero(within[k - level])
        recv, pos = expand(a_hat.indptr, keys)  # (v, w) with v = keys[recv]
        key_index[prev_keys] = np.arange(len(prev_keys))
        pair_edge, src = expand(prev_indptr, key_index[a_hat.indices[pos]])  # -> pairs (w, φ)
        ordered = level == 1 and k > 1  # its pairs (v, w) are the entries v <- w, in the same order
        if not ordered:
            query_row, query_col = recv[pair_edge], prev_src[src]
        if level == k:
            dst = _pair_positions(kh.pair_target, kh.nodes, kh.by_node, query_row, query_col, n)
            size = kh.num_pairs
        else:
            prev_indptr, prev_src, _ = reach(step, keys, level)
            row = np.repeat(np.arange(len(keys)), np.diff(prev_indptr))
            if ordered:
                dst = np.arange(len(prev_src))
            else:
                dst = _pair_positions(row, prev_src, None, query_row, query_col, n)
            size = len(prev_src)
            nodes.append(keys[row].astype(np.int32))
            prev_keys = keys
        edges.append((src.astype(np.int32), dst.astype(np.int32), pos[pair_edge].astype(np.int32)))
        sizes.append(size)
    nodes.append(kh.targets[kh.pair_target].astype(np.int32))
    return Chunk((sources, *nodes), tuple(edges), tuple(sizes), ordered=k >= 2)


TABLE_ENTRIES = 2**18
"""Entries of the int32 scratch table of :func:`_pair_positions` (1 MiB: fits a core's cache)."""
TABLE_MIN_QUERIES = 512
"""Queries per table block below which :func:`_pair_positions` binary-searches instead (a
block costs about as much as 500 searches)."""


def _pair_positions(
    rows: np.ndarray,
    cols: np.ndarray,
    by_key: np.ndarray | None,
    query_rows: np.ndarray,
    query_cols: np.ndarray,
    n: int,
) -> np.ndarray:
    """Index ``j`` of each query ``(query_rows, query_cols)`` among the pairs
    ``(rows[j], cols[j])``; every query must be a pair, columns are in ``0..n-1``.

    ``rows`` and ``query_rows`` are non-decreasing; ``by_key`` lists the pairs in
    ``(row, col)`` order (``None``: already in that order). Dense rows (many queries per
    table entry) are answered through a ``(rows of a block) x n`` scratch table, filled and
    read one block of rows at a time; sparse ones by binary search on ``row * n + col``.
    """
    per_block = max(TABLE_ENTRIES // n, 1)
    cuts = np.arange(0, int(rows[-1]) + 1 + per_block, per_block)
    if (len(cuts) - 1) * TABLE_MIN_QUERIES > len(query_rows):
        sorted_keys = rows * n + cols if by_key is None else (rows * n + cols)[by_key]
        found = np.searchsorted(sorted_keys, query_rows * n + query_cols)
        return found if by_key is None else by_key[found]
    pair_cut, query_cut = np.searchsorted(rows, cuts), np.searchsorted(query_rows, cuts)
    table = np.empty(per_block * n, np.int32)  # stale entries are never read
    out = np.empty(len(query_rows), np.int32)
    for i in range(len(cuts) - 1):
        base = cuts[i] * n
        p, q = slice(pair_cut[i], pair_cut[i + 1]), slice(query_cut[i], query_cut[i + 1])
        table[rows[p] * n + cols[p] - base] = np.arange(
            pair_cut[i], pair_cut[i + 1], dtype=np.int32
        )
        out[q] = table[query_rows[q] * n + query_cols[q] - base]
    return out


def split_targets(kh: KHop, widths: tuple[int, ...], budget: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` target ranges whose chunks should each need about
    ``budget`` bytes of device memory or less, estimated from their K-hop pair counts.

    Per (target, source) pair: its output row plus, for each of the K levels, about one
    pair edge (message row, two indices, a weight). On Cora this overestimates the measured
    arrays about 2.5x, so the budget errs on the safe side.
    """
    width = max(widths)
    per_pair = 4 * (width + len(widths) * (width + 3))
    cost = np.cumsum(np.diff(kh.offsets)) * per_pair
    bounds = np.searchsorted(cost, np.arange(1, int(cost[-1] // budget) + 1) * budget)
    stops = np.unique(np.clip(np.append(bounds, len(kh.targets)), 1, len(kh.targets)))
    return list(zip(np.append(0, stops[:-1]).tolist(), stops.tolist(), strict=True))


def padded_chunks(
    plans: list[Chunk], num_entries: int, at_least: tuple[int, ...] | None = None
) -> list[Chunk]:
    """``plans`` padded to one shape: each count the largest over the plans (and ``at_least``),
    rounded up to 8 steps per power of two and at least :data:`MIN_SLOTS`."""
    shape = tuple(
        round_up(max(x), minimum=MIN_SLOTS) for x in zip(*(c.shape for c in plans), strict=True)
    )
    if at_least is not None:
        shape = tuple(map(max, shape, at_least))
    return [c.padded(shape, num_entries) for c in plans]
