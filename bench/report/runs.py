"""The results table as the report sees it: loading runs.csv, grouping by data, classing systems."""

from __future__ import annotations

import csv
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.budget import BudgetError, parse_budget
from bench.records import COLUMNS, RunRecord

RUNS_FILE = "runs.csv"
RUNS_DIR = "runs"  # per-run folders: <out_dir>/runs/<run_id>/
FLOOR_SYSTEM = "majority"  # predicts the most frequent class: the accuracy any system must beat
AUTOML_PREFIX = "autokeras"  # every system whose name starts with it is an AutoML system
# Order of system classes in tables and legends: the floor first, then the baseline, then AutoML.
CLASS_ORDER = {"floor": 0, "baseline": 1, "automl": 2, "other": 3}
_NUMERIC = tuple(f.name for f in dataclasses.fields(RunRecord) if str(f.type).startswith(("int", "float")))


class ReportError(ValueError):
    """Results that cannot be reported: a missing or empty or malformed runs.csv."""


@dataclass(frozen=True, order=True)
class Group:
    """Runs that are comparable: the same dataset under the same split protocol and options."""

    dataset: str
    split: str
    dataset_options: str

    @property
    def label(self) -> str:
        """Readable name, e.g. 'malaria (cell split)'."""
        details = [f"{self.split} split"] if self.split else []
        # The split protocol is already named; other options (subset sizes, image size) follow it.
        extra = [o for o in self.dataset_options.split(";") if o and o != f"split={self.split}"]
        if extra:
            details.append(", ".join(extra))
        return f"{self.dataset} ({'; '.join(details)})" if details else self.dataset

    @property
    def slug(self) -> str:
        """File-name-safe form of the label."""
        text = "-".join(p for p in (self.dataset, self.split, self.dataset_options) if p)
        return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "data"


def load_runs(out_dir: Path) -> pd.DataFrame:
    """Reads out_dir/runs.csv into a frame with RunRecord's columns (numbers as floats, None as NaN)."""
    path = Path(out_dir) / RUNS_FILE
    hint = "run `python -m bench all` first"
    if not path.is_file():
        raise ReportError(f"no results in {out_dir}: {path.name} is missing; {hint}")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ReportError(f"no results in {out_dir}: {path.name} has no runs; {hint}")
    try:
        records = [RunRecord.from_row(row) for row in rows]
    except (ValueError, TypeError) as error:
        raise ReportError(f"{path} is not a bench results table ({error}); regenerate it with {hint}") from error
    frame = pd.DataFrame([dataclasses.asdict(r) for r in records], columns=list(COLUMNS))
    for name in _NUMERIC:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


def system_class(system: str, baseline: str) -> str:
    """'baseline', 'automl', 'floor' or 'other'."""
    if system == baseline:
        return "baseline"
    if system.startswith(AUTOML_PREFIX):
        return "automl"
    if system == FLOOR_SYSTEM:
        return "floor"
    return "other"


def budget_key(budget: str) -> tuple[float, float]:
    """Sort key of a budget name; unparsable names sort last."""
    try:
        return parse_budget(budget).sort_key
    except BudgetError:
        return (float("inf"), float("inf"))


def budget_seconds(budget: str) -> float | None:
    """The budget's wall-clock seconds, or None (trial-only, 'full' or unparsable)."""
    try:
        return parse_budget(budget).seconds
    except BudgetError:
        return None


def budget_trials(budget: str) -> int | None:
    """The budget's trial count, or None."""
    try:
        return parse_budget(budget).trials
    except BudgetError:
        return None


def grouped(frame: pd.DataFrame) -> list[tuple[Group, pd.DataFrame]]:
    """The runs split into comparable groups, sorted by dataset, split and options."""
    keys = ["dataset", "split", "dataset_options"]
    return [(Group(*key), part) for key, part in sorted(frame.groupby(keys, sort=False), key=lambda kv: kv[0])]


def hardware_of(frame: pd.DataFrame) -> str:
    """The hardware descriptions recorded for these runs, joined; says so when none was recorded."""
    names = sorted({h for h in frame["hardware"] if h})
    return "; ".join(names) if names else "hardware not recorded"
