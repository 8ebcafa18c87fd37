"""Batch jobs: the streamed dataset equals the engine's attribution, top-k keeps completeness,
resume after SIGKILL of a real run, 4 fake devices == 1 device, 2 processes under
jax.distributed."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pyarrow.parquet
import pytest

from namjax import jobs
from namjax.attribution import Attribution, select_topk, topk_mask
from namjax.engine.topk import SEGMENT_TOPK, device_topk
from namjax.errors import JobError, ModelError, NamjaxError
from namjax.explainer import nam
from namjax.subgraph import khop

ROOT = Path(__file__).resolve().parents[1]


def worker(args: dict, *flags: str, env: dict | None = None) -> subprocess.Popen:
    """A real ``namjax explain`` batch job on Cora in a fresh interpreter."""
    cmd = [sys.executable, "-m", "namjax.cli", "explain", "--dataset", "cora", "--json"]
    cmd += ["--model", args["model"], "--data-dir", args["data_dir"], "--out", args["out"]]
    cmd += ["--chunk-targets", str(args["chunk"]), "--resume", *flags]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 180) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reference(cora, cora_model):
    return nam(cora_model, cora)


@pytest.fixture(scope="module")
def saved_model(cora, cora_model, tmp_path_factory):
    from namjax.io import save_model

    return str(save_model(cora_model, cora, tmp_path_factory.mktemp("model") / "cora"))


def rows(table: pa.Table) -> dict[str, np.ndarray]:
    """Columns sorted by (target, class, source)."""
    cols = {name: table[name].to_numpy() for name in table.column_names}
    keys = [cols[k] for k in ("source", "class", "target") if k in cols]
    order = np.lexsort(keys)
    return {name: col[order] for name, col in cols.items()}


def assert_same_dataset(out, reference: Attribution, rtol: float = 0.0) -> None:
    """The job's dataset holds exactly the reference's (target, source, class) rows, once."""
    got, want = rows(jobs.read_table(out)), rows(reference.to_table())
    for key in ("target", "source", "class", "hop"):
        np.testing.assert_array_equal(got[key], want[key])
    np.testing.assert_allclose(got["contribution"], want["contribution"], rtol=rtol, atol=0)
    got, want = rows(jobs.read_table(out, "targets")), rows(reference.targets_table())
    np.testing.assert_array_equal(got["target"], want["target"])
    np.testing.assert_allclose(got["logit"], want["logit"], rtol=rtol, atol=0)
    np.testing.assert_allclose(got["bias"], want["bias"], rtol=rtol, atol=0)
    assert not got["rest"].any()
    assert (Path(out) / jobs.SUCCESS_FILE).exists()


# ---------------------------------------------------------------------- planning and top-k
@pytest.mark.parametrize(("k", "ties"), [(1, True), (3, True), (8, True), (5, False)])
def test_topk_mask_matches_a_slow_loop(k, ties):
    rng = np.random.default_rng(k)
    sizes = np.concatenate([rng.integers(1, 12, 40), [16, 17, 32, 33, 70]])  # several widths
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    shape = (offsets[-1], 3)
    c = (rng.integers(-4, 5, shape) if ties else rng.normal(size=shape)).astype(np.float32)
    keep = topk_mask(offsets, c, k)
    kept, values, dropped = select_topk(offsets, c, k)  # what the tables use
    np.testing.assert_array_equal(kept, np.flatnonzero(keep))
    on_device = select_topk(offsets, jnp.asarray(c), k)  # the accelerator path, here on the CPU
    for got, want in zip(on_device, (kept, values), strict=False):
        np.testing.assert_array_equal(got, want)
    seg = np.repeat(np.arange(len(sizes)), sizes)
    for got in (dropped, on_device[2]):  # the dropped scores' sums, against a plain sum
        want = np.zeros((len(sizes), 3))
        np.add.at(want, seg, np.where(keep, 0, c).astype(np.float64))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    for t in range(len(sizes)):
        s = slice(offsets[t], offsets[t + 1])
        for j in range(3):
            # the k largest |c|, earlier rows first among ties
            order = sorted(range(sizes[t]), key=lambda i: (-abs(c[s][i, j]), i))[:k]
            expected = np.zeros(sizes[t], bool)
            expected[order] = True
            np.testing.assert_array_equal(keep[s][:, j], expected)


def test_device_topk_compiles_once_per_padded_shape():
    rng = np.random.default_rng(1)
    traces = SEGMENT_TOPK.traces
    for n in (300, 301, 350):  # one padded shape
        sizes = np.full(n // 50, 50)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        c = rng.normal(size=(offsets[-1], 2)).astype(np.float32)
        kept, _, _ = device_topk(offsets, jnp.asarray(c), 4)
        np.testing.assert_array_equal(kept, np.flatnonzero(topk_mask(offsets, c, 4)))
    assert SEGMENT_TOPK.traces - traces == 1


def test_khop_walks_bound_the_neighbourhoods(karate):
    walks = jobs.khop_walks(karate, 2)
    a = karate.adjacency.toarray() > 0
    step = (a | np.eye(karate.num_nodes, dtype=bool)).astype(np.int64)
    np.testing.assert_array_equal(walks, step @ step @ np.ones(karate.num_nodes))
    assert (walks >= np.diff(khop(karate, np.arange(34), 2).offsets)).all()


def test_chunk_bounds_fixed_and_budgeted():
    assert jobs.chunk_bounds(10, chunk_targets=4) == (0, 4, 8, 10)
    costs = np.array([5, 1, 1, 9, 20, 2, 2, 2], float)
    bounds = jobs.chunk_bounds(len(costs), costs=costs, budget=10)
    assert bounds == (0, 3, 4, 5, 8)  # greedy; 20 > budget gets a chunk of its own
    for a, b in itertools.pairwise(bounds):
        assert costs[a:b].sum() <= 10 or b - a == 1
    with pytest.raises(JobError, match="at least 1"):
        jobs.chunk_bounds(10, chunk_targets=0)


def test_parse_bytes():
    assert jobs.parse_bytes("512MB") == 512 * 2**20
    assert jobs.parse_bytes("1.5G") == int(1.5 * 2**30)
    assert jobs.parse_bytes("2GiB") == 2 * 2**30
    assert jobs.parse_bytes("1000") == 1000
    with pytest.raises(JobError, match="memory size"):
        jobs.parse_bytes("lots")


# ---------------------------------------------------------------------- one process
def test_job_equals_the_engine(cora, cora_model, reference, tmp_path):
    result = jobs.run(cora_model, cora, tmp_path / "job", chunk_targets=700)
    assert result.spec.bounds == (0, 700, 1400, 2100, 2708)
    assert result.computed == (0, 1, 2, 3) and result.pairs == reference.offsets[-1]
    assert_same_dataset(tmp_path / "job", reference)
    assert not list((tmp_path / "job").rglob(".*tmp*"))


@pytest.mark.parametrize("stage", ["prepare", "compute", "plain"])
def test_a_failing_chunk_stops_the_pipeline_and_resume_completes(
    cora, cora_model, reference, tmp_path, stage
):
    """An error in any stage of one chunk reaches the caller; every part on disk is complete,
    and resuming finishes the job with the engine's numbers."""
    inner = jobs.ShardedExplainer(cora_model, cora)
    bad = 5  # the chunk whose targets start at 5 * 200

    def failing(fn):
        def wrapped(arg):
            targets = arg if stage != "compute" else arg[0].targets
            if targets[0] == bad * 200:
                raise JobError(f"chunk {bad} fails in {stage}")
            return fn(arg)

        return wrapped

    if stage == "plain":
        explain = failing(inner)
    else:
        explain = SimpleNamespace(prepare=inner.prepare, compute=inner.compute)
        setattr(explain, stage, failing(getattr(inner, stage)))
    out = tmp_path / "job"
    with pytest.raises(JobError, match=f"chunk {bad} fails in {stage}"):
        jobs.run(cora_model, cora, out, chunk_targets=200, explain=explain)
    done = jobs.finished_chunks(out)
    assert bad not in done and set(range(bad)) <= done
    assert not list(out.rglob(".*tmp*")) and not (out / jobs.SUCCESS_FILE).exists()
    for part in (out / "contributions").glob("part-*"):  # complete parts, both tables
        assert pyarrow.parquet.read_table(part).num_rows and (out / "targets" / part.name).exists()
    result = jobs.run(cora_model, cora, out, chunk_targets=200, resume=True)
    assert set(result.skipped) == done and bad in result.computed
    assert_same_dataset(out, reference)


