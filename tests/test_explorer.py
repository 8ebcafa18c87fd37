"""The explorer page's Python side: the embedded payload, checks and output.

The payload is parsed back out of the HTML and compared with the attribution it came from
(numpy argsort of |contribution| as the top-k oracle), with the model's own logits, and with
the graph.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from niv_case import CLASS_NAMES, NODE_NAMES, evil_attribution, evil_graph

from namjax.errors import AttributionError, OutputError, ViewError
from namjax.views.explorer import ExplorerPage, asset, explore, explorer_widget
from namjax.views.niv import STYLE

BLOCK = re.compile(
    r'<script type="application/json" id="namjax-explorer-data">(.*?)</script>', re.DOTALL
)


def top_k_oracle(att, node: int, cls: int, k: int, hops: int) -> list[int]:
    """The ``k`` neighbours within ``hops`` hops with the largest |contribution| to ``cls``
    (ties: the attribution's source order), straight from the attribution's arrays."""
    row = int(np.flatnonzero(np.asarray(att.targets) == node)[0])
    s = slice(att.offsets[row], att.offsets[row + 1])
    slot = int(np.flatnonzero(att.classes[row] == cls)[0])
    sources, hop = np.asarray(att.sources[s]), np.asarray(att.hops[s])
    values = np.asarray(att.contributions[s][:, slot], np.float64)
    near = np.flatnonzero((hop > 0) & (hop <= hops))
    order = near[np.argsort(-np.abs(values[near]), kind="stable")]
    return sources[order[:k]].tolist()


def embedded(page: str) -> dict:
    (text,) = BLOCK.findall(page)
    return json.loads(text)


@pytest.fixture(scope="module")
def karate_att(karate, karate_model):
    from namjax.explainer import nam

    return nam(karate_model, karate)


@pytest.fixture(scope="module")
def karate_data(karate, karate_att):
    return embedded(explore(karate_att, karate, top_k=5))


def listed(data: dict, row: int, slot: int, method: int = 0):
    """``(graph ids, hops, contributions)`` of one target's ranked list for one slot."""
    src, hop, pos, val = data["methods"][method]["lists"][row]
    nodes = np.asarray(data["nodes"])
    index = np.asarray(pos[slot], np.int64)
    return nodes[np.asarray(src)[index]], np.asarray(hop)[index], np.asarray(val[slot])


def test_top_k_lists_are_the_argsort_of_the_attribution(karate, karate_att, karate_data):
    data, nodes = karate_data, np.asarray(karate_data["nodes"])
    assert data["top_k"] == 5 and data["depth"] == karate_att.depth
    assert (nodes[data["targets"]] == karate_att.targets).all()
    for row, node in enumerate(karate_att.targets.tolist()):
        for slot, cls in enumerate(karate_att.classes[row].tolist()):
            ids, hops, values = listed(data, row, slot)
            for h in range(1, karate_att.depth + 1):
                want = top_k_oracle(karate_att, node, cls, 5, h)
                assert ids[hops <= h][:5].tolist() == want, (node, cls, h)
            sources, _, contrib = karate_att.for_target(node)
            truth = dict(zip(sources.tolist(), contrib[:, slot].tolist(), strict=True))
            np.testing.assert_allclose(values, [truth[v] for v in ids], rtol=6e-4, atol=1e-12)


def test_listed_hop_2_nodes_have_a_listed_bridge(karate, karate_att, karate_data):
    adjacency = karate.adjacency.tocsr()
    for row in range(len(karate_att.targets)):
        for slot in range(karate_att.num_slots):
            ids, hops, _ = listed(karate_data, row, slot)
            for v, h in zip(ids.tolist(), hops.tolist(), strict=True):
                if h >= 2:
                    inner = set(ids[hops == h - 1].tolist())
                    assert inner & set(adjacency[v].indices.tolist()), (row, slot, v)


def test_hop_sums_and_bias_add_up_to_the_model_logits(
    karate, karate_model, karate_att, karate_data
):
    from namjax.model import predict

    method = karate_data["methods"][0]
    t, q, k1 = len(karate_att.targets), karate_att.num_slots, karate_att.depth + 1
    sums = np.asarray(method["hop_sums"]).reshape(t, q, k1)
    bias = np.asarray(method["bias"]).reshape(t, q)
    logits = np.asarray(predict(karate_model, karate), np.float64)[karate_att.targets]
    np.testing.assert_allclose(sums.sum(axis=2) + bias, logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(method["logits"]).reshape(t, q), logits, atol=1e-4)
    # each hop's sum over all its sources, by a plain loop over the pairs
    for row in range(t):
        for p in range(karate_att.offsets[row], karate_att.offsets[row + 1]):
            sums[row, :, karate_att.hops[p]] -= karate_att.contributions[p]
    np.testing.assert_allclose(sums, 0.0, atol=1e-5)
    assert method["predicted"] == np.argmax(logits, axis=1).tolist()


def test_graph_fields(karate, karate_data):
    data = karate_data
    assert data["style"] == json.loads(json.dumps(STYLE))  # NIV's marker encoding
    assert data["methods"][0]["rest"] == [0] * (karate.num_nodes * karate.num_classes)
    nodes = np.asarray(data["nodes"])
    assert nodes.tolist() == list(range(karate.num_nodes))  # every node is a target
    assert data["labels"] == karate.labels.tolist()
    split = np.asarray(data["splits"])[data["split"]]
    for name, mask in (
        ("train", karate.train_mask),
        ("val", karate.val_mask),
        ("test", karate.test_mask),
    ):
        assert (split == name).tolist() == mask.tolist()
    edges = {
        (int(nodes[u]), int(nodes[v]))
        for u in range(len(nodes))
        for v in data["indices"][data["indptr"][u] : data["indptr"][u + 1]]
    }
    coo = karate.adjacency.tocoo()
    assert edges == set(zip(coo.row.tolist(), coo.col.tolist(), strict=True))
    assert data["class_names"] == list(karate.class_names)
    assert data["names"] == list(karate.node_names)


def test_hostile_names_cannot_leave_the_json_block():
    graph = evil_graph()
    page = explore(evil_attribution(), graph, title="</script><script>alert(4)</script>")
    (block,) = BLOCK.findall(page)
    assert "<" not in block  # so neither "</script" nor "<!--" can occur
    assert page.lower().count("</script") == 3  # plotly.js, the data, the app
    assert "<script>alert" not in page
    data = embedded(page)
    assert data["nodes"] == list(range(8))  # node 8 lies 3 hops away, beyond K = 2
    assert data["names"] == NODE_NAMES[:8] and data["class_names"] == CLASS_NAMES
    assert data["title"] == "</script><script>alert(4)</script>"
    assert "<title>&lt;/script&gt;&lt;script&gt;alert(4)&lt;/script&gt;</title>" in page


def test_app_and_style_are_safe_to_inline():
    for name in ("explorer.js", "explorer.css"):
        text = asset(name).lower()
        assert "</script" not in text and "<!--" not in text and "</style" not in text


def test_several_methods(karate, karate_att):
    import dataclasses

    doubled = dataclasses.replace(karate_att, contributions=2 * karate_att.contributions)
    data = embedded(explore({"nam": karate_att, "<b>x2</b>": doubled}, karate, top_k=3))
    assert [m["name"] for m in data["methods"]] == ["nam", "<b>x2</b>"]
    ids0, _, v0 = listed(data, 4, 1, method=0)
    ids1, _, v1 = listed(data, 4, 1, method=1)
    assert ids0.tolist() == ids1.tolist()
    np.testing.assert_allclose(v1, 2 * v0, rtol=1e-3)


def test_mismatched_attributions_are_refused(karate, karate_model, karate_att):
    import dataclasses

    from namjax.explainer import nam
    from namjax.training import train

    other_model = train(karate, seed=1).model
    cases = {
        "different targets": {"a": karate_att, "b": nam(karate_model, karate, targets=[0, 1])},
        "different class slots": {
            "a": karate_att,
            "b": nam(karate_model, karate, classes="predicted"),
        },
        "different depths": {"a": karate_att, "b": dataclasses.replace(karate_att, depth=3)},
        "'a' and 'b' were computed with different models": {
            "a": karate_att,
            "b": nam(other_model, karate),
        },
        "both named 'nam'": [karate_att, karate_att],
        "not an Attribution": {"a": np.zeros(3)},
        "no attributions given": {},
        "non-finite contributions": dataclasses.replace(
            karate_att, contributions=np.full_like(karate_att.contributions, np.nan)
        ),
    }
    for words, attributions in cases.items():
        with pytest.raises(ViewError, match=words) as info:
            explore(attributions, karate)
        assert "\n" not in str(info.value)
    # another graph: the attribution's own check (fingerprint and size)
    for other in (evil_attribution(), {"nam": karate_att, "x": evil_attribution()}):
        with pytest.raises(AttributionError, match=r"computed on another graph \(9 nodes"):
            explore(other, karate)
    relabelled = karate.with_features(2 * karate.features)  # same size, other fingerprint
    with pytest.raises(AttributionError, match="computed on another graph"):
        explore(karate_att, relabelled)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ViewError, match="top_k must be a positive integer"):
            explore(karate_att, karate, top_k=bad)


