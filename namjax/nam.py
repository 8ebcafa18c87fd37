"""The Node Attribution Method: exact per-node contributions to a GCN's logits.

For a target ``a``, class ``c`` and source node ``φ`` the contribution is gradient x input summed
over ``φ``'s features, ``C(φ→a, c) = Σ_i X[φ,i] ∂Z_K[a,c]/∂X[φ,i]`` (pre-softmax logits, dropout
off). It is non-zero only within K hops of ``a`` and equals the sum, over every walk
``φ = v0 → v1 → … → vK = a`` of ``A + I``, of ``X[φ] W1`` pushed through
``Â[v_l, v_{l-1}]``, the active units ``σ'(z_l[v_l])`` and ``W_{l+1}`` (see :func:`paths`).

How the engine computes it, for all targets and all classes at once:

* ``X`` enters the network only through ``P = X W1``, and ``P[φ]`` is linear in ``X[φ]``, so
  ``Σ_i X[φ,i] ∂Z/∂X[φ,i] = Σ_j P[φ,j] ∂Z/∂P[φ,j]``: one global pass gives ``P`` and every
  layer's unit derivatives ``σ'(z_l)``; the engine never touches the F feature columns again.
* Per target, reverse mode over its K-hop subgraph with the *global* ``Â`` weights: the
  cotangent of all C logits at layer ``l`` lives only on nodes within ``K-l`` hops, so each step
  is a dense prefix block of the local ``Â`` (receivers within ``K-l+1`` hops, senders within
  ``K-l`` hops; edges between two hop-K nodes never matter).
* Targets are grouped into power-of-two size buckets (:func:`namjax.subgraph.bucket`); one
  function per bucket shape is vmapped over targets, compiled once (cached across calls and
  models of equal shapes) and run over chunks sized by a memory budget.

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
from namjax.subgraph import Bucket, KHop, LocalEdges, bucket, khop, next_pow2

COMPLETE_ACTIVATIONS = frozenset({"relu", "leaky_relu", "identity"})
"""Activations for which contributions + bias sum exactly to the logit."""

DEFAULT_CHUNK_BUDGET = 256 * 2**20


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


def forward(params: GCNParams, dg, activation: str):
    """Global pass: ``P = X W1`` ``(N, h1)``, ``σ'(z_l)`` ``(N, h_l)`` for l < K, logits ``(N, C)``."""
    act = ACTIVATIONS[activation]
    p = dg.features @ params[0][0]
    h, sig = p, []
    for i, (w, b) in enumerate(params):
        z = propagate(dg, h if i == 0 else h @ w) + b
        if i < len(params) - 1:
            sig.append(_unit_derivative(act, z))
            h = act(z)
    return p, tuple(sig), z


TRACES = {"forward": 0, "chunk": 0}
"""How often each device function was traced (for tests: a warm call traces nothing)."""


def explain_target(
    params: GCNParams,
    p: jax.Array,
    sig: tuple[jax.Array, ...],
    nodes: jax.Array,
    block: jax.Array,
    sizes: tuple[int, ...],
) -> tuple[jax.Array, jax.Array]:
    """Reverse mode for ONE padded subgraph, all classes at once.

    Args:
        params: ``((W_l, b_l), ...)`` of the K layers.
        p: ``(N, h1)`` global ``X W1``; ``sig``: ``σ'(z_l)`` ``(N, h_l)`` for l = 1..K-1.
        nodes: ``(n_K,)`` global ids of the subgraph's slots (target in slot 0).
        block: ``(n_K, n_{K-1})`` local ``Â[receiver, sender]``, zero on padding.
        sizes: padded prefix sizes ``(1, n_1, ..., n_K)`` (static).

    Returns:
        contributions ``(n_K, C)`` per slot and class, bias term ``(C,)``.
    """
    k = len(params)
    num_classes = params[-1][0].shape[1]
    cot = jnp.eye(num_classes, dtype=p.dtype)[None]  # ∂Z[a,:]/∂z_K at the target: (1, C, C)
    bias = jnp.zeros(num_classes, p.dtype)
    for layer in range(k, 0, -1):  # cot: ∂Z[a,:]/∂z_layer on slots < sizes[k - layer]
        w, b = params[layer - 1]
        bias = bias + jnp.einsum("uch,h->c", cot, b)
        senders, receivers = sizes[k - layer], sizes[k - layer + 1]
        if layer > 1:
            cot = jnp.einsum("uck,hk->uch", cot, w)
        grad = jnp.einsum("vu,uch->vch", block[:receivers, :senders], cot)
        if layer > 1:
            cot = grad * sig[layer - 2][nodes[:receivers]][:, None, :]
    contributions = jnp.einsum("vch,vh->vc", grad, p[nodes])
    return contributions, bias


