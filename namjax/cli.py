"""The ``namjax`` command line. Each subcommand only composes library functions.

Every command takes ``--json`` and then prints a one-line JSON summary as its last stdout line.
User errors (unknown dataset, missing files, bad arguments) exit with code 2 and one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from namjax.graph import GraphError


class UserError(Exception):
    """An error caused by the user's input; reported as one line, exit code 2."""


USER_ERRORS: tuple[type[BaseException], ...] = (UserError, GraphError, FileNotFoundError)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit 2
        print(f"namjax: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a one-line JSON summary last")


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        default="karate",
        help="dataset name (karate, cora, citeseer, pubmed); default karate",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="directory holding the raw Planetoid files (default: $NAMJAX_DATA_DIR, "
        "else download into the user cache)",
    )


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model directory written by `namjax train`")
    _data_args(p)


def _load_model_and_graph(args: argparse.Namespace):
    """The dataset named by ``--dataset/--data-dir`` and the ``--model`` trained on it."""
    from namjax.datasets import load_dataset
    from namjax.io import load_model

    graph = load_dataset(args.dataset, args.data_dir)
    return graph, load_model(args.model, graph)


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
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_text, configure, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        configure(p)
        p.set_defaults(func=fn)
    return parser


def _niv_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--node", type=int, required=True, help="the target node to explain")
    p.add_argument("--hops", type=int, default=1, help="neighbourhood radius, 1..K; default 1")
    p.add_argument(
        "--class",
        dest="cls",
        type=int,
        default=None,
        help="class whose score is explained; default the node's predicted class",
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
    from namjax.nam import nam
    from namjax.train import predict
    from namjax.views.niv import NIVError, niv, niv_bars, niv_paths, write_figure

    graph, model = _load_model_and_graph(args)
    node = int(graph.check_nodes(args.node, "--node")[0])
    try:
        if args.paths is not None:
            fig = niv_paths(model, graph, node, args.paths, cls=args.cls)
        else:
            result = nam(model, graph, targets=[node], classes="all")
            logits = predict(model, graph)
            if args.bars is not None:
                fig = niv_bars(result, graph, node, args.bars, cls=args.cls, predictions=logits)
            else:
                fig = niv(
                    result,
                    graph,
                    node,
                    args.hops,
                    cls=args.cls,
                    top_k=args.top_k or None,
                    predictions=logits,
                    layout=args.layout,
                )
        out = write_figure(fig, args.out, cdn=args.cdn)
    except NIVError as e:
        raise UserError(str(e)) from None
    summary = {"out": str(out), **fig.layout.meta}
    emit(args, summary, f"wrote {summary['view']} view of node {node} to {out}")
    return 0


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
        raise UserError(f"--data-dir {args.data_dir} is not a directory")
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _train_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--seed", type=int, default=0, help="random seed; default 0")
    p.add_argument("--epochs", type=_positive_int, default=200, help="epoch limit; default 200")
    p.add_argument("--hidden", type=_positive_int, default=16, help="hidden size; default 16")
    p.add_argument(
        "--layers", type=_positive_int, default=2, help="number of GCN layers K (1..4); default 2"
    )
    p.add_argument(
        "--activation", default="relu", help="relu (default), tanh, elu, leaky_relu or identity"
    )
    p.add_argument(
        "--bias", action="store_true", help="give each layer a bias b(l) (Kipf's code has none)"
    )
    p.add_argument(
        "--patience", type=int, default=10, help="early-stopping window (0: off); default 10"
    )
    p.add_argument("--out", required=True, help="directory to write the trained model to")


@command("train", "train a GCN (Kipf & Welling's setup) and save it", _train_args)
def _train(args: argparse.Namespace) -> int:
    from namjax.datasets import load_dataset
    from namjax.io import save_model
    from namjax.model import GCNConfig
    from namjax.train import train

    if args.patience < 0:
        raise UserError(f"--patience must be >= 0, got {args.patience}")
    graph = load_dataset(args.dataset, args.data_dir)
    try:
        config = GCNConfig(
            in_features=graph.num_features,
            num_classes=graph.num_classes,
            hidden=(args.hidden,) * (args.layers - 1),
            activation=args.activation,
            bias=args.bias,
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    result = train(
        graph, config, seed=args.seed, epochs=args.epochs, patience=args.patience, progress=True
    )
    out = save_model(result.model, graph, args.out)
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
        f"trained {config.depth}-layer GCN on {graph.name} in {result.epochs} epochs "
        f"({result.seconds:.1f} s): train {result.train_accuracy:.3f}, "
        f"val {result.val_accuracy:.3f}, test {result.test_accuracy:.3f}; saved to {out}",
    )
    return 0


def _perturb_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument(
        "--mode",
        choices=("remove", "zero"),
        default="remove",
        help="remove deleted nodes with their edges and renormalise (default) or zero their "
        "features",
    )
    p.add_argument("--seeds", type=int, default=5, help="random deletion orders; default 5")
    p.add_argument(
        "--rankings",
        default=None,
        help="comma-separated rankings (default all: nam, nam_reversed, nam_abs, structure, "
        "saliency, occlusion, random)",
    )
    p.add_argument(
        "--sparsity",
        type=float,
        default=0.8,
        help="fidelity explanation = top (1 - sparsity) of the neighbours; default 0.8",
    )
    p.add_argument("--out", required=True, help="directory for curves.parquet and deletion.html")


@command(
    "perturb",
    "deletion curves on the test nodes: NAM vs random and baseline rankings",
    _perturb_args,
)
def _perturb(args: argparse.Namespace) -> int:
    from namjax.perturb import RANKINGS, deletion_curves
    from namjax.views.curves import write_deletion

    graph, model = _load_model_and_graph(args)
    rankings = tuple(RANKINGS) if args.rankings is None else tuple(args.rankings.split(","))
    result = deletion_curves(
        model, graph, mode=args.mode, seeds=args.seeds, rankings=rankings, sparsity=args.sparsity
    )
    paths = write_deletion(
        result, args.out, title=f"Deletion curves on {graph.name} ({args.mode} mode)"
    )
    if "png_skipped" in paths:
        print(paths["png_skipped"], file=sys.stderr)
    summary = {"dataset": graph.name, **result.summary(), **{k: str(v) for k, v in paths.items()}}
    auc = summary["auc"]
    text = (
        f"deletion AUC on {graph.name} ({len(result.targets)} targets, {args.mode}): "
        + ", ".join(f"{name} {value:.3f}" for name, value in auc.items() if name != "random_sd")
    )
    emit(args, summary, f"{text}; wrote {args.out}")
    return 0


def _explain_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument(
        "--targets",
        default="all",
        help="nodes to explain: all (default), test, or comma-separated node ids",
    )
    p.add_argument(
        "--classes",
        choices=("all", "predicted"),
        default="all",
        help="explain every class (default) or only each target's predicted class",
    )
    p.add_argument(
        "--engine",
        choices=("pairs", "subgraph"),
        default="pairs",
        help="pairs: shared forward mode over (node, source) pairs (default, fastest); "
        "subgraph: per-target reverse mode vmapped over K-hop subgraphs (cross-check)",
    )
    p.add_argument(
        "--out", required=True, help="directory for contributions.parquet and targets.parquet"
    )
    _job_args(p)


def _job_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "batch job",
        "any of these options runs explain as a chunked job streaming a partitioned Parquet "
        "dataset to --out (targets/ and contributions/ parts; see README, Batch jobs at scale)",
    )
    g.add_argument(
        "--topk",
        type=_positive_int,
        help="keep the k largest |contributions| per "
        "target and class (plus bias and the sum of the rest)",
    )
    g.add_argument("--chunk-targets", type=_positive_int, help="targets per chunk")
    g.add_argument("--memory-budget", help="size chunks to this estimated peak, e.g. 2GB")
    g.add_argument("--resume", action="store_true", help="continue the job in --out")
    g.add_argument("--coordinator", help="HOST:PORT of process 0 (multi-host, jax.distributed)")
    g.add_argument("--num-processes", type=_positive_int, default=1, help="processes in the job")
    g.add_argument("--process-id", type=int, default=0, help="this process's id, 0..N-1")


