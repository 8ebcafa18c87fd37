"""Output paths: checks made before any work, and atomic writes.

Every command that writes checks its output path first (:func:`check_output_dir`,
:func:`check_output_file`), so a bad ``--out`` costs one line and no computation; files are
written under a hidden temporary name beside their destination and renamed into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from namjax.errors import OutputError


def write_table(
    path: Path, table: pa.Table, compression: str = "zstd", dictionary: bool | list[str] = True
) -> None:
    """Write ``table`` as Parquet to a hidden temporary file beside ``path``, then rename it
    into place; ``dictionary`` names the columns to dictionary-encode (all by default)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression=compression, use_dictionary=dictionary)
    os.replace(tmp, path)


def check_output_dir(path: Path, *, overwrite: bool = False, ours=frozenset()) -> None:
    """``path`` can become (or already is) an output directory: not a file, its nearest
    existing parent a writable directory, and, unless ``overwrite``, holding no files but
    ``ours``. Raises :class:`~namjax.errors.OutputError` before any work."""
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"{path} exists and is not a directory")
        others = sorted(p.name for p in path.iterdir() if p.name not in ours)
        if others and not overwrite:
            raise OutputError(
                f"{path} holds other files ({others[0]}{', ...' if len(others) > 1 else ''}); "
                "choose an empty or new directory, or pass --overwrite"
            )
        if not os.access(path, os.W_OK):
            raise OutputError(f"{path} is not writable")
        return
    _check_parent(path, "create")


def check_output_file(path: Path, suffixes: tuple[str, ...] = ()) -> None:
    """``path`` can be written as a file: (when ``suffixes`` are given) it ends in one of them,
    it is not a directory, and its nearest existing parent is a writable directory (missing
    parents are created when writing)."""
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(f"cannot write {path.name}: use {', '.join(suffixes)}")
    if path.is_dir():
        raise OutputError(f"{path} is a directory, not a file")
    _check_parent(path, "write")


def _check_parent(path: Path, verb: str) -> None:
    """The nearest existing parent of ``path`` is a writable directory (the missing ones are
    created when writing)."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot {verb} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot {verb} {path}: {parent} is not writable")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a hidden temporary file beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
