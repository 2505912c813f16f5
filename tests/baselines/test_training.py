"""The shared training loop on the generic recipe and tiny 8x8 data: history, deadline, budget scaling."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from baselines import generic
from baselines.training import HISTORY_COLUMNS, train


def test_train_writes_history_with_monotone_fit_time(digits_like, tmp_path: Path) -> None:
    x, y = digits_like
    recipe = generic.recipe().with_overrides(epochs=3, batch_size=32)
    trained = train(recipe, x, y, 3, seed=1, history_path=tmp_path / "history.csv")
    history = pd.read_csv(tmp_path / "history.csv")
    assert tuple(history.columns) == HISTORY_COLUMNS
    assert history["epoch"].tolist() == [1, 2, 3]
    assert history["fit_s"].is_monotonic_increasing and history["fit_s"].iloc[0] > 0
    assert history["val_accuracy"].between(0, 1).all() and np.isfinite(history["loss"]).all()
    assert trained.val_accuracy == pytest.approx(history["val_accuracy"].iloc[-1])
    assert trained.epochs_planned == 3 and not trained.stopped_at_deadline
    proba = trained.predict_proba(x[:7])
    assert proba.shape == (7, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert trained.params == sum(int(np.prod(w.shape)) for w in trained.model.weights)


def test_train_rejects_float_images(digits_like) -> None:
    x, y = digits_like
    with pytest.raises(TypeError, match="uint8"):
        train(generic.recipe(), x.astype(np.float32), y, 3)


def test_train_stops_at_the_deadline_and_shrinks_the_schedule(digits_like, tmp_path: Path) -> None:
    x, y = digits_like
    recipe = generic.recipe().with_overrides(epochs=10_000, batch_size=16)
    budget = 12.0
    start = time.monotonic()
    trained = train(recipe, x, y, 3, deadline=start + budget, history_path=tmp_path / "history.csv")
    elapsed = time.monotonic() - start
    # Generous slack: one epoch plus one validation pass on a loaded machine.
    assert elapsed < budget + 10
    assert 1 <= len(trained.history) < 10_000
    assert trained.epochs_planned < 10_000  # the schedule was re-planned to fit, not just cut


def test_past_deadline_trains_nothing(digits_like) -> None:
    x, y = digits_like
    trained = train(generic.recipe(), x, y, 3, deadline=time.monotonic() - 1)
    assert trained.history.empty and trained.val_accuracy is None
    assert trained.predict_proba(x[:3]).shape == (3, 3)
