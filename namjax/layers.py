"""Layer kinds: each GNN layer defined once, as what it computes on the graph.

Every supported layer is a short sequence of **steps**. A step maps node states ``h`` to

    z = Σ_t Op_t (h W_t) + b,        h' = σ(z)  (no σ on the model's last step)

where each **term** ``t`` has a weight ``W_t`` (or none) and an operator ``Op_t``: a fixed
linear combination ``Σ_k a_k Op_k`` of propagation :class:`Operator` s on the pattern of
``A + I``. Aggregation is linear in the node states and every nonlinearity is pointwise, so
NAM is exact; with piecewise-linear ``σ`` contributions plus the bias term equal the logit.

Training's forward pass, the engines' global pass, both NAM engines, the perturbation sweep,
the walks and the reference oracles all read these steps, so a new layer kind is one class
with a :meth:`Layer.steps` method (and its tests). The kinds, as PyG defines them:

* :class:`GCNConv` ``Â H W + b`` with ``Â = D^-1/2 (A + sI) D^-1/2`` (``s = 2`` when
  ``improved``, ``0`` without self-loops; ``normalize=False`` uses ``A`` as given);
* :class:`SGConv` ``Â^K H W + b``: K propagation steps, the weight on the first;
* :class:`SAGEConv` (mean) ``W_root h_v + W_neigh mean_{u∈N(v)} h_u + b``: two terms;
* :class:`GINConv` ``MLP((1 + ε) h_v + Σ_{u∈N(v)} h_u)``, MLP ``Linear → σ → Linear``: a
  propagating step with the combined operator ``A_bin + (1 + ε) I``, then a node-local one.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from namjax.errors import ModelError
from namjax.graph import Neighbours, Norm

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
    "leaky_relu": jax.nn.leaky_relu,
    "identity": lambda x: x,
}
"""Pointwise activations (PyG/torch defaults: leaky ReLU slope 0.01, ELU alpha 1)."""

PIECEWISE_LINEAR = frozenset({"relu", "leaky_relu", "identity"})
"""Activations for which contributions + bias term sum exactly to the logit."""


# ------------------------------------------------------------------------------ operators
@dataclass(frozen=True)
class Operator:
    """A propagation operator ``diag(r) (A° + s I) diag(c)`` on the pattern of ``A + I``; see
    :meth:`namjax.graph.Graph.propagation` for the meaning of the fields."""

    neighbours: Neighbours
    self_loop: float
    norm: Norm

    @property
    def key(self) -> str:
        """A stable name, used as the key of the operator's edge values on the device."""
        return f"{self.neighbours}:{self.self_loop:g}:{self.norm}"

    @property
    def is_identity(self) -> bool:
        return self.neighbours == "none" and self.norm == "none"


IDENTITY = Operator("none", 1.0, "none")
SUM = Operator("binary", 0.0, "none")
MEAN = Operator("binary", 0.0, "row")


def gcn_operator(improved: bool = False, add_self_loops: bool = True, normalize: bool = True):
    """PyG ``GCNConv``'s operator: ``gcn_norm`` with self-loops of weight 1 (2 when
    ``improved``, none without ``add_self_loops``), or the weighted ``A`` as given when not
    ``normalize`` (PyG then adds no self-loops either)."""
    if not normalize:
        return Operator("weighted", 0.0, "none")
    return Operator("weighted", (2.0 if improved else 1.0) if add_self_loops else 0.0, "sym")


# ------------------------------------------------------------------------------ steps
@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Term:
    """``Op (h W)`` with ``Op = Σ_k coefs[k] ops[k]``.

    Attributes:
        ops: the operators (static).
        coefs: one scalar array per operator.
        weight: ``(d_in, d_out)`` or ``None`` (the identity, ``d_out = d_in``).
    """

    ops: tuple[Operator, ...] = dataclasses.field(metadata={"static": True})
    coefs: tuple[jax.Array, ...]
    weight: jax.Array | None

    @property
    def local(self) -> bool:
        """True when the term only acts within each node (every operator is the identity)."""
        return all(op.is_identity for op in self.ops)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Step:
    """``z = Σ_t terms[t] + bias``, then ``act`` (``None``: no activation).

    ``starts_layer`` marks the first step of a layer, where dropout applies in training.
    """

    terms: tuple[Term, ...]
    bias: jax.Array | None
    act: str | None = dataclasses.field(metadata={"static": True})
    starts_layer: bool = dataclasses.field(metadata={"static": True})

    @property
    def local(self) -> bool:
        """True when the step moves nothing between nodes (no hop is added)."""
        return all(t.local for t in self.terms)


