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
The recipes, shapes and the model.fit yardstick are the study's own: experiments/throughput.py.
"""

from __future__ import annotations

import keras
import pytest

from bench.baselines import kernels
from bench.baselines.blocks import linear_schedule
from bench.baselines.keras_support import set_precision
from bench.baselines.training import Batches, compile_model, train_steps, use_xla
from bench.core.precision import choose
from experiments.throughput import CASES, ROUNDS, fit_images_per_s
from tests.baselines.conftest import synthetic_images


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
@pytest.mark.parametrize(("module", "shape", "n_classes", "n_batches"),
                         [pytest.param(c.module, c.shape, c.n_classes, c.n_batches, id=c.name) for c in CASES])
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
