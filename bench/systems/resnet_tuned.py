"""`resnet-tuned`: KerasTuner's Hyperband searching the hand-built recipe's own hyperparameters.

The middle contender between `resnet` (the expert's recipe as written) and `autokeras` (an architecture search):
it keeps the recipe `resnet` picks for the data set and budget, its training loop (baselines.training.train) and
its test-time augmentation, and searches only the numbers an expert would tune (resnet_tuned_space.py: peak LR,
weight decay, label smoothing, width, batch size; epochs are Hyperband's resource), starting from the recipe as
written. Why Hyperband, how rungs train, how validation, refit and budgets work: docs/method.md, "The contenders".
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.core import rundir
from bench.measure.flops import Spent
from bench.systems.base import FitContext
from bench.systems.budget_options import SearchOptions
from bench.systems.resnet import RECIPES, ResNet
from bench.systems.search import (
    BudgetedTuner,
    SearchLog,
    SearchSystem,
    TrialTimes,
    budgeted,
    refit_stop_at,
)

logger = logging.getLogger(__name__)

# Hyperband's reduction factor: each rung keeps the best third for three times the epochs (Li et al.'s
# recommended 3, and keras-tuner's default).
HYPERBAND_FACTOR = 3
# Complete Hyperband iterations (every bracket once) under the `full` budget: one is the algorithm as
# published (docs/method.md counts its trials per recipe).
FULL_ITERATIONS = 1
# Iterations under a wall-clock or trial budget: the deadline or the trial count ends the search long before.
UNBOUNDED_ITERATIONS = 1000
# The objective every trial reports: accuracy on train()'s validation slice after the schedule's last epoch.
OBJECTIVE = "val_accuracy"
# Recipes whose build takes a width multiplier (resnet2019 is a fixed reference network, not a recipe to tune).
TUNABLE_RECIPES = tuple(name for name in RECIPES if name != "resnet2019")
# Folder under ctx.workdir for keras-tuner's project (trial.json files, no models), deleted after every run.
PROJECT_FOLDER = "keras-tuner"
# keras-tuner's console output during the search: one summary per trial, readable in log.txt.
VERBOSE = 1
# Share of the allowed overshoot the refit may run past the budget's end when the search ended too late for one
# epoch: all of it, as `resnet` gets its deadline; train() checks it after every step and nothing follows the
# refit but predicting (a Keras fit cut at its next batch keeps a margin: search.budget.REFIT_GRACE_SHARE).
RECIPE_REFIT_GRACE_SHARE = 1.0


class RecipeTrials(BudgetedTuner):
    """BudgetedTuner whose trials are train() of the recipe with the trial's values, for its rung's epochs."""

    def __init__(self, *args: Any, times: TrialTimes, base_recipe: Any, ctx: FitContext, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times = times  # the log's own in a run
        self.base_recipe, self.ctx = base_recipe, ctx

    def summarize(self, trial: Any) -> str:
        from bench.systems import resnet_tuned_space as space

        return space.summary(trial.hyperparameters.values)

    def refit_epochs(self, trial: Any) -> int:
        """The refit trains the recipe's own schedule."""
        return self.base_recipe.epochs

    def run_trial(self, trial: Any, x: np.ndarray, y: np.ndarray, **_search_kwargs: Any) -> dict[str, float]:
        """Trains the trial's configuration for its rung; search()'s own arguments (verbose) are not ours."""
        import keras_tuner as kt

        from bench.baselines.training import train
        from bench.systems import resnet_tuned_space as space

        values = trial.hyperparameters.values
        epochs = int(values[space.EPOCHS])
        end = self.search_log.search_deadline()
        least = self.times.least_s(epochs)
        if end is not None and least is not None and time.monotonic() + least > end:
            self.skip(trial, f"trial {trial.trial_id} ({epochs} epochs, at least {least:.1f}s) not started: "
                             f"{max(0.0, end - time.monotonic()):.1f}s of search left")
        outcome = self.outcomes[trial.trial_id]
        hard_stop = self.hard_stop()
        _fresh_session()
        t0 = time.monotonic()
        try:
            with hard_stop:
                # max_scale_up=1: a rung's epochs are the resource searched, never stretched to the deadline.
                rung = dataclasses.replace(space.configured(self.base_recipe, values, epochs), max_scale_up=1.0)
                trained = train(rung, x, y, self.ctx.n_classes, seed=self.ctx.seed, deadline=end)
        except Exception as exc:
            if hard_stop.fired:
                self.interrupted(trial, None)
            else:
                outcome.error = rundir.error_text(exc)
            raise kt.errors.FailedTrialError(outcome.error) from exc
        epochs_s = np.diff(trained.history["fit_s"].to_numpy(dtype=float), prepend=0.0)  # fit_s is cumulative
        self.times.note(trial.trial_id, time.monotonic() - t0, list(epochs_s))
        outcome.spent = Spent.of(trained.model, trained.examples_trained)
        outcome.epochs = len(trained.history)
        # A schedule the deadline compressed (or cut) is not the rung's: marked, still scored.
        outcome.stopped = trained.stopped_at_deadline or trained.epochs_planned < epochs
        if trained.val_accuracy is None:
            outcome.error = "no epoch finished before the deadline"
            raise kt.errors.FailedTrialError(outcome.error)
        return {OBJECTIVE: trained.val_accuracy}


