"""Auto-Keras adapters on tiny synthetic images with tiny budgets: deadlines, trial counts, cleanup, offline."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.core.options import ConfigError
from bench.datasets.base import ImageData
from bench.measure import flops
from bench.systems import make_system
from bench.systems.autokeras import _shuffled
from bench.systems.autokeras import targets as _targets
from bench.systems.search import SearchLog
from bench.systems.search.budget import REFIT_SAFETY, allowed_overshoot_s
from bench.systems.search.log import NoCompletedTrial
from tests.bench.systems.searches import (
    N_TRAIN,
    StepClock,
    assert_no_tuner_files,
    assert_valid_probabilities,
    run_search,
    toy_data,
    trial_rows,
)

# Auto-Keras validates on the last 20% of the training images.
VALIDATION_IMAGES = N_TRAIN // 5


@pytest.fixture(scope="module")
def data() -> ImageData:
    return toy_data()


def test_shuffle_mixes_classes_into_the_validation_tail(data: ImageData) -> None:
    """Auto-Keras validates on the last 20%; after the seeded shuffle that tail holds every class."""
    assert set(data.y_train[-N_TRAIN // 5:]) == {2}
    _, ys = _shuffled(data.x_train, data.y_train, seed=3)
    assert set(ys[-N_TRAIN // 5:]) == {0, 1, 2}
    assert sorted(ys) == sorted(data.y_train)


def test_targets_keep_class_index_order() -> None:
    """One-hot columns follow class indices (Auto-Keras would sort raw labels as strings)."""
    y = np.array([0, 10, 2])
    assert _targets(y, 11).argmax(axis=1).tolist() == [0, 10, 2]
    assert _targets(np.array([1, 0]), 2).tolist() == [1, 0]


def test_options_are_checked() -> None:
    """Bad scopes, block types and batch sizes name the problem."""
    with pytest.raises(ConfigError, match="budget_scope must be one of total, search"):
        make_system("autokeras", {"budget_scope": "refit"})
    assert make_system("autokeras", {"budget_scope": "search"}).budget_scope() == "search"
    with pytest.raises(ConfigError, match="block_types"):
        make_system("autokeras", {"block_types": "vanilla,vgg"})
    with pytest.raises(ConfigError, match="batch_size"):
        make_system("autokeras-default", {"batch_size": 0})
    assert make_system("autokeras", {"block_types": ["resnet"]}).options.block_types == ("resnet",)


def test_import_is_cheap() -> None:
    """Listing systems must not import Keras or Auto-Keras."""
    code = ("import sys, bench.systems.autokeras; "
            "assert not {'keras', 'autokeras', 'tensorflow'} & set(sys.modules), 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_time_budget_stops_search_within_overshoot_bound(
        data: ImageData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 20 s budget on the search (the 2019 protocol), each training step "taking" a second: the trial running at
    the deadline stops at its next batch (long before the hard stop's grace), then the refit is timed apart."""
    clock = StepClock(step_s=1.0).install(monkeypatch)
    result, ctx, rows = run_search("autokeras", "20s", data, tmp_path, budget_scope="search", keep_models=True)
    extras = result.extras
    assert 0 <= extras["overshoot_s"] <= clock.step_s  # the step that crossed the deadline, no more
    assert not any(r["error"] for r in rows)  # no trial needed the watchdog
    assert extras["search_s"] >= 20 - 1
    assert clock.steps < 60  # the budget ended training long before the trials' own 20 epochs of 3 steps
    assert extras["refit_s"] > 0 and extras["refit_reserved_s"] is None
    assert extras["search_s"] + extras["refit_s"] <= result.fit_s + 0.5
    assert result.trials == len(rows) >= 1
    assert rows[-1]["status"] == "stopped"
    assert all(float(r["ended_s"]) <= extras["search_s"] + 0.5 for r in rows)
    assert result.params and result.params > 0
    right = extras["refit_train_accuracy"] * VALIDATION_IMAGES  # the refit model's score on the split it trained on
    assert extras["predicted_by"] == "refit" and extras["val_accuracy"] is None and right == pytest.approx(round(right))
    assert_valid_probabilities(result, data)
    assert_no_tuner_files(ctx)  # the exported refit model (keep_models) and trials.csv only


