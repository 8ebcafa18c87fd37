"""Model builders and the float64 autodiff oracle shared by the engine tests.

The oracle is ``jax.jacrev`` of the targets' logits of :func:`namjax.model.forward` with respect
to the stored feature values and the biases, in float64 on the full graph: it shares nothing
with the engines except the model's steps and the operators' values.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from flax import nnx
from jax.experimental import sparse as jsparse

from namjax.graph import Graph
from namjax.model import GNN, DeviceGraph, GNNConfig, cast_steps, device_graph, forward, operators

RTOL = 1e-5
ARCHS = ("gcn", "sgc", "sage", "gin")


def random_model(
    graph: Graph, hidden=(16,), activation="relu", seed=0, arch="gcn", bias=True, **options
) -> GNN:
    """A randomly initialised model with random non-zero biases (so the bias term is
    exercised). ``arch="sgc"`` takes ``len(hidden) + 1`` propagations; ``gin`` gets a non-zero
    ``eps``."""
    if arch == "sgc":
        options = {"hops": len(hidden) + 1, **options}
        hidden = ()
    if arch == "gin":
        options = {"eps": 0.3, **options}
    cfg = GNNConfig.create(
        arch,
        graph.num_features,
        graph.num_classes,
        hidden,
        activation=activation,
        bias=bias,
        **options,
    )
    model = GNN(cfg, rngs=nnx.Rngs(seed))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for name in ("bias", "bias1", "bias2"):
            param = getattr(layer, name, None)
            if param is not None:
                param[...] = jnp.asarray(rng.normal(0, 0.5, param.shape), jnp.float32)
    return model


@jax.jit
def _oracle_jacobians(steps, dg, targets):
    """Jacobians of the targets' ``(T, C)`` logits w.r.t. the stored feature values and the
    biases (module level, so equal shapes reuse the compiled oracle)."""

    def logits_of(data, biases):
        steps_b = tuple(dataclasses.replace(s, bias=b) for s, b in zip(steps, biases, strict=True))
        feats = jsparse.BCOO((data, dg.features.indices), shape=dg.features.shape)
        return forward(steps_b, dg._replace(features=feats))[targets]

    biases = tuple(s.bias for s in steps)
    return jax.jacrev(logits_of, argnums=(0, 1))(dg.features.data, biases)


def _oracle_graph(graph: Graph, ops) -> DeviceGraph:
    """float64 device graph with sparse features; small graphs get every (i, j) pair as an
    entry (zeros included) so that their shapes depend only on N and F."""
    if graph.num_nodes > 64:
        return device_graph(graph, ops, jnp.float64, sparse_features=True)
    n, f = graph.num_nodes, graph.num_features
    x = graph.features.toarray() if sp.issparse(graph.features) else graph.features
    rows, cols = np.divmod(np.arange(n * n), n)
    frows, fcols = np.divmod(np.arange(n * f), f)
    feats = jsparse.BCOO(
        (jnp.asarray(x.ravel(), jnp.float64), jnp.asarray(np.stack([frows, fcols], 1))),
        shape=(n, f),
    )
    weights = {
        op.key: jnp.asarray(
            graph.propagation(op.neighbours, op.self_loop, op.norm).toarray().ravel(),
            jnp.float64,
        )
        for op in ops
    }
    return DeviceGraph(jnp.asarray(rows), jnp.asarray(cols), weights, features=feats)


def oracle(model: GNN, graph: Graph, targets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 ``(T, C, N)`` contributions, ``(N, C)`` logits and ``(T, C)`` bias-gradient terms
    by reverse-mode autodiff of the full-graph forward pass.

    The features are a sparse BCOO matrix and the gradient is taken with respect to its stored
    values: entries not stored are zero, so they add nothing to ``Σ_i X[φ,i] ∂Z/∂X[φ,i]``.
    """
    steps = cast_steps(model.steps(), jnp.float64)
    dg = _oracle_graph(graph, operators(steps))
    jx, jb = _oracle_jacobians(steps, dg, jnp.asarray(targets))
    per_entry = np.asarray(jx) * np.asarray(dg.features.data)  # (T, C, nnz)
    contrib = np.zeros((*per_entry.shape[:2], graph.num_nodes))
    np.add.at(contrib, (slice(None), slice(None), np.asarray(dg.features.indices[:, 0])), per_entry)
    bias = sum(np.asarray(g @ s.bias) for g, s in zip(jb, steps, strict=True) if s.bias is not None)
    return contrib, np.asarray(forward(steps, dg)), bias


def assert_matches_oracle(att, model: GNN, graph: Graph) -> None:
    ref, logits, ref_bias = oracle(model, graph, att.targets)
    dense = att.dense()  # (T, N, Q)
    for q in range(att.num_slots):
        cls = att.classes[:, q]
        want = ref[np.arange(len(cls)), cls]  # (T, N)
        got = dense[:, :, q]
        scale = np.abs(want).max() + 1e-30
        assert np.abs(got - want).max() / scale <= RTOL
        np.testing.assert_allclose(att.logits[:, q], logits[att.targets, cls], rtol=1e-5, atol=1e-6)
        bscale = np.abs(ref_bias).max() + 1e-30
        assert np.abs(att.bias[:, q] - ref_bias[np.arange(len(cls)), cls]).max() / bscale <= RTOL


def assert_complete(att) -> None:
    sums = np.add.reduceat(att.contributions.astype(np.float64), att.offsets[:-1], axis=0)
    scale = np.abs(att.logits).max() + np.abs(att.bias).max() + 1e-30
    assert np.abs(sums + att.bias - att.logits).max() / scale <= RTOL
