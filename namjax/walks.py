"""Walks: a contribution split over the paths it travels, and the walks' LRP-γ relevance.

``C(φ→a, ·)`` is the sum, over every walk ``φ = v0 → v1 → … → vK = a`` of ``A + I``, of
``P[φ]`` pushed through each step: the step's operator entries ``Op_t[v_{l+1}, v_l]`` on a
propagating step, the unit derivatives ``σ'`` at the walk's node and the weights
(``rule="gradient"``). A walk is active when every node it passes after a step with an
activation has at least one unit with ``σ' ≠ 0`` and every entry it crosses is non-zero;
inactive walks contribute nothing and are left out.

``rule="lrp_gamma"`` gives instead each walk's relevance by GNN-LRP (Schnake et al. 2021,
"Higher-order explanations of graph neural networks via relevant walks"): the logit
``Z[a, c]`` is redistributed backwards with the LRP-γ rule (weights and biases ``ρ(w) = w +
γ w⁺``), at each propagating step only through the walk's entry; activations pass relevance
unchanged. With ``γ = 0`` (LRP-0) a walk's relevance is its gradient contribution.

Walks of many (target, source) pairs come from one global pass and are evaluated as arrays.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from namjax.errors import OptionError
from namjax.graph import Graph
from namjax.kernel import Kernel
from namjax.layers import ACTIVATIONS
from namjax.methods import Context
from namjax.model import GNN, apply_term, pre_activations
from namjax.subgraph import expand, khop

RULES = ("gradient", "lrp_gamma")


def paths(
    model: GNN,
    graph: Graph,
    target: int,
    source: int,
    *,
    rule: str = "gradient",
    gamma: float = 0.0,
) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """Every active walk ``source = v0 → … → vK = target`` with its score ``(C,)``.

    With ``rule="gradient"`` the scores sum to ``C(source→target, ·)`` (computed in float64 on
    the host from the model's float32 quantities); with ``rule="lrp_gamma"`` they are the
    walks' LRP-γ relevance (``gamma >= 0``).
    """
    return walks(model, graph, [(target, source)], rule=rule, gamma=gamma)[0]


def walks(
    model: GNN,
    graph: Graph,
    pairs,
    *,
    rule: str = "gradient",
    gamma: float = 0.0,
) -> list[list[tuple[tuple[int, ...], np.ndarray]]]:
    """:func:`paths` of each ``(target, source)`` in ``pairs`` (``(M, 2)``), from one global
    pass: a list, per pair, of ``(walk, scores (C,))``."""
    if rule not in RULES:
        raise OptionError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    if not float(gamma) >= 0:
        raise OptionError(f"gamma must be >= 0, got {gamma!r}")
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    graph.check_nodes(pairs.ravel())
    k = model.config.depth
    ctx = Context.create(model, graph)
    table = _walk_table(graph, pairs, k)
    if rule == "gradient":
        values, active = _gradient(ctx, table)
    else:
        values, active = _lrp(ctx, table, float(gamma))
    owner = table["owner"]
    out: list[list] = [[] for _ in range(len(pairs))]
    for i in np.flatnonzero(active):
        out[owner[i]].append((tuple(int(v) for v in table["walks"][i]), values[i]))
    return out


def _walk_table(graph: Graph, pairs: np.ndarray, k: int) -> dict:
    """Every walk of ``A + I`` of length ``k`` from each pair's source to its target, as a
    ``(W, k + 1)`` array with the pair each belongs to and the pattern entries it crosses."""
    pattern = graph.pattern
    targets, first = np.unique(pairs[:, 0], return_inverse=True)
    kh = khop(graph, targets, k)
    walks = pairs[:, 1:2]
    owner = np.arange(len(pairs))
    for step in range(1, k + 1):  # extend walks that can still reach their target in time
        rows, entry = expand(pattern.indptr, walks[:, -1])
        nxt = pattern.indices[entry]
        t = first[owner[rows]]
        local = kh.local_index(t, nxt)
        ok = local >= 0
        ok[ok] = kh.hops[kh.offsets[t[ok]] + local[ok]] <= k - step
        walks = np.column_stack([walks[rows[ok]], nxt[ok]])
        owner = owner[rows[ok]]
    entries = np.stack([_entry(pattern, walks[:, i + 1], walks[:, i]) for i in range(k)], 1)
    return {"walks": walks, "owner": owner, "entries": entries.reshape(len(walks), k)}


def _entry(pattern, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Positions of the entries ``(rows, cols)`` of the pattern (all present)."""
    keys = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr)) * pattern.shape[0]
    keys = keys + pattern.indices
    return np.searchsorted(keys, rows * pattern.shape[0] + cols)


