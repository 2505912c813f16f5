"""Training-step throughput (images/s) of each recipe on synthetic data of the real shapes.

Run: pytest tests/baselines/test_throughput_benchmarks.py --benchmark-only -m '' -s
Each benchmark compiles the recipe's model, warms up one pass, then times passes over a few batches;
images/s lands in benchmark.extra_info (and the JSON report with --benchmark-json).
"""

from __future__ import annotations

import keras
import pytest

from baselines import cifar10, generic, malaria, resnet2019
from baselines.blocks import linear_schedule
from baselines.training import Batches, make_optimizer
from tests.baselines.conftest import synthetic_images

# recipe module, image shape, classes, batches per timed pass (few for the big CIFAR batches)
CASES = [
    pytest.param(cifar10, (32, 32, 3), 10, 2, id="cifar10"),
    pytest.param(malaria, (64, 64, 3), 2, 6, id="malaria"),
    pytest.param(resnet2019, (64, 64, 3), 2, 10, id="resnet2019"),
    pytest.param(generic, (8, 8, 1), 10, 20, id="generic-digits"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("module", "shape", "n_classes", "n_batches"), CASES)
def test_training_throughput(benchmark, module, shape, n_classes, n_batches) -> None:
    recipe = module.recipe()
    x, y = synthetic_images(recipe.batch_size * n_batches, shape, n_classes)
    model = recipe.build(shape, n_classes)
    if recipe.prepare is not None:
        recipe.prepare(model, x)
    model.compile(optimizer=make_optimizer(recipe, linear_schedule(recipe.peak_lr, 10, 10_000)),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing))
    feed = Batches(x, y, n_classes, recipe.batch_size, recipe.augment, seed=0)
    model.fit(feed, epochs=1, verbose=0)  # compile and warm up
    benchmark.pedantic(model.fit, args=(feed,), kwargs={"epochs": 1, "verbose": 0}, rounds=3, iterations=1)
    images = len(feed) * feed.batch_size
    benchmark.extra_info.update(
        images_per_pass=images, batch_size=feed.batch_size, backend=keras.backend.backend(),
        images_per_s=images / benchmark.stats.stats.mean, best_images_per_s=images / benchmark.stats.stats.min)
    print(f"\n{recipe.name}: {images / benchmark.stats.stats.mean:.0f} images/s (mean of 3 passes)")
    assert benchmark.stats.stats.mean > 0
