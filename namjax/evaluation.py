"""The ground-truth protocol: train the papers' GCN on a planted-motif benchmark, explain the
motif nodes it classifies correctly with every method, score the explanations against the
motifs, and say whether they beat the controls.

Per benchmark and model seed (:func:`evaluate`; one model: :func:`evaluate_model`):

* **model**: a 3-layer GCN, hidden 20, with biases, no dropout, trained with
  :func:`namjax.train` (:data:`PROTOCOLS` holds the per-benchmark settings). A seed whose test
  accuracy misses the benchmark's bar is reported and left out of :meth:`Evaluation.summary`.
* **targets**: the motif nodes the model classifies correctly (all splits), explained for their
  class (= their label = the prediction) with every method of :func:`namjax.explain`.
* **controls** (Faber et al. 2021): ``random`` scores; the same methods on a randomised model of
  the same architecture (Glorot weights, biases drawn from ``±[0.1, 0.5]``), named
  ``<method>:random_model``; structure-only scores ``hop_distance`` (closer first) and
  ``walk_weight`` (``(Â^K)[a, φ]``, the model's operators without weights). Controls are
  unsigned rankings and are reported unchanged under both variants.
* **variants**: ``signed`` (the score as is) and ``abs`` (its magnitude).
* **metrics** (:mod:`namjax.metrics`): ``node_auroc`` (mean over targets) and
  ``node_auroc_pooled`` against "same motif as the target" among its K-hop sources;
  ``edge_auroc`` / ``edge_auroc_pooled`` against motif edges over the directed edges of each
  target's computation subgraph (self-loops left out): for ``nam`` (and ``nam:random_model``)
  the edge score is the NAM flow through the edge summed over layers
  (:func:`namjax.edge_contributions`), for every other score the mean of its two end nodes'
  scores; ``topk_accuracy`` and ``gea`` at k = the target's number of motif neighbours;
  ``fid_plus``, ``fid_minus`` (model kind), ``characterization`` and ``unfaithfulness`` (GEF,
  mean over targets) of the explanation made of the top ``1 - sparsity`` of the neighbours
  (:func:`namjax.deletion_curves`, remove mode). Fidelity needs the trained model's own ranking,
  so the ``:random_model`` and ``hop_distance`` controls have no fidelity rows.

Model rows (method ``model``, variant ``none``): ``train_accuracy``, ``test_accuracy``,
``passed_bar`` (1 or 0), ``targets`` (how many were explained).

:func:`model_grounded` builds a benchmark whose ground truth is the model's own: a GCN with
hand-set weights through which only planted sources can reach a logit.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from flax import nnx
from scipy.special import softmax

from namjax.attribution import Attribution
from namjax.edges import edge_contributions
from namjax.errors import OptionError, OutputError
from namjax.explainer import explain
from namjax.graph import Graph
from namjax.groundtruth import (
    BENCHMARKS,
    Benchmark,
    barabasi_albert,
    finish_benchmark,
    load_benchmark,
)
from namjax.methods import METHODS
from namjax.metrics import (
    characterization_score,
    edge_auroc,
    explanation_accuracy,
    nan_mean,
    node_auroc,
    node_ground_truth,
    topk_accuracy,
    unfaithfulness,
)
from namjax.model import GNN, GNNConfig, model_fingerprint, predict
from namjax.outputs import check_output_dir, write_bytes, write_table
from namjax.perturb import deletion_curves
from namjax.training import train

CONTROLS = ("random", "hop_distance", "walk_weight")
RANDOM_MODEL = ":random_model"
VARIANTS = ("signed", "abs")
RANKING_METRICS = ("node_auroc", "node_auroc_pooled", "edge_auroc", "edge_auroc_pooled")
RANKING_METRICS += ("topk_accuracy", "gea")
EVALUATION_FILES = frozenset({"results.parquet", "index.html"})
COLUMNS = ("benchmark", "method", "variant", "metric", "value", "seed")


@dataclass(frozen=True)
class Protocol:
    """How a benchmark's model is built and trained, and the test accuracy a seed must reach.

    ``normalize=False`` is PyG's ``GCNConv(normalize=False)``: a plain sum over the neighbours
    (``A`` as given, no self-loops), close to GNNExplainer's own unnormalised ``GraphConv``;
    with constant features it exposes the degree a symmetric-normalised GCN hides, which
    Tree-Cycles and Tree-Grid need (a normalised GCN stayed at chance on Tree-Cycles)."""

    bar: float
    normalize: bool = True
    lr: float = 0.01
    epochs: int = 1000
    weight_decay: float = 5e-4
    hidden: tuple[int, ...] = (20, 20)

    def config(self, graph: Graph) -> GNNConfig:
        return GNNConfig.create(
            "gcn",
            graph.num_features,
            graph.num_classes,
            self.hidden,
            bias=True,
            dropout=0.0,
            normalize=self.normalize,
        )


PROTOCOLS: dict[str, Protocol] = {
    "ba-shapes": Protocol(bar=0.9),
    "ba-community": Protocol(bar=0.65),
    "tree-cycles": Protocol(bar=0.9, normalize=False, lr=0.003, epochs=2000),
    "tree-grid": Protocol(bar=0.8, normalize=False, lr=0.003, epochs=2000),
}
"""Per-benchmark settings, chosen on seeds 0-2 of the default generators: the bars sit under
what most seeds reach (Ying et al. report > 0.95 on BA-Shapes with their concatenating GCN; this
plain stack reaches about 0.95 on BA-Shapes and Tree-Cycles, 0.85 on Tree-Grid, 0.7 on
BA-Community). A benchmark not listed here gets BA-Shapes' settings."""


