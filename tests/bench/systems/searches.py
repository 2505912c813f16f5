"""What the searchers' tests share: tiny images a few epochs learn, a run as the harness makes it, trials.csv, the
checks every searcher's run passes, whether a model learnt, and a clock that makes each training step "take"
seconds."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from bench.core.budget import parse_budget
from bench.datasets.base import ImageData
from bench.systems import FitContext, System, SystemResult, make_system
from bench.systems.search.log import TRIAL_COLUMNS

N_TRAIN, N_TEST, SIZE, CLASSES = 90, 30, 16, ("a", "b", "c")


def images(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """Noise whose brightness gives the class away, so a few epochs learn it."""
    noise = rng.integers(0, 60, (len(y), SIZE, SIZE, 3))
    return (noise + 80 * y[:, None, None, None]).astype(np.uint8)


def toy_data() -> ImageData:
    """Class-sorted training images (an unshuffled validation tail would hold one class only)."""
    rng = np.random.default_rng(0)
    y_train = np.sort(rng.integers(0, len(CLASSES), N_TRAIN))
    y_test = rng.integers(0, len(CLASSES), N_TEST)
    return ImageData(images(rng, y_train), y_train, images(rng, y_test), y_test, CLASSES)


def run_search(system: str | System, budget: str, data: ImageData, tmp_path: Path, *, dataset: str = "toy",
               seed: int = 3, deadline: float | None = None, keep_models: bool = False, **options: object
               ) -> tuple[SystemResult, FitContext, list[dict[str, str]]]:
    """Runs a searcher (a name, made with `options`, or a System) as the harness does, the budget's clock
    starting now unless `deadline` is given; returns its result, context and trials.csv rows."""
    b = parse_budget(budget)
    workdir, run_dir = tmp_path / "work", tmp_path / "run"
    workdir.mkdir()
    run_dir.mkdir()
    if deadline is None and b.seconds is not None:
        deadline = time.monotonic() + b.seconds
    ctx = FitContext(budget=b, seed=seed, workdir=workdir, run_dir=run_dir, n_classes=data.n_classes,
                     class_names=data.class_names, dataset=dataset, deadline=deadline, keep_models=keep_models)
    made = make_system(system, options) if isinstance(system, str) else system
    result = made.run(data, ctx)
    return result, ctx, trial_rows(run_dir)


def trial_rows(run_dir: Path) -> list[dict[str, str]]:
    """trials.csv's rows, once its columns are checked."""
    with open(run_dir / "trials.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == TRIAL_COLUMNS
        return list(reader)


def assert_no_tuner_files(ctx: FitContext, kept: Iterable[str] = ("trials.csv",)) -> None:
    """The scratch folder is empty, and the run folder holds only `kept` (and the model, with keep_models)."""
    left = [p for p in ctx.workdir.rglob("*") if p.is_file()]
    assert left == [], f"tuner files left behind: {left[:5]}"
    expected = sorted([*kept, *(["model.keras"] if ctx.keep_models else [])])
    assert sorted(p.name for p in ctx.run_dir.iterdir()) == expected


def assert_valid_probabilities(result: SystemResult, data: ImageData) -> None:
    """One probability row per test image, over the data set's classes, summing to 1."""
    assert result.probabilities.shape == (len(data.x_test), data.n_classes)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-5)


# The chance that a model which learnt nothing (right no more often than a constant guess) passes `learnt`.
LEARNT_ALPHA = 1e-3


def majority_rate(data: ImageData) -> float:
    """The best a model that learnt nothing scores by a constant guess: the test set's commonest class's share (at
    least the majority system's, which guesses the training set's commonest)."""
    return float(np.bincount(data.y_test).max() / len(data.y_test))


def accuracy(result: SystemResult, data: ImageData) -> float:
    """The share of test images whose most probable class is right."""
    return float(np.mean(result.probabilities.argmax(axis=1) == data.y_test))


def learnt(accuracy: float, n_test: int, floor: float) -> bool:
    """Whether `accuracy` on n_test images is above `floor` (the majority rate) beyond chance: a one-sided binomial
    test at LEARNT_ALPHA, so a constant guess fails and a model a few epochs trained passes."""
    right = round(accuracy * n_test)
    return bool(binomtest(right, n_test, floor, alternative="greater").pvalue < LEARNT_ALPHA)


class StepClock:
    """time.monotonic and time.perf_counter made to advance only by `step_s` seconds per training step (Keras' fit
    and the baselines' own loop alike), from the moment of install: a budget of a minute is spent in a few
    seconds of real training, on any machine and under any load, and a rule a search keeps by those clocks
    (deadlines, trial times, the refit's reserve, the overshoot) is checked to the step. Every read adds a
    microsecond, so the clocks never stand still (a division by an elapsed time stays finite)."""

    TICK_S = 1e-6

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.steps = 0
        self._now = time.monotonic()
        self._lock = threading.Lock()

    def now(self) -> float:
        """The clocks' reading."""
        with self._lock:
            self._now += self.TICK_S
            return self._now

    def _step(self) -> None:
        with self._lock:
            self.steps += 1
            self._now += self.step_s

    def install(self, monkeypatch: pytest.MonkeyPatch) -> StepClock:
        """Patches the clocks and the two places a training step ends, for the test's duration."""
        import keras
        from keras.src.callbacks.callback_list import CallbackList

        monkeypatch.setattr(time, "monotonic", self.now)
        monkeypatch.setattr(time, "perf_counter", self.now)
        fit_batch_end = CallbackList.on_train_batch_end
        train_on_batch = keras.Model.train_on_batch

        def on_train_batch_end(callbacks: CallbackList, batch: int, logs: object = None) -> None:
            self._step()
            fit_batch_end(callbacks, batch, logs)

        def stepped_train_on_batch(model: keras.Model, *args: object, **kwargs: object) -> object:
            out = train_on_batch(model, *args, **kwargs)
            self._step()
            return out

        monkeypatch.setattr(CallbackList, "on_train_batch_end", on_train_batch_end)
        monkeypatch.setattr(keras.Model, "train_on_batch", stepped_train_on_batch)
        return self
