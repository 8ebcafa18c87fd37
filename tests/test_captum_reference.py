"""The Captum reference harness (tests/captum_reference.py) against slow independent computations:
autograd per (target, class), quadrature from the formulas in notes/captum_semantics.md,
DeepLift's summation-to-delta and a separate secant-rule implementation, hand-made noise averages
and hand-made ablations. Small float64 graphs only; nothing here tests namjax itself."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from conftest import require

torch = require("torch")
require("torch_geometric")
require("captum")

from captum.attr import DeepLift, NoiseTunnel, Saliency  # noqa: E402
from captum_reference import (  # noqa: E402
    ARCHITECTURES,
    CopiesForward,
    build_model,
    captum_node_attributions,
    model_args,
    noise_tunnel_noise,
)
from torch import nn  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.explain.algorithm import CaptumExplainer  # noqa: E402
from torch_geometric.explain.algorithm.captum import CaptumModel  # noqa: E402

N, F, C = 12, 5, 3
TARGETS = [0, 4, 11]  # 11 is isolated
RELU_ARCHS = [a for a in ARCHITECTURES if a not in ("gcn_example", "sgc")]
pytestmark = [
    pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients"),
    pytest.mark.filterwarnings("ignore:Setting forward, backward hooks"),
]


@pytest.fixture(scope="module")
def data() -> Data:
    """12 nodes, 18 random weighted undirected edges among nodes 0..10, node 11 isolated."""
    rng = np.random.default_rng(5)
    edges: set[tuple[int, int]] = set()
    while len(edges) < 18:
        u, v = sorted(rng.choice(11, size=2, replace=False).tolist())
        edges.add((u, v))
    pairs = np.array(sorted(edges)).T
    weights = rng.uniform(0.5, 2.0, pairs.shape[1])
    return Data(
        x=torch.tensor(rng.normal(size=(N, F))),
        edge_index=torch.tensor(np.concatenate([pairs, pairs[::-1]], axis=1)),
        edge_weight=torch.tensor(np.concatenate([weights, weights])),
    )


@pytest.fixture(scope="module")
def unweighted(data) -> Data:
    return Data(x=data.x, edge_index=data.edge_index)


def logits(model: nn.Module, data: Data, x):
    """``(N, C)`` logits of ``model`` at features ``x`` (``(N, F)``)."""
    return model(x, *model_args(data))


def gradients(model: nn.Module, data: Data, x, targets=TARGETS) -> np.ndarray:
    """``(T, C, N, F)``: d Z[a, c] / d x by plain autograd, one backward pass per logit."""
    x = torch.as_tensor(x, dtype=torch.float64).clone().requires_grad_()
    out = logits(model, data, x)
    return np.array(
        [
            [torch.autograd.grad(out[a, c], x, retain_graph=True)[0].numpy() for c in range(C)]
            for a in targets
        ]
    )


def per_node(g: np.ndarray) -> np.ndarray:
    """``(T, C, N, F)`` -> ``(T, N, C)``, summed over features."""
    return g.sum(-1).transpose(0, 2, 1)


def logit_gap(model, data, x, base) -> np.ndarray:
    """``(T, C)``: Z(x) - Z(base) at the targets."""
    with torch.no_grad():
        gap = logits(model, data, torch.as_tensor(x)) - logits(model, data, torch.as_tensor(base))
    return gap[TARGETS].numpy()


def quadrature(method: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """IG step points alpha_k and weights w_k as documented in notes/captum_semantics.md."""
    k = np.arange(n)
    if method == "gausslegendre":
        t, w = np.polynomial.legendre.leggauss(n)
        return (1 + t) / 2, w / 2
    alphas = {
        "riemann_left": k / n,
        "riemann_right": (k + 1) / n,
        "riemann_middle": (k + 0.5) / n,
        "riemann_trapezoid": k / (n - 1),
    }[method]
    w = np.full(n, 1 / n)
    if method == "riemann_trapezoid":
        w[[0, -1]] /= 2
    return alphas, w


def own_ig(model, data, base, method: str, n: int) -> np.ndarray:
    """``(T, N, C)`` IG by an explicit weighted sum of autograd gradients on the path."""
    x = data.x.numpy()
    alphas, w = quadrature(method, n)
    total = sum(
        wk * gradients(model, data, base + ak * (x - base))
        for ak, wk in zip(alphas, w, strict=True)
    )
    return per_node(total * (x - base))


def secant_deeplift(model, data, base) -> np.ndarray:
    """``(T, N, C)`` DeepLift (rescale) written independently of Captum: record every
    ``nn.ReLU`` input z0 on the baseline pass, then rerun on x with each ReLU call replaced by the
    line through (z0, relu z0) and (z, relu z); its slope (the multiplier) is held constant, so
    autograd gives the DeepLift multipliers; attribution = (x - base) * multiplier."""
    relu_forward = nn.ReLU.forward
    seen: list = []

    def record(self, z):
        seen.append(z.detach().clone())
        return relu_forward(self, z)

    with mock.patch.object(nn.ReLU, "forward", record), torch.no_grad():
        logits(model, data, torch.as_tensor(base))
    calls = iter(seen)

    def secant(self, z):
        z0 = next(calls)
        dz = (z - z0).detach()
        slope = (torch.relu(z) - torch.relu(z0)).detach() / torch.where(dz == 0, 1.0, dz)
        slope = torch.where(dz.abs() < 1e-10, (z > 0).double(), slope)
        return torch.relu(z0) + slope * (z - z0)

    with mock.patch.object(nn.ReLU, "forward", secant):
        g = gradients(model, data, data.x)
    return per_node(g * (data.x.numpy() - base))


# ---------------------------------------------------------------- gradient methods


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_input_x_gradient_and_saliency_equal_autograd(arch, data):
    model = build_model(arch, data, C)
    g = gradients(model, data, data.x)
    ixg = captum_node_attributions(model, data, "input_x_gradient", TARGETS)
    sal = captum_node_attributions(model, data, "saliency", TARGETS)
    np.testing.assert_allclose(ixg, per_node(g * data.x.numpy()), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sal, per_node(np.abs(g)), rtol=1e-12, atol=1e-14)


def test_unweighted_graph_and_one_class_per_target(data, unweighted):
    model = build_model("gcn", data, C)
    classes = [2, 0, 1]
    got = captum_node_attributions(model, unweighted, "input_x_gradient", TARGETS, classes)
    want = per_node(gradients(model, unweighted, data.x) * data.x.numpy())
    np.testing.assert_allclose(got, want[np.arange(3), :, classes], rtol=1e-12, atol=1e-14)
    weighted = captum_node_attributions(model, data, "input_x_gradient", TARGETS, classes)
    assert not np.allclose(got, weighted)  # the edge weights do reach GCNConv


@pytest.mark.parametrize("arch", ["gcn", "sage", "gin_train_eps", "sgc", "gcn_unnormalized"])
@pytest.mark.parametrize(
    "method",
    ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"],
)
def test_integrated_gradients_equal_own_quadrature(arch, method, data):
    model = build_model(arch, data, C)
    base = np.random.default_rng(1).normal(size=(N, F)) * 0.5
    got = captum_node_attributions(
        model, data, "integrated_gradients", TARGETS, n_steps=7, method=method, baselines=base
    )
    # Captum rounds alphas (torch.linspace, default dtype) and step sizes (.float()) to float32
    np.testing.assert_allclose(got, own_ig(model, data, base, method, 7), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("arch", ["gcn", "gin", "gcn_no_self_loops"])
def test_integrated_gradients_approach_completeness(arch, data):
    """A ReLU network's path gradient jumps at every kink, so quadrature converges slowly
    (about 1/n: 2% of the largest gap at 200 steps here)."""
    model = build_model(arch, data, C)
    gap = logit_gap(model, data, data.x, torch.zeros_like(data.x))[:2]
    got = captum_node_attributions(model, data, "integrated_gradients", TARGETS[:2], n_steps=200)
    np.testing.assert_allclose(got.sum(1), gap, atol=0.02 * np.abs(gap).max())


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_left", "riemann_trapezoid"])
def test_integrated_gradients_completeness_on_a_linear_model(method, data):
    """SGC is linear: the quadrature is exact up to the sum of its weights, which is 1 except
    for riemann_trapezoid ((n - 1) / n: Captum's trapezoid uses step 1/n on n points)."""
    model = build_model("sgc", data, C)
    base = np.random.default_rng(3).normal(size=(N, F))
    n = 10
    got = captum_node_attributions(
        model, data, "integrated_gradients", TARGETS, n_steps=n, method=method, baselines=base
    )
    scale = (n - 1) / n if method == "riemann_trapezoid" else 1.0
    want = scale * logit_gap(model, data, data.x, base)
    np.testing.assert_allclose(got.sum(1), want, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------- DeepLift


@pytest.mark.parametrize("arch", [*RELU_ARCHS, "sgc"])
def test_deeplift_summation_to_delta_and_secant_rule(arch, data):
    model = build_model(arch, data, C)
    zero = np.zeros((N, F))
    got = captum_node_attributions(model, data, "deeplift", TARGETS)
    np.testing.assert_allclose(got.sum(1), logit_gap(model, data, data.x, zero), atol=1e-10)
    np.testing.assert_allclose(got, secant_deeplift(model, data, zero), rtol=1e-9, atol=1e-12)


def test_deeplift_with_a_baseline(data):
    model = build_model("gin_train_eps", data, C, num_layers=3)
    base = np.random.default_rng(2).normal(size=(N, F))
    got = captum_node_attributions(model, data, "deeplift", TARGETS, baselines=base)
    np.testing.assert_allclose(got.sum(1), logit_gap(model, data, data.x, base), atol=1e-10)
    np.testing.assert_allclose(got, secant_deeplift(model, data, base), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("arch", ["gcn", "sage"])
def test_deeplift_stand_ins_agree_with_captum_where_it_runs_unaided(arch, data):
    """Two-layer GCN/SAGE call their one ReLU once: Captum runs on the model itself."""
    model = build_model(arch, data, C)
    x = data.x[None]
    plain = [
        DeepLift(CopiesForward(model, data, a)).attribute(x, target=c)[0].sum(1).detach().numpy()
        for a in TARGETS
        for c in range(C)
    ]
    got = captum_node_attributions(model, data, "deeplift", TARGETS)
    np.testing.assert_allclose(got, np.reshape(plain, (3, C, N)).transpose(0, 2, 1), rtol=1e-12)


@pytest.mark.parametrize("arch,layers", [("gin", 2), ("gcn", 3)])
def test_captum_deeplift_refuses_a_shared_activation(arch, layers, data):
    model = build_model(arch, data, C, num_layers=layers)
    with pytest.raises(RuntimeError, match="does not contain some of the input/output"):
        DeepLift(CopiesForward(model, data, 0)).attribute(data.x[None], target=0)


def test_deeplift_on_functional_relu_is_gradient_times_input(data):
    """examples/gcn.py uses Tensor.relu: no hook, so Captum's DeepLift is x * grad there and
    summation-to-delta fails."""
    model = build_model("gcn_example", data, C)
    got = captum_node_attributions(model, data, "deeplift", TARGETS)
    ixg = per_node(gradients(model, data, data.x) * data.x.numpy())
    np.testing.assert_allclose(got, ixg, rtol=1e-12, atol=1e-14)
    gap = logit_gap(model, data, data.x, np.zeros((N, F)))
    assert np.abs(got.sum(1) - gap).max() > 1e-3


# -------------------------------------------------------------------- NoiseTunnel


@pytest.mark.parametrize("arch", ["gcn", "gin_train_eps", "gcn_example"])
@pytest.mark.parametrize("inner", ["saliency", "input_x_gradient"])
@pytest.mark.parametrize("batch", [None, 3])
def test_smoothgrad_equals_average_over_reproduced_noise(arch, inner, batch, data):
    model = build_model(arch, data, C)
    samples, stdevs, seed = 7, 0.3, 11
    got = captum_node_attributions(
        model,
        data,
        f"smoothgrad_{inner}",
        TARGETS,
        nt_samples=samples,
        stdevs=stdevs,
        seed=seed,
        nt_samples_batch_size=batch,
    )
    noise = noise_tunnel_noise(data.x, samples, stdevs, seed, batch)
    assert noise.shape == (samples, N, F)
    assert np.all(noise == noise.astype(np.float32))  # float32 draws
    want = 0.0
    for eps in noise:
        noisy = data.x.numpy() + eps
        g = gradients(model, data, noisy)
        want = want + per_node(np.abs(g) if inner == "saliency" else g * noisy) / samples
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_noise_is_torch_randn_times_stdevs_whatever_the_input(data):
    torch.manual_seed(3)
    want = 2.0 * torch.randn(4, N, F)  # float32, one draw for all samples
    got = noise_tunnel_noise(data.x * 100, 4, 2.0, 3)
    np.testing.assert_array_equal(got, want.double().numpy())
    assert not np.array_equal(got, noise_tunnel_noise(data.x, 4, 2.0, 3, nt_samples_batch_size=2))


# ---------------------------------------------------------------------- occlusion


@pytest.mark.parametrize("arch", ["gcn", "gcn_no_self_loops", "sage", "gin", "sgc"])
def test_occlusion_equals_manual_drop(arch, data):
    model = build_model(arch, data, C)
    got = captum_node_attributions(model, data, "occlusion", TARGETS, perturbations_per_eval=5)
    want = np.empty((len(TARGETS), N, C))
    for phi in range(N):
        x = data.x.clone()
        x[phi] = 0.0
        want[:, phi] = logit_gap(model, data, data.x, x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------- PyG's limits


@pytest.mark.parametrize("method", ["DeepLift", "NoiseTunnel", "FeatureAblation"])
def test_pyg_captum_explainer_refuses_the_direct_methods(method):
    with pytest.raises(ValueError, match="does not support"):
        CaptumExplainer(method)


@pytest.mark.parametrize("method", ["deeplift", "noise_tunnel"])
def test_pyg_captum_model_needs_a_batch_of_one(method, data):
    """Even past CaptumExplainer, PyG's CaptumModel asserts one copy of the graph, while
    DeepLift stacks input and baseline and NoiseTunnel stacks the noisy copies."""
    model = CaptumModel(build_model("gcn", data, C), "node", torch.tensor([0]))
    attributor = DeepLift(model) if method == "deeplift" else NoiseTunnel(Saliency(model))
    extra = {"nt_samples": 2, "stdevs": 0.1} if method == "noise_tunnel" else {}
    with pytest.raises(AssertionError, match="Dimension 0 of input should be 1"):
        attributor.attribute(
            data.x[None], target=1, additional_forward_args=model_args(data), **extra
        )


def test_unknown_names_are_refused(data):
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("gat", data, C)
    with pytest.raises(ValueError, match="unknown method"):
        captum_node_attributions(build_model("gcn", data, C), data, "lrp", [0])
