"""The GCN (Kipf & Welling): ``H(l) = σ(Â H(l-1) W(l) + b(l))``, no σ on the output layer.

Two views of the same model:

* :class:`GCN`, a Flax NNX module (what users train, save and load);
* :func:`gcn_apply`, a pure function of ``(params, graph)`` where ``params`` is the plain pytree
  returned by :func:`gcn_params` (a tuple of ``(W, b)`` pairs). The attribution engine works on
  this view.

Both share :func:`propagate` and :class:`DeviceGraph`, the device-side graph pytree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import sparse as jsparse

from namjax.graph import Graph

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
    "leaky_relu": jax.nn.leaky_relu,
    "identity": lambda x: x,
}

LayerParams = tuple[jax.Array, jax.Array | None]  # (W: (F_in, F_out), b: (F_out,) or None)
GCNParams = tuple[LayerParams, ...]


class DeviceGraph(NamedTuple):
    """A graph on the device, as one pytree.

    Attributes:
        receivers: ``(E,)`` int32 row index of each non-zero of ``Â`` (self-loops included).
        senders: ``(E,)`` int32 column index of each non-zero of ``Â``.
        weights: ``(E,)`` float values of ``Â``.
        features: ``(N, F)`` node features, dense array or ``jax.experimental.sparse.BCOO``.
    """

    receivers: jax.Array
    senders: jax.Array
    weights: jax.Array
    features: jax.Array | jsparse.BCOO

    @property
    def num_nodes(self) -> int:
        return self.features.shape[0]


def device_graph(
    graph: Graph, dtype=jnp.float32, sparse_features: bool | None = None
) -> DeviceGraph:
    """Move ``graph`` (its ``Â`` and features) to the device.

    ``sparse_features`` defaults to ``True`` when the features are stored sparse on the host.
    """
    import scipy.sparse as sp

    a = graph.normalized_adjacency.tocoo()
    x = graph.features
    if sparse_features is None:
        sparse_features = sp.issparse(x)
    if sparse_features:
        x = sp.coo_matrix(x)
        idx = np.stack([x.row, x.col], axis=1).astype(np.int32)
        feats = jsparse.BCOO((jnp.asarray(x.data, dtype), jnp.asarray(idx)), shape=x.shape)
    else:
        feats = jnp.asarray(x.toarray() if sp.issparse(x) else x, dtype)
    return DeviceGraph(
        receivers=jnp.asarray(a.row, jnp.int32),
        senders=jnp.asarray(a.col, jnp.int32),
        weights=jnp.asarray(a.data, dtype),
        features=feats,
    )


def propagate(graph: DeviceGraph, h: jax.Array) -> jax.Array:
    """``Â @ h`` for ``h`` of shape ``(N, D)``, as a segment sum over the edge list."""
    messages = graph.weights[:, None] * h[graph.senders]
    return jax.ops.segment_sum(
        messages, graph.receivers, num_segments=h.shape[0], indices_are_sorted=True
    )


@dataclass(frozen=True)
class GCNConfig:
    """Architecture of a GCN.

    Attributes:
        in_features: input feature size F.
        num_classes: number of output classes C.
        hidden: hidden sizes; the depth K is ``len(hidden) + 1`` (1..4).
        activation: one of :data:`ACTIVATIONS` (ReLU by default).
        dropout: dropout rate applied to each layer's input during training.
        bias: whether layers have a bias ``b(l)``. Off by default, as in Kipf & Welling's
            code (with it, their early-stopping rule fires sooner and Cora's 10-seed mean
            drops below 81%; see benchmarks/RESULTS.md).
    """

    in_features: int
    num_classes: int
    hidden: tuple[int, ...] = (16,)
    activation: str = "relu"
    dropout: float = 0.5
    bias: bool = False

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not 1 <= self.depth <= 4:
            raise ValueError(f"GCN depth K must be 1..4, got {self.depth} (hidden={self.hidden})")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if min((self.in_features, self.num_classes, *self.hidden)) < 1:
            raise ValueError(f"layer sizes must be positive: {self}")

    @property
    def depth(self) -> int:
        """Number of GCN layers K."""
        return len(self.hidden) + 1

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(F, h_1, ..., h_{K-1}, C)``."""
        return (self.in_features, *self.hidden, self.num_classes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GCNConfig:
        return cls(**{**d, "hidden": tuple(d.get("hidden", (16,)))})


class GCNLayer(nnx.Module):
    """Weights of one graph convolution ``Â (H W) + b``: ``kernel (F_in, F_out)``, ``bias``
    ``(F_out,)`` or ``None``."""

    def __init__(self, fan_in: int, fan_out: int, *, bias: bool, rngs: nnx.Rngs):
        init = nnx.initializers.glorot_uniform()
        self.kernel = nnx.Param(init(rngs.params(), (fan_in, fan_out), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((fan_out,), jnp.float32)) if bias else None


def _dropout(x, rate: float, key: jax.Array):
    """Inverted dropout on a dense array or on the stored values of a BCOO matrix."""
    p_keep = jnp.float32(1.0 - rate)  # float32 draws whether or not x64 is enabled
    if isinstance(x, jsparse.BCOO):
        keep = jax.random.bernoulli(key, p_keep, x.data.shape)
        return jsparse.BCOO((jnp.where(keep, x.data / p_keep, 0.0), x.indices), shape=x.shape)
    keep = jax.random.bernoulli(key, p_keep, x.shape)
    return jnp.where(keep, x / p_keep, 0.0)


class GCN(nnx.Module):
    """A K-layer GCN as a Flax NNX module. Call it as ``model(device_graph) -> (N, C) logits``.

    With ``model.deterministic = False`` each layer's input gets dropout, keyed by the module's
    own ``rngs.dropout()`` stream.
    """

    def __init__(self, config: GCNConfig, *, rngs: nnx.Rngs):
        self.config = config
        sizes = config.sizes
        self.layers = nnx.List(
            [
                GCNLayer(sizes[i], sizes[i + 1], bias=config.bias, rngs=rngs)
                for i in range(config.depth)
            ]
        )
        self.rngs = rngs
        self.deterministic = True

    def __call__(self, graph: DeviceGraph) -> jax.Array:
        train = not self.deterministic and self.config.dropout > 0
        return gcn_apply(
            layer_weights(self),
            graph,
            self.config.activation,
            dropout=self.config.dropout if train else 0.0,
            key=self.rngs.dropout() if train else None,
        )


def layer_weights(model: GCN) -> tuple[tuple[jax.Array, jax.Array | None], ...]:
    """The model's ``(W (F_in, F_out), b (F_out,) or None)`` per layer, as stored."""
    return tuple(
        (layer.kernel[...], None if layer.bias is None else layer.bias[...])
        for layer in model.layers
    )


def gcn_params(model: GCN) -> GCNParams:
    """The model's weights as a plain pytree: a tuple of ``(W (F_in, F_out), b (F_out,))``.

    Layers without bias get a zero bias, so downstream code has one shape to handle.
    """
    return tuple(
        (w, jnp.zeros(w.shape[1], w.dtype) if b is None else b) for w, b in layer_weights(model)
    )


def gcn_apply(
    params: GCNParams,
    graph: DeviceGraph,
    activation: str = "relu",
    *,
    dropout: float = 0.0,
    key: jax.Array | None = None,
) -> jax.Array:
    """Pure forward pass: ``(N, C)`` pre-softmax logits.

    ``params`` is a tuple of ``(W, b)`` per layer (``b`` may be ``None``). Deterministic unless
    ``key`` is given, in which case inverted dropout of rate ``dropout`` is applied to each
    layer's input (on the stored values when the features are a BCOO matrix).
    """
    act = ACTIVATIONS[activation]
    keys = [None] * len(params) if key is None else jax.random.split(key, len(params))
    h = graph.features
    for i, ((w, b), k) in enumerate(zip(params, keys, strict=True)):
        if k is not None and dropout > 0:
            h = _dropout(h, dropout, k)
        h = propagate(graph, h @ w)
        if b is not None:
            h = h + b
        if i < len(params) - 1:
            h = act(h)
    return h
