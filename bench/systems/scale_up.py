"""The hybrid's hand step: read the architecture a search found, scale it up by a fixed rule, build it in Keras.

Three pure steps, none of which needs Auto-Keras:

- `found_architecture(values)`: the best trial's active hyperparameter values (keras-tuner names, as
  autokeras_search logs them) -> an `Architecture`: the ImageBlock's block type (vanilla ConvBlock or a
  keras.applications ResNet), whether it normalised, and the ClassificationHead's reduction and dropout.
  What only shaped the search's training (augmentation, optimizer, learning rate) is not architecture: the
  scaled network trains with the baseline recipe's practice instead.
- `scale_up(found, input_shape)`: the rule, as an expert would deepen what the search found:
    vanilla  the found block (kernel, convs per block and their widths, separable, max-pooling, dropout) is
             the unit; the network gets DEPTH_FACTOR times as many of them, capped at MAX_BLOCKS, each added
             one at the width of the last found conv. Added blocks keep downsampling (the found pooling)
             while the feature map stays at least MIN_SIDE pixels a side; past that they stack at the last
             resolution. Every width is then multiplied by the width factor (WIDTH_FACTOR by default),
             rounded up to a multiple of WIDTH_ROUNDING and capped at MAX_FILTERS, Auto-Keras' own largest.
    resnet   the next deeper network of the same family (DEEPER_RESNET: 50 -> 101 -> 152, v1 or v2).
  Normalisation stays as found, and so does the head, except a flatten head, which becomes global average
  pooling (SCALED_REDUCTION: the recipes' SGD diverges on a flatten head, measured; see there).
- `build_model(arch, input_shape, n_classes)`: the network from an Architecture, as the baselines build
  theirs: uint8 input cast and scaled in the model (bench.baselines.blocks), per-channel standardisation
  where the search chose to normalise (statistics of the training images, as Auto-Keras' adapted
  Normalization), and a float32 softmax. Two changes from Auto-Keras' ConvBlock are an expert's, and are
  what lets the deeper network train under the baselines' practice: every conv is followed by batch norm
  (the recipes' SGD with peak learning rates of 0.1-0.4 diverges on a plain conv stack more than a few
  layers deep), and convs pad 'same' (Auto-Keras pads 'valid' on large maps, which would eat the added
  blocks' resolution); pooling keeps the found block's window (kernel_size - 1, as Auto-Keras builds it).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.baselines import blocks

# How much deeper the scaled network is: the 2019 article's hand-defined ResNet was a deeper version of the
# kind of network the search found; doubling the blocks is the smallest step that is clearly "deeper".
DEPTH_FACTOR = 2
# At most this many conv blocks: Auto-Keras' space goes to 3, so a found 3-block network doubles to 6.
MAX_BLOCKS = 6
# Added blocks stop downsampling once the feature map would be smaller than this many pixels a side (as
# baselines/generic.py stops halving): 8x8 digits keep 4x4 maps, 64 px cells go down to 4x4 too.
MIN_SIDE = 4
# Width multiplier of every block. 1: deeper, not wider. The found network runs at native resolution, so its
# first block is already its costliest; a width factor w multiplies that cost by w squared, which a CPU
# budget of minutes pays for in epochs (results/example/README.md). The system's width_factor option changes it
# (e.g. 1.5 on a GPU).
WIDTH_FACTOR = 1.0
# Widths are rounded up to a multiple of this (vector-friendly sizes, as the recipes' widths are).
WIDTH_ROUNDING = 8
# Largest width: Auto-Keras' largest filters choice, so the scaled network stays in the searched range.
MAX_FILTERS = 512
# The rule for ResNets: the next deeper keras.applications network of the same version; 152 is the deepest.
DEEPER_RESNET = {
    "resnet50": "resnet101", "resnet101": "resnet152", "resnet152": "resnet152",
    "resnet50_v2": "resnet101_v2", "resnet101_v2": "resnet152_v2", "resnet152_v2": "resnet152_v2",
}
# keras.applications constructor per version name (Auto-Keras' names).
_RESNET_CLASSES = {
    "resnet50": "ResNet50", "resnet101": "ResNet101", "resnet152": "ResNet152",
    "resnet50_v2": "ResNet50V2", "resnet101_v2": "ResNet101V2", "resnet152_v2": "ResNet152V2",
}
# Smallest input side a keras.applications ResNet accepts; smaller images are resized up (as Auto-Keras does).
RESNET_MIN_SIDE = 32
# Block types the rule knows; the hybrid searches only these.
SCALABLE_BLOCK_TYPES = ("vanilla", "resnet")
# Spatial reductions of Auto-Keras' ClassificationHead.
REDUCTIONS = ("flatten", "global_avg", "global_max")
# Head reductions the scaled network changes. A flatten head feeds the dense layer thousands of inputs, so an
# SGD step at the recipes' peak learning rates (0.1-0.4; Auto-Keras' trials used Adam at 1e-3) moves the
# logits by thousands, and training diverges (results/example/README.md). Global average pooling is the
# baselines' own head and keeps the dense layer's inputs to the channels.
SCALED_REDUCTION = {"flatten": "global_avg"}

_IMAGE = "image_block_1/"
_CONV = _IMAGE + "conv_block_1/"
_HEAD = "classification_head_1/"


@dataclass(frozen=True)
class ConvStack:
    """Auto-Keras' ConvBlock as found or scaled: blocks of convs, each block ending in pooling and dropout."""

    kernel_size: int
    filters: tuple[tuple[int, ...], ...]  # per block, the width of each of its convs
    separable: bool
    max_pooling: bool
    dropout: float
    # Per block, whether it ends in max pooling (found blocks: as max_pooling; added ones: while the map is
    # large enough). Empty means every block follows max_pooling.
    pools: tuple[bool, ...] = ()

    @property
    def num_blocks(self) -> int:
        """Conv blocks (stages)."""
        return len(self.filters)

    @property
    def num_layers(self) -> int:
        """Convs per block."""
        return len(self.filters[0])

    @property
    def pool_size(self) -> int:
        """The pooling window and stride: kernel_size - 1, as Auto-Keras' ConvBlock."""
        return max(2, self.kernel_size - 1)

    def block_pools(self) -> tuple[bool, ...]:
        """Whether each block ends in max pooling."""
        return self.pools or (self.max_pooling,) * self.num_blocks


