"""What each search tried: trials.csv of every searcher's run as a figure and a table, written by the report."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.report.runs import Group, load_runs
from bench.report.trials import display, parse_summary, trial_rows
from tests.bench.report.report_sample import run, write_runs

AUTOKERAS = ("vanilla: augment=False; block_type=vanilla; dropout=0.5", "resnet resnet50: augment=True; "
             "block_type=resnet; version=resnet50", "vanilla: augment=False; block_type=vanilla; dropout=0.25")
TUNED = ("peak_lr=0.2; weight_decay=0.0005; epochs=2", "peak_lr=0.5; weight_decay=0.0005; epochs=2")


def _trials_file(folder: Path, summaries: tuple[str, ...], scores: tuple[float | None, ...]) -> None:
    folder.mkdir(parents=True)
    rows = [{"trial_id": f"{i:04d}", "started_s": 10.0 * i, "ended_s": 10.0 * i + 9, "epochs": 2 + i,
             "val_accuracy": s, "status": "completed", "summary": text, "error": "", "worker": ""}
            for i, (text, s) in enumerate(zip(summaries, scores, strict=True))]
    pd.DataFrame(rows).to_csv(folder / "trials.csv", index=False)


def _results(out: Path) -> None:
    write_runs(out, [run("d", "s", "resnet", "1m", 0, accuracy=0.90, fit_s=60.0),
                     run("d", "s", "autokeras", "1m", 0, accuracy=0.85, fit_s=60.0, trials=3),
                     run("d", "s", "resnet-tuned", "1m", 0, accuracy=0.91, fit_s=60.0, trials=2)])
    _trials_file(out / "runs" / "d-autokeras-1m-0", AUTOKERAS, (0.8, None, 0.82))
    _trials_file(out / "runs" / "d-resnet-tuned-1m-0", TUNED, (0.7, 0.9))


def test_a_summary_splits_into_its_architecture_and_hyperparameters():
    assert parse_summary("resnet resnet50: augment=True; version=resnet50") == (
        "resnet resnet50", {"augment": "True", "version": "resnet50"})
    assert parse_summary("peak_lr=0.2; epochs=2") == ("", {"peak_lr": "0.2", "epochs": "2"})
    assert parse_summary(float("nan")) == ("", {})


def test_each_trial_says_what_differs_from_the_others_of_its_system_and_architecture(tmp_path):
    _results(tmp_path)
    runs = load_runs(tmp_path)
    rows = trial_rows(Group("d", "s", ""), runs, tmp_path)
    assert len(rows) == 5 and set(rows["system"]) == {"autokeras", "resnet-tuned"}
    keras = rows[rows["system"] == "autokeras"].set_index("trial_id")
    assert keras.loc["0000", "architecture"] == "vanilla" and keras.loc["0000", "differs"] == "dropout=0.5"
    assert keras.loc["0001", "differs"] == ""  # the only resnet trial: nothing to differ from
    tuned = rows[rows["system"] == "resnet-tuned"]
    assert list(tuned["differs"]) == ["peak_lr=0.2", "peak_lr=0.5"]
    shown = display(rows)
    assert list(shown.columns[:4]) == ["Run", "Trial", "Architecture", "Hyperparameters that differ"]
    assert shown["Run"].iloc[0].href == "runs/d-autokeras-1m-0/"
    assert "—" in set(shown["Validation accuracy"])  # the trial without a score says so


@pytest.mark.slow
def test_the_report_shows_every_trial_as_a_figure_and_a_linked_table(tmp_path):
    _results(tmp_path)
    done = subprocess.run([sys.executable, "-m", "bench", "report", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "REPORT.md").read_text()
    assert "### What each search tried" in text
    assert "![d (s split): every trial of every search" in text and (tmp_path / "plots" / "d-s_trials.svg").is_file()
    assert "<summary>5 trials of 2 searches</summary>" in text
    assert "[resnet-tuned 1m seed 0](runs/d-resnet-tuned-1m-0/)" in text
    table = pd.read_csv(tmp_path / "tables" / "trials.csv")
    assert len(table) == 5 and table["summary"].str.contains("peak_lr").sum() == 2
