"""Jitted device functions with a trace counter and a compile cache.

A :class:`Kernel` wraps one pure function: calling it runs the jitted function, and
:meth:`Kernel.compiled` gives the ahead-of-time compiled executable for the shapes and dtypes
of its arguments, compiled once per process and backend, with the seconds spent compiling.
``Kernel.traces`` counts how often the function was traced, so tests can assert that a warm
call traces (and compiles) nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax


def signature(*trees) -> tuple:
    """What a compiled function is specialised to: the tree structure and every leaf's shape
    and dtype."""
    leaves, treedef = jax.tree.flatten(trees)
    return (str(treedef), tuple((tuple(x.shape), str(x.dtype)) for x in leaves))


class Kernel:
    """``fn`` under ``jax.jit`` (``static_argnames`` as there), counted and cached."""

    def __init__(self, fn: Callable, static_argnames: tuple[str, ...] = ()):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")
        self.__doc__ = fn.__doc__
        self.traces = 0
        self._jit = jax.jit(self._traced, static_argnames=static_argnames)
        self._cache: dict = {}

    def _traced(self, *args, **kwargs):
        self.traces += 1
        return self.fn(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self._jit(*args, **kwargs)

    def compiled(self, *args, **static) -> tuple[Callable, float]:
        """The executable for ``args`` (and the static keyword arguments) and the seconds spent
        compiling it now (0.0 when it was compiled before)."""
        key = (tuple(sorted(static.items())), jax.default_backend(), signature(*args))
        if key in self._cache:
            return self._cache[key], 0.0
        t0 = time.perf_counter()
        self._cache[key] = self._jit.lower(*args, **static).compile()
        return self._cache[key], time.perf_counter() - t0
