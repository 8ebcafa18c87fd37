"""Top-k selection per (target, class) on an accelerator: one stable segmented sort.

The host selection (:func:`namjax.attribution.topk_mask`, ``np.partition`` over groups of equal
width) is the faster one on a CPU, where XLA's sort is about 10x slower than it; on a GPU a
sort of the keys ``(target, -|c|)`` is the natural kernel. Both keep the same entries: the
``k`` largest ``|c|`` of each target segment and column, the earlier rows among equal values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from namjax.kernel import Kernel
from namjax.subgraph import round_up


def _segment_topk(segments: jax.Array, starts: jax.Array, values: jax.Array, k: int):
    """``(P, Q)`` bool: per column, the ``k`` largest ``|values|`` of each segment.

    ``segments (P,)`` int32 non-decreasing segment ids, ``starts (S,)`` each segment's first
    row; rows of one segment are ranked by ``|value|`` (a stable sort: earlier rows first among
    ties) and the first ``k`` kept.
    """
    rows = jnp.arange(values.shape[0], dtype=jnp.int32)
    rank = rows - starts[segments]  # the sort keeps each segment's rows in place as a block

    def column(v):
        *_, order = jax.lax.sort((segments, -jnp.abs(v), rows), num_keys=2, is_stable=True)
        return jnp.zeros(v.shape, bool).at[order].set(rank < k)

    return jax.vmap(column, in_axes=1, out_axes=1)(values)


SEGMENT_TOPK = Kernel(_segment_topk, static_argnames=("k",))


def device_topk_mask(offsets: np.ndarray, contributions: np.ndarray, k: int) -> np.ndarray:
    """:func:`namjax.attribution.topk_mask` computed on the default device: rows and segments
    padded to 8 steps per power of two, so a job compiles a few shapes, not one per chunk."""
    p, _ = contributions.shape
    t = len(offsets) - 1
    rows, segs = round_up(p, minimum=1024), round_up(t + 1, minimum=64)
    segments = np.full(rows, t, np.int32)  # padding rows form segment t, sorted last
    segments[:p] = np.repeat(np.arange(t, dtype=np.int32), np.diff(offsets))
    starts = np.full(segs, p, np.int32)
    starts[:t] = offsets[:-1]
    values = np.zeros((rows, contributions.shape[1]), np.float32)
    values[:p] = contributions
    return np.asarray(SEGMENT_TOPK(segments, starts, values, k=k))[:p]
