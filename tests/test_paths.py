"""``paths``: every active walk, its contribution, and the paper's named path sets."""

from __future__ import annotations

import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from models import ARCHS, random_model

from namjax.explainer import nam
from namjax.walks import paths


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("hidden", [(), (8,), (6, 5)])
def test_path_sums_equal_node_contributions(karate, hidden, arch):
    model = random_model(karate, hidden=hidden, seed=11, arch=arch)
    att = nam(model, karate, targets=[0, 33, 16])
    for target in att.targets:
        sources, _, contrib = att.for_target(target)
        for i in range(0, len(sources), 5):
            walks = paths(model, karate, target, sources[i])
            total = sum((c for _, c in walks), np.zeros(karate.num_classes))
            scale = np.abs(contrib).max()
            assert np.abs(total - contrib[i]).max() <= 1e-5 * scale
            k = model.config.depth
            for walk, _ in walks:
                assert len(walk) == k + 1 and walk[0] == sources[i] and walk[-1] == target


def test_named_path_sets_for_two_layers(karate):
    """With K = 2 every walk is active under the identity activation, so the walk sets are the
    paper's: φ→φ→a and φ→a→a for a neighbour φ, plus φ→φ'→a through common neighbours φ'."""
    model = random_model(karate, hidden=(4,), activation="identity", seed=12)
    g = nx.from_scipy_sparse_array(karate.adjacency)
    a = 0
    for phi in list(g[a])[:6]:
        common = set(g[a]) & set(g[phi])
        want = {(phi, phi, a), (phi, a, a)} | {(phi, u, a) for u in common}
        assert {w for w, _ in paths(model, karate, a, phi)} == want
    two_hop = next(v for v in g if nx.shortest_path_length(g, a, v) == 2)
    want = {(two_hop, u, a) for u in set(g[a]) & set(g[two_hop])}
    assert {w for w, _ in paths(model, karate, a, two_hop)} == want
    want = {(a, a, a)} | {(a, u, a) for u in g[a]}
    assert {w for w, _ in paths(model, karate, a, a)} == want
    far = next(v for v in g if nx.shortest_path_length(g, a, v) == 3)
    assert paths(model, karate, a, far) == []


def test_dead_units_make_walks_inactive(karate):
    model = random_model(karate, hidden=(4,), seed=13)
    model.layers[0].bias[...] = jnp.full(4, -1e4, jnp.float32)  # every hidden unit is off
    assert paths(model, karate, 0, 1) == []
    att = nam(model, karate, targets=[0])
    assert np.all(att.contributions == 0)
    np.testing.assert_allclose(att.bias, att.logits, rtol=1e-6)


def _lrp_reference(model, graph, walk, cls: int, gamma: float) -> float:
    """GNN-LRP relevance of one walk of a 2-layer GCN, written out from the paper's rule with
    dense float64 matrices: ``R_j = Σ_k Â[v, u] a_j ρ(w_jk) / z^ρ_k R_k`` along the walk."""
    a_hat = graph.normalized_adjacency.toarray().astype(np.float64)
    x = graph.features.toarray().astype(np.float64)
    (w1, b1), (w2, b2) = [
        (np.asarray(s.terms[0].weight, np.float64), np.asarray(s.bias, np.float64))
        for s in model.steps()
    ]

    def rho(m):
        return m + gamma * np.maximum(m, 0.0)

    h1 = np.maximum(a_hat @ x @ w1 + b1, 0.0)
    z2 = a_hat @ h1 @ w2 + b2
    z1_rho = a_hat @ x @ rho(w1) + rho(b1)
    z2_rho = a_hat @ h1 @ rho(w2) + rho(b2)
    v0, v1, v2 = walk
    r2 = np.zeros(z2.shape[1])
    r2[cls] = z2[v2, cls]
    r1 = np.array(
        [
            sum(
                a_hat[v2, v1] * h1[v1, j] * rho(w2)[j, k] / z2_rho[v2, k] * r2[k]
                for k in range(len(r2))
            )
            for j in range(h1.shape[1])
        ]
    )
    return float(
        sum(
            a_hat[v1, v0] * x[v0, i] * rho(w1)[i, k] / z1_rho[v1, k] * r1[k]
            for k in range(len(r1))
            for i in range(x.shape[1])
        )
    )


@pytest.mark.parametrize("gamma", [0.0, 0.25])
def test_lrp_gamma_walks_match_a_written_out_reference(karate, gamma):
    from namjax.walks import walks

    model = random_model(karate, hidden=(4,), seed=21)
    pairs = [(0, 1), (0, 0), (33, 9)]
    found = walks(model, karate, pairs, rule="lrp_gamma", gamma=gamma)
    assert [len(f) for f in found] == [len(paths(model, karate, t, s)) for t, s in pairs]
    for per_pair in found:
        for walk, relevance in per_pair[:6]:
            for cls in range(2):
                want = _lrp_reference(model, karate, walk, cls, gamma)
                assert abs(relevance[cls] - want) <= 1e-5 * max(1.0, abs(want))


def test_lrp_0_is_the_gradient_rule(karate):
    model = random_model(karate, hidden=(6, 5), seed=22)
    grad = paths(model, karate, 33, 2)
    lrp = paths(model, karate, 33, 2, rule="lrp_gamma", gamma=0.0)
    assert [w for w, _ in grad] == [w for w, _ in lrp]
    for (_, g), (_, r) in zip(grad, lrp, strict=True):
        np.testing.assert_allclose(r, g, rtol=1e-5, atol=1e-7)


def test_many_pairs_in_one_call_equal_one_at_a_time(karate):
    from namjax.walks import walks

    model = random_model(karate, hidden=(8,), seed=23, arch="sage")
    pairs = [(0, 0), (0, 5), (33, 30), (16, 6)]
    for per_pair, (t, s) in zip(walks(model, karate, pairs), pairs, strict=True):
        single = paths(model, karate, t, s)
        assert [w for w, _ in per_pair] == [w for w, _ in single]
        for (_, a), (_, b) in zip(per_pair, single, strict=True):
            np.testing.assert_array_equal(a, b)
