"""NIV figures: what is drawn, how it is encoded, escaping, layout, output and the CLI."""

from __future__ import annotations

import dataclasses
import json
import re

import networkx as nx
import numpy as np
import plotly.graph_objects as go
import pytest
from niv_case import (
    CLASS_NAMES,
    CONTRIB,
    EVIL_CLASS,
    EVIL_NODE,
    HOPS_FROM_0,
    LABELS,
    NODE_NAMES,
    PREDICTED,
    evil_attribution,
    evil_graph,
)

from namjax.errors import AttributionError, OutputError, ViewError
from namjax.graph import Graph
from namjax.views.niv import (
    MAX_DIAMETER,
    MIN_DIAMETER,
    PALETTE,
    UNKNOWN_COLOUR,
    niv,
    niv_bars,
    niv_paths,
    ring_layout,
    write_figure,
)

NODE_RE = re.compile(r"<b>node (\d+)")


@pytest.fixture(scope="module")
def case():
    return evil_graph(), evil_attribution()


def drawn(fig: go.Figure) -> dict[int, dict]:
    """Node id -> its marker's properties, read back from the node traces' hover text."""
    out = {}
    for tr in fig.data:
        if not (tr.uid or "").startswith("niv-nodes-"):
            continue
        for i, text in enumerate(tr.hovertext):
            out[int(NODE_RE.search(text)[1])] = {
                "xy": np.array([tr.x[i], tr.y[i]]),
                "size": tr.marker.size[i],
                "symbol": tr.marker.symbol[i],
                "colour": tr.marker.color,
                "cls": int(tr.uid[len("niv-nodes-") :]),
                "hover": text,
            }
    return out


def all_strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in all_strings(v)]
    if isinstance(obj, list | tuple):
        return [s for v in obj for s in all_strings(v)]
    return []


# ------------------------------------------------------------------------------ what is drawn
@pytest.mark.parametrize("hops", [1, 2])
def test_draws_target_and_neighbours_within_hops(case, hops):
    graph, result = case
    fig = niv(result, graph, 0, hops, top_k=None, predictions=PREDICTED)
    assert set(drawn(fig)) == set(np.flatnonzero(HOPS_FROM_0 <= hops))
    assert fig.layout.meta["hidden"] == 0


def test_markers_encode_class_sign_and_area(case):
    graph, result = case
    fig = niv(result, graph, 0, 2, top_k=None, predictions=PREDICTED)
    marks = drawn(fig)
    c = CONTRIB[:, 0]  # the target's predicted class is 0
    big = np.abs(c).max()
    for v, m in marks.items():
        assert m["colour"] == PALETTE[PREDICTED[v]]
        assert m["cls"] == PREDICTED[v]
        assert m["symbol"] == {1: "triangle-up", -1: "triangle-down", 0: "circle"}[np.sign(c[v])]
        want = MAX_DIAMETER * np.sqrt(abs(c[v]) / big)
        assert m["size"] == pytest.approx(max(want, MIN_DIAMETER), rel=1e-6)
    # area ratios between two nodes above the floor equal |contribution| ratios
    assert (marks[5]["size"] / marks[0]["size"]) ** 2 == pytest.approx(0.4 / 0.5, rel=1e-6)
    halo = next(tr for tr in fig.data if tr.uid == "niv-halo")
    np.testing.assert_allclose([halo.x[0], halo.y[0]], marks[0]["xy"])
    edges = next(tr for tr in fig.data if tr.uid == "niv-edges")
    gaps = np.isnan(np.asarray(edges.x, float))
    np.testing.assert_array_equal(gaps, np.isnan(np.asarray(edges.y, float)))
    assert gaps.sum() == 8  # one segment per edge of EDGES but (4, 8): node 8 is not drawn


def test_hover_names_value_share_hop_and_classes(case):
    graph, result = case
    fig = niv(result, graph, 0, 2, top_k=None, predictions=PREDICTED)
    hover = drawn(fig)[5]["hover"]
    share = 100 * CONTRIB[5, 0] / np.abs(CONTRIB[:, 0]).sum()
    assert f"{share:+.1f}% of Σ|C|" in hover
    assert "-0.4" in hover and "hop 2" in hover
    assert "true class: &lt;b&gt;bold&lt;/b&gt;" in hover  # LABELS[5] == 1
    assert "predicted: &lt;b&gt;bold&lt;/b&gt;" in hover  # PREDICTED[5] == 1
    assert LABELS[5] == 1 and PREDICTED[5] == 1


