"""Datasets: the embedded karate club and the Planetoid citation graphs (Cora, Citeseer, Pubmed).

Planetoid files are read from a local directory (argument or ``$NAMJAX_DATA_DIR``) or downloaded
from ``$NAMJAX_PLANETOID_URL`` (default: the public Planetoid repository) into a user cache
(``$NAMJAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/namjax``, else ``~/.cache/namjax``). Downloads
are checked against embedded sha256 sums and land in the cache only once verified.

The raw files are Python 2 pickles. They are read through an allowlisting unpickler that
resolves only the few numpy / scipy / builtin classes they contain, so a crafted file cannot run
code. Node ordering, features, labels and the standard split follow the reference loaders
(Kipf's ``gcn/utils.py``, PyG's ``read_planetoid_data``), so node ids are the usual ones.
"""

from __future__ import annotations

import codecs
import hashlib
import http.client
import os
import pickle
import tempfile
import urllib.request
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from namjax.errors import DatasetError
from namjax.graph import Graph

DATASETS = ("karate", "cora", "citeseer", "pubmed")
PLANETOID = ("cora", "citeseer", "pubmed")
DEFAULT_URL = "https://github.com/kimiyoung/planetoid/raw/master/data/"

#: sha256 of every raw file, computed from the public files. ``ind.pubmed.allx`` is unknown here
#: (no copy was available when this table was made): it is accepted after a length check and
#: the shape checks in :func:`load_dataset`, with a warning.
SHA256: dict[str, str | None] = {
    "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
    "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    "ind.citeseer.x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
    "ind.citeseer.y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
    "ind.citeseer.tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
    "ind.citeseer.ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
    "ind.citeseer.allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
    "ind.citeseer.ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
    "ind.citeseer.graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
    "ind.citeseer.test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
    "ind.pubmed.x": "fbe9cb5c47200d1b7769a26e579be3b7130b556831f9d850e77c4c74f2599b33",
    "ind.pubmed.y": "e6c807633307a07ed659249006536a147c7999c797f11a2560752990181b41b3",
    "ind.pubmed.tx": "4eb5f5d0f30f26497eb0ac6ac9719d09c67e284f1ed0385c93f3ef27a671da3d",
    "ind.pubmed.ty": "ee2e0d4819d9fbcc403689c3bf2e49face401b605932f093bc58ab6461130fdd",
    "ind.pubmed.allx": None,
    "ind.pubmed.ally": "0c37bbe3b5014ec365e9d393cf4791925e5ed94fb194305d74f064a8d7b50f0e",
    "ind.pubmed.graph": "5b89f0036ca22909471f1e6558eb42fa06e0c730a577bde5b058b40638f81dc9",
    "ind.pubmed.test.index": "b101d421688bbaecbd82e8a18f1e282378d6830f3a37666f28ebc47f844341b5",
}

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "cora": (
        "Case_Based",
        "Genetic_Algorithms",
        "Neural_Networks",
        "Probabilistic_Methods",
        "Reinforcement_Learning",
        "Rule_Learning",
        "Theory",
    ),
    "citeseer": ("Agents", "AI", "DB", "IR", "ML", "HCI"),
    "pubmed": (
        "Diabetes Mellitus Experimental",
        "Diabetes Mellitus Type 1",
        "Diabetes Mellitus Type 2",
    ),
}

#: Table 1 of the paper (edges there count raw citation records; see the README).
PAPER_TABLE1: dict[str, dict[str, int]] = {
    "cora": dict(nodes=2708, features=1433, classes=7, edges=5429, train=140, val=500, test=1000),
    "citeseer": dict(
        nodes=3327, features=3703, classes=6, edges=4732, train=120, val=500, test=1000
    ),
    "pubmed": dict(nodes=19717, features=500, classes=3, edges=44338, train=60, val=500, test=1000),
}

_LABEL_PARTS = ("y", "ty", "ally", "graph", "test.index")
_FEATURE_PARTS = ("x", "tx", "allx")
_VAL_SIZE = 500
_KARATE_SPLIT = (4, 4)  # per club: train, val nodes; the rest is test
_KARATE_SEED = 0


