"""Test accuracy of the default GCN over 10 seeds on Cora and Citeseer, beside Kipf & Welling's
reported numbers, for the default layers (with bias) and for their code's bias-free layers.

Usage: python benchmarks/bench_accuracy.py [--data-dir DIR] [--seeds 10]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from namjax.datasets import load_dataset
from namjax.model import GCNConfig
from namjax.train import train

REPORTED = {"cora": 0.815, "citeseer": 0.703}  # Kipf & Welling (2017), Table 2
BAR = {"cora": 0.810, "citeseer": 0.700}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("NAMJAX_DATA_DIR", "../shared/datasets/planetoid")
    parser.add_argument("--data-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()

    rows = []
    for name in REPORTED:
        graph = load_dataset(name, args.data_dir)
        for bias in (True, False):
            config = GCNConfig(graph.num_features, graph.num_classes, bias=bias)
            results = [train(graph, config, seed=s) for s in range(args.seeds)]
            acc = np.array([r.test_accuracy for r in results])
            epochs = np.array([r.epochs for r in results])
            rows.append((name, bias, acc, epochs))
            print(f"{name} bias={bias}: " + " ".join(f"{a:.3f}" for a in acc), flush=True)

    print(f"\nTest accuracy over seeds 0..{args.seeds - 1} (mean ± sd), default training setup")
    header = f"{'dataset':<10}{'layers':<14}{'accuracy':>16}{'epochs':>9}{'reported':>10}"
    print(header + f"{'bar':>7}  met")
    for name, bias, acc, epochs in rows:
        layers = "with bias" if bias else "no bias"
        print(
            f"{name:<10}{layers:<14}{100 * acc.mean():>9.2f} ± {100 * acc.std(ddof=1):.2f}"
            f"{epochs.mean():>9.0f}{100 * REPORTED[name]:>10.1f}{100 * BAR[name]:>7.1f}"
            f"  {'yes' if acc.mean() >= BAR[name] else 'no'}"
        )


if __name__ == "__main__":
    main()
