"""The model: a stack of layer kinds (:mod:`namjax.layers`) as one Flax NNX module.

:class:`GNN` holds the parameters; :meth:`GNN.steps` lists what it computes as
:class:`~namjax.layers.Step` pytrees, and :func:`forward` runs steps on a :class:`DeviceGraph`.
Training calls the module (with a dropout key), the engines and oracles call :func:`forward`
or read the steps: one definition under everything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from flax import nnx
from jax.experimental import sparse as jsparse

from namjax.checks import check_features
from namjax.errors import ModelError
from namjax.graph import Graph
from namjax.layers import ACTIVATIONS, KINDS, Arch, LayerSpec, Operator, Step, Term, spec_from_dict

MAX_DEPTH = 4


# ------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class GNNConfig:
    """Architecture of a model: its layers, the activation between (and inside) them, and the
    dropout rate applied to each layer's input in training.

    Build one with :meth:`create` (``arch`` ``"gcn"``, ``"sgc"``, ``"sage"`` or ``"gin"``) or from
    explicit layer specs (what :func:`namjax.from_pyg` does).
    """

    layers: tuple[LayerSpec, ...]
    activation: str = "relu"
    dropout: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ModelError("a model needs at least one layer")
        if not 1 <= self.depth <= MAX_DEPTH:
            raise ModelError(f"depth K must be 1..{MAX_DEPTH}, got {self.depth}")
        if self.activation not in ACTIVATIONS:
            raise ModelError(
                f"unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {self.dropout}")
        if min(self.sizes) < 1 or any(getattr(s, "hidden", 0) < 0 for s in self.layers):
            raise ModelError(f"layer sizes must be positive: {self.sizes}")
        for i, (a, b) in enumerate(zip(self.layers, self.layers[1:], strict=False)):
            if a.out_features != b.in_features:
                raise ModelError(
                    f"layer {i} gives {a.out_features} features but layer {i + 1} takes "
                    f"{b.in_features}"
                )

    @classmethod
    def create(
        cls,
        arch: Arch,
        in_features: int,
        num_classes: int,
        hidden: tuple[int, ...] = (16,),
        *,
        activation: str = "relu",
        dropout: float = 0.5,
        bias: bool | None = None,
        **options,
    ) -> GNNConfig:
        """A stack of ``len(hidden) + 1`` layers of one kind, sizes ``(F, *hidden, C)``.

        ``arch="sgc"`` is one layer with ``hops`` propagations (``options``; default 2) and
        takes no hidden sizes. ``bias`` defaults to Kipf & Welling's choice for ``gcn`` (none)
        and PyG's for the others (on). Other ``options`` go to every layer (e.g. ``improved``,
        ``add_self_loops``, ``normalize`` for gcn, ``root_weight`` for sage, ``eps``,
        ``train_eps`` for gin).
        """
        if arch not in KINDS:
            raise ModelError(f"unknown architecture {arch!r}; choose from {', '.join(KINDS)}")
        spec_cls = KINDS[arch].Spec
        bias = (arch != "gcn") if bias is None else bias
        if arch == "sgc":
            if tuple(hidden) not in ((), (16,)):
                raise ModelError("sgc has one linear layer: give hops=K, not hidden sizes")
            sizes: tuple[int, ...] = (in_features, num_classes)
        else:
            sizes = (in_features, *(int(h) for h in hidden), num_classes)
        try:
            layers = tuple(
                spec_cls(sizes[i], sizes[i + 1], bias=bias, **options)
                for i in range(len(sizes) - 1)
            )
        except TypeError as e:
            raise ModelError(f"invalid option for {arch}: {e}") from None
        return cls(layers, activation=activation, dropout=dropout)

    @property
    def depth(self) -> int:
        """K, the number of propagations: a target's logits depend on its K-hop neighbours."""
        return sum(spec.depth for spec in self.layers)

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(F, h_1, ..., C)``: the layers' input widths and the output width."""
        return (*(s.in_features for s in self.layers), self.layers[-1].out_features)

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def num_classes(self) -> int:
        return self.layers[-1].out_features

    @property
    def arch(self) -> str:
        """The layer kinds, e.g. ``"gcn"`` or ``"sage+gcn"`` for a mixed stack."""
        return "+".join(dict.fromkeys(s.kind for s in self.layers))

    def to_dict(self) -> dict:
        return {
            "layers": [s.to_dict() for s in self.layers],
            "activation": self.activation,
            "dropout": self.dropout,
        }

    @classmethod
    def from_dict(cls, d: dict) -> GNNConfig:
        return cls(
            tuple(spec_from_dict(s) for s in d["layers"]),
            activation=d.get("activation", "relu"),
            dropout=d.get("dropout", 0.5),
        )


