"""K-hop extraction, local edge lists and bucketing against networkx / brute-force loops."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from namjax.graph import Graph, GraphError
from namjax.subgraph import bucket, khop, next_pow2, round_up, size_buckets


@st.composite
def graphs(draw) -> Graph:
    n = draw(st.integers(1, 30))
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    edges = draw(st.lists(pairs, max_size=2 * n))
    weights = draw(st.lists(st.floats(0.5, 3.0), min_size=len(edges), max_size=len(edges)))
    rows = [u for u, _ in edges] + [v for _, v in edges]
    cols = [v for _, v in edges] + [u for u, _ in edges]
    adj = sp.csr_matrix((np.array(weights * 2, np.float32), (rows, cols)), shape=(n, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self-loops and duplicates are dropped by Graph
        return Graph.from_scipy(adj)


def bfs_hops(graph: Graph, target: int, k: int) -> dict[int, int]:
    g = nx.from_scipy_sparse_array(graph.adjacency)
    return nx.single_source_shortest_path_length(g, target, cutoff=k)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(graph=graphs(), k=st.integers(0, 3), data=st.data())
def test_khop_matches_bfs(graph, k, data):
    targets = data.draw(st.lists(st.integers(0, graph.num_nodes - 1), min_size=1, max_size=6))
    kh = khop(graph, targets, k)
    assert kh.offsets[0] == 0 and kh.offsets[-1] == kh.num_pairs
    for t, target in enumerate(targets):
        nodes = kh.nodes[kh.offsets[t] : kh.offsets[t + 1]]
        hops = kh.hops[kh.offsets[t] : kh.offsets[t + 1]]
        want = bfs_hops(graph, target, k)
        assert nodes[0] == target and hops[0] == 0
        assert dict(zip(nodes.tolist(), hops.tolist(), strict=True)) == want
        order = sorted(want, key=lambda v: (want[v], v))
        assert nodes.tolist() == order  # by hop, then by id
        assert kh.level_sizes[t].tolist() == [
            sum(h <= d for h in want.values()) for d in range(k + 1)
        ]
        assert (kh.local_index(np.full(len(nodes), t), nodes) == np.arange(len(nodes))).all()
    absent = np.setdiff1d(np.arange(graph.num_nodes), kh.nodes[: kh.offsets[1]])
    assert (kh.local_index(np.zeros(len(absent), int), absent) == -1).all()
    keys = (kh.pair_target * graph.num_nodes + kh.nodes)[kh.by_node]
    assert (np.diff(keys) > 0).all()


@settings(max_examples=30, deadline=None, derandomize=True)
@given(graph=graphs(), k=st.integers(1, 3), inner=st.sampled_from(["", "send", "recv", "both"]))
def test_local_edges_are_the_induced_subgraph(graph, k, inner):
    targets = np.arange(graph.num_nodes)
    kh = khop(graph, targets, k)
    max_send = k - 1 if inner in ("send", "both") else k
    max_recv = k - 1 if inner in ("recv", "both") else k
    edges = kh.edges(graph, max_sender_hop=max_send, max_receiver_hop=max_recv)
    a_hat = graph.normalized_adjacency.toarray()
    a = graph.adjacency.toarray()
    mean = graph.propagation("binary", 0.0, "row")  # not symmetric: Op[v, u] = 1 / deg(v)
    for t in targets:
        nodes = kh.nodes[kh.offsets[t] : kh.offsets[t + 1]]
        hops = kh.hops[kh.offsets[t] : kh.offsets[t + 1]]
        e = slice(edges.offsets[t], edges.offsets[t + 1])
        pos = edges.pos[e]
        raw = np.where(edges.senders[e] == edges.receivers[e], 0.0, graph.pattern.data[pos])
        got = {
            (int(nodes[s]), int(nodes[r])): (float(w), float(x), float(m))
            for s, r, w, x, m in zip(
                edges.senders[e],
                edges.receivers[e],
                graph.normalized_adjacency.data[pos],
                raw,
                mean.data[pos],
                strict=True,
            )
        }
        degree = np.maximum((a > 0).sum(axis=1), 1)
        want = {
            (int(u), int(v)): (
                float(a_hat[v, u]),
                float(a[v, u]),
                float(np.float32((a[v, u] > 0) / degree[v])),
            )
            for i, u in enumerate(nodes)
            for j, v in enumerate(nodes)
            if hops[i] <= max_send and hops[j] <= max_recv and (u == v or a[v, u] > 0)
        }
        assert got == want


def test_rows_is_the_khop_of_a_slice(karate):
    kh = khop(karate, np.arange(34), 2)
    part = kh.rows(5, 12)
    ref = khop(karate, np.arange(5, 12), 2)
    for name in ("targets", "offsets", "nodes", "hops", "by_node"):
        np.testing.assert_array_equal(getattr(part, name), getattr(ref, name))


def test_bucket_packs_every_target_once(karate):
    kh = khop(karate, np.arange(34), 2)
    buckets, stats = bucket(kh)
    seen = np.concatenate([b.rows for b in buckets])
    assert sorted(seen.tolist()) == list(range(34))
    for b in buckets:
        sizes = kh.level_sizes[b.rows]
        assert (next_pow2(sizes) == np.asarray(b.sizes)).all()
        assert (b.mask.sum(1) == sizes[:, -1]).all()
        for row, t in enumerate(b.rows):
            np.testing.assert_array_equal(
                b.nodes[row][b.mask[row]], kh.nodes[kh.offsets[t] : kh.offsets[t + 1]]
            )
    assert stats["pairs"] == kh.num_pairs
    assert stats["padded_pairs"] == sum(b.mask.size for b in buckets)


def test_bucket_padding_overhead_on_cora(cora):
    kh = khop(cora, np.arange(cora.num_nodes), 2)
    _, stats = bucket(kh)
    assert stats["padding_overhead"] < 1.6  # power-of-two buckets
    assert stats["max_padding_overhead"] > 10  # one size for all would waste > 10x


def test_size_buckets_merge_small_groups(cora):
    kh = khop(cora, np.arange(cora.num_nodes), 2)
    size = np.diff(kh.offsets)
    buckets = size_buckets(kh, min_width=16, min_targets=400)
    seen = np.concatenate([b.rows for b in buckets])
    assert sorted(seen.tolist()) == list(range(cora.num_nodes))
    groups = np.unique(next_pow2(np.maximum(size, 16)))
    assert len(buckets) < len(groups)  # the groups of few targets were merged
    for i, b in enumerate(buckets):
        assert len(b.rows) >= 400 or i == len(buckets) - 1
        assert b.nodes.shape[1] == b.sizes[-1] >= max(16, size[b.rows].max())
        assert (np.asarray(b.sizes) >= kh.level_sizes[b.rows]).all()  # prefixes stay valid
        assert (b.mask.sum(1) == size[b.rows]).all()
        np.testing.assert_array_equal(
            b.nodes[b.mask],
            kh.nodes[np.concatenate([np.arange(kh.offsets[t], kh.offsets[t + 1]) for t in b.rows])],
        )
    assert max(next_pow2(size[b.rows]).max() for b in buckets[:-1]) < next_pow2(size).max()


@given(x=st.integers(1, 10**7))
def test_round_up_is_tight(x):
    y = round_up(x)
    assert x <= y < x + max(next_pow2(x) // 8, 1) and round_up(y) == y
    assert y <= 8 or y * 8 % next_pow2(y) == 0  # one of 8 sizes per power of two


def test_bad_targets_raise(karate):
    with pytest.raises(GraphError, match="out of range"):
        khop(karate, [0, 34], 2)
    with pytest.raises(GraphError, match="K must be"):
        khop(karate, [0], -1)
