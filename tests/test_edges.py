"""Edge flows: each layer's flows add up to the target's NAM sum, and each flow is the sum of
the walks (from ``paths``, an independent host computation) crossing that edge at that layer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from models import ARCHS, random_model
from test_nam import graphs

from namjax.edges import edge_contributions
from namjax.errors import AttributionError
from namjax.explainer import nam
from namjax.walks import paths


def node_sums(att) -> np.ndarray:
    return np.add.reduceat(att.contributions.astype(np.float64), att.offsets[:-1], axis=0)


def assert_conserved(edges, att) -> None:
    sums = node_sums(att)
    scale = np.abs(sums).max() + 1e-12
    np.testing.assert_allclose(edges.totals, sums, rtol=0, atol=1e-5 * scale)
    row = np.repeat(np.arange(len(edges.targets)), np.diff(edges.offsets))
    for layer in range(1, edges.depth + 1):
        at = edges.layer == layer
        per = np.zeros_like(sums)
        np.add.at(per, row[at], edges.flows[at])
        assert np.abs(per - sums).max() <= 1e-5 * scale


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_layers_conserve_the_nam_sum(karate, arch, activation):
    model = random_model(karate, hidden=(8, 6), activation=activation, seed=3, arch=arch)
    assert_conserved(edge_contributions(model, karate), nam(model, karate))


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=graphs(), depth=st.sampled_from([1, 2, 3]), arch=st.sampled_from(ARCHS))
def test_conservation_on_random_graphs(graph, depth, arch):
    model = random_model(graph, hidden=(5, 6)[: depth - 1], seed=1, arch=arch)
    assert_conserved(edge_contributions(model, graph), nam(model, graph))


@pytest.mark.parametrize("arch", ["gcn", "sage", "gin"])
def test_each_flow_is_the_sum_of_the_walks_crossing_it(karate, arch):
    model = random_model(karate, hidden=(6,), seed=5, arch=arch)
    att = nam(model, karate, targets=[0, 33])
    edges = edge_contributions(model, karate, targets=[0, 33])
    for target in (0, 33):
        walks = [w for u in att.for_target(target)[0] for w in paths(model, karate, target, int(u))]
        layer, sender, receiver, flows = edges.for_target(target)
        want = np.zeros_like(flows, dtype=np.float64)
        index = {
            (int(ly), int(s), int(r)): i
            for i, (ly, s, r) in enumerate(zip(layer, sender, receiver, strict=True))
        }
        for walk, value in walks:
            for step in range(1, len(walk)):
                want[index[(step, walk[step - 1], walk[step])]] += value
        scale = np.abs(want).max()
        assert np.abs(flows - want).max() <= 1e-5 * scale


def test_edge_scores_sum_the_layers(karate, karate_model):
    edges = edge_contributions(karate_model, karate, targets=[0, 5], classes="all")
    target, sender, receiver, score = edges.edge_scores()
    _, s, r, f = edges.for_target(5)
    slot = int(np.flatnonzero(edges.classes[1] == edges.predicted[1])[0])
    for u, v in [(5, 5), (int(s[0]), int(r[0]))]:
        want = f[(s == u) & (r == v), slot].sum()
        got = score[(target == 5) & (sender == u) & (receiver == v)]
        np.testing.assert_allclose(got, [want], rtol=1e-6)
    assert np.all(target[:-1] <= target[1:])
    with pytest.raises(AttributionError, match="not among"):
        edges.for_target(3)
    predicted_only = edge_contributions(karate_model, karate, targets=[0], classes="predicted")
    assert predicted_only.flows.shape[1] == 1
    # a class slot picked directly: slot 1 of classes="all" is class 1 for every target
    by_slot, by_class = edges.edge_scores(slot=1), edges.edge_scores(cls=1)
    for got, want in zip(by_slot, by_class, strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(AttributionError, match="cls or slot"):
        edges.edge_scores(1, slot=1)
