"""Runs a suite: plans the runs, skips what is done or has no data, executes the rest, records each."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.core import rundir
from bench.core.backend import satisfies as backend_satisfies
from bench.core.precision import satisfies as precision_satisfies
from bench.core.resume import RESUME_DIR
from bench.run.data_check import DataCheck
from bench.run.execute import Executor
from bench.run.records import RunRecord, record_for
from bench.run.spec import DatasetRef, RunSpec
from bench.run.store import ResultsStore
from bench.run.supervise import Limits


@dataclass
class Summary:
    """How a suite went: counts per status in this invocation, and how many runs were already done."""

    counts: Counter = field(default_factory=Counter)
    already_done: int = 0

    @property
    def failed(self) -> bool:
        """True when any run failed or timed out."""
        return bool(self.counts["failed"] or self.counts["timeout"])

    def line(self) -> str:
        """One line: 'ok 5, failed 1, timeout 0, skipped 2 (3 already done)'."""
        parts = [f"{s} {self.counts[s]}" for s in ("ok", "failed", "timeout", "skipped")]
        return ", ".join(parts) + f" ({self.already_done} already done)"


def availability_reasons(specs: list[RunSpec]) -> dict[DatasetRef, str]:
    """For each dataset that cannot be loaded here: why, and how to get it."""
    from bench.datasets.registry import open_dataset

    reasons: dict[DatasetRef, str] = {}
    for ref in {s.dataset for s in specs}:
        found = open_dataset(ref.name, dict(ref.options)).availability()
        if not found.ok:
            reasons[ref] = found.reason
    return reasons


def same_arithmetic(spec: RunSpec, record: RunRecord) -> bool:
    """Whether a recorded run computed in the precision and with the Keras backend the spec asks for (systems
    without Keras always do)."""
    if not record.precision and not uses_keras(spec.system):
        return True
    return precision_satisfies(spec.precision, record.precision) and backend_satisfies(spec.backend, record.backend)


def uses_keras(name: str) -> bool:
    """Whether the named system computes with Keras (unknown systems: assumed to)."""
    from bench.core.options import ConfigError
    from bench.systems import system_class

    try:
        return system_class(name).uses_keras
    except ConfigError:
        return True


def same_data(record: RunRecord, now: DataCheck | None) -> bool:
    """Whether a recorded run saw the data its data set loads as now (`now`: the check of it, None when it was
    not checked). Data that cannot be loaded now is not the data any run saw; records without a fingerprint
    are taken as the same where the data loads."""
    if now is None:
        return True
    return now.ok and (not record.data_fingerprint or record.data_fingerprint == now.fingerprint)


def check_data(specs: list[RunSpec], refs: set[DatasetRef], limits: Limits,
               refresh: bool = False) -> dict[DatasetRef, DataCheck]:
    """What each data set loads as now, each loaded in a child process under a run's limits: the longest hard
    time limit of its runs and the executor's memory cap (bench.run.data_check). refresh decodes each again."""
    from bench.run.data_check import check

    found: dict[DatasetRef, DataCheck] = {}
    for ref in sorted(refs, key=lambda r: (r.name, r.label)):
        limits_s = [s.timeout_s for s in specs if s.dataset == ref]
        timeout = None if any(t is None for t in limits_s) else max(limits_s, default=None)
        found[ref] = check(ref, timeout, limits, refresh=refresh)
    return found


def adopt_finished(spec: RunSpec, now: DataCheck | None = None) -> RunRecord | None:
    """An ok record a killed driver left in the run folder but never put in the table (of the data that
    loads as `now` says)."""
    path = rundir.run_dir(spec.out_dir, spec.run_id) / rundir.RECORD
    if not path.exists():
        return None
    try:
        record = RunRecord.from_json(path.read_text())
    except (ValueError, TypeError):
        return None
    ok = (record.status == "ok" and record.run_id == spec.run_id and same_arithmetic(spec, record)
          and same_data(record, now))
    return record if ok else None


@dataclass(frozen=True)
class Plan:
    """What a suite's invocation will do: the runs to execute, the records to put without running, and why."""

    todo: tuple[RunSpec, ...]
    skipped: tuple[RunRecord, ...] = ()  # runs whose data set cannot be loaded here, with the reason
    adopted: tuple[RunRecord, ...] = ()  # ok records a killed driver left in run folders, not yet in the table
    already_done: int = 0  # runs already recorded as ok on the data as it loads now (adopted ones included)
    notes: tuple[str, ...] = ()  # console lines (rich markup): data changed or unreadable, data sets skipped


