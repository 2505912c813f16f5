"""Budgets: named resource constraints, parsed strictly (amlb's 'constraints')."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1, "m": 60, "h": 3600}
_TIME = re.compile(r"^(\d+(?:\.\d+)?)([smh])$")
_TRIALS = re.compile(r"^t(\d+)$")
FULL = "full"  # the system's own schedule, no limit imposed by the harness


class BudgetError(ValueError):
    """A budget string that is not one of the accepted forms."""


@dataclass(frozen=True)
class Budget:
    """What a run may spend: wall-clock seconds, a trial count, both, or neither ('full')."""

    seconds: float | None = None
    trials: int | None = None

    @property
    def name(self) -> str:
        """Canonical text form; parse(b.name) == b."""
        parts = []
        if self.seconds is not None:
            parts.append(_format_seconds(self.seconds))
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


def _format_seconds(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


HELP = "a budget is '30s', '5m', '2h' (wall clock), 't10' (trials), both joined by '+' ('1h+t10'), or 'full'"


def parse_budget(text: str) -> Budget:
    """Parses '30s', '5m', '2h', 't10', '1h+t10' or 'full'; anything else raises BudgetError."""
    raw = str(text).strip().lower()
    if raw == FULL:
        return Budget()
    seconds: float | None = None
    trials: int | None = None
    for part in raw.split("+"):
        if (m := _TIME.match(part)) is not None:
            if seconds is not None:
                raise BudgetError(f"budget {text!r} names a time limit twice; {HELP}")
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
            if seconds <= 0:
                raise BudgetError(f"budget {text!r} must be positive; {HELP}")
        elif (m := _TRIALS.match(part)) is not None:
            if trials is not None:
                raise BudgetError(f"budget {text!r} names a trial count twice; {HELP}")
            trials = int(m.group(1))
            if trials < 1:
                raise BudgetError(f"budget {text!r} needs at least one trial; {HELP}")
        else:
            raise BudgetError(f"unknown budget {text!r}: {HELP}")
    return Budget(seconds=seconds, trials=trials)
