"""The training loop every recipe shares: feeding, validation slice, budget scaling, history, prediction.

A recipe (baselines/cifar10.py, ...) is a `Recipe`: a model builder plus its schedule and augmentation.
`train()` runs it one epoch per `model.fit` call, so each epoch's training steps can be timed apart from the
validation pass (history.csv's fit_s excludes evaluation). Under a deadline the number of epochs is re-planned
from measured epoch times so the LR schedule ends inside the budget; the deadline callback is the safety net.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from baselines.blocks import Augment, linear_schedule
from bench.systems.keras_support import count_params, deadline_callback, seed_everything

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "fit_s", "loss", "val_accuracy")
# Re-plan the epoch count freely after these many epochs (the first includes compilation, the second
# is the first clean measurement); later only shrink it, so the schedule changes (and recompiles) rarely.
FREE_REPLANS = 2
# Epoch-time estimates are padded by this factor before dividing the time left, so a slow epoch late in
# the run does not push the end of the schedule past the deadline.
EPOCH_TIME_SAFETY = 1.1
# Weights named like these are never decayed (batch-norm scale/offset, biases), as usual.
NO_DECAY_NAMES = ("gamma", "beta", "bias")


@dataclass(frozen=True)
class Recipe:
    """A hand-built trainer: how to build the network and how to train it (SGD, one linear LR cycle)."""

    name: str
    build: Callable[[tuple[int, int, int], int], Any]  # (input_shape, n_classes) -> keras.Model
    epochs: int  # the recipe's own schedule length ('full' budget)
    batch_size: int
    peak_lr: float
    warmup_epochs: float = 0.0  # linear warm-up to peak_lr, in epochs (kept when a budget shortens the run)
    start_lr_fraction: float = 0.0  # LR at step 0, as a fraction of the peak
    end_lr_fraction: float = 0.0  # LR at the end of the schedule, as a fraction of the peak
    per_epoch_decay: bool = False  # LR changes once per epoch (2019 style) instead of every step
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0  # decoupled decay (w -= lr * wd * w) on kernels; L2 penalties live in the model
    label_smoothing: float = 0.0
    augment: Augment | None = None  # applied per training batch on uint8 numpy
    val_fraction: float = 0.1  # stratified validation slice carved from the training data
    tta_flip: bool = False  # average predictions over the image and its left-right mirror
    eval_batch_size: int = 512
    # Data-dependent initialisation, called once with the model and the training images (whitening, ...).
    prepare: Callable[[Any, np.ndarray], None] | None = None

    def with_overrides(self, epochs: int | None = None, batch_size: int | None = None) -> Recipe:
        """The same recipe with the schedule length or batch size replaced (None keeps the recipe's)."""
        changes: dict[str, Any] = {}
        if epochs is not None:
            changes["epochs"] = int(epochs)
        if batch_size is not None:
            changes["batch_size"] = int(batch_size)
        return replace(self, **changes) if changes else self


class Batches(keras.utils.PyDataset):
    """Shuffled, augmented uint8 batches, one-hot float32 labels; reproducible per (seed, epoch, batch)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, n_classes: int, batch_size: int,
                 augment: Augment | None, seed: int) -> None:
        super().__init__()
        self.x, self.y, self.augment, self.seed = x, y, augment, seed
        self.batch_size = min(batch_size, len(x))
        self.onehot = np.eye(n_classes, dtype=np.float32)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draws the epoch's order; the last partial batch is dropped (one compiled batch shape)."""
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        xb = self.x[idx]
        if self.augment is not None:
            xb = self.augment(xb, np.random.default_rng([self.seed, self.epoch, index]))
        return np.ascontiguousarray(xb), self.onehot[self.y[idx]]


def validation_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices: a seeded, stratified slice (plain random when a class is too rare)."""
    n = len(y)
    n_classes = len(np.unique(y))
    n_val = max(n_classes, round(fraction * n))
    if fraction <= 0 or n - n_val < n_classes:
        raise ValueError(f"cannot carve a {fraction:.0%} validation slice from {n} training images of "
                         f"{n_classes} classes; give more images or a smaller val_fraction")
    idx = np.arange(n)
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    train_idx, val_idx = train_test_split(idx, test_size=n_val, stratify=stratify, random_state=seed)
    return np.sort(train_idx), np.sort(val_idx)


def plan_epochs(max_epochs: int, done: int, epoch_seconds: float, seconds_left: float | None) -> int:
    """Total epochs that fit: those done plus as many more as the time left allows, at most max_epochs."""
    if seconds_left is None:
        return max_epochs
    more = math.floor(max(seconds_left, 0.0) / (epoch_seconds * EPOCH_TIME_SAFETY))
    return max(done, min(max_epochs, done + more))


def make_optimizer(recipe: Recipe, schedule: Any) -> Any:
    """SGD with (Nesterov) momentum on the recipe's schedule; decoupled decay skips BN weights and biases."""
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=recipe.momentum,
                                     nesterov=recipe.nesterov, weight_decay=recipe.weight_decay or None)
    if recipe.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    return optimizer


