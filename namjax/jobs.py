"""Batch attribution jobs at scale: chunked, streamed to Parquet, resumable, multi-device and
multi-host.

A job explains a list of targets and writes one Parquet dataset directory::

    OUT/_job.json                      the job's parameters and chunk boundaries
    OUT/targets/part-000017.parquet    one row per (target, class): logit, bias, rest, ...
    OUT/contributions/part-000017.parquet   one row per kept (target, class, source)
    OUT/_SUCCESS                       manifest, written last (by process 0)

The targets are cut into chunks whose boundaries are fixed when the job starts and recorded in
``_job.json``. Each chunk's parts are written under a hidden temporary name and renamed into
place when complete (``targets`` first, ``contributions`` last), so a chunk is finished exactly
when its ``contributions`` part exists. ``resume=True`` recomputes only the chunks without one,
and refuses a directory that holds a job with other parameters.

With ``top_k=k`` only the ``k`` largest ``|contribution|`` per (target, class) are kept; the
``targets`` table holds the bias and the sum of the dropped contributions (``rest``), so
``sum(kept) + rest + bias == logit`` stays checkable.

The chunks run as a pipeline of four threads: while the device computes chunk i, chunk i+1 is
planned, chunk i-1's top-k tables are built and chunk i-2's parts are written (:func:`run`).

Under ``jax.distributed`` (see :func:`initialize_distributed`) process ``p`` of ``n`` computes
the chunks ``i`` with ``i % n == p`` and writes their parts; process 0 writes ``_SUCCESS`` after
a barrier. At every barrier the processes tell each other whether they failed, so one refusing
or failing process stops the others with one line.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import hashlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp

from namjax.attribution import DICTIONARY, SUCCESS_FILE, TABLES, Attribution
from namjax.checks import check_classes, check_features, check_targets, check_top_k
from namjax.engine.pairs import contract, saliency
from namjax.engine.plan import padded_chunks, plan_chunk
from namjax.errors import JobError
from namjax.explainer import assemble, class_slots
from namjax.graph import Graph
from namjax.methods import Context, Method, make_method
from namjax.model import GNN, model_fingerprint
from namjax.outputs import check_output_dir, write_table
from namjax.subgraph import khop

FORMAT_VERSION = 2
JOB_FILE = "_job.json"


@dataclass(frozen=True)
class JobSpec:
    """Everything that determines a job's output; stored in ``_job.json``.

    ``bounds`` are the chunk boundaries: chunk ``i`` explains ``targets[bounds[i]:bounds[i+1]]``.
    """

    graph: str
    model: str
    targets: str
    num_targets: int
    classes: str
    top_k: int | None
    bounds: tuple[int, ...]
    method: str = "nam"
    options: dict = field(default_factory=dict)
    format: int = FORMAT_VERSION

    @property
    def num_chunks(self) -> int:
        return len(self.bounds) - 1

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "bounds": list(self.bounds)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        d = json.loads(text)
        return cls(**{**d, "bounds": tuple(d["bounds"])})


@dataclass(frozen=True)
class JobResult:
    """What one process did: chunks computed here (with the pairs and wall seconds of each,
    compilation included), chunks skipped as already done, totals, and ``phases``: seconds
    spent in each pipeline stage over all chunks (``plan_s`` K-hop layouts and plans,
    ``device_s`` engine calls and assembly, ``tables_s`` top-k and table building,
    ``write_s`` Parquet writing); the stages overlap, so they can add up to more than
    ``seconds``."""

    out: Path
    spec: JobSpec
    computed: tuple[int, ...]
    chunk_pairs: tuple[int, ...]
    chunk_seconds: tuple[float, ...]
    skipped: tuple[int, ...]
    targets: int
    pairs: int
    rows: int
    seconds: float
    phases: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "out": str(self.out),
            "chunks": self.spec.num_chunks,
            "computed": len(self.computed),
            "skipped": len(self.skipped),
            "targets": self.targets,
            "pairs": self.pairs,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "targets_per_s": round(self.targets / self.seconds, 1) if self.seconds else None,
            "process": jax.process_index(),
            "processes": jax.process_count(),
            "devices": jax.local_device_count(),
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
        }


# ---------------------------------------------------------------------- planning
def khop_walks(graph: Graph, depth: int) -> np.ndarray:
    """``(N,)`` number of ``depth``-step walks in ``A + I`` from each node (its K-hop paths).

    An upper bound on the size of each node's ``depth``-hop neighbourhood (the number of
    (target, source) pairs), computed with ``depth`` sparse mat-vecs.
    """
    a = graph.adjacency.astype(bool).astype(np.float64) + sp.identity(graph.num_nodes, format="csr")
    w = np.ones(graph.num_nodes)
    for _ in range(depth):
        w = a @ w
    return w


def pair_bytes(model: GNN) -> int:
    """Estimated peak bytes per (target, source) pair while a chunk is explained and written:
    the engine's level buffers (float32 rows of the widest layer, message rows, edges) plus the
    host copies of the ``(P, C)`` contributions and their Arrow rows."""
    sizes = model.config.sizes
    return 32 * (max(sizes[1:]) + 3) + 24 * sizes[-1]


def chunk_bounds(
    num_targets: int,
    *,
    chunk_targets: int | None = None,
    costs: np.ndarray | None = None,
    budget: float | None = None,
) -> tuple[int, ...]:
    """Deterministic chunk boundaries ``(0, ..., num_targets)``.

    Either fixed chunks of ``chunk_targets`` targets, or greedy chunks whose summed ``costs``
    (one per target, in target order) stay within ``budget``; a target costlier than the budget
    gets a chunk of its own.
    """
    if (chunk_targets is None) == (budget is None):
        raise JobError("give exactly one of chunk_targets and a memory budget")
    if chunk_targets is not None:
        if chunk_targets < 1:
            raise JobError(f"chunk size must be at least 1 target, got {chunk_targets}")
        return (*range(0, num_targets, chunk_targets), num_targets)
    if budget is None or budget <= 0:
        raise JobError(f"memory budget must be positive, got {budget}")
    bounds = [0]
    start_cost = 0.0
    cum = np.cumsum(costs, dtype=np.float64)
    while bounds[-1] < num_targets:
        # largest stop with cum[stop-1] - start_cost <= budget, at least one target
        stop = int(np.searchsorted(cum, start_cost + budget, side="right"))
        stop = max(stop, bounds[-1] + 1)
        bounds.append(stop)
        start_cost = cum[stop - 1]
    return tuple(bounds)


def parse_bytes(text: str) -> int:
    """``"512MB"``, ``"2GB"``, ``"1.5G"`` or a plain number of bytes -> bytes."""
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    s = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = s[-1:] if s[-1:] in units else ""
    try:
        value = float(s[: len(s) - len(unit)])
    except ValueError:
        raise JobError(f"cannot read memory size {text!r} (examples: 512MB, 2GB)") from None
    if value <= 0:
        raise JobError(f"memory size must be positive, got {text!r}")
    return int(value * units[unit])


def make_spec(
    model: GNN,
    graph: Graph,
    targets: np.ndarray,
    *,
    classes: str | int = "all",
    top_k: int | None = None,
    chunk_targets: int | None = None,
    memory_budget: int | None = None,
    method: Method | None = None,
) -> JobSpec:
    """Validate a job's parameters and fix its chunk boundaries.

    Without ``chunk_targets`` or ``memory_budget`` chunks hold 1024 targets.
    """
    method = make_method("nam") if method is None else method
    check_features(model, graph)
    targets = check_targets(graph, targets)
    classes = check_classes(classes, model.config.num_classes)
    labels = graph.labels[targets]
    class_slots(classes, np.zeros((len(targets), 1)), labels, targets)  # fails before the work
    top_k = check_top_k(top_k)
    if memory_budget is not None and chunk_targets is not None:
        raise JobError("give either a chunk size or a memory budget, not both")
    if memory_budget is not None:
        costs = khop_walks(graph, model.config.depth)[targets] * pair_bytes(model)
        bounds = chunk_bounds(len(targets), costs=costs, budget=memory_budget)
    else:
        bounds = chunk_bounds(len(targets), chunk_targets=chunk_targets or 1024)
    return JobSpec(
        graph=graph.fingerprint,
        model=model_fingerprint(model),
        targets=hashlib.sha256(targets.astype(np.int64).tobytes()).hexdigest()[:16],
        num_targets=len(targets),
        classes=str(classes),
        top_k=top_k,
        bounds=bounds,
        method=method.name,
        options=method.options(),
    )


# ---------------------------------------------------------------------- files
def part_name(chunk: int) -> str:
    return f"part-{chunk:06d}.parquet"


def finished_chunks(out: str | Path) -> set[int]:
    """Chunk ids whose parts are complete (their ``contributions`` part exists)."""
    d = Path(out) / "contributions"
    if not d.is_dir():
        return set()
    return {int(p.name[5:11]) for p in d.glob("part-*.parquet")}


def read_table(out: str | Path, table: str = "contributions"):
    """Read one of the job's tables (``"targets"`` or ``"contributions"``) as one Arrow table."""
    import pyarrow.dataset as ds

    if table not in TABLES:
        raise JobError(f"unknown table {table!r}; choose from {TABLES}")
    return ds.dataset(Path(out) / table, format="parquet").to_table()


