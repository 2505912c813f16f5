"""autokeras-hybrid: the scale-up rule on a known architecture (no Auto-Keras), and the system end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.options import ConfigError
from bench.datasets.base import ImageData
from bench.measure import flops
from bench.systems import FitContext, SystemResult, make_system
from bench.systems.autokeras_hybrid import MIN_SUBSET_PER_CLASS, SEARCH_SHARE
from bench.systems.autokeras_space import fair_initial_hps
from bench.systems.scale_up import MAX_BLOCKS, MAX_FILTERS, found_architecture, scale_up
from bench.systems.search.budget import allowed_overshoot_s
from bench.systems.search.log import TRIAL_COLUMNS
from tests.bench.systems.searches import (
    CLASSES,
    StepClock,
    accuracy,
    assert_no_tuner_files,
    assert_valid_probabilities,
    learnt,
    majority_rate,
    run_search,
    toy_data,
)


def _small_cnn() -> dict[str, object]:
    """Auto-Keras' own first trial for images: 1 block of 3x3 convs 32 and 64, max-pool, dropout, flatten head."""
    return fair_initial_hps(("vanilla",))[0]


def _conv_widths(model: object) -> list[int]:
    return [layer.filters for layer in model.layers if "_conv" in layer.name]


# --- the rule, on a known architecture ------------------------------------------------------------------


def test_the_found_architecture_is_read_from_the_trial_values() -> None:
    found = found_architecture(_small_cnn())
    assert found.block_type == "vanilla" and found.normalize
    assert found.conv is not None
    assert found.conv.filters == ((32, 64),) and found.conv.kernel_size == 3
    assert found.conv.max_pooling and not found.conv.separable and found.conv.dropout == 0.25
    assert (found.reduction, found.head_dropout) == ("flatten", 0.5)
    assert found.summary() == ("vanilla: 1 blocks x 2 conv3x3 (32-64), max-pool 2 [p], dropout 0.25; "
                               "normalize; head flatten, dropout 0.5")


def test_added_blocks_downsample_while_the_map_allows() -> None:
    """64 px: the found block pools 64 -> 32; the added one, at the last width, pools 32 -> 16. The flatten
    head becomes global average pooling; normalisation and head dropout stay."""
    scaled = scale_up(found_architecture(_small_cnn()), (64, 64, 3))
    assert scaled.conv is not None
    assert scaled.conv.filters == ((32, 64), (64, 64))
    assert scaled.conv.block_pools() == (True, True)
    assert (scaled.normalize, scaled.reduction, scaled.head_dropout) == (True, "global_avg", 0.5)


def test_added_blocks_stop_downsampling_at_the_smallest_map() -> None:
    """8x8 digits: the found block leaves 4x4; a further pool would go below MIN_SIDE, so the added block keeps
    4x4 and the last width."""
    scaled = scale_up(found_architecture(_small_cnn()), (8, 8, 1))
    assert scaled.conv is not None
    assert scaled.conv.filters == ((32, 64), (64, 64))
    assert scaled.conv.block_pools() == (True, False)


def test_widths_scale_round_and_cap() -> None:
    values = {**_small_cnn(), "image_block_1/conv_block_1/num_blocks": 3,
              "image_block_1/conv_block_1/num_layers": 1, "image_block_1/conv_block_1/filters_0_0": 20,
              "image_block_1/conv_block_1/filters_1_0": 256, "image_block_1/conv_block_1/filters_2_0": 512}
    scaled = scale_up(found_architecture(values), (64, 64, 3), width_factor=1.5)
    assert scaled.conv is not None
    assert scaled.conv.num_blocks == MAX_BLOCKS == 6  # 3 doubled, at the cap
    # 20 x 1.5 = 30 rounds up to 32; 256 x 1.5 = 384; 512 x 1.5 stays at the cap, as do the added blocks.
    assert [block[0] for block in scaled.conv.filters] == [32, 384, 512, MAX_FILTERS, MAX_FILTERS, MAX_FILTERS]
    # 64 -> 32 -> 16 -> 8 by the found blocks, 8 -> 4 by the first added one, then no further pooling.
    assert scaled.conv.block_pools() == (True, True, True, True, False, False)


