"""The shared training loop on the generic recipe and tiny 8x8 data: history, deadline, budget scaling."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.baselines import generic
from bench.baselines.training import HISTORY_COLUMNS, Batches, Schedule, probe_step_seconds, train


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_budget_compresses_the_whole_lr_cycle_and_completes_it(digits_like) -> None:
    x, y = digits_like
    recipe = generic.recipe().with_overrides(epochs=10_000, batch_size=16)
    start = time.monotonic()
    trained = train(recipe, x, y, 3, deadline=start + 15.0)
    steps_per_epoch = (len(x) - 12) // 16  # 10% held out for validation
    # Sized before the first epoch from the probe: the LR cycle ran to its end, the deadline never cut it.
    assert not trained.stopped_at_deadline and 1 <= trained.epochs_planned < 10_000
    assert int(trained.model.optimizer.iterations) == round(trained.epochs_planned * steps_per_epoch)
    assert float(trained.model.optimizer.learning_rate) == pytest.approx(
        recipe.peak_lr * recipe.end_lr_fraction, abs=1e-6)


@pytest.mark.slow
def test_a_budget_longer_than_the_schedule_stretches_it_up_to_the_cap(digits_like, tmp_path: Path) -> None:
    x, y = digits_like
    recipe = generic.recipe().with_overrides(epochs=2, batch_size=16)
    assert recipe.max_scale_up == 4.0
    trained = train(recipe, x, y, 3, deadline=time.monotonic() + 600, history_path=tmp_path / "history.csv")
    # Ten minutes fit far more than 2 epochs of 8x8 images: the cycle grew to the cap and ran to its end.
    assert trained.epochs_planned == 8 and len(trained.history) == 8 and not trained.stopped_at_deadline
    assert pd.read_csv(tmp_path / "history.csv")["planned_epochs"].tolist() == [8.0] * 8
    assert float(trained.model.optimizer.learning_rate) == pytest.approx(
        recipe.peak_lr * recipe.end_lr_fraction, abs=1e-6)
    fixed = train(replace(recipe, max_scale_up=1.0), x, y, 3, deadline=time.monotonic() + 600)
    assert fixed.epochs_planned == 2 and len(fixed.history) == 2


def test_a_stretched_schedule_keeps_the_cycle_shape() -> None:
    recipe = generic.recipe().with_overrides(epochs=10)
    schedule = Schedule(recipe, steps_per_epoch=10)
    assert schedule.max_steps == 400
    schedule.set_total(400)
    assert schedule.lr.warmup_steps == round(recipe.warmup_epochs * 10 * 4)
    # The same shape at 4x the length: the LR at a quarter of the way equals the recipe's at a quarter.
    own = Schedule(recipe, steps_per_epoch=10)
    assert float(schedule.lr(100)) == pytest.approx(float(own.lr(25)))


def test_schedule_compresses_warmup_with_the_cycle() -> None:
    recipe = generic.recipe().with_overrides(epochs=30)
    schedule = Schedule(recipe, steps_per_epoch=10)
    assert schedule.total_steps == 300 and schedule.lr.warmup_steps == round(recipe.warmup_epochs * 10)
    schedule.set_total(30)  # a budget that fits a tenth of the recipe
    assert schedule.lr.total_steps == 30 and schedule.lr.warmup_steps == round(recipe.warmup_epochs)
    assert float(schedule.lr(30)) == pytest.approx(recipe.peak_lr * recipe.end_lr_fraction)


def test_probe_times_steps_and_leaves_no_trace(digits_like) -> None:
    import keras

    x, y = digits_like
    recipe = generic.recipe().with_overrides(batch_size=16)
    batches = Batches(x, y, 3, 16, recipe.augment, seed=0)
    model = recipe.build(x.shape[1:], 3)
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9), loss="categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    step_s = probe_step_seconds(model, batches, x[:20], recipe)
    assert step_s > 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert all(not np.any(np.asarray(v)) for v in model.optimizer.variables)


def test_past_deadline_trains_nothing(digits_like) -> None:
    x, y = digits_like
    trained = train(generic.recipe(), x, y, 3, deadline=time.monotonic() - 1)
    assert trained.history.empty and trained.val_accuracy is None
    assert trained.predict_proba(x[:3]).shape == (3, 3)


class CornerModel:
    """A stand-in model whose class-1 probability is the top-left pixel / 255 of each image it is shown."""

    def predict(self, images: np.ndarray, batch_size: int = 0, verbose: int = 0) -> np.ndarray:
        p = images[:, 0, 0, 0].astype(np.float64) / 255
        return np.stack([1 - p, p], axis=1)


def test_predict_proba_weights_the_flip_and_translate_views_as_airbench() -> None:
    from bench.baselines.training import predict_proba

    image = (10 * np.arange(4)[:, None] + np.arange(4)[None, :] + 1).astype(np.uint8)[None, :, :, None]
    # Top-left pixels seen: image 1, mirror 4; shifted up-left and down-right (reflect) 12, mirrors 13.
    assert predict_proba(CornerModel(), image)[0, 1] * 255 == pytest.approx(1)
    assert predict_proba(CornerModel(), image, tta_flip=True)[0, 1] * 255 == pytest.approx(2.5)
    both = predict_proba(CornerModel(), image, tta_flip=True, tta_translate=1)[0, 1] * 255
    assert both == pytest.approx(0.5 * 2.5 + 0.25 * 12.5 + 0.25 * 12.5)


def test_lookahead_pulls_toward_the_slow_weights_and_keeps_them() -> None:
    import keras

    from bench.baselines.training import Lookahead

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    model.set_weights([np.array([[1.0], [2.0]], dtype=np.float32)])
    lookahead = Lookahead(model, every=5, decay=0.5)
    model.set_weights([np.array([[3.0], [6.0]], dtype=np.float32)])
    lookahead.step(done=4, total=10)  # not a multiple of 5: nothing happens
    np.testing.assert_allclose(model.get_weights()[0].ravel(), [3, 6])
    lookahead.step(done=10, total=10)  # d = 0.5 * 1^3: halfway between slow and fast
    np.testing.assert_allclose(model.get_weights()[0].ravel(), [2, 4])
    model.set_weights([np.array([[10.0], [10.0]], dtype=np.float32)])
    lookahead.finish()
    np.testing.assert_allclose(model.get_weights()[0].ravel(), [2, 4])


class RecordingModel:
    """A stand-in model that records the batches it trains on and returns their first label as the loss."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def train_on_batch(self, images: np.ndarray, labels: np.ndarray) -> float:
        self.seen.append(images)
        return float(labels[0].argmax())


