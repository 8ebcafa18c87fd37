"""Graph files (.npz, Parquet) and ``--dataset`` specs.

Oracles: graphs built directly with :meth:`Graph.from_edge_index` from the same arrays, files
written by numpy (``np.savez``) and pyarrow themselves, and the generators and loaders the specs
delegate to (``citation_graph``, ``load_dataset``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

import namjax
from namjax.errors import DatasetError, NamjaxError, OptionError, OutputError
from namjax.graph import Graph
from namjax.graphfile import graph_from_spec, load_graph_file, parse_graph_spec, save_graph_file
from namjax.synthetic import citation_graph

# 7 nodes, both directions of every edge listed (no symmetrisation warning); node 6 is isolated
EDGES = np.array([[0, 1, 1, 2, 2, 3, 4, 5], [1, 0, 2, 1, 3, 2, 5, 4]])
WEIGHTS = np.array([1, 1, 2, 2, 0.5, 0.5, 3, 3], np.float32)
X = np.array(
    [
        [1, 0, 0, 2],
        [0, 0, 0, 0],
        [0, 3, 0, 0],
        [1, 1, 1, 1],
        [0, 0, 5, 0],
        [0, 0, 0, 7],
        [4, 0, 0, 0],
    ],
    np.float32,
)
Y = np.array([0, 1, 1, -1, 2, 0, 2])
TRAIN, VAL, TEST = [0, 1], [2], [3, 4]  # node 5 is "none", node 6 has no split
NAMES = ["a", "b", "c", "d", "e", "f", "g"]
CLASSES = ["alpha", "beta", "gamma"]  # sorted, as string labels in Parquet are numbered


def direct(name: str = "toy") -> Graph:
    """The toy graph, built without any file."""
    return Graph.from_edge_index(
        EDGES,
        7,
        WEIGHTS,
        features=X,
        labels=Y,
        train_mask=TRAIN,
        val_mask=VAL,
        test_mask=TEST,
        node_names=NAMES,
        class_names=CLASSES,
        name=name,
    )


def assert_same(a: Graph, b: Graph) -> None:
    assert a.fingerprint == b.fingerprint
    assert (a.num_nodes, a.num_classes, a.name) == (b.num_nodes, b.num_classes, b.name)
    for m in ("train_mask", "val_mask", "test_mask"):
        np.testing.assert_array_equal(getattr(a, m), getattr(b, m))
    assert a.node_names == b.node_names
    assert a.class_names == b.class_names


def toy_arrays(**changes) -> dict:
    """The toy graph's ``.npz`` members; a change to None drops the key."""
    arrays = dict(
        edge_index=EDGES,
        edge_weight=WEIGHTS,
        x=X,
        y=Y,
        train_mask=np.array(TRAIN),
        val_mask=np.array(VAL),
        test_mask=np.array(TEST),
        node_names=np.array(NAMES),
        class_names=np.array(CLASSES),
    )
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def write_npz(path: Path, **changes) -> Path:
    np.savez(path, **toy_arrays(**changes))
    return path


def csr_parts(x) -> dict:
    m = sp.csr_matrix(x)
    return dict(x_data=m.data, x_indices=m.indices, x_indptr=m.indptr, x_shape=np.array(m.shape))


def toy_parquet(directory: Path, edges: dict | None = None, nodes: dict | None = None) -> Path:
    """The toy graph as a Parquet directory, edge and node rows shuffled; ``edges``/``nodes``
    replace columns (a None value drops the column; ``nodes=False`` writes no nodes.parquet)."""
    rng = np.random.default_rng(0)
    directory.mkdir()
    e = rng.permutation(EDGES.shape[1])
    edge_cols = {"source": EDGES[0, e], "target": EDGES[1, e], "weight": WEIGHTS[e]}
    write_table(directory / "edges.parquet", edge_cols, edges or {})
    if nodes is not False:
        perm = rng.permutation(7)
        split = np.array(["none"] * 7, object)
        for ids, s in ((TRAIN, "train"), (VAL, "val"), (TEST, "test")):
            split[ids] = s
        split[6] = None
        node_cols = {
            "node": perm,
            "label": pa.array([CLASSES[Y[i]] if Y[i] >= 0 else None for i in perm]),
            "split": pa.array(split[perm].tolist()),
            "name": [NAMES[i] for i in perm],
            "features": pa.array(X[perm].tolist(), pa.list_(pa.float32())),
        }
        write_table(directory / "nodes.parquet", node_cols, nodes or {})
    return directory


