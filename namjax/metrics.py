"""Explanation metrics as plain functions over arrays, vectorised over targets (no Python loop).

Ground-truth metrics take flat arrays ``scores (P,)``, ``labels (P,)`` (bool: in the ground
truth) and ``groups (P,)`` (int ``0..G-1``: the target each entry belongs to) and return one
value per group; :func:`node_ground_truth` turns an :class:`~namjax.Attribution` and a
:class:`~namjax.groundtruth.Benchmark` into such arrays. Prediction metrics (fidelity,
unfaithfulness) take the model's outputs on the original and the masked graphs.

Definitions: AUROC as scikit-learn's ``roc_auc_score`` (tied scores get their average rank);
fidelity, characterization score and fidelity-curve AUC as PyG's ``torch_geometric.explain.metric``
(GraphFramEx, Amara et al. 2022); GEA and GEF as GraphXAI (Agarwal et al. 2023).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy.special import rel_entr

from namjax.errors import AttributionError, OptionError

if TYPE_CHECKING:
    from namjax import Attribution
    from namjax.groundtruth import Benchmark


@dataclass(frozen=True)
class AUROC:
    """Per-target and summary AUROC.

    Attributes:
        targets: ``(G,)`` target node ids.
        per_target: ``(G,)`` float64 AUROC of each target's entries, nan where they hold one label.
        mean: mean of ``per_target`` over the targets where both labels occur (nan if none).
        pooled: AUROC of all entries of all targets together.
    """

    targets: np.ndarray
    per_target: np.ndarray
    mean: float
    pooled: float


# ------------------------------------------------------------------------ ranking metrics
def grouped_roc_auc(
    scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, num_groups: int | None = None
) -> np.ndarray:
    """``(G,)`` float64 AUROC of each group's ``scores`` against its bool ``labels``: the
    Mann–Whitney statistic with average ranks for ties, as ``sklearn.metrics.roc_auc_score``.
    nan for a group without both a positive and a negative. ``G`` defaults to ``max(groups)+1``."""
    scores, labels, groups = _flat(scores, labels, groups)
    g = _num_groups(groups, num_groups)
    order = np.lexsort((scores, groups))
    s, grp = scores[order], groups[order]
    start = np.searchsorted(grp, np.arange(g))  # first sorted position of each group
    pos = np.arange(len(s)) - start[grp] + 1.0  # 1-based rank inside the group
    new = np.ones(len(s), bool)
    new[1:] = (s[1:] != s[:-1]) | (grp[1:] != grp[:-1])
    block = np.cumsum(new) - 1  # tie blocks never straddle groups
    first, last = pos[new], np.r_[pos[np.flatnonzero(new)[1:] - 1], pos[-1:]]
    rank = ((first + last) / 2)[block]
    y = labels[order]
    n_pos = np.bincount(grp, y, g)
    n_neg = np.bincount(grp, minlength=g) - n_pos
    u = np.bincount(grp, np.where(y, rank, 0.0), g) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """AUROC of ``scores (P,)`` against bool ``labels (P,)`` (nan if only one label occurs)."""
    scores = np.asarray(scores)
    return float(grouped_roc_auc(scores, labels, np.zeros(scores.shape, np.int64), 1)[0])


def topk_accuracy(
    scores: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    k: int | None = None,
    num_groups: int | None = None,
) -> np.ndarray:
    """``(G,)`` explanation accuracy at top-k: ``|top-k ∩ truth| / min(k, |truth|)``.

    Each group's entries are ranked by score, highest first, ties in the order given. ``k``
    defaults to each group's number of positives (then precision = recall); nan for a group with
    no positive."""
    hits, _, truth = _topk(scores, labels, groups, k, num_groups)
    kk = truth if k is None else np.minimum(k, truth)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(truth > 0, hits / kk, np.nan)


def explanation_accuracy(
    scores: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    k: int | None = None,
    num_groups: int | None = None,
) -> np.ndarray:
    """``(G,)`` GraphXAI's graph explanation accuracy GEA, the Jaccard index
    ``TP / (TP + FP + FN)`` between each group's top-k set (ranked as :func:`topk_accuracy`,
    same default ``k``) and its ground-truth set; nan (GraphXAI: 0) for a group with no positive."""
    hits, top, truth = _topk(scores, labels, groups, k, num_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(truth > 0, hits / (top + truth - hits), np.nan)


def _topk(scores, labels, groups, k, num_groups):
    """Per group: (hits in the top-k, size of the top-k set, number of positives)."""
    scores, labels, groups = _flat(scores, labels, groups)
    g = _num_groups(groups, num_groups)
    if k is not None and (isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1):
        raise OptionError(f"k must be a positive integer or None, got {k!r}")
    truth = np.bincount(groups, labels, g).astype(np.int64)
    size = np.bincount(groups, minlength=g)
    kk = truth if k is None else np.full(g, k)
    order = np.lexsort((np.arange(len(scores)), -scores, groups))
    grp = groups[order]
    rank = np.arange(len(grp)) - np.searchsorted(grp, np.arange(g))[grp]
    top = rank < kk[grp]
    hits = np.bincount(grp, top & labels[order], g).astype(np.int64)
    return hits, np.minimum(kk, size), truth


# ------------------------------------------------------------------------ ground truth
def node_ground_truth(
    attribution: Attribution,
    benchmark: Benchmark,
    *,
    cls: int | Literal["predicted", "label"] = "predicted",
    absolute: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores (P',), labels (P',), groups (P',))``: every (target, source) pair of the
    attribution except the target itself, scored by its contribution to the class slot of
    ``cls`` (the predicted class, the true label, or a class id; ``absolute``: its magnitude),
    labelled True where the source lies in the same motif as the target; ``groups`` is the
    target's row in ``attribution.targets``."""
    a = attribution
    if a.num_nodes != benchmark.graph.num_nodes:
        raise AttributionError(
            f"the attribution has {a.num_nodes} nodes but {benchmark.name} has "
            f"{benchmark.graph.num_nodes}"
        )
    t = len(a.targets)
    row = np.repeat(np.arange(t), np.diff(a.offsets))
    if cls == "predicted":
        wanted = np.asarray(a.predicted)
    elif cls == "label":
        wanted = np.asarray(a.labels)
        if (wanted < 0).any():
            raise AttributionError(f"target {a.targets[wanted < 0][0]} has no known label")
    elif isinstance(cls, int | np.integer) and not isinstance(cls, bool):
        wanted = np.full(t, cls)
    else:
        raise OptionError(f"cls must be 'predicted', 'label' or a class id, got {cls!r}")
    match = np.asarray(a.classes) == wanted[:, None]
    missing = ~match.any(axis=1)
    if missing.any():
        i = int(np.argmax(missing))
        raise AttributionError(f"class {wanted[i]} was not computed for target {a.targets[i]}")
    slot = np.argmax(match, axis=1)
    scores = np.asarray(a.contributions)[np.arange(len(row)), slot[row]].astype(np.float64)
    if absolute:
        scores = np.abs(scores)
    target = np.asarray(a.targets)[row]
    keep = a.sources != target
    mt, ms = benchmark.motif[target], benchmark.motif[a.sources]
    return scores[keep], ((mt >= 0) & (ms == mt))[keep], row[keep]


