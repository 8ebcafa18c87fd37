"""Device benchmark for `benchmarks/gpu.sh`: the engine on whatever backend JAX picks.

Measures, in one process: Cora and Citeseer (all targets x all classes; first call, warm calls
that plan again, warm calls reusing the cached plan), the Pubmed graph with random binary
features of its real width 500 (the raw ``ind.pubmed.allx`` is not needed; said so in the
output), and a streamed top-k job over a synthetic citation graph (default 1M nodes, average
degree 10, a randomly initialised GCN: the job's speed does not depend on the weights, and
training would not fit the script's time). Writes ``results.json`` and ``results.md`` to
``--out``; the table is printed last.

Usage: python benchmarks/bench_gpu.py --out DIR [--nodes 1000000] [--top-k 32] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import scipy.sparse as sp
from bench_nam import bench_namjax
from flax import nnx

from namjax import GNN, GNNConfig, Graph, jobs, load_dataset
from namjax.synthetic import citation_graph


def gcn(graph: Graph, seed: int = 0) -> GNN:
    config = GNNConfig.create("gcn", graph.num_features, graph.num_classes, (16,))
    return GNN(config, rngs=nnx.Rngs(seed))


def pubmed_structure(data_dir: Path, seed: int = 0) -> Graph:
    """Pubmed's citation graph (``ind.pubmed.graph``) with random binary features of the real
    width 500 (about 50 words per node, row-normalised) and random labels of its 3 classes."""
    with open(data_dir / "ind.pubmed.graph", "rb") as f:
        adjacency = pickle.load(f, encoding="latin1")
    n = 19_717
    rows = [u for u, vs in adjacency.items() for v in vs]
    cols = [v for vs in adjacency.values() for v in vs]
    keep = [i for i, (u, v) in enumerate(zip(rows, cols, strict=True)) if u != v]
    edges = np.array([[rows[i] for i in keep], [cols[i] for i in keep]])
    rng = np.random.default_rng(seed)
    x = sp.random(n, 500, density=0.1, format="csr", random_state=seed, dtype=np.float32)
    x.data[:] = 1.0
    x = sp.diags(1.0 / np.maximum(x.sum(1).A1, 1.0)) @ x
    undirected = np.unique(np.sort(edges, axis=0), axis=1)  # each edge once
    both = np.concatenate([undirected, undirected[::-1]], axis=1)
    return Graph.from_edge_index(
        both, n, features=x.astype(np.float32), labels=rng.integers(0, 3, n), name="pubmed"
    )


def engine_calls(name: str, graph: Graph, repeats: int) -> dict:
    """:func:`bench_nam.bench_namjax` of a random-init GCN(16) on ``graph``, in ms."""
    r, _ = bench_namjax(gcn(graph), graph, repeats)
    return {
        "graph": name,
        "nodes": graph.num_nodes,
        "pairs": r["pairs"],
        "first_s": r["first_s"],
        "warm_replan_ms": 1e3 * r["total_s"],
        "warm_reused_ms": 1e3 * r["reused_s"],
        "warm_reused_min_ms": 1e3 * r["reused_min_s"],
        "host_planning_ms": 1e3 * r["extract_s"],
        "device_ms": 1e3 * (r["forward_s"] + r["device_s"]),
    }


def job(nodes: int, top_k: int) -> dict:
    t0 = time.perf_counter()
    graph = citation_graph(nodes, seed=0)
    generate_s = time.perf_counter() - t0
    model = gcn(graph)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = jobs.run(model, graph, Path(tmp) / "job", top_k=top_k, memory_budget=2**30)
        seconds = time.perf_counter() - t0
    return {
        "graph": f"synthetic:{nodes}",
        "nodes": nodes,
        "generate_s": generate_s,
        "job_s": seconds,
        "pairs": result.pairs,
        "rows": result.rows,
        "chunks": result.spec.num_chunks,
        "phases": result.phases,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def markdown(res: dict) -> str:
    lines = [
        f"namjax device benchmark, {res['date']}, backend {res['backend']} ({res['devices']})",
        "",
        "| graph | nodes | pairs | first s | warm ms (plan again) | warm ms (reused plan) "
        "| host planning ms | device ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["engine"]:
        lines.append(
            f"| {r['graph']} | {r['nodes']} | {r['pairs']} | {r['first_s']:.2f} "
            f"| {r['warm_replan_ms']:.1f} | {r['warm_reused_ms']:.1f} "
            f"| {r['host_planning_ms']:.1f} | {r['device_ms']:.1f} |"
        )
    j = res.get("job")
    if j:
        phases = ", ".join(f"{k} {v:.1f}" for k, v in j["phases"].items())
        lines += [
            "",
            f"Job {j['graph']} (random-init GCN, top-k {res['top_k']}): {j['job_s']:.1f} s "
            f"for {j['pairs']:,} pairs in {j['chunks']} chunks, peak RSS "
            f"{j['peak_rss_gb']:.2f} GB; stages (overlapping): {phases}",
        ]
    lines.append("Pubmed: its real graph with random binary features of width 500.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--data-dir", default=None, help="Planetoid files (default $NAMJAX_DATA_DIR)")
    p.add_argument("--nodes", type=int, default=1_000_000, help="synthetic job size (0: none)")
    p.add_argument("--top-k", type=int, default=32)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir or os.environ.get("NAMJAX_DATA_DIR", "data/planetoid"))
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "backend": jax.default_backend(),
        "devices": ", ".join(d.device_kind for d in jax.devices()),
        "top_k": args.top_k,
        "engine": [],
    }
    for name in ("cora", "citeseer"):
        res["engine"].append(engine_calls(name, load_dataset(name, data_dir), args.repeats))
        print(json.dumps(res["engine"][-1]), flush=True)
    res["engine"].append(engine_calls("pubmed", pubmed_structure(data_dir), args.repeats))
    print(json.dumps(res["engine"][-1]), flush=True)
    if args.nodes:
        res["job"] = job(args.nodes, args.top_k)
        print(json.dumps(res["job"]), flush=True)
    (out / "results.json").write_text(json.dumps(res, indent=1))
    table = markdown(res)
    (out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
