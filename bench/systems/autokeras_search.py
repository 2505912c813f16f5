"""Budget plumbing for Auto-Keras 3: a tuner subclass that obeys a wall-clock deadline and logs every trial.

Auto-Keras 3 (AutoModel.fit -> AutoTuner.search) runs keras-tuner's trial loop (BaseTuner.search:
pre_create_trial, oracle.create_trial, run_trial, on_trial_end) and then refits the best trial's
hyperparameters on training + validation data (AutoTuner.final_fit). It has no time limit, so the tuner
made here adds one without touching the search itself:

- pre_create_trial: once the deadline has passed (and at least one trial was started), the oracle's
  max_trials is lowered to the trials already made, so oracle.create_trial answers STOPPED;
- _build_and_fit_model: each trial's fit gets a callback that stops at the next batch after the deadline
  (the epoch's validation still runs, so a cut trial keeps a score) and the epochs it trained are logged;
  a HardStop watchdog interrupts a trial still running `hard_stop_grace_s` after the deadline (inside
  one long batch, e.g. a ResNet50's first step with graph tracing on a busy CPU); its finished epochs
  keep their scores, and a trial without any is recorded as stopped without a score;
- final_fit: marks the end of the search, refits for the epochs the best trial used (its best epoch),
  under scope 'total' stopping at its next batch once the budget's end has passed (refit_stop_at), and keeps
  the refit model, however far it trained. Auto-Keras 3.0.0 itself saves the refit model but predicts with the best
  *search-time* checkpoint (AutoModel.predict -> tuner.get_best_model); this adapter predicts with the
  refit model, as the 2019 run did (final_fit(retrain=True)). With SearchLog.refit False it refits nothing:
  it records the best trial's hyperparameters (SearchLog.best_values) and raises SearchComplete, for a
  caller that builds and trains its own network from them (autokeras-hybrid).

keras-tuner aborts a search after `max_consecutive_failed_trials` (default 3) failed trials in a row with a
RuntimeError; the tuner raises that limit (MAX_CONSECUTIVE_FAILURES) so a few trials that cannot run here
(a download offline, an out-of-memory) are recorded as failed and the search goes on.
"""

from __future__ import annotations

import csv
import ctypes
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.rundir import folder_mb

# Failed trials in a row before the search gives up (keras-tuner's default is 3): high enough to get past
# a run of trials that need a download, low enough that a search where nothing can run ends quickly.
MAX_CONSECUTIVE_FAILURES = 10
# Columns of trials.csv (the contract in the project brief).
TRIAL_COLUMNS = ("trial_id", "started_s", "ended_s", "epochs", "val_accuracy", "status", "summary", "error")
# Longest error text kept per trial in trials.csv (keras-tuner stores whole tracebacks).
MAX_ERROR_CHARS = 600
# ConvBlock's per-layer filter hyperparameters: filters_<block>_<layer>.
_FILTERS = re.compile(r".*/filters_(\d+)_(\d+)$")
# A refit's predicted time is padded by this factor: on the malaria cells (3-minute budgets) refits took 1.1-1.3x
# their trial-based prediction (building the model on the whole set, a first epoch that traces the graph).
REFIT_SAFETY = 1.25
# How often the hard-stop watchdog looks at the clock, and re-raises while a trial ignores it.
WATCHDOG_POLL_S = 0.5
# Share of the allowed overshoot a refit may run past the budget's end when the search ended too late for one
# epoch before it; the rest is for the batch running when that time is up, the fit's end and saving the model.
REFIT_GRACE_SHARE = 0.5


class NoCompletedTrial(RuntimeError):
    """The search ended without a single trial that produced a validation score."""


class SearchComplete(Exception):
    """Raised by final_fit instead of refitting when SearchLog.refit is False: the search is over, and the best
    trial's hyperparameters are in SearchLog.best_values (a caller that trains its own model catches it)."""


class DeadlineInterrupt(Exception):
    """Raised into a trial still running past the deadline plus grace (e.g. inside a long first batch)."""


