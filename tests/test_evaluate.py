"""The ground-truth protocol (namjax.evaluation): metric rows recomputed from the attributions with
scikit-learn, the model-grounded benchmark's provable AUROC 1.0 for complete gradient methods
(and not for structure), the randomised-model control, the summary's seed exclusion, the saved
table and page, and the CLI's user-error paths."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from namjax.cli import main
from namjax.edges import edge_contributions
from namjax.errors import OptionError
from namjax.evaluation import (
    COLUMNS,
    PROTOCOLS,
    Evaluation,
    evaluate,
    evaluate_model,
    model_grounded,
    randomized_model,
)
from namjax.explainer import explain
from namjax.groundtruth import load_benchmark
from namjax.model import predict
from namjax.subgraph import khop
from namjax.training import train

METHODS = ("nam", "saliency")


@pytest.fixture(scope="module")
def small():
    """A small BA-Shapes (60 base nodes, 12 houses), a model trained on it, its evaluation."""
    bench = load_benchmark("ba-shapes", seed=0, num_base=60, m=3, num_motifs=12)
    proto = PROTOCOLS["ba-shapes"]
    model = train(bench.graph, proto.config(bench.graph), seed=0, epochs=300, patience=0).model
    return bench, model, evaluate_model(model, bench, METHODS, seed=0)


def _value(ev: Evaluation, method: str, variant: str, metric: str) -> float:
    c = ev.columns
    hit = (c["method"] == method) & (c["variant"] == variant) & (c["metric"] == metric)
    assert hit.sum() == 1, (method, variant, metric)
    return float(c["value"][hit][0])


def _targets(bench, model) -> np.ndarray:
    pred = predict(model, bench.graph).argmax(1)
    return np.flatnonzero((bench.motif >= 0) & (pred == bench.graph.labels))


def test_node_auroc_rows_are_sklearn_per_target(small):
    bench, model, ev = small
    targets = _targets(bench, model)
    assert len(targets) >= 5 and _value(ev, "model", "none", "targets") == len(targets)
    att = explain(model, bench.graph, "nam", targets, "true")
    for variant in ("signed", "abs"):
        per = []
        for t in range(len(targets)):
            s = slice(att.offsets[t], att.offsets[t + 1])
            src, score = att.sources[s], att.contributions[s, 0]
            keep = src != targets[t]
            truth = bench.motif[src[keep]] == bench.motif[targets[t]]
            score = np.abs(score[keep]) if variant == "abs" else score[keep]
            if truth.any() and not truth.all():
                per.append(roc_auc_score(truth, score))
        assert _value(ev, "nam", variant, "node_auroc") == pytest.approx(np.mean(per), abs=1e-12)


def test_edge_auroc_rows_are_sklearn_on_the_flows_and_on_node_means(small):
    bench, model, ev = small
    graph, targets = bench.graph, _targets(bench, model)
    t, u, v, flow = edge_contributions(model, graph, targets, "true").edge_scores()
    keep = u != v
    t, u, v, flow = t[keep], u[keep], v[keep], flow[keep]
    truth = (bench.motif[u] >= 0) & (bench.motif[u] == bench.motif[v])
    per = [
        roc_auc_score(truth[t == a], flow[t == a]) for a in targets if 0 < truth[t == a].mean() < 1
    ]
    assert _value(ev, "nam", "signed", "edge_auroc") == pytest.approx(np.mean(per), abs=1e-12)
    assert _value(ev, "nam", "signed", "edge_auroc_pooled") == pytest.approx(
        roc_auc_score(truth, flow), abs=1e-12
    )
    # saliency has no flows: an edge scores the mean of its two ends' saliency
    sal = explain(model, graph, "saliency", targets, "true")
    lookup = {}
    for i, a in enumerate(targets):
        s = slice(sal.offsets[i], sal.offsets[i + 1])
        lookup |= {(a, n): c for n, c in zip(sal.sources[s], sal.contributions[s, 0], strict=True)}
    score = np.array(
        [(lookup[(a, x)] + lookup[(a, y)]) / 2 for a, x, y in zip(t, u, v, strict=True)]
    )
    assert _value(ev, "saliency", "signed", "edge_auroc_pooled") == pytest.approx(
        roc_auc_score(truth, score), abs=1e-12
    )


def test_controls_and_fidelity_rows(small):
    bench, model, ev = small
    targets = _targets(bench, model)
    kh = khop(bench.graph, targets, model.config.depth)
    # hop distance recomputed: closer sources first
    pooled = []
    for i, a in enumerate(targets):
        s = slice(kh.offsets[i], kh.offsets[i + 1])
        keep = kh.nodes[s] != a
        pooled.append((bench.motif[kh.nodes[s][keep]] == bench.motif[a], -kh.hops[s][keep]))
    truth = np.concatenate([p[0] for p in pooled])
    hop = np.concatenate([p[1] for p in pooled])
    assert _value(ev, "hop_distance", "signed", "node_auroc_pooled") == pytest.approx(
        roc_auc_score(truth, hop), abs=1e-12
    )
    for method in ("nam", "walk_weight", "random"):
        plus, minus = (_value(ev, method, "signed", m) for m in ("fid_plus", "fid_minus"))
        assert 0 <= plus <= 1 and 0 <= minus <= 1
    assert not np.any(
        (ev.columns["method"] == "hop_distance") & (ev.columns["metric"] == "fid_plus")
    )


def test_randomised_model_has_random_nonzero_biases_and_other_scores(small):
    bench, model, ev = small
    control = randomized_model(model, seed=0)
    assert control.config == model.config
    for layer in control.layers:
        b = np.asarray(layer.bias[...])
        assert np.all((np.abs(b) >= 0.1) & (np.abs(b) <= 0.5)) and (b > 0).any() and (b < 0).any()
    targets = _targets(bench, model)
    trained = explain(model, bench.graph, "nam", targets, "true").contributions
    att = explain(control, bench.graph, "nam", targets, "true")
    assert not np.allclose(trained, att.contributions)
    # the control's rows come from the randomised model's scores (sklearn on them)
    row = np.repeat(np.arange(len(targets)), np.diff(att.offsets))
    other = att.sources != targets[row]
    truth = bench.motif[att.sources] == bench.motif[targets[row]]
    pooled = roc_auc_score(truth[other], att.contributions[other, 0])
    assert _value(ev, "nam:random_model", "signed", "node_auroc_pooled") == pytest.approx(
        pooled, abs=1e-12
    )
    metrics = ("node_auroc_pooled", "edge_auroc_pooled", "topk_accuracy")
    assert any(
        _value(ev, "nam", v, m) != _value(ev, "nam:random_model", v, m)
        for v in ("signed", "abs")
        for m in metrics
    )


def test_model_grounded_complete_methods_score_one_and_structure_does_not():
    bench, model = model_grounded(seed=0)
    graph, planted = bench.graph, bench.motif >= 0
    ev = evaluate_model(model, bench, ("nam", "integrated_gradients", "deeplift", "saliency"))
    assert _value(ev, "model", "none", "targets") == planted.sum()  # every node predicted 0
    # the construction, checked on the attribution: unplanted sources score exactly 0,
    # planted ones strictly more
    att = explain(model, graph, "nam", np.flatnonzero(planted), "true")
    assert np.all(att.contributions[~planted[att.sources], 0] == 0)
    assert np.all(att.contributions[planted[att.sources], 0] > 0)
    for method in ("nam", "integrated_gradients", "deeplift"):
        for variant in ("signed", "abs"):
            assert _value(ev, method, variant, "node_auroc") == 1.0
            assert _value(ev, method, variant, "node_auroc_pooled") == 1.0
            assert _value(ev, method, variant, "topk_accuracy") == 1.0
    for control in ("hop_distance", "walk_weight", "random", "saliency"):
        assert _value(ev, control, "signed", "node_auroc") < 0.8


def test_summary_excludes_seeds_that_missed_the_bar():
    rows = [  # (benchmark, method, variant, metric, value, seed)
        ("b", "model", "none", "passed_bar", 1.0, 0),
        ("b", "model", "none", "passed_bar", 0.0, 1),
        ("b", "model", "none", "passed_bar", 1.0, 2),
        ("b", "nam", "signed", "node_auroc", 0.9, 0),
        ("b", "nam", "signed", "node_auroc", 0.1, 1),
        ("b", "nam", "signed", "node_auroc", 0.7, 2),
        ("b", "random", "signed", "node_auroc", 0.5, 0),
        ("b", "random", "signed", "node_auroc", 0.5, 2),
    ]
    columns = {k: np.array([r[i] for r in rows], dtype=object) for i, k in enumerate(COLUMNS)}
    columns["value"], columns["seed"] = columns["value"].astype(float), columns["seed"].astype(int)
    out = {(r["method"], r["metric"]): r for r in Evaluation(columns).summary().to_pylist()}
    nam = out[("nam", "node_auroc")]
    assert nam["mean"] == pytest.approx(0.8) and nam["sd"] == pytest.approx(
        np.std([0.9, 0.7], ddof=1)
    )
    assert nam["seeds"] == 2 and nam["beats_controls"] is True
    assert out[("model", "passed_bar")]["seeds"] == 3  # model rows keep every seed


def test_save_reloads_the_same_rows_and_writes_one_page(small, tmp_path):
    ev = small[2]
    out = ev.save(tmp_path / "ev")
    back = Evaluation.load(out)
    for k in COLUMNS:
        if k == "value":
            np.testing.assert_array_equal(back.columns[k], ev.columns[k])
        else:
            assert back.columns[k].tolist() == ev.columns[k].tolist()
    meta = json.loads(pq.read_table(out / "results.parquet").schema.metadata[b"namjax"])
    assert meta["runs"][0]["model"] == ev.meta["runs"][0]["model"]
    page = (out / "index.html").read_text()
    assert page.count("<script>/**\n* plotly.js") + page.count("* plotly.js v") >= 1
    assert page.count('class="plotly-graph-div"') == len(METHODS)
    with pytest.raises(Exception, match="holds other files"):
        ev.save(out.parent.joinpath("ev", "results.parquet").parent.parent)


def test_evaluate_checks_its_arguments():
    with pytest.raises(OptionError, match="unknown benchmark"):
        evaluate("ba-nope")
    with pytest.raises(OptionError, match="unknown method"):
        evaluate("ba-shapes", methods=("nam", "lime"))
    with pytest.raises(OptionError, match="seeds"):
        evaluate("ba-shapes", seeds=[])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--benchmark", "ba-nope"], "invalid choice"),
        (["--benchmark", "ba-shapes", "--methods", "nam,lime"], "unknown method 'lime'"),
        (["--benchmark", "ba-shapes", "--seeds", "0"], "positive integer"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    code = _run([*argv, "--out", str(tmp_path / "out")], capsys)
    assert code[0] == 2 and message in code[2] and len(code[2].strip().splitlines()) == 1


def test_cli_checks_out_before_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "other.txt").write_text("x")
    for out, message in ((tmp_path / "file", "not a directory"), (tmp_path / "full", "other")):
        code, _, err = _run(["--benchmark", "all", "--out", str(out)], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_evaluate_writes_results(tmp_path, capsys):
    out = tmp_path / "ev"
    argv = ["--benchmark", "ba-shapes", "--methods", "nam", "--seeds", "1", "--epochs", "400"]
    code, stdout, err = _run([*argv, "--out", str(out), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["runs"][0]["benchmark"] == "ba-shapes"
    table = pq.read_table(out / "results.parquet")
    assert table.column_names == list(COLUMNS)
    assert set(table.column("method").to_pylist()) >= {"nam", "nam:random_model", "walk_weight"}


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(["evaluate", *argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err
