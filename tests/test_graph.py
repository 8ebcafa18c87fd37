"""The graph type: every validation error, the three constructors agreeing, directed input,
self-loops and duplicates, Â against float64 oracles, fingerprint stability."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from namjax.graph import Graph, GraphError

PATH3 = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32))


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def edges_of(g: Graph) -> dict[tuple[int, int], float]:
    coo = g.adjacency.tocoo()
    return {(int(r), int(c)): float(w) for r, c, w in zip(coo.row, coo.col, coo.data, strict=True)}


# ---------------------------------------------------------------------- validation errors
BAD_INPUT = {
    "non-square": (lambda: Graph.from_scipy(sp.csr_matrix((3, 4))), "must be square"),
    "dense adjacency": (lambda: Graph.from_scipy(np.eye(3)), "scipy sparse matrix"),
    "empty adjacency": (lambda: Graph.from_scipy(sp.csr_matrix((0, 0))), "empty graph"),
    "empty edge_index": (
        lambda: Graph.from_edge_index(np.zeros((2, 0), np.int64)),
        "empty graph",
    ),
    "zero num_nodes": (
        lambda: Graph.from_edge_index(np.zeros((2, 0), np.int64), num_nodes=0),
        "empty graph",
    ),
    "empty networkx": (lambda: Graph.from_networkx(nx.Graph()), "empty graph"),
    "feature rows": (
        lambda: Graph.from_scipy(PATH3, np.ones((2, 4))),
        "features have 2 rows but the graph has 3 nodes",
    ),
    "feature rank": (lambda: Graph.from_scipy(PATH3, np.ones(3)), r"must be 2-D \(N, F\)"),
    "NaN dense features": (
        lambda: Graph.from_scipy(PATH3, np.array([[1.0], [np.nan], [0.0]])),
        "features contain NaN",
    ),
    "inf sparse features": (
        lambda: Graph.from_scipy(PATH3, sp.csr_matrix(np.array([[1.0], [np.inf], [0.0]]))),
        "features contain inf",
    ),
    "text features": (
        lambda: Graph.from_scipy(PATH3, np.array([["a"], ["b"], ["c"]])),
        "features must hold numbers",
    ),
    "label below -1": (
        lambda: Graph.from_scipy(PATH3, labels=np.array([0, -2, 1])),
        "label -2 is out of range",
    ),
    "label above num_classes": (
        lambda: Graph.from_scipy(PATH3, labels=np.array([0, 5, 1]), num_classes=3),
        "label 5 is out of range for num_classes=3",
    ),
    "label above class_names": (
        lambda: Graph.from_scipy(PATH3, labels=np.array([0, 2, 1]), class_names=["a", "b"]),
        "label 2 is out of range for num_classes=2",
    ),
    "label beyond int32": (
        lambda: Graph.from_scipy(PATH3, labels=np.array([0, 2**32, 1])),
        "label 4294967296 is out of range",
    ),
    "label shape": (
        lambda: Graph.from_scipy(PATH3, labels=np.array([0, 1])),
        r"labels must have shape \(3,\)",
    ),
    "NaN label": (
        lambda: Graph.from_scipy(PATH3, labels=np.array([0.0, np.nan, 1.0])),
        "labels contain NaN",
    ),
    "fractional label": (
        lambda: Graph.from_scipy(PATH3, labels=np.array([0.0, 1.5, 1.0])),
        "labels must be integers",
    ),
    "class_names length": (
        lambda: Graph.from_scipy(
            PATH3, labels=np.array([0, 1, 2]), num_classes=3, class_names=["a"]
        ),
        "class_names has 1 entries but there are 3 classes",
    ),
    "node_names length": (
        lambda: Graph.from_scipy(PATH3, node_names=["a", "b"]),
        "node_names has 2 entries but the graph has 3 nodes",
    ),
    "edge_index node id too large": (
        lambda: Graph.from_edge_index(np.array([[0, 1], [1, 5]]), num_nodes=3),
        "edge_index holds node id 5, outside 0..2",
    ),
    "edge_index negative id": (
        lambda: Graph.from_edge_index(np.array([[0, -1], [1, 2]])),
        "edge_index holds node id -1",
    ),
    "edge_index shape": (
        lambda: Graph.from_edge_index(np.zeros((3, 2), np.int64)),
        r"edge_index must have shape \(2, E\)",
    ),
    "edge_index floats": (
        lambda: Graph.from_edge_index(np.array([[0.0, 1.0], [1.0, 2.0]])),
        "edge_index must hold integers",
    ),
    "edge_weight shape": (
        lambda: Graph.from_edge_index(np.array([[0, 1], [1, 2]]), edge_weight=np.ones(3)),
        r"edge_weight has shape \(3,\), expected \(2,\)",
    ),
    "negative weight": (
        lambda: Graph.from_edge_index(np.array([[0, 1], [1, 0]]), edge_weight=[1.0, -2.0]),
        "edge weights must be non-negative, found -2.0",
    ),
    "NaN weight": (
        lambda: Graph.from_edge_index(np.array([[0, 1], [1, 0]]), edge_weight=[np.nan, 1.0]),
        "edge weights contain NaN",
    ),
    "inf weight in scipy": (
        lambda: Graph.from_scipy(sp.csr_matrix(np.array([[0, np.inf], [np.inf, 0]]))),
        "edge weights contain inf",
    ),
    "negative weight in scipy": (
        lambda: Graph.from_scipy(sp.csr_matrix(np.array([[0, -1.0], [-1.0, 0]]))),
        "non-negative",
    ),
    "text weight in networkx": (
        lambda: Graph.from_networkx(nx.Graph([(0, 1, {"w": "heavy"})]), weight="w"),
        "edge attribute 'w' must hold numbers",
    ),
    "missing feature attribute": (
        lambda: Graph.from_networkx(nx.path_graph(2), features="x"),
        "node 0 has no feature attribute 'x'",
    ),
    "mask shape": (
        lambda: Graph.from_scipy(PATH3, train_mask=np.array([True, False])),
        r"train_mask must have shape \(3,\)",
    ),
    "mask dtype": (
        lambda: Graph.from_scipy(PATH3, val_mask=np.array([0.5, 1.0])),
        "val_mask must be a boolean",
    ),
    "mask node id": (
        lambda: Graph.from_scipy(PATH3, test_mask=np.array([0, 3])),
        "test_mask holds node id 3, outside 0..2",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_validation_error(case):
    build, message = BAD_INPUT[case]
    with pytest.raises(GraphError, match=message) as err:
        quiet(build)
    assert "\n" not in str(err.value)


def test_check_nodes():
    g = Graph.from_scipy(PATH3, name="path")
    np.testing.assert_array_equal(g.check_nodes([2, 0]), [2, 0])
    assert g.check_nodes(1).dtype == np.int64
    with pytest.raises(GraphError, match=r"target id 3 is out of range: path has nodes 0\.\.2"):
        g.check_nodes([0, 3], what="target")
    with pytest.raises(GraphError, match="node id -1 is out of range"):
        g.check_nodes(-1)
    with pytest.raises(GraphError, match="ids must be integers"):
        g.check_nodes([0.5])


def test_masks_accept_node_ids():
    g = Graph.from_scipy(PATH3, train_mask=[2, 0], val_mask=[], test_mask=np.array([1]))
    np.testing.assert_array_equal(g.train_mask, [True, False, True])
    assert not g.val_mask.any()
    np.testing.assert_array_equal(g.test_mask, [False, True, False])


# ---------------------------------------------------------------------- constructors agree
def random_graph(n: int, m: int, seed: int) -> nx.Graph:
    rng = np.random.default_rng(seed)
    g = nx.gnm_random_graph(n, m, seed=seed)
    for u, v in g.edges:
        g.edges[u, v]["w"] = float(rng.uniform(0.1, 2.0))
    for v in g.nodes:
        g.nodes[v]["y"] = int(rng.integers(3))
        g.nodes[v]["x"] = rng.normal(size=4)
    return g


def test_three_constructors_agree():
    nxg = random_graph(40, 90, seed=1)
    labels = np.array([nxg.nodes[v]["y"] for v in range(40)])
    feats = np.stack([nxg.nodes[v]["x"] for v in range(40)]).astype(np.float32)
    a = Graph.from_networkx(nxg, features="x", label="y", weight="w")
    both = [(u, v, d["w"]) for u, v, d in nxg.edges(data=True)]
    both += [(v, u, w) for u, v, w in both]
    rows, cols, w = (np.array(c) for c in zip(*both, strict=True))
    b = Graph.from_scipy(sp.coo_matrix((w, (rows, cols)), shape=(40, 40)), feats, labels)
    c = Graph.from_edge_index(np.stack([rows, cols]), 40, w, features=feats, labels=labels)
    expected = {(u, v): np.float32(w) for u, v, w in both}
    for g in (a, b, c):
        assert edges_of(g) == expected
        np.testing.assert_array_equal(g.features, feats)
        np.testing.assert_array_equal(g.labels, labels)
        assert g.adjacency.dtype == np.float32 and g.adjacency.has_sorted_indices
    assert a.fingerprint == b.fingerprint == c.fingerprint
    assert a.node_names == tuple(str(v) for v in range(40))


def test_networkx_node_order_and_labels():
    g = nx.Graph()
    g.add_nodes_from(["c", "a", "b", "d"])
    g.add_edges_from([("a", "b"), ("c", "d")])
    nx.set_node_attributes(g, {"c": "red", "a": "blue", "b": "red"}, "colour")
    out = Graph.from_networkx(g, label="colour")
    assert out.node_names == ("c", "a", "b", "d")  # graph.nodes order
    assert edges_of(out).keys() == {(1, 2), (2, 1), (0, 3), (3, 0)}
    assert out.class_names == ("blue", "red")
    np.testing.assert_array_equal(out.labels, [1, 0, 1, -1])  # "d" has no label


def test_networkx_int_labels_keep_their_values():
    g = nx.path_graph(3)
    nx.set_node_attributes(g, {0: 10, 1: 2}, "y")  # node 2 unlabelled
    out = Graph.from_networkx(g, label="y")
    np.testing.assert_array_equal(out.labels, [10, 2, -1])
    assert out.num_classes == 11


# ---------------------------------------------------------------------- directed input
def test_directed_input_is_symmetrised_with_a_warning():
    dense = np.array([[0, 2, 0], [1, 0, 0], [0, 3, 0]], np.float32)
    with pytest.warns(UserWarning, match=r"symmetrised as max\(A, A\.T\)"):
        g = Graph.from_scipy(sp.csr_matrix(dense))
    np.testing.assert_array_equal(g.adjacency.toarray(), np.maximum(dense, dense.T))


@pytest.mark.parametrize(
    "build",
    [
        lambda: Graph.from_scipy(sp.csr_matrix(np.triu(np.ones((3, 3)), 1)), directed="error"),
        lambda: Graph.from_edge_index(np.array([[0, 1], [1, 2]]), directed="error"),
        lambda: Graph.from_networkx(nx.DiGraph([(0, 1)]), directed="error"),
    ],
    ids=["scipy", "edge_index", "networkx"],
)
def test_directed_error_option(build):
    with pytest.raises(GraphError, match=r"not symmetric.*directed='error'"):
        build()


def test_directed_networkx_graph():
    with pytest.warns(UserWarning, match="symmetrised"):
        g = Graph.from_networkx(nx.DiGraph([(0, 1), (1, 2)]))
    assert edges_of(g).keys() == {(0, 1), (1, 0), (1, 2), (2, 1)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # both directions present: nothing to symmetrise
        both = Graph.from_networkx(nx.DiGraph([(0, 1), (1, 0)]), directed="error")
    assert both.num_edges == 1


# ---------------------------------------------------------------------- self-loops, duplicates
def test_self_loops_are_dropped_with_a_warning():
    with pytest.warns(UserWarning, match="2 self-loops dropped"):
        g = Graph.from_edge_index(np.array([[0, 0, 1, 2], [0, 1, 0, 2]]))
    assert not g.adjacency.diagonal().any()
    assert edges_of(g) == {(0, 1): 1.0, (1, 0): 1.0}
    # Â counts each node once on the diagonal: 1 / (deg + 1)
    np.testing.assert_allclose(g.normalized_adjacency.diagonal(), [0.5, 0.5, 1.0])


def test_duplicates_merge_keeping_the_largest_weight():
    ei = np.array([[0, 0, 1, 1, 0], [1, 1, 0, 0, 1]])
    with pytest.warns(UserWarning, match="3 duplicate edge entries merged"):
        g = Graph.from_edge_index(ei, edge_weight=[2.0, 3.0, 3.0, 1.0, 0.5])
    assert edges_of(g) == {(0, 1): 3.0, (1, 0): 3.0}
    with pytest.warns(UserWarning, match="duplicate"):
        multi = Graph.from_networkx(nx.MultiGraph([(0, 1), (0, 1), (1, 2)]))
    assert edges_of(multi) == {(0, 1): 1.0, (1, 0): 1.0, (1, 2): 1.0, (2, 1): 1.0}


def test_zero_weight_edges_are_absent():
    g = Graph.from_edge_index(np.array([[0, 1, 1, 2], [1, 0, 2, 1]]), edge_weight=[1, 1, 0, 0])
    assert edges_of(g) == {(0, 1): 1.0, (1, 0): 1.0}
    assert g.num_edges == 1


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(0.1, 5.0)),
                max_size=40,
            ),
        )
    )
)
def test_edge_list_semantics(case):
    """Against a slow loop: symmetric, max weight over duplicates and directions, no diagonal."""
    n, triples = case
    expected: dict[tuple[int, int], float] = {}
    for u, v, w in triples:
        if u != v:
            w32 = float(np.float32(w))
            for key in ((u, v), (v, u)):
                expected[key] = max(expected.get(key, 0.0), w32)
    ei = np.array([[u for u, _, _ in triples], [v for _, v, _ in triples]], np.int64)
    g = quiet(Graph.from_edge_index, ei.reshape(2, -1), n, [w for _, _, w in triples])
    assert edges_of(g) == expected
    assert g.num_edges == len(expected) // 2


# ---------------------------------------------------------------------- normalised adjacency
def normalized_oracle(adj: sp.spmatrix) -> sp.csr_matrix:
    """D^-1/2 (A + I) D^-1/2 in float64, sparse."""
    a = sp.csr_matrix(adj, dtype=np.float64) + sp.identity(adj.shape[0], format="csr")
    inv = 1.0 / np.sqrt(np.asarray(a.sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(inv) @ a @ sp.diags(inv))


def test_normalized_adjacency_small_dense_check():
    nxg = random_graph(30, 50, seed=2)
    nxg.add_node(30)  # an isolated node: its row of Â is e_i
    g = Graph.from_networkx(nxg, weight="w")
    a = nx.to_numpy_array(nxg, nodelist=range(31), weight="w") + np.eye(31)
    d = a.sum(axis=1)
    expected = a / np.sqrt(np.outer(d, d))
    got = g.normalized_adjacency
    assert got.dtype == np.float32 and got.has_sorted_indices
    assert got.nnz == np.count_nonzero(expected)
    rel = np.abs(got.toarray() - expected).max() / np.abs(expected).max()
    assert rel < 1e-6
    assert abs(got - got.T).max() == 0  # exactly symmetric, weighted edges included
    assert got[30, 30] == 1.0 and got[30].nnz == 1


def test_normalized_adjacency_cora(cora):
    got = cora.normalized_adjacency
    expected = normalized_oracle(cora.adjacency)
    diff = got.astype(np.float64) - expected
    assert abs(diff).max() <= 1e-6 * abs(expected).max()
    assert got.nnz == cora.adjacency.nnz + cora.num_nodes
    assert abs(got - got.T).max() == 0
    assert got is cora.normalized_adjacency  # computed once


# ---------------------------------------------------------------------- fingerprint
def test_fingerprint_is_stable_and_discriminating():
    nxg = random_graph(25, 40, seed=3)
    base = Graph.from_networkx(nxg, features="x", label="y", weight="w")
    dense_x = np.asarray(base.features)
    again = Graph.from_networkx(nxg, features="x", label="y", weight="w")
    assert again.fingerprint == base.fingerprint
    sparse_x = Graph.from_networkx(nxg, features=sp.csr_matrix(dense_x), label="y", weight="w")
    assert sparse_x.fingerprint == base.fingerprint
    adj64 = base.adjacency.copy()
    adj64.indices = adj64.indices.astype(np.int64)
    adj64.indptr = adj64.indptr.astype(np.int64)
    assert Graph.from_scipy(adj64, dense_x, base.labels).fingerprint == base.fingerprint

    changed_x = dense_x.copy()
    changed_x[0, 0] += 1.0
    heavier = base.adjacency.copy()
    heavier.data = heavier.data * 2
    relabelled = base.labels.copy()
    relabelled[0] = (relabelled[0] + 1) % 3
    variants = [
        base.with_features(changed_x),
        Graph.from_scipy(heavier, dense_x, base.labels),
        Graph.from_scipy(base.adjacency, dense_x, relabelled),
        Graph.from_networkx(nxg, features="x", label="y"),  # unweighted
    ]
    prints = {v.fingerprint for v in variants} | {base.fingerprint}
    assert len(prints) == len(variants) + 1


def test_fingerprint_same_across_loads(cora, data_dir):
    from namjax.datasets import load_dataset

    assert load_dataset("cora", data_dir).fingerprint == cora.fingerprint
    raw = load_dataset("cora", data_dir, normalize_features=False)
    assert raw.fingerprint != cora.fingerprint


# ---------------------------------------------------------------------- small API
def test_describe_and_display_names():
    g = Graph.from_scipy(
        PATH3,
        labels=np.array([0, 1, -1]),
        class_names=["a", "b"],
        train_mask=[0],
        test_mask=[1, 2],
        name="p",
    )
    assert g.describe() == {
        "name": "p",
        "nodes": 3,
        "features": 3,
        "classes": 2,
        "edges": 2,
        "train": 1,
        "val": 0,
        "test": 2,
    }
    assert (g.class_label(1), g.class_label(-1), g.node_label(2)) == ("b", "unknown", "2")
    np.testing.assert_array_equal(g.features.toarray(), np.eye(3))  # identity default
