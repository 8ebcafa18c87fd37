"""Deletion (perturbation) analysis: does a ranking of neighbours find the ones that matter?

For each central node ``v`` and each fraction ``p`` of a grid, the ``round(p · |N_{v,K}|)``
highest-ranked of ``v``'s K-hop neighbours are deleted (``v`` itself never) and ``v`` is
re-predicted. A ranking that finds the important neighbours makes accuracy fall fast.

Two deletion modes:

* ``"remove"`` (the paper's setting): the node and all its edges go, and ``Â`` is renormalised
  on the new degrees;
* ``"zero"``: the node stays but its feature row is zeroed (``Â`` unchanged).

Exactness of the local computation. Every deleted node lies inside ``v``'s K-hop set ``S``, and
after deletion ``v``'s receptive field is a subset of ``S``. The new degree of a node ``u`` is
``d'_u = d_u - Σ_{w deleted} A[u, w]`` (``d_u`` its global degree in ``A + I``), which only
needs the induced edges of ``S``. With ``s_u = keep_u / sqrt(d'_u)``, one layer is
``(Â' h)_u = s_u (Σ_w A[u, w] s_w h_w + s_u h_u)``. Layer ``l`` is only needed on the nodes
within ``K - l`` hops (a prefix of the hop-sorted subgraph), so the forward pass on the padded
subgraph reproduces the full-graph prediction of ``v`` exactly, up to float32 rounding.

Vectorisation. Targets are packed into buckets (:func:`namjax.subgraph.bucket`, coarsened to a
few groups); per bucket one jitted function builds every keep mask from per-ranking rank arrays and per-level deletion
intervals and runs the forward vmapped over (targets × rankings × levels). The dense induced
adjacency of a subgraph is shared by all its masks, so a layer is one matrix product per target.
``P = X W1`` is computed once for the whole graph and gathered.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from namjax.graph import Graph, GraphError
from namjax.model import ACTIVATIONS, GCN, GCNParams, gcn_params
from namjax.subgraph import Bucket, KHop, bucket, khop

MODES = ("remove", "zero")

RANKINGS: dict[str, str] = {
    "nam": "NAM contribution to the predicted class, largest first",
    "nam_reversed": "NAM contribution to the predicted class, smallest first",
    "nam_abs": "|NAM contribution| to the predicted class, largest first",
    "structure": "graph-only propagation weight (Â^K)[v, u], largest first",
    "saliency": "gradient-norm saliency ||∂Z[v, c] / ∂X[u]||₂ (c predicted), largest first",
    "occlusion": "drop of Z[v, c] when u alone is deleted (c predicted), largest first",
    "random": "uniformly random order, one curve per seed",
}

DEFAULT_LEVELS = np.linspace(0.0, 1.0, 11)

# Deletion-interval columns: the unperturbed prediction, the two fidelity perturbations (delete
# the explanation S; keep only S), then the grid levels.
_ORIGINAL, _FID, _GRID = 0, 1, 3

# Targets per jitted call are limited so that their dense arrays (adjacency, factored first
# layer, per-mask vectors) hold about this many floats (128 MB in float32).
_CHUNK_FLOATS = 1 << 25
_MIN_WIDTH = 32  # smaller subgraphs are padded to this many slots (cheap, fewer compilations)
_NEVER = np.iinfo(np.int32).max  # rank of padding slots: no interval reaches it


# ---------------------------------------------------------------------------- local forward
def _forward(
    params: GCNParams,
    activation: str,
    mode: str,
    sizes: tuple[int, ...],
    adj: jax.Array,
    deg: jax.Array,
    p0: jax.Array,
    keep: jax.Array,
) -> jax.Array:
    """Logits ``(C,)`` of the target (slot 0) of one padded subgraph under one keep mask.

    ``adj (M, M)`` raw induced ``A`` (no self-loops), ``deg (M,)`` global degrees in ``A + I``
    (1 on padding), ``p0 (M, H)`` rows of ``X W1``, ``keep (M,)`` False on deleted and padding
    slots. ``sizes = (1, n_1, ..., n_K)`` padded hop-prefix sizes.
    """
    act = ACTIVATIONS[activation]
    keepf = keep.astype(p0.dtype)
    if mode == "remove":
        s = keepf * jax.lax.rsqrt(deg - adj @ (1.0 - keepf))
        col = s  # weight of a slot's features in its neighbours' sums
    else:
        s = jax.lax.rsqrt(deg)
        col = s * keepf
    depth = len(params)
    for layer, (w, b) in enumerate(params):
        n_in, n_out = sizes[depth - layer], sizes[depth - layer - 1]
        s_out = s[:n_out, None]
        if layer == 0:
            # Σ_w A[u, w] col_w P[w] with the mask-independent A[u, w] P[w] factored out: under
            # vmap over masks this is one (masks × n_in) @ (n_in × n_out·H) product per target.
            spread = adj[:n_out, :n_in, None] * p0[None, :n_in]
            h = s_out * (
                jnp.einsum("w,uwh->uh", col[:n_in], spread) + col[:n_out, None] * p0[:n_out]
            )
        else:
            h = h @ w
            h = s_out * (adj[:n_out, :n_in] @ (s[:n_in, None] * h[:n_in]) + s_out * h[:n_out])
        h = h + b
        if layer < depth - 1:
            h = act(h)
    return h[0]


@functools.partial(jax.jit, static_argnames=("activation", "mode", "sizes"))
def _sweep_logits(params, adj, deg, p0, valid, ranks, lo, hi, *, activation, mode, sizes):
    """``(B, R, L, C)`` logits: slot ``j`` is deleted under (ranking r, level l) iff
    ``lo[b, l] <= ranks[b, r, j] < hi[b, l]``."""
    r = ranks[:, :, None, :]
    deleted = (r >= lo[:, None, :, None]) & (r < hi[:, None, :, None])
    keep = valid[:, None, None, :] & ~deleted
    nb, nr, nl, m = keep.shape
    fwd = functools.partial(_forward, params, activation, mode, sizes)
    per_mask = jax.vmap(fwd, in_axes=(None, None, None, 0))
    z = jax.vmap(per_mask)(adj, deg, p0, keep.reshape(nb, nr * nl, m))
    return z.reshape(nb, nr, nl, -1)


@functools.partial(jax.jit, static_argnames=("activation", "mode", "sizes"))
def _gradient_scores(params, adj, deg, p0, valid, *, activation, mode, sizes):
    """Per slot ``(B, M)``: gradient-norm saliency and the structural weight ``(Â^K)[v, u]``."""
    fwd = functools.partial(_forward, params, activation, mode, sizes)
    w1 = params[0][0]
    gram = w1.T @ w1  # ||W1 g||² = g^T (W1^T W1) g: the norm of ∂Z/∂X[u] = W1 ∂Z/∂P[u]

    def one(adj, deg, p0, valid):
        c = jnp.argmax(fwd(adj, deg, p0, valid))
        g = jax.grad(lambda p: fwd(adj, deg, p, valid)[c])(p0)
        saliency = jnp.sqrt(jnp.maximum(jnp.einsum("mh,hk,mk->m", g, gram, g), 0.0))
        s = jax.lax.rsqrt(deg)
        walk = jnp.zeros_like(deg).at[0].set(1.0)  # row v of Â^K, exact on the K-hop subgraph
        for _ in params:
            walk = s * ((walk * s) @ adj + s * walk)
        return saliency, walk

    return jax.vmap(one)(adj, deg, p0, valid)


# ---------------------------------------------------------------------------- packing
@dataclass(frozen=True, eq=False)
class _Packed:
    """One bucket's host-side inputs for the jitted functions; the dense ``(M, M)`` induced
    adjacencies are built chunk by chunk from the bucket's edge list."""

    bucket: Bucket
    pairs: np.ndarray  # (B, M) flat pair index of each slot, -1 on padding
    edges: tuple[np.ndarray, ...]  # (row in bucket, receiver slot, sender slot, raw A weight)
    deg: np.ndarray  # (B, M) float32 global degree in A + I (1 on padding)
    p0: np.ndarray  # (B, M, H) float32 rows of X W1

    def _adjacency(self, start: int, size: int) -> np.ndarray:
        """``(size, M, M)`` raw induced ``A`` of targets ``start..start+size-1`` (zero-padded)."""
        row, receiver, sender, weight = self.edges
        m = self.pairs.shape[1]
        sel = (row >= start) & (row < start + size)
        adj = np.zeros((size, m, m), np.float32)
        adj[row[sel] - start, receiver[sel], sender[sel]] = weight[sel]
        return adj

    def _chunked(self, fn, masks_per_target: int, *arrays: np.ndarray) -> list[np.ndarray]:
        """Apply ``fn(adj, *arrays)`` to chunks of this bucket's targets (each padded to one
        size, so a bucket compiles once per call site); concatenate its outputs."""
        n, m = self.pairs.shape
        h, n1 = self.p0.shape[-1], self.bucket.sizes[-2]
        per_target = m * m + n1 * m * h + masks_per_target * (m + n1 * h)
        size = int(max(1, min(n, _CHUNK_FLOATS // per_target)))
        outs = []
        for start in range(0, n, size):
            pad = [(0, max(0, start + size - n))]
            chunk = [np.pad(a[start : start + size], pad + [(0, 0)] * (a.ndim - 1)) for a in arrays]
            outs.append([np.asarray(o) for o in fn(self._adjacency(start, size), *chunk)])
        return [np.concatenate(parts)[:n] for parts in zip(*outs, strict=True)]

    def sweep(self, params, static: dict, ranks, lo, hi) -> np.ndarray:
        """``(B, R, L, C)`` logits for per-slot ``ranks (B, R, M)`` and intervals ``(B, L)``."""
        fn = functools.partial(_sweep_logits, params, sizes=self.bucket.sizes, **static)
        inputs = (self.deg, self.p0, self.bucket.mask, ranks, lo, hi)
        return self._chunked(lambda *a: (fn(*a),), ranks.shape[1] * lo.shape[1], *inputs)[0]

    def gradient_scores(self, params, static: dict) -> list[np.ndarray]:
        """Saliency and structure scores, each ``(B, M)``."""
        fn = functools.partial(_gradient_scores, params, sizes=self.bucket.sizes, **static)
        return self._chunked(fn, 1, self.deg, self.p0, self.bucket.mask)

    def occlusion_scores(self, params, static: dict) -> np.ndarray:
        """``(B, M)`` drop of the predicted-class logit when each slot alone is deleted."""
        n, m = self.pairs.shape
        slot = np.broadcast_to(np.arange(m, dtype=np.int32), (n, m))
        ranks = np.where(self.bucket.mask & (slot > 0), slot, _NEVER)[:, None, :]
        z = self.sweep(params, static, ranks, slot, slot + 1)[:, 0]  # (B, M, C); slot 0: none
        c = np.argmax(z[:, 0], axis=-1)
        picked = np.take_along_axis(z, c[:, None, None], axis=-1)[..., 0]
        return picked[:, :1] - picked


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


def _pack(graph: Graph, kh: KHop, p_all: np.ndarray) -> list[_Packed]:
    """Pack the K-hop subgraphs into buckets with their induced edges, degrees and ``X W1`` rows."""
    buckets = _coarse_buckets(kh)
    edges = kh.edges(graph)
    edge_target = np.repeat(np.arange(len(kh.targets)), np.diff(edges.offsets))
    where_bucket = np.empty(len(kh.targets), np.int64)
    where_row = np.empty(len(kh.targets), np.int64)
    for i, bk in enumerate(buckets):
        where_bucket[bk.rows] = i
        where_row[bk.rows] = np.arange(len(bk.rows))
    degree = 1.0 + np.asarray(graph.adjacency.sum(axis=1), np.float64).ravel()
    packed = []
    for i, bk in enumerate(buckets):
        m = bk.nodes.shape[1]
        sel = np.flatnonzero(where_bucket[edge_target] == i)
        local = (where_row[edge_target[sel]], edges.receivers[sel], edges.senders[sel])
        pairs = np.where(bk.mask, kh.offsets[bk.rows][:, None] + np.arange(m), -1)
        deg = np.where(bk.mask, degree[bk.nodes], 1.0).astype(np.float32)
        p0 = np.where(bk.mask[..., None], p_all[bk.nodes], 0.0).astype(np.float32)
        packed.append(_Packed(bk, pairs, (*local, edges.a_raw[sel]), deg, p0))
    return packed


def _unpack(packed: list[_Packed], per_slot: list[np.ndarray], num_pairs: int) -> np.ndarray:
    """Scatter per-bucket ``(B, M)`` slot values back to the flat ``(P,)`` pair layout."""
    out = np.zeros(num_pairs, np.float64)
    for pk, values in zip(packed, per_slot, strict=True):
        out[pk.pairs[pk.bucket.mask]] = values[pk.bucket.mask]
    return out


# ---------------------------------------------------------------------------- rankings
def _ranks(kh: KHop, score: np.ndarray) -> np.ndarray:
    """``(P,)`` int32 deletion rank of each pair (0 = deleted first) from scores, largest first.

    Ties break by position in the hop-sorted layout. The target itself ranks last
    (``|N_{v,K}|``), so no deletion interval reaches it.
    """
    key = np.where(kh.hops == 0, np.inf, -np.asarray(score, np.float64))
    order = np.lexsort((np.arange(kh.num_pairs), key, kh.pair_target))
    ranks = np.empty(kh.num_pairs, np.int32)
    ranks[order] = np.arange(kh.num_pairs) - np.repeat(kh.offsets[:-1], np.diff(kh.offsets))
    return ranks


def _nam_scores(model: GCN, graph: Graph, kh: KHop, attribution) -> np.ndarray:
    """NAM contribution of each pair to its target's predicted class, in the ``kh`` layout."""
    if attribution is None:
        from namjax.nam import nam

        attribution = nam(model, graph, targets=kh.targets, classes="predicted")
    if not np.array_equal(attribution.targets, kh.targets):
        raise GraphError("the attribution's targets differ from the perturbation targets")
    match = attribution.classes == attribution.predicted[:, None]
    if not match.any(axis=1).all():
        raise GraphError("the attribution lacks the predicted class of some targets")
    slot = np.argmax(match, axis=1)
    pair_t = np.repeat(np.arange(len(attribution.targets)), np.diff(attribution.offsets))
    local = kh.local_index(pair_t, attribution.sources)
    if (local < 0).any() or len(local) != kh.num_pairs:
        raise GraphError("the attribution's sources are not the targets' K-hop neighbourhoods")
    out = np.empty(kh.num_pairs, np.float64)
    out[kh.offsets[pair_t] + local] = attribution.contributions[
        np.arange(len(pair_t)), slot[pair_t]
    ]
    return out


def _random_scores(kh: KHop, seed: int) -> np.ndarray:
    """Uniform scores for every pair, a pure function of ``seed`` and the targets' layout."""
    return np.random.default_rng(seed).random(kh.num_pairs)


def _checked(model, graph, targets, levels, mode, rankings, seeds, sparsity):
    """Validate :func:`deletion_curves`' arguments (one-line :class:`GraphError` otherwise);
    returns the target ids, the levels as floats and the rankings as a tuple."""
    if mode not in MODES:
        raise GraphError(f"unknown deletion mode {mode!r}; choose from {', '.join(MODES)}")
    rankings = tuple(rankings)
    unknown = [r for r in rankings if r not in RANKINGS]
    if unknown or not rankings or len(set(rankings)) != len(rankings):
        raise GraphError(
            f"rankings must be distinct names from {', '.join(RANKINGS)}; got {list(rankings)}"
        )
    if "random" in rankings and seeds < 1:
        raise GraphError(f"the random ranking needs seeds >= 1, got {seeds}")
    levels = np.asarray(levels, np.float64)
    if levels.ndim != 1 or not levels.size or not np.all((levels >= 0) & (levels <= 1)):
        raise GraphError("levels must be a non-empty 1-D list of fractions in [0, 1]")
    if np.any(np.diff(levels) <= 0):
        raise GraphError("levels must be strictly increasing")
    if not 0.0 <= sparsity <= 1.0:
        raise GraphError(f"sparsity must be in [0, 1], got {sparsity}")
    if model.config.in_features != graph.num_features:
        raise GraphError(
            f"the model expects {model.config.in_features} features but {graph.name} has "
            f"{graph.num_features}"
        )
    if targets is None:
        targets = np.flatnonzero(graph.test_mask)
        if not targets.size:
            raise GraphError(f"{graph.name} has no test nodes; pass targets explicitly")
    targets = graph.check_nodes(targets, "target")
    uniq, counts = np.unique(targets, return_counts=True)
    if not targets.size or (counts > 1).any():
        raise GraphError(
            "no targets given"
            if not targets.size
            else f"target {uniq[counts > 1][0]} is listed more than once"
        )
    return targets, levels, rankings


# ---------------------------------------------------------------------------- the experiment
def deletion_curves(
    model: GCN,
    graph: Graph,
    targets=None,
    *,
    levels=DEFAULT_LEVELS,
    mode: str = "remove",
    rankings: tuple[str, ...] = tuple(RANKINGS),
    seeds: int = 5,
    sparsity: float = 0.8,
    attribution=None,
) -> Perturbation:
    """Run the deletion experiment for every target, ranking and level at once.

    Args:
        model: a trained GCN (evaluated deterministically).
        graph: the graph it was trained on.
        targets: ``(T,)`` central node ids; default the test nodes.
        levels: ``(L,)`` increasing fractions ``p`` in ``[0, 1]`` of the K-hop neighbours to
            delete (``round(p · n)``, halves rounded up).
        mode: ``"remove"`` (drop nodes and edges, renormalise ``Â``) or ``"zero"`` (zero the
            deleted nodes' features).
        rankings: names from :data:`RANKINGS`; ``"random"`` gives one curve per seed.
        seeds: number of random orders (seeds ``0..seeds-1``).
        sparsity: fidelity is measured for the explanation ``S`` made of the top
            ``round((1 - sparsity) · n)`` neighbours of each ranking.
        attribution: a precomputed :class:`namjax.nam.Attribution` for ``targets`` holding
            their predicted classes; computed with :func:`namjax.nam.nam` when omitted.
    """
    targets, levels, rankings = _checked(
        model, graph, targets, levels, mode, rankings, seeds, sparsity
    )
    params = gcn_params(model)
    activation = model.config.activation
    kh = khop(graph, targets, model.config.depth)
    p_all = np.asarray(graph.features @ np.asarray(params[0][0], np.float64), np.float32)
    packed = _pack(graph, kh, p_all)
    static = {"activation": activation, "mode": mode}

    scores: dict[str, np.ndarray] = {}
    if {"nam", "nam_reversed", "nam_abs"} & set(rankings):
        contribution = _nam_scores(model, graph, kh, attribution)
        scores |= {
            "nam": contribution,
            "nam_reversed": -contribution,
            "nam_abs": np.abs(contribution),
        }
    if {"saliency", "structure"} & set(rankings):
        per_bucket = [pk.gradient_scores(params, static) for pk in packed]
        scores["saliency"] = _unpack(packed, [s for s, _ in per_bucket], kh.num_pairs)
        scores["structure"] = _unpack(packed, [w for _, w in per_bucket], kh.num_pairs)
    if "occlusion" in rankings:
        per_bucket = [pk.occlusion_scores(params, static) for pk in packed]
        scores["occlusion"] = _unpack(packed, per_bucket, kh.num_pairs)
    rows = [(r, -1) for r in rankings if r != "random"]
    rows += [("random", seed) for seed in range(seeds)] if "random" in rankings else []
    ranks = np.stack(
        [_ranks(kh, _random_scores(kh, seed) if seed >= 0 else scores[r]) for r, seed in rows]
    )

    n = np.diff(kh.offsets) - 1  # |N_{v,K}|
    n_del = np.floor(levels[None, :] * n[:, None] + 0.5).astype(np.int32)
    n_expl = np.floor((1.0 - sparsity) * n + 0.5).astype(np.int32)
    zero = np.zeros_like(n_expl)
    lo = np.column_stack([zero, zero, n_expl, np.zeros_like(n_del)])
    hi = np.column_stack([zero, n_expl, n, n_del]).astype(np.int32)
    logits = np.zeros(
        (len(kh.targets), len(rows), lo.shape[1], model.config.num_classes), np.float32
    )
    for pk in packed:
        bk = pk.bucket
        slot_ranks = np.where(
            bk.mask[:, None, :], ranks[:, np.maximum(pk.pairs, 0)].transpose(1, 0, 2), _NEVER
        )
        logits[bk.rows] = pk.sweep(params, static, slot_ranks, lo[bk.rows], hi[bk.rows])
    logits = logits.transpose(1, 2, 0, 3)  # (R, 3 + L, T, C)
    return Perturbation(
        targets=kh.targets,
        labels=graph.labels[kh.targets],
        mode=mode,
        levels=levels,
        sparsity=float(sparsity),
        rankings=tuple(rows),
        original=logits[0, _ORIGINAL],
        logits=logits[:, _GRID:],
        fidelity_logits=logits[:, _FID:_GRID],
        khop=kh,
        scores={r: scores[r] for r, seed in rows if seed < 0},
        ranks=ranks,
        deletion_intervals=np.stack([lo, hi], axis=-1),
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True, eq=False)
class Perturbation:
    """Outcome of :func:`deletion_curves` (R curve rows, L levels, T targets, C classes).

    Attributes:
        targets: ``(T,)`` central node ids; ``labels``: their ``(T,)`` ground truth (-1 unknown).
        mode: ``"remove"`` or ``"zero"``; ``levels``: ``(L,)`` fractions ``p``; ``sparsity``.
        rankings: ``R`` pairs ``(ranking name, seed)``; the seed is ``-1`` for deterministic ones.
        original: ``(T, C)`` unperturbed logits of the targets.
        logits: ``(R, L, T, C)`` logits after deleting the top ``round(p · n)`` neighbours.
        fidelity_logits: ``(R, 2, T, C)`` logits with the explanation ``S`` deleted (index 0,
            for fid+) or with only ``S`` kept among the neighbours (index 1, for fid-).
        khop: the targets' K-hop sets (flat pair layout, ``P`` pairs).
        scores: ``(P,)`` score of each pair per deterministic ranking (largest deleted first).
        ranks: ``(R, P)`` deletion rank of each pair (0 first; the target itself ranks last).
        deletion_intervals: ``(T, 3 + L, 2)`` per target the rank interval ``[lo, hi)``
            deleted for: no deletion, fid+, fid-, then each level.
    """

    targets: np.ndarray
    labels: np.ndarray
    mode: str
    levels: np.ndarray
    sparsity: float
    rankings: tuple[tuple[str, int], ...]
    original: np.ndarray
    logits: np.ndarray
    fidelity_logits: np.ndarray
    khop: KHop
    scores: dict[str, np.ndarray]
    ranks: np.ndarray
    deletion_intervals: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        """``(T,)`` the unperturbed predicted classes."""
        return np.argmax(self.original, axis=-1)

    def deletion_order(self, ranking: str, target: int, seed: int = -1) -> np.ndarray:
        """Node ids of ``target``'s K-hop neighbours in the order ``ranking`` deletes them."""
        key = (ranking, seed if ranking == "random" else -1)
        if key not in self.rankings:
            raise GraphError(f"no deletion curve for ranking {ranking!r} (seed {key[1]})")
        hit = np.flatnonzero(self.targets == target)
        if not hit.size:
            raise GraphError(f"node {target} is not among the perturbation targets")
        row, t = self.rankings.index(key), int(hit[0])
        sl = slice(self.khop.offsets[t], self.khop.offsets[t + 1])
        order = np.argsort(self.ranks[row, sl], kind="stable")
        return self.khop.nodes[sl][order][:-1]

    def curves(self) -> dict[str, np.ndarray]:
        """Columns ``ranking, seed, p, accuracy, unchanged, prob_drop``, one row per (curve row,
        level): accuracy against the known labels, fraction of predictions unchanged, mean drop
        of the originally predicted class's probability."""
        pred = np.argmax(self.logits, axis=-1)  # (R, L, T)
        known = self.labels >= 0
        accuracy = (
            (pred[..., known] == self.labels[known]).mean(axis=-1)
            if known.any()
            else np.full(pred.shape[:2], np.nan)
        )
        c0 = self.predicted
        t = np.arange(len(self.targets))
        p0 = _softmax(self.original.astype(np.float64))[t, c0]
        p = _softmax(self.logits.astype(np.float64))[..., t, c0]
        n_rows, n_levels = pred.shape[:2]
        return {
            "ranking": np.repeat([r for r, _ in self.rankings], n_levels),
            "seed": np.repeat([s for _, s in self.rankings], n_levels).astype(np.int64),
            "p": np.tile(self.levels, n_rows),
            "accuracy": accuracy.ravel(),
            "unchanged": (pred == c0).mean(axis=-1).ravel(),
            "prob_drop": (p0 - p).mean(axis=-1).ravel(),
        }

    def to_table(self):
        """The :meth:`curves` as a ``pyarrow.Table``."""
        import pyarrow as pa

        return pa.table(self.curves())

    def auc(self) -> dict[str, float]:
        """Area under each accuracy-deletion curve, normalised by the span of ``p`` (so in
        ``[0, 1]``); random rankings give their mean over seeds and ``random_sd`` (sample sd)."""
        acc = self.curves()["accuracy"].reshape(len(self.rankings), -1)
        span = self.levels[-1] - self.levels[0]
        area = np.trapezoid(acc, self.levels, axis=1) / span if span > 0 else acc[:, 0]
        out: dict[str, float] = {}
        for name in dict.fromkeys(r for r, _ in self.rankings):
            values = area[[i for i, (r, _) in enumerate(self.rankings) if r == name]]
            out[name] = float(values.mean())
            if name == "random":
                out["random_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        return out

    def fidelity(self, kind: str = "model") -> dict[str, dict[str, float]]:
        """fid+ and fid- per ranking at this result's sparsity, as PyG defines them
        (``torch_geometric.explain.metric.fidelity``, after GraphFramEx, Amara et al. 2022).

        With ``ŷ`` the unperturbed prediction, ``ŷ^{G∖S}`` the prediction with the explanation
        ``S`` deleted and ``ŷ^{G_S}`` the prediction with only ``S`` kept (the target always
        stays; deletion follows :attr:`mode`):

        * ``kind="model"``: ``fid+ = 1 - mean 1[ŷ^{G∖S} = ŷ]``, ``fid- = 1 - mean 1[ŷ^{G_S} = ŷ]``;
        * ``kind="phenomenon"``: ``fid+ = mean |1[ŷ = y] - 1[ŷ^{G∖S} = y]|`` and likewise
          ``fid-`` with ``G_S``, over targets with a known label ``y``.

        Random rankings give their mean over seeds.
        """
        pred = np.argmax(self.fidelity_logits, axis=-1)  # (R, 2, T)
        if kind == "model":
            fid = 1.0 - (pred == self.predicted).mean(axis=-1)
        elif kind == "phenomenon":
            known = self.labels >= 0
            y = self.labels[known]
            fid = np.abs((self.predicted[known] == y) * 1.0 - (pred[..., known] == y)).mean(axis=-1)
        else:
            raise GraphError(f"fidelity kind must be 'model' or 'phenomenon', got {kind!r}")
        out = {}
        for name in dict.fromkeys(r for r, _ in self.rankings):
            rows = [i for i, (r, _) in enumerate(self.rankings) if r == name]
            plus, minus = fid[rows].mean(axis=0)
            out[name] = {"fid_plus": float(plus), "fid_minus": float(minus)}
        return out

    def summary(self) -> dict:
        """JSON-ready summary: AUC per ranking, the NAM-vs-random AUC gap, fidelities."""
        auc = self.auc()
        out = {
            "mode": self.mode,
            "targets": len(self.targets),
            "levels": self.levels.tolist(),
            "auc": auc,
            "sparsity": self.sparsity,
            "fidelity": {kind: self.fidelity(kind) for kind in ("model", "phenomenon")},
        }
        if "nam" in auc and "random" in auc:
            out["auc_gap_random_minus_nam"] = auc["random"] - auc["nam"]
        return out


# ---------------------------------------------------------------------------- slow oracle
def reference_logits(
    model: GCN, graph: Graph, target: int, deleted, mode: str = "remove"
) -> np.ndarray:
    """Slow float64 oracle: ``(C,)`` logits of ``target`` recomputed on the whole graph after
    deleting the nodes ``deleted`` (removed with their edges and ``Â`` renormalised, or their
    features zeroed). Plain scipy/numpy, independent of the vectorised path."""
    params = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in gcn_params(model)]
    act = ACTIVATIONS[model.config.activation]
    a = graph.adjacency.astype(np.float64)
    x = graph.features.astype(np.float64)
    gone = np.zeros(graph.num_nodes, bool)
    gone[np.asarray(deleted, np.int64)] = True
    if mode == "remove":
        kept = np.flatnonzero(~gone)
        a, x = a[kept][:, kept], x[kept]
        target = int(np.searchsorted(kept, target))
    else:
        x = sp.diags((~gone).astype(np.float64)) @ x
    a = a + sp.identity(a.shape[0])
    inv = sp.diags(1.0 / np.sqrt(np.asarray(a.sum(axis=1)).ravel()))
    a_hat = inv @ a @ inv
    h = x
    with jax.enable_x64(True):
        for layer, (w, b) in enumerate(params):
            h = a_hat @ (h @ w) + b
            if layer < len(params) - 1:
                h = np.asarray(act(jnp.asarray(h)))
    return np.asarray(h)[target]
