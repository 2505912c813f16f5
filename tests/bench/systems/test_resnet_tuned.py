"""resnet-tuned: its search space around the recipe, its budgets (within the allowed overshoot), trials.csv, cleanup,
and the refit's deadline."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.baselines.training import validation_split
from bench.core.budget import parse_budget
from bench.core.options import ConfigError
from bench.datasets import load_data
from bench.datasets.base import ImageData
from bench.measure import flops
from bench.systems import FitContext, SystemResult, make_system, system_class
from bench.systems import resnet_tuned_space as space
from bench.systems.resnet_tuned import HYPERBAND_FACTOR, TUNABLE_RECIPES, TrialTimes
from bench.systems.search import SearchLog
from bench.systems.search.budget import REFIT_SAFETY, allowed_overshoot_s
from bench.systems.search.log import NoCompletedTrial
from tests.bench.systems.searches import (
    StepClock,
    accuracy,
    assert_no_tuner_files,
    learnt,
    majority_rate,
    run_search,
    trial_rows,
)


def _run(budget: str, data: ImageData, tmp_path: Path, **kwargs: Any
         ) -> tuple[SystemResult, FitContext, list[dict[str, str]]]:
    """Runs resnet-tuned (`system`, else one made with the options) on digits as the harness does."""
    return run_search(kwargs.pop("system", "resnet-tuned"), budget, data, tmp_path, dataset="digits", seed=0,
                      **kwargs)


def test_import_is_cheap() -> None:
    """Listing systems must not import Keras or keras-tuner."""
    code = ("import sys, bench.systems.resnet_tuned; "
            "assert not {'keras', 'keras_tuner', 'tensorflow'} & set(sys.modules), 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registered_as_an_automl_contender_wrapping_keras_tuner() -> None:
    cls = system_class("resnet-tuned")
    assert (cls.role, cls.library) == ("automl", "keras-tuner")
    assert cls.library_version()  # installed with Auto-Keras


@pytest.mark.parametrize(("options", "message"), [
    ({"recipe": "resnet2019"}, "untunable recipe 'resnet2019'; valid: auto, cifar10"),
    ({"recipe": "vgg"}, "unknown or untunable recipe"),
    ({"budget_scope": "refit"}, "budget_scope must be one of total, search"),
    ({"epochs": 3}, "unknown option"),
])
def test_bad_options_name_the_problem(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_system("resnet-tuned", options)


@pytest.mark.parametrize("recipe_name", TUNABLE_RECIPES)
def test_the_space_is_centred_on_the_recipe_and_its_defaults_are_the_recipe(recipe_name: str) -> None:
    """Every range holds the recipe's value as its default, so the first trial is the recipe as written."""
    system = make_system("resnet-tuned", {"recipe": recipe_name})
    recipe = system.base_recipe("cifar10")
    hp = space.search_space(recipe)
    by_name = {p.name: p for p in hp.space}
    assert set(by_name) == {space.PEAK_LR, space.WEIGHT_DECAY, space.LABEL_SMOOTHING, space.WIDTH, space.BATCH_SIZE}
    lr, wd = by_name[space.PEAK_LR], by_name[space.WEIGHT_DECAY]
    assert (lr.min_value, lr.max_value) == pytest.approx((recipe.peak_lr / space.LR_SPAN,
                                                          recipe.peak_lr * space.LR_SPAN))
    assert (wd.min_value, wd.max_value) == pytest.approx((recipe.weight_decay / space.WD_SPAN,
                                                          recipe.weight_decay * space.WD_SPAN))
    assert by_name[space.BATCH_SIZE].values == [recipe.batch_size // 2, recipe.batch_size, recipe.batch_size * 2]
    assert hp.values == {space.PEAK_LR: recipe.peak_lr, space.WEIGHT_DECAY: recipe.weight_decay,
                         space.LABEL_SMOOTHING: recipe.label_smoothing, space.WIDTH: 1.0,
                         space.BATCH_SIZE: recipe.batch_size}
    # The defaults at the recipe's epochs are the recipe itself: same numbers, same network builder.
    same = space.configured(recipe, hp.values, recipe.epochs)
    assert dataclasses.replace(same, name=recipe.name) == recipe


def test_a_configuration_changes_only_the_searched_numbers_and_the_width() -> None:
    recipe = make_system("resnet-tuned").base_recipe("malaria")
    values = {space.PEAK_LR: 0.3, space.WEIGHT_DECAY: 1e-3, space.LABEL_SMOOTHING: 0.0, space.WIDTH: 0.5,
              space.BATCH_SIZE: 64}
    tuned = space.configured(recipe, values, 4)
    assert (tuned.peak_lr, tuned.weight_decay, tuned.label_smoothing, tuned.batch_size, tuned.epochs) == (
        0.3, 1e-3, 0.0, 64, 4)
    kept = ("augment", "tta_flip", "tta_translate", "val_fraction", "warmup_epochs", "momentum", "nesterov")
    assert all(getattr(tuned, f) == getattr(recipe, f) for f in kept)
    narrow = tuned.build((64, 64, 3), 2)
    assert narrow.get_layer("stem_conv").filters == recipe.build((64, 64, 3), 2).get_layer("stem_conv").filters // 2


def test_trial_times_predict_a_trial_and_the_refit_from_measured_seconds() -> None:
    times = TrialTimes()
    assert times.least_s(4) is None and times.refit_s("0", 30) == 0.0
    times.note("0", 10.0, [2.0, 2.0])  # 2 s an epoch of steps, 6 s of the rest
    # The first epoch (tracing) took 7 s, the later ones 3 s: 3 s an epoch, 20 - 9 = 11 s of the rest.
    times.note("1", 20.0, [7.0, 3.0, 3.0])
    times.note("2", 5.0, [4.0])  # one epoch: all it tells
    times.note("3", 5.0, [])  # nothing trained: nothing learnt
    assert times.epoch_s == pytest.approx({"0": 2.0, "1": 3.0, "2": 4.0})
    assert times.least_s(4) == pytest.approx(1.0 + 2.0 * 4)
    # A trial scores after its fixed cost and one steady epoch, which is its build and first epoch.
    assert times.quickest_score_s() == pytest.approx(min(6.0 + 2.0, 11.0 + 3.0, 1.0 + 4.0))
    assert times.refit_s("1", 30) == pytest.approx(REFIT_SAFETY * (11.0 + 3.0 * 30))


def test_the_refit_ends_at_the_budget_under_total_and_has_no_deadline_under_search() -> None:
    times = TrialTimes()
    times.note("0", 10.0, [2.0, 2.0])
    now = time.monotonic()
    total = make_system("resnet-tuned")
    total._log = SearchLog(t0=now, deadline=now + 100.0, scope="total", overshoot_allowed_s=30.0)
    assert total._refit_deadline(times, "0") == pytest.approx(now + 100.0)
    total._log.deadline = now - 5.0  # the search ran late: one epoch more, within the allowed overshoot
    assert total._refit_deadline(times, "0") == pytest.approx(time.monotonic() + REFIT_SAFETY * 8.0, abs=0.5)
    total._log.deadline = now - 29.0
    assert total._refit_deadline(times, "0") == pytest.approx(now + 1.0)
    searched = make_system("resnet-tuned", {"budget_scope": "search"})
    searched._log = SearchLog(t0=now, deadline=now + 100.0, scope="search")
    assert searched._refit_deadline(times, "0") is None


@pytest.mark.slow
def test_a_fresh_session_between_trials_keeps_the_precision_policy_the_harness_set() -> None:
    import keras

    from bench.systems.resnet_tuned import _fresh_session

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        _fresh_session()
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy(before)


@pytest.fixture(scope="module")
def small_digits() -> ImageData:
    return load_data("digits", max_train=400, max_test=200)


def _first_rung_epochs(max_epochs: int) -> int:
    """The epochs keras-tuner's Hyperband gives the first rung of its first (most aggressive) bracket."""
    import keras_tuner

    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=max_epochs, factor=HYPERBAND_FACTOR)
    return oracle._get_epochs(oracle._get_num_brackets() - 1, 0)


