"""The `autokeras` variant's search space: Auto-Keras' ImageBlock space with every download and upscale removed.

Auto-Keras' ImageBlock chooses block_type in {resnet, xception, vanilla, efficient}; the Keras-application
blocks (resnet, xception, efficient) each tune `pretrained` (ImageNet weights: a download) and
`imagenet_size` (resize the input to 224 px). The space here is the same graph (ImageInput -> ImageBlock ->
ClassificationHead) with hyperparameters declared in advance, so the tuner cannot pick those values:
block_type only from the allowed block types, pretrained fixed False and imagenet_size fixed False.
Hyperparameters not declared here keep Auto-Keras' own choices (see bench/systems/autokeras.py).
"""

from __future__ import annotations

from typing import Any

# Block types an ImageBlock can use, and the name of each Keras-application sub-block inside it.
BLOCK_TYPES = ("vanilla", "resnet", "xception", "efficient")
_APP_BLOCKS = {"resnet": "res_net_block_1", "xception": "xception_block_1", "efficient": "efficient_net_block_1"}
_PREFIX = "image_block_1"

# Auto-Keras' first two initial trials for images (autokeras.tuners.task_specific.IMAGE_CLASSIFIER), the
# ResNet50 one at the native input size instead of 224 px. Its third (a pretrained EfficientNetB7 at
# 224 px, learning rate 2e-5) is dropped: it needs a download and fine-tuning it from scratch is not it.
_INITIAL = {
    "vanilla": {
        "image_block_1/block_type": "vanilla",
        "image_block_1/normalize": True,
        "image_block_1/augment": False,
        "image_block_1/conv_block_1/kernel_size": 3,
        "image_block_1/conv_block_1/num_blocks": 1,
        "image_block_1/conv_block_1/num_layers": 2,
        "image_block_1/conv_block_1/max_pooling": True,
        "image_block_1/conv_block_1/separable": False,
        "image_block_1/conv_block_1/dropout": 0.25,
        "image_block_1/conv_block_1/filters_0_0": 32,
        "image_block_1/conv_block_1/filters_0_1": 64,
        "classification_head_1/spatial_reduction_1/reduction_type": "flatten",
        "classification_head_1/dropout": 0.5,
        "optimizer": "adam",
        "learning_rate": 1e-3,
    },
    "resnet": {
        "image_block_1/block_type": "resnet",
        "image_block_1/normalize": True,
        "image_block_1/augment": True,
        "image_block_1/image_augmentation_1/horizontal_flip": True,
        "image_block_1/image_augmentation_1/vertical_flip": True,
        "image_block_1/image_augmentation_1/contrast_factor": 0.0,
        "image_block_1/image_augmentation_1/rotation_factor": 0.0,
        "image_block_1/image_augmentation_1/translation_factor": 0.1,
        "image_block_1/image_augmentation_1/zoom_factor": 0.0,
        "image_block_1/res_net_block_1/pretrained": False,
        "image_block_1/res_net_block_1/version": "resnet50",
        "image_block_1/res_net_block_1/imagenet_size": False,
        "classification_head_1/spatial_reduction_1/reduction_type": "global_avg",
        "classification_head_1/dropout": 0,
        "optimizer": "adam",
        "learning_rate": 1e-3,
    },
}


def parse_block_types(value: Any) -> tuple[str, ...]:
    """Block types from a tuple/list or a comma-separated string; unknown names raise ValueError."""
    names = [s.strip() for s in value.split(",")] if isinstance(value, str) else [str(s) for s in value]
    names = [n for n in names if n]
    unknown = sorted(set(names) - set(BLOCK_TYPES))
    if not names or unknown:
        raise ValueError(f"block_types must name some of {', '.join(BLOCK_TYPES)}; got {value!r}")
    return tuple(dict.fromkeys(names))


def fair_hyperparameters(block_types: tuple[str, ...]) -> Any:
    """keras-tuner HyperParameters declaring block_type's choices and fixing pretrained/imagenet_size False."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    choice = f"{_PREFIX}/block_type"
    if len(block_types) == 1:
        hp.Fixed(choice, block_types[0])
    else:
        hp.Choice(choice, list(block_types))
    for block_type in block_types:
        if block_type not in _APP_BLOCKS:
            continue
        # Same name and condition as the ImageBlock declares them, so these win over the library's.
        with hp.conditional_scope(choice, [block_type]):
            hp.Fixed(f"{_PREFIX}/{_APP_BLOCKS[block_type]}/pretrained", False)
            hp.Fixed(f"{_PREFIX}/{_APP_BLOCKS[block_type]}/imagenet_size", False)
    return hp


def fair_initial_hps(block_types: tuple[str, ...]) -> list[dict[str, Any]]:
    """The library's initial trials that fit the allowed block types, in the library's order."""
    return [dict(_INITIAL[b]) for b in ("vanilla", "resnet") if b in block_types]


def classification_head() -> Any:
    """Auto-Keras' ClassificationHead whose last activation computes in float32 under any dtype policy.

    Under a mixed policy Auto-Keras' own head would output bfloat16 (or float16) probabilities: 8 bits of
    mantissa, so the loss and the predicted probabilities lose precision. Keras' mixed-precision guide asks
    for a float32 output layer, which is what the hand-built recipes have (bench.baselines.blocks); this
    gives Auto-Keras the same. Under float32 it builds exactly Auto-Keras' head.
    """
    import keras
    import tree
    from autokeras.blocks import heads, reduction
    from autokeras.utils import utils

    class Float32ClassificationHead(heads.ClassificationHead):
        """ClassificationHead.build (Auto-Keras 3.0.0) with dtype='float32' on the final activation."""

        def __init__(self, **kwargs: Any) -> None:
            # Named as Auto-Keras names its own head (class name + a per-class counter, snake case), so its
            # hyperparameters stay 'classification_head_1/...': the fair space and initial trials name them so.
            if not kwargs.get("name"):
                prefix = heads.ClassificationHead.__name__
                kwargs["name"] = utils.to_snake_case(f"{prefix}_{keras.backend.get_uid(prefix)}")
            super().__init__(**kwargs)

        def build(self, hp: Any, inputs: Any = None) -> Any:
            inputs = tree.flatten(inputs)
            utils.validate_num_inputs(inputs, 1)
            output_node = inputs[0]
            if len(output_node.shape) > 2:
                output_node = reduction.SpatialReduction().build(hp, output_node)
            dropout = self.dropout if self.dropout is not None else hp.Choice("dropout", [0.0, 0.25, 0.5],
                                                                              default=0)
            if dropout > 0:
                output_node = keras.layers.Dropout(dropout)(output_node)
            output_node = keras.layers.Dense(self.shape[-1])(output_node)
            if isinstance(self.loss, keras.losses.BinaryCrossentropy):
                return keras.layers.Activation("sigmoid", name=self.name, dtype="float32")(output_node)
            return keras.layers.Softmax(name=self.name, dtype="float32")(output_node)

    return Float32ClassificationHead()