@pytest.mark.slow  # 60 s: the total scope's bound is checked in the default run on resnet-tuned and the hybrid
def test_a_total_budget_on_digits_bounds_search_and_refit_together(tmp_path: Path) -> None:
    """The overshoot bound: a 60 s budget scoped 'total' ends its search and refit within the allowed overshoot;
    the search stops early enough for the refit it predicted from the best trial's own epochs."""
    from bench.datasets import load_data

    digits = load_data("digits")
    result, _, rows = run_search("autokeras", "60s", digits, tmp_path)
    extras = result.extras
    assert result.fit_s <= 60 + allowed_overshoot_s(60)
    assert 0 <= extras["overshoot_s"] <= allowed_overshoot_s(60)
    assert extras["refit_reserved_s"] > 0
    assert extras["search_s"] < 60  # the search stopped before the budget's end, leaving room for the refit
    assert extras["search_s"] + extras["refit_s"] <= result.fit_s + 0.5
    assert result.trials == len(rows) >= 1
    assert_valid_probabilities(result, digits)


def test_the_search_deadline_reserves_the_predicted_refit() -> None:
    safety = REFIT_SAFETY
    log = SearchLog(t0=0.0, deadline=100.0, scope="total", refit_data_factor=1.25)
    assert log.search_deadline() == 100.0  # nothing known yet
    log.note_start("0")
    log._started["0"] -= 10.0  # built for 4 s, then a first epoch of 6 s (tracing) ...
    log.note_epochs("0", [6.0], first_trial=True)
    log._started["0"] -= 4.0  # ... and a steady one of 4 s
    log.note_epochs("0", [6.0, 4.0], first_trial=True)
    # The running first trial sets the reserve: 6 s fixed (build, tracing) and 4 s a steady epoch, its 2 epochs
    # on 1.25x the data.
    assert log.times.overhead_s["0"] == pytest.approx(6.0, abs=0.1)
    assert log.refit_reserve_s == pytest.approx(safety * (6.0 + 4.0 * 2 * 1.25), abs=0.2)
    assert log.search_deadline() == pytest.approx(100.0 - log.refit_reserve_s)
    reserved = log.refit_reserve_s
    log.note_epochs("1", [10.0], first_trial=False)  # a later trial does not move the reserve by itself
    assert log.refit_reserve_s == reserved
    assert log.refit_estimate("1", 5) == pytest.approx(safety * 10.0 * 5 * 1.25)
    searched = SearchLog(t0=0.0, deadline=100.0, scope="search", refit_reserve_s=30.0)
    assert searched.search_deadline() == 100.0


def test_no_trial_starts_when_the_time_left_could_not_give_it_a_score() -> None:
    now = time.monotonic()
    log = SearchLog(t0=now, deadline=now + 100.0, scope="total")
    log.times.note("0", 24.0, [10.0, 9.0])  # the quickest trial scored after 15 s: built in 5 s, first epoch 10 s
    log.refit_reserve_s = 80.0  # the search must end 20 s from now
    assert log.times.quickest_score_s() == pytest.approx(15.0) and not log.too_late_for_a_trial()
    log.refit_reserve_s = 90.0  # 10 s left: a trial could not score
    assert log.too_late_for_a_trial()
    log.scope = "search"  # the 2019 protocol starts trials until its deadline, as the library did
    assert not log.too_late_for_a_trial()


def test_the_float32_head_keeps_auto_kerass_name_so_the_fair_space_applies() -> None:
    """The fair space and initial trials name the head's hyperparameters 'classification_head_1/...'."""
    import keras

    from bench.systems.autokeras_space import BLOCK_TYPES, classification_head, fair_initial_hps

    keras.backend.clear_session()  # as AutoModel does before assembling its graph
    head = classification_head()
    prefixes = {key.split("/")[0] for hps in fair_initial_hps(BLOCK_TYPES[:2]) for key in hps}
    assert head.name == "classification_head_1"
    assert prefixes == {"image_block_1", head.name, "optimizer", "learning_rate"}


