"""The global pass: everything the NAM engines need from the whole graph, in one jitted call.

``X`` enters the network only through the first step's ``P_t = X W_t``, and ``P[φ]`` is linear
in ``X[φ]``, so ``Σ_i X[φ,i] ∂Z/∂X[φ,i] = Σ_j P[φ,j] ∂Z/∂P[φ,j]``. One pass over the graph gives
``P``, every step's unit derivatives ``σ'(z_s)``, the logits, the bias term and the values of
each term's operator on the pattern of ``A + I``; the F feature columns are never touched again.

The bias term ``B[a,c] = Σ_s ⟨∂Z[a,c]/∂b_s, b_s⟩`` is the logits' forward-mode derivative along
the biases, applied to the biases (exact for every activation). For ReLU, leaky ReLU and
identity activations the network is positively homogeneous in ``(P, b)`` at a fixed activation
pattern, so ``Σ_φ C(φ→a,c) + B[a,c] = Z[a,c]`` exactly (completeness).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from namjax.errors import ModelError
from namjax.graph import Graph
from namjax.kernel import Kernel
from namjax.layers import ACTIVATIONS, Step
from namjax.model import (
    DeviceGraph,
    cast_steps,
    device_graph,
    multiply,
    operators,
    pre_activations,
    term_values,
)
from namjax.subgraph import round_up


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class GlobalPass:
    """The whole-graph quantities of one model on one graph (device arrays).

    Attributes:
        steps: the model's steps (weights in the compute dtype).
        p: ``(N, D0)`` the first step's term inputs ``[X W_1 | X W_2 | ...]``.
        slopes: per step ``σ'(z_s)`` ``(N, d_s)``, ``None`` for a step without activation.
        logits: ``(N, C)`` pre-softmax logits.
        bias: ``(N, C)`` bias term.
        values: per step, per term, ``(E',)`` the term's operator on the pattern of ``A + I``
            (``E`` entries) followed by zeros (``E' > E``; padded edges point at entry ``E``).
        num_entries: ``E``.
    """

    steps: tuple[Step, ...]
    p: jax.Array
    slopes: tuple[jax.Array | None, ...]
    logits: jax.Array
    bias: jax.Array
    values: tuple[tuple[jax.Array, ...], ...]
    num_entries: int = dataclasses.field(metadata={"static": True})


def unit_derivative(act: str, z: jax.Array) -> jax.Array:
    """``σ'(z)`` elementwise (forward mode, so ReLU's derivative at 0 is JAX's)."""
    return jax.jvp(ACTIVATIONS[act], (z,), (jnp.ones_like(z),))[1]


def first_inputs(steps: tuple[Step, ...], features) -> list[jax.Array]:
    """The first step's term inputs ``X W_t``, each ``(N, d_1)``."""
    if any(t.weight is None for t in steps[0].terms):
        raise ModelError("the first step of a model must multiply its input by a weight")
    return [multiply(t, features) for t in steps[0].terms]


def _global(steps: tuple[Step, ...], dg: DeviceGraph) -> GlobalPass:
    inputs = first_inputs(steps, dg.features)

    def logits_and_slopes(biases):
        steps_b = tuple(dataclasses.replace(s, bias=b) for s, b in zip(steps, biases, strict=True))
        zs = pre_activations(steps_b, dg, first=inputs)
        return zs[-1], tuple(
            None if s.act is None else unit_derivative(s.act, z)
            for s, z in zip(steps, zs, strict=True)
        )

    biases = tuple(s.bias for s in steps)
    (logits, slopes), (bias, _) = jax.jvp(logits_and_slopes, (biases,), (biases,))
    # one or more zeros after the E entries (the slot padded edges point at); the length is
    # rounded so that kernels reading the values compile once for graphs of similar size
    e = dg.receivers.shape[0]
    pad = [(0, round_up(e + 1) - e)]
    values = tuple(tuple(jnp.pad(term_values(t, dg), pad) for t in s.terms) for s in steps)
    return GlobalPass(steps, jnp.concatenate(inputs, axis=1), slopes, logits, bias, values, e)


GLOBAL = Kernel(_global)
"""The global pass as a counted, cached kernel (one compilation per model shape and graph)."""

_DEVICE_GRAPHS: dict = {}


def cached_device_graph(graph: Graph, ops, dtype) -> DeviceGraph:
    """:func:`~namjax.model.device_graph` cached for the last (graph, features, operators,
    dtype) seen: repeated calls on one graph transfer it once."""
    key = (graph.fingerprint, id(graph.features), tuple(op.key for op in ops), np.dtype(dtype).name)
    if key not in _DEVICE_GRAPHS:
        _DEVICE_GRAPHS.clear()
        _DEVICE_GRAPHS[key] = device_graph(graph, ops, dtype)
    return _DEVICE_GRAPHS[key]


def global_pass(model, graph: Graph, dtype=jnp.float32) -> tuple[GlobalPass, float]:
    """The global pass of ``model`` on ``graph`` in ``dtype`` (dispatched asynchronously: the
    device runs it while the host goes on), and the seconds spent compiling it now."""
    steps = cast_steps(model.steps(), dtype)
    dg = cached_device_graph(graph, operators(steps), dtype)
    fn, seconds = GLOBAL.compiled(steps, dg)
    return fn(steps, dg), seconds
