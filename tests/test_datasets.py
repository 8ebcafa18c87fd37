"""Dataset facts, checked against independent parses (a plain-pickle reference loop, and PyG's
Planetoid reader when torch_geometric is installed), plus the download and unpickling safety."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import pickle
import threading
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from conftest import require

from namjax.datasets import (
    DatasetError,
    cache_dir,
    fetch_file,
    load_dataset,
    load_planetoid_graph,
)
from namjax.errors import NamjaxError

SPLITS = {"cora": (140, 500, 1000), "citeseer": (120, 500, 1000), "pubmed": (60, 500, 1000)}


# ---------------------------------------------------------------------- helpers
class _TrustingUnpickler(pickle.Unpickler):
    """The ordinary unpickler (real scipy classes), with scipy's old module path redirected."""

    def find_class(self, module, name):
        return super().find_class("scipy.sparse" if module == "scipy.sparse.csr" else module, name)


def raw(data_dir: Path, name: str, part: str):
    """The raw file, read with a trusting unpickler: the test's own oracle."""
    path = data_dir / f"ind.{name}.{part}"
    if part == "test.index":
        return np.array([int(s) for s in path.read_text().split()])
    with open(path, "rb") as f:
        return _TrustingUnpickler(f, encoding="latin1").load()


def linked_dir(tmp: Path, data_dir: Path, name: str, skip=(), replace=None) -> Path:
    """A data dir of symlinks to the real files, less ``skip``, with ``replace`` bytes swapped in."""
    tmp.mkdir(parents=True, exist_ok=True)
    for f in data_dir.glob(f"ind.{name}.*"):
        if f.name not in skip and f.name not in (replace or {}):
            (tmp / f.name).symlink_to(f.resolve())
    for fname, content in (replace or {}).items():
        (tmp / fname).write_bytes(content)
    return tmp


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """No local data dir, an empty cache under tmp_path."""
    monkeypatch.delenv("NAMJAX_DATA_DIR", raising=False)
    monkeypatch.setenv("NAMJAX_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "planetoid"


# ---------------------------------------------------------------------- karate
def test_karate_facts(karate):
    club = nx.get_node_attributes(nx.karate_club_graph(), "club")
    assert karate.describe() == {
        "name": "karate",
        "nodes": 34,
        "features": 34,
        "classes": 2,
        "edges": 78,
        "train": 8,
        "val": 8,
        "test": 18,
    }
    assert karate.class_names == ("Mr. Hi", "Officer")
    assert [karate.class_names[c] for c in karate.labels] == [club[i] for i in range(34)]
    np.testing.assert_array_equal(karate.features.toarray(), np.eye(34))
    masks = np.stack([karate.train_mask, karate.val_mask, karate.test_mask])
    assert (masks.sum(axis=0) == 1).all()  # a partition
    for c in (0, 1):  # stratified: 4 train and 4 val nodes per club
        assert karate.train_mask[karate.labels == c].sum() == 4
        assert karate.val_mask[karate.labels == c].sum() == 4


def test_karate_is_deterministic(karate):
    again = load_dataset("KARATE")
    assert again.fingerprint == karate.fingerprint
    np.testing.assert_array_equal(again.train_mask, karate.train_mask)
    np.testing.assert_array_equal(again.val_mask, karate.val_mask)


# ---------------------------------------------------------------------- Planetoid facts
def test_cora_facts(cora, data_dir):
    assert (cora.num_nodes, cora.num_features, cora.num_classes) == (2708, 1433, 7)
    n_train, n_val, _ = SPLITS["cora"]
    np.testing.assert_array_equal(np.flatnonzero(cora.train_mask), np.arange(n_train))
    np.testing.assert_array_equal(np.flatnonzero(cora.val_mask), n_train + np.arange(n_val))
    test_index = raw(data_dir, "cora", "test.index")
    np.testing.assert_array_equal(np.flatnonzero(cora.test_mask), np.sort(test_index))
    assert cora.class_names[2] == "Neural_Networks"
    assert cora.num_edges == 5278  # unique undirected edges; 5429 raw citation records
    assert len(raw(data_dir, "cora", "graph")) == 2708


def test_citeseer_padding(citeseer, data_dir):
    test_index = raw(data_dir, "citeseer", "test.index")
    assert citeseer.num_nodes == 3327 == test_index.max() + 1
    assert (citeseer.num_features, citeseer.num_classes) == (3703, 6)
    padded = np.setdiff1d(np.arange(test_index.min(), test_index.max() + 1), test_index)
    assert len(padded) == 15
    np.testing.assert_array_equal(np.flatnonzero(citeseer.labels == -1), padded)
    assert citeseer.features[padded].nnz == 0
    assert not (citeseer.train_mask | citeseer.val_mask | citeseer.test_mask)[padded].any()
    assert citeseer.num_edges == 4552  # 4732 raw records incl. duplicates and 124 self-loops


@pytest.mark.parametrize("name", ["cora", "citeseer"])
def test_matches_reference_loop(name, data_dir):
    """Node test_index[k] holds row k of tx / ty; nodes below len(allx) hold allx / ally."""
    g = load_dataset(name, data_dir, normalize_features=False)
    allx, ally, tx, ty = (raw(data_dir, name, p) for p in ("allx", "ally", "tx", "ty"))
    test_index = raw(data_dir, name, "test.index")
    feats = g.features.toarray()
    for i in range(allx.shape[0]):
        assert np.array_equal(feats[i], allx[i].toarray()[0]), i
        assert g.labels[i] == int(np.argmax(ally[i])), i
    for k, node in enumerate(test_index):
        assert np.array_equal(feats[node], tx[k].toarray()[0]), node
        assert g.labels[node] == int(np.argmax(ty[k])), node
    adjlist = raw(data_dir, name, "graph")
    expected = {(u, v) for u, vs in adjlist.items() for v in vs if u != v}
    expected |= {(v, u) for u, v in expected}
    coo = g.adjacency.tocoo()
    assert set(zip(coo.row.tolist(), coo.col.tolist(), strict=True)) == expected
    assert (coo.data == 1).all()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "pyg_name"), [("cora", "Cora"), ("citeseer", "CiteSeer")])