def _claim(out: Path, spec: JobSpec, resume: bool, clean: bool) -> None:
    """Create ``out`` for ``spec`` or, with ``resume``, check that it holds the same job (and,
    with ``clean``, delete temporary files left by a killed run: only before any process of this
    run starts writing)."""
    job = out / JOB_FILE
    if job.exists():
        if not resume:
            raise JobError(
                f"{out} already holds a job; pass --resume to continue it or choose another --out"
            )
        old = JobSpec.from_json(job.read_text())
        diff = [k for k, v in asdict(spec).items() if asdict(old).get(k) != v]
        if diff:
            raise JobError(f"cannot resume: {out} holds a job with other {', '.join(diff)}")
        if clean:  # temporary files of a killed run; never complete, safe to drop
            for table in TABLES:
                for stale in (out / table).glob(".part-*.tmp-*"):
                    stale.unlink(missing_ok=True)
        return
    if out.exists() and any(out.iterdir()):
        raise JobError(f"{out} exists and is not a namjax job directory; choose another --out")
    check_output_dir(out)
    for table in TABLES:
        (out / table).mkdir(parents=True, exist_ok=True)
    tmp = out / f".{JOB_FILE}.tmp"
    tmp.write_text(spec.to_json())
    os.replace(tmp, job)


def _barrier(stage: str, error: Exception | None = None) -> None:
    """Wait for every process to reach ``stage``, each saying whether it failed there; then
    re-raise this process's ``error``, or stop with one line naming the first process that
    failed (instead of waiting at the next barrier until the distributed runtime times out)."""
    failed: list[int] = []
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        flags = multihost_utils.process_allgather(np.int32(error is not None))
        failed = np.flatnonzero(np.asarray(flags).ravel()).tolist()
    if error is not None:
        raise error
    if failed:
        raise JobError(
            f"process {failed[0]} of {jax.process_count()} failed while {stage} (its own "
            "error says why); stopping"
        )


