"""The whole-graph NIV explorer: one offline HTML page (or a Jupyter widget) for every target.

:func:`explore` writes a self-contained page: plotly.js, the app (``explorer_assets/``) and the
attributions of every explained target (:mod:`namjax.views.explorer_data`) are embedded, so it
opens from disk with no server and no network. In it a search box, a click on a neighbour, or
the back/forward buttons (and the browser's, through ``location.hash``) choose the current node;
its NIV is drawn on hop rings with its top-k contributors, faded bridge nodes where the top k
hides the node joining a drawn one to the target, a bar panel and the per-hop breakdown that
adds up to the logit. :func:`explorer_widget` shows the same app in Jupyter (needs the optional
``anywidget`` package); the string :func:`explore` returns also displays itself in Jupyter as
a sandboxed iframe, and so does the widget where no widget manager runs (a notebook exported
with ``jupyter nbconvert --to html``, or a viewer without a kernel).
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from importlib.resources import files
from pathlib import Path

from namjax.errors import ViewError
from namjax.graph import Graph
from namjax.outputs import check_output_file, write_bytes
from namjax.views import explorer_data

ASSETS = "explorer_assets"
_SLOTS = re.compile(r"@(TITLE|CSS|PLOTLY|DATA|APP)@")


class ExplorerPage(str):
    """The page's HTML; Jupyter shows it in a sandboxed iframe (``_repr_html_``), and its
    repr is a one-line summary instead of megabytes of text."""

    def __repr__(self) -> str:
        return f"<namjax explorer page: {len(self.encode('utf-8')) / 1e6:.1f} MB of HTML>"

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self, quote=True)}" sandbox="allow-scripts" '
            'style="width: 100%; height: 1080px; border: none"></iframe>'
        )


def asset(name: str) -> str:
    """The text of ``explorer_assets/<name>`` (``explorer.js``, ``explorer.css``, ...)."""
    return (files("namjax.views") / ASSETS / name).read_text(encoding="utf-8")


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _title(graph: Graph, title: str | None) -> str:
    return f"namjax explorer: {graph.name}" if title is None else str(title)


def _data_json(attributions, graph: Graph, top_k: int, title: str | None, max_nodes: int) -> str:
    if not isinstance(graph, Graph):
        raise ViewError(f"graph must be a namjax Graph, got {type(graph).__name__}")
    for name, value in (("top_k", top_k), ("max_nodes", max_nodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ViewError(f"{name} must be a positive integer, got {value!r}")
    found = explorer_data.methods(attributions)
    explorer_data.check(found, graph)
    data = explorer_data.payload(
        found, graph, top_k=top_k, title=_title(graph, title), max_nodes=max_nodes
    )
    return explorer_data.to_json(data)


def _page(data: str, title: str) -> ExplorerPage:
    """The self-contained page around a payload (:func:`_data_json`)."""
    parts = {
        "TITLE": html.escape(title),
        "CSS": asset("explorer.css"),
        "PLOTLY": _plotly_js(),
        "DATA": data,
        "APP": asset("explorer.js"),
    }
    return ExplorerPage(_SLOTS.sub(lambda m: parts[m.group(1)], asset("explorer.html")))


def explore(
    attributions,
    graph: Graph,
    *,
    top_k: int = 30,
    out: str | Path | None = None,
    title: str | None = None,
    max_nodes: int = 50_000,
) -> ExplorerPage | Path:
    """The explorer page of every target in ``attributions``.

    Args:
        attributions: an :class:`namjax.Attribution` (named by its ``method``), a list of
            them (of different methods) or ``{name: Attribution}``; all must share targets,
            class slots and depth, and be computed on ``graph`` (``att.check(graph)``) with
            one model.
        graph: the graph they explain (names, labels, split masks and edges come from it).
        top_k: the most neighbours the page can draw per target and class (its slider's top);
            per hop radius h = 1..K the page holds the top ``top_k`` within h hops, plus the
            bridge nodes that join them to the target.
        out: write the page here (``.html``; missing folders are created) and return its
            path; default: return the HTML.
        title: the page's heading; default ``"namjax explorer: <graph name>"``.
        max_nodes: refuse a page holding more nodes than this (the targets and their listed
            neighbours): explain fewer targets or lower ``top_k`` instead.

    Returns:
        The path written, or the HTML as an :class:`ExplorerPage` (a ``str``).

    Raises:
        OutputError: a bad ``out`` (checked before any work).
        AttributionError: an attribution of another graph.
        ViewError: mismatched attributions or a page over ``max_nodes``.
    """
    path = None if out is None else Path(out)
    if path is not None:
        check_output_file(path, (".html", ".htm"))
    page = _page(_data_json(attributions, graph, top_k, title, max_nodes), _title(graph, title))
    if path is None:
        return page
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, page.encode("utf-8"))
    return path


@cache
def _widget_class():
    try:
        import anywidget
        import traitlets
    except ImportError:
        raise ViewError(
            "explorer_widget needs the anywidget package (pip install 'namjax[notebook]'); "
            "explore() writes the same view as a page without it"
        ) from None

    class ExplorerWidget(anywidget.AnyWidget):
        """The explorer app in Jupyter; ``node`` is the current node (set it to move). Its
        display also carries the page as ``text/html`` (a sandboxed iframe), which frontends
        without the widget manager, and notebooks exported to HTML, show instead."""

        _esm = asset("explorer.js")
        _css = asset("explorer.css")
        data = traitlets.Unicode("").tag(sync=True)
        _plotly = traitlets.Unicode("").tag(sync=True)
        node = traitlets.Int(-1).tag(sync=True)

        def _repr_mimebundle_(self, **kwargs):
            bundle = super()._repr_mimebundle_(**kwargs)  # (data, metadata) or None
            if bundle is not None:
                data = self.data if self.node < 0 else f'{{"start":{self.node},{self.data[1:]}'
                page = _page(data, json.loads(self.data)["title"])
                bundle[0]["text/html"] = page._repr_html_()
            return bundle

    return ExplorerWidget


def explorer_widget(
    attributions,
    graph: Graph,
    *,
    top_k: int = 30,
    title: str | None = None,
    max_nodes: int = 50_000,
    node: int | None = None,
):
    """The explorer as an ``anywidget.AnyWidget`` (same app and data as :func:`explore`).

    ``node`` is the first current node (default: the first target); the widget's ``node``
    trait follows clicks and searches, and setting it re-centres the view.
    """
    widget = _widget_class()
    if node is not None and (isinstance(node, bool) or not isinstance(node, int)):
        raise ViewError(f"node must be a node id, got {node!r}")
    data = _data_json(attributions, graph, top_k, title, max_nodes)
    return widget(data=data, _plotly=_plotly_js(), node=-1 if node is None else node)
