"""Test accuracy of the GCN over 10 seeds on Cora and Citeseer, beside Kipf & Welling's reported
numbers: default training (early stopping, patience 10) with the default bias-free layers (as in
their code) and with a bias in every layer, and the layers with bias trained the full 200 epochs.

Usage: python benchmarks/bench_accuracy.py [--data-dir DIR] [--seeds 10]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from namjax.datasets import load_dataset
from namjax.model import GNNConfig
from namjax.training import train

REPORTED = {"cora": 0.815, "citeseer": 0.703}  # Kipf & Welling (2017), Table 2
BAR = {"cora": 0.810, "citeseer": 0.700}
VARIANTS = {  # name: (bias, patience)
    "no bias (default)": (False, 10),
    "with bias": (True, 10),
    "bias, 200 ep": (True, 0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("NAMJAX_DATA_DIR", "../shared/datasets/planetoid")
    parser.add_argument("--data-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()

    rows = []
    for name in REPORTED:
        graph = load_dataset(name, args.data_dir)
        for variant, (bias, patience) in VARIANTS.items():
            config = GNNConfig.create("gcn", graph.num_features, graph.num_classes, bias=bias)
            runs = [train(graph, config, seed=s, patience=patience) for s in range(args.seeds)]
            acc = np.array([r.test_accuracy for r in runs])
            epochs = np.array([r.epochs for r in runs])
            rows.append((name, variant, acc, epochs))
            print(f"{name} {variant}: " + " ".join(f"{a:.3f}" for a in acc), flush=True)

    print(f"\nTest accuracy over seeds 0..{args.seeds - 1} (mean ± sd)")
    header = f"{'dataset':<10}{'variant':<14}{'accuracy':>16}{'epochs':>9}{'reported':>10}"
    print(header + f"{'bar':>7}  met")
    for name, variant, acc, epochs in rows:
        print(
            f"{name:<10}{variant:<14}{100 * acc.mean():>9.2f} ± {100 * acc.std(ddof=1):.2f}"
            f"{epochs.mean():>9.0f}{100 * REPORTED[name]:>10.1f}{100 * BAR[name]:>7.1f}"
            f"  {'yes' if acc.mean() >= BAR[name] else 'no'}"
        )


if __name__ == "__main__":
    main()
