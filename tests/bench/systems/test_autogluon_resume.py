"""`autogluon` after its process died: when it continues from AutoGluon's last.ckpt, when it starts again and the
line it writes, the time it gives AutoGluon across attempts (default run, a fake library), and a real run killed
mid-fit and continued by the same command (slow, in AutoGluon's environment)."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from bench.core.budget import parse_budget
from bench.core.resume import ATTEMPT, CHECKPOINT_DIR, RESUME_DIR, Attempt, Spent
from bench.measure.flops import Flops
from bench.systems import make_system
from bench.systems.autogluon import AutoGluon, AutoGluonHPO, AutoGluonToolkit
from bench.systems.autogluon_budget import FINISH_RESERVE_MIN_S, FINISH_RESERVE_SHARE
from bench.systems.autogluon_flops import TrainingCount
from bench.systems.autogluon_resume import (
    COUNT_FILE,
    LAST_CHECKPOINT,
    PREDICTOR_DIR,
    ResumePoint,
    checkpoint_text,
    resume_point,
)
from bench.systems.base import FitContext
from bench.systems.search.budget import allowed_overshoot_s
from tests.bench.drivers import killed_once_ready
from tests.bench.systems.autogluon_fakes import DIGITS_MAJORITY, FakeToolkit, autogluon_python, faked, tiny
from tests.bench.systems.searches import learnt

KEY = {"run_id": "r1", "data_fingerprint": "abc", "code": "c0", "backend": "", "precision": ""}


def lightning_state(step: int = 4, epoch: int = 1, trained_s: float | None = 30.0) -> dict[str, Any]:
    """What the fake reads from a last.ckpt: Lightning's loop position and its Timer's training seconds."""
    callbacks = {} if trained_s is None else {"Timer": {"time_elapsed": {"train": trained_s, "validate": 2.0}}}
    return {"global_step": step, "epoch": epoch, "callbacks": callbacks}


def left_by_a_dead_attempt(run: Path, fit_s: float, checkpoint: str | None, count: TrainingCount | None = None) -> Path:
    """The resume folder of an attempt that died after fit_s seconds of fit, its predictor folder holding a
    last.ckpt with `checkpoint` as its text (None: none saved); returns the predictor folder."""
    carried = "" if checkpoint is None else "step 4 (in epoch 2 of 20)"
    state = {"key": KEY, "spent": asdict(Spent(attempts=1, fit_s=fit_s, cpu_s=fit_s, carried=carried, fits=1))}
    folder = run / RESUME_DIR / CHECKPOINT_DIR / PREDICTOR_DIR
    folder.mkdir(parents=True)
    (run / RESUME_DIR / ATTEMPT).write_text(json.dumps(state))
    (folder / "epoch=1-step=4.ckpt").write_text("{}")
    if checkpoint is not None:
        (folder / LAST_CHECKPOINT).write_text(checkpoint)
    if count is not None:
        (run / RESUME_DIR / CHECKPOINT_DIR / COUNT_FILE).write_text(count.to_json())
    return folder


def attempt_context(run: Path, budget: str) -> FitContext:
    """The harness's context for this attempt of the run in `run`: its deadline is the budget less earlier fit."""
    attempt = Attempt(run, KEY, resumable=True)
    b = parse_budget(budget)
    return FitContext(budget=b, seed=7, workdir=run / "work", run_dir=run, n_classes=3, class_names=("0", "1", "2"),
                      dataset="tiny", deadline=attempt.deadline(b.seconds), resume=attempt)


# --- the decision, from the folder an earlier attempt left -----------------------------------------------------
def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_the_runs_first_attempt_has_nothing_to_continue_and_nothing_to_say(tmp_path: Path) -> None:
    point = resume_point(tmp_path / "none", read_json, earlier=0)
    assert point == ResumePoint() and point.line() == "" and point.time_limit(12.5) == 12.5


def test_a_readable_last_checkpoint_is_continued_and_its_timer_seconds_are_given_back(tmp_path: Path) -> None:
    (tmp_path / LAST_CHECKPOINT).write_text(json.dumps(lightning_state(step=4, epoch=1, trained_s=30.0)))
    point = resume_point(tmp_path, read_json, earlier=1)
    assert point.checkpoint == tmp_path / LAST_CHECKPOINT and (point.step, point.epoch) == (4, 1)
    # Lightning's Timer counts the 30 s in the checkpoint against time_limit: they are added to what is left.
    assert point.time_limit(20.0) == 50.0 and point.time_limit(None) is None
    assert point.line() == ("autogluon: continuing its training from last.ckpt at step 4 (epoch 2), 30 s of "
                            "training in it")


