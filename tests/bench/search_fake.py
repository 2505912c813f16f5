"""A searcher in one short file on bench.systems.search: RandomSearch, no refit (the best trial's model predicts;
in a search over several processes, where another may have trained it, the best configuration is trained again)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bench.systems.base import FitContext
from bench.systems.budget_options import check_search_workers
from bench.systems.search import SearchSystem, budgeted, max_trials

EPOCHS = 5  # per trial: a few seconds on digits, so a 10 s budget sees several trials and a cut one
LIBRARY_MAX_TRIALS = 10  # keras-tuner's RandomSearch default, for the `full` budget


class TinyRandomSearch(SearchSystem):
    """RandomSearch over a 2-unit Dense model's learning rate."""

    name: ClassVar[str] = "tiny-random-search"
    description: ClassVar[str] = "keras-tuner RandomSearch over a 2-unit Dense model (a test of bench.systems.search)"
    library: ClassVar[str] = "keras-tuner"

    @dataclass(frozen=True)
    class Options:
        """Processes the search runs in."""

        search_workers: int = 1

        def __post_init__(self) -> None:
            check_search_workers(self.search_workers)

    def budget_scope(self) -> str:
        """No refit: the search is all of fit."""
        return "search"

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        """Searches within ctx.budget; the best trial's model is the final one."""
        t0 = time.monotonic()  # the search's clock includes importing keras-tuner
        import keras
        import keras_tuner as kt

        def build(hp: Any) -> Any:
            model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten(), keras.layers.Rescaling(1 / 255),
                                      keras.layers.Dense(2, activation="relu"),
                                      keras.layers.Dense(ctx.n_classes, activation="softmax")])
            model.compile(keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-1, sampling="log")),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            return model

        with self.searching(ctx, t0, "random-search", scope="search") as log:
            tuner = budgeted(kt.RandomSearch)(
                hypermodel=build, objective="val_accuracy", max_trials=max_trials(ctx.budget, LIBRARY_MAX_TRIALS),
                directory=str(self.tuner_dir(ctx, "random-search")), overwrite=self.overwrite(ctx), seed=ctx.seed,
                search_log=log)
            tuner.search(x, y, epochs=EPOCHS, validation_split=0.2, verbose=0)
            log.search_end = time.monotonic()
            best = tuner.best_trial()
            if best is None:
                raise log.no_completed_trial(self.name)
            if not log.worker:  # one process: the best trial's model is on this process's disk
                self._model = tuner.get_best_models(1)[0]
            else:
                self._model = build(best.hyperparameters)
                self._model.fit(x, y, epochs=EPOCHS, verbose=0)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """The best trial's model's softmax."""
        return np.asarray(self._model.predict(x, verbose=0), dtype=np.float64)

    def refit_extras(self) -> dict[str, Any]:
        """The best trial's model predicts: its validation accuracy is the search's best."""
        return {"val_accuracy": None if self._log is None else self._log.best_val_accuracy()}
