"""The explorer page (and its widget module) in headless Chromium, offline.

What the page draws is checked against the attribution itself (an independent top-k by numpy
argsort of |contribution|) and against graph distances computed with scipy.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from browser_helpers import OfflineTab, browser_page, chromium_or_skip
from conftest import require
from niv_case import EVIL_CLASS, EVIL_NODE, NODE_NAMES, evil_attribution, evil_graph
from scipy.sparse.csgraph import shortest_path
from test_explorer import top_k_oracle

from namjax.views.explorer import asset, explore, explorer_widget
from namjax.views.niv import MAX_DIAMETER, MIN_DIAMETER, RIM_EXTRA

pytestmark = pytest.mark.browser
READY = 'g.trace[class*="tracenx-nodes"] .points path'


@pytest.fixture(scope="module")
def tab():
    with browser_page(chromium_or_skip()) as page:
        yield OfflineTab(page)


@pytest.fixture(scope="module")
def karate_att(karate, karate_model):
    from namjax.explainer import nam

    return nam(karate_model, karate)


@pytest.fixture(scope="module")
def karate_page(tmp_path_factory, karate, karate_att):
    return explore(karate_att, karate, out=tmp_path_factory.mktemp("explorer") / "karate.html")


def trace(tab: OfflineTab, uid: str, plot: str = "nx-niv-plot") -> dict:
    """The plotly trace ``uid`` of one of the page's plots, as the page holds it."""
    return tab.page.evaluate(
        "([plot, uid]) => { const gd = document.querySelector('.' + plot);"
        " const t = gd.data.find((d) => d.uid === uid);"
        " return {customdata: t.customdata || [], size: t.marker ? t.marker.size : null,"
        " x: t.x, y: t.y}; }",
        [plot, uid],
    )


def title(tab: OfflineTab) -> str:
    return tab.page.locator(".nx-title").text_content()


def wait_title(tab: OfflineTab, text: str) -> None:
    tab.page.wait_for_function(
        "(text) => document.querySelector('.nx-title').textContent === text", arg=text
    )


def test_offline_load_and_search_by_id(tab, karate_page):
    tab.open(karate_page, READY)
    assert title(tab) == "node 0"  # the first target
    tab.page.fill(".nx-search", "33")
    tab.page.press(".nx-search", "Enter")
    wait_title(tab, "node 33")
    assert trace(tab, "nx-nodes")["customdata"][0] == 33  # the centre marker
    assert "node=33" in tab.page.evaluate("location.hash")
    assert not tab.page.is_visible(".nx-method")  # one method: no method switch
    assert tab.blocked == [] and tab.errors == [] and tab.dialogs == []


def test_drawn_nodes_and_sizes_follow_the_attribution(tab, karate_page, karate_att):
    tab.open(karate_page, READY, "#node=33&k=8&hops=2")
    cls = int(karate_att.predicted[np.flatnonzero(karate_att.targets == 33)[0]])
    drawn = trace(tab, "nx-nodes")
    expected = top_k_oracle(karate_att, 33, cls, 8, 2)
    assert drawn["customdata"] == [33, *expected]
    sizes = {}
    for other in ("nx-bridges", "nx-nodes"):
        got = trace(tab, other)
        sizes.update(zip(got["customdata"], got["size"], strict=True))
    sources, _, contrib = karate_att.for_target(33)
    value = dict(zip(sources.tolist(), contrib[:, cls].tolist(), strict=True))
    scale = max(abs(value[v]) for v in sizes)
    for v, size in sizes.items():
        want = max(MAX_DIAMETER * np.sqrt(abs(value[v]) / scale), MIN_DIAMETER)
        assert size == pytest.approx(want, rel=1e-3)


def test_click_a_neighbour_then_back_and_forward(tab, karate_page, karate_att):
    tab.open(karate_page, READY, "#node=33")
    before = trace(tab, "nx-nodes")["customdata"]
    neighbour = before[1]
    tab.click_point("nx-nodes", 1)
    wait_title(tab, f"node {neighbour}")
    after = trace(tab, "nx-nodes")["customdata"]
    row = np.flatnonzero(karate_att.targets == neighbour)[0]
    cls = int(karate_att.predicted[row])
    assert after == [neighbour, *top_k_oracle(karate_att, neighbour, cls, 30, 2)]
    tab.page.click(".nx-back")
    wait_title(tab, "node 33")
    assert trace(tab, "nx-nodes")["customdata"] == before
    tab.page.click(".nx-forward")
    wait_title(tab, f"node {neighbour}")
    tab.page.go_back()  # the browser's own history (location.hash)
    wait_title(tab, "node 33")
    assert tab.page.is_disabled(".nx-back") and not tab.page.is_disabled(".nx-forward")
    assert tab.errors == [] and tab.blocked == []


