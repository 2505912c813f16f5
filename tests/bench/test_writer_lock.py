"""One writer per results folder: the lock itself, and two real drivers started together on one folder."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from bench.run.store import ResultsStore
from bench.run.writer_lock import LOCK_FILE, FolderBusy, hold

SUITE = """
description = "two drivers, one folder"
seeds = [0, 1, 2]
budgets = ["full"]
datasets = [{ name = "digits", max_train = 200 }]
systems = [{ name = "tests.bench.fakes:Sleeps", options = { seconds = 0.5, calls = "CALLS" } }]
"""


def test_a_second_holder_is_refused_at_once_with_the_holder_named(tmp_path):
    with hold(tmp_path, command="bench all --suite first"):
        t0 = time.monotonic()
        with pytest.raises(FolderBusy) as refused, hold(tmp_path):
            pass
        assert time.monotonic() - t0 < 1.0
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message and "bench all --suite first" in message
    assert "\n" not in message and "--wait" in message and "--out" in message
    with hold(tmp_path):  # released when the block ends
        pass


def test_a_holder_killed_with_sigkill_leaves_the_folder_free(tmp_path):
    code = (f"import time; from bench.run.writer_lock import hold\n"
            f"with hold({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match=f"pid {holder.pid}"), hold(tmp_path):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with hold(tmp_path):
        assert (tmp_path / LOCK_FILE).exists()


def test_wait_blocks_until_the_holder_releases(tmp_path):
    released = threading.Event()
    told: list[str] = []

    def hold_briefly() -> None:
        with hold(tmp_path, command="first"):
            started.set()
            time.sleep(1.5)
        released.set()

    started = threading.Event()
    thread = threading.Thread(target=hold_briefly)
    thread.start()
    started.wait(10)
    with hold(tmp_path, wait=True, on_wait=told.append):
        assert released.is_set()
    thread.join()
    assert len(told) == 1 and "first" in told[0]


@pytest.mark.slow
def test_two_drivers_started_together_one_runs_the_suite_the_other_exits_2(tmp_path):
    calls = tmp_path / "calls.txt"
    suite = tmp_path / "two.toml"
    suite.write_text(SUITE.replace("CALLS", str(calls)))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench", "all", "--suite", str(suite), "--out", str(out), "--no-report"]
    drivers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    results = [(d.wait(timeout=180), d.stderr.read()) for d in drivers]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    (refused,) = [err for code, err in results if code == 2]
    (winner,) = [d for d, (code, _) in zip(drivers, results, strict=True) if code == 0]
    errors = [ln for ln in refused.splitlines() if "error" in ln]
    assert len(errors) == 1 and f"pid {winner.pid}" in errors[0] and "in use" in errors[0]
    assert "Traceback" not in refused
    records = ResultsStore(out).records()
    assert len(records) == 3 and all(r.status == "ok" for r in records.values())
    runs = [line.split()[0] for line in calls.read_text().splitlines()]
    assert sorted(runs) == sorted(records), "each run ran exactly once"


def test_the_report_reads_without_the_lock(tmp_path):
    from bench.cli import main

    out = tmp_path / "out"
    assert main(["run", "--dataset", "digits", "--system", "majority", "--budget", "full", "--max-train", "200",
                 "--out", str(out)]) == 0
    with hold(out, command="a running suite"):
        assert main(["report", "--out", str(out)]) == 0
