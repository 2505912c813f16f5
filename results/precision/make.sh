#!/usr/bin/env bash
# Float32 against `--precision auto` (mixed bfloat16 on chips with native bf16) for the baseline recipes at
# their own schedules: accuracy and fit time per run, side by side. Data: BENCH_DATA_DIR (default ../shared/data).
# Runs already recorded are kept (resume); delete the two folders to start over.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=results/precision
data="${BENCH_DATA_DIR:-../shared/data}"
for suite in suite suite-cifar10 suite-cifar10-full; do
  python -m bench all --suite "$here/$suite.toml" --precision float32 --out "$here/float32" --data-dir "$data" --no-report
  python -m bench all --suite "$here/$suite.toml" --precision auto --out "$here/auto" --data-dir "$data" --no-report
done
python - "$here" <<'PY'
import sys
from pathlib import Path

import pandas as pd

here = Path(sys.argv[1])
keys = ["dataset", "split", "n_train", "system", "system_options", "budget", "seed"]
runs = {name: pd.read_csv(here / name / "runs.csv", keep_default_na=False) for name in ("float32", "auto")}
both = runs["float32"].merge(runs["auto"], on=keys, suffixes=("_f32", "_auto"))
both = both[(both["status_f32"] == "ok") & (both["status_auto"] == "ok")]
table = both[keys[:3] + ["seed", "precision_auto", "accuracy_f32", "accuracy_auto", "fit_s_f32", "fit_s_auto"]]
table = table.assign(speedup=both["fit_s_f32"] / both["fit_s_auto"])
means = table.groupby(["dataset", "split", "n_train"])[["accuracy_f32", "accuracy_auto", "speedup"]].mean()
# Runs recorded in one precision only (the other not run yet): listed, not in the means.
every = runs["float32"].merge(runs["auto"], on=keys, how="outer", suffixes=("_f32", "_auto"), indicator=True)
lone = every[(every["_merge"] != "both") & every["status_f32"].isin(["ok", float("nan")])
             & every["status_auto"].isin(["ok", float("nan")])]
lone = lone[keys[:3] + ["seed", "accuracy_f32", "accuracy_auto", "fit_s_f32", "fit_s_auto"]]
text = (f"Per run:\n\n{table.to_string(index=False, float_format='{:.4g}'.format)}\n\n"
        f"Means per data set:\n\n{means.to_string(float_format='{:.4g}'.format)}\n")
if len(lone):
    text += f"\nIn one precision only:\n\n{lone.to_string(index=False, float_format='{:.4g}'.format)}\n"
(here / "COMPARISON.txt").write_text(text)
print(text)
PY
