#!/usr/bin/env bash
# The CIFAR-10 port's differences from airbench94, one at a time, on a CPU (issue 12; AIRBENCH_DIFF.md lists
# them): the recipe as committed ('recipe'), each of airbench94's values F1-F4 alone, all four together
# ('airbench94', cifar10.AIRBENCH94), airbench's batch of 1024 (with and without them), and mixed bfloat16 with
# the whitening stem in float32 (as committed) or following the policy. Short preset (half widths, 5 epochs) on a
# fixed stratified 20,000-image training subset, the whole test set, seeds 0 and 1: 20 runs of about 7 minutes
# on an idle 2-core CPU (about 2.3 hours in all; measured: 5 epochs on 5,000 images took 4-5 minutes with the
# CPU shared, so expect longer under load). Each run writes results/airbench/cpu/<variant>-s<seed>/history.csv
# and result.json; a run already there is skipped, so the script resumes. The table at the end is the answer.
#
# Usage: results/airbench/cpu_ab.sh [variant ...]   (default: all; BENCH_DATA_DIR as for `python -m bench`)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/airbench/cpu
data="${BENCH_DATA_DIR:-../shared/data}/cifar10-jpeg.zip"
seeds="${SEEDS:-0 1}"
max_train="${MAX_TRAIN:-20000}"
# cifar10.AIRBENCH94 as literals (--set takes Python literals): KERNEL_INIT, WEIGHT_DECAY * (1 - MOMENTUM).
head_init="HEAD_INIT={'class_name': 'VarianceScaling', 'config': {'scale': 0.3333333333333333, 'mode': 'fan_in', 'distribution': 'uniform'}}"
bias_decay="BIAS_DECAY=0.0013350000000000002"
airbench=(--set RESIDUAL_ADD=False --set "$head_init" --set BN_EPSILON=1e-12 --set "$bias_decay")
variant_args() {  # the --set arguments of a variant, in the array `args`
    case "$1" in
        recipe) args=() ;;
        no-residual-add) args=(--set RESIDUAL_ADD=False) ;;
        pytorch-head) args=(--set "$head_init") ;;
        bn-eps-1e-12) args=(--set BN_EPSILON=1e-12) ;;
        bias-decay) args=(--set "$bias_decay") ;;
        airbench94) args=("${airbench[@]}") ;;
        batch-1024) args=(--set BATCH_SIZE=1024) ;;
        batch-1024-airbench94) args=(--set BATCH_SIZE=1024 "${airbench[@]}") ;;
        bf16) args=(--mixed-precision) ;;
        bf16-stem-follows-policy) args=(--mixed-precision --set STEM_DTYPE=None) ;;
        *) echo "unknown variant $1" >&2; exit 2 ;;
    esac
}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(recipe no-residual-add pytorch-head bn-eps-1e-12 bias-decay airbench94 batch-1024 batch-1024-airbench94
           bf16 bf16-stem-follows-policy)
fi
for name in "${names[@]}"; do
    variant_args "$name"
    for seed in $seeds; do
        dir="$out/$name-s$seed"
        [ -f "$dir/result.json" ] && continue
        nice -n 10 python -m bench.baselines.cifar10 --preset short --path "$data" --max-train "$max_train" \
            --seed "$seed" "${args[@]}" --out "$dir"
    done
done
python - "$out" <<'PY'
import json, sys
from pathlib import Path
import pandas as pd
rows = [dict(variant=p.parent.name.rsplit("-s", 1)[0], seed=int(p.parent.name.rsplit("-s", 1)[1]),
             **{k: json.loads(p.read_text())[k] for k in ("test_accuracy", "val_accuracy", "fit_s")})
        for p in sorted(Path(sys.argv[1]).glob("*/result.json"))]
table = pd.DataFrame(rows)
print(table.to_string(index=False))
print(table.groupby("variant")[["test_accuracy", "fit_s"]].agg(["mean", "std", "count"]).to_string())
PY
