"""The constant predictor: the floor every table shows (amlb's 'constantpredictor')."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench.systems.base import FitContext, System


class Majority(System):
    """Predicts the training-set class frequencies for every image."""

    name: ClassVar[str] = "majority"
    description: ClassVar[str] = "constant predictor: training class frequencies (sanity floor)"
    role: ClassVar[str] = "floor"

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        """Counts classes; the images themselves are ignored."""
        counts = np.bincount(y, minlength=ctx.n_classes).astype(np.float64)
        self._prior = counts / counts.sum()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """The class prior for every row; argmax is the majority class."""
        return np.tile(self._prior, (len(x), 1))

    def params(self) -> int | None:
        """One number per class."""
        return len(self._prior)

    def extras(self) -> dict[str, Any]:
        """No network, so no FLOPs to count: 0, not 'not counted'."""
        return {"train_flops": 0.0, "predict_flops": 0.0}
