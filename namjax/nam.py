"""The Node Attribution Method: exact per-node contributions to a GCN's logits.

For a target ``a``, class ``c`` and source node ``φ`` the contribution is gradient x input summed
over ``φ``'s features, ``C(φ→a, c) = Σ_i X[φ,i] ∂Z_K[a,c]/∂X[φ,i]`` (pre-softmax logits, dropout
off). It is non-zero only within K hops of ``a`` and equals the sum, over every walk
``φ = v0 → v1 → … → vK = a`` of ``A + I``, of ``X[φ] W1`` pushed through
``Â[v_l, v_{l-1}]``, the active units ``σ'(z_l[v_l])`` and ``W_{l+1}`` (see :func:`paths`).

How the engine computes it, for all targets and all classes at once:

* ``X`` enters the network only through ``P = X W1``, and ``P[φ]`` is linear in ``X[φ]``, so
  ``Σ_i X[φ,i] ∂Z/∂X[φ,i] = Σ_j P[φ,j] ∂Z/∂P[φ,j]``. One global pass gives ``P``, every
  layer's unit derivatives ``σ'(z_l)`` (exactly the ones the K-hop subgraphs would give, as
  their ``Â`` weights are the global ones), the logits and the bias term; the F feature
  columns are never touched again.
* Forward mode from every source at once (:func:`explain_chunk`): level ``l`` holds, for each
  pair ``(v, φ)`` with ``φ`` within ``l`` hops of ``v`` and ``v`` within ``K-l`` hops of a
  target, the ``h_l``-vector part of ``z_l[v]`` that flows from ``P[φ]``. Each level is one
  gather, one segment sum over the pair edges ``(w, φ) → (v, φ)`` weighted by ``Â[v, w]``, a
  ``σ'`` mask and one matmul; level K is the (target, source) layout itself. Carrying
  ``h``-vectors per pair (rather than ``C x h`` cotangents per pair, as per-target reverse mode
  would) and sharing the partial walks of all targets keeps the work at about
  ``#pair-edges x h`` and avoids per-target padding.
* The host plans each chunk of targets (:func:`plan_chunk`, vectorised with sparse products
  and scratch-table lookups) while the device runs the global pass; chunks are padded to one
  shape (counts rounded up to 8 steps per power of two) so a call compiles one function,
  reused across calls and models of equal shapes; targets are split into chunks by a device
  memory budget.

``engine="subgraph"`` (:mod:`namjax.nam_subgraph`) computes the same contributions the other way
round: per-target reverse mode on each padded K-hop subgraph, vmapped over size buckets. It
shares the global pass, class slots, compile cache and result assembly with this engine.

Bias term: ``B[a,c] = Σ_l Σ_u ⟨∂Z[a,c]/∂z_l[u], b_l⟩``. For ReLU, leaky ReLU and identity
activations the network is positively homogeneous in ``(P, b)`` at fixed activation pattern, so
``Σ_φ C(φ→a,c) + B[a,c] = Z_K[a,c]`` exactly (completeness). For tanh and ELU the
contributions are still exact gradient x input and the bias is the same bias-gradient term, but
the two no longer sum to the logit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from namjax.graph import Graph, GraphError
from namjax.model import ACTIVATIONS, GCN, GCNParams, device_graph, gcn_params, propagate
from namjax.subgraph import KHop, khop, reach, round_up

COMPLETE_ACTIVATIONS = frozenset({"relu", "leaky_relu", "identity"})
"""Activations for which contributions + bias sum exactly to the logit."""

DEFAULT_CHUNK_BUDGET = 256 * 2**20
MIN_SLOTS = 1024
"""Smallest padded level or edge count of a chunk, so that small calls (e.g. one target at a
time) share one compiled function; above it counts round up to 8 steps per power of two."""


# ---------------------------------------------------------------------------- result type
@dataclass(frozen=True, eq=False)
class Attribution:
    """NAM contributions of T targets for Q requested class slots each (P (target, source) pairs).

    Attributes:
        targets: ``(T,)`` int64 target node ids.
        offsets: ``(T+1,)`` int64; target ``t`` owns pairs ``offsets[t]:offsets[t+1]``.
        sources: ``(P,)`` int64 source node ids (per target: itself first, then by hop, by id).
        hops: ``(P,)`` int8 hop distance from source to target.
        contributions: ``(P, Q)`` float contributions ``C(source→target, classes[t, q])``.
        classes: ``(T, Q)`` int64 class id of each slot.
        logits: ``(T, Q)`` pre-softmax logits ``Z_K[target, class]``.
        bias: ``(T, Q)`` bias term ``B[target, class]``.
        predicted: ``(T,)`` int64 argmax of each target's logits over all classes.
        labels: ``(T,)`` int64 true labels (``-1`` unknown).
        num_nodes: N.
        depth: K.
        stats: timings (seconds) and engine counters of the call that produced it.
    """

    targets: np.ndarray
    offsets: np.ndarray
    sources: np.ndarray
    hops: np.ndarray
    contributions: np.ndarray
    classes: np.ndarray
    logits: np.ndarray
    bias: np.ndarray
    predicted: np.ndarray
    labels: np.ndarray
    num_nodes: int
    depth: int
    stats: dict = field(default_factory=dict, compare=False)

    @property
    def num_slots(self) -> int:
        """Q, the number of class slots per target."""
        return self.classes.shape[1]

    def _row(self, node: int) -> int:
        hit = np.flatnonzero(self.targets == node)
        if hit.size == 0:
            raise GraphError(f"node {node} is not among the explained targets")
        return int(hit[0])

    def for_target(self, node: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sources (n,), hops (n,), contributions (n, Q))`` of one target."""
        t = self._row(node)
        s = slice(self.offsets[t], self.offsets[t + 1])
        return self.sources[s], self.hops[s], self.contributions[s]

    def _slot(self, t: int, cls: int | None) -> int:
        row = self.classes[t]
        if cls is None:
            hit = np.flatnonzero(row == self.predicted[t])
            return int(hit[0]) if hit.size else 0
        hit = np.flatnonzero(row == cls)
        if hit.size == 0:
            raise GraphError(f"class {cls} was not computed for target {self.targets[t]}")
        return int(hit[0])

    def ranked(
        self, node: int, cls: int | None = None, k: int | None = None
    ) -> list[tuple[int, int, float]]:
        """The target's contributors as ``(source, hop, contribution)``, largest first.

        ``cls`` defaults to the predicted class (or the only computed slot); ``k`` keeps the
        first k.
        """
        t = self._row(node)
        sources, hops, contrib = self.for_target(node)
        values = contrib[:, self._slot(t, cls)]
        order = np.argsort(-values, kind="stable")[:k]
        return [(int(sources[i]), int(hops[i]), float(values[i])) for i in order]

    def hop_summary(self, node: int) -> np.ndarray:
        """``(K+1, Q)`` contributions summed per hop distance (row 0: the node itself).

        Together with :attr:`bias` the rows add up to the logits (completeness, ReLU).
        """
        _, hops, contrib = self.for_target(node)
        out = np.zeros((self.depth + 1, self.num_slots), contrib.dtype)
        np.add.at(out, hops, contrib)
        return out

    def dense(self, max_entries: int = 50_000_000) -> np.ndarray:
        """``(T, N, Q)`` contributions with zeros beyond K hops (for small graphs)."""
        t, n, q = len(self.targets), self.num_nodes, self.num_slots
        if t * n * q > max_entries:
            raise GraphError(
                f"dense attribution would hold {t * n * q} entries (> {max_entries}); "
                "use the sparse fields or fewer targets"
            )
        out = np.zeros((t, n, q), self.contributions.dtype)
        out[np.repeat(np.arange(t), np.diff(self.offsets)), self.sources] = self.contributions
        return out

    def to_table(self) -> pa.Table:
        """Long table, one row per (target, source, class): target, source, hop, class,
        contribution."""
        q = self.num_slots
        pair_target = np.repeat(self.targets, np.diff(self.offsets))
        pair_row = np.repeat(np.arange(len(self.targets)), np.diff(self.offsets))
        return pa.table(
            {
                "target": np.repeat(pair_target, q).astype(np.int32),
                "source": np.repeat(self.sources, q).astype(np.int32),
                "hop": np.repeat(self.hops, q).astype(np.int8),
                "class": self.classes[pair_row].ravel().astype(np.int32),
                "contribution": self.contributions.ravel(),
            }
        )

    def targets_table(self) -> pa.Table:
        """One row per (target, class slot): target, class, logit, bias, predicted, label."""
        q = self.num_slots
        return pa.table(
            {
                "target": np.repeat(self.targets, q).astype(np.int32),
                "class": self.classes.ravel().astype(np.int32),
                "logit": self.logits.ravel(),
                "bias": self.bias.ravel(),
                "predicted": np.repeat(self.predicted, q).astype(np.int32),
                "label": np.repeat(self.labels, q).astype(np.int32),
            }
        )

    def save(self, path: str | Path) -> Path:
        """Write ``path/contributions.parquet`` and ``path/targets.parquet``; returns ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {b"namjax": json.dumps({"num_nodes": self.num_nodes, "depth": self.depth}).encode()}
        table = self.to_table()
        pq.write_table(table.replace_schema_metadata(meta), path / "contributions.parquet")
        pq.write_table(self.targets_table(), path / "targets.parquet")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Attribution:
        """Read an attribution written by :meth:`save`."""
        path = Path(path)
        for name in ("contributions.parquet", "targets.parquet"):
            if not (path / name).exists():
                raise FileNotFoundError(f"{path / name} not found (not an attribution directory)")
        contrib = pq.read_table(path / "contributions.parquet")
        meta = json.loads(contrib.schema.metadata[b"namjax"])
        tt = pq.read_table(path / "targets.parquet")
        slot_target = tt["target"].to_numpy().astype(np.int64)
        # Q = length of the first run of equal targets (targets are unique)
        q = int(np.argmax(np.append(slot_target[1:] != slot_target[:-1], True))) + 1
        targets = slot_target[::q]
        pair_target = contrib["target"].to_numpy()[::q].astype(np.int64)
        starts = np.flatnonzero(np.append(True, pair_target[1:] != pair_target[:-1]))
        return cls(
            targets=targets,
            offsets=np.append(starts, len(pair_target)).astype(np.int64),
            sources=contrib["source"].to_numpy()[::q].astype(np.int64),
            hops=contrib["hop"].to_numpy()[::q].astype(np.int8),
            contributions=contrib["contribution"].to_numpy().reshape(-1, q),
            classes=tt["class"].to_numpy().astype(np.int64).reshape(-1, q),
            logits=tt["logit"].to_numpy().reshape(-1, q),
            bias=tt["bias"].to_numpy().reshape(-1, q),
            predicted=tt["predicted"].to_numpy()[::q].astype(np.int64),
            labels=tt["label"].to_numpy()[::q].astype(np.int64),
            num_nodes=int(meta["num_nodes"]),
            depth=int(meta["depth"]),
        )


# ---------------------------------------------------------------------------- device side
def _unit_derivative(act, z: jax.Array) -> jax.Array:
    return jax.jvp(act, (z,), (jnp.ones_like(z),))[1]


def forward(params: GCNParams, dg, activation: str) -> tuple:
    """One global pass: ``P = X W1`` ``(N, h1)``, ``σ'(z_l)`` ``(N, h_l)`` for l < K, logits
    ``(N, C)`` and the bias term ``(N, C)`` (the logits' derivative along the biases, applied
    to the biases: a forward-mode product, exact for every activation)."""
    act = ACTIVATIONS[activation]
    p = dg.features @ params[0][0]

    def logits_and_sig(biases):
        h, sig = p, []
        for i, ((w, _), b) in enumerate(zip(params, biases, strict=True)):
            z = propagate(dg, h if i == 0 else h @ w) + b
            if i < len(params) - 1:
                sig.append(_unit_derivative(act, z))
                h = act(z)
        return z, tuple(sig)

    biases = tuple(b for _, b in params)
    (logits, sig), (bias, _) = jax.jvp(logits_and_sig, (biases,), (biases,))
    return p, sig, logits, bias


def explain_chunk(params: GCNParams, p: jax.Array, sig: tuple[jax.Array, ...], chunk) -> jax.Array:
    """Contributions of one chunk, ``(n_K, C)`` in its targets' (target, source) layout.

    Forward mode from every source at once: level ``l`` holds, for each pair ``(v, φ)`` with
    ``φ`` within ``l`` hops of ``v``, the part of ``z_l[v]`` that flows from ``P[φ]``. Level 0
    is ``P[φ]`` itself; level ``l`` sums ``Â[v, w]`` times level ``l-1`` (masked by
    ``σ'(z_{l-1}[w])`` and multiplied by ``W_l``) over the pair edges ``(w, φ) → (v, φ)``.
    At level K the pairs are (target, source) and the values are ``C(φ→a, ·)``.
    """
    TRACES["chunk"] += 1
    values = p[chunk.sources]
    for layer, edges in enumerate(chunk.edges, start=1):
        src, dst, weight = edges
        values = jax.ops.segment_sum(
            weight[:, None] * values[src], dst, num_segments=chunk.sizes[layer]
        )
        if layer < len(chunk.edges):
            values = (values * sig[layer - 1][chunk.nodes[layer - 1]]) @ params[layer][0]
    return values


def _forward_traced(params, dg, *, activation):
    TRACES["forward"] += 1
    return forward(params, dg, activation)


TRACES = {"forward": 0, "chunk": 0, "subgraph": 0}
"""How often each device function was traced (for tests: a warm call traces nothing)."""

_explain_jit = jax.jit(explain_chunk)
_forward_jit = jax.jit(_forward_traced, static_argnames=("activation",))
_COMPILED: dict = {}


def _signature(*trees) -> tuple:
    leaves, treedef = jax.tree.flatten(trees)
    return (str(treedef), tuple((tuple(x.shape), str(x.dtype)) for x in leaves))


def compiled(jitted, static: dict, *args):
    """``jitted`` AOT-compiled for the shapes and dtypes of ``args`` (and the ``static``
    keyword arguments), once per process and backend; returns ``(executable, seconds spent
    compiling)`` (0.0 when cached)."""
    key = (jitted, tuple(sorted(static.items())), jax.default_backend(), _signature(*args))
    if key in _COMPILED:
        return _COMPILED[key], 0.0
    t0 = time.perf_counter()
    _COMPILED[key] = jitted.lower(*args, **static).compile()
    return _COMPILED[key], time.perf_counter() - t0


# ---------------------------------------------------------------------------- host planning
@jax.tree_util.register_pytree_node_class
@dataclass(frozen=True, eq=False)
class Chunk:
    """Host (or device) arrays of one device call for a range of targets.

    Level ``l`` (0..K) has ``sizes[l]`` pair slots; level K is the targets' (target, source)
    :class:`~namjax.subgraph.KHop` layout. Attributes:
        sources: ``(n_0,)`` node ids φ of the level-0 pairs ``(φ, φ)``.
        nodes: per level 1..K-1, ``(n_l,)`` node ``v`` of each pair ``(v, φ)``.
        edges: per level 1..K, ``(src (E_l,), dst (E_l,), weight (E_l,))``: pair ``src`` of
            level ``l-1`` feeds pair ``dst`` of level ``l`` with weight ``Â[v, w]``.
        sizes: ``(n_0, ..., n_K)`` (static).
    """

    sources: np.ndarray
    nodes: tuple[np.ndarray, ...]
    edges: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    sizes: tuple[int, ...]

    def tree_flatten(self):
        return (self.sources, self.nodes, self.edges), self.sizes

    @classmethod
    def tree_unflatten(cls, sizes, children):
        return cls(*children, sizes)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n_0, ..., n_K, E_1, ..., E_K)``: what a compiled function is specialised to."""
        return (*self.sizes, *(len(e[0]) for e in self.edges))

    def padded(self, shape: tuple[int, ...]) -> Chunk:
        """This chunk with every level and edge list zero-padded to ``shape`` (see
        :attr:`shape`); padded edges carry weight 0 into the last slot."""
        k = len(self.edges)
        sizes, lengths = shape[: k + 1], shape[k + 1 :]
        edges = tuple(
            (_pad(s, e), _pad(d, e, sizes[i + 1] - 1), _pad(w, e))
            for i, ((s, d, w), e) in enumerate(zip(self.edges, lengths, strict=True))
        )
        nodes = tuple(_pad(v, n) for v, n in zip(self.nodes, sizes[1:], strict=False))
        return Chunk(_pad(self.sources, sizes[0]), nodes, edges, tuple(sizes))


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
    a_hat = graph.normalized_adjacency  # row v: senders w with Â[v, w]
    within = np.zeros((k + 1, n), bool)  # within[d, v]: v is within d hops of some target
    for d in range(k + 1):
        within[d, kh.nodes[kh.hops <= d]] = True
    # previous level: pairs of key i are prev_src[prev_indptr[i]:prev_indptr[i+1]]
    prev_keys = np.flatnonzero(within[k])
    prev_indptr, prev_src = np.arange(len(prev_keys) + 1), prev_keys
    key_index = np.empty(n, np.int64)  # key_index[prev_keys[i]] = i
    nodes, edges, sizes = [], [], [len(prev_keys)]
    for level in range(1, k + 1):
        keys = kh.targets if level == k else np.flatnonzero(within[k - level])
        recv, pos = _expand(a_hat.indptr, keys)  # (v, w) with v = keys[recv]
        key_index[prev_keys] = np.arange(len(prev_keys))
        pair_edge, src = _expand(prev_indptr, key_index[a_hat.indices[pos]])  # -> pairs (w, φ)
        query_row, query_col = recv[pair_edge], prev_src[src]
        if level == k:
            dst = _pair_positions(kh.pair_target, kh.nodes, kh.by_node, query_row, query_col, n)
            size = kh.num_pairs
        else:
            prev_indptr, prev_src, _ = reach(graph.adjacency, keys, level)
            row = np.repeat(np.arange(len(keys)), np.diff(prev_indptr))
            dst = _pair_positions(row, prev_src, None, query_row, query_col, n)
            size = len(prev_src)
            nodes.append(keys[row].astype(np.int32))
            prev_keys = keys
        edges.append((src.astype(np.int32), dst.astype(np.int32), a_hat.data[pos[pair_edge]]))
        sizes.append(size)
    return Chunk(
        np.flatnonzero(within[k]).astype(np.int32), tuple(nodes), tuple(edges), tuple(sizes)
    )


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


def _expand(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ``i``, the entries ``indptr[rows[i]]:indptr[rows[i]+1]``, concatenated:
    returns ``(i per entry, entry index)``."""
    starts, counts = indptr[rows], indptr[rows + 1] - indptr[rows]
    owner = np.repeat(np.arange(len(rows)), counts)
    return owner, np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())


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


# ---------------------------------------------------------------------------- public API
def class_slots(
    classes: str | int, logits: np.ndarray, labels: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """``(T, Q)`` class id of each requested slot from ``classes`` (see :func:`nam`), given the
    targets' ``logits (T, C)``, ``labels (T,)`` and ids ``targets (T,)`` (for messages).

    Raises :class:`GraphError` for an unknown choice, an out-of-range class or, with
    ``"true"``, a target without a known label.
    """
    num_t, num_c = logits.shape
    if isinstance(classes, str):
        if classes == "all":
            return np.broadcast_to(np.arange(num_c), (num_t, num_c)).copy()
        if classes == "predicted":
            return logits.argmax(1)[:, None]
        if classes == "true":
            unknown = np.flatnonzero(labels < 0)
            if unknown.size:
                raise GraphError(
                    f"classes='true' but target {targets[unknown[0]]} has no known label"
                )
            return labels[:, None].astype(np.int64)
        raise GraphError(f"classes must be 'all', 'predicted', 'true' or an int, got {classes!r}")
    if isinstance(classes, int | np.integer) and 0 <= classes < num_c:
        return np.full((num_t, 1), int(classes), np.int64)
    raise GraphError(f"class {classes!r} is out of range: the model has classes 0..{num_c - 1}")


def nam(
    model: GCN,
    graph: Graph,
    targets=None,
    classes: str | int = "all",
    *,
    engine: str = "pairs",
    chunk_budget_bytes: int = DEFAULT_CHUNK_BUDGET,
    dtype=jnp.float32,
    progress: bool = False,
) -> Attribution:
    """NAM contributions of every node within K hops of each target, for the requested classes.

    Args:
        model: a GCN (dropout is ignored: attributions explain the deterministic model).
        graph: the graph the model runs on (same feature width).
        targets: node ids ``(T,)`` (unique), default all nodes.
        classes: ``"all"`` (Q = C slots), ``"predicted"``, ``"true"`` or a class id (Q = 1).
        engine: ``"pairs"`` (forward mode over shared (node, source) pair levels, the default)
            or ``"subgraph"`` (per-target reverse mode vmapped over padded K-hop subgraphs,
            :mod:`namjax.nam_subgraph`). Both give the same contributions.
        chunk_budget_bytes: approximate device memory budget per chunk of targets.
        dtype: compute dtype (float32 by default).
        progress: show a tqdm bar over chunks on stderr.

    Returns:
        an :class:`Attribution`; its ``stats`` hold the phase timings in seconds
        (``extract_s`` host planning, ``forward_s`` global pass (dispatch and the final wait
        for its logits: it runs on the device while the host plans), ``compile_s``,
        ``device_s``, ``total_s``), ``compiled`` (new compilations), ``chunks``, ``pairs``, ``edges``
        (pair edges over all levels, or subgraph edges) and ``padding_overhead`` (padded /
        real slots); the subgraph engine adds ``buckets`` and ``edge_padding_overhead``.
    """
    t_start = time.perf_counter()
    cfg = model.config
    if engine not in ENGINES:
        raise GraphError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if graph.num_features != cfg.in_features:
        raise GraphError(
            f"the model expects {cfg.in_features} features per node but {graph.name} has "
            f"{graph.num_features}"
        )
    targets = (
        np.arange(graph.num_nodes) if targets is None else graph.check_nodes(targets, "target")
    )
    if targets.size == 0:
        raise GraphError("no targets given")
    uniq, counts = np.unique(targets, return_counts=True)
    if (counts > 1).any():
        raise GraphError(f"target {uniq[counts > 1][0]} is listed more than once")
    k = cfg.depth

    labels = graph.labels[targets].astype(np.int64)
    # bad classes fail before the work (the logits' values matter only for "predicted")
    class_slots(classes, np.zeros((len(targets), cfg.num_classes)), labels, targets)

    t0 = time.perf_counter()
    # dispatched asynchronously: the device runs the global pass while the host plans
    params, p, sig, logits_all, bias_all, compile_s = global_pass(model, graph, dtype)
    forward_s = time.perf_counter() - t0 - compile_s
    t0 = time.perf_counter()
    kh = khop(graph, targets, k)
    khop_s = time.perf_counter() - t0
    run = _pairs_engine if engine == "pairs" else _subgraph_engine()
    full, stats = run(graph, kh, (params, p, sig), chunk_budget_bytes, progress)
    t0 = time.perf_counter()
    logits, bias = np.asarray(logits_all)[targets], np.asarray(bias_all)[targets]
    slots = class_slots(classes, logits, labels, targets)
    stats["extract_s"] += khop_s
    stats["forward_s"] = forward_s + time.perf_counter() - t0
    stats["compile_s"] += compile_s
    stats["compiled"] += int(compile_s > 0)

    if isinstance(classes, str) and classes == "all":
        contributions = full
    else:
        contributions = np.take_along_axis(full, slots[kh.pair_target], axis=1)
    stats["total_s"] = time.perf_counter() - t_start
    return Attribution(
        targets=targets,
        offsets=kh.offsets,
        sources=kh.nodes,
        hops=kh.hops,
        contributions=contributions,
        classes=slots.astype(np.int64),
        logits=np.take_along_axis(logits, slots, axis=1),
        bias=np.take_along_axis(bias, slots, axis=1),
        predicted=logits.argmax(1).astype(np.int64),
        labels=labels,
        num_nodes=graph.num_nodes,
        depth=k,
        stats=stats,
    )


def _pairs_engine(
    graph: Graph, kh: KHop, state: tuple, budget: int, progress: bool
) -> tuple[np.ndarray, dict]:
    """``(P, C)`` contributions in ``kh``'s pair layout by :func:`explain_chunk`, and stats
    (``state``: the global pass's ``(params, P, σ')``)."""
    t0 = time.perf_counter()
    params, p, sig = state
    k = kh.depth
    ranges = split_targets(kh, tuple(w.shape[1] for w, _ in params), budget)
    plans = [plan_chunk(graph, kh.rows(a, b)) for a, b in ranges]
    shape = tuple(
        round_up(max(x), minimum=MIN_SLOTS) for x in zip(*(c.shape for c in plans), strict=True)
    )
    chunks = [c.padded(shape) for c in plans]
    real = sum(sum(c.shape) for c in plans)
    stats = {
        "chunks": len(chunks),
        "pairs": kh.num_pairs,
        "edges": sum(sum(c.shape[k + 1 :]) for c in plans),
        "padding_overhead": sum(shape) * len(chunks) / real,
        "extract_s": time.perf_counter() - t0,
    }
    fn, secs = compiled(_explain_jit, {}, params, p, sig, chunks[0])
    stats["compile_s"], stats["compiled"] = secs, int(secs > 0)

    t0 = time.perf_counter()
    results = [fn(params, p, sig, c) for c in chunks]  # dispatched asynchronously
    parts = [
        np.asarray(res)[: kh.offsets[b] - kh.offsets[a]]
        for (a, b), res in zip(ranges, progress_bar(results, progress, len(chunks)), strict=True)
    ]
    stats["device_s"] = time.perf_counter() - t0
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)), stats


def _subgraph_engine():
    from namjax.nam_subgraph import explain_subgraphs  # imports this module

    return explain_subgraphs


ENGINES = ("pairs", "subgraph")


def progress_bar(items, enabled: bool, total: int):
    """``items`` wrapped in a tqdm bar over ``total`` chunks on stderr when ``enabled``."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc="explain", unit="chunk", leave=False)


_DEVICE_GRAPHS: dict = {}


def global_pass(model: GCN, graph: Graph, dtype) -> tuple:
    """The model's global pass (:func:`forward`) on ``graph`` in ``dtype``, compiled once per
    shape: ``(params, P (N, h1), σ' per hidden layer (N, h_l), logits (N, C), bias term
    (N, C), seconds compiling)``; arrays stay on the device."""
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), gcn_params(model))
    dg = _device_graph(graph, dtype)
    fwd, secs = compiled(_forward_jit, {"activation": model.config.activation}, params, dg)
    return (params, *fwd(params, dg), secs)


