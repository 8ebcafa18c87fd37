"""Deletion (perturbation) analysis: does a ranking of neighbours find the ones that matter?

For each central node ``v`` and each fraction ``p`` of a grid, the ``round(p · |N_{v,K}|)``
highest-ranked of ``v``'s K-hop neighbours are deleted (``v`` itself never) and ``v`` is
re-predicted. A ranking that finds the important neighbours makes accuracy fall fast.

Two deletion modes:

* ``"remove"`` (the paper's setting): the node and all its edges go, and the model's
  operators are renormalised on the new degrees;
* ``"zero"``: the node stays but its feature row is zeroed (operators unchanged).

Every target, ranking, level and the two fidelity perturbations run in one jitted, vmapped
call per subgraph bucket on the targets' K-hop subgraphs, exactly (:mod:`namjax.engine.sweep`);
:func:`reference_logits` recomputes one deletion on the whole graph in float64 as an oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from namjax.attribution import Attribution
from namjax.checks import check_choice, check_features, check_targets
from namjax.engine.sweep import MODES, NEVER, first_inputs, pack, unpack
from namjax.errors import AttributionError
from namjax.explainer import GraphError, OptionError, explain
from namjax.graph import Graph
from namjax.layers import ACTIVATIONS
from namjax.methods import METHODS
from namjax.model import GNN, cast_steps, model_fingerprint
from namjax.subgraph import KHop, khop

RANKINGS: dict[str, str] = {
    "nam": "NAM contribution to the predicted class, largest first",
    "nam_reversed": "NAM contribution to the predicted class, smallest first",
    "nam_abs": "|NAM contribution| to the predicted class, largest first",
    "saliency": "Σ_i |∂Z[v, c] / ∂X[u, i]| (c predicted; Captum's Saliency), largest first",
    "integrated_gradients": "integrated gradients of Z[v, c] (c predicted), largest first",
    "deeplift": "DeepLift (rescale, zero baseline) of Z[v, c] (c predicted), largest first",
    "smoothgrad": "SmoothGrad of the saliency of Z[v, c] (c predicted), largest first",
    "occlusion": "drop of Z[v, c] when u alone is deleted, in the sweep's mode (c predicted), "
    "largest first",
    "structure": "graph-only propagation weight of u in row v of the model's operator product "
    "((Â^K)[v, u] for a GCN), largest first",
    "random": "uniformly random order, one curve per seed",
}
"""The rankings; those named after an attribution method (:data:`namjax.methods.METHODS`)
are computed through :func:`namjax.explain`, ``nam_reversed`` and ``nam_abs`` from NAM's."""

DEFAULT_LEVELS = np.linspace(0.0, 1.0, 11)

# Deletion-interval columns: the unperturbed prediction, the two fidelity perturbations (delete
# the explanation S; keep only S), then the grid levels.
_ORIGINAL, _FID, _GRID = 0, 1, 3


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


def _method_scores(attribution, graph: Graph, model: GNN, kh: KHop) -> np.ndarray:
    """An attribution's score of each pair for its target's predicted class, in the ``kh``
    layout (refused when made with another model or graph, or for other targets)."""
    attribution.check(graph, model)
    if not np.array_equal(attribution.targets, kh.targets):
        raise AttributionError("the attribution's targets differ from the perturbation targets")
    match = attribution.classes == attribution.predicted[:, None]
    if not match.any(axis=1).all():
        raise AttributionError("the attribution lacks the predicted class of some targets")
    slot = np.argmax(match, axis=1)
    pair_t = np.repeat(np.arange(len(attribution.targets)), np.diff(attribution.offsets))
    local = kh.local_index(pair_t, attribution.sources)
    if (local < 0).any() or len(local) != kh.num_pairs:
        raise AttributionError(
            "the attribution's sources are not the targets' K-hop neighbourhoods"
        )
    out = np.empty(kh.num_pairs, np.float64)
    out[kh.offsets[pair_t] + local] = attribution.contributions[
        np.arange(len(pair_t)), slot[pair_t]
    ]
    return out


def _random_scores(kh: KHop, seed: int) -> np.ndarray:
    """Uniform scores for every pair, a pure function of ``seed`` and the targets' layout."""
    return np.random.default_rng(seed).random(kh.num_pairs)


