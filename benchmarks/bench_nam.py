"""NAM engine benchmark: namjax against per-target autodiff and PyG (+ Captum) baselines.

Runs side by side in one process, for Cora and Citeseer, all targets x all classes:

* **namjax** ``nam(model, graph)``: first call (includes compilation) and the median of warm
  calls, split into host extraction, the global forward pass and the per-pair device pass (from
  ``Attribution.stats``);
* **autodiff**: ``jax.vmap(jax.grad(logit[a, c]))`` over the (target, class) pairs of a few
  targets, gradient x input over the full dense feature matrix, summed over features;
* **PyG + Captum** (when torch, torch_geometric and captum import): ``Explainer`` with
  ``CaptumExplainer('InputXGradient')``, ``explanation_type='phenomenon'``, one call per
  (target, class) as a user does it (``index=`` with many nodes returns one summed mask);
* **PyG subgraph**: the fastest exact approach written here; each target's ``k_hop_subgraph``
  with the full-graph ``gcn_norm`` weights, autograd on ``X W1`` rows (one batched backward for
  all classes), one target per call and many targets as one disjoint union.

Slow baselines run on a sample of targets and are extrapolated linearly to all targets (marked
``extrap``); every baseline's contributions are compared with namjax's on that sample (max
relative error printed). A scaling section runs namjax alone in fresh subprocesses (peak RSS,
cold first call, warm call) on Cora, Citeseer and synthetic citation graphs, reporting K-walks
("paths"), (target, source) pairs and time per path.

Usage: ``python benchmarks/bench_nam.py [--quick]``; data from ``$NAMJAX_DATA_DIR`` or
``../shared/datasets/planetoid``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import date

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from flax import nnx
from pyg_baselines import (
    PROTOCOLS,
    SubgraphExplainer,
    captum_runner,
    pyg_data,
    pyg_train,
    subgraph_dense,
    subgraph_runner,
    torch_available,
    torch_gcn,
)

from namjax.attribution import Attribution
from namjax.datasets import load_dataset
from namjax.engine.pairs import clear_plans
from namjax.explainer import nam
from namjax.graph import Graph
from namjax.model import GNN, GNNConfig, device_graph, forward
from namjax.synthetic import citation_graph
from namjax.training import train

DATA_DIR = os.environ.get("NAMJAX_DATA_DIR", "../shared/datasets/planetoid")


# ---------------------------------------------------------------------------- helpers
def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        line = next(x for x in out.splitlines() if x.startswith("Model name"))
        return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def num_paths(graph: Graph, k: int) -> int:
    """Number of walks of length K in ``A + I`` ending anywhere: one NAM walk term each."""
    step = sp.csr_matrix(graph.adjacency, dtype=bool) + sp.identity(graph.num_nodes, dtype=bool)
    step = step.astype(np.int64).tocsr()
    v = np.ones(graph.num_nodes, np.int64)
    for _ in range(k):
        v = step @ v
    return int(v.sum())


def dense_rows(attr: Attribution, targets: np.ndarray) -> np.ndarray:
    """``(len(targets), Q, N)`` contributions of the given targets, zeros beyond K hops."""
    out = np.zeros((len(targets), attr.num_slots, attr.num_nodes), np.float64)
    for i, a in enumerate(targets):
        sources, _, contrib = attr.for_target(int(a))
        out[i][:, sources] = contrib.T
    return out


def rel_err(x: np.ndarray, ref: np.ndarray) -> float:
    """Largest per-target relative error ``||x - ref|| / ||ref||`` (Frobenius over classes
    and sources)."""
    num = np.linalg.norm((x - ref).reshape(len(ref), -1), axis=1)
    den = np.linalg.norm(ref.reshape(len(ref), -1), axis=1)
    return float((num / np.maximum(den, 1e-30)).max())


def best_of(rounds: int, run, targets: np.ndarray):
    """Warm ``run`` up on one target, then time ``run(targets)`` ``rounds`` times. Returns
    ``(fastest seconds, output of the last round)`` (the minimum is the least disturbed by
    other processes on a shared machine)."""
    run(targets[:1])
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = run(targets)
        times.append(time.perf_counter() - t0)
    return min(times), out


# ---------------------------------------------------------------------------- namjax
def bench_namjax(model: GNN, graph: Graph, repeats: int) -> tuple[dict, Attribution]:
    """First and warm calls of ``nam(model, graph)`` (all targets, all classes): warm calls
    that plan again (the plan cache cleared before each) and warm calls reusing the plan."""
    clear_plans()
    first = nam(model, graph)
    runs = []
    for _ in range(repeats):
        clear_plans()
        runs.append(nam(model, graph).stats)
    reused = [nam(model, graph).stats for _ in range(repeats)]
    assert all(r["plan_cached"] for r in reused) and not any(r["plan_cached"] for r in runs)
    keys = ("total_s", "extract_s", "forward_s", "device_s")
    med = {key: statistics.median(r[key] for r in runs) for key in keys}
    return {
        "first_s": first.stats["total_s"],
        "compile_s": first.stats["compile_s"],
        **med,
        "warm_min_s": min(r["total_s"] for r in runs),
        "reused_s": statistics.median(r["total_s"] for r in reused),
        "reused_min_s": min(r["total_s"] for r in reused),
        "pairs": first.stats["pairs"],
    }, first


# ---------------------------------------------------------------------------- autodiff
def autodiff_runner(model: GNN, graph: Graph, per_batch: int = 2):
    """``run(targets) -> (S, C, N)``: gradient x input per (target, class) pair over the full
    dense ``X``, summed over features; ``vmap(grad)`` over the pairs of ``per_batch`` targets
    at a time."""
    steps = model.steps()
    dg = device_graph(graph, model.operators, jnp.float32, sparse_features=False)
    num_c = model.config.num_classes

    def logit(x, a, c):
        return forward(steps, dg._replace(features=x))[a, c]

    @jax.jit
    def contributions(x, a, c):
        return (jax.vmap(jax.grad(logit), in_axes=(None, 0, 0))(x, a, c) * x).sum(-1)

    def batch(targets):  # always per_batch targets (one compiled shape): pad, then drop
        padded = np.resize(targets, per_batch)
        a = np.repeat(padded, num_c)
        c = np.tile(np.arange(num_c), per_batch)
        out = contributions(dg.features, a, c).block_until_ready()
        return np.asarray(out, np.float64).reshape(per_batch, num_c, -1)[: len(targets)]

    def run(targets):
        return np.concatenate(
            [batch(targets[i : i + per_batch]) for i in range(0, len(targets), per_batch)]
        )

    return run


# ---------------------------------------------------------------------------- scaling (child)
def make_graph(spec: str) -> Graph:
    if spec.startswith("synthetic:"):
        return citation_graph(int(spec.split(":")[1]), seed=0)
    return load_dataset(spec, DATA_DIR)


def scaling_child(spec: str, repeats: int) -> None:
    """Fresh process: namjax alone on one graph (random-init GCN(16), the same work as a
    trained one). Prints one JSON line."""
    graph = make_graph(spec)
    config = GNNConfig.create("gcn", graph.num_features, int(graph.labels.max()) + 1)
    model = GNN(config, rngs=nnx.Rngs(0))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    first = nam(model, graph)
    warm = min(  # each call plans again (host planning is part of what is measured)
        (clear_plans() or nam(model, graph).stats for _ in range(repeats)),
        key=lambda r: r["total_s"],
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "graph": spec,
                "nodes": graph.num_nodes,
                "edges": int(graph.adjacency.nnz // 2),
                "paths": num_paths(graph, model.config.depth),
                "pairs": first.stats["pairs"],
                "first_s": first.stats["total_s"],
                "warm_s": warm["total_s"],
                "extract_s": warm["extract_s"],
                "device_s": warm["forward_s"] + warm["device_s"],
                "rss_before_mb": rss_before / 1024,
                "rss_peak_mb": rss / 1024,
            }
        )
    )


def run_scaling(specs: list[str], repeats: int) -> list[dict]:
    rows = []
    for spec in specs:
        cmd = [sys.executable, __file__, "--scaling-child", spec, "--repeats", str(repeats)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"scaling child {spec} failed:\n{proc.stderr[-2000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


# ---------------------------------------------------------------------------- main
def bench_dataset(name: str, args) -> dict:
    graph = load_dataset(name, DATA_DIR)
    model = train(graph, seed=0).model
    row = {"dataset": name, "nodes": graph.num_nodes, "classes": model.config.num_classes}
    row["namjax"], attr = bench_namjax(model, graph, args.repeats)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(graph.num_nodes, args.sample, replace=False))
    ref = dense_rows(attr, sample)
    print(f"[{name}] namjax {row['namjax']}", file=sys.stderr)

    def record(key, run, targets, to_dense=None):
        seconds, out = best_of(args.rounds, run, targets)
        got = out if to_dense is None else to_dense(out)
        n_ref = len(got)
        row[key] = {
            "s": seconds * graph.num_nodes / len(targets),
            "extrap": len(targets) < graph.num_nodes,
            "timed": len(targets),
            "err": rel_err(got, ref[:n_ref]),
        }
        print(f"[{name}] {key} {row[key]}", file=sys.stderr)

    subgraph_engine = functools.partial(nam, model, graph, engine="subgraph")
    all_targets = np.arange(graph.num_nodes)
    record("namjax_subgraph", subgraph_engine, all_targets, lambda att: dense_rows(att, sample))
    record("autodiff", autodiff_runner(model, graph), sample[: args.slow_sample])
    if torch_available():
        import torch

        torch.set_num_threads(args.torch_threads)
        num_c, data, torch_model = model.config.num_classes, pyg_data(graph), torch_gcn(model)
        record("captum", captum_runner(torch_model, data, num_c), sample[: args.slow_sample])
        to_dense = functools.partial(subgraph_dense, sample=sample, num_c=num_c, n=graph.num_nodes)
        explain = SubgraphExplainer(torch_model, data, "gcn", model.config.depth, num_c)
        record("pyg_per_target", subgraph_runner(explain, 1), sample, to_dense)
        everyone = sample if args.quick else np.arange(graph.num_nodes)
        record("pyg_batched", subgraph_runner(explain, args.chunk), everyone, to_dense)
    return row


def bench_architectures(args) -> list[dict]:
    """Per architecture on Cora: a PyG-trained model imported with ``namjax.from_pyg``, all
    targets x all classes, against Captum one call per (target, class) and the hand-written
    subgraph approach on the same weights."""
    import torch

    from namjax.pyg import from_pyg

    torch.set_num_threads(args.torch_threads)
    graph = load_dataset("cora", DATA_DIR)
    data, num_c = pyg_data(graph), graph.num_classes
    rng = np.random.default_rng(1)
    sample = np.sort(rng.choice(graph.num_nodes, args.sample, replace=False))
    rows = []
    for arch in ("gcn", "sgc", "sage", "gin"):
        test_acc, _, _, torch_model = pyg_train(arch, data, num_c, 0, PROTOCOLS[arch])
        model, g = from_pyg(torch_model, data, name="cora")
        timing, attr = bench_namjax(model, g, args.repeats)
        ref = dense_rows(attr, sample)
        row = {"arch": arch, "pyg_test_acc": test_acc, "namjax": timing}
        captum = captum_runner(torch_model, data, num_c)
        slow = sample[: args.slow_sample]
        seconds, out = best_of(args.rounds, captum, slow)
        row["captum"] = {
            "s": seconds * graph.num_nodes / len(slow),
            "err": rel_err(out, ref[: len(slow)]),
        }
        explain = SubgraphExplainer(torch_model, data, arch, model.config.depth, num_c)
        seconds, out = best_of(args.rounds, subgraph_runner(explain, args.chunk), sample)
        dense = subgraph_dense(out, sample, num_c, graph.num_nodes)
        row["pyg_batched"] = {
            "s": seconds * graph.num_nodes / len(sample),
            "err": rel_err(dense, ref),
        }
        print(f"[cora {arch}] {row}", file=sys.stderr)
        rows.append(row)
    return rows


METHODS = {
    "namjax_subgraph": "namjax engine='subgraph' (per-target subgraphs, vmap per bucket)",
    "autodiff": "JAX vmap(grad) per (target, class), dense X",
    "captum": "PyG Explainer + Captum InputXGradient, 1 call per (target, class)",
    "pyg_per_target": "PyG k_hop_subgraph + autograd on X W1, 1 target per call",
    "pyg_batched": "PyG k_hop_subgraph + autograd on X W1, union of {chunk} targets",
}


def report_architectures(rows: list[dict], args) -> None:
    print(
        "\nArchitectures on Cora: a PyG-trained model (Kipf's protocol; SGC's for sgc) imported "
        "with namjax.from_pyg, all 2708 targets x 7 classes; namjax = fastest warm call; Captum "
        f"(Explainer + CaptumExplainer InputXGradient, 1 call per (target, class), extrapolated "
        f"from {args.slow_sample} targets) and the hand-written PyG approach (K-hop subgraphs, "
        f"union of {args.chunk} targets, autograd; extrapolated from {args.sample} targets) on "
        "the same weights; err: max relative error vs namjax on those targets:"
    )
    print(
        f"{'arch':<6}{'PyG acc':>8}{'namjax ms':>10}{'first s':>8}{'Captum s':>10}{'ratio':>9}"
        f"{'err':>9}{'hand s':>8}{'ratio':>7}{'err':>9}"
    )
    for r in rows:
        n, c, h = r["namjax"]["warm_min_s"], r["captum"], r["pyg_batched"]
        print(
            f"{r['arch']:<6}{r['pyg_test_acc']:>8.3f}{n * 1e3:>10.1f}{r['namjax']['first_s']:>8.2f}"
            f"{c['s']:>10.1f}{c['s'] / n:>8.0f}x{c['err']:>9.1e}{h['s']:>8.2f}{h['s'] / n:>6.0f}x"
            f"{h['err']:>9.1e}"
        )


def report(rows: list[dict], scaling: list[dict], args) -> None:
    print(
        f"\nmachine: {cpu_model()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; {date.today()}; jax {jax.__version__}; "
        f"torch threads {args.torch_threads}"
    )
    if not torch_available():
        print("torch / torch_geometric / captum not importable: PyG baselines skipped")
    print(
        "\nScaling: namjax alone, fresh process per graph, random-init GCN(16), all targets x "
        "all classes; paths = K-walks in A+I; warm = fastest of 3 (extract = host, device = "
        "forward + pair pass); RSS = peak before and after the calls; B/pair = their difference "
        "per pair:"
    )
    print(
        f"{'graph':<17}{'nodes':>7}{'edges':>8}{'paths':>10}{'pairs':>10}{'first s':>8}"
        f"{'warm ms':>9}{'extract':>8}{'device':>8}{'ns/path':>8}{'RSS MB':>12}{'B/pair':>7}"
    )
    for s in scaling:
        grown = (s["rss_peak_mb"] - s["rss_before_mb"]) * 2**20 / s["pairs"]
        print(
            f"{s['graph']:<17}{s['nodes']:>7}{s['edges']:>8}{s['paths']:>10}{s['pairs']:>10}"
            f"{s['first_s']:>8.2f}{s['warm_s'] * 1e3:>9.1f}{s['extract_s'] * 1e3:>8.1f}"
            f"{s['device_s'] * 1e3:>8.1f}{s['warm_s'] / s['paths'] * 1e9:>8.0f}"
            f"{s['rss_before_mb']:>6.0f}->{s['rss_peak_mb']:<5.0f}{grown:>7.0f}"
        )
    print(
        "\nnamjax, all targets x all classes (median of warm calls that plan again, and of warm "
        "calls reusing the cached plan; ms):"
    )
    print(
        f"{'dataset':<10}{'first s':>9}{'compile s':>10}{'warm':>8}{'min':>8}"
        f"{'extract':>9}{'forward':>9}{'device':>8}{'reused':>8}{'min':>8}"
    )
    for r in rows:
        n = r["namjax"]
        print(
            f"{r['dataset']:<10}{n['first_s']:>9.2f}{n['compile_s']:>10.2f}{n['total_s'] * 1e3:>8.1f}"
            f"{n['warm_min_s'] * 1e3:>8.1f}"
            f"{n['extract_s'] * 1e3:>9.1f}{n['forward_s'] * 1e3:>9.1f}{n['device_s'] * 1e3:>8.1f}"
            f"{n['reused_s'] * 1e3:>8.1f}{n['reused_min_s'] * 1e3:>8.1f}"
        )
    print(
        f"\nBaselines, all targets x all classes, fastest of {args.rounds} rounds; ratio: vs "
        "namjax's fastest warm call; extrap: timed on the first n sampled targets and scaled "
        "to all targets; err: max relative error of contributions vs namjax on those targets:"
    )
    print(f"{'method':<68}{'dataset':<10}{'seconds':>10}{'ratio':>10}  {'':<12}{'err':>9}")
    for key, label in METHODS.items():
        for r in rows:
            if key not in r:
                continue
            b = r[key]
            print(
                f"{label.format(chunk=args.chunk):<68}{r['dataset']:<10}{b['s']:>10.3f}"
                f"{b['s'] / r['namjax']['warm_min_s']:>9.0f}x  "
                f"{'extrap n=' + str(b['timed']) if b['extrap'] else 'all':<12}"
                f"{b['err']:>9.1e}"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, smaller scaling run")
    parser.add_argument("--repeats", type=int, default=None, help="warm calls (median)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: faster than 2 on a shared 2-core machine)",
    )
    parser.add_argument("--scaling-child", metavar="GRAPH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 7)
    if args.scaling_child:
        scaling_child(args.scaling_child, args.repeats)
        return 0
    args.sample = 8 if args.quick else 32
    args.slow_sample = 4 if args.quick else 12
    args.rounds = 2 if args.quick else 3
    args.chunk = 128
    datasets = ["cora"] if args.quick else ["cora", "citeseer"]
    synthetic = [5_000, 10_000] if args.quick else [5_000, 10_000, 20_000, 40_000]
    scaling = run_scaling(datasets + [f"synthetic:{n}" for n in synthetic], repeats=3)
    rows = [bench_dataset(name, args) for name in datasets]
    archs = bench_architectures(args) if torch_available() else []
    report(rows, scaling, args)
    if archs:
        report_architectures(archs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
