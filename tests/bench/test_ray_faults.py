"""Faults under --executor ray: a node that dies mid-run (a simulated two-node cluster), a driver killed with
SIGKILL and started again. Each test starts and stops its own Ray."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

import psutil
import pytest

from bench.core.budget import parse_budget
from bench.run.spec import DatasetRef, Resources, RunSpec, freeze
from bench.run.store import ResultsStore
from tests.bench.drivers import SUITE, driver, wait_for
from tests.conftest import REPO

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from bench.run.ray_executor import RayExecutor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
# Ray's cancellation of a run's task ends its worker process within this.
CANCEL_S = 2.0


def sleeper(out: Path, seconds: float, budget: str, calls: Path, seed: int = 0) -> RunSpec:
    return RunSpec(dataset=DatasetRef("digits", max_train=100), system="tests.bench.fakes:Sleeps",
                   system_options=freeze({"seconds": seconds, "calls": str(calls)}), budget=parse_budget(budget),
                   seed=seed, timeout_s=120, out_dir=str(out), resources=Resources(num_cpus=1))


@pytest.mark.parametrize(("retries", "lost_status"), [
    # The retry is Ray's own (the task's max_retries): the driver's lines are the same as without it, and the
    # second try sleeps the run again, so it runs with -m slow.
    pytest.param(1, "ok", marks=pytest.mark.slow), (0, "failed")])
def test_a_run_whose_node_dies_is_retried_then_ok_or_failed_node_lost(tmp_path, retries, lost_status):
    """The head runs nothing (no CPUs); the run lands on the worker node, which is removed mid-run."""
    env = {"PYTHONPATH": str(REPO), "BENCH_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20})
    try:
        # The driver joins first, so it attaches to the head (all simulated nodes share one address).
        ray.init(address=cluster.address, runtime_env={"env_vars": env}, log_to_driver=False)
        victim = cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        cluster.wait_for_nodes()
        calls = tmp_path / "calls.txt"
        lost = sleeper(tmp_path, 6, "2m", calls)  # the longer budget: submitted first, so it takes the node
        other = sleeper(tmp_path, 0.5, "1m", calls, seed=1)
        executor = RayExecutor(max_retries=retries)
        records: dict = {}
        driver = threading.Thread(target=lambda: records.update((s.run_id, r) for s, r in executor.map([other, lost])))
        driver.start()
        wait_for(lambda: calls.exists() and lost.run_id in calls.read_text())
        cluster.remove_node(victim)
        cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)  # somewhere for the retry and the rest
        driver.join(timeout=120)
    finally:
        ray.shutdown()
        cluster.shutdown()
    # The other run was waiting for the node's only core, so it may have been lost with it too (without
    # retries) but never in a torn or duplicated state.
    assert records[other.run_id].status == "ok" or records[other.run_id].error.startswith("node lost")
    assert records[other.run_id].status == "ok" or not retries
    record = records[lost.run_id]
    assert record.status == lost_status, record.error
    if lost_status == "ok":
        assert record.attempts == 2 and record.accuracy is not None
    else:
        assert record.error.startswith("node lost") and record.attempts == 1
    for run_id, rec in records.items():  # every folder came back to the driver, exactly once
        folder = tmp_path / "runs" / run_id
        assert (folder / "record.json").exists() and (folder / "log.txt").exists() == (rec.status == "ok")


def start_suite(tmp_path, records: int) -> tuple:
    """The five-run sleeping suite under `bench all --executor ray`, once `records` runs are in its table."""
    calls, suite = tmp_path / "calls.txt", tmp_path / "suite.toml"
    suite.write_text(SUITE.format(calls=calls))
    table = ResultsStore(tmp_path / "out")
    first = driver(tmp_path, suite, "--executor", "ray")
    wait_for(lambda: len(table.records()) >= records)
    return calls, suite, table, first


@pytest.mark.slow  # 34 s; the local executor's test of the same (tests/bench/test_execute.py) stays in the default run
def test_a_driver_killed_with_sigkill_resumes_only_what_is_missing(tmp_path):
    """As the local executor's test (test_execute.py), with the runs as Ray tasks of a local Ray."""
    calls, suite, table, first = start_suite(tmp_path, 2)
    ray_processes = psutil.Process(first.pid).children(recursive=True)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    # Ray's own agents outlive a driver killed this way (`ray stop` is the user's cure); this one's only.
    for proc in ray_processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    finished = {r.run_id for r in table.records().values() if r.status == "ok"}
    assert 2 <= len(finished) < 5

    assert driver(tmp_path, suite, "--executor", "ray").wait(timeout=180) == 0
    records = table.records()
    assert len(records) == 5 and all(r.status == "ok" for r in records.values())
    runs = [line.split()[0] for line in calls.read_text().splitlines()]
    for run_id in finished:
        assert runs.count(run_id) == 1, "a run already recorded as ok was run again"
    with open(tmp_path / "out" / "runs.csv") as f:
        assert len(f.read().splitlines()) == 6  # a header and five rows: nothing duplicated, nothing torn


@pytest.mark.slow
def test_ctrl_c_cancels_the_remaining_runs_and_leaves_a_whole_table(tmp_path):
    """Ctrl-C: exit 130, no run left running, a table that parses. Resuming from that table under Ray is the
    SIGKILL test's second half (-m slow); the local executor's resume is in the default run (test_execute.py)."""
    _, _, table, first = start_suite(tmp_path, 1)
    workers = [p for p in psutil.Process(first.pid).children(recursive=True)
               if "bench.run.worker" in " ".join(p.cmdline())]
    os.kill(first.pid, signal.SIGINT)
    assert first.wait(timeout=60) == 130  # the command line's code for an interrupted suite
    done = table.records()  # parses: no half-written row
    assert 1 <= len(done) < 5 and all(r.status == "ok" for r in done.values())

    def outlived() -> list[psutil.Process]:
        alive = []
        for p in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
        return alive

    wait_for(lambda: not outlived(), timeout=CANCEL_S, what="no run left after Ctrl-C")
