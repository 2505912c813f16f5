"""The resnet / resnet-2019 adapters: cheap import, recipe dispatch, option checks, a run on digits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.budget import Budget
from bench.core.options import ConfigError
from bench.datasets.registry import load_data
from bench.systems import FitContext, make_system


def test_importing_the_adapter_does_not_import_keras() -> None:
    code = "import sys, bench.systems.resnet; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(("dataset", "expected"), [
    ("cifar10", "cifar10"), ("malaria", "malaria"), ("digits", "generic"), ("folder:/x", "generic"),
])
def test_auto_recipe_follows_the_dataset(dataset: str, expected: str) -> None:
    assert make_system("resnet").recipe_name(dataset) == expected


def test_auto_recipe_takes_the_short_cifar10_preset_under_small_budgets() -> None:
    system = make_system("resnet")
    assert system.recipe_name("cifar10", 15 * 60) == "cifar10-short"
    assert system.recipe_name("cifar10", 45 * 60) == system.recipe_name("cifar10", None) == "cifar10"
    assert system.recipe_name("malaria", 60) == "malaria"
    assert make_system("resnet", {"recipe": "cifar10"}).recipe_name("cifar10", 60) == "cifar10"


def test_recipe_option_overrides_the_dataset_and_epochs_apply() -> None:
    system = make_system("resnet", {"recipe": "cifar10-short", "epochs": 2, "batch_size": 64})
    assert system.recipe_name("malaria") == "cifar10-short"
    recipe = system.make_recipe("malaria")
    assert (recipe.name, recipe.epochs, recipe.batch_size) == ("cifar10-short", 2, 64)
    assert make_system("resnet").make_recipe("malaria").name == "malaria-fast"
    assert make_system("resnet").make_recipe("malaria").max_scale_up == 4.0
    assert make_system("resnet", {"max_scale_up": 16}).make_recipe("malaria").max_scale_up == 16.0


def test_resnet_2019_always_runs_the_2019_recipe() -> None:
    system = make_system("resnet-2019")
    assert system.name == "resnet-2019" and system.role == "baseline"
    assert system.recipe_name("cifar10") == "resnet2019"
    recipe = system.make_recipe("cifar10")
    assert (recipe.name, recipe.epochs, recipe.batch_size) == ("resnet-2019", 50, 32)


@pytest.mark.parametrize(("name", "options", "message"), [
    ("resnet", {"bogus": 1}, "unknown option"),
    ("resnet", {"recipe": "vgg"}, "valid: auto, cifar10"),
    ("resnet", {"epochs": 0}, "epochs must be a positive integer"),
    ("resnet", {"batch_size": 1.5}, "batch_size must be a positive integer"),
    ("resnet", {"max_scale_up": 0.5}, "max_scale_up must be a number >= 1"),
    ("resnet", {"max_scale_up": "big"}, "max_scale_up must be a number >= 1"),
    ("resnet-2019", {"recipe": "cifar10"}, "unknown option.*fixes recipe=resnet2019"),
])
def test_bad_options_are_rejected(name: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_system(name, options)


def test_run_on_digits_records_history_val_accuracy_and_params(tmp_path: Path) -> None:
    data = load_data("digits", max_train=300, max_test=100)
    ctx = FitContext(budget=Budget(), seed=0, workdir=tmp_path / "work", run_dir=tmp_path,
                     n_classes=data.n_classes, class_names=data.class_names, dataset="digits",
                     keep_models=True)
    result = make_system("resnet", {"epochs": 2}).run(data, ctx)
    assert result.probabilities.shape == (100, 10)
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history.columns) == ["epoch", "fit_s", "loss", "val_accuracy", "planned_epochs"]
    assert len(history) == 2
    assert result.extras["val_accuracy"] == pytest.approx(history["val_accuracy"].iloc[-1])
    assert result.extras["recipe"] == "generic" and result.extras["epochs"] == 2
    assert 1e4 < result.params < 1e6
    assert (tmp_path / "model.keras").exists()
    assert np.allclose(result.probabilities.sum(axis=1), 1, atol=1e-5)