def write_table(path: Path, columns: dict, changes: dict) -> None:
    columns = {k: v for k, v in {**columns, **changes}.items() if v is not None}
    pq.write_table(pa.table(columns), path)


# ---------------------------------------------------------------------- round trips
def test_save_load_round_trip_dense(tmp_path):
    g = direct()
    path = save_graph_file(g, tmp_path / "toy.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a saved graph loads back without any cleaning warning
        h = load_graph_file(path)
    assert_same(g, h)
    assert isinstance(h.features, np.ndarray)
    np.testing.assert_array_equal(h.features, X)
    np.testing.assert_array_equal(h.labels, Y)


@pytest.mark.parametrize(
    "make",
    [lambda: citation_graph(2000, seed=1), lambda: namjax.load_dataset("karate")],
    ids=["synthetic", "karate"],
)
def test_save_load_round_trip_sparse(tmp_path, make):
    g = make()
    h = load_graph_file(save_graph_file(g, tmp_path / f"{g.name}.npz"))
    assert_same(g, h)
    assert sp.issparse(h.features)
    assert (h.adjacency != g.adjacency).nnz == 0
    assert (h.features != g.features).nnz == 0


def test_save_replaces_atomically(tmp_path, monkeypatch):
    path = save_graph_file(direct(), tmp_path / "toy.npz")
    before = path.read_bytes()

    def fail_midway(f, **arrays):
        f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", fail_midway)
    with pytest.raises(OutputError, match="No space left") as e:
        save_graph_file(citation_graph(2000), path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.npz"]  # no temporary left
    monkeypatch.undo()
    g = citation_graph(2000)
    assert load_graph_file(save_graph_file(g, path)).fingerprint == g.fingerprint  # replaced


@pytest.mark.parametrize("name", ["toy.txt", "toy"])
def test_save_needs_npz_suffix(tmp_path, name):
    with pytest.raises(OutputError, match=r"\.npz"):
        save_graph_file(direct(), tmp_path / name)


def test_save_refuses_a_directory(tmp_path):
    (tmp_path / "toy.npz").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        save_graph_file(direct(), tmp_path / "toy.npz")


# ---------------------------------------------------------------------- .npz reading
def test_npz_from_numpy_equals_direct_construction(tmp_path):
    assert_same(load_graph_file(write_npz(tmp_path / "toy.npz")), direct())


def test_dense_and_csr_features_give_the_same_graph(tmp_path):
    dense = load_graph_file(write_npz(tmp_path / "toy.npz"))
    (tmp_path / "csr").mkdir()
    csr = load_graph_file(write_npz(tmp_path / "csr" / "toy.npz", x=None, **csr_parts(X)))
    assert_same(dense, csr)
    assert sp.issparse(csr.features)
    np.testing.assert_array_equal(csr.features.toarray(), X)


def test_npz_boolean_masks_equal_id_masks(tmp_path):
    masks = {}
    for key, ids in (("train_mask", TRAIN), ("val_mask", VAL), ("test_mask", TEST)):
        masks[key] = np.zeros(7, bool)
        masks[key][ids] = True
    assert_same(load_graph_file(write_npz(tmp_path / "toy.npz", **masks)), direct())


def test_npz_node_count_comes_from_the_features(tmp_path):
    # node 6 has no edge: max(edge_index) + 1 would be 6, the 7 feature rows say 7
    g = load_graph_file(write_npz(tmp_path / "toy.npz", y=None, node_names=None, class_names=None))
    assert g.num_nodes == 7


def test_npz_defaults_and_cleaning_warnings(tmp_path):
    one_way = np.array([[0, 1, 2, 2, 3], [1, 2, 3, 2, 0]])  # directed, with a self-loop
    path = tmp_path / "bare.npz"
    np.savez(path, edge_index=one_way)
    with pytest.warns(UserWarning) as caught:
        g = load_graph_file(path)
    messages = " ".join(str(w.message) for w in caught)
    assert "symmetrised" in messages and "self-loop" in messages
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = Graph.from_edge_index(one_way, name="bare")
    assert_same(g, expected)
    assert g.num_nodes == 4 and (g.labels == -1).all() and not g.train_mask.any()
    np.testing.assert_array_equal(sp.csr_matrix(g.features).toarray(), np.eye(4))


# ---------------------------------------------------------------------- Parquet reading
def test_parquet_equals_npz_and_direct_construction(tmp_path):
    from_parquet = load_graph_file(toy_parquet(tmp_path / "toy"))
    from_npz = load_graph_file(write_npz(tmp_path / "toy.npz"))
    assert_same(from_parquet, direct())
    assert_same(from_parquet, from_npz)
    np.testing.assert_array_equal(from_parquet.features, X)


def test_parquet_edge_file_path_names_the_directory(tmp_path):
    assert_same(load_graph_file(toy_parquet(tmp_path / "toy") / "edges.parquet"), direct())


def test_parquet_fixed_size_lists_and_integer_labels(tmp_path):
    d = toy_parquet(tmp_path / "toy")
    nodes = pq.read_table(d / "nodes.parquet")
    perm = nodes.column("node").to_numpy()
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(X[perm].ravel()), 4)
    labels = pa.array([int(Y[i]) if Y[i] >= 0 else None for i in perm], pa.int32())
    nodes = nodes.set_column(nodes.column_names.index("features"), "features", fixed)
    nodes = nodes.set_column(nodes.column_names.index("label"), "label", labels)
    pq.write_table(nodes, d / "nodes.parquet")
    g = load_graph_file(d)
    expected = direct()
    assert g.fingerprint == expected.fingerprint  # same features and labels
    assert g.class_names is None and g.num_classes == 3
    np.testing.assert_array_equal(g.labels, Y)


def test_parquet_dictionary_encoded_strings(tmp_path):
    d = toy_parquet(tmp_path / "toy")
    nodes = pq.read_table(d / "nodes.parquet")
    for col in ("label", "split", "name"):
        i = nodes.column_names.index(col)
        nodes = nodes.set_column(i, col, nodes.column(col).dictionary_encode())
    pq.write_table(nodes, d / "nodes.parquet")
    assert_same(load_graph_file(d), direct())


def test_parquet_without_nodes_file(tmp_path):
    g = load_graph_file(toy_parquet(tmp_path / "toy", nodes=False))
    assert_same(g, Graph.from_edge_index(EDGES, edge_weight=WEIGHTS, name="toy"))
    assert g.num_nodes == 6


def test_parquet_implicit_node_order(tmp_path):
    d = tmp_path / "toy"
    d.mkdir()
    write_table(d / "edges.parquet", {"source": EDGES[0], "target": EDGES[1]}, {})
    write_table(d / "nodes.parquet", {"label": pa.array(Y.tolist(), pa.int64())}, {})
    g = load_graph_file(d)
    assert_same(g, Graph.from_edge_index(EDGES, 7, labels=Y, name="toy"))


# ---------------------------------------------------------------------- bad files
def _text(path: Path, text: str = "hello world") -> Path:
    path.write_text(text)
    return path


def _npy_as_npz(tmp: Path) -> Path:
    np.save(tmp / "a.npy", EDGES)
    return (tmp / "a.npy").rename(tmp / "g.npz")


def _truncated(tmp: Path) -> Path:
    data = write_npz(tmp / "full.npz").read_bytes()
    (tmp / "g.npz").write_bytes(data[: len(data) // 2])
    return tmp / "g.npz"


def _other_parquet(tmp: Path) -> Path:
    write_table(tmp / "graph.parquet", {"source": [0], "target": [1]}, {})
    return tmp / "graph.parquet"


def _garbage_edges(tmp: Path) -> Path:
    (tmp / "pq").mkdir()
    (tmp / "pq" / "edges.parquet").write_bytes(b"PAR1 this is not parquet")
    return tmp / "pq"


def _npz(**changes):
    return lambda tmp: write_npz(tmp / "g.npz", **changes)


def _pq(edges=None, nodes=None):
    return lambda tmp: toy_parquet(tmp / "pq", edges, nodes)


EDGES_F = EDGES.astype(np.float64)
CSR = csr_parts(X)
BAD_FILES = [
    (lambda tmp: tmp / "missing.npz", "no such file"),
    (lambda tmp: tmp / "missing_dir", "no such file"),
    (lambda tmp: _text(tmp / "g.txt"), "unknown graph file type"),
    (lambda tmp: _text(tmp / "g.npz"), r"not an \.npz archive"),
    (lambda tmp: _text(tmp / "g.npz", ""), r"not an \.npz archive"),
    (_npy_as_npz, r"not an \.npz archive"),
    (_truncated, r"not an \.npz archive"),
    (_npz(edge_index=None), "missing the required key 'edge_index'"),
    (_npz(edge_index=np.zeros((3, 4), int)), r"shape \(2, E\)"),
    (_npz(edge_index=EDGES[0]), "'edge_index' must be 2-D"),
    (_npz(edge_index=EDGES_F), "'edge_index' must hold integers"),
    (_npz(edge_index=EDGES.astype(str)), "'edge_index' must hold integers"),
    (_npz(edge_index=EDGES - 1), "node id -1"),
    (_npz(num_nodes=3), r"node id \d, outside 0\.\.2"),
    (_npz(num_nodes=np.array([7])), "'num_nodes' must be 0-D"),
    (_npz(edge_weight=-WEIGHTS), "non-negative"),
    (_npz(edge_weight=WEIGHTS[:3]), "edge_weight has shape"),
    (_npz(**CSR), "both dense 'x' and CSR"),
    (_npz(x=None, **{**CSR, "x_shape": None}), "'x_shape' missing"),
    (_npz(x=None, **{**CSR, "x_shape": np.array([7, 4, 1])}), "'x_shape' must be"),
    (_npz(x=None, **{**CSR, "x_indptr": CSR["x_indptr"][:-1]}), "'x_indptr' has 7 entries"),
    (_npz(x=None, **{**CSR, "x_indptr": CSR["x_indptr"][::-1]}), "'x_indptr' must rise"),
    (_npz(x=None, **{**CSR, "x_indices": CSR["x_indices"] + 1}), "'x_indices' holds column 4"),
    (_npz(x=None, **{**CSR, "x_indices": CSR["x_indices"][:-1]}), "'x_indices' has"),
    (_npz(x=None, **{**CSR, "x_data": CSR["x_data"].astype(str)}), "'x_data' must hold"),
    (_npz(x=X[:5], num_nodes=7), "features have 5 rows"),
    (_npz(x=np.where(X > 4, np.nan, X)), "NaN"),
    (_npz(y=Y.astype(np.float32)), "'y' must hold integers"),
    (_npz(y=Y[:5], num_nodes=7), "labels must have shape"),
    (_npz(y=np.full(7, 5)), "label 5 is out of range"),
    (_npz(train_mask=np.ones(7, np.float32)), "'train_mask' must hold booleans or integers"),
    (_npz(test_mask=np.array([9])), "test_mask holds node id 9"),
    (_npz(node_names=np.arange(7)), "'node_names' must hold strings"),
    (_npz(node_names=np.array(NAMES[:3])), "node_names has 3 entries"),
    (_npz(num_classes=4), "class_names has 3 entries but there are 4 classes"),
    (_npz(node_names=np.array(NAMES, object)), "cannot read 'node_names'"),
    (_npz(labels=Y), "unknown key 'labels'"),
    (lambda tmp: tmp, "edges.parquet: no such file"),
    (_other_parquet, "a directory holding edges.parquet"),
    (_garbage_edges, "not a readable Parquet file"),
    (_pq(edges={"target": None}), "missing the required column 'target'"),
    (_pq(edges={"dst": EDGES[1]}), "unknown column 'dst'"),
    (_pq(edges={"source": EDGES_F[0]}), "'source' must hold integers"),
    (_pq(edges={"source": pa.array([0, None] * 4)}), "'source' has 4 missing values"),
    (_pq(edges={"weight": ["1"] * 8}), "'weight' must hold numbers"),
    (_pq(edges={"weight": -WEIGHTS}), "non-negative"),
    (_pq(edges={"target": EDGES[1] + 4}), "node id 7 is outside 0..6"),
    (_pq(nodes={"split": ["train", "training"] * 3 + ["val"]}), "unknown split 'training'"),
    (_pq(nodes={"split": list(range(7))}), "'split' must hold strings"),
    (_pq(nodes={"node": [0, 1, 2, 3, 4, 5, 5]}), "node id 5 appears more than once"),
    (_pq(nodes={"node": [0, 1, 2, 3, 4, 5, 7]}), "node id 7 is outside 0..6"),
    (_pq(nodes={"node": np.arange(7.0)}), "'node' must hold integers"),
    (_pq(nodes={"label": np.arange(7.0)}), "'label' must hold integers"),
    (_pq(nodes={"name": ["a", None] * 3 + ["b"]}), "'name' has 3 missing values"),
    (_pq(nodes={"features": np.arange(7.0)}), "'features' must be a list of numbers"),
    (_pq(nodes={"features": [[1.0]] * 6 + [[1.0, 2.0]]}), "different lengths"),
    (_pq(nodes={"features": [[1.0]] * 6 + [None]}), "'features' has 1 missing rows"),
    (_pq(nodes={"features": [[1.0]] * 6 + [[None]]}), "holds 1 missing values"),
    (_pq(nodes={"features": [["1"]] * 7}), "'features' must be a list of numbers"),
    (_pq(nodes={"extra": np.arange(7)}), "unknown column 'extra'"),
]


@pytest.mark.parametrize(("make", "match"), BAD_FILES, ids=[m for _, m in BAD_FILES])
def test_bad_files_raise_one_line_dataset_error(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(DatasetError, match=match) as e:
        load_graph_file(path)
    message = str(e.value)
    assert "\n" not in message
    assert str(path) in message  # names the file (for Parquet, the directory or one file in it)
    assert e.value.__cause__ is None  # no chained traceback
    assert e.value.__context__ is None or e.value.__suppress_context__


_TRIPPED: list[bool] = []


def _trip() -> str:
    _TRIPPED.append(True)
    return "tripped"


class _Tripwire:
    """Unpickling this object calls :func:`_trip`."""

    def __reduce__(self):
        return _trip, ()


def test_object_array_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, edge_index=EDGES, node_names=np.array([_Tripwire()] * 6, object))
    with np.load(path, allow_pickle=True) as z:  # the tripwire works when unpickled
        z["node_names"]
    assert _TRIPPED
    _TRIPPED.clear()
    with pytest.raises(DatasetError, match="cannot read 'node_names'") as e:
        load_graph_file(path)
    assert not _TRIPPED
    assert "\n" not in str(e.value) and str(path) in str(e.value)


# ---------------------------------------------------------------------- --dataset specs
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("karate", ("dataset", {"name": "karate"})),
        ("  CiteSeer ", ("dataset", {"name": "citeseer"})),
        ("pubmed", ("dataset", {"name": "pubmed"})),
        ("synthetic:2000", ("synthetic", {"num_nodes": 2000, "seed": 0})),
        ("synthetic:100000", ("synthetic", {"num_nodes": 100_000, "seed": 0})),
        ("synthetic:100k", ("synthetic", {"num_nodes": 100_000, "seed": 0})),
        ("Synthetic:100K:7", ("synthetic", {"num_nodes": 100_000, "seed": 7})),
        ("synthetic:1M", ("synthetic", {"num_nodes": 1_000_000, "seed": 0})),
        ("synthetic:1m:12", ("synthetic", {"num_nodes": 1_000_000, "seed": 12})),
        ("synthetic:2.5k", ("synthetic", {"num_nodes": 2500, "seed": 0})),
        ("synthetic:0.25M:0", ("synthetic", {"num_nodes": 250_000, "seed": 0})),
        ("my.npz", ("file", {"path": Path("my.npz")})),
        ("data/graph", ("file", {"path": Path("data/graph")})),
        ("pq/edges.parquet", ("file", {"path": Path("pq/edges.parquet")})),
    ],
)
def test_parse_graph_spec(text, expected):
    assert parse_graph_spec(text) == expected


def test_parse_graph_spec_existing_directory_but_names_win(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mygraph").mkdir()
    (tmp_path / "cora").mkdir()
    assert parse_graph_spec("mygraph") == ("file", {"path": Path("mygraph")})
    assert parse_graph_spec("cora") == ("dataset", {"name": "cora"})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("synthetic:", "give the node count"),
        ("synthetic", "give the node count"),
        ("synthetic:-5", "N must be a positive whole number"),
        ("synthetic:0", "N must be a positive whole number"),
        ("synthetic:1.5", "N must be a positive whole number"),
        ("synthetic:1.0005k", "N must be a positive whole number"),
        ("synthetic:k", "N must be a positive whole number"),
        ("synthetic:1e5", "N must be a positive whole number"),
        ("synthetic:10G", "N must be a positive whole number"),
        ("synthetic:10:x", "seed must be a non-negative integer, got 'x'"),
        ("synthetic:10:-1", "seed must be a non-negative integer"),
        ("synthetic:10:", "seed must be a non-negative integer"),
        ("synthetic:10:2:3", r"expected synthetic:N\[:seed\]"),
        ("imagenet", "karate, cora, citeseer, pubmed, synthetic:N"),
        ("", "unknown dataset"),
    ],
)
def test_parse_graph_spec_errors(text, match):
    with pytest.raises(OptionError, match=match) as e:
        parse_graph_spec(text)
    assert "\n" not in str(e.value) and repr(text.strip()) in str(e.value)


