"""Training a :class:`~namjax.model.GNN` the way Kipf & Welling trained their GCN.

Adam (lr 0.01), L2 penalty ``weight_decay * ||θ1||² / 2`` on the first layer's parameters,
dropout, up to 200 epochs, and their early-stopping rule: after epoch ``t > patience``, stop when
the validation loss exceeds the mean of the previous ``patience`` validation losses. Validation
loss is measured in evaluation mode after each update and, as in their code, includes the L2
term. The final parameters (not the best ones) are kept.

The whole loop runs on the device: the module is split (``nnx.split``) into its graph
definition and its parameter state; one epoch (update, evaluation pass, early-stopping test) is
one step of a jitted ``jax.lax.while_loop`` that merges them back (``nnx.merge``) to call the
module, so 200 epochs are one call (calls of 10 epochs under a progress bar, with the same
result). The optimiser is ``optax.inject_hyperparams`` over Adam with the L2 gradient added on
the first layer, so learning rate and weight decay live in the optimiser state; with the
patience they are device inputs, and one compiled loop per architecture serves every seed and
setting.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from namjax.checks import check_features
from namjax.errors import GraphError, ModelError, OptionError
from namjax.graph import Graph
from namjax.kernel import Kernel
from namjax.model import GNN, DeviceGraph, GNNConfig, device_graph, predict

HISTORY_KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        model: the trained model.
        config: its architecture.
        history: per-epoch ``(epochs,)`` float arrays: ``train_loss`` (the optimised objective,
            with dropout), ``val_loss`` (evaluation mode, incl. L2), ``train_accuracy``,
            ``val_accuracy`` (evaluation mode).
        train_accuracy, val_accuracy, test_accuracy: accuracies of the final model (``nan`` for
            an empty split).
        epochs: number of epochs run (< the limit when early stopping fired).
        seconds: wall time of the training loop, compilation included.
    """

    model: GNN
    config: GNNConfig
    history: dict[str, np.ndarray]
    train_accuracy: float
    val_accuracy: float
    test_accuracy: float
    epochs: int
    seconds: float


def train(
    graph: Graph,
    config: GNNConfig | None = None,
    *,
    seed: int = 0,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    patience: int = 10,
    progress: bool = False,
    init: GNN | None = None,
) -> TrainResult:
    """Train a model on ``graph``'s train nodes, early-stopping on its validation nodes.

    ``config`` defaults to Kipf's 2-layer GCN (hidden 16, ReLU, dropout 0.5) sized for
    ``graph``. The same ``seed`` gives the same weights and numbers. ``patience=0`` disables
    early stopping. ``progress`` shows a tqdm bar on stderr (started once the loop is
    compiled, so its rate and ETA are the loop's). ``init``: start from (a copy of) this
    model's weights instead of drawing them from ``seed`` (which still seeds the dropout), e.g.
    a PyG model's initialisation imported with :func:`namjax.from_pyg`; ``config`` is then
    ``init``'s.
    """
    if init is not None:
        if config is not None and config != init.config:
            raise OptionError("give either config or init (whose config it is), not both")
        config = init.config
    config = _check_inputs(graph, config, epochs, lr, weight_decay, patience)
    start = time.perf_counter()
    model = GNN(config, rngs=nnx.Rngs(seed)) if init is None else nnx.clone(init)
    graphdef, params = nnx.split(model, nnx.Param)
    dg = device_graph(graph, model.operators)
    inputs = _Inputs(
        graph=dg,
        labels=jnp.asarray(np.maximum(graph.labels, 0), jnp.int32),
        train_mask=jnp.asarray(graph.train_mask, jnp.bool_),
        val_mask=jnp.asarray(graph.val_mask, jnp.bool_),
        dropout_key=jax.random.key(seed + 1),  # the weights were drawn from key(seed)
        patience=jnp.int32(patience),
    )
    carry = _Carry(
        params=params,
        opt_state=_kipf_adam(learning_rate=lr, weight_decay=weight_decay).init(params),
        epoch=jnp.zeros((), jnp.int32),
        stopped=jnp.zeros((), jnp.bool_),
        history={k: jnp.full((epochs,), jnp.nan, jnp.float32) for k in HISTORY_KEYS},
    )
    run, _ = _runner(graphdef).compiled(carry, inputs, jnp.int32(0))
    chunk = 10 if progress else epochs
    bar = _progress_bar(epochs, graph.name) if progress else None
    done = 0
    while done < epochs:
        carry = run(carry, inputs, jnp.int32(min(done + chunk, epochs)))
        epoch, stopped = int(carry.epoch), bool(carry.stopped)
        if bar is not None:
            bar.update(epoch - done)
            bar.set_postfix(val_loss=f"{float(carry.history['val_loss'][epoch - 1]):.4f}")
        done = epoch
        if stopped:
            break
    if bar is not None:
        bar.close()
    nnx.update(model, carry.params)
    history = {k: np.asarray(v[:done]) for k, v in carry.history.items()}
    logits = predict(model, graph)
    return TrainResult(
        model=model,
        config=config,
        history=history,
        train_accuracy=accuracy(logits, graph.labels, graph.train_mask),
        val_accuracy=accuracy(logits, graph.labels, graph.val_mask),
        test_accuracy=accuracy(logits, graph.labels, graph.test_mask),
        epochs=done,
        seconds=time.perf_counter() - start,
    )


