#!/usr/bin/env bash
# One Auto-Keras search in one process and in two (search_workers), side by side on the same data, budget and
# seed, each process on one core: the one-process run is pinned to core 0, the two-process run has cores 0 and 1
# (the search gives each process one of them). Needs a machine of two or more cores and the malaria subset
# (BENCH_DATA_DIR, default ../shared/data beside the repo). Runs already recorded here are kept (resume).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/distributed
data="${BENCH_DATA_DIR:-../shared/data}"
for seed in ${SEEDS:-0 1 2}; do
  taskset -c 0 python -m bench run --dataset malaria --dataset-option split=cell --system autokeras --budget 2m \
    --seed "$seed" --system-option search_workers=1 --data-dir "$data" --out "$out"
  taskset -c 0,1 python -m bench run --dataset malaria --dataset-option split=cell --system autokeras --budget 2m \
    --seed "$seed" --system-option search_workers=2 --data-dir "$data" --out "$out"
done
python -m bench report --out "$out"
