#!/usr/bin/env bash
# The CIFAR-10 port's differences from airbench94, one at a time, on a CPU (AIRBENCH_DIFF.md lists
# them): the recipe as committed ('recipe'), each of airbench94's values F1-F4 alone, all four together
# ('airbench94', cifar10.AIRBENCH94), airbench's batch of 1024 (with and without them), and mixed bfloat16 with
# the whitening stem in float32 (as committed) or following the policy, and training on every image (no
# validation slice, as airbench). Short preset (half widths, 5 epochs) on a fixed stratified 20,000-image
# training subset, the whole test set, seeds 0 and 1: 22 runs of 3-5 minutes on a 2-core CPU (about 1.5 hours
# in all). Each run writes results/airbench/cpu/<variant>-s<seed>/history.csv and result.json; a run already
# there is skipped, so the script resumes. Every run also scores its test-time views averaged as airbench does
# (the softmax of the mean logit) beside the recipe's mean probability: the column tta_logits. The table at
# the end is the answer.
#
# Usage: results/airbench/cpu_ab.sh [variant ...]   (default: all; BENCH_DATA_DIR as for `python -m bench`)
# The table it printed is committed as results/airbench/AB.txt, the runs' result.json and history.csv under
# results/airbench/cpu/.
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
# The variants are changes to the recipe as it was when they were first run, with the explicit skip connection
# (F1, RESIDUAL_ADD=True); the recipe has since dropped it on their evidence, so each pins it.
was=(--set RESIDUAL_ADD=True)
variant_args() {  # the --set arguments of a variant, in the array `args`
    case "$1" in
        recipe) args=("${was[@]}") ;;
        no-residual-add) args=(--set RESIDUAL_ADD=False) ;;
        pytorch-head) args=("${was[@]}" --set "$head_init") ;;
        bn-eps-1e-12) args=("${was[@]}" --set BN_EPSILON=1e-12) ;;
        bias-decay) args=("${was[@]}" --set "$bias_decay") ;;
        airbench94) args=("${airbench[@]}") ;;
        batch-1024) args=("${was[@]}" --set BATCH_SIZE=1024) ;;
        batch-1024-airbench94) args=(--set BATCH_SIZE=1024 "${airbench[@]}") ;;
        bf16) args=("${was[@]}" --mixed-precision) ;;
        bf16-stem-follows-policy) args=("${was[@]}" --mixed-precision --set STEM_DTYPE=None) ;;
        train-on-all) args=("${was[@]}" --set VAL_FRACTION=0) ;;
        *) echo "unknown variant $1" >&2; exit 2 ;;
    esac
}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(recipe no-residual-add pytorch-head bn-eps-1e-12 bias-decay airbench94 batch-1024 batch-1024-airbench94
           bf16 bf16-stem-follows-policy train-on-all)
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
rows = []
for p in sorted(Path(sys.argv[1]).glob("*/result.json")):
    result = json.loads(p.read_text())
    variant, seed = p.parent.name.rsplit("-s", 1)
    # Runs made before the CLI scored both averages have no tta_logits (NaN).
    logits = result.get("test_accuracy_by_tta_average", {}).get("logits", float("nan"))
    rows.append(dict(variant=variant, seed=int(seed), test_accuracy=result["test_accuracy"], tta_logits=logits,
                     val_accuracy=result["val_accuracy"], fit_s=result["fit_s"]))
table = pd.DataFrame(rows)
print(table.to_string(index=False))
print(table.groupby("variant")[["test_accuracy", "tta_logits", "fit_s"]].agg(["mean", "std", "count"]).to_string())
paired = table.dropna(subset=["tta_logits"])
gain = 100 * (paired["tta_logits"] - paired["test_accuracy"])
print(f"\nlogit average minus probability average, paired over {len(gain)} runs: mean {gain.mean():+.3f} points, "
      f"min {gain.min():+.2f}, max {gain.max():+.2f}")
PY
