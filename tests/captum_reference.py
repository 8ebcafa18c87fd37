"""Captum's node attributions for PyG models: the oracle for namjax's parity tests.

A node attribution here is Captum's per-feature attribution of one raw logit ``Z[a, c]`` (target
node ``a``, class ``c``; eval mode, before any softmax) with respect to the node features ``X``,
summed over the features of each source node. Occlusion is the exception: Captum's
FeatureAblation gives every feature of the ablated node the full drop of ``Z[a, c]``, so the node
value is that drop itself (not ``F`` times it).

Captum runs the way a PyG user would run it where PyG allows: InputXGradient, Saliency and
IntegratedGradients go through ``torch_geometric.explain.Explainer`` + ``CaptumExplainer``.
DeepLift, NoiseTunnel and FeatureAblation cannot (``CaptumExplainer`` refuses them, and its
``CaptumModel`` asserts a batch of one while these methods stack the baseline, the noisy copies or
the ablated copies along the batch dimension), so they call Captum directly on a forward that maps
a ``(B, N, F)`` batch to the target's logits in ``B`` disjoint copies of the graph. The semantics
(step points, noise, multipliers) are written down in ``notes/captum_semantics.md``.

Every model is float64; Captum keeps float64 except for a few float32 constants (IG's step sizes,
NoiseTunnel's noise), see the notes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from captum.attr import DeepLift, FeatureAblation, InputXGradient, NoiseTunnel, Saliency
from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.explain import Explainer
from torch_geometric.explain.algorithm import CaptumExplainer
from torch_geometric.nn import GCNConv, SGConv
from torch_geometric.nn.models import GCN, GIN, GraphSAGE
from torch_geometric.utils import k_hop_subgraph

ARCHITECTURES = (
    "gcn",  # torch_geometric.nn.models.GCN (BasicGNN), uses edge weights
    "gcn_improved",  # GCNConv(improved=True): self-loops of weight 2
    "gcn_no_self_loops",  # GCNConv(add_self_loops=False)
    "gcn_unnormalized",  # GCNConv(normalize=False): plain weighted sum, no self-loops
    "gcn_no_bias",  # GCNConv(bias=False)
    "sage",  # GraphSAGE (mean aggregation; PyG ignores edge weights)
    "gin",  # GIN with eps = 0 (PyG ignores edge weights)
    "gin_train_eps",  # GIN(train_eps=True) with a non-zero eps
    "sgc",  # one SGConv(in, out, K=num_layers)
    "gcn_example",  # the module of PyG's examples/gcn.py (functional relu and dropout)
)
METHODS = (
    "input_x_gradient",  # namjax's "nam"
    "saliency",  # |grad|, then summed over features
    "integrated_gradients",
    "deeplift",
    "smoothgrad_saliency",
    "smoothgrad_input_x_gradient",
    "occlusion",
)
MODEL_CONFIG = {"mode": "multiclass_classification", "task_level": "node", "return_type": "raw"}

# ---------------------------------------------------------------------------------- models


class SGC(nn.Module):
    """PyG's simplified graph convolution as a model: one ``SGConv(in, out, K)``."""

    def __init__(self, in_channels: int, out_channels: int, K: int) -> None:
        super().__init__()
        self.conv = SGConv(in_channels, out_channels, K=K)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """``(N, F)`` features -> ``(N, C)`` logits."""
        return self.conv(x, edge_index, edge_weight)


