"""Keras pieces the recipes and the Keras-based systems share: seeding, parameter counts."""

from __future__ import annotations

import random
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
