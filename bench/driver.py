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

from bench import rundir
from bench.backend import satisfies as backend_satisfies
from bench.data_check import DataCheck
from bench.execute import Executor
from bench.precision import satisfies as precision_satisfies
from bench.records import RunRecord, record_for
from bench.resume import RESUME_DIR
from bench.spec import DatasetRef, RunSpec
from bench.store import ResultsStore
from bench.supervise import Limits


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
    from bench.options import ConfigError
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
    time limit of its runs and the executor's memory cap (bench.data_check). refresh decodes each again."""
    from bench.data_check import check

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


def run_specs(specs: list[RunSpec], executor: Executor, out_dir: Path, *, force: bool = False,
              console: Console | None = None) -> Summary:
    """Executes what is missing from the table (everything with force) and records each run as it ends."""
    console = console or Console(stderr=True)
    store = ResultsStore(out_dir)
    done = store.records()
    summary = Summary()
    unavailable = availability_reasons(specs)

    def recorded_ok(spec: RunSpec) -> RunRecord | None:
        record = done.get(spec.run_id)
        ok = not force and record is not None and record.status == "ok" and same_arithmetic(spec, record)
        return record if ok else None

    # A run_id does not name the data's bytes (a --data-dir may point at another copy): a recorded run counts
    # as done only if it saw the data its data set loads as now. Data sets are loaded only where that decides,
    # and every one with --force, which decodes them again.
    to_check = {s.dataset for s in specs if s.dataset not in unavailable and (force
                or ((r := recorded_ok(s)) is not None and r.data_fingerprint)
                or (rundir.run_dir(s.out_dir, s.run_id) / rundir.RECORD).exists())}
    now = check_data(specs, to_check, executor.limits, refresh=force)
    for ref in sorted(now, key=lambda r: (r.name, r.label)):
        stale = [s for s in specs if s.dataset == ref and (r := recorded_ok(s)) is not None
                 and not same_data(r, now[ref])]
        if not stale:
            continue
        from bench.report.formatting import plural  # the report's wording; imported only when it is needed

        label = f" ({ref.label})" if ref.label else ""
        if not now[ref].ok:
            console.print(f"[yellow]data unreadable[/]: {escape(ref.name)}{escape(label)} cannot be loaded now "
                          f"({escape(now[ref].error)}); {plural(len(stale), 'run')} recorded on it run again")
            continue
        was = sorted({done[s.run_id].data_fingerprint for s in stale})
        console.print(f"[yellow]data changed[/]: {escape(ref.name)}{escape(label)} loads as {now[ref].fingerprint} "
                      f"now, {plural(len(stale), 'run')} recorded on {', '.join(was)}: run again")

    def finished(spec: RunSpec) -> bool:
        record = recorded_ok(spec)
        return record is not None and same_data(record, now.get(spec.dataset))

    skipped = [record_for(s, "skipped", error=unavailable[s.dataset], **system_identity(s.system)) for s in specs
               if s.dataset in unavailable and not finished(s)]
    if skipped:
        store.put_many(skipped)
        summary.counts["skipped"] += len(skipped)
        for ref, reason in unavailable.items():
            console.print(f"[yellow]skipped[/] {ref.name} {ref.label}: {escape(reason)}")

    todo: list[RunSpec] = []
    for spec in specs:
        if spec.dataset in unavailable:
            continue
        if finished(spec):
            summary.already_done += 1
        elif not force and (adopted := adopt_finished(spec, now.get(spec.dataset))) is not None:
            store.put(adopted)
            summary.already_done += 1
        else:
            todo.append(spec)
    if summary.already_done:
        console.print(f"{summary.already_done} run(s) already recorded as ok: not run again (--force reruns)")
    if force:  # a rerun starts from nothing: no earlier attempt's checkpoint is continued
        for spec in todo:
            shutil.rmtree(rundir.run_dir(spec.out_dir, spec.run_id) / RESUME_DIR, ignore_errors=True)

    t_suite = time.monotonic()
    position = {s.run_id: i for i, s in enumerate(todo, 1)}
    running: dict[str, str] = {}  # run_id -> where it runs ('' on this machine)
    ended = 0  # runs that ended in this invocation

    # A live bar (elapsed time ticking while a run works) on a terminal; plain lines in logs.
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, disable=not console.is_terminal)
    bar = progress.add_task("suite", total=len(todo))

    def show() -> None:
        """'pending 3, running 2 (1 on node-a, 1 on node-b), finished 5' across the cluster."""
        where = Counter(node or "here" for node in running.values())
        nodes = ", ".join(f"{n} on {node}" for node, n in sorted(where.items()))
        pending = len(todo) - len(running) - ended
        progress.update(bar, description=f"pending {pending}, running {len(running)}"
                        + (f" ({nodes})" if nodes else "") + f", finished {ended}")

    def started(spec: RunSpec, node: str) -> None:
        running[spec.run_id] = node
        elapsed = time.monotonic() - t_suite
        on = f" on {node}" if node else ""
        console.print(f"[bold]run {position[spec.run_id]}/{len(todo)}[/]{on} {escape(describe(spec))} "
                      f"[dim](suite elapsed {elapsed:.0f} s, limit {spec.timeout_s or 0:.0f} s)[/]")
        show()

    with progress:
        for spec, record in executor.map(todo, on_start=started):
            running.pop(spec.run_id, None)
            store.put(record)
            ended += 1
            summary.counts[record.status] += 1
            progress.advance(bar)
            show()
            console.print(f"    -> {escape(describe(spec))}: {outcome(record)}")
    return summary


def system_identity(name: str) -> dict[str, str]:
    """A system's declared role, library and its version, for records the worker never made (skipped)."""
    from bench.options import ConfigError
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
