"""The ``namjax`` command line. Each subcommand only composes library functions.

Every command takes ``--json`` and then prints a one-line JSON summary as its last stdout line.
User errors (unknown dataset, missing files, bad arguments, an unusable ``--out``) exit with
code 2 and one line on stderr, ``namjax <command>: error: ...``, never a traceback; output
paths are checked before any work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from namjax.errors import NamjaxError, OptionError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("namjax")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a one-line JSON summary last")


def _existing_path(text: str) -> str:
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"no such file or directory: {text}")
    return text


def _data_args(p: argparse.ArgumentParser, default: str | None = "karate") -> None:
    what = "default: the dataset recorded in --model" if default is None else f"default {default}"
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset",
        default=default,
        help="karate, cora, citeseer, pubmed, synthetic:N[:seed], or a graph file (.npz, or a "
        f"Parquet directory; see README, Your own graph files); {what}",
    )
    source.add_argument(
        "--graph",
        dest="dataset",
        type=_existing_path,
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="a graph file (.npz, or a Parquet directory; see README, Your own graph files): "
        "the same as --dataset FILE",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="directory holding the raw Planetoid files (default: $NAMJAX_DATA_DIR, "
        "else download into the user cache)",
    )


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model directory written by `namjax train`")
    _data_args(p, default=None)


def _load_graph(args: argparse.Namespace):
    from namjax.graphfile import graph_from_spec

    return graph_from_spec(args.dataset, args.data_dir)


def _load_model_and_graph(args: argparse.Namespace):
    """The graph named by ``--dataset`` (default: the one recorded in the model directory) and
    the ``--model`` trained on it."""
    from namjax.io import load_model, model_info

    if args.dataset is None:
        recorded = model_info(args.model).get("dataset") or "karate"
        inside = Path(args.model) / recorded  # a graph file kept in the model directory
        args.dataset = str(inside) if inside.exists() else recorded
    graph = _load_graph(args)
    return graph, load_model(args.model, graph)


def _check_out_dir(args: argparse.Namespace, ours=frozenset()) -> Path:
    from namjax.outputs import check_output_dir

    out = Path(args.out)
    check_output_dir(out, overwrite=getattr(args, "overwrite", False), ours=ours)
    return out


def emit(args: argparse.Namespace, summary: dict, text: str) -> None:
    """Print the human summary line, or the JSON summary as the last stdout line."""
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(text)


COMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}


def command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Register ``fn(args) -> exit code`` as subcommand ``name``."""

    def deco(fn):
        COMMANDS[name] = (help, configure, fn)
        return fn

    return deco


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="namjax", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"namjax {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_text, configure, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        configure(p)
        p.set_defaults(func=fn)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _class_id(text: str | None, graph) -> int | None:
    """``--class``: a class id or a class name of ``graph``."""
    if text is None:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    names = graph.class_names or ()
    if text in names:
        return names.index(text)
    known = ", ".join(names) if names else f"0..{graph.num_classes - 1}"
    raise OptionError(f"--class {text!r} is neither a class id nor a class name ({known})")


# ---------------------------------------------------------------------------- niv
def _niv_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--node", type=int, required=True, help="the target node to explain")
    p.add_argument("--hops", type=int, default=1, help="neighbourhood radius, 1..K; default 1")
    p.add_argument(
        "--class",
        dest="cls",
        default=None,
        help="class whose score is explained (id or name); default the node's predicted class",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=60,
        help="neighbours drawn, largest |contribution| first (0: all); default 60",
    )
    p.add_argument("--layout", choices=("rings", "spring"), default="rings", help="node layout")
    view = p.add_mutually_exclusive_group()
    view.add_argument(
        "--paths", type=int, metavar="SOURCE", help="draw the paths from SOURCE to --node instead"
    )
    view.add_argument("--bars", type=int, metavar="K", help="draw the top-K contributors instead")
    p.add_argument(
        "--cdn",
        action="store_true",
        help="load plotly.js from its CDN instead of embedding it (viewing then needs internet)",
    )
    p.add_argument("--out", required=True, help="output file: .html, .json, .png, .svg or .pdf")


