"""Deletion curves: exactness against a float64 full-graph oracle, invariants, rankings, metrics."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from flax import nnx
from models import ARCHS, random_model

from namjax.errors import AttributionError, ModelError, NamjaxError, OptionError
from namjax.explainer import nam
from namjax.model import GNN, GNNConfig, cast_steps, device_graph, forward, predict
from namjax.perturb import (
    Perturbation,
    deletion_curves,
    reference_logits,
)

LEVELS = (0.0, 0.3, 0.6, 1.0)


def _rel(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-12))


def _gcn_layers64(model: GNN) -> list[tuple[np.ndarray, np.ndarray]]:
    """A GCN's ``(W, b)`` per layer in float64 (zero biases for bias-free layers)."""
    return [
        (
            np.asarray(s.terms[0].weight, np.float64),
            np.zeros(s.terms[0].weight.shape[1]) if s.bias is None else np.asarray(s.bias),
        )
        for s in model.steps()
    ]


def _full_logits64(model: GNN, graph, features=None):
    """float64 full-graph forward pass (dense features; ``features`` replaces them)."""
    steps = cast_steps(model.steps(), jnp.float64)
    dg = device_graph(graph, model.operators, jnp.float64, sparse_features=False)
    return forward(steps, dg if features is None else dg._replace(features=features))


@pytest.fixture(scope="module")
def karate_runs(karate, karate_model):
    """Both modes on every karate node, every ranking, two random seeds."""
    targets = np.arange(karate.num_nodes)
    return {
        mode: deletion_curves(karate_model, karate, targets, levels=LEVELS, mode=mode, seeds=2)
        for mode in ("remove", "zero")
    }


@pytest.fixture(scope="module")
def cora_run(cora, cora_model):
    """The paper's experiment on Cora's test nodes (default levels, rankings, 5 seeds)."""
    return deletion_curves(cora_model, cora)


def _deleted(result: Perturbation, row: int, t: int, column: int) -> np.ndarray:
    """Node ids deleted for curve row ``row``, target index ``t``, interval column ``column``."""
    kh = result.khop
    sl = slice(kh.offsets[t], kh.offsets[t + 1])
    lo, hi = result.deletion_intervals[t, column]
    ranks = result.ranks[row, sl]
    return kh.nodes[sl][(ranks >= lo) & (ranks < hi)]


def _worst_grid_error(res: Perturbation, model, graph) -> float:
    """Largest relative error of every grid level's logits against the float64 oracle."""
    worst = 0.0
    for t, target in enumerate(res.targets):
        for row in range(len(res.rankings)):
            for column in range(3, res.deletion_intervals.shape[1]):
                deleted = _deleted(res, row, t, column)
                ref = reference_logits(model, graph, int(target), deleted, res.mode)
                worst = max(worst, _rel(res.logits[row, column - 3, t], ref))
    return worst


@pytest.mark.parametrize("mode", ["remove", "zero"])
@pytest.mark.slow
def test_vectorised_equals_full_graph_reference_loop(karate_runs, karate, karate_model, mode):
    """Every (target, ranking, level, fidelity perturbation) against a float64 recomputation
    of the whole graph with the deleted nodes removed (or zeroed)."""
    res = karate_runs[mode]
    worst = 0.0
    for t, target in list(enumerate(res.targets))[::2]:
        for row in range(len(res.rankings)):
            for column in range(res.deletion_intervals.shape[1]):
                ref = reference_logits(
                    karate_model, karate, int(target), _deleted(res, row, t, column), mode
                )
                if column == 0:
                    got = res.original[t]
                elif column < 3:
                    got = res.fidelity_logits[row, column - 1, t]
                else:
                    got = res.logits[row, column - 3, t]
                worst = max(worst, _rel(got, ref))
    assert worst < 1e-5


