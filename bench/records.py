"""Run records: one row per run in one long results table, with fixed leading columns (as amlb)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

STATUSES = ("ok", "failed", "timeout", "skipped")


@dataclass(frozen=True)
class RunRecord:
    """The outcome of one run: identity, status, metrics from the harness, and resource use."""

    # --- fixed leading columns -------------------------------------------------------------
    run_id: str
    suite: str
    dataset: str
    split: str  # split protocol the data used: official, cell, patient, stratified-25%, ...
    system: str
    budget: str
    seed: int
    status: str  # one of STATUSES
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    macro_f1: float | None = None
    log_loss: float | None = None
    fit_s: float | None = None  # wall seconds in fit (for AutoML: search + refit)
    predict_s: float | None = None  # wall seconds predicting the test set
    cpu_s: float | None = None  # process CPU seconds over fit and predict, all threads
    gpu_s: float | None = None  # GPU-busy wall seconds (fit + predict on a GPU); empty without one
    peak_rss_mb: float | None = None
    params: int | None = None
    trials: int | None = None
    started_utc: str = ""
    error: str = ""
    # --- further columns ------------------------------------------------------------------------
    dataset_options: str = ""
    system_options: str = ""
    n_train: int | None = None
    n_test: int | None = None
    n_classes: int | None = None
    duration_s: float | None = None  # whole run process, data loading included
    search_s: float | None = None  # AutoML: the search phase of fit
    refit_s: float | None = None  # AutoML: refitting the best model on all training data
    overshoot_s: float | None = None  # search time beyond the wall-clock budget
    trials_failed: int | None = None
    val_accuracy: float | None = None  # best validation accuracy seen during fit
    peak_disk_mb: float | None = None
    device: str = ""  # 'cpu' or the GPU model
    hardware: str = ""  # short CPU/GPU description for plot titles

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def replace(self, **changes: Any) -> RunRecord:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_row(self) -> dict[str, str]:
        """CSV cells: numbers as text, None as an empty cell."""
        return {f.name: _cell(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_row(cls, row: dict[str, str]) -> RunRecord:
        """Parses CSV cells back; unknown columns are ignored, missing ones take defaults."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in row:
                continue
            kwargs[f.name] = _parse(row[f.name], _TYPES[f.name])
        return cls(**kwargs)

    def to_json(self) -> str:
        """The record as a JSON object (None as null)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        """Inverse of to_json."""
        d = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunRecord))


def _base_type(annotation: str) -> str:
    for name in ("int", "float", "str"):
        if annotation.startswith(name):
            return name
    raise TypeError(annotation)


_TYPES = {f.name: _base_type(str(f.type)) for f in dataclasses.fields(RunRecord)}
RECORD_FIELDS = frozenset(COLUMNS)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _parse(text: str, kind: str) -> Any:
    if kind == "str":
        return text
    if text == "":
        return None
    return int(float(text)) if kind == "int" else float(text)
