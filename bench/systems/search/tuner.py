"""Mixins that put any KerasTuner tuner class under a SearchLog's budget.

KerasTuner's trial loop (BaseTuner.search: pre_create_trial, oracle.create_trial, on_trial_begin, run_trial,
on_trial_end) has no time limit; BudgetedTuner adds one without touching the search itself:

- pre_create_trial: once the search's deadline has passed, or under scope 'total' the time left could not give
  a trial a score, or a trial was not started (the first trial always starts), the oracle's max_trials is
  lowered to the trials already made, so oracle.create_trial answers STOPPED;
- on_trial_begin / on_trial_end: each trial's row goes to the log, and the refit of the best trial so far is
  reserved from the log's trial-time model;
- hard_stop(): a watchdog that interrupts a trial still running hard_stop_grace_s after the deadline.

KerasFitTrials adds the hooks for trials that are one model.fit (KerasTuner's own Tuner, Auto-Keras): a callback
stops the fit at its next batch after the deadline (the epoch's validation still runs, so a cut trial keeps a
score) and times its epochs for the model; an interrupted trial keeps the scores of its finished epochs.

keras-tuner aborts a search after `max_consecutive_failed_trials` (default 3) failed trials in a row; the mixin
raises that limit (MAX_CONSECUTIVE_FAILURES) so a few trials that cannot run here (a download offline, an
out-of-memory) are recorded as failed and the search goes on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import rundir
from bench.flops import Spent
from bench.systems.search.distributed import WorkerFinished
from bench.systems.search.log import SearchLog
from bench.systems.search.stop import DeadlineInterrupt, HardStop, deadline_callback, finished_epochs

logger = logging.getLogger(__name__)

# Failed trials in a row before the search gives up (keras-tuner's default is 3): high enough to get past
# a run of trials that need a download, low enough that a search where nothing can run ends quickly.
MAX_CONSECUTIVE_FAILURES = 10


@dataclass
class Outcome:
    """How a running trial is ending, filled in by the trial's code for its trials.csv row."""

    epochs: int | None = None  # epochs trained (None: none finished)
    stopped: bool = False  # the search's deadline shortened or cut it
    error: str = ""  # why it failed, when the trial's code knows better than keras-tuner's message
    spent: Spent | None = None  # the FLOPs its training spent (None: no model to count)


class NotStarted(Exception):
    """A trial the search's time left could not have trained: it is not run and the search ends."""


