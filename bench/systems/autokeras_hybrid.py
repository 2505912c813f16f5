"""`autokeras-hybrid`: search small, then build deeper and train like an expert (the 2019 article's middle path).

The article that ran Auto-Keras against a hand-built ResNet recommends a hybrid: run the architecture search on a
much smaller subset of the training data, take the building blocks it finds, define a deeper version by hand and
train that on the full set. This system measures that claim in three phases: the `autokeras` search on a
stratified subset (no refit), the best architecture made deeper by rule (scale_up.py), and that network trained on
all the data with the recipe the `resnet` system would run (baselines.training.train). Its budgets, records and
defaults, with the reasons for them: docs/method.md, "The contenders".
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bench.baselines.keras_support import seed_everything
from bench.core import rundir
from bench.measure.flops import Spent
from bench.systems.autokeras import LIBRARY_MAX_TRIALS, PROJECT_FOLDER, VERBOSE, AutoKeras, targets, validation_tail
from bench.systems.autokeras_search import SearchComplete, summarize_hyperparameters
from bench.systems.base import FitContext
from bench.systems.scale_up import (
    SCALABLE_BLOCK_TYPES,
    WIDTH_FACTOR,
    Architecture,
    build_model,
    found_architecture,
    scale_up,
)
from bench.systems.search import max_trials

# Share of the training set the search sees (stratified): the article's "much smaller subset" (docs/method.md).
SUBSET_FRACTION = 0.15
# The subset holds at least this many images a class, so Auto-Keras' validation fifth has a few of each.
MIN_SUBSET_PER_CLASS = 20
# Share of a wall-clock budget (scope 'total') the search may use; the scaled network trains in the rest.
SEARCH_SHARE = 1 / 3
# Images whose pixels give the per-channel mean and std when the found network normalises (plenty for 3
# numbers a channel; the whole of CIFAR-10 in float64 would take 1.2 GB).
NORM_SAMPLE = 10_000
# In the run's resume folder, beside the search's tuner project: the scaled network's per-epoch checkpoint.
TRAINING_FOLDER = "training"


class AutoKerasHybrid(AutoKeras):
    """Auto-Keras searches a subset; its best network, made deeper by rule, trains on all data like a baseline.
    A killed run continues: the search from its last finished trial (SearchSystem.resumes), the scaled network's
    training from its last epoch (baselines/checkpoint.py, as `resnet`)."""

    name: ClassVar[str] = "autokeras-hybrid"
    description: ClassVar[str] = ("Auto-Keras 3 search on a stratified subset, best architecture scaled deeper "
                                  "by rule and trained on all data with the resnet recipe's practice")

    @dataclass(frozen=True)
    class Options(AutoKeras.Options):
        """The `autokeras` options for the search, the subset it sees, and the width of the scaled network."""

        subset_fraction: float = SUBSET_FRACTION
        width_factor: float = WIDTH_FACTOR

        def __post_init__(self) -> None:
            super().__post_init__()
            if not 0 < self.subset_fraction <= 1:
                raise ValueError(f"subset_fraction must be in (0, 1], got {self.subset_fraction}")
            if self.width_factor <= 0:
                raise ValueError(f"width_factor must be positive, got {self.width_factor}")
            unknown = [b for b in self.block_types if b not in SCALABLE_BLOCK_TYPES]
            if unknown:
                raise ValueError(f"block_types {', '.join(unknown)} cannot be scaled up by the hybrid's rule; "
                                 f"use some of {', '.join(SCALABLE_BLOCK_TYPES)}")

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._trained: Any = None
        self._found: Architecture | None = None
        self._scaled: Architecture | None = None
        self._subset_size = 0
        self._train_deadline: float | None = None
        self._best_values: dict[str, Any] | None = None

    def subset(self, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The search's stratified, shuffled share of the training set."""
        from sklearn.model_selection import train_test_split

        n_classes = len(np.unique(y))
        size = max(round(self.options.subset_fraction * len(y)), MIN_SUBSET_PER_CLASS * n_classes)
        if size >= len(y):
            order = np.random.default_rng(seed).permutation(len(y))
            return x[order], y[order]
        xs, _, ys, _ = train_test_split(x, y, train_size=size, stratify=y, random_state=seed)
        return xs, ys

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        """Searches the subset, scales the best architecture up, trains it on all of x; tuner files deleted."""
        t0 = time.monotonic()  # the search's clock includes importing and setting up Auto-Keras
        import autokeras as ak

        seed_everything(ctx.seed)
        xs, ys = self.subset(x, y, ctx.seed)
        self._subset_size = len(ys)
        # The log's own scope is 'search': its deadline is the search phase's end, with no refit to reserve.
        self._predicted = 0
        with self.searching(ctx, t0, PROJECT_FOLDER, scope="search",
                            trial_epoch_examples=validation_tail(len(ys), self.options.validation_fraction)) as log:
            deadline = log.deadline
            if deadline is not None and self.options.budget_scope == "total":
                # From the log's start, which a continued search moves back by the earlier attempts' fit time.
                log.deadline = log.t0 + SEARCH_SHARE * (deadline - log.t0)
            trials = max_trials(ctx.budget, LIBRARY_MAX_TRIALS)
            model = self._auto_model(ak, self.tuner(log, refit=False), ctx, trials)
            # The tuner ends the search with SearchComplete where Auto-Keras would refit.
            with contextlib.suppress(SearchComplete):
                model.fit(xs, targets(ys, ctx.n_classes), batch_size=self.options.batch_size,
                          validation_split=self.options.validation_fraction, verbose=VERBOSE, **self._fit_args())
            self._best_values = model.tuner.best_values
        if self._best_values is None:
            raise RuntimeError("the search ended without handing on a best trial")
        self._found = found_architecture(self._best_values)
        self._scaled = scale_up(self._found, x.shape[1:], self.options.width_factor)
        self._train(x, y, ctx, deadline if self.options.budget_scope == "total" else None)

    def _train(self, x: np.ndarray, y: np.ndarray, ctx: FitContext, deadline: float | None) -> None:
        """Trains the scaled network on all of x with the recipe the `resnet` system would run here."""
        from bench.baselines.training import train
        from bench.systems.resnet import ResNet

        if deadline is not None and deadline <= time.monotonic():
            raise RuntimeError(f"{self.name}: the search ended {time.monotonic() - deadline:.1f} s past the budget, "
                               "leaving no time to train the scaled network; give a larger budget")
        left = None if deadline is None else deadline - time.monotonic()
        recipe = ResNet().make_recipe(ctx.dataset, left)
        scaled = self._scaled
        assert scaled is not None
        mean = std = None
        if scaled.normalize:
            sample = x[np.random.default_rng(ctx.seed).permutation(len(x))[:NORM_SAMPLE]] / 255.0
            mean, std = sample.mean(axis=(0, 1, 2)).tolist(), sample.std(axis=(0, 1, 2)).tolist()
            std = [max(s, 1e-3) for s in std]  # a constant channel would divide by zero

        def build(input_shape: tuple[int, int, int], n_classes: int) -> Any:
            return build_model(scaled, input_shape, n_classes, mean, std)

        recipe = dataclasses.replace(recipe, name=f"hybrid-{recipe.name}", build=build, prepare=None,
                                     jit_compile=False)
        self._train_deadline = deadline
        history_path = ctx.run_dir / rundir.HISTORY
        started = time.monotonic()
        saving = self.continuing(ctx)
        self._trained = train(recipe, x, y, ctx.n_classes, seed=ctx.seed, deadline=deadline,
                              history_path=history_path,
                              checkpoint_dir=ctx.resume.checkpoint_dir / TRAINING_FOLDER if saving else None,
                              on_checkpoint=ctx.resume.checkpointed if saving else None)
        assert self._log is not None
        self._log.refit_end = time.monotonic()  # the training is this system's refit
        if self._trained.history.empty:
            raise RuntimeError(f"{self.name}: no time was left to train the scaled network a single epoch; "
                               "give a larger budget")
        # The history's clock counts from the start of fit, so the report's time-to-accuracy curves put this
        # training after the search that preceded it (train() counts from its own start).
        history = self._trained.history
        history.assign(fit_s=history["fit_s"] + self._log.since_start(started)).to_csv(history_path, index=False)
        if ctx.keep_models:
            self._trained.model.save(ctx.run_dir / rundir.MODEL)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities from the trained scaled network, with its recipe's test-time augmentation."""
        if self._trained is None:
            raise RuntimeError(f"{self.name}: call fit() before predict_proba()")
        self._predicted = len(x) * self._trained.view_count
        return self._trained.predict_proba(x)

    def params(self) -> int | None:
        """Weights of the scaled network."""
        return None if self._trained is None else self._trained.params

    def budget_end(self) -> float | None:
        """Under 'total' the training's deadline (the budget's end), under 'search' the search's."""
        if self.options.budget_scope == "total":
            return self._train_deadline
        return None if self._log is None else self._log.deadline

    def refit_spent(self) -> Spent:
        """The scaled network's training (every image of its steps) and its test-time views of the test set."""
        t = self._trained
        return Spent() if t is None else Spent.of(t.model, t.examples_trained, self._predicted)

    def refit_extras(self) -> dict[str, Any]:
        """val_accuracy (the scaled network's last epoch on the recipe's validation slice: the model that
        predicts), the subset, the found and scaled architectures, the training's outcome."""
        best = self._best_values
        out: dict[str, Any] = {
            "val_accuracy": None,
            "subset_size": self._subset_size,
            "best_trial": None if best is None else summarize_hyperparameters(best),
        }
        if self._found is not None and self._scaled is not None:
            out.update(found_architecture=self._found.summary(), scaled_architecture=self._scaled.summary(),
                       found_spec=self._found.as_dict(), scaled_spec=self._scaled.as_dict())
        t = self._trained
        if t is not None:
            out.update(val_accuracy=t.val_accuracy, recipe=t.recipe.name, epochs=len(t.history),
                       epochs_trained=t.epochs_trained, examples_trained=t.examples_trained,
                       epochs_planned=t.epochs_planned,
                       stopped_at_deadline=t.stopped_at_deadline)
        return out
