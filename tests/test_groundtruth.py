"""The GNNExplainer benchmarks against their definitions (Ying et al. 2019 and its code): counts,
motif shapes and roles (networkx isomorphism), one attaching edge per motif, ground-truth masks,
the Barabási–Albert and tree bases, seeds, and the conversion of PyG's ExplainerDataset."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from conftest import require
from networkx.algorithms.isomorphism import categorical_node_match

from namjax.errors import GraphError, OptionError
from namjax.groundtruth import (
    BENCHMARKS,
    barabasi_albert,
    from_pyg_explainer_dataset,
    load_benchmark,
)


def _house() -> nx.Graph:
    """The paper's house: square 0-1-2-3, roof 4 on 0 and 1; roles middle 1, bottom 2, top 3."""
    g = nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (4, 0), (4, 1)])
    nx.set_node_attributes(g, {0: 1, 1: 1, 2: 2, 3: 2, 4: 3}, "role")
    return g


def _plain(g: nx.Graph, role: int) -> nx.Graph:
    nx.set_node_attributes(g, role, "role")
    return g


# name: (nodes, base nodes, base edges, motif count, motif graph, motif edges, noise ratio,
#        class counts); base edges from the definitions: BA m(n - m), a tree N - 1.
SPEC = {
    "ba-shapes": (700, 300, 5 * 295, 80, _house(), 6, 0.01, [300, 160, 160, 80]),
    "tree-cycles": (871, 511, 510, 60, _plain(nx.cycle_graph(6), 1), 6, 0.01, [511, 360]),
    "tree-grid": (1231, 511, 510, 80, _plain(nx.grid_2d_graph(3, 3), 1), 12, 0.1, [511, 720]),
}


@pytest.fixture(scope="module")
def benchmarks():
    return {name: load_benchmark(name, seed=0) for name in BENCHMARKS}


def _nx(b) -> nx.Graph:
    g = nx.from_scipy_sparse_array(b.graph.adjacency)
    nx.set_node_attributes(g, dict(enumerate(b.graph.labels.tolist())), "role")
    return g


def _without_noise(b) -> nx.Graph:
    g = _nx(b)
    g.remove_edges_from(b.noise_edges.tolist())
    return g


@pytest.mark.parametrize("name", list(SPEC))
def test_counts_follow_the_definition(benchmarks, name):
    n, n_base, base_edges, num_motifs, shape, shape_edges, ratio, counts = SPEC[name]
    b = benchmarks[name]
    before = base_edges + num_motifs * (shape_edges + 1)  # motif edges and one attaching edge
    assert b.graph.num_nodes == n == n_base + num_motifs * shape.number_of_nodes()
    assert len(b.noise_edges) == int(ratio * before)
    assert b.graph.num_edges == before + int(ratio * before)
    assert b.num_motifs == num_motifs and b.motif_size == shape.number_of_nodes()
    assert np.bincount(b.graph.labels).tolist() == counts
    assert b.num_classes == len(counts)
    assert np.array_equal(b.motif[:n_base], np.full(n_base, -1))
    assert np.bincount(b.motif[b.motif >= 0]).tolist() == [b.motif_size] * num_motifs
    assert b.graph.features.shape == (n, 10) and (np.asarray(b.graph.features) == 1).all()


@pytest.mark.parametrize("name", list(SPEC))
def test_each_motif_is_its_shape_with_roles_and_hangs_by_one_edge(benchmarks, name):
    shape = SPEC[name][4]
    b = benchmarks[name]
    full, clean = _nx(b), _without_noise(b)
    anchors = []
    for j in range(b.num_motifs):
        nodes = np.flatnonzero(b.motif == j).tolist()
        sub = full.subgraph(nodes)  # noise never lands inside a motif
        assert nx.is_isomorphic(sub, shape, node_match=categorical_node_match("role", None))
        leaving = list(nx.edge_boundary(clean, nodes))
        assert len(leaving) == 1  # before the noise edges: exactly one edge out
        anchors.append(leaving[0][1])
        assert b.motif[leaving[0][1]] == -1
    assert len(set(anchors)) == b.num_motifs  # distinct random base nodes