def test_matches_torch_geometric(name, pyg_name, data_dir, tmp_path):
    require("torch_geometric")
    from torch_geometric.datasets import Planetoid

    linked_dir(tmp_path / pyg_name / "raw", data_dir, name)
    ref = Planetoid(str(tmp_path), pyg_name)[0]
    g = load_dataset(name, data_dir, normalize_features=False)
    np.testing.assert_array_equal(g.features.toarray(), ref.x.numpy())
    known = g.labels >= 0  # PyG's argmax gives 0 to Citeseer's 15 label-less padded nodes
    np.testing.assert_array_equal(g.labels[known], ref.y.numpy()[known])
    assert (~known).sum() == (15 if name == "citeseer" else 0)
    for mask in ("train_mask", "val_mask", "test_mask"):
        np.testing.assert_array_equal(getattr(g, mask), getattr(ref, mask).numpy())
    coo = g.adjacency.tocoo()
    ref_edges = set(map(tuple, ref.edge_index.numpy().T.tolist()))
    assert set(zip(coo.row.tolist(), coo.col.tolist(), strict=True)) == ref_edges


def test_row_normalisation(cora, data_dir):
    raw_x = load_dataset("cora", data_dir, normalize_features=False).features
    x64 = raw_x.toarray().astype(np.float64)
    sums = x64.sum(axis=1, keepdims=True)
    expected = np.divide(x64, sums, out=np.zeros_like(x64), where=sums > 0)
    got = cora.features.toarray()
    assert cora.features.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-6 * np.abs(expected).max()
    nonempty = sums.ravel() > 0
    np.testing.assert_allclose(got.sum(axis=1)[nonempty], 1.0, rtol=1e-5)


def test_citeseer_empty_rows_stay_zero(citeseer):
    sums = np.asarray(citeseer.features.sum(axis=1)).ravel()
    assert np.isfinite(citeseer.features.data).all()
    nonempty = sums > 0
    assert (~nonempty).sum() >= 15
    np.testing.assert_allclose(sums[nonempty], 1.0, rtol=1e-5)


