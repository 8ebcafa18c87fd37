"""Scale benchmark: explain every node of synthetic citation graphs with a streamed top-k job.

For each size N (default 10k and 100k nodes; add 1000000 for the 1M goal) a fresh subprocess
generates the graph (``namjax.synthetic.citation_graph``, average degree 10), trains a GCN,
runs ``namjax.jobs.run(..., topk=k)`` into a temporary dataset and reports: time per target,
targets/s and (target, source) pairs/s, peak RSS (``ru_maxrss`` of that process), output
bytes, and per-chunk (2-hop paths, seconds) from which the growth exponent of time against the
number of 2-hop paths is fitted (log-log least squares; 1.0 = linear).

Side by side at the first size (when at most 100k nodes), in subprocesses too (so each peak RSS is its own): the
engine's in-memory ``namjax.nam`` of all targets, saved as one Parquet table, against the streamed
top-k job.

Usage: python benchmarks/bench_scale.py [--sizes 10000 100000 1000000] [--topk 32]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def one(n: int, mode: str, topk: int, epochs: int, budget: str, out: Path) -> dict:
    """Generate, train and explain one graph in this process; returns the measurements."""
    from namjax import jobs, nam, train  # names that an older checkout (--baseline) has too
    from namjax.synthetic import citation_graph

    t0 = time.perf_counter()
    graph = citation_graph(n, seed=0)
    gen_s = time.perf_counter() - t0
    trained = train(graph, seed=0, epochs=epochs)
    rec = {
        "nodes": n,
        "edges": graph.num_edges,
        "mode": mode,
        "generate_s": gen_s,
        "train_s": trained.seconds,
        "epochs": trained.epochs,
        "test_accuracy": trained.test_accuracy,
        "chance": 1 / graph.num_classes,
    }
    paths = jobs.khop_walks(graph, trained.config.depth)
    rec["paths"] = float(paths.sum())
    t0 = time.perf_counter()
    if mode == "job":
        # an older checkout (--baseline) spells the option topk
        name = "top_k" if "top_k" in inspect.signature(jobs.run).parameters else "topk"
        result = jobs.run(
            trained.model, graph, out, **{name: topk}, memory_budget=jobs.parse_bytes(budget)
        )
        rec["explain_s"] = time.perf_counter() - t0
        rec["phases"] = getattr(result, "phases", {})
        rec["pairs"] = result.pairs
        rec["chunks"] = result.spec.num_chunks
        bounds = result.spec.bounds
        rec["chunk_paths"] = [
            float(paths[bounds[i] : bounds[i + 1]].sum()) for i in result.computed
        ]
        rec["chunk_seconds"] = list(result.chunk_seconds)
    else:
        attr = nam(trained.model, graph)
        attr.save(out)
        rec["explain_s"] = time.perf_counter() - t0
        rec["pairs"] = int(attr.offsets[-1])
    rec["bytes"] = sum(p.stat().st_size for p in Path(out).rglob("*.parquet"))
    rec["peak_rss_gb"] = peak_rss_gb()
    return rec


def run_child(n: int, mode: str, args, code: str | None = None) -> dict:
    """One measurement in a fresh interpreter; ``code``: run the namjax of that checkout."""
    out = Path(tempfile.mkdtemp(prefix=f"bench-scale-{n}-"))
    cmd = [sys.executable, __file__, "--child", str(n), mode, "--topk", str(args.topk)]
    cmd += ["--epochs", str(epochs_for(n, args)), "--memory-budget", args.memory_budget]
    cmd += ["--out", str(out / "data")]
    env = os.environ | ({"PYTHONPATH": code} if code else {})
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if proc.returncode:
            raise SystemExit(f"child {n} {mode} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def epochs_for(n: int, args) -> int:
    return args.epochs if args.epochs else (200 if n < 1_000_000 else 60)


def slope(x, y) -> float:
    """Least-squares exponent b of y = a x^b."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--topk", type=int, default=32)
    p.add_argument("--epochs", type=int, default=0, help="0: 200, or 60 from 1M nodes on")
    p.add_argument("--memory-budget", default="1GB", help="per-chunk budget of the job")
    p.add_argument(
        "--baseline",
        metavar="CHECKOUT",
        help="also time the job (sizes up to 100k) with the namjax of this checkout of an "
        "earlier commit, e.g. a `git worktree add ../old COMMIT`, and print the ratio",
    )
    p.add_argument("--child", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        rec = one(
            int(args.child[0]),
            args.child[1],
            args.topk,
            args.epochs,
            args.memory_budget,
            Path(args.out),
        )
        print(json.dumps(rec))
        return

    recs, baselines = [], {}
    for n in args.sizes:
        rec = run_child(n, "job", args)
        recs.append(rec)
        print(
            f"N={n}: {json.dumps({k: v for k, v in rec.items() if not k.startswith('chunk_')})}",
            flush=True,
        )
        if args.baseline and n <= 100_000:
            baselines[n] = run_child(n, "job", args, code=args.baseline)
            print(f"N={n} baseline: {baselines[n]['explain_s']:.1f} s", flush=True)
    # the in-memory engine holds every pair of every class: compared only up to 100k nodes
    inmem = run_child(args.sizes[0], "in-memory", args) if args.sizes[0] <= 100_000 else None

    print(
        f"\nmachine: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}"
        f" CPU cores, jax {__import__('jax').__version__}, top-k {args.topk}, "
        f"budget {args.memory_budget}"
    )
    print(
        f"{'nodes':>9} {'edges':>9} {'acc':>5} {'train s':>8} {'explain s':>9} {'µs/target':>9} "
        f"{'targets/s':>9} {'pairs/s':>9} {'2hop paths':>10} {'exp':>5} {'RSS GB':>6} "
        f"{'out MB':>7}"
    )
    for r in recs:
        xs, ys = np.array(r["chunk_paths"][1:]), np.array(r["chunk_seconds"][1:])  # 0: compile
        exp = slope(xs, ys) if len(xs) > 2 and np.ptp(xs) > 0 else float("nan")
        print(
            f"{r['nodes']:>9} {r['edges']:>9} {r['test_accuracy']:>5.2f} {r['train_s']:>8.1f} "
            f"{r['explain_s']:>9.1f} {1e6 * r['explain_s'] / r['nodes']:>9.0f} "
            f"{r['nodes'] / r['explain_s']:>9.0f} {r['pairs'] / r['explain_s']:>9.3g} "
            f"{r['paths']:>10.3g} {exp:>5.2f} {r['peak_rss_gb']:>6.2f} {r['bytes'] / 2**20:>7.1f}"
        )
    if len(recs) > 1:
        across = slope([r["paths"] for r in recs], [r["explain_s"] for r in recs])
        print(f"growth of explain time with total 2-hop paths across sizes: exponent {across:.2f}")
    print(
        "\npipeline stages (seconds summed over chunks; they overlap): "
        + "; ".join(
            f"N={r['nodes']}: "
            + ", ".join(f"{k[:-2]} {v:.1f}" for k, v in r.get("phases", {}).items())
            for r in recs
        )
    )
    for n, old in baselines.items():
        new = next(r for r in recs if r["nodes"] == n)
        print(
            f"N={n}: this code {new['explain_s']:.1f} s vs baseline {args.baseline} "
            f"{old['explain_s']:.1f} s: {old['explain_s'] / new['explain_s']:.2f}x faster; peak "
            f"RSS {new['peak_rss_gb']:.2f} vs {old['peak_rss_gb']:.2f} GB"
        )
    job = recs[0]
    if inmem is None:
        return
    print(
        f"N={job['nodes']}: streamed top-{args.topk} job vs in-memory nam + save: "
        f"time {job['explain_s']:.1f}s vs {inmem['explain_s']:.1f}s "
        f"(ratio {job['explain_s'] / inmem['explain_s']:.2f}), peak RSS "
        f"{job['peak_rss_gb']:.2f} vs {inmem['peak_rss_gb']:.2f} GB, output "
        f"{job['bytes'] / 2**20:.1f} vs {inmem['bytes'] / 2**20:.1f} MB"
    )


if __name__ == "__main__":
    main()
