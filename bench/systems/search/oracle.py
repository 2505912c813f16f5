"""The search's budget where KerasTuner decides: in the oracle, which hands out and ends every trial, run by this
process or another (bench.systems.search.distributed), so one process and N are alike."""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench.measure.flops import Spent

# Seconds an answer of IDLE (Hyperband waiting for a rung's trials to end on other processes) is held back:
# keras-tuner's trial loop asks again at once, which would keep a core and the server busy with requests.
IDLE_WAIT_S = 0.5
# Seconds past the search's deadline plus the hard-stop grace that the search's end waits for trials of other
# processes before it has them stopped: their own hard stop fires at that moment, so this covers only their
# report. Every second of it comes out of the refit's time.
JOIN_SLACK_S = 3.0


@dataclass
class Outcome:
    """How a trial ends, filled in by the process that runs it and sent to the oracle with the trial (the oracle
    knows its status and scores)."""

    epochs: int | None = None  # epochs trained (None: none finished)
    stopped: bool = False  # the search's deadline shortened or cut it
    error: str = ""  # why it failed, when the trial's code knows better than keras-tuner's message
    spent: Spent | None = None  # the FLOPs its training spent (None: no model to count)
    not_started: str = ""  # why it was not run (the time left could not train it): no row, and no other trial
    overhead_s: float | None = None  # its times for the trial-time model (bench.systems.search.budget)
    epoch_s: float | None = None

    def to_json(self) -> str:
        """One line of ASCII, as gRPC metadata carries it."""
        return json.dumps({**asdict(self), "spent": None if self.spent is None else asdict(self.spent)})

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        """Inverse of to_json."""
        d = json.loads(text)
        spent = d["spent"] and Spent(d["spent"]["train"], d["spent"]["predict"], tuple(d["spent"]["uncounted"]))
        return cls(**{**d, "spent": spent})


