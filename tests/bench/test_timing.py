"""The device sync before each clock read: each backend's own wait, and none for a runtime not loaded."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType, SimpleNamespace

import pytest

from bench.measure import timing


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **makers: Callable[[list[str]], object]) -> list[str]:
    """Puts a module `name` in sys.modules whose attributes the makers build, each given the list its calls
    append to; returns that list."""
    calls: list[str] = []
    module = ModuleType(name)
    for key, make in makers.items():
        setattr(module, key, make(calls))
    monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_torch_waits_for_cuda_when_a_gpu_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    calls = _fake_module(monkeypatch, "torch", cuda=lambda calls: SimpleNamespace(
        is_available=lambda: True, synchronize=lambda: calls.append("synchronize")))
    timing.sync_device()
    assert calls == ["synchronize"]


def test_jax_waits_for_every_live_array_then_its_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    arrays = ["a", "b"]
    calls = _fake_module(
        monkeypatch, "jax",
        live_arrays=lambda calls: lambda: arrays,
        block_until_ready=lambda calls: lambda xs: calls.append(f"block {xs}"),
        effects_barrier=lambda calls: lambda: calls.append("effects"))
    timing.sync_device()
    assert calls == ["block ['a', 'b']", "effects"]


def test_a_runtime_not_loaded_is_not_imported_to_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    for backend in ("tensorflow", "torch", "jax"):
        monkeypatch.setenv("KERAS_BACKEND", backend)
        monkeypatch.delitem(sys.modules, backend, raising=False)
        timing.sync_device()
        assert backend not in sys.modules


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_under_real_jax_the_sync_calls_exist_and_leave_a_pending_result_ready(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed JAX has the calls the sync makes (an AttributeError would be swallowed as 'nothing to wait
    for')."""
    import jax
    import jax.numpy as jnp

    monkeypatch.setenv("KERAS_BACKEND", "jax")
    pending = jnp.ones((256, 256)) @ jnp.ones((256, 256))  # dispatched, maybe not yet computed
    assert callable(jax.live_arrays) and callable(jax.block_until_ready) and callable(jax.effects_barrier)
    timing.sync_device()
    assert pending.is_ready()
    assert float(pending[0, 0]) == 256.0
