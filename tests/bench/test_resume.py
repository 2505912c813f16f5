"""A run whose process died continues on the next invocation: what the earlier attempts spent is carried and
counted, and a run of other data, code or arithmetic starts again saying why (bench.core.resume)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.core import resume
from bench.core.resume import ATTEMPT, RESUME_DIR, Attempt, Spent
from bench.systems.search.budget import allowed_overshoot_s
from tests.bench.drivers import killed_once_ready, trials_saved

KEY = {"run_id": "r1", "data_fingerprint": "abc", "code": "c0", "backend": "tensorflow", "precision": "float32"}


def left_by_a_dead_attempt(folder: Path, spent: Spent, key: dict[str, str] = KEY) -> None:
    (folder / RESUME_DIR).mkdir(parents=True, exist_ok=True)
    (folder / RESUME_DIR / ATTEMPT).write_text(json.dumps({"key": key, "spent": spent.__dict__}))


def test_a_first_attempt_has_the_whole_budget_and_nothing_to_say(tmp_path: Path) -> None:
    attempt = Attempt(tmp_path, KEY)
    assert attempt.before == Spent() and attempt.note == ""
    assert attempt.deadline(60.0, now=100.0) == 160.0
    assert attempt.deadline(None) is None


def test_a_resumed_attempt_has_the_budget_less_what_the_earlier_ones_spent_and_counts_it(tmp_path: Path) -> None:
    left_by_a_dead_attempt(tmp_path, Spent(attempts=2, fit_s=45.0, cpu_s=80.0, carried="epoch 3 (30 of 90 steps)"))
    attempt = Attempt(tmp_path, KEY)
    assert attempt.before.attempts == 2 and attempt.before.carried == "epoch 3 (30 of 90 steps)"
    assert attempt.note == "resuming after 2 attempt(s) that spent 45 s in fit, from epoch 3 (30 of 90 steps)"
    assert attempt.deadline(60.0, now=100.0) == 115.0
    assert attempt.deadline(30.0, now=100.0) == 100.0  # spent already: no time left, straight to predict
    assert attempt.with_earlier({"fit_s": 10.0, "cpu_s": 20.0}) == {"fit_s": 55.0, "cpu_s": 100.0}
    assert attempt.with_earlier({"fit_s": None, "cpu_s": None}) == {"fit_s": None, "cpu_s": None}


def test_gpu_time_and_energy_add_over_attempts_and_energy_unmeasured_once_is_unknown(tmp_path: Path) -> None:
    left_by_a_dead_attempt(tmp_path, Spent(attempts=1, fit_s=40.0, cpu_s=70.0, fits=1, gpu_s=40.0, gpu_busy_s=30.0,
                                           gpu_energy_j=9000.0, cpu_energy_j=None))
    attempt = Attempt(tmp_path, KEY)
    total = attempt.with_earlier({"fit_s": 20.0, "cpu_s": 30.0, "gpu_s": 20.0, "gpu_busy_s": None,
                                  "gpu_energy_j": 4000.0, "cpu_energy_j": 500.0, "gpu_model": "NVIDIA H200"})
    assert total == {"fit_s": 60.0, "cpu_s": 100.0, "gpu_s": 60.0, "gpu_busy_s": 30.0, "gpu_energy_j": 13000.0,
                     "cpu_energy_j": None, "gpu_model": "NVIDIA H200"}  # CPU energy unmeasured before: unknown
    # An earlier attempt that died before its fit began spent nothing: its unmeasured energy hides nothing.
    left_by_a_dead_attempt(tmp_path, Spent(attempts=1))
    assert Attempt(tmp_path, KEY).with_earlier({"cpu_energy_j": 500.0}) == {"cpu_energy_j": 500.0}


def test_the_heartbeat_persists_the_meters_so_a_killed_attempt_leaves_its_gpu_time_and_energy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resume, "HEARTBEAT_S", 0.05)
    readings = iter(range(1, 1000))

    def meters() -> dict[str, float | None]:
        n = next(readings)
        return {"gpu_s": 2.0 * n, "gpu_busy_s": 1.0 * n, "gpu_energy_j": 100.0 * n, "cpu_energy_j": 10.0 * n}

    attempt = Attempt(tmp_path, KEY)
    attempt.fit_started(meters)
    time.sleep(0.3)
    attempt.stop()  # the process "dies": what the last heartbeat wrote stands
    spent = json.loads((tmp_path / RESUME_DIR / ATTEMPT).read_text())["spent"]
    n = spent["gpu_busy_s"]
    assert n >= 2 and spent == {**spent, "fits": 1, "gpu_s": 2 * n, "gpu_energy_j": 100 * n, "cpu_energy_j": 10 * n}
    resumed = Attempt(tmp_path, KEY)
    assert resumed.before.gpu_energy_j == 100 * n
    assert resumed.with_earlier({"gpu_energy_j": 50.0})["gpu_energy_j"] == 100 * n + 50


def test_the_heartbeat_of_an_attempt_spread_over_processes_persists_all_their_compute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search over several processes: its chief's heartbeat persists the other processes' compute with its own
    (as `whole` adds it), so the attempt that continues carries and bills the sum."""
    monkeypatch.setattr(resume, "HEARTBEAT_S", 0.05)
    attempt = Attempt(tmp_path, KEY)

    def whole(fields: dict[str, float | None]) -> dict[str, object]:  # a worker that spent 40 CPU-s, 6 GPU-s
        return {**fields, "cpu_s": (fields["cpu_s"] or 0.0) + 40.0, "gpu_s": (fields["gpu_s"] or 0.0) + 6.0,
                "held_s": 99.0}

    attempt.spread_over(whole)
    attempt.fit_started(lambda: {"gpu_s": 4.0, "gpu_busy_s": 1.0})
    time.sleep(0.2)
    attempt.stop()  # the processes "die": what the last heartbeat wrote stands
    spent = json.loads((tmp_path / RESUME_DIR / ATTEMPT).read_text())["spent"]
    assert 40.0 <= spent["cpu_s"] < 40.0 + spent["fit_s"] * os.cpu_count()
    assert (spent["gpu_s"], spent["gpu_busy_s"], spent["fits"]) == (10.0, 1.0, 1) and "held_s" not in spent
    resumed = Attempt(tmp_path, KEY)
    assert resumed.before.cpu_s == spent["cpu_s"]
    assert resumed.with_earlier({"cpu_s": 5.0, "gpu_s": 2.0}) == {"cpu_s": spent["cpu_s"] + 5.0, "gpu_s": 12.0}