class BudgetedTuner:
    """Mixin for a keras_tuner tuner class (listed before it in the bases): the search obeys search_log's
    deadline and records every trial in it."""

    def __init__(self, *args: Any, search_log: SearchLog, **kwargs: Any) -> None:
        # Set first: keras-tuner's __init__ reloads a project it finds (overwrite=False) through these hooks.
        self.search_log = search_log
        self.outcomes: dict[str, Outcome] = {}
        self.not_started = ""  # why the search ended before its oracle did
        super().__init__(*args, **kwargs)
        self.oracle.max_consecutive_failed_trials = MAX_CONSECUTIVE_FAILURES
        search_log.project_dir = Path(self.project_dir)
        # A search over several processes (bench.systems.search.distributed): the chief serves this oracle; a
        # worker asks the chief's instead of its own.
        if search_log.worker:
            self.tuner_id = search_log.worker
        if search_log.chief is not None:
            search_log.chief.serve(self)
        if search_log.ledger is not None:
            self.oracle = search_log.ledger.oracle(self.oracle)

    # --- what a searcher may say ------------------------------------------------------------------------
    def summarize(self, trial: Any) -> str:
        """One readable line of the trial's configuration for trials.csv."""
        return "; ".join(f"{k}={v}" for k, v in sorted(trial.hyperparameters.values.items()))

    def refit_epochs(self, trial: Any) -> int | None:
        """Epochs the refit of this trial trains: those to its best epoch (None: not known yet)."""
        return None if trial.best_step is None else int(trial.best_step) + 1

    # --- the search -------------------------------------------------------------------------------------
    def pre_create_trial(self) -> None:
        """Ends the search at the deadline, when no trial could score in the time left, or after a trial was
        not started (the first trial always starts)."""
        log = self.search_log
        if log.ledger is not None:
            # A worker: its first trial does not always start (the chief's does), and it stops itself; the
            # chief's oracle stops the others when the chief's own loop ends.
            if self.not_started or log.past_deadline() or (log.rows and log.too_late_for_a_trial()):
                self.oracle.close()
        elif self.oracle.trials and (self.not_started or log.past_deadline() or log.too_late_for_a_trial()):
            self.oracle.max_trials = len(self.oracle.trials)
        super().pre_create_trial()  # type: ignore[misc]

    def on_trial_begin(self, trial: Any) -> None:
        """Starts the trial's clock and outcome."""
        self.search_log.note_start(str(trial.trial_id))
        self.outcomes[trial.trial_id] = Outcome()
        if self.search_log.ledger is not None:  # so the chief can fail it if this worker dies
            self.search_log.ledger.send("begin", trial_id=str(trial.trial_id), unix=time.time())
            logger.info("trial %s begins on %s", trial.trial_id, self.search_log.worker)
        super().on_trial_begin(trial)  # type: ignore[misc]

    def skip(self, trial: Any, reason: str) -> None:
        """Ends the search instead of running this trial, which the time left could not train."""
        self.not_started = reason
        self.outcomes.pop(trial.trial_id, None)  # a trial not started is not a trial run
        raise NotStarted(reason)

    def hard_stop(self) -> HardStop:
        """The watchdog for a trial starting now: it fires hard_stop_grace_s after the search's deadline, as that
        deadline stands while the trial runs (it moves earlier as the refit reserve grows)."""
        log = self.search_log

        def at() -> float | None:
            end, grace = log.search_deadline(), log.hard_stop_grace_s
            return None if end is None or grace is None else end + grace

        return HardStop(at)

    def interrupted(self, trial: Any, epochs: int | None) -> None:
        """Records that the hard stop cut the trial inside a step, after `epochs` finished epochs."""
        outcome = self.outcomes[trial.trial_id]
        outcome.epochs, outcome.stopped = epochs, True
        outcome.error = f"interrupted inside a step {self.search_log.hard_stop_grace_s:g} s after the deadline"

    def on_trial_end(self, trial: Any) -> None:
        """Lets the oracle score the trial, logs it (also when the oracle aborts the search), and reserves the
        refit of the best trial so far."""
        try:
            super().on_trial_end(trial)  # type: ignore[misc]
        finally:
            if trial.trial_id in self.outcomes:
                self._record(self._oracle_trial(trial))
            if self.search_log.ledger is None:  # a worker's trials reach the chief's reserve through its ledger
                self.reserve_refit()

    def reserve_refit(self) -> None:
        """Reserves the predicted refit of the best trial so far (once its epochs are known)."""
        best = self.best_trial()
        epochs = None if best is None else self.refit_epochs(best)
        if epochs is not None:
            self.search_log.refit_reserve_s = self.search_log.refit_estimate(str(best.trial_id), epochs)

    def on_search_end(self) -> None:
        """The chief of a distributed search waits for its workers' trials; a worker's part ends here."""
        log = self.search_log
        if log.chief is not None:
            log.chief.join()
        super().on_search_end()  # type: ignore[misc]
        if log.ledger is not None:
            raise WorkerFinished

    def _is_worker(self) -> bool:
        """A worker of a distributed search saves no oracle (keras-tuner tells one only by its environment)."""
        return self.search_log.ledger is not None or super()._is_worker()  # type: ignore[misc]

    def _oracle_trial(self, trial: Any) -> Any:
        """The oracle's copy of a trial (scores and status), or the trial itself where the oracle has none."""
        try:
            return self.oracle.get_trial(trial.trial_id)
        except KeyError:
            return trial

    def best_trial(self) -> Any:
        """The completed trial with the best score, or None (keras-tuner pads its list with unfinished ones)."""
        from keras_tuner.src.engine import trial as trial_module

        best = self.oracle.get_best_trials(1)
        return best[0] if best and best[0].status == trial_module.TrialStatus.COMPLETED else None

    def _record(self, trial: Any) -> None:
        from keras_tuner.src.engine import trial as trial_module

        outcome = self.outcomes[trial.trial_id]
        ok = trial.status == trial_module.TrialStatus.COMPLETED
        spent = outcome.spent
        score = None
        if ok and trial.metrics.exists("val_accuracy"):
            score = float(trial.metrics.get_best_value("val_accuracy"))
        self.search_log.record(
            str(trial.trial_id), epochs=outcome.epochs, val_accuracy=score,
            # A trial interrupted before it had a score is 'stopped' too, with the reason in its error.
            status="stopped" if outcome.stopped else ("completed" if ok else "failed"),
            summary=self.summarize(trial),
            error="" if ok else outcome.error or error_line(trial.message) or str(trial.status),
            interrupted=outcome.stopped and not ok, train_flops=None if spent is None else spent.train,
            flops_uncounted="" if spent is None else ",".join(spent.uncounted))