@command("niv", "draw a node's Node Importance Visualization (interactive Plotly)", _niv_args)
def _niv(args: argparse.Namespace) -> int:
    from namjax.explainer import nam
    from namjax.model import predict
    from namjax.outputs import check_output_file
    from namjax.views.niv import FORMATS, niv, niv_bars, niv_paths, write_figure

    check_output_file(Path(args.out), FORMATS)
    graph, model = _load_model_and_graph(args)
    node = int(graph.check_nodes(args.node, "--node")[0])
    cls = _class_id(args.cls, graph)
    if args.paths is not None:
        fig = niv_paths(model, graph, node, args.paths, cls=cls)
    else:
        result = nam(model, graph, targets=[node], classes="all")
        logits = predict(model, graph)
        if args.bars is not None:
            fig = niv_bars(result, graph, node, args.bars, cls=cls, predictions=logits)
        else:
            fig = niv(
                result,
                graph,
                node,
                args.hops,
                cls=cls,
                top_k=args.top_k or None,
                predictions=logits,
                layout=args.layout,
            )
    out = write_figure(fig, args.out, cdn=args.cdn)
    summary = {"out": str(out), **fig.layout.meta}
    emit(args, summary, f"wrote {summary['view']} view of node {node} to {out}")
    return 0


# ---------------------------------------------------------------------------- explore
EXPLORE_MAX_TARGETS = 50_000
"""The most targets (and page nodes) `namjax explore` puts on one page: a browser cannot open
much more (Cora's 2708 targets x 7 classes, top 30, make about 10 MB)."""


def _explore_args(p: argparse.ArgumentParser) -> None:
    from namjax.checks import CLASS_CHOICES
    from namjax.methods import METHODS

    _model_args(p)
    p.add_argument(
        "--methods",
        default="nam",
        help=f"comma-separated attribution methods, each a switch on the page "
        f"({', '.join(METHODS)}; default options); default nam",
    )
    p.add_argument(
        "--targets",
        default=None,
        help="nodes on the page: all, train, val, test or comma-separated node ids; default "
        f"all, which graphs of more than {EXPLORE_MAX_TARGETS:,} nodes must replace",
    )
    p.add_argument(
        "--classes",
        choices=CLASS_CHOICES,
        default="all",
        help="classes to switch between: all (default), predicted or true",
    )
    p.add_argument(
        "--top-k",
        type=_positive_int,
        default=30,
        help="the most neighbours drawn per node and class (the page's slider); default 30",
    )
    p.add_argument("--out", required=True, help="the page to write (.html)")


@command("explore", "write one offline HTML page exploring every node's NIV", _explore_args)
def _explore(args: argparse.Namespace) -> int:
    from namjax.explainer import explain
    from namjax.methods import METHODS
    from namjax.outputs import check_output_file
    from namjax.views.explorer import explore

    out = Path(args.out)
    check_output_file(out, (".html", ".htm"))
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or len(set(methods)) < len(methods):
        what = f"unknown method {unknown[0]!r}" if unknown else "a method given twice"
        raise OptionError(f"--methods: {what} (choose from {', '.join(METHODS)})")
    graph, model = _load_model_and_graph(args)
    if args.targets is None and graph.num_nodes > EXPLORE_MAX_TARGETS:
        raise OptionError(
            f"{graph.name} has {graph.num_nodes:,} nodes: a page for all of them would be too "
            f"large for a browser (at most {EXPLORE_MAX_TARGETS:,}); choose some with --targets "
            "(test, val, train or node ids)"
        )
    targets = _parse_targets(args.targets or "all", graph)
    if len(targets) > EXPLORE_MAX_TARGETS:
        raise OptionError(
            f"--targets gives {len(targets):,} nodes: at most {EXPLORE_MAX_TARGETS:,} fit on "
            "a page a browser can open; choose fewer"
        )
    found = [explain(model, graph, m, targets, args.classes, progress=True) for m in methods]
    path = explore(found, graph, top_k=args.top_k, out=out, max_nodes=EXPLORE_MAX_TARGETS)
    size, n = path.stat().st_size, len(targets)
    summary = {"out": str(path), "size_bytes": size, "methods": methods, "targets": n}
    emit(
        args,
        summary,
        f"wrote the explorer of {n} node{'s' if n != 1 else ''} of {graph.name} "
        f"({', '.join(methods)}; {size / 1e6:.1f} MB) to {path}",
    )
    return 0


