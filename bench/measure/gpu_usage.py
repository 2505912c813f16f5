"""GPU usage of one run: the GPUs it holds, read through NVML by a background sampler while it fits and predicts.

Two figures answer two questions: `gpu_s` (GPUs held x wall seconds) is what a renter pays for, `gpu_busy_s`
(utilisation integrated over time) is what the GPUs actually worked, and `gpu_energy_j` what they drew (NVML's
total-energy counter, read as each window opens and closes). Everything is None when there is no NVML or no
GPU is held, so "no GPU" never reads as "a GPU that did nothing".
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench.measure.meters import WindowedMeter

# NVML refreshes utilisation every 1/6 s to 1 s depending on the GPU, so sampling faster gains little,
# and one sample a second is negligible overhead next to training.
SAMPLE_INTERVAL_S = 1.0

_MIB = 1024 * 1024
# NVML's total-energy counter is an unsigned 64-bit count of millijoules since the driver loaded.
ENERGY_COUNTER_WRAP_MJ = 2**64
# Values of CUDA_VISIBLE_DEVICES that hide every GPU ("NoDevFiles" is what some schedulers write).
_NO_DEVICES = {"", "-1", "NoDevFiles"}


class _Default(enum.Enum):
    """Sentinel type: distinguishes "read the environment" from an explicit None (variable unset)."""

    FROM_ENV = enum.auto()


@dataclass(frozen=True)
class GpuUsage:
    """What a run's held GPUs cost and did inside the measured windows; None where unknown or no GPU."""

    gpu_count: int | None = None
    gpu_model: str = ""
    gpu_s: float | None = None
    gpu_busy_s: float | None = None
    gpu_mem_peak_mb: float | None = None
    gpu_energy_j: float | None = None  # None also where a GPU has no energy counter (before Volta)

    def as_fields(self) -> dict[str, object]:
        """The six fields by name, for the run record."""
        return {
            "gpu_count": self.gpu_count,
            "gpu_model": self.gpu_model,
            "gpu_s": self.gpu_s,
            "gpu_busy_s": self.gpu_busy_s,
            "gpu_mem_peak_mb": self.gpu_mem_peak_mb,
            "gpu_energy_j": self.gpu_energy_j,
        }


def _text(value: Any) -> str:
    """pynvml returns bytes in older releases and str in newer ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _held_indices(nvml: Any, visible: str | None) -> list[int]:
    """NVML indices of the GPUs this process may use, from CUDA_VISIBLE_DEVICES's value (None: unset, all)."""
    count = nvml.nvmlDeviceGetCount()
    if visible is None:
        return list(range(count))
    if visible.strip() in _NO_DEVICES:
        return []
    uuids: list[str] | None = None  # read only when a token is a UUID
    held: list[int] = []
    for raw in visible.split(","):
        token = raw.strip()
        if token.lstrip("-").isdigit():
            # An integer index; Ray writes them in NVML's (PCI bus) order.
            index = int(token)
            matches = [index] if 0 <= index < count else []
        else:
            if uuids is None:
                uuids = [_text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)]
            # CUDA accepts any unambiguous prefix of a UUID ("GPU-8932f9").
            matches = [i for i, uuid in enumerate(uuids) if token and uuid.startswith(token)]
        if len(matches) != 1:
            # CUDA ignores the list from its first invalid entry on; so do we.
            break
        if matches[0] not in held:
            held.append(matches[0])
    return held


def held_capabilities(nvml: Any | None = None, visible: str | None | _Default = _Default.FROM_ENV
                      ) -> list[tuple[int, int]] | None:
    """CUDA compute capabilities (major, minor) of the GPUs this process may use; None when NVML cannot say."""
    try:
        if nvml is None:
            import pynvml

            nvml = pynvml
        nvml.nvmlInit()
    except Exception:  # no library or no driver: unknown, not "no GPU"
        return None
    try:
        seen = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is _Default.FROM_ENV else visible
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in _held_indices(nvml, seen)]
        return [tuple(nvml.nvmlDeviceGetCudaComputeCapability(h)) for h in handles]
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def held_gpus(nvml: Any | None = None, visible: str | None | _Default = _Default.FROM_ENV) -> list[int] | None:
    """NVML indices of the GPUs this process may use; None when NVML cannot say."""
    try:
        if nvml is None:
            import pynvml

            nvml = pynvml
        nvml.nvmlInit()
    except Exception:  # no library or no driver: unknown
        return None
    try:
        return _held_indices(nvml, os.environ.get("CUDA_VISIBLE_DEVICES") if visible is _Default.FROM_ENV else visible)
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


