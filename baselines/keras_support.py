"""Keras pieces the recipes and the Keras-based systems share: seeding, precision policy, parameter counts."""

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


def set_precision(policy: str) -> None:
    """Makes `policy` (float32, mixed_bfloat16, mixed_float16) the dtype policy of every model built from now on."""
    import keras

    keras.mixed_precision.set_global_policy(policy)


def computes_in_bfloat16() -> bool:
    """Whether the global dtype policy computes in bfloat16."""
    import keras

    return keras.mixed_precision.global_policy().compute_dtype == "bfloat16"


def count_params(model: Any) -> int:
    """All weights of a Keras model, trainable or not."""
    return int(sum(int(np.prod(w.shape)) for w in model.weights))