class HardStop:
    """Context manager: while inside, a watchdog thread interrupts the calling thread after `at`.

    The batch-end callback cannot stop a trial inside one step, and a model's first step (graph tracing,
    e.g. a ResNet50 on a busy CPU) can take minutes. The exception arrives at the next Python bytecode of
    the main thread: at once during tracing, after the running op during execution. It is raised again
    every WATCHDOG_POLL_S until the block exits, in case library code swallows one.
    """

    def __init__(self, at: float | None) -> None:
        self.at = at
        self.fired = False
        self._target = threading.get_ident()
        self._lock = threading.Lock()
        self._armed = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> HardStop:
        if self.at is not None:
            self._armed = True
            self._thread = threading.Thread(target=self._watch, name="autokeras-hard-stop", daemon=True)
            self._thread.start()
        return self

    def _raise_in_target(self, exc: type[BaseException] | None) -> None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target),
                                                   None if exc is None else ctypes.py_object(exc))

    def _watch(self) -> None:
        assert self.at is not None
        while not self._done.wait(WATCHDOG_POLL_S):
            if time.monotonic() < self.at:
                continue
            with self._lock:
                if not self._armed:
                    return
                self.fired = True
                self._raise_in_target(DeadlineInterrupt)

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        with self._lock:
            self._armed = False
            if self.fired:
                self._raise_in_target(None)  # drop an interrupt not yet delivered
        if self._thread is not None:
            self._thread.join()


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


@dataclass
class SearchLog:
    """What the tuner reports back to the adapter while the search runs (mutable, one per fit)."""

    t0: float  # time.monotonic() at fit start
    deadline: float | None  # when the budget runs out (time.monotonic()); None: no time limit
    # Seconds past the search's deadline after which a trial is interrupted mid-batch (None: never).
    hard_stop_grace_s: float | None = None
    # What the budget bounds: 'total' (search and refit: the search ends early enough for the predicted
    # refit) or 'search' (the 2019 protocol: the refit comes after the budget).
    scope: str = "total"
    # Images in the refit over images in a trial's training split (the refit also trains on validation data).
    refit_data_factor: float = 1.0
    # Predicted seconds of the refit of the best trial so far, re-estimated as trials and epochs finish.
    refit_reserve_s: float = 0.0
    # Seconds past the budget's end a 'total' run may take in all (max(5% of the budget, 30 s)): a search that
    # ran late (a trial interrupted inside a batch) leaves its refit part of it (refit_stop_at).
    overshoot_allowed_s: float = 0.0
    refit_stopped: bool = False  # the refit was cut at the budget's end (scope 'total' only)
    refit_epochs_trained: float | None = None  # epochs the refit trained, a cut one counted by its batches
    project_dir: Path | None = None
    rows: list[TrialRow] = field(default_factory=list)
    search_end: float | None = None  # monotonic time the search stopped and the refit began
    refit_end: float | None = None
    refit_epochs: int | None = None
    refit_model: Any = None
    refit_pipeline: Any = None
    # False: final_fit refits nothing and raises SearchComplete (autokeras-hybrid trains its own network).
    refit: bool = True
    best_values: dict[str, Any] | None = None  # the best trial's active hyperparameter values, once known
    peak_disk_mb: float = 0.0
    _started: dict[str, float] = field(default_factory=dict)
    _fits: dict[str, tuple[int | None, bool]] = field(default_factory=dict)
    _epoch_s: dict[str, list[float]] = field(default_factory=dict)  # per trial: seconds of each epoch
    _setup_s: dict[str, float] = field(default_factory=dict)  # per trial: seconds until its first epoch began

    def since_start(self, when: float | None = None) -> float:
        """Seconds from fit start to `when` (default: now)."""
        return (time.monotonic() if when is None else when) - self.t0

    def search_deadline(self) -> float | None:
        """When the search must stop: the budget's end, less the predicted refit under scope 'total'."""
        if self.deadline is None:
            return None
        return self.deadline - (self.refit_reserve_s if self.scope == "total" else 0.0)

    def past_deadline(self) -> bool:
        """Whether the search's time has run out."""
        end = self.search_deadline()
        return end is not None and time.monotonic() >= end

    def refit_estimate(self, trial_id: str, epochs: int) -> float:
        """Seconds a refit of this trial for `epochs` epochs is predicted to take, from its own times: building
        the model (until its first epoch began), then its mean epoch scaled to the refit's data."""
        times = self._epoch_s.get(trial_id)
        if not times:
            return 0.0
        mean_epoch = sum(times) / len(times)
        return REFIT_SAFETY * (self._setup_s.get(trial_id, 0.0) + mean_epoch * epochs * self.refit_data_factor)

    def quickest_score_s(self) -> float | None:
        """The least time a trial has taken to finish its first epoch (building included), or None."""
        firsts = [self._setup_s.get(t, 0.0) + times[0] for t, times in self._epoch_s.items() if times]
        return min(firsts) if firsts else None

    def too_late_for_a_trial(self) -> bool:
        """Under scope 'total': whether the search's time left is shorter than any trial has needed to score
        (a trial started then could only be cut or interrupted, eating into the refit's time)."""
        end, quickest = self.search_deadline(), self.quickest_score_s()
        if self.scope != "total" or end is None or quickest is None:
            return False
        return time.monotonic() + quickest > end

    def note_first_epoch(self, trial_id: str) -> None:
        """Records how long the trial took to reach its first epoch (building and compiling the model)."""
        if trial_id in self._started and trial_id not in self._setup_s:
            self._setup_s[trial_id] = time.monotonic() - self._started[trial_id]

    def note_epoch(self, trial_id: str, seconds: float, first_trial: bool) -> None:
        """Records an epoch's time; while no trial has finished, the running one sets the refit reserve."""
        self._epoch_s.setdefault(trial_id, []).append(seconds)
        if first_trial:
            self.refit_reserve_s = self.refit_estimate(trial_id, len(self._epoch_s[trial_id]))

    def note_disk(self) -> None:
        """Updates the peak size of the tuner's project folder."""
        if self.project_dir is not None:
            self.peak_disk_mb = max(self.peak_disk_mb, folder_mb(self.project_dir))

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


