"""The AutoGluon systems with a fake library (default run, no AutoGluon needed), and real short runs on digits in
AutoGluon's own environment (slow; skipped where it is not set up)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.core.budget import parse_budget
from bench.measure.flops import Flops
from bench.systems import make_system
from bench.systems.autogluon import (
    TRIAL_COUNTS,
    AutoGluon,
    AutoGluonHPO,
    AutoGluonToolkit,
    best_among_saved,
    class_columns,
)
from bench.systems.autogluon_budget import BudgetOverrun, FitClock
from bench.systems.autogluon_flops import Tally, TrainingCount, read_counts, trial_path
from bench.systems.base import RAY_NODE_ENV, FitContext
from bench.systems.search.log import TRIAL_COLUMNS, TrialRow
from tests.bench.systems.autogluon_fakes import (
    DIGITS_MAJORITY,
    FakeToolkit,
    autogluon_python,
    faked,
    tiny,
)
from tests.bench.systems.searches import learnt
from tests.datasets.builders import class_members, write_tree


def context(tmp_path: Path, budget: str, n_classes: int = 3) -> FitContext:
    b = parse_budget(budget)
    deadline = None if b.seconds is None else time.monotonic() + b.seconds
    return FitContext(budget=b, seed=7, workdir=tmp_path / "work", run_dir=tmp_path, n_classes=n_classes,
                      class_names=tuple(map(str, range(n_classes))), dataset="tiny", deadline=deadline)


def table_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_fit_keeps_to_the_budget_and_records_its_phases(tmp_path):
    kit = FakeToolkit(need_s=5.0, finish_s=0.2)
    system = faked(AutoGluon, kit)
    x, y = tiny()
    t0 = time.monotonic()
    system.fit(x, y, context(tmp_path, "2s"))
    took = time.monotonic() - t0
    assert took < 2.0
    call = kit.made[0].calls[0]
    assert call["time_limit"] == 1.0  # 2 s less the reserve: the least AutoGluon is given
    assert call["seed"] == 7 and call["hyperparameter_tune_kwargs"] is None
    assert kit.n_classes == 3  # the predictor is made for the data's classes, not the labels the loop saw
    extras = system.extras()
    assert extras["overshoot_s"] == 0.0
    # The loop ran its whole limit and the finishing its 0.2 s (a busy machine only lengthens them), within fit.
    assert extras["search_s"] >= 1.0 and extras["refit_s"] >= 0.2 and extras["search_s"] + extras["refit_s"] <= took
    assert extras["backbone"] == "resnet18" and extras["image_size_asked"] == 8 and extras["time_limit_s"] == 1.0
    proba = system.predict_proba(x[:4])
    assert proba.shape == (4, 3) and np.allclose(proba.sum(axis=1), 1.0) and not proba[:, 2].any()


def test_a_fit_running_past_the_bound_is_interrupted_with_one_line(tmp_path):
    system = faked(AutoGluon, FakeToolkit(need_s=30.0, ignore_limit=True), grace_s=0.3)
    t0 = time.monotonic()
    with pytest.raises(BudgetOverrun) as err:
        system.fit(*tiny(), context(tmp_path, "1s"))
    assert time.monotonic() - t0 < 5.0
    assert "\n" not in str(err.value) and "budget_scope=total" in str(err.value)


def test_search_scope_lets_the_finishing_follow_and_measures_the_loop(tmp_path):
    kit = FakeToolkit(need_s=5.0, finish_s=1.0)
    system = faked(AutoGluon, kit, grace_s=0.2, budget_scope="search")
    system.fit(*tiny(), context(tmp_path, "1s"))  # the finishing runs past the grace: outside the bound
    assert system.budget_scope() == "search"
    assert system.extras()["overshoot_s"] < 0.3 and system.extras()["refit_s"] >= 1.0


def test_the_search_gets_searcher_scheduler_and_trials_from_the_budget_and_writes_trials_csv(tmp_path):
    rows = [TrialRow("a1", 0.5, 3.0, 2, 0.61, "completed", json.dumps({"optim.lr": 0.001})),
            TrialRow("a2", 0.6, 2.0, None, None, "failed", "{}", error="OOM")]
    kit = FakeToolkit(rows=rows)
    system = faked(AutoGluonHPO, kit, searcher="random", scheduler="FIFO")
    system.fit(*tiny(), context(tmp_path, "t3"))
    assert kit.made[0].calls[0]["hyperparameter_tune_kwargs"] == {"searcher": "random", "scheduler": "FIFO",
                                                                   "num_trials": 3}
    assert kit.made[0].calls[0]["time_limit"] is None
    assert system.trials() == 2
    extras = system.extras()
    assert extras["search_val_accuracy"] == 0.61 and extras["trials_failed"] == 1
    table = table_rows(tmp_path / "trials.csv")
    assert tuple(table[0]) == TRIAL_COLUMNS and [r["trial_id"] for r in table] == ["a1", "a2"]
    assert AutoGluonHPO().tune_kwargs(context(tmp_path, "1m"))["num_trials"] == 512  # time ends the search


def test_flops_are_the_examples_trained_times_three_forward_passes_and_one_per_image_predicted(tmp_path):
    kit = FakeToolkit(count=TrainingCount(examples=480, forward=Flops(1_000, ("LayerScale",)), model="Timm"))
    system = faked(AutoGluon, kit)
    x, y = tiny()
    system.fit(x, y, context(tmp_path, "2s"))
    system.predict_proba(x[:4])
    system.predict_proba(x[:3])
    extras = system.extras()
    assert extras["train_flops"] == 3 * 1_000 * 480 and extras["predict_flops"] == 1_000 * 7
    assert extras["flops_uncounted"] == "LayerScale" and extras["examples_trained"] == 480


def test_a_forward_pass_that_was_not_counted_makes_the_figures_lower_bounds(tmp_path):
    system = faked(AutoGluon, FakeToolkit(count=TrainingCount(examples=96, forward=None, model="TimmModel")))
    x, y = tiny()
    system.fit(x, y, context(tmp_path, "2s"))
    system.predict_proba(x)
    extras = system.extras()
    assert extras["train_flops"] == 0.0 and extras["predict_flops"] == 0.0 and extras["flops_uncounted"] == "TimmModel"


def test_the_search_sums_every_trials_flops_and_predicts_with_the_chosen_trials_model(tmp_path):
    rows = [TrialRow("a1", 0.5, 3.0, 2, 0.61, "completed", "{}", train_flops=6e6),
            TrialRow("a2", 0.6, 2.0, None, None, "stopped", "{}", train_flops=1.5e6),
            TrialRow("a3", 0.6, 2.0, 1, None, "failed", "{}", error="OOM"),
            TrialRow("a4", 0.7, 2.5, None, 0.4, "completed", "{}")]
    kit = FakeToolkit(rows=rows, count=TrainingCount(examples=2_500, forward=Flops(1_000), model="Timm"))
    system = faked(AutoGluonHPO, kit)
    x, y = tiny()
    system.fit(x, y, context(tmp_path, "t3"))
    system.predict_proba(x[:5])
    extras = system.extras()
    assert extras["train_flops"] == 7.5e6 and extras["predict_flops"] == 5_000
    # Trials that trained (one was scored, one failed after an epoch) without a count: the sum is a lower bound.
    assert extras["flops_uncounted"] == "trial a3,trial a4"
    table = table_rows(tmp_path / "trials.csv")
    assert [r["train_flops"] for r in table] == ["6e+06", "1.5e+06", "", ""]


def test_a_tally_keeps_its_count_in_its_file_after_every_batch(tmp_path):
    path = trial_path(tmp_path / "counts", "t1")  # the first trial makes the folder
    tally = Tally(path)
    tally.measure(object(), lambda: None, examples=4)  # no torch module: the count fails, the model is named
    tally.add(4)
    tally.add(3)
    assert TrainingCount.from_json(path.read_text()) == TrainingCount(7, None, "object")
    again = Tally(path)  # a trial restarted from its checkpoint goes on counting
    again.add(2)
    assert read_counts(tmp_path / "counts") == {"t1": TrainingCount(9, None, "object")}
    counted = TrainingCount(5, Flops(40, ("Scale",)), "Net")
    assert TrainingCount.from_json(counted.to_json()) == counted


def test_the_toolkit_reads_each_trials_count_and_the_chosen_trials_forward_pass(tmp_path, monkeypatch):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")  # set back after the test

    class Trial:
        def __init__(self, trial_id: str, result: dict[str, Any], status: str = "TERMINATED") -> None:
            self.trial_id, self.last_result, self.status, self.config = trial_id, result, status, {"optim.lr": 0.1}

    class Analysis:
        trials = [Trial("t1", {"val_accuracy": 0.5, "epoch": 1}), Trial("t2", {"val_accuracy": 0.7, "epoch": 2}),
                  Trial("t3", {})]

        def get_best_trial(self, metric=None, mode=None, **kwargs):
            return self.trials[1]

    kit = AutoGluonToolkit()
    kit._counts = tmp_path / TRIAL_COUNTS
    kit._counts.mkdir()
    for trial_id, examples in (("t1", 100), ("t2", 300)):
        trial_path(kit._counts, trial_id).write_text(TrainingCount(examples, Flops(10), "Timm").to_json())
    kit._analysis = best_among_saved(Analysis(), str(tmp_path / "nowhere"), kit._choose)
    kit._analysis.get_best_trial(metric="val_accuracy", mode="max")
    assert kit.training_count() == TrainingCount(400, Flops(10), "Timm")
    rows = {r.trial_id: r for r in kit.trial_rows(FitClock(time.monotonic()))}
    assert rows["t1"].train_flops == 3 * 10 * 100 and rows["t2"].train_flops == 3 * 10 * 300
    assert rows["t3"].train_flops is None  # it ended before its first batch: it trained nothing


def test_the_search_refuses_to_start_a_second_ray_on_a_ray_node(tmp_path, monkeypatch):
    monkeypatch.setenv(RAY_NODE_ENV, "1")
    with pytest.raises(RuntimeError, match="--executor local"):
        faked(AutoGluonHPO, FakeToolkit()).fit(*tiny(), context(tmp_path, "1m"))


def test_the_best_trial_is_chosen_among_those_that_saved_their_files(tmp_path):
    class Trial:
        def __init__(self, trial_id: str, score: float | None, saved: bool) -> None:
            self.trial_id, self.last_result = trial_id, {} if score is None else {"val_accuracy": score}
            if saved:
                (tmp_path / trial_id).mkdir()
                (tmp_path / trial_id / "config.yaml").write_text("{}")

    class Analysis:
        trials = [Trial("stopped", 0.9, False), Trial("done", 0.7, True), Trial("worse", 0.5, True),
                  Trial("unscored", None, True)]

        def get_best_trial(self, metric=None, mode=None, **kwargs):
            return self.trials[0]

    analysis = best_among_saved(Analysis(), str(tmp_path))
    assert analysis.get_best_trial(metric="val_accuracy", mode="max").trial_id == "done"
    assert analysis.get_best_trial(metric="val_accuracy", mode="min").trial_id == "worse"


def test_class_columns_put_autogluons_labels_in_class_index_order():
    table = pd.DataFrame({2: [0.5, 0.0], 0: [0.5, 1.0]})
    assert np.array_equal(class_columns(table, 3), [[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]])


def test_systems_declare_their_family_and_environment():
    for name in ("autogluon", "autogluon-hpo"):
        system = make_system(name)
        assert system.role == "automl" and system.library == "autogluon" and system.environment == "autogluon"
        assert system.identity()["library"] == "autogluon"


@pytest.mark.parametrize("option", ["presets=nope", "image_size=-1", "pretrained=3", "budget_scope=all",
                                    "backbone=' '"])
def test_bad_options_get_one_line_and_exit_2(option, tmp_path, capsys):
    code = main(["run", "--dataset", "digits", "--system", "autogluon", "--budget", "60s", "--system-option",
                 option, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "system 'autogluon'" in err
    assert not (tmp_path / "out").exists()


def test_hpo_options_are_checked(tmp_path, capsys):
    code = main(["run", "--dataset", "digits", "--system", "autogluon-hpo", "--budget", "60s", "--system-option",
                 "searcher=grid", "--out", str(tmp_path / "out")])
    assert code == 2 and "searcher must be one of random, bayes" in capsys.readouterr().err


def test_a_run_without_the_environment_is_recorded_failed_saying_how_to_set_it_up(tmp_path):
    env = {**os.environ, "BENCH_AUTOGLUON_PYTHON": str(tmp_path / "nowhere" / "python")}
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system", "autogluon",
                           "--budget", "60s", "--out", str(tmp_path / "out")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    record = table_rows(tmp_path / "out" / "runs.csv")[0]
    assert record["status"] == "failed" and "python -m bench setup autogluon" in record["error"]


# --- real runs, in AutoGluon's environment ------------------------------------------------------------------
def run_digits(tmp_path: Path, system: str, budget: str, *options: str, dataset: str = "digits") -> dict[str, str]:
    autogluon_python()
    argv = [sys.executable, "-m", "bench", "run", "--dataset", dataset, "--system", system, "--budget", budget,
            "--max-train", "600", "--max-test", "200", "--out", str(tmp_path / "out")]
    for option in options:
        argv += ["--system-option", option]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    record = table_rows(tmp_path / "out" / "runs.csv")[0]
    assert done.returncode == 0, (record["error"], done.stderr[-2000:])
    return record


@pytest.mark.slow
def test_autogluon_on_digits_through_the_cli(tmp_path):
    record = run_digits(tmp_path, "autogluon", "90s")
    assert record["role"] == "automl" and record["library"] == "autogluon" and record["library_version"] == "1.6.3"
    assert float(record["accuracy"]) > 0.2  # ten classes: well above chance
    assert float(record["overshoot_s"]) <= 15.0  # inside the usual bound
    assert float(record["search_s"]) + float(record["refit_s"]) == pytest.approx(float(record["fit_s"]), abs=5.0)
    folder = next((tmp_path / "out" / "runs").iterdir())
    extras = json.loads((folder / "metadata.json").read_text())["extras"]
    assert extras["backbone"] == "resnet18" and extras["pretrained"] is False and extras["image_size"] == 8
    assert len(extras["weights_sha256"]) == 64
    predictions = pd.read_csv(folder / "predictions.csv")
    assert len(predictions) == 200
    forward = float(record["predict_flops"]) / 200  # one forward pass per test image
    assert 1e7 < forward < 1e8  # ResNet-18 at 8 px: 24 MFLOPs (its 3.6 G at 224 px shrinks less than the area)
    trained = extras["examples_trained"]
    assert 100 <= trained <= 20 * 600  # some batches, at most AutoGluon's 20 epochs of the training images
    assert float(record["train_flops"]) == pytest.approx(3 * forward * trained, rel=1e-6)
    assert record["flops_uncounted"] == ""
    assert float(record["flops_per_s"]) == pytest.approx(float(record["train_flops"]) / float(record["fit_s"]),
                                                          rel=1e-3)


@pytest.mark.slow
def test_autogluon_takes_two_classes(tmp_path):
    # AutoGluon refuses "multiclass" for two classes: malaria's cells are a binary task.
    write_tree(tmp_path / "cells", class_members(("parasitized", "uninfected"), per_class=40, side=16))
    record = run_digits(tmp_path, "autogluon", "45s", dataset=f"folder:{tmp_path / 'cells'}")
    assert record["status"] == "ok" and record["n_classes"] == "2"
    predictions = pd.read_csv(next((tmp_path / "out" / "runs").iterdir()) / "predictions.csv")
    assert len(predictions) == int(record["n_test"])


@pytest.mark.slow
def test_autogluon_hpo_on_digits_writes_its_trials(tmp_path):
    record = run_digits(tmp_path, "autogluon-hpo", "3m")
    # Above the majority rate beyond chance (a 3-minute search of a dozen short trials can end near 20%).
    assert int(record["trials"]) >= 1 and learnt(float(record["accuracy"]), 200, DIGITS_MAJORITY)
    # The trials train in Ray Tune's processes: their CPU counts (the driving process alone used ~10% of fit).
    assert float(record["cpu_s"]) > 0.5 * float(record["fit_s"])
    trials = table_rows(next((tmp_path / "out" / "runs").iterdir()) / "trials.csv")
    assert trials and all("optim.lr" in json.loads(t["summary"]) for t in trials)
    scored = [t for t in trials if t["val_accuracy"]]  # it trained before it was scored
    assert scored and all(float(t["train_flops"]) > 0 for t in scored)
    assert float(record["train_flops"]) == pytest.approx(sum(float(t["train_flops"] or 0) for t in trials), rel=1e-5)
    forward = float(record["predict_flops"]) / 200
    assert 1e7 < forward < 1e8 and record["flops_uncounted"] == ""


@pytest.mark.slow
def test_pretrained_refuses_to_download(tmp_path):
    python = autogluon_python()
    empty = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
             "TORCH_HOME": str(tmp_path / "torch"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    # Any connection attempt fails loudly, so a refusal cannot be a download that merely failed.
    script = ("import socket, sys\n"
              "def refuse(*a, **k): raise SystemExit('tried to connect')\n"
              "socket.socket.connect = refuse; socket.create_connection = refuse\n"
              "from pathlib import Path\n"
              "from bench.systems.autogluon_weights import PretrainedNotCached, write_checkpoint\n"
              "try:\n"
              "    write_checkpoint('resnet18', Path(sys.argv[1]), 0, pretrained=True)\n"
              "except PretrainedNotCached as exc:\n"
              "    print('REFUSED', exc)\n")
    done = subprocess.run([python, "-P", "-c", script, str(tmp_path / "ck")], capture_output=True, text=True,
                          env={**os.environ, **empty}, timeout=300)
    assert done.stdout.startswith("REFUSED") and "never downloads" in done.stdout, done.stderr[-2000:]
    assert done.stdout.count("\n") == 1


@pytest.mark.slow
def test_autogluon_hpo_under_the_ray_executor_is_recorded_failed_in_one_line(tmp_path):
    pytest.importorskip("ray")
    autogluon_python()
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system", "autogluon-hpo",
                           "--budget", "60s", "--max-train", "200", "--executor", "ray", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    record = table_rows(tmp_path / "runs.csv")[0]
    assert done.returncode == 1 and record["status"] == "failed", done.stderr[-2000:]
    assert "second Ray on the node" in record["error"] and "--executor local" in record["error"]


@pytest.mark.slow
def test_pretrained_takes_cached_weights_and_records_their_file_and_hash(tmp_path):
    python = autogluon_python()
    # A Hugging Face cache holding timm's resnet18 weights (here: a seeded random state, stored as the hub does).
    script = ("import json, sys, timm, torch\n"
              "from pathlib import Path\n"
              "from bench.systems.autogluon_weights import write_checkpoint\n"
              "repo = Path(sys.argv[1]) / 'hub' / 'models--timm--resnet18.a1_in1k'\n"
              "(repo / 'snapshots' / 'abc').mkdir(parents=True)\n"
              "(repo / 'refs').mkdir()\n"
              "(repo / 'refs' / 'main').write_text('abc')\n"
              "torch.manual_seed(3)\n"
              "cached = timm.create_model('resnet18', pretrained=False).state_dict()\n"
              "torch.save(cached, repo / 'snapshots' / 'abc' / 'pytorch_model.bin')\n"
              "ck = write_checkpoint('resnet18', Path(sys.argv[2]), 0, pretrained=True)\n"
              "got = torch.load(Path(sys.argv[2]) / 'pytorch_model.bin')\n"
              "same = all(torch.equal(got[k], cached[k]) for k in got)\n"
              "print(json.dumps({'source': ck.source, 'sha': ck.sha256, 'same': same, 'pretrained': ck.pretrained}))\n")
    done = subprocess.run([python, "-P", "-c", script, str(tmp_path / "hf"), str(tmp_path / "ck")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HOME": str(tmp_path / "hf"),
                               "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "HF_HUB_OFFLINE": "1"})
    out = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    assert out.get("same") and out["pretrained"], done.stderr[-2000:]
    assert out["source"].endswith("snapshots/abc/pytorch_model.bin") and len(out["sha"]) == 64


@pytest.mark.slow
def test_autogluon_runs_under_the_ray_executor(tmp_path):
    pytest.importorskip("ray")
    autogluon_python()
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system", "autogluon",
                           "--budget", "60s", "--max-train", "300", "--max-test", "100", "--executor", "ray",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    record = table_rows(tmp_path / "runs.csv")[0]
    assert done.returncode == 0 and record["status"] == "ok", (record["error"], done.stderr[-2000:])
    assert record["node"] and float(record["overshoot_s"]) <= 15.0
