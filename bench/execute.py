"""Executors: where runs happen. A run is a picklable RunSpec in and a RunRecord out, with no shared state,
so another engine (Ray, a batch scheduler) can stand in for the local one."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import rundir
from bench.records import RunRecord
from bench.spec import RunSpec
from bench.worker import base_record

POLL_S = 0.5  # how often the executor checks the child's clock and memory
DISK_POLL_S = 5.0  # scratch-folder size is costlier to read, so less often
LOG_TAIL_LINES = 40  # lines of a crashed run's log searched for its last error


@dataclass(frozen=True)
class Limits:
    """How a local run is stopped: soft stop (SIGTERM) at timeout_s, kill after grace_s, kill above max_rss_mb."""

    grace_s: float = 30.0  # time to record a timeout cleanly before the kill
    max_rss_mb: float | None = None  # None: no cap besides the machine's own


class Executor(ABC):
    """Runs specs and yields (spec, record) as each run ends."""

    @abstractmethod
    def map(self, specs: Iterable[RunSpec],
            on_start: Callable[[RunSpec], None] | None = None) -> Iterator[tuple[RunSpec, RunRecord]]:
        """Executes the specs; on_start is called as each one begins."""


class LocalExecutor(Executor):
    """One run at a time, each in its own process with a hard wall-clock and memory limit."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def map(self, specs: Iterable[RunSpec],
            on_start: Callable[[RunSpec], None] | None = None) -> Iterator[tuple[RunSpec, RunRecord]]:
        """Runs specs one after the other."""
        for spec in specs:
            if on_start is not None:
                on_start(spec)
            yield spec, self.run(spec)

    def run(self, spec: RunSpec) -> RunRecord:
        """Executes one spec in a child process and returns its record, whatever happens to the child."""
        folder = rundir.run_dir(spec.out_dir, spec.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        record_path = folder / rundir.RECORD
        record_path.unlink(missing_ok=True)  # a stale record must not pass for this run's
        spec_path = folder / rundir.SPEC
        rundir.write_atomic(spec_path, spec.to_json())
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": os.environ.get(
            "TF_CPP_MIN_LOG_LEVEL", "2")}
        t0 = time.monotonic()
        with open(folder / rundir.LOG, "w", encoding="utf-8") as log:
            proc = subprocess.Popen([sys.executable, "-m", "bench.worker", str(spec_path)], stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
            try:
                watch = self._watch(proc, spec, folder / rundir.WORK)
            except BaseException:
                _kill_group(proc, signal.SIGKILL)
                proc.wait()
                raise
        shutil.rmtree(folder / rundir.WORK, ignore_errors=True)
        duration = time.monotonic() - t0
        if record_path.exists():
            record = RunRecord.from_json(record_path.read_text())
            # A run that finished just as it was stopped keeps its result.
            if watch.reason and record.status != "ok":
                record = record.replace(status=watch.status, error=watch.reason)
        else:
            reason = watch.reason or _crash_reason(proc.returncode, folder / rundir.LOG)
            record = base_record(spec, watch.status if watch.reason else "failed", error=reason,
                                 duration_s=duration)
        peak = max(filter(None, [record.peak_rss_mb, watch.peak_rss_mb]), default=None)
        record = record.replace(peak_rss_mb=peak, peak_disk_mb=record.peak_disk_mb or watch.peak_disk_mb)
        rundir.write_atomic(record_path, record.to_json())
        return record

    def _watch(self, proc: subprocess.Popen, spec: RunSpec, work: Path) -> _Watch:
        """Polls the child until it exits, enforcing the time and memory limits."""
        watch = _Watch()
        start = time.monotonic()
        soft_sent: float | None = None
        next_disk = start
        while proc.poll() is None:
            now = time.monotonic()
            rss = _tree_rss_mb(proc.pid)
            watch.peak_rss_mb = max(watch.peak_rss_mb, rss)
            if now >= next_disk:
                watch.peak_disk_mb = max(watch.peak_disk_mb, _folder_mb(work))
                next_disk = now + DISK_POLL_S
            if self.limits.max_rss_mb is not None and rss > self.limits.max_rss_mb:
                watch.status, watch.reason = "failed", (
                    f"memory limit exceeded: {rss:.0f} MB > {self.limits.max_rss_mb:.0f} MB; "
                    "lower the batch size or max_train, or raise max_rss_mb")
                _kill_group(proc, signal.SIGKILL)
            elif spec.timeout_s is not None and soft_sent is None and now - start >= spec.timeout_s:
                watch.status, watch.reason = "timeout", (
                    f"exceeded the hard time limit of {spec.timeout_s:.0f} s for budget {spec.budget.name}")
                soft_sent = now
                _kill_group(proc, signal.SIGTERM)
            elif soft_sent is not None and now - soft_sent >= self.limits.grace_s:
                _kill_group(proc, signal.SIGKILL)
            time.sleep(POLL_S)
        return watch


@dataclass
class _Watch:
    status: str = "ok"
    reason: str = ""
    peak_rss_mb: float = 0.0
    peak_disk_mb: float = 0.0


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _tree_rss_mb(pid: int) -> float:
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**20
    except psutil.Error:
        return 0.0


def _folder_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total / 2**20


def _crash_reason(returncode: int | None, log: Path) -> str:
    """Why a child died without writing its record: the signal, or the last error line of its log."""
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (likely out of memory)" if -returncode == signal.SIGKILL else ""
        return f"worker killed by {name}{hint}"
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:] if log.exists() else []
    errors = [ln for ln in lines if "Error" in ln or "Exception" in ln]
    last = (errors or lines or ["no output"])[-1].strip()
    return f"worker exited with code {returncode}: {last}"[:500]