class _Recorded:
    """The table's ok records a spec may count as done: same arithmetic, not forced, and the data as it loads now."""

    def __init__(self, done: dict[str, RunRecord], force: bool) -> None:
        self._done, self._force = done, force
        self.now: dict[DatasetRef, DataCheck] = {}

    def ok(self, spec: RunSpec) -> RunRecord | None:
        """The spec's ok record in the table, whatever data it saw."""
        record = self._done.get(spec.run_id)
        ok = not self._force and record is not None and record.status == "ok" and same_arithmetic(spec, record)
        return record if ok else None

    def finished(self, spec: RunSpec) -> bool:
        """Recorded as ok on the data its data set loads as now."""
        record = self.ok(spec)
        return record is not None and same_data(record, self.now.get(spec.dataset))

    def needs_check(self, spec: RunSpec) -> bool:
        """Whether the spec's data must be loaded to decide it: a run_id does not name the data's bytes (a
        --data-dir may point at another copy), so a recorded run counts as done only on the data as it loads now."""
        record = self.ok(spec)
        return (self._force or (record is not None and bool(record.data_fingerprint))
                or (rundir.run_dir(spec.out_dir, spec.run_id) / rundir.RECORD).exists())


def plan(specs: list[RunSpec], done: dict[str, RunRecord], limits: Limits, *, force: bool = False) -> Plan:
    """Decides each run: skipped (no data), already done, adopted from its folder, or to execute. Data sets are
    loaded (under a run's limits) only where that decides, and every one with force, which decodes them again."""
    unavailable = availability_reasons(specs)
    recorded = _Recorded(done, force)
    to_check = {s.dataset for s in specs if s.dataset not in unavailable and recorded.needs_check(s)}
    recorded.now = check_data(specs, to_check, limits, refresh=force)
    notes = [note for ref in sorted(recorded.now, key=lambda r: (r.name, r.label))
             if (note := _stale_note(ref, recorded.now[ref], [s for s in specs if s.dataset == ref], recorded))]
    skipped = tuple(record_for(s, "skipped", error=unavailable[s.dataset], **system_identity(s.system))
                    for s in specs if s.dataset in unavailable and not recorded.finished(s))
    if skipped:
        notes += [f"[yellow]skipped[/] {ref.name} {ref.label}: {escape(reason)}" for ref, reason in unavailable.items()]
    todo, adopted, already_done = [], [], 0
    for spec in (s for s in specs if s.dataset not in unavailable):
        if recorded.finished(spec):
            already_done += 1
        elif not force and (record := adopt_finished(spec, recorded.now.get(spec.dataset))) is not None:
            adopted.append(record)
            already_done += 1
        else:
            todo.append(spec)
    return Plan(tuple(todo), skipped, tuple(adopted), already_done, tuple(notes))


def _stale_note(ref: DatasetRef, now: DataCheck, specs: list[RunSpec], recorded: _Recorded) -> str:
    """One line where runs recorded as ok saw other data than the data set loads as now ('' where none did)."""
    stale = [r for s in specs if (r := recorded.ok(s)) is not None and not same_data(r, now)]
    if not stale:
        return ""
    from bench.report.formatting import plural  # the report's wording; imported only when it is needed

    label = f" ({ref.label})" if ref.label else ""
    if not now.ok:
        return (f"[yellow]data unreadable[/]: {escape(ref.name)}{escape(label)} cannot be loaded now "
                f"({escape(now.error)}); {plural(len(stale), 'run')} recorded on it run again")
    was = sorted({r.data_fingerprint for r in stale})
    return (f"[yellow]data changed[/]: {escape(ref.name)}{escape(label)} loads as {now.fingerprint} now, "
            f"{plural(len(stale), 'run')} recorded on {', '.join(was)}: run again")


