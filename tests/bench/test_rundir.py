"""The run folder's writers: predictions.csv as amlb reads it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from bench import rundir


def test_written_probabilities_sum_to_one_at_the_precision_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(10, 0.3), size=2000)  # many small entries: rounding drifts the sums
    proba[0] = [1 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0, 0, 0, 0]  # a tie: 0.333333 x 3 would sum to 0.999999
    y = rng.integers(0, 10, 2000)
    names = tuple(f"c{i}" for i in range(10))
    path = tmp_path / rundir.PREDICTIONS
    rundir.write_predictions(path, proba, y, names)
    frame = pd.read_csv(path, dtype=str)
    sums = frame[list(names)].map(Decimal).sum(axis=1)
    assert (sums == Decimal("1")).all(), sums[sums != Decimal("1")].head()
    assert all(len(v.split(".")[1]) == rundir.PROBABILITY_DECIMALS for v in frame["c0"].head())
    # The predicted label is each row's largest probability, as before rounding.
    assert (frame["predictions"].to_numpy() == np.asarray(names)[proba.argmax(axis=1)]).all()
    assert abs(frame[list(names)].astype(float).to_numpy() - proba).max() < 1e-5


def test_rounding_keeps_rows_that_already_sum_to_one() -> None:
    exact = np.array([[0.25, 0.75], [1.0, 0.0]])
    assert (rundir.rounded_probabilities(exact) == exact).all()
