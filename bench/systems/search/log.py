"""A search's record: its deadline and scope, the refit it reserves time for, and one row per trial (trials.csv)."""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.core import rundir
from bench.core.rundir import folder_mb
from bench.measure.flops import Spent
from bench.systems.search.budget import HARD_STOP_SHARE, TrialTimes, allowed_overshoot_s, budget_deadline, overshoot_s

# Columns of trials.csv, one row per trial. `worker` names the process that ran the trial: '' in a search run by
# one process; 'chief', 'worker1', ... in a search over several (bench.systems.search.distributed).
# `train_flops` is the trial's training compute (bench.measure.flops), empty where the trial built no model to count;
# `flops_uncounted` the layers its count left out.
TRIAL_COLUMNS = ("trial_id", "started_s", "ended_s", "epochs", "val_accuracy", "status", "summary", "error", "worker",
                 "train_flops", "flops_uncounted")


class NoCompletedTrial(RuntimeError):
    """The search ended without a single trial that produced a validation score."""


@dataclass(frozen=True)
class TrialRow:
    """One row of trials.csv: a trial's timing, outcome and configuration."""

    trial_id: str
    started_s: float  # seconds since fit started
    ended_s: float
    epochs: int | None  # epochs trained (None when the model never trained)
    val_accuracy: float | None  # validation accuracy at the trial's best epoch
    status: str  # completed, failed or stopped (cut by the deadline)
    summary: str
    error: str = ""
    interrupted: bool = False  # stopped inside a batch by HardStop, so without a score
    worker: str = ""  # see TRIAL_COLUMNS
    train_flops: float | None = None
    flops_uncounted: str = ""