def node_auroc(
    attribution: Attribution,
    benchmark: Benchmark,
    *,
    cls: int | Literal["predicted", "label"] = "predicted",
    absolute: bool = False,
) -> AUROC:
    """Node-level AUROC: each target's K-hop sources (not the target itself) ranked by
    contribution (see :func:`node_ground_truth`) against "same motif as the target"."""
    scores, labels, groups = node_ground_truth(attribution, benchmark, cls=cls, absolute=absolute)
    per = grouped_roc_auc(scores, labels, groups, len(attribution.targets))
    return AUROC(np.asarray(attribution.targets), per, nan_mean(per), roc_auc(scores, labels))


def edge_auroc(
    target: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    score: np.ndarray,
    benchmark: Benchmark,
    *,
    own_motif: bool = False,
) -> AUROC:
    """Edge-level AUROC from flat ``(E',)`` arrays: entry ``i`` scores edge ``u[i]–v[i]`` of the
    computation subgraph of ``target[i]``. An entry is positive when the edge is a motif edge
    (either direction; with ``own_motif``, only of the target's own motif). Self-loops
    (``u == v``) count as negatives; any other pair that is not an edge is an error."""
    check = benchmark.graph.check_nodes
    target, u, v = check(target, "target"), check(u, "u"), check(v, "v")
    score = np.asarray(score, np.float64)
    if not score.shape == target.shape == u.shape == v.shape or score.ndim != 1:
        raise OptionError(
            f"target, u, v, score must be equal (E,) arrays, got {target.shape}, {u.shape}, "
            f"{v.shape}, {score.shape}"
        )
    if not np.isfinite(score).all():
        raise OptionError("score contains NaN or inf")
    pos = benchmark.edge_positions(u, v)
    stray = (pos < 0) & (u != v)
    if stray.any():
        i = int(np.argmax(stray))
        raise OptionError(f"({u[i]}, {v[i]}) is not an edge of {benchmark.name}")
    labels = (pos >= 0) & benchmark.edge_mask[np.maximum(pos, 0)]
    if own_motif:
        labels &= benchmark.motif[u] == benchmark.motif[target]
    ids, groups = np.unique(target, return_inverse=True)
    per = grouped_roc_auc(score, labels, groups, len(ids))
    return AUROC(ids, per, nan_mean(per), roc_auc(score, labels))