@pytest.mark.parametrize(
    ("hidden", "activation", "mode"),
    [((), "relu", "zero"), ((8, 8), "tanh", "remove")],
)
def test_other_depths_and_activations_match_the_reference(karate, hidden, activation, mode):
    """K = 1 and 3 with untrained weights and non-ReLU activations, against the oracle."""
    config = GNNConfig.create(
        "gcn", karate.num_features, karate.num_classes, hidden, activation=activation
    )
    model = GNN(config, rngs=nnx.Rngs(3))
    targets = np.array([0, 2, 16, 33])
    res = deletion_curves(
        model,
        karate,
        targets,
        levels=(0.0, 0.4, 1.0),
        mode=mode,
        rankings=("structure", "random"),
        seeds=1,
    )
    assert _worst_grid_error(res, model, karate) < 1e-5


@pytest.mark.slow
def test_cora_matches_reference_on_hub_neighbourhoods(cora_run, cora, cora_model):
    """The largest test-node neighbourhoods (renormalisation around hubs) against the oracle."""
    res = cora_run
    sizes = np.diff(res.khop.offsets)
    for t in np.argsort(-sizes)[:3]:
        for row in (res.rankings.index(("nam", -1)), res.rankings.index(("random", 0))):
            for column in (4, 6, 8):  # p = 0.1, 0.3, 0.5
                deleted = _deleted(res, row, t, column)
                assert len(deleted) > 0
                ref = reference_logits(cora_model, cora, int(res.targets[t]), deleted)
                assert _rel(res.logits[row, column - 3, t], ref) < 1e-5


@pytest.mark.slow
def test_p0_reproduces_original_predictions(cora_run, cora, cora_model):
    res = cora_run
    full = predict(cora_model, cora)[res.targets]
    assert res.levels[0] == 0.0
    assert _rel(res.original, full) < 1e-5
    np.testing.assert_array_equal(res.predicted, full.argmax(-1))
    for row in range(len(res.rankings)):
        np.testing.assert_array_equal(res.logits[row, 0], res.original)
    curves = res.curves()
    at0 = curves["p"] == 0.0
    np.testing.assert_array_equal(curves["unchanged"][at0], 1.0)
    np.testing.assert_allclose(curves["prob_drop"][at0], 0.0, atol=1e-12)
    acc = (full.argmax(-1) == cora.labels[res.targets]).mean()
    np.testing.assert_allclose(curves["accuracy"][at0], acc)


@pytest.mark.slow
def test_deleting_all_neighbours_equals_the_node_alone(cora_run, cora, cora_model):
    """At p = 1 every ranking leaves v alone: Â = [1], so Z = σ(... σ(x_v W1 + b1) ...) Wk + bk."""
    res = cora_run
    x = cora.features[res.targets].toarray().astype(np.float64)
    h = x
    params = _gcn_layers64(cora_model)
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = np.maximum(h, 0.0)
    assert res.levels[-1] == 1.0
    for row in range(len(res.rankings)):
        assert _rel(res.logits[row, -1], h) < 1e-5


@pytest.mark.slow
def test_nam_beats_random_on_cora(cora_run):
    """The paper's Fig. 6 claim: NAM's most-important-first curve lies below random at every
    0 < p < 1, with a clearly lower AUC; the reversed order keeps accuracy above random."""
    res = cora_run
    c = res.curves()
    inner = (c["p"] > 0) & (c["p"] < 1)
    nam_acc = c["accuracy"][(c["ranking"] == "nam") & inner]
    rand = c["accuracy"][(c["ranking"] == "random") & inner].reshape(-1, len(nam_acc)).mean(0)
    rev = c["accuracy"][(c["ranking"] == "nam_reversed") & inner]
    assert np.all(nam_acc < rand)
    assert np.all(rev > nam_acc)
    auc = res.auc()
    assert auc["random"] - auc["nam"] > 0.03
    assert auc["nam_reversed"] > auc["random"]


