"""The results folder's layout, declared once: runs.csv, runs/<run_id>/ and the file names in a run's folder,
with the writers for what the harness puts there. Imports nothing of the project, so systems may use it."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and pandas load on use: the command line reads this module's names at start
    import numpy as np
    import pandas as pd

RUNS_TABLE = "runs.csv"  # the results table, one row per run, in the output folder
RUNS_DIR = "runs"  # holds one folder per run, named by run_id
SPEC = "spec.json"
RECORD = "record.json"  # written last: its presence means the run's folder is complete
METADATA = "metadata.json"
REPORT = "classification_report.txt"
PREDICTIONS = "predictions.csv"
LOG = "log.txt"
HISTORY = "history.csv"  # per-epoch training of a final model: HISTORY_COLUMNS
# history.csv's columns, as baselines.training.train writes them: epoch (from 1), fit_s (training seconds so far,
# validation passes excluded), loss (the epoch's mean), val_accuracy (after the epoch; empty without a validation
# slice), planned_epochs (the schedule's length as planned after the epoch).
HISTORY_COLUMNS = ("epoch", "fit_s", "loss", "val_accuracy", "planned_epochs")
TRIALS = "trials.csv"  # searchers: one row per trial
MODEL = "model.keras"  # the final model, only when the run keeps models
WORK = "work"  # scratch for the system; deleted when the run ends
WORKER_RESULT = "result.json"  # in WORK: the worker's part of the record, which the supervisor completes
# An error cell (runs.csv, trials.csv) stays one readable line of at most this many characters; the whole
# traceback is in the run's log.txt.
ERROR_CHARS = 500
# A temporary file's random name part (16 hex digits: a clash is all but impossible) and the names tried
# before giving up (a clash each time would mean something else is wrong).
TEMP_NAME_BYTES = 8
TEMP_NAME_TRIES = 100


def run_dir(out_dir: Path | str, run_id: str) -> Path:
    """The folder of one run."""
    return Path(out_dir) / RUNS_DIR / run_id


def error_text(exc: BaseException | str) -> str:
    """An error cell: 'Type: message' of an exception (a text as it is) on one line, cut to ERROR_CHARS."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 3] + "..."


def folder_mb(path: Path) -> float:
    """Bytes of the files under path, in MiB (0 for a missing folder; files vanishing meanwhile are skipped)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total / 2**20


def _create_temp(path: Path) -> tuple[int, str]:
    """A new hidden file beside path, open for writing, created as open() creates files: mode 0666 less the
    umask. (mkstemp's 0600 would leave results readable by their owner alone while the logs beside them, written
    with open(), are not; one rule for every file of a results folder: the user's umask.)"""
    for _ in range(TEMP_NAME_TRIES):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(TEMP_NAME_BYTES)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path} after {TEMP_NAME_TRIES} tries")


def write_atomic(path: Path, text: str) -> None:
    """Writes text so a reader sees the old file or the new one, never a partial one; the file's mode follows
    the umask, as for any file open() creates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
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


PROBABILITY_DECIMALS = 6  # digits written per probability in predictions.csv


def rounded_probabilities(proba: np.ndarray, decimals: int = PROBABILITY_DECIMALS) -> np.ndarray:
    """Rows rounded to `decimals` that still sum to one at that precision: the rounding's remainder goes to
    each row's largest entry (so the predicted class stays the same). amlb's scorer checks the sums."""
    import numpy as np

    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, None)
    p = p / p.sum(axis=1, keepdims=True)
    rounded = np.round(p, decimals)
    top = p.argmax(axis=1)
    rounded[np.arange(len(rounded)), top] += np.round(1.0 - rounded.sum(axis=1), decimals)
    return rounded


def predictions_frame(proba: np.ndarray, y_true: np.ndarray, class_names: tuple[str, ...]) -> pd.DataFrame:
    """amlb's predictions layout: a probability column per class label, then predictions, then truth."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(rounded_probabilities(proba), columns=list(class_names))
    names = np.asarray(class_names, dtype=object)
    # amlb's validate_predictions wants the probability columns in lexicographic order.
    frame = frame[sorted(class_names)]
    frame["predictions"] = names[proba.argmax(axis=1)]
    frame["truth"] = names[y_true]
    return frame


def write_predictions(path: Path, proba: np.ndarray, y_true: np.ndarray, class_names: tuple[str, ...]) -> None:
    """The test predictions with probabilities, as amlb writes them."""
    text = predictions_frame(proba, y_true, class_names).to_csv(index=False, float_format=f"%.{PROBABILITY_DECIMALS}f")
    write_atomic(path, text)