def test_a_checkpoint_of_a_fit_without_a_time_limit_carries_no_timer_seconds(tmp_path: Path) -> None:
    (tmp_path / LAST_CHECKPOINT).write_text(json.dumps(lightning_state(trained_s=None)))
    point = resume_point(tmp_path, read_json, earlier=2)
    assert point.checkpoint is not None and point.trained_s == 0.0 and point.time_limit(20.0) == 20.0


@pytest.mark.parametrize(("content", "why"), [
    (None, "the earlier attempt left no last.ckpt (it died before AutoGluon's first validation pass saved one, or "
           "after its training loop ended)"),
    ("{half", "its last.ckpt could not be read (JSONDecodeError: "),
    (json.dumps({"epoch": 1}),
     "its last.ckpt holds no training state Lightning can continue (KeyError: 'global_step')"),
    (json.dumps({"global_step": 3, "epoch": 0, "callbacks": {"Timer": {"time_elapsed": {"train": "soon"}}}}),
     "its last.ckpt holds no training state Lightning can continue (ValueError: "),
])
def test_a_missing_or_unusable_checkpoint_starts_again_saying_why_in_one_line(tmp_path: Path, content: str | None,
                                                                              why: str) -> None:
    if content is not None:
        (tmp_path / LAST_CHECKPOINT).write_text(content)
    point = resume_point(tmp_path, read_json, earlier=1)
    assert point.checkpoint is None and point.why.startswith(why)
    assert point.line() == f"autogluon: starting its training again: {point.why}" and "\n" not in point.line()
    assert point.time_limit(20.0) == 20.0


def test_what_a_checkpoint_holds_is_named_by_its_step_and_epoch() -> None:
    assert checkpoint_text(12, 2, 20) == "step 12 (in epoch 3 of 20)"
    assert checkpoint_text(12, 2, -1) == "step 12 (in epoch 3)"  # Lightning's -1: no epoch limit


# --- the system, across attempts ---------------------------------------------------------------------------------
def test_autogluon_continues_and_autogluon_hpo_starts_again() -> None:
    budget = parse_budget("60s")
    assert make_system("autogluon").resumes(budget) and not make_system("autogluon-hpo").resumes(budget)


def test_a_first_attempt_keeps_the_predictor_and_the_count_in_the_resume_folder(tmp_path: Path, caplog) -> None:
    kit = FakeToolkit()
    ctx = attempt_context(tmp_path, "2s")
    with caplog.at_level(logging.INFO, logger="bench.systems.autogluon"):
        faked(AutoGluon, kit).fit(*tiny(), ctx)
    checkpoints = tmp_path / RESUME_DIR / CHECKPOINT_DIR
    assert kit.paths == [(checkpoints / PREDICTOR_DIR, None)] and kit.kept == checkpoints / COUNT_FILE
    assert "autogluon:" not in caplog.text  # nothing to continue, nothing to say


def test_without_the_harness_resume_the_predictor_works_in_the_scratch_folder(tmp_path: Path) -> None:
    kit = FakeToolkit()
    b = parse_budget("2s")
    ctx = FitContext(budget=b, seed=7, workdir=tmp_path / "work", run_dir=tmp_path, n_classes=3,
                     class_names=("0", "1", "2"), dataset="tiny", deadline=time.monotonic() + 2.0)
    faked(AutoGluon, kit).fit(*tiny(), ctx)
    assert kit.paths == [(tmp_path / "work" / PREDICTOR_DIR, None)] and kit.kept is None


def test_the_search_keeps_its_folder_in_the_scratch_folder_even_under_the_harness(tmp_path: Path) -> None:
    kit = FakeToolkit()
    faked(AutoGluonHPO, kit).fit(*tiny(), attempt_context(tmp_path, "t2"))
    assert kit.paths == [(tmp_path / "work" / PREDICTOR_DIR, None)] and kit.kept is None


