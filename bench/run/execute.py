"""Executors: where runs happen. Each schedules the same run unit, bench.run.supervise.supervise (a picklable
RunSpec in, a RunRecord out, no shared state); the local one runs them one after the other on this machine,
bench.run.ray_executor spreads them over a Ray cluster."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator

from bench.run.records import RunRecord
from bench.run.spec import RunSpec
from bench.run.supervise import Limits, supervise

# Called with a run and where it is running ('' on this machine, else a node's name) when it starts.
OnStart = Callable[[RunSpec, str], None]


class Executor(ABC):
    """Runs specs and yields (spec, record) as each run ends, in whatever order they end."""

    limits: Limits = Limits()  # each run's limits (and those of the driver's data check)

    @abstractmethod
    def map(self, specs: Iterable[RunSpec], on_start: OnStart | None = None) -> Iterator[tuple[RunSpec, RunRecord]]:
        """Executes the specs; on_start is called as each one begins."""

    def close(self) -> None:  # noqa: B027 - optional hook: most executors hold nothing
        """Releases what the executor holds (a cluster connection); runs nothing more afterwards."""


class LocalExecutor(Executor):
    """One run at a time on this machine, each in its own process under the limits."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def map(self, specs: Iterable[RunSpec], on_start: OnStart | None = None) -> Iterator[tuple[RunSpec, RunRecord]]:
        """Runs specs one after the other, in the order given."""
        for spec in specs:
            if on_start is not None:
                on_start(spec, "")
            yield spec, self.run(spec)

    def run(self, spec: RunSpec) -> RunRecord:
        """Executes one spec (see bench.run.supervise.supervise)."""
        return supervise(spec, self.limits)