def _explain_chunk(params, p, sig, nodes, block, *, sizes):
    TRACES["chunk"] += 1
    return jax.vmap(explain_target, in_axes=(None, None, None, 0, 0, None))(
        params, p, sig, nodes, block, sizes
    )


def _forward_traced(params, dg, *, activation):
    TRACES["forward"] += 1
    return forward(params, dg, activation)


_explain_chunk_jit = jax.jit(_explain_chunk, static_argnames=("sizes",))
_forward_jit = jax.jit(_forward_traced, static_argnames=("activation",))
_COMPILED: dict = {}


def _signature(*trees) -> tuple:
    leaves, treedef = jax.tree.flatten(trees)
    return (str(treedef), tuple((tuple(x.shape), str(x.dtype)) for x in leaves))


def _compiled(jitted, static: dict, *args):
    """AOT-compile ``jitted`` for these argument shapes once per process; returns
    ``(compiled, seconds spent compiling)``."""
    key = (jitted, tuple(sorted(static.items())), jax.default_backend(), _signature(*args))
    if key in _COMPILED:
        return _COMPILED[key], 0.0
    t0 = time.perf_counter()
    _COMPILED[key] = jitted.lower(*args, **static).compile()
    return _COMPILED[key], time.perf_counter() - t0


# ---------------------------------------------------------------------------- host planning
@dataclass(frozen=True, eq=False)
class Chunk:
    """One device call: ``nodes (B, n_K)``, ``block (B, n_K, n_{K-1})`` for bucket ``sizes``;
    the first ``len(rows)`` entries are real targets (``rows`` index :attr:`KHop.targets`),
    the rest padding; ``mask (len(rows), n_K)`` marks real slots."""

    sizes: tuple[int, ...]
    rows: np.ndarray
    mask: np.ndarray
    nodes: np.ndarray
    block: np.ndarray


def _bytes_per_target(sizes: tuple[int, ...], widths: tuple[int, ...], itemsize: int) -> int:
    """Rough peak bytes one target needs on the device inside a chunk."""
    k = len(sizes) - 1
    n = sizes[-1] * sizes[-2] + sizes[-1] * (widths[0] + 1)
    for layer in range(k, 0, -1):
        n += 3 * sizes[k - layer + 1] * widths[-1] * widths[layer - 1]
    return n * itemsize


