"""Training: one update against a float64 Adam oracle, the early-stopping rule, reproducibility,
input errors, and the accuracy bar on Cora."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from flax import nnx

from namjax.errors import GraphError, ModelError, NamjaxError
from namjax.graph import Graph
from namjax.model import GNN, GNNConfig, predict
from namjax.training import HISTORY_KEYS, accuracy, train


def oracle_objective(graph: Graph, mask, weight_decay: float):
    """Kipf's loss in float64 as a jitted function of the params: mean cross-entropy over
    ``mask`` + L2 on the first layer, with ``Â`` built densely from the raw adjacency."""
    a = graph.adjacency.toarray().astype(np.float64) + np.eye(graph.num_nodes)
    d = 1.0 / np.sqrt(a.sum(axis=1))
    a_hat = d[:, None] * a * d[None, :]
    x = graph.features
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, np.float64)
    onehot = np.eye(graph.num_classes)[np.maximum(graph.labels, 0)] * np.asarray(mask)[:, None]

    @jax.jit
    def loss(params):
        h = x
        for i, (w, b) in enumerate(params):
            h = a_hat @ h @ w + b
            if i < len(params) - 1:
                h = jax.nn.relu(h)
        ce = -jnp.sum(onehot * jax.nn.log_softmax(h, axis=1)) / np.sum(mask)
        w1, b1 = params[0]
        return ce + 0.5 * weight_decay * (jnp.sum(w1**2) + jnp.sum(b1**2))

    return loss


def as64(model: GNN):
    """The ``(W, b)`` of each layer of a GCN, in float64."""
    return tuple(
        (jnp.asarray(s.terms[0].weight, jnp.float64), jnp.asarray(s.bias, jnp.float64))
        for s in model.steps()
    )


@pytest.mark.slow  # compiles a loop for a dropout-free config
def test_first_update_is_one_adam_step_on_kipfs_loss(karate):
    cfg = GNNConfig.create("gcn", karate.num_features, karate.num_classes, dropout=0.0, bias=True)
    lr, wd = 0.01, 5e-3
    result = train(karate, cfg, seed=5, epochs=1, lr=lr, weight_decay=wd, patience=0)
    start = as64(GNN(cfg, rngs=nnx.Rngs(5)))  # train draws its init the same way
    loss0, grads = jax.value_and_grad(oracle_objective(karate, karate.train_mask, wd))(start)
    got = as64(result.model)
    for (w0, b0), (gw, gb), (w1, b1) in zip(start, grads, got, strict=True):
        for p0, g, p1 in ((w0, gw, w1), (b0, gb, b1)):
            g = np.asarray(g)
            want = np.asarray(p0) - lr * g / (np.abs(g) + 1e-8)  # Adam's first step
            clear = np.abs(g) > 1e-5  # elsewhere float32 rounding decides g / (|g| + eps)
            np.testing.assert_allclose(np.asarray(p1)[clear], want[clear], rtol=0, atol=1e-6)
            assert np.all(np.abs(np.asarray(p1) - np.asarray(p0)) <= lr * (1 + 1e-5))
    assert result.epochs == 1
    assert abs(result.history["train_loss"][0] - float(loss0)) < 1e-5 * float(loss0)
    val = oracle_objective(karate, karate.val_mask, wd)(got)
    assert abs(result.history["val_loss"][0] - float(val)) < 1e-5 * float(val)


def test_early_stopping_follows_kipfs_rule(karate):
    patience = 10
    result = train(karate, seed=0, patience=patience)
    val = result.history["val_loss"]
    assert len(val) == result.epochs
    assert all(len(v) == result.epochs for v in result.history.values())

    def fires(t: int) -> bool:
        return t > patience and val[t] > np.mean(val[t - patience : t])

    assert not any(fires(t) for t in range(result.epochs - 1))
    assert result.epochs == 200 or fires(result.epochs - 1)
    assert result.epochs < 200  # karate does stop early with seed 0
    full = train(karate, seed=0, patience=0)
    assert full.epochs == 200
    np.testing.assert_array_equal(full.history["val_loss"][: result.epochs], val)


def test_reproducible_and_seed_dependent(karate):
    a, b = train(karate, seed=3), train(karate, seed=3)
    c = train(karate, seed=4)
    for key in HISTORY_KEYS:
        np.testing.assert_array_equal(a.history[key], b.history[key])
    np.testing.assert_array_equal(predict(a.model, karate), predict(b.model, karate))
    assert not np.array_equal(predict(a.model, karate), predict(c.model, karate))


def test_training_from_given_weights(karate):
    """init= starts from a copy of a model's weights: the weights seed s would draw give seed
    s's run exactly; other weights give another run; the given model is left untouched."""
    config = GNNConfig.create("gcn", karate.num_features, karate.num_classes)
    drawn = GNN(config, rngs=nnx.Rngs(3))
    before = predict(drawn, karate)
    same = train(karate, seed=3, init=drawn)
    np.testing.assert_array_equal(
        predict(same.model, karate), predict(train(karate, seed=3).model, karate)
    )
    np.testing.assert_array_equal(predict(drawn, karate), before)
    other = train(karate, seed=3, init=GNN(config, rngs=nnx.Rngs(9)))
    assert not np.array_equal(predict(other.model, karate), predict(same.model, karate))
    sage = GNNConfig.create("sage", karate.num_features, karate.num_classes)
    with pytest.raises(NamjaxError, match="either config or init"):
        train(karate, sage, init=drawn)


