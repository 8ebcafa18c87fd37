"""Graph files: a user's own graph as an ``.npz`` archive or a Parquet directory, and the
``--dataset`` values of the command line.

``.npz`` (``numpy.savez``; read with ``allow_pickle=False``, so object arrays are refused):

* ``edge_index`` ``(2, E)`` integers, row 0 = source (PyG convention); required.
* ``edge_weight`` ``(E,)`` numbers >= 0; default 1.
* features: dense ``x`` ``(N, F)`` numbers, or CSR parts ``x_data`` ``(nnz,)`` numbers,
  ``x_indices`` ``(nnz,)`` integers, ``x_indptr`` ``(N + 1,)`` integers, ``x_shape`` ``(2,)``
  integers (as ``scipy.sparse.csr_matrix``); not both; default one-hot node ids.
* ``y`` ``(N,)`` integers, ``-1`` = unknown; ``train_mask``, ``val_mask``, ``test_mask``:
  booleans ``(N,)`` or node ids ``(k,)``.
* ``num_nodes``, ``num_classes``: integer scalars; ``N`` defaults to the rows of the features,
  else the length of ``y``, else ``max(edge_index) + 1``.
* ``node_names`` ``(N,)``, ``class_names`` ``(C,)``: numpy str arrays.

Parquet: a directory (or its ``edges.parquet``) holding

* ``edges.parquet``: integer columns ``source``, ``target``; optional numeric ``weight``;
* ``nodes.parquet`` (optional; without it ``N = max id + 1``, no labels): one row per node,
  row ``i`` = node ``i``, or in any order with an integer column ``node`` listing each id
  ``0..N-1`` once; optional ``label`` (integers, or strings numbered in sorted order, which become
  the class names; null = unknown), ``split`` (``train``/``val``/``test``/``none``, null = none),
  ``name`` (strings), ``features`` (a list or fixed-size-list column of numbers, one length for
  every row).

Any other key or column is refused. The graph is built by :meth:`Graph.from_edge_index` (so
directed input is symmetrised, duplicates merged, self-loops dropped, each with a warning) and
named after the file's stem (the directory's name for Parquet). Every problem with a file raises
one :class:`DatasetError` whose one-line message begins with the file's path.
"""

from __future__ import annotations

import os
import re
import secrets
import zipfile
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from namjax.errors import DatasetError, GraphError, OptionError, OutputError
from namjax.graph import Graph

_INT, _NUM, _MASK, _STR = "iu", "biuf", "biu", "U"
#: key -> (allowed numpy dtype kinds, number of dimensions)
NPZ_KEYS: dict[str, tuple[str, int]] = {
    "edge_index": (_INT, 2),
    "edge_weight": (_NUM, 1),
    "x": (_NUM, 2),
    "x_data": (_NUM, 1),
    "x_indices": (_INT, 1),
    "x_indptr": (_INT, 1),
    "x_shape": (_INT, 1),
    "y": (_INT, 1),
    "train_mask": (_MASK, 1),
    "val_mask": (_MASK, 1),
    "test_mask": (_MASK, 1),
    "num_nodes": (_INT, 0),
    "num_classes": (_INT, 0),
    "node_names": (_STR, 1),
    "class_names": (_STR, 1),
}
CSR_KEYS = ("x_data", "x_indices", "x_indptr", "x_shape")
EDGE_COLUMNS = ("source", "target", "weight")
NODE_COLUMNS = ("node", "label", "split", "name", "features")
SPLITS = ("train", "val", "test", "none")
DATASETS = ("karate", "cora", "citeseer", "pubmed")
_KINDS = {"b": "booleans", "i": "integers", "u": "integers", "f": "floats", "U": "strings"}