def test_top_k_hides_the_rest_and_says_so(case):
    graph, result = case
    fig = niv(result, graph, 0, 2, top_k=3, predictions=PREDICTED)
    assert set(drawn(fig)) == {0, 5, 3, 1}  # the 3 largest |C| among nodes 1..7
    hidden = CONTRIB[[2, 4, 6, 7], 0]
    share = 100 * np.abs(hidden).sum() / np.abs(CONTRIB[:, 0]).sum()
    subtitle = fig.layout.title.subtitle.text
    assert "4 more hidden" in subtitle
    assert f"sum {hidden.sum():+.3g}" in subtitle and f"{share:.1f}% of Σ|C|" in subtitle
    assert fig.layout.meta["shown"] == 3 and fig.layout.meta["hidden"] == 4


def test_class_choice_and_default_predictions(case):
    graph, result = case
    fig = niv(result, graph, 0, 1, cls=1, top_k=None)
    marks = drawn(fig)
    assert fig.layout.meta["class"] == 1
    assert marks[1]["symbol"] == "triangle-up" and marks[3]["symbol"] == "triangle-down"
    # without predictions only the attributed target has a known prediction
    assert marks[0]["cls"] == 0 and {m["cls"] for v, m in marks.items() if v} == {-1}
    assert marks[1]["colour"] == UNKNOWN_COLOUR
    assert "prediction not computed" in [tr.name for tr in fig.data]
    # logits colour like their argmax
    onehot = np.eye(2)[PREDICTED]
    a = drawn(niv(result, graph, 0, 2, predictions=onehot))
    b = drawn(niv(result, graph, 0, 2, predictions=PREDICTED))
    assert {v: m["colour"] for v, m in a.items()} == {v: m["colour"] for v, m in b.items()}


def test_user_strings_are_escaped(case):
    graph, result = case
    figs = [
        niv(result, graph, 0, 2, predictions=PREDICTED),
        niv_bars(result, graph, 0, 8, predictions=PREDICTED),
    ]
    for fig in figs:
        strings = all_strings(fig.to_plotly_json())
        text = "\n".join(strings)
        for raw in [*NODE_NAMES, *CLASS_NAMES, "<i>evil</i>"]:
            if "<" in raw or "&" in raw:
                assert raw not in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text
        assert "a&amp;b" in text
        # the only tags left are the ones NIV writes itself
        assert set(re.findall(r"<(/?\w+)", text)) <= {"b", "/b", "br"}
    assert EVIL_CLASS in CLASS_NAMES and EVIL_NODE in NODE_NAMES


# ------------------------------------------------------------------------------ layout
def test_ring_layout_radii_spacing_and_parent_order():
    tree = nx.random_labeled_tree(60, seed=3)
    graph = Graph.from_networkx(tree)
    dist = nx.single_source_shortest_path_length(tree, 0)
    nodes = np.array(sorted(dist, key=lambda v: (dist[v], v)))
    hops = np.array([dist[v] for v in nodes])
    pos = ring_layout(nodes, hops, np.arange(len(nodes)), graph)
    np.testing.assert_allclose(np.hypot(*pos.T), hops, atol=1e-12)
    turn = np.mod(np.pi / 2 - np.arctan2(pos[:, 1], pos[:, 0]), 2 * np.pi)  # clockwise from top
    where = {v: i for i, v in enumerate(nodes)}
    for h in range(1, hops.max() + 1):
        ring = np.flatnonzero(hops == h)
        gaps = np.diff(np.sort(turn[ring]))
        np.testing.assert_allclose(gaps, 2 * np.pi / len(ring), atol=1e-9)
        if h >= 2:  # walking round ring h, the parents on ring h-1 come in clockwise order too
            parent = {v: next(u for u in tree[v] if dist[u] == h - 1) for v in nodes[ring]}
            by_angle = nodes[ring][np.argsort(turn[ring])]
            parent_turn = [turn[where[parent[v]]] for v in by_angle]
            assert parent_turn == sorted(parent_turn)


