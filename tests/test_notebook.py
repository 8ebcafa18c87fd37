"""The walkthrough notebook is stored without outputs and runs top to bottom."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import planetoid_dir
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"
PLOTLY = "application/vnd.plotly.v1+json"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
def test_notebook_runs(tmp_path, monkeypatch):
    # a kernel spec for this very interpreter: the test needs no kernel installed beforehand
    spec = tmp_path / "kernels" / "namjax-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "namjax test", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="namjax-test",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if PLOTLY in o.get("data", {})]
    assert len(figures) == 5  # two NIV graphs, bars, paths, deletion curves
    meta = [f["data"][PLOTLY]["layout"].get("meta", {}) for f in figures]
    assert [m.get("view") for m in meta[:4]] == ["niv", "niv", "bars", "paths"]
    dataset, node = ("cora", 1358) if planetoid_dir() else ("karate", 0)
    assert all(m["target"] == node for m in meta[:4])
    assert f"'name': '{dataset}'" in nb.cells[1].outputs[0]["data"]["text/plain"]
