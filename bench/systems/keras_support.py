"""Keras pieces every Keras-based system shares: seeding, parameter counts, stopping at a deadline."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np


def seed_everything(seed: int) -> None:
    """Seeds python, numpy and keras (and through keras the backend) from the run's seed."""
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def count_params(model: Any) -> int:
    """All weights of a Keras model, trainable or not."""
    return int(sum(int(np.prod(w.shape)) for w in model.weights))


def deadline_callback(deadline: float | None) -> Any:
    """A Keras callback that stops training at the next batch once time.monotonic() passes deadline."""
    import keras

    class StopAtDeadline(keras.callbacks.Callback):
        """Stops fit() at the first batch end after the deadline."""

        stopped = False

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if deadline is not None and time.monotonic() >= deadline:
                self.stopped = True
                self.model.stop_training = True

    return StopAtDeadline()
