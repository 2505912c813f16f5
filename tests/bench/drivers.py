"""A suite driver in the background, for the tests that kill one mid-suite and start it again (local and Ray
executors alike), a wait for what it (or any process the test started) has done, and a user's command killed
with its whole process tree once it is ready (the tests of runs that continue after they died)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.core.resume import RESUME_DIR

# Five fake runs of half a second: a test polls the table every POLL_S and kills the driver once some are in it,
# so the rest (one at a time locally, two at a time on the tests' Ray) are still to run; `calls` is the file each
# run appends its id to.
SUITE = """
description = "kill test"
seeds = [0, 1, 2, 3, 4]
[[datasets]]
name = "digits"
max_train = 100
[[systems]]
name = "tests.bench.fakes:Sleeps"
budgets = ["full"]
options = {{ seconds = 0.5, calls = "{calls}" }}
"""


def driver(tmp_path: Path, suite: Path, *args: str) -> subprocess.Popen:
    """`python -m bench all` on the suite into tmp_path/out, in the background.

    Ctrl-C (SIGINT) is restored to its default in the driver: a test session started in the background by a
    shell without job control (`pytest &` in a script, nohup) ignores SIGINT, children inherit that, and Python
    then installs no KeyboardInterrupt handler, so the Ctrl-C tests would see a driver that cannot be stopped.
    """
    return subprocess.Popen([sys.executable, "-m", "bench", "all", "--suite", str(suite), "--out",
                             str(tmp_path / "out"), "--no-report", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


POLL_S = 0.2


def wait_for(predicate: Callable[[], bool], timeout: float = 120, what: str = "") -> None:
    """Returns once predicate() holds, polling every POLL_S; fails the test after `timeout` seconds, saying `what`
    it waited for."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting{': ' + what if what else ''}"
        time.sleep(POLL_S)


def killed_once_ready(command: list[str], env: dict[str, str], out: Path, ready: Callable[[], bool],
                      timeout_s: float = 240) -> None:
    """Starts the user's command and, once ready() holds, kills its whole process tree with SIGKILL (a preempted
    machine): the driver, the run's worker, which runs in a session of its own, and a search's workers."""
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not ready() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert first.poll() is None, "the run ended before it could be killed"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        # The search's workers die with the run's (the kernel's parent-death signal); these are in case.
        for module in ("bench.run.worker", "bench.run.search_worker"):
            subprocess.run(["pkill", "-9", "-f", f"{module} {out}"], check=False)


def trials_saved(out: Path) -> int:
    """Trials the resume state of the one run under `out` holds (0 before it holds any)."""
    found = list((out / "runs").glob(f"*/{RESUME_DIR}/checkpoint/search.json"))
    try:
        return len(json.loads(found[0].read_text())["rows"]) if found else 0
    except (OSError, ValueError):
        return 0
