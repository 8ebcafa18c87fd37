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
from namjax.model import predict


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
    assert summary["dataset"] == "karate"
    assert [layer["out_features"] for layer in summary["config"]["layers"]] == [16, 2]
    model = load_model(tmp_path / "m", karate)  # same defaults and seed as the fixture
    np.testing.assert_array_equal(predict(model, karate), predict(karate_model, karate))
    logits = predict(model, karate)
    hits = np.argmax(logits, 1)[karate.test_mask] == karate.labels[karate.test_mask]
    assert summary["test_accuracy"] == pytest.approx(hits.mean())
    assert "train karate" in err  # the progress display went to stderr


@pytest.mark.slow  # compiles a loop for a 3-layer tanh config
def test_train_options_and_human_summary(tmp_path, capsys):
    argv = ["train", "--out", str(tmp_path / "m"), "--depth", "3", "--hidden", "8"]
    argv += ["--bias", "--activation", "tanh", "--epochs", "3", "--seed", "2"]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0
    assert out.startswith("trained gcn (depth 3) on karate in 3 epochs")
    model = load_model(tmp_path / "m")
    assert model.config.sizes == (34, 8, 8, 2) and all(s.bias for s in model.config.layers)
    assert model.config.activation == "tanh"


@pytest.mark.slow  # compiles one training loop per architecture
@pytest.mark.parametrize("arch", ["sgc", "sage", "gin"])
def test_train_every_arch(arch, tmp_path, capsys):
    argv = ["train", "--arch", arch, "--out", str(tmp_path / "m"), "--epochs", "5", "--json"]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    model = load_model(tmp_path / "m")
    assert model.config.arch == arch and model.config.depth == 2
    assert {layer.kind for layer in model.config.layers} == {arch}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "nosuch"], "unknown dataset 'nosuch'"),
        (["--dataset", "cora", "--data-dir", "/no/such/dir"], "/no/such/dir"),
        (["--depth", "7"], "depth K must be 1..4, got 7"),
        (["--depth", "0"], "argument --depth: expected a positive integer, got 0"),
        (["--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
        (["--hidden", "x"], "argument --hidden: expected a positive integer, got 'x'"),
        (["--activation", "gelu"], "argument --activation: invalid choice: 'gelu'"),
        (["--arch", "gat"], "argument --arch: invalid choice: 'gat'"),
        (["--patience", "-1"], "--patience must be >= 0, got -1"),
    ],
)
def test_user_errors(args, message, tmp_path, capsys):
    code, out, err = run_cli(["train", "--out", str(tmp_path / "m"), *args], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert err.startswith("namjax train: error: ")  # argparse's errors too
    assert not (tmp_path / "m").exists()


def test_version(capsys):
    import namjax

    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"namjax {namjax.__version__}"
    assert namjax.__version__ != "unknown"


def test_out_problems_are_refused_before_any_work(karate, karate_model, tmp_path, capsys):
    """An --out that is a file, under a file, or a directory holding other files: one line,
    exit 2, and nothing computed or written (the timings would say otherwise)."""
    from namjax.io import save_model

    save_model(karate_model, karate, tmp_path / "model")
    (tmp_path / "file").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    explain = ["explain", "--model", str(tmp_path / "model")]
    cases = [
        (["train", "--out", str(tmp_path / "file")], "exists and is not a directory"),
        ([*explain, "--out", str(tmp_path / "file")], "exists and is not a directory"),
        ([*explain, "--out", str(tmp_path / "file" / "o")], "is not a directory"),
        ([*explain, "--out", str(tmp_path / "busy")], "holds other files (notes.txt)"),
        (
            ["perturb", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "busy")],
            "pass --overwrite",
        ),
    ]
    for argv, message in cases:
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and out == "" and message in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["notes.txt"]
    code, _, err = run_cli([*explain, "--out", str(tmp_path / "busy"), "--overwrite"], capsys)
    assert code == 0, err
    assert (tmp_path / "busy" / "contributions.parquet").is_file()


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