class _Display:
    """The console while runs execute: a line as each starts and ends, and a live bar on a terminal."""

    def __init__(self, todo: tuple[RunSpec, ...], console: Console) -> None:
        self._console, self._total = console, len(todo)
        self._position = {s.run_id: i for i, s in enumerate(todo, 1)}
        self._running: dict[str, str] = {}  # run_id -> where it runs ('' on this machine)
        self._ended = 0
        self._t0 = time.monotonic()
        # A live bar (elapsed time ticking while a run works) on a terminal; plain lines in logs.
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, disable=not console.is_terminal)
        self._bar = self.progress.add_task("suite", total=self._total)

    def started(self, spec: RunSpec, node: str) -> None:
        """A run began (on `node`, '' for this machine)."""
        self._running[spec.run_id] = node
        on = f" on {node}" if node else ""
        self._console.print(f"[bold]run {self._position[spec.run_id]}/{self._total}[/]{on} {escape(describe(spec))} "
                            f"[dim](suite elapsed {time.monotonic() - self._t0:.0f} s, "
                            f"limit {spec.timeout_s or 0:.0f} s)[/]")
        self._show()

    def ended(self, spec: RunSpec, record: RunRecord) -> None:
        """A run ended with its record."""
        self._running.pop(spec.run_id, None)
        self._ended += 1
        self.progress.advance(self._bar)
        self._show()
        self._console.print(f"    -> {escape(describe(spec))}: {outcome(record)}")

    def _show(self) -> None:
        """'pending 3, running 2 (1 on node-a, 1 on node-b), finished 5' across the cluster."""
        where = Counter(node or "here" for node in self._running.values())
        nodes = ", ".join(f"{n} on {node}" for node, n in sorted(where.items()))
        pending = self._total - len(self._running) - self._ended
        self.progress.update(self._bar, description=f"pending {pending}, running {len(self._running)}"
                             + (f" ({nodes})" if nodes else "") + f", finished {self._ended}")


def execute(planned: Plan, executor: Executor, store: ResultsStore, *, force: bool = False,
            console: Console | None = None) -> Summary:
    """Puts the plan's records without running, executes its runs and records each as it ends."""
    console = console or Console(stderr=True)
    summary = Summary(already_done=planned.already_done)
    for note in planned.notes:
        console.print(note)
    if planned.skipped:
        store.put_many(list(planned.skipped))
        summary.counts["skipped"] += len(planned.skipped)
    for record in planned.adopted:
        store.put(record)
    if summary.already_done:
        console.print(f"{summary.already_done} run(s) already recorded as ok: not run again (--force reruns)")
    if force:  # a rerun starts from nothing: no earlier attempt's checkpoint is continued
        for spec in planned.todo:
            shutil.rmtree(rundir.run_dir(spec.out_dir, spec.run_id) / RESUME_DIR, ignore_errors=True)
    display = _Display(planned.todo, console)
    with display.progress:
        for spec, record in executor.map(list(planned.todo), on_start=display.started):
            store.put(record)
            summary.counts[record.status] += 1
            display.ended(spec, record)
    return summary


def run_specs(specs: list[RunSpec], executor: Executor, out_dir: Path, *, force: bool = False,
              console: Console | None = None) -> Summary:
    """Executes what is missing from the table (everything with force) and records each run as it ends."""
    store = ResultsStore(out_dir)
    planned = plan(specs, store.records(), executor.limits, force=force)
    return execute(planned, executor, store, force=force, console=console)


def system_identity(name: str) -> dict[str, str]:
    """A system's declared role, library and its version, for records the worker never made (skipped)."""
    from bench.core.options import ConfigError
    from bench.systems import system_class

    try:
        return system_class(name).identity()
    except ConfigError:
        return {}


def describe(spec: RunSpec) -> str:
    """'digits / resnet / 30s / seed 0 [run_id]'."""
    label = f" ({spec.dataset.label})" if spec.dataset.label else ""
    return f"{spec.dataset.name}{label} / {spec.system} / {spec.budget.name} / seed {spec.seed} [{spec.run_id}]"


def outcome(record: RunRecord) -> str:
    """A run's result in a few words."""
    if record.status == "ok":
        return (f"[green]ok[/] accuracy {record.accuracy:.4f}, fit {record.fit_s:.1f} s, "
                f"predict {record.predict_s:.2f} s")
    colour = "red" if record.status in ("failed", "timeout") else "yellow"
    return f"[{colour}]{record.status}[/]: {escape(record.error)}"
