"""What Ray adds per run: one `majority` run on digits end to end, under the local executor and under Ray,
measured side by side in one session. Run: python -m pytest tests/bench/test_ray_benchmarks.py --benchmark-only -m ""
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.budget import parse_budget
from bench.execute import LocalExecutor
from bench.spec import DatasetRef, Resources, RunSpec
from tests.conftest import REPO

ray = pytest.importorskip("ray")
from bench.ray_executor import RayExecutor  # noqa: E402

ROUNDS = 5  # runs timed per executor


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory):
    env = {"PYTHONPATH": str(REPO), "BENCH_CACHE_DIR": str(tmp_path_factory.mktemp("ray-cache"))}
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=600 * 2**20,
             log_to_driver=False, runtime_env={"env_vars": env})
    yield
    ray.shutdown()


def majority_run(out: Path) -> RunSpec:
    return RunSpec(DatasetRef("digits"), "majority", parse_budget("full"), 0, out_dir=str(out),
                   resources=Resources(num_cpus=1))


@pytest.mark.benchmark(group="per-run overhead")
def test_one_run_local(benchmark, tmp_path: Path) -> None:
    executor = LocalExecutor()
    record = benchmark.pedantic(executor.run, args=(majority_run(tmp_path),), rounds=ROUNDS, iterations=1)
    assert record.status == "ok"


@pytest.mark.benchmark(group="per-run overhead")
def test_one_run_ray(benchmark, local_ray, tmp_path: Path) -> None:
    executor = RayExecutor()
    list(executor.map([majority_run(tmp_path / "warm")]))  # Ray's first worker process starts outside the timing

    def one() -> object:
        [(_, record)] = list(executor.map([majority_run(tmp_path)]))
        return record

    record = benchmark.pedantic(one, rounds=ROUNDS, iterations=1)
    assert record.status == "ok"


@pytest.mark.benchmark(group="cifar10 to a run")
def test_cifar10_through_the_object_store(benchmark, local_ray) -> None:
    """The road not taken: the driver puts the arrays into Ray's object store once, each run's task reads them.
    Compare with tests/datasets/test_load_benchmarks.py::test_load_side_by_side[cifar10-zip-real], a node
    reading its cache."""
    from tests.datasets.test_load_benchmarks import CIFAR_ZIP

    if not CIFAR_ZIP.is_file():
        pytest.skip(f"{CIFAR_ZIP} absent (set BENCH_SHARED_DATA)")
    from bench.datasets.cifar10 import Cifar10

    data = Cifar10(path=str(CIFAR_ZIP), download=False).load()
    arrays = (data.x_train, data.y_train, data.x_test, data.y_test)

    @ray.remote(num_cpus=1)
    def read(refs: list) -> int:
        return sum(int(a.nbytes) for a in ray.get(refs))

    def put_and_read() -> int:
        refs = [ray.put(a) for a in arrays]
        return ray.get(read.remote(refs))

    nbytes = benchmark.pedantic(put_and_read, rounds=3, iterations=1)
    assert nbytes == sum(a.nbytes for a in arrays)
    benchmark.extra_info["array_mb"] = round(nbytes / 2**20, 1)