def test_train_steps_trains_on_the_batches_in_order_while_the_next_is_prepared(digits_like) -> None:
    from bench.baselines.training import train_steps

    x, y = digits_like
    batches = Batches(x, y, 3, 16, generic.recipe().augment, seed=3)
    model = RecordingModel()
    losses = train_steps(model, batches, 5)
    assert len(losses) == 5
    for i, images in enumerate(model.seen):
        np.testing.assert_array_equal(images, batches[i][0])  # the same draws as taking them in turn
        assert losses[i] == batches[i][1][0].argmax()
    stopped = RecordingModel()
    assert len(train_steps(stopped, batches, 5, after_step=lambda k: k == 2)) == 2 and len(stopped.seen) == 2
    assert train_steps(RecordingModel(), batches, 0) == []


def test_a_change_of_plan_reaches_the_compiled_step_without_a_new_trace() -> None:
    import keras

    from bench.baselines import blocks

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")

    def model(total_steps: int) -> keras.Model:
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
        m.compile(keras.optimizers.SGD(blocks.linear_schedule(0.1, 0, total_steps)), "mse")
        return m

    changed, planned = model(4), model(2)
    changed.train_on_batch(x, y)  # traced with a 4-step cycle
    compiled = changed.train_function
    changed.optimizer._learning_rate.set_span(0, 2)  # re-planned to 2 steps
    planned.train_on_batch(x, y)
    for m in (changed, planned):
        m.train_on_batch(x, y)
    assert blocks.retrace_on_change() or changed.train_function is compiled
    # The second step ran at the 2-step cycle's LR (half the peak), not the 4-step one's (three quarters).
    np.testing.assert_allclose(changed.get_weights()[0], planned.get_weights()[0], rtol=1e-6)


