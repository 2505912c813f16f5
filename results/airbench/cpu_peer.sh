#!/usr/bin/env bash
# airbench94 itself (the `airbench` 0.1.8 package, PyTorch) on this machine's CPU, on the same CIFAR-10 data
# as the port (BENCH_DATA_DIR, default ../shared/data: cifar10-jpeg.zip), 10 epochs, one run per seed: the
# peer that tells the port's share of the gap to 94% from the data's without a GPU. Only airbench's four
# CUDA-only calls are redirected (experiments/airbench_peer.py, run_on_cpu): float32 instead of
# float16, the CPU instead of cuda:0, the wall clock instead of CUDA events. About 40 minutes a seed on
# 2 CPU cores. Results: results/airbench/cpu-peer/ (per seed: pytest-benchmark JSON with the per-epoch test
# accuracy and seconds, and airbench's printed log; summary.txt side by side). Seeds already run are kept.
#
# PEER_PYTHON names a Python that has torch, torchvision, airbench 0.1.8, pytest-benchmark and bench's data
# loading (numpy, pandas, pillow, scikit-learn, rich, isal; then `pip install --no-deps -e .`); else one is made in $VENV (default ~/.cache/bench-venvs/airbench-cpu).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/airbench/cpu-peer
seeds="${SEEDS:-0 1}"
export BENCH_DATA_DIR="${BENCH_DATA_DIR:-../shared/data}"
peer_python="${PEER_PYTHON:-}"
if [ -z "$peer_python" ]; then
    venv="${VENV:-$HOME/.cache/bench-venvs/airbench-cpu}"
    "${PYTHON:-python3}" -m venv "$venv"
    # torch===2.13.0 (exactly): PyPI's build, which torchvision 0.28.0's PyPI wheel links against and which
    # runs on a CPU; a local "+cpu" build (this project's machines keep one in /opt/wheels) would satisfy
    # ==2.13.0 but lacks torchvision's operators.
    "$venv/bin/pip" install -q "torch===2.13.0" "torchvision==0.28.0" airbench==0.1.8 numpy pandas pillow \
        scikit-learn rich isal pytest==9.0.3 pytest-benchmark==5.3.1
    "$venv/bin/pip" install -q --no-deps -e .
    peer_python="$venv/bin/python"
fi
mkdir -p "$out"
for seed in $seeds; do
    if [ -f "$out/peer-s$seed.json" ]; then continue; fi
    # Written under a temporary name and renamed once the run passed: a failed run is not taken for done.
    AIRBENCH_PEER_DEVICE=cpu AIRBENCH_PEER_SEEDS="$seed" "$peer_python" -m pytest tests/baselines/test_airbench_peer.py \
        -k airbench94_peer --benchmark-only -m '' -s -rs -p no:cacheprovider \
        --benchmark-json "$out/.peer-s$seed.json" | tee "$out/peer-s$seed.log"
    # A run that skipped (no CIFAR-10, no torch) leaves a JSON without results: the summary stops the script.
    "$peer_python" -m experiments.airbench_peer "$out/.peer-s$seed.json" > /dev/null
    mv "$out/.peer-s$seed.json" "$out/peer-s$seed.json"
done
"$peer_python" -m experiments.airbench_peer "$out"/peer-s*.json | tee "$out/summary.txt"