def _make_tuner(kt: Any, slog: SearchLog, times: TrialTimes, base_recipe: Any, ctx: FitContext,
                iterations: int, directory: Path, overwrite: bool = True) -> Any:
    """A keras_tuner.Tuner whose trials are the recipe's own training (train()) under slog's deadlines, driven
    by keras-tuner's Hyperband oracle whose first trial is the recipe as written; its project folder is under
    `directory` (overwrite False: it reloads what is there)."""
    from bench.systems import resnet_tuned_space as space

    class RecipeFirstHyperband(kt.oracles.HyperbandOracle):
        """Hyperband whose first trial is the recipe as written (the space's defaults)."""

        def _random_values(self) -> dict[str, Any] | None:
            if not self.trials:
                return dict(self.hyperparameters.values)
            return super()._random_values()

    oracle = RecipeFirstHyperband(
        objective=kt.Objective(OBJECTIVE, "max"), max_epochs=base_recipe.epochs, factor=HYPERBAND_FACTOR,
        hyperband_iterations=iterations, seed=ctx.seed, hyperparameters=space.search_space(base_recipe),
        allow_new_entries=False, tune_new_entries=False)
    if ctx.budget.trials is not None:
        oracle.max_trials = ctx.budget.trials
    return budgeted(kt.Tuner, RecipeTrials)(
        oracle=oracle, directory=str(directory), project_name="search", overwrite=overwrite,
        search_log=slog, times=times, base_recipe=base_recipe, ctx=ctx)


def _fresh_session() -> None:
    """Drops the previous trial's graphs and layer names (Keras' global state grows with every model built, as
    keras-tuner's own trials clear it too), keeping the dtype policy the harness set, which clear_session() would
    reset to float32; train() seeds everything again itself."""
    import keras

    policy = keras.config.dtype_policy()
    keras.backend.clear_session()
    keras.config.set_dtype_policy(policy)


