"""The public verbs :func:`explain` (every attribution method) and :func:`nam`, and the assembly of engine output into an
:class:`~namjax.attribution.Attribution`.

For a target ``a``, class ``c`` and source node ``φ`` the Node Attribution Method gives
``C(φ→a, c) = Σ_i X[φ,i] ∂Z[a,c]/∂X[φ,i]`` (gradient x input summed over ``φ``'s features,
pre-softmax logits, dropout off): non-zero only within K hops of ``a``, and equal to the sum,
over every walk ``φ = v0 → v1 → … → vK = a`` of ``A + I``, of ``P[φ]`` pushed through the
model's operators, active units and weights (see :func:`namjax.paths`). The engines
(:mod:`namjax.engine`) compute it for all targets and all classes at once.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from namjax.attribution import Attribution
from namjax.checks import check_choice, check_classes, check_features, check_targets
from namjax.engine.pairs import DEFAULT_CHUNK_BUDGET, pair_plan, run_pairs
from namjax.engine.subgraph import run_subgraphs
from namjax.errors import GraphError, OptionError
from namjax.graph import Graph
from namjax.methods import Context, Method, make_method
from namjax.model import GNN, model_fingerprint
from namjax.subgraph import KHop, khop

ENGINES = ("pairs", "subgraph")


def class_slots(
    classes: str | int, logits: np.ndarray, labels: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """``(T, Q)`` class id of each requested slot for a checked class choice
    (:func:`namjax.checks.check_classes`), given the targets' ``logits (T, C)``, ``labels (T,)``
    and ids ``targets (T,)`` (for messages). With ``"true"``, a target without a known label
    raises :class:`~namjax.errors.GraphError`."""
    num_t, num_c = logits.shape
    if classes == "all":
        return np.broadcast_to(np.arange(num_c), (num_t, num_c)).copy()
    if classes == "predicted":
        return logits.argmax(1)[:, None].astype(np.int64)
    if classes == "true":
        unknown = np.flatnonzero(labels < 0)
        if unknown.size:
            raise GraphError(f"classes='true' but target {targets[unknown[0]]} has no known label")
        return labels[:, None].astype(np.int64)
    return np.full((num_t, 1), int(classes), np.int64)


def explain(
    model: GNN,
    graph: Graph,
    method: str | Method = "nam",
    targets=None,
    classes: str | int = "all",
    *,
    engine: str = "pairs",
    chunk_budget_bytes: int = DEFAULT_CHUNK_BUDGET,
    dtype=jnp.float32,
    progress: bool = False,
    **options,
) -> Attribution:
    """Node-level scores of every node within K hops of each target, for the requested classes,
    by one attribution ``method`` (:data:`namjax.methods.METHODS`: ``"nam"``, ``"saliency"``,
    ``"integrated_gradients"``, ``"deeplift"``, ``"smoothgrad"``, ``"occlusion"``; its
    ``options`` as keywords, e.g. ``n_steps=50``), all targets x all classes at once.

    Args:
        model: a :class:`~namjax.model.GNN` (dropout is ignored: attributions explain the
            deterministic model).
        graph: the graph the model runs on (same feature width).
        method: a method name or a :class:`~namjax.methods.Method`.
        targets: node ids ``(T,)`` (unique), default all nodes.
        classes: ``"all"`` (Q = C slots), ``"predicted"``, ``"true"`` or a class id (Q = 1).
        engine: ``"pairs"`` (forward mode over shared (node, source) pair levels, the default)
            or ``"subgraph"`` (per-target reverse mode vmapped over padded K-hop subgraphs; NAM
            only). Both give the same contributions.
        chunk_budget_bytes: approximate device memory budget per chunk of targets.
        dtype: compute dtype (float32 by default).
        progress: show a tqdm bar over chunks on stderr.

    Returns:
        an :class:`~namjax.attribution.Attribution` recording the method and its options; its
        ``bias`` is the method's reference term (:mod:`namjax.methods`), its ``stats`` the phase
        timings in seconds (``extract_s`` host planning, ``forward_s`` global pass (dispatch
        and the final wait for its logits: it runs on the device while the host plans),
        ``compile_s``, ``device_s``, ``total_s``), ``compiled`` (new compilations),
        ``chunks``, ``pairs``, ``edges`` (pair edges over all levels, or subgraph edges),
        ``padding_overhead`` (padded / real slots), ``terms`` (engine passes summed) and
        ``plan_cached`` (the pairs plan came from :func:`namjax.engine.pairs.pair_plan`'s
        cache: same graph, targets and model shape as a recent call); the
        subgraph engine adds ``buckets`` and ``edge_padding_overhead``.
    """
    t_start = time.perf_counter()
    algorithm = make_method(method, **options)
    check_choice("engine", engine, ENGINES)
    if engine == "subgraph" and algorithm.name != "nam":
        raise OptionError(f"engine='subgraph' computes NAM only, not {algorithm.name}")
    check_features(model, graph)
    targets = check_targets(graph, targets)
    classes = check_classes(classes, model.config.num_classes)
    labels = graph.labels[targets].astype(np.int64)
    class_slots(classes, np.zeros((len(targets), 1)), labels, targets)  # fails before the work

    t0 = time.perf_counter()
    ctx = Context.create(model, graph, dtype)  # runs on the device while the host plans
    forward_s = time.perf_counter() - t0 - ctx.compile_s
    t0 = time.perf_counter()
    cached = False
    if engine == "pairs" and algorithm.readout != "sweep":
        planned, cached = pair_plan(
            graph, targets, ctx.steps, ctx.gp.num_entries, chunk_budget_bytes
        )
        kh = planned.kh
        extract_s = time.perf_counter() - t0
        weights = ctx.first_weights() if algorithm.readout == "saliency" else None
        full, stats = run_pairs(
            ctx.gp,
            planned,
            terms=algorithm.terms(ctx),
            readout=algorithm.readout,
            first_weights=weights,
            progress=progress,
        )
    else:
        kh = khop(graph, targets, model.config.depth)
        extract_s = time.perf_counter() - t0
        if algorithm.readout == "sweep":
            stats = {"compile_s": 0.0, "compiled": 0, "pairs": kh.num_pairs, "extract_s": 0.0}
            t0 = time.perf_counter()
            full = algorithm.scores(ctx, kh).astype(np.dtype(ctx.dtype))
            stats["device_s"] = time.perf_counter() - t0
        else:
            full, stats = run_subgraphs(graph, kh, ctx.gp, chunk_budget_bytes, progress)
    stats["plan_cached"] = cached
    t0 = time.perf_counter()
    reference = algorithm.reference(ctx)
    logits, bias = np.asarray(ctx.gp.logits)[targets], np.asarray(reference)[targets]
    stats["extract_s"] += extract_s
    stats["forward_s"] = forward_s + time.perf_counter() - t0
    stats["compile_s"] += ctx.compile_s
    stats["compiled"] += int(ctx.compile_s > 0)
    att = assemble(
        kh,
        full,
        logits,
        bias,
        labels,
        classes,
        graph=graph,
        model=model,
        method=algorithm.name,
        options=algorithm.options() | ({"engine": engine} if algorithm.name == "nam" else {}),
    )
    stats["total_s"] = time.perf_counter() - t_start
    att.stats.update(stats)
    return att


def nam(
    model: GNN,
    graph: Graph,
    targets=None,
    classes: str | int = "all",
    *,
    engine: str = "pairs",
    chunk_budget_bytes: int = DEFAULT_CHUNK_BUDGET,
    dtype=jnp.float32,
    progress: bool = False,
) -> Attribution:
    """NAM contributions ``C(φ→a, c)`` of every node within K hops of each target:
    :func:`explain` with ``method="nam"`` (see there for the arguments and the result)."""
    return explain(
        model,
        graph,
        "nam",
        targets,
        classes,
        engine=engine,
        chunk_budget_bytes=chunk_budget_bytes,
        dtype=dtype,
        progress=progress,
    )


def assemble(
    kh: KHop,
    full: np.ndarray,
    logits: np.ndarray,
    bias: np.ndarray,
    labels: np.ndarray,
    classes: str | int,
    *,
    graph: Graph,
    model: GNN,
    method: str,
    options: dict,
) -> Attribution:
    """An :class:`Attribution` from engine output: ``full (P, C)`` scores in ``kh``'s pair
    layout (a host array, or a device array that stays on its device), the targets' ``logits``
    and ``bias`` ``(T, C)`` and ``labels (T,)``, keeping the slots of the class choice
    ``classes``."""
    slots = class_slots(classes, logits, labels, kh.targets)
    xp = jnp if isinstance(full, jax.Array) else np  # scores left on a device stay there
    contributions = full if classes == "all" else xp.take_along_axis(full, slots[kh.pair_target], 1)
    return Attribution(
        targets=kh.targets,
        offsets=kh.offsets,
        sources=kh.nodes,
        hops=kh.hops,
        contributions=contributions,
        classes=slots,
        logits=np.take_along_axis(logits, slots, axis=1),
        bias=np.take_along_axis(bias, slots, axis=1),
        predicted=logits.argmax(1).astype(np.int64),
        labels=labels,
        num_nodes=graph.num_nodes,
        depth=kh.depth,
        method=method,
        options=options,
        class_choice=str(classes),
        graph_fingerprint=graph.fingerprint,
        model_fingerprint=model_fingerprint(model),
        origin=(model, graph),
    )
