"""The one error root of namjax and its kinds.

Every error namjax raises for bad input is a :class:`NamjaxError` (a ``ValueError``) whose
message names the problem in one line; the command line catches the root once and exits with
code 2. The subclasses say where the problem lies.
"""

from __future__ import annotations


class NamjaxError(ValueError):
    """Root of every namjax error; the message names the problem in one line."""


class GraphError(NamjaxError):
    """Malformed graph input, or node ids that are not in the graph."""


class DatasetError(NamjaxError):
    """A dataset or graph file that cannot be found, fetched or read."""


class ModelError(NamjaxError):
    """A model that cannot be built, loaded, imported or used on the given graph."""


class OptionError(NamjaxError):
    """An option value outside its choices or range (engine, classes, method, top-k, ...)."""


class AttributionError(NamjaxError):
    """A lookup an attribution cannot answer, or an attribution used with another model or
    graph than the one it was made with."""


class JobError(NamjaxError):
    """A batch job that cannot run as asked (parameters, or an output directory holding
    another job)."""


class ViewError(NamjaxError):
    """A figure or page that cannot be drawn or written."""


class OutputError(NamjaxError):
    """An output path that cannot be written (an existing file, an unwritable or non-directory
    parent, a directory holding other files)."""
