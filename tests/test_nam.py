"""NAM engines against an independent float64 autodiff oracle on the full graph
(:mod:`tests.models`), for every architecture."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from models import ARCHS, assert_complete, assert_matches_oracle, oracle, random_model

from namjax.attribution import Attribution
from namjax.engine import plan as plan_module
from namjax.engine.globalpass import GLOBAL
from namjax.engine.pairs import CONTRACT, clear_plans
from namjax.engine.plan import plan_chunk
from namjax.errors import AttributionError, GraphError, ModelError, OptionError
from namjax.explainer import nam
from namjax.graph import Graph
from namjax.layers import PIECEWISE_LINEAR
from namjax.model import GNN, GNNConfig
from namjax.subgraph import khop


# ---------------------------------------------------------------------------- random graphs
@st.composite
def graphs(draw) -> Graph:
    """Small graphs with isolated nodes, input self-loops, stars, hubs, disconnected parts and
    (sometimes) weighted edges; some nodes have all-zero features."""
    n = draw(st.sampled_from([2, 9, 24]))  # few sizes: the oracle compiles once per size
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    edges = draw(st.lists(pairs, max_size=3 * n))
    if draw(st.booleans()):  # a star / hub
        hub = draw(st.integers(0, n - 1))
        edges += [(hub, v) for v in range(n) if v % 2 == 0]
    rows = [u for u, v in edges] + [v for u, v in edges]
    cols = [v for u, v in edges] + [u for u, v in edges]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    weights = np.tile(rng.uniform(0.5, 2.0, len(edges)), 2) if draw(st.booleans()) else 1.0
    adj = sp.csr_matrix(
        (np.ones(len(rows), np.float32) * weights, (rows, cols)), shape=(n, n), dtype=np.float32
    )
    feats = rng.normal(size=(n, 4)).astype(np.float32)
    feats[rng.random(n) < 0.2] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate edges and self-loops are dropped by Graph
        return Graph.from_scipy(adj, feats, rng.integers(0, 3, n), num_classes=3)


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(graph=graphs(), depth=st.sampled_from([1, 2, 3]), seed=st.integers(0, 3))
def test_random_graphs_match_oracle(graph, depth, seed):
    model = random_model(graph, hidden=(5, 6)[: depth - 1], seed=seed)
    att = nam(model, graph)
    assert np.isfinite(att.contributions).all()
    assert_matches_oracle(att, model, graph)
    assert_complete(att)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS[1:])
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(graph=graphs(), depth=st.sampled_from([1, 2, 3]), seed=st.integers(0, 3))
def test_random_graphs_match_oracle_every_arch(arch, graph, depth, seed):
    """SGC, GraphSAGE and GIN on the same hostile graphs: both engines, oracle, completeness."""
    model = random_model(graph, hidden=(5, 6)[: depth - 1], seed=seed, arch=arch)
    for engine in ("pairs", "subgraph"):
        att = nam(model, graph, engine=engine)
        assert np.isfinite(att.contributions).all()
        assert_matches_oracle(att, model, graph)
        assert_complete(att)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "identity", "tanh", "elu"])
def test_activations_match_oracle(karate, activation):
    model = random_model(karate, hidden=(8,), activation=activation, seed=1)
    att = nam(model, karate)
    assert_matches_oracle(att, model, karate)  # contributions and bias term, every activation
    if activation in PIECEWISE_LINEAR:
        assert_complete(att)


def test_float64_and_bias_free_models(karate):
    model = random_model(karate, hidden=(8,), seed=9)
    att = nam(model, karate, dtype=jnp.float64)  # tests run with x64 enabled
    assert att.contributions.dtype == np.float64
    ref, _, _ = oracle(model, karate, att.targets)
    want = np.transpose(ref, (0, 2, 1))  # (T, N, C)
    assert np.abs(att.dense() - want).max() <= 1e-9 * np.abs(want).max()
    cfg = GNNConfig.create("gcn", karate.num_features, karate.num_classes, (8,), bias=False)
    plain = nam(GNN(cfg, rngs=nnx.Rngs(1)), karate)
    assert np.all(plain.bias == 0)
    assert_complete(plain)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("engine", ["pairs", "subgraph"])
def test_isolated_targets_get_self_and_bias_only(engine, arch):
    adj = sp.csr_matrix(([1.0, 1.0], ([0, 1], [1, 0])), shape=(4, 4), dtype=np.float32)
    feats = np.array([[1, 2], [3, 4], [0, 0], [5, 6]], np.float32)  # node 2: no features
    graph = Graph.from_scipy(adj, feats, np.array([0, 1, 0, 1]))
    model = random_model(graph, hidden=(4,), arch=arch)
    att = nam(model, graph, targets=[2, 3, 0], engine=engine)
    for node in (2, 3):
        sources, hops, contrib = att.for_target(node)
        assert sources.tolist() == [node] and hops.tolist() == [0]
        assert np.isfinite(contrib).all()
    assert np.all(att.for_target(2)[2] == 0.0)
    np.testing.assert_allclose(att.bias[0], att.logits[0], rtol=1e-6)
    assert_matches_oracle(att, model, graph)
    assert_complete(att)


# ---------------------------------------------------------------------------- Cora
@pytest.fixture(scope="module")
def cora_targets(cora):
    degree = np.diff(cora.adjacency.indptr)
    rng = np.random.default_rng(0)
    return np.unique(np.r_[degree.argmax(), degree.argmin(), rng.choice(cora.num_nodes, 10)])


@pytest.mark.slow
def test_cora_trained_model_matches_oracle(cora, cora_model, cora_targets):
    att = nam(cora_model, cora, targets=cora_targets)
    assert_matches_oracle(att, cora_model, cora)
    full = nam(cora_model, cora)
    assert_complete(full)  # every target and class of Cora


@pytest.mark.slow
@pytest.mark.parametrize("hidden", [(), (16, 16)])
def test_cora_depth_1_and_3_match_oracle(cora, cora_targets, hidden):
    model = random_model(cora, hidden=hidden, seed=2)
    att = nam(model, cora, targets=cora_targets[:6])
    assert_matches_oracle(att, model, cora)
    assert_complete(att)


# ---------------------------------------------------------------------------- engine invariants
def test_chunking_order_and_single_targets_change_nothing(karate):
    model = random_model(karate, hidden=(8, 8), seed=3)
    whole = nam(model, karate)
    chunked = nam(model, karate, chunk_budget_bytes=1)  # one target per chunk
    assert chunked.stats["chunks"] == karate.num_nodes and whole.stats["chunks"] == 1
    some = nam(model, karate, chunk_budget_bytes=40_000)
    assert 1 < some.stats["chunks"] < karate.num_nodes
    np.testing.assert_allclose(some.contributions, whole.contributions, rtol=1e-6, atol=1e-7)
    order = np.random.default_rng(0).permutation(karate.num_nodes)
    permuted = nam(model, karate, targets=order)
    for node in range(karate.num_nodes):
        ref = whole.for_target(node)
        for other in (chunked, permuted, nam(model, karate, targets=[node])):
            got = other.for_target(node)
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_allclose(got[2], ref[2], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(permuted.bias, whole.bias[order], rtol=1e-6)


@pytest.mark.parametrize("depth", [2, 3])
def test_table_and_search_lookups_plan_alike(cora, monkeypatch, depth):
    """plan_chunk's two ways of locating pairs (scratch table, binary search) agree."""
    targets = np.sort(np.random.default_rng(depth).choice(cora.num_nodes, 40, replace=False))
    kh = khop(cora, targets, depth)
    plans = []
    for min_queries in (0, 2**62):  # always the table / always the search
        monkeypatch.setattr(plan_module, "TABLE_MIN_QUERIES", min_queries)
        monkeypatch.setattr(plan_module, "TABLE_ENTRIES", 3 * cora.num_nodes)  # many blocks
        plans.append(jax.tree.leaves(plan_chunk(cora, kh)))
    for table, search in zip(*plans, strict=True):
        np.testing.assert_array_equal(table, search)