# ---------------------------------------------------------------------------- evaluate
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    from namjax.groundtruth import BENCHMARKS
    from namjax.methods import METHODS

    p.add_argument(
        "--benchmark",
        required=True,
        choices=(*BENCHMARKS, "all"),
        help="the synthetic benchmark, or all four",
    )
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated attribution methods; default all ({', '.join(METHODS)})",
    )
    p.add_argument("--seeds", type=_positive_int, default=5, help="model seeds; default 5")
    p.add_argument(
        "--epochs", type=_positive_int, default=None, help="override the protocol's epochs"
    )
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty directory")
    p.add_argument("--out", required=True, help="directory for results.parquet and index.html")


@command(
    "evaluate",
    "ground-truth evaluation of every method on the synthetic benchmarks",
    _evaluate_args,
)
def _evaluate(args: argparse.Namespace) -> int:
    from namjax.evaluation import EVALUATION_FILES, check_methods, evaluate

    out = _check_out_dir(args, ours=EVALUATION_FILES)
    methods = check_methods([m.strip() for m in args.methods.split(",")])
    result = evaluate(
        args.benchmark, methods, args.seeds, epochs=args.epochs, progress=not args.json
    )
    result.save(out, overwrite=args.overwrite)
    rows = result.summary().to_pylist()
    edge = {
        f"{r['benchmark']} {r['method']} {r['variant']}": r["mean"]
        for r in rows
        if r["metric"] == "edge_auroc" and r["method"] in methods
    }
    runs = result.meta["runs"]
    summary = {"out": str(out), "runs": runs, "edge_auroc": edge}
    passed = sum(r["passed"] for r in runs)
    emit(
        args,
        summary,
        f"evaluated {', '.join(methods)} on {args.benchmark} ({len(runs)} runs, {passed} passed "
        f"the accuracy bar); wrote {out}/results.parquet and index.html",
    )
    return 0


# ---------------------------------------------------------------------------- datasets
def _datasets_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="directory holding the raw Planetoid files (default: $NAMJAX_DATA_DIR, else the "
        "user cache; nothing is downloaded)",
    )


@command(
    "datasets", "list the datasets and their statistics beside the paper's Table 1", _datasets_args
)
def _datasets(args: argparse.Namespace) -> int:
    from namjax.datasets import DATASETS, PAPER_TABLE1, dataset_stats

    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise OptionError(f"--data-dir {args.data_dir} is not a directory")
    cols = ("nodes", "features", "classes", "edges", "train", "val", "test")
    rows = [dataset_stats(name, args.data_dir) for name in DATASETS]
    lines = [f"{'dataset':<16}" + "".join(f"{c:>10}" for c in cols) + "  note"]
    for row in rows:
        cells = "".join(f"{'-' if row[c] is None else row[c]:>10}" for c in cols)
        lines.append(f"{row['name']:<16}{cells}  {row['note']}")
        if row["name"] in PAPER_TABLE1:
            paper = "".join(f"{PAPER_TABLE1[row['name']][c]:>10}" for c in cols)
            lines.append(f"{'  paper Table 1':<16}{paper}")
    lines.append("edges: unique undirected edges, self-loops excluded (the paper counts records)")
    emit(args, {"datasets": rows, "paper": PAPER_TABLE1}, "\n".join(lines))
    return 0


# ---------------------------------------------------------------------------- train
def _train_args(p: argparse.ArgumentParser) -> None:
    from namjax.layers import ACTIVATIONS, KINDS

    _data_args(p)
    p.add_argument("--arch", choices=tuple(KINDS), default="gcn", help="layer kind; default gcn")
    p.add_argument("--seed", type=int, default=0, help="random seed; default 0")
    p.add_argument("--epochs", type=_positive_int, default=200, help="epoch limit; default 200")
    p.add_argument("--hidden", type=_positive_int, default=16, help="hidden size; default 16")
    p.add_argument(
        "--depth",
        type=_positive_int,
        default=2,
        help="K, the number of propagations (layers; for sgc the powers of Â); default 2",
    )
    p.add_argument(
        "--activation",
        choices=tuple(ACTIVATIONS),
        default="relu",
        help="activation between (and, for gin, inside) layers; default relu",
    )
    p.add_argument(
        "--bias",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give each layer a bias (default: off for gcn, as in Kipf & Welling's code; on "
        "for the others, as in PyG)",
    )
    p.add_argument(
        "--patience", type=int, default=10, help="early-stopping window (0: off); default 10"
    )
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty directory")
    p.add_argument("--out", required=True, help="directory to write the trained model to")


@command("train", "train a GNN (Kipf & Welling's setup) and save it", _train_args)
def _train(args: argparse.Namespace) -> int:
    from namjax.io import META_FILE, PARAMS_FILE, save_model
    from namjax.model import GNNConfig
    from namjax.training import train

    if args.patience < 0:
        raise OptionError(f"--patience must be >= 0, got {args.patience}")
    out = _check_out_dir(args, ours={META_FILE, PARAMS_FILE})
    graph = _load_graph(args)
    shape = {"hops": args.depth} if args.arch == "sgc" else {}
    hidden = () if args.arch == "sgc" else (args.hidden,) * (args.depth - 1)
    config = GNNConfig.create(
        args.arch,
        graph.num_features,
        graph.num_classes,
        hidden,
        activation=args.activation,
        bias=args.bias,
        **shape,
    )
    result = train(
        graph, config, seed=args.seed, epochs=args.epochs, patience=args.patience, progress=True
    )
    save_model(result.model, graph, out)
    summary = {
        "dataset": graph.name,
        "out": str(out),
        "seed": args.seed,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 3),
        "train_accuracy": result.train_accuracy,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "config": config.to_dict(),
    }
    emit(
        args,
        summary,
        f"trained {config.arch} (depth {config.depth}) on {graph.name} in {result.epochs} "
        f"epochs ({result.seconds:.1f} s): train {result.train_accuracy:.3f}, "
        f"val {result.val_accuracy:.3f}, test {result.test_accuracy:.3f}; saved to {out}",
    )
    return 0