@pytest.mark.slow  # a trial budget is counted in the default run on resnet-tuned (test_resnet_tuned.py)
def test_trial_budget_runs_exactly_that_many_trials(data: ImageData, tmp_path: Path) -> None:
    """t2 runs two trials, no deadline, and keeps only the exported model with keep_models. The model that
    predicts (the refit) trained on Auto-Keras' validation split (18 of 90 images): its score there is
    refit_train_accuracy, never val_accuracy; search_val_accuracy is trials.csv's best."""
    system = make_system("autokeras", {"block_types": "vanilla", "epochs": 2})
    result, ctx, rows = run_search(system, "t2", data, tmp_path, keep_models=True)
    assert result.trials == 2
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert all(1 <= int(r["epochs"]) <= 2 for r in rows)
    assert result.extras["overshoot_s"] is None
    assert result.extras["trials_failed"] == 0
    assert 1 <= result.extras["refit_epochs"] <= 2
    assert result.extras["predicted_by"] == "refit"  # no deadline cut it
    assert (ctx.run_dir / "model.keras").is_file()
    assert "block_type=vanilla" in rows[0]["summary"]
    extras = result.extras
    assert extras["search_val_accuracy"] == pytest.approx(max(float(r["val_accuracy"]) for r in rows), abs=1e-5)
    right = extras["refit_train_accuracy"] * VALIDATION_IMAGES  # images of its split the refit classified right
    assert 0 <= extras["refit_train_accuracy"] <= 1 and right == pytest.approx(round(right))
    assert extras["val_accuracy"] is None
    assert {r["worker"] for r in rows} == {""}
    assert_valid_probabilities(result, data)
    assert_no_tuner_files(ctx)
    # FLOPs: each trial's from its own model (72 training images an epoch); the run's add the refit's epochs on
    # all 90 images, and one forward pass of the refit model per test image.
    assert all(float(r["train_flops"]) > 0 and r["flops_uncounted"] == "" for r in rows)
    refit = system._refit
    forward = flops.count(refit.model).forward
    assert extras["train_flops"] == pytest.approx(sum(float(r["train_flops"]) for r in rows)
                                                  + 3 * forward * refit.epochs_trained * 90, rel=1e-5)
    assert extras["predict_flops"] == forward * len(data.y_test) and extras["flops_uncounted"] == ""