def test_ba_community_is_two_joined_ba_shapes(benchmarks):
    b = benchmarks["ba-community"]
    n = 700
    assert b.graph.num_nodes == 2 * n and b.num_classes == 8 and b.motif_size == 5
    assert np.bincount(b.graph.labels).tolist() == [300, 160, 160, 80] * 2
    a = b.graph.adjacency
    cross = a[:n, n:].nnz
    assert cross == 350  # the joining edges are the only ones between the halves
    assert b.graph.num_edges == 2 * (1475 + 480 + 80 + int(0.01 * 2035)) + 350
    house = _house()
    clean = _without_noise(b)
    for j in range(b.num_motifs):
        nodes = np.flatnonzero(b.motif == j).tolist()
        community = int(nodes[0] >= n)
        roles = {v: b.graph.labels[v] - 4 * community for v in nodes}
        sub = clean.subgraph(nodes).copy()
        nx.set_node_attributes(sub, roles, "role")
        assert nx.is_isomorphic(sub, house, node_match=categorical_node_match("role", None))
        ((_, anchor),) = nx.edge_boundary(clean, nodes)
        assert b.graph.labels[anchor] == 4 * community  # a base node of its own half
    x = np.asarray(b.graph.features)
    # dims 0-1: mean -1 / +1, variance 0.5; dims 2-9: N(0, 1) (GNNExplainer's feature generator)
    np.testing.assert_allclose(x[:n, :2].mean(0), -1, atol=0.15)
    np.testing.assert_allclose(x[n:, :2].mean(0), 1, atol=0.15)
    np.testing.assert_allclose(x[:n, :2].var(0), 0.5, atol=0.15)
    np.testing.assert_allclose(x[n:, :2].var(0), 0.5, atol=0.15)
    np.testing.assert_allclose(x[:, 2:].mean(0), 0, atol=0.15)
    np.testing.assert_allclose(x[:, 2:].var(0), 1, atol=0.2)


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_ground_truth_masks_are_the_motif_induced_edges(benchmarks, name):
    b = benchmarks[name]
    induced = {
        (min(u, v), max(u, v))
        for u, v in _nx(b).edges()
        if b.motif[u] >= 0 and b.motif[u] == b.motif[v]
    }
    assert set(map(tuple, b.motif_edges().tolist())) == induced
    a = b.graph.adjacency
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    expect = [(min(i, j), max(i, j)) in induced for i, j in zip(rows, a.indices, strict=True)]
    assert np.array_equal(b.edge_mask, expect)
    u, v = np.array(sorted(induced)).T
    assert b.is_motif_edge(u, v).all() and b.is_motif_edge(v, u).all()
    assert not b.is_motif_edge(b.noise_edges[:, 0], b.noise_edges[:, 1]).any()
    # a pair inside one motif that is not an edge (house diagonal, cycle chord, grid corners)
    first = np.flatnonzero(b.motif == 0)
    assert not b.is_motif_edge(first[[0]], first[[2]]).any()


def test_barabasi_albert_definition():
    """networkx's BA: a star on m + 1 nodes, then each new node gets m distinct older
    neighbours, so m (n - m) edges, m smaller neighbours for every node past the star."""
    for n, m, seed in ((300, 5, 0), (50, 1, 1), (40, 3, 2)):
        edges = barabasi_albert(n, m, np.random.default_rng(seed))
        g = nx.Graph(edges.tolist())
        assert g.number_of_edges() == len(edges) == m * (n - m)
        assert nx.is_connected(g) and g.number_of_nodes() == n
        older = np.bincount(edges.max(axis=1), minlength=n)
        assert older[0] == 0 and (older[1 : m + 1] == 1).all() and (older[m + 1 :] == m).all()
        assert set(g[0]) >= set(range(1, m + 1))  # the star
    with pytest.raises(OptionError, match="1 <= m < n"):
        barabasi_albert(5, 5, np.random.default_rng(0))


def test_barabasi_albert_attaches_preferentially_like_networkx():
    """Degree-proportional attachment: over 20 seeds the oldest nodes' degree and the share of
    degree-m nodes match networkx's generator (uniform attachment gives ~25, not ~37)."""
    mine, ref = [], []
    for s in range(20):
        d = np.bincount(barabasi_albert(300, 5, np.random.default_rng(s)).ravel())
        g = nx.barabasi_albert_graph(300, 5, seed=s)
        r = np.array([g.degree(i) for i in range(300)])
        mine.append((d[:10].mean(), (d == 5).mean()))
        ref.append((r[:10].mean(), (r == 5).mean()))
    (a_old, a_min), (b_old, b_min) = np.mean(mine, 0), np.mean(ref, 0)
    assert abs(a_old - b_old) < 0.1 * b_old
    assert abs(a_min - b_min) < 0.03


def test_ba_shapes_base_is_a_ba_graph_and_trees_are_balanced(benchmarks):
    base = _without_noise(benchmarks["ba-shapes"]).subgraph(range(300))
    assert base.number_of_edges() == 5 * (300 - 5)
    older = [sum(u < v for u in base[v]) for v in range(300)]
    assert older[0] == 0 and set(older[1:6]) == {1} and set(older[6:]) == {5}
    for name in ("tree-cycles", "tree-grid"):
        tree = _without_noise(benchmarks[name]).subgraph(range(511))
        assert set(map(frozenset, tree.edges())) == set(
            map(frozenset, nx.balanced_tree(2, 8).edges())
        )


