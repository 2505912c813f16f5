#!/usr/bin/env bash
# Regenerates this study: the ladder suite (all 27,558 malaria cells at 64 px split by cell; autokeras at 2, 4, 8
# and 16 min against resnet at 2, 4, 8 and 16 min, resnet-tuned at 4 min; 3 seeds; about 3 h on 2 cores), then
# its report.
# The data in BENCH_DATA_DIR, default ../shared/data beside the repository (malaria-cells-64px.zip). Runs already
# recorded here are kept (resume); delete runs.csv and runs/ to start over. Run it alone on the machine: every
# figure is a wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/ladder
python -m bench all --suite ladder --out "$out" --data-dir "${BENCH_DATA_DIR:-../shared/data}" --no-report
python -m bench report --out "$out"