def _ranges(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(offsets[r], offsets[r+1])`` for each r in ``rows``."""
    starts, counts = offsets[rows], offsets[rows + 1] - offsets[rows]
    return np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())


def make_chunk(b: Bucket, part: slice, edges: LocalEdges, padded_targets: int) -> Chunk:
    """Host arrays of one chunk: the targets ``b.rows[part]`` padded to ``padded_targets``."""
    rows = b.rows[part]
    width = b.sizes[-1]
    nodes = np.zeros((padded_targets, width), np.int32)
    nodes[: len(rows)] = b.nodes[part]
    block = np.zeros((padded_targets, width, b.sizes[-2]), np.float32)
    e = _ranges(edges.offsets, rows)
    which = np.repeat(np.arange(len(rows)), np.diff(edges.offsets)[rows])
    block[which, edges.receivers[e], edges.senders[e]] = edges.a_hat[e]
    return Chunk(b.sizes, rows, b.mask[part], nodes, block)


def plan(
    kh: KHop, edges: LocalEdges, buckets: list[Bucket], widths: tuple[int, ...], budget: int
) -> list[Chunk]:
    """Split buckets into chunks whose device memory stays under ``budget`` bytes.

    All chunks of a bucket share one shape (target count a power of two), so a bucket compiles
    once; ``widths`` = ``(h1, ..., h_{K-1}, C)``.
    """
    chunks = []
    for b in buckets:
        per_target = _bytes_per_target(b.sizes, widths, 4)
        fit = int(next_pow2(max(budget // per_target, 1)))
        size = max(
            1, min(fit if fit * per_target <= budget else fit // 2, int(next_pow2(len(b.rows))))
        )
        for start in range(0, len(b.rows), size):
            chunks.append(make_chunk(b, slice(start, start + size), edges, size))
    return chunks


# ---------------------------------------------------------------------------- public API
def _class_slots(classes, logits: np.ndarray, labels: np.ndarray, targets: np.ndarray):
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
        chunk_budget_bytes: device memory budget per chunk of targets.
        dtype: compute dtype (float32 by default).
        progress: show a tqdm bar over chunks on stderr.

    Returns:
        an :class:`Attribution`; its ``stats`` hold the phase timings (``extract_s``,
        ``forward_s``, ``compile_s``, ``device_s``, ``assemble_s``, ``total_s``), the padding
        overhead and the number of new compilations.
    """
    t_start = time.perf_counter()
    cfg = model.config
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
    stats = {"compiled": 0, "compile_s": 0.0}

    kh = khop(graph, targets, k)
    edges = kh.edges(graph, max_sender_hop=k - 1)
    buckets, pad_stats = bucket(kh)
    widths = cfg.sizes[1:]
    chunks = plan(kh, edges, buckets, widths, chunk_budget_bytes)
    stats.update(pad_stats, chunks=len(chunks), extract_s=time.perf_counter() - t_start)

    t0 = time.perf_counter()
    params, p, sig, logits_all, secs = _global_pass(model, graph, dtype)
    logits_all = np.asarray(logits_all)
    stats["forward_s"] = time.perf_counter() - t0 - secs
    stats["compile_s"] += secs
    stats["compiled"] += secs > 0

    calls = []
    for chunk in chunks:
        fn, secs = _compiled(
            _explain_chunk_jit, {"sizes": chunk.sizes}, params, p, sig, chunk.nodes, chunk.block
        )
        stats["compile_s"] += secs
        stats["compiled"] += secs > 0
        calls.append(fn)
    t0 = time.perf_counter()
    results = [fn(params, p, sig, c.nodes, c.block) for fn, c in zip(calls, chunks, strict=True)]
    outputs = []
    for res in _progress(results, progress, len(chunks)):
        outputs.append(jax.device_get(res))
    stats["device_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    num_c = cfg.num_classes
    full = np.zeros((kh.num_pairs, num_c), np.dtype(dtype))
    bias_all = np.zeros((len(targets), num_c), np.dtype(dtype))
    for chunk, (contrib, bias) in zip(chunks, outputs, strict=True):
        n_real = len(chunk.rows)
        width = chunk.sizes[-1]
        flat = (kh.offsets[chunk.rows][:, None] + np.arange(width)[None, :])[chunk.mask]
        full[flat] = contrib[:n_real][chunk.mask]
        bias_all[chunk.rows] = bias[:n_real]
    logits = logits_all[targets]
    labels = graph.labels[targets].astype(np.int64)
    slots = _class_slots(classes, logits, labels, targets)
    pair_row = kh.pair_target
    contributions = np.take_along_axis(full, slots[pair_row], axis=1)
    stats["assemble_s"] = time.perf_counter() - t0
    stats["total_s"] = time.perf_counter() - t_start
    return Attribution(
        targets=targets,
        offsets=kh.offsets,
        sources=kh.nodes,
        hops=kh.hops,
        contributions=contributions,
        classes=slots.astype(np.int64),
        logits=np.take_along_axis(logits, slots, axis=1),
        bias=np.take_along_axis(bias_all, slots, axis=1),
        predicted=logits.argmax(1).astype(np.int64),
        labels=labels,
        num_nodes=graph.num_nodes,
        depth=k,
        stats=stats,
    )


def _progress(items, enabled: bool, total: int):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc="explain", unit="chunk", leave=False)


_DEVICE_GRAPHS: dict = {}


def _global_pass(model: GCN, graph: Graph, dtype):
    """``(params, P, σ' per hidden layer, logits, seconds compiling)`` on the device."""
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), gcn_params(model))
    dg = _device_graph(graph, dtype)
    fwd, secs = _compiled(_forward_jit, {"activation": model.config.activation}, params, dg)
    return (params, *fwd(params, dg), secs)


def _device_graph(graph: Graph, dtype):
    """``device_graph(graph)`` cached per (graph fingerprint, features, dtype)."""
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
    params, p, sig, _, _ = _global_pass(model, graph, jnp.float32)
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
