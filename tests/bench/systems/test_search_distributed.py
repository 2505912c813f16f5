"""One search over several processes (bench.systems.search.distributed): the plumbing without training (shares,
GPU lists, the record's arithmetic, the chief's budgeted oracle over gRPC), then whole searches on digits:
trials from every worker within one budget, compute summed, a worker or the chief killed, nothing left behind."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from bench.core import rundir
from bench.core.budget import parse_budget
from bench.core.options import ConfigError
from bench.run.execute import LocalExecutor
from bench.run.spec import DatasetRef, Resources, RunSpec, freeze
from bench.systems.base import FitContext
from bench.systems.search import distributed
from bench.systems.search.distributed import WorkerPlan, machine_id, whole_compute
from bench.systems.search.log import SearchLog
from bench.systems.search.placement import Placement, chief_gpus, prepare_chief, split_evenly
from bench.systems.search.processes import Exit, WorkerProcess
from tests.bench.drivers import killed_once_ready, trials_saved, wait_for
from tests.bench.systems.searches import trial_rows

FAKE = "tests.bench.search_fake:TinyRandomSearch"
REMOTE = "bench.run.search_worker"


# --- plumbing -------------------------------------------------------------------------------------------
def test_cores_and_gpus_are_shared_evenly_and_the_chief_gets_the_first_share(monkeypatch) -> None:
    assert split_evenly([0, 1, 2, 3, 4], 2) == [[0, 1, 2], [3, 4]]
    assert split_evenly([0, 1], 2) == [[0], [1]]
    assert chief_gpus("0,1,2,3", 2) == ("0,1", "0,1,2,3")
    assert chief_gpus("GPU-aa, GPU-bb", 2) == ("GPU-aa", "GPU-aa,GPU-bb")
    # GPUs that do not divide evenly, too few, none, or one process: nothing changes.
    assert chief_gpus("0,1,2", 2) == chief_gpus("0", 2) == chief_gpus("", 2) == chief_gpus("0,1", 1) == (None, None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5, 6, 7})
    env = {"CUDA_VISIBLE_DEVICES": "4,5"}
    assert prepare_chief(2, env, 900.0) == [4, 5] and env["CUDA_VISIBLE_DEVICES"] == "4"
    assert Placement.here(env) == Placement(cores=(4, 5, 6, 7), gpus="4,5")  # all of them, to share out
    # One GPU for two processes: they share it, neither taking its whole memory up front.
    shared = {"CUDA_VISIBLE_DEVICES": "4"}
    assert prepare_chief(2, shared, None) == [4, 5] and Placement.here(shared).gpus is None
    assert shared["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" and shared["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    one = {"CUDA_VISIBLE_DEVICES": "4,5"}
    assert prepare_chief(1, one, None) == [] and prepare_chief(5, one, None) == []  # one process; too few cores
    assert one == {"CUDA_VISIBLE_DEVICES": "4,5"}
    # On a placement group each process holds its bundle: the chief only passes the run's memory cap on.
    grouped = {"CUDA_VISIBLE_DEVICES": "0", **Placement(group="g", node_ip="10.0.0.2").to_env()}
    assert prepare_chief(2, grouped, 900.0) == [] and grouped["CUDA_VISIBLE_DEVICES"] == "0"
    assert Placement.here(grouped) == Placement(group="g", node_ip="10.0.0.2", max_rss_mb=900.0)


def test_a_worker_plan_goes_to_its_process_and_back() -> None:
    plan = WorkerPlan("worker1", "127.0.0.1:5", '{"seed": 0}', "/r/work/worker1", (2, 3), "1")
    assert WorkerPlan.from_json(plan.to_json()) == plan and plan.workdir == Path("/r/work/worker1/work")


def test_the_record_counts_every_process_compute_and_a_single_process_run_is_unchanged() -> None:
    chief = {"fit_s": 100.0, "cpu_s": 90.0, "gpu_s": 100.0, "gpu_busy_s": 80.0, "gpu_energy_j": 5e4,
             "gpu_count": 1, "gpu_mem_peak_mb": 900.0}
    assert whole_compute(chief, {}) == chief
    assert whole_compute(chief, {"search_workers": 1}) == chief
    # A placement group of 3 bundles (a GPU each), one on another machine whose package drew 2 kJ.
    extras = {"search_workers": 3, "search_bundles": 3, "workers_cpu_s": 170.0, "workers_gpu_s": 190.0,
              "workers_gpu_busy_s": 150.0, "workers_gpu_energy_j": 9e4, "workers_gpu_count": 2,
              "workers_gpu_mem_peak_mb": 1200.0, "workers_cpu_energy_j": 2e3}
    out = whole_compute({**chief, "cpu_energy_j": 5e3}, extras)
    assert out["held_s"] == 300.0 and out["cpu_s"] == 260.0 and out["gpu_s"] == 290.0
    assert out["gpu_busy_s"] == 230.0 and out["gpu_energy_j"] == 1.4e5 and out["gpu_count"] == 3
    assert out["gpu_mem_peak_mb"] == 1200.0 and out["fit_s"] == 100.0  # fit_s stays wall time
    assert out["cpu_energy_j"] == 7e3
    # Local processes sharing one CPU machine: it is held once; the GPU fields stay empty, never 0.
    cpu_only = whole_compute({"fit_s": 10.0, "cpu_s": 9.0, "gpu_s": None, "cpu_energy_j": 50.0},
                             {"search_workers": 2, "search_bundles": 1, "workers_cpu_s": 8.0, "workers_gpu_s": None,
                              "workers_cpu_energy_j": None})
    assert cpu_only["gpu_s"] is None and cpu_only["cpu_s"] == 17.0 and cpu_only["held_s"] == 10.0
    assert cpu_only["cpu_energy_j"] == 50.0  # the chief's package reading covers its workers


def test_a_search_needs_a_bundle_of_the_run_resources_per_process() -> None:
    from bench.systems.search.placement import bundles_that_fit, fits

    def spec(**options: object) -> RunSpec:
        return RunSpec(DatasetRef("digits"), "autokeras", parse_budget("1m"), 0, system_options=freeze(options))

    assert spec().search_workers == 1 and spec(search_workers=3).search_workers == 3
    gpu_nodes = [{"CPU": 16.0, "GPU": 8.0}, {"CPU": 16.0, "GPU": 8.0}, {"CPU": 0.0}]
    assert bundles_that_fit({"num_cpus": 2.0, "num_gpus": 1.0}, gpu_nodes) == 16
    assert bundles_that_fit({"num_cpus": 4.0, "num_gpus": 1.0}, gpu_nodes) == 8  # the cores run out first
    assert bundles_that_fit({"num_cpus": 16.0, "num_gpus": 0.0}, gpu_nodes) == 2  # a whole CPU node each
    assert fits({"num_cpus": 16.0, "num_gpus": 0.0}, gpu_nodes, 2) and not fits({"num_cpus": 16.0, "num_gpus": 0.0},
                                                                                   gpu_nodes, 3)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_search_workers_must_be_a_whole_number_of_processes(value: object) -> None:
    from bench.systems import make_system

    for system in ("autokeras", "autokeras-default", "autokeras-hybrid", "resnet-tuned"):
        with pytest.raises(ConfigError, match="search_workers must be a whole number"):
            make_system(system, {"search_workers": value})


def test_the_chief_keeps_its_tuner_project_where_the_next_attempt_finds_it_and_a_worker_in_its_scratch(
        tmp_path: Path) -> None:
    from bench.core.resume import Attempt
    from bench.systems import make_system

    system = make_system("resnet-tuned", {"search_workers": 2})
    assert system.resumes(parse_budget("1m"))
    attempt = Attempt(tmp_path, {"run_id": "r"})
    chief = chief_context(tmp_path, time.monotonic() + 60, resume=attempt)
    assert system.tuner_dir(chief, "p") == attempt.checkpoint_dir / "p" and not system.overwrite(chief)
    plan = WorkerPlan("worker1", "127.0.0.1:1", "{}", str(tmp_path / "w1"))
    worker = dataclasses.replace(chief, workdir=tmp_path / "w1" / "work", search_worker=plan)
    assert system.tuner_dir(worker, "p") == tmp_path / "w1" / "work" / "p" and system.overwrite(worker)


class Searcher:
    """What a budgeted oracle asks of the tuner it serves."""

    def __init__(self, log, tuner_id: str = "chief") -> None:
        self.search_log, self.tuner_id = log, tuner_id

    def summarize(self, trial) -> str:
        return "lr"

    def refit_epochs(self, trial) -> int:
        return 3


def random_oracle(tmp_path: Path):
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hp.Float("lr", 1e-3, 1e-1)
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=5,
                                           hyperparameters=hp, seed=0)
    oracle._set_project_dir(str(tmp_path / "oracle"), "p")
    return oracle


def test_the_chief_serves_its_budgeted_oracle_to_a_worker_over_loopback(tmp_path: Path, monkeypatch) -> None:
    """A chief of one process (no worker started) and a worker's client in this process: the worker gets trials
    from the chief's oracle, its trial's row and times reach the chief's log as the trial ends, it follows the
    chief's deadline, and past it the oracle answers STOPPED."""
    from bench.systems.base import FitContext
    from bench.systems.search.distributed import PEER_POLL_S, Chief, follow_chief
    from bench.systems.search.log import SearchLog
    from bench.systems.search.oracle import Outcome

    monkeypatch.setattr(distributed, "_meters_so_far", lambda: {"gpu_s": 3.0})  # as a worker's process sets them
    budget = parse_budget("1m")
    # A deadline far off: on a loaded machine setting up keras-tuner alone can take minutes.
    ctx = FitContext(budget=budget, seed=0, workdir=tmp_path / "work", run_dir=tmp_path, n_classes=2,
                     class_names=("a", "b"), dataset="digits", deadline=time.monotonic() + 3600)
    (tmp_path / rundir.SPEC).write_text("{}")
    chief_log = SearchLog.start(ctx, time.monotonic(), "total")
    saved: list[float] = []
    chief_log.on_record = lambda: saved.append(chief_log.refit_reserve_s)
    chief = Chief.prepare(chief_log, 1, ctx)
    try:
        chief.serve(random_oracle(tmp_path), Searcher(chief_log))
        host, port = chief.address.rsplit(":", 1)
        assert host == "127.0.0.1" and chief_log.worker == "chief"
        plan = WorkerPlan("worker1", chief.address, "{}", str(tmp_path))
        worker_log = SearchLog.start(ctx, time.monotonic(), "total")
        follow_chief(plan, worker_log)
        client = worker_log.oracle_for(random_oracle(tmp_path / "w1"), Searcher(worker_log, "worker1"))
        trial = client.create_trial("worker1")
        assert trial.status == "RUNNING" and 1e-3 <= trial.hyperparameters.get("lr") <= 1e-1
        told = chief.heard["worker1"]  # each call says the worker's compute so far: its CPU and its meters'
        assert told["cpu_s"] > 0 and told["gpu_s"] == 3.0 and told["machine"] == machine_id()
        assert chief.oracle.ongoing_trials["worker1"].trial_id == trial.trial_id
        # Counted from when it asked: never later than the chief's, earlier by at most the call's time.
        assert 0 <= chief_log.search_deadline() - worker_log.search_deadline() < 1
        client.update_trial(trial.trial_id, {"val_accuracy": 0.9}, step=2)
        trial.status = "COMPLETED"
        client.end_trial(trial, Outcome(epochs=3, overhead_s=0.6, epoch_s=0.5))
        row = chief_log.rows[-1]
        assert (row.worker, row.trial_id, row.epochs, row.val_accuracy) == ("worker1", trial.trial_id, 3, 0.9)
        assert chief_log.times.epoch_s[trial.trial_id] == 0.5 and chief_log.times.quickest_score_s() == 1.1
        assert chief_log.refit_reserve_s == pytest.approx(chief_log.refit_estimate(trial.trial_id, 3))
        assert chief_log.refit_reserve_s > 0
        assert saved == [chief_log.refit_reserve_s]  # the row is saved with the reserve it led to, for a resume
        second = client.create_trial("worker1")  # the chief reserves a longer refit: the running trial hears it
        chief_log.refit_reserve_s = 20.0
        time.sleep(PEER_POLL_S)
        assert 0 <= chief_log.deadline - 20.0 - worker_log.search_deadline() < 1
        second.status = "FAILED"
        client.end_trial(second, Outcome(error="ValueError: no"))
        assert (chief_log.rows[-1].status, chief_log.rows[-1].error) == ("failed", "ValueError: no")
        chief_log.deadline = time.monotonic() - 1  # past the deadline the oracle hands out nothing
        assert client.create_trial("worker1").status == "STOPPED"
    finally:
        chief.close()
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
        pass  # nothing listens once the chief has closed