@pytest.mark.slow
def test_rankings_follow_their_scores(karate_runs, karate, karate_model):
    """Scores equal independent full-graph quantities, and orders sort them, largest first."""
    res = karate_runs["remove"]
    attr = nam(karate_model, karate, res.targets, classes="predicted")
    a_hat = karate.normalized_adjacency.astype(np.float64)
    walk = (a_hat @ a_hat).toarray()  # K = 2
    x = jnp.asarray(karate.features.toarray(), jnp.float64)
    for t, target in enumerate(res.targets):
        sl = slice(res.khop.offsets[t], res.khop.offsets[t + 1])
        nodes = res.khop.nodes[sl]
        c = int(res.predicted[t])
        # NAM: the engine's contributions to the predicted class, in this layout
        src, _, contrib = attr.for_target(int(target))
        lookup = dict(zip(src.tolist(), contrib[:, 0].tolist(), strict=True))
        np.testing.assert_allclose(res.scores["nam"][sl], [lookup[u] for u in nodes], rtol=1e-6)
        # structure: (Â^2)[v, u]
        np.testing.assert_allclose(res.scores["structure"][sl], walk[target, nodes], rtol=1e-5)
        # saliency: Σ_i |∂Z[v, c] / ∂X[u, i]| on the full graph, float64 (Captum's Saliency)
        grad = jax.grad(
            lambda feats, v=int(target), c=c: _full_logits64(karate_model, karate, feats)[v, c]
        )(x)
        np.testing.assert_allclose(
            res.scores["saliency"][sl],
            np.abs(np.asarray(grad)[nodes]).sum(axis=1),
            rtol=1e-4,
            atol=1e-7,
        )
        # occlusion: logit drop when one neighbour alone is removed
        for u in nodes[1:3]:
            drop = (
                reference_logits(karate_model, karate, int(target), [])[c]
                - reference_logits(karate_model, karate, int(target), [u])[c]
            )
            got = res.scores["occlusion"][sl][nodes == u][0]
            assert abs(got - drop) <= 1e-5 * max(1.0, abs(drop))
        for name in ("nam", "nam_abs", "structure", "saliency", "occlusion"):
            order = res.deletion_order(name, int(target))
            score = dict(zip(nodes.tolist(), res.scores[name][sl].tolist(), strict=True))
            values = [score[u] for u in order]
            assert np.all(np.diff(values) <= 0)
            assert target not in order and len(order) == len(nodes) - 1
    np.testing.assert_array_equal(res.scores["nam_reversed"], -res.scores["nam"])


@pytest.mark.slow
def test_rankings_are_deterministic_for_a_seed(karate_runs, karate, karate_model):
    first = karate_runs["remove"]
    again = deletion_curves(karate_model, karate, first.targets, levels=LEVELS, seeds=3)
    np.testing.assert_array_equal(again.ranks[: len(first.rankings)], first.ranks)
    np.testing.assert_array_equal(again.logits[: len(first.rankings)], first.logits)
    seed0 = first.rankings.index(("random", 0))
    with pytest.raises(AttributionError, match="not among"):
        first.deletion_order("nam", 999)
    with pytest.raises(OptionError, match="seed 7"):
        first.deletion_order("random", 0, seed=7)
    assert not np.array_equal(first.ranks[seed0], first.ranks[seed0 + 1])
    for row in range(len(first.rankings)):  # every ranking is a permutation per target
        for t in range(len(first.targets)):
            sl = slice(first.khop.offsets[t], first.khop.offsets[t + 1])
            np.testing.assert_array_equal(
                np.sort(first.ranks[row, sl]), np.arange(sl.stop - sl.start)
            )


