"""Every dataset test runs offline, with its own empty cache, data dir and Keras home."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.datasets import sources


@pytest.fixture(autouse=True)
def _offline_and_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the network or the user's data: the probe fails unless a test patches it."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)

    def no_network(host: str, port: int = 443, timeout: float = 0) -> bool:
        return False

    monkeypatch.setattr(sources, "is_online", no_network)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """The test's cache folder (BENCH_CACHE_DIR)."""
    return tmp_path / "cache"