# ---------------------------------------------------------------------------- import-pyg
def _import_args(p: argparse.ArgumentParser) -> None:
    from namjax.layers import ACTIVATIONS

    p.add_argument(
        "--script",
        required=True,
        help="a Python file that builds (and loads or trains) a PyG model and its data",
    )
    p.add_argument("--model-var", default="model", help="the model's global name; default model")
    p.add_argument("--data-var", default="data", help="the data's global name; default data")
    p.add_argument(
        "--activation",
        choices=tuple(ACTIVATIONS),
        default=None,
        help="the activation between layers when the module tree does not name it (functional "
        "calls); default relu",
    )
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty directory")
    p.add_argument("--out", required=True, help="model directory to write (with its graph)")


@command(
    "import-pyg",
    "import a trained PyG model and its data (from a script) as a namjax model directory",
    _import_args,
)
def _import_pyg(args: argparse.Namespace) -> int:
    import runpy

    from namjax.graphfile import save_graph_file
    from namjax.io import META_FILE, PARAMS_FILE, save_model
    from namjax.pyg import from_pyg

    out = _check_out_dir(args, ours={META_FILE, PARAMS_FILE, GRAPH_FILE})
    script = Path(args.script)
    if not script.is_file():
        raise OptionError(f"--script {script} is not a file")
    # the user's own file, run as a module that is not __main__ (its training entry point, if
    # guarded by `if __name__ == "__main__"`, does not run)
    scope = runpy.run_path(str(script), run_name="__namjax_import__")
    missing = [v for v in (args.model_var, args.data_var) if v not in scope]
    if missing:
        raise OptionError(
            f"{script} defines no global {missing[0]!r} (see --model-var, --data-var)"
        )
    model, graph = from_pyg(
        scope[args.model_var], scope[args.data_var], activation=args.activation, name=script.stem
    )
    out.mkdir(parents=True, exist_ok=True)
    save_graph_file(graph, out / GRAPH_FILE)
    save_model(model, graph, out, dataset=GRAPH_FILE)
    summary = {"out": str(out), "config": model.config.to_dict(), "graph": graph.describe()}
    emit(
        args,
        summary,
        f"imported a {model.config.arch} model (depth {model.config.depth}) and its graph "
        f"({graph.num_nodes} nodes) from {script}; wrote {out}",
    )
    return 0


GRAPH_FILE = "graph.npz"
"""The graph file `namjax import-pyg` keeps in the model directory (the model's dataset)."""


# ---------------------------------------------------------------------------- perturb
def _perturb_args(p: argparse.ArgumentParser) -> None:
    from namjax.engine.sweep import MODES
    from namjax.perturb import RANKINGS

    _model_args(p)
    p.add_argument(
        "--mode",
        choices=MODES,
        default="remove",
        help="remove deleted nodes with their edges and renormalise (default) or zero their "
        "features",
    )
    p.add_argument("--seeds", type=int, default=5, help="random deletion orders; default 5")
    p.add_argument(
        "--rankings",
        default=None,
        help=f"comma-separated rankings (default all: {', '.join(RANKINGS)})",
    )
    p.add_argument(
        "--sparsity",
        type=float,
        default=0.8,
        help="fidelity explanation = top (1 - sparsity) of the neighbours; default 0.8",
    )
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty directory")
    p.add_argument("--out", required=True, help="directory for curves.parquet and deletion.html")


