"""Saving and loading models.

A model directory holds two files:

* ``model.json``: format tag and version, the :class:`~namjax.model.GNNConfig`, and the name and
  :attr:`~namjax.graph.Graph.fingerprint` of the dataset the model was trained on;
* ``params.msgpack``: the module's ``nnx.Param`` state as a pure dict (``nnx.to_pure_dict``,
  e.g. ``{"layers": {"0": {"kernel": (F_in, F_out), "bias": (F_out,)}}}``), written with
  ``flax.serialization.msgpack_serialize`` (no pickle; safe to load). Loading builds the module
  from the config and puts the dict back with ``nnx.replace_by_pure_dict``: the one weight
  layout from the module to disk and back.

Directories written by namjax 0.1 (format version 1: a GCN config and ``{"<layer>": ...}``
weights) load as the equivalent GCN.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
from flax import nnx, serialization

from namjax.errors import ModelError
from namjax.graph import Graph
from namjax.model import GNN, GNNConfig
from namjax.outputs import write_bytes

FORMAT = "namjax-gcn"
VERSION = 2
META_FILE = "model.json"
PARAMS_FILE = "params.msgpack"


def save_model(model: GNN, graph: Graph, path: str | Path, *, dataset: str | None = None) -> Path:
    """Write ``model`` (trained on ``graph``) to directory ``path``, created if needed.

    ``dataset`` is what ``model.json`` records as the dataset (what the command line loads by
    default): ``graph.name`` unless given, e.g. a graph file's path, relative to ``path``
    when it lies inside it. Returns the directory. Existing model files there are replaced
    (each file atomically).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ModelError(f"{path} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    weights = jax.tree.map(np.asarray, _string_keys(nnx.to_pure_dict(nnx.state(model, nnx.Param))))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "dataset": graph.name if dataset is None else dataset,
        "fingerprint": graph.fingerprint,
    }
    write_bytes(path / PARAMS_FILE, serialization.msgpack_serialize(weights))
    write_bytes(path / META_FILE, (json.dumps(meta, indent=2) + "\n").encode())
    return path


def model_info(path: str | Path) -> dict:
    """The metadata of a saved model: ``format``, ``version``, ``config`` (dict), ``dataset``
    and ``fingerprint``."""
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"model directory {path} does not exist")
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise ModelError(f"{path} is not a namjax model directory (no {META_FILE})")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{meta_file} is corrupt: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{meta_file} is not a namjax model description")
    if meta.get("version") not in (1, VERSION):
        raise ModelError(
            f"{meta_file} has format version {meta.get('version')}, expected {VERSION}"
        )
    return meta


def load_model(path: str | Path, graph: Graph | None = None) -> GNN:
    """Load a model saved by :func:`save_model`.

    When ``graph`` is given, it must be the dataset the model was trained on (same
    fingerprint); otherwise :class:`~namjax.errors.ModelError` names both datasets.
    """
    path = Path(path)
    meta = model_info(path)
    try:
        config = _config(meta)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{path / META_FILE} holds an invalid config: {e}") from None
    if graph is not None and graph.fingerprint != meta.get("fingerprint"):
        raise ModelError(
            f"model {path} was trained on {meta.get('dataset')!r} (fingerprint "
            f"{meta.get('fingerprint')}), not on {graph.name!r} (fingerprint {graph.fingerprint})"
        )
    params_file = path / PARAMS_FILE
    if not params_file.is_file():
        raise ModelError(f"{path} has no {PARAMS_FILE}")
    try:
        stored = serialization.msgpack_restore(params_file.read_bytes())
    except Exception as e:  # msgpack raises several unrelated types on corrupt input
        raise ModelError(f"{params_file} is corrupt: {type(e).__name__}") from None
    if meta["version"] == 1 and isinstance(stored, dict):
        stored = {"layers": stored}
    model = GNN(config, rngs=nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    want = _string_keys(nnx.to_pure_dict(state))
    _check_shapes(want, stored if isinstance(stored, dict) else {}, params_file, "")
    nnx.replace_by_pure_dict(state, _int_keys(stored, want))
    nnx.update(model, state)
    return model


def _config(meta: dict) -> GNNConfig:
    if meta["version"] == 1:  # namjax 0.1: a GCNConfig
        c = meta["config"]
        return GNNConfig.create(
            "gcn",
            c["in_features"],
            c["num_classes"],
            tuple(c.get("hidden", (16,))),
            activation=c.get("activation", "relu"),
            dropout=c.get("dropout", 0.5),
            bias=c.get("bias", False),
        )
    return GNNConfig.from_dict(meta["config"])


def _check_shapes(want: dict, got: dict, source: Path, where: str) -> None:
    """Every array of ``want`` is in ``got`` with the same shape."""
    for key, value in want.items():
        name = f"{where}/{key}" if where else key
        found = got.get(key) if isinstance(got, dict) else None
        if isinstance(value, dict):
            _check_shapes(value, found if isinstance(found, dict) else {}, source, name)
        elif not isinstance(found, np.ndarray) or found.shape != np.shape(value):
            what = "nothing" if found is None else f"shape {getattr(found, 'shape', '?')}"
            raise ModelError(
                f"{source}: {name} should have shape {tuple(np.shape(value))}, found {what}"
            )


def _string_keys(tree):
    """msgpack keys are strings: the layer indices of ``nnx.List`` become ``"0"``, ``"1"``, ..."""
    if isinstance(tree, dict):
        return {str(k): _string_keys(v) for k, v in tree.items()}
    return tree


def _int_keys(stored: dict, like: dict) -> dict:
    """``stored`` with its keys given back the types of ``nnx.to_pure_dict``'s (ints for list
    indices), following the string-keyed ``like``."""
    out = {}
    for key, value in like.items():
        original = int(key) if key.isdigit() else key
        out[original] = _int_keys(stored[key], value) if isinstance(value, dict) else stored[key]
    return out
