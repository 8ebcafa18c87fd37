"""The graph type: a validated, undirected, sparse node-classification graph.

Conventions (documented in the README):

* The adjacency ``A`` is stored as a symmetric scipy CSR matrix with non-negative weights and an
  empty diagonal. Directed input is symmetrised as ``max(A, A.T)`` with a warning (or refused with
  ``directed="error"``). Self-loops in the input are dropped with a warning (the GCN adds ``I``
  itself, so keeping them would count a node twice); duplicate edges are merged into one edge,
  keeping the largest weight.
* ``Â = D^-1/2 (A + I) D^-1/2`` is computed once per graph and kept sparse. No dense ``N x N``
  matrix is ever built.
* Labels are ``int32`` with ``-1`` for "unknown".
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import numpy as np
import scipy.sparse as sp

from namjax.errors import GraphError

Features = sp.csr_matrix | np.ndarray
Directed = Literal["symmetrize", "error"]
Neighbours = Literal["weighted", "binary", "none"]
Norm = Literal["sym", "row", "none"]


def degree_scales(norm: Norm, degree, xp=np):
    """Row and column scales ``(r, c)`` of an operator ``diag(r) M diag(c)`` whose rows sum to
    ``degree`` (``(N,)``, numpy or jax.numpy per ``xp``): ``"sym"`` gives ``r = c = d^-1/2``,
    ``"row"`` ``r = 1/d, c = 1``, ``"none"`` ones; a zero degree gives zero scales (an empty row
    propagates nothing, as in PyG)."""
    ones = xp.ones_like(degree)
    if norm == "none":
        return ones, ones
    safe = xp.where(degree > 0, degree, 1.0)
    if norm == "sym":
        inv = xp.where(degree > 0, 1.0 / xp.sqrt(safe), 0.0)
        return inv, inv
    if norm == "row":
        return xp.where(degree > 0, 1.0 / safe, 0.0), ones
    raise GraphError(f"unknown normalisation {norm!r}; choose sym, row or none")


@dataclass(frozen=True, eq=False)
class Graph:
    """A node-classification graph held on the host.

    Attributes:
        adjacency: ``(N, N)`` symmetric CSR matrix, float32 weights, no self-loops.
        features: ``(N, F)`` float32 features, CSR (sparse) or dense ndarray.
        labels: ``(N,)`` int32 class ids, ``-1`` where unknown.
        train_mask, val_mask, test_mask: ``(N,)`` boolean split masks.
        node_names: optional ``N`` display names.
        class_names: optional ``num_classes`` display names.
        name: dataset name (used in fingerprints and messages).
    """

    adjacency: sp.csr_matrix
    features: Features
    labels: np.ndarray
    train_mask: np.ndarray
    val_mask: np.ndarray
    test_mask: np.ndarray
    node_names: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None
    name: str = "graph"
    _num_classes: int | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # a one-line summary, no array dumps
        d = self.describe()
        return (
            f"Graph({self.name}: {d['nodes']} nodes, {d['edges']} edges, {d['features']} features, "
            f"{d['classes']} classes; train {d['train']}, val {d['val']}, test {d['test']})"
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_scipy(
        cls,
        adjacency: sp.spmatrix | sp.sparray,
        features: Features | None = None,
        labels: np.ndarray | None = None,
        *,
        train_mask: np.ndarray | None = None,
        val_mask: np.ndarray | None = None,
        test_mask: np.ndarray | None = None,
        node_names: list[str] | tuple[str, ...] | None = None,
        class_names: list[str] | tuple[str, ...] | None = None,
        num_classes: int | None = None,
        directed: Directed = "symmetrize",
        name: str = "graph",
    ) -> Graph:
        """Build a graph from a sparse ``(N, N)`` adjacency matrix.

        ``features`` defaults to the identity (one-hot node ids); ``labels`` to all ``-1``;
        masks (boolean ``(N,)`` or node-id arrays) to all ``False``. ``num_classes`` defaults to
        ``len(class_names)``, else ``max(labels) + 1``.
        """
        adjacency = _clean_adjacency(adjacency, directed=directed)
        n = adjacency.shape[0]
        if num_classes is None and class_names is not None:
            num_classes = len(class_names)
        features = sp.identity(n, dtype=np.float32, format="csr") if features is None else features
        features = _clean_features(features, n)
        labels = _clean_labels(labels, n, num_classes)
        masks = [
            _clean_mask(m, n, label)
            for m, label in (
                (train_mask, "train_mask"),
                (val_mask, "val_mask"),
                (test_mask, "test_mask"),
            )
        ]
        if node_names is not None:
            node_names = tuple(str(s) for s in node_names)
            if len(node_names) != n:
                raise GraphError(
                    f"node_names has {len(node_names)} entries but the graph has {n} nodes"
                )
        n_cls = num_classes if num_classes is not None else int(labels.max(initial=-1)) + 1
        if class_names is not None:
            class_names = tuple(str(s) for s in class_names)
            if len(class_names) != n_cls:
                raise GraphError(
                    f"class_names has {len(class_names)} entries but there are {n_cls} classes"
                )
        return cls(
            adjacency,
            features,
            labels,
            *masks,
            node_names=node_names,
            class_names=class_names,
            name=name,
            _num_classes=n_cls,
        )

    @classmethod
    def from_edge_index(
        cls,
        edge_index: np.ndarray,
        num_nodes: int | None = None,
        edge_weight: np.ndarray | None = None,
        **kwargs,
    ) -> Graph:
        """Build a graph from a ``(2, E)`` integer edge index (PyG convention: row 0 = source).

        ``num_nodes`` defaults to ``max(edge_index) + 1``; other keyword arguments are those of
        :meth:`from_scipy`.
        """
        edge_index = np.asarray(edge_index)
        if edge_index.ndim != 2 or edge_index.shape[0] != 2:
            raise GraphError(f"edge_index must have shape (2, E), got {edge_index.shape}")
        if edge_index.size and not np.issubdtype(edge_index.dtype, np.integer):
            raise GraphError(f"edge_index must hold integers, got dtype {edge_index.dtype}")
        edge_index = edge_index.astype(np.int64)
        if num_nodes is None:
            if edge_index.size == 0:
                raise GraphError("empty graph: edge_index has no edges and num_nodes is not given")
            num_nodes = int(edge_index.max()) + 1
        if num_nodes < 1:
            raise GraphError(f"empty graph: num_nodes is {num_nodes}")
        if edge_index.size and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
            bad = int(edge_index.min() if edge_index.min() < 0 else edge_index.max())
            raise GraphError(f"edge_index holds node id {bad}, outside 0..{num_nodes - 1}")
        weights = (
            np.ones(edge_index.shape[1], np.float32)
            if edge_weight is None
            else _as_weights(edge_weight, "edge_weight")
        )
        if weights.shape != (edge_index.shape[1],):
            raise GraphError(
                f"edge_weight has shape {weights.shape}, expected ({edge_index.shape[1]},)"
            )
        _check_weights(weights)
        adj = _merge_duplicates(edge_index[0], edge_index[1], weights, num_nodes)
        return cls.from_scipy(adj, **kwargs)

    @classmethod
    def from_networkx(
        cls,
        graph,
        *,
        features: Features | str | None = None,
        label: str | None = None,
        weight: str | None = None,
        **kwargs,
    ) -> Graph:
        """Build a graph from a networkx graph; nodes are numbered in ``graph.nodes`` order.

        Edges go through :meth:`from_edge_index`, so parallel edges of a multigraph are merged
        like any duplicate, and a directed graph is judged by its edges (one holding both
        directions of every edge with equal weights is undirected). ``weight`` names the edge attribute holding the weight (``None``:
        unweighted; a missing attribute counts 1). ``features`` may be an ``(N, F)`` array or the
        name of a node attribute holding a vector; ``label`` names a node attribute holding the
        class: ints (``None`` for unknown), or other hashable values, which are then numbered in
        sorted order and become ``class_names``.
        """
        nodes = list(graph.nodes)
        if not nodes:
            raise GraphError("empty graph: the networkx graph has no nodes")
        index = {v: i for i, v in enumerate(nodes)}
        edges = list(graph.edges(data=weight if weight is not None else False, default=1.0))
        src = np.asarray([index[e[0]] for e in edges], np.int64)
        dst = np.asarray([index[e[1]] for e in edges], np.int64)
        w = _as_weights(
            [1.0 if weight is None else e[2] for e in edges], f"edge attribute {weight!r}"
        )
        if not graph.is_directed():  # networkx lists each undirected edge once
            back = src != dst
            src, dst, w = np.r_[src, dst[back]], np.r_[dst, src[back]], np.r_[w, w[back]]
        if isinstance(features, str):
            missing = [v for v in nodes if features not in graph.nodes[v]]
            if missing:
                raise GraphError(f"node {missing[0]!r} has no feature attribute {features!r}")
            features = np.stack([np.asarray(graph.nodes[v][features], np.float32) for v in nodes])
        if label is not None and "labels" not in kwargs:
            raw = [graph.nodes[v].get(label) for v in nodes]
            if all(r is None or isinstance(r, int | np.integer) for r in raw):
                kwargs["labels"] = np.asarray([-1 if r is None else r for r in raw])
            else:
                classes = sorted({r for r in raw if r is not None}, key=str)
                number = {c: i for i, c in enumerate(classes)}
                kwargs["labels"] = np.asarray([number.get(r, -1) for r in raw])
                kwargs.setdefault("class_names", [str(c) for c in classes])
        kwargs.setdefault("node_names", [str(v) for v in nodes])
        return cls.from_edge_index(np.stack([src, dst]), len(nodes), w, features=features, **kwargs)

    @classmethod
    def from_pyg(cls, data, *, name: str = "pyg", directed: Directed = "symmetrize") -> Graph:
        """Build a graph from a PyG ``torch_geometric.data.Data``: ``x``, ``edge_index``
        (``source_to_target`` flow: row 0 is the source), ``edge_weight``, ``y`` and
        ``train_mask`` / ``val_mask`` / ``test_mask``, each optional but ``edge_index``;
        through :meth:`from_edge_index`, so the same rules and warnings apply."""

        def get(key):
            value = getattr(data, key, None)
            return None if value is None else value.detach().cpu().numpy()

        edge_index = get("edge_index")
        if edge_index is None:
            raise GraphError("the PyG data has no edge_index")
        y = get("y")
        if y is not None and y.ndim != 1:
            raise GraphError(f"data.y must hold one label per node, got shape {y.shape}")
        x = get("x")
        masks = {k: get(k) for k in ("train_mask", "val_mask", "test_mask")}
        return cls.from_edge_index(
            edge_index,
            int(data.num_nodes),
            get("edge_weight"),
            features=None if x is None else x.astype(np.float32),
            labels=y,
            name=name,
            directed=directed,
            **{k: v for k, v in masks.items() if v is not None},
        )

    # ------------------------------------------------------------------ properties
    @property
    def num_nodes(self) -> int:
        return self.adjacency.shape[0]

    @property
    def num_features(self) -> int:
        return self.features.shape[1]

    @property
    def num_classes(self) -> int:
        if self._num_classes is not None:
            return self._num_classes
        return int(self.labels.max(initial=-1)) + 1

    @property
    def num_edges(self) -> int:
        """Number of unique undirected edges (self-loops excluded)."""
        return self.adjacency.nnz // 2

    @cached_property
    def pattern(self) -> sp.csr_matrix:
        """``A + I`` as an ``(N, N)`` float32 CSR matrix with sorted indices: the sparsity pattern
        every propagation operator lives on (its data: the edge weights and 1 on the diagonal)."""
        a = (self.adjacency + sp.identity(self.num_nodes, dtype=np.float32, format="csr")).tocsr()
        a.sort_indices()
        return a

    @cached_property
    def reach_pattern(self) -> sp.csr_matrix:
        """The 0/1 pattern of ``A + I`` (:attr:`pattern`) as a bool CSR matrix: what K-hop
        reachability multiplies (:func:`namjax.subgraph.reach`)."""
        return unit_pattern(self.pattern, bool)

    @cached_property
    def transpose_positions(self) -> np.ndarray:
        """``(E,)`` int64: the position in :attr:`pattern` of each entry's transpose (the
        pattern is symmetric; an operator need not be)."""
        a = self.pattern
        rows = np.repeat(np.arange(self.num_nodes, dtype=np.int64), np.diff(a.indptr))
        return np.argsort(a.indices.astype(np.int64) * self.num_nodes + rows, kind="stable")

    def propagation(
        self,
        neighbours: Neighbours = "weighted",
        self_loop: float = 1.0,
        norm: Norm = "sym",
        dtype=np.float32,
    ) -> sp.csr_matrix:
        """The operator ``diag(r) (A° + s I) diag(c)`` on the pattern of ``A + I`` (explicit zeros
        kept, so every operator has the same ``indptr``/``indices``).

        ``A°`` is the weighted adjacency (``neighbours="weighted"``), its 0/1 pattern
        (``"binary"``) or nothing (``"none"``); ``s`` is ``self_loop``; the scales come from the
        degrees ``d = A° 1 + s`` (:func:`degree_scales`): ``"sym"`` gives
        ``D^-1/2 (A° + sI) D^-1/2``, ``"row"`` ``D^-1 (A° + sI)``, ``"none"`` ``A° + sI``. Computed
        in float64 with one product of the two end scales per entry, rounded once to ``dtype``:
        a symmetric normalisation of a symmetric ``A`` is exactly symmetric.
        """
        key = (neighbours, float(self_loop), norm, np.dtype(dtype).name)
        if key not in self._operators:
            a = self.pattern
            rows = np.repeat(np.arange(self.num_nodes), np.diff(a.indptr))
            diagonal = rows == a.indices
            if neighbours == "none":
                entries = np.zeros(a.nnz)
            elif neighbours == "binary":
                entries = np.ones(a.nnz)
            else:
                entries = a.data.astype(np.float64)
            entries[diagonal] = self_loop
            degree = np.bincount(rows, weights=entries, minlength=self.num_nodes)
            r, c = degree_scales(norm, degree)
            data = (entries * (r[rows] * c[a.indices])).astype(dtype)
            self._operators[key] = sp.csr_matrix((data, a.indices, a.indptr), shape=a.shape)
        return self._operators[key]

    @cached_property
    def _operators(self) -> dict:
        return {}

    @property
    def normalized_adjacency(self) -> sp.csr_matrix:
        """``Â = D^-1/2 (A + I) D^-1/2`` as an ``(N, N)`` float32 CSR matrix (sorted indices),
        Kipf & Welling's propagation operator (:meth:`propagation` with its defaults)."""
        return self.propagation()

    @cached_property
    def fingerprint(self) -> str:
        """A short sha256 over edges and weights, features and labels: identifies the dataset.

        Independent of how the graph was built (dense or sparse features, index dtypes)."""
        x = sp.csr_matrix(self.features, dtype=np.float32, copy=True)
        x.eliminate_zeros()
        x.sum_duplicates()
        h = hashlib.sha256()
        for m in (self.adjacency, x):
            h.update(np.asarray(m.shape, np.int64).tobytes())
            h.update(m.indptr.astype(np.int64).tobytes())
            h.update(m.indices.astype(np.int64).tobytes())
            h.update(m.data.astype(np.float32).tobytes())
        h.update(self.labels.astype(np.int32).tobytes())
        return h.hexdigest()[:16]

    def with_features(self, features: Features) -> Graph:
        """A copy of this graph with other ``(N, F')`` features (validated)."""
        return replace(self, features=_clean_features(features, self.num_nodes))

    def describe(self) -> dict:
        """Summary statistics: nodes, features, classes, edges, split sizes."""
        return {
            "name": self.name,
            "nodes": self.num_nodes,
            "features": self.num_features,
            "classes": self.num_classes,
            "edges": self.num_edges,
            "train": int(self.train_mask.sum()),
            "val": int(self.val_mask.sum()),
            "test": int(self.test_mask.sum()),
        }

    def node_label(self, node: int) -> str:
        """Display name of ``node`` (its name if known, else its id)."""
        return self.node_names[node] if self.node_names is not None else str(node)

    def class_label(self, cls_id: int) -> str:
        """Display name of class ``cls_id`` (its name if known, else ``class <id>``)."""
        if cls_id < 0:
            return "unknown"
        return self.class_names[cls_id] if self.class_names is not None else f"class {cls_id}"

    def check_nodes(self, nodes, what: str = "node") -> np.ndarray:
        """Validate node ids; returns them as an int64 array or raises :class:`GraphError`."""
        arr = np.atleast_1d(np.asarray(nodes))
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise GraphError(f"{what} ids must be integers, got {arr.dtype}")
        arr = arr.astype(np.int64)
        bad = arr[(arr < 0) | (arr >= self.num_nodes)]
        if bad.size:
            raise GraphError(
                f"{what} id {int(bad[0])} is out of range: {self.name} has nodes 0..{self.num_nodes - 1}"
            )
        return arr