@command(
    "perturb",
    "deletion curves on the test nodes: NAM vs random and baseline rankings",
    _perturb_args,
)
def _perturb(args: argparse.Namespace) -> int:
    from namjax.perturb import RANKINGS, deletion_curves
    from namjax.views.curves import DELETION_FILES, write_deletion

    out = _check_out_dir(args, ours=DELETION_FILES)
    graph, model = _load_model_and_graph(args)
    rankings = tuple(RANKINGS) if args.rankings is None else tuple(args.rankings.split(","))
    result = deletion_curves(
        model, graph, mode=args.mode, seeds=args.seeds, rankings=rankings, sparsity=args.sparsity
    )
    paths = write_deletion(result, out, title=f"Deletion curves on {graph.name} ({args.mode} mode)")
    if "png_skipped" in paths:
        print(paths["png_skipped"], file=sys.stderr)
    summary = {"dataset": graph.name, **result.summary(), **{k: str(v) for k, v in paths.items()}}
    auc = summary["auc"]
    text = (
        f"deletion AUC on {graph.name} ({len(result.targets)} targets, {args.mode}): "
        + ", ".join(f"{name} {value:.3f}" for name, value in auc.items() if name != "random_sd")
    )
    emit(args, summary, f"{text}; wrote {out}")
    return 0


# ---------------------------------------------------------------------------- explain
def _explain_args(p: argparse.ArgumentParser) -> None:
    from namjax.checks import CLASS_CHOICES
    from namjax.explainer import ENGINES

    _model_args(p)
    p.add_argument(
        "--targets",
        default="all",
        help="nodes to explain: all (default), train, val, test, or comma-separated node ids",
    )
    p.add_argument(
        "--classes",
        choices=CLASS_CHOICES,
        default="all",
        help="explain every class (default), each target's predicted class or its true class",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="pairs",
        help="pairs: shared forward mode over (node, source) pairs (default, fastest); "
        "subgraph: per-target reverse mode vmapped over K-hop subgraphs (cross-check)",
    )
    _method_args(p)
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty directory")
    p.add_argument(
        "--out", required=True, help="directory for contributions.parquet and targets.parquet"
    )
    _job_args(p)


# flag -> (method it applies to, option name)
METHOD_FLAGS = {
    "steps": ("integrated_gradients", "n_steps"),
    "rule": ("integrated_gradients", "rule"),
    "nt_samples": ("smoothgrad", "nt_samples"),
    "stdevs": ("smoothgrad", "stdevs"),
    "seed": ("smoothgrad", "seed"),
    "base": ("smoothgrad", "base"),
    "deletion": ("occlusion", "mode"),
}


def _method_args(p: argparse.ArgumentParser) -> None:
    from namjax.engine.sweep import MODES
    from namjax.methods import IG_RULES, METHODS

    g = p.add_argument_group("attribution method", "the method and its options (README, Methods)")
    g.add_argument("--method", choices=tuple(METHODS), default="nam", help="default nam")
    g.add_argument("--steps", type=_positive_int, help="integrated_gradients: steps (50)")
    g.add_argument("--rule", choices=IG_RULES, help="integrated_gradients: rule (gausslegendre)")
    g.add_argument("--nt-samples", type=_positive_int, help="smoothgrad: noisy samples (5)")
    g.add_argument("--stdevs", type=float, help="smoothgrad: noise standard deviation (1.0)")
    g.add_argument("--seed", type=int, help="smoothgrad: noise seed (0)")
    g.add_argument("--base", choices=("saliency", "nam"), help="smoothgrad: base method")
    g.add_argument("--deletion", choices=MODES, help="occlusion: remove (default) or zero")


def _method_options(args: argparse.Namespace) -> dict:
    """The method options given on the command line (one-line errors for a flag of another
    method)."""
    options = {}
    for flag, (method, name) in METHOD_FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if args.method != method:
            raise OptionError(f"--{flag.replace('_', '-')} applies to --method {method} only")
        options[name] = value
    return options


