"""Explanation metrics against the libraries that define them: scikit-learn's roc_auc_score
(and torchmetrics through PyG's groundtruth_metrics), PyG's fidelity, characterization score,
fidelity-curve AUC and unfaithfulness (on a tiny PyG GCN with the masked predictions recomputed
here), and slow reference loops for GraphXAI's GEA and the node/edge ground truth."""

from __future__ import annotations

from dataclasses import replace

import networkx as nx
import numpy as np
import pytest
import scipy.stats
from conftest import require

from namjax import Attribution
from namjax.errors import AttributionError, GraphError, OptionError
from namjax.groundtruth import ba_shapes, load_benchmark
from namjax.metrics import (
    characterization_score,
    edge_auroc,
    explanation_accuracy,
    fidelity,
    fidelity_curve_auc,
    grouped_roc_auc,
    kl_divergence,
    node_auroc,
    node_ground_truth,
    roc_auc,
    topk_accuracy,
    unfaithfulness,
)


def _groups(rng, num_groups=40, ties=True):
    """Random groups of 1..30 entries, integer scores (ties) or float32 ones; a few groups have
    a single label."""
    sizes = rng.integers(1, 30, num_groups)
    groups = np.repeat(np.arange(num_groups), sizes)
    rng.shuffle(groups)
    n = len(groups)
    scores = rng.integers(0, 5, n).astype(np.float64) if ties else rng.normal(size=n)
    scores = scores.astype(np.float32)
    labels = rng.random(n) < rng.random(num_groups)[groups]
    labels[groups == 0] = True
    return scores, labels, groups


def _sk_auc(scores, labels):
    """scikit-learn's AUROC (the oracle), nan where only one label occurs."""
    roc_auc_score = require("sklearn.metrics").roc_auc_score
    if labels.all() or not labels.any():
        return np.nan
    return roc_auc_score(labels, np.asarray(scores, np.float64))


@pytest.mark.parametrize("ties", [True, False])
def test_grouped_roc_auc_is_sklearn_per_group(ties):
    rng = np.random.default_rng(0 if ties else 1)
    scores, labels, groups = _groups(rng, ties=ties)
    got = grouped_roc_auc(scores, labels, groups, num_groups=42)
    ref = [_sk_auc(scores[groups == g], labels[groups == g]) for g in range(42)]
    assert np.isnan(got[0]) and np.isnan(got[40:]).all()  # one label; empty groups
    assert np.isfinite(got).sum() >= 20
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
    assert roc_auc(scores, labels) == pytest.approx(_sk_auc(scores, labels), rel=1e-12)
    assert np.isnan(roc_auc(scores[labels], labels[labels]))


def test_roc_auc_matches_pyg_groundtruth_metrics():
    require("torchmetrics")
    require("torch_geometric")
    import torch
    from torch_geometric.explain.metric import groundtruth_metrics

    rng = np.random.default_rng(2)
    scores = rng.integers(0, 7, 500).astype(np.float32) / 7  # ties
    labels = rng.random(500) < 0.3
    ref = groundtruth_metrics(torch.tensor(scores), torch.tensor(labels), "auroc")
    assert roc_auc(scores, labels) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("k", [None, 1, 3])
def test_topk_accuracy_and_gea_match_a_reference_loop(k):
    rng = np.random.default_rng(3)
    scores, labels, groups = _groups(rng)
    acc = topk_accuracy(scores, labels, groups, k=k)
    gea = explanation_accuracy(scores, labels, groups, k=k)
    for g in range(groups.max() + 1):
        idx = np.flatnonzero(groups == g)
        truth = set(idx[labels[idx]].tolist())
        kk = len(truth) if k is None else k
        ranked = sorted(idx.tolist(), key=lambda i: (-scores[i], i))  # ties: given order
        top = set(ranked[:kk])
        if not truth:
            assert np.isnan(acc[g]) and np.isnan(gea[g])
            continue
        tp, fp, fn = len(top & truth), len(top - truth), len(truth - top)
        assert acc[g] == pytest.approx(tp / min(kk, len(truth)), rel=1e-15)
        assert gea[g] == pytest.approx(tp / (tp + fp + fn), rel=1e-15)  # GraphXAI's Jaccard
    with pytest.raises(OptionError, match="k must be a positive integer"):
        topk_accuracy(scores, labels, groups, k=0)


def test_array_inputs_are_checked():
    with pytest.raises(OptionError, match="equal"):
        grouped_roc_auc(np.zeros(3), np.zeros(2, bool), np.zeros(3, int))
    with pytest.raises(OptionError, match="boolean"):
        roc_auc(np.zeros(3), np.zeros(3))
    with pytest.raises(OptionError, match="NaN"):
        roc_auc(np.array([0.0, np.nan]), np.array([True, False]))