# ---------------------------------------------------------------------- public API
def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    normalize_features: bool = True,
) -> Graph:
    """Load a dataset by name: ``karate``, ``cora``, ``citeseer`` or ``pubmed``.

    Planetoid graphs have ``(N, F)`` float32 CSR features, row-normalised (each non-empty row
    sums to 1, as in Kipf's preprocessing) unless ``normalize_features=False``, and the standard
    split. Files come from ``data_dir``, else ``$NAMJAX_DATA_DIR``, else the user cache
    (downloaded there when missing and ``download`` is true).
    """
    key = _check_name(name)
    if key == "karate":
        return karate_club()
    files = _planetoid_files(key, _LABEL_PARTS + _FEATURE_PARTS, data_dir, download)
    test_index = _test_index(files["test.index"])
    graph = _planetoid_structure(key, files, test_index)
    x, tx, allx = (_read_pickle(files[p]) for p in _FEATURE_PARTS)
    features = _planetoid_features(key, graph, test_index, x, tx, allx)
    if normalize_features:
        features = row_normalize(features)
    return graph.with_features(features)


def load_planetoid_graph(
    name: str, data_dir: str | Path | None = None, *, download: bool = True
) -> Graph:
    """Load a Planetoid graph's structure, labels and split without reading any feature file.

    The result has ``(N, 0)`` features: use it where only the graph matters (statistics,
    Pubmed without ``ind.pubmed.allx``). Needs ``y``, ``ty``, ``ally``, ``graph``, ``test.index``.
    """
    key = _check_name(name)
    if key not in PLANETOID:
        raise DatasetError(
            f"{name!r} is not a Planetoid dataset; use one of {', '.join(PLANETOID)}"
        )
    files = _planetoid_files(key, _LABEL_PARTS, data_dir, download)
    return _planetoid_structure(key, files, _test_index(files["test.index"]))


def dataset_stats(name: str, data_dir: str | Path | None = None) -> dict:
    """``Graph.describe()`` of a dataset, never downloading, plus a ``note``.

    When the full dataset cannot be loaded, the note says why; what the label files still give
    (Pubmed without ``ind.pubmed.allx``) is reported with ``features`` None, else all None.
    """
    try:
        return {**load_dataset(name, data_dir, download=False).describe(), "note": ""}
    except DatasetError as e:
        error = str(e)
    try:
        stats = load_planetoid_graph(name, data_dir, download=False).describe()
        stats["features"] = None
    except DatasetError:
        stats = dict.fromkeys(("nodes", "features", "classes", "edges", "train", "val", "test"))
        stats["name"] = name
    return {**stats, "note": error}


def karate_club() -> Graph:
    """Zachary's karate club (networkx): 34 nodes, 78 edges, identity features, 2 classes.

    Labels are the two clubs (``Mr. Hi`` = 0, ``Officer`` = 1). Split, seeded and stratified:
    per club 4 train and 4 val nodes, the remaining 18 nodes are test.
    """
    import networkx as nx

    g = Graph.from_networkx(nx.karate_club_graph(), label="club", weight=None, name="karate")
    rng = np.random.default_rng(_KARATE_SEED)
    split = np.zeros(g.num_nodes, np.int8)  # 0 train, 1 val, 2 test
    n_train, n_val = _KARATE_SPLIT
    for c in range(g.num_classes):
        members = rng.permutation(np.flatnonzero(g.labels == c))
        split[members[n_train + n_val :]] = 2
        split[members[n_train : n_train + n_val]] = 1
    return Graph.from_scipy(
        g.adjacency,
        g.features,
        g.labels,
        train_mask=split == 0,
        val_mask=split == 1,
        test_mask=split == 2,
        node_names=g.node_names,
        class_names=g.class_names,
        name="karate",
    )


def row_normalize(features: sp.csr_matrix) -> sp.csr_matrix:
    """Scale each row of an ``(N, F)`` CSR matrix to sum 1; all-zero rows stay zero."""
    x = sp.csr_matrix(features, dtype=np.float32)
    sums = np.asarray(x.sum(axis=1), np.float64).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums != 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ x, dtype=np.float32)