def write_trials_csv(rows: list[TrialRow], path: Path) -> None:
    """Writes trials.csv with the contract's columns; empty cells for unknown values."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(TRIAL_COLUMNS)
        for r in rows:
            writer.writerow([
                r.trial_id, f"{r.started_s:.3f}", f"{r.ended_s:.3f}", "" if r.epochs is None else r.epochs,
                "" if r.val_accuracy is None else f"{r.val_accuracy:.6g}", r.status, r.summary, r.error,
            ])


def summarize_hyperparameters(values: dict[str, Any]) -> str:
    """A readable one-line description: the architecture first, then every active hyperparameter."""
    short = {name.split("/", 1)[1] if name.startswith("image_block_1/") else name: v for name, v in values.items()}
    arch = str(short.get("block_type", "?"))
    for key, v in short.items():
        if key.endswith("/version"):
            arch += f" {v}"
    return arch + ": " + "; ".join(f"{k}={v}" for k, v in sorted(short.items()))


def _active_values(hps: Any) -> dict[str, Any]:
    """The hyperparameter values that shaped the model (keras-tuner also keeps inactive ones)."""
    values = {name: v for name, v in hps.values.items() if hps.is_active(name)}
    # ConvBlock declares filters_<block>_<layer> for every block and layer it ever built, used or not.
    for name in list(values):
        m = _FILTERS.match(name)
        if m is not None:
            prefix = name[: m.start(1)].rsplit("filters_", 1)[0]
            blocks, layers = values.get(prefix + "num_blocks"), values.get(prefix + "num_layers")
            if (blocks is not None and int(m.group(1)) >= blocks) or (layers is not None and int(m.group(2)) >= layers):
                del values[name]
    return values


def _error_text(message: str | None) -> str:
    """The last line of a traceback (the exception), shortened for a CSV cell."""
    if not message:
        return ""
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return text[:MAX_ERROR_CHARS]


def _finished_epochs(callback: Any, objective: str) -> Any:
    """The History of the fit `callback` was part of, if at least one epoch was scored; else None."""
    try:
        history = callback.model.history
    except AttributeError:
        return None
    logs = getattr(history, "history", None) or {}
    return history if logs.get(objective) and logs.get("loss") else None


def budgeted_tuner(base: type, log: SearchLog) -> type:
    """A subclass of the Auto-Keras tuner class `base` that stops at log.deadline and logs trials to `log`."""
    from keras_tuner.src.engine import trial as trial_module

    class BudgetedTuner(base):  # type: ignore[misc, valid-type]
        """`base` with a wall-clock deadline, per-trial logging and a refit for the best trial's epochs."""

        def _reserve_refit(self) -> None:
            """Under scope 'total': the search's deadline keeps room for the refit of the best trial so far."""
            best = [t for t in self.oracle.get_best_trials(1)
                    if t.status == trial_module.TrialStatus.COMPLETED and t.best_step is not None]
            if best:
                log.refit_reserve_s = log.refit_estimate(str(best[0].trial_id), int(best[0].best_step) + 1)

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.oracle.max_consecutive_failed_trials = MAX_CONSECUTIVE_FAILURES
            log.project_dir = Path(self.project_dir)

        def pre_create_trial(self) -> None:
            """Stops the search once the deadline has passed, or under scope 'total' once the time left could
            not give a trial a score (the first trial always starts)."""
            if (log.past_deadline() or log.too_late_for_a_trial()) and self.oracle.trials:
                self.oracle.max_trials = len(self.oracle.trials)
            super().pre_create_trial()

        def on_trial_begin(self, trial: Any) -> None:
            """Remembers when the trial started."""
            log._started[trial.trial_id] = time.monotonic()
            super().on_trial_begin(trial)

        def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            # A live (not deep-copied) callback, so we learn whether the deadline cut this trial.
            first = not any(r.status != "failed" for r in log.rows)
            trial_id = str(trial.trial_id)
            stopper = deadline_callback(log.search_deadline, lambda seconds: log.note_epoch(trial_id, seconds, first),
                                        lambda: log.note_first_epoch(trial_id))
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), stopper]
            at = None
            end = log.search_deadline()
            if end is not None and log.hard_stop_grace_s is not None:
                at = end + log.hard_stop_grace_s
            hard_stop = HardStop(at)
            try:
                with hard_stop:
                    history = super()._build_and_fit_model(trial, *args, **kwargs)
            except Exception as exc:
                # The interrupt can surface as another type (pybind11 turns it into a RuntimeError).
                if not hard_stop.fired:
                    raise
                # Epochs finished before the interrupt still count: Keras' History holds their logs.
                history = _finished_epochs(stopper, self.oracle.objective.name)
                log._fits[trial.trial_id] = (None if history is None else len(history.history["loss"]), True)
                if history is None:
                    raise DeadlineInterrupt("interrupted after the deadline before any epoch finished") from exc
                return history
            log._fits[trial.trial_id] = (len(history.history.get("loss", [])), stopper.stopped)
            return history

        def on_trial_end(self, trial: Any) -> None:
            """Lets the oracle score the trial, then logs it (also when the oracle aborts the search)."""
            try:
                super().on_trial_end(trial)
            finally:
                self._log_trial(self.oracle.trials.get(trial.trial_id, trial))
                self._reserve_refit()

        def _log_trial(self, trial: Any) -> None:
            ended = time.monotonic()
            epochs, stopped = log._fits.get(trial.trial_id, (None, False))
            ok = trial.status == trial_module.TrialStatus.COMPLETED
            val_acc = None
            if ok and trial.metrics.exists("val_accuracy"):
                val_acc = float(trial.metrics.get_best_value("val_accuracy"))
            # A trial interrupted before it had a score is 'stopped' too, with the reason in its error.
            status = "stopped" if stopped else ("completed" if ok else "failed")
            log.rows.append(TrialRow(
                trial_id=str(trial.trial_id),
                started_s=log.since_start(log._started.get(trial.trial_id, ended)),
                ended_s=log.since_start(ended),
                epochs=epochs,
                val_accuracy=val_acc,
                status=status,
                summary=summarize_hyperparameters(_active_values(trial.hyperparameters)),
                error=("" if ok else f"interrupted inside a batch {log.hard_stop_grace_s:g} s after the deadline"
                       if stopped else _error_text(trial.message) or str(trial.status)),
                interrupted=stopped and not ok,
            ))
            log.note_disk()

        def final_fit(self, **kwargs: Any) -> Any:
            """Refits the best trial on all training data for the epochs that trial used."""
            log.search_end = time.monotonic()
            log.note_disk()
            best = self.oracle.get_best_trials(1)
            # keras-tuner pads the list with unfinished trials when too few completed.
            if not best or best[0].status != trial_module.TrialStatus.COMPLETED:
                reasons = "; ".join(f"trial {r.trial_id}: {r.error}" for r in log.rows) or "no trial started"
                raise NoCompletedTrial(f"Auto-Keras finished no trial within the budget ({reasons}); "
                                       "give it a larger budget or a smaller search space")
            epochs = self._get_best_trial_epochs()
            log.best_values = _active_values(best[0].hyperparameters)
            if not log.refit:
                raise SearchComplete
            # The library would pass the user's callbacks through a helper that nests them in a list; the refit
            # needs no early stopping (no validation data). Under scope 'total' it stops at its next batch once the
            # budget's end has passed, inside an epoch if need be (an epoch on the full data can outlast the
            # allowed overshoot): the weights trained so far are the model.
            refit_end = None
            if log.deadline is not None and log.scope == "total":
                refit_end = refit_stop_at(log.deadline, log.overshoot_allowed_s,
                                          log.refit_estimate(str(best[0].trial_id), 1))
            refit_stop = deadline_callback(refit_end)
            kwargs["callbacks"] = [refit_stop]
            kwargs["epochs"] = epochs
            self.hypermodel.set_fit_args(0, epochs=epochs)
            pipeline, model, history = super().final_fit(**kwargs)
            log.refit_epochs, log.refit_model, log.refit_pipeline = epochs, model, pipeline
            log.refit_stopped = refit_stop.stopped
            log.refit_epochs_trained = refit_stop.epochs_trained
            return pipeline, model, history

    BudgetedTuner.__name__ = f"Budgeted{base.__name__}"
    return BudgetedTuner


