"""Feature-level NAM against float64 autodiff of one logit: each feature's share, and their
sum equals the node's contribution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from models import ARCHS, random_model

from namjax.errors import AttributionError
from namjax.explainer import nam
from namjax.model import cast_steps, device_graph, forward


def autodiff_shares(model, graph, target: int, source: int, cls: int) -> np.ndarray:
    """``X[φ,i] ∂Z[a,c]/∂X[φ,i]`` for every feature, by jax.grad in float64 on dense X."""
    dg = device_graph(graph, model.operators, jnp.float64, sparse_features=False)
    steps = cast_steps(model.steps(), jnp.float64)
    grad = jax.grad(lambda x: forward(steps, dg._replace(features=x))[target, cls])(dg.features)
    return np.asarray(grad[source] * dg.features[source])


@pytest.mark.parametrize("arch", ARCHS)
def test_feature_shares_equal_autodiff_and_sum_to_the_contribution(cora, arch):
    model = random_model(cora, hidden=(16,), seed=4, arch=arch)
    att = nam(model, cora, targets=[1358, 7])
    for target in (1358, 7):
        sources, _, contrib = att.for_target(target)
        slot = att.slot(att.row(target), None)
        cls = int(att.classes[att.row(target), slot])
        for i in (0, 1, len(sources) - 1):
            shares = att.features(target, int(sources[i]), top_k=None)
            want = autodiff_shares(model, cora, target, int(sources[i]), cls)
            got = np.zeros_like(want)
            got[[f for f, _ in shares]] = [v for _, v in shares]
            scale = np.abs(want).max() + 1e-30
            assert np.abs(got - want).max() <= 1e-5 * scale
            total = sum(v for _, v in shares)
            assert abs(total - contrib[i, slot]) <= 1e-5 * (abs(contrib[i, slot]) + scale)
            magnitudes = [abs(v) for _, v in shares]
            assert magnitudes == sorted(magnitudes, reverse=True)


def test_top_k_classes_batches_and_errors(cora, cora_model, karate, karate_model, tmp_path):
    from namjax.attribution import Attribution

    att = nam(cora_model, cora, targets=[1358, 7])
    source = int(att.for_target(1358)[0][1])
    top = att.features(1358, source, cls=2, top_k=3)
    every = att.features(1358, source, cls=2, top_k=None)
    assert len(top) == 3 and top == every[:3] and len(every) == cora.features[source].nnz
    batch = att.features_many([(1358, source), (7, 7)], cls=2, top_k=None)
    assert batch[0] == every and batch[1] == att.features(7, 7, cls=2, top_k=None)
    loaded = Attribution.load(att.save(tmp_path / "a"))
    with pytest.raises(AttributionError, match="pass model= and graph="):
        loaded.features(1358, source)
    assert loaded.features(1358, source, 2, None, model=cora_model, graph=cora) == every
    small = nam(karate_model, karate)
    with pytest.raises(AttributionError, match="not within 2 hops"):
        small.features(0, 29)  # 29 is three hops from 0 in the karate club
    with pytest.raises(AttributionError, match="another model"):
        loaded.features(1358, source, model=karate_model, graph=cora)