def test_bad_out_is_refused_before_any_work(tmp_path, karate):
    # the attribution is not even looked at: the out check comes first
    (tmp_path / "dir.html").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        explore(None, karate, out=tmp_path / "dir.html")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is not a directory"):
        explore(None, karate, out=tmp_path / "file" / "page.html")
    with pytest.raises(OutputError, match=r"cannot write page\.txt: use \.html"):
        explore(None, karate, out=tmp_path / "page.txt")


def test_out_writes_the_page(tmp_path, karate, karate_att):
    path = explore(karate_att, karate, out=tmp_path / "new" / "karate.html", top_k=4)
    assert isinstance(path, Path)
    page = explore(karate_att, karate, top_k=4)
    assert isinstance(page, ExplorerPage) and path.read_text(encoding="utf-8") == page
    frame = page._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in frame
    assert html.unescape(frame.split('"')[1]) == page
    assert repr(page).startswith("<namjax explorer page: ") and len(repr(page)) < 60


def test_max_nodes_counts_the_nodes_the_page_holds(karate, karate_model):
    from namjax.explainer import nam

    att = nam(karate_model, karate, targets=[0])
    data = embedded(explore(att, karate, top_k=2))
    held = set(data["nodes"])
    listed_ids = {int(v) for q in range(att.num_slots) for v in listed(data, 0, q)[0]}
    assert held == {0} | listed_ids and len(held) < karate.num_nodes
    explore(att, karate, top_k=2, max_nodes=len(held))
    with pytest.raises(ViewError, match="explain fewer targets") as info:
        explore(att, karate, top_k=2, max_nodes=len(held) - 1)
    assert f"would hold {len(held)} nodes" in str(info.value)