# ------------------------------------------------------------------------ prediction metrics
def fidelity(
    original: np.ndarray,
    removed: np.ndarray,
    kept: np.ndarray,
    labels: np.ndarray | None = None,
    kind: Literal["model", "phenomenon"] = "model",
) -> tuple[float, float]:
    """``(fid+, fid-)`` from ``(T,)`` predicted classes on the whole graph (``original``), with
    the explanation removed (``removed``) and with only the explanation kept (``kept``).

    ``kind="model"``: ``fid+ = 1 - mean(removed == original)``, ``fid- = 1 - mean(kept ==
    original)``. ``kind="phenomenon"`` (needs ``labels``): ``fid+ = mean|1(original = y) -
    1(removed = y)|``, ``fid- = mean|1(original = y) - 1(kept = y)|``."""
    arrays = [np.asarray(x) for x in (original, removed, kept)]
    if kind == "phenomenon":
        if labels is None:
            raise OptionError("fidelity of kind 'phenomenon' needs labels")
        arrays.append(np.asarray(labels))
    elif kind != "model":
        raise OptionError(f"kind must be 'model' or 'phenomenon', got {kind!r}")
    if len({x.shape for x in arrays}) != 1 or arrays[0].ndim != 1 or not len(arrays[0]):
        shapes = ", ".join(str(x.shape) for x in arrays)
        raise OptionError(f"fidelity needs equal non-empty (T,) arrays, got {shapes}")
    original, removed, kept = arrays[:3]
    if kind == "model":
        return 1.0 - float(np.mean(removed == original)), 1.0 - float(np.mean(kept == original))
    hit = original == arrays[3]
    return float(np.mean(hit != (removed == arrays[3]))), float(np.mean(hit != (kept == arrays[3])))


def characterization_score(
    fid_plus: np.ndarray, fid_minus: np.ndarray, pos_weight: float = 0.5, neg_weight: float = 0.5
) -> np.ndarray:
    """Elementwise ``(w+ + w-) / (w+ / fid+ + w- / (1 - fid-))`` (weights summing to 1); 0 where
    ``fid+ = 0`` or ``fid- = 1``."""
    if not np.isclose(pos_weight + neg_weight, 1.0, rtol=0, atol=1e-12):
        raise OptionError(f"the weights must sum to 1, got {pos_weight} and {neg_weight}")
    fp, fm = np.asarray(fid_plus, np.float64), np.asarray(fid_minus, np.float64)
    with np.errstate(divide="ignore"):
        return 1.0 / (pos_weight / fp + neg_weight / (1.0 - fm))


