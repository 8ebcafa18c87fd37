"""Saving and loading models: exact round trip, dataset checks, damaged directories."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from flax import nnx, serialization

from namjax.io import META_FILE, PARAMS_FILE, ModelError, load_model, model_info, save_model
from namjax.model import GCN, GCNConfig, gcn_params
from namjax.train import predict


def test_round_trip_gives_identical_logits(karate, karate_model, tmp_path):
    out = save_model(karate_model, karate, tmp_path / "m")
    loaded = load_model(out, karate)
    assert loaded.config == karate_model.config and loaded.deterministic
    np.testing.assert_array_equal(predict(loaded, karate), predict(karate_model, karate))
    info = model_info(out)
    assert info["dataset"] == "karate" and info["fingerprint"] == karate.fingerprint
    assert GCNConfig.from_dict(info["config"]) == karate_model.config


def test_round_trip_without_bias_and_deeper(karate, tmp_path):
    cfg = GCNConfig(karate.num_features, 2, hidden=(8, 4, 3), activation="tanh", bias=False)
    model = GCN(cfg, rngs=nnx.Rngs(1))
    loaded = load_model(save_model(model, karate, tmp_path / "m"))
    assert all(layer.bias is None for layer in loaded.layers)
    for (wa, _), (wb, _) in zip(gcn_params(model), gcn_params(loaded), strict=True):
        np.testing.assert_array_equal(np.asarray(wa), np.asarray(wb))
    np.testing.assert_array_equal(predict(loaded, karate), predict(model, karate))


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
    bad_cfg = json.dumps(meta | {"config": meta["config"] | {"hidden": [16] * 5}})
    with pytest.raises(ModelError, match=r"invalid config: GCN depth K must be 1\.\.4"):
        load_model(damaged("badcfg", bad_cfg, params))
    with pytest.raises(ModelError, match=f"has no {re.escape(PARAMS_FILE)}"):
        load_model(damaged("noparams"))
    with pytest.raises(ModelError, match="is corrupt"):
        load_model(damaged("truncated", params=params[: len(params) // 2]))
    wrong = serialization.msgpack_serialize({"0": {"kernel": np.zeros((3, 3), np.float32)}})
    with pytest.raises(ModelError, match=r"layer 0 kernel should have shape \(34, 16\)"):
        load_model(damaged("wrongshape", params=wrong))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="exists and is not a directory"):
        save_model(karate_model, karate, tmp_path / "file")
