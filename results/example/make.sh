#!/usr/bin/env bash
# Regenerates this example report from real runs on this machine: the smoke suite (bundled digits), then the
# quick suite on real CIFAR-10 and malaria subsets (BENCH_DATA_DIR, default ../shared/data beside the repo).
# Runs already recorded here are kept (resume); delete runs.csv and runs/ to start over.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/example
python -m bench all --suite smoke --out "$out" --no-report
python -m bench all --suite quick --out "$out" --data-dir "${BENCH_DATA_DIR:-../shared/data}" --no-report
python -m bench report --out "$out"
