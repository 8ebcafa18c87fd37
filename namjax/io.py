"""Saving and loading trained models.

A model directory holds two files:

* ``model.json``: format tag and version, the :class:`~namjax.model.GCNConfig`, and the name and
  :attr:`~namjax.graph.Graph.fingerprint` of the dataset the model was trained on;
* ``params.msgpack``: the weights, ``{"<layer>": {"kernel": (F_in, F_out), "bias": (F_out,)}}``,
  written with ``flax.serialization.msgpack_serialize`` (no pickle; safe to load).
"""

from __future__ import annotations

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx, serialization

from namjax.graph import Graph, GraphError
from namjax.model import GCN, GCNConfig, layer_weights

FORMAT = "namjax-gcn"
VERSION = 1
META_FILE = "model.json"
PARAMS_FILE = "params.msgpack"


class ModelError(GraphError):
    """A model directory that is missing, corrupt, or belongs to another dataset."""


def save_model(model: GCN, graph: Graph, path: str | Path) -> Path:
    """Write ``model`` (trained on ``graph``) to directory ``path``, created if needed.

    Returns the directory. Existing model files there are overwritten.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ModelError(f"{path} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    weights = {
        str(i): {"kernel": np.asarray(w)} | ({} if b is None else {"bias": np.asarray(b)})
        for i, (w, b) in enumerate(layer_weights(model))
    }
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "dataset": graph.name,
        "fingerprint": graph.fingerprint,
    }
    (path / PARAMS_FILE).write_bytes(serialization.msgpack_serialize(weights))
    (path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
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
    if meta.get("version") != VERSION:
        raise ModelError(
            f"{meta_file} has format version {meta.get('version')}, expected {VERSION}"
        )
    return meta


def load_model(path: str | Path, graph: Graph | None = None) -> GCN:
    """Load a model saved by :func:`save_model`, in deterministic mode.

    When ``graph`` is given, it must be the dataset the model was trained on (same
    fingerprint); otherwise :class:`ModelError` names both datasets.
    """
    path = Path(path)
    meta = model_info(path)
    try:
        config = GCNConfig.from_dict(meta["config"])
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
        weights = serialization.msgpack_restore(params_file.read_bytes())
    except Exception as e:  # msgpack raises several unrelated types on corrupt input
        raise ModelError(f"{params_file} is corrupt: {type(e).__name__}") from None
    model = GCN(config, rngs=nnx.Rngs(0))
    for i, layer in enumerate(model.layers):
        stored = weights.get(str(i), {}) if isinstance(weights, dict) else {}
        _assign(layer.kernel, stored.get("kernel"), f"layer {i} kernel", params_file)
        if layer.bias is not None:
            _assign(layer.bias, stored.get("bias"), f"layer {i} bias", params_file)
    return model


def _assign(param: nnx.Param, value, what: str, source: Path) -> None:
    shape = tuple(param.shape)
    if not isinstance(value, np.ndarray) or value.shape != shape:
        got = "nothing" if value is None else f"shape {getattr(value, 'shape', '?')}"
        raise ModelError(f"{source}: {what} should have shape {shape}, found {got}")
    param[...] = jnp.asarray(value, jnp.float32)
