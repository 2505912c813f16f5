"""AutoGluon's fit under the harness's budget: what to pass as time_limit, when to interrupt, what to record.

MultiModalPredictor.fit(time_limit=...) bounds its training loop only: loading the data, building the model
come before it, averaging the best checkpoints and scoring them on its validation split after. So the harness
plans and watches the whole fit itself (no AutoGluon import here, so it is tested with a fake predictor):

- scope 'total' (the default): time_limit is the time left to the budget's end less a reserve for what comes
  after the loop (FINISH_RESERVE_SHARE of the budget, at least FINISH_RESERVE_MIN_S); once a validation pass has
  been timed, the loop also stops at the batch after which FINISH_PASSES such passes would no longer fit before
  the budget's end (FinishGuard: after the loop AutoGluon validates once more and its greedy soup scores up to
  top_k=3 checkpoints on the same split); the whole fit is interrupted HARD_STOP_SHARE of the allowed overshoot
  past the budget's end, the bound every searcher keeps;
- scope 'search': time_limit is the time left to the budget's end, as AutoGluon's users pass it; the budget
  bounds fit up to the end of the (last) training loop, which is interrupted past the same bound, and what
  AutoGluon does after follows, as a searcher's refit follows its search.

search_s is fit's start to the end of the last training loop (of a hyperparameter search: to the end of the
search), refit_s what follows (checkpoint averaging, loading the best trial), so search_s + refit_s = fit_s;
overshoot_s is measured against the budget's end for what the scope bounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.systems.budget_options import check_budget_scope
from bench.systems.search.budget import HARD_STOP_SHARE, allowed_overshoot_s, overshoot_s
from bench.systems.search.stop import DeadlineInterrupt, HardStop

# Under scope 'total', the share of the budget kept back from time_limit for what AutoGluon does after its
# training loop, and its least: on digits (1,350 images) that took 2-5 s; on a 60 s budget 6 s are kept.
FINISH_RESERVE_SHARE = 0.1
FINISH_RESERVE_MIN_S = 5.0
# Validation passes AutoGluon may run after its loop stops: the stopping epoch's, then its greedy soup's scoring of
# up to top_k (3) checkpoints.
FINISH_PASSES = 4
# The least time_limit handed to AutoGluon (it refuses zero): a budget spent before fit starts still trains
# for a moment, and the hard stop bounds what that costs.
MIN_TIME_LIMIT_S = 1.0


class BudgetOverrun(RuntimeError):
    """AutoGluon's fit was interrupted past the allowed overshoot, with no model to predict."""


@dataclass
class FitClock:
    """When fit started and each training loop (or search) ran, on time.monotonic()."""

    t0: float
    loops: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of each finished loop
    running_since: float | None = None  # start of the loop now running
    end: float | None = None  # when fit returned

    @contextmanager
    def loop(self, now: Callable[[], float] = time.monotonic) -> Iterator[None]:
        """Marks a training loop (or a whole search) as running while inside."""
        self.running_since = now()
        try:
            yield
        finally:
            self.loops.append((self.running_since, now()))
            self.running_since = None

    @property
    def bounded_end(self) -> float | None:
        """End of the last training loop (None before one ended)."""
        return self.loops[-1][1] if self.loops else None


@dataclass(frozen=True)
class FitPlan:
    """The budget of one AutoGluon fit: its scope, the budget's end and the bound past it."""

    scope: str
    deadline: float | None  # the budget's end (time.monotonic()); None: no time limit
    budget_s: float | None
    grace_s: float | None = None  # seconds past the end at which fit is interrupted; None: the usual bound

    def __post_init__(self) -> None:
        check_budget_scope(self.scope)

    @property
    def finish_reserve_s(self) -> float:
        """Seconds kept back from time_limit for what comes after the loop (scope 'total' only)."""
        if self.scope != "total" or self.budget_s is None:
            return 0.0
        return max(FINISH_RESERVE_SHARE * self.budget_s, FINISH_RESERVE_MIN_S)

    def time_limit(self, now: float) -> float | None:
        """fit's time_limit when the training is about to start at `now` (None: no time limit)."""
        if self.deadline is None:
            return None
        return max(MIN_TIME_LIMIT_S, self.deadline - now - self.finish_reserve_s)

    @property
    def hard_stop_grace_s(self) -> float:
        """Seconds past the budget's end at which what the scope bounds is interrupted."""
        return HARD_STOP_SHARE * allowed_overshoot_s(self.budget_s) if self.grace_s is None else self.grace_s

    def hard_stop_at(self, clock: FitClock) -> float | None:
        """When to interrupt fit now: past the bound while what the scope bounds runs, else never."""
        if self.deadline is None:
            return None
        if self.scope == "search" and clock.bounded_end is not None and clock.running_since is None:
            return None  # the loop ended: what follows is outside the bound, as a refit is
        return self.deadline + self.hard_stop_grace_s

    def guard(self) -> FinishGuard:
        """The loop's early stop for the finishing passes (scope 'total'; under 'search' they follow the bound)."""
        return FinishGuard(self.deadline if self.scope == "total" else None)

    def extras(self, clock: FitClock) -> dict[str, Any]:
        """search_s, refit_s and overshoot_s of a finished fit."""
        loop_end = clock.bounded_end
        bounded = clock.end if self.scope == "total" else loop_end
        return {
            "search_s": None if loop_end is None else loop_end - clock.t0,
            "refit_s": None if loop_end is None or clock.end is None else clock.end - loop_end,
            "overshoot_s": overshoot_s(bounded, self.deadline),
            "finish_reserve_s": self.finish_reserve_s if self.deadline is not None else None,
        }


@dataclass
class FinishGuard:
    """Stops a training loop early enough for what follows it: FINISH_PASSES validation passes, timed on the
    loop's own (the longest seen), must fit before the budget's end."""

    deadline: float | None
    passes: int = FINISH_PASSES
    validation_s: float | None = None  # the longest validation pass seen
    stopped: bool = False
    _since: float | None = None

    def validation_started(self, now: float) -> None:
        """A validation pass begins."""
        self._since = now

    def validation_ended(self, now: float) -> None:
        """A validation pass ended; its time is remembered."""
        if self._since is not None:
            self.validation_s = max(self.validation_s or 0.0, now - self._since)
            self._since = None

    def should_stop(self, now: float) -> bool:
        """After a training batch: whether the loop must stop now to leave room for the finishing passes."""
        if self.deadline is None or self.validation_s is None:
            return False
        if now + self.passes * self.validation_s >= self.deadline:
            self.stopped = True
        return self.stopped


def bounded_fit(plan: FitPlan, clock: FitClock, fit: Callable[[float | None], Any],
                now: Callable[[], float] = time.monotonic) -> float | None:
    """Calls fit(time_limit) under the plan's hard stop; returns the time_limit it was given. A fit interrupted
    past the bound raises BudgetOverrun naming how far past the budget's end it was."""
    limit = plan.time_limit(now())
    try:
        with HardStop(lambda: plan.hard_stop_at(clock)):
            fit(limit)
    except DeadlineInterrupt:
        late = now() - (plan.deadline or now())
        raise BudgetOverrun(
            f"AutoGluon's fit was still running {late:.0f} s past the budget's end (allowed: "
            f"{plan.hard_stop_grace_s:.0f} s under budget_scope={plan.scope}) and was interrupted before it had "
            "a model to predict; give a larger budget") from None
    finally:
        clock.end = now()
    return limit
