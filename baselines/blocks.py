"""Ingredients every recipe shares: network blocks, on-the-fly augmentation (numpy), the LR schedule.

Keras is imported inside the functions that build layers, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.baselines import kernels

# Augmentation: uint8 batch (B, H, W, C) and a generator in, augmented uint8 batch out.
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]

BN_MOMENTUM = 0.9  # running-statistics momentum; short schedules need statistics that keep up
BN_EPSILON = 1e-5  # the usual epsilon
# A width multiplier's scaled widths are rounded to multiples of this (as MobileNet's multiplier does): channel
# counts that fill whole SIMD registers, and no stage thinner than this.
WIDTH_ROUNDING = 8


# ----------------------------------------------------------------------------------------------------------
# Network blocks (functional Keras)


def scaled_width(width: int, multiplier: float) -> int:
    """width x multiplier rounded to a multiple of WIDTH_ROUNDING (at least that); at 1.0 width itself."""
    if not multiplier > 0:
        raise ValueError(f"a width multiplier must be positive, got {multiplier!r}")
    if multiplier == 1.0:
        return width
    return max(WIDTH_ROUNDING, round(width * multiplier / WIDTH_ROUNDING) * WIDTH_ROUNDING)


def inputs_uint8(input_shape: Sequence[int]) -> Any:
    """A uint8 image input: batches stay uint8 until the model casts them."""
    import keras

    return keras.Input(shape=tuple(input_shape), dtype="uint8", name="image")


def normalise(x: Any, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
              dtype: str | None = None) -> Any:
    """Casts uint8 to float in the model; scales to [0, 1], then standardises per channel when given.

    dtype (e.g. "float32") fixes the layers' arithmetic whatever the global precision policy; None follows it.
    """
    import keras

    x = keras.layers.Rescaling(1 / 255, dtype=dtype, name="rescale")(x)
    if mean is not None and std is not None:
        x = keras.layers.Normalization(mean=list(mean), variance=[s * s for s in std], dtype=dtype,
                                       name="standardise")(x)
    return x


def conv_bn_act(x: Any, filters: int, kernel: int = 3, strides: int = 1, pool: bool = False,
                activation: str = "relu", bn_momentum: float = BN_MOMENTUM, bn_scale: bool = True,
                bias_lr_scale: float = 1.0, kernel_initializer: Any = "he_normal", name: str | None = None,
                bn_epsilon: float = BN_EPSILON, bias_l2: float = 0.0) -> Any:
    """Conv (no bias) -> optional 2x2 max-pool -> batch norm -> activation: airbench's and ResNet-9's unit.

    bias_lr_scale > 1 gives the BN offset that many times the learning rate (airbench trains biases 64x
    faster), through a ScaledBias layer in place of BN's own offset; bias_l2 > 0 then decays that offset
    through the loss (see scaled_bias).
    """
    import keras

    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                            kernel_initializer=kernel_initializer,
                            name=None if name is None else f"{name}_conv")(x)
    if pool:
        x = keras.layers.MaxPooling2D(2, name=None if name is None else f"{name}_pool")(x)
    x = keras.layers.BatchNormalization(momentum=bn_momentum, epsilon=bn_epsilon, scale=bn_scale,
                                        center=bias_lr_scale == 1.0,
                                        name=None if name is None else f"{name}_bn")(x)
    if bias_lr_scale != 1.0:
        x = scaled_bias(bias_lr_scale, name=None if name is None else f"{name}_bias", l2=bias_l2)(x)
    return keras.layers.Activation(kernels.activation(activation),
                                   name=None if name is None else f"{name}_act")(x)


def scaled_bias(lr_scale: float, name: str | None = None, l2: float = 0.0) -> Any:
    """A per-channel offset whose effective learning rate is lr_scale times the optimizer's.

    The offset is stored as b / sqrt(lr_scale) and multiplied back, so SGD's step on it is sqrt(lr_scale)
    times larger and its effect on b another sqrt(lr_scale): lr_scale in all (a reparameterisation that
    works with any stock optimizer and backend).

    l2 > 0 adds (l2 / 2) * sum(stored offset^2) to the loss: coupled weight decay (its gradient, l2 times the
    stored offset, goes through the optimizer's momentum, as PyTorch SGD's weight_decay does). The stored
    offset shrinks by the fraction lr * l2 a step, and so does b: the decay is not sped up by lr_scale, as
    airbench's bias group (lr * bias_scaler, weight_decay / bias_scaler) has it.
    """
    import keras
    from keras import ops

    class ScaledBias(keras.layers.Layer):
        """x + sqrt(lr_scale) * bias, bias one value per channel, zero-initialised."""

        flops_per_output = 1  # the add (bench.measure.flops reads it)

        def build(self, input_shape: Any) -> None:
            # keras' L2(c) penalises c * sum(w^2), whose gradient is 2c * w: c = l2 / 2 gives l2 * w.
            regularizer = keras.regularizers.L2(l2 / 2) if l2 > 0 else None
            self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias",
                                        regularizer=regularizer)

        def call(self, x: Any) -> Any:
            return x + ops.cast(self.bias, x.dtype) * float(np.sqrt(lr_scale))

    return ScaledBias(name=name)


def residual(x: Any, filters: int, n_convs: int = 2, name: str | None = None, **unit: Any) -> Any:
    """x + f(x), f n_convs conv-bn-act units at x's width (ResNet-9's module has two, airbench-style one)."""
    import keras

    y = x
    for i in range(n_convs):
        y = conv_bn_act(y, filters, name=None if name is None else f"{name}_{i}", **unit)
    return keras.layers.Add(name=None if name is None else f"{name}_add")([x, y])


def downsample_stage(x: Any, filters: int, n_convs: int = 1, name: str = "stage", **unit: Any) -> Any:
    """conv-pool-bn-act (halves the resolution, sets the width), then a residual module of n_convs units."""
    x = conv_bn_act(x, filters, pool=True, name=f"{name}_down", **unit)
    return residual(x, filters, n_convs=n_convs, name=f"{name}_res", **unit) if n_convs else x


def conv_group(x: Any, filters: int, n_convs: int = 1, name: str = "stage", **unit: Any) -> Any:
    """conv-pool-bn-act (halves the resolution, sets the width), then n_convs conv-bn-act units in sequence.

    airbench94's ConvGroup (with n_convs=1): no skip connection; with partial_identity on its convs the
    identity it starts from is the implicit residual.
    """
    x = conv_bn_act(x, filters, pool=True, name=f"{name}_down", **unit)
    for i in range(n_convs):
        x = conv_bn_act(x, filters, name=f"{name}_conv{i + 2}", **unit)
    return x


def partial_identity(conv: Any) -> None:
    """Sets a built conv layer's first min(in, out) filters to pass their input channel through unchanged.

    airbench's dirac initialisation (an implicit residual at the start of training); the other filters
    keep their random initialisation.
    """
    kernel = np.array(conv.kernel)
    kh, kw, c_in, c_out = kernel.shape
    n = min(c_in, c_out)
    kernel[:, :, :, :n] = 0.0
    kernel[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
    conv.kernel.assign(kernel)


def whitening_filters(images: np.ndarray, kernel: int = 2, n_patches: int = 20000, eps: float = 5e-4,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Conv kernel (HWIO) and bias that whiten kernel x kernel patches of float images (airbench's stem).

    Each eigenvector e of the patch covariance gives the filters +e/sqrt(lambda+eps) and its negative
    (2*C*k*k filters); the bias centres the patches. `images` must be scaled as the layer's input will be.
    """
    rng = np.random.default_rng(seed)
    windows = np.lib.stride_tricks.sliding_window_view(images, (kernel, kernel), axis=(1, 2))
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kernel * kernel * images.shape[-1])
    patches = patches[rng.choice(len(patches), size=min(len(patches), n_patches), replace=False)]
    mean = patches.mean(axis=0)
    eigvals, eigvecs = np.linalg.eigh(np.cov(patches - mean, rowvar=False))
    filters = (eigvecs / np.sqrt(np.maximum(eigvals, 0) + eps)).T  # one whitening filter per row
    filters = np.concatenate([filters, -filters])
    kernel_hwio = filters.reshape(len(filters), kernel, kernel, images.shape[-1]).transpose(1, 2, 3, 0)
    return kernel_hwio.astype(np.float32), (-(filters @ mean)).astype(np.float32)