def test_progress_display_gives_the_same_run(karate, capsys):
    quiet = train(karate, seed=1)
    shown = train(karate, seed=1, progress=True)
    assert shown.epochs == quiet.epochs
    np.testing.assert_array_equal(shown.history["val_loss"], quiet.history["val_loss"])
    assert "epoch" in capsys.readouterr().err


def test_result_accuracies_match_predictions(karate):
    result = train(karate, seed=2)
    logits = predict(result.model, karate)
    assert logits.shape == (34, 2) and logits.dtype == np.float32
    for acc, mask in (
        (result.train_accuracy, karate.train_mask),
        (result.val_accuracy, karate.val_mask),
        (result.test_accuracy, karate.test_mask),
    ):
        assert acc == accuracy(logits, karate.labels, mask)
    np.testing.assert_array_equal(predict(result.model, karate), logits)  # no stochastic state
    assert result.config.depth == 2
    assert result.seconds > 0


def test_accuracy():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]])
    labels = np.array([0, 0, 0])
    assert accuracy(logits, labels) == pytest.approx(2 / 3)
    assert accuracy(logits, labels, np.array([False, True, False])) == 0.0
    assert np.isnan(accuracy(logits, labels, np.zeros(3, bool)))


def test_input_errors(karate):
    g = nx.karate_club_graph()
    unsplit = Graph.from_networkx(g, label="club", name="bare")
    with pytest.raises(GraphError, match="bare has no training nodes"):
        train(unsplit)
    no_val = Graph.from_networkx(g, label="club", train_mask=np.arange(34) < 4, name="noval")
    with pytest.raises(GraphError, match="noval has no validation nodes"):
        train(no_val)
    labels = np.full(34, -1)
    labels[10:] = 0
    unlabeled = Graph.from_networkx(
        g,
        labels=labels,
        num_classes=2,
        train_mask=np.arange(34) < 4,
        val_mask=np.arange(34) >= 30,
        name="unl",
    )
    with pytest.raises(GraphError, match="training nodes without a label"):
        train(unlabeled)
    with pytest.raises(ModelError, match="expects 5 features per node but karate has 34"):
        train(karate, GNNConfig.create("gcn", 5, 2))
    with pytest.raises(ModelError, match="the model has 3 classes but karate has 2"):
        train(karate, GNNConfig.create("gcn", 34, 3))
    with pytest.raises(NamjaxError, match="epochs must be >= 1"):
        train(karate, epochs=0)
    with pytest.raises(NamjaxError, match="patience must be >= 0"):
        train(karate, patience=-1)
    model = GNN(GNNConfig.create("gcn", 5, 2), rngs=nnx.Rngs(0))
    with pytest.raises(ModelError, match="expects 5 features per node"):
        predict(model, karate)


@pytest.mark.slow
def test_cora_accuracy_over_seeds(cora):
    """Kipf & Welling's setup (the defaults) on three seeds; the 10-seed table is in
    benchmarks/RESULTS.md (bench_accuracy.py)."""
    assert np.mean([train(cora, seed=s).test_accuracy for s in (0, 1, 2)]) >= 0.80
