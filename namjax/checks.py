"""Validation shared by every verb: feature width, targets, class choices, top-k.

Each check raises one namjax error with a one-line message, before any work is done.
"""

from __future__ import annotations

import numpy as np

from namjax.errors import GraphError, ModelError, OptionError
from namjax.graph import Graph

CLASS_CHOICES = ("all", "predicted", "true")
"""The class choices besides a class id: every class, each target's predicted or true class."""


def check_features(model, graph: Graph) -> None:
    """The model (or its config) takes the graph's feature width."""
    expected = getattr(model, "config", model).in_features
    if expected != graph.num_features:
        raise ModelError(
            f"the model expects {expected} features per node but "
            f"{graph.name} has {graph.num_features}"
        )


def check_targets(graph: Graph, targets) -> np.ndarray:
    """``(T,)`` int64 target ids: default every node; unique, in range, at least one."""
    if targets is None:
        return np.arange(graph.num_nodes, dtype=np.int64)
    targets = graph.check_nodes(targets, "target")
    if targets.size == 0:
        raise GraphError("no targets given")
    uniq, counts = np.unique(targets, return_counts=True)
    if (counts > 1).any():
        raise GraphError(f"target {uniq[counts > 1][0]} is listed more than once")
    return targets


def check_classes(classes, num_classes: int) -> str | int:
    """A class choice: ``"all"``, ``"predicted"``, ``"true"`` or a class id in range."""
    if isinstance(classes, str) and classes in CLASS_CHOICES:
        return classes
    if isinstance(classes, int | np.integer) and not isinstance(classes, bool):
        if 0 <= classes < num_classes:
            return int(classes)
        raise OptionError(
            f"class {classes} is out of range: the model has classes 0..{num_classes - 1}"
        )
    raise OptionError(
        f"classes must be {', '.join(repr(c) for c in CLASS_CHOICES)} or a class id, "
        f"got {classes!r}"
    )


def check_top_k(top_k: int | None) -> int | None:
    """``None`` (keep everything) or a positive count."""
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1):
        raise OptionError(f"top_k must be a positive integer or None, got {top_k!r}")
    return None if top_k is None else int(top_k)


def check_choice(name: str, value, choices) -> None:
    """``value`` is one of ``choices`` (an option called ``name`` in the message)."""
    if value not in choices:
        raise OptionError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
