"""Deletion curves on Cora and Citeseer: the paper's Fig. 6 experiment, and its speed.

For each dataset: train the GCN (seed 0), run the full sweep (test nodes x 11 levels x all
rankings, 5 random seeds) in both deletion modes, print accuracy curves, AUCs and fidelities, and
check the acceptance claim (NAM below random at every 0 < p < 1). On Cora, time the vectorised
sweep after compilation against the per-node Python loop over the float64 full-graph oracle
(:func:`namjax.perturb.reference_logits`), timed on a sample of targets and extrapolated.

Usage: python benchmarks/bench_perturb.py [--data-dir D] [--sample 6] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from namjax.datasets import load_dataset
from namjax.explainer import nam
from namjax.perturb import deletion_curves, reference_logits
from namjax.training import train


def steady_seconds(model, graph, attribution, repeats: int) -> float:
    """Best of ``repeats`` calls of the full sweep (compiled already)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        deletion_curves(model, graph, attribution=attribution)
        times.append(time.perf_counter() - t0)
    return min(times)


def reference_seconds_per_target(model, graph, result, sample: int) -> tuple[float, float]:
    """Seconds per target of the per-node loop over every (ranking, level) with the float64
    full-graph oracle, on ``sample`` evenly spaced targets; also the largest relative error
    against the vectorised logits seen on the way."""
    kh = result.khop
    picks = np.linspace(0, len(result.targets) - 1, sample).astype(int)
    worst = 0.0
    t0 = time.perf_counter()
    for t in picks:
        sl = slice(kh.offsets[t], kh.offsets[t + 1])
        for row in range(len(result.rankings)):
            order = np.argsort(result.ranks[row, sl], kind="stable")
            for li in range(len(result.levels)):
                n_del = result.deletion_intervals[t, 3 + li, 1]
                ref = reference_logits(
                    model, graph, int(result.targets[t]), kh.nodes[sl][order][:n_del]
                )
                got = result.logits[row, li, t]
                worst = max(worst, float(np.abs(got - ref).max() / np.abs(ref).max()))
    return (time.perf_counter() - t0) / sample, worst


def curve_table(result) -> list[str]:
    c = result.curves()
    names = list(dict.fromkeys(r for r, _ in result.rankings))
    head = f"| ranking | {' | '.join(f'{100 * p:.0f}%' for p in result.levels)} |"
    lines = [head, "|" + "---|" * (len(result.levels) + 1)]
    for name in names:
        acc = c["accuracy"][c["ranking"] == name].reshape(-1, len(result.levels))
        cells = [f"{a:.3f}" for a in acc.mean(0)]
        label = f"{name} (mean of {len(acc)})" if len(acc) > 1 else name
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def summary_table(result) -> list[str]:
    auc, fid = result.auc(), result.fidelity("model")
    lines = ["| ranking | AUC | fid+ | fid- |", "|---|---|---|---|"]
    for name in fid:
        extra = f" ± {auc['random_sd']:.4f}" if name == "random" else ""
        lines.append(
            f"| {name} | {auc[name]:.4f}{extra} | {fid[name]['fid_plus']:.3f} | {fid[name]['fid_minus']:.3f} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--sample", type=int, default=6, help="targets timed in the reference loop")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    timing = {}
    for name in ("cora", "citeseer"):
        graph = load_dataset(name, args.data_dir)
        fit = train(graph, seed=0)
        model = fit.model
        targets = np.flatnonzero(graph.test_mask)
        nam(model, graph, targets, classes="predicted")  # compile the NAM engine
        t0 = time.perf_counter()
        attribution = nam(model, graph, targets, classes="predicted")
        nam_seconds = time.perf_counter() - t0
        print(f"\n## {name}: test accuracy {fit.test_accuracy:.3f}, {len(targets)} targets")
        for mode in ("remove", "zero"):
            t0 = time.perf_counter()
            result = deletion_curves(model, graph, mode=mode, attribution=attribution)
            first = time.perf_counter() - t0
            c = result.curves()
            inner = (c["p"] > 0) & (c["p"] < 1)
            nam_acc = c["accuracy"][(c["ranking"] == "nam") & inner]
            rand = (
                c["accuracy"][(c["ranking"] == "random") & inner].reshape(-1, len(nam_acc)).mean(0)
            )
            auc = result.auc()
            print(f"\n### {name}, {mode} mode: accuracy after deleting p of the K-hop neighbours\n")
            print("\n".join(curve_table(result)))
            print()
            print("\n".join(summary_table(result)))
            beaten = [
                n
                for n, v in auc.items()
                if n not in ("nam", "random_sd", "nam_reversed") and v < auc["nam"]
            ]
            print(
                f"\nNAM below random at every 0<p<1: {bool(np.all(nam_acc < rand))}; "
                f"AUC gap random - NAM = {auc['random'] - auc['nam']:.4f}; "
                f"rankings with a lower AUC than NAM: {beaten or 'none'}"
            )
            if name == "cora" and mode == "remove":
                steady = steady_seconds(model, graph, attribution, args.repeats)
                per_target, worst = reference_seconds_per_target(model, graph, result, args.sample)
                timing = {
                    "rows": len(result.rankings),
                    "levels": len(result.levels),
                    "targets": len(targets),
                    "first": first,
                    "nam": nam_seconds,
                    "steady": steady,
                    "reference": per_target * len(targets),
                    "worst": worst,
                }

    t = timing
    print(
        f"\n## Speed, Cora remove mode: {t['targets']} targets x {t['levels']} levels x "
        f"{t['rows']} curves (6 rankings + 5 random seeds), ranking scores included\n"
    )
    print("| approach | seconds | ratio |")
    print("|---|---|---|")
    print(f"| NAM attribution of the targets (engine, compiled) | {t['nam']:.2f} | |")
    print(f"| vectorised sweep, first call (incl. compilation) | {t['first']:.2f} | |")
    print(f"| vectorised sweep, compiled (best of {args.repeats}) | {t['steady']:.2f} | 1 |")
    print(
        f"| per-node loop, float64 full-graph oracle (extrapolated from {args.sample} targets) | "
        f"{t['reference']:.0f} | {t['reference'] / t['steady']:.0f}x slower |"
    )
    print(f"\nlargest relative difference vectorised vs oracle on the sample: {t['worst']:.1e}")


if __name__ == "__main__":
    main()