# ---------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class Evaluation:
    """Rows ``(benchmark, method, variant, metric, value, seed)`` of one or more runs.

    Attributes:
        columns: the table as ``{column: (R,) array}`` (see :data:`COLUMNS`).
        meta: provenance (version, protocols, per-run fingerprints, timings), stored with the
            table.
        examples: ``{benchmark: (graph, target, {method: Attribution})}`` of one passing run,
            for the NIV figures of :meth:`save` (not stored).
    """

    columns: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    examples: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        runs = len(self.meta.get("runs", []))
        return f"Evaluation({len(self.columns['value'])} rows, {runs} runs)"

    def table(self) -> pa.Table:
        """The rows as a ``pyarrow.Table`` with the provenance as Parquet metadata ``namjax``."""
        c = self.columns
        table = pa.table(
            {
                **{k: pa.array(c[k].astype(str), pa.string()) for k in COLUMNS[:4]},
                "value": pa.array(c["value"].astype(np.float64)),
                "seed": pa.array(c["seed"].astype(np.int64)),
            }
        )
        return table.replace_schema_metadata({b"namjax": json.dumps(self.meta).encode()})

    def summary(self) -> pa.Table:
        """Mean and sample sd over the seeds that did not miss their accuracy bar, per (benchmark,
        method, variant, metric); ``seeds`` counts them. ``beats_controls`` (ranking metrics of
        the trained model's methods): whether the mean exceeds every control's mean on the same
        benchmark, variant and metric (the controls, and the method on the randomised model)."""
        c = self.columns
        missed = (c["method"] == "model") & (c["metric"] == "passed_bar") & (c["value"] == 0.0)
        run = np.char.add(c["benchmark"].astype(str), "\0" + c["seed"].astype(str))
        keep = ~np.isin(run, run[missed]) | (c["method"] == "model")
        groups: dict[tuple, list[float]] = {}
        for i in np.flatnonzero(keep):
            groups.setdefault(tuple(c[k][i] for k in COLUMNS[:4]), []).append(c["value"][i])
        stats = {k: _mean_sd(v) for k, v in groups.items()}
        rows = []
        for (b, m, var, met), (mean, sd, n) in stats.items():
            beats = None
            if met in RANKING_METRICS and m in METHODS:
                rivals = [*CONTROLS, m + RANDOM_MODEL]
                others = [stats[(b, r, var, met)][0] for r in rivals if (b, r, var, met) in stats]
                others = [o for o in others if np.isfinite(o)]
                beats = bool(others) and bool(mean > max(others))
            rows.append((b, m, var, met, mean, sd, n, beats))
        names = ("benchmark", "method", "variant", "metric", "mean", "sd", "seeds")
        out = {k: [r[i] for r in rows] for i, k in enumerate(names)}
        out["beats_controls"] = pa.array([r[7] for r in rows], pa.bool_())
        return pa.table(out)

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``results.parquet`` (:meth:`table`) and ``index.html`` (the summary, the runs
        and, per benchmark, one motif node's NIV for each method side by side; plotly.js
        embedded once) into ``directory``."""
        from namjax.views.evaluation import evaluation_page

        out = Path(directory)
        check_output_dir(out, overwrite=overwrite, ours=EVALUATION_FILES)
        out.mkdir(parents=True, exist_ok=True)
        write_table(out / "results.parquet", self.table())
        write_bytes(out / "index.html", evaluation_page(self).encode())
        return out

    @classmethod
    def load(cls, directory: str | Path) -> Evaluation:
        """Read what :meth:`save` wrote (without the figures' attributions)."""
        path = Path(directory) / "results.parquet"
        if not path.is_file():
            raise OutputError(f"{path} does not exist")
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(b"namjax", b"{}"))
        columns = {k: table.column(k).to_numpy(zero_copy_only=False) for k in COLUMNS}
        return cls({k: np.asarray(v) for k, v in columns.items()}, meta)

    @staticmethod
    def concat(parts: list[Evaluation]) -> Evaluation:
        """One evaluation holding the rows, runs and examples of ``parts``."""
        columns = {k: np.concatenate([p.columns[k] for p in parts]) for k in COLUMNS}
        runs = [r for p in parts for r in p.meta.get("runs", [])]
        meta = {**(parts[0].meta if parts else {}), "runs": runs}
        examples = {k: v for p in parts for k, v in p.examples.items()}
        return Evaluation(columns, meta, examples)


