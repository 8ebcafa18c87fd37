"""PyG interop: graphs and trained models in, explanations out.

* :func:`graph_from_pyg` (``Graph.from_pyg``) reads a ``torch_geometric.data.Data``;
* :func:`from_pyg` reads a trained PyG model (its module tree: the convolutions, their
  options, the activation between them) into a :class:`~namjax.model.GNN` with the same
  weights, and checks that the two give the same logits on the data;
* :func:`explanation` (``Attribution.to_pyg``) turns an attribution into PyG's ``Explanation``.

Supported: ``GCNConv`` (edge weights, ``improved``, ``add_self_loops``, ``normalize``, with or
without bias), ``SGConv``, ``SAGEConv`` (mean aggregation), ``GINConv`` (an MLP
``Linear -> act -> Linear``, fixed or trainable ``eps``), stacked as PyG's basic models build
them (``torch_geometric.nn.models.GCN``, ``GraphSAGE``, ``GIN`` with ``jk=None`` and no
normalisation layers), as a plain ``torch.nn.Module`` whose children are the convolutions
(``conv1``, ``conv2``, ... with functional activations between them, as PyG's
``examples/gcn.py``), or a single convolution. Anything else is refused with one line naming
the submodule. torch and torch_geometric are optional (``pip install "namjax[pyg]"``) and
imported only here.
"""

from __future__ import annotations

import inspect

import numpy as np
from flax import nnx

from namjax.errors import ModelError
from namjax.graph import Graph
from namjax.layers import ACTIVATIONS, GCNSpec, GINSpec, LayerSpec, SAGESpec, SGCSpec
from namjax.model import GNN, GNNConfig, predict

PARITY_RTOL = 1e-4
"""Largest relative difference between PyG's and namjax's logits :func:`from_pyg` accepts
(the import runs in float32)."""


def _torch():
    try:
        import torch
        import torch_geometric  # noqa: F401
    except ImportError:
        raise ModelError(
            'PyG interop needs torch and torch_geometric: pip install "namjax[pyg]"'
        ) from None
    return torch


# ---------------------------------------------------------------------------- graphs
def graph_from_pyg(data, *, name: str = "pyg", directed: str = "symmetrize") -> Graph:
    """A :class:`Graph` from a PyG ``Data`` (:meth:`Graph.from_pyg`)."""
    return Graph.from_pyg(data, name=name, directed=directed)


def to_pyg_data(graph: Graph):
    """The graph as a PyG ``Data``: dense float32 ``x`` ``(N, F)``, ``edge_index`` ``(2, 2E)``
    (both directions of every edge), ``edge_weight`` ``(2E,)``, ``y`` (unknown labels as -1)
    and the split masks."""
    torch = _torch()
    from torch_geometric.data import Data

    a = graph.adjacency.tocoo()
    x = graph.features
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    return Data(
        x=torch.tensor(x, dtype=torch.float32),
        edge_index=torch.tensor(np.stack([a.col, a.row]), dtype=torch.long),
        edge_weight=torch.tensor(a.data, dtype=torch.float32),
        y=torch.tensor(graph.labels, dtype=torch.long),
        train_mask=torch.tensor(graph.train_mask),
        val_mask=torch.tensor(graph.val_mask),
        test_mask=torch.tensor(graph.test_mask),
    )


# ---------------------------------------------------------------------------- models
_ACTS = {"ReLU": "relu", "Tanh": "tanh", "Identity": "identity"}


def _activation(module, where: str) -> str:
    """The namjax name of a torch activation module (``None``: no activation)."""
    if module is None:
        return "identity"
    kind = type(module).__name__
    if kind in _ACTS:
        return _ACTS[kind]
    if kind == "LeakyReLU" and float(module.negative_slope) == 0.01:
        return "leaky_relu"
    if kind == "ELU" and float(module.alpha) == 1.0:
        return "elu"
    raise ModelError(
        f"{where} is a {kind}: namjax supports ReLU, LeakyReLU(0.01), ELU(1), Tanh and Identity "
        "activations"
    )