def test_resnets_get_the_next_deeper_network() -> None:
    values = {"image_block_1/block_type": "resnet", "image_block_1/normalize": False,
              "image_block_1/res_net_block_1/version": "resnet50_v2",
              "classification_head_1/spatial_reduction_1/reduction_type": "global_avg",
              "classification_head_1/dropout": 0.0}
    found = found_architecture(values)
    assert scale_up(found, (32, 32, 3)).resnet_version == "resnet101_v2"
    deepest = found_architecture({**values, "image_block_1/res_net_block_1/version": "resnet152"})
    assert scale_up(deepest, (32, 32, 3)).resnet_version == "resnet152"


def test_unknown_architectures_are_named() -> None:
    with pytest.raises(ValueError, match="'image_block_1/conv_block_1/kernel_size'"):
        found_architecture({k: v for k, v in _small_cnn().items() if not k.endswith("kernel_size")})
    with pytest.raises(ValueError, match="block_type 'xception'.*option block_types"):
        found_architecture({**_small_cnn(), "image_block_1/block_type": "xception"})


def test_the_scaled_network_has_the_rule_s_layers() -> None:
    """Built by hand: conv-BN-ReLU per layer at the scaled widths, the blocks' pools, a softmax over the classes."""
    from bench.systems.scale_up import build_model

    scaled = scale_up(found_architecture(_small_cnn()), (8, 8, 1))
    model = build_model(scaled, (8, 8, 1), 10, mean=[0.5], std=[0.25])
    assert _conv_widths(model) == [32, 64, 64, 64]
    names = [layer.name for layer in model.layers]
    assert sum("_bn" in n for n in names) == 4
    assert [n for n in names if n.endswith("_pool")] == ["block0_pool"]
    assert model.get_layer("global_avg").output.shape[-1] == 64
    assert model.input.dtype == "uint8" and model.output.shape[-1] == 10
    x = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1)).astype(np.uint8)
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="mean and std"):
        build_model(scaled, (8, 8, 1), 10)


@pytest.mark.slow
def test_a_scaled_resnet_builds_from_small_grayscale_images() -> None:
    """ResNet101 (the rule's step from ResNet50) from 8x8 grey images: resized to 32 px, three channels."""
    from bench.systems.scale_up import build_model

    values = {"image_block_1/block_type": "resnet", "image_block_1/normalize": False,
              "image_block_1/res_net_block_1/version": "resnet50",
              "classification_head_1/spatial_reduction_1/reduction_type": "global_avg",
              "classification_head_1/dropout": 0.0}
    model = build_model(scale_up(found_architecture(values), (8, 8, 1)), (8, 8, 1), 10)
    assert model.get_layer("resnet101").input.shape[1:] == (32, 32, 3)
    proba = model.predict(np.zeros((2, 8, 8, 1), np.uint8), verbose=0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


# --- the system -------------------------------------------------------------------------------------


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="xception cannot be scaled up"):
        make_system("autokeras-hybrid", {"block_types": "vanilla,xception"})
    with pytest.raises(ConfigError, match="subset_fraction"):
        make_system("autokeras-hybrid", {"subset_fraction": 0})
    with pytest.raises(ConfigError, match="width_factor"):
        make_system("autokeras-hybrid", {"width_factor": -1})