def test_a_continued_attempt_resumes_from_last_ckpt_with_the_time_the_budget_has_left(tmp_path: Path,
                                                                                     caplog) -> None:
    budget_s, earlier_s, trained_s = 60.0, 40.0, 30.0
    folder = left_by_a_dead_attempt(tmp_path, earlier_s, json.dumps(lightning_state(4, 1, trained_s)))
    kit = FakeToolkit()
    system = faked(AutoGluon, kit)
    t0 = time.monotonic()
    ctx = attempt_context(tmp_path, f"{budget_s:.0f}s")
    with caplog.at_level(logging.INFO, logger="bench.systems.autogluon"):
        system.fit(*tiny(), ctx)
    fit_s = time.monotonic() - t0
    assert kit.paths == [(folder, folder / LAST_CHECKPOINT)]
    assert (folder / "epoch=1-step=4.ckpt").exists()  # the best checkpoints so far are kept for AutoGluon's soup
    # The budget less the earlier attempt's fit, less the reserve for what follows the loop, plus the seconds
    # Lightning's Timer counts again from the checkpoint.
    reserve = max(FINISH_RESERVE_SHARE * budget_s, FINISH_RESERVE_MIN_S)
    given = kit.made[0].calls[0]["time_limit"]
    assert budget_s - earlier_s - reserve + trained_s - fit_s <= given <= budget_s - earlier_s - reserve + trained_s
    extras = system.extras()
    assert extras["time_limit_s"] == given and extras["carried_train_s"] == trained_s
    assert extras["continued_from_step"] == 4
    # search_s + refit_s covers every attempt's fit, as the record's fit_s does.
    assert earlier_s + fit_s - 0.05 <= extras["search_s"] + extras["refit_s"] <= earlier_s + fit_s + 0.05
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("autogluon:")]
    assert lines == ["autogluon: continuing its training from last.ckpt at step 4 (epoch 2), 30 s of training in it"]


def test_an_unusable_checkpoint_starts_the_training_again_in_an_empty_folder_saying_why(tmp_path: Path,
                                                                                        caplog) -> None:
    folder = left_by_a_dead_attempt(tmp_path, 20.0, "not a checkpoint")
    kit = FakeToolkit()
    system = faked(AutoGluon, kit)
    ctx = attempt_context(tmp_path, "60s")
    with caplog.at_level(logging.INFO, logger="bench.systems.autogluon"):
        system.fit(*tiny(), ctx)
    assert kit.paths == [(folder, None)] and not folder.exists()  # AutoGluon refuses a folder holding files
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("autogluon:")]
    assert len(lines) == 1 and lines[0].startswith(
        "autogluon: starting its training again: its last.ckpt could not be read (JSONDecodeError: ")
    # Starting again does not refund the earlier attempt's time: the budget is one bill (its deadline says so).
    assert kit.made[0].calls[0]["time_limit"] <= 60.0 - 20.0 - FINISH_RESERVE_MIN_S
    assert "carried_train_s" not in system.extras() and "continued_from_step" not in system.extras()


