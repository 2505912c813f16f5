"""The GPU check's table: each harness run (runs.csv and its history.csv) and the airbench peer (its pytest
benchmark JSON and measure.py's NVML figures), one row each.

Usage: python results/gpu/summary.py OUT   (OUT holds runs/, peer.json, peer-gpu.json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core import rundir

COLUMNS = ["what", "dataset", "n_train", "status", "precision", "accuracy", "epochs", "median_epoch_s", "fit_s",
           "trials", "gpu_model", "gpu_s", "gpu_busy_s", "gpu_mem_peak_mb", "gpu_energy_j", "cpu_energy_j",
           "search_workers", "held_s"]


def harness_rows(folder: Path) -> list[dict[str, object]]:
    if not (folder / "runs.csv").exists():
        return []
    rows = []
    for _, run in pd.read_csv(folder / "runs.csv", keep_default_na=False).iterrows():
        row = {c: run.get(c, "") for c in COLUMNS}
        row["what"] = f"{run['system']} {run['backend']} ({run['system_options'] or run['budget']})"
        history = rundir.run_dir(folder, run["run_id"]) / rundir.HISTORY
        if history.exists():
            fit = pd.read_csv(history)["fit_s"].to_numpy()
            row["epochs"], row["median_epoch_s"] = len(fit), float(np.median(np.diff(fit, prepend=0.0)))
        if run["status"] != "ok":
            row["status"] = f"{run['status']}: {str(run['error'])[:60]}"
        rows.append(row)
    return rows


def peer_rows(out: Path) -> list[dict[str, object]]:
    if not (out / "peer.json").exists():
        return [{"what": "airbench94 torch", "status": "no peer.json (see peer.log)"}]
    gpu = json.loads((out / "peer-gpu.json").read_text()) if (out / "peer-gpu.json").exists() else {}
    rows = []
    for bench in json.loads((out / "peer.json").read_text()).get("benchmarks", []):
        info = bench.get("extra_info", {})
        rows.append({"what": f"airbench94 torch (seed {info.get('seed', '')})", "dataset": "cifar10",
                     "status": "ok", "accuracy": info.get("test_accuracy"), "epochs": info.get("epochs"),
                     "median_epoch_s": info.get("median_epoch_s"), "fit_s": info.get("train_s"),
                     # Over the whole pytest command (imports and data files included): an upper bound.
                     **{k: gpu.get(k) for k in ("gpu_model", "gpu_s", "gpu_busy_s", "gpu_mem_peak_mb",
                                                "gpu_energy_j")}})
    return rows or [{"what": "airbench94 torch", "status": "skipped (see peer.log)"}]


def main(out: Path) -> str:
    table = pd.DataFrame(harness_rows(out / "runs") + peer_rows(out), columns=COLUMNS)
    return table.to_string(index=False, na_rep="", float_format="{:.4g}".format)


if __name__ == "__main__":
    print(main(Path(sys.argv[1])))