def test_an_idle_answer_is_held_back_so_a_waiting_process_does_not_spin(monkeypatch, tmp_path: Path) -> None:
    from bench.systems.search import oracle as oracle_module
    from bench.systems.search.log import SearchLog

    slept: list[float] = []
    monkeypatch.setattr(oracle_module.time, "sleep", slept.append)

    class Answer:
        def __init__(self, status: str) -> None:
            self.status, self.trial_id = status, "0"

    class Scripted:
        trials: dict = {}

        def __init__(self) -> None:
            self.answers = iter(["IDLE", "RUNNING", "STOPPED"])

        def create_trial(self, tuner_id: str) -> Answer:
            return Answer(next(self.answers))

    oracle = oracle_module.budgeted_oracle(Scripted(), Searcher(SearchLog(t0=0.0, deadline=None)))
    assert [oracle.create_trial("worker1").status for _ in range(3)] == ["IDLE", "RUNNING", "STOPPED"]
    assert slept == [oracle_module.IDLE_WAIT_S]  # only after IDLE


def test_a_ray_worker_over_the_run_memory_cap_is_killed_and_says_why(tmp_path: Path) -> None:
    import subprocess
    import sys

    from bench.systems.search.processes import wait_capped

    touch_300_mb = "import time; x = bytearray(300 << 20); x[::4096] = b'1' * len(x[::4096]); time.sleep(60)"
    hog = subprocess.Popen([sys.executable, "-c", touch_300_mb])
    done = wait_capped(hog, max_rss_mb=100)
    assert not done.ok and done.how.startswith("killed by SIGKILL (memory limit exceeded:")
    assert "> 100 MB" in done.how and hog.returncode is not None
    quiet = subprocess.Popen([sys.executable, "-c", "pass"])
    assert wait_capped(quiet, max_rss_mb=100).how == "exited with code 0"