class GpuSampler(WindowedMeter):
    """Samples the held GPUs about once per interval; only samples inside `window()` count."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S, nvml: Any | None = None,
                 visible: str | None | _Default = _Default.FROM_ENV) -> None:
        """nvml: a module with pynvml's API (None imports pynvml at start); visible: CUDA_VISIBLE_DEVICES's value."""
        self._interval_s = interval_s
        self._nvml = nvml
        super().__init__()
        self._visible = visible
        self._handles: list[Any] = []
        self._model = ""
        self._initialised = False  # nvmlInit succeeded, so nvmlShutdown is owed
        self._result: GpuUsage | None = None
        # Accounting, guarded by _lock.
        self._window_start = 0.0
        self._window_s = 0.0  # closed windows' wall seconds
        self._last_t: float | None = None  # time of the last successful sample in the open window
        self._last_util: float | None = None  # its utilisation summed over GPUs, as a fraction
        self._busy_s = 0.0
        self._mem_peak_mb: float | None = None
        self._sampled = False  # any sample succeeded
        self._energy_start: list[int] | None = None  # each GPU's counter (mJ) as the open window began
        self._energy_mj = 0  # closed windows' energy over all held GPUs
        self._energy_known = True  # False once a counter could not be read: the total is then unknown

    def start(self) -> GpuSampler:
        """Initialises NVML, finds the held GPUs and starts sampling; without NVML or GPUs it stays inert."""
        if self._initialised or self._result is not None:
            return self
        try:
            if self._nvml is None:
                import pynvml

                self._nvml = pynvml
            visible = os.environ.get("CUDA_VISIBLE_DEVICES") if self._visible is _Default.FROM_ENV else self._visible
            self._nvml.nvmlInit()
            self._initialised = True
            indices = _held_indices(self._nvml, visible)
            self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
            names = [_text(self._nvml.nvmlDeviceGetName(h)) for h in self._handles]
            self._model = " + ".join(dict.fromkeys(names))
        except Exception:
            # Missing library or driver (ImportError, NVMLError), or a device that will not answer:
            # the run goes on and records its GPU usage as unknown, never as a failure.
            self._handles = []
            self._shutdown()
            return self
        if self._handles:
            self._thread = threading.Thread(target=self._loop, name="gpu-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> GpuUsage:
        """Stops sampling, shuts NVML down and returns the totals; later calls return the same totals."""
        if self._result is not None:
            return self._result
        self._halt()
        with self._lock:
            self._result = self._usage()
            self._shutdown()
        return self._result

    def so_far(self) -> GpuUsage:
        """The totals up to now, the open window's held time and energy included."""
        if self._result is not None:
            return self._result
        with self._lock:
            usage = self._usage()
            if self._depth == 0 or not self._handles:
                return usage
            held_s = len(self._handles) * (time.monotonic() - self._window_start)
            energy_j = usage.gpu_energy_j if self._window_s > 0 else 0.0
            now = self._energy_counters()
            if energy_j is not None and self._energy_known and now is not None and self._energy_start is not None:
                energy_j += sum((b - a) % ENERGY_COUNTER_WRAP_MJ
                                for a, b in zip(self._energy_start, now, strict=True)) / 1000
            else:
                energy_j = None
            return dataclasses.replace(usage, gpu_s=(usage.gpu_s or 0.0) + held_s, gpu_energy_j=energy_j)

    def _opening(self) -> bool:
        """Opens (or nests into) the window; False when there is nothing to measure. Caller holds _lock."""
        if not self._handles or self._result is not None:
            return False
        self._depth += 1
        if self._depth == 1:
            now = time.monotonic()
            self._window_start = now
            self._last_t = now
            # A reading at entry: memory and utilisation even for a window shorter than one interval.
            self._sample(now)
            self._energy_start = self._energy_counters()
        return True

    def _closing(self) -> None:
        """Leaves the window, closing it with a last sample when outermost. Caller holds _lock."""
        if self._depth == 0:
            return  # stop() already closed this window
        self._depth -= 1
        if self._depth > 0:
            return
        now = time.monotonic()
        if not self._sample(now) and self._last_t is not None and self._last_util is not None:
            # The closing read failed: charge the tail at the last utilisation seen rather than drop it.
            self._busy_s += self._last_util * (now - self._last_t)
        self._window_s += now - self._window_start
        self._last_t = None
        end = self._energy_counters()
        if self._energy_start is None or end is None:
            self._energy_known = False
        else:
            # Modular difference: a counter that passed its maximum starts again at 0.
            self._energy_mj += sum((b - a) % ENERGY_COUNTER_WRAP_MJ for a, b in zip(self._energy_start, end,
                                                                                       strict=True))
        self._energy_start = None

    def _energy_counters(self) -> list[int] | None:
        """Each held GPU's total-energy counter in mJ; None when any cannot be read (NotSupported, lost)."""
        try:
            return [int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles]
        except Exception:
            return None

    def _loop(self) -> None:
        """The sampling thread: Event.wait, not sleep, so stop() needs no more than one NVML read to return."""
        while not self._stopping.wait(self._interval_s):
            with self._lock:
                if self._depth > 0:
                    self._sample(time.monotonic())

    def _sample(self, now: float) -> bool:
        """Reads every held GPU and adds the reading to the totals; False (nothing added) if a read fails."""
        try:
            util = sum(self._nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self._handles) / 100
            used_mb = max(self._nvml.nvmlDeviceGetMemoryInfo(h).used for h in self._handles) / _MIB
        except Exception:
            # NVMLError (a GPU lost or busy resetting) or anything odd: skip this reading; the next
            # successful one covers the gap, and a metadata reader must never fail the run.
            return False
        if self._last_t is not None:
            # NVML's utilisation is an average over its recent past, so it stands for the interval
            # since the previous sample (clipped to the window, as _last_t starts at entry).
            self._busy_s += util * (now - self._last_t)
        self._last_t = now
        self._last_util = util
        self._mem_peak_mb = used_mb if self._mem_peak_mb is None else max(self._mem_peak_mb, used_mb)
        self._sampled = True
        return True

    def _usage(self) -> GpuUsage:
        """The totals so far. Caller holds _lock."""
        if not self._handles:
            return GpuUsage()
        count = len(self._handles)
        return GpuUsage(
            gpu_count=count,
            gpu_model=self._model,
            gpu_s=count * self._window_s,
            # No successful reading means utilisation is unknown, not zero.
            gpu_busy_s=self._busy_s if self._sampled else None,
            gpu_mem_peak_mb=self._mem_peak_mb,
            gpu_energy_j=self._energy_mj / 1000 if self._energy_known and self._window_s > 0 else None,
        )

    def _shutdown(self) -> None:
        """nvmlShutdown once per successful nvmlInit; its errors are ignored, the totals are already taken."""
        if self._initialised:
            self._initialised = False
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
