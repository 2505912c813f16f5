"""Cold (decode) and warm (cache) loads of the real shared data: time, images/s and peak memory.

Run with: pytest tests/datasets/test_load_benchmarks.py --benchmark-only -m ''
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from bench.datasets import ImageData
from bench.datasets.cifar10 import Cifar10
from bench.datasets.malaria import Malaria

SHARED = Path(os.environ.get("BENCH_SHARED_DATA") or Path(__file__).resolve().parents[2] / "../shared/data").resolve()
CIFAR_ZIP = SHARED / "cifar10-jpeg.zip"
MALARIA_ZIP = SHARED / "malaria-cells-subset.zip"
SAMPLE_S = 0.02  # RSS sampling period while a load runs
COLD_ROUNDS = {"cifar10": 1, "malaria": 3}  # a cold CIFAR-10 load decodes 60,000 JPEGs (tens of seconds)
WARM_ROUNDS = 3

pytestmark = pytest.mark.slow


@contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """Samples this process's resident memory while the block runs; yields {'peak_mb', 'base_mb'}."""
    proc = psutil.Process()
    result = {"base_mb": proc.memory_info().rss / 2**20, "peak_mb": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            result["peak_mb"] = max(result["peak_mb"], proc.memory_info().rss / 2**20)
            done.wait(SAMPLE_S)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        result["peak_mb"] = max(result["peak_mb"], proc.memory_info().rss / 2**20)


def _dataset(name: str) -> Callable[[], ImageData]:
    if name == "cifar10":
        if not CIFAR_ZIP.is_file():
            pytest.skip(f"{CIFAR_ZIP} absent (set BENCH_SHARED_DATA)")
        return Cifar10(path=str(CIFAR_ZIP), download=False).load
    if not MALARIA_ZIP.is_file():
        pytest.skip(f"{MALARIA_ZIP} absent (set BENCH_SHARED_DATA)")
    return Malaria(path=str(MALARIA_ZIP), download=False).load


def _record(benchmark, data: ImageData, memory: dict[str, float], expected_cache: str) -> None:
    assert data.info["cache"] == expected_cache
    n = len(data.y_train) + len(data.y_test)
    mean_s = benchmark.stats.stats.mean
    benchmark.extra_info.update({
        "images": n, "images_per_s": round(n / mean_s, 1), "mean_s": round(mean_s, 3),
        "peak_rss_mb": round(memory["peak_mb"], 1), "rss_growth_mb": round(memory["peak_mb"] - memory["base_mb"], 1),
        "array_mb": round((data.x_train.nbytes + data.x_test.nbytes) / 2**20, 1),
    })


@pytest.mark.parametrize("name", ["cifar10", "malaria"])
def test_cold_load(benchmark, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load = _dataset(name)
    fresh = itertools.count()

    def empty_cache() -> None:
        monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / f"cold-{next(fresh)}"))

    with peak_rss() as memory:
        data = benchmark.pedantic(load, setup=empty_cache, rounds=COLD_ROUNDS[name], iterations=1)
    _record(benchmark, data, memory, "miss")


@pytest.mark.parametrize("name", ["cifar10", "malaria"])
def test_warm_load(benchmark, name: str) -> None:
    load = _dataset(name)
    assert load().info["cache"] == "miss"  # fills this test's empty cache, untimed
    with peak_rss() as memory:
        data = benchmark.pedantic(load, rounds=WARM_ROUNDS, iterations=1)
    _record(benchmark, data, memory, "hit")
