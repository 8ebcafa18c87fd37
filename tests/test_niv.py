"""NIV figures: what is drawn, how it is encoded, escaping, layout, output and the CLI."""

from __future__ import annotations

import dataclasses
import json
import re

import networkx as nx
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from niv_case import (
    BIAS,
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
    RIM_EXTRA,
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


# ------------------------------------------------------------------------------ readability
def wcag_contrast(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio of two sRGB colours ``#RRGGBB`` (its definition of relative
    luminance: linearised channels weighted 0.2126, 0.7152, 0.0722)."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def trace(fig: go.Figure, uid: str):
    return next(tr for tr in fig.data if tr.uid == uid)


def node_traces(fig: go.Figure) -> list:
    return [tr for tr in fig.data if (tr.uid or "").startswith(("niv-nodes-", "niv-bridges"))]


def positions(fig: go.Figure) -> dict[tuple[float, float], int]:
    """Rounded marker position -> node id, over the node and bridge traces."""
    return {
        (round(x, 9), round(y, 9)): v
        for tr in node_traces(fig)
        for x, y, v in zip(tr.x, tr.y, tr.customdata, strict=True)
    }


def drawn_edges(fig: go.Figure) -> set[frozenset]:
    """The edges the figure draws, as node-id pairs (read back from the segment ends)."""
    where = positions(fig)
    edges = trace(fig, "niv-edges")
    xs, ys = np.asarray(edges.x, float), np.asarray(edges.y, float)
    return {
        frozenset(
            (
                where[(round(xs[i], 9), round(ys[i], 9))],
                where[(round(xs[i + 1], 9), round(ys[i + 1], 9))],
            )
        )
        for i in range(0, len(xs), 3)
    }


def assert_nothing_floats(fig: go.Figure, graph: Graph, target: int) -> set[int]:
    """Every drawn node g >= 2 hops from ``target`` (networkx BFS) has a drawn edge to a drawn
    node g - 1 hops away; returns the drawn node ids."""
    nxg = nx.from_scipy_sparse_array(graph.adjacency)
    dist = nx.single_source_shortest_path_length(nxg, target)
    ids = set(positions(fig).values())
    edges = drawn_edges(fig)
    assert edges == {frozenset(e) for e in nxg.subgraph(ids).edges}  # all edges among them
    for v in ids:
        if dist[v] >= 2:
            assert any(frozenset((v, u)) in edges for u in ids if dist[u] == dist[v] - 1), v
    return ids


def test_hidden_bridge_is_drawn_faded(case):
    graph, result = case
    # class 0: the largest |C| neighbour is node 5 (hop 2, -0.4); node 1 joins it to node 0
    fig = niv(result, graph, 0, 2, top_k=1, predictions=PREDICTED)
    bridges = trace(fig, "niv-bridges")
    assert list(bridges.customdata) == [1] and bridges.marker.opacity == 0.35
    assert "drawn faded as a bridge" in bridges.hovertext[0]
    assert set(drawn(fig)) == {0, 5}  # the top k, unchanged
    assert drawn_edges(fig) == {frozenset((0, 1)), frozenset((1, 5))}
    assert fig.layout.meta["bridges"] == 1 and fig.layout.meta["hidden"] == 6
    assert "6 more hidden" in fig.layout.title.subtitle.text
    assert "1 of them drawn faded as bridges" in fig.layout.title.subtitle.text
    assert "faded: bridge outside the top k" in [tr.name for tr in fig.data]
    assert_nothing_floats(fig, graph, 0)
    # with room for node 1 itself, no bridge
    fig = niv(result, graph, 0, 2, top_k=2, predictions=PREDICTED)
    assert set(drawn(fig)) == {0, 5, 3} and list(trace(fig, "niv-bridges").customdata) == [1]
    fig = niv(result, graph, 0, 2, top_k=None, predictions=PREDICTED)
    assert list(trace(fig, "niv-bridges").customdata) == []


def test_rings_are_labelled_by_hop(case):
    graph, result = case
    fig = niv(result, graph, 0, 2, top_k=None, predictions=PREDICTED)
    assert list(fig.layout.xaxis.tickvals) == [1, 2]
    assert list(fig.layout.xaxis.ticktext) == ["hop 1", "hop 2"]
    circles = [s for s in fig.layout.shapes if s.type == "circle"]
    assert sorted(s.x1 for s in circles) == [1, 2]
    for (x, y), v in positions(fig).items():
        assert np.hypot(x, y) == pytest.approx(HOPS_FROM_0[v])  # on the ring of its hop
    spring = niv(result, graph, 0, 2, predictions=PREDICTED, layout="spring")
    assert not spring.layout.xaxis.visible and not spring.layout.shapes


def split_numbers(subtitle: str) -> dict[str, float]:
    """``{"score": ..., "self": ..., "1-hop": ..., "bias": ...}`` from the subtitle's split."""
    line = subtitle.split("<br>")[1]
    return {k: float(v) for k, v in re.findall(r"(score|self|\d-hop|bias) ([+-][0-9.e+-]+)", line)}


def test_subtitle_splits_the_score_by_hop(case):
    graph, result = case
    fig = niv(result, graph, 0, 1, predictions=PREDICTED)  # the split covers every hop
    got = split_numbers(fig.layout.title.subtitle.text)
    hop = HOPS_FROM_0[:8]
    want = {
        "self": CONTRIB[0, 0],
        "1-hop": CONTRIB[hop == 1, 0].sum(),
        "2-hop": CONTRIB[hop == 2, 0].sum(),
        "bias": BIAS[0],
        "score": CONTRIB[:, 0].sum() + BIAS[0],
    }
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=5e-3, abs=1e-12), key
    assert "≠" not in fig.layout.title.subtitle.text  # complete: no caveat


