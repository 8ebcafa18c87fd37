"""Saving and loading models: exact round trip, dataset checks, damaged directories."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from flax import nnx, serialization

from namjax.errors import ModelError
from namjax.io import META_FILE, PARAMS_FILE, load_model, model_info, save_model
from namjax.model import GNN, GNNConfig, predict


def test_round_trip_gives_identical_logits(karate, karate_model, tmp_path):
    out = save_model(karate_model, karate, tmp_path / "m")
    loaded = load_model(out, karate)
    assert loaded.config == karate_model.config
    np.testing.assert_array_equal(predict(loaded, karate), predict(karate_model, karate))
    info = model_info(out)
    assert info["dataset"] == "karate" and info["fingerprint"] == karate.fingerprint
    assert GNNConfig.from_dict(info["config"]) == karate_model.config


def test_round_trip_without_bias_and_deeper(karate, tmp_path):
    cfg = GNNConfig.create("gcn", karate.num_features, 2, (8, 4, 3), activation="tanh", bias=False)
    model = GNN(cfg, rngs=nnx.Rngs(1))
    loaded = load_model(save_model(model, karate, tmp_path / "m"))
    assert all(layer.bias is None for layer in loaded.layers)
    for sa, sb in zip(model.steps(), loaded.steps(), strict=True):
        np.testing.assert_array_equal(
            np.asarray(sa.terms[0].weight), np.asarray(sb.terms[0].weight)
        )
    np.testing.assert_array_equal(predict(loaded, karate), predict(model, karate))


@pytest.mark.parametrize("arch", ["sgc", "sage", "gin"])
def test_round_trip_every_arch(karate, tmp_path, arch):
    options = {"train_eps": True, "eps": 0.25} if arch == "gin" else {}
    cfg = GNNConfig.create(arch, karate.num_features, 2, **options)
    model = GNN(cfg, rngs=nnx.Rngs(2))
    loaded = load_model(save_model(model, karate, tmp_path / "m"), karate)
    assert loaded.config == cfg
    np.testing.assert_array_equal(predict(loaded, karate), predict(model, karate))


def test_namjax_0_1_model_directories_still_load(karate, tmp_path):
    """Format 1 (namjax 0.1: a GCNConfig and {"<layer>": ...} weights) loads as the same GCN."""
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(34, 16)).astype(np.float32)
    w1 = rng.normal(size=(16, 2)).astype(np.float32)
    d = tmp_path / "old"
    d.mkdir()
    config = {
        "in_features": 34,
        "num_classes": 2,
        "hidden": [16],
        "activation": "relu",
        "dropout": 0.5,
        "bias": False,
    }
    meta = {
        "format": "namjax-gcn",
        "version": 1,
        "config": config,
        "dataset": "karate",
        "fingerprint": karate.fingerprint,
    }
    (d / META_FILE).write_text(json.dumps(meta))
    weights = {"0": {"kernel": w0}, "1": {"kernel": w1}}
    (d / PARAMS_FILE).write_bytes(serialization.msgpack_serialize(weights))
    model = load_model(d, karate)
    a = karate.normalized_adjacency.toarray().astype(np.float64)
    x = karate.features.toarray().astype(np.float64)
    want = a @ np.maximum(a @ x @ w0, 0) @ w1  # Kipf's GCN from its definition
    np.testing.assert_allclose(predict(model, karate), want, rtol=1e-5, atol=1e-5)


def test_other_dataset_is_refused(karate, karate_model, cora, tmp_path):
    save_model(karate_model, karate, tmp_path / "m")
    with pytest.raises(ModelError, match=r"trained on 'karate' .* not on 'cora'"):
        load_model(tmp_path / "m", cora)


def test_missing_and_damaged_directories(karate, karate_model, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a namjax model directory"):
        load_model(tmp_path / "empty")
    good = save_model(karate_model, karate, tmp_path / "good")
    meta = json.loads((good / META_FILE).read_text())

    def damaged(name: str, meta_text: str | None = None, params: bytes | None = None):
        d = tmp_path / name
        d.mkdir()
        (d / META_FILE).write_text(json.dumps(meta) if meta_text is None else meta_text)
        if params is not None:
            (d / PARAMS_FILE).write_bytes(params)
        return d

    params = (good / PARAMS_FILE).read_bytes()
    with pytest.raises(ModelError, match="is corrupt"):
        load_model(damaged("badjson", "{not json", params))
    with pytest.raises(ModelError, match="not a namjax model description"):
        load_model(damaged("otherjson", json.dumps({"hello": 1}), params))
    with pytest.raises(ModelError, match="format version 99"):
        load_model(damaged("future", json.dumps(meta | {"version": 99}), params))
    layers = meta["config"]["layers"]
    deep = [layers[0], *[layers[1] | {"in_features": 2}] * 4]
    bad_cfg = json.dumps(meta | {"config": meta["config"] | {"layers": deep}})
    with pytest.raises(ModelError, match=r"invalid config: depth K must be 1\.\.4, got 5"):
        load_model(damaged("badcfg", bad_cfg, params))
    with pytest.raises(ModelError, match=f"has no {re.escape(PARAMS_FILE)}"):
        load_model(damaged("noparams"))
    with pytest.raises(ModelError, match="is corrupt"):
        load_model(damaged("truncated", params=params[: len(params) // 2]))
    wrong = serialization.msgpack_serialize(
        {"layers": {"0": {"kernel": np.zeros((3, 3), np.float32)}}}
    )
    with pytest.raises(ModelError, match=r"layers/0/kernel should have shape \(34, 16\)"):
        load_model(damaged("wrongshape", params=wrong))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="exists and is not a directory"):
        save_model(karate_model, karate, tmp_path / "file")
