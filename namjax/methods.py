"""Attribution methods on the one engine: every (target, source, class) score at once.

A node-level score ``A(φ→a, c)`` is the method's per-feature attribution of the logit
``Z[a, c]`` summed over source ``φ``'s features, as Captum defines the method (the parity tests
compare with Captum). Every gradient method here is a weighted sum of engine passes (the pairs
engine is linear in its level-0 vectors and takes the unit derivatives as inputs):

=========================  ==================================================================
method                     terms ``w_k · readout(p0_k, σ'_k)``
=========================  ==================================================================
``nam``                    ``1 · contract(X W, σ'(X))``: gradient x input (Captum's
                           ``InputXGradient``)
``saliency``               ``1 · Σ_i |∂Z/∂X[φ, i]|`` at ``X`` (Captum's ``Saliency``, abs)
``integrated_gradients``   ``w_k · contract((X - X') W, σ'(X' + α_k (X - X')))``, Captum's
                           steps ``α_k`` and weights ``w_k`` (``n_steps``, ``method``)
``deeplift``               ``1 · contract((X - X') W, m)`` with the rescale multipliers
                           ``m = (σ(z) - σ(z')) / (z - z')`` (``σ'(z)`` where
                           ``|z - z'| < 1e-10``, as Captum), baseline ``X' = 0``
``smoothgrad``             ``1/S`` times the base method (``saliency`` or ``nam``) at
                           ``X + ε_s``, ``ε_s ~ N(0, stdevs²)`` (Captum's ``NoiseTunnel``,
                           ``nt_type="smoothgrad"``)
``occlusion``              the exact drop of ``Z[a, c]`` when ``φ`` alone is deleted (removed
                           with its edges, or its features zeroed), from the local sweep
=========================  ==================================================================

Each method also gives the reference term ``B[a, c]`` stored as the attribution's ``bias``:
NAM's bias term, the baseline's logit ``Z[a, c](X')`` for integrated gradients and DeepLift
(so ``Σ_φ A + B - Z`` is the completeness gap), 0 for the others.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

from namjax.engine.globalpass import GLOBAL, GlobalPass, cached_device_graph, unit_derivative
from namjax.engine.sweep import MODES, first_inputs, pack, unpack
from namjax.errors import OptionError
from namjax.graph import Graph
from namjax.kernel import Kernel
from namjax.layers import ACTIVATIONS
from namjax.model import DeviceGraph, cast_steps, operators, pre_activations


# ---------------------------------------------------------------------------- context
@dataclass
class Context:
    """One model on one graph, on the device: its steps, device graph and global pass."""

    model: object
    graph: Graph
    steps: tuple
    dg: DeviceGraph
    gp: GlobalPass
    compile_s: float = 0.0

    @classmethod
    def create(cls, model, graph: Graph, dtype=jnp.float32) -> Context:
        steps = cast_steps(model.steps(), dtype)
        dg = cached_device_graph(graph, operators(steps), dtype)
        fn, secs = GLOBAL.compiled(steps, dg)
        return cls(model, graph, steps, dg, fn(steps, dg), secs)

    def at(self, features) -> GlobalPass:
        """The global pass with other ``(N, F)`` features (dense, or BCOO)."""
        dg = self.dg._replace(features=features)
        fn, secs = GLOBAL.compiled(self.steps, dg)
        self.compile_s += secs
        return fn(self.steps, dg)

    @property
    def dtype(self):
        return self.gp.p.dtype

    def dense_features(self) -> jax.Array:
        x = self.graph.features
        return jnp.asarray(x.toarray() if sp.issparse(x) else x, self.dtype)

    def scaled(self, alpha: float):
        """``α X`` in the device graph's feature format (BCOO stays BCOO)."""
        x = self.dg.features
        if isinstance(x, jsparse.BCOO):
            return jsparse.BCOO((x.data * alpha, x.indices), shape=x.shape)
        return x * alpha

    def first_weights(self) -> jax.Array:
        """``(F, D0)``: the first step's weights side by side."""
        return jnp.concatenate([t.weight for t in self.steps[0].terms], axis=1)


# ---------------------------------------------------------------------------- methods
class Method:
    """A node-level attribution method: its options and how the engine computes it."""

    name: ClassVar[str]
    readout: ClassVar[str] = "contract"
    complete: ClassVar[bool] = False
    """Whether ``Σ_φ A + B = Z`` holds (for piecewise-linear models)."""

    def options(self) -> dict:
        return {}

    @property
    def num_terms(self) -> int:
        """How many engine passes :meth:`terms` gives."""
        return 1

    def terms(self, ctx: Context):
        """The weighted passes ``(w, p0 (N, D0), slopes)`` the engine sums."""
        raise NotImplementedError

    def reference(self, ctx: Context) -> jax.Array:
        """``(N, C)``: the reference term ``B`` (the attribution's ``bias``)."""
        return jnp.zeros_like(ctx.gp.logits)