class ExampleGCN(nn.Module):
    """The two-layer GCN of PyG's ``examples/gcn.py``: dropout, conv1, functional relu, dropout,
    conv2. Its relu is ``Tensor.relu``, not a module, so DeepLift's rescale rule never applies to
    it (Captum falls back to the plain gradient there)."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden_channels)
        self.conv2 = GCNConv(hidden_channels, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """``(N, F)`` features -> ``(N, C)`` logits."""
        x = F.dropout(x, p=0.5, training=self.training)
        x = self.conv1(x, edge_index, edge_weight).relu()
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index, edge_weight)


def build_model(
    arch: str,
    data: Data,
    num_classes: int,
    *,
    hidden_channels: int = 8,
    num_layers: int = 2,
    seed: int = 0,
) -> nn.Module:
    """A float64 PyG model in eval mode for ``data.num_features`` inputs and ``num_classes``
    outputs: PyG's own initialisation under ``torch.manual_seed(seed)``, then every bias drawn
    uniformly from ``±[0.1, 0.5]`` and every trainable GIN ``eps`` from ``[0.1, 0.5]``, so no
    bias or eps is zero. BasicGNN models get ``act=nn.ReLU`` (a module), ``dropout=0.5`` (off in
    eval mode) and ``jk=None``; ``num_layers`` is SGC's ``K``; ``gcn_example`` is always two
    layers."""
    f = data.num_features
    basic = {"num_layers": num_layers, "out_channels": num_classes, "act": "relu", "dropout": 0.5}
    builders: dict[str, Callable[[], nn.Module]] = {
        "gcn": lambda: GCN(f, hidden_channels, **basic),
        "gcn_improved": lambda: GCN(f, hidden_channels, improved=True, **basic),
        "gcn_no_self_loops": lambda: GCN(f, hidden_channels, add_self_loops=False, **basic),
        "gcn_unnormalized": lambda: GCN(f, hidden_channels, normalize=False, **basic),
        "gcn_no_bias": lambda: GCN(f, hidden_channels, bias=False, **basic),
        "sage": lambda: GraphSAGE(f, hidden_channels, **basic),
        "gin": lambda: GIN(f, hidden_channels, **basic),
        "gin_train_eps": lambda: GIN(f, hidden_channels, train_eps=True, **basic),
        "sgc": lambda: SGC(f, num_classes, K=num_layers),
        "gcn_example": lambda: ExampleGCN(f, hidden_channels, num_classes),
    }
    if arch not in builders:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHITECTURES}")
    torch.manual_seed(seed)
    model = builders[arch]().double().eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                sign = torch.randint(0, 2, p.shape, generator=gen) * 2 - 1
                p.copy_(sign * (0.1 + 0.4 * torch.rand(p.shape, generator=gen)))
            elif name.endswith("eps"):
                p.copy_(0.1 + 0.4 * torch.rand(p.shape, generator=gen))
    return model


def data_from_graph(graph) -> Data:
    """A PyG ``Data`` (float64 ``x`` ``(N, F)``, both directions of every edge in
    ``edge_index`` ``(2, 2E)``, float64 ``edge_weight`` ``(2E,)``) from a ``namjax.Graph``."""
    adj = graph.adjacency.tocoo()
    feats = graph.features
    x = feats.toarray() if sp.issparse(feats) else np.asarray(feats)
    return Data(
        x=torch.tensor(x, dtype=torch.float64),
        edge_index=torch.tensor(np.stack([adj.row, adj.col]), dtype=torch.long),
        edge_weight=torch.tensor(adj.data, dtype=torch.float64),
    )


def model_args(data: Data) -> tuple[Tensor, ...]:
    """The positional graph arguments after ``x``: ``(edge_index,)`` or ``(edge_index,
    edge_weight)``; every model above takes ``(x, edge_index, edge_weight=None)``."""
    if data.edge_weight is None:
        return (data.edge_index,)
    return (data.edge_index, data.edge_weight.to(torch.float64))


# ---------------------------------------------------------------- direct Captum forwards


class CopiesForward(nn.Module):
    """The forward Captum sees for DeepLift, NoiseTunnel and FeatureAblation: ``(B, N, F)`` ->
    ``(B, C)``, the logits of node ``target`` in each of ``B`` disjoint copies of the graph, all
    in one model call (copy ``b`` holds nodes ``b*N .. b*N+N-1``)."""

    def __init__(self, model: nn.Module, data: Data, target: int) -> None:
        super().__init__()
        self.model = model
        self.graph = model_args(data)
        self.target = target

    def forward(self, xb: Tensor) -> Tensor:
        """``(B, N, F)`` -> ``(B, C)``."""
        b, n, f = xb.shape
        edge_index, *weight = self.graph
        shift = torch.arange(b).repeat_interleave(edge_index.shape[1]) * n
        args = [edge_index.repeat(1, b) + shift, *(w.repeat(b) for w in weight)]
        out = self.model(xb.reshape(b * n, f), *args)
        return out.reshape(b, n, -1)[:, self.target]


class _PerCall(nn.Module):
    """Stands in for an activation module the model calls more than once (BasicGNN and GIN's
    MLPs share one ``act``): the k-th call of a forward pass goes to its own copy, so that each
    use is hooked once by DeepLift. The copies live in a plain list; ``DistinctActivations``
    registers them, once each."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.copies = [act]
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        """The activation, through this call's own copy (made on first use)."""
        if self.calls == len(self.copies):
            self.copies.append(copy.deepcopy(self.copies[0]))
        self.calls += 1
        return self.copies[self.calls - 1](x)


