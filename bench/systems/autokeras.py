"""Auto-Keras 3 as two contenders under honest budgets: `autokeras` (fair, offline) and `autokeras-default`.

Both run Auto-Keras' own search (AutoModel.fit: keras-tuner's Greedy oracle, objective val_loss) on the training
set only, under the budget machinery of bench.systems.search, then refit the best trial from scratch on the whole
training set (autokeras_search.py). `autokeras` searches a space that runs offline at native image size
(autokeras_space.py); `autokeras-default` is autokeras.ImageClassifier as users call it, untouched. What the
budgets, the refit and the search space are, in full: docs/method.md, "The contenders".
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bench.baselines.keras_support import count_params, seed_everything
from bench.core import rundir
from bench.measure.flops import Spent
from bench.systems.autokeras_search import BEST_TRIAL, AutoKerasTrials, KerasRefit
from bench.systems.autokeras_space import BLOCK_TYPES, parse_block_types
from bench.systems.base import FitContext
from bench.systems.budget_options import SearchOptions
from bench.systems.search import SearchLog, SearchSystem, budgeted, max_trials

# Auto-Keras' own max_trials, used for the `full` budget.
LIBRARY_MAX_TRIALS = 100
# Auto-Keras' default validation fraction (AutoModel.fit validation_split).
LIBRARY_VALIDATION_FRACTION = 0.2
# Auto-Keras' default batch size (AutoModel.fit batch_size).
LIBRARY_BATCH_SIZE = 32
# Fair variant per-trial cap: 20 epochs of a small CNN on 40k CIFAR images take minutes on a CPU, so a
# 1 h budget still sees several trials; EarlyStopping usually ends a trial earlier.
FAIR_EPOCHS = 20
# Fair variant EarlyStopping patience on val_loss (the library uses 10 with 1000 epochs).
FAIR_PATIENCE = 5
# Smallest val_loss change that counts as progress (the library's value).
EARLY_STOPPING_MIN_DELTA = 1e-4
# Keras verbosity during search and refit: one line per epoch, readable in log.txt.
VERBOSE = 2
# Folder under ctx.workdir holding the tuner project (trial checkpoints), deleted after every run.
PROJECT_FOLDER = "autokeras"


def _shuffled(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation, so Auto-Keras' last-samples validation split mixes all classes."""
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]


def validation_tail(n: int, fraction: float) -> int:
    """Where Auto-Keras' validation split starts: it validates on the last `fraction` of n samples
    (autokeras.utils.data_utils.split_dataset)."""
    return n - min(max(int(n * fraction), 1), n - 1)


def targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels as Auto-Keras reads them with our column order: 0/1 for two classes, one-hot otherwise.

    Raw labels with more classes would be sorted as strings by Auto-Keras ('10' before '2').
    """
    if n_classes == 2:
        return y.astype(np.int64)
    return np.eye(n_classes, dtype=np.float32)[y]


class _AutoKerasSystem(SearchSystem):
    """The shared search-refit-predict machinery; subclasses build the AutoModel and choose epochs."""

    library: ClassVar[str] = "autokeras"

    @dataclass(frozen=True)
    class Options(SearchOptions):
        """Batch size and validation fraction (library defaults), and the budget options every searcher has."""

        batch_size: int = LIBRARY_BATCH_SIZE
        validation_fraction: float = LIBRARY_VALIDATION_FRACTION

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.batch_size < 1:
                raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
            if not 0 < self.validation_fraction < 1:
                raise ValueError(f"validation_fraction must be between 0 and 1, got {self.validation_fraction}")

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._refit: KerasRefit | None = None
        self._validation: tuple[np.ndarray, np.ndarray] | None = None  # Auto-Keras' validation split

    # --- what subclasses choose -----------------------------------------------------------------
    def _tuner_class(self) -> type:
        """The Auto-Keras tuner class the search runs."""
        raise NotImplementedError

    def _auto_model(self, ak: Any, tuner: Any, ctx: FitContext, trials: int) -> Any:
        """The AutoModel searching with `tuner` (a tuner class, or a callable building one)."""
        raise NotImplementedError

    def _fit_args(self) -> dict[str, Any]:
        """epochs and callbacks for AutoModel.fit."""
        raise NotImplementedError

    # --- the run --------------------------------------------------------------------------------
    def tuner(self, log: SearchLog, refit: bool = True) -> Any:
        """The tuner class for AutoModel, bound to this fit's log (AutoModel builds it with its own arguments)."""
        return functools.partial(budgeted(self._tuner_class(), AutoKerasTrials), search_log=log, refit=refit)

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        """Searches within ctx.budget, then refits the best trial on all of x; tuner files are deleted after."""
        t0 = time.monotonic()  # the search's clock includes importing and setting up Auto-Keras
        import autokeras as ak

        seed_everything(ctx.seed)
        xs, ys = _shuffled(x, y, ctx.seed)
        fraction = self.options.validation_fraction
        self._predicted = 0  # images predict_proba has been given by the harness
        self._refit_examples = len(xs)  # a refit epoch: all the training data
        with self.searching(ctx, t0, PROJECT_FOLDER, refit_data_factor=1.0 / (1.0 - fraction),
                            trial_epoch_examples=validation_tail(len(xs), fraction)) as log:
            model = self._auto_model(ak, self.tuner(log), ctx, max_trials(ctx.budget, LIBRARY_MAX_TRIALS))
            model.fit(xs, targets(ys, ctx.n_classes), batch_size=self.options.batch_size,
                      validation_split=fraction, verbose=VERBOSE, **self._fit_args())
            log.refit_end = time.monotonic()
            self._refit = model.tuner.refit
            if ctx.keep_models:
                self._refit.model.save(ctx.run_dir / rundir.MODEL)
        tail = validation_tail(len(ys), fraction)
        self._validation = xs[tail:], ys[tail:]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities from the refit model (columns in class-index order)."""
        if self._refit is None:
            raise RuntimeError(f"{self.name}: call fit() before predict_proba()")
        self._predicted += len(x)
        inputs = self._refit.pipeline.transform_x(x)
        out = np.asarray(self._refit.model.predict(inputs, batch_size=self.options.batch_size, verbose=0),
                         dtype=np.float64)
        if out.shape[1] == 1:  # one sigmoid unit: P(class 1)
            p = out[:, 0]
            return np.stack([1.0 - p, p], axis=1)
        return out / out.sum(axis=1, keepdims=True)

    def params(self) -> int | None:
        """Weights of the refit (exported) model."""
        return None if self._refit is None else count_params(self._refit.model)

    def refit_spent(self) -> Spent:
        """The refit's training (its epochs, a cut one by its batches, over all the training data) and the test
        set's predictions."""
        refit = self._refit
        if refit is None:
            return Spent()
        return Spent.of(refit.model, refit.epochs_trained * self._refit_examples, self._predicted)

    def refit_extras(self) -> dict[str, Any]:
        """The predicting model's accuracy on Auto-Keras' validation split: val_accuracy where the best trial's
        checkpoint predicts (held out from it), refit_train_accuracy where the refit does (it trained on the split);
        the refit's planned epochs (refit_epochs) and those trained (a cut epoch counted by its batches), whether
        the budget's end cut it, and what predicts (predicted_by: 'refit' or 'best trial')."""
        refit = self._refit
        score = None
        if refit is not None and self._validation is not None:
            # Scored here, after the harness's clocks: a bookkeeping figure is not the run's time.
            x_val, y_val = self._validation
            score = float(np.mean(self.predict_proba(x_val).argmax(axis=1) == y_val))
        held_out = refit is not None and refit.predictor == BEST_TRIAL
        return {
            "val_accuracy": score if held_out else None,
            "refit_train_accuracy": None if held_out else score,
            "refit_epochs": None if refit is None else refit.epochs,
            "refit_epochs_trained": None if refit is None else refit.epochs_trained,
            "refit_stopped_at_deadline": None if refit is None else refit.stopped,
            "predicted_by": None if refit is None else refit.predictor,
        }