def predict_proba(model: Any, x: np.ndarray, batch_size: int = 512, tta_flip: bool = False) -> np.ndarray:
    """Class probabilities for uint8 images; with tta_flip, averaged with the mirrored images'."""
    proba = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
    if tta_flip:
        mirrored = np.ascontiguousarray(x[:, :, ::-1])
        proba = (proba + np.asarray(model.predict(mirrored, batch_size=batch_size, verbose=0))) / 2
    return proba


@dataclass
class Trained:
    """A trained model with its recipe and per-epoch history."""

    model: Any
    recipe: Recipe
    history: pd.DataFrame
    epochs_planned: int
    stopped_at_deadline: bool

    @property
    def val_accuracy(self) -> float | None:
        """Validation accuracy after the last epoch (the model that is kept)."""
        return None if self.history.empty else float(self.history["val_accuracy"].iloc[-1])

    @property
    def best_val_accuracy(self) -> float | None:
        """Best validation accuracy over the epochs (logged; the last model is kept regardless)."""
        return None if self.history.empty else float(self.history["val_accuracy"].max())

    @property
    def params(self) -> int:
        """All weights of the model."""
        return count_params(self.model)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, with the recipe's test-time augmentation."""
        return predict_proba(self.model, x, self.recipe.eval_batch_size, self.recipe.tta_flip)


def train(recipe: Recipe, x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int = 0,
          deadline: float | None = None, history_path: Path | None = None) -> Trained:
    """Trains `recipe` on uint8 images x and int labels y, never past `deadline` (time.monotonic())."""
    if x.dtype != np.uint8:
        raise TypeError(f"train() takes uint8 images, got {x.dtype}; pass the data set's arrays unconverted")
    seed_everything(seed)
    y = np.asarray(y, dtype=np.int64)
    train_idx, val_idx = validation_split(y, recipe.val_fraction, seed)
    x_val, y_val = x[val_idx], y[val_idx]
    batches = Batches(x[train_idx], y[train_idx], n_classes, recipe.batch_size, recipe.augment, seed)
    steps = len(batches)

    model = recipe.build(tuple(x.shape[1:]), n_classes)
    if recipe.prepare is not None:
        recipe.prepare(model, batches.x)
    warmup_steps = round(recipe.warmup_epochs * steps)
    schedule = linear_schedule(recipe.peak_lr, warmup_steps, recipe.epochs * steps, recipe.end_lr_fraction,
                               staircase_steps=steps if recipe.per_epoch_decay else 0,
                               start_fraction=recipe.start_lr_fraction)
    model.compile(optimizer=make_optimizer(recipe, schedule),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing))
    stopper = deadline_callback(deadline)

    planned = recipe.epochs
    if deadline is not None and deadline - time.monotonic() <= 0:
        planned = 0
    rows: list[dict[str, float]] = []
    epoch_walls: list[float] = []
    fit_s = 0.0
    epoch = 0
    while epoch < planned:
        wall0 = time.monotonic()
        batches.set_epoch(epoch)
        t0 = time.perf_counter()
        result = model.fit(batches, epochs=epoch + 1, initial_epoch=epoch, verbose=0, callbacks=[stopper])
        fit_s += time.perf_counter() - t0
        epoch += 1
        val_acc = accuracy_score(y_val, predict_proba(model, x_val, recipe.eval_batch_size).argmax(axis=1))
        rows.append({"epoch": epoch, "fit_s": fit_s, "loss": float(result.history["loss"][-1]),
                     "val_accuracy": float(val_acc)})
        if history_path is not None:
            pd.DataFrame(rows, columns=list(HISTORY_COLUMNS)).to_csv(history_path, index=False)
        log.info("%s epoch %d/%d: fit %.1fs loss %.4f val_accuracy %.4f", recipe.name, epoch, planned, fit_s,
                 rows[-1]["loss"], val_acc)
        epoch_walls.append(time.monotonic() - wall0)
        if stopper.stopped:
            break
        if deadline is not None:
            recent = epoch_walls[1:] if len(epoch_walls) > 1 else epoch_walls
            estimate = float(np.median(recent))
            new_plan = plan_epochs(recipe.epochs, epoch, estimate, deadline - time.monotonic())
            if epoch > FREE_REPLANS:
                new_plan = min(new_plan, planned)
            if new_plan != planned:
                log.info("%s: %d epochs fit the budget (epoch ~%.1fs)", recipe.name, new_plan, estimate)
                planned = new_plan
                schedule.total_steps = planned * steps
                schedule.warmup_steps = min(warmup_steps, planned * steps // 2)
                # The compiled step baked the old totals in; the next fit() traces it again.
                model.train_function = None
    return Trained(model=model, recipe=recipe, history=pd.DataFrame(rows, columns=list(HISTORY_COLUMNS)),
                   epochs_planned=planned, stopped_at_deadline=bool(stopper.stopped))