def test_trial_budget_runs_that_many_hyperband_trials_first_the_recipe(small_digits: ImageData,
                                                                       tmp_path: Path) -> None:
    """t3: three trials on Hyperband's first rung, the first the recipe as written; each trains exactly its
    rung's epochs (no deadline: nothing compresses or stretches it), then the best is refit for the recipe's
    schedule; with keep_models only the refit model is kept. val_accuracy is the refit's last epoch's, and
    search_val_accuracy the best trial's."""
    system = make_system("resnet-tuned")
    result, ctx, rows = _run("t3", small_digits, tmp_path, keep_models=True, system=system)
    recipe = system.base_recipe("digits")
    assert result.trials == len(rows) == 3
    assert [r["status"] for r in rows] == ["completed"] * 3
    assert {int(r["epochs"]) for r in rows} == {_first_rung_epochs(recipe.epochs)}
    assert rows[0]["summary"] == space.summary({**space.search_space(recipe).values, space.EPOCHS: rows[0]["epochs"]})
    extras = result.extras
    assert extras["overshoot_s"] is None and extras["refit_reserved_s"] is not None
    assert extras["refit_epochs"] == recipe.epochs and not extras["refit_stopped_at_deadline"]
    assert extras["search_val_accuracy"] == pytest.approx(max(float(r["val_accuracy"]) for r in rows), abs=1e-6)
    assert extras["val_accuracy"] == pytest.approx(system._refit.history["val_accuracy"].iloc[-1])
    assert extras["search_s"] + extras["refit_s"] <= result.fit_s + 0.5
    assert set(extras["best_hyperparameters"]) == {space.PEAK_LR, space.WEIGHT_DECAY, space.LABEL_SMOOTHING,
                                                    space.WIDTH, space.BATCH_SIZE}
    assert learnt(accuracy(result, small_digits), len(small_digits.y_test), majority_rate(small_digits))
    assert_no_tuner_files(ctx)
    # FLOPs: the first trial is the recipe's network for its rung's steps (no deadline, so no probe); the run's
    # are every trial's plus the refit's, and one forward pass of the refit model per test image.
    forward = flops.count(recipe.build(small_digits.x_train.shape[1:], small_digits.n_classes)).forward
    split = len(validation_split(small_digits.y_train, recipe.val_fraction, 0)[0])
    first_examples = int(rows[0]["epochs"]) * (split // recipe.batch_size) * recipe.batch_size
    assert float(rows[0]["train_flops"]) == pytest.approx(3 * forward * first_examples, rel=1e-5)
    refit = system._refit
    refit_forward = flops.count(refit.model).forward
    assert extras["train_flops"] == pytest.approx(sum(float(r["train_flops"]) for r in rows)
                                                  + 3 * refit_forward * refit.examples_trained, rel=1e-5)
    assert extras["predict_flops"] == refit_forward * len(small_digits.y_test) * refit.view_count
    assert extras["flops_uncounted"] == ""


def test_no_trial_starts_that_the_search_time_left_could_not_train(small_digits: ImageData, tmp_path: Path) -> None:
    """Earlier trials took 500 s an epoch; with a minute of search left the next is not started, and the
    search ends saying why."""
    import keras_tuner

    from bench.systems.resnet_tuned import _make_tuner

    now = time.monotonic()
    slog = SearchLog(t0=now, deadline=now + 60.0, scope="total")
    times = TrialTimes()
    times.note("earlier", 1000.0, [500.0, 500.0])
    ctx = FitContext(budget=parse_budget("1m"), seed=0, workdir=tmp_path, run_dir=tmp_path,
                     n_classes=small_digits.n_classes, class_names=small_digits.class_names, dataset="digits",
                     deadline=slog.deadline)
    recipe = make_system("resnet-tuned").base_recipe("digits")
    tuner = _make_tuner(keras_tuner, slog, times, recipe, ctx, iterations=1, directory=tmp_path / "keras-tuner")
    tuner.search(small_digits.x_train, small_digits.y_train)
    assert "not started" in tuner.not_started and "at least 1000.0s" in tuner.not_started
    assert slog.rows == [] and tuner.best_trial() is None


def test_a_budget_too_short_for_one_epoch_fails_naming_the_fix(small_digits: ImageData, tmp_path: Path) -> None:
    with pytest.raises(NoCompletedTrial, match="no epoch finished before the deadline.*larger budget"):
        _run("5s", small_digits, tmp_path, deadline=time.monotonic())
    (row,) = trial_rows(tmp_path / "run")
    assert (row["status"], row["val_accuracy"], row["epochs"]) == ("stopped", "", "0")


# The refit of the recipe's whole schedule makes this the slowest run of the file; the rules it checks are the
# refit's missing deadline under 'search' (test_the_refit_ends_at_the_budget_under_total_and_has_no_deadline_under_
# search), the search package's scope 'search' (autokeras' step-clock run) and the undeadlined refit (the t3 run).
@pytest.mark.slow
def test_a_search_budget_bounds_the_search_and_the_refit_trains_the_recipe_schedule_after_it(
        small_digits: ImageData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """budget_scope 'search' (the 2019 protocol, the paper suite's), each training step "taking" a quarter of a
    second: the search ends by the running trial's next step past the budget, then the best configuration trains
    the recipe's whole schedule, timed apart."""
    clock = StepClock(step_s=0.25).install(monkeypatch)
    result, ctx, rows = _run("20s", small_digits, tmp_path, budget_scope="search")
    extras = result.extras
    assert 0 <= extras["overshoot_s"] <= clock.step_s  # the step that crossed the deadline, no more
    # It ends at the deadline, or before it where the next trial could not have trained in the time left.
    assert extras["search_s"] <= 20 + clock.step_s
    assert not any(r["error"] for r in rows)
    assert extras["refit_reserved_s"] is None and extras["refit_s"] > 0
    assert extras["refit_epochs"] == make_system("resnet-tuned").base_recipe("digits").epochs
    assert not extras["refit_stopped_at_deadline"]
    assert extras["search_s"] + extras["refit_s"] <= result.fit_s + 0.5
    assert result.trials == len(rows) >= 1
    assert learnt(accuracy(result, small_digits), len(small_digits.y_test), majority_rate(small_digits))
    assert_no_tuner_files(ctx)


def _assert_total_budget_kept(result: SystemResult, rows: list[dict[str, str]], budget_s: float) -> None:
    """Search and refit end within the allowed overshoot of the budget, the search leaves room for the refit,
    and no trial's deadline stretched it beyond its rung."""
    extras = result.extras
    allowed = allowed_overshoot_s(budget_s)
    assert result.fit_s <= budget_s + allowed
    assert 0 <= extras["overshoot_s"] <= allowed
    assert extras["refit_reserved_s"] > 0 and extras["refit_s"] > 0
    assert extras["search_s"] < budget_s  # the search left room for the refit
    assert extras["search_s"] + extras["refit_s"] <= result.fit_s + 0.5
    assert result.trials == len(rows) >= 1
    assert all(float(r["ended_s"]) <= extras["search_s"] + 0.5 for r in rows)
    # The search's deadline may shorten a trial's schedule, never stretch it beyond its rung.
    assert all(int(r["epochs"]) <= int(r["summary"].rsplit("epochs=", 1)[1]) for r in rows)


@pytest.mark.slow
def test_a_total_budget_bounds_search_and_refit_together(small_digits: ImageData, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Scope 'total' over 60 s, each training step "taking" a quarter of a second: the search stops early enough
    for the refit it predicts, the refit ends at the budget's end at the latest (one step past it), and the
    result beats the floor."""
    clock = StepClock(step_s=0.25).install(monkeypatch)
    result, ctx, rows = _run("60s", small_digits, tmp_path)
    _assert_total_budget_kept(result, rows, 60)
    assert result.extras["overshoot_s"] <= clock.step_s
    assert learnt(accuracy(result, small_digits), len(small_digits.y_test), majority_rate(small_digits))
    assert_no_tuner_files(ctx)


@pytest.mark.slow  # about a minute of real training; the same rules are checked on a step clock above
def test_a_total_budget_on_digits_bounds_search_and_refit_together(tmp_path: Path) -> None:
    """The overshoot bound on real data and real time: on digits under 40 s (scope 'total'), search and refit end
    within the allowed overshoot of the budget, trials are written, no tuner files are left, and the result beats the
    floor."""
    digits = load_data("digits")
    result, ctx, rows = _run("40s", digits, tmp_path)
    _assert_total_budget_kept(result, rows, 40)
    assert learnt(accuracy(result, digits), len(digits.y_test), majority_rate(digits))
    assert_no_tuner_files(ctx)