@pytest.mark.slow
def test_budget_smaller_than_one_trial_refits_the_partial_best(
        data: ImageData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 s budget, each training step "taking" half a second: the first trial is cut at its second step; that
    partial best is refit, not a hang. The search ended too late for the refit's one epoch, which it still gets,
    within REFIT_GRACE_SHARE of the allowed overshoot."""
    from bench.systems.search.budget import REFIT_GRACE_SHARE

    clock = StepClock(step_s=0.5).install(monkeypatch)
    result, ctx, rows = run_search("autokeras", "1s", data, tmp_path)
    assert result.trials == 1
    assert rows[0]["status"] == "stopped" and not rows[0]["error"]
    assert int(rows[0]["epochs"]) == 1
    extras = result.extras
    assert extras["refit_epochs"] == 1 and extras["predicted_by"] == "refit"
    assert 0 < extras["overshoot_s"] <= REFIT_GRACE_SHARE * allowed_overshoot_s(1) + clock.step_s
    assert_valid_probabilities(result, data)
    assert_no_tuner_files(ctx)


def _offline(monkeypatch: pytest.MonkeyPatch, first_trials: list[int]) -> None:
    """Keras downloads raise (as offline), and the library's initial trials are reordered for speed."""
    import keras.src.utils.file_utils as file_utils
    from autokeras.tuners import task_specific

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("offline: URL fetch failure (simulated by the test)")

    monkeypatch.setattr(file_utils, "get_file", no_network)
    # The pretrained EfficientNet trial first, so the test need not train a ResNet50 at 224 px; as B0,
    # which fails on the same weights download as the library's B7 but builds in a fraction of the time.
    reordered = [dict(task_specific.IMAGE_CLASSIFIER[i]) for i in first_trials]
    for hps in reordered:
        if hps.get("image_block_1/block_type") == "efficient":
            hps["image_block_1/efficient_net_block_1/version"] = "b0"
    monkeypatch.setattr(task_specific, "IMAGE_CLASSIFIER", reordered)


@pytest.mark.slow
def test_default_offline_records_the_download_failure(
        data: ImageData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """autokeras-default offline: the pretrained trial fails with its reason, the next one still runs (its
    library's epochs, up to 1000, bounded by 40 s of training steps that each "take" a second)."""
    _offline(monkeypatch, first_trials=[2, 0])
    StepClock(step_s=1.0).install(monkeypatch)
    result, ctx, rows = run_search("autokeras-default", "t2+40s", data, tmp_path)
    assert [r["status"] for r in rows][0] == "failed"
    assert "offline" in rows[0]["error"]
    assert "efficient" in rows[0]["summary"]
    assert rows[1]["status"] in {"completed", "stopped"}
    assert result.trials == 2
    assert result.extras["trials_failed"] == 1
    assert_valid_probabilities(result, data)
    assert_no_tuner_files(ctx)


def test_no_completed_trial_raises_a_clear_error(
        data: ImageData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When every trial fails the run fails with each trial's reason, and still leaves no tuner files."""
    _offline(monkeypatch, first_trials=[2])
    with pytest.raises(NoCompletedTrial, match="offline"):
        run_search("autokeras-default", "t1", data, tmp_path)
    rows = trial_rows(tmp_path / "run")
    assert [r["status"] for r in rows] == ["failed"]
    assert [p for p in (tmp_path / "work").rglob("*") if p.is_file()] == []


def test_hard_stop_interrupts_a_stuck_fit_and_keeps_finished_epochs() -> None:
    """A batch that outlives the deadline is interrupted; the epochs finished before it keep their scores."""
    import keras

    from bench.systems.search import deadline_callback
    from bench.systems.search.stop import DeadlineInterrupt, HardStop
    from bench.systems.search.stop import finished_epochs as _finished_epochs

    stuck_at: list[float] = []

    class StuckInSecondEpoch(keras.callbacks.Callback):
        """Emulates one endless batch (e.g. a huge model's first step) in epoch 2."""

        def on_train_batch_begin(self, batch: int, logs: object = None) -> None:
            if self.model.history.history.get("loss"):
                stuck_at.append(time.monotonic())
                while time.monotonic() - stuck_at[0] < 30:
                    time.sleep(0.01)

    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    stopper = deadline_callback(None)
    # The deadline falls 1 s into the stuck batch, however long a busy machine takes to finish epoch 1.
    hard_stop = HardStop(lambda: stuck_at[0] + 1.0 if stuck_at else None)
    # Usually DeadlineInterrupt; inside pybind11 code it can arrive as a RuntimeError naming it.
    with pytest.raises((DeadlineInterrupt, RuntimeError)), hard_stop:
        model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[stopper, StuckInSecondEpoch()])
    assert hard_stop.fired
    assert time.monotonic() - stuck_at[0] < 10
    history = _finished_epochs(stopper, "val_loss")
    assert history is not None and len(history.history["val_loss"]) == 1
    time.sleep(1.0)  # no interrupt is left pending once the block has exited


def test_a_fit_past_its_deadline_stops_at_its_next_batch() -> None:
    """Inside its first epoch too, which it counts by its batches."""
    import keras

    from bench.systems.search import deadline_callback

    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    batches: list[int] = []
    count = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    stopper = deadline_callback(time.monotonic() - 1.0)  # already past
    model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[stopper, count])
    assert stopper.stopped and len(batches) == 1 and len(stopper.epochs_s) == 1
    assert stopper.epochs_trained == pytest.approx(1 / 8)


def test_a_refit_past_the_budgets_end_stops_there_or_within_part_of_the_allowed_overshoot() -> None:
    """The refit stops at the budget's end; a search that ended too late for one epoch gets that epoch, but
    never more than REFIT_GRACE_SHARE of the allowed overshoot, leaving the rest for the batch then running."""
    from bench.systems.search import refit_stop_at
    from bench.systems.search.budget import REFIT_GRACE_SHARE

    now = time.monotonic()
    assert refit_stop_at(now + 100.0, 30.0, 20.0) == now + 100.0  # time enough: the budget's end
    late = refit_stop_at(now - 1.0, 30.0, 5.0)  # the search ran past the end: one predicted epoch more
    assert now + 5.0 <= late <= time.monotonic() + 5.0
    assert refit_stop_at(now, 30.0, 600.0) == now + REFIT_GRACE_SHARE * 30.0  # capped inside the bound


class _FakeClock:
    """time.monotonic running `offset` seconds ahead of the real one."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def test_a_refit_epoch_longer_than_the_allowed_overshoot_is_cut_at_its_next_batch(
        data: ImageData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refit whose batches "take" 20 s on the runner's clock (epochs of 23 batches, 460 s, against an allowed
    overshoot of 30 s) stops at the first batch ending past the budget's end, inside its first epoch; the record
    says the refit was cut and how far it got, and the best trial's checkpoint predicts instead of a model that
    has not seen every image once."""
    from types import SimpleNamespace

    from bench.systems import autokeras as autokeras_system
    from bench.systems import autokeras_search
    from bench.systems.search import stop

    batch_s = 20.0
    clock = _FakeClock()  # the real clock until the refit's batches move it on
    fake_time = SimpleNamespace(monotonic=clock.monotonic, perf_counter=time.perf_counter, time=time.time,
                                sleep=time.sleep)
    for module in (autokeras_search, autokeras_system, stop):
        monkeypatch.setattr(module, "time", fake_time)
    real_callback = autokeras_search.deadline_callback

    def slow_refit(deadline: object, *args: object, **kwargs: object) -> object:
        callback = real_callback(deadline, *args, **kwargs)
        if not callable(deadline):  # the refit's stop (a trial's follows the search's moving deadline)
            stop = callback.on_train_batch_end

            def on_train_batch_end(batch: int, logs: object = None) -> None:
                clock.offset += batch_s
                stop(batch, logs)

            callback.on_train_batch_end = on_train_batch_end
        return callback

    monkeypatch.setattr(autokeras_search, "deadline_callback", slow_refit)
    result, ctx, rows = run_search("autokeras", "t1+200s", data, tmp_path, epochs=1, batch_size=4,
                             block_types="vanilla")
    extras = result.extras
    assert len(rows) == 1
    assert extras["refit_stopped_at_deadline"] is True
    assert 0 < extras["refit_epochs_trained"] < 1  # cut inside its first epoch
    assert extras["predicted_by"] == "best trial"
    # The trial's one epoch is its checkpoint: scored on the same validation split, it gives the trial's score.
    assert extras["val_accuracy"] == pytest.approx(extras["search_val_accuracy"], abs=1e-6)
    assert extras["refit_train_accuracy"] is None
    assert 0 <= extras["overshoot_s"] <= allowed_overshoot_s(200)
    assert_valid_probabilities(result, data)
    assert_no_tuner_files(ctx)


# The default run counts the vanilla block, Auto-Keras' own layers around it included; the other blocks wrap
# keras.applications networks (seconds to build each) whose layers' rules tests/bench/test_flops.py checks by hand
# and on ResNet50, MobileNetV2 and EfficientNetB0.
@pytest.mark.parametrize("block_type", ["vanilla", *(pytest.param(b, marks=pytest.mark.slow)
                                                     for b in ("resnet", "xception", "efficient"))])
def test_the_flop_counter_counts_every_layer_auto_keras_builds(block_type: str) -> None:
    """Each ImageBlock type, with normalisation and augmentation, on 32 px images: nothing is left uncounted
    (keras.applications' networks nested inside count too; ResNet50 at 32 px is its 224 px count / 49)."""
    import autokeras as ak
    import keras
    import keras_tuner
    from autokeras import graph as graph_module

    inputs = ak.ImageInput()
    inputs.shape, inputs.dtype = (32, 32, 3), "float32"
    head = ak.ClassificationHead()
    outputs = head(ak.ImageBlock(block_type=block_type, normalize=True, augment=True)(inputs))
    head.shape = (10,)
    model = graph_module.Graph(inputs=inputs, outputs=outputs).build(keras_tuner.HyperParameters())
    counted = flops.count(model)
    keras.backend.clear_session()  # the blocks' names count up per process: later searches expect their own
    assert counted.complete and counted.forward > 0
    if block_type == "resnet":
        assert counted.forward / 2 == pytest.approx(3.87e9 / 49, rel=0.03)