def step_times(epochs: int, seed: int) -> list[float]:
    """An epoch's step time as the history of a malaria run shows it: the first epochs slower, then steady
    with a slow epoch now and then (another process on the cores), sometimes two in a row."""
    rng = np.random.default_rng(seed)
    times = 1.0 + 0.03 * rng.standard_normal(epochs)
    times[:3] *= (1.3, 1.35, 1.2)
    for at in rng.choice(np.arange(5, epochs - 1), size=epochs // 10, replace=False):
        times[at:at + rng.integers(1, 3)] *= 1.35
    return times.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_a_budget_is_used_to_its_end_through_slow_epochs(seed: int) -> None:
    from bench.baselines.training import Pace, plan_steps

    steps, budget = 100, 240.0  # epochs of about a second: a 4-minute budget on the malaria subset
    per_step = step_times(400, seed)
    total = plan_steps(10 ** 6, 0, per_step[0] * 1.1 / steps, budget)  # the probe: an estimate that is off
    pace, done, spent, epoch = Pace(), 0, 0.0, 0
    while done < total:
        n = min(steps, total - done)
        spent += n * per_step[epoch] / steps
        done, epoch = done + n, epoch + 1
        assert spent <= budget, "the plan overran the deadline"
        pace.observe(per_step[epoch - 1] / steps)
        new_total = pace.replan(total, 10 ** 6, done, budget - spent, 0.0, steps)
        total = total if new_total is None else new_total
    assert spent >= 0.95 * budget


def test_views_averaged_as_logits_are_the_softmax_of_the_mean_logit() -> None:
    from scipy.special import softmax

    from bench.baselines.training import average_views

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(6, 50, 10))
    weights = [0.25, 0.25, 0.125, 0.125, 0.125, 0.125]
    # As the network hands them over: float32 probabilities.
    views = [(w, softmax(z, axis=1).astype(np.float32).astype(np.float64))
             for w, z in zip(weights, logits, strict=True)]
    mean_logit = sum(w * z for w, z in zip(weights, logits, strict=True))
    np.testing.assert_allclose(average_views(views, "logits"), softmax(mean_logit, axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(average_views(views), sum(w * p for w, p in views))
    # The two differ: on some images the mean probability and the mean logit pick different classes.
    assert (average_views(views, "logits").argmax(1) != average_views(views).argmax(1)).any()
    with pytest.raises(ValueError, match="unknown test-time average 'median'"):
        average_views(views, "median")


def test_a_recipe_with_an_unknown_tta_average_is_refused_before_training() -> None:
    with pytest.raises(ValueError, match="unknown tta_average 'mean'; valid: probabilities, logits"):
        replace(generic.recipe(), tta_average="mean")


@pytest.mark.slow
def test_with_val_fraction_0_it_trains_without_a_validation_slice(digits_like) -> None:
    x, y = digits_like
    recipe = replace(generic.recipe().with_overrides(epochs=2, batch_size=16), val_fraction=0.0, max_scale_up=1.0)
    trained = train(recipe, x, y, 3, deadline=time.monotonic() + 600)  # the probe, too, runs without one
    assert len(trained.history) == 2 and trained.history["val_accuracy"].isna().all()
    assert trained.val_accuracy is None and trained.best_val_accuracy is None
    assert trained.history["loss"].notna().all()


class FakeClock:
    """The training loop's clocks, running `offset` seconds ahead of the real ones: a test makes steps "take"
    minutes without spending them."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def perf_counter(self) -> float:
        return time.perf_counter() + self.offset


def _slow_after_probe(monkeypatch: pytest.MonkeyPatch, step_s: float) -> tuple[FakeClock, object]:
    """A fake clock for train(), and the generic recipe whose training steps each take step_s on it once the
    probe's steps are over (so the plan is made for the whole schedule and only the safety net can stop it)."""
    from types import SimpleNamespace

    from bench.baselines import training

    clock = FakeClock()
    monkeypatch.setattr(training, "time", SimpleNamespace(monotonic=clock.monotonic, perf_counter=clock.perf_counter))
    base = generic.recipe().with_overrides(epochs=3, batch_size=16)

    def build(input_shape: tuple[int, int, int], n_classes: int) -> object:
        model = base.build(input_shape, n_classes)
        inner, calls = model.train_on_batch, [0]

        def train_on_batch(*args: object, **kwargs: object) -> object:
            out = inner(*args, **kwargs)
            calls[0] += 1
            if calls[0] > 1 + training.PROBE_STEPS:
                clock.offset += step_s
            return out

        model.train_on_batch = train_on_batch
        return model

    return clock, replace(base, build=build)


@pytest.mark.slow
def test_an_epoch_longer_than_the_allowed_overshoot_is_cut_at_its_next_step(
        digits_like, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps of 100 s, epochs of 6 steps (600 s, beyond any allowed overshoot of a short budget): the deadline
    250 s away stops training after the step that passes it, inside the first epoch, and the model predicts."""
    x, y = digits_like
    step_s = 100.0
    clock, recipe = _slow_after_probe(monkeypatch, step_s)
    deadline = clock.monotonic() + 250.0
    trained = train(recipe, x, y, 3, deadline=deadline)
    assert int(trained.model.optimizer.iterations) == 3  # 300 s: the first step ending past the deadline
    assert clock.monotonic() - deadline < step_s  # one step's overshoot, plus the validation pass
    assert trained.stopped_at_deadline and len(trained.history) == 1
    assert trained.epochs_trained == pytest.approx(0.5)
    assert trained.epochs_planned > 1  # the plan was for more: the cut, not the plan, ended training
    proba = trained.predict_proba(x[:5])
    assert proba.shape == (5, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)


@pytest.mark.slow
def test_no_epoch_starts_once_a_validation_pass_ran_past_the_deadline(
        digits_like, monkeypatch: pytest.MonkeyPatch) -> None:
    """An epoch ends before the deadline, its validation pass after it: the re-plan ends the schedule there, the
    model being the one that pass scored (another epoch would train a step and validate again, all overshoot)."""
    from bench.baselines import training

    x, y = digits_like
    clock, recipe = _slow_after_probe(monkeypatch, 10.0)
    real_predict = training.predict_proba
    trained_steps: list[int] = []

    def slow_validation(model: object, images: np.ndarray, *args: object) -> np.ndarray:
        if trained_steps:  # after the probe: each validation pass takes 20 s
            clock.offset += 20.0
        trained_steps.append(1)
        return real_predict(model, images, *args)

    monkeypatch.setattr(training, "predict_proba", slow_validation)
    deadline = clock.monotonic() + 65.0  # epoch 1 (6 steps) ends at 60 s, its validation at 80 s
    trained = train(recipe, x, y, 3, deadline=deadline)
    assert int(trained.model.optimizer.iterations) == 6 and len(trained.history) == 1
    assert trained.epochs_planned == trained.epochs_trained == pytest.approx(1.0)


@pytest.mark.parametrize(("tta_flip", "tta_translate"), [(False, 0), (False, 2), (True, 0), (True, 1)])
def test_view_count_is_the_forward_passes_prediction_makes(tta_flip: bool, tta_translate: int) -> None:
    """What predict_flops multiplies by: one pass per test-time view of each image."""
    import keras

    from bench.baselines.training import Trained, tta_views

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    recipe = replace(generic.recipe("default"), tta_flip=tta_flip, tta_translate=tta_translate)
    trained = Trained(model=model, recipe=recipe, history=pd.DataFrame(), epochs_planned=0, stopped_at_deadline=False,
                      epochs_trained=0)
    views = tta_views(model, np.zeros((3, 4, 4, 1), np.uint8), 8, tta_flip, tta_translate)
    assert trained.view_count == len(views)