def test_the_real_toolkit_goes_on_counting_from_the_count_an_earlier_attempt_kept(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")  # set back after the test
    earlier = TrainingCount(480, Flops(2_000), "TimmAutoModelForImagePrediction")
    (tmp_path / COUNT_FILE).write_text(earlier.to_json())
    kit = AutoGluonToolkit()
    told: list[str] = []
    kit.keep(tmp_path / COUNT_FILE, told.append)
    kit._tally.add(16)  # the next attempt's first batch
    assert kit.training_count() == TrainingCount(496, Flops(2_000), "TimmAutoModelForImagePrediction")
    assert TrainingCount.from_json((tmp_path / COUNT_FILE).read_text()).examples == 496  # kept for a third


@pytest.mark.slow
def test_the_real_reader_continues_from_a_lightning_checkpoint_and_refuses_a_truncated_one(tmp_path: Path) -> None:
    """torch reads what Lightning wrote (its loop position, its Timer's seconds); a last.ckpt cut short by a death
    mid-write gives the one line that starts the training again."""
    python = autogluon_python()
    script = ("import sys, torch\n"
              "from pathlib import Path\n"
              "from bench.systems.autogluon import AutoGluonToolkit\n"
              "from bench.systems.autogluon_resume import resume_point\n"
              "whole, cut = Path(sys.argv[1]), Path(sys.argv[2])\n"
              "whole.mkdir(); cut.mkdir()\n"
              "state = {'epoch': 2, 'global_step': 9, 'state_dict': {'w': torch.ones(256, 256)},\n"
              "         'callbacks': {'Timer': {'time_elapsed': {'train': 41.5, 'validate': 3.0}}}}\n"
              "torch.save(state, whole / 'last.ckpt')\n"
              "data = (whole / 'last.ckpt').read_bytes()\n"
              "(cut / 'last.ckpt').write_bytes(data[: len(data) // 2])\n"
              "kit = AutoGluonToolkit()\n"
              "print(resume_point(whole, kit.read_checkpoint, 1).line())\n"
              "print(resume_point(cut, kit.read_checkpoint, 1).line())\n")
    done = subprocess.run([python, "-P", "-c", script, str(tmp_path / "whole"), str(tmp_path / "cut")],
                          capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, done.stderr[-2000:]
    assert lines[0] == "autogluon: continuing its training from last.ckpt at step 9 (epoch 3), 42 s of training in it"
    assert lines[1].startswith("autogluon: starting its training again: its last.ckpt could not be read (")


# --- a real run, killed mid-fit and continued by the same command -------------------------------------------
def _carried(out: Path) -> str:
    found = list((out / "runs").glob(f"*/{RESUME_DIR}/{ATTEMPT}"))
    try:
        return json.loads(found[0].read_text())["spent"]["carried"] if found else ""
    except (OSError, ValueError, KeyError):
        return ""


@pytest.mark.slow
def test_autogluon_killed_mid_fit_continues_from_its_checkpoint_on_the_same_command(tmp_path: Path) -> None:
    """The user's command, its process tree killed with SIGKILL once AutoGluon saved a last.ckpt, then typed
    again: the run continues that training within the one budget, counts both attempts' compute and examples,
    and says what it carried."""
    from tests.conftest import REPO

    autogluon_python()
    budget_s, n_test = 150, 200
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system", "autogluon", "--budget",
               f"{budget_s}s", "--max-train", "600", "--max-test", str(n_test), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed_once_ready(command, env, out, lambda: _carried(out).startswith("step "), timeout_s=400)
    resume = next((out / "runs").glob(f"*/{RESUME_DIR}"))
    earlier = json.loads((resume / ATTEMPT).read_text())["spent"]
    counted = TrainingCount.from_json((resume / CHECKPOINT_DIR / COUNT_FILE).read_text())
    assert (resume / CHECKPOINT_DIR / PREDICTOR_DIR / LAST_CHECKPOINT).is_file() and counted.examples > 0
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out / "runs.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "ok" and row["attempts"] == "2", row
    assert row["resumed_from"] == earlier["carried"]
    step = int(earlier["carried"].split()[1])
    folder = resume.parent
    log = (folder / "log.txt").read_text()
    assert "resume: resuming after 1 attempt(s)" in log
    assert f"autogluon: continuing its training from last.ckpt at step {step} " in log
    # One bill across both attempts: every attempt's fit and CPU time, within the bound of every wall-clock budget.
    fit_s, cpu_s = float(row["fit_s"]), float(row["cpu_s"])
    assert earlier["fit_s"] < fit_s <= budget_s + allowed_overshoot_s(budget_s)
    assert cpu_s > earlier["cpu_s"]
    assert float(row["search_s"]) + float(row["refit_s"]) == pytest.approx(fit_s, abs=5.0)
    extras = json.loads((folder / "metadata.json").read_text())["extras"]
    assert extras["continued_from_step"] == step and extras["carried_train_s"] > 0
    # The second attempt trained on: the count goes on from the first's, and the FLOPs are its examples'.
    trained = extras["examples_trained"]
    assert trained > counted.examples
    forward = float(row["predict_flops"]) / n_test
    assert float(row["train_flops"]) == pytest.approx(3 * forward * trained, rel=1e-6) and row["flops_uncounted"] == ""
    assert learnt(float(row["accuracy"]), n_test, DIGITS_MAJORITY), row["accuracy"]
    assert not resume.exists()  # nothing left once the run ended ok
