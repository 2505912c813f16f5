"""Shared fixtures: worker processes must import the test fakes and never touch the user's caches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The real data files (cifar10-jpeg.zip, cifar-10-python.tar.gz, malaria-cells-subset.zip) the benchmarks use
# when present: too large for the repository, kept beside it.
SHARED_DATA = Path(os.environ.get("BENCH_SHARED_DATA") or REPO / "../shared/data").resolve()


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Child processes find tests.* and use a private cache and Keras home."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "bench-cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Benchmark JSON keeps the CPU, system and Python versions, not the machine's host name (AlgoPerf's rule
    for run metadata: a host name says nothing about a result and may say something about its owner)."""
    machine_info.pop("node", None)
