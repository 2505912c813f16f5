"""The run unit every executor schedules: `supervise(spec, limits) -> RunRecord`.

It starts the worker process (`python -m bench.run.worker`), enforces the run's time, memory and disk limits
on the machine it runs on, and finishes the record: the worker leaves its part (identity, metrics, timings)
in the run folder, the supervisor adds what only it can see (the whole process's duration, the process
tree's peak memory, the scratch folder's peak size, a timeout or a kill), writes record.json once and
removes the scratch folder once. A record.json in a run folder therefore means the folder is complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.core import backend, rundir
from bench.core.resume import RESUME_DIR
from bench.measure.descendants import MEMORY_POLL_S, tree_rss_mb
from bench.run import environments
from bench.run.records import RunRecord, record_for
from bench.run.spec import DatasetRef, RunSpec
from bench.systems.base import RAY_NODE_ENV
from bench.systems.search import placement

DISK_POLL_S = 5.0  # scratch-folder size is costlier to read, so less often
LOG_TAIL_LINES = 40  # lines of a crashed run's log searched for its last error
# Without an explicit cap a run may use this share of the machine's memory: all a run could use while the
# driver and the system keep theirs, so one runaway run (a huge image, a leak) is stopped before the machine
# swaps or its OOM killer picks the driver.
DEFAULT_RSS_SHARE = 0.8
# The environment variables that move a library's own files, and the folders of the harness's cache they name.
HOMES = {"KERAS_HOME": "keras", "MPLCONFIGDIR": "matplotlib"}


@dataclass(frozen=True)
class Limits:
    """How a run is stopped: soft stop (SIGTERM) at the spec's timeout_s, kill after grace_s, kill above
    max_rss_mb of memory or max_disk_mb of scratch files."""

    grace_s: float = 30.0  # time to record a timeout cleanly before the kill
    max_rss_mb: float | None = None  # None: DEFAULT_RSS_SHARE of the memory of the machine the run is on
    max_disk_mb: float | None = None  # None: no cap on the run's scratch folder


@dataclass
class _Watch:
    status: str = "ok"
    reason: str = ""
    peak_rss_mb: float = 0.0
    peak_disk_mb: float = 0.0


def supervise(spec: RunSpec, limits: Limits | None = None, env: dict[str, str] | None = None) -> RunRecord:
    """Runs one spec in a child process under the limits (env: more of its environment); returns its record,
    whatever happens to the child."""
    limits = limits or Limits()
    if limits.max_rss_mb is None:
        # The default is the machine's, read where the run runs (a Ray node's, not the driver's).
        limits = dataclasses.replace(limits, max_rss_mb=default_rss_cap_mb())
    folder = rundir.run_dir(spec.out_dir, spec.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    record_path, result_path = folder / rundir.RECORD, folder / rundir.WORKER_RESULT
    for stale in (record_path, result_path):
        stale.unlink(missing_ok=True)  # an old run's record must not pass for this run's
    spec_path = folder / rundir.SPEC
    rundir.write_atomic(spec_path, spec.to_json())
    given = env or {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
           # Keras reads its backend once, on import: the worker must start with it set.
           backend.ENV: backend.resolve(spec.backend), **harness_env(), **given}
    first_share = placement.prepare_chief(spec.search_workers, env, limits.max_rss_mb)
    try:
        # A system whose libraries cannot share this environment runs its worker in its own (bench.run.environments).
        python, worker_env = environments.worker_interpreter(spec.system)
    except environments.EnvironmentMissing as exc:
        record = record_for(spec, "failed", error=str(exc), max_rss_mb=limits.max_rss_mb)
        rundir.write_atomic(record_path, record.to_json())
        return record
    env.update(worker_env)
    if python != sys.executable:
        failed = _prepare_pixels(spec, limits, env)
        if failed is not None:
            rundir.write_atomic(record_path, failed.to_json())
            return failed
    if environments.under_ray():
        env[RAY_NODE_ENV] = "1"
    t0 = time.monotonic()
    try:
        with open(folder / rundir.LOG, "w", encoding="utf-8") as log:
            proc = subprocess.Popen([python, "-m", "bench.run.worker", str(spec_path)], stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
            if first_share:
                # The chief of a search over several processes: on its share from the start, so the thread
                # pools its libraries size on import match it.
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(proc.pid, first_share)
            try:
                watch = _watch(proc, spec, limits, folder / rundir.WORK)
            except BaseException:
                kill_group(proc, signal.SIGKILL)
                proc.wait()
                raise
    finally:
        shutil.rmtree(folder / rundir.WORK, ignore_errors=True)
    duration = time.monotonic() - t0
    if watch.reason:  # the harness stopped the run (time, memory, disk): a verdict, not a death to resume from
        shutil.rmtree(folder / RESUME_DIR, ignore_errors=True)
    record = _worker_part(result_path, spec)
    if record is None:
        reason = watch.reason or _crash_reason(proc.returncode, folder / rundir.LOG)
        record = record_for(spec, watch.status if watch.reason else "failed", error=reason)
    elif watch.reason and record.status != "ok":
        # A run that finished just as it was stopped keeps its result.
        record = record.replace(status=watch.status, error=watch.reason)
    peak = max(filter(None, [record.peak_rss_mb, watch.peak_rss_mb]), default=None)
    record = record.replace(duration_s=duration, peak_rss_mb=peak,
                            peak_disk_mb=record.peak_disk_mb or watch.peak_disk_mb, max_rss_mb=limits.max_rss_mb)
    rundir.write_atomic(record_path, record.to_json())
    result_path.unlink(missing_ok=True)
    return record


# The data sets (and cache folders) this process has decoded for workers of other environments: once each.
_PREPARED: set[tuple[DatasetRef, str]] = set()


def _prepare_pixels(spec: RunSpec, limits: Limits, env: dict[str, str]) -> RunRecord | None:
    """For a worker in another environment: its data set decoded here first (a child of this interpreter, under
    the run's limits, once per data set) and the worker told to read those pixels, not decode its own: another
    Pillow resizes differently, and every system of a suite must see the same pixels. A failed record when it
    cannot be."""
    from bench.datasets.cache import DECODER_ENV, REFRESH_ENV, cache_dir, decoder
    from bench.run.data_check import check

    key = (spec.dataset, str(cache_dir()))
    if key not in _PREPARED:
        prepared = check(spec.dataset, spec.timeout_s, limits, refresh=env.get(REFRESH_ENV) == "1")
        if not prepared.ok:
            return record_for(spec, "failed", error=f"the data set could not be prepared: {prepared.error}",
                              max_rss_mb=limits.max_rss_mb)
        _PREPARED.add(key)
    env[DECODER_ENV] = decoder()
    env.pop(REFRESH_ENV, None)  # decoded again just now, where asked
    return None


def harness_env() -> dict[str, str]:
    """What the harness's children get in their environment beside the caller's: Keras' and matplotlib's
    folders in the harness's data cache, unless the user names them, as on their first import Keras writes
    ~/.keras/keras.json and matplotlib its font cache under ~/.cache and ~/.config."""
    from bench.datasets.cache import cache_dir

    return {name: str(cache_dir() / folder) for name, folder in HOMES.items() if not os.environ.get(name)}


def default_rss_cap_mb() -> float:
    """The memory cap of a run given none: DEFAULT_RSS_SHARE of this machine's memory, in MiB."""
    return round(psutil.virtual_memory().total * DEFAULT_RSS_SHARE / 2**20)


def _worker_part(path: Path, spec: RunSpec) -> RunRecord | None:
    """The record the worker left, or None when it died before writing one."""
    try:
        record = RunRecord.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None
    return record if record.run_id == spec.run_id else None


def _watch(proc: subprocess.Popen, spec: RunSpec, limits: Limits, work: Path) -> _Watch:
    """Polls the run's child until it exits, enforcing the time, memory and disk limits."""
    return watch(proc, limits, spec.timeout_s, f"budget {spec.budget.name}", work)


def watch(proc: subprocess.Popen, limits: Limits, timeout_s: float | None, what: str,
          work: Path | None = None) -> _Watch:
    """Polls a child started in its own session until it exits, enforcing a hard time limit (timeout_s, None
    for none; `what` names whose it is in the reason) and the memory and disk (work's files) limits."""
    watch = _Watch()
    start = time.monotonic()
    soft_sent: float | None = None
    next_disk = start
    while proc.poll() is None:
        now = time.monotonic()
        rss = tree_rss_mb(proc.pid)
        watch.peak_rss_mb = max(watch.peak_rss_mb, rss)
        if work is not None and now >= next_disk:
            # A system that can continue after its process died keeps its checkpoint in resume/, not work/ (a
            # search its tuner's project, autogluon its predictor's folder).
            scratch = rundir.folder_mb(work) + rundir.folder_mb(work.parent / RESUME_DIR)
            watch.peak_disk_mb = max(watch.peak_disk_mb, scratch)
            next_disk = now + DISK_POLL_S
        if limits.max_rss_mb is not None and rss > limits.max_rss_mb:
            watch.status, watch.reason = "failed", (
                f"memory limit exceeded: {rss:.0f} MB > {limits.max_rss_mb:.0f} MB; "
                "lower the batch size or max_train, or raise max_rss_mb")
            kill_group(proc, signal.SIGKILL)
        elif limits.max_disk_mb is not None and watch.peak_disk_mb > limits.max_disk_mb:
            watch.status, watch.reason = "failed", (
                f"disk limit exceeded: {watch.peak_disk_mb:.0f} MB of scratch files > {limits.max_disk_mb:.0f} MB")
            kill_group(proc, signal.SIGKILL)
        elif timeout_s is not None and soft_sent is None and now - start >= timeout_s:
            watch.status, watch.reason = "timeout", f"exceeded the hard time limit of {timeout_s:.0f} s for {what}"
            soft_sent = now
            kill_group(proc, signal.SIGTERM)
        elif soft_sent is not None and now - soft_sent >= limits.grace_s:
            kill_group(proc, signal.SIGKILL)
        time.sleep(MEMORY_POLL_S)
    return watch


def kill_group(proc: subprocess.Popen, sig: int) -> None:
    """Sends sig to the child's whole process group (its session), ignoring one already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _crash_reason(returncode: int | None, log: Path) -> str:
    """Why a child died without leaving its record: the signal, or the last error line of its log."""
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (likely out of memory)" if -returncode == signal.SIGKILL else ""
        return f"worker killed by {name}{hint}"
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:] if log.exists() else []
    errors = [ln for ln in lines if "Error" in ln or "Exception" in ln]
    last = (errors or lines or ["no output"])[-1].strip()
    return f"worker exited with code {returncode}: {last}"[:500]
