"""The per-target subgraph engine (``nam(..., engine="subgraph")``) against the float64 oracle,
the pairs engine, and its own unbatched per-target function."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from models import assert_complete, assert_matches_oracle, oracle, random_model
from test_nam import graphs

from namjax.engine.globalpass import GLOBAL, global_pass
from namjax.engine.subgraph import BUCKET, explain_one, pack
from namjax.errors import OptionError
from namjax.explainer import nam
from namjax.subgraph import khop


def assert_engines_agree(model, graph, **kwargs) -> tuple:
    """Both engines on the same call; contributions equal to 1e-6 of their largest."""
    pairs = nam(model, graph, **kwargs)
    sub = nam(model, graph, engine="subgraph", **kwargs)
    for name in ("targets", "offsets", "sources", "hops", "classes", "logits", "bias"):
        np.testing.assert_array_equal(getattr(sub, name), getattr(pairs, name))
    scale = np.abs(pairs.contributions).max() + 1e-30
    assert np.abs(sub.contributions - pairs.contributions).max() / scale <= 1e-6
    return pairs, sub


@pytest.mark.slow
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(graph=graphs(), depth=st.sampled_from([1, 2, 3]), seed=st.integers(0, 3))
def test_random_graphs_match_oracle_and_pairs(graph, depth, seed):
    model = random_model(graph, hidden=(5, 6)[: depth - 1], seed=seed)
    _, sub = assert_engines_agree(model, graph)
    assert np.isfinite(sub.contributions).all()
    assert_matches_oracle(sub, model, graph)
    assert_complete(sub)


@pytest.mark.slow
def test_cora_matches_oracle_and_pairs(cora, cora_model):
    degree = np.diff(cora.adjacency.indptr)
    rng = np.random.default_rng(1)
    targets = np.unique(np.r_[degree.argmax(), degree.argmin(), rng.choice(cora.num_nodes, 10)])
    assert_matches_oracle(nam(cora_model, cora, targets, engine="subgraph"), cora_model, cora)
    _, sub = assert_engines_agree(cora_model, cora)  # every target and class of Cora
    assert_complete(sub)
    assert 1 < sub.stats["buckets"] <= 8 and sub.stats["chunks"] >= sub.stats["buckets"]
    assert 1.0 <= sub.stats["padding_overhead"] < 4.0
    assert 1.0 <= sub.stats["edge_padding_overhead"] < 4.0


def test_vmapped_bucket_equals_one_target_at_a_time(cora):
    model = random_model(cora, hidden=(6, 5), seed=11)
    gp, _ = global_pass(model, cora, np.float32)
    targets = np.random.default_rng(2).choice(cora.num_nodes, 120, replace=False)
    packed, _ = pack(cora, khop(cora, targets, 3))
    assert len(packed) >= 2
    one = jax.jit(explain_one)
    state = (gp.steps, gp.values, gp.p, gp.slopes)
    for bk, (nodes, senders, receivers, pos), _ in packed:
        batched = np.asarray(BUCKET(*state, nodes, senders, receivers, pos))
        for row, ids in enumerate(nodes):
            single = one(
                gp.steps,
                gp.values,
                gp.p[ids],
                tuple(None if s is None else s[ids] for s in gp.slopes),
                senders[row],
                receivers[row],
                pos[row],
            )
            np.testing.assert_allclose(batched[row], single, rtol=1e-6, atol=1e-7)
            padding = ~bk.mask[row]
            assert np.all(batched[row][padding] == 0.0)


def test_chunking_and_order_change_nothing(karate):
    model = random_model(karate, hidden=(8, 8), seed=3)
    whole = nam(model, karate, engine="subgraph")
    single = nam(model, karate, engine="subgraph", chunk_budget_bytes=1)  # one target a call
    assert single.stats["chunks"] == karate.num_nodes
    order = np.random.default_rng(0).permutation(karate.num_nodes)
    permuted = nam(model, karate, targets=order, engine="subgraph")
    alone = {node: nam(model, karate, targets=[node], engine="subgraph") for node in (0, 11, 33)}
    for node in range(karate.num_nodes):
        ref = whole.for_target(node)
        for other in (single, permuted, alone.get(node, whole)):  # other bucket shapes
            got = other.for_target(node)
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_allclose(got[2], ref[2], rtol=1e-6, atol=1e-7)


def test_second_call_compiles_nothing(karate):
    model = random_model(karate, hidden=(8,), seed=4)
    first = nam(model, karate, engine="subgraph")
    traces = (GLOBAL.traces, BUCKET.traces)
    again = nam(model, karate, engine="subgraph")
    other = nam(random_model(karate, hidden=(8,), seed=5), karate, engine="subgraph")
    assert (GLOBAL.traces, BUCKET.traces) == traces
    assert again.stats["compiled"] == 0 and other.stats["compiled"] == 0
    assert first.stats["compile_s"] >= again.stats["compile_s"] == 0.0
    assert not np.allclose(other.contributions, first.contributions)


def test_float64(karate):
    model = random_model(karate, hidden=(8, 8), seed=9)
    att = nam(model, karate, engine="subgraph", dtype=jnp.float64)  # tests run with x64 enabled
    assert att.contributions.dtype == np.float64
    ref, _, _ = oracle(model, karate, att.targets)
    want = np.transpose(ref, (0, 2, 1))  # (T, N, C)
    assert np.abs(att.dense() - want).max() <= 1e-9 * np.abs(want).max()


def test_unknown_engine_is_one_clear_error(karate):
    with pytest.raises(OptionError, match="engine must be one of pairs, subgraph"):
        nam(random_model(karate, hidden=(4,)), karate, engine="dense")


def test_cli_explain_engine(karate, tmp_path, capsys):
    import pyarrow.parquet as pq

    from namjax.cli import main
    from namjax.io import save_model

    model = random_model(karate, hidden=(8,), seed=8)
    save_model(model, karate, tmp_path / "model")
    argv = ["explain", "--model", str(tmp_path / "model"), "--dataset", "karate"]
    for engine in ("pairs", "subgraph"):
        assert main([*argv, "--engine", engine, "--out", str(tmp_path / engine)]) == 0
    got, want = (
        pq.read_table(tmp_path / e / "contributions.parquet")["contribution"].to_numpy()
        for e in ("subgraph", "pairs")
    )
    assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max()
    assert main([*argv, "--engine", "subgraph", "--top-k", "3", "--out", str(tmp_path / "j")]) == 2
    assert "pairs engine only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--engine", "dense", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