def _gradient(ctx: Context, table: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(W, C)`` gradient contributions of the walks, and which are active."""
    walks, entries = table["walks"], table["entries"]
    gp = ctx.gp
    p = np.asarray(gp.p, np.float64)
    slopes = [None if s is None else np.asarray(s, np.float64) for s in gp.slopes]
    values = [[np.asarray(v, np.float64) for v in vs] for vs in gp.values]
    level, active = 0, np.ones(len(walks), bool)
    x = p[walks[:, 0]]
    for s, step in enumerate(gp.steps):
        if s == 0:
            inputs = np.split(x, len(step.terms), axis=1)
        else:
            if slopes[s - 1] is not None:
                mask = slopes[s - 1][walks[:, level]]
                active &= mask.any(axis=1)
                x = x * mask
            inputs = [
                x if t.weight is None else x @ np.asarray(t.weight, np.float64) for t in step.terms
            ]
        if step.local:
            x = sum(float(sum(t.coefs)) * v for t, v in zip(step.terms, inputs, strict=True))
            continue
        weights = [w[entries[:, level]] for w in values[s]]
        active &= np.any([w != 0 for w in weights], axis=0)
        x = sum(w[:, None] * v for w, v in zip(weights, inputs, strict=True))
        level += 1
    return x, active


def _rho(x, gamma: float):
    return x + gamma * jnp.maximum(x, 0.0)


def _lrp_state(steps, dg, gamma: float) -> tuple:
    """Per step: its input activations ``a`` ``(N, d_in)`` (the first step's: ``X``, left
    out), the γ-denominators ``z^ρ`` ``(N, d_out)`` and the first step's ``X ρ(W_t)``."""
    zs = pre_activations(steps, dg)
    inputs, denominators, first = [], [], None
    h = None
    for s, step in enumerate(steps):
        rho_terms = [
            t if t.weight is None else dataclasses.replace(t, weight=_rho(t.weight, gamma))
            for t in step.terms
        ]
        if s == 0:
            xs = [dg.features @ t.weight for t in rho_terms]
            first = jnp.concatenate(xs, axis=1)
        else:
            xs = [h if t.weight is None else h @ t.weight for t in rho_terms]
        z = sum(apply_term(t, dg, x) for t, x in zip(rho_terms, xs, strict=True))
        denominators.append(z if step.bias is None else z + _rho(step.bias, gamma))
        inputs.append(h)
        h = zs[s] if step.act is None else ACTIVATIONS[step.act](zs[s])
    return tuple(inputs), tuple(denominators), first, zs[-1]


LRP_STATE = Kernel(_lrp_state, static_argnames=("gamma",))


def _lrp(ctx: Context, table: dict, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """``(W, C)`` LRP-γ relevance of the walks (per class), and which are non-zero."""
    walks, entries = table["walks"], table["entries"]
    steps, gp = ctx.steps, ctx.gp
    fn, _ = LRP_STATE.compiled(steps, ctx.dg, gamma=gamma)
    inputs, denominators, first, logits = jax.tree.map(
        lambda x: np.asarray(x, np.float64), fn(steps, ctx.dg)
    )
    values = [[np.asarray(v, np.float64) for v in vs] for vs in gp.values]
    depth = sum(not s.local for s in steps)
    c = logits.shape[1]
    target = walks[:, -1]
    relevance = np.zeros((len(walks), c, c))  # (walk, class explained, unit)
    relevance[:, np.arange(c), np.arange(c)] = logits[target]
    level = depth
    for s in range(len(steps) - 1, -1, -1):
        step = steps[s]
        receiver = walks[:, level]
        z = denominators[s][receiver][:, None, :]  # (W, 1, d_out)
        share = np.divide(relevance, z, out=np.zeros_like(relevance), where=z != 0)
        if step.local:
            senders = receiver
            scale = [np.full(len(walks), float(sum(t.coefs))) for t in step.terms]
        else:
            level -= 1
            senders = walks[:, level]
            scale = [w[entries[:, level]] for w in values[s]]
        if s == 0:  # Σ over the source's features of X ρ(W): the first step's ρ-inputs
            blocks = np.split(first[senders], len(step.terms), axis=1)
            parts = [
                sc[:, None] * np.einsum("wck,wk->wc", share, b)
                for sc, b in zip(scale, blocks, strict=True)
            ]
            return sum(parts), np.any(relevance != 0, axis=(1, 2))
        a = inputs[s][senders]  # (W, d_in)
        relevance = sum(
            sc[:, None, None]
            * a[:, None, :]
            * np.einsum("wck,jk->wcj", share, _rho_weight(t, a, gamma))
            for sc, t in zip(scale, step.terms, strict=True)
        )
    raise OptionError("the model has no steps")


def _rho_weight(t, a: np.ndarray, gamma: float) -> np.ndarray:
    """``ρ(W_t)`` in float64 (the identity for a term without weight)."""
    if t.weight is None:
        return np.eye(a.shape[1])
    return np.asarray(_rho(t.weight, gamma), np.float64)