def test_subtitle_split_on_karate_against_bfs(karate, karate_model):
    from namjax.explainer import explain
    from namjax.model import predict

    logits = np.asarray(predict(karate_model, karate), np.float64)
    dist = nx.single_source_shortest_path_length(nx.from_scipy_sparse_array(karate.adjacency), 5)
    for method in ("nam", "saliency"):
        att = explain(karate_model, karate, method, targets=[5])
        fig = niv(att, karate, 5, 2, cls=1)
        got = split_numbers(fig.layout.title.subtitle.text)
        sources, _, contrib = att.for_target(5)
        by_hop = [
            sum(c[1] for s, c in zip(sources, contrib, strict=True) if dist[s] == h)
            for h in (0, 1, 2)
        ]
        for key, value in zip(("self", "1-hop", "2-hop"), by_hop, strict=True):
            assert got[key] == pytest.approx(value, rel=5e-3, abs=1e-6), (method, key)
        assert got["score"] == pytest.approx(logits[5, 1], rel=5e-3)
        complete = "≠" not in fig.layout.title.subtitle.text
        assert complete == (method == "nam")  # saliency's parts do not add up to the logit


def test_training_nodes_are_circled(case, karate, karate_model):
    graph, result = case
    fig = niv(result, graph, 0, 2, top_k=None, predictions=PREDICTED)
    assert sorted(trace(fig, "niv-train").customdata) == [3, 5]
    assert "training node (label seen in training)" in [tr.name for tr in fig.data]
    from namjax.explainer import nam

    att = nam(karate_model, karate, targets=[0])
    fig = niv(att, karate, 0, 2, top_k=12)
    ids = set(positions(fig).values())
    want = {v for v in ids if karate.train_mask[v]}
    assert want and set(trace(fig, "niv-train").customdata) == want


