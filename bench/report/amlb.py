"""results_amlb.csv: our runs in the AutoML Benchmark's scoreboard layout, so amlb's tools read them."""

from __future__ import annotations

import json
import math
from importlib import metadata
from pathlib import Path

import pandas as pd

from bench.core import rundir
from bench.report import artifacts
from bench.report.runs import declared_library

AMLB_FILE = "results_amlb.csv"
# amlb.results.Scoreboard.as_data_frame: these columns first, in this order.
FIXED_COLUMNS = (
    "id",
    "task",
    "framework",
    "constraint",
    "fold",
    "type",
    "result",
    "metric",
    "mode",
    "version",
    "params",
    "app_version",
    "utc",
    "duration",
    "training_duration",
    "predict_duration",
    "models_count",
    "seed",
    "info",
)
# Then metric columns named as amlb's ClassificationResult methods, sorted; amlb's f1 is weighted or binary,
# not macro, so our macro F1 goes with the further columns instead.
METRIC_COLUMNS = {"acc": "accuracy", "balacc": "balanced_accuracy", "logloss": "log_loss"}
# Then further columns, sorted by name as amlb sorts its dynamic columns.
EXTRA_COLUMNS = {
    "budget_scope": "budget_scope",
    "cpu_duration": "cpu_s",
    "data_fingerprint": "data_fingerprint",
    "dataset_options": "dataset_options",
    "device": "device",
    "gpu_busy_duration": "gpu_busy_s",
    "gpu_duration": "gpu_s",
    "hardware": "hardware",
    "macro_f1": "macro_f1",
    "node": "node",
    "role": "role",
    "run_id": "run_id",
    "split": "split",
    "status": "status",
    "suite": "suite",
}
MAIN_METRIC = "acc"  # higher is better, so amlb writes it as is (no 'neg_' prefix)
RUN_MODE = "local"  # amlb's mode for runs on this machine (its others: docker, singularity, aws)


def _app_version() -> str:
    try:
        return f"bench {metadata.version('bench')}"
    except metadata.PackageNotFoundError:
        return ""


def _task_type(n_classes: float) -> str:
    if n_classes is None or math.isnan(n_classes):
        return ""
    return "binary" if int(n_classes) == 2 else "multiclass"


def _framework_version(out_dir: Path | None, run: dict) -> str:
    """The version of the library the system wraps: the recorded library_version, else (rows recorded before
    that column) the run's metadata ('versions' by distribution name); '' when neither has it."""
    if run["library_version"]:
        return str(run["library_version"])
    library = run["library"] or declared_library(run["system"])
    folder = None if out_dir is None or not library else artifacts.run_folder(out_dir, run["run_id"])
    path = None if folder is None else folder / rundir.METADATA
    if path is None or not path.is_file():
        return ""
    try:
        versions = json.loads(path.read_text(encoding="utf-8")).get("versions", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return ""
    return str(versions.get(library, "")) if isinstance(versions, dict) else ""


def amlb_frame(runs: pd.DataFrame, out_dir: Path | None = None) -> pd.DataFrame:
    """One amlb scoreboard row per run; runs that did not end ok have no result and say why in info."""
    app_version = _app_version()
    rows = []
    for run in runs.to_dict("records"):
        ok = run["status"] == "ok"
        row = {
            "id": f"{run['dataset']}/{run['split']}" if run["split"] else run["dataset"],
            "task": run["dataset"],
            "framework": run["system"],
            "constraint": run["budget"],
            "fold": int(run["seed"]),
            "type": _task_type(run["n_classes"]),
            "result": run["accuracy"] if ok else math.nan,
            "metric": MAIN_METRIC,
            "mode": RUN_MODE,
            "version": _framework_version(out_dir, run),
            "params": run["system_options"],
            "app_version": app_version,
            "utc": run["started_utc"],
            "duration": run["duration_s"],
            "training_duration": run["fit_s"],
            "predict_duration": run["predict_s"],
            "models_count": run["trials"],
            "seed": int(run["seed"]),
            "info": "" if ok else (f"{run['status']}: {run['error']}" if run["error"] else run["status"]),
        }
        row.update({name: (run[src] if ok else math.nan) for name, src in sorted(METRIC_COLUMNS.items())})
        row.update({name: run[src] for name, src in sorted(EXTRA_COLUMNS.items())})
        rows.append(row)
    columns = [*FIXED_COLUMNS, *sorted(METRIC_COLUMNS), *sorted(EXTRA_COLUMNS)]
    frame = pd.DataFrame(rows, columns=columns)
    frame["models_count"] = frame["models_count"].astype("Int64")
    return frame