# ---------------------------------------------------------------------- validation helpers
def unit_pattern(pattern: sp.csr_matrix, dtype=np.int8) -> sp.csr_matrix:
    """The 0/1 matrix (``dtype``) of a canonical (sorted, duplicate-free) CSR pattern, flagged
    canonical (scipy's ``astype`` would check that again, in O(nnz))."""
    m = sp.csr_matrix((np.ones(pattern.nnz, dtype), pattern.indices, pattern.indptr), pattern.shape)
    m.has_canonical_format = True
    return m


def _as_weights(values, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise GraphError(f"{what} must hold numbers") from None


def _check_weights(weights: np.ndarray) -> None:
    if np.isnan(weights).any():
        raise GraphError("edge weights contain NaN")
    if np.isinf(weights).any():
        raise GraphError("edge weights contain inf")
    if (weights < 0).any():
        raise GraphError(f"edge weights must be non-negative, found {float(weights.min())}")


def _merge_duplicates(rows, cols, weights, n: int) -> sp.csr_matrix:
    """COO triplets -> CSR, duplicate (row, col) pairs merged keeping the largest weight."""
    if len(rows) == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    key = np.asarray(rows, np.int64) * n + np.asarray(cols, np.int64)
    order = np.lexsort((-weights, key))
    key, weights = key[order], weights[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    if not first.all():
        warnings.warn(
            f"{int((~first).sum())} duplicate edge entries merged (largest weight kept)",
            stacklevel=4,
        )
    key, weights = key[first], weights[first]
    return sp.csr_matrix((weights, (key // n, key % n)), shape=(n, n), dtype=np.float32)


def _clean_adjacency(adjacency, *, directed: Directed) -> sp.csr_matrix:
    if not sp.issparse(adjacency):
        raise GraphError(
            f"adjacency must be a scipy sparse matrix, got {type(adjacency).__name__} "
            "(dense N x N adjacency is not accepted)"
        )
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise GraphError(f"adjacency must be square, got shape {adjacency.shape}")
    n = adjacency.shape[0]
    if n == 0:
        raise GraphError("empty graph: the adjacency has no nodes")
    coo = sp.coo_matrix(adjacency)
    weights = np.asarray(coo.data, dtype=np.float32)
    _check_weights(weights)
    a = _merge_duplicates(coo.row, coo.col, weights, n)
    if a.diagonal().any():
        warnings.warn(
            f"{int(np.count_nonzero(a.diagonal()))} self-loops dropped "
            "(the GCN adds the identity itself)",
            stacklevel=3,
        )
        a.setdiag(0)
    a.eliminate_zeros()
    asym = abs(a - a.T)
    if asym.nnz and asym.max() > 0:
        if directed == "error":
            raise GraphError("adjacency is not symmetric (directed graph) and directed='error'")
        warnings.warn("directed adjacency symmetrised as max(A, A.T)", stacklevel=3)
        a = a.maximum(a.T).tocsr()
    a = a.astype(np.float32).tocsr()
    a.sort_indices()
    return a


def _clean_features(features, n: int) -> Features:
    if sp.issparse(features):
        x = sp.csr_matrix(features, dtype=np.float32)
        x.sort_indices()
        values = x.data
    else:
        try:
            x = np.asarray(features, dtype=np.float32)
        except (TypeError, ValueError):
            raise GraphError("features must hold numbers") from None
        values = x
    if x.ndim != 2:
        raise GraphError(f"features must be 2-D (N, F), got shape {x.shape}")
    if x.shape[0] != n:
        raise GraphError(f"features have {x.shape[0]} rows but the graph has {n} nodes")
    if not np.isfinite(values).all():
        kind = "NaN" if np.isnan(values).any() else "inf"
        raise GraphError(f"features contain {kind}")
    return x


def _clean_labels(labels, n: int, num_classes: int | None) -> np.ndarray:
    if labels is None:
        return np.full(n, -1, np.int32)
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise GraphError(f"labels must have shape ({n},), got {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.isnan(labels).any():
            raise GraphError("labels contain NaN")
        if not np.all(np.mod(labels, 1) == 0):
            raise GraphError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if (labels < -1).any():
        raise GraphError(f"label {int(labels.min())} is out of range (use -1 for unknown)")
    limit = num_classes if num_classes is not None else np.iinfo(np.int32).max
    if (labels >= limit).any():
        raise GraphError(f"label {int(labels.max())} is out of range for num_classes={limit}")
    return labels.astype(np.int32)


def _clean_mask(mask, n: int, what: str) -> np.ndarray:
    if mask is None:
        return np.zeros(n, bool)
    mask = np.asarray(mask)
    if mask.dtype != bool:  # an array of node ids
        if mask.ndim != 1 or not (mask.size == 0 or np.issubdtype(mask.dtype, np.integer)):
            raise GraphError(
                f"{what} must be a boolean (N,) mask or a 1-D array of node ids, "
                f"got {mask.dtype} of shape {mask.shape}"
            )
        idx = mask.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = int(idx.min() if idx.min() < 0 else idx.max())
            raise GraphError(f"{what} holds node id {bad}, outside 0..{n - 1}")
        mask = np.zeros(n, bool)
        mask[idx] = True
        return mask
    if mask.shape != (n,):
        raise GraphError(f"{what} must have shape ({n},), got {mask.shape}")
    return mask.copy()
