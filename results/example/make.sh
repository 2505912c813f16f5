#!/usr/bin/env bash
# Regenerates this example report from real runs on this machine: the smoke suite (bundled digits), then the
# quick suite on real CIFAR-10 and malaria subsets (BENCH_DATA_DIR, default ../shared/data beside the repo).
# Runs already recorded here are kept (resume); delete runs.csv and runs/ to start over. Every run computes in
# float32: the table's first runs were made before the precision option (float32), and one table holds one
# precision per run, so a like-for-like comparison keeps it (`--precision auto` picks mixed bfloat16 on
# chips with native bf16; results/precision/ compares the two).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/example
python -m bench all --suite smoke --out "$out" --precision float32 --no-report
python -m bench all --suite quick --out "$out" --precision float32 --data-dir "${BENCH_DATA_DIR:-../shared/data}" --no-report
python -m bench report --out "$out"