def test_memory_budget_chunks(cora, cora_model, reference, tmp_path):
    budget = 2**20
    result = jobs.run(cora_model, cora, tmp_path / "job", memory_budget=budget)
    costs = jobs.khop_walks(cora, 2) * jobs.pair_bytes(cora_model)
    b = result.spec.bounds
    assert len(b) > 3
    assert all(costs[i:j].sum() <= budget or j - i == 1 for i, j in itertools.pairwise(b))
    assert_same_dataset(tmp_path / "job", reference)


def test_topk_keeps_the_largest_and_completeness(cora, cora_model, reference, tmp_path):
    k = 4
    jobs.run(cora_model, cora, tmp_path / "job", top_k=k, chunk_targets=1000)
    kept = jobs.read_table(tmp_path / "job")
    summary = rows(jobs.read_table(tmp_path / "job", "targets"))
    # completeness: kept + rest + bias == logit (ReLU), per (target, class)
    sums = kept.group_by(["target", "class"]).aggregate([("contribution", "sum")])
    sums = rows(sums.rename_columns(["target", "class", "kept"]))
    np.testing.assert_array_equal(sums["target"], summary["target"])
    total = sums["kept"] + summary["rest"] + summary["bias"]
    np.testing.assert_allclose(total, summary["logit"], rtol=1e-4, atol=1e-4)
    # against the full reference: the kept rows are the k largest |c|, rest is the others' sum
    got = rows(kept)
    for node in (0, 1358, 2707):
        sources, _, contrib = reference.for_target(node)
        for cls in range(cora.num_classes):
            values = contrib[:, cls].astype(np.float64)
            top = np.argsort(-np.abs(values), kind="stable")[:k]
            sel = (got["target"] == node) & (got["class"] == cls)
            np.testing.assert_array_equal(np.sort(got["source"][sel]), np.sort(sources[top]))
            row = (summary["target"] == node) & (summary["class"] == cls)
            rest = values.sum() - values[top].sum()
            np.testing.assert_allclose(summary["rest"][row], rest, rtol=1e-4, atol=1e-5)
            assert summary["sources"][row] == len(sources)