def _checked(model, graph, targets, levels, mode, rankings, seeds, sparsity):
    """Validate :func:`deletion_curves`' arguments (one-line namjax errors otherwise); returns
    the target ids, the levels as floats and the rankings as a tuple."""
    check_choice("deletion mode", mode, MODES)
    rankings = tuple(rankings)
    unknown = [r for r in rankings if r not in RANKINGS]
    if unknown or not rankings or len(set(rankings)) != len(rankings):
        raise OptionError(
            f"rankings must be distinct names from {', '.join(RANKINGS)}; got {list(rankings)}"
        )
    if "random" in rankings and seeds < 1:
        raise OptionError(f"the random ranking needs seeds >= 1, got {seeds}")
    levels = np.asarray(levels, np.float64)
    if levels.ndim != 1 or not levels.size or not np.all((levels >= 0) & (levels <= 1)):
        raise OptionError("levels must be a non-empty 1-D list of fractions in [0, 1]")
    if np.any(np.diff(levels) <= 0):
        raise OptionError("levels must be strictly increasing")
    if not 0.0 <= sparsity <= 1.0:
        raise OptionError(f"sparsity must be in [0, 1], got {sparsity}")
    check_features(model, graph)
    if targets is None:
        targets = np.flatnonzero(graph.test_mask)
        if not targets.size:
            raise GraphError(f"{graph.name} has no test nodes; pass targets explicitly")
    return check_targets(graph, targets), levels, rankings