def _array(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def _linear(lin, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(W (in, out), b (out,) or None)`` of a ``torch.nn.Linear`` or PyG ``Linear``."""
    weight = getattr(lin, "weight", None)
    if weight is None or weight.dim() != 2:
        raise ModelError(f"{where} is a {type(lin).__name__}, not a linear layer")
    bias = getattr(lin, "bias", None)
    return _array(weight).T, None if bias is None else _array(bias)


def _check_conv(conv, where: str, aggr: str) -> None:
    if getattr(conv, "flow", "source_to_target") != "source_to_target":
        raise ModelError(f"{where} uses flow={conv.flow!r}; namjax reads source_to_target")
    if getattr(conv, "aggr", aggr) != aggr:
        raise ModelError(f"{where} aggregates with {conv.aggr!r}; namjax reads {aggr!r} only")


def _read_gcn(conv, where):
    _check_conv(conv, where, "add")
    w, _ = _linear(conv.lin, f"{where}.lin")
    b = None if conv.bias is None else _array(conv.bias)
    spec = GCNSpec(
        w.shape[0],
        w.shape[1],
        bias=b is not None,
        improved=bool(conv.improved),
        add_self_loops=bool(conv.add_self_loops),
        normalize=bool(conv.normalize),
    )
    return spec, {"kernel": w} | ({} if b is None else {"bias": b}), None


def _read_sgc(conv, where):
    _check_conv(conv, where, "add")
    w, b = _linear(conv.lin, f"{where}.lin")
    spec = SGCSpec(
        w.shape[0],
        w.shape[1],
        hops=int(conv.K),
        bias=b is not None,
        add_self_loops=bool(conv.add_self_loops),
    )
    return spec, {"kernel": w} | ({} if b is None else {"bias": b}), None


def _read_sage(conv, where):
    _check_conv(conv, where, "mean")
    for flag in ("normalize", "project"):
        if getattr(conv, flag, False):
            raise ModelError(f"{where} is a SAGEConv with {flag}=True, which namjax cannot read")
    w_neigh, b = _linear(conv.lin_l, f"{where}.lin_l")
    params = {"neigh": w_neigh} | ({} if b is None else {"bias": b})
    if conv.root_weight:
        w_root, b_root = _linear(conv.lin_r, f"{where}.lin_r")
        if b_root is not None:
            raise ModelError(f"{where}.lin_r has a bias, which namjax cannot read")
        params["root"] = w_root
    spec = SAGESpec(
        w_neigh.shape[0], w_neigh.shape[1], bias=b is not None, root_weight=bool(conv.root_weight)
    )
    return spec, params, None


def _mlp_parts(nn, where: str) -> tuple[list, object]:
    """The two linear layers and the activation between them of a GINConv's MLP."""
    torch = _torch()
    if isinstance(nn, torch.nn.Sequential):
        mods = list(nn)
        if len(mods) != 3:
            raise ModelError(f"{where} must be Sequential(Linear, activation, Linear)")
        return [mods[0], mods[2]], mods[1]
    lins = getattr(nn, "lins", None)
    if lins is None or len(lins) != 2:
        raise ModelError(f"{where} must be an MLP of two linear layers (Linear -> act -> Linear)")
    norms = [n for n in getattr(nn, "norms", []) if type(n).__name__ != "Identity"]
    if norms:
        raise ModelError(f"{where} has a {type(norms[0]).__name__}: namjax reads no normalisation")
    return list(lins), getattr(nn, "act", None)


def _read_gin(conv, where):
    torch = _torch()
    _check_conv(conv, where, "add")
    (lin1, lin2), act = _mlp_parts(conv.nn, f"{where}.nn")
    w1, b1 = _linear(lin1, f"{where}.nn[0]")
    w2, b2 = _linear(lin2, f"{where}.nn[-1]")
    if (b1 is None) != (b2 is None):
        raise ModelError(f"{where}.nn must have a bias in both linear layers or in neither")
    train_eps = isinstance(conv.eps, torch.nn.Parameter)
    spec = GINSpec(
        w1.shape[0],
        w2.shape[1],
        hidden=w1.shape[1],
        eps=float(conv.eps.item()),
        train_eps=train_eps,
        bias=b1 is not None,
    )
    params = {"kernel1": w1, "kernel2": w2}
    params |= {} if b1 is None else {"bias1": b1, "bias2": b2}
    if train_eps:
        params["eps"] = np.float32(conv.eps.item())
    return spec, params, _activation(act, f"{where}.nn activation")


READERS = {"GCNConv": _read_gcn, "SGConv": _read_sgc, "SAGEConv": _read_sage, "GINConv": _read_gin}
"""Readers of the supported PyG convolutions: ``(spec, parameters, inner activation)``."""


def _convs(model) -> tuple[list[tuple[str, object]], str | None, float]:
    """The convolutions of ``model`` in order (with their paths), the activation between them
    when the module tree names it (PyG's basic models), and the dropout rate."""
    torch = _torch()
    from torch_geometric.nn.models.basic_gnn import BasicGNN

    kind = type(model).__name__
    if kind in READERS:
        return [("model", model)], None, 0.0
    if isinstance(model, BasicGNN):
        if getattr(model, "jk_mode", None) is not None:
            raise ModelError(f"model uses jk={model.jk_mode!r}: namjax reads jk=None only")
        for i, norm in enumerate(model.norms):
            if type(norm).__name__ != "Identity":
                raise ModelError(f"model.norms.{i} is a {type(norm).__name__}: namjax reads none")
        act = _activation(model.act, "model.act")
        return [(f"model.convs.{i}", c) for i, c in enumerate(model.convs)], act, model.dropout.p
    convs = getattr(model, "convs", None)
    if isinstance(convs, torch.nn.ModuleList):  # a user's module keeping its layers in a list
        found = [(f"model.convs.{i}", c) for i, c in enumerate(convs)]
    else:
        found = [
            (f"model.{n}", m)
            for n, m in model.named_children()
            if next(m.parameters(), None) is not None
        ]
    for where, module in found:
        if type(module).__name__ not in READERS:
            raise ModelError(
                f"{where} is a {type(module).__name__}: namjax explains GCNConv, SGConv, "
                "SAGEConv and GINConv stacks (linear aggregation) only"
            )
    if not found:
        raise ModelError(f"found no convolution in the {kind} module")
    return found, None, 0.0


def from_pyg(pyg_model, data, *, activation: str | None = None, name: str = "pyg"):
    """A namjax model with ``pyg_model``'s architecture and weights, and the graph of ``data``.

    ``activation`` names the activation between layers when the module tree does not (a plain
    module with functional ``relu`` between its convolutions; default ``"relu"``). The two
    models' eval-mode logits on ``data`` are compared; a difference above
    :data:`PARITY_RTOL` (e.g. a forward pass with a skip connection or another activation
    than the one read) is refused with one line, never a wrong model.

    Returns ``(model, graph)``; ``namjax.save_model(model, graph, dir)`` then makes it a namjax
    model directory.
    """
    torch = _torch()
    graph = graph_from_pyg(data, name=name)
    found, between, dropout = _convs(pyg_model)
    if between is not None and activation is not None and activation != between:
        raise ModelError(f"the model's activation is {between}, not {activation}")
    between = between or activation or "relu"
    if between not in ACTIVATIONS:
        raise ModelError(f"unknown activation {between!r}; choose from {sorted(ACTIVATIONS)}")
    specs: list[LayerSpec] = []
    params = []
    for where, conv in found:
        spec, weights, inner = READERS[type(conv).__name__](conv, where)
        if inner is not None and inner != between:
            raise ModelError(
                f"{where}'s MLP uses {inner} but the layers are joined by {between}; namjax "
                "reads one activation"
            )
        specs.append(spec)
        params.append(weights)
    try:
        config = GNNConfig(tuple(specs), activation=between, dropout=dropout)
    except ModelError as e:
        raise ModelError(f"cannot import the model: {e}") from None
    model = GNN(config, rngs=nnx.Rngs(0))
    for layer, weights in zip(model.layers, params, strict=True):
        for key, value in weights.items():
            getattr(layer, key)[...] = np.asarray(value, np.float32)
    _check_parity(pyg_model, data, model, graph, torch)
    return model, graph


def pyg_logits(pyg_model, data) -> np.ndarray:
    """The PyG model's eval-mode logits on ``data`` (``edge_weight`` passed when its forward
    takes one)."""
    torch = _torch()
    was_training = pyg_model.training
    pyg_model.eval()
    args = [data.x, data.edge_index]
    params = inspect.signature(pyg_model.forward).parameters
    weight = getattr(data, "edge_weight", None)
    if weight is not None and "edge_weight" in params:
        args.append(weight)
    try:
        with torch.no_grad():
            out = pyg_model(*args)
    finally:
        pyg_model.train(was_training)
    return out.detach().cpu().numpy()


def _check_parity(pyg_model, data, model: GNN, graph: Graph, torch) -> None:
    want = pyg_logits(pyg_model, data).astype(np.float64)
    got = predict(model, graph).astype(np.float64)
    if want.shape != got.shape:
        raise ModelError(f"the PyG model gives logits of shape {want.shape}, namjax {got.shape}")
    err = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))
    if not err <= PARITY_RTOL:
        raise ModelError(
            f"the imported model's logits differ from PyG's by {err:.1e} (relative): its forward "
            "pass is not a plain stack of the convolutions read (a skip connection, another "
            "activation, a directed edge_index, a stale cache?); nothing was imported"
        )


