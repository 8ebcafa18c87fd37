"""The command line: `namjax train` in-process and as the installed console script, and its
user-error paths (exit code 2, one stderr line, no traceback)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from namjax.cli import main
from namjax.io import load_model
from namjax.train import predict


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_train_karate_json(karate, karate_model, tmp_path, capsys):
    code, out, err = run_cli(
        ["train", "--dataset", "karate", "--out", str(tmp_path / "m"), "--json"], capsys
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    for key in ("test_accuracy", "val_accuracy", "train_accuracy", "epochs", "seconds"):
        assert key in summary
    assert summary["dataset"] == "karate" and summary["config"]["hidden"] == [16]
    model = load_model(tmp_path / "m", karate)  # same defaults and seed as the fixture
    np.testing.assert_array_equal(predict(model, karate), predict(karate_model, karate))
    logits = predict(model, karate)
    hits = np.argmax(logits, 1)[karate.test_mask] == karate.labels[karate.test_mask]
    assert summary["test_accuracy"] == pytest.approx(hits.mean())
    assert "train karate" in err  # the progress display went to stderr


@pytest.mark.slow  # compiles a loop for a 3-layer tanh config
def test_train_options_and_human_summary(tmp_path, capsys):
    argv = ["train", "--out", str(tmp_path / "m"), "--layers", "3", "--hidden", "8"]
    argv += ["--bias", "--activation", "tanh", "--epochs", "3", "--seed", "2"]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0
    assert out.startswith("trained 3-layer GCN on karate in 3 epochs")
    model = load_model(tmp_path / "m")
    assert model.config.hidden == (8, 8) and model.config.bias
    assert model.config.activation == "tanh"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "nosuch"], "unknown dataset 'nosuch'"),
        (["--dataset", "cora", "--data-dir", "/no/such/dir"], "/no/such/dir"),
        (["--layers", "7"], "depth K must be 1..4, got 7"),
        (["--layers", "0"], "argument --layers: expected a positive integer, got 0"),
        (["--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
        (["--hidden", "x"], "argument --hidden: expected a positive integer, got 'x'"),
        (["--activation", "gelu"], "unknown activation 'gelu'"),
        (["--patience", "-1"], "--patience must be >= 0, got -1"),
    ],
)
def test_user_errors(args, message, tmp_path, capsys):
    code, out, err = run_cli(["train", "--out", str(tmp_path / "m"), *args], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_missing_out_is_an_argument_error(capsys):
    code, _, err = run_cli(["train"], capsys)
    assert code == 2 and "--out" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow  # two fresh processes, each compiling the training loop
def test_console_script(tmp_path):
    exe = shutil.which("namjax", path=str(Path(sys.executable).parent))
    assert exe is not None, "the namjax console script is not installed beside this Python"
    out_dir = tmp_path / "m"
    proc = subprocess.run(
        [exe, "train", "--epochs", "2", "--out", str(out_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["epochs"] == 2
    assert (out_dir / "model.json").is_file()
    bad = subprocess.run(
        [exe, "train", "--dataset", "nosuch", "--out", str(out_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