class KerasFitTrials(BudgetedTuner):
    """BudgetedTuner for trials that are one model.fit (keras-tuner's Tuner._build_and_fit_model)."""

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        log, trial_id = self.search_log, str(trial.trial_id)
        # While no trial has scored, the running one's epochs set the refit reserve.
        first = not any(r.status != "failed" for r in log.rows)
        # A live (not deep-copied) callback, so we learn whether the deadline cut this trial.
        stopper = deadline_callback(log.search_deadline, lambda seconds: log.note_epoch(trial_id, seconds, first),
                                    lambda: log.note_first_epoch(trial_id))
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), stopper]
        hard_stop = self.hard_stop()
        try:
            with hard_stop:
                history = super()._build_and_fit_model(trial, *args, **kwargs)  # type: ignore[misc]
        except Exception as exc:
            self._count(trial, stopper)
            # The interrupt can surface as another type (pybind11 turns it into a RuntimeError).
            if not hard_stop.fired:
                raise
            # Epochs finished before the interrupt still count: Keras' History holds their logs.
            history = finished_epochs(stopper, self.oracle.objective.name)
            self.interrupted(trial, None if history is None else len(history.history["loss"]))
            if history is None:
                raise DeadlineInterrupt("interrupted after the deadline before any epoch finished") from exc
            return history
        outcome = self.outcomes[trial.trial_id]
        outcome.epochs, outcome.stopped = len(history.history.get("loss", [])), stopper.stopped
        self._count(trial, stopper)
        return history

    def _count(self, trial: Any, stopper: Any) -> None:
        """The trial's training FLOPs: its model's, over the epochs it trained (a cut one by its batches)."""
        examples = self.search_log.trial_epoch_examples
        if not examples:
            return
        model = getattr(stopper, "model", None)  # Keras sets it when fit starts: none, nothing trained
        self.outcomes[trial.trial_id].spent = (Spent() if model is None
                                               else Spent.of(model, trained=stopper.epochs_so_far * examples))


def budgeted(base: type, trials: type = KerasFitTrials) -> type:
    """The tuner class `base` under a budget: `trials` (a BudgetedTuner mixin) first in its bases. Build it with
    search_log=... among base's own arguments."""
    return type(f"Budgeted{base.__name__}", (trials, base), {})


def error_line(message: str | None) -> str:
    """The error cell of a trial keras-tuner failed: the last line of its traceback (the exception)."""
    lines = [line for line in str(message or "").splitlines() if line.strip()]
    return rundir.error_text(lines[-1]) if lines else ""
