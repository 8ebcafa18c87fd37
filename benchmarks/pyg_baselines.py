"""PyG baselines shared by the benchmarks: the data, the models of each architecture and
Kipf & Welling's training loop in PyG, Captum one call per (target, class), and the fastest
exact hand-written PyG approach (K-hop subgraphs + autograd).

Imports torch lazily; :func:`torch_available` says whether the baselines can run.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

KIPF = {"lr": 0.01, "weight_decay": 5e-4, "epochs": 200, "patience": 10, "dropout": 0.5}
SGC = {"lr": 0.2, "epochs": 100, "patience": 0, "dropout": 0.0}
PROTOCOLS = {"gcn": KIPF, "sage": KIPF, "gin": KIPF, "sgc": SGC | {"weight_decay": 1e-5}}
"""The training protocol each benchmark trains an architecture with (SGC's own for sgc)."""


def torch_available() -> bool:
    try:
        import captum.attr  # noqa: F401
        import torch  # noqa: F401
        import torch_geometric  # noqa: F401
    except ImportError:
        return False
    return True


def pyg_data(graph):
    """The namjax graph as a PyG ``Data``: dense float32 ``x``, ``edge_index`` (both
    directions), labels (-1 as 0, they are masked out) and the split masks."""
    import torch
    from torch_geometric.data import Data

    a = graph.adjacency.tocoo()
    x = graph.features
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    return Data(
        x=torch.tensor(x, dtype=torch.float32),
        edge_index=torch.tensor(np.stack([a.col, a.row]), dtype=torch.long),
        y=torch.tensor(np.maximum(graph.labels, 0), dtype=torch.long),
        train_mask=torch.tensor(graph.train_mask),
        val_mask=torch.tensor(graph.val_mask),
        test_mask=torch.tensor(graph.test_mask),
    )


def pyg_model(arch: str, f: int, c: int, dropout: float):
    """The PyG model of ``arch`` as ``namjax.GNNConfig.create`` builds it (hidden 16): dropout
    on each layer's input, ReLU between layers; ``gcn`` bias-free (Kipf's code), the others with
    biases; ``gin``'s MLP ``Linear -> ReLU -> Linear``; ``sgc`` one ``SGConv(K=2)``."""
    import torch
    from torch.nn import Linear, ReLU, Sequential
    from torch_geometric.nn import GCNConv, GINConv, SAGEConv, SGConv

    if arch == "sgc":  # without dropout, Â^K X is computed once (cached)
        layers = [SGConv(f, c, K=2, cached=dropout == 0.0)]
    elif arch == "gcn":
        layers = [GCNConv(f, 16, bias=False), GCNConv(16, c, bias=False)]
    elif arch == "sage":
        layers = [SAGEConv(f, 16), SAGEConv(16, c)]
    else:
        layers = [
            GINConv(Sequential(Linear(f, 16), ReLU(), Linear(16, 16))),
            GINConv(Sequential(Linear(16, c), ReLU(), Linear(c, c))),
        ]

    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleList(layers)

        def forward(self, x, edge_index):
            for i, conv in enumerate(self.convs):
                x = torch.nn.functional.dropout(x, p=dropout, training=self.training)
                x = conv(x, edge_index)
                if i < len(self.convs) - 1:
                    x = x.relu()
            return x

    return Stack()


def pyg_train(arch: str, data, num_classes: int, seed: int, hp: dict):
    """Kipf & Welling's loop in PyG (L2 on the first layer in the loss, early stopping on the
    validation loss with L2): ``(test accuracy, val accuracy, epochs run, trained model)``."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    model = pyg_model(arch, data.num_features, num_classes, hp["dropout"])
    first = model.convs[0]
    opt = torch.optim.Adam(model.parameters(), lr=hp["lr"])

    def l2() -> torch.Tensor:
        return 0.5 * hp["weight_decay"] * sum((p**2).sum() for p in first.parameters())

    val_losses, epochs = [], 0
    for epoch in range(hp["epochs"]):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        (F.cross_entropy(out[data.train_mask], data.y[data.train_mask]) + l2()).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            out = model(data.x, data.edge_index)
            val = float(F.cross_entropy(out[data.val_mask], data.y[data.val_mask]) + l2())
        epochs = epoch + 1
        p = hp["patience"]
        if p and epoch > p and val > np.mean(val_losses[-p:]):
            break
        val_losses.append(val)
    pred = out.argmax(-1)

    def acc(mask) -> float:
        return float((pred[mask] == data.y[mask]).float().mean())

    for conv in model.convs:  # the trained model serves other inputs too: drop SGConv's cache
        if getattr(conv, "cached", False):
            conv.cached, conv._cached_x = False, None
    return acc(data.test_mask), acc(data.val_mask), epochs, model.eval()


def torch_gcn(model):
    """A PyG GCN (GCNConv layers computing ``Â`` themselves, ReLU) carrying a namjax GCN's
    weights."""
    import torch
    from torch_geometric.nn import GCNConv

    class TorchGCN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleList()
            for step in model.steps():
                w, b = np.asarray(step.terms[0].weight), step.bias
                conv = GCNConv(w.shape[0], w.shape[1], bias=b is not None)
                conv.lin.weight.data = torch.tensor(w.T.copy())
                if b is not None:
                    conv.bias.data = torch.tensor(np.asarray(b))
                self.convs.append(conv)

        def forward(self, x, edge_index):
            for i, conv in enumerate(self.convs):
                x = conv(x, edge_index)
                if i < len(self.convs) - 1:
                    x = x.relu()
            return x

    return TorchGCN().eval()


# ---------------------------------------------------------------------------- Captum
def captum_runner(torch_model, data, num_classes: int):
    """``run(targets) -> (S, C, N)``: PyG ``Explainer`` + Captum InputXGradient, one call per
    (target, class); a node's contribution is its feature mask summed over features."""
    import torch
    from torch_geometric.explain import CaptumExplainer, Explainer

    warnings.filterwarnings("ignore", "Input Tensor 0 did not already require gradients")
    explainer = Explainer(
        model=torch_model,
        algorithm=CaptumExplainer("InputXGradient"),
        explanation_type="phenomenon",
        node_mask_type="attributes",
        edge_mask_type=None,
        model_config={
            "mode": "multiclass_classification",
            "task_level": "node",
            "return_type": "raw",
        },
    )
    n = data.num_nodes
    class_targets = [torch.full((n,), c, dtype=torch.long) for c in range(num_classes)]

    def run(targets):
        out = np.zeros((len(targets), num_classes, n))
        for i, a in enumerate(targets):
            for c in range(num_classes):
                expl = explainer(data.x, data.edge_index, target=class_targets[c], index=int(a))
                out[i, c] = expl.node_mask.detach().sum(-1).numpy()
        return out

    return run


# ---------------------------------------------------------------------------- hand-written
class SubgraphExplainer:
    """Exact gradient x input from K-hop subgraphs, many targets as one disjoint union, one
    batched backward pass (``is_grads_batched``, one grad output per class).

    GCN and SGC normalise with the *global* degrees (``gcn_norm`` of the whole graph), so
    their subgraphs carry the full graph's weights and the propagation is written out; ``X``
    enters only through ``P = X W1`` (the first weight has no bias before propagation), so
    autograd runs on ``P`` rows. GraphSAGE (mean) and GIN (sum) aggregate over each receiver's
    own neighbours, all inside a target's K-hop subgraph, so the PyG model itself runs on the
    union and autograd runs on the ``X`` rows.
    """

    def __init__(self, torch_model, data, arch: str, depth: int, num_classes: int):
        import torch
        from torch_geometric.nn.conv.gcn_conv import gcn_norm

        self.model, self.arch, self.k = torch_model, arch, depth
        self.x, self.n, self.num_c = data.x, data.num_nodes, num_classes
        self.edge_index = data.edge_index
        self.edge_weight = None
        if arch in ("gcn", "sgc"):
            self.edge_index, self.edge_weight = gcn_norm(
                data.edge_index, None, self.n, add_self_loops=True
            )
        self.eye = torch.eye(num_classes)

    def inputs(self):
        """What autograd runs on: ``P = X W1`` for GCN/SGC, else ``X``."""
        import torch

        if self.edge_weight is None:
            return self.x
        with torch.no_grad():
            return self.x @ self.model.convs[0].lin.weight.T  # no bias: P = X W1

    def _logits(self, h, edge_index, edge_weight):
        convs = self.model.convs
        if self.arch == "sgc":
            conv = convs[0]
            for _ in range(conv.K):
                h = conv.propagate(edge_index, x=h, edge_weight=edge_weight)
            return h + conv.lin.bias
        if self.arch == "gcn":
            for i, conv in enumerate(convs):
                x = h if i == 0 else conv.lin(h)
                h = conv.propagate(edge_index, x=x, edge_weight=edge_weight)
                h = h if conv.bias is None else h + conv.bias
                h = h.relu() if i < len(convs) - 1 else h
            return h
        return self.model(h, edge_index)

    def __call__(self, targets, inputs) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per target ``(sources (n,), contributions (C, n))``; ``inputs`` from :meth:`inputs`."""
        import torch
        from torch_geometric.utils import k_hop_subgraph

        subsets, edges, weights, roots, offset = [], [], [], [], 0
        for a in targets:
            subset, sub_edges, root, mask = k_hop_subgraph(
                int(a), self.k, self.edge_index, relabel_nodes=True, num_nodes=self.n
            )
            subsets.append(subset)
            edges.append(sub_edges + offset)
            if self.edge_weight is not None:
                weights.append(self.edge_weight[mask])
            roots.append(root + offset)
            offset += len(subset)
        h = inputs[torch.cat(subsets)].requires_grad_()
        weight = torch.cat(weights) if weights else None
        out = self._logits(h, torch.cat(edges, 1), weight)[torch.cat(roots)]
        grad_out = self.eye[:, None, :].expand(self.num_c, len(targets), self.num_c)
        (grads,) = torch.autograd.grad(out, h, grad_out, is_grads_batched=True)  # (C, n, D)
        contrib = (grads * h.detach()).sum(-1).numpy()
        bounds = np.cumsum([0] + [len(s) for s in subsets])
        return [
            (subsets[i].numpy(), contrib[:, bounds[i] : bounds[i + 1]]) for i in range(len(targets))
        ]


def subgraph_runner(explain: SubgraphExplainer, chunk: int):
    """``run(targets) -> {target: (sources, (C, n) contributions)}`` over chunks of ``chunk``
    targets."""

    def run(targets):
        inputs = explain.inputs()
        out = {}
        for i in range(0, len(targets), chunk):
            part = targets[i : i + chunk]
            out.update(zip(part.tolist(), explain(part, inputs), strict=True))
        return out

    return run


def subgraph_dense(out: dict, sample: np.ndarray, num_c: int, n: int) -> np.ndarray:
    """``(S, C, N)`` contributions of the sample from a :func:`subgraph_runner` result."""
    dense = np.zeros((len(sample), num_c, n))
    for i, a in enumerate(sample.tolist()):
        sources, contrib = out[a]
        dense[i][:, sources] = contrib
    return dense
