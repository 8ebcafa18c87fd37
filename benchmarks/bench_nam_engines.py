"""NAM engines side by side: ``engine="pairs"`` (default) against ``engine="subgraph"``.

For each case (dataset, depth K; trained GCN, seed 0; all targets x all classes):

* first call of each engine in a fresh process (includes every compilation, the global pass's
  too);
* warm calls of both engines in this process (median and fastest of ``--repeats``), split into
  host extraction and device time (``Attribution.stats``), the subgraph engine's buckets,
  chunks and padding (node slots and edge slots over real ones);
* agreement: max |difference| of the contributions over the largest |contribution|.

Usage: ``python benchmarks/bench_nam_engines.py [--repeats 7]``; data from ``$NAMJAX_DATA_DIR``
or ``../shared/datasets/planetoid``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import date

import jax
import numpy as np

from namjax.datasets import load_dataset
from namjax.explainer import nam
from namjax.model import GNNConfig
from namjax.training import train

DATA_DIR = os.environ.get("NAMJAX_DATA_DIR", "../shared/datasets/planetoid")
CASES = (("cora", 2), ("cora", 3), ("citeseer", 2))
ENGINES = ("pairs", "subgraph")


def setup(name: str, depth: int):
    graph = load_dataset(name, DATA_DIR)
    cfg = GNNConfig.create("gcn", graph.num_features, graph.num_classes, (16,) * (depth - 1))
    return graph, train(graph, cfg, seed=0).model


def first_call(name: str, depth: int, engine: str) -> dict:
    """Run in a fresh process: the first ``nam`` call of ``engine``, nothing compiled before."""
    proc = subprocess.run(
        [sys.executable, __file__, "--first", name, str(depth), engine],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm_calls(model, graph, engine: str, repeats: int) -> tuple[dict, np.ndarray]:
    nam(model, graph, engine=engine)  # compile
    runs = [nam(model, graph, engine=engine) for _ in range(repeats)]
    stats = [r.stats for r in runs]
    out = {
        key: statistics.median(s[key] for s in stats)
        for key in ("total_s", "extract_s", "device_s")
    }
    out["fastest_s"] = min(s["total_s"] for s in stats)
    for key in ("buckets", "chunks", "padding_overhead", "edge_padding_overhead", "pairs"):
        if key in stats[0]:
            out[key] = stats[0][key]
    return out, runs[-1].contributions


def bench_case(name: str, depth: int, repeats: int) -> dict:
    graph, model = setup(name, depth)
    row = {"case": f"{name} K={depth}"}
    contributions = {}
    for engine in ENGINES:
        row[engine], contributions[engine] = warm_calls(model, graph, engine, repeats)
        row[engine]["first"] = first_call(name, depth, engine)
        print(f"[{row['case']}] {engine} {row[engine]}", file=sys.stderr)
    ref = contributions["pairs"]
    row["rel_err"] = float(np.abs(contributions["subgraph"] - ref).max() / np.abs(ref).max())
    return row


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def report(rows: list[dict], repeats: int) -> None:
    print(
        f"\n{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {date.today()}; "
        f"jax {jax.__version__} ({jax.default_backend()}); warm = median of {repeats} calls"
    )
    head = (
        "| case | engine | first call s | compiled | warm ms | fastest ms | extract ms "
        "| device ms | buckets | chunks | node pad | edge pad |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in rows:
        for engine in ENGINES:
            r, f = row[engine], row[engine]["first"]
            print(
                f"| {row['case']} | {engine} | {f['total_s']:.2f} | {f['compiled']} "
                f"| {1e3 * r['total_s']:.1f} | {1e3 * r['fastest_s']:.1f} "
                f"| {1e3 * r['extract_s']:.1f} | {1e3 * r['device_s']:.1f} "
                f"| {r.get('buckets', '-')} | {r.get('chunks', '-')} "
                f"| {r['padding_overhead']:.2f} | {_fmt(r.get('edge_padding_overhead'))} |"
            )
    print("\nsubgraph / pairs (warm median, first call), agreement:")
    for row in rows:
        warm = row["subgraph"]["total_s"] / row["pairs"]["total_s"]
        first = row["subgraph"]["first"]["total_s"] / row["pairs"]["first"]["total_s"]
        print(
            f"  {row['case']}: warm {warm:.1f}x, first {first:.1f}x, "
            f"max rel diff {row['rel_err']:.1e}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--first", nargs=3, metavar=("DATASET", "K", "ENGINE"), help="(child)")
    args = parser.parse_args(argv)
    if args.first:
        name, depth, engine = args.first
        graph, model = setup(name, int(depth))
        stats = nam(model, graph, engine=engine).stats
        print(json.dumps({key: stats[key] for key in ("total_s", "compile_s", "compiled")}))
        return 0
    report([bench_case(name, depth, args.repeats) for name, depth in CASES], args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
