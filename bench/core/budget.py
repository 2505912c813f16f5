"""Budgets: named resource constraints, parsed strictly (amlb's 'constraints')."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

_UNITS = {"s": 1, "m": 60, "h": 3600}
_MS = {unit: size * 1000 for unit, size in _UNITS.items()}
# ASCII digits only: \d would also take other scripts' digits, which names could not spell back.
_TIME = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smh])", re.ASCII)
_TRIALS = re.compile(r"t([0-9]+)", re.ASCII)
FULL = "full"  # the system's own schedule, no limit imposed by the harness
# A budget's name is its identity (the run_id hashes it), so every accepted budget must have an exact name:
# times are whole milliseconds (a float holds those exactly up to far beyond the cap) and both parts are capped.
MAX_HOURS = 1000
MAX_MS = MAX_HOURS * _MS["h"]
MAX_TRIALS = 10**6


class BudgetError(ValueError):
    """A budget string that is not one of the accepted forms."""


@dataclass(frozen=True)
class Budget:
    """What a run may spend: wall-clock seconds, a trial count, both, or neither ('full')."""

    seconds: float | None = None
    trials: int | None = None

    def __post_init__(self) -> None:
        if self.seconds is not None:
            ms = self.seconds * 1000
            # Whole milliseconds: the float nearest to ms / 1000, as parse_budget makes it.
            if not (math.isfinite(ms) and 0 < round(ms) <= MAX_MS and round(ms) / 1000 == self.seconds):
                raise BudgetError(f"a time budget is whole milliseconds from 0.001s to {MAX_HOURS}h, "
                                  f"got {self.seconds!r} s")
        if self.trials is not None and (isinstance(self.trials, bool) or not isinstance(self.trials, int)
                                        or not 1 <= self.trials <= MAX_TRIALS):
            raise BudgetError(f"a trial budget is a whole number from 1 to {MAX_TRIALS}, got {self.trials!r}")

    @property
    def name(self) -> str:
        """Canonical text form; parse_budget(b.name) == b."""
        parts = []
        if self.seconds is not None:
            parts.append(_format_ms(round(self.seconds * 1000)))
        if self.trials is not None:
            parts.append(f"t{self.trials}")
        return "+".join(parts) or FULL

    @property
    def sort_key(self) -> tuple[float, float]:
        """Orders budgets by time, then trials; 'full' last."""
        inf = float("inf")
        return (self.seconds if self.seconds is not None else inf,
                self.trials if self.trials is not None else inf)

    def __str__(self) -> str:
        return self.name


def _format_ms(ms: int) -> str:
    """The largest unit that divides the time exactly; seconds with up to three decimals otherwise. For
    times of at most six significant digits this is the text `f"{seconds:g}s"` used to give, so names of
    results recorded before stay the same."""
    for unit in ("h", "m"):
        if ms % _MS[unit] == 0:
            return f"{ms // _MS[unit]}{unit}"
    whole, frac = divmod(ms, 1000)
    return f"{whole}.{frac:03d}".rstrip("0") + "s" if frac else f"{whole}s"


HELP = ("a budget is '30s', '5m', '2h' (wall clock, whole milliseconds up to "
        f"{MAX_HOURS}h), 't10' (trials, at most {MAX_TRIALS}), both joined by '+' ('1h+t10'), or 'full'")


def parse_budget(text: str) -> Budget:
    """Parses '30s', '5m', '2h', 't10', '1h+t10' or 'full'; anything else raises BudgetError."""
    raw = str(text).strip().lower()
    if raw == FULL:
        return Budget()
    seconds: float | None = None
    trials: int | None = None
    for part in raw.split("+"):
        if (m := _TIME.fullmatch(part)) is not None:
            if seconds is not None:
                raise BudgetError(f"budget {text!r} names a time limit twice; {HELP}")
            seconds = _milliseconds(text, m.group(1), m.group(2)) / 1000
        elif (m := _TRIALS.fullmatch(part)) is not None:
            if trials is not None:
                raise BudgetError(f"budget {text!r} names a trial count twice; {HELP}")
            # Decimal, not int: int() refuses strings of more than a few thousand digits with its own error.
            count = Decimal(m.group(1))
            if count < 1:
                raise BudgetError(f"budget {text!r} needs at least one trial; {HELP}")
            if count > MAX_TRIALS:
                raise BudgetError(f"budget {text!r} exceeds {MAX_TRIALS} trials; {HELP}")
            trials = int(count)
        else:
            raise BudgetError(f"unknown budget {text!r}: {HELP}")
    return Budget(seconds=seconds, trials=trials)


def _milliseconds(text: str, number: str, unit: str) -> int:
    """The time part in whole milliseconds, computed exactly (no float rounding of e.g. '0.1h')."""
    ms = Decimal(number) * _MS[unit]
    if ms <= 0:
        raise BudgetError(f"budget {text!r} must be positive; {HELP}")
    if ms > MAX_MS:
        raise BudgetError(f"budget {text!r} exceeds {MAX_HOURS}h; {HELP}")
    if ms != ms.to_integral_value():
        raise BudgetError(f"budget {text!r} is finer than a millisecond; {HELP}")
    return int(ms)