class DistinctActivations(CopiesForward):
    """``CopiesForward`` over a deep copy of ``model`` in which every activation module that
    Captum's DeepLift hooks (``SUPPORTED_NON_LINEAR``) is used once per forward pass. Captum
    raises "A Module ReLU() was detected that does not contain some of the input/output
    attributes" on any module called twice (BasicGNNs of three or more layers, GINs of two or
    more); with one module per call its rescale rule applies at every activation, as DeepLift
    defines."""

    def __init__(self, model: nn.Module, data: Data, target: int) -> None:
        inner = copy.deepcopy(model)
        stand_ins: dict[int, _PerCall] = {}
        for parent in list(inner.modules()):
            for name, child in parent.named_children():
                if type(child) in SUPPORTED_NON_LINEAR:
                    parent._modules[name] = stand_ins.setdefault(id(child), _PerCall(child))
        super().__init__(inner, data, target)
        self.stand_ins = list(stand_ins.values())  # already submodules of self.model
        with torch.no_grad():
            self(data.x.to(torch.float64)[None])  # one dry pass makes every call's copy
        self.activations = nn.ModuleList(m for s in self.stand_ins for m in s.copies)

    def forward(self, xb: Tensor) -> Tensor:
        """``(B, N, F)`` -> ``(B, C)``, restarting every stand-in at its first copy."""
        for stand_in in self.stand_ins:
            stand_in.calls = 0
        return super().forward(xb)


# ------------------------------------------------------------------------- attributions

Attributor = Callable[[int, int], Tensor]  # (target, class) -> (N, F) per-feature attribution


def _explainer(model: nn.Module, data: Data, captum_method: str, /, **kwargs) -> Attributor:
    """Captum through PyG's Explainer + CaptumExplainer (node_mask_type="attributes")."""
    explainer = Explainer(
        model,
        CaptumExplainer(captum_method, **kwargs),
        explanation_type="phenomenon",
        node_mask_type="attributes",
        model_config=MODEL_CONFIG,
    )
    x = data.x.to(torch.float64)
    graph = model_args(data)
    extra = {} if len(graph) == 1 else {"edge_weight": graph[1]}

    def attribute(a: int, c: int) -> Tensor:
        target = torch.full((x.shape[0],), c, dtype=torch.long)
        return explainer(x, graph[0], target=target, index=a, **extra).node_mask

    return attribute


def _baseline(data: Data, baselines: np.ndarray | Tensor | None) -> Tensor:
    """``(1, N, F)`` float64 baseline, zeros when ``None``."""
    x = data.x.to(torch.float64)
    return (torch.zeros_like(x) if baselines is None else torch.as_tensor(baselines).double())[None]


def _input_x_gradient(model: nn.Module, data: Data) -> Attributor:
    return _explainer(model, data, "InputXGradient")


def _saliency(model: nn.Module, data: Data) -> Attributor:
    return _explainer(model, data, "Saliency", abs=True)


def _integrated_gradients(
    model: nn.Module,
    data: Data,
    *,
    n_steps: int = 50,
    method: str = "gausslegendre",
    baselines: np.ndarray | Tensor | None = None,
) -> Attributor:
    return _explainer(
        model,
        data,
        "IntegratedGradients",
        n_steps=n_steps,
        method=method,
        baselines=_baseline(data, baselines),
    )


def _deeplift(
    model: nn.Module, data: Data, *, baselines: np.ndarray | Tensor | None = None
) -> Attributor:
    x, base = data.x.to(torch.float64)[None], _baseline(data, baselines)

    def attribute(a: int, c: int) -> Tensor:
        return DeepLift(DistinctActivations(model, data, a)).attribute(x, base, target=c)[0]

    return attribute


def _smoothgrad(inner: type, **inner_kwargs) -> Callable[..., Attributor]:
    """A builder of NoiseTunnel(smoothgrad) over ``inner`` (Saliency or InputXGradient)."""

    def build(
        model: nn.Module,
        data: Data,
        *,
        nt_samples: int = 5,
        stdevs: float = 1.0,
        seed: int = 0,
        nt_samples_batch_size: int | None = None,
    ) -> Attributor:
        x = data.x.to(torch.float64)[None]

        def attribute(a: int, c: int) -> Tensor:
            tunnel = NoiseTunnel(inner(CopiesForward(model, data, a)))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                out = tunnel.attribute(
                    x,
                    nt_type="smoothgrad",
                    nt_samples=nt_samples,
                    nt_samples_batch_size=nt_samples_batch_size,
                    stdevs=float(stdevs),
                    target=c,
                    **inner_kwargs,
                )
            return out[0]

        return attribute

    return build


