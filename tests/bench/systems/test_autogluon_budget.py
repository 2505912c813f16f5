"""AutoGluon's fit under the budget: the plan's numbers on a fake clock, and the hard stop on a real one."""

from __future__ import annotations

import time

import pytest

from bench.systems.autogluon_budget import (
    FINISH_RESERVE_MIN_S,
    MIN_TIME_LIMIT_S,
    BudgetOverrun,
    FinishGuard,
    FitClock,
    FitPlan,
    bounded_fit,
)


def test_total_scope_keeps_a_finish_reserve_from_time_limit():
    plan = FitPlan("total", deadline=1000.0, budget_s=600.0)
    assert plan.finish_reserve_s == 60.0  # 10% of the budget
    assert plan.time_limit(now=500.0) == pytest.approx(440.0)
    small = FitPlan("total", deadline=1000.0, budget_s=20.0)
    assert small.finish_reserve_s == FINISH_RESERVE_MIN_S
    assert small.time_limit(now=999.0) == MIN_TIME_LIMIT_S  # a spent budget still gets a moment


def test_search_scope_hands_autogluon_the_time_left_as_its_users_would():
    plan = FitPlan("search", deadline=1000.0, budget_s=600.0)
    assert plan.finish_reserve_s == 0.0
    assert plan.time_limit(now=430.0) == pytest.approx(570.0)
    assert FitPlan("search", deadline=None, budget_s=None).time_limit(now=0.0) is None


def test_unknown_scope_is_refused():
    with pytest.raises(ValueError, match="budget_scope"):
        FitPlan("everything", deadline=None, budget_s=None)


def test_hard_stop_covers_what_the_scope_bounds():
    clock = FitClock(t0=0.0)
    total, search = FitPlan("total", 100.0, 100.0), FitPlan("search", 100.0, 100.0)
    # The hard stop: HARD_STOP_SHARE of the allowed overshoot (allowed_overshoot_s) past the end, 15 s here.
    assert total.hard_stop_at(clock) == search.hard_stop_at(clock) == 115.0
    ticks = iter([10.0, 90.0])
    with clock.loop(now=lambda: next(ticks)):
        assert search.hard_stop_at(clock) == 115.0  # inside the loop: bounded
    assert search.hard_stop_at(clock) is None  # after it: AutoGluon's finishing follows, as a refit does
    assert total.hard_stop_at(clock) == 115.0  # under 'total' the whole fit stays bounded


def test_extras_split_fit_at_the_loop_end_and_measure_the_overshoot_of_the_scope():
    clock = FitClock(t0=0.0, loops=[(5.0, 80.0), (81.0, 95.0)], end=120.0)
    total = FitPlan("total", deadline=100.0, budget_s=100.0).extras(clock)
    assert total["search_s"] == 95.0 and total["refit_s"] == 25.0
    assert total["overshoot_s"] == 20.0  # fit's end against the budget's end
    search = FitPlan("search", deadline=100.0, budget_s=100.0).extras(clock)
    assert search["overshoot_s"] == 0.0  # the loop ended inside the budget
    assert search["search_s"] + search["refit_s"] == 120.0


def test_finish_guard_stops_the_loop_when_the_finishing_passes_no_longer_fit():
    guard = FinishGuard(deadline=100.0, passes=4)
    assert not guard.should_stop(99.0)  # no validation timed yet: time_limit and the hard stop bound it
    guard.validation_started(10.0)
    guard.validation_ended(15.0)
    assert guard.validation_s == 5.0
    assert not guard.should_stop(79.0)
    assert guard.should_stop(80.0)  # 80 + 4 x 5 s reaches the end
    assert guard.stopped
    assert FitPlan("search", 100.0, 100.0).guard().deadline is None  # finishing is outside a 'search' bound


def test_bounded_fit_passes_time_limit_and_marks_the_end():
    plan = FitPlan("total", deadline=time.monotonic() + 60.0, budget_s=60.0)
    clock = FitClock(t0=time.monotonic())
    seen: list[float | None] = []
    limit = bounded_fit(plan, clock, seen.append)
    assert seen == [limit] and limit == pytest.approx(54.0, abs=1.0)
    assert clock.end is not None


def test_a_fit_that_ignores_its_time_limit_is_interrupted_past_the_grace():
    plan = FitPlan("total", deadline=time.monotonic() + 0.2, budget_s=0.2, grace_s=0.3)
    clock = FitClock(t0=time.monotonic())

    def stubborn(limit: float | None) -> None:
        while True:  # pure Python, as AutoGluon's loop between its ops
            time.sleep(0.01)

    t0 = time.monotonic()
    with pytest.raises(BudgetOverrun, match="past the budget's end"):
        bounded_fit(plan, clock, stubborn)
    assert time.monotonic() - t0 < 3.0
