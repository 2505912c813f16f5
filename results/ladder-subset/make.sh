#!/usr/bin/env bash
# Regenerates this study: the ladder suite (malaria subset split by cell, a 5,000 / 2,000-image CIFAR-10 cut;
# AutoML at 30 s-4 min against resnet at 15 s-2 min; 3 seeds; about 2.1 h on 2 cores), then its report. The data
# in BENCH_DATA_DIR, default ../shared/data beside the repository. Runs already recorded here are kept (resume);
# delete runs.csv and runs/ to start over. Run it alone on the machine: every figure is a wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/ladder-subset
python -m bench all --suite ladder-subset --out "$out" --data-dir "${BENCH_DATA_DIR:-../shared/data}" --no-report
python -m bench report --out "$out"