def test_table_lookups_match_oracle(karate, monkeypatch):
    monkeypatch.setattr(plan_module, "TABLE_MIN_QUERIES", 0)
    monkeypatch.setattr(plan_module, "TABLE_ENTRIES", 1)  # one row per block
    model = random_model(karate, hidden=(8, 8), seed=5)
    assert_matches_oracle(nam(model, karate), model, karate)


def test_second_call_compiles_nothing(karate):
    model = random_model(karate, hidden=(8,), seed=4)
    first = nam(model, karate)
    traces = (GLOBAL.traces, CONTRACT.traces)
    again = nam(model, karate)
    other = nam(random_model(karate, hidden=(8,), seed=5), karate)  # same shapes, new weights
    assert (GLOBAL.traces, CONTRACT.traces) == traces
    assert again.stats["compiled"] == 0 and other.stats["compiled"] == 0
    assert first.stats["compile_s"] >= again.stats["compile_s"] == 0.0
    assert not np.allclose(other.contributions, first.contributions)
    for key in ("extract_s", "forward_s", "compile_s", "device_s", "total_s"):
        assert key in again.stats


def test_plans_are_reused_only_where_they_apply(karate):
    """A cached plan serves other weights, methods and classes on the same graph and targets,
    with the numbers of a freshly planned call; other targets, graphs or depths plan again."""
    clear_plans()
    model = random_model(karate, hidden=(8,), seed=4)
    first = nam(model, karate)
    other = random_model(karate, hidden=(8,), seed=6)
    reused = nam(other, karate, classes="predicted")
    assert not first.stats["plan_cached"] and reused.stats["plan_cached"]
    clear_plans()
    fresh = nam(other, karate, classes="predicted")
    assert not fresh.stats["plan_cached"]
    np.testing.assert_array_equal(reused.sources, fresh.sources)
    np.testing.assert_array_equal(reused.contributions, fresh.contributions)
    assert nam(model, karate, targets=[0, 1]).stats["plan_cached"] is False
    assert nam(random_model(karate, hidden=(8, 8), seed=4), karate).stats["plan_cached"] is False
    rewired = Graph.from_scipy(  # the nodes' edges relabelled, the same features
        karate.adjacency[::-1, ::-1], karate.features, karate.labels, num_classes=2
    )
    again = nam(model, rewired)
    assert not again.stats["plan_cached"]
    assert_matches_oracle(again, model, rewired)


