"""Per-run artifacts the plots read when present: the history, trials and predictions files of a run's folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core import rundir

# The file names and columns are rundir's: rundir.HISTORY (rundir.HISTORY_COLUMNS), rundir.TRIALS (searchers:
# trial_id, started_s, ended_s, epochs, val_accuracy, status, ...) and
# rundir.PREDICTIONS (amlb format: a probability column per class, predictions, truth).


def run_folder(out_dir: Path, run_id: str) -> Path | None:
    """The run's artifact folder, or None when the id cannot name one folder."""
    if not run_id or Path(run_id).name != run_id:
        return None
    return rundir.run_dir(out_dir, run_id)


def _read(out_dir: Path, run_id: str, name: str, **kwargs) -> pd.DataFrame | None:
    folder = run_folder(out_dir, run_id)
    path = None if folder is None else folder / name
    if path is None or not path.is_file():
        return None
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None


def learning_curve(out_dir: Path, run_id: str) -> pd.DataFrame | None:
    """Seconds and best-so-far validation accuracy: from the history (fit_s) or the trials (ended_s)."""
    history = _read(out_dir, run_id, rundir.HISTORY)
    if history is not None and {"fit_s", "val_accuracy"} <= set(history.columns):
        curve = history[["fit_s", "val_accuracy"]].rename(columns={"fit_s": "seconds"})
        return _best_so_far(curve, "history")
    trials = _read(out_dir, run_id, rundir.TRIALS)
    if trials is not None and {"ended_s", "val_accuracy"} <= set(trials.columns):
        curve = trials[["ended_s", "val_accuracy"]].rename(columns={"ended_s": "seconds"})
        return _best_so_far(curve, "trials")
    return None


def _best_so_far(curve: pd.DataFrame, source: str) -> pd.DataFrame | None:
    curve = curve.apply(pd.to_numeric, errors="coerce").dropna().sort_values("seconds")
    if curve.empty:
        return None
    curve = curve.assign(best=curve["val_accuracy"].cummax(), source=source)
    return curve.reset_index(drop=True)


@dataclass(frozen=True)
class Predictions:
    """A run's test-set predictions: class labels (probability column order), predicted and true labels."""

    classes: tuple[str, ...]
    predicted: np.ndarray
    truth: np.ndarray


def predictions(out_dir: Path, run_id: str) -> Predictions | None:
    """Reads the run's predictions (labels kept as strings), or None when absent or malformed."""
    frame = _read(out_dir, run_id, rundir.PREDICTIONS, dtype=str, keep_default_na=False)
    if frame is None or list(frame.columns[-2:]) != ["predictions", "truth"] or frame.shape[1] < 3:
        return None
    return Predictions(
        tuple(str(c) for c in frame.columns[:-2]),
        frame["predictions"].to_numpy(str),
        frame["truth"].to_numpy(str),
    )
