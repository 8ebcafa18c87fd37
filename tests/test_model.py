"""The GCN forward pass against an independent dense float64 computation, dropout, and config
checks (the other layer kinds: tests/test_layers.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from flax import nnx

from namjax.errors import ModelError
from namjax.graph import Graph
from namjax.layers import gcn_operator
from namjax.model import GNN, GNNConfig, _dropout, device_graph, forward, propagate

NUMPY_ACTS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "identity": lambda x: x,
}


@pytest.fixture(scope="module")
def small_graph() -> Graph:
    """A weighted 12-node graph with an isolated node and sparse random features."""
    rng = np.random.default_rng(3)
    g = nx.gnm_random_graph(11, 20, seed=3)
    g.add_node(11)  # isolated: Â row is its own self-loop only
    for u, v in g.edges:
        g.edges[u, v]["w"] = float(rng.uniform(0.5, 2.0))
    x = sp.random(12, 7, density=0.4, random_state=3, format="csr", dtype=np.float32)
    return Graph.from_networkx(g, features=x, weight="w")


def dense_reference(graph: Graph, weights, activation: str) -> np.ndarray:
    """``H <- σ(Â H W + b)`` in float64 with ``Â`` built densely from the raw adjacency."""
    a = graph.adjacency.toarray().astype(np.float64) + np.eye(graph.num_nodes)
    d = 1.0 / np.sqrt(a.sum(axis=1))
    a_hat = d[:, None] * a * d[None, :]
    x = graph.features
    h = (x.toarray() if sp.issparse(x) else x).astype(np.float64)
    for i, (w, b) in enumerate(weights):
        h = a_hat @ h @ np.asarray(w, np.float64)
        if b is not None:
            h = h + np.asarray(b, np.float64)
        if i < len(weights) - 1:
            h = NUMPY_ACTS[activation](h)
    return h


def rel_err(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def make_model(graph: Graph, seed: int = 0, hidden=(16,), **kw) -> GNN:
    cfg = GNNConfig.create("gcn", graph.num_features, 3, hidden, **{"bias": True, **kw})
    model = GNN(cfg, rngs=nnx.Rngs(seed))
    for layer in model.layers:  # non-zero biases so that they are exercised
        if layer.bias is not None:
            layer.bias[...] = jax.random.normal(
                jax.random.key(seed + 7), layer.bias.shape, jnp.float32
            )
    return model


@pytest.mark.parametrize("hidden", [(), (5,), (6, 4), (8, 6, 4)], ids=["K1", "K2", "K3", "K4"])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_dense_float64(small_graph, hidden, bias):
    model = make_model(small_graph, hidden=hidden, bias=bias)
    assert model.config.depth == len(hidden) + 1
    dg = device_graph(small_graph, model.operators)
    weights = [
        (lay.kernel[...], None if lay.bias is None else lay.bias[...]) for lay in model.layers
    ]
    want = dense_reference(small_graph, weights, "relu")
    got = model(dg)
    assert got.dtype == jnp.float32 and got.shape == (12, 3)
    assert rel_err(got, want) < 1e-5
    # the pure view computes the same thing
    pure = forward(model.steps(), dg)
    np.testing.assert_array_equal(np.asarray(pure), np.asarray(got))


@pytest.mark.parametrize("activation", sorted(NUMPY_ACTS))
def test_activations(small_graph, activation):
    model = make_model(small_graph, hidden=(6, 5), activation=activation)
    weights = [(lay.kernel[...], lay.bias[...]) for lay in model.layers]
    want = dense_reference(small_graph, weights, activation)
    assert rel_err(model(device_graph(small_graph, model.operators)), want) < 1e-5


def test_dense_and_sparse_features_agree(small_graph):
    model = make_model(small_graph, hidden=(6,))
    sparse = model(device_graph(small_graph, model.operators, sparse_features=True))
    dense = model(device_graph(small_graph, model.operators, sparse_features=False))
    np.testing.assert_allclose(np.asarray(sparse), np.asarray(dense), rtol=1e-5, atol=1e-6)


def test_bias_free_layers_have_no_bias_in_their_steps(small_graph):
    steps = make_model(small_graph, hidden=(4,), bias=False).steps()
    assert [s.bias for s in steps] == [None, None]
    assert [s.terms[0].weight.shape for s in steps] == [(7, 4), (4, 3)]


def test_propagate_is_a_hat_matmul(small_graph):
    h = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    want = small_graph.normalized_adjacency.astype(np.float64) @ h.astype(np.float64)
    op = gcn_operator()
    dg = device_graph(small_graph, (op,))
    assert rel_err(propagate(dg, dg.weights[op.key], jnp.asarray(h)), want) < 1e-6


def test_dropout_keeps_or_scales_each_value(small_graph):
    x = device_graph(small_graph, ()).features
    out = _dropout(x, 0.25, jax.random.key(0))
    data, kept = np.asarray(x.data), np.asarray(out.data)
    np.testing.assert_array_equal(np.asarray(out.indices), np.asarray(x.indices))
    dropped = kept == 0
    assert dropped.any() and (~dropped).any()
    np.testing.assert_allclose(kept[~dropped], data[~dropped] / 0.75, rtol=1e-6)
    dense = jnp.ones((200, 50), jnp.float32)
    out = np.asarray(_dropout(dense, 0.5, jax.random.key(1)))
    assert set(np.unique(out)) == {0.0, 2.0}
    assert abs(out.mean() - 1.0) < 0.05  # inverted dropout is unbiased


def test_training_pass_uses_dropout_keyed_by_its_key(small_graph):
    model = make_model(small_graph, hidden=(6,), dropout=0.5)
    dg = device_graph(small_graph, model.operators)
    clean = np.asarray(model(dg))
    first = np.asarray(model(dg, dropout_key=jax.random.key(0)))
    second = np.asarray(model(dg, dropout_key=jax.random.key(1)))
    assert not np.allclose(first, clean) and not np.allclose(first, second)
    again = np.asarray(model(dg, dropout_key=jax.random.key(0)))
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(np.asarray(model(dg)), clean)


def test_same_seed_same_init_and_config_round_trip(small_graph):
    a, b = make_model(small_graph, seed=4), make_model(small_graph, seed=4)
    for sa, sb in zip(a.steps(), b.steps(), strict=True):
        np.testing.assert_array_equal(
            np.asarray(sa.terms[0].weight), np.asarray(sb.terms[0].weight)
        )
    cfg = GNNConfig.create("gcn", 10, 4, (8, 8), activation="tanh", dropout=0.1, bias=False)
    assert GNNConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.sizes == (10, 8, 8, 4) and cfg.depth == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": (4, 4, 4, 4)}, "depth K must be 1..4, got 5"),
        ({"activation": "gelu"}, "unknown activation 'gelu'"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"dropout": -0.1}, "dropout must be in"),
        ({"hidden": (0,)}, "layer sizes must be positive"),
        ({"num_classes": 0}, "layer sizes must be positive"),
    ],
)
def test_config_validation(kwargs, match):
    base = {"in_features": 5, "num_classes": 3}
    with pytest.raises(ModelError, match=match):
        GNNConfig.create("gcn", **(base | kwargs))
