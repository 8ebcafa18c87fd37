"""Training a :class:`~namjax.model.GCN` the way Kipf & Welling did.

Adam (lr 0.01), L2 penalty ``weight_decay * ||θ1||² / 2`` on the first layer's parameters,
dropout, up to 200 epochs, and their early-stopping rule: after epoch ``t > patience``, stop when the
validation loss exceeds the mean of the previous ``patience`` validation losses. Validation loss
is measured in evaluation mode after each update and, as in their code, includes the L2 term.
The final parameters (not the best ones) are kept.

The whole loop runs on the device: the model's ``nnx.Param`` state is taken out as a plain dict
pytree, and one epoch (update, evaluation pass, early-stopping test) is one step of a jitted
``jax.lax.while_loop``, so 200 epochs are one call (calls of 10 epochs under a progress bar, with
the same result). Learning rate, weight decay and patience are device inputs, so one compiled
loop per architecture serves every seed and setting.
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

from namjax.graph import Graph, GraphError
from namjax.model import (
    GCN,
    DeviceGraph,
    GCNConfig,
    device_graph,
    gcn_apply,
    gcn_params,
)

HISTORY_KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        model: the trained GCN, in deterministic (evaluation) mode.
        config: its architecture.
        history: per-epoch ``(epochs,)`` float arrays: ``train_loss`` (the optimised objective,
            with dropout), ``val_loss`` (evaluation mode, incl. L2), ``train_accuracy``,
            ``val_accuracy`` (evaluation mode).
        train_accuracy, val_accuracy, test_accuracy: accuracies of the final model (``nan`` for
            an empty split).
        epochs: number of epochs run (< the limit when early stopping fired).
        seconds: wall time of the training loop, compilation included.
    """

    model: GCN
    config: GCNConfig
    history: dict[str, np.ndarray]
    train_accuracy: float
    val_accuracy: float
    test_accuracy: float
    epochs: int
    seconds: float


def train(
    graph: Graph,
    config: GCNConfig | None = None,
    *,
    seed: int = 0,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    patience: int = 10,
    progress: bool = False,
) -> TrainResult:
    """Train a GCN on ``graph``'s train nodes, early-stopping on its validation nodes.

    ``config`` defaults to Kipf's 2-layer GCN (hidden 16, ReLU, dropout 0.5) sized for
    ``graph``. The same ``seed`` gives the same weights and numbers. ``patience=0`` disables
    early stopping. ``progress`` shows a tqdm bar on stderr.
    """
    config = _check_inputs(graph, config, epochs, lr, weight_decay, patience)
    start = time.perf_counter()
    model = GCN(config, rngs=nnx.Rngs(seed))
    params_state = nnx.state(model, nnx.Param)
    params = nnx.to_pure_dict(params_state)  # {"layers": {i: {"kernel", "bias"?}}}
    inputs = _Inputs(
        graph=device_graph(graph),
        labels=jnp.asarray(np.maximum(graph.labels, 0), jnp.int32),
        train_mask=jnp.asarray(graph.train_mask, jnp.bool_),
        val_mask=jnp.asarray(graph.val_mask, jnp.bool_),
        dropout_key=jax.random.key(seed + 1),  # the weights were drawn from key(seed)
        lr=jnp.float32(lr),
        weight_decay=jnp.float32(weight_decay),
        patience=jnp.int32(patience),
    )
    run = _runner(config)
    carry = _Carry(
        params=params,
        opt_state=_ADAM.init(params),
        epoch=jnp.zeros((), jnp.int32),
        stopped=jnp.zeros((), jnp.bool_),
        history={k: jnp.full((epochs,), jnp.nan, jnp.float32) for k in HISTORY_KEYS},
    )
    chunk = 10 if progress else epochs
    bar = _progress_bar(epochs, graph.name) if progress else None
    done = 0
    while done < epochs:
        limit = jnp.int32(min(done + chunk, epochs))
        carry = run(carry, inputs, limit)
        epoch, stopped = int(carry.epoch), bool(carry.stopped)
        if bar is not None:
            bar.update(epoch - done)
            bar.set_postfix(val_loss=f"{float(carry.history['val_loss'][epoch - 1]):.4f}")
        done = epoch
        if stopped:
            break
    if bar is not None:
        bar.close()
    nnx.replace_by_pure_dict(params_state, carry.params)
    nnx.update(model, params_state)
    history = {k: np.asarray(v[:done]) for k, v in carry.history.items()}
    logits = predict(model, graph)
    seconds = time.perf_counter() - start
    return TrainResult(
        model=model,
        config=config,
        history=history,
        train_accuracy=accuracy(logits, graph.labels, graph.train_mask),
        val_accuracy=accuracy(logits, graph.labels, graph.val_mask),
        test_accuracy=accuracy(logits, graph.labels, graph.test_mask),
        epochs=done,
        seconds=seconds,
    )


def predict(model: GCN, graph: Graph) -> np.ndarray:
    """Deterministic ``(N, C)`` float32 logits of ``model`` on ``graph``."""
    if model.config.in_features != graph.num_features:
        raise GraphError(
            f"the model expects {model.config.in_features} features per node but "
            f"{graph.name} has {graph.num_features}"
        )
    return np.asarray(_apply(gcn_params(model), device_graph(graph), model.config.activation))