# ------------------------------------------------------------------------ ground truth
@pytest.fixture(scope="module")
def bench():
    return load_benchmark("ba-shapes", seed=0)


def _khop(g: nx.Graph, node: int, depth: int):
    """(sources, hops): the node itself first, then by hop, then by id (Attribution order)."""
    dist = nx.single_source_shortest_path_length(g, node, cutoff=depth)
    order = sorted(dist, key=lambda s: (dist[s], s))
    return np.array(order), np.array([dist[s] for s in order])


def _attribution(bench, targets, depth=3, seed=0):
    """An Attribution with the real K-hop structure, Q = 2 class slots, random (tied)
    contributions."""
    rng = np.random.default_rng(seed)
    g = nx.from_scipy_sparse_array(bench.graph.adjacency)
    parts = [_khop(g, t, depth) for t in targets]
    sources = np.concatenate([s for s, _ in parts])
    hops = np.concatenate([h for _, h in parts]).astype(np.int8)
    offsets = np.r_[0, np.cumsum([len(s) for s, _ in parts])]
    t = len(targets)
    predicted = rng.integers(0, 4, t)
    classes = np.stack([predicted, (predicted + 1 + rng.integers(0, 3, t)) % 4], axis=1)
    contributions = np.round(rng.normal(size=(len(sources), 2)), 1).astype(np.float32)
    return Attribution(
        targets=np.asarray(targets, np.int64),
        offsets=offsets,
        sources=sources,
        hops=hops,
        contributions=contributions,
        classes=classes,
        logits=rng.normal(size=(t, 2)),
        bias=np.zeros((t, 2)),
        predicted=predicted,
        labels=bench.graph.labels[targets].astype(np.int64),
        num_nodes=bench.graph.num_nodes,
        depth=depth,
    )


@pytest.mark.parametrize(("cls", "absolute"), [("predicted", False), ("label", True), (2, False)])
def test_node_auroc_matches_a_reference_loop(bench, cls, absolute):
    rng = np.random.default_rng(4)
    motif_nodes = rng.choice(np.flatnonzero(bench.motif >= 0), 30, replace=False)
    targets = np.r_[motif_nodes, rng.choice(300, 10, replace=False)]  # base ones: all negative
    attr = _attribution(bench, targets)
    if cls == 2:  # every target needs the slot: put class 2 in slot 1 where slot 0 is not 2
        classes = attr.classes.copy()
        classes[classes[:, 0] != 2, 1] = 2
        attr = replace(attr, classes=classes)
    elif cls == "label":
        classes = attr.classes.copy()
        classes[:, 1] = np.where(classes[:, 0] == attr.labels, classes[:, 1], attr.labels)
        attr = replace(attr, classes=classes)
    got = node_auroc(attr, bench, cls=cls, absolute=absolute)
    per, all_s, all_y = [], [], []
    for i, t in enumerate(targets):
        s = slice(attr.offsets[i], attr.offsets[i + 1])
        src, c = attr.sources[s], attr.contributions[s]
        want = {"predicted": attr.predicted[i], "label": attr.labels[i]}.get(cls, cls)
        score = c[:, list(attr.classes[i]).index(want)].astype(np.float64)
        score = np.abs(score) if absolute else score
        other = src != t
        y = (bench.motif[src] == bench.motif[t]) & (bench.motif[t] >= 0)
        per.append(_sk_auc(score[other], y[other]))
        all_s.append(score[other])
        all_y.append(y[other])
    np.testing.assert_allclose(got.per_target, per, rtol=1e-12)
    assert np.isnan(got.per_target[30:]).all() and np.isfinite(got.per_target[:30]).all()
    assert got.mean == pytest.approx(np.nanmean(per), rel=1e-12)
    assert got.pooled == pytest.approx(_sk_auc(np.concatenate(all_s), np.concatenate(all_y)))
    s, y, grp = node_ground_truth(attr, bench, cls=cls, absolute=absolute)
    acc = topk_accuracy(s, y, grp)
    assert acc.shape == (40,) and np.isnan(acc[30:]).all()


def test_node_ground_truth_refuses_what_it_cannot_answer(bench):
    attr = _attribution(bench, np.array([300, 301]))
    with pytest.raises(AttributionError, match="class 99 was not computed for target 300"):
        node_ground_truth(attr, bench, cls=99)
    other = ba_shapes(num_base=50, m=2, num_motifs=5)
    with pytest.raises(
        AttributionError, match="the attribution has 700 nodes but ba-shapes has 75"
    ):
        node_ground_truth(attr, other)
    with pytest.raises(OptionError, match="cls must be"):
        node_ground_truth(attr, bench, cls="best")


