"""How much a budgeted search may spend: its deadline, the overshoot it is allowed, when a refit under scope
'total' stops, and one model of trial times that predicts what a trial or the refit will take before it starts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.core.budget import Budget

# Overshoot the benchmark allows a search: max(5% of the budget, 30 s) ...
OVERSHOOT_ALLOWED_SHARE, OVERSHOOT_ALLOWED_MIN_S = 0.05, 30.0
# ... of which a trial may use this share finishing its batch and validation before it is interrupted
# (the rest is for the trial's bookkeeping and the start of the refit).
HARD_STOP_SHARE = 0.5
# What a wall-clock budget can bound: search and refit together, or the search alone.
BUDGET_SCOPES = ("total", "search")
# max_trials under a time-only budget: the deadline ends the search long before this.
TIME_ONLY_MAX_TRIALS = 10_000
# Share of the allowed overshoot a refit may run past the budget's end when the search ended too late for one
# epoch before it; the rest is for the batch running when that time is up, the fit's end and saving the model.
REFIT_GRACE_SHARE = 0.5
# A refit's predicted time is padded by this factor, for what a trial's times miss (building the model on more
# data; measured: docs/method.md, autokeras).
REFIT_SAFETY = 1.25


def allowed_overshoot_s(budget_s: float | None) -> float:
    """Seconds past the budget's end a run may take in all: max(5% of the budget, 30 s)."""
    return max(OVERSHOOT_ALLOWED_SHARE * (budget_s or 0.0), OVERSHOOT_ALLOWED_MIN_S)


def budget_deadline(ctx_deadline: float | None, budget: Budget, t0: float) -> float | None:
    """When the budget runs out (time.monotonic()): the harness's deadline, else t0 plus the budget's seconds."""
    if ctx_deadline is None and budget.seconds is not None:
        return t0 + budget.seconds
    return ctx_deadline


def refit_stop_at(deadline: float, allowed_s: float, one_epoch_s: float, grace_share: float = REFIT_GRACE_SHARE
                  ) -> float:
    """When a refit under scope 'total' stops (time.monotonic()): the budget's end; a search that ended too late
    for one epoch (one_epoch_s, predicted) before it gets that epoch, up to grace_share of the allowed overshoot
    past the end, so the refit, cut at its next batch, still ends within the bound."""
    return min(max(deadline, time.monotonic() + one_epoch_s), deadline + grace_share * allowed_s)


def max_trials(budget: Budget, full: int) -> int:
    """The oracle's max_trials: the budget's trial count, `full` (the library's own) for a `full` budget, else so
    many that the deadline ends the search."""
    if budget.trials is not None:
        return budget.trials
    return full if budget.seconds is None else TIME_ONLY_MAX_TRIALS


def overshoot_s(end: float | None, bound: float | None) -> float | None:
    """Seconds `end` ran past `bound` (0 when inside it; None when either is unknown)."""
    return None if end is None or bound is None else max(0.0, end - bound)


@dataclass
class TrialTimes:
    """Measured seconds per trial, to predict what a trial or the refit will take before it starts: a fixed
    cost a trial pays once (building and compiling the model, the first epoch's graph tracing), plus one steady
    epoch times its epochs."""

    overhead_s: dict[str, float] = field(default_factory=dict)
    epoch_s: dict[str, float] = field(default_factory=dict)  # one steady epoch's seconds

    def note(self, trial_id: str, wall_s: float, epochs_s: Sequence[float]) -> None:
        """Records a trial from its wall time so far and the seconds of each epoch it finished: a steady epoch is
        the mean of those after the first (which traces the train step), whose excess is part of the fixed cost."""
        if not epochs_s:
            return
        epoch = float(np.mean(epochs_s[1:])) if len(epochs_s) > 1 else float(epochs_s[0])
        self.epoch_s[trial_id] = epoch
        self.overhead_s[trial_id] = max(0.0, wall_s - epoch * len(epochs_s))

    def quickest_score_s(self) -> float | None:
        """The least time a trial has taken to finish its first epoch (building included), or None."""
        return min((self.overhead_s[t] + e for t, e in self.epoch_s.items()), default=None)

    def least_s(self, epochs: int) -> float | None:
        """The least a trial of `epochs` epochs could take, at the quickest times seen (None: none seen)."""
        if not self.epoch_s:
            return None
        return min(self.overhead_s.values(), default=0.0) + min(self.epoch_s.values()) * epochs

    def refit_s(self, trial_id: str, epochs: float) -> float:
        """Predicted seconds of refitting this trial's configuration for `epochs` of its epochs (a refit on more
        data counts proportionally more), padded by REFIT_SAFETY; 0 for a trial with no epoch timed."""
        if trial_id not in self.epoch_s:
            return 0.0
        return REFIT_SAFETY * (self.overhead_s.get(trial_id, 0.0) + self.epoch_s[trial_id] * epochs)