def _attempt(fn, *args) -> Exception | None:
    """Run ``fn(*args)``; the error it raised, if any (for :func:`_barrier` to report)."""
    try:
        fn(*args)
    except Exception as e:
        return e
    return None


def initialize_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join a multi-process job (``jax.distributed.initialize``); call before any JAX work.

    ``coordinator`` is ``host:port`` of process 0; every process passes the same address and
    ``num_processes`` and its own ``process_id``.
    """
    if not 0 <= process_id < num_processes:
        raise JobError(f"process id must be in 0..{num_processes - 1}, got {process_id}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
    except Exception as e:  # XLA's errors are multi-line; keep the first
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise JobError(f"cannot join the job at {coordinator}: {first}") from None


# ---------------------------------------------------------------------- devices
class ShardedExplainer:
    """Explains chunks of targets by one attribution method with the pairs engine, the targets
    split across devices.

    The model's global pass runs once. Each call cuts its targets into one contiguous piece per
    device (balanced by pair count), plans every piece (:func:`namjax.engine.plan.plan_chunk`),
    pads them to one shape and runs the method's engine passes (:func:`namjax.engine.pairs.
    contract` or :func:`~namjax.engine.pairs.saliency`, one per term of the method) vmapped
    over a leading device axis that is sharded over a ``jax.sharding.Mesh`` (``jax.shard_map``:
    every device computes its own piece, no communication). The compiled shape only grows, so
    chunks of similar cost reuse one compilation. The method's terms are kept on the device
    when they fit :data:`TERMS_BUDGET`, else recomputed per chunk. Occlusion runs the local
    sweep on one device.

    Args:
        model, graph: as for :func:`namjax.explain`.
        classes: ``"all"``, ``"predicted"``, ``"true"`` or a class id.
        method: a method name or :class:`~namjax.methods.Method`; ``options`` its options.
        devices: the devices to shard over (default: this process's local devices).
        scores_on_device: leave each chunk's scores on the device (the attribution holds a
            ``jax.Array``), so a top-k selection runs there and only the kept entries reach
            the host (:func:`namjax.attribution.select_topk`); default: on accelerators, not
            on a CPU (where the host selection is faster).
    """

    def __init__(
        self,
        model: GNN,
        graph: Graph,
        classes: str | int = "all",
        method="nam",
        options: dict | None = None,
        devices=None,
        scores_on_device: bool | None = None,
    ):
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        devices = list(devices or jax.local_devices())
        self.model, self.graph, self.classes = model, graph, classes
        if scores_on_device is None:
            scores_on_device = devices[0].platform != "cpu"
        self.scores_on_device = scores_on_device
        self.method = make_method(method, **(options or {}))
        self.ctx = Context.create(model, graph, jnp.float32)
        gp = self.ctx.gp
        mesh = Mesh(np.array(devices), ("devices",))
        self.split = NamedSharding(mesh, PartitionSpec("devices"))
        self.replicated = NamedSharding(mesh, PartitionSpec())
        self.logits = np.asarray(gp.logits)
        self.reference = np.asarray(self.method.reference(self.ctx))
        self.num_entries = gp.num_entries
        self.state = jax.device_put((gp.steps, gp.values), self.replicated)
        readout = self.method.readout
        self.extra = () if readout != "saliency" else (self.ctx.first_weights(),)
        self.terms = None
        if readout != "sweep":
            per_term = sum(x.nbytes for x in jax.tree.leaves((gp.p, gp.slopes)))
            if self.method.num_terms * per_term <= TERMS_BUDGET:
                self.terms = jax.device_put(list(self.method.terms(self.ctx)), self.replicated)
            rep = PartitionSpec()
            kernel = {"contract": contract, "saliency": saliency}[readout]
            axes = (None, None, None, None, 0) + (None,) * len(self.extra)
            # each device runs the engine on its own piece (a leading axis of length 1 here)
            self.fn = jax.jit(
                jax.shard_map(
                    jax.vmap(kernel, in_axes=axes),
                    mesh=mesh,
                    in_specs=(rep, rep, rep, rep, self.split.spec) + (rep,) * len(self.extra),
                    out_specs=self.split.spec,
                )
            )
        self.shape: tuple[int, ...] | None = None

    @property
    def num_devices(self) -> int:
        return self.split.mesh.size

    def prepare(self, targets: np.ndarray) -> tuple:
        """The host part of a chunk (run ahead of the device by :func:`run`): the K-hop layout
        of ``targets (T,)`` and, for the engine, one plan per device."""
        kh = khop(self.graph, targets, self.model.config.depth)
        if self.method.readout == "sweep":
            return kh, None, None
        cum = np.diff(kh.offsets).cumsum()
        cuts = np.searchsorted(cum, cum[-1] * np.arange(1, self.num_devices) / self.num_devices)
        bounds = np.unique(np.concatenate([[0], cuts + 1, [len(targets)]]).clip(0, len(targets)))
        plans = [plan_chunk(self.graph, kh.rows(a, b)) for a, b in itertools.pairwise(bounds)]
        # devices left without targets rerun the first piece; their output is dropped
        plans += plans[:1] * (self.num_devices - len(plans))
        return kh, bounds, plans

    def compute(self, prepared: tuple) -> Attribution:
        """The device part of a chunk :meth:`prepare` d, and the chunk's attribution."""
        kh, bounds, plans = prepared
        return assemble(
            kh,
            self._scores(kh, bounds, plans),
            self.logits[kh.targets],
            self.reference[kh.targets],
            self.graph.labels[kh.targets].astype(np.int64),
            self.classes,
            graph=self.graph,
            model=self.model,
            method=self.method.name,
            options=self.method.options()
            | ({"engine": "pairs"} if self.method.name == "nam" else {}),
        )

    def __call__(self, targets: np.ndarray) -> Attribution:
        """The method's attribution of ``targets (T,)`` (unique node ids)."""
        return self.compute(self.prepare(targets))

    def _scores(self, kh, bounds, plans) -> np.ndarray:
        """``(P, C)`` scores of the method in ``kh``'s pair layout."""
        if self.method.readout == "sweep":
            return self.method.scores(self.ctx, kh)
        padded = padded_chunks(plans, self.num_entries, at_least=self.shape)
        self.shape = padded[0].shape
        stack = (lambda x: x[None]) if len(padded) == 1 else (lambda *xs: np.stack(xs))
        stacked = jax.device_put(jax.tree.map(stack, *padded), self.split)
        terms = self.terms if self.terms is not None else self.method.terms(self.ctx)
        total = None
        for weight, p0, slopes in terms:
            part = self.fn(*self.state, p0, slopes, stacked, *self.extra)
            part = part if weight == 1.0 else weight * part
            total = part if total is None else total + part
        sizes = np.diff(kh.offsets[bounds])
        xp = jnp if self.scores_on_device else np
        out = total if self.scores_on_device else np.asarray(total)
        if len(sizes) == 1:  # a view, not a copy
            return out[0, : sizes[0]]
        return xp.concatenate([out[i, :n] for i, n in enumerate(sizes)])


TERMS_BUDGET = 512 * 2**20
"""Bytes of a method's engine inputs (``P`` and unit derivatives of every term) kept on the
device for a whole job; beyond it they are recomputed for each chunk."""


# ---------------------------------------------------------------------- the job
def run(
    model: GNN,
    graph: Graph,
    out: str | Path,
    *,
    targets=None,
    classes: str | int = "all",
    top_k: int | None = None,
    chunk_targets: int | None = None,
    memory_budget: int | None = None,
    resume: bool = False,
    progress: bool = False,
    method="nam",
    options: dict | None = None,
    explain: Callable[[np.ndarray], Attribution] | None = None,
) -> JobResult:
    """Explain ``targets`` (default: every node) chunk by chunk into the dataset at ``out``,
    by the attribution ``method`` (a name from :data:`namjax.methods.METHODS`, with
    ``options``; default NAM).

    ``explain(chunk_targets) -> Attribution`` computes one chunk (default: the method on the
    pairs engine, sharded over this process's devices). Returns what this process did.
    """
    start = time.perf_counter()
    targets = check_targets(graph, targets)
    algorithm = make_method(method, **(options or {}))
    spec = make_spec(
        model,
        graph,
        targets,
        classes=classes,
        top_k=top_k,
        chunk_targets=chunk_targets,
        memory_budget=memory_budget,
        method=algorithm,
    )
    out = Path(out)
    first = jax.process_index() == 0
    _barrier(
        "claiming the output directory",
        _attempt(_claim, out, spec, resume, True) if first else None,
    )
    _barrier("reading the job", None if first else _attempt(_claim, out, spec, True, False))
    done = finished_chunks(out)
    mine = [i for i in range(spec.num_chunks) if i % jax.process_count() == jax.process_index()]
    todo = [i for i in mine if i not in done]
    if explain is None:
        explain = ShardedExplainer(model, graph, classes=classes, method=algorithm)
    bar = _progress(sum(spec.bounds[i + 1] - spec.bounds[i] for i in todo), progress)
    chunks = [targets[spec.bounds[i] : spec.bounds[i + 1]] for i in todo]
    try:
        rows, chunk_pairs, chunk_seconds, phases = _pipeline(explain, chunks, todo, out, top_k, bar)
        error = None
    except Exception as e:  # every failure is told to the other processes, then re-raised
        error = e
    if bar is not None:
        bar.close()
    _barrier("computing its chunks", error)
    _barrier("finishing the job", _attempt(_finish, out, spec) if first else None)
    result = JobResult(
        out=out,
        spec=spec,
        computed=tuple(todo),
        chunk_pairs=tuple(chunk_pairs),
        chunk_seconds=tuple(chunk_seconds),
        skipped=tuple(i for i in mine if i in done),
        targets=sum(spec.bounds[i + 1] - spec.bounds[i] for i in todo),
        pairs=sum(chunk_pairs),
        rows=rows,
        seconds=time.perf_counter() - start,
        phases=phases,
    )
    return result


def _pipeline(explain, chunks: list[np.ndarray], ids: list[int], out: Path, top_k, bar):
    """Compute and write ``chunks`` (the targets of chunks ``ids``) through four stages, each
    on its own thread: planning (when ``explain`` has ``prepare`` and ``compute``), the device
    call, the top-k tables and the Parquet writing (numpy, scipy, XLA and pyarrow release the
    GIL). A chunk enters when the one four places ahead of it has left, so at most four chunks
    are in the pipeline at once. Returns the rows written, each chunk's pairs and seconds (its stages
    summed), and the seconds of each stage."""
    if hasattr(explain, "prepare") and hasattr(explain, "compute"):
        first = [
            ("plan_s", lambda i, t: explain.prepare(t)),
            ("device_s", lambda i, p: explain.compute(p)),
        ]
    else:
        first = [("device_s", lambda i, t: explain(t))]
    stages = [
        *first,
        ("tables_s", lambda i, attr: (attr, attr.tables(top_k))),
        ("write_s", lambda i, done: _write_chunk(out, i, *done)),
    ]
    phases = dict.fromkeys(("plan_s", "device_s", "tables_s", "write_s"), 0.0)

    def step(key, fn, i, previous, spent):
        arg = previous.result() if isinstance(previous, concurrent.futures.Future) else previous
        t0 = time.perf_counter()
        result = fn(i, arg)
        spent.append(time.perf_counter() - t0)
        phases[key] += spent[-1]
        return result

    rows, chunk_pairs, chunk_seconds = 0, [], []

    def finish(future, spent) -> None:
        nonlocal rows
        targets, pairs, written = future.result()
        rows += written
        chunk_pairs.append(pairs)
        chunk_seconds.append(sum(spent))
        if bar is not None:
            bar.update(targets)
            rate = sum(chunk_pairs) / bar.format_dict["elapsed"]
            bar.set_postfix(pairs_per_s=f"{rate:.3g}", refresh=False)

    with contextlib.ExitStack() as stack:
        pools = [stack.enter_context(ThreadPoolExecutor(1)) for _ in stages]
        in_flight: collections.deque = collections.deque()
        try:
            for i, chunk in zip(ids, chunks, strict=True):
                if len(in_flight) == len(stages):
                    finish(*in_flight.popleft())
                future, spent = chunk, []
                for pool, (key, fn) in zip(pools, stages, strict=True):
                    future = pool.submit(step, key, fn, i, future, spent)
                in_flight.append((future, spent))
            while in_flight:
                finish(*in_flight.popleft())
        except BaseException:
            for pool in pools:
                pool.shutdown(cancel_futures=True)
            raise
    return rows, chunk_pairs, chunk_seconds, phases


def _write_chunk(out: Path, chunk: int, attr: Attribution, tables) -> tuple[int, int, int]:
    """Write chunk ``chunk``'s ``tables``; returns its targets, pairs and contribution rows."""
    _write_parts(out, chunk, tables)
    return len(attr.targets), len(attr.sources), tables[1].num_rows


def _write_parts(out: Path, chunk: int, tables) -> None:
    """Write chunk ``chunk``'s parts: ``targets`` first, so a chunk is done when its
    ``contributions`` part exists."""
    for table, data in zip(TABLES, tables, strict=True):
        write_table(out / table / part_name(chunk), data, dictionary=DICTIONARY[table])


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="target", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def _finish(out: Path, spec: JobSpec) -> None:
    """Check that every chunk is complete and write the ``_SUCCESS`` manifest."""
    missing = sorted(set(range(spec.num_chunks)) - finished_chunks(out))
    if missing:
        raise JobError(f"{len(missing)} chunks missing in {out} (first: {missing[0]})")
    manifest = {
        "chunks": spec.num_chunks,
        "targets": spec.num_targets,
        "rows": {
            t: sum(pq.ParquetFile(p).metadata.num_rows for p in (out / t).glob("part-*.parquet"))
            for t in TABLES
        },
        "bytes": sum(p.stat().st_size for t in TABLES for p in (out / t).glob("part-*.parquet")),
    }
    tmp = out / f".{SUCCESS_FILE}.tmp"
    tmp.write_text(json.dumps(manifest, sort_keys=True))
    os.replace(tmp, out / SUCCESS_FILE)
