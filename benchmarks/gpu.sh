#!/usr/bin/env bash
# One run on a machine with a CUDA GPU and JAX installed (at most 8 minutes): the engine's
# oracle tests on the GPU backend, then benchmarks/bench_gpu.py (Cora and Citeseer first and
# warm calls, Pubmed's graph with random features of its real width, a 1M-node synthetic job
# with top-k 32). Writes tests.log, results.json and results.md into OUT_DIR.
#
#   benchmarks/gpu.sh [OUT_DIR]        (default: $OUT, else out/gpu)
#
# Environment: NAMJAX_DATA_DIR (Planetoid files; default data/planetoid, a git-ignored copy to
# carry), GPU_BENCH_NODES (job size, default 1000000), GPU_BENCH_REPEATS (default 10). To try
# it on a CPU: JAX_PLATFORMS=cpu GPU_BENCH_NODES=20000 GPU_BENCH_REPEATS=2 benchmarks/gpu.sh out/x
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-out/gpu}}"
mkdir -p "$out"
export NAMJAX_DATA_DIR="${NAMJAX_DATA_DIR:-data/planetoid}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # no install needed (no network there)
python=${PYTHON:-python3}
"$python" -c "import jax; print('backend', jax.default_backend(), jax.devices())" | tee "$out/devices.txt"
# the engine against its float64 autodiff oracles, on this backend (3 minutes at most)
timeout 180 "$python" -m pytest -q -p no:cacheprovider -m "not slow" \
  tests/test_nam.py tests/test_engine_subgraph.py tests/test_edges.py >"$out/tests.log" 2>&1
echo "oracle tests: exit $? ($(tail -n 1 "$out/tests.log"))" | tee -a "$out/devices.txt"
timeout 270 "$python" benchmarks/bench_gpu.py --out "$out" \
  --nodes "${GPU_BENCH_NODES:-1000000}" --repeats "${GPU_BENCH_REPEATS:-10}"
echo "benchmarks: exit $?"
