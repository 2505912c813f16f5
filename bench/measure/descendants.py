"""What a process tree uses: its memory (tree_rss_mb), and the CPU seconds of the processes a run's worker starts
(a library's own: Ray Tune's trial processes, data loader workers), which the worker's own clock
(time.process_time) does not see.

CPU is sampled every POLL_S seconds from /proc through psutil, per process (its own user and system time, not that of
its children, which are counted as processes of their own): a process that ends between two samples loses at
most its last POLL_S of CPU, so the figure is a lower bound that short-lived processes can undershoot.
"""

from __future__ import annotations

import threading

import psutil

# How often the process tree is read: short enough that a trial process's last second or so is all that a
# sample can miss, long enough that reading a tree of tens of processes costs nothing measurable.
POLL_S = 1.0
# How often a process tree's memory is held against its cap: a run's by its supervisor (bench.run.supervise, which
# looks at the run's clock as often), a search worker's by its Ray task (bench.systems.search.processes).
MEMORY_POLL_S = 0.5


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MiB (0 once it is gone)."""
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**20
    except psutil.Error:
        return 0.0


class DescendantsCpu:
    """Inside `with`: the CPU seconds of this process's descendants started meanwhile (cpu_s, after exit)."""

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self._seen: dict[tuple[int, float], float] = {}  # (pid, start time) -> its CPU seconds at the last read
        self._before: set[tuple[int, float]] = set()  # descendants already running on entry: not ours
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _descendants(self) -> dict[tuple[int, float], float]:
        out = {}
        for proc in psutil.Process().children(recursive=True):
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    out[(proc.pid, proc.create_time())] = times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue  # ended since the listing: its last sample stands
        return out

    def _sample(self) -> None:
        for key, cpu_s in self._descendants().items():
            if key not in self._before:
                self._seen[key] = max(cpu_s, self._seen.get(key, 0.0))

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._sample()

    def __enter__(self) -> DescendantsCpu:
        self._before = set(self._descendants())
        self._thread = threading.Thread(target=self._run, name="descendants-cpu", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    @property
    def cpu_s(self) -> float:
        """CPU seconds of the descendants seen, each at its last sample."""
        return sum(self._seen.values())
