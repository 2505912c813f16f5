#!/usr/bin/env bash
# Regenerates the hand-built baselines' figures (results/baselines/README.md) from real runs on this
# machine: full CIFAR-10 under 15 and 45 minutes, then the malaria subset's full fast schedule on both split
# protocols (BENCH_DATA_DIR, default ../shared/data beside the repo). About 65 minutes on a 2-core CPU.
# Runs already recorded here are kept (resume); delete runs.csv and runs/ to start over.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/baselines
data="${BENCH_DATA_DIR:-../shared/data}"
python -m bench all --suite cifar10-baseline --out "$out" --data-dir "$data" --no-report
python -m bench all --suite malaria-baseline --out "$out" --data-dir "$data" --no-report
python -m bench report --out "$out"
