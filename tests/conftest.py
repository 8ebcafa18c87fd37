"""Shared fixtures. Real-data tests read the Planetoid files from ``$NAMJAX_DATA_DIR`` or from
``../shared/datasets/planetoid`` beside the project root; without them they skip, saying why."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)  # float64 oracles; library code pins its own dtypes

ROOT = Path(__file__).resolve().parents[1]
SHARED_PLANETOID = ROOT.parent / "shared" / "datasets" / "planetoid"


def planetoid_dir() -> Path | None:
    """Directory with the raw Planetoid files, or None when this machine has none."""
    env = os.environ.get("NAMJAX_DATA_DIR")
    for cand in ([Path(env)] if env else []) + [SHARED_PLANETOID]:
        if (cand / "ind.cora.x").exists():
            return cand
    return None


def require(module: str):
    """``module`` imported, for a test that needs an optional oracle (torch, torch_geometric,
    captum, torchmetrics, scikit-learn): skips, saying why, where it is not installed; in CI
    (``CI`` set), which installs them all, it fails instead."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run this test, but {module} does not import: {e}")
        pytest.skip(f"{module} is not installed ({e}); CI installs it", allow_module_level=True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = planetoid_dir()
    if d is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have the Planetoid files: set NAMJAX_DATA_DIR")
        pytest.skip(
            "Planetoid files not found: set NAMJAX_DATA_DIR or place ../shared beside the repo"
        )
    return d


@pytest.fixture(scope="session")
def karate():
    from namjax.datasets import load_dataset

    return load_dataset("karate")


@pytest.fixture(scope="session")
def cora(data_dir):
    from namjax.datasets import load_dataset

    return load_dataset("cora", data_dir)


@pytest.fixture(scope="session")
def citeseer(data_dir):
    from namjax.datasets import load_dataset

    return load_dataset("citeseer", data_dir)


@pytest.fixture(scope="session")
def cora_model(cora):
    """A 2-layer ReLU GCN with biases trained on Cora (seed 0), shared by the tests that need
    one; the biases make the NAM bias term non-trivial."""
    from namjax.model import GNNConfig
    from namjax.training import train

    config = GNNConfig.create("gcn", cora.num_features, cora.num_classes, bias=True)
    return train(cora, config, seed=0).model


@pytest.fixture(scope="session")
def karate_model(karate):
    from namjax.training import train

    return train(karate, seed=0).model
