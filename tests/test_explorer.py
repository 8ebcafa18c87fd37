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

from namjax.errors import ViewError
from namjax.views.explorer import ExplorerPage, asset, explore, explorer_widget

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

    cases = {
        "different targets": {"a": karate_att, "b": nam(karate_model, karate, targets=[0, 1])},
        "different class slots": {
            "a": karate_att,
            "b": nam(karate_model, karate, classes="predicted"),
        },
        "different depths": {"a": karate_att, "b": dataclasses.replace(karate_att, depth=3)},
        "9 nodes": evil_attribution(),
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
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ViewError, match="top_k must be a positive integer"):
            explore(karate_att, karate, top_k=bad)


def test_bad_out_is_refused_before_any_work(tmp_path, karate):
    # the attribution is not even looked at: the out check comes first
    with pytest.raises(ViewError, match="is a directory"):
        explore(None, karate, out=tmp_path)
    with pytest.raises(ViewError, match="is not a directory"):
        explore(None, karate, out=tmp_path / "missing" / "page.html")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ViewError, match="is not a directory"):
        explore(None, karate, out=tmp_path / "file" / "page.html")


def test_out_writes_the_page(tmp_path, karate, karate_att):
    path = explore(karate_att, karate, out=tmp_path / "karate.html", top_k=4)
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
