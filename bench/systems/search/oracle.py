"""The search's budget where KerasTuner decides: in the oracle.

Every trial of a search, run by this process or by another process of it (bench.systems.search.distributed),
starts with the oracle's create_trial and ends with its end_trial. A budgeted oracle therefore keeps the budget
for one process and for N alike:

- create_trial answers STOPPED once the search's deadline has passed, or under scope 'total' the time left
  could not give a trial a score, or the search was closed (the first trial always starts); a process whose
  trial was not started (the time left could not train it) gets no other;
- end_trial lets the library score the trial, then writes its trials.csv row on this process's clock (started
  when the oracle handed it out), takes its timings into the trial-time model, and reserves the refit of the
  best trial so far.

What only the process that ran a trial knows (its epochs, whether the deadline cut it, its error, its FLOPs and
epoch times) comes with end_trial as a TrialReport.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.systems.search.log import SearchLog

# Seconds an answer of IDLE (Hyperband waiting for a rung's trials to end on other processes) is held back:
# keras-tuner's trial loop asks again at once, which would keep a core and the server busy with requests.
IDLE_WAIT_S = 0.5
# Seconds past the search's deadline plus the hard-stop grace that the search's end waits for trials of other
# processes before it has them stopped: their own hard stop fires at that moment, so this covers only their
# report. Every second of it comes out of the refit's time.
JOIN_SLACK_S = 3.0


def _synchronized(method: Callable[..., Any]) -> Callable[..., Any]:
    """keras-tuner's `synchronized` (one call at a time per oracle, reentrant in a thread), imported when called
    so that this package imports without keras-tuner."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        from keras_tuner.src.engine.oracle import synchronized

        return synchronized(method)(self, *args, **kwargs)

    return call


@dataclass(frozen=True)
class TrialReport:
    """How a trial ended, as the process that ran it knows it (the oracle knows its status and scores)."""

    epochs: int | None = None  # epochs trained (None: none finished)
    stopped: bool = False  # the search's deadline shortened or cut it
    error: str = ""  # why it failed (an error cell)
    train_flops: float | None = None  # its training's FLOPs (None: no model to count)
    flops_uncounted: str = ""
    not_started: str = ""  # why it was not run (the time left could not train it): no row, and no other trial
    overhead_s: float | None = None  # its timings for the trial-time model (bench.systems.search.budget)
    epoch_s: float | None = None
    epochs_s: tuple[float, ...] = ()

    def to_json(self) -> str:
        """One line of ASCII, as gRPC metadata carries it."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrialReport:
        """Inverse of to_json."""
        d = json.loads(text)
        return cls(**{**d, "epochs_s": tuple(d.get("epochs_s", ()))})


@dataclass
class _Budget:
    """What a budgeted oracle keeps beside the library's state."""

    log: SearchLog
    searcher: Any  # this process's tuner: summarize(trial), refit_epochs(trial), tuner_id
    began: dict[str, tuple[str, float]] = field(default_factory=dict)  # trial_id: (tuner_id, time.monotonic())
    refused: set[str] = field(default_factory=set)  # tuner ids whose trial was not started
    closed: bool = False  # the search is over for every process
    # Called when trials of other processes outlast the search's end (they are then stopped and failed).
    overdue: Callable[[], None] | None = None