def refit_stop_at(deadline: float, allowed_s: float, one_epoch_s: float) -> float:
    """When a refit under scope 'total' stops (time.monotonic()): the budget's end; a search that ended too late
    for one epoch (one_epoch_s, predicted) before it gets that epoch, up to REFIT_GRACE_SHARE of the allowed
    overshoot past the end, so the refit, cut at its next batch, still ends within the bound."""
    return min(max(deadline, time.monotonic() + one_epoch_s), deadline + REFIT_GRACE_SHARE * allowed_s)


def deadline_callback(deadline: float | None | Any, on_epoch: Any = None, on_first_epoch: Any = None,
                      min_epochs: int = 0) -> Any:
    """A Keras callback that stops training at the next batch once time.monotonic() passes the deadline (a
    time, or a function giving the current one), inside an epoch too (Keras 3 checks stop_training after every
    batch), but not before min_epochs epochs have finished; on_epoch(seconds) hears each epoch's duration and
    on_first_epoch() when the first epoch begins. Its epochs_trained counts a cut epoch by its batches."""
    import keras

    current = deadline if callable(deadline) else (lambda: deadline)

    class StopAtDeadline(keras.callbacks.Callback):
        """Stops fit() at the first batch end after the deadline."""

        stopped = False
        epochs_trained = 0.0
        _epoch_t0 = 0.0
        _epochs_done = 0
        _batches = 0  # batches of the running epoch

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._epoch_t0 = time.monotonic()
            self._batches = 0
            if epoch == 0 and on_first_epoch is not None:
                on_first_epoch()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            # Keras ends a stopped epoch like any other: whether it was whole, only its batches tell.
            steps = (self.params or {}).get("steps")
            whole = not steps or self._batches >= steps
            self.epochs_trained += 1.0 if whole else self._batches / steps
            self._epochs_done += 1
            if on_epoch is not None:
                on_epoch(time.monotonic() - self._epoch_t0)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self._batches += 1
            end = current()
            if end is not None and self._epochs_done >= min_epochs and time.monotonic() >= end:
                self.stopped = True
                self.model.stop_training = True

    return StopAtDeadline()