def test_the_search_ends_once_no_process_runs_a_trial_and_stops_those_that_outstay_it(tmp_path: Path) -> None:
    """The chief's trial loop over, the oracle hands out no more trials, and waits for trials running on other
    processes; one still running at the deadline plus the hard-stop grace and JOIN_SLACK_S is stopped (overdue),
    and the chief fails it when it has collected its worker."""
    from bench.systems.search.distributed import Chief, _Worker
    from bench.systems.search.log import SearchLog
    from bench.systems.search.oracle import JOIN_SLACK_S, budgeted_oracle

    def chief_with_one_worker(deadline_ago: float) -> tuple[Chief, Running]:
        now = time.monotonic()
        log = SearchLog(t0=now - 100, deadline=now - deadline_ago, hard_stop_grace_s=0.0, worker="chief")
        chief = Chief(search_log=log, n=2, ctx=None, place=Placement(), cores=[])
        chief.oracle = budgeted_oracle(random_oracle(tmp_path / str(deadline_ago)), Searcher(log))
        chief.oracle.overdue = chief.stop_workers
        process = Running()
        chief.workers.append(_Worker("worker1", process, now, tmp_path / "search-worker1.log"))
        return chief, process

    idle, process = chief_with_one_worker(deadline_ago=3.0)
    idle.oracle.search_ended()
    assert process.stops == [] and idle.workers[0].ended is None and idle.search_log.rows == []
    busy, process = chief_with_one_worker(deadline_ago=JOIN_SLACK_S + 1)
    trial = busy.oracle.create_trial("worker1")  # the first trial always starts
    busy.oracle.search_ended()
    assert process.stops == [False] and busy.workers[0].ended is not None
    (row,) = busy.search_log.rows
    assert (row.trial_id, row.status, row.worker) == (trial.trial_id, "failed", "worker1")
    assert row.error == "its worker worker1 exited with code 1 during the trial"
    assert busy.oracle.create_trial("chief").status == "STOPPED"  # the search is closed