def test_widget_carries_the_same_data(karate, karate_att):
    require("anywidget")
    widget = explorer_widget(karate_att, karate, node=33, top_k=5)
    assert json.loads(widget.data) == embedded(explore(karate_att, karate, top_k=5))
    assert widget._esm == asset("explorer.js") and widget.node == 33
    assert widget._plotly.lstrip().startswith("/**") and "plotly.js" in widget._plotly[:200]


@pytest.mark.slow
def test_cora_page_with_all_classes_stays_under_15_mb(cora, cora_model):
    from namjax.explainer import nam

    att = nam(cora_model, cora)
    assert att.num_slots == cora.num_classes
    page = explore(att, cora)
    size = len(page.encode("utf-8"))
    assert size < 15_000_000, f"{size / 1e6:.1f} MB"
    data = embedded(page)
    ids, _, _ = listed(data, 1358, int(np.flatnonzero(att.classes[1358] == att.predicted[1358])[0]))
    assert ids[:30].tolist() == top_k_oracle(att, 1358, int(att.predicted[1358]), 30, 2)


def test_list_of_attributions_is_named_by_method(karate, karate_model, karate_att):
    from namjax.explainer import explain

    saliency = explain(karate_model, karate, "saliency")
    data = embedded(explore([karate_att, saliency], karate, top_k=3))
    assert [m["name"] for m in data["methods"]] == ["nam", "saliency"]
    for row, node in enumerate(karate_att.targets[:5].tolist()):
        cls = int(saliency.classes[row, 0])
        ids, hops, _ = listed(data, row, 0, method=1)
        assert ids[hops <= 2][:3].tolist() == top_k_oracle(saliency, node, cls, 3, 2)


# ------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def karate_model_dir(karate, karate_model, tmp_path_factory):
    from namjax.io import save_model

    path = tmp_path_factory.mktemp("explore") / "karate-model"
    save_model(karate_model, karate, path)
    return path


