"""Faster TensorFlow kernels for two layers the networks lean on; the layers compute what they did before.

- Batch norm. Keras 3's BatchNormalization casts its input to float32, reduces the moments, normalises and
  casts back in separate passes over the activations, each a trip through memory (tf.keras 2 used one fused
  kernel by default). `install()` routes every BatchNormalization that fits TensorFlow's FusedBatchNormV3 (a
  4-D channels-last input, no mask) through that kernel: one oneDNN pass on a CPU, bfloat16 in and out with
  float32 statistics under a mixed policy. It patches the class, so every Keras model in the process gets it:
  Auto-Keras' blocks and keras.applications' networks as well as the recipes' (both sides of a comparison run
  the same kernels). The layers' weights, arguments and saved form do not change.
- GELU. `gelu` is the exact (erf) GELU with its derivative Phi(x) + x phi(x) written out, computed in float32
  and cast to the layer's dtype; TensorFlow's own gradient of the erf formula is a chain of small elementwise
  ops, slow in bfloat16.

What they gain is measured by the throughput benchmark (tests/baselines/test_throughput_benchmarks.py): the
recipes with these kernels beside model.fit of the same networks in stock layers and with these kernels, in one
run; its table, and the per-step times taken while the kernels were written, are in results/baselines/README.md.

`stock()` turns both off for the layers traced inside it (the benchmark's plain side).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

# FusedBatchNormV3's GPU kernel (cuDNN) may reject an epsilon below this (tf.nn.fused_batch_norm raises such
# an epsilon to it). Where TensorFlow sees a GPU, such layers, and bfloat16 inputs (not verified on a GPU
# here), keep Keras' own path; the CPU kernel takes any epsilon and bfloat16.
FUSED_MIN_EPSILON = 1.001e-5

_enabled = True  # read when a layer is traced (a train step compiles), not when it is built
_original_call: Any = None  # BatchNormalization.call before install()


def install() -> None:
    """Routes Keras' BatchNormalization through the fused kernel under TensorFlow (idempotent)."""
    global _original_call
    import keras

    if _original_call is not None or keras.backend.backend() != "tensorflow":
        return
    _original_call = keras.layers.BatchNormalization.call

    def call(self: Any, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if not _fits_fused(self, inputs, mask):
            return _original_call(self, inputs, training=training, mask=mask)
        return _fused_batch_norm(self, inputs, bool(training) and self.trainable)

    call.__doc__ = _original_call.__doc__
    keras.layers.BatchNormalization.call = call


def installed() -> bool:
    """Whether install() has patched BatchNormalization in this process."""
    return _original_call is not None


def describe() -> str:
    """What the Keras layers of this process compute with, for a run's metadata."""
    if not installed():
        import keras

        backend = keras.backend.backend()
        # The fused kernels call TensorFlow's ops: under another backend every system gets Keras' own layers.
        return "stock Keras layers" + (f" (the fused kernels are TensorFlow's; backend {backend})"
                                       if backend != "tensorflow" else "")
    return ("fused batch norm (TensorFlow FusedBatchNormV3) for 4-D channels-last inputs (on a GPU: "
            "float32/float16 and epsilon >= 1.001e-5); exact GELU with an analytic gradient (recipes)")


@contextlib.contextmanager
def stock() -> Iterator[None]:
    """Within: layers traced use Keras' stock batch norm and GELU (for comparisons with plain Keras code)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def _fits_fused(layer: Any, inputs: Any, mask: Any) -> bool:
    return (_enabled and mask is None and len(inputs.shape) == 4 and layer.axis in (-1, 3)
            and (not _sees_gpu() or (layer.epsilon >= FUSED_MIN_EPSILON and layer.compute_dtype != "bfloat16"))
            and not getattr(layer, "synchronized", False))


def _sees_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _fused_batch_norm(layer: Any, inputs: Any, training: bool) -> Any:
    import tensorflow as tf

    channels = inputs.shape[-1]
    x = tf.cast(inputs, layer.compute_dtype)
    scale = tf.cast(layer.gamma, tf.float32) if layer.scale else tf.ones([channels], tf.float32)
    offset = tf.cast(layer.beta, tf.float32) if layer.center else tf.zeros([channels], tf.float32)
    common = dict(scale=scale, offset=offset, epsilon=layer.epsilon, exponential_avg_factor=1.0,
                  data_format="NHWC")
    if not training:
        y, *_ = tf.raw_ops.FusedBatchNormV3(x=x, mean=tf.cast(layer.moving_mean, tf.float32),
                                            variance=tf.cast(layer.moving_variance, tf.float32),
                                            is_training=False, **common)
        return y
    empty = tf.zeros([0], tf.float32)
    y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(x=x, mean=empty, variance=empty, is_training=True,
                                                        **common)
    # The kernel returns the unbiased variance for the running average; Keras' layer averages the biased
    # one (the one it normalises with), so undo Bessel's factor to keep the layer's statistics as they were.
    n = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
    variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
    momentum = layer.momentum
    layer.moving_mean.assign(layer.moving_mean * momentum + tf.cast(mean, layer.moving_mean.dtype)
                             * (1.0 - momentum))
    layer.moving_variance.assign(layer.moving_variance * momentum
                                 + tf.cast(variance, layer.moving_variance.dtype) * (1.0 - momentum))
    return y


def _gelu(x: Any) -> Any:
    """Exact GELU, x * Phi(x); under TensorFlow with its derivative written out (see the module docstring)."""
    import keras

    if not _enabled or keras.backend.backend() != "tensorflow":
        return keras.activations.gelu(x, approximate=False)
    return _tf_gelu(x)


def _tf_gelu(x: Any) -> Any:
    import tensorflow as tf

    @tf.custom_gradient
    def forward(x: Any) -> Any:
        xf = tf.cast(x, tf.float32)
        cdf = 0.5 * (1.0 + tf.math.erf(xf * (1.0 / math.sqrt(2.0))))

        def backward(dy: Any) -> Any:
            pdf = tf.exp(-0.5 * xf * xf) * (1.0 / math.sqrt(2.0 * math.pi))
            return dy * tf.cast(cdf + xf * pdf, dy.dtype)

        return tf.cast(xf * cdf, x.dtype), backward

    return forward(x)


def activation(name: str) -> Any:
    """What to give keras.layers.Activation for `name`: this module's GELU for "gelu", else the name."""
    return gelu() if name == "gelu" else name


def gelu() -> Any:
    """The GELU activation function, registered with Keras so saved models load (as bench>_gelu)."""
    import keras

    return keras.saving.register_keras_serializable(package="bench")(_gelu)  # idempotent: returns _gelu