def test_pubmed_graph_without_features(data_dir, tmp_path):
    d = linked_dir(tmp_path, data_dir, "pubmed", skip={"ind.pubmed.allx"})
    with pytest.raises(DatasetError, match=r"ind\.pubmed\.allx is missing"):
        load_dataset("pubmed", d)
    g = load_planetoid_graph("pubmed", d)
    assert (g.num_nodes, g.num_classes, g.num_features) == (19717, 3, 0)
    n_train, n_val, n_test = SPLITS["pubmed"]
    assert (g.train_mask.sum(), g.val_mask.sum(), g.test_mask.sum()) == (n_train, n_val, n_test)
    assert (g.labels >= 0).all()
    assert g.class_names[1] == "Diabetes Mellitus Type 1"
    assert g.num_edges == 44324  # 44338 raw records incl. 3 self-loops and duplicates


# ---------------------------------------------------------------------- user errors
def test_unknown_name():
    with pytest.raises(DatasetError, match="unknown dataset 'reddit'; available: karate"):
        load_dataset("reddit")
    with pytest.raises(DatasetError, match="not a Planetoid dataset"):
        load_planetoid_graph("karate")
    assert issubclass(DatasetError, NamjaxError)  # the CLI reports it as one line, exit 2


def test_missing_directory_and_file(tmp_path, data_dir):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("cora", tmp_path / "nope")
    d = linked_dir(tmp_path / "d", data_dir, "cora", skip={"ind.cora.tx"})
    with pytest.raises(DatasetError, match=r"cora: file ind\.cora\.tx is missing from"):
        load_dataset("cora", d)


def test_env_data_dir(monkeypatch, data_dir, cora):
    monkeypatch.setenv("NAMJAX_DATA_DIR", str(data_dir))
    assert load_dataset("Cora").fingerprint == cora.fingerprint


def test_no_download_with_empty_cache(isolated_env):
    with pytest.raises(DatasetError, match=r"not in the cache .* download=False"):
        load_dataset("cora", download=False)


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("NAMJAX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "namjax"
    monkeypatch.setenv("NAMJAX_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


# ---------------------------------------------------------------------- safe unpickling
class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused(tmp_path, data_dir):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker), protocol=2)
    d = linked_dir(tmp_path / "d", data_dir, "cora", replace={"ind.cora.graph": payload})
    with pytest.raises(DatasetError, match=r"ind\.cora\.graph: refusing to load \w+\.system"):
        load_dataset("cora", d)
    assert not marker.exists()
    # the payload is real: the ordinary unpickler would have run it
    pickle.loads(payload)
    assert marker.exists()


def test_corrupt_pickle_is_a_clear_error(tmp_path, data_dir):
    d = linked_dir(tmp_path / "d", data_dir, "cora", replace={"ind.cora.ally": b"\x80\x02garbage"})
    with pytest.raises(DatasetError, match=r"ind\.cora\.ally is not a readable Planetoid pickle"):
        load_dataset("cora", d)


def test_current_scipy_and_numpy_pickle_paths(tmp_path, data_dir, cora):
    """Files re-pickled by today's numpy / scipy name other module paths; they load the same."""
    modern = {
        f"ind.cora.{p}": pickle.dumps(raw(data_dir, "cora", p), protocol=2) for p in ("tx", "ally")
    }
    assert b"scipy.sparse._csr" in modern["ind.cora.tx"]
    d = linked_dir(tmp_path / "d", data_dir, "cora", replace=modern)
    g = load_dataset("cora", d)
    assert g.fingerprint == cora.fingerprint
    assert (g.features != cora.features).nnz == 0