def test_import_is_cheap() -> None:
    """Listing systems must not import Keras or Auto-Keras."""
    code = ("import sys, bench.systems.autokeras_hybrid; "
            "assert not {'keras', 'autokeras', 'tensorflow'} & set(sys.modules), 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_subset_is_stratified_and_at_least_a_few_per_class() -> None:
    system = make_system("autokeras-hybrid", {"subset_fraction": 0.1})
    y = np.repeat([0, 1, 2], [600, 300, 100])
    x = np.arange(len(y))[:, None, None, None].astype(np.uint8)
    _, ys = system.subset(x, y, seed=0)
    assert np.bincount(ys).tolist() == [60, 30, 10]
    _, tiny = system.subset(x[:300], np.repeat([0, 1, 2], 100), seed=0)  # 10% would be 30 images
    assert np.bincount(tiny).tolist() == [MIN_SUBSET_PER_CLASS] * 3


@pytest.fixture(scope="module")
def data() -> ImageData:
    return toy_data()


def _assert_clean(result: SystemResult, ctx: FitContext, data: ImageData) -> None:
    """The scaled network's training curve, the trials and the model asked for are all the run leaves."""
    assert_no_tuner_files(ctx, kept=("history.csv", "trials.csv"))
    assert_valid_probabilities(result, data)


@pytest.mark.parametrize(("dataset", "recipe", "module", "epochs"), [
    # Each about 12 s of real training: the scaled network's path is also run (step clock) in the total budget
    # test below.
    pytest.param("toy", "generic", "generic", "EPOCHS", marks=pytest.mark.slow),
    # The same path with another recipe's schedule: minutes of training for no line the first case misses.
    pytest.param("cifar10", "cifar10-full", "cifar10", "FULL_EPOCHS", marks=pytest.mark.slow),
    pytest.param("malaria", "malaria-fast", "malaria", "EPOCHS", marks=pytest.mark.slow)])
def test_a_trial_budget_scales_the_first_trial_and_trains_the_recipe_s_schedule(
        data: ImageData, tmp_path: Path, dataset: str, recipe: str, module: str, epochs: str) -> None:
    """t1: the one trial is Auto-Keras' small CNN; its scaled version trains, on all the images, the own
    schedule of the recipe the `resnet` system runs on that data set. val_accuracy is that network's last
    epoch's, search_val_accuracy the trial's."""
    import importlib

    schedule = getattr(importlib.import_module(f"bench.baselines.{module}"), epochs)
    result, ctx, rows = run_search("autokeras-hybrid", "t1", data, tmp_path, dataset=dataset, keep_models=True,
                                   block_types="vanilla", epochs=2)
    assert [r["status"] for r in rows] == ["completed"] and result.trials == 1
    extras = result.extras
    assert extras["found_architecture"] == found_architecture(_small_cnn()).summary()
    assert extras["scaled_spec"]["conv"]["filters"] == [[32, 64], [64, 64]]
    assert extras["scaled_spec"]["conv"]["pools"] == [True, True]  # 16 px: 16 -> 8 -> 4
    assert extras["subset_size"] == MIN_SUBSET_PER_CLASS * len(CLASSES)
    assert extras["recipe"] == f"hybrid-{recipe}" and extras["epochs"] == schedule
    assert extras["overshoot_s"] is None and extras["search_s"] > 0 and extras["refit_s"] > 0
    history = pd.read_csv(ctx.run_dir / "history.csv")
    assert len(history) == schedule
    # The curve's clock starts with fit: the first epoch ends after the search and within the whole fit.
    assert extras["search_s"] < history["fit_s"].iloc[0] <= history["fit_s"].iloc[-1] <= result.fit_s
    assert extras["val_accuracy"] == pytest.approx(history["val_accuracy"].iloc[-1])
    assert extras["search_val_accuracy"] == pytest.approx(float(rows[0]["val_accuracy"]), abs=1e-5)
    assert result.params and result.params > 0
    _assert_clean(result, ctx, data)
    # FLOPs: the trial's, then the scaled network's training (every image of its steps) and predictions.
    import keras

    forward = flops.count(keras.models.load_model(ctx.run_dir / "model.keras", compile=False))
    assert forward.complete and float(rows[0]["train_flops"]) > 0
    assert extras["train_flops"] == pytest.approx(float(rows[0]["train_flops"])
                                                  + 3 * forward.forward * extras["examples_trained"], rel=1e-5)
    assert extras["predict_flops"] > 0 and extras["flops_uncounted"] == ""


def test_the_overshoot_is_measured_from_the_training_s_end_under_total_and_the_search_s_under_search() -> None:
    from bench.systems.search import SearchLog

    total = make_system("autokeras-hybrid")
    total._train_deadline = 50.0
    total._log = SearchLog(t0=0.0, deadline=20.0, scope="search")  # the search phase's own deadline
    assert total.budget_end() == 50.0
    searched = make_system("autokeras-hybrid", {"budget_scope": "search"})
    assert searched.budget_end() is None  # nothing searched yet
    searched._log = SearchLog(t0=0.0, deadline=40.0, scope="search")
    assert searched.budget_end() == 40.0


# A second real search of the same system in the default run; its scope's rules are the test above's and those of
# autokeras' own budget_scope=search run on the step clock (tests/bench/systems/test_autokeras.py).
@pytest.mark.slow
def test_a_budget_scoped_to_the_search_is_followed_by_the_recipe_s_schedule(
        data: ImageData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """budget_scope=search (the 2019 protocol), each training step "taking" a second: the whole budget bounds the
    search, which ends at the running trial's next batch, then training runs the recipe's own schedule; the
    overshoot is the search's."""
    from bench.baselines import generic

    clock = StepClock(step_s=1.0).install(monkeypatch)
    result, ctx, rows = run_search("autokeras-hybrid", "15s", data, tmp_path, budget_scope="search",
                                   block_types="vanilla")
    extras = result.extras
    assert 0 <= extras["overshoot_s"] <= clock.step_s  # the step that crossed the deadline, no more
    assert not any(r["error"] for r in rows) and rows[-1]["status"] == "stopped"
    assert extras["search_s"] >= 15 - 1  # the search had the whole budget
    assert extras["epochs"] == generic.EPOCHS and not extras["stopped_at_deadline"]
    assert extras["search_s"] + extras["refit_s"] <= result.fit_s + 0.5
    _assert_clean(result, ctx, data)


def _assert_total_budget_kept(result: SystemResult, rows: list[dict[str, str]], budget_s: float) -> None:
    """Search and training end within the allowed overshoot of the budget, the search within its share (plus the
    overshoot a running trial may take), with trials written and the scaled network not the found one."""
    extras = result.extras
    allowed = allowed_overshoot_s(budget_s)
    assert result.fit_s <= budget_s + allowed
    assert 0 <= extras["overshoot_s"] <= allowed
    assert extras["search_s"] <= SEARCH_SHARE * budget_s + allowed
    assert extras["search_s"] + extras["refit_s"] <= result.fit_s + 0.5
    assert tuple(rows[0]) == TRIAL_COLUMNS and result.trials == len(rows) >= 1
    assert extras["scaled_spec"] != extras["found_spec"]


def test_a_total_budget_bounds_search_and_training_together(
        data: ImageData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """60 s scoped 'total', each training step "taking" half a second: the search stops at its share of the
    budget, the scaled network's schedule is fitted to the rest and ends by the budget's end, and learns."""
    clock = StepClock(step_s=0.5).install(monkeypatch)
    result, ctx, rows = run_search("autokeras-hybrid", "60s", data, tmp_path, keep_models=True, block_types="vanilla")
    _assert_total_budget_kept(result, rows, 60)
    extras = result.extras
    # Each phase ends at most one step past its own end.
    assert extras["search_s"] <= SEARCH_SHARE * 60 + clock.step_s
    assert extras["overshoot_s"] <= clock.step_s
    assert learnt(accuracy(result, data), len(data.y_test), majority_rate(data))
    _assert_clean(result, ctx, data)


@pytest.mark.slow  # about a minute of real training; the same rules are checked on a step clock above
def test_a_total_budget_on_digits_bounds_search_and_training_together(tmp_path: Path) -> None:
    """The overshoot bound on real data and real time: 40 s scoped 'total' on digits, with an accuracy above the
    floor."""
    from bench.datasets import load_data

    digits = load_data("digits")
    result, ctx, rows = run_search("autokeras-hybrid", "40s", digits, tmp_path, dataset="digits")
    _assert_total_budget_kept(result, rows, 40)
    assert learnt(accuracy(result, digits), len(digits.y_test), majority_rate(digits))
    _assert_clean(result, ctx, digits)