def fidelity_curve_auc(fid_plus: np.ndarray, fid_minus: np.ndarray, x: np.ndarray) -> float:
    """Trapezoidal area under ``fid+ / (1 - fid-)`` over ascending ``x`` (all ``(S,)``)."""
    fp, fm, x = (np.asarray(a, np.float64) for a in (fid_plus, fid_minus, x))
    if not fp.shape == fm.shape == x.shape or fp.ndim != 1:
        raise OptionError(
            f"fid_plus, fid_minus, x must be equal (S,) arrays, got {fp.shape}, {fm.shape}, "
            f"{x.shape}"
        )
    if (fm == 1).any():
        raise OptionError("fid- is 1 somewhere: fid+ / (1 - fid-) is undefined")
    if (np.diff(x) < 0).any():
        raise OptionError("x must be in ascending order")
    y = fp / (1.0 - fm)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``(T,)`` float64 ``KL(p || q) = Σ_c p log(p / q)`` per row of ``(T, C)`` probabilities
    (``0 log 0 = 0``; inf where ``q = 0 < p``)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if p.shape != q.shape or p.ndim != 2:
        raise OptionError(f"p and q must be equal (T, C) arrays, got {p.shape} and {q.shape}")
    if not (np.isfinite(p).all() and np.isfinite(q).all()) or (p < 0).any() or (q < 0).any():
        raise OptionError("probabilities must be finite and non-negative")
    return rel_entr(p, q).sum(axis=1)


def unfaithfulness(
    p_original: np.ndarray, p_explained: np.ndarray, *, reverse: bool = False
) -> np.ndarray:
    """``(T,)`` GraphXAI's graph explanation unfaithfulness ``GEF = 1 - exp(-KL(p_original ||
    p_explained))`` from ``(T, C)`` class probabilities on the whole graph and on the explanation.

    ``reverse=True`` uses ``KL(p_explained || p_original)``, the direction PyG's and GraphXAI's
    code evaluate (their ``F.kl_div(p_original.log(), p_explained)``); PyG's ``unfaithfulness``
    over several targets is ``1 - exp(-mean_t KL_t)`` of that, i.e.
    ``1 - exp(-kl_divergence(p_explained, p_original).mean())``."""
    kl = (
        kl_divergence(p_explained, p_original)
        if reverse
        else kl_divergence(p_original, p_explained)
    )
    return -np.expm1(-kl)


# ------------------------------------------------------------------------ helpers
def _flat(scores, labels, groups):
    scores, labels, groups = np.asarray(scores), np.asarray(labels), np.asarray(groups)
    if not scores.shape == labels.shape == groups.shape or scores.ndim != 1:
        raise OptionError(
            f"scores, labels, groups must be equal (P,) arrays, got {scores.shape}, "
            f"{labels.shape}, {groups.shape}"
        )
    if scores.size and not np.isfinite(scores).all():
        raise OptionError("scores contain NaN or inf")
    if labels.dtype != bool:
        raise OptionError(f"labels must be boolean, got {labels.dtype}")
    if groups.size and (not np.issubdtype(groups.dtype, np.integer) or groups.min() < 0):
        raise OptionError("groups must be non-negative integers")
    return scores.astype(np.float64), labels, groups.astype(np.int64)


def _num_groups(groups: np.ndarray, num_groups: int | None) -> int:
    g = int(groups.max(initial=-1)) + 1
    if num_groups is None:
        return g
    if num_groups < g:
        raise OptionError(f"num_groups is {num_groups} but groups holds id {g - 1}")
    return int(num_groups)


def nan_mean(x: np.ndarray) -> float:
    """The mean of the non-NaN entries of ``x`` (NaN when there are none)."""
    return float(np.mean(x[~np.isnan(x)])) if (~np.isnan(x)).any() else float("nan")