class BudgetOracle:
    """Mixin put before a keras_tuner Oracle class (budgeted_oracle): the search's budget and trials.csv."""

    budget: _Budget

    def create_trial(self, tuner_id: str) -> Any:
        """The library's next trial, or STOPPED when the search's time is up (module docstring)."""
        trial = self._create_trial(tuner_id)
        if trial.status == "IDLE":
            time.sleep(IDLE_WAIT_S)
        return trial

    @_synchronized
    def _create_trial(self, tuner_id: str) -> Any:
        from keras_tuner.src.engine import hyperparameters as hp_module
        from keras_tuner.src.engine import trial as trial_module

        b, log = self.budget, self.budget.log
        if self.trials and (b.closed or tuner_id in b.refused or log.past_deadline() or log.too_late_for_a_trial()):
            return trial_module.Trial(hp_module.HyperParameters(), status=trial_module.TrialStatus.STOPPED)
        trial = super().create_trial(tuner_id)  # type: ignore[misc]
        if trial.status == trial_module.TrialStatus.RUNNING and trial.trial_id not in b.began:
            b.began[trial.trial_id] = (tuner_id, time.monotonic())
        return trial

    @_synchronized
    def end_trial(self, trial: Any, report: TrialReport | None = None) -> None:
        """Ends the trial with the library (which scores it), then logs it (also when the library aborts the
        search) and reserves the refit of the best trial so far."""
        report = report or TrialReport()
        try:
            super().end_trial(trial)  # type: ignore[misc]
        finally:
            tuner_id, started = self.budget.began.pop(trial.trial_id, (self.budget.searcher.tuner_id, None))
            if report.not_started:
                self.budget.refused.add(tuner_id)
            else:
                self._record(self.trials.get(trial.trial_id, trial), tuner_id, started, report)
                self._reserve_refit()

    @_synchronized
    def fail(self, tuner_id: str, reason: str) -> None:
        """Ends as failed the trial a process that is gone was running, if any."""
        from keras_tuner.src.engine import trial as trial_module

        trial = self.ongoing_trials.get(tuner_id)
        if trial is None:
            return
        trial.status = trial_module.TrialStatus.FAILED
        with contextlib.suppress(RuntimeError):  # keras-tuner's limit of failures in a row: its loop ends it
            self.end_trial(trial, TrialReport(error=reason))

    def search_ended(self) -> None:
        """This process's trial loop is over: the search is closed for every process, and its end waits for
        their running trials (past the search's deadline plus the hard-stop grace and JOIN_SLACK_S, they are
        stopped: `overdue`)."""
        b, log = self.budget, self.budget.log
        b.closed = True
        while self.ongoing_trials:
            end = log.search_deadline()
            if end is not None and time.monotonic() >= end + (log.hard_stop_grace_s or 0.0) + JOIN_SLACK_S:
                if b.overdue is not None:
                    b.overdue()
                return
            time.sleep(0.1)

    def _record(self, trial: Any, tuner_id: str, started: float | None, report: TrialReport) -> None:
        from keras_tuner.src.engine import trial as trial_module

        log, searcher = self.budget.log, self.budget.searcher
        trial_id = str(trial.trial_id)
        log.take_times(trial_id, report.overhead_s, report.epoch_s, list(report.epochs_s))
        ok = trial.status == trial_module.TrialStatus.COMPLETED
        score = None
        if ok and trial.metrics.exists("val_accuracy"):
            score = float(trial.metrics.get_best_value("val_accuracy"))
        log.record(
            trial_id, started=started, worker=tuner_id if log.worker else "", epochs=report.epochs,
            val_accuracy=score,
            # A trial interrupted before it had a score is 'stopped' too, with the reason in its error.
            status="stopped" if report.stopped else ("completed" if ok else "failed"),
            summary=searcher.summarize(trial), error="" if ok else report.error or str(trial.status),
            interrupted=report.stopped and not ok, train_flops=report.train_flops,
            flops_uncounted=report.flops_uncounted)

    def _reserve_refit(self) -> None:
        """Reserves the predicted refit of the best trial so far (once its epochs are known)."""
        from keras_tuner.src.engine import trial as trial_module

        best = self.get_best_trials(1)
        if not best or best[0].status != trial_module.TrialStatus.COMPLETED:
            return
        epochs = self.budget.searcher.refit_epochs(best[0])
        if epochs is not None:
            log = self.budget.log
            log.refit_reserve_s = log.refit_estimate(str(best[0].trial_id), epochs)


def budgeted_oracle(oracle: Any, searcher: Any) -> Any:
    """A tuner's own oracle (any keras_tuner Oracle, as the searcher built it and keras-tuner reloaded it) under
    the budget of searcher.search_log: its class becomes a subclass with BudgetOracle first. Changing the class
    of the one instance keeps the library's state and every reference to it."""
    if not isinstance(oracle, BudgetOracle):
        cls = type(oracle)
        oracle.__class__ = type(f"Budgeted{cls.__name__}", (BudgetOracle, cls), {})
    oracle.budget = _Budget(searcher.search_log, searcher)
    return oracle