def _job_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "batch job",
        "any of these options runs explain as a chunked job streaming a partitioned Parquet "
        "dataset to --out (targets/ and contributions/ parts; see README, Batch jobs at scale)",
    )
    g.add_argument(
        "--top-k",
        type=_positive_int,
        help="keep the k largest |contributions| per target and class (plus bias and the sum "
        "of the rest)",
    )
    g.add_argument("--chunk-targets", type=_positive_int, help="targets per chunk")
    g.add_argument("--memory-budget", help="size chunks to this estimated peak, e.g. 2GB")
    g.add_argument("--resume", action="store_true", help="continue the job in --out")
    g.add_argument("--coordinator", help="HOST:PORT of process 0 (multi-host, jax.distributed)")
    g.add_argument("--num-processes", type=_positive_int, default=1, help="processes in the job")
    g.add_argument("--process-id", type=int, default=0, help="this process's id, 0..N-1")


def _explain_job(args: argparse.Namespace, model, graph, targets) -> int:
    from namjax import jobs

    budget = None if args.memory_budget is None else jobs.parse_bytes(args.memory_budget)
    result = jobs.run(
        model,
        graph,
        args.out,
        method=args.method,
        options=_method_options(args),
        targets=targets,
        classes=args.classes,
        top_k=args.top_k,
        chunk_targets=args.chunk_targets,
        memory_budget=budget,
        resume=args.resume,
        progress=True,
    )
    summary = {"dataset": graph.name, **result.summary()}
    emit(
        args,
        summary,
        f"explained {result.targets} targets of {graph.name} in {len(result.computed)} chunks "
        f"({len(result.skipped)} already done) in {result.seconds:.1f} s; wrote {args.out}",
    )
    return 0


def _parse_targets(text: str, graph):
    """``all``, ``train``, ``val``, ``test`` or ``ID,ID,...`` -> node ids (one-line errors)."""
    import numpy as np

    if text == "all":
        return np.arange(graph.num_nodes)
    masks = {"train": graph.train_mask, "val": graph.val_mask, "test": graph.test_mask}
    if text in masks:
        if not masks[text].any():
            raise OptionError(f"{graph.name} has no {text} nodes; give --targets all or node ids")
        return np.flatnonzero(masks[text])
    try:
        ids = [int(part) for part in text.split(",")]
    except ValueError:
        raise OptionError(
            f"--targets must be all, train, val, test or comma-separated node ids, got {text!r}"
        ) from None
    return graph.check_nodes(ids, "target")


@command(
    "explain",
    "node attributions (NAM or another method) of every node within K hops of each target",
    _explain_args,
)
def _explain(args: argparse.Namespace) -> int:
    from namjax.attribution import PLAIN_FILES
    from namjax.explainer import explain
    from namjax.methods import make_method

    method = make_method(args.method, **_method_options(args))  # bad options: before the work
    job_flags = (args.top_k, args.chunk_targets, args.memory_budget, args.coordinator)
    as_job = args.resume or any(flag is not None for flag in job_flags)
    if as_job and args.engine != "pairs":
        raise OptionError("batch jobs (--top-k, --chunk-targets, ...) run the pairs engine only")
    if not as_job:
        _check_out_dir(args, ours=PLAIN_FILES)
    if args.coordinator or args.num_processes > 1:  # before any JAX call
        from namjax.jobs import initialize_distributed

        if not args.coordinator:
            raise OptionError("--num-processes > 1 needs --coordinator HOST:PORT")
        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    graph, model = _load_model_and_graph(args)
    targets = _parse_targets(args.targets, graph)
    if as_job:
        return _explain_job(args, model, graph, targets)
    result = explain(model, graph, method, targets, args.classes, engine=args.engine, progress=True)
    out = result.save(args.out, overwrite=args.overwrite)
    stats = result.stats
    summary = {
        "dataset": graph.name,
        "out": str(out),
        "method": result.method,
        "options": result.options,
        "targets": len(result.targets),
        "classes": result.num_slots,
        "pairs": len(result.sources),
        "depth": result.depth,
        **{k: round(v, 4) for k, v in stats.items() if k.endswith("_s")},
    }
    emit(
        args,
        summary,
        f"{result.method}: explained {len(result.targets)} targets of {graph.name} "
        f"({len(result.sources)} "
        f"(target, source) pairs x {result.num_slots} classes) in {stats['total_s']:.2f} s; "
        f"wrote {out}/contributions.parquet and targets.parquet",
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (NamjaxError, OSError) as e:
        print(f"namjax {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"namjax {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