def test_splits_are_disjoint_80_10_10(benchmarks):
    for b in benchmarks.values():
        g = b.graph
        masks = np.stack([g.train_mask, g.val_mask, g.test_mask]).astype(int)
        assert (masks.sum(0) == 1).all()
        n = g.num_nodes
        assert masks.sum(1).tolist() == [
            int(0.8 * n),
            int(0.1 * n),
            n - int(0.8 * n) - int(0.1 * n),
        ]


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_same_seed_same_benchmark_other_seed_other(name):
    a, b, c = (load_benchmark(name, seed=s) for s in (3, 3, 4))
    assert a.graph.fingerprint == b.graph.fingerprint
    assert np.array_equal(a.motif, b.motif) and np.array_equal(a.noise_edges, b.noise_edges)
    assert np.array_equal(a.graph.train_mask, b.graph.train_mask)
    assert (a.graph.adjacency != c.graph.adjacency).nnz > 0
    assert not np.array_equal(a.graph.train_mask, c.graph.train_mask)
    assert a.seed == 3 and a.name == name


def test_parameters_and_errors():
    b = load_benchmark("tree-cycles", num_motifs=80)  # the count: 511 + 80 * 6 nodes
    assert b.graph.num_nodes == 991 and b.params["num_motifs"] == 80
    with pytest.raises(OptionError, match="unknown benchmark 'ba-house'; choose one of ba-shapes"):
        load_benchmark("ba-house")
    with pytest.raises(OptionError, match=r"num_motifs must be in 1\.\.300"):
        load_benchmark("ba-shapes", num_motifs=301)
    with pytest.raises(OptionError, match="noise must be"):
        load_benchmark("tree-grid", noise=-0.1)


# ------------------------------------------------------------------------ PyG's generator
@pytest.mark.parametrize(
    ("motif", "kwargs", "shape"),
    [
        ("house", None, _house()),
        ("cycle", {"num_nodes": 6}, _plain(nx.cycle_graph(6), 1)),
        ("grid", None, None),  # PyG's grid labels its nodes by degree; shape checked bare
    ],
)
def test_pyg_explainer_dataset_round_trips(motif, kwargs, shape):
    require("torch_geometric")
    import torch
    from torch_geometric.datasets import ExplainerDataset
    from torch_geometric.datasets.graph_generator import BAGraph

    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 (PyG's BA generator draws from numpy's global state)
    data = ExplainerDataset(
        graph_generator=BAGraph(300, 5),
        motif_generator=motif,
        num_motifs=80,
        motif_generator_kwargs=kwargs,
    )[0]
    b = from_pyg_explainer_dataset(data)
    size = 9 if shape is None else shape.number_of_nodes()
    ei = data.edge_index.numpy()
    assert b.graph.num_nodes == data.num_nodes == 300 + 80 * size
    assert b.graph.num_edges == len({(min(u, v), max(u, v)) for u, v in ei.T.tolist()})
    assert np.array_equal(b.graph.labels, data.y.numpy())
    assert np.array_equal(b.motif >= 0, data.node_mask.numpy().reshape(-1) > 0)
    assert np.array_equal(b.is_motif_edge(ei[0], ei[1]), data.edge_mask.numpy() > 0)
    assert b.num_motifs == 80 and b.motif_size == size and len(b.noise_edges) == 0
    assert b.graph.features.shape == (b.graph.num_nodes, 10)
    g = _nx(b)
    ref = _plain(nx.grid_2d_graph(3, 3), 0) if shape is None else shape
    match = None if shape is None else categorical_node_match("role", None)
    for j in range(80):
        nodes = np.flatnonzero(b.motif == j).tolist()
        assert nx.is_isomorphic(g.subgraph(nodes), ref, node_match=match)
        assert len(list(nx.edge_boundary(g, nodes))) == 1


def test_pyg_conversion_keeps_x_and_refuses_a_wrong_mask():
    require("torch_geometric")
    import torch
    from torch_geometric.datasets import ExplainerDataset
    from torch_geometric.datasets.graph_generator import BAGraph

    torch.manual_seed(1)
    np.random.seed(1)  # noqa: NPY002
    data = ExplainerDataset(BAGraph(30, 2), "house", num_motifs=3)[0]
    data.x = torch.randn(data.num_nodes, 4)
    b = from_pyg_explainer_dataset(data, seed=5)
    np.testing.assert_array_equal(np.asarray(b.graph.features), data.x.numpy())
    assert b.seed == 5 and b.graph.train_mask.sum() == int(0.8 * data.num_nodes)
    data.edge_mask[data.edge_mask == 0] = 1.0  # claims every edge, the attaching ones too
    with pytest.raises(GraphError, match="edge_mask is not the set of edges inside the motifs"):
        from_pyg_explainer_dataset(data)
