"""A run that goes on after its process died (a preempted machine, kill -9, a lost driver): what the earlier
attempts spent, and the folder where a system keeps what it needs to continue.

`runs/<run_id>/resume/` holds attempt.json (the attempt's key and the compute spent so far, rewritten every
HEARTBEAT_S seconds while fit runs and whenever the system saves a checkpoint) and the system's own checkpoint
files in `checkpoint/`. A run that ends ok, or that the harness stopped at a limit, removes the folder; a run
whose process dies leaves it, as does one that failed with an error (a refit that failed after a long search
does not search again). The next attempt of the same run id (`bench all` / `bench run` again on the same results
folder; `--force` starts afresh) continues from it when its key matches: the same spec, data fingerprint, code,
backend and precision. Otherwise it starts again, with one line saying what changed.

The budget is the user's bill: an attempt's deadline is the budget less every earlier attempt's fit time, and the
record's fit, CPU and GPU seconds and its energy add them up. The time between an attempt's last heartbeat and its
death (at most HEARTBEAT_S) is the only compute left out.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import psutil

from bench.core import rundir

RESUME_DIR = "resume"  # in the run's folder
ATTEMPT = "attempt.json"
CHECKPOINT_DIR = "checkpoint"  # in RESUME_DIR: the system's own files
# How often a running fit records its compute so far: what a killed attempt can leave uncounted.
HEARTBEAT_S = 10.0


# The meters' figures a heartbeat persists beside fit_s and cpu_s (the record's fields of the same names).
HELD_S = ("gpu_s", "gpu_busy_s")  # None: no GPU held, so nothing to add
ENERGY_J = ("gpu_energy_j", "cpu_energy_j")  # None: not measured, so a sum over attempts is unknown too
USAGE = HELD_S + ENERGY_J


@dataclass(frozen=True)
class Spent:
    """Compute of the attempts so far (fit_s: wall seconds in fit; cpu_s: this process's CPU seconds; the GPU and
    energy figures as the run record defines them, None where not measured)."""

    attempts: int = 0
    fit_s: float = 0.0
    cpu_s: float = 0.0
    carried: str = ""  # what the last checkpoint holds, e.g. 'epoch 3 of 8' ('' before any checkpoint)
    gpu_s: float | None = None
    gpu_busy_s: float | None = None
    gpu_energy_j: float | None = None
    cpu_energy_j: float | None = None
    fits: int = 0  # attempts whose fit began (an attempt that died loading its data spent no fit compute)
    # Fit seconds of attempts a system that cannot continue threw away (fit_s and the rest leave them out).
    uncounted_fit_s: float = 0.0


def add_usage(name: str, earlier: float | None, now: float | None, earlier_fits: int) -> float | None:
    """One usage figure over attempts: held seconds add where known; energy is unknown once an attempt that
    ran a fit did not measure it (a lower figure would pass for the whole)."""
    if earlier_fits == 0:
        return now
    if name in ENERGY_J:
        return None if earlier is None or now is None else earlier + now
    return now if earlier is None else earlier if now is None else earlier + now


class Attempt:
    """This attempt of a run: the spend it inherits, its checkpoint folder, and the heartbeat that persists it."""

    def __init__(self, run_folder: Path, key: Mapping[str, str], resumable: bool = True) -> None:
        """Reads what an earlier attempt of the run left (see `note` for what was decided and why). A system that
        cannot continue (resumable False) starts again with its whole budget; its earlier attempts are counted,
        their compute is not in this attempt's figures (none of it reached the result)."""
        self.folder = Path(run_folder) / RESUME_DIR
        self.key = dict(key)
        self.before = Spent()
        self.note = ""  # one line for the run's log: resuming, or starting again and why
        self._fit_t0: float | None = None
        self._cpu_t0 = 0.0
        self._carried = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._usage: Callable[[], Mapping[str, float | None]] | None = None
        self._whole: Callable[[dict[str, float | None]], Mapping[str, object]] | None = None
        state = self._read()
        if state is None:
            return
        old_key = state.get("key", {})
        changed = sorted(k for k in set(old_key) | set(self.key) if old_key.get(k) != self.key.get(k))
        if changed:
            self.note = f"starting again: an earlier attempt's {', '.join(changed)} differ from this one's"
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        spent = state.get("spent", {})
        self.before = Spent(**{k: spent[k] for k in Spent.__dataclass_fields__ if k in spent})
        if not resumable:
            self.note = (f"starting again: this system cannot continue from its {self.before.attempts} earlier "
                         f"attempt(s), which spent {self.before.fit_s:.0f} s in fit")
            self.before = Spent(attempts=self.before.attempts,
                                uncounted_fit_s=self.before.uncounted_fit_s + self.before.fit_s)
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        self._carried = self.before.carried
        self.note = (f"resuming after {self.before.attempts} attempt(s) that spent {self.before.fit_s:.0f} s in fit"
                     + (f", from {self.before.carried}" if self.before.carried else ", with nothing to carry over"))

    @property
    def checkpoint_dir(self) -> Path:
        """Where the system keeps its checkpoint (made on first use)."""
        path = self.folder / CHECKPOINT_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    def deadline(self, budget_s: float | None, now: float | None = None) -> float | None:
        """The time.monotonic() deadline of this attempt: the budget less the earlier attempts' fit time."""
        if budget_s is None:
            return None
        now = time.monotonic() if now is None else now
        return now + max(0.0, budget_s - self.before.fit_s)

    def fit_started(self, usage: Callable[[], Mapping[str, float | None]] | None = None) -> None:
        """Starts this attempt's fit clock and its heartbeat; `usage` reads the meters' totals so far (USAGE)."""
        self._usage = usage
        self._fit_t0, self._cpu_t0 = time.monotonic(), _cpu_s()
        self.save()
        self._thread = threading.Thread(target=self._beat, name="resume-heartbeat", daemon=True)
        self._thread.start()

    def spread_over(self, whole: Callable[[dict[str, float | None]], Mapping[str, object]]) -> None:
        """This attempt also computes in other processes (a search's workers): `whole` turns this process's
        figures so far (fit_s, cpu_s and USAGE) into the attempt's, which the heartbeat then persists."""
        self._whole = whole

    def checkpointed(self, carried: str) -> None:
        """The system saved a checkpoint holding `carried` (e.g. 'epoch 3 of 8'): persist it with the spend."""
        with self._lock:
            self._carried = carried
        self.save()

    def spent(self) -> Spent:
        """Every attempt's compute so far, this one's included."""
        with self._lock:
            carried = self._carried
        before = self.before
        if self._fit_t0 is None:
            return replace(before, attempts=before.attempts + 1, carried=carried)
        now: dict[str, float | None] = {name: None for name in USAGE}
        now.update(self._usage() if self._usage is not None else {})
        now.update(fit_s=time.monotonic() - self._fit_t0, cpu_s=_cpu_s() - self._cpu_t0)
        total = self.with_earlier(now if self._whole is None else self._whole(now))
        return Spent(before.attempts + 1, total["fit_s"], total["cpu_s"], carried,  # type: ignore[arg-type]
                     fits=before.fits + 1, uncounted_fit_s=before.uncounted_fit_s,
                     **{name: total[name] for name in USAGE})  # type: ignore[misc]

    def save(self) -> None:
        """Writes attempt.json (atomically: a kill mid-write leaves the previous one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        rundir.write_atomic(self.folder / ATTEMPT, json.dumps({"key": self.key, "spent": asdict(self.spent())}))

    def stop(self) -> None:
        """Stops the heartbeat (the fit is over)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def finish(self) -> None:
        """The run ended with a record: nothing is left to resume."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def with_earlier(self, compute: Mapping[str, object]) -> dict[str, object]:
        """This attempt's record fields (fit_s, cpu_s and the USAGE figures) plus the earlier attempts'."""
        total = dict(compute)
        for name in ("fit_s", "cpu_s"):
            if name in compute:
                value = compute[name]
                total[name] = None if value is None else float(value) + getattr(self.before, name)  # type: ignore[arg-type]
        for name in USAGE:
            if name in compute:
                value = compute[name]
                total[name] = add_usage(name, getattr(self.before, name),
                                        None if value is None else float(value),  # type: ignore[arg-type]
                                        self.before.fits)
        return total

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.save()
            except OSError:  # a full disk must not end the run; the last heartbeat stands
                continue

    def _read(self) -> dict | None:
        try:
            state = json.loads((self.folder / ATTEMPT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            if self.folder.exists():  # half-written or unreadable: nothing can be trusted
                shutil.rmtree(self.folder, ignore_errors=True)
                self.note = "starting again: an earlier attempt's resume state could not be read"
            return None
        return state if isinstance(state, dict) else None


def _cpu_s() -> float:
    """CPU seconds of this process so far, all threads."""
    times = psutil.Process().cpu_times()
    return times.user + times.system
