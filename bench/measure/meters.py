"""Meters that count only inside `window()` blocks (fit, then predict), and the run's meters as one.

A meter (the GPU sampler, the CPU energy meter) runs a background thread from `start()` to `stop()`, but
adds to its totals only while a window is open: the harness opens one around fit and one around predict, so
data loading and scoring stay out of every figure, as they stay out of the clocks (bench.measure.timing).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, Protocol


class Windows(Protocol):
    """What a system is handed to measure fit and predict: a meter, or several as one (Meters)."""

    def window(self) -> AbstractContextManager[None]:
        """A block inside which the meters count."""
        ...


class WindowedMeter(ABC):
    """Counts inside window() blocks, which may nest; subclasses say what opening and closing one does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the totals against the sampling thread
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None  # the sampling thread, started by a subclass's start()
        self._depth = 0  # nested window() blocks; the window is open while > 0

    @abstractmethod
    def start(self) -> WindowedMeter:
        """Starts measuring (a meter with nothing to read stays inert)."""

    @abstractmethod
    def stop(self) -> Any:
        """Stops measuring and returns the totals; later calls return the same totals."""

    @abstractmethod
    def so_far(self) -> Any:
        """The totals up to now, an open window included, without stopping (for a heartbeat that persists them)."""

    @abstractmethod
    def _opening(self) -> bool:
        """Opens (or nests into) a window; False when there is nothing to measure. Caller holds _lock."""

    @abstractmethod
    def _closing(self) -> None:
        """Leaves a window, closing it when outermost. Caller holds _lock."""

    @contextmanager
    def window(self) -> Iterator[None]:
        """Counts the block; may be entered several times (fit, then predict)."""
        with self._lock:
            active = self._opening()
        try:
            yield
        finally:
            if active:
                with self._lock:
                    self._closing()

    def _halt(self) -> None:
        """Stops the sampling thread and closes a window still open (it ends here); for stop()."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._depth > 0:
                self._depth = 1
                self._closing()

    def __enter__(self) -> WindowedMeter:
        """start(); after the block, stop() returns the totals again."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """stop()."""
        self.stop()


class Meters:
    """Several meters as one: the system opens their windows around fit and predict (System.run)."""

    def __init__(self, *meters: WindowedMeter) -> None:
        self.meters = meters

    def __enter__(self) -> Meters:
        for meter in self.meters:
            meter.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for meter in self.meters:
            meter.stop()

    @contextmanager
    def window(self) -> Iterator[None]:
        """Every meter's window."""
        with ExitStack() as stack:
            for meter in self.meters:
                stack.enter_context(meter.window())
            yield