# ---------------------------------------------------------------------- public API
def load_graph_file(path: str | Path) -> Graph:
    """Read a graph from an ``.npz`` file or a Parquet directory (see the module docstring).

    Raises :class:`DatasetError` naming the file and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or directory")
    if path.is_dir() or path.suffix == ".parquet":
        directory = path if path.is_dir() else path.parent
        if path.suffix == ".parquet" and path.name != "edges.parquet":
            raise DatasetError(f"{path}: a Parquet graph is a directory holding edges.parquet")
        return _load_parquet(directory)
    if path.suffix != ".npz":
        raise DatasetError(
            f"{path}: unknown graph file type (expected a .npz file or a directory holding "
            "edges.parquet)"
        )
    return _load_npz(path)


def save_graph_file(graph: Graph, path: str | Path) -> Path:
    """Write ``graph`` as an ``.npz`` graph file, atomically (a temporary file in the same
    directory, then renamed over ``path``). Returns the path; an existing file is replaced.

    ``load_graph_file(save_graph_file(g, p))`` has ``g``'s fingerprint, masks, names and classes.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise OutputError(f"{path}: graph files are written as .npz; give a path ending in .npz")
    if path.is_dir():
        raise OutputError(f"{path} is a directory")
    arrays = _npz_arrays(graph)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never clobber; mode 0o666 lets the umask decide permissions, as for open()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write the graph file ({e.strerror or e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def parse_graph_spec(text: str) -> tuple[str, dict[str, Any]]:
    """Parse a ``--dataset`` value into ``(kind, params)``.

    * ``karate``, ``cora``, ``citeseer``, ``pubmed`` (any case): ``("dataset", {"name": ...})``;
    * ``synthetic:N[:seed]``, ``N`` like ``5000``, ``100k``, ``2.5k``, ``1M``, seed default 0:
      ``("synthetic", {"num_nodes": N, "seed": seed})``;
    * a path ending in ``.npz`` or ``.parquet``, holding a path separator, or naming an existing
      directory: ``("file", {"path": Path})``. A dataset name wins over a directory of that name.

    Anything else raises :class:`OptionError` listing the choices.
    """
    spec = str(text).strip()
    key = spec.lower()
    if key in DATASETS:
        return "dataset", {"name": key}
    if key == "synthetic" or key.startswith("synthetic:"):
        fields = spec.split(":")[1:]
        if not fields or not fields[0]:
            raise OptionError(
                f"dataset {spec!r}: give the node count, synthetic:N[:seed] (e.g. synthetic:100k)"
            )
        if len(fields) > 2:
            raise OptionError(f"dataset {spec!r}: expected synthetic:N[:seed]")
        seed = fields[1] if len(fields) == 2 else "0"
        if not re.fullmatch(r"\d+", seed):
            raise OptionError(
                f"dataset {spec!r}: seed must be a non-negative integer, got {seed!r}"
            )
        return "synthetic", {"num_nodes": _parse_count(fields[0], spec), "seed": int(seed)}
    path = Path(spec)
    if spec and (
        path.suffix in (".npz", ".parquet") or "/" in spec or os.sep in spec or path.is_dir()
    ):
        return "file", {"path": path}
    raise OptionError(
        f"unknown dataset {spec!r}; use {', '.join(DATASETS)}, synthetic:N[:seed] or a graph "
        "file (.npz, or a directory holding edges.parquet)"
    )


def graph_from_spec(spec: str, data_dir: str | Path | None = None) -> Graph:
    """The graph a ``--dataset`` value names (see :func:`parse_graph_spec`).

    Named datasets come from :func:`namjax.load_dataset` (``data_dir`` as there), synthetic ones
    from :func:`namjax.synthetic.citation_graph`, files from :func:`load_graph_file`.
    """
    import namjax
    from namjax.synthetic import citation_graph

    kind, params = parse_graph_spec(spec)
    if kind == "dataset":
        return namjax.load_dataset(params["name"], data_dir)
    if kind == "file":
        return load_graph_file(params["path"])
    try:
        return citation_graph(params["num_nodes"], seed=params["seed"])
    except GraphError as e:
        raise OptionError(f"dataset {spec!r}: {e}") from None


# ---------------------------------------------------------------------- shared
def _build(source: Path, edge_index: np.ndarray, num_nodes: int | None, **kwargs) -> Graph:
    """:meth:`Graph.from_edge_index`, its errors re-raised naming ``source``."""
    try:
        return Graph.from_edge_index(edge_index, num_nodes, **kwargs)
    except GraphError as e:
        raise DatasetError(f"{source}: {e}") from None


def _parse_count(text: str, spec: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text)
    value = Decimal(m[1]) * {"": 1, "k": 10**3, "m": 10**6}[m[2].lower()] if m else Decimal(0)
    if value < 1 or value % 1:
        raise OptionError(
            f"dataset {spec!r}: N must be a positive whole number such as 5000, 100k or 1M, "
            f"got {text!r}"
        )
    return int(value)


# ---------------------------------------------------------------------- .npz
def _load_npz(path: Path) -> Graph:
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path}: not an .npz archive (numpy.savez writes a zip of arrays)")
    try:
        with np.load(path, allow_pickle=False) as z:
            unknown = sorted(set(z.files) - set(NPZ_KEYS))
            if unknown:
                raise DatasetError(
                    f"{path}: unknown key {unknown[0]!r} (known: {', '.join(NPZ_KEYS)})"
                )
            arrays = {key: _npz_array(z, key, path) for key in z.files}
    except (OSError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{path}: cannot read the archive ({e})") from None
    if "edge_index" not in arrays:
        raise DatasetError(f"{path}: missing the required key 'edge_index' (2, E)")
    features = _npz_features(arrays, path)
    if "num_nodes" in arrays:
        num_nodes = int(arrays["num_nodes"])
    elif features is not None:
        num_nodes = features.shape[0]
    else:
        num_nodes = len(arrays["y"]) if "y" in arrays else None
    return _build(
        path,
        arrays["edge_index"],
        num_nodes,
        edge_weight=arrays.get("edge_weight"),
        features=features,
        labels=arrays.get("y"),
        train_mask=arrays.get("train_mask"),
        val_mask=arrays.get("val_mask"),
        test_mask=arrays.get("test_mask"),
        node_names=arrays.get("node_names"),
        class_names=arrays.get("class_names"),
        num_classes=int(arrays["num_classes"]) if "num_classes" in arrays else None,
        name=path.stem,
    )


def _npz_array(z, key: str, path: Path) -> np.ndarray:
    """One member, its dtype kind and number of dimensions checked against ``NPZ_KEYS``."""
    try:
        arr = z[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DatasetError(f"{path}: cannot read {key!r}: {e}") from None
    kinds, ndim = NPZ_KEYS[key]
    if arr.ndim != ndim:
        raise DatasetError(f"{path}: {key!r} must be {ndim}-D, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in kinds:
        want = " or ".join(dict.fromkeys(_KINDS[k] for k in kinds))
        raise DatasetError(f"{path}: {key!r} must hold {want}, got dtype {arr.dtype}")
    return arr


def _npz_features(arrays: dict[str, np.ndarray], path: Path) -> np.ndarray | sp.csr_matrix | None:
    parts = [k for k in CSR_KEYS if k in arrays]
    if "x" in arrays and parts:
        raise DatasetError(
            f"{path}: holds both dense 'x' and CSR features ({parts[0]!r}); keep one"
        )
    if "x" in arrays or not parts:
        return arrays.get("x")
    missing = [k for k in CSR_KEYS if k not in arrays]
    if missing:
        raise DatasetError(
            f"{path}: CSR features need {', '.join(CSR_KEYS)}; {missing[0]!r} missing"
        )
    data, indices, indptr, shape = (arrays[k] for k in CSR_KEYS)
    if shape.shape != (2,) or (shape < 0).any():
        raise DatasetError(f"{path}: 'x_shape' must be (rows, columns), got {shape.tolist()}")
    rows, cols = (int(s) for s in shape)
    if len(indptr) != rows + 1:
        raise DatasetError(f"{path}: 'x_indptr' has {len(indptr)} entries, expected {rows + 1}")
    if len(indices) != len(data):
        raise DatasetError(f"{path}: 'x_indices' has {len(indices)} entries, 'x_data' {len(data)}")
    if indptr[0] != 0 or indptr[-1] != len(data) or (np.diff(indptr) < 0).any():
        raise DatasetError(f"{path}: 'x_indptr' must rise from 0 to {len(data)} (len(x_data))")
    if indices.size and (indices.min() < 0 or indices.max() >= cols):
        bad = int(indices.min() if indices.min() < 0 else indices.max())
        raise DatasetError(f"{path}: 'x_indices' holds column {bad}, outside 0..{cols - 1}")
    return sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(rows, cols))


def _npz_arrays(graph: Graph) -> dict[str, np.ndarray]:
    """The ``.npz`` members of ``graph``: every directed entry of the symmetric adjacency."""
    a = graph.adjacency.tocoo()
    out = {
        "edge_index": np.stack([a.row, a.col]).astype(np.int64),
        "edge_weight": a.data.astype(np.float32),
        "num_nodes": np.int64(graph.num_nodes),
        "num_classes": np.int64(graph.num_classes),
        "y": graph.labels.astype(np.int32),
        "train_mask": graph.train_mask,
        "val_mask": graph.val_mask,
        "test_mask": graph.test_mask,
    }
    x = graph.features
    if sp.issparse(x):
        x = sp.csr_matrix(x)
        out |= dict(
            zip(CSR_KEYS, (x.data, x.indices, x.indptr, np.asarray(x.shape, np.int64)), strict=True)
        )
    else:
        out["x"] = np.asarray(x)
    for key in ("node_names", "class_names"):
        if getattr(graph, key) is not None:
            out[key] = np.asarray(getattr(graph, key), dtype=str)
    return out


# ---------------------------------------------------------------------- Parquet
def _load_parquet(directory: Path) -> Graph:
    edge_file, node_file = directory / "edges.parquet", directory / "nodes.parquet"
    edges = _read_table(edge_file, EDGE_COLUMNS, required=("source", "target"))
    edge_index = np.stack(
        [_numbers(edges.column(c), c, edge_file, integer=True) for c in ("source", "target")]
    )
    weight = edges.column("weight") if "weight" in edges.column_names else None
    weight = None if weight is None else _numbers(weight, "weight", edge_file)
    kwargs: dict[str, Any] = {}
    num_nodes = None
    if node_file.is_file():
        nodes = _read_table(node_file, NODE_COLUMNS, required=())
        num_nodes = nodes.num_rows
        if "node" in nodes.column_names:
            nodes = nodes.take(np.argsort(_node_ids(nodes, node_file)))
        kwargs = _node_columns(nodes, node_file)
        bad = edge_index[(edge_index < 0) | (edge_index >= num_nodes)]
        if bad.size:
            raise DatasetError(
                f"{edge_file}: node id {int(bad[0])} is outside 0..{num_nodes - 1} "
                f"(nodes.parquet has {num_nodes} rows)"
            )
    return _build(
        directory, edge_index, num_nodes, edge_weight=weight, name=directory.name, **kwargs
    )


def _read_table(file: Path, allowed: tuple[str, ...], required: tuple[str, ...]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not file.is_file():
        raise DatasetError(f"{file}: no such file")
    try:
        table = pq.read_table(file)
    except (pa.ArrowException, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DatasetError(f"{file}: not a readable Parquet file ({reason})") from None
    names = table.column_names
    if len(set(names)) != len(names):
        raise DatasetError(f"{file}: a column name appears twice")
    for col in names:
        if col not in allowed:
            raise DatasetError(f"{file}: unknown column {col!r} (known: {', '.join(allowed)})")
    for col in required:
        if col not in names:
            raise DatasetError(f"{file}: missing the required column {col!r}")
    return table


def _numbers(col, name: str, file: Path, *, integer: bool = False, fill=None) -> np.ndarray:
    """A column of integers (or, unless ``integer``, floats) as numpy; nulls become ``fill``,
    or are refused when it is None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ok = pa.types.is_integer(col.type) or (not integer and pa.types.is_floating(col.type))
    if not ok:
        want = "integers" if integer else "numbers"
        raise DatasetError(f"{file}: column {name!r} must hold {want}, got {col.type}")
    if col.null_count and fill is None:
        raise DatasetError(f"{file}: column {name!r} has {col.null_count} missing values")
    if col.null_count:
        col = pc.fill_null(col.cast(pa.int64()) if integer else col, fill)
    return col.to_numpy()


def _node_ids(nodes, file: Path) -> np.ndarray:
    """The ``node`` column, checked to list each id ``0..N-1`` once."""
    ids = _numbers(nodes.column("node"), "node", file, integer=True).astype(np.int64)
    n = len(ids)
    outside = ids[(ids < 0) | (ids >= n)]
    if outside.size:
        raise DatasetError(f"{file}: node id {int(outside[0])} is outside 0..{n - 1}")
    s = np.sort(ids)
    repeated = s[1:][s[1:] == s[:-1]]
    if repeated.size:
        raise DatasetError(f"{file}: node id {int(repeated[0])} appears more than once")
    return ids


def _node_columns(nodes, file: Path) -> dict[str, Any]:
    """``from_edge_index`` keyword arguments from the ``label``, ``split``, ``name`` and
    ``features`` columns of ``nodes`` (rows in node-id order)."""
    import pyarrow.compute as pc

    out: dict[str, Any] = {}
    names = nodes.column_names
    if "label" in names:
        col = nodes.column("label")
        if _is_text(col.type):
            text, known = _text(col), pc.is_valid(col).to_numpy(zero_copy_only=False)
            classes = np.unique(text[known])
            out["labels"] = np.where(known, np.searchsorted(classes, text), -1)
            out["class_names"] = classes.tolist()
        else:
            out["labels"] = _numbers(col, "label", file, integer=True, fill=-1)
    if "split" in names:
        col = _text_column(nodes, "split", file)
        split = _text(pc.fill_null(col, "none"))
        bad = split[~np.isin(split, SPLITS)]
        if bad.size:
            raise DatasetError(
                f"{file}: unknown split {str(bad[0])!r} (use {', '.join(SPLITS)} or null)"
            )
        out |= {f"{s}_mask": split == s for s in SPLITS[:3]}
    if "name" in names:
        col = _text_column(nodes, "name", file)
        if col.null_count:
            raise DatasetError(f"{file}: column 'name' has {col.null_count} missing values")
        out["node_names"] = _text(col).tolist()
    if "features" in names:
        out["features"] = _feature_column(nodes.column("features"), file)
    return out


def _is_text(t) -> bool:
    import pyarrow as pa

    t = t.value_type if pa.types.is_dictionary(t) else t
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _text_column(table, name: str, file: Path):
    col = table.column(name)
    if not _is_text(col.type):
        raise DatasetError(f"{file}: column {name!r} must hold strings, got {col.type}")
    return col


def _text(col) -> np.ndarray:
    """A string column as a numpy str array, nulls as ``""``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = pc.fill_null(col.cast(pa.string()), "")
    return col.to_numpy(zero_copy_only=False).astype(str)


def _feature_column(col, file: Path) -> np.ndarray:
    """A list column of numbers, one length ``F`` per row, as an ``(N, F)`` float32 array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if not is_list or not (pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)):
        raise DatasetError(f"{file}: column 'features' must be a list of numbers, got {t}")
    if col.null_count:
        raise DatasetError(f"{file}: column 'features' has {col.null_count} missing rows")
    lengths = pc.list_value_length(col).to_numpy()
    if lengths.size and (lengths != lengths[0]).any():
        raise DatasetError(
            f"{file}: 'features' rows have different lengths ({lengths.min()} to {lengths.max()})"
        )
    values = pc.list_flatten(col)
    if values.null_count:
        raise DatasetError(f"{file}: column 'features' holds {values.null_count} missing values")
    width = int(lengths[0]) if lengths.size else 0
    return values.to_numpy().astype(np.float32).reshape(len(lengths), width)