def step_widths(steps: tuple[Step, ...]) -> tuple[int, ...]:
    """Each step's output width ``d_s`` (a step without weights keeps its input's width)."""
    out, width = [], 0
    for step in steps:
        w = step.terms[0].weight
        width = width if w is None else int(w.shape[1])
        out.append(width)
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _constant(value: float) -> np.float32:
    """One shared scalar per constant coefficient (so a model's steps hold the same objects
    from call to call)."""
    return np.float32(value)


def term(op: Operator, weight, coef: float | jax.Array = 1.0, *more: tuple[Operator, object]):
    """A :class:`Term` of one operator (plus ``(operator, coef)`` pairs in ``more``)."""
    ops = (op, *(o for o, _ in more))
    coefs = (coef, *(c for _, c in more))
    return Term(
        ops, tuple(_constant(float(c)) if isinstance(c, int | float) else c for c in coefs), weight
    )


# ------------------------------------------------------------------------------ layer kinds
def _param(variable: nnx.Param) -> jax.Array:
    return variable.get_value()


def _glorot(rngs: nnx.Rngs, fan_in: int, fan_out: int) -> nnx.Param:
    init = nnx.initializers.glorot_uniform()
    return nnx.Param(init(rngs.params(), (fan_in, fan_out), jnp.float32))


def _zeros(n: int, on: bool) -> nnx.Param | None:
    return nnx.Param(jnp.zeros((n,), jnp.float32)) if on else None


@dataclass(frozen=True)
class LayerSpec:
    """Base of the layer descriptions stored in a model's config (``kind`` names the class)."""

    in_features: int
    out_features: int

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @property
    def depth(self) -> int:
        """Hops the layer adds (propagating steps)."""
        return 1


class Layer(nnx.Module):
    """A layer kind: parameters plus :meth:`steps`, what the layer computes."""

    Spec: ClassVar[type[LayerSpec]]

    def __init__(self, spec: LayerSpec, *, rngs: nnx.Rngs):
        self.spec = spec

    def steps(self, activation: str, last: bool) -> tuple[Step, ...]:
        """The layer's steps with the current parameter values: ``activation`` is the model's
        (applied after the layer unless it is the ``last``, and inside it where the layer has
        inner nonlinearities)."""
        raise NotImplementedError


@dataclass(frozen=True)
class GCNSpec(LayerSpec):
    bias: bool = False
    improved: bool = False
    add_self_loops: bool = True
    normalize: bool = True
    kind: ClassVar[str] = "gcn"


class GCNConv(Layer):
    """``Â H W + b`` (PyG ``GCNConv``): ``kernel (F_in, F_out)``, ``bias (F_out,)`` or None."""

    Spec = GCNSpec

    def __init__(self, spec: GCNSpec, *, rngs: nnx.Rngs):
        super().__init__(spec, rngs=rngs)
        self.kernel = _glorot(rngs, spec.in_features, spec.out_features)
        self.bias = _zeros(spec.out_features, spec.bias)

    def steps(self, activation, last):
        s, act = self.spec, None if last else activation
        op = gcn_operator(s.improved, s.add_self_loops, s.normalize)
        bias = None if self.bias is None else _param(self.bias)
        return (Step((term(op, _param(self.kernel)),), bias, act, True),)


@dataclass(frozen=True)
class SGCSpec(LayerSpec):
    hops: int = 2
    bias: bool = True
    add_self_loops: bool = True
    kind: ClassVar[str] = "sgc"

    @property
    def depth(self) -> int:
        return self.hops


