"""Every attribution method against Captum on the same weights (float64), for every
architecture: all targets x all classes from one call of ``namjax.explain``."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require
from flax import nnx

torch = require("torch")
require("torch_geometric")
require("captum")

from captum_reference import (  # noqa: E402  (after the optional imports)
    build_model,
    captum_node_attributions,
    data_from_graph,
    noise_tunnel_noise,
)

from namjax.attribution import Attribution  # noqa: E402
from namjax.errors import OptionError  # noqa: E402
from namjax.explainer import explain, nam  # noqa: E402
from namjax.graph import Graph  # noqa: E402
from namjax.methods import ig_steps  # noqa: E402
from namjax.model import GNN, GNNConfig  # noqa: E402
from namjax.perturb import reference_logits  # noqa: E402
from namjax.pyg import from_pyg  # noqa: E402

ARCHS = ("gcn", "gcn_improved", "sage", "gin_train_eps", "sgc")
RTOL = 1e-4


def rel(got, want) -> float:
    want = np.asarray(want, np.float64)
    return float(np.abs(np.asarray(got, np.float64) - want).max() / max(np.abs(want).max(), 1e-12))


@pytest.fixture(scope="module")
def rough_graph() -> Graph:
    """30 weighted nodes (two isolated) with N(0, 1) features, so that activation patterns
    change along paths and between the input and a zero baseline."""
    rng = np.random.default_rng(11)
    edges = rng.integers(0, 28, (2, 60))
    weights = rng.uniform(0.5, 2.0, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicates and self-loops merged / dropped
        return Graph.from_edge_index(
            np.concatenate([edges, edges[::-1]], 1),
            30,
            np.concatenate([weights, weights]),
            features=rng.normal(size=(30, 5)).astype(np.float32),
            labels=rng.integers(0, 3, 30),
        )


def imported(arch: str, graph: Graph, **kwargs):
    data = data_from_graph(graph)
    pyg_model = build_model(arch, data, graph.num_classes, **kwargs)
    model, g = from_pyg(pyg_model, data)
    return pyg_model, data, model, g


CASES = {  # namjax method and options -> Captum method and options
    "nam": ("input_x_gradient", {}, {}),
    "saliency": ("saliency", {}, {}),
    "ig_gl": ("integrated_gradients", {"n_steps": 12}, {"n_steps": 12}),
    "ig_left": (
        "integrated_gradients",
        {"n_steps": 9, "rule": "riemann_left"},
        {"n_steps": 9, "method": "riemann_left"},
    ),
    "ig_trapezoid": (
        "integrated_gradients",
        {"n_steps": 7, "rule": "riemann_trapezoid"},
        {"n_steps": 7, "method": "riemann_trapezoid"},
    ),
    "deeplift": ("deeplift", {}, {}),
    "smoothgrad_saliency": ("smoothgrad_saliency", {"base": "saliency"}, {}),
    "smoothgrad_nam": ("smoothgrad_input_x_gradient", {"base": "nam"}, {}),
    "occlusion_zero": ("occlusion", {"mode": "zero"}, {}),
}


def run_case(case: str, pyg_model, data, model, graph, targets, **captum_options):
    captum_method, ours, theirs = CASES[case]
    method = {"ig": "integrated_gradients", "occlusion": "occlusion"}.get(
        case.split("_")[0], case.split("_")[0]
    )
    if method == "smoothgrad":
        noise = noise_tunnel_noise(data.x, 3, 0.5, seed=1)
        ours = ours | {"nt_samples": 3, "stdevs": 0.5, "noise": noise}
        theirs = {"nt_samples": 3, "stdevs": 0.5, "seed": 1}
    if method == "occlusion":
        theirs = theirs | captum_options
    want = captum_node_attributions(pyg_model, data, captum_method, targets, **theirs)
    att = explain(model, graph, method, targets=targets, dtype=jnp.float64, **ours)
    assert att.method == method
    return att, want


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("case", list(CASES))
def test_every_method_equals_captum(rough_graph, arch, case):
    pyg_model, data, model, graph = imported(arch, rough_graph, num_layers=2)
    targets = np.array([0, 7, 29])  # 29: isolated
    att, want = run_case(case, pyg_model, data, model, graph, targets)
    assert rel(att.dense(), want) <= RTOL


CORA_CASES = [  # every method on GCN; the other architectures' layers on the cheaper methods
    *[("gcn", c) for c in ("saliency", "ig_gl", "deeplift", "smoothgrad_nam", "occlusion_zero")],
    *[(arch, c) for arch in ("sage", "gin") for c in ("saliency", "deeplift", "smoothgrad_nam")],
]


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "case"), CORA_CASES)
def test_methods_equal_captum_on_cora(cora, arch, case):
    pyg_model, data, model, graph = imported(arch, cora, hidden_channels=16)
    # occlusion: Captum's FeatureAblation builds a full input per neighbour, so not the hub
    targets = np.array([0, 1] if case.startswith("occlusion") else [0, 1358])
    att, want = run_case(case, pyg_model, data, model, graph, targets, hops=2)
    assert rel(att.dense(), want) <= RTOL


# ---------------------------------------------------------------------------- properties
def test_deeplift_is_exactly_complete_and_not_nam(rough_graph):
    _, _, model, graph = imported("gcn", rough_graph, num_layers=3)
    dl = explain(model, graph, "deeplift", dtype=jnp.float64)
    sums = np.add.reduceat(dl.contributions, dl.offsets[:-1], axis=0)
    np.testing.assert_allclose(sums + dl.bias, dl.logits, rtol=1e-10, atol=1e-12)  # Z(X) - Z(0)
    np.testing.assert_allclose(dl.completeness_gap(), 0.0, atol=1e-10)
    grad_x_input = nam(model, graph, dtype=jnp.float64)
    assert rel(dl.contributions, grad_x_input.contributions) > 1e-3  # patterns do differ here


def test_integrated_gradients_report_their_completeness_gap(rough_graph):
    _, _, model, graph = imported("sage", rough_graph, num_layers=2)
    gaps = []
    for n in (4, 64):
        ig = explain(model, graph, "integrated_gradients", n_steps=n, dtype=jnp.float64)
        sums = np.add.reduceat(ig.contributions, ig.offsets[:-1], axis=0)
        gap = sums + ig.bias - ig.logits  # Σ IG - (Z(X) - Z(baseline))
        np.testing.assert_allclose(ig.completeness_gap(), gap, rtol=1e-12, atol=1e-15)
        gaps.append(np.abs(gap).max())
    assert gaps[1] < gaps[0] and gaps[1] > 0


def test_integrated_gradients_equal_nam_for_bias_free_relu_models(karate):
    """Without biases a ReLU network is positively homogeneous: the straight path from the zero
    baseline stays in one activation pattern, so IG is NAM (for rules with α > 0)."""
    model = GNN(GNNConfig.create("gcn", 34, 2, (8, 8), bias=False), rngs=nnx.Rngs(3))
    reference = nam(model, karate, dtype=jnp.float64)
    for rule in ("gausslegendre", "riemann_right", "riemann_middle"):
        ig = explain(model, karate, "integrated_gradients", rule=rule, n_steps=5, dtype=jnp.float64)
        np.testing.assert_allclose(ig.contributions, reference.contributions, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ig.bias, 0.0, atol=1e-12)


def test_captum_integration_points():
    for n in (2, 5, 9):
        for rule in ("riemann_left", "riemann_right", "riemann_middle", "gausslegendre"):
            alphas, weights = ig_steps(n, rule)
            assert np.isclose(weights.sum(), 1.0) and np.all((alphas >= 0) & (alphas <= 1))
        alphas, weights = ig_steps(n, "riemann_trapezoid")
        assert np.isclose(weights.sum(), (n - 1) / n)  # Captum's quirk, reproduced


def test_occlusion_remove_mode_against_the_full_graph_oracle(karate):
    _, _, model, graph = imported("sage", karate, num_layers=2)
    att = explain(model, graph, "occlusion", targets=[0, 16, 33], dtype=jnp.float64)
    for target in att.targets:
        sources, _, scores = att.for_target(int(target))
        base = reference_logits(model, graph, int(target), [])
        for i, source in enumerate(sources[:6]):
            want = (
                np.zeros(2)
                if source == target
                else base - reference_logits(model, graph, int(target), [int(source)])
            )
            np.testing.assert_allclose(scores[i], want, rtol=1e-4, atol=1e-5)


def test_batched_equals_one_target_at_a_time(rough_graph):
    _, _, model, graph = imported("gin_train_eps", rough_graph, num_layers=2)
    for method, options in (("saliency", {}), ("integrated_gradients", {"n_steps": 4})):
        everyone = explain(model, graph, method, **options)
        for node in (0, 13, 29):
            alone = explain(model, graph, method, targets=[node], **options)
            np.testing.assert_array_equal(alone.for_target(node)[0], everyone.for_target(node)[0])
            np.testing.assert_allclose(
                alone.for_target(node)[2], everyone.for_target(node)[2], rtol=1e-5, atol=1e-7
            )


def test_the_method_and_its_options_are_recorded(karate, karate_model, tmp_path):
    att = explain(karate_model, karate, "integrated_gradients", n_steps=7, rule="riemann_middle")
    assert att.method == "integrated_gradients"
    assert att.options == {"n_steps": 7, "rule": "riemann_middle", "baseline": "zeros"}
    back = Attribution.load(att.save(tmp_path / "ig"))
    assert (back.method, back.options) == (att.method, att.options)
    assert "integrated_gradients" in repr(att)


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("lime", {}, "method must be one of nam, saliency"),
        ("integrated_gradients", {"n_steps": 1, "rule": "riemann_left"}, "n_steps must be"),
        ("integrated_gradients", {"rule": "simpson"}, "rule must be one of"),
        ("integrated_gradients", {"baseline": np.zeros(3)}, "baseline must be a number or of"),
        ("smoothgrad", {"base": "deeplift"}, "base must be"),
        ("smoothgrad", {"nt_samples": 2, "noise": np.zeros((3, 34, 34))}, "noise must have shape"),
        ("occlusion", {"mode": "drop"}, "mode must be one of remove, zero"),
        ("nam", {"n_steps": 3}, r"nam has no option 'n_steps' \(its options: none\)"),
        ("deeplift", {"steps": 3}, "deeplift has no option 'steps'"),
    ],
)
def test_bad_options_are_one_line(karate, karate_model, method, options, message):
    with pytest.raises(OptionError, match=message) as info:
        explain(karate_model, karate, method, **options)
    assert "\n" not in str(info.value)


def test_the_subgraph_engine_computes_nam_only(karate, karate_model):
    with pytest.raises(OptionError, match="engine='subgraph' computes NAM only"):
        explain(karate_model, karate, "saliency", engine="subgraph")
