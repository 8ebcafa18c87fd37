"""NIV pages in a real browser: Debian's headless Chromium driven by Playwright, offline.

Outside CI the module skips when no Chromium executable exists; in CI (``CI`` set) it fails
instead, since ``.ci/run`` installs Debian's ``chromium``.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from browser_helpers import OfflineTab, browser_page, chromium_or_skip
from niv_case import EVIL_CLASS, EVIL_NODE, PREDICTED, evil_attribution, evil_graph

from namjax.views.niv import niv, write_figure

pytestmark = pytest.mark.browser

NODE_POINTS = 'g.trace[class*="traceniv-nodes-"] .points path'


class Tab(OfflineTab):
    """An offline tab for NIV figures: opening waits for the node markers; hovering reads the
    tooltip."""

    def open(self, path: Path) -> None:
        super().open(path, NODE_POINTS)

    def hover_point(self, trace_uid: str, index: int) -> str:
        """Move the mouse onto a node marker; returns the tooltip's text."""
        tip = self.page.locator(".hoverlayer .hovertext").first
        self.page.mouse.move(1, 1)  # off the plot: any previous tooltip goes away first
        tip.wait_for(state="detached", timeout=5_000)
        box = self.points(trace_uid).nth(index).bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        tip.wait_for(timeout=5_000)
        return tip.text_content()


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_or_skip()


@pytest.fixture(scope="module")
def tab(chromium):
    with browser_page(chromium, width=1000, height=820) as page:
        yield Tab(page)


def test_hostile_names_render_as_text_and_run_nothing(tab, tmp_path):
    graph = evil_graph()
    fig = niv(evil_attribution(), graph, 0, 2, top_k=None, predictions=PREDICTED)
    tab.open(write_figure(fig, tmp_path / "evil.html"))
    page = tab.page
    assert page.locator(NODE_POINTS).count() == 8  # target + 7 neighbours within 2 hops
    # the target is the first point of its class's trace (class 0)
    tip = tab.hover_point("niv-nodes-0", 0)
    assert f"node 0 ({EVIL_NODE})" in tip and "hop 0" in tip
    assert EVIL_CLASS in page.locator(".legendtext").all_text_contents()
    assert "<i>evil</i>" in page.locator(".gtitle").first.text_content()
    page.wait_for_timeout(300)
    assert page.locator("img").count() == 0
    assert tab.dialogs == []
    assert tab.blocked == []  # plotly.js is embedded: the page needs no network


def test_karate_page_draws_top_k_and_hovers(tab, tmp_path, karate, karate_model):
    from namjax.explainer import nam

    result = nam(karate_model, karate, targets=[33], classes="all")
    fig = niv(result, karate, 33, 2, top_k=12)
    tab.open(write_figure(fig, tmp_path / "karate.html"))
    assert tab.page.locator(NODE_POINTS).count() == 13
    cls = int(result.predicted[0])
    tip = tab.hover_point(f"niv-nodes-{cls}", 0)  # the target leads its class's trace
    assert "node 33" in tip and "share:" in tip
    bridges = fig.layout.meta["bridges"]
    assert tab.points("niv-bridges").count() == bridges
    assert tab.points("niv-rims").count() == 13 + bridges  # a rim behind every marker
    labels = tab.page.locator(".xtick text").all_text_contents()
    assert labels == ["hop 1", "hop 2"]  # the rings' labels
    assert bridges and "drawn faded as a bridge" in tab.hover_point("niv-bridges", 0)
    assert tab.dialogs == [] and tab.blocked == []


@pytest.mark.slow
def test_cora_1358_page_from_the_cli(tab, tmp_path, data_dir, cora, cora_model):
    from namjax.cli import main
    from namjax.io import save_model
    from namjax.model import predict

    model_dir = save_model(cora_model, cora, tmp_path / "cora-model")
    out = tmp_path / "cora-1358.html"
    args = ["--dataset", "cora", "--data-dir", str(data_dir), "--node", "1358"]
    assert main(["niv", "--model", str(model_dir), *args, "--out", str(out)]) == 0
    tab.open(out)
    degree = cora.adjacency[1358].nnz
    assert tab.page.locator(NODE_POINTS).count() == 1 + min(60, degree)
    cls = int(np.argmax(predict(cora_model, cora)[1358]))
    assert "node 1358" in tab.hover_point(f"niv-nodes-{cls}", 0)
    last = tab.page.locator(f'g.trace[class*="traceniv-nodes-{cls}"] .points path').count() - 1
    assert "hop 1" in tab.hover_point(f"niv-nodes-{cls}", last)
    assert tab.dialogs == [] and tab.blocked == []


@pytest.mark.slow
def test_static_images_via_kaleido(chromium, tmp_path, monkeypatch):
    """PNG and SVG export through kaleido (a test dependency), which drives the same Chromium."""
    monkeypatch.setenv("BROWSER_PATH", chromium)
    fig = niv(evil_attribution(), evil_graph(), 0, 2, predictions=PREDICTED)
    svg = ElementTree.fromstring(write_figure(fig, tmp_path / "evil.svg").read_text())
    tags = {el.tag.rsplit("}", 1)[-1] for el in svg.iter()}
    assert "text" in tags and not tags & {"img", "script", "i", "b"}
    text = "".join(svg.itertext())
    assert EVIL_NODE in text and EVIL_CLASS in text  # the names, as text
    png = write_figure(fig, tmp_path / "evil.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (fig.layout.width, fig.layout.height)
