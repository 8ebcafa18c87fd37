"""The attribution result type, its one on-disk schema, and its provenance.

An :class:`Attribution` holds node-level scores ``C(φ→a, c)`` of T targets for Q class slots
each, in a flat pair layout, plus what they were computed from: the method and its options,
the class choice, and the fingerprints of the graph and the model.

On disk, a plain attribution directory and a batch job's dataset share one schema:

``contributions`` (``contributions.parquet``, or a job's ``contributions/part-*.parquet``),
one row per (target, source, class) kept, ordered by target, then source, then class slot:

=============  =======  ====================================================
column         type     meaning
=============  =======  ====================================================
target         int32    the explained node ``a``
class          int32    the class ``c`` of the slot
source         int32    the contributing node ``φ`` (within K hops of ``a``)
hop            int8     hop distance from ``φ`` to ``a``
contribution   float32  ``C(φ→a, c)``
=============  =======  ====================================================

``targets`` (``targets.parquet`` or ``targets/part-*.parquet``), one row per (target, class
slot): ``target`` int32, ``class`` int32, ``logit`` float32, ``bias`` float32 (the bias term),
``rest`` float32 (the sum of the contributions not kept by top-k; 0 without it), ``sources``
int32 (the target's K-hop nodes), ``predicted`` int32, ``label`` int32 (-1 unknown).

Both tables carry the provenance as Parquet metadata under the key ``namjax`` (JSON:
``format``, ``num_nodes``, ``depth``, ``method``, ``options``, ``classes``, ``graph``,
``model``, ``top_k``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from namjax.errors import AttributionError
from namjax.outputs import check_output_dir, write_table
from namjax.subgraph import expand, round_up

SCHEMA_VERSION = 1
CONTRIBUTIONS = pa.schema(
    [
        ("target", pa.int32()),
        ("class", pa.int32()),
        ("source", pa.int32()),
        ("hop", pa.int8()),
        ("contribution", pa.float32()),
    ]
)
TARGETS = pa.schema(
    [
        ("target", pa.int32()),
        ("class", pa.int32()),
        ("logit", pa.float32()),
        ("bias", pa.float32()),
        ("rest", pa.float32()),
        ("sources", pa.int32()),
        ("predicted", pa.int32()),
        ("label", pa.int32()),
    ]
)
TABLES = ("targets", "contributions")
DICTIONARY = {"targets": ["class", "predicted", "label"], "contributions": ["class", "hop"]}
"""The columns of each table worth dictionary-encoding (few distinct values); the others are
written plain (with the columns' own run-length and compression), which is faster."""
META_KEY = b"namjax"
SUCCESS_FILE = "_SUCCESS"


@dataclass(frozen=True, eq=False)
class Attribution:
    """Scores of T targets for Q class slots each, over P (target, source) pairs.

    Attributes:
        targets: ``(T,)`` int64 target node ids.
        offsets: ``(T+1,)`` int64; target ``t`` owns pairs ``offsets[t]:offsets[t+1]``.
        sources: ``(P,)`` int64 source node ids (per target: itself first, then by hop, by id).
        hops: ``(P,)`` int8 hop distance from source to target.
        contributions: ``(P, Q)`` float scores ``C(source→target, classes[t, q])`` (a
            ``jax.Array`` on the device in a job's chunks on an accelerator, see
            :class:`namjax.jobs.ShardedExplainer`; numpy everywhere else).
        classes: ``(T, Q)`` int64 class id of each slot.
        logits: ``(T, Q)`` pre-softmax logits ``Z[target, class]``.
        bias: ``(T, Q)`` bias term ``B[target, class]``.
        predicted: ``(T,)`` int64 argmax of each target's logits over all classes.
        labels: ``(T,)`` int64 true labels (``-1`` unknown).
        num_nodes: N.
        depth: K.
        rest: ``(T, Q)`` sum of the scores not kept (top-k); zeros when all are kept.
        method: the attribution method (``"nam"``, ...); ``options`` its options.
        class_choice: how the classes were chosen (``"all"``, ``"predicted"``, ``"true"`` or
            a class id as text).
        graph_fingerprint, model_fingerprint: what the scores were computed from.
        top_k: the scores kept per (target, class), ``None`` for all.
        stats: timings (seconds) and engine counters of the call that produced it.
    """

    targets: np.ndarray
    offsets: np.ndarray
    sources: np.ndarray
    hops: np.ndarray
    contributions: np.ndarray
    classes: np.ndarray
    logits: np.ndarray
    bias: np.ndarray
    predicted: np.ndarray
    labels: np.ndarray
    num_nodes: int
    depth: int
    rest: np.ndarray | None = None
    method: str = "nam"
    options: dict = field(default_factory=dict)
    class_choice: str = "all"
    graph_fingerprint: str = ""
    model_fingerprint: str = ""
    top_k: int | None = None
    stats: dict = field(default_factory=dict, compare=False)
    origin: tuple | None = field(default=None, repr=False, compare=False)
    """``(model, graph)`` the scores were computed from, when computed in this process."""

    def __post_init__(self):
        if self.rest is None:
            object.__setattr__(self, "rest", np.zeros(self.logits.shape, np.float32))

    def __repr__(self) -> str:
        kept = "" if self.top_k is None else f", top_k={self.top_k}"
        return (
            f"Attribution({self.method}: {len(self.targets)} targets x {self.num_slots} class "
            f"slots, {len(self.sources)} (target, source) pairs, depth {self.depth}, "
            f"classes={self.class_choice}{kept}, graph {self.graph_fingerprint or '?'}, "
            f"model {self.model_fingerprint or '?'})"
        )

    # ------------------------------------------------------------------ lookups
    @property
    def num_slots(self) -> int:
        """Q, the number of class slots per target."""
        return self.classes.shape[1]

    def row(self, node: int) -> int:
        """The index of ``node`` among :attr:`targets`."""
        hit = np.flatnonzero(self.targets == node)
        if hit.size == 0:
            raise AttributionError(f"node {node} is not among the explained targets")
        return int(hit[0])

    def for_target(self, node: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sources (n,), hops (n,), contributions (n, Q))`` of one target."""
        t = self.row(node)
        s = slice(self.offsets[t], self.offsets[t + 1])
        return self.sources[s], self.hops[s], self.contributions[s]

    def slot(self, t: int, cls: int | None) -> int:
        """The slot of class ``cls`` (default: the predicted class, else the only slot) in row
        ``t``."""
        row = self.classes[t]
        if cls is None:
            hit = np.flatnonzero(row == self.predicted[t])
            return int(hit[0]) if hit.size else 0
        hit = np.flatnonzero(row == cls)
        if hit.size == 0:
            raise AttributionError(
                f"class {cls} was not computed for target {self.targets[t]} "
                f"(computed: {', '.join(str(int(c)) for c in row)})"
            )
        return int(hit[0])

    def ranked(
        self, node: int, cls: int | None = None, top_k: int | None = None
    ) -> list[tuple[int, int, float]]:
        """The target's contributors as ``(source, hop, contribution)``, largest first.

        ``cls`` defaults to the predicted class (or the only computed slot); ``top_k`` keeps
        the first k.
        """
        t = self.row(node)
        sources, hops, contrib = self.for_target(node)
        values = contrib[:, self.slot(t, cls)]
        order = np.argsort(-values, kind="stable")[:top_k]
        return [(int(sources[i]), int(hops[i]), float(values[i])) for i in order]

    def hop_summary(self, node: int) -> np.ndarray:
        """``(K+1, Q)`` contributions summed per hop distance (row 0: the node itself).

        Together with :attr:`bias` (and :attr:`rest`) the rows add up to the logits
        (completeness, ReLU).
        """
        _, hops, contrib = self.for_target(node)
        out = np.zeros((self.depth + 1, self.num_slots), contrib.dtype)
        np.add.at(out, hops, contrib)
        return out

    def completeness_gap(self) -> np.ndarray:
        """``(T, Q)`` float64 ``Σ_φ A(φ→a, c) + rest + bias − logit``: zero (to rounding) for a
        complete method on a piecewise-linear model (``nam``, ``deeplift``), the quadrature
        error for integrated gradients; no such identity holds for the other methods."""
        sums = np.add.reduceat(self.contributions.astype(np.float64), self.offsets[:-1], axis=0)
        return sums + self.rest + self.bias - self.logits.astype(np.float64)

    def dense(self, max_entries: int = 50_000_000) -> np.ndarray:
        """``(T, N, Q)`` contributions with zeros beyond K hops (for small graphs)."""
        t, n, q = len(self.targets), self.num_nodes, self.num_slots
        if t * n * q > max_entries:
            raise AttributionError(
                f"dense attribution would hold {t * n * q} entries (> {max_entries}); "
                "use the sparse fields or fewer targets"
            )
        out = np.zeros((t, n, q), self.contributions.dtype)
        out[np.repeat(np.arange(t), np.diff(self.offsets)), self.sources] = self.contributions
        return out

    # ------------------------------------------------------------------ provenance
    def provenance(self) -> dict:
        """What the scores were computed from (stored with the tables)."""
        return {
            "format": SCHEMA_VERSION,
            "num_nodes": int(self.num_nodes),
            "depth": int(self.depth),
            "method": self.method,
            "options": self.options,
            "classes": self.class_choice,
            "graph": self.graph_fingerprint,
            "model": self.model_fingerprint,
            "top_k": self.top_k,
        }

    def check(self, graph=None, model=None) -> None:
        """Refuse, with one line naming the mismatch, a ``graph`` or ``model`` other than the
        ones the attribution was computed with."""
        if graph is not None:
            if graph.num_nodes != self.num_nodes or (
                self.graph_fingerprint and graph.fingerprint != self.graph_fingerprint
            ):
                raise AttributionError(
                    f"the attribution was computed on another graph ({self.num_nodes} nodes, "
                    f"fingerprint {self.graph_fingerprint or '?'}) than {graph.name} "
                    f"({graph.num_nodes} nodes, fingerprint {graph.fingerprint})"
                )
        if model is not None and self.model_fingerprint:
            from namjax.model import model_fingerprint

            mine = model_fingerprint(model)
            if mine != self.model_fingerprint:
                raise AttributionError(
                    f"the attribution was computed with another model (fingerprint "
                    f"{self.model_fingerprint}) than the one given (fingerprint {mine})"
                )

    def features(
        self,
        target: int,
        source: int,
        cls: int | None = None,
        top_k: int | None = 10,
        *,
        model=None,
        graph=None,
    ) -> list[tuple[int, float]]:
        """The input features of ``source`` with their ``X[φ,i] ∂Z[a,c]/∂X[φ,i]`` for class
        ``cls`` (default the target's predicted class), largest ``|value|`` first; over all
        features they sum to NAM's ``C(source→target, c)``. Computed on demand
        (:func:`namjax.features.feature_contributions`) from the model and graph this
        attribution was made with (pass them for one loaded from disk)."""
        return self.features_many([(target, source)], cls, top_k, model=model, graph=graph)[0]

    def features_many(self, pairs, cls=None, top_k: int | None = 10, *, model=None, graph=None):
        """:meth:`features` of each ``(target, source)`` in ``pairs``."""
        from namjax.features import feature_contributions

        model, graph = self._origin(model, graph)
        pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        if cls is None:
            cls = [int(self.predicted[self.row(int(t))]) for t, _ in pairs]
        return feature_contributions(model, graph, pairs, cls, top_k=top_k)

    def _origin(self, model, graph):
        """The model and graph to recompute from: the given ones (checked), else the remembered
        ones."""
        if model is None or graph is None:
            if self.origin is None:
                raise AttributionError(
                    "this attribution does not remember its model and graph (loaded from "
                    "disk?): pass model= and graph="
                )
            model = self.origin[0] if model is None else model
            graph = self.origin[1] if graph is None else graph
        self.check(graph, model)
        return model, graph

    def to_pyg(self, target: int, cls: int | None = None, *, graph=None):
        """PyG's ``torch_geometric.explain.Explanation`` of one target (see
        :func:`namjax.pyg.explanation`); ``cls`` defaults to the predicted class."""
        from namjax.pyg import explanation

        return explanation(self, target, cls, graph=graph)

    def to_pyg_many(self, targets, cls: int | None = None, *, graph=None) -> list:
        """:meth:`to_pyg` for each of ``targets``."""
        return [self.to_pyg(int(t), cls, graph=graph) for t in targets]

    # ------------------------------------------------------------------ tables and files
    def tables(self, top_k: int | None = None) -> tuple[pa.Table, pa.Table]:
        """The ``targets`` and ``contributions`` tables (the schema above); with ``top_k`` only
        the ``top_k`` largest ``|scores|`` per (target, class) are written and the others are
        summed into ``rest`` (:func:`select_topk`)."""
        t, q = self.classes.shape
        sizes = np.diff(self.offsets)
        rest = self.rest.astype(np.float64)
        if top_k is not None:
            kept, values, dropped = select_topk(self.offsets, self.contributions, top_k)
            rest = rest + np.where((sizes > top_k)[:, None], dropped, 0.0)
        provenance = self.provenance()
        if top_k is not None:
            provenance["top_k"] = min(top_k, self.top_k or top_k)
        meta = {META_KEY: json.dumps(provenance, sort_keys=True).encode()}
        targets = pa.table(
            [
                np.repeat(self.targets, q).astype(np.int32),
                self.classes.reshape(-1).astype(np.int32),
                self.logits.reshape(-1).astype(np.float32),
                self.bias.reshape(-1).astype(np.float32),
                rest.reshape(-1).astype(np.float32),
                np.repeat(sizes, q).astype(np.int32),
                np.repeat(self.predicted, q).astype(np.int32),
                np.repeat(self.labels, q).astype(np.int32),
            ],
            schema=TARGETS.with_metadata(meta),
        )
        if top_k is None:  # every score: columns repeated per class slot, in their own dtypes
            c = np.asarray(self.contributions)
            columns = [
                np.repeat(np.repeat(self.targets.astype(np.int32), sizes), q),
                np.repeat(self.classes.astype(np.int32), sizes, axis=0).ravel(),
                np.repeat(self.sources.astype(np.int32), q),
                np.repeat(self.hops.astype(np.int8), q),
                c.astype(np.float32, copy=False).ravel(),
            ]
        else:
            pair, slot = np.divmod(kept, q)  # row-major: by target, then source, then class
            seg = np.repeat(np.arange(t), np.minimum(sizes, top_k) * q)  # exactly that many kept
            columns = [
                self.targets[seg].astype(np.int32),
                self.classes[seg, slot].astype(np.int32),
                self.sources[pair].astype(np.int32),
                self.hops[pair].astype(np.int8),
                values.astype(np.float32),
            ]
        contributions = pa.table(columns, schema=CONTRIBUTIONS.with_metadata(meta))
        return targets, contributions

    def to_table(self) -> pa.Table:
        """The ``contributions`` table: one row per (target, source, class)."""
        return self.tables()[1]

    def targets_table(self) -> pa.Table:
        """The ``targets`` table: one row per (target, class slot)."""
        return self.tables()[0]

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``path/contributions.parquet`` and ``path/targets.parquet`` (each atomically);
        returns ``path``. A directory holding other files is refused unless ``overwrite``."""
        path = Path(path)
        check_output_dir(path, overwrite=overwrite, ours=PLAIN_FILES)
        path.mkdir(parents=True, exist_ok=True)
        targets, contributions = self.tables()
        for name, table in zip(TABLES, (targets, contributions), strict=True):
            write_table(path / f"{name}.parquet", table, "snappy", DICTIONARY[name])
        return path

    @classmethod
    def load(cls, path: str | Path) -> Attribution:
        """Read an attribution directory written by :meth:`save`, or a finished batch job's
        dataset (:mod:`namjax.jobs`)."""
        path = Path(path)
        if all((path / f"{name}.parquet").is_file() for name in TABLES):
            tables = [pq.read_table(path / f"{name}.parquet") for name in TABLES]
        elif (path / SUCCESS_FILE).is_file():
            tables = [_read_parts(path / name) for name in TABLES]
        elif (path / "contributions").is_dir():
            raise AttributionError(f"{path} holds a batch job that has not finished (no _SUCCESS)")
        else:
            raise AttributionError(
                f"{path} is not an attribution directory (no contributions.parquet and "
                "targets.parquet, nor a finished job)"
            )
        return from_tables(*tables)


def select_topk(
    offsets: np.ndarray, contributions, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest ``|contributions|`` of each target segment and column (``(P, Q)``,
    ``offsets (T+1,)``), as the tables need them: the kept entries' flat row-major positions
    ``(R,)`` int64 and their values, and each target's float64 sum of the dropped scores
    ``(T, Q)``.

    Scores held on a device (a ``jax.Array``, as a job leaves them on an accelerator) are
    selected there (:func:`namjax.engine.topk.device_topk`) and only the kept entries leave
    it; the dropped ones are summed there, in the scores' dtype. Host arrays are selected on
    the host (:func:`topk_mask`), the dropped sum being the segment's float64 total minus the
    kept scores. Both keep the same entries.
    """
    if isinstance(contributions, jax.Array):
        from namjax.engine.topk import device_topk

        return device_topk(offsets, contributions, k)
    t, q = len(offsets) - 1, contributions.shape[1]
    kept = np.flatnonzero(topk_mask(offsets, contributions, k))
    values = contributions.ravel()[kept]
    seg = np.repeat(np.arange(t), np.minimum(np.diff(offsets), k) * q)  # exactly that many kept
    dropped = np.add.reduceat(contributions, offsets[:-1], axis=0, dtype=np.float64)
    dropped -= np.bincount(seg * q + kept % q, values, t * q).reshape(t, q)
    return kept, values, dropped


def topk_mask(offsets: np.ndarray, contributions: np.ndarray, k: int) -> np.ndarray:
    """``(P, Q)`` bool: the ``k`` largest ``|contributions|`` of each target segment and column.

    ``offsets (T+1,)`` delimit the targets' rows of ``contributions (P, Q)``; among equal values
    at the cut the earlier rows are kept. Segments of at most ``k`` rows are kept whole. The
    others are laid out densely in groups of equal width (sizes rounded up to 16 steps per
    power of two, padded below every ``|c|``), and one ``np.partition`` per group finds each
    segment's and column's k-th largest ``|c|`` in linear time. The rows at or above it are
    kept; where ties at the cut would keep more than ``k``, the earliest of the rows equal to
    it fill the places left.
    """
    sizes = np.diff(offsets)
    a = np.abs(contributions.astype(np.float32, copy=False))
    kth = np.full((len(sizes), a.shape[1]), -np.inf, np.float32)
    long = np.flatnonzero(sizes > k)
    widths = round_up(sizes[long], 16)
    for w in np.unique(widths):
        segs = long[widths == w]
        valid = np.arange(w) < sizes[segs][:, None]  # (S, w)
        dense = a[np.where(valid, offsets[segs][:, None] + np.arange(w), 0)]
        dense[~valid] = -1.0  # (S, w, Q)
        dense.partition(w - k, axis=1)
        kth[segs] = dense[:, w - k]
    keep = a >= np.repeat(kth, sizes, axis=0)
    if keep.sum() > np.minimum(sizes, k).sum() * a.shape[1]:  # ties at some cut
        tied, col = np.nonzero(np.add.reduceat(keep, offsets[:-1], axis=0, dtype=np.int64) > k)
        owner, rows = expand(offsets, tied)
        value, cut = a[rows, col[owner]], kth[tied, col][owner]
        equal = value == cut
        rank = np.cumsum(equal)  # of the rows equal to the cut, the earliest fill the places
        starts = np.cumsum(sizes[tied]) - sizes[tied]
        rank -= np.repeat(rank[starts] - equal[starts], sizes[tied])
        room = k - np.bincount(owner, value > cut, len(tied))
        keep[rows, col[owner]] = (value > cut) | (equal & (rank <= room[owner]))
    return keep


PLAIN_FILES = frozenset({"contributions.parquet", "targets.parquet"})


def from_tables(targets_table: pa.Table, contributions_table: pa.Table) -> Attribution:
    """Rebuild an :class:`Attribution` from its two tables (the schema above)."""
    raw = (targets_table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise AttributionError("the tables carry no namjax metadata")
    meta = json.loads(raw)
    tt = {name: targets_table[name].to_numpy() for name in TARGETS.names}
    cc = {name: contributions_table[name].to_numpy() for name in CONTRIBUTIONS.names}
    slot_target = tt["target"].astype(np.int64)
    q = int(np.argmax(np.append(slot_target[1:] != slot_target[:-1], True))) + 1
    targets = slot_target[::q]
    classes = tt["class"].astype(np.int64).reshape(-1, q)
    t, s = cc["target"].astype(np.int64), cc["source"].astype(np.int64)
    first = np.ones(len(t), bool)
    first[1:] = (t[1:] != t[:-1]) | (s[1:] != s[:-1])
    pair = np.cumsum(first) - 1
    order = np.argsort(targets, kind="stable")
    row = order[np.searchsorted(targets, t, sorter=order)]  # target row of each table row
    slot = np.argmax(classes[row] == cc["class"][:, None], axis=1)
    contributions = np.zeros((int(first.sum()), q), np.float32)
    contributions[pair, slot] = cc["contribution"]
    counts = np.bincount(row[first], minlength=len(targets))
    return Attribution(
        targets=targets,
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        sources=s[first],
        hops=cc["hop"][first].astype(np.int8),
        contributions=contributions,
        classes=classes,
        logits=tt["logit"].reshape(-1, q),
        bias=tt["bias"].reshape(-1, q),
        predicted=tt["predicted"][::q].astype(np.int64),
        labels=tt["label"][::q].astype(np.int64),
        num_nodes=int(meta["num_nodes"]),
        depth=int(meta["depth"]),
        rest=tt["rest"].reshape(-1, q),
        method=meta.get("method", "nam"),
        options=meta.get("options", {}),
        class_choice=str(meta.get("classes", "all")),
        graph_fingerprint=meta.get("graph", ""),
        model_fingerprint=meta.get("model", ""),
        top_k=meta.get("top_k"),
    )


def _read_parts(directory: Path) -> pa.Table:
    """A job table's parts, in chunk order."""
    parts = sorted(directory.glob("part-*.parquet"))
    if not parts:
        raise AttributionError(f"{directory} holds no parts")
    tables = [pq.read_table(p) for p in parts]
    return pa.concat_tables(tables).replace_schema_metadata(tables[0].schema.metadata)