def _synchronized(method: Callable[..., Any]) -> Callable[..., Any]:
    """keras-tuner's `synchronized` (one call at a time per oracle, reentrant in a thread), imported when called
    so that this package imports without keras-tuner."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        from keras_tuner.src.engine.oracle import synchronized

        return synchronized(method)(self, *args, **kwargs)

    return call


class BudgetOracle:
    """Mixin put before a keras_tuner Oracle class by budgeted_oracle."""

    search_log: Any  # the SearchLog whose budget it keeps and whose rows it writes
    searcher: Any  # this process's tuner: summarize(trial), refit_epochs(trial), tuner_id
    began: dict[str, tuple[str, float]]  # trial_id: (tuner_id, time.monotonic() it was handed out)
    refused: set[str]  # tuner ids whose trial was not started
    closed: bool  # the search is over for every process
    overdue: Callable[[], None] | None  # stops trials of other processes that outlast the search's end

    def create_trial(self, tuner_id: str) -> Any:
        """The library's next trial, or STOPPED when the search is over; a process whose trial was not started (the
        time left could not train it) gets no other."""
        trial = self._create_trial(tuner_id)
        if trial.status == "IDLE":
            time.sleep(IDLE_WAIT_S)
        return trial

    def over(self) -> bool:
        """Whether the search hands out no more trials: after its first, once it is closed or its time is up (a
        search an earlier attempt left with its budget spent is over before this attempt runs a trial)."""
        log = self.search_log
        return bool(self.trials) and (self.closed or log.past_deadline() or log.too_late_for_a_trial())

    @_synchronized
    def _create_trial(self, tuner_id: str) -> Any:
        from keras_tuner.src.engine import hyperparameters as hp_module
        from keras_tuner.src.engine import trial as trial_module

        if self.over() or self.trials and tuner_id in self.refused:
            return trial_module.Trial(hp_module.HyperParameters(), status=trial_module.TrialStatus.STOPPED)
        trial = super().create_trial(tuner_id)  # type: ignore[misc]
        if trial.status == trial_module.TrialStatus.RUNNING and trial.trial_id not in self.began:
            self.began[trial.trial_id] = (tuner_id, time.monotonic())
        return trial

    @_synchronized
    def end_trial(self, trial: Any, outcome: Outcome | None = None) -> None:
        """Ends the trial with the library (which scores it), then writes its row on this process's clock (from when
        it was handed out; also when the library aborts the search), takes its times into the trial-time model
        and reserves the refit of the best trial so far."""
        outcome = outcome or Outcome()
        try:
            super().end_trial(trial)  # type: ignore[misc]
        finally:
            # keras-tuner saves the oracle before it lets go of the trial: saved again, an attempt that continues
            # after a death once the row below is saved never finds the trial still running (and runs it again).
            self.save()
            tuner_id, started = self.began.pop(trial.trial_id, (self.searcher.tuner_id, None))
            if outcome.not_started:
                self.refused.add(tuner_id)
            else:
                self._record(self.trials.get(trial.trial_id, trial), tuner_id, started, outcome)

    @_synchronized
    def fail(self, tuner_id: str, reason: str) -> None:
        """Ends as failed the trial a process that is gone was running, if any."""
        trial = self.ongoing_trials.get(tuner_id)
        if trial is not None:
            trial.status = "FAILED"
            with contextlib.suppress(RuntimeError):  # keras-tuner's limit of failures in a row: its loop ends it
                self.end_trial(trial, Outcome(error=reason))

    def search_ended(self) -> None:
        """This process's trial loop is over: the search is closed for every process, and its end waits for
        their running trials (past the search's deadline plus the hard-stop grace and JOIN_SLACK_S: overdue)."""
        self.closed, log = True, self.search_log
        while self.ongoing_trials:
            end = log.search_deadline()
            if end is not None and time.monotonic() >= end + (log.hard_stop_grace_s or 0.0) + JOIN_SLACK_S:
                if self.overdue is not None:
                    self.overdue()
                return
            time.sleep(0.1)

    def _record(self, trial: Any, tuner_id: str, started: float | None, outcome: Outcome) -> None:
        log, trial_id, spent = self.search_log, str(trial.trial_id), outcome.spent
        log.take_times(trial_id, outcome.overhead_s, outcome.epoch_s)
        # Before the row: a search that continues after its process died reloads the reserve saved with it.
        self._reserve_refit()
        ok = trial.status == "COMPLETED"
        score = None
        if ok and trial.metrics.exists("val_accuracy"):
            score = float(trial.metrics.get_best_value("val_accuracy"))
        log.record(
            trial_id, started=started, worker=tuner_id if log.worker else "", epochs=outcome.epochs,
            val_accuracy=score,
            # A trial interrupted before it had a score is 'stopped' too, with the reason in its error.
            status="stopped" if outcome.stopped else ("completed" if ok else "failed"),
            summary=self.searcher.summarize(trial), error="" if ok else outcome.error or str(trial.status),
            interrupted=outcome.stopped and not ok, train_flops=None if spent is None else spent.train,
            flops_uncounted="" if spent is None else ",".join(spent.uncounted))

    def _reserve_refit(self) -> None:
        """Reserves the predicted refit of the best trial so far (once its epochs are known)."""
        best = self.get_best_trials(1)
        epochs = self.searcher.refit_epochs(best[0]) if best and best[0].status == "COMPLETED" else None
        if epochs is not None:
            self.search_log.refit_reserve_s = self.search_log.refit_estimate(str(best[0].trial_id), epochs)


def budgeted_oracle(oracle: Any, searcher: Any) -> Any:
    """A tuner's own oracle (any keras_tuner Oracle, as the searcher built it and keras-tuner reloaded it) under
    the budget of searcher.search_log: its class becomes a subclass with BudgetOracle first. Changing the class
    of the one instance keeps the library's state and every reference to it."""
    if not isinstance(oracle, BudgetOracle):
        cls = type(oracle)
        oracle.__class__ = type(f"Budgeted{cls.__name__}", (BudgetOracle, cls), {})
    oracle.search_log, oracle.searcher, oracle.began, oracle.refused = searcher.search_log, searcher, {}, set()
    oracle.closed, oracle.overdue = False, None
    return oracle