def preact_bottleneck(x: Any, filters: int, strides: int, reduce: bool, weight_decay: float,
                      bn_epsilon: float = 2e-5, bn_momentum: float = 0.9, name: str = "block") -> Any:
    """Pre-activation bottleneck module (He et al. 2016; the 2019 reference's `residual_module`).

    BN-ReLU-1x1(filters/4), BN-ReLU-3x3(filters/4, strides), BN-ReLU-1x1(filters); the shortcut is a strided
    1x1 conv of the first activation when `reduce`, else the identity.
    """
    import keras

    reg = keras.regularizers.L2(weight_decay) if weight_decay else None

    def bn_relu(t: Any, tag: str) -> Any:
        t = keras.layers.BatchNormalization(epsilon=bn_epsilon, momentum=bn_momentum,
                                            name=f"{name}_{tag}_bn")(t)
        return keras.layers.Activation("relu", name=f"{name}_{tag}_relu")(t)

    def conv(t: Any, width: int, kernel: int, stride: int, tag: str) -> Any:
        return keras.layers.Conv2D(width, kernel, strides=stride, padding="same", use_bias=False,
                                   kernel_regularizer=reg, name=f"{name}_{tag}")(t)

    act1 = bn_relu(x, "1")
    y = conv(act1, filters // 4, 1, 1, "conv1")
    y = conv(bn_relu(y, "2"), filters // 4, 3, strides, "conv2")
    y = conv(bn_relu(y, "3"), filters, 1, 1, "conv3")
    shortcut = conv(act1, filters, 1, strides, "shortcut") if reduce else x
    return keras.layers.Add(name=f"{name}_add")([y, shortcut])


def classifier_head(x: Any, n_classes: int, pool: str = "max", scale: float = 1.0,
                    kernel_initializer: Any = "glorot_uniform") -> Any:
    """Global pooling -> dense logits (optionally scaled, as airbench) -> float32 softmax.

    kernel_initializer defaults to Keras' Dense default (Glorot uniform).
    """
    import keras

    pooled = keras.layers.GlobalMaxPooling2D(name="pool") if pool == "max" else \
        keras.layers.GlobalAveragePooling2D(name="pool")
    x = pooled(x)
    x = keras.layers.Dense(n_classes, use_bias=False, kernel_initializer=kernel_initializer, name="logits")(x)
    if scale != 1.0:
        x = keras.layers.Rescaling(scale, name="logit_scale")(x)
    # float32 softmax keeps probabilities exact under a mixed-precision policy.
    return keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)


# ----------------------------------------------------------------------------------------------------------
# Augmentation on uint8 numpy batches (one vectorised pass per batch, no float copy)


def random_crop(x: np.ndarray, rng: np.random.Generator, pad: int, mode: str = "reflect") -> np.ndarray:
    """Pads each image by `pad` pixels and crops it back at a random offset (translation by up to pad)."""
    if pad <= 0:
        return x
    b, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)
    dy = rng.integers(0, 2 * pad + 1, size=b)
    dx = rng.integers(0, 2 * pad + 1, size=b)
    # One contiguous slice copy per image: ten times faster than a single fancy-indexed gather.
    out = np.empty_like(x)
    for i in range(b):
        out[i] = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


