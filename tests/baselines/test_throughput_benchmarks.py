"""Training-step throughput (images/s) of each recipe on synthetic data of the real shapes.

Run: pytest tests/baselines/test_throughput_benchmarks.py --benchmark-only -m '' -s
Each benchmark compiles the recipe's model, warms up one pass, then times passes over a few batches with the
training loop's own step function (and the project's kernels, bench.baselines.kernels), and beside it, on the
same batches in the same test, plain `model.fit` of the same network in Keras' stock layers, in the same
precision: float32, and the policy `--precision auto` picks on this machine (mixed bfloat16 on chips with native
bf16). A third figure, model.fit of the network with the project's kernels, separates what the loop adds from
what the kernels add. images/s and ratios land in benchmark.extra_info (and the JSON report with
--benchmark-json). `resnet20-reference` is a textbook ResNet-20 (He et al. 2016, 0.27 M parameters)
trained the same way, a yardstick for what this machine does with a well-known network, measured in the same session.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from bench.baselines import cifar10, generic, kernels, malaria, resnet2019
from bench.baselines.blocks import linear_schedule
from bench.baselines.keras_support import set_precision
from bench.baselines.training import Batches, Recipe, compile_model, train_steps, use_xla
from bench.precision import choose
from tests.baselines.conftest import synthetic_images


class ResNet20:
    """A stand-in recipe module: ResNet-20 for CIFAR-10 (3 stages x 3 basic blocks, widths 16/32/64)."""

    @staticmethod
    def build(shape: tuple[int, int, int], n_classes: int) -> keras.Model:
        layers = keras.layers
        inputs = keras.Input(shape, dtype="uint8")
        x = layers.Rescaling(1 / 255)(inputs)
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(x)))
        for stage, width in enumerate((16, 32, 64)):
            for block in range(3):
                stride = 2 if stage and not block else 1
                y = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(x)
                y = layers.ReLU()(layers.BatchNormalization()(y))
                y = layers.BatchNormalization()(layers.Conv2D(width, 3, padding="same", use_bias=False)(y))
                if stride > 1:
                    x = layers.Conv2D(width, 1, strides=stride, use_bias=False)(x)
                x = layers.ReLU()(layers.Add()([x, y]))
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(n_classes, activation="softmax")(x))

    @staticmethod
    def recipe() -> Recipe:
        return Recipe(name="resnet20-reference", build=ResNet20.build, epochs=1, batch_size=128, peak_lr=0.1,
                      augment=cifar10.recipe().augment)


class Cifar10Short:
    """A stand-in recipe module for the cifar10 'short' preset."""

    @staticmethod
    def recipe() -> Recipe:
        return cifar10.recipe("short")

# Timed passes over the batches, for the recipe's loop and for plain model.fit alike.
ROUNDS = 3
# recipe module, image shape, classes, batches per timed pass (few for the big CIFAR batches)
CASES = [
    pytest.param(cifar10, (32, 32, 3), 10, 4, id="cifar10"),
    pytest.param(Cifar10Short, (32, 32, 3), 10, 8, id="cifar10-short"),
    pytest.param(ResNet20, (32, 32, 3), 10, 16, id="resnet20-reference"),
    pytest.param(malaria, (64, 64, 3), 2, 6, id="malaria"),
    pytest.param(resnet2019, (64, 64, 3), 2, 10, id="resnet2019"),
    pytest.param(generic, (8, 8, 1), 10, 20, id="generic-digits"),
]


def fit_images_per_s(recipe: Recipe, shape: tuple[int, int, int], x, y, n_classes: int) -> float:
    """What model.fit gets from the recipe's network, in the precision set now: Keras' own compile defaults
    (no XLA on a CPU), no augmentation (less work than the recipe's loop does). Inside kernels.stock() the
    network is traced with Keras' stock layers: the plain code a user would write."""
    model = recipe.build(shape, n_classes)
    if recipe.prepare is not None:
        recipe.prepare(model, x)
    model.compile(optimizer=keras.optimizers.SGD(recipe.peak_lr / 10, momentum=recipe.momentum,
                                                 nesterov=recipe.nesterov),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing))
    targets = np.eye(n_classes, dtype=np.float32)[y]
    model.fit(x, targets, batch_size=recipe.batch_size, epochs=1, verbose=0)  # compile and warm up
    # One call over all the passes, as plain code trains: fit's per-call set-up is paid once.
    t0 = time.perf_counter()
    model.fit(x, targets, batch_size=recipe.batch_size, epochs=ROUNDS, verbose=0)
    return ROUNDS * len(x) / (time.perf_counter() - t0)


@pytest.fixture(params=["float32", "auto"])
def policy(request):
    """The dtype policy the recipe trains in: float32, and what `auto` picks on this machine."""
    chosen = choose(request.param).policy
    if request.param == "auto" and chosen == "float32":
        pytest.skip("auto picks float32 on this machine: the float32 case covers it")
    set_precision(chosen)
    yield chosen
    set_precision("float32")


@pytest.mark.slow
@pytest.mark.parametrize(("module", "shape", "n_classes", "n_batches"), CASES)
def test_training_throughput(benchmark, policy, module, shape, n_classes, n_batches) -> None:
    recipe = module.recipe()
    x, y = synthetic_images(recipe.batch_size * n_batches, shape, n_classes)
    model = recipe.build(shape, n_classes)
    if recipe.prepare is not None:
        recipe.prepare(model, x)
    compile_model(model, recipe, linear_schedule(recipe.peak_lr, 10, 10_000))
    feed = Batches.for_recipe(recipe, x, y, n_classes, seed=0)
    train_steps(model, feed, len(feed))  # compile and warm up
    benchmark.pedantic(train_steps, args=(model, feed, len(feed)), rounds=ROUNDS, iterations=1)
    images = len(feed) * feed.batch_size
    own = images / benchmark.stats.stats.mean
    with kernels.stock():
        plain = fit_images_per_s(recipe, shape, x[:images], y[:images], n_classes)
    fit_own_kernels = fit_images_per_s(recipe, shape, x[:images], y[:images], n_classes)
    benchmark.extra_info.update(
        images_per_pass=images, batch_size=feed.batch_size, backend=keras.backend.backend(), policy=policy,
        xla=str(use_xla(recipe)), images_per_s=own, best_images_per_s=images / benchmark.stats.stats.min,
        plain_fit_images_per_s=plain, own_over_plain=own / plain,
        fit_project_kernels_images_per_s=fit_own_kernels, own_over_fit_project_kernels=own / fit_own_kernels)
    print(f"\n{recipe.name} [{policy}, XLA {use_xla(recipe)}]: own loop {own:.0f} images/s, plain model.fit "
          f"{plain:.0f} images/s: {own / plain:.2f}x; model.fit with the project's kernels "
          f"{fit_own_kernels:.0f} images/s: {own / fit_own_kernels:.2f}x (means of {ROUNDS} passes)")
    assert own > 0 and plain > 0 and fit_own_kernels > 0