def test_edge_auroc_matches_a_reference_loop(bench):
    rng = np.random.default_rng(5)
    g = nx.from_scipy_sparse_array(bench.graph.adjacency)
    targets = np.r_[rng.choice(np.flatnonzero(bench.motif >= 0), 20, replace=False), 3]
    rows = []
    for t in targets:  # the 2-hop computation subgraph, both directions, and its self-loops
        near = nx.single_source_shortest_path_length(g, int(t), cutoff=2)
        sub = g.subgraph(near)
        rows += [(t, u, v) for u, v in sub.edges()] + [(t, v, u) for u, v in sub.edges()]
        rows += [(t, u, u) for u in near]
    tgt, u, v = np.array(rows).T
    score = rng.integers(0, 6, len(tgt)).astype(np.float64)
    for own in (False, True):
        got = edge_auroc(tgt, u, v, score, bench, own_motif=own)
        assert np.array_equal(got.targets, np.unique(targets))
        ys = np.array(
            [
                a != b
                and g.has_edge(a, b)
                and bench.motif[a] >= 0
                and bench.motif[a] == bench.motif[b]
                and (not own or bench.motif[a] == bench.motif[t])
                for t, a, b in rows
            ]
        )
        ref = [_sk_auc(score[tgt == t], ys[tgt == t]) for t in got.targets]
        np.testing.assert_allclose(got.per_target, ref, rtol=1e-12)
        assert got.pooled == pytest.approx(_sk_auc(score, ys), rel=1e-12)
        assert got.mean == pytest.approx(np.nanmean(ref), rel=1e-12)
    assert np.isnan(got.per_target[got.targets == 3]).all()  # a base node's own motif: none
    a, b = next((a, b) for a in range(700) for b in range(a + 1, 700) if not g.has_edge(a, b))
    with pytest.raises(OptionError, match=rf"\({a}, {b}\) is not an edge of ba-shapes"):
        edge_auroc([a], [a], [b], [0.5], bench)
    with pytest.raises(GraphError, match="out of range"):
        edge_auroc([0], [0], [700], [0.5], bench)


# ------------------------------------------------------------------------ prediction metrics
@pytest.fixture(scope="module")
def pyg_setup():
    """A tiny 2-layer PyG GCN (random weights, float64) on a small BA-Shapes and a dense
    re-implementation of its masked forward pass: messages scaled by the edge mask after the
    GCN normalisation, self-loops unmasked, node features scaled by the node mask."""
    require("torch_geometric")
    import torch
    from torch_geometric.nn import GCNConv

    torch.manual_seed(0)
    b = ba_shapes(num_base=60, m=2, num_motifs=12, seed=1)
    a = b.graph.adjacency.tocoo()
    edge_index = torch.tensor(np.stack([a.row, a.col]), dtype=torch.long)
    x = torch.randn(b.graph.num_nodes, 6, dtype=torch.float64)
    y = torch.tensor(b.graph.labels, dtype=torch.long)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = GCNConv(6, 16), GCNConv(16, 4)

        def forward(self, x, edge_index):
            return self.conv2(self.conv1(x, edge_index).relu(), edge_index)

    model = Net().double().eval()
    n = b.graph.num_nodes
    dense = torch.tensor(b.graph.adjacency.toarray(), dtype=torch.float64) + torch.eye(n)
    d = dense.sum(1).rsqrt()
    norm = d[:, None] * dense * d[None, :]

    def forward(node_mask=None, edge_mask=None):
        m = torch.ones(n, n, dtype=torch.float64)
        if edge_mask is not None:  # edge e carries source edge_index[0] -> target edge_index[1]
            m[edge_index[1], edge_index[0]] = edge_mask.double()
        p = norm * m
        h = x if node_mask is None else x * node_mask
        for conv, act in ((model.conv1, True), (model.conv2, False)):
            h = p @ conv.lin(h) + conv.bias
            h = h.relu() if act else h
        return h

    return model, x, edge_index, y, forward


def _explainer(model, kind):
    from torch_geometric.explain import Explainer
    from torch_geometric.explain.algorithm import DummyExplainer

    return Explainer(
        model,
        DummyExplainer(),
        explanation_type=kind,
        model_config=dict(mode="multiclass_classification", task_level="node", return_type="raw"),
        node_mask_type="object",
        edge_mask_type="object",
    )


