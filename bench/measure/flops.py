"""FLOPs of a Keras model, counted from its layers' shapes, for any backend (fvcore's and nanoGPT's way).

A multiply-add is two FLOPs (airbench's convention). `count(model)` walks the model's graph, nested models
included, and gives the FLOPs of one example's forward pass with the layers it could not count; training is
TRAIN_FACTOR forward passes' worth (the backward pass costs twice the forward: Kaplan et al. 2020, OpenAI's
"AI and compute"). Per layer, per example:

- convolutions of every kind, dense, EinsumDense, multi-head attention: 2 x their multiply-adds (biases
  left out, as fvcore leaves them);
- normalisation (batch, layer, group, the Normalization layer): 2 per output element (scale and shift; the
  batch statistics are left out);
- pooling: one per element of each window; global pooling: one per input element;
- activations, softmax, rescaling and merges (add, multiply, ...): one per output element and input merged;
- reshapes, padding, dropout, casts, concatenation: none; augmentation and resizing layers are data
  preparation and are not counted (nor is data loading).

Any other layer is listed in `Flops.uncounted` (the figure is then a lower bound), unless it declares
`flops_per_output`, its FLOPs per output element.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Forward + backward: the backward pass computes the gradients of the activations and of the weights, each
# about one forward pass's multiply-adds.
TRAIN_FACTOR = 3

# Layers that compute nothing (they move, drop or cast values), by class name so that optional libraries
# need not be imported: Keras' own and Auto-Keras' casts.
FREE = frozenset({
    "InputLayer", "Flatten", "Reshape", "Permute", "RepeatVector", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout", "GaussianNoise", "AlphaDropout", "ZeroPadding1D",
    "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "Concatenate", "Identity",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "Masking", "ActivityRegularization",
    "CastToFloat32", "ExpandLastDim",
})
# Data preparation inside a model (augmentation, resizing): not training compute, as data loading is not.
PREPARATION_PREFIXES = ("Random",)
PREPARATION = frozenset({"Resizing", "CenterCrop", "AutoContrast", "Equalization", "Solarization",
                         "MixUp", "CutMix", "AugMix", "RandAugment", "Pipeline"})
NORMALISATION = frozenset({"BatchNormalization", "LayerNormalization", "GroupNormalization",
                           "UnitNormalization", "RMSNormalization", "Normalization", "SpectralNormalization"})
ELEMENTWISE = frozenset({"Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Rescaling"})
MERGES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
POOLING = frozenset({"MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
                     "AveragePooling3D"})
GLOBAL_POOLING = frozenset({"GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
                            "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D"})


@dataclass(frozen=True)
class Flops:
    """Forward-pass FLOPs of one example, and the layers (class names) the count left out."""

    forward: int
    uncounted: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every layer was counted (else `forward` is a lower bound)."""
        return not self.uncounted

    def __add__(self, other: Flops) -> Flops:
        return Flops(self.forward + other.forward, tuple(sorted({*self.uncounted, *other.uncounted})))

    def times(self, n: int) -> Flops:
        """The count of n passes."""
        return Flops(self.forward * n, self.uncounted)


def training_flops(forward: float, examples: float) -> float:
    """FLOPs of training on `examples` examples (forward and backward) at `forward` FLOPs a forward pass."""
    return TRAIN_FACTOR * forward * examples


@dataclass(frozen=True)
class Spent:
    """FLOPs a run (or a part of one) spent training and predicting, and the layers its counts left out."""

    train: float = 0.0
    predict: float = 0.0
    uncounted: tuple[str, ...] = ()

    @classmethod
    def of(cls, model: Any, trained: float = 0.0, predicted: float = 0.0) -> Spent:
        """A model trained on `trained` examples and predicting `predicted` (test-time views each count)."""
        forward = count(model)
        return cls(training_flops(forward.forward, trained), forward.forward * predicted, forward.uncounted)

    def __add__(self, other: Spent) -> Spent:
        return Spent(self.train + other.train, self.predict + other.predict,
                     tuple(sorted({*self.uncounted, *other.uncounted})))

    def fields(self) -> dict[str, Any]:
        """As run-record fields: train_flops, predict_flops, flops_uncounted (comma-separated)."""
        return {"train_flops": self.train, "predict_flops": self.predict, "flops_uncounted": ",".join(self.uncounted)}


def count(model: Any) -> Flops:
    """FLOPs of one example's forward pass through a built Keras model (Functional, Sequential, nested)."""
    nodes = _graph_nodes(model)
    if nodes is None:  # a subclassed model: its call is Python, no graph to read
        return Flops(0, (type(model).__name__,))
    total = Flops(0)
    for node in nodes:
        layer = node.operation
        if _graph_nodes(layer) is not None:
            total += count(layer)
        else:
            total += _layer(layer, [_shape(t) for t in _inputs(node)], [_shape(t) for t in node.output_tensors])
    return total