# ---------------------------------------------------------------------------- classes and API
def test_class_slots(karate):
    model = random_model(karate, hidden=(8,), seed=6)
    everything = nam(model, karate)
    predicted = nam(model, karate, classes="predicted")
    true = nam(model, karate, classes="true")
    fixed = nam(model, karate, classes=1)
    assert everything.classes.shape == (34, karate.num_classes)
    np.testing.assert_array_equal(predicted.classes[:, 0], everything.logits.argmax(1))
    np.testing.assert_array_equal(predicted.predicted, predicted.classes[:, 0])
    np.testing.assert_array_equal(true.classes[:, 0], karate.labels)
    pair_row = np.repeat(np.arange(34), np.diff(everything.offsets))
    for att in (predicted, true, fixed):
        want = everything.contributions[np.arange(len(pair_row)), att.classes[pair_row, 0]]
        np.testing.assert_array_equal(att.contributions[:, 0], want)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"targets": [0, 99]}, GraphError, "out of range"),
        ({"targets": [3, 3]}, GraphError, "more than once"),
        ({"targets": []}, GraphError, "no targets"),
        ({"classes": 7}, OptionError, "out of range"),
        ({"classes": "most"}, OptionError, "classes must be"),
        ({"engine": "fast"}, OptionError, "engine must be one of pairs, subgraph"),
    ],
)
def test_bad_input_is_one_clear_error(karate, kwargs, error, message):
    model = random_model(karate, hidden=(4,))
    with pytest.raises(error, match=message):
        nam(model, karate, **kwargs)


def test_feature_mismatch_and_unknown_labels(karate):
    model = GNN(GNNConfig.create("gcn", karate.num_features + 1, 2), rngs=nnx.Rngs(0))
    with pytest.raises(ModelError, match="features per node"):
        nam(model, karate)
    unlabeled = Graph.from_scipy(karate.adjacency, num_classes=2)
    with pytest.raises(GraphError, match="no known label"):
        nam(random_model(unlabeled, hidden=(4,)), unlabeled, classes="true")