def _occlusion(
    model: nn.Module, data: Data, *, perturbations_per_eval: int = 1, hops: int | None = None
) -> Attributor:
    """Captum's FeatureAblation with one feature group per node. With ``hops``, the nodes
    beyond the target's ``hops``-hop neighbourhood form one more group: removing them together
    cannot change the target's logits (Captum still measures that), and a large graph needs
    one forward per neighbour instead of one per node."""
    x = data.x.to(torch.float64)[None]
    per_node = torch.arange(x.shape[1])

    def attribute(a: int, c: int) -> Tensor:
        groups = per_node
        if hops is not None:
            near, *_ = k_hop_subgraph(a, hops, data.edge_index, num_nodes=x.shape[1])
            groups = torch.full_like(per_node, len(near))
            groups[near] = torch.arange(len(near))
        ablation = FeatureAblation(CopiesForward(model, data, a))
        return ablation.attribute(
            x,
            baselines=0.0,
            target=c,
            feature_mask=groups[None, :, None].expand_as(x),
            perturbations_per_eval=perturbations_per_eval,
        )[0]

    return attribute


_BUILDERS: dict[str, Callable[..., Attributor]] = {
    "input_x_gradient": _input_x_gradient,
    "saliency": _saliency,
    "integrated_gradients": _integrated_gradients,
    "deeplift": _deeplift,
    "smoothgrad_saliency": _smoothgrad(Saliency, abs=True),
    "smoothgrad_input_x_gradient": _smoothgrad(InputXGradient),
    "occlusion": _occlusion,
}


def captum_node_attributions(
    model: nn.Module,
    data: Data,
    method: str,
    targets: Sequence[int],
    /,
    classes: Sequence[int] | None = None,
    **options,
) -> np.ndarray:
    """Captum's node attributions of the logits of ``targets`` (``T`` node ids).

    Args:
        model: float64 PyG model in eval mode, called as ``model(x, *model_args(data))``.
        data: the graph; ``x`` ``(N, F)``, ``edge_index``, optional ``edge_weight``.
        method: one of ``METHODS``.
        targets: ``T`` target node ids.
        classes: ``None`` for every class, or one class per target (``T`` ids).
        options: per method (keywords; IG's ``method`` is an option, the harness's ``method``
            is positional-only): ``integrated_gradients``: ``n_steps`` (50), ``method``
            ("gausslegendre"), ``baselines`` (``(N, F)``, zeros); ``deeplift``: ``baselines``;
            ``smoothgrad_*``: ``nt_samples`` (5), ``stdevs`` (1.0, absolute), ``seed`` (0,
            ``torch.manual_seed`` before each call, so every target and class sees the same
            noise), ``nt_samples_batch_size``; ``occlusion``: ``perturbations_per_eval`` (1), ``hops`` (``None``: one group
            per node).

    Returns:
        ``(T, N, C)`` float64 with ``[t, phi, c]`` the attribution of ``Z[targets[t], c]`` to
        node ``phi``, or ``(T, N)`` for ``Z[targets[t], classes[t]]`` when ``classes`` is given.
    """
    if method not in _BUILDERS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    attribute = _BUILDERS[method](model, data, **options)
    to_node = (lambda att: att[:, 0]) if method == "occlusion" else (lambda att: att.sum(dim=1))
    if classes is None:
        with torch.no_grad():
            num_classes = model(data.x.to(torch.float64), *model_args(data)).shape[1]
        pairs = [[(a, c) for c in range(num_classes)] for a in targets]
    else:
        if len(classes) != len(targets):
            raise ValueError(f"{len(classes)} classes for {len(targets)} targets")
        pairs = [[(a, c)] for a, c in zip(targets, classes, strict=True)]
    out = np.array(
        [[to_node(attribute(int(a), int(c))).detach().numpy() for a, c in row] for row in pairs]
    )  # (T, C or 1, N)
    out = out.transpose(0, 2, 1)
    return out[:, :, 0] if classes is not None else out


def noise_tunnel_noise(
    x: np.ndarray | Tensor,
    nt_samples: int,
    stdevs: float,
    seed: int,
    nt_samples_batch_size: int | None = None,
) -> np.ndarray:
    """The noise Captum's NoiseTunnel adds to an ``(N, F)`` input (batch of one) after
    ``torch.manual_seed(seed)``: ``(nt_samples, N, F)`` float64 holding float32 draws; sample
    ``k`` is the noise of the k-th noisy copy. Captum draws one ``torch.normal(0, std)`` per
    chunk of ``nt_samples_batch_size`` samples (all at once when ``None``), then the remainder,
    with ``std`` a float32 tensor of the chunk's shape filled with ``stdevs``."""
    shape = tuple(torch.as_tensor(x).shape)
    size = nt_samples if nt_samples_batch_size is None else min(nt_samples, nt_samples_batch_size)
    chunks = [size] * (nt_samples // size) + [nt_samples % size] * (nt_samples % size > 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        noise = [torch.normal(0, torch.tensor(float(stdevs)).repeat((k, *shape))) for k in chunks]
    return torch.cat(noise).double().numpy()
