"""A searcher written on bench.systems.search in one short file (tests/bench/search_fake.py) runs through the
harness, obeys a wall-clock budget, records its trials and cleans up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.core import rundir
from bench.core.budget import parse_budget
from bench.run.execute import LocalExecutor
from bench.run.spec import DatasetRef, RunSpec
from bench.systems.search import TrialTimes
from tests.bench.systems.searches import StepClock, assert_no_tuner_files, run_search, trial_rows


@pytest.mark.slow
def test_a_fourth_searcher_runs_through_the_harness_and_records_its_trials(tmp_path: Path) -> None:
    spec = RunSpec(DatasetRef("digits", max_train=300), "tests.bench.search_fake:TinyRandomSearch",
                   parse_budget("t2"), 0, out_dir=str(tmp_path))
    record = LocalExecutor().run(spec)
    assert record.status == "ok", record.error
    assert record.role == "automl" and record.budget_scope == "search" and record.overshoot_s is None
    rows = trial_rows(rundir.run_dir(tmp_path, record.run_id))
    assert record.trials == len(rows) == 2 and [r["status"] for r in rows] == ["completed"] * 2
    assert {r["worker"] for r in rows} == {""}  # one process ran the search
    best = max(float(r["val_accuracy"]) for r in rows)
    assert record.search_val_accuracy == record.val_accuracy == pytest.approx(best, abs=1e-5)  # the best predicts
    # It tells the log no trial's epoch size and spends nothing on a refit: its FLOPs are not counted, not 0.
    assert record.train_flops is None and record.flops_per_s is None and record.flops_uncounted == ""


def test_a_fourth_searcher_obeys_a_10s_budget_to_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each training step "taking" 20 ms (a trial of 5 epochs about 4 s): two trials complete, the one running at
    the deadline stops at its next step, and the search ends there."""
    from bench.datasets import load_data
    from tests.bench.search_fake import TinyRandomSearch

    clock = StepClock(step_s=0.02).install(monkeypatch)
    system = TinyRandomSearch()
    result, ctx, rows = run_search(system, "10s", load_data("digits"), tmp_path, dataset="digits", seed=0)
    extras = result.extras
    assert system.budget_scope() == "search"
    assert 0 <= extras["overshoot_s"] <= clock.step_s
    assert 10 <= extras["search_s"] <= result.fit_s <= 10 + clock.step_s
    assert result.trials == len(rows) >= 3
    assert [r["status"] for r in rows[:-1]] == ["completed"] * (len(rows) - 1) and rows[-1]["status"] == "stopped"
    assert not any(r["error"] for r in rows)  # stopped at a step's end: no trial needed the watchdog
    assert_no_tuner_files(ctx)


def test_one_trial_time_model_predicts_trials_and_refits() -> None:
    times = TrialTimes(overhead_s={"a": 2.0, "b": 1.0}, epoch_s={"a": 3.0, "b": 5.0})
    assert times.least_s(2) == 1.0 + 3.0 * 2
    assert times.refit_s("a", 2.5) > times.refit_s("a", 2) > 2.0 + 3.0 * 2
    assert times.refit_s("unseen", 10) == 0.0


def test_a_hard_stop_follows_a_deadline_that_moves_while_the_trial_runs() -> None:
    """A trial started before the refit reserve was known is stopped at the deadline as it stands later (the
    reserve grows; a worker hears the chief's)."""
    import time

    from bench.systems.search.stop import DeadlineInterrupt, HardStop

    deadline: list[float | None] = [None]  # no deadline yet, then one far off, then one already past
    hard_stop = HardStop(lambda: deadline[0])
    started = time.monotonic()
    with pytest.raises(DeadlineInterrupt), hard_stop:
        while time.monotonic() - started < 30:
            elapsed = time.monotonic() - started
            deadline[0] = None if elapsed < 0.6 else (started + 3600 if elapsed < 1.2 else started + 1.2)
            time.sleep(0.01)
    assert hard_stop.fired and 1.2 <= time.monotonic() - started < 10


def test_a_hard_stop_ends_cleanly_under_a_trace_function_and_no_interrupt_lands_after_it() -> None:
    """Under coverage, a debugger or a profiler (a trace function set), the stop still ends its block, and no
    interrupt raised before the block's end arrives after it. In a child process: a hang must fail, not hang."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys, threading, time
        from bench.systems.search.stop import DeadlineInterrupt, HardStop

        def trace(*args):
            return trace

        sys.settrace(trace)
        threading.settrace(trace)
        for _ in range(3):
            started = time.monotonic()
            try:
                with HardStop(lambda: started + 0.5):
                    while time.monotonic() - started < 30:
                        time.sleep(0.01)
            except DeadlineInterrupt:
                pass
            end = time.monotonic() + 1.2  # more than two of the watchdog's polls
            while time.monotonic() < end:
                time.sleep(0.01)
        print("clean")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "clean", done.stderr[-2000:]