def test_attribution_methods_and_roundtrip(karate, tmp_path):
    model = random_model(karate, hidden=(8,), seed=7)
    att = nam(model, karate, targets=[0, 33, 5])
    sources, hops, contrib = att.for_target(33)
    assert sources[0] == 33 and hops[0] == 0 and np.all(np.diff(hops) >= 0)
    ranked = att.ranked(33)
    slot = int(np.flatnonzero(att.classes[1] == att.predicted[1])[0])
    assert [r[2] for r in ranked] == sorted(contrib[:, slot].tolist(), reverse=True)
    assert len(att.ranked(33, cls=1, top_k=3)) == 3
    summary = att.hop_summary(33)
    assert summary.shape == (3, att.num_slots)
    np.testing.assert_allclose(summary.sum(0) + att.bias[1], att.logits[1], rtol=1e-5, atol=1e-5)
    for h in range(3):
        np.testing.assert_allclose(summary[h], contrib[hops == h].sum(0), rtol=1e-6)
    table = att.to_table()
    assert table.column_names == ["target", "class", "source", "hop", "contribution"]
    assert table.num_rows == len(att.sources) * att.num_slots
    path = att.save(tmp_path / "att")
    assert sorted(p.name for p in path.iterdir()) == ["contributions.parquet", "targets.parquet"]
    back = Attribution.load(path)
    for name in ("targets", "offsets", "sources", "hops", "contributions", "classes", "logits"):
        np.testing.assert_array_equal(getattr(back, name), getattr(att, name))
    for name in ("bias", "predicted", "labels"):
        np.testing.assert_array_equal(getattr(back, name), getattr(att, name))
    assert (back.num_nodes, back.depth) == (34, 2)
    assert back.provenance() == att.provenance()
    with pytest.raises(AttributionError, match="not among"):
        att.for_target(1)
    with pytest.raises(AttributionError, match="entries"):
        att.dense(max_entries=10)


# ---------------------------------------------------------------------------- CLI
def test_cli_explain_writes_tables(karate, tmp_path, capsys):
    import json

    import pyarrow.parquet as pq

    from namjax.cli import main
    from namjax.io import save_model

    model = random_model(karate, hidden=(8,), seed=8)
    save_model(model, karate, tmp_path / "model")
    out = tmp_path / "nam"
    argv = ["explain", "--model", str(tmp_path / "model"), "--dataset", "karate"]
    assert main([*argv, "--targets", "0,33", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["targets"] == 2 and summary["classes"] == karate.num_classes
    contrib = pq.read_table(out / "contributions.parquet")
    assert contrib.column_names == ["target", "class", "source", "hop", "contribution"]
    targets = pq.read_table(out / "targets.parquet")
    assert targets.column_names == [
        "target",
        "class",
        "logit",
        "bias",
        "rest",
        "sources",
        "predicted",
        "label",
    ]
    want = nam(model, karate, targets=[0, 33])
    np.testing.assert_array_equal(contrib["contribution"].to_numpy(), want.contributions.ravel())
    assert main([*argv, "--classes", "predicted", "--out", str(out)]) == 0  # its own files
    assert pq.read_table(out / "targets.parquet").num_rows == karate.num_nodes


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--targets", "0,99"], "target id 99 is out of range"),
        (["--targets", "1,x"], "--targets must be"),
        (["--targets", "2,2"], "more than once"),
    ],
)
def test_cli_explain_bad_targets(karate, tmp_path, capsys, extra, message):
    from namjax.cli import main
    from namjax.io import save_model

    save_model(random_model(karate, hidden=(4,)), karate, tmp_path / "m")
    argv = ["explain", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_cli_explain_model_dataset_mismatch(karate, tmp_path, capsys):
    from namjax.cli import main
    from namjax.io import save_model

    other = Graph.from_scipy(karate.adjacency, karate.features, (karate.labels + 1) % 2)
    save_model(random_model(other, hidden=(4,)), other, tmp_path / "m")
    argv = ["explain", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--dataset", "karate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fingerprint" in err
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_cli_dataset_defaults_to_the_models(karate, tmp_path, capsys):
    """Without --dataset, a command loads the dataset recorded in the model directory."""
    import json

    from namjax.cli import main
    from namjax.io import model_info, save_model

    model = random_model(karate, hidden=(4,))
    save_model(model, karate, tmp_path / "m")
    assert model_info(tmp_path / "m")["dataset"] == "karate"
    argv = ["explain", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o"), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["dataset"] == "karate"
