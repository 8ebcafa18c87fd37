"""Notebooks: the walkthrough is stored without outputs, runs top to bottom and keeps its figures
when exported to HTML; the explorer widget runs in a kernel and exports as its page.

Executed with nbclient on a kernel spec for this very interpreter; exported with nbconvert
(a test dependency), the tool whose export used to drop the figures.
"""

from __future__ import annotations

import html
import json
import re
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from conftest import planetoid_dir, require
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"
PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def execute(nb, tmp_path: Path, monkeypatch, cwd: Path, **options):
    """Run ``nb`` in place on a kernel of this interpreter (no kernel install needed)."""
    spec = tmp_path / "kernels" / "namjax-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "namjax test", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    client = NotebookClient(
        nb,
        kernel_name="namjax-test",
        timeout=300,
        resources={"metadata": {"path": str(cwd)}},
        **options,
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    return outputs


def export_html(nb) -> str:
    """nbconvert's HTML export; a mimetype it cannot represent fails the test."""
    exporters = require("nbconvert.exporters")  # a test dependency: CI fails without it
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*not able to be represented")
        body, _ = exporters.HTMLExporter().from_notebook_node(nb)
    return body


@pytest.mark.slow
def test_notebook_runs_and_keeps_its_figures_in_html(tmp_path, monkeypatch):
    require("nbconvert")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    outputs = execute(nb, tmp_path, monkeypatch, NOTEBOOK.parent)

    figures = [o for o in outputs if PLOTLY in o.get("data", {})]
    assert len(figures) == 5  # two NIV graphs, bars, paths, deletion curves
    meta = [f["data"][PLOTLY]["layout"].get("meta", {}) for f in figures]
    assert [m.get("view") for m in meta] == ["niv", "niv", "bars", "paths", "deletion"]
    dataset, node = ("cora", 1358) if planetoid_dir() else ("karate", 0)
    assert all(m["target"] == node for m in meta[:4]) and meta[4]["dataset"] == dataset
    assert all("text/html" in f["data"] for f in figures)  # the copy that survives export
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert printed.startswith(f"Graph({dataset}: ")

    page = export_html(nb)
    # plotly.js once (inline, from the first cell), then one plot call per figure, each into
    # the div its own HTML copy created
    assert page.count("* plotly.js v") == 1 and 'src="https://cdn.plot.ly' not in page
    calls = re.findall(r'Plotly\.newPlot\(\s*"([0-9a-f-]+)"', page)
    assert len(calls) == 5 and len(set(calls)) == 5
    assert all(re.search(rf'<div [^>]*id="{uid}"', page) for uid in calls)
    first_call = page.index("Plotly.newPlot(")
    assert page.index("* plotly.js v") < first_call  # defined before it is used


NOTEBOOK_WITH_WIDGET = [
    "import namjax\n"
    "from namjax.views.explorer import explorer_widget\n"
    'graph = namjax.load_dataset("karate")\n'
    "model = namjax.train(graph, seed=0).model\n"
    "attribution = namjax.nam(model, graph)",
    "explorer_widget(attribution, graph, node=33, top_k=5)",
]


def widget_notebook():
    cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_WITH_WIDGET]
    return nbformat.v4.new_notebook(cells=cells)


@pytest.mark.slow
def test_explorer_widget_runs_in_a_kernel_and_exports_as_its_page(tmp_path, monkeypatch):
    require("anywidget")
    nb = widget_notebook()
    # no widget state stored: the export then shows the page the widget also carries (with
    # state, nbconvert would load the widget manager from a CDN instead)
    execute(nb, tmp_path, monkeypatch, tmp_path, store_widget_state=False)
    (shown,) = nb.cells[1].outputs
    assert shown.output_type == "execute_result"
    assert set(shown.data) == {WIDGET, "text/html", "text/plain"}
    assert shown.data[WIDGET]["model_id"]
    frame = shown.data["text/html"]
    assert frame.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in frame
    data = re.search(
        r'<script type="application/json" id="namjax-explorer-data">(.*?)</script>',
        html.unescape(frame),
        re.DOTALL,
    )
    payload = json.loads(data[1])
    assert payload["dataset"] == "karate" and payload["top_k"] == 5
    assert len(payload["targets"]) == 34 and payload["start"] == 33

    page = export_html(nb)
    assert iframes(page) == iframes(frame)  # the widget's page is the export's only frame
    assert 'type="application/vnd.jupyter.widget-view+json"' not in page


def iframes(text: str) -> list[dict]:
    """The attributes of every ``<iframe>`` in ``text``, unescaped (nbconvert re-serialises
    the outputs' HTML, so the markup itself may differ)."""

    class Frames(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.found: list[dict] = []

        def handle_starttag(self, tag, attrs):
            if tag == "iframe":
                self.found.append(dict(attrs))

    parser = Frames()
    parser.feed(text)
    return parser.found
