"""The per-run folder results/runs/<run_id>/: its file names and the writers for what the harness puts there."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SPEC = "spec.json"
RECORD = "record.json"
METADATA = "metadata.json"
REPORT = "classification_report.txt"
PREDICTIONS = "predictions.csv"
LOG = "log.txt"
WORK = "work"  # scratch for the system; deleted when the run ends


def run_dir(out_dir: Path | str, run_id: str) -> Path:
    """The folder of one run."""
    return Path(out_dir) / "runs" / run_id


def write_atomic(path: Path, text: str) -> None:
    """Writes text so a reader sees the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """JSON, atomically."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def predictions_frame(proba: np.ndarray, y_true: np.ndarray, class_names: tuple[str, ...]) -> pd.DataFrame:
    """amlb's predictions layout: a probability column per class label, then predictions, then truth."""
    frame = pd.DataFrame(proba, columns=list(class_names))
    names = np.asarray(class_names, dtype=object)
    # amlb's validate_predictions wants the probability columns in lexicographic order.
    frame = frame[sorted(class_names)]
    frame["predictions"] = names[proba.argmax(axis=1)]
    frame["truth"] = names[y_true]
    return frame


def write_predictions(path: Path, proba: np.ndarray, y_true: np.ndarray, class_names: tuple[str, ...]) -> None:
    """The test predictions with probabilities, as amlb writes them."""
    write_atomic(path, predictions_frame(proba, y_true, class_names).to_csv(index=False, float_format="%.6g"))
