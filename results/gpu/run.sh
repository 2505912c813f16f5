#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU, PyTorch and JAX with CUDA, no TensorFlow and no network:
# installs the wheels results/gpu/prepare.sh fetched (offline, only what is missing), then through the harness
# with --backend jax --precision auto (bf16 on Ampere and later): the CIFAR-10 recipe's 10 epochs on the staged
# 10,000 / 2,000-image cut, the malaria recipe on the malaria subset (cell split), one 2-minute Auto-Keras run
# on the same CIFAR-10 cut, and airbench94 (PyTorch) on the same CIFAR-10 images; last, a 1-minute Auto-Keras
# search over two processes sharing the GPU (search_workers=2); then a table. About 11 minutes on an
# H100/H200-class GPU. Every harness run records gpu_s, gpu_busy_s, gpu_mem_peak_mb and gpu_energy_j
# (NVML); the peer's are measured around its whole command (measure.py).
#
# Usage: results/gpu/run.sh [install|run|all]   (default all; install alone when the wheels and the data travel
# in separate calls: see results/gpu/README.md)
# Environment: OUT (results; default ./gpu-out), PYTHON (default python3), GPU_CHECK_DRY=1 (the same steps on
# a CPU with tiny budgets and the installed environment, TensorFlow hidden as on the GPU machine; no install).
set -uo pipefail  # not -e: a failed step is reported at the end, the others still run
cd "$(dirname "$0")/../.."
step="${1:-all}"
here=results/gpu
out="${OUT:-./gpu-out}"
python="${PYTHON:-python3}"
dry="${GPU_CHECK_DRY:-}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
failed=()

install() {
  local tag
  tag=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  local folders=()
  for f in .whl/gpu/any ".whl/gpu/$tag" ".whl/gpu/$tag-extra"; do [ -d "$f" ] && folders+=("$f"); done
  if [ ${#folders[@]} -eq 0 ]; then echo "no wheel folders (.whl/gpu/any, .whl/gpu/$tag): run prepare.sh" >&2; return 1; fi
  # A wheel is installed where its package is missing, and for the packages whose version this project pins
  # where another is installed; the machine's own numpy, scipy, pillow, pandas, ... are kept (--no-deps).
  "$python" - "${folders[@]}" <<'PY' || return 1
import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

PINNED = {"keras", "autokeras", "keras_tuner", "airbench", "nvidia_ml_py"}
wanted = []
for folder in sys.argv[1:]:
    for wheel in sorted(Path(folder).glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        key = re.sub(r"[-_.]+", "_", name).lower()
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            have = None
        if have is None or (key in PINNED and have != version):
            wanted.append(str(wheel))
        print(f"{name:24} {version:14} machine: {have or '-':14} {'install' if str(wheel) in wanted else 'keep'}")
if wanted:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", *wanted],
                          env={**__import__("os").environ, "PIP_BREAK_SYSTEM_PACKAGES": "1"})
PY
  # This project from the working tree, editable as the README installs it: its packages bench.datasets and
  # bench.baselines live in other folders, which only the install maps (setuptools comes with PyTorch).
  "$python" -c 'import bench.datasets' 2>/dev/null || PIP_BREAK_SYSTEM_PACKAGES=1 "$python" -m pip install -q \
    --no-index --no-deps --no-build-isolation -e . || return 1
}

check() {
  # What the runs will import, and what the machine computes with.
  "$python" - <<'PY' 2>&1 | tee "$out/environment.txt"
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "scipy", "pandas", "sklearn", "PIL", "h5py", "keras", "autokeras", "keras_tuner", "jax",
             "torch", "torchvision", "airbench", "pynvml", "isal", "bench"):
    try:
        module = importlib.import_module(name)
        print(f"{name:12} {getattr(module, '__version__', 'ok')}")
    except Exception as exc:  # the runs needing it will fail with the same error
        print(f"{name:12} MISSING ({type(exc).__name__}: {exc})")
try:
    import jax
    print("jax devices", jax.devices())
except Exception as exc:
    print("jax devices: none", exc)
PY
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv \
    | tee -a "$out/environment.txt"
}

runs() {
  local data cut epochs ak_budget
  if [ -n "$dry" ]; then
    # The machine's situation on a CPU: TensorFlow hidden, the staged data (else the shared one) cut to seconds.
    local hide
    hide=$(mktemp -d)
    printf '%s\n' 'import sys' 'class _Hide:' '    def find_spec(self, name, path=None, target=None):' \
      '        if name.split(".")[0] in ("tensorflow", "tensorboard"):' \
      '            raise ImportError(f"{name} is hidden (GPU_CHECK_DRY)")' 'sys.meta_path.insert(0, _Hide())' \
      > "$hide/sitecustomize.py"
    export PYTHONPATH="$hide${PYTHONPATH:+:$PYTHONPATH}"
    data=.gpu-data; [ -f .gpu-data/cifar10-jpeg.zip ] || data="${BENCH_DATA_DIR:-../shared/data}"
    cut=(--max-train 300 --max-test 200); epochs=(--system-option epochs=1); ak_budget=1m
  else
    data=.gpu-data; cut=(); epochs=(); ak_budget=2m
  fi
  export BENCH_DATA_DIR="$data"
  local common=(--backend jax --precision auto --out "$out/runs" --seed 0)
  "$python" -m bench run --dataset cifar10 "${cut[@]}" --system resnet --budget full --system-option recipe=cifar10 \
    "${epochs[@]}" --timeout 7m "${common[@]}" || failed+=(cifar10)

  # airbench94 on the same images: its pytest runner writes the arrays the harness loads as airbench's files.
  # torchvision is only needed for airbench's Normalize (and downloads); without it, the shim stands in.
  local peer_path="${PYTHONPATH:-}"
  "$python" -c 'import torchvision' 2>/dev/null || peer_path="$here/shims${peer_path:+:$peer_path}"
  PYTHONPATH="$peer_path" AIRBENCH_PEER_SEEDS=0 "$python" "$here/measure.py" "$out/peer-gpu.json" -- \
    "$python" -m pytest tests/baselines/test_airbench_peer.py -k airbench94_peer --benchmark-only -m '' -s -rs \
    -p no:cacheprovider --benchmark-json "$out/peer.json" 2>&1 | tee "$out/peer.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(airbench)

  "$python" -m bench run --dataset malaria --dataset-option split=cell "${cut[@]}" --system resnet --budget full \
    --system-option recipe=malaria "${epochs[@]}" --timeout 5m "${common[@]}" || failed+=(malaria)
  "$python" -m bench run --dataset cifar10 "${cut[@]}" --system autokeras --budget "$ak_budget" "${common[@]}" \
    || failed+=(autokeras)
  # One search over two processes sharing the one GPU (each allocating its memory as it goes), last: the
  # steps above are the check's figures, this one the distributed search's GPU path.
  "$python" -m bench run --dataset cifar10 "${cut[@]}" --system autokeras --budget 1m \
    --system-option search_workers=2 "${common[@]}" || failed+=(search-workers)
  "$python" "$here/summary.py" "$out" | tee "$out/SUMMARY.txt" || failed+=(summary)
}

if [ "$step" = install ] || [ "$step" = all ]; then
  if [ -n "$dry" ]; then echo "GPU_CHECK_DRY: no install, the environment as it is"; else install || failed+=(install); fi
fi
if [ "$step" = run ] || [ "$step" = all ]; then
  check
  runs
fi
if [ ${#failed[@]} -gt 0 ]; then echo "failed steps: ${failed[*]}" >&2; exit 1; fi