def _mean_sd(values: list[float]) -> tuple[float, float, int]:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


# ---------------------------------------------------------------------------- protocol
def evaluate(
    benchmark: str | Benchmark | list = "ba-shapes",
    methods=tuple(METHODS),
    seeds: int | list[int] = 5,
    *,
    epochs: int | None = None,
    graph_seed: int = 0,
    benchmark_params: dict | None = None,
    sparsity: float = 0.8,
    method_options: dict | None = None,
    progress: bool = False,
) -> Evaluation:
    """Run the protocol (module doc) on each benchmark for model seeds ``0..seeds-1`` (or the
    given list).

    Args:
        benchmark: a name of :data:`namjax.groundtruth.BENCHMARKS`, ``"all"``, a
            :class:`~namjax.groundtruth.Benchmark`, or a list of these.
        methods: attribution methods (:data:`namjax.METHODS`) to evaluate.
        seeds: how many model seeds, or the seeds themselves.
        epochs: override the protocol's epoch count (for quick runs).
        graph_seed: the seed the named benchmarks are generated with (one graph, many models).
        benchmark_params: generator overrides for the named benchmarks (e.g.
            ``{"num_motifs": 20}``).
        sparsity: fidelity's explanation is the top ``1 - sparsity`` of each target's
            neighbours.
        method_options: ``{method: options}`` passed to :func:`namjax.explain`.
        progress: print one line per run to stderr.
    """
    benches = _benchmarks(benchmark, graph_seed, benchmark_params or {})
    methods = check_methods(methods)
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seeds:
        raise OptionError("seeds must name at least one model seed")
    if epochs is not None and epochs < 1:
        raise OptionError(f"epochs must be >= 1, got {epochs}")
    parts = []
    for bench in benches:
        proto = PROTOCOLS.get(bench.name, PROTOCOLS["ba-shapes"])
        for seed in seeds:
            start = time.perf_counter()
            result = train(
                bench.graph,
                proto.config(bench.graph),
                seed=seed,
                epochs=epochs or proto.epochs,
                lr=proto.lr,
                weight_decay=proto.weight_decay,
                patience=0,
            )
            passed = bool(result.test_accuracy >= proto.bar)
            part = evaluate_model(
                result.model,
                bench,
                methods,
                seed=seed,
                sparsity=sparsity,
                method_options=method_options,
                model_rows={
                    "train_accuracy": result.train_accuracy,
                    "test_accuracy": result.test_accuracy,
                    "passed_bar": float(passed),
                },
                example=passed,
            )
            run = part.meta["runs"][0]
            run.update(
                bar=proto.bar,
                protocol=dataclasses.asdict(proto) | {"epochs": epochs or proto.epochs},
                train_accuracy=result.train_accuracy,
                test_accuracy=result.test_accuracy,
                passed=passed,
                seconds=time.perf_counter() - start,
            )
            if progress:
                print(
                    f"{bench.name} seed {seed}: train {result.train_accuracy:.3f}, test "
                    f"{result.test_accuracy:.3f} ({'passed' if passed else 'missed'} the bar "
                    f"{proto.bar}), {run['targets']} targets, {run['seconds']:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
            if any(bench.name in q.examples for q in parts):
                part = dataclasses.replace(part, examples={})
            parts.append(part)
    return Evaluation.concat(parts)


def evaluate_model(
    model: GNN,
    benchmark: Benchmark,
    methods=tuple(METHODS),
    *,
    targets=None,
    seed: int = 0,
    sparsity: float = 0.8,
    method_options: dict | None = None,
    control_model: GNN | None = None,
    model_rows: dict | None = None,
    example: bool = True,
) -> Evaluation:
    """Score ``model``'s explanations on ``benchmark`` (rows tagged ``seed``).

    ``targets`` default to the motif nodes whose prediction is their label. ``control_model``
    defaults to :func:`randomized_model` ``(model, seed)``. ``model_rows`` adds rows of method
    ``model`` (e.g. accuracies)."""
    graph = benchmark.graph
    methods = check_methods(methods)
    predicted = predict(model, graph).argmax(1)
    if targets is None:
        targets = np.flatnonzero((benchmark.motif >= 0) & (predicted == graph.labels))
    targets = np.unique(graph.check_nodes(targets, "target"))
    rows = _Rows(benchmark.name, seed)
    rows.add("model", "none", "targets", len(targets))
    for k, v in (model_rows or {}).items():
        rows.add("model", "none", k, v)
    run = {
        "benchmark": benchmark.name,
        "seed": seed,
        "targets": len(targets),
        "graph": graph.fingerprint,
        "model": model_fingerprint(model),
    }
    if not len(targets):
        return Evaluation(rows.columns(), {"runs": [run]})
    if (predicted[targets] != graph.labels[targets]).any():
        raise OptionError("every target must be classified correctly (its label is explained)")
    options = method_options or {}
    control = randomized_model(model, seed) if control_model is None else control_model
    atts = {m: explain(model, graph, m, targets, "true", **options.get(m, {})) for m in methods}
    for m in methods:
        atts[m + RANDOM_MODEL] = explain(control, graph, m, targets, "true", **options.get(m, {}))
    base = atts[methods[0]]
    signed = {m: atts[m] for m in methods}
    absolute = {m: _with_scores(a, np.abs(a.contributions[:, 0])) for m, a in signed.items()}
    pert, abs_pert = (
        deletion_curves(
            model,
            graph,
            targets,
            levels=[0.0],
            rankings=(*methods, "structure", "random") if given is signed else methods,
            seeds=1,
            sparsity=sparsity,
            attribution=given,
        )
        for given in (signed, absolute)
    )
    if not np.array_equal(pert.khop.nodes, base.sources):
        raise OptionError("internal: the perturbation's pair layout differs from the attribution")
    controls = {
        "random": np.random.default_rng(0).random(len(base.sources)),  # perturb's random order
        "hop_distance": -base.hops.astype(np.float64),
        "walk_weight": pert.scores["structure"],
    }
    scores = {m: a.contributions[:, 0].astype(np.float64) for m, a in atts.items()} | controls
    flows = {}
    if "nam" in methods:
        flows = {
            m: _edge_rows(edge_contributions(x, graph, targets, "true"))
            for m, x in (("nam", model), ("nam" + RANDOM_MODEL, control))
        }
    edges = flows.get("nam") or _edge_rows(edge_contributions(model, graph, targets, "true"))
    fidelity_of = {m: m for m in methods} | {"walk_weight": "structure", "random": "random"}
    for name, score in scores.items():
        for variant in VARIANTS:
            s = np.abs(score) if variant == "abs" and name not in CONTROLS else score
            att = _with_scores(base, s)
            auc = node_auroc(att, benchmark, cls="label")
            rows.add(name, variant, "node_auroc", auc.mean)
            rows.add(name, variant, "node_auroc_pooled", auc.pooled)
            sc, lab, grp = node_ground_truth(att, benchmark, cls="label")
            rows.add(name, variant, "topk_accuracy", nan_mean(topk_accuracy(sc, lab, grp)))
            rows.add(name, variant, "gea", nan_mean(explanation_accuracy(sc, lab, grp)))
            t, u, v, flow = flows.get(name, edges)
            if name in flows:
                edge_score = np.abs(flow) if variant == "abs" else flow
            else:
                edge_score = _edge_from_nodes(att, t, u, v)
            ea = edge_auroc(t, u, v, edge_score, benchmark)
            rows.add(name, variant, "edge_auroc", ea.mean)
            rows.add(name, variant, "edge_auroc_pooled", ea.pooled)
            if name in fidelity_of:
                p = abs_pert if variant == "abs" and name in methods else pert
                _fidelity_rows(rows, name, variant, p, fidelity_of[name])
    run["seconds_explain"] = sum(a.stats.get("total_s", 0.0) for a in atts.values())
    examples = {}
    if example:
        examples[benchmark.name] = (
            graph,
            int(_example_target(benchmark, targets)),
            {m: atts[m] for m in methods},
        )
    return Evaluation(rows.columns(), {"runs": [run]}, examples)


def check_methods(methods) -> tuple[str, ...]:
    """``methods`` as a tuple of distinct names of :data:`namjax.METHODS` (one-line error)."""
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods or len(set(methods)) < len(methods):
        what = f"unknown method {unknown[0]!r}" if unknown else "no method or one given twice"
        raise OptionError(f"methods: {what} (choose from {', '.join(METHODS)})")
    return methods


def randomized_model(model: GNN, seed: int = 0) -> GNN:
    """A model of ``model``'s architecture with fresh Glorot weights (``nnx.Rngs(seed +
    10_000)``) and every bias drawn from ``±[0.1, 0.5]`` (sign and size uniform): with zero
    biases an untrained GCN's NAM scores are walk weights, so that control could not fail."""
    out = GNN(model.config, rngs=nnx.Rngs(seed + 10_000))
    rng = np.random.default_rng(seed + 10_000)
    for layer in out.layers:
        bias = getattr(layer, "bias", None)
        if bias is not None:
            size = 0.1 + 0.4 * rng.random(bias.shape)
            bias[...] = jnp.asarray(rng.choice([-1.0, 1.0], bias.shape) * size, jnp.float32)
    return out


# ---------------------------------------------------------------------------- model-grounded
def model_grounded(
    *,
    num_nodes: int = 120,
    m: int = 2,
    num_planted: int = 30,
    hidden: int = 8,
    depth: int = 3,
    seed: int = 0,
) -> tuple[Benchmark, GNN]:
    """A benchmark whose ground truth lives in the model: a Barabási–Albert graph (``m``) of
    ``num_nodes`` nodes, ``num_planted`` of them planted (motif 0, the others -1), features
    ``[1, 0]`` on planted and ``[0, 1]`` on the other nodes, and a GCN (``depth`` layers,
    ``hidden`` wide, symmetric normalisation) with hand-set weights: the first layer's row for
    feature 1 is zero, every other weight and every hidden bias is positive, the last layer
    writes class 0 only (class 1 is the constant 0; the class-0 bias is positive, so every node
    is predicted, and labelled, 0).

    So a planted source within K hops of a target has a strictly positive gradient x input on
    class 0 and any other source exactly 0: a complete gradient method (NAM, integrated
    gradients, DeepLift) must rank the planted sources first (node AUROC 1.0 for every planted
    target, the targets :func:`evaluate_model` picks), while graph-only scores cannot know them.
    Motif edges (both ends planted) are reported but not guaranteed: flows also cross edges from
    a planted to an unplanted node."""
    if not 1 <= num_planted < num_nodes:
        raise OptionError(f"num_planted must be in 1..{num_nodes - 1}, got {num_planted}")
    if hidden < 1 or not 1 <= depth <= 4:
        raise OptionError(f"need hidden >= 1 and depth in 1..4, got {hidden} and {depth}")
    rng = np.random.default_rng(seed)
    edges = barabasi_albert(num_nodes, m, rng)
    planted = np.zeros(num_nodes, bool)
    planted[rng.choice(num_nodes, num_planted, replace=False)] = True
    x = np.stack([planted, ~planted], axis=1).astype(np.float32)
    graph = Graph.from_edge_index(
        np.concatenate([edges, edges[:, ::-1]]).T,
        num_nodes,
        features=x,
        labels=np.zeros(num_nodes, np.int64),
        num_classes=2,
        class_names=("planted signal", "constant"),
        name="model-grounded",
    )
    config = GNNConfig.create("gcn", 2, 2, (hidden,) * (depth - 1), bias=True, dropout=0.0)
    model = GNN(config, rngs=nnx.Rngs(seed))
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        w = 0.2 + rng.random(layer.kernel.shape)
        b = 0.1 + 0.4 * rng.random(layer.bias.shape)
        if i == 0:
            w[1] = 0.0  # the unplanted feature reaches nothing
        if i == last:
            w[:, 1], b[1] = 0.0, 0.0
        layer.kernel[...] = jnp.asarray(w, jnp.float32)
        layer.bias[...] = jnp.asarray(b, jnp.float32)
    motif = np.where(planted, 0, -1).astype(np.int64)
    params = dict(num_nodes=num_nodes, m=m, num_planted=num_planted, hidden=hidden, depth=depth)
    bench = finish_benchmark(
        graph, motif, np.empty((0, 2), np.int64), num_planted, "model-grounded", params, seed
    )
    return bench, model


# ---------------------------------------------------------------------------- helpers
class _Rows:
    def __init__(self, benchmark: str, seed: int):
        self.benchmark, self.seed, self.rows = benchmark, seed, []

    def add(self, method: str, variant: str, metric: str, value) -> None:
        self.rows.append((method, variant, metric, float(value)))

    def columns(self) -> dict[str, np.ndarray]:
        n = len(self.rows)
        return {
            "benchmark": np.array([self.benchmark] * n, dtype=object),
            "method": np.array([r[0] for r in self.rows], dtype=object),
            "variant": np.array([r[1] for r in self.rows], dtype=object),
            "metric": np.array([r[2] for r in self.rows], dtype=object),
            "value": np.array([r[3] for r in self.rows], np.float64),
            "seed": np.full(n, self.seed, np.int64),
        }


def _benchmarks(spec, graph_seed: int, params: dict) -> list[Benchmark]:
    items = spec if isinstance(spec, list | tuple) else [spec]
    out: list[Benchmark] = []
    for item in items:
        if isinstance(item, Benchmark):
            out.append(item)
        elif item == "all":
            out += [load_benchmark(n, graph_seed, **params) for n in BENCHMARKS]
        elif isinstance(item, str):
            out.append(load_benchmark(item, graph_seed, **params))
        else:
            raise OptionError(f"benchmark must be a name or a Benchmark, got {type(item).__name__}")
    if not out:
        raise OptionError("no benchmark given")
    return out


def _with_scores(att: Attribution, scores: np.ndarray) -> Attribution:
    """``att`` with its one class slot's scores replaced by ``scores (P,)``."""
    return dataclasses.replace(att, contributions=np.asarray(scores, np.float64)[:, None])


def _edge_rows(flows) -> tuple[np.ndarray, ...]:
    """``(target, u, v, score)`` per directed edge of each target's computation subgraph (flows
    of the one class slot summed over layers, self-loops dropped), sorted by (target, u, v)."""
    t, u, v, score = flows.edge_scores(slot=0)
    keep = u != v
    return t[keep], u[keep], v[keep], score[keep]


def _edge_from_nodes(att: Attribution, target, u, v) -> np.ndarray:
    """Edge score = mean of the node scores of ``u`` and ``v`` for ``target`` (both lie in its
    K-hop set; ``att.targets`` sorted)."""
    n = att.num_nodes
    rows = np.repeat(np.arange(len(att.targets)), np.diff(att.offsets))
    keys = rows * n + att.sources
    order = np.argsort(keys)
    trow = np.searchsorted(att.targets, target) * n
    s = att.contributions[order, 0]
    return (
        s[np.searchsorted(keys[order], trow + u)] + s[np.searchsorted(keys[order], trow + v)]
    ) / 2


def _fidelity_rows(rows: _Rows, name: str, variant: str, pert, ranking: str) -> None:
    fid = pert.fidelity("model")[ranking]
    rows.add(name, variant, "fid_plus", fid["fid_plus"])
    rows.add(name, variant, "fid_minus", fid["fid_minus"])
    rows.add(
        name, variant, "characterization", characterization_score(fid["fid_plus"], fid["fid_minus"])
    )
    idx = [i for i, (r, _) in enumerate(pert.rankings) if r == ranking]

    def probabilities(z):
        return softmax(np.asarray(z, np.float64), axis=-1)

    p0 = probabilities(pert.original)
    gef = np.mean(
        [unfaithfulness(p0, probabilities(pert.fidelity_logits[i, 1])).mean() for i in idx]
    )
    rows.add(name, variant, "unfaithfulness", gef)


def _example_target(bench: Benchmark, targets: np.ndarray) -> int:
    """The explained node of the most-explained motif with the highest role label (a house top
    on BA-Shapes), as the page's example."""
    motifs, counts = np.unique(bench.motif[targets], return_counts=True)
    best = targets[bench.motif[targets] == motifs[np.argmax(counts)]]
    return int(best[np.argmax(bench.graph.labels[best])])
