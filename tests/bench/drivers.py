"""A suite driver in the background, for the tests that kill one mid-suite and start it again (local and Ray
executors alike)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

# Five slow fake runs: long enough that a kill lands mid-suite; `calls` is the file each run appends its id to.
SUITE = """
description = "kill test"
seeds = [0, 1, 2, 3, 4]
[[datasets]]
name = "digits"
max_train = 100
[[systems]]
name = "tests.bench.fakes:Sleeps"
budgets = ["full"]
options = {{ seconds = 1.5, calls = "{calls}" }}
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
