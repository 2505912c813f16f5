"""Timing rules in one place (after AlgoPerf): synchronise the device, then read wall and CPU clocks.

Fit and predict are timed separately by the harness (bench.systems.base.System.run); data loading and
evaluation happen outside these clocks. CPU time is process-wide (all threads), so on a 2-core machine
cpu_s can be up to twice the wall time.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def sync_device() -> None:
    """Waits for queued accelerator work, so a clock read after it includes that work. Only a runtime already
    imported can have work queued (importing one here would cost seconds and sync nothing)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    try:
        if backend == "tensorflow" and "tensorflow" in sys.modules:
            import tensorflow as tf

            if tf.config.list_logical_devices("GPU"):
                tf.test.experimental.sync_devices()
        elif backend == "torch" and "torch" in sys.modules:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
        elif backend == "jax" and "jax" in sys.modules:
            import jax

            # JAX dispatches asynchronously on every device, a CPU's included: wait for every array still
            # being computed, then for ordered side effects (callbacks).
            jax.block_until_ready(jax.live_arrays())
            jax.effects_barrier()
    except (ImportError, AttributeError, RuntimeError):
        # A runtime without these calls (an old version) or without a device has nothing to wait for.
        pass


@dataclass
class Clock:
    """Wall and process-CPU seconds spent inside one `measure()` block."""

    wall_s: float = 0.0
    cpu_s: float = 0.0


@contextmanager
def measure() -> Iterator[Clock]:
    """Times the block: device synchronised before both clock reads."""
    clock = Clock()
    sync_device()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        yield clock
    finally:
        sync_device()
        clock.wall_s = time.perf_counter() - wall0
        clock.cpu_s = time.process_time() - cpu0


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    import resource

    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
