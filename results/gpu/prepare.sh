#!/usr/bin/env bash
# Run on a machine with network access to PyPI, from any folder: fills the wheel folders and the staged data
# that results/gpu/run.sh needs on a machine with an NVIDIA GPU, PyTorch and JAX (with CUDA) but no TensorFlow
# and no network. Everything lands under ignored paths of the repository:
#   .whl/gpu/any/       pure-Python wheels (Keras, Auto-Keras, KerasTuner, ..., airbench); this project is
#                       installed from the working tree there (editable), as here
#   .whl/gpu/cp311/     compiled wheels for CPython 3.11, manylinux x86_64 (pandas, scikit-learn, h5py, ...)
#   .whl/gpu/cp311-extra/  pillow for CPython 3.11, apart: it travels with the data (see results/gpu/README.md)
#   .whl/gpu/cp312/, .whl/gpu/cp312-extra/  the same for CPython 3.12
#   .gpu-data/          cifar10-jpeg.zip (a 10,000 / 2,000-image cut of the JPEG set, its files unchanged) and
#                       malaria-cells-subset.zip (the subset's cells at 64 px as PNG, their names unchanged)
# Only packages that such a machine may lack are fetched, each with --no-deps: numpy, scipy, ml-dtypes, jax,
# torch and the CUDA libraries are the machine's own. Compiled wheels that are usually there (pillow) are
# fetched too, as a fallback: run.sh installs a wheel only where its package is missing.
# Environment: PY_VERSIONS (default "3.11 3.12"), BENCH_DATA_DIR (default ../shared/data), CIFAR_TRAIN_PER_CLASS
# (default 1000), CIFAR_TEST_PER_CLASS (default 200).
set -euo pipefail
cd "$(dirname "$0")/../.."
whl=.whl/gpu
data="${BENCH_DATA_DIR:-../shared/data}"
python="${PYTHON:-python3}"
rm -rf "$whl" && mkdir -p "$whl/any"

# Pure Python, pinned where this project pins them (pyproject.toml), else the versions verified with them.
pure=(keras==3.12.0 autokeras==3.0.0 keras-tuner==1.4.8 kt-legacy namex absl-py rich==15.0.0 markdown-it-py mdurl
      pygments nvidia-ml-py==13.615.71 protobuf requests urllib3 idna certifi python-dateutil six joblib
      threadpoolctl narwhals cloudpickle packaging pytest==9.0.3 pluggy iniconfig pytest-benchmark==5.3.1
      py-cpuinfo)
"$python" -m pip download -q --no-deps --only-binary=:all: -d "$whl/any" "${pure[@]}"
# airbench is published as a source archive only: built into a wheel here.
"$python" -m pip wheel -q --no-deps -w "$whl/any" airbench==0.1.8

# Compiled, per CPython version: the machine's Python decides which folder run.sh installs from.
# A command on that machine receives at most 67 MB with the working tree (about 18.5 MiB): the pure and compiled
# wheels of one Python fit in one, the staged data and pillow (usually on the machine already) in another.
compiled=(pandas==3.1.1 scikit-learn==1.9.1 h5py optree dm-tree grpcio psutil==7.2.2 isal==1.9.1 charset-normalizer)
extra=(pillow==13.0.0)
for py in ${PY_VERSIONS:-3.11 3.12}; do
  tag="cp${py/./}"
  for part in "$tag" "$tag-extra"; do
    mkdir -p "$whl/$part"
    if [ "$part" = "$tag" ]; then wheels=("${compiled[@]}"); else wheels=("${extra[@]}"); fi
    "$python" -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --python-version "$py" \
        --implementation cp -d "$whl/$part" "${wheels[@]}"
  done
done

# The data, compacted (stage_data.py).
"$python" results/gpu/stage_data.py "$data" .gpu-data

code=$(git ls-files -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
echo
du -sb "$whl"/* .gpu-data | awk '{printf "%-20s %6.1f MiB\n", $2, $1 / 1048576}'
printf "%-20s %6.1f MiB\n" "tracked tree" "$(echo "$code / 1048576" | bc -l)"
echo "A command receives the working tree plus the paths it names, 67 MB at most; see results/gpu/README.md."
