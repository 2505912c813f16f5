#!/usr/bin/env bash
# Regenerates this study: the ladder-subset suite (malaria subset split by cell, a 5,000 / 2,000-image CIFAR-10
# cut; Auto-Keras and AutoGluon at 30 s-4 min against resnet at 15 s-2 min; 3 seeds; about 3.7 h on 2 cores),
# then its report. The data in BENCH_DATA_DIR, default ../shared/data beside the repository; the AutoGluon runs
# need its environment (`python -m bench setup autogluon`), else they are recorded failed. Runs already recorded
# here are kept (resume); delete runs.csv and runs/ to start over. Run it alone on the machine: every figure is a
# wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/ladder-subset
python -m bench all --suite ladder-subset --out "$out" --data-dir "${BENCH_DATA_DIR:-../shared/data}" --no-report
python -m bench report --out "$out"
