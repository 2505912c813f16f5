"""Hand-built baselines as a system: `resnet` (the recipe that suits the data set; `resnet-2019` is this
system with recipe=resnet2019, a variant in the registry).

The recipes live in baselines/ (one file each); this adapter picks one, hands it the run's budget, seed and
folder, and reports its history, validation accuracy and size. Keras is imported only when fitting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bench.core import rundir
from bench.core.budget import Budget
from bench.measure.flops import Spent
from bench.systems.base import FitContext, System

# recipe option -> (module in baselines/, preset)
RECIPES: dict[str, tuple[str, str]] = {
    "cifar10": ("cifar10", "full"),
    "cifar10-short": ("cifar10", "short"),
    "malaria": ("malaria", "fast"),
    "generic": ("generic", "default"),
    "resnet2019": ("resnet2019", "2019"),
}
# Data set name -> recipe under recipe="auto"; any other data set gets the generic recipe.
AUTO_RECIPE = {"cifar10": "cifar10", "malaria": "malaria"}
# Under recipe="auto", wall-clock budgets below this many seconds get the cheaper variant of a recipe: the
# full CIFAR-10 network's 10 epochs take longer than that on a 2-core CPU (results/baselines/README.md), so a
# shorter budget would compress its schedule hard while the short network completes its own and can stretch it.
SHORT_BELOW_S = 30 * 60
AUTO_SHORT = {"cifar10": "cifar10-short"}
# Under checkpoint="auto", runs with no wall-clock budget or one of at least this many seconds save their
# training after each epoch (baselines/checkpoint.py) and continue from it if their process dies: a few
# seconds an epoch of the malaria recipe on a 2-core CPU, against minutes to hours lost to a preemption.
CHECKPOINT_FROM_S = 5 * 60
CHECKPOINT_CHOICES = ("auto", "always", "never")


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be a positive integer or left unset, got {value!r}")


class ResNet(System):
    """A hand-built residual network with a recipe tuned for time to accuracy (baselines/)."""

    name: ClassVar[str] = "resnet"
    description: ClassVar[str] = "hand-built ResNet baseline: fast recipes per data set (baselines/)"
    role: ClassVar[str] = "baseline"
    uses_keras: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options:
        """Which recipe, and overrides of its schedule."""

        # 'auto' picks by data set (cifar10 -> cifar10, or cifar10-short under budgets below 30 minutes;
        # malaria -> malaria; else generic), or name one of cifar10, cifar10-short, malaria, generic,
        # resnet2019 (the 2019 reference network and schedule, unchanged).
        recipe: str = "auto"
        # Epochs of the recipe's schedule under a 'full' budget (unset: the recipe's own).
        epochs: int | None = None
        # Images per training step (unset: the recipe's own; the LR is not rescaled).
        batch_size: int | None = None
        # The most a long wall-clock budget may stretch the schedule, in multiples of its epochs (unset: the
        # recipe's own, training.MAX_SCALE_UP; 1 never stretches). results/budget_curve measures the cap.
        max_scale_up: float | None = None
        # Save the training after each epoch so a run whose process dies continues from it: 'auto' (budgets of
        # CHECKPOINT_FROM_S or more, and 'full'), 'always' or 'never'.
        checkpoint: str = "auto"

        def __post_init__(self) -> None:
            if self.recipe != "auto" and self.recipe not in RECIPES:
                raise ValueError(f"unknown recipe {self.recipe!r}; valid: auto, {', '.join(RECIPES)}")
            if self.checkpoint not in CHECKPOINT_CHOICES:
                raise ValueError(f"unknown checkpoint {self.checkpoint!r}; valid: {', '.join(CHECKPOINT_CHOICES)}")
            _check_positive("epochs", self.epochs)
            _check_positive("batch_size", self.batch_size)
            if self.max_scale_up is not None and (isinstance(self.max_scale_up, bool)
                                                  or not isinstance(self.max_scale_up, int | float)
                                                  or not self.max_scale_up >= 1):
                raise ValueError(f"max_scale_up must be a number >= 1 or left unset, got {self.max_scale_up!r}")

    def recipe_name(self, dataset: str, budget_s: float | None = None) -> str:
        """The recipe this system runs on `dataset` under a wall-clock budget of budget_s (None: none)."""
        if self.options.recipe != "auto":
            return self.options.recipe
        if budget_s is not None and budget_s < SHORT_BELOW_S and dataset in AUTO_SHORT:
            return AUTO_SHORT[dataset]
        return AUTO_RECIPE.get(dataset, "generic")

    def make_recipe(self, dataset: str, budget_s: float | None = None) -> Any:
        """The baselines.training.Recipe for this data set and budget, options applied."""
        import importlib

        module_name, preset = RECIPES[self.recipe_name(dataset, budget_s)]
        module = importlib.import_module(f"bench.baselines.{module_name}")
        recipe = module.recipe(preset).with_overrides(self.options.epochs, self.options.batch_size)
        if self.options.max_scale_up is not None:
            recipe = dataclasses.replace(recipe, max_scale_up=float(self.options.max_scale_up))
        return recipe

    def resumes(self, budget: Budget) -> bool:
        """Whether a run under this budget saves each epoch and continues from it (the checkpoint option)."""
        if self.options.checkpoint != "auto":
            return self.options.checkpoint == "always"
        return budget.seconds is None or budget.seconds >= CHECKPOINT_FROM_S

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        """Trains the recipe; a wall-clock budget scales its schedule, a trial budget is ignored."""
        from bench.baselines.training import train

        recipe = self.make_recipe(ctx.dataset, ctx.budget.seconds)
        self._predicted = 0  # forward passes predict_proba makes, test-time views included
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        saving = self.continuing(ctx)
        self._trained = train(recipe, x, y, ctx.n_classes, seed=ctx.seed, deadline=ctx.deadline,
                              history_path=ctx.run_dir / rundir.HISTORY,
                              checkpoint_dir=ctx.resume.checkpoint_dir if saving else None,
                              on_checkpoint=ctx.resume.checkpointed if saving else None)
        if ctx.keep_models:
            self._trained.model.save(ctx.run_dir / rundir.MODEL)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, with the recipe's test-time augmentation."""
        self._predicted = len(x) * self._trained.view_count
        return self._trained.predict_proba(x)

    def params(self) -> int | None:
        """All weights of the trained model."""
        return self._trained.params

    def extras(self) -> dict[str, Any]:
        """FLOPs spent, last-epoch validation accuracy (the kept model), the best one, the recipe, epochs run (a
        cut one counted whole in epochs, by its steps in epochs_trained), images trained and whether the deadline
        cut the schedule."""
        t = self._trained
        spent = Spent.of(t.model, t.examples_trained, self._predicted)
        return {**spent.fields(), "val_accuracy": t.val_accuracy, "best_val_accuracy": t.best_val_accuracy,
                "recipe": t.recipe.name, "epochs": len(t.history), "epochs_trained": t.epochs_trained,
                "examples_trained": t.examples_trained,
                "epochs_planned": t.epochs_planned, "stopped_at_deadline": t.stopped_at_deadline}
