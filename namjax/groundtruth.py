"""Synthetic explanation benchmarks with ground truth: BA-Shapes, BA-Community, Tree-Cycles,
Tree-Grid (GNNExplainer, Ying et al. 2019), generated here from a seed, nothing downloaded.

Each generator follows the paper and its released code (``gengraph.py``/``synthetic_structsim.py``):

* a base graph: a Barabási–Albert graph (the networkx definition: a star on ``m + 1`` nodes, then
  every new node joins ``m`` distinct older nodes drawn with probability proportional to degree,
  so the base has exactly ``m · (n - m)`` edges) or a balanced binary tree of ``depth`` levels
  below the root (``2^(depth+1) - 1`` nodes, node ``i``'s parent is ``(i - 1) // 2``);
* ``num_motifs`` motifs (house, cycle, grid), each joined by one edge from its node 0 to a base
  node drawn at random without replacement (the paper's "randomly selected nodes");
* ``int(noise · |E|)`` random edges between non-adjacent node pairs anywhere in the graph (the
  code's ``perturb``), except pairs inside one motif, so a motif's induced subgraph is exactly its
  shape and the ground truth is unambiguous.

Node ids: base nodes first, then motif ``j`` owns the ``motif_size`` ids after the base starting
at ``n_base + j · motif_size`` in the shape's own order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from namjax.errors import GraphError, OptionError
from namjax.graph import Graph

SPLIT = (0.8, 0.1)  # train, val fractions; the rest is test (GNNExplainer trains on 80 %)


@dataclass(frozen=True, eq=False)
class Benchmark:
    """A graph with planted motifs and its ground truth.

    Attributes:
        graph: the :class:`Graph` (features, labels, seeded 80/10/10 train/val/test masks).
        motif: ``(N,)`` int64 id of the motif each node belongs to, ``-1`` for base nodes.
        edge_mask: ``(nnz,)`` bool, aligned with ``graph.adjacency`` CSR entries (``.indices`` /
            ``.data`` order, both directions of every edge): True for motif edges, i.e. edges
            whose two ends lie in the same motif.
        noise_edges: ``(R, 2)`` int64 edges added after the motifs were attached (the random
            perturbation, and for BA-Community the edges joining the two halves).
        motif_size: nodes per motif.
        name: benchmark name, e.g. ``"ba-shapes"``.
        params: the generator's parameters.
        seed: the seed it was generated (and split) with.
    """

    graph: Graph
    motif: np.ndarray
    edge_mask: np.ndarray
    noise_edges: np.ndarray
    motif_size: int
    name: str
    params: dict = field(default_factory=dict)
    seed: int | None = None

    def __repr__(self) -> str:
        return (
            f"Benchmark({self.name!r}, {self.graph.num_nodes} nodes, {self.graph.num_edges} "
            f"edges, {self.num_motifs} motifs of {self.motif_size}, seed={self.seed})"
        )

    @property
    def num_classes(self) -> int:
        return self.graph.num_classes

    @property
    def num_motifs(self) -> int:
        return int(self.motif.max(initial=-1)) + 1

    def motif_edges(self) -> np.ndarray:
        """``(E_m, 2)`` int64 motif edges ``(u, v)`` with ``u < v``, sorted."""
        a = self.graph.adjacency
        rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
        keep = self.edge_mask & (rows < a.indices)
        return np.stack([rows[keep], a.indices[keep]], axis=1).astype(np.int64)

    def edge_positions(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Position of each entry ``(u[i], v[i])`` in the adjacency CSR arrays, ``-1`` where
        ``u[i]–v[i]`` is not an edge. ``u`` and ``v`` are node-id arrays of one shape."""
        u, v = self.graph.check_nodes(u), self.graph.check_nodes(v)
        if u.shape != v.shape:
            raise OptionError(f"u has shape {u.shape} but v has shape {v.shape}")
        a, n = self.graph.adjacency, self.graph.num_nodes
        keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(a.indptr)) * n + a.indices
        query = u * n + v
        pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
        found = (keys[pos] == query) if len(keys) else np.zeros(u.shape, bool)
        return np.where(found, pos, -1)

    def is_motif_edge(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Bool array: ``u[i]–v[i]`` is an edge inside one motif (either direction)."""
        pos = self.edge_positions(u, v)
        return (pos >= 0) & self.edge_mask[np.maximum(pos, 0)]


# ------------------------------------------------------------------------ shapes
def house() -> tuple[np.ndarray, np.ndarray]:
    """The five-node house: square 0-1-2-3, roof node 4 on 0 and 1. Roles (the labels) are
    1 for the two corners under the roof ("middle"), 2 for the floor ("bottom"), 3 for the roof
    ("top"), as in GNNExplainer's code."""
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 0], [4, 1]])
    return edges, np.array([1, 1, 2, 2, 3])