class Running(WorkerProcess):
    """A worker process that runs until it is stopped."""

    def __init__(self) -> None:
        self.stops: list[bool] = []
        self.exit: Exit | None = None

    def poll(self) -> Exit | None:
        done, self.exit = self.exit, None
        return done

    def stop(self, force: bool) -> None:
        self.stops.append(force)
        self.exit = Exit("exited with code 1", False)


def chief_context(tmp_path: Path, deadline: float, resume: object = None) -> FitContext:
    (tmp_path / rundir.SPEC).write_text("{}")
    return FitContext(budget=parse_budget("1m"), seed=0, workdir=tmp_path / "work", run_dir=tmp_path, n_classes=2,
                      class_names=("a", "b"), dataset="digits", deadline=deadline, resume=resume)


def test_the_run_heartbeat_persists_the_workers_compute_as_they_last_told_the_chief(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    """A chief killed with its run leaves in resume/ the compute of every process of the search: a running
    worker's as its last call said, an exited one's as its exit did (CPU seconds from wait4)."""
    from bench.core.resume import ATTEMPT, RESUME_DIR, Attempt
    from bench.systems.search.distributed import Chief, _Worker

    monkeypatch.setattr(distributed.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    attempt = Attempt(tmp_path, {"run_id": "r"})
    ctx = chief_context(tmp_path, time.monotonic() + 3600, resume=attempt)
    chief = Chief.prepare(SearchLog.start(ctx, time.monotonic(), "total"), 3, ctx)
    now = time.monotonic()
    chief.workers += [_Worker("worker1", Running(), now, tmp_path / "1.log"),
                      _Worker("worker2", Running(), now, tmp_path / "2.log", now,
                              Exit("killed by SIGKILL", False, cpu_s=12.0))]
    chief.heard.update(worker1={"cpu_s": 30.0, "gpu_s": 5.0, "machine": machine_id()},
                       worker2={"cpu_s": 10.0, "gpu_s": 2.0, "machine": machine_id()})
    attempt.fit_started(lambda: {"gpu_s": 1.0})
    attempt.stop()  # fit_started wrote the first heartbeat
    spent = json.loads((tmp_path / RESUME_DIR / ATTEMPT).read_text())["spent"]
    assert spent["cpu_s"] >= 42.0 and spent["gpu_s"] == 8.0
    assert chief.usage()["workers_cpu_s"] == 42.0 and chief.usage()["workers_gpu_s"] == 7.0


def test_a_worker_error_is_its_log_last_line_and_a_log_ending_otherwise_is_a_death(tmp_path: Path) -> None:
    from bench.run.search_worker import DONE
    from bench.systems.search.distributed import last_words

    log = tmp_path / "search-worker1.log"
    assert last_words(log, "worker1") == "no report: the process died"  # no log at all
    log.write_text(f"Traceback ...\nsearch worker1: {DONE}\n")
    assert last_words(log, "worker1") == ""
    log.write_text("search worker1: OSError: no space left on device\n")
    assert last_words(log, "worker1") == "OSError: no space left on device"
    assert last_words(log, "worker2") == "no report: the process died"  # another worker's line
    log.write_text("search worker1: done\nEpoch 3/10 ... (killed here)\n")
    assert last_words(log, "worker1") == "no report: the process died"


def test_a_chief_whose_budget_an_earlier_attempt_spent_starts_no_worker(tmp_path: Path, monkeypatch) -> None:
    """Its reloaded oracle holds trials and the deadline has passed: no worker is started, no trial handed out,
    and the record still says the search's processes."""
    from bench.systems.search.distributed import Chief

    monkeypatch.setattr(distributed.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(distributed, "pin_process", lambda cores: None)  # the test's own process stays as it is
    ctx = chief_context(tmp_path, time.monotonic() - 1)
    log = SearchLog.start(ctx, time.monotonic() - 61, "total")
    chief = Chief.prepare(log, 2, ctx)
    oracle = random_oracle(tmp_path)
    oracle.create_trial("worker1")  # an earlier attempt's trial
    try:
        chief.serve(oracle, Searcher(log))
        assert chief.workers == [] and chief.oracle.create_trial("chief").status == "STOPPED"
    finally:
        chief.close()
    assert chief.usage()["search_workers"] == 2 and chief.usage()["workers_cpu_s"] == 0.0


def test_the_next_attempt_chief_reloads_its_project_keeping_finished_trials_and_running_a_cut_one_again(
        tmp_path: Path) -> None:
    """keras-tuner reloads a project by the file of the tuner it finds: the chief's goes by its name from the
    start, so a chief that died before any trial of its own ended still leaves one (a worker's trial ended)."""
    import keras
    import keras_tuner as kt

    from bench.systems.search import budgeted
    from bench.systems.search.oracle import Outcome

    def build(hp: kt.HyperParameters) -> keras.Model:
        hp.Float("lr", 1e-3, 1e-1)
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])

    def chief_tuner(overwrite: bool) -> kt.Tuner:
        log = SearchLog(t0=time.monotonic(), deadline=None, worker="chief")
        return budgeted(kt.RandomSearch)(hypermodel=build, objective="val_accuracy", max_trials=5, seed=0,
                                         directory=str(tmp_path), project_name="search", overwrite=overwrite,
                                         search_log=log)

    first = chief_tuner(overwrite=True)
    done = first.oracle.create_trial("worker1")
    first.oracle.update_trial(done.trial_id, {"val_accuracy": 0.7})
    done.status = "COMPLETED"
    first.oracle.end_trial(done, Outcome(epochs=1))
    # Saved as ended before its row is: a death right after never has it run again.
    assert json.loads((tmp_path / "search" / "oracle.json").read_text())["ongoing_trials"] == {}
    cut = first.oracle.create_trial("chief")  # running when the run died
    again = chief_tuner(overwrite=False)
    assert again.tuner_id == "chief" and set(again.oracle.trials) == {done.trial_id, cut.trial_id}
    assert again.oracle.trials[done.trial_id].status == "COMPLETED" and again.oracle.ongoing_trials == {}
    assert again.oracle.create_trial("worker1").trial_id == cut.trial_id  # the cut trial runs again
    assert chief_tuner(overwrite=True).oracle.trials == {}  # a search that cannot continue starts afresh


# --- whole searches --------------------------------------------------------------------------------------
def fake_spec(tmp_path: Path, budget: str, workers: int = 2) -> RunSpec:
    return RunSpec(DatasetRef("digits"), FAKE, parse_budget(budget), 0, system_options=freeze(
        {"search_workers": workers}), out_dir=str(tmp_path), timeout_s=300)


def search_processes() -> list[psutil.Process]:
    """Worker processes of a distributed search alive on this machine."""
    return [p for p in psutil.process_iter(["cmdline"]) if REMOTE in " ".join(p.info["cmdline"] or [])]


def chief_port(tmp_path: Path, run_id: str) -> int:
    text = (rundir.run_dir(tmp_path, run_id) / rundir.LOG).read_text()
    return int(text.split("chief serving on 127.0.0.1:")[1].split()[0])


def worker_began_a_trial(tmp_path: Path, run_id: str) -> bool:
    log = rundir.run_dir(tmp_path, run_id) / "search-worker1.log"
    return log.exists() and "begins on worker1" in log.read_text(errors="replace")


def while_running(action, run):
    """run()'s result, with action() run beside it in a thread (it waits for its moment itself)."""
    beside = threading.Thread(target=action)
    beside.start()
    try:
        return run()
    finally:
        beside.join()


def lost_a_trial(tmp_path: Path, run_id: str, reason: str) -> dict:
    """Asserts worker1's last trial failed for `reason` while the chief completed one; the run's metadata
    extras."""
    rows = trial_rows(rundir.run_dir(tmp_path, run_id))
    lost = [r for r in rows if r["worker"] == "worker1" and r["status"] == "failed"]
    assert lost and reason in lost[-1]["error"], rows
    assert any(r["worker"] == "chief" and r["status"] == "completed" for r in rows)
    return json.loads((rundir.run_dir(tmp_path, run_id) / rundir.METADATA).read_text())["extras"]


@pytest.mark.slow
def test_two_workers_share_one_budget_and_their_compute_is_summed(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "20s")
    record = LocalExecutor().run(spec)
    assert record.status == "ok", record.error
    rows = trial_rows(rundir.run_dir(tmp_path, spec.run_id))
    assert {r["worker"] for r in rows} == {"chief", "worker1"}, rows
    assert record.trials == len(rows) and len({r["trial_id"] for r in rows}) == len(rows)
    assert 0 <= record.overshoot_s <= max(0.05 * 20, 30)  # the same bound as one process
    meta = json.loads((rundir.run_dir(tmp_path, spec.run_id) / rundir.METADATA).read_text())["extras"]
    assert record.search_workers == 2 and meta["workers"][0]["exit"] == "exited with code 0"
    assert meta["workers"][0]["error"] == ""  # its part ended as planned
    assert meta["workers_cpu_s"] > 1.0 and record.cpu_s > meta["workers_cpu_s"]
    assert record.held_s == record.fit_s  # one machine, held once, its cores shared by the two processes
    assert not search_processes()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", chief_port(tmp_path, spec.run_id)), 1):
        pass


@pytest.mark.slow
def test_a_worker_killed_mid_trial_loses_that_trial_and_the_search_goes_on(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "25s")
    killed: list[int] = []

    def kill_worker() -> None:
        wait_for(lambda: worker_began_a_trial(tmp_path, spec.run_id))
        for p in search_processes():
            p.kill()
            killed.append(p.pid)

    record = while_running(kill_worker, lambda: LocalExecutor().run(spec))
    assert killed and record.status == "ok", record.error
    lost_a_trial(tmp_path, spec.run_id, "worker1 killed by SIGKILL")
    assert not search_processes()


@pytest.mark.slow
def test_the_chief_killed_fails_the_run_and_leaves_no_worker(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "40s")

    def kill_chief() -> None:
        wait_for(lambda: worker_began_a_trial(tmp_path, spec.run_id))
        for p in psutil.Process().children(recursive=True):
            if "bench.run.worker" in " ".join(p.cmdline()):
                os.kill(p.pid, signal.SIGKILL)

    record = while_running(kill_chief, lambda: LocalExecutor().run(spec))
    assert record.status == "failed" and "SIGKILL" in record.error
    wait_for(lambda: not search_processes(), timeout=10)


@pytest.mark.slow
def test_more_workers_than_cores_is_a_failed_run_that_says_so(tmp_path: Path) -> None:
    record = LocalExecutor().run(fake_spec(tmp_path, "10s", workers=len(os.sched_getaffinity(0)) + 1))
    assert record.status == "failed" and "needs a core per worker" in record.error
    assert not search_processes()


@pytest.fixture()
def local_ray():
    """A local Ray of 2 CPUs for one test (no dashboard), shut down after it."""
    ray = pytest.importorskip("ray")
    from tests.conftest import REPO

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20,
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    yield ray
    ray.shutdown()


def run_on_ray(specs: list[RunSpec]) -> dict[str, object]:
    from bench.run.ray_executor import RayExecutor

    executor = RayExecutor()
    try:
        return {s.run_id: r for s, r in executor.map(specs)}
    finally:
        executor.close()


@pytest.mark.slow
def test_an_autokeras_search_of_two_workers_on_a_local_ray_keeps_the_overshoot_bound(local_ray, tmp_path: Path
                                                                                      ) -> None:
    """60 s of autokeras on digits over two bundles of one CPU: trials from both workers, the overshoot bound of
    one process, both workers' CPU time in the record, nothing left behind."""
    spec = RunSpec(DatasetRef("digits"), "autokeras", parse_budget("60s"), 0, resources=Resources(num_cpus=1),
                   system_options=freeze({"search_workers": 2}), out_dir=str(tmp_path), timeout_s=600)
    record = run_on_ray([spec])[spec.run_id]
    assert record.status == "ok", record.error
    rows = trial_rows(rundir.run_dir(tmp_path, spec.run_id))
    assert {r["worker"] for r in rows} == {"chief", "worker1"}, rows
    assert 0 <= record.overshoot_s <= max(0.05 * 60, 30)
    meta = json.loads((rundir.run_dir(tmp_path, spec.run_id) / rundir.METADATA).read_text())["extras"]
    assert record.cpu_s > meta["workers_cpu_s"] > 1.0
    assert record.held_s == pytest.approx(2 * record.fit_s)  # two bundles held for the whole search
    groups = local_ray.util.placement_group_table().values()
    assert groups and all(g["state"] == "REMOVED" for g in groups)  # the search's group released
    assert not search_processes()


@pytest.mark.slow
def test_under_ray_a_search_runs_on_a_placement_group_of_a_bundle_per_process(local_ray, tmp_path: Path) -> None:
    spec = RunSpec(DatasetRef("digits"), FAKE, parse_budget("20s"), 0, system_options=freeze(
        {"search_workers": 2}), out_dir=str(tmp_path), timeout_s=300, resources=Resources(num_cpus=1))
    too_big = RunSpec(DatasetRef("digits"), FAKE, parse_budget("20s"), 0, system_options=freeze(
        {"search_workers": 3}), out_dir=str(tmp_path), timeout_s=300, resources=Resources(num_cpus=1))
    records = run_on_ray([spec, too_big])
    record = records[spec.run_id]
    assert record.status == "ok", record.error
    assert record.search_workers == 2 and len(record.node) == 8
    assert {r["worker"] for r in trial_rows(rundir.run_dir(tmp_path, spec.run_id))} == {"chief", "worker1"}
    assert (rundir.run_dir(tmp_path, spec.run_id) / "search-worker1.log").exists()  # came back from its task
    refused = records[too_big.run_id]
    assert refused.status == "failed" and "cannot hold 3 bundles" in refused.error
    groups = local_ray.util.placement_group_table().values()
    assert groups and all(g["state"] == "REMOVED" for g in groups)


@pytest.mark.slow
@pytest.mark.parametrize(("system", "budget"), [("resnet-tuned", "40s"), ("autokeras-hybrid", "60s"),
                                                ("autokeras-default", "60s")])
def test_every_searcher_runs_one_search_over_two_processes(tmp_path: Path, system: str, budget: str) -> None:
    """The other searchers over a chief and one worker on digits: trials from both (Hyperband's rungs wait for
    trials of the other process), one budget, a refit that got its time (a model far above chance)."""
    spec = RunSpec(DatasetRef("digits"), system, parse_budget(budget), 0, out_dir=str(tmp_path), timeout_s=600,
                   system_options=freeze({"search_workers": 2}))
    record = LocalExecutor().run(spec)
    assert record.status == "ok", record.error
    rows = trial_rows(rundir.run_dir(tmp_path, spec.run_id))
    assert {r["worker"] for r in rows} == {"chief", "worker1"}, rows
    assert len({r["trial_id"] for r in rows}) == len(rows) == record.trials
    assert 0 <= record.overshoot_s <= max(0.05 * spec.budget.seconds, 30)
    assert record.accuracy > 0.8  # digits: 10 classes; a starved refit scores near 0.1
    assert record.search_workers == 2 and record.held_s == record.fit_s
    assert not search_processes()


@pytest.mark.slow
def test_a_search_over_two_processes_killed_mid_search_continues_from_its_finished_trials(tmp_path: Path) -> None:
    """The user's command, resnet-tuned over a chief and a worker on digits, its whole process tree killed with
    SIGKILL once a trial has ended, then typed again: the chief reloads its tuner's project from resume/ (the
    trials that ended are kept, never run again), the budget is one bill over both attempts, and the compute the
    first attempt spent in both processes is counted."""
    import csv
    import subprocess
    import sys

    from bench.core.resume import ATTEMPT, RESUME_DIR
    from bench.systems.search.budget import allowed_overshoot_s
    from tests.conftest import REPO

    out, budget_s = tmp_path / "out", 90
    command = [sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system", "resnet-tuned",
               "--budget", f"{budget_s}s", "--system-option", "search_workers=2", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed_once_ready(command, env, out, lambda: trials_saved(out) >= 1, timeout_s=300)
    run_dir = next((out / "runs").glob("*/"))
    kept = json.loads((run_dir / RESUME_DIR / "checkpoint" / "search.json").read_text())["rows"]
    before = json.loads((run_dir / RESUME_DIR / ATTEMPT).read_text())["spent"]
    assert kept and before["carried"].endswith("trial(s)")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "runs.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "ok" and row["attempts"] == "2" and row["resumed_from"] == before["carried"], row
    assert "resume: resuming after 1 attempt(s)" in (run_dir / rundir.LOG).read_text()
    trials = {t["trial_id"]: t for t in trial_rows(run_dir)}
    assert len(trials) == int(row["trials"])
    for k in kept:  # kept as the first attempt ran them
        assert (trials[k["trial_id"]]["started_s"], trials[k["trial_id"]]["worker"]) == (f"{k['started_s']:.3f}",
                                                                                         k["worker"])
    # The second attempt's trials run on the fit clock after the first attempt's time.
    assert all(float(t["started_s"]) >= before["fit_s"] for i, t in trials.items()
               if i not in {k["trial_id"] for k in kept})
    assert before["fit_s"] <= float(row["fit_s"]) <= budget_s + allowed_overshoot_s(budget_s)
    extras = json.loads((run_dir / rundir.METADATA).read_text())["extras"]
    assert float(row["cpu_s"]) >= before["cpu_s"] + extras["workers_cpu_s"]
    assert row["search_workers"] == "2" and float(row["accuracy"]) > 0.8  # digits: a starved refit scores ~0.1
    assert not (run_dir / RESUME_DIR).exists()
    assert not [p for p in search_processes() if str(out) in " ".join(p.info["cmdline"] or [])]


def ray_worker_began_a_trial(run_id: str) -> bool:
    """Whether worker1 of the run, alive, has begun a trial (its log in its node's scratch folder)."""
    from bench.systems.search.processes import SCRATCH_DIR

    log = SCRATCH_DIR / f"{run_id}-worker1" / "log.txt"
    return log.exists() and "begins on worker1" in log.read_text(errors="replace") and bool(search_processes())


@pytest.fixture(autouse=True)
def no_stale_scratch():
    """A worker killed with its node leaves its scratch folder (the next try of the same run clears it); the
    same spec run again by a later test must not read the old log."""
    import shutil

    from bench.systems.search.processes import SCRATCH_DIR

    shutil.rmtree(SCRATCH_DIR, ignore_errors=True)
    yield
    shutil.rmtree(SCRATCH_DIR, ignore_errors=True)


@pytest.mark.slow
def test_under_ray_a_worker_killed_mid_trial_loses_that_trial_and_the_search_goes_on(local_ray, tmp_path: Path
                                                                                       ) -> None:
    spec = RunSpec(DatasetRef("digits"), FAKE, parse_budget("25s"), 0, system_options=freeze(
        {"search_workers": 2}), out_dir=str(tmp_path), timeout_s=300, resources=Resources(num_cpus=1))
    killed: list[int] = []

    def kill_worker() -> None:
        wait_for(lambda: ray_worker_began_a_trial(spec.run_id))
        for p in search_processes():
            p.kill()
            killed.append(p.pid)

    record = while_running(kill_worker, lambda: run_on_ray([spec])[spec.run_id])
    assert killed and record.status == "ok", record.error
    meta = lost_a_trial(tmp_path, spec.run_id, "worker1 killed by SIGKILL")
    assert meta["workers"][0]["exit"] == "killed by SIGKILL"
    assert not search_processes()
    groups = local_ray.util.placement_group_table().values()
    assert groups and all(g["state"] == "REMOVED" for g in groups)


@pytest.mark.slow
def test_under_ray_the_chief_killed_fails_the_run_and_leaves_no_worker(local_ray, tmp_path: Path) -> None:
    spec = RunSpec(DatasetRef("digits"), FAKE, parse_budget("40s"), 0, system_options=freeze(
        {"search_workers": 2}), out_dir=str(tmp_path), timeout_s=300, resources=Resources(num_cpus=1))

    def kill_chief() -> None:
        wait_for(lambda: ray_worker_began_a_trial(spec.run_id))
        for p in psutil.process_iter(["cmdline"]):
            if "bench.run.worker" in " ".join(p.info["cmdline"] or []):
                p.kill()

    record = while_running(kill_chief, lambda: run_on_ray([spec])[spec.run_id])
    assert record.status == "failed" and "SIGKILL" in record.error
    wait_for(lambda: not search_processes(), timeout=30)
    groups = local_ray.util.placement_group_table().values()
    assert groups and all(g["state"] == "REMOVED" for g in groups)


@pytest.mark.slow
def test_under_ray_a_worker_whose_node_is_lost_loses_its_trial_and_the_search_goes_on(tmp_path: Path) -> None:
    """A simulated cluster of two one-CPU nodes (the head runs nothing): the chief on one, its worker on the other,
    which is removed while the worker runs a trial."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from tests.conftest import REPO

    env = {"PYTHONPATH": str(REPO), "BENCH_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20})
    spec = RunSpec(DatasetRef("digits"), FAKE, parse_budget("30s"), 0, system_options=freeze(
        {"search_workers": 2}), out_dir=str(tmp_path), timeout_s=300, resources=Resources(num_cpus=1))
    try:
        ray.init(address=cluster.address, runtime_env={"env_vars": env}, log_to_driver=False)
        nodes = [cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20) for _ in range(2)]
        cluster.wait_for_nodes()
        removed: list[object] = []

        def remove_the_worker_node() -> None:
            wait_for(lambda: ray_worker_began_a_trial(spec.run_id))
            worker = search_processes()[0]
            ancestors = {p.pid for p in worker.parents()}
            victim = next(n for n in nodes if n.all_processes["raylet"][0].process.pid in ancestors)
            cluster.remove_node(victim)
            removed.append(victim)

        record = while_running(remove_the_worker_node, lambda: run_on_ray([spec])[spec.run_id])
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert removed and record.status == "ok", record.error
    meta = lost_a_trial(tmp_path, spec.run_id, "its worker worker1 lost (")
    assert meta["workers"][0]["exit"].startswith("lost (")
    wait_for(lambda: not search_processes(), timeout=30)