def accuracy(logits: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Share of nodes in ``mask`` (all by default) whose argmax of ``(N, C)`` logits is their
    label; ``nan`` when the mask is empty."""
    labels = np.asarray(labels)
    mask = np.ones(labels.shape, bool) if mask is None else np.asarray(mask, bool)
    if not mask.any():
        return float("nan")
    return float(np.mean(np.argmax(logits[mask], axis=1) == labels[mask]))


# ---------------------------------------------------------------------- internals
def _check_inputs(graph, config, epochs, lr, weight_decay, patience) -> GNNConfig:
    if config is None:
        config = GNNConfig.create("gcn", graph.num_features, graph.num_classes)
    if config.num_classes != graph.num_classes:
        raise ModelError(
            f"the model has {config.num_classes} classes but {graph.name} has {graph.num_classes}"
        )
    check_features(config, graph)
    for mask, what in ((graph.train_mask, "training"), (graph.val_mask, "validation")):
        if not mask.any():
            raise GraphError(f"{graph.name} has no {what} nodes: cannot train")
        if (graph.labels[mask] < 0).any():
            raise GraphError(f"{graph.name} has {what} nodes without a label (-1)")
    for ok, message in (
        (int(epochs) >= 1, f"epochs must be >= 1, got {epochs}"),
        (lr > 0, f"lr must be > 0, got {lr}"),
        (weight_decay >= 0, f"weight_decay must be >= 0, got {weight_decay}"),
        (int(patience) >= 0, f"patience must be >= 0, got {patience}"),
    ):
        if not ok:
            raise OptionError(message)
    return config


def _progress_bar(total: int, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"train {name}", unit="epoch", leave=False)


def _cross_entropy(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(jnp.where(mask, losses, 0.0)) / jnp.sum(mask, dtype=jnp.float32)


def _masked_accuracy(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
    hits = (jnp.argmax(logits, axis=1) == labels) & mask
    return jnp.sum(hits, dtype=jnp.float32) / jnp.sum(mask, dtype=jnp.float32)


def _first_layer(params):
    """``True`` on the first layer's parameters (Kipf's L2 applies to them only)."""
    return jax.tree_util.tree_map_with_path(lambda path, _: path[1].key == 0, params)


def _l2(params, weight_decay) -> jax.Array:
    """``weight_decay · ||θ1||² / 2`` over the first layer's parameters."""
    return 0.5 * weight_decay * sum(jnp.sum(p**2) for p in jax.tree.leaves(params["layers"][0]))