# ---------------------------------------------------------------------------- explanations
def explanation(attribution, target: int, cls: int | None = None, *, graph: Graph | None = None):
    """PyG's ``Explanation`` of one target: ``node_mask`` ``(N, 1)`` (each node's contribution to
    the class score, 0 beyond K hops; signed, so threshold it, e.g. with
    ``Explanation.threshold``, before using it as a mask), ``index`` (the target), ``target``
    and ``prediction`` ``(N,)`` (the explained and the predicted class at ``index``, -1
    elsewhere, as PyG reads them at ``index``); with ``graph``, also ``x`` and ``edge_index`` so
    that PyG's metrics (``fidelity``, ...) run on it."""
    torch = _torch()
    from torch_geometric.explain import Explanation

    t = attribution.row(target)
    slot = attribution.slot(t, cls)
    sources, _, contrib = attribution.for_target(target)
    mask = np.zeros((attribution.num_nodes, 1), np.float32)
    mask[sources, 0] = contrib[:, slot]
    extra = {}
    if graph is not None:
        attribution.check(graph)
        a = graph.adjacency.tocoo()
        x = graph.features
        x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        extra = {
            "x": torch.tensor(x, dtype=torch.float32),
            "edge_index": torch.tensor(np.stack([a.col, a.row]), dtype=torch.long),
        }
    # PyG's node-level Explanation holds per-node targets and predictions, read at ``index``
    explained = np.full(attribution.num_nodes, -1, np.int64)
    predicted = explained.copy()
    explained[target] = attribution.classes[t, slot]
    predicted[target] = attribution.predicted[t]
    out = Explanation(
        node_mask=torch.tensor(mask),
        index=int(target),
        target=torch.tensor(explained),
        prediction=torch.tensor(predicted),
        **extra,
    )
    out._model_args = []  # what PyG's Explainer records: no extra model arguments
    return out