def _explain_job(args: argparse.Namespace, model, graph, targets) -> int:
    from namjax import jobs

    try:
        budget = None if args.memory_budget is None else jobs.parse_bytes(args.memory_budget)
        result = jobs.run(
            model,
            graph,
            args.out,
            targets=targets,
            classes=args.classes,
            topk=args.topk,
            chunk_targets=args.chunk_targets,
            memory_budget=budget,
            resume=args.resume,
            progress=True,
        )
    except jobs.JobError as e:
        raise UserError(str(e)) from None
    summary = {"dataset": graph.name, **result.summary()}
    emit(
        args,
        summary,
        f"explained {result.targets} targets of {graph.name} in {len(result.computed)} chunks "
        f"({len(result.skipped)} already done) in {result.seconds:.1f} s; wrote {args.out}",
    )
    return 0


def _parse_targets(text: str, graph):
    """``all``, ``test`` or ``ID,ID,...`` -> node ids (one-line errors)."""
    import numpy as np

    if text == "all":
        return np.arange(graph.num_nodes)
    if text == "test":
        if not graph.test_mask.any():
            raise UserError(f"{graph.name} has no test nodes; give --targets all or node ids")
        return np.flatnonzero(graph.test_mask)
    try:
        ids = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(
            f"--targets must be all, test or comma-separated node ids, got {text!r}"
        ) from None
    return graph.check_nodes(ids, "target")


@command(
    "explain",
    "NAM contributions of every node within K hops of each target, for all or predicted classes",
    _explain_args,
)
def _explain(args: argparse.Namespace) -> int:
    from namjax.nam import nam

    if args.coordinator or args.num_processes > 1:  # before any JAX call
        from namjax.jobs import JobError, initialize_distributed

        if not args.coordinator:
            raise UserError("--num-processes > 1 needs --coordinator HOST:PORT")
        try:
            initialize_distributed(args.coordinator, args.num_processes, args.process_id)
        except JobError as e:
            raise UserError(str(e)) from None
    graph, model = _load_model_and_graph(args)
    targets = _parse_targets(args.targets, graph)
    job_flags = (args.topk, args.chunk_targets, args.memory_budget, args.coordinator)
    if args.resume or any(flag is not None for flag in job_flags):
        if args.engine != "pairs":
            raise UserError("batch jobs (--topk, --chunk-targets, ...) run the pairs engine only")
        return _explain_job(args, model, graph, targets)
    result = nam(model, graph, targets, args.classes, engine=args.engine, progress=True)
    out = result.save(args.out)
    stats = result.stats
    summary = {
        "dataset": graph.name,
        "out": str(out),
        "targets": len(result.targets),
        "classes": result.num_slots,
        "pairs": len(result.sources),
        "depth": result.depth,
        **{k: round(v, 4) for k, v in stats.items() if k.endswith("_s")},
    }
    emit(
        args,
        summary,
        f"explained {len(result.targets)} targets of {graph.name} ({len(result.sources)} "
        f"(target, source) pairs x {result.num_slots} classes) in {stats['total_s']:.2f} s; "
        f"wrote {out}/contributions.parquet and targets.parquet",
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        print(f"namjax {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"namjax {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