@dataclass(frozen=True)
class Architecture:
    """What the search found (or the rule made): the ImageBlock's network, normalisation and head."""

    block_type: str  # 'vanilla' or 'resnet'
    normalize: bool  # per-channel standardisation after scaling to [0, 1]
    reduction: str  # the head's spatial reduction: flatten, global_avg or global_max
    head_dropout: float
    conv: ConvStack | None = None  # vanilla only
    resnet_version: str = ""  # resnet only, e.g. 'resnet50_v2'

    def summary(self) -> str:
        """One readable line: the body, then normalisation and head."""
        if self.conv is not None:
            c = self.conv
            kind = "sepconv" if c.separable else "conv"
            widths = " | ".join("-".join(str(f) for f in block) for block in c.filters)
            pools = "".join("p" if p else "-" for p in c.block_pools())
            body = (f"vanilla: {c.num_blocks} blocks x {c.num_layers} {kind}{c.kernel_size}x{c.kernel_size} "
                    f"({widths}), max-pool {c.pool_size} [{pools}], dropout {c.dropout:g}")
        else:
            body = f"resnet: {self.resnet_version}"
        norm = "normalize" if self.normalize else "no normalize"
        return f"{body}; {norm}; head {self.reduction}, dropout {self.head_dropout:g}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples as lists), for the run's metadata."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def _value(values: Mapping[str, Any], name: str) -> Any:
    if name not in values:
        raise ValueError(f"the best trial's hyperparameters lack {name!r} (have: {', '.join(sorted(values))}); "
                         "the hybrid reads Auto-Keras' ImageBlock -> ClassificationHead graph only")
    return values[name]


def found_architecture(values: Mapping[str, Any]) -> Architecture:
    """The architecture a trial's active hyperparameter values describe (keras-tuner names)."""
    block_type = str(_value(values, _IMAGE + "block_type"))
    if block_type not in SCALABLE_BLOCK_TYPES:
        raise ValueError(f"the best trial uses block_type {block_type!r}, which the scale-up rule does not know; "
                         f"search only {', '.join(SCALABLE_BLOCK_TYPES)} (option block_types)")
    reduction = str(_value(values, _HEAD + "spatial_reduction_1/reduction_type"))
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown head reduction {reduction!r}; expected one of {', '.join(REDUCTIONS)}")
    common = {"block_type": block_type, "normalize": bool(values.get(_IMAGE + "normalize", False)),
              "reduction": reduction, "head_dropout": float(values.get(_HEAD + "dropout", 0.0))}
    if block_type == "resnet":
        version = str(_value(values, _IMAGE + "res_net_block_1/version"))
        if version not in DEEPER_RESNET:
            raise ValueError(f"unknown ResNet version {version!r}; expected one of {', '.join(DEEPER_RESNET)}")
        return Architecture(**common, resnet_version=version)
    n_blocks, n_layers = int(_value(values, _CONV + "num_blocks")), int(_value(values, _CONV + "num_layers"))
    filters = tuple(tuple(int(_value(values, f"{_CONV}filters_{i}_{j}")) for j in range(n_layers))
                    for i in range(n_blocks))
    conv = ConvStack(kernel_size=int(_value(values, _CONV + "kernel_size")), filters=filters,
                     separable=bool(_value(values, _CONV + "separable")),
                     max_pooling=bool(_value(values, _CONV + "max_pooling")),
                     dropout=float(_value(values, _CONV + "dropout")))
    return Architecture(**common, conv=conv)


