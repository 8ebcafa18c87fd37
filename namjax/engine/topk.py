"""Top-k selection per (target, class) on an accelerator: one stable segmented sort, and only
the kept entries leave the device.

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


def _kept(segments: jax.Array, starts: jax.Array, values: jax.Array, k: int, count: int):
    """The top-k of ``values (P, Q)`` (:func:`_segment_topk`) as what leaves the device: the
    flat row-major positions of the first ``count`` kept entries (``P * Q`` beyond the kept
    ones), their values, and each segment's sum of the dropped values ``(S, Q)``."""
    keep = _segment_topk(segments, starts, values, k)
    flat = jnp.flatnonzero(keep, size=count, fill_value=keep.size)
    kept = values.ravel().at[flat].get(mode="fill", fill_value=0)
    dropped = jax.ops.segment_sum(
        jnp.where(keep, 0, values), segments, num_segments=starts.shape[0]
    )
    return flat, kept, dropped


SEGMENT_TOPK = Kernel(_kept, static_argnames=("k", "count"))


def device_topk(
    offsets: np.ndarray, contributions: jax.Array, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-k of ``contributions (P, Q)`` (a device array) selected on its device, as
    :func:`namjax.attribution.select_topk` returns it: the kept entries' flat row-major
    positions ``(R,)`` and values, and each target's sum of the dropped ones ``(T, Q)`` (summed
    on the device in its dtype). Only these leave the device. Rows, segments and the kept count
    are padded to 8 steps per power of two, so a job compiles a few shapes."""
    p, q = contributions.shape
    sizes = np.diff(offsets)
    t = len(sizes)
    rows, segs = round_up(p, minimum=1024), round_up(t + 1, minimum=64)
    segments = np.full(rows, t, np.int32)  # padding rows form segment t, sorted last
    segments[:p] = np.repeat(np.arange(t, dtype=np.int32), sizes)
    starts = np.full(segs, p, np.int32)
    starts[:t] = offsets[:-1]
    values = jnp.pad(jnp.asarray(contributions, jnp.float32), ((0, rows - p), (0, 0)))
    count = int(np.minimum(sizes, k).sum()) * q  # exactly what the selection keeps
    flat, kept, dropped = SEGMENT_TOPK(
        segments, starts, values, k=k, count=round_up(count, minimum=1024)
    )
    # the real rows come first in row-major order, the padding segment's last
    return (
        np.asarray(flat[:count]).astype(np.int64),
        np.asarray(kept[:count]),
        np.asarray(dropped[:t]).astype(np.float64),
    )