class NAM(Method):
    """Gradient x input summed over the source's features (Captum's ``InputXGradient``)."""

    name = "nam"
    complete = True

    def terms(self, ctx):
        return [(1.0, ctx.gp.p, ctx.gp.slopes)]

    def reference(self, ctx):
        return ctx.gp.bias


class Saliency(Method):
    """``Σ_i |∂Z[a, c]/∂X[φ, i]|`` (Captum's ``Saliency`` with ``abs=True``, summed over the
    source's features)."""

    name = "saliency"
    readout = "saliency"

    def terms(self, ctx):
        return [(1.0, ctx.gp.p, ctx.gp.slopes)]


IG_RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def ig_steps(n_steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Captum's integration points ``α_k`` and weights ``w_k`` (``captum.attr._utils.
    approximation_methods``); the Riemann rules need ``n_steps > 1``. Note Captum's trapezoid
    weights sum to ``(n - 1) / n``."""
    n = n_steps
    if rule == "gausslegendre":
        t, v = np.polynomial.legendre.leggauss(n)
        return (1.0 + t) / 2.0, v / 2.0
    k = np.arange(n)
    alphas = {
        "riemann_left": k / n,
        "riemann_right": (k + 1) / n,
        "riemann_middle": (k + 0.5) / n,
        "riemann_trapezoid": k / max(n - 1, 1),
    }[rule]
    weights = np.full(n, 1.0 / n)
    if rule == "riemann_trapezoid":
        weights[[0, -1]] = 0.5 / n
    return alphas, weights


class IntegratedGradients(Method):
    """Captum's ``IntegratedGradients``: ``(X - X') ⊙ Σ_k w_k ∇Z(X' + α_k (X - X'))``.

    Options: ``n_steps`` (default 50), ``rule`` (Captum's ``method``: one of :data:`IG_RULES`,
    default ``"gausslegendre"``), ``baseline`` (``None``: zeros; a number or an ``(N, F)``
    array).
    """

    name = "integrated_gradients"
    complete = True  # up to the quadrature: the attribution's completeness gap says how much

    def __init__(self, n_steps: int = 50, rule: str = "gausslegendre", baseline=None):
        if rule not in IG_RULES:
            raise OptionError(f"rule must be one of {', '.join(IG_RULES)}, got {rule!r}")
        minimum = 1 if rule == "gausslegendre" else 2
        if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < minimum:
            raise OptionError(f"n_steps must be an integer >= {minimum} for {rule}")
        self.n_steps, self.rule, self.baseline = int(n_steps), rule, baseline

    @property
    def num_terms(self) -> int:
        return self.n_steps

    def options(self):
        base = "zeros" if self.baseline is None else "given"
        return {"n_steps": self.n_steps, "rule": self.rule, "baseline": base}

    def _baseline(self, ctx: Context):
        if self.baseline is None:
            return None
        b = np.asarray(self.baseline, np.float64)
        if b.ndim == 0:
            b = np.full(ctx.graph.features.shape, float(b))
        if b.shape != ctx.graph.features.shape:
            raise OptionError(
                f"baseline must be a number or of shape {ctx.graph.features.shape}, got {b.shape}"
            )
        return jnp.asarray(b, ctx.dtype)

    def terms(self, ctx):
        base = self._baseline(ctx)
        alphas, weights = ig_steps(self.n_steps, self.rule)
        if base is None:
            delta = ctx.gp.p
        else:
            x = ctx.dense_features()
            w = ctx.first_weights()
            delta = (x - base) @ w
        for alpha, weight in zip(alphas, weights, strict=True):
            if base is None:
                at = ctx.at(ctx.scaled(float(alpha)))
            else:
                at = ctx.at(base + float(alpha) * (ctx.dense_features() - base))
            yield float(weight), delta, at.slopes

    def reference(self, ctx):
        base = self._baseline(ctx)
        return ctx.at(ctx.scaled(0.0) if base is None else base).logits


def _secant(steps, dg: DeviceGraph, reference) -> tuple:
    """DeepLift's rescale multipliers per step: ``(σ(z) - σ(z')) / (z - z')``, ``σ'(z)`` where
    ``|z - z'| < 1e-10`` (Captum's ``eps``)."""
    zs = pre_activations(steps, dg)
    refs = pre_activations(steps, dg._replace(features=reference))
    out = []
    for step, z, z0 in zip(steps, zs, refs, strict=True):
        if step.act is None:
            out.append(None)
            continue
        act = ACTIVATIONS[step.act]
        dz = z - z0
        small = jnp.abs(dz) < 1e-10
        rescale = (act(z) - act(z0)) / jnp.where(small, 1.0, dz)
        out.append(jnp.where(small, unit_derivative(step.act, z), rescale))
    return tuple(out)


SECANT = Kernel(_secant)


class DeepLift(Method):
    """Captum's ``DeepLift`` (rescale rule) with a zero baseline on a model whose nonlinearities
    are activation modules: the unit derivatives become secant slopes between the input and the
    baseline, so ``Σ_φ A = Z(X) - Z(0)`` exactly."""

    name = "deeplift"
    complete = True

    def terms(self, ctx):
        zero = ctx.scaled(0.0)
        fn, secs = SECANT.compiled(ctx.steps, ctx.dg, zero)
        ctx.compile_s += secs
        return [(1.0, ctx.gp.p, fn(ctx.steps, ctx.dg, zero))]

    def reference(self, ctx):
        return ctx.at(ctx.scaled(0.0)).logits


class SmoothGrad(Method):
    """Captum's ``NoiseTunnel(base, nt_type="smoothgrad")``: the mean of the base method
    (``"saliency"`` or ``"nam"``, Captum's ``InputXGradient``, which multiplies by the noisy
    input) at ``X + ε_s``, ``s = 1..nt_samples``, ``ε_s ~ N(0, stdevs²)`` elementwise (``stdevs``
    absolute). The noise is drawn from ``jax.random.key(seed)``, or given as ``noise``
    ``(nt_samples, N, F)`` (e.g. to reproduce torch's draws)."""

    name = "smoothgrad"

    def __init__(
        self,
        base: str = "saliency",
        nt_samples: int = 5,
        stdevs: float = 1.0,
        seed: int = 0,
        noise=None,
    ):
        if base not in ("saliency", "nam"):
            raise OptionError(f"base must be 'saliency' or 'nam', got {base!r}")
        if isinstance(nt_samples, bool) or int(nt_samples) != nt_samples or nt_samples < 1:
            raise OptionError(f"nt_samples must be a positive integer, got {nt_samples!r}")
        if not float(stdevs) >= 0:
            raise OptionError(f"stdevs must be >= 0, got {stdevs!r}")
        self.base, self.nt_samples, self.stdevs, self.seed = base, int(nt_samples), stdevs, seed
        self.noise = noise
        self.readout = "saliency" if base == "saliency" else "contract"

    @property
    def num_terms(self) -> int:
        return self.nt_samples

    def options(self):
        return {
            "base": self.base,
            "nt_samples": self.nt_samples,
            "stdevs": float(self.stdevs),
            "seed": None if self.noise is not None else int(self.seed),
            "noise": "given" if self.noise is not None else "drawn",
        }

    def terms(self, ctx):
        x = ctx.dense_features()
        if self.noise is not None:
            noise = np.asarray(self.noise)
            if noise.shape != (self.nt_samples, *x.shape):
                raise OptionError(
                    f"noise must have shape {(self.nt_samples, *x.shape)}, got {noise.shape}"
                )
        key = jax.random.key(self.seed)
        for s in range(self.nt_samples):
            if self.noise is not None:
                eps = jnp.asarray(noise[s], ctx.dtype)
            else:
                eps = self.stdevs * jax.random.normal(
                    jax.random.fold_in(key, s), x.shape, ctx.dtype
                )
            at = ctx.at(x + eps)
            yield 1.0 / self.nt_samples, at.p, at.slopes


class Occlusion(Method):
    """The exact drop ``Z[a, c] - Z[a, c](φ deleted)`` for every source ``φ``, computed by the
    local deletion sweep (:mod:`namjax.engine.sweep`). ``mode="remove"`` (default) deletes the
    node with its edges (the target itself is never removed: its score is 0);
    ``mode="zero"`` zeroes its features (the target's own features included), which is
    Captum's ``FeatureAblation`` with one feature group per node and baseline 0."""

    name = "occlusion"
    readout = "sweep"

    def __init__(self, mode: str = "remove"):
        if mode not in MODES:
            raise OptionError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode

    def options(self):
        return {"mode": self.mode}

    def scores(self, ctx: Context, kh) -> np.ndarray:
        """``(P, C)`` drops in ``kh``'s pair layout."""
        steps = cast_steps(ctx.steps, jnp.float32)
        packed = pack(ctx.graph, kh, first_inputs(ctx.model, ctx.graph))
        drops = []
        for pk in packed:
            z = pk.occlusion(steps, self.mode, delete_target=self.mode == "zero")
            drops.append(z[:, :1] - z[:, 1:])  # column 0: nothing deleted
        return unpack(packed, drops, kh.num_pairs)


METHODS: dict[str, type[Method]] = {
    cls.name: cls for cls in (NAM, Saliency, IntegratedGradients, DeepLift, SmoothGrad, Occlusion)
}
"""The methods by name."""


def make_method(method: str | Method, **options) -> Method:
    """The method called ``method`` with ``options`` (one-line :class:`OptionError` for an
    unknown name or option)."""
    if isinstance(method, Method):
        if options:
            raise OptionError("give options either to the method object or by keyword, not both")
        return method
    if method not in METHODS:
        raise OptionError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    cls = METHODS[method]
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    known = [p.name for p in inspect.signature(cls).parameters.values() if p.kind in named]
    unknown = sorted(set(options) - set(known))
    if unknown:
        choices = ", ".join(known) if known else "none"
        raise OptionError(f"{method} has no option {unknown[0]!r} (its options: {choices})")
    return cls(**options)
