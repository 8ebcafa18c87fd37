"""PyG interop: models imported from PyG give PyG's logits, NAM equals Captum's InputXGradient,
unsupported models are refused with one line, graphs and explanations cross over."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from models import assert_complete
from test_nam import graphs

torch = require("torch")
require("torch_geometric")
require("captum")

from captum_reference import (  # noqa: E402  (after the optional imports)
    ARCHITECTURES,
    build_model,
    captum_node_attributions,
    data_from_graph,
)
from torch_geometric.data import Data  # noqa: E402

from namjax.errors import GraphError, ModelError  # noqa: E402
from namjax.explainer import nam  # noqa: E402
from namjax.graph import Graph  # noqa: E402
from namjax.io import load_model, save_model  # noqa: E402
from namjax.model import cast_steps, device_graph, forward, predict  # noqa: E402
from namjax.pyg import from_pyg, pyg_logits  # noqa: E402

KINDS = {
    "gcn": "gcn",
    "gcn_improved": "gcn",
    "gcn_no_self_loops": "gcn",
    "gcn_unnormalized": "gcn",
    "gcn_no_bias": "gcn",
    "gcn_example": "gcn",
    "sage": "sage",
    "gin": "gin",
    "gin_train_eps": "gin",
    "sgc": "sgc",
}


def rel(got, want) -> float:
    want = np.asarray(want, np.float64)
    return float(np.abs(np.asarray(got, np.float64) - want).max() / max(np.abs(want).max(), 1e-12))


def logits64(model, graph) -> np.ndarray:
    dg = device_graph(graph, model.operators, jnp.float64)
    return np.asarray(forward(cast_steps(model.steps(), jnp.float64), dg))


def imported(arch: str, graph: Graph, **kwargs):
    data = data_from_graph(graph)
    pyg_model = build_model(arch, data, graph.num_classes, **kwargs)
    model, g = from_pyg(pyg_model, data, name=graph.name)
    return pyg_model, data, model, g


# ---------------------------------------------------------------------------- logits
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_is_read_with_its_options(karate, arch):
    pyg_model, data, model, graph = imported(arch, karate)
    assert {spec.kind for spec in model.config.layers} == {KINDS[arch]}
    assert model.config.depth == 2
    spec = model.config.layers[0]
    expect = {
        "gcn_improved": ("improved", True),
        "gcn_no_self_loops": ("add_self_loops", False),
        "gcn_unnormalized": ("normalize", False),
        "gcn_no_bias": ("bias", False),
        "gin_train_eps": ("train_eps", True),
    }.get(arch)
    if expect is not None:
        assert getattr(spec, expect[0]) is expect[1]
    assert graph.fingerprint == Graph.from_pyg(data, name=karate.name).fingerprint
    assert rel(logits64(model, graph), pyg_logits(pyg_model, data)) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("dataset", ["cora", "citeseer"])
def test_logits_equal_pyg_on_planetoid(arch, dataset, request):
    graph = request.getfixturevalue(dataset)
    pyg_model, data, model, g = imported(arch, graph, hidden_channels=16)
    assert rel(logits64(model, g), pyg_logits(pyg_model, data)) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch", ["gcn", "gcn_improved", "gcn_unnormalized", "sage", "gin_train_eps", "sgc"]
)
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(graph=graphs(), layers=st.sampled_from([1, 2, 3]), seed=st.integers(0, 3))
def test_logits_equal_pyg_on_random_graphs(arch, graph, layers, seed):
    """Weighted graphs with isolated nodes, hubs and disconnected parts, depth 1..3."""
    pyg_model, data, model, g = imported(arch, graph, num_layers=layers, seed=seed)
    assert rel(logits64(model, g), pyg_logits(pyg_model, data)) <= 1e-5


# ---------------------------------------------------------------------------- NAM vs Captum
@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_nam_equals_captum_input_x_gradient(cora, arch):
    """NAM, all classes, equals PyG's ``Explainer`` + ``CaptumExplainer('InputXGradient')``
    (node mask summed over features) per target, in float64."""
    pyg_model, data, model, graph = imported(arch, cora, hidden_channels=16)
    degree = np.diff(cora.adjacency.indptr)
    targets = np.array([int(degree.argmax()), 2400, 7])  # the hub (1358) and two others
    want = captum_node_attributions(pyg_model, data, "input_x_gradient", targets)  # (T, N, C)
    att = nam(model, graph, targets=targets, dtype=jnp.float64)
    got = np.transpose(att.dense(), (0, 2, 1))  # (T, C, N) -> compare per (target, class)
    assert rel(got, np.transpose(want, (0, 2, 1))) <= 1e-4
    assert_complete(att)


@pytest.mark.parametrize("arch", ["gcn", "sage", "gin", "sgc"])
def test_nam_equals_captum_on_a_random_graph(arch):
    rng = np.random.default_rng(5)
    edges = rng.integers(0, 30, (2, 70))
    weights = rng.uniform(0.5, 2.0, 70)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicates and self-loops are merged / dropped
        graph = Graph.from_edge_index(
            np.concatenate([edges, edges[::-1]], 1),
            32,  # nodes 30 and 31 are isolated
            np.concatenate([weights, weights]),
            features=rng.normal(size=(32, 6)).astype(np.float32),
            labels=rng.integers(0, 3, 32),
        )
    pyg_model, data, model, g = imported(arch, graph, num_layers=3)
    targets = np.array([0, 5, 31])
    want = captum_node_attributions(pyg_model, data, "input_x_gradient", targets)
    got = nam(model, g, targets=targets, dtype=jnp.float64).dense()
    assert rel(got, want) <= 1e-4


# ---------------------------------------------------------------------------- refusals
def _refused(model, data, match: str) -> None:
    with pytest.raises(ModelError, match=match) as info:
        from_pyg(model, data)
    assert "\n" not in str(info.value)


def test_unsupported_models_are_refused_with_one_line(karate):
    from torch_geometric.nn import GATConv, SAGEConv
    from torch_geometric.nn.models import GCN, GraphSAGE

    data = data_from_graph(karate)
    f, c = data.num_features, 2

    class GAT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = GATConv(f, 8)
            self.conv2 = GATConv(8, c)

        def forward(self, x, edge_index):
            return self.conv2(self.conv1(x, edge_index).relu(), edge_index)

    _refused(GAT().double(), data, r"model\.conv1 is a GATConv: namjax explains GCNConv")
    _refused(GCN(f, 8, 2, c, jk="cat").double(), data, r"jk='cat'")
    _refused(GCN(f, 8, 2, c, norm="batch_norm").double(), data, r"model\.norms\.0 is a BatchNorm")
    _refused(GraphSAGE(f, 8, 2, c, aggr="max").double(), data, r"aggregates with 'max'")
    _refused(GCN(f, 8, 2, c, act="gelu").double(), data, r"model\.act is a GELU")

    class Skip(torch.nn.Module):  # a forward the module tree cannot show: refused by parity
        def __init__(self):
            super().__init__()
            self.conv1 = SAGEConv(f, f)
            self.conv2 = SAGEConv(f, c)

        def forward(self, x, edge_index):
            return self.conv2(x + self.conv1(x, edge_index).relu(), edge_index)

    _refused(Skip().double(), data, r"logits differ from PyG's .* nothing was imported")


# ---------------------------------------------------------------------------- graphs
def test_graph_from_pyg_reads_every_field():
    edge_index = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 3]])  # a self-loop on 3
    data = Data(
        x=torch.arange(12, dtype=torch.float32).reshape(4, 3),
        edge_index=edge_index,
        edge_weight=torch.tensor([2.0, 2.0, 1.0, 1.0, 5.0]),
        y=torch.tensor([0, 1, 1, 0]),
        train_mask=torch.tensor([True, False, False, False]),
        val_mask=torch.tensor([False, True, False, False]),
        test_mask=torch.tensor([False, False, True, True]),
    )
    with pytest.warns(UserWarning, match="self-loops dropped"):
        graph = Graph.from_pyg(data, name="tiny")
    want = Graph.from_edge_index(
        np.array([[0, 1, 1, 2], [1, 0, 2, 1]]),
        4,
        np.array([2.0, 2.0, 1.0, 1.0]),
        features=np.arange(12, dtype=np.float32).reshape(4, 3),
        labels=np.array([0, 1, 1, 0]),
        train_mask=[0],
        val_mask=[1],
        test_mask=[2, 3],
        name="tiny",
    )
    assert graph.fingerprint == want.fingerprint
    for mask in ("train_mask", "val_mask", "test_mask"):
        np.testing.assert_array_equal(getattr(graph, mask), getattr(want, mask))
    with pytest.raises(GraphError, match="no edge_index"):
        Graph.from_pyg(Data(x=torch.zeros(3, 2)))


def test_imported_model_saves_and_loads(karate, tmp_path):
    _pyg_model, _data, model, graph = imported("gin_train_eps", karate)
    loaded = load_model(save_model(model, graph, tmp_path / "m"), graph)
    np.testing.assert_array_equal(predict(loaded, graph), predict(model, graph))
    assert loaded.config == model.config


# ---------------------------------------------------------------------------- explanations
def test_to_pyg_gives_an_explanation_pyg_can_use(karate):
    from torch_geometric.explain import Explainer
    from torch_geometric.explain.algorithm import DummyExplainer
    from torch_geometric.explain.metric import fidelity

    pyg_model, _data, model, graph = imported("gcn", karate)
    att = nam(model, graph, targets=[0, 33])
    exp = att.to_pyg(33, graph=graph)
    sources, _, contrib = att.for_target(33)
    slot = att.slot(att.row(33), None)
    mask = np.zeros(34)
    mask[sources] = contrib[:, slot]
    np.testing.assert_allclose(exp.node_mask[:, 0].numpy(), mask, rtol=1e-6)
    assert exp.index == 33 and int(exp.target[33]) == int(att.predicted[1])
    assert exp.validate(raise_on_error=True)
    sub = exp.get_explanation_subgraph()  # nodes with a positive contribution
    assert sub.num_nodes == int((mask > 0).sum())
    # PyG's fidelity on a hard mask of the top contributors equals the masked predictions
    hard = exp.clone()
    top = np.argsort(-np.abs(mask))[:5]
    keep = np.zeros((34, 1), np.float32)
    keep[top] = 1.0
    hard.node_mask = torch.tensor(keep)
    explainer = Explainer(
        model=pyg_model.float(),
        algorithm=DummyExplainer(),
        explanation_type="model",
        node_mask_type="object",
        model_config={
            "mode": "multiclass_classification",
            "task_level": "node",
            "return_type": "raw",
        },
    )
    fid_plus, fid_minus = fidelity(explainer, hard)
    x, ei = hard.x, hard.edge_index
    with torch.no_grad():
        pred = pyg_model(x, ei).argmax(-1)[33]
        without = pyg_model(x * (1 - torch.tensor(keep)), ei).argmax(-1)[33]
        only = pyg_model(x * torch.tensor(keep), ei).argmax(-1)[33]
    assert fid_plus == pytest.approx(1.0 - float(without == pred))
    assert fid_minus == pytest.approx(1.0 - float(only == pred))
    assert len(att.to_pyg_many([0, 33])) == 2


def test_cli_import_pyg_from_a_script(tmp_path, capsys):
    """A user's script defining `model` and `data` becomes a model directory (with its graph),
    which `namjax explain` then reads without --dataset."""
    import json

    from namjax.attribution import Attribution
    from namjax.cli import main

    script = tmp_path / "mymodel.py"
    script.write_text(
        "import torch\n"
        "from torch_geometric.data import Data\n"
        "from torch_geometric.nn.models import GraphSAGE\n"
        "torch.manual_seed(0)\n"
        "edges = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])\n"
        "data = Data(x=torch.randn(5, 4), edge_index=edges, y=torch.tensor([0, 1, 0, 1, 0]))\n"
        "model = GraphSAGE(4, 8, 2, out_channels=2)\n"
        "if __name__ == '__main__':\n"
        "    raise SystemExit('training would run here')\n"
    )
    out = tmp_path / "imported"
    assert main(["import-pyg", "--script", str(script), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["graph"]["nodes"] == 5 and (out / "graph.npz").is_file()
    assert main(["explain", "--model", str(out), "--out", str(tmp_path / "nam")]) == 0
    att = Attribution.load(tmp_path / "nam")
    scope = __import__("runpy").run_path(str(script), run_name="check")
    want = pyg_logits(scope["model"], scope["data"])
    np.testing.assert_allclose(att.logits, want, rtol=1e-4, atol=1e-5)
    capsys.readouterr()
    assert (
        main(["import-pyg", "--script", str(tmp_path / "none.py"), "--out", str(tmp_path / "x")])
        == 2
    )
    assert "is not a file" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("model = 1\n")
    assert main(["import-pyg", "--script", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert "defines no global 'data'" in capsys.readouterr().err


def test_a_users_module_with_a_list_of_convs(karate):
    """A module keeping its convolutions in ``self.convs`` with a functional activation between
    them: read with the activation given (default relu), checked by parity."""
    from torch_geometric.nn import SAGEConv

    data = data_from_graph(karate)

    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleList([SAGEConv(34, 8), SAGEConv(8, 8), SAGEConv(8, 2)])

        def forward(self, x, edge_index):
            for i, conv in enumerate(self.convs):
                x = conv(x, edge_index)
                x = torch.tanh(x) if i < 2 else x
            return x

    torch.manual_seed(1)
    pyg_model = Stack().double().eval()
    model, graph = from_pyg(pyg_model, data, activation="tanh")
    assert model.config.depth == 3 and model.config.activation == "tanh"
    assert rel(logits64(model, graph), pyg_logits(pyg_model, data)) <= 1e-5
    _refused(pyg_model, data, r"logits differ")  # the default relu is not this model's


# ---------------------------------------------------------------------------- training
@pytest.mark.parametrize("arch", ["gcn", "gcn_example", "sage", "gin", "gin_train_eps", "sgc"])
def test_training_follows_pyg_step_for_step(karate, arch):
    """From the same weights and with dropout off, ``train`` takes PyG's steps: Adam on the
    mean cross-entropy of the train nodes plus ``weight_decay · ||θ1||² / 2`` on the first
    conv's parameters, in float64 in both (the loop of ``benchmarks/pyg_baselines.py``)."""
    from flax import nnx

    from namjax.training import train

    pyg_model, data, model, graph = imported(arch, karate)
    if hasattr(pyg_model, "dropout"):  # PyG's basic models: read without dropout
        pyg_model.dropout.p = 0.0
        model, graph = from_pyg(pyg_model, data, name=karate.name)
    assert model.config.dropout == 0.0
    params = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree.map(lambda p: p.astype(jnp.float64), params))
    epochs, lr, wd = 12, 0.01, 5e-4
    got = train(karate, init=model, epochs=epochs, lr=lr, weight_decay=wd, patience=0).model

    first = {"sgc": "conv", "gcn_example": "conv1"}.get(arch)
    first = pyg_model.convs[0] if first is None else getattr(pyg_model, first)
    opt = torch.optim.Adam(pyg_model.parameters(), lr=lr)
    train_mask, y = torch.as_tensor(karate.train_mask), torch.as_tensor(karate.labels).long()
    weight = [data.edge_weight] if getattr(data, "edge_weight", None) is not None else []
    pyg_model.eval()  # no dropout (nor anything else train mode would change here)
    for _ in range(epochs):
        opt.zero_grad()
        out = pyg_model(data.x, data.edge_index, *weight)
        loss = torch.nn.functional.cross_entropy(out[train_mask], y[train_mask])
        (loss + 0.5 * wd * sum((p**2).sum() for p in first.parameters())).backward()
        opt.step()
    start = rel(logits64(model, graph), pyg_logits(pyg_model, data))
    assert start > 1e-3  # the steps moved the logits ...
    # ... the same way: to the rounding of the float32 operators training uses (float32
    # training itself drifts by about 1e-4 in 12 steps)
    assert rel(logits64(got, graph), pyg_logits(pyg_model, data)) < 1e-6
