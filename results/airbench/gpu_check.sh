#!/usr/bin/env bash
# The CIFAR-10 GPU check in one go: airbench94 (the `airbench` package, PyTorch) as the CIFAR-10 port's peer, and
# the port through the harness, on the same CIFAR-10 data and the same GPU (3 seeds each, 10 epochs), then the
# malaria subset through the harness (3 seeds, both splits). Results land in results/airbench/gpu/.
#
# Needs: an NVIDIA GPU with its driver; Python 3.11; the data in BENCH_DATA_DIR (default ../shared/data:
# cifar10-jpeg.zip and malaria-cells-subset.zip); and the packages below. Without internet, fill a wheel folder
# beforehand on a machine that has it (the same Python and platform) and pass it as WHEELS=/path:
#   pip download -d wheels torch torchvision airbench==0.1.8 numpy pandas pillow isal scikit-learn rich \
#       pytest==9.0.3 pytest-benchmark==5.3.1 "setuptools>=68" && pip download -d wheels ".[gpu,dev]"
# (about 5 GB: TensorFlow's and PyTorch's CUDA libraries). Optional: CIFAR10_CANONICAL_DIR=/folder holding
# cifar-10-python.tar.gz runs the peer on the canonical images as well, which tells JPEG's cost apart.
#
# Two virtual environments: PyTorch and TensorFlow[and-cuda] each pin their own CUDA library versions (nvidia-*
# wheels) and need not agree, so the peer runs in one (torch, airbench, bench without TensorFlow) and the port
# in the other (bench with TensorFlow's CUDA build). Where Pythons with these are already installed, name
# them instead and nothing is installed: PEER_PYTHON (torch, torchvision, airbench 0.1.8, bench) and
# PORT_PYTHON (bench and Keras with a GPU backend; KERAS_BACKEND=jax or torch serve as well as TensorFlow).
# For a GPU machine with no network and PyTorch and JAX but no TensorFlow, see results/gpu/. Time on one
# H100/H200-class GPU, installs aside: the peer
# about 1-2 minutes (3 runs of ~4 s, the data written once, a warm-up), the port a few minutes a run
# (untested on a GPU: its step loop and numpy augmentation run on the host), malaria about 5 minutes.
set -uo pipefail  # not -e: a failed step is reported at the end, the others still run
cd "$(dirname "$0")/../.."
failed=()
out=results/airbench/gpu
mkdir -p "$out"
export BENCH_DATA_DIR="${BENCH_DATA_DIR:-../shared/data}"
python="${PYTHON:-python3}"  # Python 3.11, what bench is verified on
venvs="${VENVS:-$HOME/.cache/bench-venvs}"  # outside the repository, so git status stays clean
pip_args=()
if [ -n "${WHEELS:-}" ]; then pip_args=(--no-index --find-links "$WHEELS"); fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"

# 1. The peer: torch, torchvision (airbench imports it), airbench 0.1.8 (the runner hooks its training loop's
#    per-epoch report), and bench's data loading without TensorFlow.
peer_python="${PEER_PYTHON:-}"
if [ -z "$peer_python" ]; then
    "$python" -m venv "$venvs/airbench"
    "$venvs/airbench/bin/pip" install -q "${pip_args[@]}" torch torchvision airbench==0.1.8 numpy pandas pillow isal \
        scikit-learn rich pytest==9.0.3 pytest-benchmark==5.3.1
    "$venvs/airbench/bin/pip" install -q "${pip_args[@]}" --no-deps -e .
    peer_python="$venvs/airbench/bin/python"
fi
"$peer_python" -m pytest tests/baselines/test_airbench_peer.py -k airbench94_peer --benchmark-only \
    -m '' -s -rs --benchmark-json "$out/peer.json" | tee "$out/peer.log" || failed+=(peer)
if [ -n "${CIFAR10_CANONICAL_DIR:-}" ]; then
    BENCH_DATA_DIR="$CIFAR10_CANONICAL_DIR" "$peer_python" -m pytest tests/baselines/test_airbench_peer.py \
        -k airbench94_peer --benchmark-only -m '' -s -rs --benchmark-json "$out/peer-canonical.json" \
        | tee "$out/peer-canonical.log" || failed+=(peer-canonical)
fi

# 2. The port: the harness with Keras on a GPU (TensorFlow's CUDA build unless PORT_PYTHON and KERAS_BACKEND
#    say otherwise), --precision auto, the full recipe for 10 epochs.
port_python="${PORT_PYTHON:-}"
if [ -z "$port_python" ]; then
    "$python" -m venv "$venvs/gpu"
    "$venvs/gpu/bin/pip" install -q "${pip_args[@]}" -e ".[gpu,dev]"
    port_python="$venvs/gpu/bin/python"
fi
AIRBENCH_PEER_OUT="$out/port" "$port_python" -m pytest tests/baselines/test_airbench_peer.py \
    -k port_on_the_same_gpu --benchmark-only -m '' -s -rs --benchmark-json "$out/port.json" | tee "$out/port.log" \
    || failed+=(port)

# 3. The malaria subset through the harness.
"$port_python" -m bench all --suite results/airbench/gpu-malaria.toml --precision auto --out "$out/malaria" \
    || failed+=(malaria)

# Side by side: recipe, seeds, mean and spread of test accuracy, seconds per epoch.
"$port_python" -m experiments.airbench_peer "$out"/peer*.json "$out/port.json" \
    | tee "$out/summary.txt" || failed+=(summary)
if [ ${#failed[@]} -gt 0 ]; then echo "failed steps: ${failed[*]}" >&2; exit 1; fi
