"""The ``namjax`` command line. Each subcommand only composes library functions.

Every command takes ``--json`` and then prints a one-line JSON summary as its last stdout line.
User errors (unknown dataset, missing files, bad arguments) exit with code 2 and one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
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