# ---------------------------------------------------------------------- downloads
class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; files named in ``truncate`` are announced in full but sent in half."""

    truncate: frozenset[str] = frozenset()

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        if name not in self.truncate:
            return super().do_GET()
        body = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve(monkeypatch):
    """Start an HTTP server on 127.0.0.1 for a folder; point NAMJAX_PLANETOID_URL at it."""
    servers = []

    def start(folder: Path, truncate=()):
        handler = type("H", (_Handler,), {"truncate": frozenset(truncate)})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
        )
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_address[1]}/data/"
        monkeypatch.setenv("NAMJAX_PLANETOID_URL", url)
        return url

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def served_copy(tmp_path, data_dir):
    """A served folder ``data/`` of symlinks to the cora files."""
    linked_dir(tmp_path / "www" / "data", data_dir, "cora")
    return tmp_path / "www"


def test_download_success(isolated_env, serve, served_copy, cora, data_dir):
    serve(served_copy)
    g = load_dataset("cora")
    assert g.fingerprint == cora.fingerprint
    assert (g.features != cora.features).nnz == 0
    cached = sorted(p.name for p in isolated_env.iterdir())
    assert cached == sorted(p.name for p in data_dir.glob("ind.cora.*"))  # no temp files
    for name in cached:
        assert (isolated_env / name).read_bytes() == (data_dir / name).read_bytes()
    # a second load reads the cache only
    assert load_dataset("cora", download=False).fingerprint == cora.fingerprint


def test_download_checksum_mismatch(isolated_env, serve, served_copy, data_dir):
    bad = bytearray((data_dir / "ind.cora.y").read_bytes())
    bad[-3] ^= 0xFF
    target = served_copy / "data" / "ind.cora.y"
    target.unlink()
    target.write_bytes(bytes(bad))
    serve(served_copy)
    with pytest.raises(DatasetError, match=r"checksum mismatch for ind\.cora\.y"):
        load_dataset("cora")
    assert not (isolated_env / "ind.cora.y").exists()
    assert not list(isolated_env.glob(".*part"))


def test_download_interrupted(isolated_env, serve, served_copy):
    serve(served_copy, truncate={"ind.cora.graph"})
    with pytest.raises(DatasetError, match=r"ind\.cora\.graph was cut short \(\d+ of 59847 bytes"):
        load_dataset("cora")
    assert not (isolated_env / "ind.cora.graph").exists()
    assert not list(isolated_env.glob(".*part"))


def test_download_not_found(isolated_env, serve, tmp_path):
    (tmp_path / "empty" / "data").mkdir(parents=True)
    serve(tmp_path / "empty")
    with pytest.raises(DatasetError, match=r"download of http://127\.0\.0\.1:\d+/data/ind\.cora"):
        load_dataset("cora")
    assert list(isolated_env.iterdir()) == []


def test_fetch_without_checksum_warns(tmp_path, serve, served_copy, data_dir):
    url = serve(served_copy)
    dest = tmp_path / "out" / "ind.cora.x"
    with pytest.warns(UserWarning, match="no known checksum"):
        fetch_file(url + "ind.cora.x", dest, None)
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    assert digest == hashlib.sha256((data_dir / "ind.cora.x").read_bytes()).hexdigest()


# ---------------------------------------------------------------------- CLI
def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from namjax.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_datasets_table(capsys, tmp_path, data_dir):
    d = tmp_path / "d"
    for name in ("cora", "citeseer"):
        linked_dir(d, data_dir, name)
    linked_dir(d, data_dir, "pubmed", skip={"ind.pubmed.allx"})
    code, out, err = run_cli(capsys, "datasets", "--data-dir", str(d), "--json")
    assert code == 0 and err == ""
    summary = json.loads(out.strip().splitlines()[-1])
    rows = {r["name"]: r for r in summary["datasets"]}
    assert rows["cora"] == {
        "name": "cora",
        "nodes": 2708,
        "features": 1433,
        "classes": 7,
        "edges": 5278,
        "train": 140,
        "val": 500,
        "test": 1000,
        "note": "",
    }
    assert rows["karate"]["nodes"] == 34
    assert (rows["pubmed"]["nodes"], rows["pubmed"]["features"]) == (19717, None)
    assert "ind.pubmed.allx is missing" in rows["pubmed"]["note"]
    assert summary["paper"]["citeseer"]["edges"] == 4732

    code, out, _ = run_cli(capsys, "datasets", "--data-dir", str(d))
    assert code == 0
    assert "ind.pubmed.allx is missing" in out and "paper Table 1" in out


def test_cli_datasets_bad_dir(capsys, tmp_path):
    code, out, err = run_cli(capsys, "datasets", "--data-dir", str(tmp_path / "nope"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "is not a directory" in err