@dataclass
class SearchLog:
    """What a budgeted search knows while it runs and reports after: deadlines, trial times, trial rows (one per
    fit; the tuner writes it only through its public methods)."""

    t0: float  # time.monotonic() at fit start
    deadline: float | None  # when the budget runs out (time.monotonic()); None: no time limit
    # Seconds past the search's deadline after which a trial is interrupted mid-batch (None: never).
    hard_stop_grace_s: float | None = None
    # What the budget bounds: 'total' (search and refit: the search ends early enough for the predicted
    # refit) or 'search' (the 2019 protocol: the refit comes after the budget).
    scope: str = "total"
    # Images in the refit over images in a trial's training split (the refit may also train on validation data).
    refit_data_factor: float = 1.0
    # Predicted seconds of the refit of the best trial so far, re-estimated as trials and epochs finish.
    refit_reserve_s: float = 0.0
    # Seconds past the budget's end a 'total' run may take in all (max(5% of the budget, 30 s)): a search that
    # ran late (a trial interrupted inside a batch) leaves its refit part of it (refit_stop_at).
    overshoot_allowed_s: float = 0.0
    worker: str = ""  # the trials.csv `worker` of the trials this process runs
    times: TrialTimes = field(default_factory=TrialTimes)  # the one model predicting trials and the refit
    project_dir: Path | None = None
    # How this process's tuner gets its oracle, from its own (None: bench.systems.search.oracle.budgeted_oracle;
    # in a search over several processes, the chief serves that one and a worker asks it instead).
    oracle_for: Callable[[Any, Any], Any] | None = None
    # A worker of a search over several processes: the search's deadline, as the chief's oracle last said.
    follow: Callable[[], float | None] | None = None
    rows: list[TrialRow] = field(default_factory=list)
    search_end: float | None = None  # monotonic time the search stopped and the refit began
    refit_end: float | None = None
    peak_disk_mb: float = 0.0
    # Called after each trial's row is added (a search that can continue after its process died saves the log).
    on_record: Any = None
    # Images in one epoch of a trial's training split (a trial's examples trained: its epochs, a cut one by its
    # batches, times this); 0 where the searcher's trials count their own.
    trial_epoch_examples: int = 0
    _started: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(cls, ctx: Any, t0: float, scope: str, **fields: Any) -> SearchLog:
        """The log of a search started at t0 under ctx's budget: its deadline, allowed overshoot and hard stop."""
        allowed = allowed_overshoot_s(ctx.budget.seconds)
        return cls(t0=t0, deadline=budget_deadline(ctx.deadline, ctx.budget, t0), scope=scope,
                   overshoot_allowed_s=allowed, hard_stop_grace_s=HARD_STOP_SHARE * allowed, **fields)

    def since_start(self, when: float | None = None) -> float:
        """Seconds from fit start to `when` (default: now)."""
        return (time.monotonic() if when is None else when) - self.t0

    def search_deadline(self) -> float | None:
        """When the search must stop: the budget's end, less the predicted refit under scope 'total' (a worker of a
        search over several processes: the chief's, as last heard)."""
        if self.follow is not None:
            return self.follow()
        if self.deadline is None:
            return None
        return self.deadline - (self.refit_reserve_s if self.scope == "total" else 0.0)

    def past_deadline(self) -> bool:
        """Whether the search's time has run out."""
        end = self.search_deadline()
        return end is not None and time.monotonic() >= end

    def refit_estimate(self, trial_id: str, epochs: int) -> float:
        """Seconds a refit of this trial for `epochs` epochs is predicted to take (TrialTimes.refit_s on the
        refit's data)."""
        return self.times.refit_s(trial_id, epochs * self.refit_data_factor)

    def too_late_for_a_trial(self) -> bool:
        """Under scope 'total': whether the search's time left is shorter than any trial has needed to score
        (a trial started then could only be cut or interrupted, eating into the refit's time)."""
        end, quickest = self.search_deadline(), self.times.quickest_score_s()
        if self.scope != "total" or end is None or quickest is None:
            return False
        return time.monotonic() + quickest > end

    def note_start(self, trial_id: str) -> None:
        """Records when a trial started."""
        self._started[trial_id] = time.monotonic()

    def note_epochs(self, trial_id: str, epochs_s: list[float], first_trial: bool) -> None:
        """Takes a running trial's epochs so far into the trial-time model (its wall time from note_start); while
        no trial has finished, the running one sets the refit reserve."""
        now = time.monotonic()
        self.times.note(trial_id, now - self._started.get(trial_id, now - sum(epochs_s)), epochs_s)
        if first_trial:
            self.refit_reserve_s = self.refit_estimate(trial_id, len(epochs_s))

    def note_disk(self) -> None:
        """Updates the peak size of the tuner's project folder."""
        if self.project_dir is not None:
            self.peak_disk_mb = max(self.peak_disk_mb, folder_mb(self.project_dir))

    def take_times(self, trial_id: str, overhead_s: float | None, epoch_s: float | None) -> None:
        """Takes a trial's times (from the process that ran it) into the trial-time model."""
        if overhead_s is not None and epoch_s is not None:
            self.times.overhead_s[trial_id], self.times.epoch_s[trial_id] = overhead_s, epoch_s

    def record(self, trial_id: str, started: float | None = None, **row: Any) -> None:
        """Adds a finished trial's row, ended now, started at `started` (time.monotonic(); default: when
        note_start saw it)."""
        ended = time.monotonic()
        if started is None:
            started = self._started.get(trial_id, ended)
        self.rows.append(TrialRow(trial_id=trial_id, started_s=self.since_start(started),
                                  ended_s=self.since_start(ended), **row))
        self.note_disk()
        if self.on_record is not None:
            self.on_record()

    def save(self, path: Path) -> None:
        """Writes what the search has learnt (its trial rows and times) for an attempt that continues it."""
        rundir.write_atomic(path, json.dumps({"rows": [asdict(r) for r in self.rows], "times": asdict(self.times),
                                              "refit_reserve_s": self.refit_reserve_s}))

    def restore(self, path: Path) -> int:
        """Takes back what save wrote (nothing when there is no readable file); returns the trials carried."""
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            rows, times = [TrialRow(**row) for row in state["rows"]], TrialTimes(**state["times"])
        except (OSError, ValueError, TypeError, KeyError):
            return 0
        self.rows, self.refit_reserve_s = rows, float(state.get("refit_reserve_s", 0.0))
        self.times.overhead_s.update(times.overhead_s)  # in place: a searcher's tuner may hold self.times
        self.times.epoch_s.update(times.epoch_s)
        return len(rows)

    def finish(self, run_dir: Path, project_root: Path) -> None:
        """Closes the search however it ended: writes trials.csv and deletes the tuner's project folder (trial
        checkpoints can reach gigabytes per run)."""
        if self.search_end is None:
            self.search_end = time.monotonic()
        self.note_disk()
        run_dir.mkdir(parents=True, exist_ok=True)
        write_trials_csv(sorted(self.rows, key=lambda r: r.started_s), run_dir / rundir.TRIALS)
        shutil.rmtree(project_root, ignore_errors=True)

    def no_completed_trial(self, searcher: str) -> NoCompletedTrial:
        """The error of a search that scored no trial, naming each trial's reason."""
        reasons = "; ".join(f"trial {r.trial_id}: {r.error}" for r in self.rows) or "no trial started"
        return NoCompletedTrial(f"{searcher} finished no trial within the budget ({reasons}); "
                                "give it a larger budget or a smaller search space")

    @property
    def completed(self) -> int:
        """Trials that produced a score (cut ones included)."""
        return sum(r.status != "failed" and not r.interrupted for r in self.rows)

    @property
    def failed(self) -> int:
        """Trials that raised (build error, download offline, out of memory, NaN loss)."""
        return sum(r.status == "failed" for r in self.rows)

    def best_val_accuracy(self) -> float | None:
        """Highest validation accuracy over all scored trials."""
        scores = [r.val_accuracy for r in self.rows if r.val_accuracy is not None]
        return max(scores) if scores else None

    def extras(self, scope: str, budget_end: float | None) -> dict[str, Any]:
        """What every search reports: search_s, refit_s, overshoot_s (of what `scope` bounds, past budget_end),
        trials_failed, trials_completed, search_val_accuracy (the best trial's), peak_disk_mb, refit_reserved_s."""
        bounded_end = self.refit_end if scope == "total" else self.search_end
        return {
            "search_s": self.since_start(self.search_end),
            "refit_s": None if self.refit_end is None or self.search_end is None else self.refit_end - self.search_end,
            "overshoot_s": overshoot_s(bounded_end, budget_end),
            "trials_failed": self.failed,
            "trials_completed": self.completed,
            "search_val_accuracy": self.best_val_accuracy(),
            "peak_disk_mb": self.peak_disk_mb,
            "refit_reserved_s": self.refit_reserve_s if self.scope == "total" else None,
        }


def trials_spent(rows: list[TrialRow]) -> Spent:
    """The FLOPs trials spent training (a trial that trained without a count makes the figure partial)."""
    spent = Spent()
    for r in rows:
        if r.train_flops is not None:
            spent += Spent(r.train_flops, 0.0, tuple(filter(None, r.flops_uncounted.split(","))))
        elif r.epochs or r.val_accuracy is not None or r.interrupted or r.status == "failed":  # it trained or may have
            spent += Spent(uncounted=(f"trial {r.trial_id}",))
    return spent


def write_trials_csv(rows: list[TrialRow], path: Path) -> None:
    """Writes trials.csv with TRIAL_COLUMNS; empty cells for unknown values."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(TRIAL_COLUMNS)
        for r in rows:
            writer.writerow([
                r.trial_id, f"{r.started_s:.3f}", f"{r.ended_s:.3f}", "" if r.epochs is None else r.epochs,
                "" if r.val_accuracy is None else f"{r.val_accuracy:.6g}", r.status, r.summary, r.error, r.worker,
                "" if r.train_flops is None else f"{r.train_flops:.6g}", r.flops_uncounted,
            ])