@pytest.mark.parametrize("changed", ["data_fingerprint", "code", "backend", "precision", "run_id"])
def test_an_attempt_of_other_data_code_or_arithmetic_starts_again_saying_what_changed(tmp_path: Path,
                                                                                     changed: str) -> None:
    left_by_a_dead_attempt(tmp_path, Spent(attempts=1, fit_s=45.0))
    (tmp_path / RESUME_DIR / "checkpoint").mkdir()
    attempt = Attempt(tmp_path, {**KEY, changed: "other"})
    assert attempt.before == Spent() and attempt.deadline(60.0, now=0.0) == 60.0
    assert attempt.note == f"starting again: an earlier attempt's {changed} differ from this one's"
    assert not (tmp_path / RESUME_DIR).exists()  # its checkpoint cannot be continued


def test_a_system_that_cannot_continue_starts_again_with_its_whole_budget_and_counts_the_attempts(
        tmp_path: Path) -> None:
    left_by_a_dead_attempt(tmp_path, Spent(attempts=1, fit_s=45.0, cpu_s=50.0))
    attempt = Attempt(tmp_path, KEY, resumable=False)
    assert attempt.before == Spent(attempts=1, uncounted_fit_s=45.0)
    assert attempt.deadline(60.0, now=0.0) == 60.0
    assert "cannot continue from its 1 earlier attempt(s), which spent 45 s" in attempt.note
    # This attempt dies too: the next one knows every attempt thrown away, not only the last.
    attempt.fit_started()
    attempt.stop()
    again = Attempt(tmp_path, KEY, resumable=False)
    assert again.before.attempts == 2 and again.before.uncounted_fit_s == pytest.approx(45.0, abs=0.5)


