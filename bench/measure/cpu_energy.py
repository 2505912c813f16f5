"""CPU package energy of one run, from the kernel's RAPL counters (/sys/class/powercap), while it fits and predicts.

Each package domain (`intel-rapl:N`, named `package-N`; AMD's RAPL driver uses the same names) has a counter of
microjoules that wraps at its `max_energy_range_uj`. On some AMD parts the range is 2^32 uJ, about 20 s at 200 W,
so a thread reads the counters every second and adds the wrapped differences. The figure is the whole package's
energy (every process on it, not this run's share), which is what the machine draws while the run holds it;
it is None where the counters are absent or unreadable (virtual machines, or kernels that keep `energy_uj` for
root), so "not measured" never reads as 0 J.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from bench.measure.meters import WindowedMeter

POWERCAP = Path("/sys/class/powercap")
# Far below the fastest wrap seen (2^32 uJ at a few hundred watts: ~15-20 s), and a sysfs read is cheap.
READ_INTERVAL_S = 1.0
_PACKAGE_DIR = re.compile(r"^intel-rapl:\d+$")  # top-level domains only; intel-rapl:N:M are their parts


def package_domains(root: Path = POWERCAP) -> list[Path]:
    """The package domains whose counter and range this process can read, sorted by name."""
    found = []
    for folder in sorted(root.glob("intel-rapl:*")) if root.is_dir() else []:
        if not _PACKAGE_DIR.match(folder.name):
            continue
        try:
            if not (folder / "name").read_text().strip().startswith("package"):
                continue
            int((folder / "energy_uj").read_text())
            int((folder / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue
        found.append(folder)
    return found


class CpuEnergyMeter(WindowedMeter):
    """Adds up the package counters' increase inside `window()` blocks; `stop()` gives joules or None."""

    def __init__(self, root: Path = POWERCAP, interval_s: float = READ_INTERVAL_S) -> None:
        """root: the powercap folder (a fake tree in tests); interval_s: how often the counters are read."""
        super().__init__()
        self._root = root
        self._interval_s = interval_s
        self._domains: list[Path] = []
        self._ranges: list[int] = []
        self._last: list[int] | None = None  # the counters at the last read inside the open window
        self._uj = 0
        self._known = True  # False once a read failed inside a window: the total is then unknown
        self._measured = False  # a window closed with readings
        self._result: float | None | bool = False  # False until stop()

    def start(self) -> CpuEnergyMeter:
        """Finds the readable package domains and starts reading; without any it stays inert."""
        self._domains = package_domains(self._root)
        try:
            self._ranges = [int((d / "max_energy_range_uj").read_text()) for d in self._domains]
        except (OSError, ValueError):
            self._domains = []
        if self._domains:
            self._thread = threading.Thread(target=self._loop, name="cpu-energy", daemon=True)
            self._thread.start()
        return self

    def _opening(self) -> bool:
        """Opens (or nests into) a window, reading the counters at the outermost. Caller holds _lock."""
        if not self._domains or self._result is not False:
            return False
        self._depth += 1
        if self._depth == 1:
            self._last = self._read()
            self._known &= self._last is not None
        return True

    def stop(self) -> float | None:
        """Stops reading; the joules counted inside windows, or None where not measured. Idempotent."""
        if self._result is not False:
            return self._result  # type: ignore[return-value]
        self._halt()
        with self._lock:
            self._result = self._uj / 1e6 if self._known and self._measured else None
        return self._result

    def so_far(self) -> float | None:
        """Joules up to the last read (at most one interval ago), an open window included; None where unknown."""
        if self._result is not False:
            return self._result  # type: ignore[return-value]
        with self._lock:
            return self._uj / 1e6 if self._known and (self._measured or self._depth > 0) else None

    def _closing(self) -> None:
        """Leaves a window, adding the last stretch when it is the outermost. Caller holds _lock."""
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            self._advance()
            self._last = None
            self._measured = True

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval_s):
            with self._lock:
                if self._depth > 0:
                    self._advance()

    def _advance(self) -> None:
        """Adds each counter's increase since the last read, modulo its range. Caller holds _lock."""
        now = self._read()
        if now is None or self._last is None:
            self._known = False
            return
        for before, after, top in zip(self._last, now, self._ranges, strict=True):
            # The counter runs 0..max_energy_range_uj and starts again at 0.
            self._uj += (after - before) % (top + 1)
        self._last = now

    def _read(self) -> list[int] | None:
        try:
            return [int((d / "energy_uj").read_text()) for d in self._domains]
        except (OSError, ValueError):
            return None