@optax.inject_hyperparams
def _kipf_adam(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
    """Adam on the loss plus ``weight_decay · ||θ1||² / 2``: the L2 gradient is added to the
    first layer's gradients before Adam (as differentiating the penalty would)."""
    return optax.chain(
        optax.add_decayed_weights(weight_decay, mask=_first_layer),
        optax.scale_by_adam(),
        optax.scale_by_learning_rate(learning_rate),
    )


class _Inputs(NamedTuple):
    """What stays fixed during a run (device arrays, so new values need no recompilation)."""

    graph: DeviceGraph
    labels: jax.Array  # (N,) int32, unknown labels replaced by 0 (they are masked out)
    train_mask: jax.Array  # (N,) bool
    val_mask: jax.Array  # (N,) bool
    dropout_key: jax.Array
    patience: jax.Array  # int32; 0 disables early stopping


class _Carry(NamedTuple):
    """The loop state."""

    params: nnx.State  # the model's nnx.Param state
    opt_state: optax.OptState  # holds the learning rate and weight decay
    epoch: jax.Array  # int32, epochs done
    stopped: jax.Array  # bool, early stopping fired
    history: dict[str, jax.Array]  # HISTORY_KEYS -> (epochs,) float32, nan beyond `epoch`


@functools.lru_cache(maxsize=16)
def _runner(graphdef) -> Kernel:
    """``run(carry, inputs, limit) -> carry`` doing epochs until ``limit`` or early stop, as a
    :class:`~namjax.kernel.Kernel`; one per architecture (``graphdef``), so repeated runs
    (seeds, settings) reuse the compiled loop."""
    tx = _kipf_adam(learning_rate=0.01, weight_decay=5e-4)  # values come from the state

    def logits(params, dg: DeviceGraph, key: jax.Array | None) -> jax.Array:
        return nnx.merge(graphdef, params)(dg, dropout_key=key)

    def loss(params, inp: _Inputs, key) -> jax.Array:
        return _cross_entropy(logits(params, inp.graph, key), inp.labels, inp.train_mask)

    grad_fn = jax.value_and_grad(loss)

    def epoch_step(carry: _Carry, inp: _Inputs) -> _Carry:
        params, opt_state, epoch, _, hist = carry
        decay = opt_state.hyperparams["weight_decay"]
        data_loss, grads = grad_fn(params, inp, jax.random.fold_in(inp.dropout_key, epoch))
        train_loss = data_loss + _l2(params, decay)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        z = logits(params, inp.graph, None)
        val_loss = _cross_entropy(z, inp.labels, inp.val_mask) + _l2(params, decay)
        row = {
            "train_loss": train_loss,
            "val_loss": val_loss,
            "train_accuracy": _masked_accuracy(z, inp.labels, inp.train_mask),
            "val_accuracy": _masked_accuracy(z, inp.labels, inp.val_mask),
        }
        hist = {k: hist[k].at[epoch].set(row[k].astype(jnp.float32)) for k in HISTORY_KEYS}
        # Kipf's rule: stop when this val loss exceeds the mean of the previous `patience` ones
        idx = jnp.arange(hist["val_loss"].shape[0])
        window = (idx >= epoch - inp.patience) & (idx < epoch)
        previous = jnp.sum(jnp.where(window, hist["val_loss"], 0.0)) / inp.patience
        stop = (inp.patience > 0) & (epoch > inp.patience) & (val_loss > previous)
        return _Carry(params, opt_state, epoch + 1, stop, hist)

    def run(carry: _Carry, inputs: _Inputs, limit: jax.Array) -> _Carry:
        return jax.lax.while_loop(
            lambda c: (c.epoch < limit) & ~c.stopped, lambda c: epoch_step(c, inputs), carry
        )

    return Kernel(run)