def test_unreadable_state_starts_again(tmp_path: Path) -> None:
    (tmp_path / RESUME_DIR).mkdir()
    (tmp_path / RESUME_DIR / ATTEMPT).write_text("{half")
    attempt = Attempt(tmp_path, KEY)
    assert attempt.before == Spent() and "could not be read" in attempt.note


def test_the_heartbeat_persists_the_spend_while_fit_runs_and_a_finished_run_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resume, "HEARTBEAT_S", 0.05)
    left_by_a_dead_attempt(tmp_path, Spent(attempts=1, fit_s=10.0, cpu_s=1.0))
    attempt = Attempt(tmp_path, KEY)
    attempt.fit_started()
    time.sleep(0.3)
    attempt.checkpointed("epoch 4 (40 of 90 steps)")
    state = json.loads((tmp_path / RESUME_DIR / ATTEMPT).read_text())
    assert state["key"] == KEY
    assert state["spent"]["attempts"] == 2 and state["spent"]["fit_s"] >= 10.3
    assert state["spent"]["carried"] == "epoch 4 (40 of 90 steps)"
    attempt.finish()
    assert not (tmp_path / RESUME_DIR).exists()


def _history_rows(out: Path) -> int:
    found = list((out / "runs").glob("*/history.csv"))
    if not found:
        return 0
    with open(found[0], newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


@pytest.mark.slow
def test_a_baseline_killed_mid_run_with_its_driver_continues_on_the_same_command(tmp_path: Path) -> None:
    """The user's command, its process tree killed with SIGKILL (a preempted machine) after a few epochs, then
    typed again: the run continues from its last epoch, within the one budget, and says so in its record."""
    from tests.conftest import REPO

    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system", "resnet", "--budget", "30s",
               "--system-option", "checkpoint=always", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed_once_ready(command, env, out, lambda: _history_rows(out) >= 4)
    killed_at = _history_rows(out)
    assert not (out / "runs.csv").exists() or "ok" not in (out / "runs.csv").read_text()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "runs.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "ok" and row["attempts"] == "2", row
    assert row["resumed_from"].startswith("epoch "), row
    carried = int(row["resumed_from"].split()[1])
    assert 1 <= carried <= killed_at
    # One budget across both attempts: the overshoot rule of every wall-clock budget.
    assert float(row["fit_s"]) <= 30 + allowed_overshoot_s(30)
    log = next((out / "runs").glob("*/log.txt")).read_text()
    assert "resume: resuming after 1 attempt(s)" in log and f"continuing from epoch {carried}" in log
    history = next((out / "runs").glob("*/history.csv")).read_text().splitlines()
    epochs = [int(line.split(",")[0]) for line in history[1:]]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > carried
    assert not next((out / "runs").glob("*/")).joinpath(RESUME_DIR).exists()  # nothing left once it ended ok


@pytest.mark.slow
def test_a_system_that_cannot_continue_killed_and_run_again_says_what_its_figures_leave_out(tmp_path: Path) -> None:
    """The user's command killed once the heartbeat has persisted some fit time, then typed again: the run starts
    again with its whole budget, its record counts both attempts and the fit time it leaves out, and the report
    says so."""
    from tests.conftest import REPO

    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench", "run", "--dataset", "digits", "--max-train", "100", "--system",
               "tests.bench.fakes:Sleeps", "--budget", "60s", "--system-option", "seconds=15", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def persisted_fit_s() -> float:
        found = list((out / "runs").glob(f"*/{RESUME_DIR}/{ATTEMPT}"))
        try:
            return float(json.loads(found[0].read_text())["spent"]["fit_s"]) if found else 0.0
        except (OSError, ValueError, KeyError):
            return 0.0

    killed_once_ready(command, env, out, lambda: persisted_fit_s() > 5)  # a heartbeat's, not fit's start
    lost = persisted_fit_s()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "runs.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "ok" and row["attempts"] == "2" and row["resumed_from"] == "", row
    # fit_s is the last attempt's alone (15 s of sleep), the killed one's is set apart.
    assert float(row["uncounted_fit_s"]) == pytest.approx(lost) and 15 <= float(row["fit_s"]) < 15 + lost - 1
    log = next((out / "runs").glob("*/log.txt")).read_text()
    assert f"cannot continue from its 1 earlier attempt(s), which spent {lost:.0f} s in fit" in log
    assert subprocess.run([sys.executable, "-m", "bench", "report", "--out", str(out)], env=env,
                          capture_output=True, timeout=300).returncode == 0
    report = (out / "REPORT.md").read_text()
    assert ("1 run (tests.bench.fakes:Sleeps 1m) started again with the whole budget after the process died (the "
            "system cannot continue from where it stopped): the figures leave out the ") in report


@pytest.mark.slow
def test_a_run_that_failed_with_an_error_continues_on_the_same_command_and_force_starts_it_afresh(
        tmp_path: Path) -> None:
    """A failure is not a verdict on what the run had done (a refit that failed after a long search): the run's
    resume state stays, the same command continues from it within the one budget, and --force starts again."""
    from tests.conftest import REPO

    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench", "run", "--dataset", "digits", "--max-train", "100", "--system",
               "tests.bench.fakes:FailsAfterACheckpoint", "--budget", "60s", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def row() -> dict[str, str]:
        with open(out / "runs.csv", newline="") as f:
            (only,) = list(csv.DictReader(f))
        return only

    subprocess.run(command, env=env, capture_output=True, timeout=300)
    assert row()["status"] == "failed" and "deliberate failure after the search" in row()["error"]
    (folder,) = (out / "runs").glob("*/")
    assert (folder / RESUME_DIR / "checkpoint" / "stage.txt").exists()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert row()["status"] == "ok" and row()["attempts"] == "2" and row()["resumed_from"] == "the search", row()
    assert not (folder / RESUME_DIR).exists()
    for _ in range(2):  # the ok run done afresh fails again; then --force drops the state it left (else: ok)
        subprocess.run([*command, "--force"], env=env, capture_output=True, timeout=300)
        assert row()["status"] == "failed", row()


def test_a_search_log_saved_and_restored_keeps_its_rows_and_times(tmp_path: Path) -> None:
    from bench.systems.search.log import SearchLog, TrialRow

    log = SearchLog(t0=0.0, deadline=None)
    log.rows.append(TrialRow("00", 1.0, 9.0, 3, 0.9, "completed", "lr=0.1"))
    log.times.epoch_s["00"], log.times.overhead_s["00"] = 2.5, 1.5
    log.refit_reserve_s = 12.0
    log.save(tmp_path / "search.json")
    again = SearchLog(t0=5.0, deadline=None)
    assert again.restore(tmp_path / "search.json") == 1
    assert again.rows == log.rows and again.times == log.times and again.refit_reserve_s == 12.0
    assert SearchLog(t0=0.0, deadline=None).restore(tmp_path / "missing.json") == 0


@pytest.mark.slow
def test_a_search_killed_mid_search_continues_from_its_last_finished_trial_on_the_same_command(
        tmp_path: Path) -> None:
    """keras-tuner's project and the search's log outlive a SIGKILL of the whole process tree; the command typed
    again reloads them: the trials already run are kept (not run again), the budget is one bill."""
    from tests.conftest import REPO

    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system",
               "tests.bench.search_fake:TinyRandomSearch", "--budget", "25s", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed_once_ready(command, env, out, lambda: trials_saved(out) >= 1)
    carried = trials_saved(out)
    kept = json.loads(next((out / "runs").glob(f"*/{RESUME_DIR}/checkpoint/search.json")).read_text())["rows"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "runs.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "ok" and row["attempts"] == "2", row
    assert row["resumed_from"] == f"{carried} trial(s)"
    with open(next((out / "runs").glob("*/trials.csv")), newline="") as f:
        trials = list(csv.DictReader(f))
    # The carried trials, with their own times, then new ones: none trained twice.
    assert [t["trial_id"] for t in trials[:carried]] == [k["trial_id"] for k in kept]
    assert len({t["trial_id"] for t in trials}) == len(trials) > carried
    assert float(trials[carried]["started_s"]) >= float(trials[carried - 1]["ended_s"])
    # One budget across both attempts (scope 'search': the search stops at 25 s of fit, plus its hard stop).
    assert float(row["search_s"]) <= 25 + allowed_overshoot_s(25) and float(row["fit_s"]) >= float(row["search_s"])
    log = next((out / "runs").glob("*/log.txt")).read_text()
    assert "resume: resuming after 1 attempt(s)" in log


def _training_saved(out: Path) -> bool:
    found = list((out / "runs").glob(f"*/{RESUME_DIR}/{ATTEMPT}"))
    try:
        return bool(found) and json.loads(found[0].read_text())["spent"]["carried"].startswith("epoch ")
    except (OSError, ValueError, KeyError):
        return False


@pytest.mark.slow
def test_the_hybrid_killed_while_its_scaled_network_trains_keeps_its_search_and_continues_the_training(
        tmp_path: Path) -> None:
    """autokeras-hybrid killed after its search, once its scaled network saved an epoch: the command typed again
    reloads the search (no trial run again) and continues the training from that epoch, within one budget."""
    from tests.conftest import REPO

    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system", "autokeras-hybrid",
               "--budget", "60s", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed_once_ready(command, env, out, lambda: _training_saved(out), timeout_s=300)
    kept = json.loads(next((out / "runs").glob(f"*/{RESUME_DIR}/checkpoint/search.json")).read_text())["rows"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "runs.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "ok" and row["attempts"] == "2", row
    assert row["resumed_from"].startswith("epoch "), row
    with open(next((out / "runs").glob("*/trials.csv")), newline="") as f:
        trials = list(csv.DictReader(f))
    assert [t["trial_id"] for t in trials] == [k["trial_id"] for k in kept]  # the search was not run again
    carried = int(row["resumed_from"].split()[1])
    log = next((out / "runs").glob("*/log.txt")).read_text()
    assert f"continuing from epoch {carried}" in log
    history = next((out / "runs").glob("*/history.csv")).read_text().splitlines()
    assert [int(line.split(",")[0]) for line in history[1:]][:carried] == list(range(1, carried + 1))
    assert float(row["fit_s"]) <= 60 + allowed_overshoot_s(60)  # one budget over both attempts


@pytest.mark.slow
def test_under_ray_a_search_whose_node_is_lost_continues_on_another_node_from_its_last_trial(tmp_path: Path
                                                                                            ) -> None:
    """A simulated cluster (the head runs nothing): the search runs on one node, whose resume state reaches the
    driver's results folder as trials end; the node is removed, and Ray's retry on a new node continues it."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from bench.core.budget import parse_budget
    from bench.run.ray_executor import RayExecutor
    from bench.run.spec import DatasetRef, Resources, RunSpec
    from tests.conftest import REPO

    env = {"PYTHONPATH": str(REPO), "BENCH_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20})
    out = tmp_path / "out"
    spec = RunSpec(DatasetRef("digits"), "tests.bench.search_fake:TinyRandomSearch", parse_budget("40s"), 0,
                   out_dir=str(out), timeout_s=300, resources=Resources(num_cpus=1))
    try:
        ray.init(address=cluster.address, runtime_env={"env_vars": env}, log_to_driver=False)
        first = cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        cluster.wait_for_nodes()
        executor = RayExecutor(max_retries=1)
        results: list[object] = []
        runner = __import__("threading").Thread(target=lambda: results.extend(executor.map([spec])))
        runner.start()
        try:
            deadline = time.monotonic() + 180
            while trials_saved(out) < 1 and time.monotonic() < deadline and runner.is_alive():
                time.sleep(0.2)
            carried = trials_saved(out)
            assert carried >= 1, "no resume state reached the driver"
            cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
            cluster.remove_node(first)
        finally:
            runner.join(timeout=300)
            executor.close()
    finally:
        ray.shutdown()
        cluster.shutdown()
    ((_, record),) = results
    assert record.status == "ok", record.error
    assert record.attempts == 2 and record.resumed_from.endswith("trial(s)"), record
    assert int(record.resumed_from.split()[0]) >= carried
    with open(next((out / "runs").glob("*/trials.csv")), newline="") as f:
        trials = list(csv.DictReader(f))
    assert len({t["trial_id"] for t in trials}) == len(trials) > carried  # carried trials were not run again
    assert not next((out / "runs").glob("*/")).joinpath(RESUME_DIR).exists()