def random_flip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirrors a random half of the batch left-right."""
    return mirror_where(x, rng.random(len(x)) < 0.5)


def mirror_where(x: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """A copy of the batch with the images where `selected` is true mirrored left-right."""
    out = x.copy()
    out[selected] = x[selected, :, ::-1]
    return out


def random_rot90(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotates each square image by a random multiple of 90 degrees (cells have no up or down)."""
    if x.shape[1] != x.shape[2]:
        raise ValueError(f"random_rot90 needs square images, got {x.shape[1]}x{x.shape[2]}; "
                         "resize them first")
    k = rng.integers(0, 4, size=len(x))
    out = x.copy()
    for turns in (1, 2, 3):
        sel = k == turns
        if sel.any():
            out[sel] = np.rot90(x[sel], turns, axes=(1, 2))
    return out


def dihedral_and_crop(pad: int) -> Augment:
    """Cell augmentation: any of the 8 flips/quarter turns, then pad-and-crop by `pad` pixels.

    The same images as random_crop(random_rot90(random_flip(x))) from the same generator (the draws are
    taken in that order; reflect padding commutes with the turns), in one pass: each image is padded
    once and copied once.
    """

    def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        b, h, w, _ = x.shape
        if h != w:
            raise ValueError(f"random_rot90 needs square images, got {h}x{w}; resize them first")
        flip = rng.random(b) < 0.5
        turns = rng.integers(0, 4, size=b)
        if pad <= 0:
            dy = dx = np.zeros(b, dtype=np.int64)
        else:
            dy = rng.integers(0, 2 * pad + 1, size=b)
            dx = rng.integers(0, 2 * pad + 1, size=b)
        padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect") if pad > 0 else x
        out = np.empty_like(x)
        for i in range(b):
            view = padded[i, :, ::-1] if flip[i] else padded[i]
            out[i] = np.rot90(view, turns[i], axes=(0, 1))[dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        return out

    return augment


# ----------------------------------------------------------------------------------------------------------
# Learning-rate schedule


def linear_schedule(peak_lr: float, warmup_steps: int, total_steps: int, end_fraction: float = 0.0,
                    staircase_steps: int = 0, start_fraction: float = 0.0) -> Any:
    """A Keras LearningRateSchedule: linear warm-up to peak_lr, then linear decay (one-cycle / poly-1).

    The LR rises from start_fraction * peak_lr to peak_lr over warmup_steps, then falls to
    end_fraction * peak_lr at total_steps and stays there.

    With staircase_steps > 0 the step is floored to a multiple of it (per-epoch decay, as 2019's
    LearningRateScheduler). The span (warm-up and total steps) lives in two variables that set_span assigns:
    under TensorFlow a compiled train step reads them as it runs, so a budget's change of plan costs no new
    trace (retrace_on_change says when it does: JAX bakes values it is not handed into the compiled step).
    """
    import keras
    from keras import ops

    class LinearSchedule(keras.optimizers.schedules.LearningRateSchedule):
        """Warm-up then linear decay; see linear_schedule."""

        def __init__(self) -> None:
            self.peak_lr, self.end_fraction = peak_lr, end_fraction
            self.staircase_steps, self.start_fraction = staircase_steps, start_fraction
            # float32 whatever the policy (autocast off): a bfloat16 step count is off by up to 0.2%.
            self._warmup, self._total = (keras.Variable(0.0, dtype="float32", trainable=False, autocast=False,
                                                        name=name) for name in ("lr_warmup_steps", "lr_total_steps"))
            self.set_span(warmup_steps, total_steps)

        def set_span(self, warmup_steps: int, total_steps: int) -> None:
            """Fits the warm-up and the whole cycle into these step counts, from the next step on."""
            self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)
            self._warmup.assign(float(self.warmup_steps))
            self._total.assign(float(self.total_steps))

        def __call__(self, step: Any) -> Any:
            s = ops.cast(step, "float32")
            if self.staircase_steps:
                s = ops.floor(s / self.staircase_steps) * self.staircase_steps
            warmup, total = ops.convert_to_tensor(self._warmup), ops.convert_to_tensor(self._total)
            warm = self.start_fraction + (1 - self.start_fraction) * s / ops.maximum(warmup, 1.0)
            decay = ops.clip((total - s) / ops.maximum(total - warmup, 1.0), 0.0, 1.0)
            decay = self.end_fraction + (1 - self.end_fraction) * decay
            mult = ops.where(s < warmup, warm, decay)
            return self.peak_lr * mult

        def get_config(self) -> dict[str, Any]:
            return {"peak_lr": self.peak_lr, "warmup_steps": self.warmup_steps,
                    "total_steps": self.total_steps, "end_fraction": self.end_fraction,
                    "staircase_steps": self.staircase_steps, "start_fraction": self.start_fraction}

    return LinearSchedule()


def retrace_on_change() -> bool:
    """True where a compiled train step holds the schedule's span as constants (JAX), so a change of plan
    must rebuild it; TensorFlow and PyTorch read the variables at every step."""
    import keras

    return keras.backend.backend() == "jax"