@pytest.mark.slow
def test_fidelity_matches_pyg_definitions(cora_run):
    """fid+ at sparsity 0.8 deletes the same top 20% as the grid level p = 0.2, so model-kind
    fid+ equals 1 - unchanged there; fid- uses keep-only-S predictions (checked by the oracle
    test); phenomenon-kind values follow the formula on the stored logits."""
    res = cora_run
    c = res.curves()
    fid = res.fidelity("model")
    level = np.isclose(c["p"], 0.2)
    for name in ("nam", "saliency", "structure"):
        unchanged = c["unchanged"][level & (c["ranking"] == name)][0]
        assert fid[name]["fid_plus"] == pytest.approx(1.0 - unchanged)
    y = res.labels
    correct = res.predicted == y
    for name, values in res.fidelity("phenomenon").items():
        rows = [i for i, (r, _) in enumerate(res.rankings) if r == name]
        pred = res.fidelity_logits[rows].argmax(-1)
        expect = np.abs(correct[None, None] * 1.0 - (pred == y)).mean(-1).mean(0)
        assert values["fid_plus"] == pytest.approx(expect[0])
        assert values["fid_minus"] == pytest.approx(expect[1])
    assert fid["nam"]["fid_plus"] > fid["random"]["fid_plus"]
    assert fid["nam"]["fid_minus"] < fid["random"]["fid_minus"]


def test_auc_and_metrics_on_a_constructed_result():
    """Accuracy 1, 1/2, 0 over p = 0, 1/2, 1 has AUC 1/2; random seeds give mean and sd."""
    labels = np.array([0, 1])
    right, wrong = np.array([[5.0, 0.0], [0.0, 5.0]]), np.array([[0.0, 5.0], [5.0, 0.0]])
    half = np.array([[5.0, 0.0], [5.0, 0.0]])
    logits = np.stack(
        [
            np.stack([right, half, wrong]),
            np.stack([right, right, half]),
            np.stack([right, right, right]),
        ]
    )
    res = Perturbation(
        targets=np.array([0, 1]),
        labels=labels,
        mode="remove",
        levels=np.array([0.0, 0.5, 1.0]),
        sparsity=0.5,
        rankings=(("nam", -1), ("random", 0), ("random", 1)),
        original=right,
        logits=logits,
        fidelity_logits=np.stack([np.stack([wrong, right])] * 3),
        khop=None,
        scores={},
        ranks=np.zeros((3, 0), np.int32),
        deletion_intervals=np.zeros((2, 6, 2), np.int32),
    )
    auc = res.auc()
    assert auc["nam"] == pytest.approx(0.5)
    assert auc["random"] == pytest.approx((0.875 + 1.0) / 2)
    assert auc["random_sd"] == pytest.approx(np.std([0.875, 1.0], ddof=1))
    c = res.curves()
    assert c["unchanged"].tolist() == [1.0, 0.5, 0.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0]
    p_right = np.exp(5) / (1 + np.exp(5))
    assert c["prob_drop"][2] == pytest.approx(p_right - (1 - p_right))
    fid = res.fidelity("model")["nam"]
    assert fid == {"fid_plus": 1.0, "fid_minus": 0.0}
    assert res.summary()["auc_gap_random_minus_nam"] == pytest.approx(auc["random"] - 0.5)


def test_bad_arguments_raise_one_line_errors(karate, karate_model, cora):
    cases = [
        ({"mode": "drop"}, "deletion mode must be one of remove, zero"),
        ({"rankings": ("nam", "bogus")}, "rankings must be"),
        ({"levels": [0.0, 1.5]}, "fractions in [0, 1]"),
        ({"levels": [0.0, float("nan")]}, "fractions in [0, 1]"),
        ({"levels": [0.5, 0.2]}, "strictly increasing"),
        ({"sparsity": 2.0}, "sparsity"),
        ({"seeds": 0}, "seeds >= 1"),
        ({"targets": [0, 99]}, "out of range"),
        ({"targets": [1, 1]}, "more than once"),
    ]
    for kwargs, message in cases:
        with pytest.raises(NamjaxError, match=message.replace("[", r"\[").replace("]", r"\]")):
            deletion_curves(karate_model, karate, **{"targets": [0, 1], **kwargs})
    with pytest.raises(ModelError, match="features"):
        deletion_curves(karate_model, cora)
    other = random_model(karate, hidden=(16,), seed=1)
    foreign = nam(other, karate, targets=[0, 1], classes="predicted")
    with pytest.raises(AttributionError, match="another model"):
        deletion_curves(karate_model, karate, targets=[0, 1], attribution=foreign)