@pytest.mark.parametrize("layout", ["rings", "spring"])
def test_layout_is_stable(case, layout):
    graph, result = case
    a = drawn(niv(result, graph, 0, 2, predictions=PREDICTED, layout=layout))
    b = drawn(niv(result, graph, 0, 2, predictions=PREDICTED, layout=layout))
    for v in a:
        np.testing.assert_array_equal(a[v]["xy"], b[v]["xy"])
    np.testing.assert_allclose(a[0]["xy"], 0.0, atol=1e-12)


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 4}, "node 4 is not among the attributed targets"),
        ({"target": 9}, "target id 9 is out of range"),
        ({"hops": 3}, "hops must be between 1 and the model depth 2"),
        ({"cls": 5}, "class 5 is out of range"),
        ({"top_k": -1}, "top_k must be non-negative"),
        ({"layout": "circle"}, "layout must be 'rings' or 'spring'"),
        ({"predictions": np.zeros(4, int)}, "predictions must have shape (9,)"),
        ({"predictions": np.full(9, 2)}, "predictions hold class ids outside -1..1"),
    ],
)
def test_bad_requests_name_the_problem(case, kwargs, message):
    graph, result = case
    args = {"target": 0, "hops": 1, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        niv(result, graph, args.pop("target"), args.pop("hops"), **args)


def test_unattributed_class_and_other_graph_are_refused(case):
    graph, result = case
    only_1 = dataclasses.replace(
        result,
        contributions=result.contributions[:, 1:],
        classes=result.classes[:, 1:],
        logits=result.logits[:, 1:],
        bias=result.bias[:, 1:],
    )
    with pytest.raises(ViewError, match="class 0 was not attributed for node 0"):
        niv(only_1, graph, 0)
    other = Graph.from_edge_index(np.array([[0, 1], [1, 0]]), num_nodes=12)
    with pytest.raises(AttributionError, match=r"computed on another graph \(9 nodes"):
        niv(result, other, 0)


# ------------------------------------------------------------------------------ bars
def test_bars_rank_by_magnitude(case):
    graph, result = case
    fig = niv_bars(result, graph, 0, 3, predictions=PREDICTED)
    bars = fig.data[0]
    order = np.argsort(-np.abs(CONTRIB[:, 0]), kind="stable")[:3]
    np.testing.assert_allclose(bars.x, CONTRIB[order, 0], rtol=1e-6)
    assert [int(NODE_RE.search(h)[1]) for h in bars.hovertext] == order.tolist()
    assert list(bars.marker.color) == [PALETTE[PREDICTED[v]] for v in order]
    assert bars.y[0].endswith("target")


# ------------------------------------------------------------------------------ output
def test_write_html_embeds_plotly_by_default(case, tmp_path):
    graph, result = case
    fig = niv(result, graph, 0, 2, predictions=PREDICTED)
    full = write_figure(fig, tmp_path / "a.html").read_text()
    cdn = write_figure(fig, tmp_path / "b.html", cdn=True).read_text()
    assert 'src="https://cdn.plot.ly' not in full and len(full) > 1_000_000  # plotly.js inside
    assert 'src="https://cdn.plot.ly' in cdn and len(cdn) < 200_000
    back = json.loads((write_figure(fig, tmp_path / "c.json")).read_text())
    assert back["layout"]["meta"] == fig.layout.meta


def test_write_refuses_unknown_formats_and_explains_static_export(case, tmp_path, monkeypatch):
    graph, result = case
    fig = niv(result, graph, 0, 1, predictions=PREDICTED)
    with pytest.raises(OutputError, match=r"cannot write a\.txt: use \.html"):
        write_figure(fig, tmp_path / "a.txt")

    def no_kaleido(self, *a, **k):
        raise RuntimeError("Image export requires the Kaleido package")

    monkeypatch.setattr(go.Figure, "write_image", no_kaleido)
    with pytest.raises(ViewError, match=r"cannot write a\.png .*kaleido.*write \.html instead"):
        write_figure(fig, tmp_path / "a.png")


# ------------------------------------------------------------------------------ real engine
def test_karate_view_matches_bfs_and_engine(karate, karate_model):
    from namjax.explainer import nam

    result = nam(karate_model, karate, classes="all")
    fig = niv(result, karate, 0, 2, top_k=None)
    dist = nx.single_source_shortest_path_length(nx.from_scipy_sparse_array(karate.adjacency), 0)
    marks = drawn(fig)
    assert set(marks) == {v for v, d in dist.items() if d <= 2}
    sources, _, contributions = result.for_target(0)
    slot = int(np.flatnonzero(result.classes[0] == result.predicted[0])[0])
    value = dict(zip(sources.tolist(), contributions[:, slot].tolist(), strict=True))
    for v, m in marks.items():
        assert f"{value[v]:+.4g}" in m["hover"]
        assert m["cls"] == result.predicted[np.flatnonzero(result.targets == v)[0]]
    # clockwise from the top, the hop-1 ring shows one class after the other
    ring = [m for v, m in marks.items() if dist[v] == 1]
    turn = [np.mod(np.pi / 2 - np.arctan2(m["xy"][1], m["xy"][0]), 2 * np.pi) for m in ring]
    classes = [ring[i]["cls"] for i in np.argsort(turn)]
    assert classes == sorted(classes) and len(set(classes)) == 2


def test_paths_view_sums_to_the_node_contribution(karate, karate_model):
    from namjax.explainer import nam

    target, source = 0, 33  # two hops apart
    result = nam(karate_model, karate, targets=[target], classes="all")
    cls = int(result.predicted[0])
    fig = niv_paths(karate_model, karate, target, source, top_k=1000)
    bars = fig.data[0]
    assert fig.layout.meta["class"] == cls and fig.layout.meta["shown"] == len(bars.x)
    sources, _, contributions = result.for_target(target)
    want = contributions[list(sources).index(source), cls]
    assert float(np.sum(bars.x)) == pytest.approx(float(want), rel=1e-4, abs=1e-6)
    assert all(y.startswith("33 → ") and y.endswith(" → 0") for y in bars.y)
    assert all(len(y.split(" → ")) == 3 for y in bars.y)  # K = 2 steps
    dist = nx.single_source_shortest_path_length(nx.from_scipy_sparse_array(karate.adjacency), 0)
    far = min(v for v, d in dist.items() if d == 3)
    with pytest.raises(ViewError, match=f"no active path of at most K steps joins node {far}"):
        niv_paths(karate_model, karate, target, far)


@pytest.mark.slow
def test_cora_1358_one_hop_view(cora, cora_model):
    from namjax.explainer import nam

    result = nam(cora_model, cora, targets=[1358], classes="all")
    fig = niv(result, cora, 1358, 1, top_k=None, predictions=np.zeros(cora.num_nodes, int))
    neighbours = set(cora.adjacency[1358].indices.tolist())
    assert set(drawn(fig)) == neighbours | {1358}
    assert len(neighbours) > 100  # the paper's hub node


# ------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def karate_model_dir(karate, karate_model, tmp_path_factory):
    from namjax.io import save_model

    path = tmp_path_factory.mktemp("niv") / "karate-model"
    save_model(karate_model, karate, path)
    return path


def test_cli_writes_each_view(karate, karate_model_dir, tmp_path, capsys):
    from namjax.cli import main

    base = ["niv", "--model", str(karate_model_dir), "--dataset", "karate", "--node", "0"]
    summaries = {}
    for extra, view in [
        (["--hops", "2", "--top-k", "5"], "niv"),
        (["--hops", "1", "--top-k", "0"], "niv"),
        (["--bars", "4"], "bars"),
        (["--paths", "33"], "paths"),
    ]:
        out = tmp_path / f"{view}.html"
        assert main([*base, *extra, "--out", str(out), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["view"] == view and summary["out"] == str(out) and out.exists()
        summaries.setdefault(view, []).append(summary)
    dist = nx.single_source_shortest_path_length(nx.from_scipy_sparse_array(karate.adjacency), 0)
    two_hop, one_hop = summaries["niv"]
    assert two_hop["shown"] == 5 and two_hop["hidden"] == sum(0 < d <= 2 for d in dist.values()) - 5
    assert one_hop["shown"] == karate.adjacency[0].nnz and one_hop["hidden"] == 0  # 0: all
    assert summaries["bars"][0]["shown"] == 4 and summaries["paths"][0]["source"] == 33


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--node", "99"], "--node id 99 is out of range"),
        (["--node", "0", "--hops", "3"], "hops must be between 1 and the model depth 2"),
        (["--node", "0", "--class", "7"], "class 7 is out of range"),
        (["--node", "0", "--out", "x.gif"], "use .html"),
    ],
)
def test_cli_user_errors_are_one_line(karate_model_dir, tmp_path, capsys, extra, message):
    from namjax.cli import main

    args = ["niv", "--model", str(karate_model_dir), "--dataset", "karate", *extra]
    if "--out" not in extra:
        args += ["--out", str(tmp_path / "x.html")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_cli_out_problems_and_class_names(karate, karate_model_dir, tmp_path, capsys):
    """An --out under a file is refused before any work; --class takes a class name."""
    from namjax.cli import main

    (tmp_path / "file").write_text("x")
    base = ["niv", "--model", str(karate_model_dir), "--dataset", "karate", "--node", "0"]
    assert main([*base, "--out", str(tmp_path / "file" / "x.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"namjax niv: error: cannot write {tmp_path / 'file' / 'x.html'}: " + (
        f"{tmp_path / 'file'} is not a directory"
    )
    (tmp_path / "dir.html").mkdir()
    assert main([*base, "--out", str(tmp_path / "dir.html")]) == 2  # a directory, not a file
    assert "is a directory" in capsys.readouterr().err
    out = tmp_path / "officer.html"
    assert main([*base, "--class", "Officer", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["class"] == 1
    assert main([*base, "--class", "Nobody", "--out", str(out)]) == 2
    assert "neither a class id nor a class name (Mr. Hi, Officer)" in capsys.readouterr().err
