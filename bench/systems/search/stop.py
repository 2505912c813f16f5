"""Stopping a trial or a refit at a deadline: at its next batch (a Keras callback), or inside one (a watchdog)."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import Any

# How often the hard-stop watchdog looks at the clock, and re-raises while a trial ignores it.
WATCHDOG_POLL_S = 0.5


# Python-level calls after the disarm where a pending interrupt lands (each call's start is a point where the
# eval loop delivers one).
DRAIN_CALLS = 3


def _boundary() -> None:
    """Nothing: calling it gives a pending asynchronous exception a place to land."""


class DeadlineInterrupt(Exception):
    """Raised into a trial still running past the deadline plus grace (e.g. inside a long first batch)."""


class HardStop:
    """Context manager: while inside, a watchdog thread interrupts the calling thread once time.monotonic() passes
    `at()` (None: not yet; a search's deadline moves as its refit reserve does, and a worker of a search over
    several processes hears the chief's).

    The batch-end callback cannot stop a trial inside one step, and a model's first step (graph tracing,
    e.g. a ResNet50 on a busy CPU) can take minutes. The exception arrives at the next Python bytecode of
    the main thread: at once during tracing, after the running op during execution. It is raised again
    every WATCHDOG_POLL_S until the block exits, in case library code swallows one.
    """

    def __init__(self, at: Callable[[], float | None]) -> None:
        self.at = at
        self.fired = False
        self._target = threading.get_ident()
        self._lock = threading.Lock()
        self._armed = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="search-hard-stop", daemon=True)

    def __enter__(self) -> HardStop:
        self._armed = True
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._done.wait(WATCHDOG_POLL_S):
            at = self.at()
            if at is None or time.monotonic() < at:
                continue
            with self._lock:
                if not self._armed:
                    return
                self.fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target),
                                                           ctypes.py_object(DeadlineInterrupt))

    def __exit__(self, *exc_info: object) -> None:
        # Disarm first, again if an interrupt lands while doing so; then let one raised before the disarm but not
        # yet delivered land here. (Cancelling it with PyThreadState_SetAsyncExc(id, NULL) instead hangs
        # CPython 3.11's eval loop whenever a trace function is set: coverage, a debugger, a profiler.)
        while True:
            try:
                with self._lock:
                    self._armed = False
                break
            except DeadlineInterrupt:
                continue
        if self.fired:
            try:
                for _ in range(DRAIN_CALLS):
                    _boundary()
            except DeadlineInterrupt:
                pass
        self._done.set()
        self._thread.join()


def finished_epochs(callback: Any, objective: str) -> Any:
    """The History of the fit `callback` was part of, if at least one epoch was scored; else None."""
    try:
        history = callback.model.history
    except AttributeError:
        return None
    logs = getattr(history, "history", None) or {}
    return history if logs.get(objective) and logs.get("loss") else None


def deadline_callback(deadline: float | None | Callable[[], float | None],
                      on_epoch: Callable[[list[float]], None] | None = None) -> Any:
    """A Keras callback that stops training at the next batch once time.monotonic() passes the deadline (a
    time, or a function giving the current one), inside an epoch too (Keras 3 checks stop_training after every
    batch); on_epoch hears the seconds of each epoch so far as each ends. Its epochs_trained counts a cut epoch
    (and one still running) by its batches."""
    import keras

    current = deadline if callable(deadline) else (lambda: deadline)

    class StopAtDeadline(keras.callbacks.Callback):
        """Stops fit() at the first batch end after the deadline."""

        stopped = False
        _done = 0.0  # epochs finished, a cut one by its batches
        _epoch_t0 = 0.0
        _batches = 0  # batches of the running epoch

        def on_train_begin(self, logs: Any = None) -> None:
            self.epochs_s: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._epoch_t0 = time.monotonic()
            self._batches = 0

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            # Keras ends a stopped epoch like any other: whether it was whole, only its batches tell.
            steps = (self.params or {}).get("steps")
            self._done += 1.0 if not steps or self._batches >= steps else self._batches / steps
            self._batches = 0
            self.epochs_s.append(time.monotonic() - self._epoch_t0)
            if on_epoch is not None:
                on_epoch(list(self.epochs_s))

        @property
        def epochs_trained(self) -> float:
            """Epochs so far, counting an epoch cut or still running (a fit interrupted inside it) by its batches."""
            steps = (self.params or {}).get("steps")
            return self._done + (self._batches / steps if steps else 0.0)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self._batches += 1
            end = current()
            if end is not None and time.monotonic() >= end:
                self.stopped = True
                self.model.stop_training = True

    return StopAtDeadline()