@pytest.mark.slow
def test_cli_writes_curves_and_figure(tmp_path, karate, karate_model, capsys):
    from namjax.cli import main
    from namjax.io import save_model
    from namjax.model import model_fingerprint

    save_model(karate_model, karate, tmp_path / "model")
    out = tmp_path / "perturb"
    code = main(
        [
            "perturb",
            "--model",
            str(tmp_path / "model"),
            "--dataset",
            "karate",
            "--seeds",
            "2",
            "--rankings",
            "nam,random",
            "--mode",
            "zero",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["auc"]) == {"nam", "random", "random_sd"}
    assert summary["auc_gap_random_minus_nam"] == pytest.approx(
        summary["auc"]["random"] - summary["auc"]["nam"]
    )
    assert summary["mode"] == "zero"
    table = pq.read_table(out / "curves.parquet")
    assert table.column_names == ["ranking", "seed", "p", "accuracy", "unchanged", "prob_drop"]
    meta = json.loads(table.schema.metadata[b"namjax"])
    assert meta["graph"] == karate.fingerprint and meta["mode"] == "zero"
    assert meta["model"] == model_fingerprint(karate_model) and meta["targets"] == 18
    assert table.num_rows == 3 * 11
    assert table.column("seed").to_pylist()[:12] == [-1] * 11 + [0]
    html = (out / "deletion.html").read_text()
    # the legend names the random curve with its runs and its AUC (mean ± sd)
    assert "plotly" in html.lower() and '"name":"random (mean \\u00b1 sd of 2) \\u00b7 AUC ' in html
    assert (
        main(
            [
                "perturb",
                "--model",
                str(tmp_path / "missing"),
                "--dataset",
                "karate",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "perturb",
                "--model",
                str(tmp_path / "model"),
                "--dataset",
                "karate",
                "--out",
                str(out),
                "--seeds",
                "0",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("namjax perturb: error:") for line in err)


def test_reference_oracle_agrees_with_the_model_when_nothing_is_deleted(karate, karate_model):
    """The oracle itself: with no deletion it is the model's own forward pass."""
    full = np.asarray(predict(karate_model, karate))
    for v in (0, 11, 33):
        assert _rel(reference_logits(karate_model, karate, v, []), full[v]) < 1e-5
    # removing a node equals zeroing all its edges (isolated nodes cannot influence v)
    a = karate.adjacency.tolil()
    a[:, 5] = 0
    a[5, :] = 0
    iso = type(karate).from_scipy(sp.csr_matrix(a), karate.features, karate.labels)
    z = np.asarray(_full_logits64(karate_model, iso))
    assert _rel(reference_logits(karate_model, karate, 0, [5]), z[0]) < 1e-6  # float32 Â


@pytest.mark.parametrize("arch", ARCHS[1:])
@pytest.mark.parametrize("mode", ["remove", "zero"])
def test_every_arch_matches_the_reference(karate, arch, mode):
    """SGC, GraphSAGE (mean over the neighbours left) and GIN (sum) under deletions, against
    the float64 full-graph oracle that rebuilds each operator from its definition."""
    model = random_model(karate, hidden=(8,), seed=4, arch=arch)
    targets = np.array([0, 5, 16, 33])
    res = deletion_curves(
        model,
        karate,
        targets,
        levels=(0.0, 0.5, 1.0),
        mode=mode,
        rankings=("nam", "random"),
        seeds=1,
    )
    assert _worst_grid_error(res, model, karate) < 1e-5
