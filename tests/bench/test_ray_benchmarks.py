"""What each run costs beyond its system's own work: one `majority` run on digits end to end, under the local
executor and under Ray, measured side by side in one session, and the imports every run's worker (and the CLI)
makes before any system starts.
Run: python -m pytest tests/bench/test_ray_benchmarks.py --benchmark-only -m ""

The Ray benchmarks skip where Ray is not installed; the rest need only bench.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.budget import parse_budget
from bench.run.execute import LocalExecutor
from bench.run.ray_executor import RayExecutor
from bench.run.spec import DatasetRef, Resources, RunSpec
from tests.conftest import REPO, SHARED_DATA

ROUNDS = 5  # runs timed per executor


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory):
    """Ray started on this machine for the module; yields the ray module."""
    ray = pytest.importorskip("ray")
    env = {"PYTHONPATH": str(REPO), "BENCH_CACHE_DIR": str(tmp_path_factory.mktemp("ray-cache"))}
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=600 * 2**20,
             log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
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
    ray = local_ray
    cifar_zip = SHARED_DATA / "cifar10-jpeg.zip"
    if not cifar_zip.is_file():
        pytest.skip(f"{cifar_zip} absent (set BENCH_SHARED_DATA)")
    from bench.datasets.cifar10 import Cifar10

    data = Cifar10(path=str(cifar_zip), download=False).load()
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


# The modules every run imports before its system starts: the worker (in each run's fresh process) and the data
# set registry (the worker and the CLI alike).
RUN_IMPORTS = ["bench.run.worker", "bench.datasets.registry"]
IMPORT_ROUNDS = 3  # fresh interpreters timed per module: each pays the whole import again
# Libraries that take seconds to import: the registry must not pull them in, since the CLI's every command and
# each run's worker import it before knowing whether a system needs them.
HEAVY_LIBRARIES = ("sklearn", "tensorflow", "keras")
# One line of `python -X importtime`'s report: self and cumulative microseconds, then the module's name indented
# by two spaces per level of nesting below the import statement that triggered it.
IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


def import_tree(stderr: str) -> list[tuple[int, str, float]]:
    """The rows of `-X importtime`'s report as (nesting level, module, cumulative ms), in the report's order."""
    rows = []
    for line in stderr.splitlines():
        match = IMPORTTIME_LINE.match(line)
        if match:
            rows.append((len(match[3]) // 2, match[4], int(match[2]) / 1e3))
    return rows


def top_level_ms(rows: list[tuple[int, str, float]]) -> dict[str, float]:
    """Cumulative ms of the tree's roots: the interpreter's own start-up imports and the statement's module, each
    with everything it imported first."""
    return {name: ms for level, name, ms in rows if level == 0}


def packages_ms(rows: list[tuple[int, str, float]]) -> dict[str, float]:
    """Cumulative ms of each top-level package (numpy, sklearn, ...) wherever it was first imported: which library
    a slow import comes from. They nest (pandas inside sklearn), so they do not add up."""
    return {name: ms for _, name, ms in rows if "." not in name}


def median_ms(rounds: list[dict[str, float]], top: int | None = None) -> dict[str, float]:
    """Each module's median over the rounds (a shared machine's other work lands on one round, not on all),
    heaviest first, the `top` heaviest where given."""
    names = {name for one in rounds for name in one}
    medians = {name: round(statistics.median(one.get(name, 0.0) for one in rounds), 1) for name in names}
    return dict(sorted(medians.items(), key=lambda item: -item[1])[:top])


def import_in_a_fresh_process(module: str) -> str:
    """`python -X importtime -c "import module"` in a new interpreter; returns its report (stderr)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


@pytest.mark.benchmark(group="per-run overhead")
@pytest.mark.parametrize("module", RUN_IMPORTS)
def test_import_time(benchmark, module: str) -> None:
    reports: list[str] = []

    def one() -> None:
        reports.append(import_in_a_fresh_process(module))

    benchmark.pedantic(one, rounds=IMPORT_ROUNDS, iterations=1)
    trees = [import_tree(report) for report in reports]
    roots = median_ms([top_level_ms(tree) for tree in trees])
    benchmark.extra_info.update(import_ms=roots[module], top_level_ms=roots,
                                packages_ms=median_ms([packages_ms(tree) for tree in trees], top=12))


def test_the_dataset_registry_imports_no_heavy_library() -> None:
    probe = (f"import sys, bench.datasets.registry; "
             f"print(*[m for m in {HEAVY_LIBRARIES!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [], "importing bench.datasets.registry imports " + done.stdout.strip()


def test_the_importtime_report_is_read_as_a_tree() -> None:
    report = """import time: self [us] | cumulative | imported package
import time:       407 |       1107 | _frozen_importlib_external
import time:      1449 |      96625 | site
import time:      6562 |       6562 |   bench
import time:       374 |    3496221 |     sklearn
import time:        12 |         30 |       sklearn.base
import time:     12761 |    4188464 | bench.run.worker
"""
    rows = import_tree(report)
    assert rows[:3] == [(0, "_frozen_importlib_external", 1.107), (0, "site", 96.625), (1, "bench", 6.562)]
    assert top_level_ms(rows) == {"_frozen_importlib_external": 1.107, "site": 96.625, "bench.run.worker": 4188.464}
    assert list(median_ms([packages_ms(rows)], top=2)) == ["sklearn", "site"]
    assert median_ms([{"a": 1.0, "b": 5.0}, {"a": 3.0}, {"a": 2.0, "b": 7.0}]) == {"b": 5.0, "a": 2.0}