def test_sign_has_a_second_cue_readable_at_the_smallest_size(case):
    graph, result = case
    fig = niv(result, graph, 0, 2, top_k=None, predictions=PREDICTED)
    rims = trace(fig, "niv-rims")
    rim_at = {
        (round(x, 9), round(y, 9)): (s, sym)
        for x, y, s, sym in zip(rims.x, rims.y, rims.marker.size, rims.marker.symbol, strict=True)
    }
    seen = set()
    for tr in node_traces(fig):
        for i, v in enumerate(tr.customdata):
            sign = int(np.sign(CONTRIB[v, 0]))
            outline = tr.marker.line.color[i]
            assert outline == {1: "#000000", -1: "#FFFFFF", 0: "#777777"}[sign]
            size, symbol = rim_at[(round(tr.x[i], 9), round(tr.y[i], 9))]
            extra = size - tr.marker.size[i]
            assert symbol == tr.marker.symbol[i] and extra == pytest.approx(RIM_EXTRA)
            seen.add(sign)
    assert seen == {1, -1, 0}
    # plotly draws a triangle of size s with inradius s/4 (its symbol path: base at s/4 below
    # the centre), a circle with radius s/2; a line of width w straddles the edge. So beyond
    # the outline the rim shows a band of RIM_EXTRA/4 - w/2 px: at least 1 px, whatever the
    # size (the smallest, 6 px, included), and the outline itself is at least 1 px wide; the
    # two outlines differ by 21:1, and the rim stands out from the white page by 21:1
    width = node_traces(fig)[1].marker.line.width
    assert min(rims.marker.size) == pytest.approx(MIN_DIAMETER + RIM_EXTRA)
    assert RIM_EXTRA / 4 - width / 2 >= 1 and width >= 1
    assert wcag_contrast("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert fig.layout.template.layout.plot_bgcolor == "white"
    assert wcag_contrast(rims.marker.color, "#FFFFFF") >= 3


def test_palette_contrast_on_white():
    """WCAG 2.1 asks 3:1 for graphical objects. Okabe & Ito's orange, sky blue and yellow (and
    the grey of unknown predictions) fall short on white: their markers keep the hue on a black
    rim, and their legend swatches are outlined."""
    ratios = {c: wcag_contrast(c, "#FFFFFF") for c in (*PALETTE, UNKNOWN_COLOUR)}
    failing = {c for c, r in ratios.items() if r < 3}
    assert failing == {"#E69F00", "#56B4E9", "#F0E442", UNKNOWN_COLOUR}
    assert ratios["#F0E442"] == pytest.approx(1.32, abs=0.01)  # the worst: yellow
    graph, result = evil_graph(), evil_attribution()
    fig = niv(result, graph, 0, 2, top_k=None)  # grey (unknown) neighbours included
    swatches = [tr for tr in fig.data if tr.showlegend is not False and tr.x == (None,)]
    swatches = [tr for tr in swatches if (tr.legendgroup or "").startswith("class")]
    assert swatches and all(wcag_contrast(tr.marker.line.color, "#FFFFFF") >= 3 for tr in swatches)
    assert len(trace(fig, "niv-rims").x) == len(positions(fig))  # every marker on a rim


@pytest.mark.slow
@pytest.mark.parametrize("node", [1358, 1131])
def test_cora_hop_2_nodes_do_not_float(cora, cora_model, node):
    """The issue's cases: at hops 2 and the default top 60, some hop-2 nodes had no drawn
    hop-1 neighbour; now their bridges are drawn."""
    from namjax.explainer import nam
    from namjax.model import predict

    att = nam(cora_model, cora, targets=[node])
    fig = niv(att, cora, node, 2, predictions=predict(cora_model, cora))
    ids = assert_nothing_floats(fig, cora, node)
    # the old view drew only the top 60: some of them floated (oracle: argsort + BFS)
    sources, hops, contrib = att.for_target(node)
    value = contrib[:, int(np.flatnonzero(att.classes[0] == att.predicted[0])[0])]
    near = np.flatnonzero(hops > 0)
    top = set(sources[near[np.argsort(-np.abs(value[near]), kind="stable")[:60]]].tolist())
    nxg = nx.from_scipy_sparse_array(cora.adjacency)
    dist = nx.single_source_shortest_path_length(nxg, node)
    floating = [
        v for v in top if dist[v] == 2 and not any(dist.get(u) == 1 for u in nxg[v] if u in top)
    ]
    assert floating
    bridges = set(trace(fig, "niv-bridges").customdata)
    assert ids == top | bridges | {node} and not bridges & top
    assert all(dist[b] == 1 for b in bridges) and len(bridges) <= len(floating)
    assert fig.layout.meta["bridges"] == len(bridges) and fig.layout.meta["shown"] == 60


# ------------------------------------------------------------------------------ deletion
@pytest.fixture(scope="module")
def karate_curves(karate, karate_model):
    from namjax.perturb import deletion_curves

    return deletion_curves(karate_model, karate, rankings=("nam", "saliency", "random"), seeds=3)


def test_deletion_legend_carries_each_auc(karate_curves):
    from namjax.views.curves import deletion_figure

    fig = deletion_figure(karate_curves, dataset="karate")
    table = karate_curves.to_table().to_pydict()
    levels = np.asarray(karate_curves.levels)

    def auc(ranking: str, seed: int) -> float:  # trapezoid, by hand
        acc = [
            a
            for r, s, a in zip(table["ranking"], table["seed"], table["accuracy"], strict=True)
            if (r, s) == (ranking, seed)
        ]
        area = sum(
            (levels[i + 1] - levels[i]) * (acc[i] + acc[i + 1]) / 2 for i in range(len(acc) - 1)
        )
        return area / (levels[-1] - levels[0])

    names = [tr.name for tr in fig.data if tr.showlegend]
    assert len(names) == 3
    for name, ranking in zip(names, ("nam", "saliency", "random"), strict=True):
        assert name.startswith(ranking)
        if ranking == "random":
            runs = [auc("random", s) for s in range(3)]
            want = f"AUC {np.mean(runs):.3f} ± {np.std(runs, ddof=1):.3f}"
            assert "(mean ± sd of 3)" in name
        else:
            want = f"AUC {auc(ranking, -1):.3f}"
        assert name.endswith(want), (name, want)
    assert "lower is better" in fig.layout.legend.title.text
    title = fig.layout.title.text
    assert "karate" in title and "remove mode" in title
    assert f"{len(karate_curves.targets)} targets" in title
    assert len(karate_curves.targets) == 18  # karate's test nodes
    assert fig.layout.template == pio.templates["simple_white"]  # as NIV
    # a caller's title keeps the facts in the subtitle
    fig = deletion_figure(karate_curves, "Mine", dataset="karate")
    assert (
        fig.layout.title.text == "Mine"
        and "remove mode, 18 targets" in fig.layout.title.subtitle.text
    )


def test_every_ranking_has_its_own_colour():
    from namjax.perturb import RANKINGS
    from namjax.views.curves import ranking_colour

    colours = [ranking_colour(r) for r in RANKINGS]
    assert len(set(colours)) == len(RANKINGS)
    assert all(wcag_contrast(c, "#FFFFFF") >= 3 for c in colours)


def test_write_deletion_names_the_dataset(karate_curves, tmp_path):
    from namjax.views.curves import write_deletion

    paths = write_deletion(karate_curves, tmp_path, dataset="karate")
    page = paths["html"].read_text()
    assert "Deletion curves on karate: remove mode, 18 targets" in page


# ------------------------------------------------------------------------------ reprs
def test_graph_and_perturbation_reprs_are_one_line(karate, karate_curves):
    nxg = nx.karate_club_graph()
    text = repr(karate)
    assert text == (
        f"Graph(karate: {nxg.number_of_nodes()} nodes, {nxg.number_of_edges()} edges, 34 "
        f"features, 2 classes; train {karate.train_mask.sum()}, val {karate.val_mask.sum()}, "
        f"test {karate.test_mask.sum()})"
    )
    text = repr(karate_curves)
    assert "\n" not in text and len(text) < 200
    assert text == (
        "Perturbation(remove mode: 18 targets, 11 levels, rankings nam, saliency, random "
        "(3 random seeds), sparsity 0.8)"
    )
