"""The harness's precision policy holds for a whole run, through the session resets libraries make."""

import keras
import pytest

from bench.baselines.keras_support import set_precision


def computes_in_bfloat16() -> bool:
    return keras.mixed_precision.global_policy().compute_dtype == "bfloat16"


@pytest.mark.slow
def test_the_policy_survives_clear_session_as_keras_tuner_and_autokeras_call_it() -> None:
    try:
        set_precision("mixed_bfloat16")
        keras.backend.clear_session()  # keras-tuner, before every trial's build
        assert computes_in_bfloat16()
        keras.utils.clear_session()
        dense = keras.layers.Dense(2)
        assert dense.compute_dtype == "bfloat16" and dense.dtype_policy.variable_dtype == "float32"
        set_precision("float32")  # a second call replaces the policy, without wrapping the wrapper
        keras.backend.clear_session()
        assert not computes_in_bfloat16()
        assert not hasattr(keras.backend.clear_session.__wrapped__, "__wrapped__")
    finally:
        set_precision("float32")
