"""The training loop every recipe shares: feeding, validation slice, budget scaling, history, prediction.

A recipe (baselines/cifar10.py, ...) is a `Recipe`: a model builder plus its schedule and augmentation.
`train()` runs its own step loop (`train_on_batch`; Keras' PyDataset feeding halved the CPU throughput),
so each epoch's training steps are timed apart from the validation pass (history.csv's fit_s excludes
evaluation). Under a deadline the schedule's length in steps is planned from a timed probe before the first
epoch and re-planned from the epochs' times, and the whole LR cycle is compressed to it (a short budget) or
stretched to it (a long one, up to MAX_SCALE_UP times the recipe's epochs), so the schedule ends inside the
budget and uses it; stopping at the deadline mid-schedule is only the safety net (at the next step, inside
an epoch if need be, so an epoch longer than a budget's allowed overshoot cannot carry the run past it). history.csv's
planned_epochs shows the plan as it stood after each epoch.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from scipy.special import softmax
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from bench.baselines import checkpoint, kernels
from bench.baselines.blocks import Augment, linear_schedule, mirror_where, retrace_on_change
from bench.baselines.keras_support import count_params, seed_everything
from bench.core.rundir import HISTORY_COLUMNS

logger = logging.getLogger(__name__)

# A wall-clock budget longer than the recipe's own schedule stretches it (more epochs, the same LR cycle and
# warm-up shape) up to this many times the recipe's epochs. The recipes are one-cycle schedules tuned for
# time to accuracy; on the malaria subset 4x (48 epochs) and 16x (up to 192) scored alike, both splits
# (results/budget_curve/README.md), and an uncapped 24 h budget would plan
# thousands of epochs of one cycle that the first hours' accuracy no longer improves on. Recipes may set
# their own cap (the resnet system's option max_scale_up).
MAX_SCALE_UP = 4.0
# Under a deadline, this many training steps are timed (after one that compiles) before the first epoch to
# size the schedule; the weights and optimizer state are then reset, so the probe trains nothing.
PROBE_STEPS = 2
# The plan grows (after the probe's estimate, or a shrink that proved too cautious) only when the time left
# buys at least this many more epochs: each change moves the LR a little, and under JAX traces the train
# step again. Growth is allowed at every epoch, so slow first epochs (or any slow one) cannot shrink the plan
# for good and leave the budget unused (results/budget_curve/README.md).
GROW_MIN_EPOCHS = 0.5
# Step-time estimates are padded by this factor before dividing the time left, so a slow stretch late in
# the run does not push the end of the schedule past the deadline.
STEP_TIME_SAFETY = 1.1
# Re-plans use the median step time of this many recent epochs, so that one slow epoch (another process on
# the cores) does not shrink the plan; a lasting slowdown is followed after three.
STEP_TIME_WINDOW = 5
# Weights named like these are never decayed (batch-norm scale/offset, biases), as usual.
NO_DECAY_NAMES = ("gamma", "beta", "bias")
# The ways test-time views may be averaged (Recipe.tta_average).
TTA_AVERAGES = ("probabilities", "logits")


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
    # airbench's derandomised flip: each image is mirrored in every other epoch (a random half start
    # mirrored), so consecutive epochs show both orientations; applied before `augment`.
    alternating_flip: bool = False
    # XLA-compile the train and predict steps under TensorFlow on a GPU (other backends keep Keras' choice;
    # on a CPU it is never used: see use_xla).
    jit_compile: bool = False
    # Stratified validation slice carved from the training data; 0 trains on all of it (airbench's way) and
    # the history's val_accuracy is then empty.
    val_fraction: float = 0.1
    tta_flip: bool = False  # average predictions over the image and its left-right mirror
    # With tta_flip: also average (at half weight) over copies shifted this many pixels up-left and
    # down-right, reflect-padded (airbench's level-2 test-time augmentation); 0 turns it off.
    tta_translate: int = 0
    # How the views are combined: 'probabilities' (their mean) or 'logits' (airbench's: the softmax of the
    # mean logit); see average_views.
    tta_average: str = "probabilities"
    eval_batch_size: int = 512
    # Lookahead (airbench): every this many steps the weights are pulled toward a slow copy, the slow copy
    # kept at the end; 0 turns it off.
    lookahead_every: int = 0
    # The pull's strength at the end of the schedule; it ramps up as (step / total)^3 from nothing.
    lookahead_decay: float = 0.95 ** 5
    # Data-dependent initialisation, called once with the model and the training images (whitening, ...).
    prepare: Callable[[Any, np.ndarray], None] | None = None
    # Under a deadline the schedule may grow to this many times `epochs` when the time allows (1: never
    # longer than the recipe's own; a tuner's trials, whose length is the thing searched, use 1).
    max_scale_up: float = MAX_SCALE_UP

    def __post_init__(self) -> None:
        if self.tta_average not in TTA_AVERAGES:
            raise ValueError(f"{self.name}: unknown tta_average {self.tta_average!r}; valid: {', '.join(TTA_AVERAGES)}")

    def with_overrides(self, epochs: int | None = None, batch_size: int | None = None) -> Recipe:
        """The same recipe with the schedule length or batch size replaced (None keeps the recipe's).

        Only these two fields change: values the recipe derived from them when it was built stay as they
        were (cifar10's peak LR, BN momentum and Lookahead period from its batch size, its warm-up from its
        epochs). The harness's epochs and batch_size options work this way. To rederive them, change the
        recipe module's constant and build the recipe again (`python -m bench.baselines.cifar10 --set
        BATCH_SIZE=512`).
        """
        changes: dict[str, Any] = {}
        if epochs is not None:
            changes["epochs"] = int(epochs)
        if batch_size is not None:
            changes["batch_size"] = int(batch_size)
        return replace(self, **changes) if changes else self


class Batches:
    """Shuffled, augmented uint8 batches, one-hot float32 labels; reproducible per (seed, epoch, batch).

    `len(batches)` batches an epoch, `batches[i]` the i-th as (images, labels); the training loop steps
    through them itself.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, n_classes: int, batch_size: int,
                 augment: Augment | None, seed: int, alternating_flip: bool = False) -> None:
        self.x, self.y, self.augment, self.seed = x, y, augment, seed
        self.batch_size = min(batch_size, len(x))
        self.onehot = np.eye(n_classes, dtype=np.float32)
        # Which images start mirrored under the alternating flip (None: no flip here).
        self.flip_start = np.random.default_rng([seed, 1]).random(len(x)) < 0.5 if alternating_flip else None
        self.set_epoch(0)

    @classmethod
    def for_recipe(cls, recipe: Recipe, x: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> Batches:
        """The recipe's training feed: its batch size, augmentation and flip."""
        return cls(x, y, n_classes, recipe.batch_size, recipe.augment, seed, recipe.alternating_flip)

    def set_epoch(self, epoch: int) -> None:
        """Draws the epoch's order; the last partial batch is dropped (one compiled batch shape)."""
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        xb = self.x[idx]
        if self.flip_start is not None:
            mirrored = self.flip_start[idx] ^ bool(self.epoch % 2)
            xb = mirror_where(xb, mirrored)
        if self.augment is not None:
            xb = self.augment(xb, np.random.default_rng([self.seed, self.epoch, index]))
        return np.ascontiguousarray(xb), self.onehot[self.y[idx]]


def validation_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices: a seeded, stratified slice (plain random when a class is too rare); with
    fraction 0, all of them and none."""
    n = len(y)
    if fraction == 0:
        return np.arange(n), np.arange(0)
    n_classes = len(np.unique(y))
    n_val = max(n_classes, round(fraction * n))
    if fraction < 0 or n - n_val < n_classes:
        raise ValueError(f"cannot carve a {fraction:.0%} validation slice from {n} training images of "
                         f"{n_classes} classes; give more images or a smaller val_fraction")
    idx = np.arange(n)
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    train_idx, val_idx = train_test_split(idx, test_size=n_val, stratify=stratify, random_state=seed)
    return np.sort(train_idx), np.sort(val_idx)


def plan_steps(max_steps: int, done: int, step_seconds: float, seconds_left: float | None) -> int:
    """Total training steps that fit: those done plus as many more as the time left allows, at most max_steps.

    step_seconds is the cost of one step with the per-epoch validation pass spread over the epoch's steps.
    """
    if seconds_left is None:
        return max_steps
    more = math.floor(max(seconds_left, 0.0) / (step_seconds * STEP_TIME_SAFETY))
    return max(done, min(max_steps, done + more))


class Pace:
    """The step times measured epoch by epoch, and the changes of plan they call for under a deadline."""

    def __init__(self) -> None:
        self.step_seconds: list[float] = []

    def observe(self, step_seconds: float) -> None:
        """Records an epoch's step time (validation and bookkeeping spread over its steps)."""
        self.step_seconds.append(step_seconds)

    @property
    def estimate(self) -> float:
        """The median step time of the last STEP_TIME_WINDOW epochs."""
        return statistics.median(self.step_seconds[-STEP_TIME_WINDOW:])

    def replan(self, total: int, max_steps: int, done: int, seconds_left: float, trace_s: float,
               steps_per_epoch: int) -> int | None:
        """The new total steps after the epochs observed, or None to keep `total`.

        Shrinks when the plan would overrun at the estimated pace; grows when the time left buys
        GROW_MIN_EPOCHS more at that pace, with STEP_TIME_SAFETY's margin (a plan made with the margin does
        not grow again at the same pace until the margin itself adds up to that). trace_s, the measured extra cost
        of an epoch's first step (a new trace, where a change causes one), is set aside for the change.
        """
        step_s = self.estimate
        new_total = plan_steps(max_steps, done, step_s, seconds_left - trace_s)
        if (total - done) * step_s > seconds_left:
            return new_total if new_total < total else None
        return new_total if new_total >= total + max(1, math.ceil(GROW_MIN_EPOCHS * steps_per_epoch)) else None


def make_optimizer(recipe: Recipe, schedule: Any) -> Any:
    """SGD with (Nesterov) momentum on the recipe's schedule; decoupled decay skips BN weights and biases."""
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=recipe.momentum,
                                     nesterov=recipe.nesterov, weight_decay=recipe.weight_decay or None)
    if recipe.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    return optimizer


def use_xla(recipe: Recipe) -> bool | str:
    """The recipe's XLA choice under the TensorFlow backend (others keep Keras' 'auto'): on a GPU only.

    On a CPU XLA lost to TensorFlow's own kernels once batch norm ran fused (bench.baselines.kernels), the
    fusion XLA had been paying for, and in bfloat16 XLA's CPU backend has no native kernels (the images/s of
    each: results/baselines/README.md).
    """
    if keras.backend.backend() != "tensorflow":
        return "auto"
    return recipe.jit_compile and on_gpu()


def on_gpu() -> bool:
    """Whether TensorFlow sees a GPU (where models are then placed)."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def compile_model(model: Any, recipe: Recipe, learning_rate: Any) -> None:
    """Compiles model for the recipe: its optimizer on learning_rate, smoothed cross-entropy, XLA or not.

    The fused kernels (bench.baselines.kernels) are installed first: the recipes always train with them.
    """
    kernels.install()
    model.compile(optimizer=make_optimizer(recipe, learning_rate),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                  jit_compile=use_xla(recipe))


def tta_views(model: Any, x: np.ndarray, batch_size: int = 512, tta_flip: bool = False,
              tta_translate: int = 0) -> list[tuple[float, np.ndarray]]:
    """(weight, class probabilities) of each test-time view of uint8 images x; the weights sum to 1.

    Without tta_flip the one view is the images. With it the images and their mirror share the weight, and
    tta_translate > 0 gives that pair half of it and shares the other half between the same pair shifted by
    tta_translate pixels up-left and down-right (reflect-padded), as airbench does.
    """
    def pair(images: np.ndarray, weight: float) -> list[tuple[float, np.ndarray]]:
        views = [images, np.ascontiguousarray(images[:, :, ::-1])] if tta_flip else [images]
        return [(weight / len(views), np.asarray(model.predict(v, batch_size=batch_size, verbose=0),
                                                 dtype=np.float64)) for v in views]

    if not (tta_flip and tta_translate > 0):
        return pair(x, 1.0)
    pad = tta_translate
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    h, w = x.shape[1:3]
    shifted = [np.ascontiguousarray(padded[:, :h, :w]), np.ascontiguousarray(padded[:, 2 * pad:, 2 * pad:])]
    return [*pair(x, 0.5), *pair(shifted[0], 0.25), *pair(shifted[1], 0.25)]


def average_views(views: list[tuple[float, np.ndarray]], average: str = "probabilities") -> np.ndarray:
    """The views' weighted average: of the probabilities, or of the logits ('logits', airbench's), returned
    as their softmax.

    The mean of the views' log-probabilities differs from the mean of their logits by one number per image
    (the mean of each view's log-sum-exp), so both give the same softmax: the network's own logits are not
    needed.
    """
    if average not in TTA_AVERAGES:
        raise ValueError(f"unknown test-time average {average!r}; valid: {', '.join(TTA_AVERAGES)}")
    if average == "probabilities":
        return sum(w * p for w, p in views)
    tiny = np.finfo(np.float32).tiny  # a probability that underflowed in the network's float32 softmax
    return softmax(sum(w * np.log(np.maximum(p, tiny)) for w, p in views), axis=1)


def predict_proba(model: Any, x: np.ndarray, batch_size: int = 512, tta_flip: bool = False,
                  tta_translate: int = 0, tta_average: str = "probabilities") -> np.ndarray:
    """Class probabilities for uint8 images, averaged over the test-time views (tta_views, average_views)."""
    return average_views(tta_views(model, x, batch_size, tta_flip, tta_translate), tta_average)


@dataclass
class Trained:
    """A trained model with its recipe and per-epoch history."""

    model: Any
    recipe: Recipe
    history: pd.DataFrame
    epochs_planned: float  # the schedule's length in epochs (fractional when a budget cut it mid-epoch)
    stopped_at_deadline: bool
    epochs_trained: float  # steps trained over steps per epoch: an epoch the deadline cut counts by its steps
    # Images through training steps, the budget probe's included (its weight changes are undone, its compute
    # was spent); the validation passes are not training steps and are left out.
    examples_trained: int = 0

    @property
    def val_accuracy(self) -> float | None:
        """Validation accuracy after the last epoch (the model that is kept)."""
        last = math.nan if self.history.empty else float(self.history["val_accuracy"].iloc[-1])
        return None if math.isnan(last) else last

    @property
    def best_val_accuracy(self) -> float | None:
        """Best validation accuracy over the epochs (logged; the last model is kept regardless)."""
        best = float(self.history["val_accuracy"].max()) if not self.history.empty else math.nan
        return None if math.isnan(best) else best

    @property
    def params(self) -> int:
        """All weights of the model."""
        return count_params(self.model)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, with the recipe's test-time augmentation."""
        return average_views(self.views(x), self.recipe.tta_average)

    def views(self, x: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """The recipe's test-time views of x, weighted (tta_views)."""
        return tta_views(self.model, x, self.recipe.eval_batch_size, self.recipe.tta_flip, self.recipe.tta_translate)

    @property
    def view_count(self) -> int:
        """Forward passes an image takes to predict: its test-time views (tta_views)."""
        return (2 if self.recipe.tta_flip else 1) * (3 if self.recipe.tta_flip and self.recipe.tta_translate else 1)


class Lookahead:
    """airbench's Lookahead: slow = d * slow + (1 - d) * fast, then fast = slow, every `every` steps.

    d grows as decay * (step / total)^3, so early training runs free and the end averages over recent
    weights (batch-norm statistics included); `finish` leaves the model on the slow weights.
    """

    def __init__(self, model: Any, every: int, decay: float) -> None:
        self.model, self.every, self.decay = model, every, decay
        self.slow = [np.array(w) for w in model.get_weights()]

    def step(self, done: int, total: int) -> None:
        """Called after each training step with the steps done and the schedule's total."""
        if done % self.every == 0:
            self.pull(self.decay * (done / max(total, 1)) ** 3)

    def pull(self, d: float) -> None:
        """Moves the slow weights toward the model's by 1 - d and sets the model to them."""
        self.slow = [d * s + (1 - d) * f if np.issubdtype(f.dtype, np.floating) else f
                     for s, f in zip(self.slow, self.model.get_weights(), strict=True)]
        self.model.set_weights(self.slow)

    def finish(self) -> None:
        """Leaves the model on the slow weights (airbench's final update with d = 1)."""
        self.model.set_weights(self.slow)


class Schedule:
    """The recipe's LR cycle over a number of steps; a budget compresses or stretches the whole cycle, warm-up
    included."""

    def __init__(self, recipe: Recipe, steps_per_epoch: int) -> None:
        self.recipe, self.steps_per_epoch = recipe, steps_per_epoch
        self.full_steps = recipe.epochs * steps_per_epoch
        # The longest a deadline may stretch the cycle to (the recipe's own length when it may not grow).
        self.max_steps = max(self.full_steps, math.floor(self.full_steps * recipe.max_scale_up))
        self.lr = linear_schedule(recipe.peak_lr, 0, self.full_steps, recipe.end_lr_fraction,
                                  staircase_steps=steps_per_epoch if recipe.per_epoch_decay else 0,
                                  start_fraction=recipe.start_lr_fraction)
        self.set_total(self.full_steps)

    @property
    def total_steps(self) -> int:
        """The steps the cycle now spans."""
        return self.lr.total_steps

    def set_total(self, total_steps: int) -> None:
        """Fits the cycle into total_steps (where blocks.retrace_on_change(), the caller must then drop the
        compiled train step: it holds the old span)."""
        self.lr.set_span(round(self.recipe.warmup_epochs * self.steps_per_epoch * total_steps
                               / max(self.full_steps, 1)), total_steps)


class Plan:
    """The schedule's length under a deadline: sized from a probe before the first epoch, re-sized after each
    epoch from its measured times (no deadline: the recipe's own length, never changed)."""

    def __init__(self, schedule: Schedule, deadline: float | None, name: str) -> None:
        self.schedule, self.deadline, self.name = schedule, deadline, name
        self.pace = Pace()
        # The largest extra cost of an epoch's first step over the steady ones, as measured: under JAX the trace
        # a change of plan causes; under TensorFlow (no new trace) only the first step's own overhead.
        self.trace_s = 0.0

    def seconds_left(self) -> float | None:
        """Seconds to the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def past_deadline(self) -> bool:
        """Whether the deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def start(self, step_s: float) -> None:
        """Sizes the schedule to the time left at step_s seconds a step (the probe's)."""
        schedule = self.schedule
        schedule.set_total(plan_steps(schedule.max_steps, 0, step_s, self.seconds_left()))
        logger.info("%s: %d steps (%.2f epochs) fit the budget (step ~%.3fs)", self.name, schedule.total_steps,
                 schedule.total_steps / schedule.steps_per_epoch, step_s)

    def after_epoch(self, epoch: Epoch, k: int, done: int) -> bool:
        """Re-sizes the schedule after an epoch of k steps; True when its span changed.

        The pace is the steady step time (the epoch's first step, which may trace, left out) plus the validation
        pass and bookkeeping spread over the epoch's steps: the first epoch's tracing no longer makes the plan
        shrink for good (it left a quarter of a budget unused).
        """
        steps_s = epoch.steps_end - epoch.steps_start
        steady = (epoch.steps_end - epoch.first_step_end) / (k - 1) if k > 1 else steps_s
        self.trace_s = max(self.trace_s, epoch.first_step_end - epoch.steps_start - steady)
        self.pace.observe(steady + (time.perf_counter() - epoch.start - steps_s) / k)
        schedule = self.schedule
        new_total = self.pace.replan(schedule.total_steps, schedule.max_steps, done, self.seconds_left() or 0.0,
                                     self.trace_s, schedule.steps_per_epoch)
        if new_total is None:
            return False
        logger.info("%s: re-planned to %d steps (%.2f epochs)", self.name, new_total,
                 new_total / schedule.steps_per_epoch)
        schedule.set_total(new_total)
        return True


class Epoch:
    """One epoch's training steps: their times (time.perf_counter()), the first step's apart (it may trace), and
    what follows each step."""

    def __init__(self, done: int, plan: Plan, lookahead: Lookahead | None) -> None:
        self.start = time.perf_counter()  # the epoch's start, its bookkeeping included
        self.done, self.plan, self.lookahead = done, plan, lookahead
        self.steps_start = self.first_step_end = self.steps_end = self.start

    def train(self, model: Any, batches: Batches, n: int) -> list[float]:
        """Runs n training steps (fewer when the deadline passes) and returns their losses."""
        self.steps_start = time.perf_counter()
        losses = train_steps(model, batches, n, self.after_step)
        self.steps_end = time.perf_counter()
        return losses

    def after_step(self, k: int) -> bool:
        """After the epoch's k-th step: Lookahead's pull, and True to stop once the deadline has passed."""
        if k == 1:
            self.first_step_end = time.perf_counter()
        if self.lookahead is not None:
            self.lookahead.step(self.done + k, self.plan.schedule.total_steps)
        # The safety net: the plan should have ended the schedule in time. Checked after every step, so an
        # epoch longer than the allowed overshoot is still cut at its next step.
        return self.plan.past_deadline()


def probe_step_seconds(model: Any, batches: Batches, x_val: np.ndarray, recipe: Recipe) -> float:
    """Seconds per training step, validation pass spread over an epoch, measured on the real batches.

    One step compiles the train function, PROBE_STEPS more are timed; then weights (batch-norm statistics
    included) and optimizer state go back to where they were, so the probe leaves no trace on the model.
    """
    weights = model.get_weights()
    model.train_on_batch(*batches[0])
    t0 = time.perf_counter()
    for i in range(PROBE_STEPS):
        model.train_on_batch(*batches[(1 + i) % len(batches)])
    step_s = (time.perf_counter() - t0) / PROBE_STEPS
    t0 = time.perf_counter()
    if len(x_val):
        predict_proba(model, x_val, recipe.eval_batch_size)  # compiles predict too: an upper bound
    val_s = time.perf_counter() - t0
    model.set_weights(weights)
    for variable in model.optimizer.variables:  # iterations and momenta back to zero
        variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
    return step_s + val_s / len(batches)


def train_steps(model: Any, batches: Batches, n: int, after_step: Callable[[int], bool] | None = None
                ) -> list[float]:
    """Runs training steps on batches[0] .. batches[n-1] and returns their losses.

    The next batch is drawn and augmented in a helper thread while the current step trains (numpy and
    TensorFlow both release the GIL), so augmentation stays off the critical path; batches[i] depends only
    on (seed, epoch, i), so the result is the same as drawing them in turn.
    after_step(k) is called after the k-th step (from 1); returning True ends the run of steps early.
    """
    losses: list[float] = []
    if n <= 0:
        return losses
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches") as feeder:
        pending = feeder.submit(batches.__getitem__, 0)
        for i in range(n):
            batch = pending.result()
            if i + 1 < n:
                pending = feeder.submit(batches.__getitem__, i + 1)
            losses.append(float(np.asarray(model.train_on_batch(*batch)).ravel()[0]))
            if after_step is not None and after_step(i + 1):
                break
    return losses


def train(recipe: Recipe, x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int = 0,
          deadline: float | None = None, history_path: Path | None = None, checkpoint_dir: Path | None = None,
          on_checkpoint: Callable[[str], None] | None = None) -> Trained:
    """Trains `recipe` on uint8 images x and int labels y, never past `deadline` (time.monotonic()).

    Under a deadline the schedule is sized before the first epoch from a timed probe, and re-sized from the
    epochs' own times, so the LR cycle completes inside the budget instead of being cut off. With checkpoint_dir
    the training is saved after each epoch (baselines/checkpoint.py; on_checkpoint is told what was saved) and
    continues from the last save found there: without a deadline on the schedule it had, under one on the
    schedule the time left allows.
    """
    if x.dtype != np.uint8:
        raise TypeError(f"train() takes uint8 images, got {x.dtype}; pass the data set's arrays unconverted")
    seed_everything(seed)
    y = np.asarray(y, dtype=np.int64)
    train_idx, val_idx = validation_split(y, recipe.val_fraction, seed)
    x_val, y_val = x[val_idx], y[val_idx]
    batches = Batches.for_recipe(recipe, x[train_idx], y[train_idx], n_classes, seed)
    steps = len(batches)

    model = recipe.build(tuple(x.shape[1:]), n_classes)
    if recipe.prepare is not None:
        recipe.prepare(model, batches.x)
    schedule = Schedule(recipe, steps)
    compile_model(model, recipe, schedule.lr)
    plan = Plan(schedule, deadline, recipe.name)
    # Under JAX a change of the schedule's span re-traces the train step, which the model must then drop.
    retrace = retrace_on_change()
    step_s = math.inf
    probed = 0  # training steps the probe ran: their compute is spent though their updates are undone
    if deadline is not None and not plan.past_deadline():
        probed = 1 + PROBE_STEPS
        step_s = probe_step_seconds(model, batches, x_val, recipe)  # before a restore: it resets the optimizer
    restored = None
    if checkpoint_dir is not None:
        model.optimizer.build(model.trainable_variables)
        restored = checkpoint.restore(checkpoint_dir, model)
    rows: list[dict[str, float]] = []
    fit_s = 0.0
    done = 0
    if restored is not None:
        saved, _ = restored
        rows, fit_s, done = [dict(r) for r in saved.rows], saved.fit_s, saved.done
        plan.trace_s, plan.pace.step_seconds = saved.trace_s, list(saved.step_seconds)
        schedule.set_total(plan_steps(schedule.max_steps, done, step_s, plan.seconds_left())
                           if deadline is not None else saved.total_steps)
        logger.info("%s: continuing from epoch %d (%d of %d steps)", recipe.name, len(rows), done,
                 schedule.total_steps)
    elif deadline is not None:
        plan.start(step_s)
    if retrace and (deadline is not None or restored is not None):
        model.train_function = None
    lookahead = Lookahead(model, recipe.lookahead_every, recipe.lookahead_decay) if recipe.lookahead_every else None
    if lookahead is not None and restored is not None and restored[1]:
        lookahead.slow = restored[1]
    stopped = False
    while done < schedule.total_steps and not stopped:
        epoch = Epoch(done, plan, lookahead)
        batches.set_epoch(len(rows))
        # train_on_batch returns Keras' loss tracker, a running mean that only a reset restarts: reset here,
        # its last value is the epoch's mean loss (a continued run then logs what an uninterrupted one does).
        model.reset_metrics()
        losses = epoch.train(model, batches, min(steps, schedule.total_steps - done))
        fit_s += epoch.steps_end - epoch.steps_start
        done += len(losses)
        stopped = plan.past_deadline() and done < schedule.total_steps
        if lookahead is not None and (done >= schedule.total_steps or stopped):
            lookahead.finish()  # before the last validation pass, which then scores the kept model
        val_acc = (accuracy_score(y_val, predict_proba(model, x_val, recipe.eval_batch_size).argmax(axis=1))
                   if len(x_val) else math.nan)
        rows.append({"epoch": len(rows) + 1, "fit_s": fit_s, "loss": losses[-1] if losses else math.nan,
                     "val_accuracy": float(val_acc), "planned_epochs": round(schedule.total_steps / steps, 3)})
        if history_path is not None:
            pd.DataFrame(rows, columns=list(HISTORY_COLUMNS)).to_csv(history_path, index=False)
        if checkpoint_dir is not None:
            checkpoint.save(checkpoint_dir, model, checkpoint.Saved(
                done, schedule.total_steps, fit_s, rows, plan.trace_s, tuple(plan.pace.step_seconds)),
                None if lookahead is None else lookahead.slow)
            if on_checkpoint is not None:
                on_checkpoint(f"epoch {len(rows)} ({done} of {schedule.total_steps} steps)")
        logger.info("%s epoch %d (%d/%d steps): fit %.1fs loss %.4f val_accuracy %.4f", recipe.name, len(rows), done,
                 schedule.total_steps, fit_s, rows[-1]["loss"], val_acc)
        if deadline is not None and not stopped and plan.after_epoch(epoch, len(losses), done) and retrace:
            model.train_function = None  # it holds the old span: the next step traces it again
    return Trained(model=model, recipe=recipe, history=pd.DataFrame(rows, columns=list(HISTORY_COLUMNS)),
                   epochs_planned=round(schedule.total_steps / steps, 3), stopped_at_deadline=stopped,
                   epochs_trained=round(done / steps, 3), examples_trained=(probed + done) * batches.batch_size)