def cycle(size: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A ring ``0-1-...-(size-1)-0``; every node has role 1."""
    i = np.arange(size)
    return np.stack([i, (i + 1) % size], axis=1), np.ones(size, np.int64)


def grid(size: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A ``size x size`` lattice, node ``r · size + c``; every node has role 1."""
    ids = np.arange(size * size).reshape(size, size)
    right = np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], axis=1)
    down = np.stack([ids[:-1].ravel(), ids[1:].ravel()], axis=1)
    return np.concatenate([right, down]), np.ones(size * size, np.int64)


# ------------------------------------------------------------------------ base graphs
def barabasi_albert(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """``(m · (n - m), 2)`` edges of a Barabási–Albert graph on ``n`` nodes (see module doc)."""
    if not 1 <= m < n:
        raise OptionError(f"Barabási–Albert needs 1 <= m < n, got m={m}, n={n}")
    edges = np.empty((m * (n - m), 2), np.int64)
    edges[:m, 0], edges[:m, 1] = np.arange(1, m + 1), 0  # the star on nodes 0..m
    ends = np.empty(2 * len(edges), np.int64)  # every edge end: degree-proportional draws
    ends[: 2 * m] = np.r_[np.arange(1, m + 1), np.zeros(m, np.int64)]
    for v in range(m + 1, n):
        k = m * (v - m)  # edges so far
        chosen: list[int] = []
        while len(chosen) < m:
            t = int(ends[rng.integers(2 * k)])
            if t not in chosen:
                chosen.append(t)
        edges[k : k + m, 0], edges[k : k + m, 1] = v, chosen
        ends[2 * k : 2 * k + 2 * m] = np.r_[np.full(m, v), chosen]
    return edges


def balanced_tree(depth: int) -> np.ndarray:
    """``(2^(depth+1) - 2, 2)`` edges ``(parent, child)`` of a balanced binary tree."""
    if depth < 1:
        raise OptionError(f"tree depth must be at least 1, got {depth}")
    child = np.arange(1, 2 ** (depth + 1) - 1)
    return np.stack([(child - 1) // 2, child], axis=1)


# ------------------------------------------------------------------------ benchmarks
def ba_shapes(
    *,
    num_base: int = 300,
    m: int = 5,
    num_motifs: int = 80,
    noise: float = 0.01,
    num_features: int = 10,
    seed: int = 0,
) -> Benchmark:
    """BA-Shapes: BA base (300 nodes, m = 5), 80 houses, 1 % noise edges: 700 nodes, 4 classes
    (0 base, 1 house middle, 2 house bottom, 3 house top); constant features (all ones, 10 wide)."""
    params = dict(num_base=num_base, m=m, num_motifs=num_motifs, noise=noise)
    rng = np.random.default_rng(seed)
    edges, labels, motif, extra = _ba_houses(num_base, m, num_motifs, noise, rng)
    x = np.ones((len(labels), num_features), np.float32)
    names = ("base", "house middle", "house bottom", "house top")
    return _benchmark("ba-shapes", edges, labels, motif, extra, x, names, 5, params, seed, rng)


def ba_community(
    *,
    num_base: int = 300,
    m: int = 5,
    num_motifs: int = 80,
    noise: float = 0.01,
    num_join_edges: int = 350,
    seed: int = 0,
) -> Benchmark:
    """BA-Community: two BA-Shapes graphs (each with its own noise) joined by ``num_join_edges``
    random edges between them: 1400 nodes, 8 classes (community 1 adds 4 to the roles).

    Features are 10-D Gaussian as in GNNExplainer's code: dims 0-1 have mean -1 (community 0)
    or +1 (community 1) and variance 0.5, dims 2-9 mean 0 and variance 1. ``m = 5`` is what the
    released code uses (it passes m = 4, which its graph builder ignores)."""
    params = dict(num_base=num_base, m=m, num_motifs=num_motifs, noise=noise)
    params["num_join_edges"] = num_join_edges
    rng = np.random.default_rng(seed)
    halves = [_ba_houses(num_base, m, num_motifs, noise, rng) for _ in range(2)]
    n = len(halves[0][1])
    if not 0 <= num_join_edges <= n * n:
        raise OptionError(f"num_join_edges must be in 0..{n * n}, got {num_join_edges}")
    keys = rng.permutation(n * n)[:num_join_edges]  # distinct (u in half 0, v in half 1) pairs
    join = np.stack([keys // n, keys % n + n], axis=1)
    (e0, y0, m0, r0), (e1, y1, m1, r1) = halves
    edges = np.concatenate([e0, e1 + n, join])
    labels = np.concatenate([y0, y1 + 4])
    motif = np.concatenate([m0, np.where(m1 >= 0, m1 + num_motifs, -1)])
    extra = np.concatenate([r0, r1 + n, join])
    sd = np.sqrt([0.5, 0.5] + [1.0] * 8)
    x = rng.normal(0.0, sd, size=(2 * n, 10))
    x[:n, :2] -= 1.0
    x[n:, :2] += 1.0
    names = tuple(f"{r} {c}" for c in (0, 1) for r in ("base", "middle", "bottom", "top"))
    x = x.astype(np.float32)
    return _benchmark("ba-community", edges, labels, motif, extra, x, names, 5, params, seed, rng)


def tree_cycles(
    *,
    depth: int = 8,
    num_motifs: int = 60,
    cycle_size: int = 6,
    noise: float = 0.01,
    num_features: int = 10,
    seed: int = 0,
) -> Benchmark:
    """Tree-Cycles: balanced binary tree of depth 8 (511 nodes), 60 six-cycles, 1 % noise:
    871 nodes, classes 0 (tree) and 1 (cycle); constant features."""
    if cycle_size < 3:
        raise OptionError(f"cycle_size must be at least 3, got {cycle_size}")
    params = dict(depth=depth, num_motifs=num_motifs, cycle_size=cycle_size, noise=noise)
    return _tree("tree-cycles", cycle(cycle_size), "cycle", params, num_features, seed)


def tree_grid(
    *,
    depth: int = 8,
    num_motifs: int = 80,
    grid_size: int = 3,
    noise: float = 0.1,
    num_features: int = 10,
    seed: int = 0,
) -> Benchmark:
    """Tree-Grid: balanced binary tree of depth 8, 80 3x3 grids, 10 % noise (the released
    code's ratio for this benchmark): 1231 nodes, classes 0 (tree) and 1 (grid)."""
    if grid_size < 2:
        raise OptionError(f"grid_size must be at least 2, got {grid_size}")
    params = dict(depth=depth, num_motifs=num_motifs, grid_size=grid_size, noise=noise)
    return _tree("tree-grid", grid(grid_size), "grid", params, num_features, seed)


BENCHMARKS: dict[str, Callable[..., Benchmark]] = {
    "ba-shapes": ba_shapes,
    "ba-community": ba_community,
    "tree-cycles": tree_cycles,
    "tree-grid": tree_grid,
}


def load_benchmark(name: str, seed: int = 0, **params) -> Benchmark:
    """The benchmark ``name`` (a key of :data:`BENCHMARKS`) generated with ``seed``; ``params``
    override the generator's defaults (e.g. ``num_motifs=80`` for Tree-Cycles)."""
    if name not in BENCHMARKS:
        raise OptionError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name](seed=seed, **params)


def from_pyg_explainer_dataset(
    data, *, name: str = "pyg-explainer", num_features: int = 10, seed: int = 0
) -> Benchmark:
    """Convert one item of PyG's ``ExplainerDataset`` (``edge_index``, ``y``, ``node_mask``,
    ``edge_mask``, optional ``x``) to a :class:`Benchmark`.

    Motifs are the connected components of the masked edges, numbered by their smallest node;
    PyG's ``edge_mask`` must be exactly the edges inside them. Without ``x`` the features are
    constant ones, ``num_features`` wide. PyG adds no noise edges; the masks are split from
    ``seed``."""
    edge_index = _numpy(data.edge_index).astype(np.int64)
    y = _numpy(data.y).astype(np.int64)
    n = len(y)
    in_motif = _numpy(data.node_mask).reshape(n, -1).any(axis=1)
    if not in_motif.any():
        raise GraphError("node_mask marks no motif node")
    given = _numpy(data.edge_mask).reshape(-1) > 0
    src, dst = edge_index[:, given]
    parts = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, comp = connected_components(parts, directed=False)
    first = np.full(n, n)
    np.minimum.at(first, comp[in_motif], np.flatnonzero(in_motif))
    ranks = np.argsort(np.argsort(first))  # component -> rank by smallest motif node
    motif = np.where(in_motif, ranks[comp], -1)
    same = (motif[edge_index[0]] >= 0) & (motif[edge_index[0]] == motif[edge_index[1]])
    if not np.array_equal(same, given):
        raise GraphError("edge_mask is not the set of edges inside the motifs of node_mask")
    sizes = np.unique(np.bincount(motif[in_motif]))
    if len(sizes) != 1:
        raise GraphError(f"motifs of different sizes {sizes.tolist()} are not supported")
    x = getattr(data, "x", None)
    x = np.ones((n, num_features), np.float32) if x is None else _numpy(x).astype(np.float32)
    rng = np.random.default_rng(seed)
    extra = np.empty((0, 2), np.int64)
    graph = _graph(name, edge_index, y, x, None, rng)
    params = {"source": "torch_geometric.datasets.ExplainerDataset"}
    return finish_benchmark(graph, motif, extra, int(sizes[0]), name, params, seed)


# ------------------------------------------------------------------------ assembly
def _ba_houses(num_base, m, num_motifs, noise, rng):
    base = barabasi_albert(num_base, m, rng)
    return _attach(base, num_base, house(), num_motifs, noise, rng)


def _tree(name, shape, motif_name, params, num_features, seed) -> Benchmark:
    rng = np.random.default_rng(seed)
    depth = params["depth"]
    base = balanced_tree(depth)
    edges, labels, motif, extra = _attach(
        base, 2 ** (depth + 1) - 1, shape, params["num_motifs"], params["noise"], rng
    )
    x = np.ones((len(labels), num_features), np.float32)
    size = len(shape[1])
    return _benchmark(
        name, edges, labels, motif, extra, x, ("tree", motif_name), size, params, seed, rng
    )


def _attach(base, n_base, shape, num_motifs, noise, rng):
    """Base edges + motifs + noise -> (edges (E, 2), labels (N,), motif (N,), noise (R, 2))."""
    if not 1 <= num_motifs <= n_base:
        raise OptionError(f"num_motifs must be in 1..{n_base}, got {num_motifs}")
    if not 0 <= noise <= 1:
        raise OptionError(f"noise must be a fraction of the edge count in [0, 1], got {noise}")
    shape_edges, roles = shape
    size = len(roles)
    first = n_base + size * np.arange(num_motifs)
    anchors = rng.choice(n_base, num_motifs, replace=False)
    inner = (shape_edges[None] + first[:, None, None]).reshape(-1, 2)
    edges = np.concatenate([base, inner, np.stack([anchors, first], axis=1)])
    labels = np.concatenate([np.zeros(n_base, np.int64), np.tile(roles, num_motifs)])
    motif = np.concatenate([np.full(n_base, -1), np.repeat(np.arange(num_motifs), size)])
    extra = _random_edges(edges, motif, int(noise * len(edges)), rng)
    return np.concatenate([edges, extra]), labels, motif, extra


def _random_edges(edges, motif, count, rng) -> np.ndarray:
    """``count`` distinct new edges between non-adjacent pairs not inside one motif."""
    n = len(motif)
    taken = set((edges.min(axis=1) * n + edges.max(axis=1)).tolist())
    sizes = np.bincount(motif[motif >= 0])
    a, b = motif[edges[:, 0]], motif[edges[:, 1]]
    inside = int(((a >= 0) & (a == b)).sum())
    free = n * (n - 1) // 2 - len(taken) - (int((sizes * (sizes - 1) // 2).sum()) - inside)
    if count > free:
        raise OptionError(f"cannot add {count} noise edges: only {free} node pairs are free")
    out: list[int] = []
    while len(out) < count:
        u, v = rng.integers(n, size=2)
        key = int(min(u, v) * n + max(u, v))
        if u != v and (motif[u] < 0 or motif[u] != motif[v]) and key not in taken:
            taken.add(key)
            out.append(key)
    keys = np.asarray(out, np.int64)
    return np.stack([keys // n, keys % n], axis=1)


def _benchmark(name, edges, labels, motif, extra, x, class_names, size, params, seed, rng):
    both = np.concatenate([edges, edges[:, ::-1]]).T
    graph = _graph(name, both, labels, x, class_names, rng)
    return finish_benchmark(graph, motif, extra, size, name, params, seed)


def _graph(name, edge_index, labels, x, class_names, rng) -> Graph:
    """The graph of a ``(2, E)`` edge index holding both directions, with seeded splits."""
    n = len(labels)
    order = rng.permutation(n)
    n_train, n_val = int(SPLIT[0] * n), int(SPLIT[1] * n)
    return Graph.from_edge_index(
        edge_index,
        n,
        features=x,
        labels=labels,
        train_mask=order[:n_train],
        val_mask=order[n_train : n_train + n_val],
        test_mask=order[n_train + n_val :],
        class_names=class_names,
        num_classes=None if class_names else int(labels.max()) + 1,
        name=name,
    )


def finish_benchmark(graph, motif, extra, size, name, params, seed) -> Benchmark:
    """The :class:`Benchmark` of a generated ``graph`` with motif ids ``motif (N,)``: its motif
    edges (both ends in one motif) as the edge mask, ``extra (R, 2)`` as the noise edges."""
    a = graph.adjacency
    rows = np.repeat(np.arange(graph.num_nodes), np.diff(a.indptr))
    edge_mask = (motif[rows] >= 0) & (motif[rows] == motif[a.indices])
    return Benchmark(graph, motif.astype(np.int64), edge_mask, extra, size, name, params, seed)


def _numpy(t) -> np.ndarray:
    """A numpy copy of a torch tensor (without importing torch) or an array-like."""
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
