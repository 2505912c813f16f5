"""--executor ray on a local Ray started by the tests (2 CPUs): the same records as the local executor, the
same failures recorded the same way, longest runs first, resources that fit or are refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.core.budget import parse_budget
from bench.run.driver import run_specs
from bench.run.execute import LocalExecutor
from bench.run.records import RunRecord
from bench.run.spec import DatasetRef, Resources, RunSpec, freeze
from bench.run.store import ResultsStore
from bench.run.supervise import Limits
from tests.conftest import REPO

ray = pytest.importorskip("ray")
from bench.run.ray_executor import RayExecutor, expected_cost, longest_first  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
SLOTS = 2  # the local Ray's CPUs: runs that hold one CPU each run two at a time


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory):
    """A small local Ray for this module (no dashboard), shut down after it."""
    env = {"PYTHONPATH": str(REPO), "BENCH_CACHE_DIR": str(tmp_path_factory.mktemp("ray-cache")),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    ray.init(address="local", num_cpus=SLOTS, include_dashboard=False, object_store_memory=80 * 2**20,
             log_to_driver=False, runtime_env={"env_vars": env})
    yield
    ray.shutdown()


def spec(out: Path, system: str, budget: str = "full", seed: int = 0, timeout: float | None = None,
         cpus: float | None = None, **options: object) -> RunSpec:
    return RunSpec(dataset=DatasetRef("digits", max_train=200), system=system, system_options=freeze(options),
                   budget=parse_budget(budget), seed=seed, timeout_s=timeout, out_dir=str(out),
                   resources=Resources(num_cpus=cpus))


def suite(out: Path) -> list[RunSpec]:
    """A run that is ok, one that raises, one that hangs past its limit, one that eats memory."""
    return [spec(out, "majority"), spec(out, "majority", seed=1), spec(out, "tests.bench.fakes:Raises"),
            spec(out, "tests.bench.fakes:Hangs", timeout=3), spec(out, "tests.bench.fakes:Hog", timeout=60)]


def folder_names(out: Path, run_id: str) -> set[str]:
    return {p.name for p in (out / "runs" / run_id).iterdir()}


def test_ray_records_what_the_local_executor_records(local_ray, tmp_path: Path) -> None:
    limits = Limits(grace_s=5, max_rss_mb=400)
    local, remote = tmp_path / "local", tmp_path / "ray"
    run_specs(suite(local), LocalExecutor(limits), local)
    started: list[tuple[str, str]] = []

    class Watching(RayExecutor):
        def map(self, specs, on_start=None):
            def note(s: RunSpec, node: str) -> None:
                started.append((s.run_id, node))
                on_start(s, node)
            return super().map(specs, note)

    executor = Watching(limits)
    run_specs(suite(remote), executor, remote)
    executor.close()
    assert ray.is_initialized()  # an executor leaves alone a Ray it did not start
    a, b = ResultsStore(local).records(), ResultsStore(remote).records()
    assert a.keys() == b.keys() and len(a) == 5
    for run_id, record in a.items():
        other = b[run_id]
        assert (other.status, other.system, other.accuracy) == (record.status, record.system, record.accuracy)
        assert other.error.split(":")[0] == record.error.split(":")[0], (record.error, other.error)
        # A run stopped at 3 s may or may not have written its metadata by then on a busy machine.
        optional = {"metadata.json"} if record.status == "timeout" else set()
        assert folder_names(remote, run_id) - optional == folder_names(local, run_id) - optional
        assert record.node == "" and len(other.node) == 8 and other.attempts == 1
    by_system = {r.system: r for r in b.values()}
    assert by_system["tests.bench.fakes:Raises"].error == "RuntimeError: deliberate failure in fit"
    assert "hard time limit of 3 s" in by_system["tests.bench.fakes:Hangs"].error
    assert "memory limit exceeded" in by_system["tests.bench.fakes:Hog"].error
    assert sorted(r for r, _ in started) == sorted(b)  # every run was shown starting, with its node
    assert {node for _, node in started} == {r.node for r in b.values()}
    # The folder came back whole: the record on disk is the one in the table.
    ok = next(r for r in b.values() if r.status == "ok")
    on_disk = RunRecord.from_json((remote / "runs" / ok.run_id / "record.json").read_text())
    assert on_disk == ok and (remote / "runs" / ok.run_id / "predictions.csv").stat().st_size > 0


def test_longest_runs_are_submitted_first() -> None:
    out = Path("x")
    specs = [spec(out, "majority", "30s"), spec(out, "majority", "2h"), spec(out, "majority", "t3", timeout=9000),
             RunSpec(DatasetRef("digits"), "majority", parse_budget("30s"), 0, out_dir="x")]
    order = [s.budget.name for s in longest_first(specs)]
    assert order == ["t3", "2h", "30s", "30s"]
    assert longest_first(specs)[2].dataset.max_train is None  # the whole data set before a 200-image cut
    assert expected_cost(specs[0]) == (30.0, 200.0)


# Ten seconds of sleeping runs; the order it times is checked in the default run by the test above, and the
# executor's submitting and collecting by the comparison with the local executor.
@pytest.mark.slow
def test_the_makespan_is_close_to_ideal_with_longest_first(local_ray, tmp_path: Path) -> None:
    """Sleeping runs of known lengths on 2 slots: the suite takes about total / 2 (or the longest run)."""
    seconds = [1, 1, 1, 1, 5]  # short ones first, as a suite lists them: in this order the 5 s run would start last
    specs = [spec(tmp_path, "tests.bench.fakes:Sleeps", f"{s + 60 + i}s", seed=i, cpus=1, seconds=s)
             for i, s in enumerate(seconds)]
    executor = RayExecutor()
    t0 = time.monotonic()
    records = [r for _, r in executor.map(specs)]
    wall = time.monotonic() - t0
    assert all(r.status == "ok" for r in records), [r.error for r in records]
    durations = [r.duration_s for r in records]
    ideal = max(sum(durations) / SLOTS, max(durations))
    assert wall <= 1.2 * ideal + 1.0, (wall, ideal, durations)


def test_resources_no_node_has_are_recorded_failed_not_left_pending(local_ray, tmp_path: Path) -> None:
    executor = RayExecutor()
    gpu_run = RunSpec(DatasetRef("digits", max_train=200), "majority", parse_budget("full"), 0,
                      out_dir=str(tmp_path), resources=Resources(num_gpus=1))
    [(_, record)] = list(executor.map([gpu_run]))
    assert record.status == "failed" and "no node of the cluster has the resources" in record.error
    assert ResultsStore(tmp_path).records() == {}  # the driver's table is written by run_specs, not here


def test_cpu_runs_hold_a_whole_node_by_default(local_ray) -> None:
    executor = RayExecutor()
    nodes = [{"CPU": 8.0}, {"CPU": 4.0, "GPU": 2.0}]
    assert executor.task_resources(Resources(), nodes) == {"num_cpus": 4.0, "num_gpus": 0.0}
    assert executor.task_resources(Resources(num_gpus=1), nodes) == {"num_cpus": 2.0, "num_gpus": 1}
    assert executor.task_resources(Resources(num_cpus=3), nodes) == {"num_cpus": 3, "num_gpus": 0.0}
    assert executor.task_resources(Resources(num_gpus=4), nodes) is None
    assert executor.task_resources(Resources(num_cpus=16), nodes) is None


@pytest.mark.slow
def test_the_smoke_suite_gives_the_same_runs_and_statuses_under_ray(local_ray, tmp_path: Path) -> None:
    """The shipped smoke suite (real training on digits, about 5 minutes each way on 2 cores)."""
    from bench.run.suite import load_suite

    smoke = load_suite("smoke")
    local, remote = tmp_path / "local", tmp_path / "ray"
    run_specs(smoke.specs(str(local)), LocalExecutor(), local)
    executor = RayExecutor()
    run_specs(smoke.specs(str(remote)), executor, remote)
    a, b = ResultsStore(local).records(), ResultsStore(remote).records()
    assert len(a) == 10 and {k: r.status for k, r in a.items()} == {k: r.status for k, r in b.items()}
    assert all(r.status == "ok" for r in b.values()), [r.error for r in b.values()]


def test_a_local_ray_leaves_nothing_outside_the_results_and_the_cache(tmp_path: Path) -> None:
    from tests.bench.outside import Sandbox

    sandbox = Sandbox(tmp_path)
    try:
        result = sandbox.run("run", "--dataset", "digits", "--max-train", "100", "--system",
                             "tests.bench.fakes:SeesPolicy", "--budget", "full", "--executor", "ray")
        assert result.returncode == 0, result.stderr
        assert sandbox.left_outside() == []  # no ~/.ray/auth_token, no Ray session, no scratch folder
    finally:
        sandbox.close()
    assert (sandbox.cache / "keras" / "keras.json").exists()