def run_cli(capsys, *args) -> tuple[int, str, str]:
    from namjax.cli import main

    try:
        code = main(["explore", *map(str, args)])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_a_page_with_each_method(
    karate, karate_model, karate_model_dir, tmp_path, capsys
):
    from namjax.explainer import explain

    out = tmp_path / "karate.html"
    code, stdout, _ = run_cli(
        capsys, "--model", karate_model_dir, "--methods", "nam,saliency", "--top-k", 5,
        "--out", out, "--json",
    )  # fmt: skip
    assert code == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary == {
        "out": str(out),
        "size_bytes": out.stat().st_size,
        "methods": ["nam", "saliency"],
        "targets": karate.num_nodes,
    }
    data = embedded(out.read_text(encoding="utf-8"))
    assert [m["name"] for m in data["methods"]] == ["nam", "saliency"] and data["top_k"] == 5
    assert data["dataset"] == "karate" and len(data["targets"]) == karate.num_nodes
    for m, method in enumerate(("nam", "saliency")):  # each method's lists, recomputed here
        att = explain(karate_model, karate, method)
        for row in (0, 33):
            for slot, cls in enumerate(att.classes[row].tolist()):
                ids, hops, _ = listed(data, row, slot, method=m)
                want = top_k_oracle(att, int(att.targets[row]), cls, 5, 2)
                assert ids[hops <= 2][:5].tolist() == want, (method, row, cls)


def test_cli_targets_and_classes(karate_model_dir, tmp_path, capsys):
    out = tmp_path / "few.html"
    code, stdout, _ = run_cli(
        capsys, "--model", karate_model_dir, "--targets", "0,5,33", "--classes", "predicted",
        "--out", out, "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(stdout.splitlines()[-1])["targets"] == 3
    data = embedded(out.read_text(encoding="utf-8"))
    assert np.asarray(data["nodes"])[data["targets"]].tolist() == [0, 5, 33] and data["slots"] == 1


def test_cli_limits_large_graphs(karate_model_dir, tmp_path, capsys, monkeypatch):
    """Beyond EXPLORE_MAX_TARGETS nodes (50,000) a page for every node is refused, saying how
    to limit it; karate stands in for a large graph with the limit lowered."""
    import namjax.cli

    monkeypatch.setattr(namjax.cli, "EXPLORE_MAX_TARGETS", 10)
    out = tmp_path / "big.html"
    code, _, err = run_cli(capsys, "--model", karate_model_dir, "--out", out)
    assert code == 2 and not out.exists()
    assert err.strip() == (
        "namjax explore: error: karate has 34 nodes: a page for all of them would be too large "
        "for a browser (at most 10); choose some with --targets (test, val, train or node ids)"
    )
    code, _, err = run_cli(capsys, "--model", karate_model_dir, "--targets", "test", "--out", out)
    assert code == 2 and "--targets gives 18 nodes: at most 10 fit" in err
    # the page's nodes (targets and listed neighbours) count too
    code, _, err = run_cli(capsys, "--model", karate_model_dir, "--targets", "val", "--out", out)
    assert code == 2 and "the page would hold" in err and "--targets, --top-k" in err
    code, stdout, _ = run_cli(
        capsys, "--model", karate_model_dir, "--targets", "0", "--top-k", 1, "--out", out
    )
    assert code == 0 and out.exists() and "explorer of 1 node of karate" in stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--methods", "nam,magic"], "--methods: unknown method 'magic' (choose from nam, "),
        (["--methods", "nam,nam"], "--methods: a method given twice"),
        (["--top-k", "0"], "argument --top-k: expected a positive integer, got 0"),
        (["--targets", "99"], "target id 99 is out of range"),
    ],
)
def test_cli_user_errors_are_one_line(karate_model_dir, tmp_path, capsys, extra, message):
    code, _, err = run_cli(
        capsys, "--model", karate_model_dir, *extra, "--out", tmp_path / "x.html"
    )
    assert code == 2 and message in err and err.count("\n") == 1
    assert err.startswith("namjax explore: error: ") and not (tmp_path / "x.html").exists()


def test_cli_checks_out_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    missing = tmp_path / "no-model"  # never read: the --out check comes first
    for out, message in [
        (tmp_path / "file" / "x.html", "is not a directory"),
        (tmp_path / "x.txt", "cannot write x.txt: use .html, .htm"),
    ]:
        code, _, err = run_cli(capsys, "--model", missing, "--out", out)
        assert code == 2 and message in err and "no-model" not in err
