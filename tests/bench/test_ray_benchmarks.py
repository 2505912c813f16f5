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
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20, log_to_driver=False,
             runtime_env={"env_vars": env})
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
