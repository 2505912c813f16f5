"""A searcher written on bench.systems.search in one short file (tests/bench/search_fake.py) obeys a wall-clock
budget through the harness, records its trials and cleans up."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench import rundir
from bench.budget import parse_budget
from bench.execute import LocalExecutor
from bench.spec import DatasetRef, RunSpec
from bench.systems.search import TRIAL_COLUMNS, TrialTimes
from bench.systems.search.budget import HARD_STOP_SHARE, allowed_overshoot_s


def test_a_fourth_searcher_obeys_a_10s_budget_within_the_overshoot_bound(tmp_path: Path) -> None:
    spec = RunSpec(DatasetRef("digits"), "tests.bench.search_fake:TinyRandomSearch", parse_budget("10s"), 0,
                   out_dir=str(tmp_path))
    record = LocalExecutor().run(spec)
    assert record.status == "ok", record.error
    assert record.role == "automl" and record.budget_scope == "search"
    # A trial running at the deadline stops at its next batch (milliseconds here); only one stuck inside a batch
    # would run on, to the hard stop at half the allowed overshoot.
    hard_stop_s = HARD_STOP_SHARE * allowed_overshoot_s(10)
    assert 0 <= record.overshoot_s <= hard_stop_s
    assert 10 - 1 <= record.search_s <= record.fit_s <= 10 + hard_stop_s
    with open(rundir.run_dir(tmp_path, record.run_id) / rundir.TRIALS, newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == TRIAL_COLUMNS
        rows = list(reader)
    assert record.trials == len(rows) >= 2
    assert {r["worker"] for r in rows} == {""}  # one process ran the search
    assert not any(r["error"] for r in rows)  # every stop was at a batch's end: no trial needed the watchdog
    best = max(float(r["val_accuracy"]) for r in rows if r["val_accuracy"])
    assert record.search_val_accuracy == record.val_accuracy == pytest.approx(best, abs=1e-5)  # the best predicts


def test_one_trial_time_model_predicts_trials_and_refits() -> None:
    times = TrialTimes(overhead_s={"a": 2.0, "b": 1.0}, epoch_s={"a": 3.0, "b": 5.0})
    assert times.least_s(2) == 1.0 + 3.0 * 2
    assert times.refit_s("a", 2.5) > times.refit_s("a", 2) > 2.0 + 3.0 * 2
    assert times.refit_s("unseen", 10) == 0.0


def test_a_deadline_goes_to_another_process_as_unix_time_and_back() -> None:
    import time

    from bench.systems.search.budget import from_wall_clock, to_wall_clock

    deadline = time.monotonic() + 30.0
    assert abs(to_wall_clock(deadline) - (time.time() + 30.0)) < 0.1
    assert abs(from_wall_clock(to_wall_clock(deadline)) - deadline) < 0.1


def test_a_hard_stop_follows_a_deadline_that_moves_while_the_trial_runs() -> None:
    """A trial started before the refit reserve was known is stopped at the deadline as it stands later (the
    reserve grows; a worker hears the chief's)."""
    import time

    from bench.systems.search import DeadlineInterrupt, HardStop

    deadline: list[float | None] = [None]  # no deadline yet, then one far off, then one already past
    hard_stop = HardStop(lambda: deadline[0])
    started = time.monotonic()
    with pytest.raises(DeadlineInterrupt), hard_stop:
        while time.monotonic() - started < 30:
            elapsed = time.monotonic() - started
            deadline[0] = None if elapsed < 0.6 else (started + 3600 if elapsed < 1.2 else started + 1.2)
            time.sleep(0.01)
    assert hard_stop.fired and 1.2 <= time.monotonic() - started < 10
