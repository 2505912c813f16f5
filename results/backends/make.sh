#!/usr/bin/env bash
# The three Keras backends side by side on this machine, precision `auto` for all: the CIFAR-10 recipe (full
# widths, 3 epochs on a 5,000 / 2,000-image cut) and the malaria recipe (5 epochs, cell split) for training
# throughput and accuracy per epoch, and one 2-minute Auto-Keras run on digits each; then TABLE.md.
# Sized for about 25 minutes on a 2-core CPU; time it with nothing else running on the cores.
# One results folder per backend: the backend is not part of a run's identity, so the three runs of a
# configuration would share one run_id in one folder. Runs already recorded are kept (resume); delete the
# folders to start over. Environment: BENCH_DATA_DIR (default ../shared/data); BACKENDS (default all three);
# BACKENDS_OUT (default results/backends), BACKENDS_MAX_TRAIN / BACKENDS_AK_BUDGET to shrink it for a check.
set -uo pipefail  # not -e: a failed run is reported at the end, the others still run
cd "$(dirname "$0")/../.."
here=results/backends
out="${BACKENDS_OUT:-$here}"
data="${BENCH_DATA_DIR:-../shared/data}"
cifar_train="${BACKENDS_MAX_TRAIN:-5000}"
malaria_train=()
if [ -n "${BACKENDS_MAX_TRAIN:-}" ]; then malaria_train=(--max-train "$BACKENDS_MAX_TRAIN"); fi
ak_budget="${BACKENDS_AK_BUDGET:-2m}"
failed=()
for backend in ${BACKENDS:-tensorflow jax torch}; do
  common=(--backend "$backend" --precision auto --out "$out/$backend" --data-dir "$data" --seed 0)
  python -m bench run --dataset cifar10 --max-train "$cifar_train" --max-test 2000 --system resnet --budget full \
      --system-option recipe=cifar10 --system-option epochs=3 "${common[@]}" || failed+=("$backend/cifar10")
  python -m bench run --dataset malaria --dataset-option split=cell "${malaria_train[@]}" --system resnet \
      --budget full --system-option recipe=malaria --system-option epochs=5 "${common[@]}" \
      || failed+=("$backend/malaria")
  python -m bench run --dataset digits --system autokeras --budget "$ak_budget" "${common[@]}" \
      || failed+=("$backend/autokeras")
done
python "$here/table.py" "$out" || failed+=(table)
if [ ${#failed[@]} -gt 0 ]; then echo "failed: ${failed[*]}" >&2; exit 1; fi