@pytest.mark.parametrize("kind", ["model", "phenomenon"])
def test_fidelity_matches_pyg(pyg_setup, kind):
    import torch
    from torch_geometric.explain.metric import fidelity as pyg_fidelity

    model, x, edge_index, y, forward = pyg_setup
    torch.manual_seed(1)
    index = torch.arange(0, x.shape[0], 2)
    explainer = _explainer(model, kind)
    target = y if kind == "phenomenon" else None
    expl = explainer(x, edge_index, index=index, target=target)
    ref = pyg_fidelity(explainer, expl)
    with torch.no_grad():
        nm, em = expl.node_mask, expl.edge_mask
        logits = forward()
        torch.testing.assert_close(logits, model(x, edge_index))  # the recomputation is right
        original = logits.argmax(1)[index].numpy()
        kept = forward(nm, em).argmax(1)[index].numpy()
        removed = forward(1 - nm, 1 - em).argmax(1)[index].numpy()
    got = fidelity(original, removed, kept, y[index].numpy(), kind=kind)
    assert got == pytest.approx(ref, rel=1e-6)
    assert 0 < got[0] < 1 and 0 < got[1] < 1  # neither trivially 0 nor 1


def test_fidelity_checks_its_arguments():
    with pytest.raises(OptionError, match="needs labels"):
        fidelity([0], [0], [0], kind="phenomenon")
    with pytest.raises(OptionError, match="kind must be"):
        fidelity([0], [0], [0], kind="both")
    with pytest.raises(OptionError, match="equal non-empty"):
        fidelity([0, 1], [0], [0])


def test_characterization_and_fidelity_curve_auc_match_pyg():
    require("torch_geometric")
    import torch
    from torch_geometric.explain.metric import characterization_score as pyg_charact
    from torch_geometric.explain.metric import fidelity_curve_auc as pyg_auc

    rng = np.random.default_rng(6)
    fp, fm = rng.random(20), rng.random(20) * 0.9
    fp[0] = 0.0  # 1 / inf = 0 in both
    for w in (0.5, 0.2):
        ref = pyg_charact(torch.tensor(fp), torch.tensor(fm), w, 1 - w).numpy()
        np.testing.assert_allclose(characterization_score(fp, fm, w, 1 - w), ref, rtol=1e-12)
    xs = np.sort(rng.random(20))
    ref = float(pyg_auc(torch.tensor(fp), torch.tensor(fm), torch.tensor(xs)))
    assert fidelity_curve_auc(fp, fm, xs) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(OptionError, match="sum to 1"):
        characterization_score(fp, fm, 0.5, 0.6)
    with pytest.raises(OptionError, match="ascending"):
        fidelity_curve_auc(fp, fm, xs[::-1])
    with pytest.raises(OptionError, match="fid- is 1"):
        fidelity_curve_auc(fp, np.ones(20), xs)


def test_unfaithfulness_matches_pyg_and_the_definition(pyg_setup):
    import torch
    from torch_geometric.explain.metric import unfaithfulness as pyg_unfaithfulness

    model, x, edge_index, _, forward = pyg_setup
    explainer = _explainer(model, "model")
    torch.manual_seed(2)
    for index in (torch.arange(0, 40, 3), torch.tensor([5]), torch.tensor([61])):
        expl = explainer(x, edge_index, index=index)
        ref = pyg_unfaithfulness(explainer, expl)
        with torch.no_grad():
            p = forward().softmax(1)[index].numpy()
            q = forward(expl.node_mask, expl.edge_mask).softmax(1)[index].numpy()
        pooled = -np.expm1(-kl_divergence(q, p).mean())  # PyG: batch-mean KL(q || p)
        assert pooled == pytest.approx(ref, rel=1e-9)
        if len(index) == 1:
            assert unfaithfulness(p, q, reverse=True)[0] == pytest.approx(ref, rel=1e-9)
        # the paper's direction, against scipy's KL and the formula
        want = [1 - np.exp(-scipy.stats.entropy(pi, qi)) for pi, qi in zip(p, q, strict=True)]
        np.testing.assert_allclose(unfaithfulness(p, q), want, rtol=1e-12)
    z = np.array([[0.5, 0.5, 0.0]])
    assert unfaithfulness(z, np.array([[1.0, 0.0, 0.0]]))[0] == 1.0  # q = 0 < p: KL = inf
    assert unfaithfulness(np.array([[1.0, 0.0, 0.0]]), z)[0] == pytest.approx(1 - 0.5)
    with pytest.raises(OptionError, match="equal"):
        kl_divergence(np.ones((2, 3)) / 3, np.ones((2, 2)) / 2)