def test_class_switch_changes_marker_sizes(tab, karate_page):
    tab.open(karate_page, READY, "#node=33")
    first = trace(tab, "nx-nodes")
    current = tab.page.input_value(".nx-class")
    other = next(c for c in ("0", "1") if c != current)
    tab.page.select_option(".nx-class", other)
    tab.page.wait_for_function("(c) => location.hash.includes('class=' + c)", arg=other)
    second = trace(tab, "nx-nodes")
    assert second["customdata"][0] == 33
    by_node = lambda t: dict(zip(t["customdata"], t["size"], strict=True))
    common = set(by_node(first)) & set(by_node(second))
    assert any(abs(by_node(first)[v] - by_node(second)[v]) > 0.5 for v in common)


def test_method_switch(tab, tmp_path, karate, karate_att):
    import dataclasses

    negated = dataclasses.replace(karate_att, contributions=-karate_att.contributions)
    path = explore({"nam": karate_att, "negated": negated}, karate, out=tmp_path / "two.html")
    tab.open(path, READY, "#node=33")
    symbols = lambda: tab.page.evaluate(
        "document.querySelector('.nx-niv-plot').data.find((d) => d.uid === 'nx-nodes')"
        ".marker.symbol"
    )
    before = symbols()
    tab.page.select_option(".nx-method", label="negated")
    tab.page.wait_for_function("location.hash.includes('method=negated')")
    flip = {"triangle-up": "triangle-down", "triangle-down": "triangle-up", "circle": "circle"}
    assert symbols() == [flip[s] for s in before]
    assert "method negated" in tab.page.locator(".nx-subtitle").text_content()


def test_switching_between_two_methods_changes_the_sizes(tab, tmp_path, karate, karate_model):
    """nam and saliency, both from the engine: after the switch the drawn nodes and their
    sizes are saliency's (top-k by numpy argsort, diameters by the NIV formula)."""
    from namjax.explainer import explain

    atts = {m: explain(karate_model, karate, m) for m in ("nam", "saliency")}
    path = explore(list(atts.values()), karate, out=tmp_path / "methods.html", top_k=10)
    tab.open(path, READY, "#node=33&hops=2")
    assert tab.page.is_visible(".nx-method")
    sized = lambda: {
        v: s
        for uid in ("nx-nodes", "nx-bridges")
        for v, s in zip(trace(tab, uid)["customdata"], trace(tab, uid)["size"], strict=True)
    }
    before = sized()
    tab.page.select_option(".nx-method", label="saliency")
    tab.page.wait_for_function("location.hash.includes('method=saliency')")
    after = sized()
    assert any(abs(before[v] - after[v]) > 0.5 for v in set(before) & set(after))
    att = atts["saliency"]
    cls = int(att.predicted[33])
    assert trace(tab, "nx-nodes")["customdata"] == [33, *top_k_oracle(att, 33, cls, 10, 2)]
    sources, _, contrib = att.for_target(33)
    value = dict(zip(sources.tolist(), contrib[:, cls].tolist(), strict=True))
    scale = max(abs(value[v]) for v in after)
    for v, size in after.items():
        want = max(MAX_DIAMETER * np.sqrt(abs(value[v]) / scale), MIN_DIAMETER)
        assert size == pytest.approx(want, rel=1e-3)
    rims = trace(tab, "nx-rims")  # every marker on its black rim, RIM_EXTRA px larger
    assert sorted(rims["size"]) == pytest.approx(sorted(s + RIM_EXTRA for s in after.values()))
    assert "method saliency" in tab.page.locator(".nx-subtitle").text_content()
    assert tab.errors == [] and tab.blocked == []


def test_shift_click_highlights_the_walk_edges(tab, karate_page, karate):
    tab.open(karate_page, READY, "#node=33&hops=2&k=12")
    nodes = trace(tab, "nx-nodes")
    ids = nodes["customdata"]
    far = next(j for j, v in enumerate(ids) if karate.adjacency[33, v] == 0 and v != 33)
    tab.click_point("nx-nodes", far, shift=True)
    tab.page.wait_for_selector(".nx-walk-caption:not(:empty)")
    caption = tab.page.locator(".nx-walk-caption").text_content()
    assert "not their individual contributions" in caption and f"node {ids[far]}" in caption
    assert title(tab) == "node 33"  # shift-click does not move
    # oracle: edges {u, v} among the drawn nodes with d(source, u) + 1 + d(v, target) <= K
    drawn = ids + trace(tab, "nx-bridges")["customdata"]
    sub = karate.adjacency[drawn][:, drawn]
    dist = shortest_path(sub, unweighted=True, directed=False)
    s, t = drawn.index(ids[far]), 0
    upper = sp.triu(sub, k=1).tocoo()
    want = {
        frozenset((drawn[a], drawn[b]))
        for a, b in zip(upper.row, upper.col, strict=True)
        if min(dist[s, a] + 1 + dist[b, t], dist[s, b] + 1 + dist[a, t]) <= 2
    }
    where = {}
    for uid in ("nx-nodes", "nx-bridges"):
        got = trace(tab, uid)
        where.update(
            {
                (round(x, 6), round(y, 6)): v
                for x, y, v in zip(got["x"], got["y"], got["customdata"], strict=True)
            }
        )
    walk = trace(tab, "nx-walk")
    segments = {
        frozenset(
            (
                where[(round(walk["x"][i], 6), round(walk["y"][i], 6))],
                where[(round(walk["x"][i + 1], 6), round(walk["y"][i + 1], 6))],
            )
        )
        for i in range(0, len(walk["x"]), 3)
    }
    assert want and segments == want