class SGConv(Layer):
    """``Â^K H W + b`` (PyG ``SGConv``, Wu et al. 2019): K steps propagating with ``Â``, the
    weight applied on the first (``Â^K (H W) = (Â^K H) W``), the bias after the last."""

    Spec = SGCSpec

    def __init__(self, spec: SGCSpec, *, rngs: nnx.Rngs):
        super().__init__(spec, rngs=rngs)
        if spec.hops < 1:
            raise ModelError(f"SGConv needs K >= 1 propagations, got {spec.hops}")
        self.kernel = _glorot(rngs, spec.in_features, spec.out_features)
        self.bias = _zeros(spec.out_features, spec.bias)

    def steps(self, activation, last):
        op, act = (
            gcn_operator(add_self_loops=self.spec.add_self_loops),
            None if last else activation,
        )
        k = self.spec.hops
        bias = None if self.bias is None else _param(self.bias)
        return tuple(
            Step(
                (term(op, _param(self.kernel) if i == 0 else None),),
                bias if i == k - 1 else None,
                act if i == k - 1 else None,
                i == 0,
            )
            for i in range(k)
        )


@dataclass(frozen=True)
class SAGESpec(LayerSpec):
    bias: bool = True
    root_weight: bool = True
    kind: ClassVar[str] = "sage"


class SAGEConv(Layer):
    """``mean_{u∈N(v)} h_u W_neigh + h_v W_root + b`` (PyG ``SAGEConv``, mean aggregation;
    ``neigh``/``root`` are PyG's ``lin_l``/``lin_r``)."""

    Spec = SAGESpec

    def __init__(self, spec: SAGESpec, *, rngs: nnx.Rngs):
        super().__init__(spec, rngs=rngs)
        self.neigh = _glorot(rngs, spec.in_features, spec.out_features)
        self.root = _glorot(rngs, spec.in_features, spec.out_features) if spec.root_weight else None
        self.bias = _zeros(spec.out_features, spec.bias)

    def steps(self, activation, last):
        act = None if last else activation
        terms = (term(MEAN, _param(self.neigh)),)
        if self.root is not None:
            terms += (term(IDENTITY, _param(self.root)),)
        bias = None if self.bias is None else _param(self.bias)
        return (Step(terms, bias, act, True),)


@dataclass(frozen=True)
class GINSpec(LayerSpec):
    hidden: int = 0  # the MLP's hidden width; 0: out_features
    eps: float = 0.0
    train_eps: bool = False
    bias: bool = True
    kind: ClassVar[str] = "gin"

    @property
    def mlp_width(self) -> int:
        return self.hidden or self.out_features


class GINConv(Layer):
    """``MLP((1 + ε) h_v + Σ_{u∈N(v)} h_u)`` with ``MLP = Linear → σ → Linear`` (PyG
    ``GINConv`` as ``torch_geometric.nn.models.GIN`` builds it); ``ε`` is a parameter when
    ``train_eps``. The MLP's inner activation is the model's activation."""

    Spec = GINSpec

    def __init__(self, spec: GINSpec, *, rngs: nnx.Rngs):
        super().__init__(spec, rngs=rngs)
        width = spec.mlp_width
        self.kernel1 = _glorot(rngs, spec.in_features, width)
        self.bias1 = _zeros(width, spec.bias)
        self.kernel2 = _glorot(rngs, width, spec.out_features)
        self.bias2 = _zeros(spec.out_features, spec.bias)
        self.eps = nnx.Param(jnp.asarray(spec.eps, jnp.float32)) if spec.train_eps else None

    def steps(self, activation, last):
        eps = self.spec.eps if self.eps is None else _param(self.eps)
        first = term(SUM, _param(self.kernel1), 1.0, (IDENTITY, 1.0 + eps))
        b1 = None if self.bias1 is None else _param(self.bias1)
        b2 = None if self.bias2 is None else _param(self.bias2)
        return (
            Step((first,), b1, activation, True),
            Step((term(IDENTITY, _param(self.kernel2)),), b2, None if last else activation, False),
        )


KINDS: dict[str, type[Layer]] = {cls.Spec.kind: cls for cls in (GCNConv, SGConv, SAGEConv, GINConv)}
"""Layer kinds by name (the ``kind`` of their specs)."""

Arch = Literal["gcn", "sgc", "sage", "gin"]


def spec_from_dict(d: dict) -> LayerSpec:
    """The :class:`LayerSpec` stored by :meth:`LayerSpec.to_dict`."""
    d = dict(d)
    kind = d.pop("kind", None)
    if kind not in KINDS:
        raise ModelError(f"unknown layer kind {kind!r}; known: {', '.join(KINDS)}")
    try:
        return KINDS[kind].Spec(**d)
    except TypeError as e:
        raise ModelError(f"invalid {kind} layer description: {e}") from None
