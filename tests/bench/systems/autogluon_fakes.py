"""A fake AutoGluon library for the AutoGluon systems' tests (no AutoGluon needed), and what their real runs in
AutoGluon's own environment share."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.run.environments import EnvironmentMissing, worker_python
from bench.systems.autogluon import Setup, Toolkit
from bench.systems.autogluon_budget import FinishGuard, FitClock, FitPlan
from bench.systems.autogluon_flops import TrainingCount
from bench.systems.base import FitContext
from bench.systems.search.log import TrialRow


def steps(seconds: float) -> None:
    """Sleeps in short steps, as a training loop runs Python between its ops (where an interrupt lands)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.01)


class FakePredictor:
    """MultiModalPredictor's calls: fit trains for its time_limit (or `need_s`, if it ignores the limit) inside a
    marked loop, then `finish_s` of checkpoint averaging."""

    def __init__(self, kit: FakeToolkit) -> None:
        self.kit, self.calls = kit, []

    def fit(self, train: pd.DataFrame, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        self.labels = sorted(set(train["label"]))
        with self.kit.clock.loop():
            limit = kwargs["time_limit"]
            steps(self.kit.need_s if self.kit.ignore_limit or limit is None else min(limit, self.kit.need_s))
        steps(self.kit.finish_s)

    def predict_proba(self, test: pd.DataFrame, as_pandas: bool = True) -> pd.DataFrame:
        return pd.DataFrame({label: np.full(len(test), 1.0) for label in self.labels})


class FakeToolkit(Toolkit):
    """The library's side without AutoGluon."""

    def __init__(self, need_s: float = 0.3, finish_s: float = 0.1, ignore_limit: bool = False,
                 rows: list[TrialRow] | None = None, count: TrainingCount | None = None) -> None:
        self.need_s, self.finish_s, self.ignore_limit, self.rows = need_s, finish_s, ignore_limit, rows or []
        self.count = count or TrainingCount()
        self.clock: Any = None
        self.made: list[FakePredictor] = []
        self.paths: list[tuple[Path, Path | None]] = []  # each predictor's folder and checkpoint to continue from
        self.kept: Path | None = None  # where the count is kept across attempts

    def setup(self, options: Any, ctx: FitContext, native_size: int, search: bool) -> Setup:
        return Setup({"model.names": ["timm_image"]}, {"backbone": options.backbone, "image_size_asked": native_size})

    def predictor(self, path: Path, presets: str, n_classes: int, resume_from: Path | None = None) -> FakePredictor:
        self.n_classes = n_classes
        self.paths.append((path, resume_from))
        self.made.append(FakePredictor(self))
        return self.made[-1]

    def keep(self, count: Path, on_checkpoint: Any) -> None:
        self.kept = count

    def read_checkpoint(self, path: Path) -> dict[str, Any]:
        return json.loads(path.read_text())  # the fake's checkpoints are JSON: anything else cannot be read

    @contextlib.contextmanager
    def training_marks(self, clock: FitClock, guard: FinishGuard, search: bool) -> Iterator[None]:
        self.clock = clock
        yield

    def trial_rows(self, clock: FitClock) -> list[TrialRow]:
        return self.rows

    def training_count(self) -> TrainingCount:
        return self.count


def faked(cls: type, kit: FakeToolkit, grace_s: float = 0.5, **options: Any) -> Any:
    """An instance of an AutoGluon system that drives `kit`, with a short hard-stop grace."""

    class Faked(cls):  # type: ignore[valid-type,misc]
        def toolkit(self) -> Toolkit:
            return kit

        def plan(self, ctx: FitContext, t0: float) -> FitPlan:
            base = super().plan(ctx, t0)
            return FitPlan(base.scope, base.deadline, base.budget_s, grace_s=grace_s)

    return Faked(options)


def tiny(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, 8, 8, 1), dtype=np.uint8), np.arange(n) % 2  # class 2 never seen


def autogluon_python() -> str:
    """The AutoGluon environment's python, else the test is skipped saying why."""
    try:
        return worker_python("autogluon")
    except EnvironmentMissing as exc:
        pytest.skip(str(exc))


# The commonest class's share of the 200 digits test images the real runs ask for (what a constant guess scores).
DIGITS_MAJORITY = 0.105