class ResNetTuned(SearchSystem):
    """The hand-built recipe with its hyperparameters searched by Hyperband (keras-tuner) for the data set."""

    name: ClassVar[str] = "resnet-tuned"
    description: ClassVar[str] = ("the hand-built ResNet recipe with LR, weight decay, label smoothing, width and "
                                  "batch size searched by Hyperband (keras-tuner); best refit as `resnet` trains")
    library: ClassVar[str] = "keras-tuner"

    @dataclass(frozen=True)
    class Options(SearchOptions):
        """Which recipe to search around, and the budget options every searcher has."""

        # 'auto' picks the recipe as `resnet` does (by data set and budget), or name one of TUNABLE_RECIPES.
        recipe: str = "auto"

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.recipe != "auto" and self.recipe not in TUNABLE_RECIPES:
                raise ValueError(f"unknown or untunable recipe {self.recipe!r}; valid: auto, "
                                 f"{', '.join(TUNABLE_RECIPES)}")

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._refit: Any = None
        self._best: dict[str, Any] = {}
        self._not_started = ""
        self._predicted = 0  # forward passes predict_proba made, test-time views included

    def base_recipe(self, dataset: str, budget_s: float | None = None) -> Any:
        """The recipe `resnet` would train here (baselines.training.Recipe), which the search starts from."""
        return ResNet({"recipe": self.options.recipe}).make_recipe(dataset, budget_s)

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        """Searches within ctx.budget, then refits the best configuration; keras-tuner's files are deleted after."""
        t0 = time.monotonic()  # the search's clock includes importing and setting up keras-tuner
        import keras_tuner as kt

        from bench.baselines.training import train
        from bench.systems import resnet_tuned_space as space

        budget = ctx.budget
        recipe = self.base_recipe(ctx.dataset, budget.seconds)
        y = np.asarray(y, dtype=np.int64)
        with self.searching(ctx, t0, PROJECT_FOLDER) as slog:
            iterations = FULL_ITERATIONS if budget.seconds is None and budget.trials is None else UNBOUNDED_ITERATIONS
            tuner = _make_tuner(kt, slog, slog.times, recipe, ctx, iterations, self.tuner_dir(ctx, PROJECT_FOLDER),
                                self.overwrite(ctx))
            tuner.search(x, y, verbose=VERBOSE)
            slog.search_end = time.monotonic()
            self._not_started = tuner.not_started
            best = tuner.best_trial()
            if best is None:
                raise slog.no_completed_trial(self.name)
            self._best = space.searched(best.hyperparameters.values)
            logger.info("best configuration (trial %s, val_accuracy %.4f): %s; refit for %d epochs", best.trial_id,
                     best.score, space.summary(best.hyperparameters.values), recipe.epochs)
            _fresh_session()
            self._refit = train(space.configured(recipe, best.hyperparameters.values, recipe.epochs), x, y,
                                ctx.n_classes, seed=ctx.seed, deadline=self._refit_deadline(slog.times, best.trial_id))
            slog.refit_end = time.monotonic()
            if ctx.keep_models:
                self._refit.model.save(ctx.run_dir / rundir.MODEL)

    def _refit_deadline(self, times: TrialTimes, best_id: str) -> float | None:
        """Under scope 'total' the budget's end, as `resnet` gets it; should the search have run so late that not
        one epoch fits, as much later as one epoch needs, within the allowed overshoot. Else none."""
        slog = self._log
        assert slog is not None
        if slog.deadline is None or self.options.budget_scope != "total":
            return None
        return refit_stop_at(slog.deadline, slog.overshoot_allowed_s, times.refit_s(best_id, 1),
                             RECIPE_REFIT_GRACE_SHARE)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities from the refit model, with the recipe's test-time augmentation."""
        if self._refit is None:
            raise RuntimeError(f"{self.name}: call fit() before predict_proba()")
        self._predicted = len(x) * self._refit.view_count
        return self._refit.predict_proba(x)

    def params(self) -> int | None:
        """All weights of the refit model."""
        return None if self._refit is None else self._refit.params

    def refit_spent(self) -> Spent:
        """The refit's training (every image of its steps) and its test-time views of the test set."""
        refit = self._refit
        return Spent() if refit is None else Spent.of(refit.model, refit.examples_trained, self._predicted)

    def refit_extras(self) -> dict[str, Any]:
        """val_accuracy (the refit's last epoch on train()'s validation slice: the model that predicts), the best
        configuration, why the search ended early, and the refit's schedule."""
        refit = self._refit
        return {
            "val_accuracy": None if refit is None else refit.val_accuracy,
            "best_hyperparameters": self._best,
            "search_ended_early": self._not_started,
            "recipe": None if refit is None else refit.recipe.name,
            "refit_epochs": None if refit is None else len(refit.history),
            "refit_epochs_trained": None if refit is None else refit.epochs_trained,
            "refit_epochs_planned": None if refit is None else refit.epochs_planned,
            "refit_stopped_at_deadline": None if refit is None else refit.stopped_at_deadline,
        }