def _widen(width: int, factor: float) -> int:
    return min(MAX_FILTERS, WIDTH_ROUNDING * math.ceil(width * factor / WIDTH_ROUNDING))


def scale_up(found: Architecture, input_shape: Sequence[int], width_factor: float = WIDTH_FACTOR) -> Architecture:
    """The deeper (and, with width_factor > 1, wider) network the rule makes of `found` for images of input_shape."""
    if width_factor <= 0:
        raise ValueError(f"width_factor must be positive, got {width_factor}")
    found = dataclasses.replace(found, reduction=SCALED_REDUCTION.get(found.reduction, found.reduction))
    if found.conv is None:
        return dataclasses.replace(found, resnet_version=DEEPER_RESNET[found.resnet_version])
    conv = found.conv
    side = min(int(input_shape[0]), int(input_shape[1]))
    pools = list(conv.block_pools())
    for pooled in pools:  # the found blocks' own downsampling ('same' pooling rounds up)
        side = math.ceil(side / conv.pool_size) if pooled else side
    filters = [list(block) for block in conv.filters]
    target = max(conv.num_blocks, min(conv.num_blocks * DEPTH_FACTOR, MAX_BLOCKS))
    while len(filters) < target:
        pooled = conv.max_pooling and math.ceil(side / conv.pool_size) >= MIN_SIDE
        filters.append([filters[-1][-1]] * conv.num_layers)
        pools.append(pooled)
        side = math.ceil(side / conv.pool_size) if pooled else side
    widened = tuple(tuple(_widen(f, width_factor) for f in block) for block in filters)
    return dataclasses.replace(found, conv=dataclasses.replace(conv, filters=widened, pools=tuple(pools)))


def build_model(arch: Architecture, input_shape: tuple[int, int, int], n_classes: int,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> Any:
    """The keras.Model for uint8 images of input_shape; mean/std (per channel, of images scaled to [0, 1])
    standardise the input when the architecture normalises."""
    import keras

    if arch.normalize and (mean is None or std is None):
        raise ValueError("this architecture normalises its input: pass the training images' per-channel mean and std")
    inputs = blocks.inputs_uint8(input_shape)
    x = blocks.normalise(inputs, mean, std) if arch.normalize else blocks.normalise(inputs)
    x = _conv_body(x, arch.conv) if arch.conv is not None else _resnet_body(x, arch.resnet_version)
    if arch.reduction == "flatten":
        x = keras.layers.Flatten(name="flatten")(x)
    elif arch.reduction == "global_avg":
        x = keras.layers.GlobalAveragePooling2D(name="global_avg")(x)
    else:
        x = keras.layers.GlobalMaxPooling2D(name="global_max")(x)
    if arch.head_dropout > 0:
        x = keras.layers.Dropout(arch.head_dropout, name="head_dropout")(x)
    x = keras.layers.Dense(n_classes, name="logits")(x)
    # float32 softmax keeps probabilities exact under a mixed-precision policy (as the baselines' head).
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"hybrid_{arch.block_type}")


def _conv_body(x: Any, conv: ConvStack) -> Any:
    """The blocks: conv-BN-ReLU per layer, then the block's max pooling and dropout."""
    import keras

    layer = keras.layers.SeparableConv2D if conv.separable else keras.layers.Conv2D
    for i, (widths, pooled) in enumerate(zip(conv.filters, conv.block_pools(), strict=True)):
        for j, width in enumerate(widths):
            x = layer(width, conv.kernel_size, padding="same", use_bias=False, name=f"block{i}_conv{j}")(x)
            x = keras.layers.BatchNormalization(momentum=blocks.BN_MOMENTUM, epsilon=blocks.BN_EPSILON,
                                                name=f"block{i}_bn{j}")(x)
            x = keras.layers.Activation("relu", name=f"block{i}_relu{j}")(x)
        if pooled:
            x = keras.layers.MaxPooling2D(conv.pool_size, padding="same", name=f"block{i}_pool")(x)
        if conv.dropout > 0:
            x = keras.layers.Dropout(conv.dropout, name=f"block{i}_dropout")(x)
    return x


def _resnet_body(x: Any, version: str) -> Any:
    """A keras.applications ResNet, random init, at native size (resized up to RESNET_MIN_SIDE), 3 channels."""
    import keras

    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    if height < RESNET_MIN_SIDE or width < RESNET_MIN_SIDE:
        height, width = max(height, RESNET_MIN_SIDE), max(width, RESNET_MIN_SIDE)
        x = keras.layers.Resizing(height, width, name="resize")(x)
    if channels == 1:
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    elif channels != 3:
        x = keras.layers.Conv2D(3, 1, padding="same", name="to_rgb")(x)
    net = getattr(keras.applications, _RESNET_CLASSES[version])
    return net(weights=None, include_top=False, input_shape=(height, width, 3))(x)
