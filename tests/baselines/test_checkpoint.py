"""Training saved after each epoch continues where it stopped, as if it had never stopped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.baselines import checkpoint, generic
from bench.baselines.training import train


class Died(Exception):
    """The process 'dies' right after a checkpoint was saved."""


def test_a_training_stopped_after_an_epoch_continues_from_it_to_the_same_model(digits_like, tmp_path: Path
                                                                              ) -> None:
    x, y = digits_like
    recipe = generic.recipe().with_overrides(epochs=4, batch_size=32)
    whole = train(recipe, x, y, 3, seed=2, history_path=tmp_path / "whole.csv")

    saves: list[str] = []

    def die_after_two(what: str) -> None:
        saves.append(what)
        if len(saves) == 2:
            raise Died

    folder = tmp_path / "checkpoint"
    with pytest.raises(Died):
        train(recipe, x, y, 3, seed=2, history_path=tmp_path / "resumed.csv", checkpoint_dir=folder,
              on_checkpoint=die_after_two)
    assert saves == [f"epoch {e} ({e * 3} of 12 steps)" for e in (1, 2)]
    resumed = train(recipe, x, y, 3, seed=2, history_path=tmp_path / "resumed.csv", checkpoint_dir=folder,
                    on_checkpoint=saves.append)
    assert saves[2:] == [f"epoch {e} ({e * 3} of 12 steps)" for e in (3, 4)]  # epochs 1-2 not trained again
    history, again = pd.read_csv(tmp_path / "whole.csv"), pd.read_csv(tmp_path / "resumed.csv")
    assert again["epoch"].tolist() == [1, 2, 3, 4]
    # The same batches, LR and momenta from the restored step on: the same losses and the same weights.
    np.testing.assert_allclose(again["loss"], history["loss"], rtol=1e-4)
    for a, b in zip(resumed.model.get_weights(), whole.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert resumed.epochs_trained == whole.epochs_trained == 4


def test_a_checkpoint_of_another_network_is_not_loaded(digits_like, tmp_path: Path) -> None:
    x, y = digits_like
    small = generic.recipe().with_overrides(epochs=1, batch_size=32)
    train(small, x, y, 3, seed=0, checkpoint_dir=tmp_path)
    assert (tmp_path / checkpoint.STATE).exists()
    # Five classes: the head's shape differs, so training starts from nothing (all of its epoch trained).
    trained = train(small, np.concatenate([x, x]), np.concatenate([y, y + 2]), 5, seed=0, checkpoint_dir=tmp_path)
    assert len(trained.history) == 1 and trained.history["fit_s"].iloc[0] > 0


def test_nothing_to_restore_from_an_empty_or_broken_folder(digits_like, tmp_path: Path) -> None:
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.optimizer.build(model.trainable_variables)
    assert checkpoint.restore(tmp_path, model) is None
    (tmp_path / checkpoint.STATE).write_text("{not json")
    (tmp_path / checkpoint.ARRAYS).write_bytes(b"garbage")
    assert checkpoint.restore(tmp_path, model) is None