# ------------------------------------------------------------------------------ device graph
class DeviceGraph(NamedTuple):
    """A graph on the device, as one pytree.

    Attributes:
        receivers: ``(E,)`` int32 row of each entry of the pattern of ``A + I`` (sorted).
        senders: ``(E,)`` int32 column of each entry.
        weights: ``{operator key: (E,)}`` the values of each operator the model uses.
        features: ``(N, F)`` node features, dense array or ``jax.experimental.sparse.BCOO``.
    """

    receivers: jax.Array
    senders: jax.Array
    weights: dict[str, jax.Array]
    features: jax.Array | jsparse.BCOO

    @property
    def num_nodes(self) -> int:
        return self.features.shape[0]


def device_graph(
    graph: Graph,
    operators: tuple[Operator, ...],
    dtype=jnp.float32,
    sparse_features: bool | None = None,
) -> DeviceGraph:
    """Move ``graph`` (the values of ``operators`` and the features) to the device.

    ``sparse_features`` defaults to ``True`` when the features are stored sparse on the host.
    """
    a = graph.pattern
    x = graph.features
    if sparse_features is None:
        sparse_features = sp.issparse(x)
    if sparse_features:
        x = sp.coo_matrix(x)
        idx = np.stack([x.row, x.col], axis=1).astype(np.int32)
        feats = jsparse.BCOO((jnp.asarray(x.data, dtype), jnp.asarray(idx)), shape=x.shape)
    else:
        feats = jnp.asarray(x.toarray() if sp.issparse(x) else x, dtype)
    rows = np.repeat(np.arange(graph.num_nodes, dtype=np.int32), np.diff(a.indptr))
    weights = {
        op.key: jnp.asarray(graph.propagation(op.neighbours, op.self_loop, op.norm).data, dtype)
        for op in operators
    }
    return DeviceGraph(jnp.asarray(rows), jnp.asarray(a.indices, jnp.int32), weights, feats)


# ------------------------------------------------------------------------------ forward
def term_values(t: Term, dg: DeviceGraph) -> jax.Array:
    """``(E,)`` the values of the term's operator ``Σ_k coefs[k] ops[k]`` on the pattern."""
    return sum(c * dg.weights[op.key] for c, op in zip(t.coefs, t.ops, strict=True))


def propagate(dg: DeviceGraph, values: jax.Array, h: jax.Array) -> jax.Array:
    """``Op @ h`` for operator ``values (E,)`` on the pattern and ``h (N, D)``: a segment sum
    over the entries."""
    messages = values[:, None] * h[dg.senders]
    return jax.ops.segment_sum(
        messages, dg.receivers, num_segments=h.shape[0], indices_are_sorted=True
    )


def apply_term(t: Term, dg: DeviceGraph, x: jax.Array) -> jax.Array:
    """``Op_t x`` for ``x = h W_t`` ``(N, d)``: within nodes for a local term."""
    if t.local:
        return sum(t.coefs) * x
    return propagate(dg, term_values(t, dg), x)


def step_output(step: Step, apply: Callable[[Term, jax.Array], jax.Array], inputs) -> jax.Array:
    """``z = Σ_t apply(t, inputs[t]) + b``: a step's pre-activation from each term's ``h W_t``
    (``apply`` applies the term's operator in some layout)."""
    z = sum(apply(t, x) for t, x in zip(step.terms, inputs, strict=True))
    return z if step.bias is None else z + step.bias


def multiply(t: Term, h):
    """``h W_t`` (``h`` itself when the term has no weight)."""
    return h if t.weight is None else h @ t.weight


def forward(
    steps: tuple[Step, ...],
    dg: DeviceGraph,
    *,
    dropout: float = 0.0,
    key: jax.Array | None = None,
) -> jax.Array:
    """Pure forward pass: ``(N, C)`` pre-softmax logits.

    Deterministic unless ``key`` is given, in which case inverted dropout of rate ``dropout``
    is applied to each layer's input (on the stored values when the features are a BCOO
    matrix); one key per layer, split from ``key``.
    """
    return pre_activations(steps, dg, dropout=dropout, key=key)[-1]


