"""Mixins that put any KerasTuner tuner class under a SearchLog's budget, which its oracle keeps
(bench.systems.search.oracle): BudgetedTuner for any trial, KerasFitTrials for trials that are one model.fit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench.core import rundir
from bench.measure.flops import Spent
from bench.systems.search.log import SearchLog
from bench.systems.search.oracle import Outcome, budgeted_oracle
from bench.systems.search.stop import DeadlineInterrupt, HardStop, deadline_callback, finished_epochs

logger = logging.getLogger(__name__)

# Failed trials in a row before the search gives up (keras-tuner's default is 3): high enough to get past
# a run of trials that need a download, low enough that a search where nothing can run ends quickly.
MAX_CONSECUTIVE_FAILURES = 10


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
        if search_log.worker:  # the name the oracle knows this process's trials by
            self.tuner_id = search_log.worker
        self.oracle = (search_log.oracle_for or budgeted_oracle)(self.oracle, self)
        # keras-tuner reloads a project only if it finds this process's tuner file, which it first writes when one
        # of this process's trials ends: a chief that dies before that, other processes' trials ended, must
        # leave one.
        self.save()

    def _get_tuner_fname(self) -> str:
        # keras-tuner names the tuner's file by tuner_id, which its __init__ sets to its default just before it
        # looks for a project to reload: a chief's file must go by the name it is saved under.
        return str(Path(self.project_dir) / f"{self.search_log.worker or self.tuner_id}.json")  # type: ignore[attr-defined]

    # --- what a searcher may say ------------------------------------------------------------------------
    def summarize(self, trial: Any) -> str:
        """One readable line of the trial's configuration for trials.csv."""
        return "; ".join(f"{k}={v}" for k, v in sorted(trial.hyperparameters.values.items()))

    def refit_epochs(self, trial: Any) -> int | None:
        """Epochs the refit of this trial trains: those to its best epoch (None: not known yet)."""
        return None if trial.best_step is None else int(trial.best_step) + 1

    # --- the search -------------------------------------------------------------------------------------
    def on_trial_begin(self, trial: Any) -> None:
        """Starts the trial's clock and outcome."""
        self.search_log.note_start(str(trial.trial_id))
        self.outcomes[trial.trial_id] = Outcome()
        logger.info("trial %s begins on %s", trial.trial_id, self.tuner_id)
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
        """Ends the trial with the oracle, which scores and logs it, with what only this process knows of it."""
        self.oracle.end_trial(trial, self._report(trial))
        self.save()

    def on_search_end(self) -> None:
        """Tells the oracle this process's trial loop is over (the search's end waits for trials still running)."""
        super().on_search_end()  # type: ignore[misc]
        self.oracle.search_ended()

    def _report(self, trial: Any) -> Outcome:
        """The trial's outcome, its times and error filled in, as the oracle is told it."""
        outcome = self.outcomes.pop(trial.trial_id, None)
        if outcome is None:  # skipped: not a trial run
            return Outcome(not_started=self.not_started or "not started")
        trial_id, log = str(trial.trial_id), self.search_log
        outcome.error = outcome.error or error_line(trial.message)
        outcome.overhead_s, outcome.epoch_s = log.times.overhead_s.get(trial_id), log.times.epoch_s.get(trial_id)
        return outcome

    def best_trial(self) -> Any:
        """The completed trial with the best score, or None (keras-tuner pads its list with unfinished ones)."""
        from keras_tuner.src.engine import trial as trial_module

        best = self.oracle.get_best_trials(1)
        return best[0] if best and best[0].status == trial_module.TrialStatus.COMPLETED else None


class KerasFitTrials(BudgetedTuner):
    """BudgetedTuner for trials that are one model.fit (keras-tuner's Tuner._build_and_fit_model): a callback
    stops the fit at its next batch after the deadline (the epoch's validation still runs, so a cut trial keeps a
    score) and times its epochs."""

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        log, trial_id = self.search_log, str(trial.trial_id)
        # While no trial has scored, the running one's epochs set the refit reserve.
        first = not any(r.status != "failed" for r in log.rows)
        # A live (not deep-copied) callback, so we learn whether the deadline cut this trial.
        stopper = deadline_callback(log.search_deadline, lambda epochs_s: log.note_epochs(trial_id, epochs_s, first))
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), stopper]
        hard_stop = self.hard_stop()
        try:
            with hard_stop:
                history = super()._build_and_fit_model(trial, *args, **kwargs)  # type: ignore[misc]
        except Exception as exc:
            # The interrupt can surface as another type (pybind11 turns it into a RuntimeError).
            if not hard_stop.fired:
                raise
            # Epochs finished before the interrupt still count: Keras' History holds their logs.
            history = finished_epochs(stopper, self.oracle.objective.name)
            self.interrupted(trial, None if history is None else len(history.history["loss"]))
            if history is None:
                raise DeadlineInterrupt("interrupted after the deadline before any epoch finished") from exc
            return history
        else:
            outcome = self.outcomes[trial.trial_id]
            outcome.epochs, outcome.stopped = len(history.history.get("loss", [])), stopper.stopped
            return history
        finally:
            self._count(trial, stopper)

    def _count(self, trial: Any, stopper: Any) -> None:
        """The trial's training FLOPs: its model's, over the epochs it trained (a cut one by its batches)."""
        examples = self.search_log.trial_epoch_examples
        if not examples:
            return
        model = getattr(stopper, "model", None)  # Keras sets it when fit starts: none, nothing trained
        self.outcomes[trial.trial_id].spent = (Spent() if model is None
                                               else Spent.of(model, trained=stopper.epochs_trained * examples))


def budgeted(base: type, trials: type = KerasFitTrials) -> type:
    """The tuner class `base` under a budget: `trials` (a BudgetedTuner mixin) first in its bases. Build it with
    search_log=... among base's own arguments."""
    return type(f"Budgeted{base.__name__}", (trials, base), {})


def error_line(message: str | None) -> str:
    """The error cell of a trial keras-tuner failed: the last line of its traceback (the exception)."""
    lines = [line for line in str(message or "").splitlines() if line.strip()]
    return rundir.error_text(lines[-1]) if lines else ""
