"""Keras pieces the recipes and the Keras-based systems share: seeding, precision policy, parameter counts."""

from __future__ import annotations

import functools
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
    """Makes `policy` (float32, mixed_bfloat16, mixed_float16) the dtype policy of every model built from now on,
    in this process, including across `keras.backend.clear_session()`.

    clear_session() resets Keras' global state, the dtype policy with it (back to float32), and keras-tuner
    calls it before building every trial's model (Tuner._try_build), Auto-Keras before assembling its graph:
    without this, a search would train every trial in float32 while the run records the harness's policy.
    Both `keras.backend.clear_session` and `keras.utils.clear_session` are replaced by a wrapper that puts
    the policy back after clearing (the libraries look the function up on those modules when they call it).
    """
    import keras

    keras.mixed_precision.set_global_policy(policy)
    original = getattr(keras.backend.clear_session, "__wrapped__", keras.backend.clear_session)

    @functools.wraps(original)
    def clear_session(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        keras.mixed_precision.set_global_policy(policy)
        return result

    keras.backend.clear_session = clear_session
    keras.utils.clear_session = clear_session


def count_params(model: Any) -> int:
    """All weights of a Keras model, trainable or not."""
    return int(sum(int(np.prod(w.shape)) for w in model.weights))