@pytest.mark.parametrize("classes", ["all", "predicted"])
def test_scores_left_on_the_device_give_the_same_job(cora, cora_model, tmp_path, classes):
    """The accelerator path (scores kept on the device, top-k selected there, only the kept
    entries sent to the host), forced on the CPU, writes the host path's rows."""
    outs = {}
    for on_device in (False, True):
        explain = jobs.ShardedExplainer(
            cora_model, cora, classes=classes, scores_on_device=on_device
        )
        outs[on_device] = tmp_path / f"device-{on_device}"
        jobs.run(
            cora_model,
            cora,
            outs[on_device],
            classes=classes,
            top_k=6,
            chunk_targets=900,
            explain=explain,
        )
    got, want = rows(jobs.read_table(outs[True])), rows(jobs.read_table(outs[False]))
    for key in got:
        np.testing.assert_array_equal(got[key], want[key])
    got, want = (rows(jobs.read_table(outs[d], "targets")) for d in (True, False))
    np.testing.assert_array_equal(got["logit"], want["logit"])
    np.testing.assert_allclose(got["rest"], want["rest"], rtol=1e-4, atol=1e-6)  # float32 sums
    assert np.abs(want["rest"]).max() > 1e-3


def test_one_schema_and_load_for_plain_and_job_output(cora, cora_model, reference, tmp_path):
    """A plain attribution directory and a finished job's dataset have the same columns, order,
    dtypes and provenance, and Attribution.load reads both back to the same attribution."""
    targets = np.arange(0, 2708, 7)
    plain = nam(cora_model, cora, targets=targets).save(tmp_path / "plain")
    jobs.run(cora_model, cora, tmp_path / "job", targets=targets, chunk_targets=150)
    job_tables = [jobs.read_table(tmp_path / "job", t) for t in ("targets", "contributions")]
    for name, job_table in zip(("targets", "contributions"), job_tables, strict=True):
        plain_table = pa.parquet.read_table(plain / f"{name}.parquet")
        assert plain_table.schema.remove_metadata() == job_table.schema.remove_metadata()
        assert (
            plain_table.schema.metadata
            == pa.parquet.read_schema(
                next((tmp_path / "job" / name).glob("part-*.parquet"))
            ).metadata
        )
    a, b = Attribution.load(plain), Attribution.load(tmp_path / "job")
    for field in ("targets", "offsets", "sources", "hops", "contributions", "classes", "rest"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.provenance() == b.provenance()
    assert b.graph_fingerprint == cora.fingerprint and b.method == "nam"
    for node in targets[::40]:
        np.testing.assert_array_equal(b.for_target(node)[0], reference.for_target(node)[0])
        np.testing.assert_array_equal(b.for_target(node)[2], reference.for_target(node)[2])


def test_topk_job_loads_with_its_rest(cora, cora_model, reference, tmp_path):
    jobs.run(cora_model, cora, tmp_path / "job", targets=[0, 1358], top_k=3)
    att = Attribution.load(tmp_path / "job")
    assert att.top_k == 3
    sums = np.add.reduceat(att.contributions.astype(np.float64), att.offsets[:-1], axis=0)
    np.testing.assert_allclose(sums + att.rest + att.bias, att.logits, rtol=1e-4, atol=1e-4)
    kept = (att.contributions != 0).sum(axis=0)
    assert np.all(kept <= 2 * 3)  # at most k per (target, class)


def test_predicted_class_only(cora, cora_model, reference, tmp_path):
    jobs.run(cora_model, cora, tmp_path / "job", classes="predicted", targets=[5, 3, 9])
    got = rows(jobs.read_table(tmp_path / "job"))
    assert set(got["target"]) == {3, 5, 9}
    for node in (3, 5, 9):
        sources, _, contrib = reference.for_target(node)
        pred = reference.predicted[node]
        sel = got["target"] == node
        assert (got["class"][sel] == pred).all()
        np.testing.assert_array_equal(got["source"][sel], np.sort(sources))
        order = np.argsort(sources)
        np.testing.assert_array_equal(got["contribution"][sel], contrib[order, pred])


def test_refuses_to_mix_jobs(cora, cora_model, tmp_path):
    out = tmp_path / "job"
    jobs.run(cora_model, cora, out, targets=np.arange(20), top_k=5, chunk_targets=10)
    with pytest.raises(JobError, match="pass --resume"):
        jobs.run(cora_model, cora, out, targets=np.arange(20), top_k=5, chunk_targets=10)
    with pytest.raises(JobError, match="other top_k"):
        jobs.run(
            cora_model, cora, out, targets=np.arange(20), top_k=6, chunk_targets=10, resume=True
        )
    with pytest.raises(JobError, match="other targets, num_targets, bounds"):
        jobs.run(
            cora_model, cora, out, targets=np.arange(30), top_k=5, chunk_targets=10, resume=True
        )
    again = jobs.run(
        cora_model, cora, out, targets=np.arange(20), top_k=5, chunk_targets=10, resume=True
    )
    assert again.computed == () and again.skipped == (0, 1)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(JobError, match="not a namjax job directory"):
        jobs.run(cora_model, cora, tmp_path / "other", targets=[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"targets": [1, 2, 1]}, "listed more than once"),
        ({"top_k": 0}, "top_k must be a positive integer"),
        ({"classes": 9}, "out of range"),
        ({"chunk_targets": 10, "memory_budget": 100}, "not both"),
    ],
)
def test_bad_job_parameters(cora, cora_model, tmp_path, kwargs, message):
    with pytest.raises(NamjaxError, match=message):
        jobs.run(cora_model, cora, tmp_path / "job", **kwargs)
    assert not (tmp_path / "job").exists()


