"""Attribution methods benchmark: namjax, every method for all targets x all classes of Cora in
one call, against Captum one call per (target, class) on the same weights, in one process.

The model is a GCN (hidden 16) trained in PyG with Kipf & Welling's protocol and imported with
``namjax.from_pyg``; namjax runs in float32, Captum in float64 (the test harness's setting, which
costs it up to about 2x on a CPU). Captum goes through PyG's ``Explainer`` +
``CaptumExplainer`` where PyG allows it (InputXGradient, Saliency, IntegratedGradients) and is
called directly where it does not (DeepLift, NoiseTunnel, FeatureAblation: the test harness's
batched forward, ``tests/captum_reference.py``). Captum's time per (target, class) is measured
on a few targets and extrapolated to the 2708 x 7 calls; FeatureAblation (occlusion) ablates
only the first few nodes per call and is extrapolated to all N, since one full call takes
minutes. The parity error is the largest relative difference between namjax's and Captum's
node scores on the timed targets (occlusion in zero mode, Captum's FeatureAblation).

Usage: python benchmarks/bench_methods.py [--targets 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
from pyg_baselines import KIPF, pyg_data, pyg_train

from namjax.datasets import load_dataset
from namjax.explainer import explain
from namjax.pyg import from_pyg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
DATA_DIR = os.environ.get("NAMJAX_DATA_DIR", "../shared/datasets/planetoid")

# name: (namjax method, namjax options, Captum method of the harness, Captum options)
CASES = {
    "nam": ("nam", {}, "input_x_gradient", {}),
    "saliency": ("saliency", {}, "saliency", {}),
    "integrated_gradients": ("integrated_gradients", {"n_steps": 50}, "integrated_gradients", {}),
    "deeplift": ("deeplift", {}, "deeplift", {}),
    "smoothgrad (saliency)": (
        "smoothgrad",
        {"nt_samples": 5, "stdevs": 0.1},
        "smoothgrad_saliency",
        {"nt_samples": 5, "stdevs": 0.1},
    ),
    "smoothgrad (nam)": (
        "smoothgrad",
        {"base": "nam", "nt_samples": 5, "stdevs": 0.1},
        "smoothgrad_input_x_gradient",
        {"nt_samples": 5, "stdevs": 0.1},
    ),
    "occlusion (zero)": ("occlusion", {"mode": "zero"}, "occlusion", {}),
    "occlusion (remove)": ("occlusion", {"mode": "remove"}, None, {}),
}
ABLATED = 16  # nodes FeatureAblation ablates per timed call (extrapolated to N)


def captum_seconds(torch_model, data, case: str, targets) -> tuple[float, np.ndarray | None]:
    """Seconds per (target, class) call of Captum, and its ``(T, N, C)`` scores (``None`` for
    occlusion, timed on a part of the nodes only)."""
    import torch
    from captum_reference import captum_node_attributions

    _, _, captum, options = CASES[case]
    model64 = torch_model.double()
    num_c = int(data.y.max()) + 1
    if captum == "occlusion":
        from captum.attr import FeatureAblation
        from captum_reference import CopiesForward

        x = data.x.double()[None]
        groups = torch.full(x.shape, ABLATED, dtype=torch.long)  # the rest: one group, kept
        groups[0, :ABLATED] = torch.arange(ABLATED)[:, None]
        t0 = time.perf_counter()
        FeatureAblation(CopiesForward(model64, data, int(targets[0]))).attribute(
            x, baselines=0.0, target=0, feature_mask=groups
        )
        per_call = (time.perf_counter() - t0) * data.num_nodes / (ABLATED + 1)
        return per_call, None
    t0 = time.perf_counter()
    scores = captum_node_attributions(model64, data, captum, targets, **options)
    return (time.perf_counter() - t0) / (len(targets) * num_c), scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2, help="targets timed for Captum")
    parser.add_argument("--repeats", type=int, default=3, help="warm namjax calls (median)")
    args = parser.parse_args()
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    graph = load_dataset("cora", DATA_DIR)
    data = pyg_data(graph)
    acc, _, _, torch_model = pyg_train("gcn", data, graph.num_classes, 0, KIPF)
    model, g = from_pyg(torch_model, data, name="cora")
    data.edge_weight = None  # the harness's forward: unweighted Cora
    calls = graph.num_nodes * graph.num_classes
    sample = np.array([1358, 7, 2000, 150][: args.targets])
    rows = []
    for case, (method, options, _, _) in CASES.items():
        first = explain(model, g, method, **options)
        warm = [explain(model, g, method, **options).stats["total_s"] for _ in range(args.repeats)]
        row = {"case": case, "first_s": first.stats["total_s"], "warm_s": statistics.median(warm)}
        if CASES[case][2] is not None:
            ours = explain(model, g, method, targets=sample, **options)
            per_call, want = captum_seconds(torch_model, data, case, sample)
            row["captum_s"] = per_call * calls
            if want is not None:
                noise = method == "smoothgrad"  # Captum's noise is torch's: report, not compare
                err = np.abs(ours.dense() - want).max() / np.abs(want).max()
                row["err"] = None if noise else float(err)
        rows.append(row)
        print(f"[{case}] {row}", file=sys.stderr, flush=True)

    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.1f}; {date.today()}; torch threads 1; Cora, PyG-trained GCN "
        f"(test acc {acc:.3f}) imported with from_pyg; all {graph.num_nodes} targets x "
        f"{graph.num_classes} classes = {calls} (target, class) pairs"
    )
    print(
        "Captum: seconds per call measured on "
        f"{args.targets} targets x 7 classes, times {calls} (occlusion: one call ablating "
        f"{ABLATED} of the {graph.num_nodes} nodes, scaled to all); err: max |namjax - Captum| / "
        "max |Captum| on those targets (smoothgrad draws other noise: not compared here; the "
        "tests feed both the same noise)"
    )
    print(
        f"{'method':<24}{'namjax first s':>15}{'warm s':>9}{'Captum s':>12}{'ratio':>10}{'err':>9}"
    )
    for r in rows:
        captum = r.get("captum_s")
        ratio = f"{captum / r['warm_s']:.0f}x" if captum else "-"
        err = r.get("err")
        print(
            f"{r['case']:<24}{r['first_s']:>15.2f}{r['warm_s']:>9.3f}"
            f"{captum if captum else float('nan'):>12.0f}{ratio:>10}"
            f"{'-' if err is None else f'{err:.1e}':>9}"
        )


if __name__ == "__main__":
    main()
