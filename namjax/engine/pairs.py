"""The pairs engine: forward mode from every source at once, shared by all targets.

Level ``l`` of a chunk (:mod:`namjax.engine.plan`) holds, for each pair ``(v, φ)``, the part of
``z`` at ``v`` that flows from source ``φ`` (an ``h``-vector). Level 0 is ``P[φ]``; each
propagating step is one gather, one segment sum over the pair edges ``(w, φ) → (v, φ)`` weighted
by the step's operator values at their pattern entries, and each later step first applies the
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

import time

import jax
import numpy as np

from namjax.engine.globalpass import GlobalPass
from namjax.engine.plan import Chunk, padded_chunks, plan_chunk, split_targets
from namjax.graph import Graph
from namjax.kernel import Kernel
from namjax.layers import Step, step_widths
from namjax.model import multiply
from namjax.subgraph import KHop


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


def run_pairs(
    gp: GlobalPass,
    kh: KHop,
    ranges: list[tuple[int, int]],
    plans: list[Chunk],
    *,
    p0: jax.Array | None = None,
    slopes: tuple | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, dict]:
    """``(P, C)`` contributions in ``kh``'s pair layout, and stats: :func:`contract` over the
    planned chunks with ``p0`` and ``slopes`` (default: the global pass's ``P`` and ``σ'``)."""
    t0 = time.perf_counter()
    k = kh.depth
    num_entries = gp.num_entries
    chunks = padded_chunks(plans, num_entries)
    real = sum(sum(c.shape) for c in plans)
    stats = {
        "chunks": len(chunks),
        "pairs": kh.num_pairs,
        "edges": sum(sum(c.shape[k + 1 :]) for c in plans),
        "padding_overhead": sum(sum(c.shape) for c in chunks) / real,
    }
    p0 = gp.p if p0 is None else p0
    slopes = gp.slopes if slopes is None else slopes
    fn, secs = CONTRACT.compiled(gp.steps, gp.values, p0, slopes, chunks[0])
    stats["compile_s"], stats["compiled"] = secs, int(secs > 0)
    stats["extract_s"] = time.perf_counter() - t0 - secs
    t0 = time.perf_counter()
    results = [fn(gp.steps, gp.values, p0, slopes, c) for c in chunks]  # dispatched async
    parts = [
        np.asarray(res)[: kh.offsets[b] - kh.offsets[a]]
        for (a, b), res in zip(ranges, progress_bar(results, progress, len(chunks)), strict=True)
    ]
    stats["device_s"] = time.perf_counter() - t0
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)), stats


def progress_bar(items, enabled: bool, total: int):
    """``items`` wrapped in a tqdm bar over ``total`` chunks on stderr when ``enabled``."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc="explain", unit="chunk", leave=False)