def test_synthetic_spec_equals_citation_graph():
    g = graph_from_spec("synthetic:2000:3")
    assert g.fingerprint == citation_graph(2000, seed=3).fingerprint
    assert g.fingerprint != citation_graph(2000, seed=4).fingerprint
    assert graph_from_spec("synthetic:2k").fingerprint == citation_graph(2000).fingerprint


def test_synthetic_spec_too_small_is_an_option_error():
    with pytest.raises(OptionError, match=r"synthetic:100.*1660") as e:
        graph_from_spec("synthetic:100")
    assert "\n" not in str(e.value)


def test_named_spec_delegates_to_load_dataset(tmp_path):
    assert graph_from_spec("Karate").fingerprint == namjax.load_dataset("karate").fingerprint
    with pytest.raises(NamjaxError, match="missing"):  # data_dir is passed on: no download
        graph_from_spec("cora", data_dir=tmp_path)


def test_file_spec_loads_the_file(tmp_path):
    path = save_graph_file(direct(), tmp_path / "toy.npz")
    assert_same(graph_from_spec(str(path)), direct())
    assert_same(graph_from_spec(str(toy_parquet(tmp_path / "toy"))), direct())


# ---------------------------------------------------------------------------- command line
def test_cli_trains_and_explains_any_graph(karate, tmp_path, capsys):
    """`--graph FILE` and `--dataset synthetic:N[:seed]` run train and explain with no Python;
    the explained graph is the file's (same fingerprint as the graph written)."""
    from namjax.cli import main

    path = save_graph_file(karate, tmp_path / "club.npz")
    model_dir, out = tmp_path / "model", tmp_path / "att"
    assert main(["train", "--graph", str(path), "--epochs", "3", "--out", str(model_dir)]) == 0
    code = main(["explain", "--model", str(model_dir), "--graph", str(path), "--out", str(out)])
    assert code == 0
    att = namjax.Attribution.load(out)
    assert att.graph_fingerprint == load_graph_file(path).fingerprint
    assert len(att.targets) == karate.num_nodes
    synth_model, synth_out = tmp_path / "synth-model", tmp_path / "synth"
    spec = ["--dataset", "synthetic:2000:3"]
    assert main(["train", *spec, "--epochs", "3", "--out", str(synth_model)]) == 0
    assert main(["explain", "--model", str(synth_model), *spec, "--out", str(synth_out)]) == 0
    synth = namjax.Attribution.load(synth_out)
    assert synth.graph_fingerprint == citation_graph(2000, seed=3).fingerprint
    capsys.readouterr()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--graph", "missing.npz"], "argument --graph: no such file or directory: missing.npz"),
        (["--graph", "g.npz", "--dataset", "cora"], "not allowed with argument"),
        (["--graph", "bad.npz"], "bad.npz"),
    ],
)
def test_cli_bad_graph_is_one_line(tmp_path, capsys, monkeypatch, args, message):
    from test_cli import run_cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.npz").write_bytes(b"")
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    code, _, err = run_cli(["train", *args, "--epochs", "1", "--out", str(tmp_path / "m")], capsys)
    err = err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert err.startswith("namjax train: error: ") and not (tmp_path / "m").exists()