def _device_graph(graph: Graph, dtype):
    """``device_graph(graph)`` cached for the last (graph, features, dtype) seen."""
    key = (graph.fingerprint, id(graph.features), np.dtype(dtype).name)
    if key not in _DEVICE_GRAPHS:
        _DEVICE_GRAPHS.clear()
        _DEVICE_GRAPHS[key] = device_graph(graph, dtype)
    return _DEVICE_GRAPHS[key]


def paths(
    model: GCN, graph: Graph, target: int, source: int
) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """Every active walk ``source = v0 → … → vK = target`` of ``A + I`` with its contribution.

    A walk is active when every hidden node on it has at least one unit with ``σ' ≠ 0``. Its
    contribution ``(C,)`` is ``P[v0]`` pushed through ``Â[v_l, v_{l-1}]``, ``diag σ'(z_l[v_l])``
    and ``W_{l+1}``; summed over the walks it equals ``C(source→target, ·)`` (computed in
    float64 on the host from the model's float32 quantities).
    """
    target, source = (int(x) for x in graph.check_nodes([target, source]))
    k = model.config.depth
    params, p, sig, _, _, _ = global_pass(model, graph, jnp.float32)
    p = np.asarray(p, np.float64)
    sig = [np.asarray(s, np.float64) for s in sig]
    weights = [np.asarray(w, np.float64) for w, _ in params]
    a_hat = graph.normalized_adjacency
    dist = khop(graph, [target], k)
    hop_of = dict(zip(dist.nodes.tolist(), dist.hops.tolist(), strict=True))
    if source not in hop_of:
        return []
    walks = [(source,)]
    for step in range(1, k + 1):  # extend walks that can still reach the target in time
        walks = [
            (*w, int(v))
            for w in walks
            for v in a_hat.indices[a_hat.indptr[w[-1]] : a_hat.indptr[w[-1] + 1]]
            if hop_of.get(int(v), k + 1) <= k - step
        ]
    out = []
    for walk in walks:
        r = p[walk[0]]
        active = True
        for layer in range(1, k + 1):
            r = r * a_hat[walk[layer], walk[layer - 1]]
            if layer < k:
                mask = sig[layer - 1][walk[layer]]
                active &= bool(mask.any())
                r = (r * mask) @ weights[layer]
        if active:
            out.append((walk, r))
    return out
