#!/usr/bin/env bash
# The baseline's accuracy-against-budget curve on the malaria subset (BENCH_DATA_DIR, default ../shared/data),
# both splits, in the precision `--precision auto` picks here: budgets 30 s to 4 min under the usual 4x
# schedule cap (2 seeds), and 4 and 8 min with the cap at 16x (1 seed), then the report and CURVE.txt (test
# accuracy, epochs run and fit time per run, and the means per budget). About 50 minutes on a 2-core CPU.
# Runs already recorded are kept (resume); delete runs.csv and runs/ to start over.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=results/budget_curve
data="${BENCH_DATA_DIR:-../shared/data}"
for suite in capped uncapped; do
  python -m bench all --suite "$here/$suite.toml" --out "$here" --data-dir "$data" --no-report
done
python -m bench report --out "$here"
python - "$here" <<'PY'
import sys
from pathlib import Path

import pandas as pd

here = Path(sys.argv[1])
runs = pd.read_csv(here / "runs.csv", dtype={"system_options": str}, keep_default_na=False)
runs = runs[runs["status"] == "ok"].copy()
runs["cap"] = ["16x" if "max_scale_up=16" in opts else "4x" for opts in runs["system_options"]]
runs["seconds"] = runs["budget"].map(lambda b: float(b[:-1]) * {"s": 1, "m": 60}[b[-1]])
history = {rid: pd.read_csv(here / "runs" / rid / "history.csv") for rid in runs["run_id"]}
runs["epochs"] = [len(history[rid]) for rid in runs["run_id"]]
runs["fit_min"] = [history[rid]["fit_s"].iloc[-1] / 60 for rid in runs["run_id"]]
runs["accuracy_pct"] = 100 * runs["accuracy"]
# The system's whole training call (validation passes included) against the budget: how much of it was used.
runs["used_pct"] = 100 * runs["fit_s"] / runs["seconds"]
runs = runs.sort_values(["split", "cap", "seconds", "seed"])
per_run = runs[["split", "cap", "budget", "seed", "precision", "epochs", "fit_min", "used_pct", "accuracy_pct"]]
means = runs.groupby(["split", "cap", "seconds", "budget"])[["epochs", "fit_min", "used_pct", "accuracy_pct"]].mean()
text = (f"Per run:\n\n{per_run.to_string(index=False, float_format='{:.2f}'.format)}\n\n"
        f"Means per split, cap and budget:\n\n{means.droplevel('seconds').to_string(float_format='{:.2f}'.format)}\n")
(here / "CURVE.txt").write_text(text)
print(text)
PY