def test_model_feature_mismatch(karate, cora_model, tmp_path):
    with pytest.raises(ModelError, match="features per node"):
        jobs.run(cora_model, karate, tmp_path / "job")


# ---------------------------------------------------------------------- real processes
@pytest.mark.slow
def test_resume_after_sigkill(cora, cora_model, reference, saved_model, data_dir, tmp_path):
    out = tmp_path / "job"
    args = {"model": saved_model, "data_dir": str(data_dir), "out": str(out), "chunk": 40}
    proc = worker(args)
    parts = out / "contributions"
    deadline = time.monotonic() + 120
    while len(jobs.finished_chunks(out)) < 3:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the job wrote no parts in 120 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = jobs.finished_chunks(out)
    num_chunks = -(-cora.num_nodes // 40)
    assert 3 <= len(done) < num_chunks, "the run finished before it was killed"
    assert not (out / jobs.SUCCESS_FILE).exists()
    before = {p.name: p.stat().st_mtime_ns for p in parts.glob("part-*")}

    result = jobs.run(cora_model, cora, out, chunk_targets=40, resume=True)
    assert set(result.skipped) == done
    assert set(result.computed) == set(range(num_chunks)) - done
    for name, mtime in before.items():  # finished parts were not rewritten
        assert (parts / name).stat().st_mtime_ns == mtime
    assert_same_dataset(out, reference)
    assert not list(out.rglob(".*tmp*"))


@pytest.mark.slow
def test_four_devices_equal_one(saved_model, data_dir, reference, tmp_path):
    args = {
        "model": saved_model,
        "data_dir": str(data_dir),
        "out": str(tmp_path / "j"),
        "chunk": 500,
    }
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    report = finish(worker(args, env=env))
    assert report["devices"] == 4
    assert_same_dataset(tmp_path / "j", reference, rtol=1e-6)


@pytest.mark.slow
def test_scores_on_four_devices_give_the_same_job(saved_model, data_dir, tmp_path):
    """The accelerator path over four (CPU) devices: the pieces' scores are joined on the
    devices, selected there, and the rows equal the host path's."""
    script = f"""
import numpy as np
from namjax import jobs, load_dataset, load_model
graph = load_dataset("cora", {str(data_dir)!r})
model = load_model({saved_model!r}, graph)
out = {{}}
for on_device in (False, True):
    explain = jobs.ShardedExplainer(model, graph, classes="predicted", scores_on_device=on_device)
    assert explain.num_devices == 4
    out[on_device] = {str(tmp_path)!r} + f"/j{{on_device}}"
    jobs.run(model, graph, out[on_device], classes="predicted", top_k=5, chunk_targets=700,
             explain=explain)
a, b = (jobs.read_table(out[d]).to_pydict() for d in (False, True))
assert a == b, "contribution rows differ"
ra, rb = (np.asarray(jobs.read_table(out[d], "targets")["rest"]) for d in (False, True))
np.testing.assert_allclose(rb, ra, rtol=1e-4, atol=1e-6)
print("same")
"""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("same")


@pytest.mark.slow
def test_two_processes_under_jax_distributed(saved_model, data_dir, reference, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {
        "model": saved_model,
        "data_dir": str(data_dir),
        "out": str(tmp_path / "j"),
        "chunk": 300,
    }
    flags = ("--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id")
    procs = [worker(base, *flags, str(i)) for i in range(2)]
    try:
        reports = [finish(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    chunks = -(-2708 // 300)
    for i, report in enumerate(reports):  # process i computes the chunks i, i + 2, ...
        assert (report["process"], report["processes"]) == (i, 2)
        assert report["computed"] == len(range(i, chunks, 2))
    assert_same_dataset(tmp_path / "j", reference)
    manifest = json.loads((tmp_path / "j" / jobs.SUCCESS_FILE).read_text())
    assert manifest["rows"]["contributions"] == reference.contributions.size


@pytest.mark.slow
def test_a_refusing_process_stops_the_others(saved_model, data_dir, tmp_path):
    """Process 0 refuses an output directory that holds other files; process 1 stops with one
    line naming it, instead of waiting at a barrier until the distributed runtime times out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "j"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    base = {"model": saved_model, "data_dir": str(data_dir), "out": str(out), "chunk": 300}
    flags = ("--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id")
    procs = [worker(base, *flags, str(i)) for i in range(2)]
    try:
        errors = [p.communicate(timeout=120)[1].strip().splitlines() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [2, 2]
    assert "is not a namjax job directory" in errors[0][-1]
    assert errors[1][-1] == (
        "namjax explain: error: process 0 of 2 failed while claiming the output directory "
        "(its own error says why); stopping"
    )
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_cli_job_errors_are_one_line(saved_model, data_dir, tmp_path, capsys):
    from namjax.cli import main

    base = ["explain", "--model", saved_model, "--dataset", "cora", "--data-dir", str(data_dir)]
    base += ["--out", str(tmp_path / "j"), "--targets", "0,1,2", "--json"]
    assert main([*base, "--top-k", "3"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["targets"], summary["computed"], summary["skipped"]) == (3, 1, 0)
    assert main([*base, "--top-k", "4", "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"namjax explain: error: cannot resume: {tmp_path / 'j'} holds a job with other top_k"
    ]
    assert main([*base, "--memory-budget", "0GB", "--out", str(tmp_path / "k")]) == 2
    assert "memory size must be positive" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("method", "options"),
    [("integrated_gradients", {"n_steps": 5}), ("saliency", {}), ("occlusion", {"mode": "zero"})],
)
def test_jobs_stream_every_method(cora, cora_model, tmp_path, method, options):
    """A job of another method writes what one explain() call gives, and records the method."""
    from namjax.explainer import explain

    targets = np.array([3, 1358, 50, 7, 2000])
    jobs.run(
        cora_model,
        cora,
        tmp_path / "j",
        targets=targets,
        chunk_targets=2,
        method=method,
        options=options,
    )
    want = explain(cora_model, cora, method, targets=targets, **options)
    got = Attribution.load(tmp_path / "j")
    assert (got.method, got.options) == (want.method, want.options)
    np.testing.assert_array_equal(got.sources, want.sources)
    np.testing.assert_allclose(got.contributions, want.contributions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.bias, want.bias, rtol=1e-5, atol=1e-6)


def test_resuming_with_another_method_or_options_is_refused(cora, cora_model, tmp_path):
    out = tmp_path / "j"
    kwargs = {"targets": [1, 2, 3], "chunk_targets": 2}
    jobs.run(cora_model, cora, out, method="integrated_gradients", options={"n_steps": 3}, **kwargs)
    with pytest.raises(JobError, match="other options"):
        jobs.run(
            cora_model,
            cora,
            out,
            resume=True,
            method="integrated_gradients",
            options={"n_steps": 4},
            **kwargs,
        )
    with pytest.raises(JobError, match="other method, options"):
        jobs.run(cora_model, cora, out, resume=True, **kwargs)


def test_cli_explain_method_and_its_options(saved_model, data_dir, tmp_path, capsys):
    import pyarrow.parquet as pq

    from namjax.cli import main

    base = ["explain", "--model", saved_model, "--dataset", "cora", "--data-dir", str(data_dir)]
    base += ["--targets", "0,1358", "--json"]
    out = tmp_path / "ig"
    assert main([*base, "--method", "integrated_gradients", "--steps", "4", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["method"] == "integrated_gradients" and summary["options"]["n_steps"] == 4
    meta = json.loads(pq.read_schema(out / "targets.parquet").metadata[b"namjax"])
    assert meta["method"] == "integrated_gradients"
    assert main([*base, "--steps", "4", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--steps applies to --method integrated_gradients only" in err
    assert not (tmp_path / "x").exists()
