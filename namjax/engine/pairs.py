"""The pairs engine: forward mode from every source at once, shared by all targets.

Level ``l`` of a chunk (:mod:`namjax.engine.plan`) holds, for each pair ``(v, φ)``, the part of
``z`` at ``v`` that flows from source ``φ`` (an ``h``-vector). Level 0 is ``P[φ]``; each
propagating step is one gather, one segment sum over the pair edges ``(w, φ) → (v, φ)`` weighted
by the step's operator values at their pattern entries (level 1 holds one pair per pattern
entry, so there it is a gather only), and each later step first applies the
previous step's unit derivatives and the step's weights; node-local steps transform a level in
place. At level K the pairs are (target, source) and the values are ``C(φ→a, ·)``. Carrying
``h``-vectors per pair (rather than ``C x h`` cotangents per pair, as per-target reverse mode
would) and sharing the partial walks of all targets keeps the work at about
``#pair-edges x h`` and avoids per-target padding.

The computation is linear in the level-0 vectors and takes the unit derivatives as inputs, so
it serves every gradient method: NAM (``P`` and ``σ'``), integrated gradients (``σ'`` along the
path), DeepLift (secant slopes), SmoothGrad (noisy inputs) and, over basis directions, the
full gradient.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from namjax.engine.globalpass import GlobalPass
from namjax.engine.plan import Chunk, padded_chunks, plan_chunk, split_targets
from namjax.graph import Graph
from namjax.kernel import Kernel
from namjax.layers import Step, step_widths
from namjax.model import multiply
from namjax.subgraph import KHop, khop


def contract(
    steps: tuple[Step, ...],
    values: tuple[tuple[jax.Array, ...], ...],
    p0: jax.Array,
    slopes: tuple[jax.Array | None, ...],
    chunk: Chunk,
) -> jax.Array:
    """``(n_K, C)``: for each (target, source) pair of the chunk and each class,
    ``Σ_j p0[φ, j] ∂Z[a, c]/∂P[φ, j]`` with every step's unit derivatives taken from ``slopes``.

    ``p0 (N, D0)`` is laid out like :attr:`GlobalPass.p` (one block per first-step term);
    ``values`` are the terms' operator values on the pattern (:attr:`GlobalPass.values`).
    """
    level = 0
    x = p0[chunk.nodes[0]]
    for s, step in enumerate(steps):
        if s == 0:
            inputs = list(jax.numpy.split(x, len(step.terms), axis=1))
        else:
            if slopes[s - 1] is not None:
                x = x * slopes[s - 1][chunk.nodes[level]]
            inputs = [multiply(t, x) for t in step.terms]
        if step.local:
            x = sum(sum(t.coefs) * v for t, v in zip(step.terms, inputs, strict=True))
            continue
        level += 1
        src, dst, pos = chunk.edges[level - 1]
        messages = sum(w[pos][:, None] * v[src] for w, v in zip(values[s], inputs, strict=True))
        if level == 1 and chunk.ordered:  # one edge per pair, in pair order: nothing to sum
            x = messages
        else:
            x = jax.ops.segment_sum(messages, dst, num_segments=chunk.sizes[level])
    return x


CONTRACT = Kernel(contract)
""":func:`contract` as a counted, cached kernel (one compilation per chunk shape and model)."""

DEFAULT_CHUNK_BUDGET = 256 * 2**20


def level_widths(steps: tuple[Step, ...]) -> tuple[int, ...]:
    """The width of the vectors each propagating step leaves at its level."""
    return tuple(w for s, w in zip(steps, step_widths(steps), strict=True) if not s.local)


def plan(graph: Graph, kh: KHop, steps: tuple[Step, ...], budget: int) -> tuple[list, list]:
    """The chunks of ``kh``'s targets: ranges ``(start, stop)`` and their unpadded
    :class:`Chunk` s, each within about ``budget`` bytes of device memory for ``steps``."""
    ranges = split_targets(kh, level_widths(steps), budget)
    return ranges, [plan_chunk(graph, kh.rows(a, b)) for a, b in ranges]


@dataclass(frozen=True, eq=False)
class PairPlan:
    """Everything a pairs-engine call needs besides the weights: the targets' K-hop layout,
    the target ranges of the chunks and the chunks padded to one shape, on the device.

    It depends on the graph, the targets, the depth, the level widths, the operators' entry
    count and the chunk budget only, so calls with other models of that shape, other methods or
    classes reuse it (:func:`pair_plan`)."""

    kh: KHop
    ranges: list[tuple[int, int]]
    chunks: list[Chunk]
    edges: int
    padding_overhead: float

    @cached_property
    def nbytes(self) -> int:
        return sum(x.nbytes for x in jax.tree.leaves(self.chunks))


PLAN_CACHE_ENTRIES = 4
PLAN_CACHE_BYTES = 512 * 2**20
"""The pair plans kept for reuse (least recently used dropped first), at most this many bytes
of padded chunks in all; a larger plan is not kept."""
_PLANS: OrderedDict[tuple, PairPlan] = OrderedDict()


def pair_plan(
    graph: Graph, targets: np.ndarray, steps: tuple[Step, ...], num_entries: int, budget: int
) -> tuple[PairPlan, bool]:
    """The :class:`PairPlan` of ``targets (T,)`` on ``graph`` for models with ``steps``, and
    whether it came from the cache (keyed by the graph's fingerprint, a hash of the targets,
    the depth, the level widths, ``num_entries`` and ``budget``)."""
    widths = level_widths(steps)
    digest = hashlib.blake2b(np.ascontiguousarray(targets, np.int64).tobytes(), digest_size=16)
    key = (graph.fingerprint, digest.hexdigest(), len(widths), widths, num_entries, budget)
    if key in _PLANS:
        _PLANS.move_to_end(key)
        return _PLANS[key], True
    kh = khop(graph, targets, len(widths))
    ranges, plans = plan(graph, kh, steps, budget)
    padded = padded_chunks(plans, num_entries)
    real = sum(sum(c.shape) for c in plans)
    found = PairPlan(
        kh=kh,
        ranges=ranges,
        chunks=jax.device_put(padded),
        edges=sum(sum(c.shape[kh.depth + 1 :]) for c in plans),
        padding_overhead=sum(sum(c.shape) for c in padded) / real,
    )
    if found.nbytes <= PLAN_CACHE_BYTES:
        _PLANS[key] = found
        while len(_PLANS) > PLAN_CACHE_ENTRIES or sum(p.nbytes for p in _PLANS.values()) > (
            PLAN_CACHE_BYTES
        ):
            _PLANS.popitem(last=False)
    return found, False


def clear_plans() -> None:
    """Forget every cached :class:`PairPlan`."""
    _PLANS.clear()


def saliency(
    steps: tuple[Step, ...],
    values: tuple[tuple[jax.Array, ...], ...],
    p0: jax.Array,
    slopes: tuple[jax.Array | None, ...],
    chunk: Chunk,
    weights: jax.Array,
) -> jax.Array:
    """``(n_K, C)``: ``Σ_i |∂Z[a, c]/∂X[φ, i]|`` for each (target, source) pair of the chunk,
    with the unit derivatives ``slopes``; ``weights (F, D0)`` are the first step's weights
    ``[W_1 | ...]`` (``∂Z/∂X[φ] = W ∂Z/∂P[φ]``). ``p0`` only gives ``P``'s shape.

    The Jacobian ``∂Z/∂P[φ]`` is :func:`contract` along each of the ``D0`` basis directions
    (one at a time, so memory stays one contraction's); the F-wide product and its absolute
    values are taken in blocks of pairs.
    """
    d0 = p0.shape[1]

    def direction(j):
        basis = jnp.broadcast_to(jax.nn.one_hot(j, d0, dtype=p0.dtype), p0.shape)
        return contract(steps, values, basis, slopes, chunk)

    grads = jax.lax.map(direction, jnp.arange(d0))  # (D0, n_K, C)
    n, c = grads.shape[1:]
    block = max(1, min(n, SALIENCY_BLOCK // max(1, c * weights.shape[0])))
    padded = -(-n // block) * block
    grads = jnp.pad(grads, ((0, 0), (0, padded - n), (0, 0))).reshape(d0, -1, block, c)
    blocks = jnp.moveaxis(grads, 1, 0)  # (blocks, D0, block, C)
    out = jax.lax.map(lambda g: jnp.abs(jnp.einsum("dpc,fd->pcf", g, weights)).sum(-1), blocks)
    return out.reshape(padded, c)[:n]


SALIENCY = Kernel(saliency)
""":func:`saliency` as a counted, cached kernel."""
SALIENCY_BLOCK = 1 << 22  # floats of one block of the F-wide product (16 MB in float32)

READOUTS = {"contract": CONTRACT, "saliency": SALIENCY}
"""What a term computes per (target, source) pair: ``Σ_j p0[φ, j] ∂Z/∂P[φ, j]`` or
``Σ_i |∂Z/∂X[φ, i]|``."""


def run_pairs(
    gp: GlobalPass,
    planned: PairPlan,
    *,
    terms=None,
    readout: str = "contract",
    first_weights: jax.Array | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, dict]:
    """``(P, C)`` scores in the plan's pair layout, and stats: ``Σ_k w_k readout(p0_k,
    slopes_k)`` over ``terms`` ``(w_k, p0_k, slopes_k)`` (default: the global pass's ``(1, P,
    σ')``, i.e. NAM), for every planned chunk. ``readout`` is ``"contract"`` or ``"saliency"``
    (which needs ``first_weights``)."""
    kh, chunks = planned.kh, planned.chunks
    stats = {
        "chunks": len(chunks),
        "pairs": kh.num_pairs,
        "edges": planned.edges,
        "padding_overhead": planned.padding_overhead,
        "compile_s": 0.0,
        "compiled": 0,
        "terms": 0,
        "extract_s": 0.0,
    }
    terms = [(1.0, gp.p, gp.slopes)] if terms is None else terms
    extra = () if readout == "contract" else (first_weights,)
    kernel = READOUTS[readout]
    t0 = time.perf_counter()
    sums: list = [None] * len(chunks)
    for weight, p0, slopes in terms:
        fn, secs = kernel.compiled(gp.steps, gp.values, p0, slopes, chunks[0], *extra)
        stats["compile_s"] += secs
        stats["compiled"] += int(secs > 0)
        stats["terms"] += 1
        for i, c in enumerate(chunks):  # dispatched asynchronously
            part = fn(gp.steps, gp.values, p0, slopes, c, *extra)
            part = part if weight == 1.0 else weight * part
            sums[i] = part if sums[i] is None else sums[i] + part
    parts = [
        np.asarray(res)[: kh.offsets[b] - kh.offsets[a]]
        for (a, b), res in zip(
            planned.ranges, progress_bar(sums, progress, len(chunks)), strict=True
        )
    ]
    stats["device_s"] = time.perf_counter() - t0 - stats["compile_s"]
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)), stats


def progress_bar(items, enabled: bool, total: int):
    """``items`` wrapped in a tqdm bar over ``total`` chunks on stderr when ``enabled``."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc="explain", unit="chunk", leave=False)