def test_hostile_names_render_as_text(tab, tmp_path):
    page_path = explore(evil_attribution(), evil_graph(), out=tmp_path / "evil.html")
    tab.open(page_path, READY)
    page = tab.page
    assert title(tab) == f"node 0 ({EVIL_NODE})"
    assert EVIL_CLASS in page.locator(".nx-class option").all_text_contents()
    assert EVIL_CLASS in " ".join(page.locator(".nx-niv-plot .legendtext").all_text_contents())
    assert page.title().endswith("namjax explorer: <i>evil</i>")
    page.fill(".nx-search", "onerror")
    assert page.locator(".nx-suggest button").all_text_contents() == [f"node 0 ({EVIL_NODE})"]
    ids = trace(tab, "nx-nodes")["customdata"]
    tab.click_point("nx-nodes", ids.index(1))  # node 1 is no explained target
    page.wait_for_selector(".nx-message:not(:empty)")
    assert page.locator(".nx-message").text_content().startswith(f"node 1 ({NODE_NAMES[1]}) is not")
    assert title(tab) == f"node 0 ({EVIL_NODE})"
    page.wait_for_timeout(300)
    assert page.locator("img, b, i").count() == 0
    assert tab.dialogs == [] and tab.errors == [] and tab.blocked == []


def test_widget_module_renders_and_follows_the_model(tab, karate, karate_att):
    require("anywidget")
    widget = explorer_widget(karate_att, karate, node=33)
    tab.page.goto("about:blank")
    tab.page.set_content('<div id="host"></div>')
    tab.page.evaluate(
        """async ([esm, css, data, plotly]) => {
            const style = document.createElement("style"); style.textContent = css;
            document.head.append(style);
            const url = URL.createObjectURL(new Blob([esm], {type: "text/javascript"}));
            const widget = (await import(url)).default;
            const values = {data, _plotly: plotly, node: 33}, listeners = [];
            window.saved = [];
            window.model = {
                get: (k) => values[k], set: (k, v) => { values[k] = v; },
                save_changes: () => window.saved.push(values.node),
                on: (name, f) => listeners.push(f), off: () => {},
                move: (v) => { values.node = v; listeners.forEach((f) => f()); },
            };
            widget.render({model: window.model, el: document.getElementById("host")});
        }""",
        [widget._esm, widget._css, widget.data, widget._plotly],
    )
    tab.page.wait_for_selector(READY, state="attached")
    assert title(tab) == "node 33"
    neighbour = trace(tab, "nx-nodes")["customdata"][1]
    tab.click_point("nx-nodes", 1)
    wait_title(tab, f"node {neighbour}")
    assert tab.page.evaluate("window.saved") == [neighbour]  # the node trait follows
    tab.page.evaluate("window.model.move(0)")  # Python sets widget.node = 0
    wait_title(tab, "node 0")
    tab.page.click(".nx-back")
    wait_title(tab, f"node {neighbour}")
    assert tab.page.evaluate("location.hash") == ""  # the widget leaves the URL alone
    assert tab.errors == [] and tab.dialogs == []


def test_app_module_is_the_one_in_the_page(karate_page):
    assert asset("explorer.js") in karate_page.read_text(encoding="utf-8")


@pytest.mark.slow
def test_cora_page_loads(tab, tmp_path, cora, cora_model):
    from namjax.explainer import nam

    att = nam(cora_model, cora)
    page_path = explore(att, cora, out=tmp_path / "cora.html")
    tab.open(page_path, READY, "#node=1358")
    assert title(tab) == "node 1358"
    drawn = trace(tab, "nx-nodes")["customdata"]
    cls = int(att.predicted[1358])
    assert drawn == [1358, *top_k_oracle(att, 1358, cls, 30, 2)]
    assert tab.blocked == [] and tab.errors == [] and tab.dialogs == []


def test_jupyter_iframe_repr_runs_sandboxed(tab, karate, karate_att):
    page = explore(karate_att, karate, top_k=6)
    tab.page.goto("about:blank")
    tab.page.set_content(page._repr_html_())
    frame = tab.page.frame_locator("iframe")
    frame.locator(READY).first.wait_for(state="attached", timeout=30_000)
    assert frame.locator(".nx-title").text_content() == "node 0"
    frame.locator(".nx-search").fill("5")
    frame.locator(".nx-search").press("Enter")
    frame.locator(".nx-title").filter(has_text="node 5").wait_for()
    frame.locator(".nx-back").click()  # the framed page keeps its own history
    frame.locator(".nx-title").filter(has_text="node 0").wait_for()
    assert tab.errors == [] and tab.dialogs == []