def accuracy(logits: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Share of nodes in ``mask`` (all by default) whose argmax of ``(N, C)`` logits is their
    label; ``nan`` when the mask is empty."""
    labels = np.asarray(labels)
    mask = np.ones(labels.shape, bool) if mask is None else np.asarray(mask, bool)
    if not mask.any():
        return float("nan")
    return float(np.mean(np.argmax(logits[mask], axis=1) == labels[mask]))


# ---------------------------------------------------------------------- internals
_apply = jax.jit(gcn_apply, static_argnames="activation")


def _check_inputs(graph, config, epochs, lr, weight_decay, patience) -> GCNConfig:
    if config is None:
        config = GCNConfig(in_features=graph.num_features, num_classes=graph.num_classes)
    if config.in_features != graph.num_features or config.num_classes != graph.num_classes:
        raise GraphError(
            f"config is for {config.in_features} features / {config.num_classes} classes but "
            f"{graph.name} has {graph.num_features} / {graph.num_classes}"
        )
    for mask, what in ((graph.train_mask, "training"), (graph.val_mask, "validation")):
        if not mask.any():
            raise GraphError(f"{graph.name} has no {what} nodes: cannot train")
        if (graph.labels[mask] < 0).any():
            raise GraphError(f"{graph.name} has {what} nodes without a label (-1)")
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if int(patience) < 0:
        raise ValueError(f"patience must be >= 0, got {patience}")
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


class _Inputs(NamedTuple):
    """What stays fixed during a run (device arrays, so new values need no recompilation)."""

    graph: DeviceGraph
    labels: jax.Array  # (N,) int32, unknown labels replaced by 0 (they are masked out)
    train_mask: jax.Array  # (N,) bool
    val_mask: jax.Array  # (N,) bool
    dropout_key: jax.Array
    lr: jax.Array  # float32
    weight_decay: jax.Array  # float32
    patience: jax.Array  # int32; 0 disables early stopping


class _Carry(NamedTuple):
    """The loop state."""

    params: dict  # {"layers": {i: {"kernel": (F_in, F_out), "bias": (F_out,)}}}
    opt_state: optax.OptState
    epoch: jax.Array  # int32, epochs done
    stopped: jax.Array  # bool, early stopping fired
    history: dict[str, jax.Array]  # HISTORY_KEYS -> (epochs,) float32, nan beyond `epoch`


_ADAM = optax.scale_by_adam()  # Adam's direction; the learning rate is applied by the loop


@functools.lru_cache(maxsize=16)
def _runner(config: GCNConfig):
    """A jitted ``run(carry, inputs, limit) -> carry`` doing epochs until ``limit`` or early
    stop. Cached per architecture, so repeated runs (seeds, settings) reuse the compiled loop."""

    def weights(params: dict) -> tuple:
        layers = params["layers"]
        return tuple((layers[i]["kernel"], layers[i].get("bias")) for i in range(len(layers)))

    def forward(params, dg: DeviceGraph, key: jax.Array | None) -> jax.Array:
        return gcn_apply(weights(params), dg, config.activation, dropout=config.dropout, key=key)

    def l2(params, weight_decay) -> jax.Array:
        return 0.5 * weight_decay * sum(jnp.sum(p**2) for p in params["layers"][0].values())

    def objective(params, inp: _Inputs, key) -> jax.Array:
        logits = forward(params, inp.graph, key)
        return _cross_entropy(logits, inp.labels, inp.train_mask) + l2(params, inp.weight_decay)

    grad_fn = jax.value_and_grad(objective)

    def epoch_step(carry: _Carry, inp: _Inputs) -> _Carry:
        params, opt_state, epoch, _, hist = carry
        train_loss, grads = grad_fn(params, inp, jax.random.fold_in(inp.dropout_key, epoch))
        direction, opt_state = _ADAM.update(grads, opt_state)
        params = jax.tree.map(lambda p, d: p - inp.lr * d, params, direction)
        logits = forward(params, inp.graph, None)
        val_loss = _cross_entropy(logits, inp.labels, inp.val_mask) + l2(params, inp.weight_decay)
        row = {
            "train_loss": train_loss,
            "val_loss": val_loss,
            "train_accuracy": _masked_accuracy(logits, inp.labels, inp.train_mask),
            "val_accuracy": _masked_accuracy(logits, inp.labels, inp.val_mask),
        }
        hist = {k: hist[k].at[epoch].set(row[k].astype(jnp.float32)) for k in HISTORY_KEYS}
        # Kipf's rule: stop when this val loss exceeds the mean of the previous `patience` ones
        idx = jnp.arange(hist["val_loss"].shape[0])
        window = (idx >= epoch - inp.patience) & (idx < epoch)
        previous = jnp.sum(jnp.where(window, hist["val_loss"], 0.0)) / inp.patience
        stop = (inp.patience > 0) & (epoch > inp.patience) & (val_loss > previous)
        return _Carry(params, opt_state, epoch + 1, stop, hist)

    @jax.jit
    def run(carry: _Carry, inputs: _Inputs, limit: jax.Array) -> _Carry:
        return jax.lax.while_loop(
            lambda c: (c.epoch < limit) & ~c.stopped, lambda c: epoch_step(c, inputs), carry
        )

    return run