class AutoKeras(_AutoKerasSystem):
    """Auto-Keras' image search made fair for any machine: no downloads, native input size, CPU-sized trials."""

    name: ClassVar[str] = "autokeras"
    description: ClassVar[str] = ("Auto-Keras 3 image search without pretrained weights or 224 px upscaling, "
                                  "per-trial epoch cap and early stopping; best trial refit on all data")

    @dataclass(frozen=True)
    class Options(_AutoKerasSystem.Options):
        """Per-trial epochs and patience, batch size, validation fraction, block types to search."""

        epochs: int = FAIR_EPOCHS
        patience: int = FAIR_PATIENCE
        # Comma-separated or a list: some of vanilla, resnet, xception, efficient.
        block_types: Any = ("vanilla", "resnet")

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.epochs < 1 or self.patience < 1:
                raise ValueError(f"epochs and patience must be at least 1, got {self.epochs}, {self.patience}")
            try:
                object.__setattr__(self, "block_types", parse_block_types(self.block_types))
            except ValueError as exc:
                raise ValueError(f"{exc} (valid: {', '.join(BLOCK_TYPES)})") from exc

    def _tuner_class(self) -> type:
        from autokeras.tuners import greedy

        return greedy.Greedy

    def tuner(self, log: SearchLog, refit: bool = True) -> Any:
        """Greedy under the budget, starting from the fair initial trials."""
        from bench.systems.autokeras_space import fair_initial_hps

        return functools.partial(super().tuner(log, refit), initial_hps=fair_initial_hps(self.options.block_types))

    def _auto_model(self, ak: Any, tuner: Any, ctx: FitContext, trials: int) -> Any:
        from bench.systems.autokeras_space import classification_head, fair_hyperparameters

        return ak.AutoModel(
            inputs=ak.ImageInput(), outputs=classification_head(), tuner=tuner,
            hyperparameters=fair_hyperparameters(self.options.block_types),
            max_trials=trials, directory=str(self.tuner_dir(ctx, PROJECT_FOLDER)), project_name="search",
            overwrite=self.overwrite(ctx), seed=ctx.seed,
        )

    def _fit_args(self) -> dict[str, Any]:
        import keras

        stop = keras.callbacks.EarlyStopping(patience=self.options.patience, min_delta=EARLY_STOPPING_MIN_DELTA)
        return {"epochs": self.options.epochs, "callbacks": [stop]}


class AutoKerasDefault(_AutoKerasSystem):
    """autokeras.ImageClassifier with the library's defaults (only directory, seed, trials and deadline set)."""

    name: ClassVar[str] = "autokeras-default"
    description: ClassVar[str] = ("Auto-Keras 3 ImageClassifier as shipped (ResNet50 at 224 px, pretrained "
                                  "EfficientNetB7: fails offline and is recorded); best trial refit on all data")

    def _tuner_class(self) -> type:
        from autokeras.tuners import task_specific

        return task_specific.ImageClassifierTuner

    def _auto_model(self, ak: Any, tuner: Any, ctx: FitContext, trials: int) -> Any:
        return ak.ImageClassifier(
            tuner=tuner, max_trials=trials, directory=str(self.tuner_dir(ctx, PROJECT_FOLDER)), project_name="search",
            overwrite=self.overwrite(ctx), seed=ctx.seed,
        )

    def _fit_args(self) -> dict[str, Any]:
        # epochs=None: the library's 1000-epoch cap with its inserted EarlyStopping(patience=10).
        return {"epochs": None, "callbacks": None}
