"""The fused batch norm and the GELU compute what Keras' stock layers compute, and are really used."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench.baselines import kernels
from bench.baselines.keras_support import set_precision


def batch_norm_model(**options) -> keras.Model:
    inputs = keras.Input((6, 5, 4))
    return keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.8, **options)(inputs))


def run_training_step(model: keras.Model, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Output in training mode, the layer's weights after the step, and d(sum(out * w))/dx."""
    weights = np.linspace(-1, 1, int(np.prod(x.shape[1:]))).reshape(x.shape[1:]).astype(np.float32)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x, training=True)
        loss = tf.reduce_sum(tf.cast(out, tf.float32) * weights)
    return np.asarray(out, np.float32), [np.asarray(w) for w in model.weights], np.asarray(tape.gradient(loss, x))


@pytest.fixture(autouse=True)
def installed():
    kernels.install()
    yield


@pytest.mark.parametrize("options", [{}, {"scale": False}, {"center": False, "epsilon": 1e-12}])
def test_fused_batch_norm_matches_keras_own_in_training_and_inference(options) -> None:
    x = np.random.default_rng(0).normal(2.0, 3.0, (8, 6, 5, 4)).astype(np.float32)
    with kernels.stock():
        stock = batch_norm_model(**options)
        expected = run_training_step(stock, x)
        expected_inference = np.asarray(stock(x, training=False))
    fused = batch_norm_model(**options)
    got = run_training_step(fused, x)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-4, atol=1e-4)
    for g, e in zip(got[1], expected[1], strict=True):  # moving mean and variance: the biased variance
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[2], expected[2], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.asarray(fused(x, training=False)), expected_inference, rtol=1e-4, atol=1e-4)


def test_the_fused_kernel_is_what_runs_and_stock_turns_it_off() -> None:
    model = batch_norm_model()

    def op_types() -> set[str]:
        graph = tf.function(lambda x: model(x, training=True)).get_concrete_function(
            tf.TensorSpec((2, 6, 5, 4), tf.float32)).graph
        return {op.type for op in graph.get_operations()}

    assert "FusedBatchNormV3" in op_types()
    with kernels.stock():
        assert "FusedBatchNormV3" not in op_types()
    assert kernels.installed() and "fused" in kernels.describe()


def test_inputs_the_kernel_cannot_take_keep_keras_own_path() -> None:
    layer = keras.layers.BatchNormalization()
    flat = tf.function(lambda x: layer(x, training=True)).get_concrete_function(
        tf.TensorSpec((4, 3), tf.float32)).graph
    assert "FusedBatchNormV3" not in {op.type for op in flat.get_operations()}
    x = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32)
    out = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)


def test_fused_batch_norm_under_mixed_bfloat16_keeps_bf16_out_and_float32_statistics() -> None:
    x = np.random.default_rng(2).normal(1.0, 2.0, (8, 6, 5, 4)).astype(np.float32)
    try:
        set_precision("mixed_bfloat16")
        fused = batch_norm_model()
        out, weights, _ = run_training_step(fused, x)
        with kernels.stock():
            stock = batch_norm_model()
            expected, expected_weights, _ = run_training_step(stock, x)
        assert fused.layers[-1].compute_dtype == "bfloat16"
        assert all(w.dtype == np.float32 for w in weights)
        np.testing.assert_allclose(out, expected, atol=0.05)  # bf16 keeps 8 bits of mantissa
        for g, e in zip(weights, expected_weights, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-2, atol=1e-2)
    finally:
        set_precision("float32")


def test_gelu_is_the_exact_gelu_with_its_exact_gradient() -> None:
    x = tf.constant(np.linspace(-6, 6, 241, dtype=np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = kernels.gelu()(x)
        theirs = keras.activations.gelu(x, approximate=False)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(tape.gradient(ours, x)), np.asarray(tape.gradient(theirs, x)),
                               rtol=1e-5, atol=1e-6)
    bf16 = kernels.gelu()(tf.cast(x, tf.bfloat16))
    assert bf16.dtype == tf.bfloat16


def test_a_model_with_the_gelu_saves_and_loads(tmp_path) -> None:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Activation(kernels.activation("gelu"))(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    x = np.array([[-1.0, 0.5, 2.0]], np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6)
    assert kernels.activation("relu") == "relu"


def test_where_a_gpu_is_seen_tiny_epsilons_and_bfloat16_keep_keras_own_path(monkeypatch) -> None:
    monkeypatch.setattr(kernels, "_sees_gpu", lambda: True)

    def fused(layer: keras.layers.BatchNormalization) -> bool:
        graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(
            tf.TensorSpec((2, 3, 3, 4), tf.float32)).graph
        return "FusedBatchNormV3" in {op.type for op in graph.get_operations()}

    assert fused(keras.layers.BatchNormalization(epsilon=1e-3))
    assert not fused(keras.layers.BatchNormalization(epsilon=1e-12))
    assert not fused(keras.layers.BatchNormalization(dtype="mixed_bfloat16"))