# ---------------------------------------------------------------------------- the experiment
def deletion_curves(
    model: GNN,
    graph: Graph,
    targets=None,
    *,
    levels=DEFAULT_LEVELS,
    mode: str = "remove",
    rankings: tuple[str, ...] = tuple(RANKINGS),
    seeds: int = 5,
    sparsity: float = 0.8,
    attribution=None,
    method_options: dict | None = None,
) -> Perturbation:
    """Run the deletion experiment for every target, ranking and level at once.

    Args:
        model: a trained model (evaluated deterministically).
        graph: the graph it was trained on.
        targets: ``(T,)`` central node ids; default the test nodes.
        levels: ``(L,)`` increasing fractions ``p`` in ``[0, 1]`` of the K-hop neighbours to
            delete (``round(p · n)``, halves rounded up).
        mode: ``"remove"`` (drop nodes and edges, renormalise the operators) or ``"zero"``
            (zero the deleted nodes' features).
        rankings: names from :data:`RANKINGS`; ``"random"`` gives one curve per seed.
        seeds: number of random orders (seeds ``0..seeds-1``).
        sparsity: fidelity is measured for the explanation ``S`` made of the top
            ``round((1 - sparsity) · n)`` neighbours of each ranking.
        attribution: precomputed attributions of ``model`` on ``graph`` for ``targets``
            holding their predicted classes: one :class:`~namjax.attribution.Attribution`
            (used for the rankings of its method) or a mapping ``{method: Attribution}``; the
            others are computed with :func:`namjax.explain`. One made with another model or
            graph is refused.
        method_options: ``{method: options}`` for the methods computed here (e.g.
            ``{"integrated_gradients": {"n_steps": 20}}``); occlusion deletes in ``mode``.
    """
    targets, levels, rankings = _checked(
        model, graph, targets, levels, mode, rankings, seeds, sparsity
    )
    steps = cast_steps(model.steps(), jnp.float32)
    kh = khop(graph, targets, model.config.depth)
    packed = pack(graph, kh, first_inputs(model, graph))

    given = {} if attribution is None else attribution
    given = {given.method: given} if isinstance(given, Attribution) else dict(given)
    scores: dict[str, np.ndarray] = {}
    needed = {r if r in METHODS else "nam" for r in rankings if r.startswith("nam") or r in METHODS}
    for name in sorted(needed):
        att = given.get(name)
        if att is None:
            options = {"mode": mode} if name == "occlusion" else {}
            options |= (method_options or {}).get(name, {})
            att = explain(model, graph, name, kh.targets, "predicted", **options)
        scores[name] = _method_scores(att, graph, model, kh)
    if "nam" in scores:
        scores |= {"nam_reversed": -scores["nam"], "nam_abs": np.abs(scores["nam"])}
    if "structure" in rankings:
        per_bucket = [pk.structure(steps) for pk in packed]
        scores["structure"] = unpack(packed, per_bucket, kh.num_pairs)
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
            bk.mask[:, None, :], ranks[:, np.maximum(pk.pairs, 0)].transpose(1, 0, 2), NEVER
        )
        logits[bk.rows] = pk.sweep(steps, mode, slot_ranks, lo[bk.rows], hi[bk.rows])
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
        graph_fingerprint=graph.fingerprint,
        model_fingerprint=model_fingerprint(model),
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
        graph_fingerprint, model_fingerprint: what the curves were computed from.
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
    graph_fingerprint: str = ""
    model_fingerprint: str = ""

    def __repr__(self) -> str:  # a one-line summary, no array dumps
        names = ", ".join(dict.fromkeys(r for r, _ in self.rankings))
        seeds = sum(r == "random" for r, _ in self.rankings)
        return (
            f"Perturbation({self.mode} mode: {len(self.targets)} targets, {len(self.levels)} "
            f"levels, rankings {names} ({seeds} random seeds), sparsity {self.sparsity})"
        )

    @property
    def predicted(self) -> np.ndarray:
        """``(T,)`` the unperturbed predicted classes."""
        return np.argmax(self.original, axis=-1)

    def deletion_order(self, ranking: str, target: int, seed: int = -1) -> np.ndarray:
        """Node ids of ``target``'s K-hop neighbours in the order ``ranking`` deletes them."""
        key = (ranking, seed if ranking == "random" else -1)
        if key not in self.rankings:
            raise OptionError(f"no deletion curve for ranking {ranking!r} (seed {key[1]})")
        hit = np.flatnonzero(self.targets == target)
        if not hit.size:
            raise AttributionError(f"node {target} is not among the perturbation targets")
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
        """The :meth:`curves` as a ``pyarrow.Table``, with the provenance (mode, sparsity,
        number of targets, graph and model fingerprints) as Parquet metadata ``namjax``."""
        import json

        import pyarrow as pa

        meta = {
            "mode": self.mode,
            "sparsity": self.sparsity,
            "targets": len(self.targets),
            "graph": self.graph_fingerprint,
            "model": self.model_fingerprint,
        }
        return pa.table(self.curves()).replace_schema_metadata(
            {b"namjax": json.dumps(meta, sort_keys=True).encode()}
        )

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
            raise OptionError(f"fidelity kind must be 'model' or 'phenomenon', got {kind!r}")
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
    model: GNN, graph: Graph, target: int, deleted, mode: str = "remove"
) -> np.ndarray:
    """Slow float64 oracle: ``(C,)`` logits of ``target`` recomputed on the whole graph after
    deleting the nodes ``deleted`` (removed with their edges and every operator rebuilt from
    its definition on the remaining graph, or their features zeroed). Plain scipy/numpy,
    independent of the vectorised sweep."""
    a = graph.adjacency.astype(np.float64)
    x = sp.csr_matrix(graph.features, dtype=np.float64)
    gone = np.zeros(graph.num_nodes, bool)
    gone[np.asarray(deleted, np.int64)] = True
    if mode == "remove":
        kept = np.flatnonzero(~gone)
        a, x = a[kept][:, kept], x[kept]
        target = int(np.searchsorted(kept, target))
    else:
        x = sp.diags((~gone).astype(np.float64)) @ x

    def operator(op) -> sp.csr_matrix:  # diag(r) (A° + s I) diag(c) from the definition
        n = a.shape[0]
        base = {"weighted": a, "binary": (a != 0).astype(np.float64)}.get(op.neighbours)
        m = op.self_loop * sp.identity(n) + (0 if base is None else base)
        d = np.asarray(m.sum(axis=1)).ravel()
        inv = np.divide(1.0, d, out=np.zeros(n), where=d > 0)
        if op.norm == "sym":
            return sp.diags(np.sqrt(inv)) @ m @ sp.diags(np.sqrt(inv))
        return (sp.diags(inv) @ m) if op.norm == "row" else sp.csr_matrix(m)

    h = x
    with jax.enable_x64(True):
        for step in model.steps():
            z = 0.0
            for t in step.terms:
                w = t.weight
                hw = h if w is None else h @ np.asarray(w, np.float64)
                for coef, op in zip(t.coefs, t.ops, strict=True):
                    z = z + float(coef) * (operator(op) @ hw)
            z = np.asarray(z if step.bias is None else z + np.asarray(step.bias, np.float64))
            h = z if step.act is None else np.asarray(ACTIVATIONS[step.act](jnp.asarray(z)))
    return np.asarray(h)[target]