def cache_dir() -> Path:
    """Where downloads go: ``$NAMJAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/namjax``, else
    ``~/.cache/namjax``."""
    if env := os.environ.get("NAMJAX_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "namjax"


def fetch_file(url: str, dest: Path, sha256: str | None) -> Path:
    """Fetch ``url`` into ``dest`` atomically: a temp file in ``dest``'s folder is verified
    (length, sha256 when known) and only then renamed; on any failure nothing is left behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            expected = resp.headers.get("Content-Length")
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        if expected is not None and size != int(expected):
            raise DatasetError(f"download of {url} was cut short ({size} of {expected} bytes)")
        if sha256 is None:
            warnings.warn(
                f"{dest.name} has no known checksum; accepted after length and shape checks",
                stacklevel=3,
            )
        elif digest.hexdigest() != sha256:
            raise DatasetError(
                f"checksum mismatch for {dest.name} from {url}: got sha256 {digest.hexdigest()}"
            )
        os.replace(tmp, dest)
    except (OSError, http.client.HTTPException) as e:  # URLError is an OSError
        raise DatasetError(f"download of {url} failed: {getattr(e, 'reason', e)}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return dest


# ---------------------------------------------------------------------- safe unpickling
class _SparseState:
    """Stand-in for a pickled scipy CSR matrix: receives its state, never runs scipy code."""

    def __setstate__(self, state: dict) -> None:
        self.state = state


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    # scipy has moved csr_matrix between module paths across versions
    ("scipy.sparse.csr", "csr_matrix"): _SparseState,
    ("scipy.sparse._csr", "csr_matrix"): _SparseState,
    ("scipy.sparse", "csr_matrix"): _SparseState,
    ("__builtin__", "list"): list,
    ("builtins", "list"): list,
    ("collections", "defaultdict"): defaultdict,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes at pickle protocol 2
}


class _AllowlistUnpickler(pickle.Unpickler):
    """Resolves only the classes in ``_ALLOWED``; anything else raises :class:`DatasetError`."""

    def __init__(self, file, filename: str):
        super().__init__(file, encoding="latin1")
        self.filename = filename

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DatasetError(
                f"{self.filename}: refusing to load {module}.{name} (not a Planetoid data type)"
            ) from None


def _read_pickle(path: Path):
    """Unpickle a raw Planetoid file through the allowlist; CSR stand-ins become scipy CSR."""
    try:
        with open(path, "rb") as f:
            obj = _AllowlistUnpickler(f, path.name).load()
        if isinstance(obj, _SparseState):
            s = obj.state
            obj = sp.csr_matrix((s["data"], s["indices"], s["indptr"]), shape=tuple(s["_shape"]))
    except DatasetError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
    ) as e:
        raise DatasetError(f"{path.name} is not a readable Planetoid pickle ({e})") from None
    return obj


# ---------------------------------------------------------------------- Planetoid assembly
def _check_name(name: str) -> str:
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return key


def _planetoid_files(
    name: str, parts: tuple[str, ...], data_dir: str | Path | None, allow_download: bool
) -> dict[str, Path]:
    """Paths of ``ind.<name>.<part>`` for each part, from the local directory or the cache."""
    files = {p: f"ind.{name}.{p}" for p in parts}
    local = data_dir if data_dir is not None else os.environ.get("NAMJAX_DATA_DIR")
    if local:
        d = Path(local).expanduser()
        if not d.is_dir():
            raise DatasetError(f"data directory {d} does not exist")
        missing = [f for f in files.values() if not (d / f).is_file()]
        if missing:
            raise DatasetError(f"{name}: file {missing[0]} is missing from {d}")
        return {p: d / f for p, f in files.items()}
    d = cache_dir() / "planetoid"
    base = os.environ.get("NAMJAX_PLANETOID_URL", DEFAULT_URL).rstrip("/") + "/"
    for f in files.values():
        if not (d / f).is_file():
            if not allow_download:
                raise DatasetError(f"{name}: file {f} is not in the cache {d} and download=False")
            fetch_file(base + f, d / f, SHA256[f])
    return {p: d / f for p, f in files.items()}


def _test_index(path: Path) -> np.ndarray:
    try:
        return np.asarray([int(line) for line in path.read_text().split()], np.int64)
    except ValueError as e:
        raise DatasetError(f"{path.name} must hold one integer per line ({e})") from None


def _place_rows(head, tail, test_index: np.ndarray, n: int):
    """``(n, W)`` rows: ``head`` (``allx``/``ally``) first, then row ``k`` of ``tail``
    (``tx``/``ty``) at node ``test_index[k]``, zero rows for ids in neither (Citeseer's 15).

    This is what the reference loaders' stack-pad-and-reorder amounts to."""
    position = np.r_[np.arange(head.shape[0]), test_index]
    if sp.issparse(head):
        coo = sp.vstack([head, tail]).tocoo()
        return sp.csr_matrix(
            (coo.data, (position[coo.row], coo.col)), shape=(n, head.shape[1]), dtype=np.float32
        )
    out = np.zeros((n, head.shape[1]), head.dtype)
    out[position] = np.vstack([head, tail])
    return out


def _planetoid_structure(name: str, files: dict[str, Path], test_index: np.ndarray) -> Graph:
    """Graph with ``(N, 0)`` features: adjacency, labels, split, class names."""
    y, ty, ally, adjlist = (_read_pickle(files[p]) for p in ("y", "ty", "ally", "graph"))
    for part, arr in (("y", y), ("ty", ty), ("ally", ally)):
        if not isinstance(arr, np.ndarray) or arr.ndim != 2:
            raise DatasetError(f"ind.{name}.{part} must hold a 2-D one-hot label array")
    n_cls = ally.shape[1]
    if y.shape[1] != n_cls or ty.shape[1] != n_cls or len(ty) != len(test_index):
        raise DatasetError(f"ind.{name}: y / ty / ally / test.index shapes disagree")
    if test_index.min() != len(ally) or len(np.unique(test_index)) != len(test_index):
        raise DatasetError(
            f"ind.{name}.test.index must hold distinct ids starting at {len(ally)} (after ally)"
        )
    n = int(test_index.max()) + 1
    onehot = _place_rows(ally, ty, test_index, n)
    labels = np.where(onehot.any(axis=1), onehot.argmax(axis=1), -1)
    if not isinstance(adjlist, dict):
        raise DatasetError(f"ind.{name}.graph must hold a dict of adjacency lists")
    src = np.repeat(np.fromiter(adjlist.keys(), np.int64), [len(v) for v in adjlist.values()])
    dst = np.fromiter((j for v in adjlist.values() for j in v), np.int64, count=len(src))
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise DatasetError(f"ind.{name}.graph holds node ids outside 0..{n - 1}")
    keep = src != dst  # the reference graphs have a few self-loops; the GCN adds I itself
    src, dst = src[keep], dst[keep]
    adj = sp.csr_matrix(
        (np.ones(2 * len(src), np.float32), (np.r_[src, dst], np.r_[dst, src])), shape=(n, n)
    )
    adj.data[:] = 1.0  # duplicate records collapse into one unweighted edge
    n_train = len(y)
    return Graph.from_scipy(
        adj,
        sp.csr_matrix((n, 0), dtype=np.float32),
        labels,
        train_mask=np.arange(n_train),
        val_mask=np.arange(n_train, n_train + _VAL_SIZE),
        test_mask=test_index,
        class_names=CLASS_NAMES[name],
        num_classes=n_cls,
        name=name,
    )


def _planetoid_features(
    name: str, graph: Graph, test_index: np.ndarray, x, tx, allx
) -> sp.csr_matrix:
    """``(N, F)`` raw features placed like the labels (see :func:`_place_rows`)."""
    for part, m in (("x", x), ("tx", tx), ("allx", allx)):
        if not sp.issparse(m):
            raise DatasetError(f"ind.{name}.{part} must hold a sparse feature matrix")
    width = allx.shape[1]
    n = graph.num_nodes
    if x.shape[1] != width or tx.shape[1] != width:
        raise DatasetError(f"ind.{name}: x / tx / allx have different feature widths")
    if x.shape[0] != graph.train_mask.sum() or tx.shape[0] != len(test_index):
        raise DatasetError(f"ind.{name}: x / tx row counts disagree with y / ty")
    if allx.shape[0] != test_index.min():
        raise DatasetError(f"ind.{name}.allx has {allx.shape[0]} rows; ally has {test_index.min()}")
    return _place_rows(allx, tx, test_index, n)
