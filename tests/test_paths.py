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
