"""A suite driver in the background, for the tests that kill one mid-suite and start it again (local and Ray
executors alike), and a wait for what it (or any process the test started) has done."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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
