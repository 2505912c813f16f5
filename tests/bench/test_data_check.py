"""The driver's check of what a data set loads as now: in a child process, under a run's limits, never hanging
or growing the driver, and data that cannot be loaded now is not the data a recorded run saw."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.run import data_check
from bench.run.spec import DatasetRef
from bench.run.supervise import Limits
from tests.datasets.builders import class_members, corrupt_png, write_tree


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m bench ...` as a user types it; a hang past `timeout` fails the test."""
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=timeout)


def run_majority(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return bench("run", "--dataset", f"folder:{data}", "--system", "majority", "--budget", "full", "--out",
                 str(out), *extra)


def driver_peak_mb(args: list[str], stop_at_mb: float = 1000, timeout: float = 120) -> tuple[int, float]:
    """Runs `python -m bench ARGS`, watching the driver's own resident memory: its exit code and peak in MiB. A
    driver past stop_at_mb or timeout is killed (so a test of a fault cannot take the machine's memory)."""
    proc = subprocess.Popen([sys.executable, "-m", "bench", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    me, peak, started = psutil.Process(proc.pid), 0.0, time.monotonic()
    try:
        while proc.poll() is None and peak <= stop_at_mb and time.monotonic() - started < timeout:
            with contextlib.suppress(psutil.NoSuchProcess):
                peak = max(peak, me.memory_info().rss / 2**20)
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, peak


# The driver's path is the same for both; the FIFO's own branch of the folder walk is checked in-process by
# tests/datasets/test_folder.py, so the default run keeps the link to /dev/zero (the one that could grow memory).
@pytest.mark.parametrize("hostile", [pytest.param("fifo", marks=pytest.mark.slow), "zero"])
def test_a_fifo_or_a_link_to_dev_zero_added_since_neither_hangs_nor_grows_a_resume(tmp_path, hostile):
    root = write_tree(tmp_path / "d", class_members(("a", "b"), per_class=5))
    out = tmp_path / "out"
    assert run_majority(root, out).returncode == 0
    if hostile == "fifo":
        os.mkfifo(root / "a" / "x.png")
    else:
        (root / "a" / "x.png").symlink_to("/dev/zero")
    code, peak = driver_peak_mb(["run", "--dataset", f"folder:{root}", "--system", "majority", "--budget", "full",
                                 "--out", str(out)])
    assert code == 0 and peak < 500, (code, peak)
    again = run_majority(root, out)
    assert "1 run(s) already recorded as ok" in again.stderr  # x.png is left out: the same data


def test_data_that_cannot_be_loaded_now_is_not_the_data_a_run_saw(tmp_path):
    root = write_tree(tmp_path / "d", class_members(("a", "b"), per_class=5))
    out = tmp_path / "out"
    assert run_majority(root, out).returncode == 0
    for image in root.glob("*/*.png"):
        image.write_bytes(corrupt_png())
    again = run_majority(root, out)
    assert again.returncode == 1
    lines = [ln for ln in again.stderr.splitlines() if "data unreadable" in ln]
    assert len(lines) == 1 and "could not be decoded" in lines[0] and "1 run recorded on it run again" in lines[0]
    assert "already recorded" not in again.stderr
    assert "failed: DatasetError" in again.stderr


@pytest.mark.parametrize(("kind", "limits", "timeout", "reason"), [
    ("hang", Limits(), 2.0, "exceeded the hard time limit of 2 s for loading the data set"),
    ("hog", Limits(max_rss_mb=300), None, "memory limit exceeded"),
])
def test_the_check_is_stopped_at_a_runs_limits(monkeypatch, kind, limits, timeout, reason):
    monkeypatch.setattr(data_check, "CHILD_MODULE", "tests.bench.data_check_fakes")
    started = time.monotonic()
    found = data_check.check(DatasetRef(kind), timeout, limits)
    assert not found.ok and reason in found.error
    assert time.monotonic() - started < 30