def _graph_nodes(model: Any) -> list[Any] | None:
    """The nodes of a model's own graph (a Sequential keeps it in _functional), or None for a plain layer."""
    graph = getattr(model, "_functional", None) or model
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if by_depth is None:
        return None
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]


def _inputs(node: Any) -> list[Any]:
    """The tensors a call computed on: for attention query, value and key as called (its masks left out)."""
    if type(node.operation).__name__ == "MultiHeadAttention":
        args, kwargs = node.arguments.args, node.arguments.kwargs
        named = [kwargs[k] for k in ("query", "value", "key") if kwargs.get(k) is not None]
        return [*args[:3], *named][:3]
    return list(node.input_tensors)


def _shape(tensor: Any) -> tuple[int | None, ...]:
    return tuple(tensor.shape)[1:]  # one example: the batch axis dropped


def _size(shape: Sequence[int | None]) -> int | None:
    return None if any(d is None for d in shape) else math.prod(shape)


def _layer(layer: Any, inputs: list[tuple[int | None, ...]], outputs: list[tuple[int | None, ...]]) -> Flops:
    """One call of a layer on one example."""
    kind = type(layer).__name__
    if kind in FREE or kind in PREPARATION or kind.startswith(PREPARATION_PREFIXES):
        return Flops(0)
    sizes_in, sizes_out = [_size(s) for s in inputs], [_size(s) for s in outputs]
    if None in sizes_in or None in sizes_out or not outputs:
        return Flops(0, (kind,))  # a dimension unknown until run time
    n_in, n_out = sizes_in[0] if sizes_in else 0, sizes_out[0]
    flops = _rule(layer, kind, inputs, outputs, n_in, n_out)
    return Flops(0, (kind,)) if flops is None else Flops(int(flops))


def _rule(layer: Any, kind: str, inputs: list[tuple[int | None, ...]], outputs: list[tuple[int | None, ...]],
          n_in: int, n_out: int) -> float | None:
    """FLOPs of the layer by its kind, None where no rule applies."""
    if hasattr(layer, "flops_per_output"):
        return layer.flops_per_output * n_out
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        depthwise = layer.depthwise_kernel.shape  # kernel_size + (in_channels, depth_multiplier)
        mid = depthwise[-2] * depthwise[-1]
        positions = n_out // layer.pointwise_kernel.shape[-1]
        return 2 * positions * mid * (math.prod(depthwise[:-2]) + layer.pointwise_kernel.shape[-1])
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return 2 * n_out * math.prod(layer.kernel.shape[:-2])  # kernel_size + (in_channels, multiplier)
    if kind in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
        return 2 * n_in * math.prod(layer.kernel.shape[:-1])  # each input spreads over kernel_size x filters
    if kind in ("Conv1D", "Conv2D", "Conv3D", "Dense"):
        return 2 * n_out * math.prod(layer.kernel.shape[:-1])  # kernel: (..., inputs per output, outputs)
    if kind == "EinsumDense":
        return 2 * n_out * _contracted(layer)
    if kind == "MultiHeadAttention":
        return _attention(layer, inputs, outputs)
    if kind in NORMALISATION:
        return 2 * n_out
    if kind in ELEMENTWISE:
        return n_out
    if kind in MERGES:
        return (len(inputs) - 1) * n_out
    if kind in POOLING:
        return n_out * math.prod(layer.pool_size)
    if kind in GLOBAL_POOLING:
        return n_in
    return None


def _contracted(layer: Any) -> int:
    """EinsumDense: the product of the kernel's dimensions summed over (those absent from the output)."""
    _, rest = layer.equation.split(",")
    kernel_spec, output_spec = rest.split("->")
    return math.prod(d for letter, d in zip(kernel_spec, layer.kernel.shape, strict=True)
                     if letter not in output_spec)


def _attention(layer: Any, inputs: list[tuple[int | None, ...]], outputs: list[tuple[int | None, ...]]
               ) -> float | None:
    """MultiHeadAttention over sequences (length, features): projections, scores, softmax, weighting, output."""
    if any(len(s) != 2 for s in inputs[:3]):
        return None  # attention over several axes: not counted
    (t_q, d_q), (t_v, d_v) = inputs[0], inputs[1]
    d_k = inputs[2][1] if len(inputs) > 2 else d_v
    heads, key_dim, value_dim = layer.num_heads, layer.key_dim, layer.value_dim or layer.key_dim
    macs = (t_q * d_q * heads * key_dim + t_v * d_k * heads * key_dim + t_v * d_v * heads * value_dim
            + heads * t_q * t_v * (key_dim + value_dim) + t_q * heads * value_dim * outputs[0][-1])
    return 2 * macs + heads * t_q * t_v  # the softmax, one per score