def pre_activations(
    steps: tuple[Step, ...],
    dg: DeviceGraph,
    *,
    dropout: float = 0.0,
    key: jax.Array | None = None,
    first: list[jax.Array] | None = None,
) -> list[jax.Array]:
    """Every step's ``z_s`` ``(N, d_s)`` (the last is the logits), as :func:`forward`;
    ``first`` gives the first step's term inputs ``X W_t`` when they are already computed."""
    layers = sum(s.starts_layer for s in steps)
    keys = iter(jax.random.split(key, layers)) if key is not None and dropout > 0 else None
    h, zs = dg.features, []
    for i, step in enumerate(steps):
        if keys is not None and step.starts_layer:
            h = _dropout(h, dropout, next(keys))
        x = first if i == 0 and first is not None else [multiply(t, h) for t in step.terms]
        zs.append(step_output(step, lambda t, v: apply_term(t, dg, v), x))
        h = zs[-1] if step.act is None else ACTIVATIONS[step.act](zs[-1])
    return zs


def _dropout(x, rate: float, key: jax.Array):
    """Inverted dropout on a dense array or on the stored values of a BCOO matrix."""
    p_keep = jnp.float32(1.0 - rate)  # float32 draws whether or not x64 is enabled
    if isinstance(x, jsparse.BCOO):
        keep = jax.random.bernoulli(key, p_keep, x.data.shape)
        return jsparse.BCOO((jnp.where(keep, x.data / p_keep, 0.0), x.indices), shape=x.shape)
    keep = jax.random.bernoulli(key, p_keep, x.shape)
    return jnp.where(keep, x / p_keep, 0.0)


# ------------------------------------------------------------------------------ module
class GNN(nnx.Module):
    """A GNN as a Flax NNX module: ``model(device_graph) -> (N, C)`` logits.

    ``model(dg, dropout_key=key)`` is the training pass (dropout on each layer's input, keyed by
    ``key``); without a key the pass is deterministic.
    """

    def __init__(self, config: GNNConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.layers = nnx.List([KINDS[s.kind](s, rngs=rngs) for s in config.layers])

    def steps(self) -> tuple[Step, ...]:
        """What the model computes, as steps holding the current parameter values."""
        last = len(self.layers) - 1
        act = self.config.activation
        return tuple(s for i, layer in enumerate(self.layers) for s in layer.steps(act, i == last))

    @property
    def operators(self) -> tuple[Operator, ...]:
        """The distinct propagation operators the model uses (what its device graph holds)."""
        return operators(self.steps())

    def __call__(self, graph: DeviceGraph, *, dropout_key: jax.Array | None = None) -> jax.Array:
        return forward(self.steps(), graph, dropout=self.config.dropout, key=dropout_key)


def operators(steps: tuple[Step, ...]) -> tuple[Operator, ...]:
    """The distinct operators of ``steps``, in order of first use."""
    return tuple(dict.fromkeys(op for s in steps for t in s.terms for op in t.ops))


def cast_steps(steps: tuple[Step, ...], dtype) -> tuple[Step, ...]:
    """``steps`` with every array in ``dtype``."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype), steps)


@jax.jit
def _forward_jit(steps, dg):
    return forward(steps, dg)


def predict(model: GNN, graph: Graph) -> np.ndarray:
    """Deterministic ``(N, C)`` float32 logits of ``model`` on ``graph``."""
    check_features(model, graph)
    return np.asarray(_forward_jit(model.steps(), device_graph(graph, model.operators)))


def model_fingerprint(model: GNN) -> str:
    """A short sha256 over the model's configuration and what it computes (every weight, bias
    and coefficient of its steps): identifies the model. Cached while the parameters are the
    same arrays (assigning a parameter replaces its array)."""
    leaves = jax.tree.leaves(model.steps())
    key = (model.config, tuple(map(id, leaves)))
    hit = _FINGERPRINTS.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], leaves, strict=True)):
        return hit[1]
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for leaf in leaves:
        h.update(np.ascontiguousarray(np.asarray(leaf, np.float32)).tobytes())
    if len(_FINGERPRINTS) >= 8:
        _FINGERPRINTS.pop(next(iter(_FINGERPRINTS)))
    _FINGERPRINTS[key] = (leaves, h.hexdigest()[:16])
    return _FINGERPRINTS[key][1]


_FINGERPRINTS: dict = {}
