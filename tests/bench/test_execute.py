"""The executor and driver against systems that raise, hang, ignore the soft stop or eat memory."""

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from bench.core.budget import parse_budget
from bench.datasets import load_data
from bench.run.driver import run_specs
from bench.run.execute import Limits, LocalExecutor
from bench.run.spec import DatasetRef, RunSpec, freeze
from bench.run.store import ResultsStore
from tests.bench.drivers import SUITE, driver, wait_for


def spec(tmp_path, system, budget="full", seed=0, timeout=None, **options):
    return RunSpec(dataset=DatasetRef("digits", max_train=200), system=system, system_options=freeze(options),
                   budget=parse_budget(budget), seed=seed, timeout_s=timeout, out_dir=str(tmp_path))


def test_ok_run_writes_its_folder_with_harness_metrics(tmp_path):
    s = spec(tmp_path, "tests.bench.fakes:Sleeps", seconds=0.2)
    record = LocalExecutor().run(s)
    assert record.status == "ok", record.error
    folder = tmp_path / "runs" / s.run_id
    names = {p.name for p in folder.iterdir()}
    assert {"record.json", "metadata.json", "classification_report.txt", "predictions.csv", "log.txt",
            "artifact.txt"} <= names
    assert "work" not in names  # scratch is deleted
    preds = pd.read_csv(folder / "predictions.csv", dtype=str)
    assert list(preds.columns) == [str(i) for i in range(10)] + ["predictions", "truth"]
    truth = load_data("digits").y_test.astype(str)
    assert (preds["truth"].to_numpy() == truth).all()
    assert record.accuracy == accuracy_score(preds["truth"], preds["predictions"])
    assert record.fit_s >= 0.2 and record.predict_s >= 0
    assert record.n_train == 200 and record.n_test == len(truth) and record.split == "stratified-25%"
    assert record.gpu_s is None and record.device == "cpu"
    assert record.peak_rss_mb > 10 and record.peak_disk_mb is not None
    meta = (folder / "metadata.json").read_text()
    assert "versions" in meta and "git_commit" in meta and os.uname().nodename not in meta


def test_a_system_that_raises_is_recorded_as_failed_with_its_reason(tmp_path):
    record = LocalExecutor().run(spec(tmp_path, "tests.bench.fakes:Raises"))
    assert record.status == "failed"
    assert record.error == "RuntimeError: deliberate failure in fit"
    assert "Traceback" in (tmp_path / "runs" / record.run_id / "log.txt").read_text()


def test_a_hanging_system_times_out_softly(tmp_path):
    t0 = time.monotonic()
    record = LocalExecutor(Limits(grace_s=20)).run(spec(tmp_path, "tests.bench.fakes:Hangs", timeout=3))
    assert record.status == "timeout"
    assert "hard time limit of 3 s" in record.error
    assert time.monotonic() - t0 < 15  # the soft stop worked; no wait for the grace period
    assert not (tmp_path / "runs" / record.run_id / "work").exists()


def test_a_system_that_ignores_the_soft_stop_is_killed(tmp_path):
    t0 = time.monotonic()
    record = LocalExecutor(Limits(grace_s=1)).run(spec(tmp_path, "tests.bench.fakes:Deaf", timeout=2))
    assert record.status == "timeout"
    assert time.monotonic() - t0 < 20


def test_a_memory_hog_is_killed_and_recorded(tmp_path):
    record = LocalExecutor(Limits(max_rss_mb=400)).run(spec(tmp_path, "tests.bench.fakes:Hog", timeout=60))
    assert record.status == "failed"
    assert "memory limit exceeded" in record.error
    assert record.peak_rss_mb >= 400


@pytest.mark.slow
def test_suite_goes_on_after_failures_and_resume_skips_finished_runs(tmp_path):
    specs = [spec(tmp_path, "tests.bench.fakes:Raises"), spec(tmp_path, "tests.bench.fakes:Hangs", timeout=2),
             spec(tmp_path, "majority")]
    summary = run_specs(specs, LocalExecutor(Limits(grace_s=5)), tmp_path)
    assert (summary.counts["failed"], summary.counts["timeout"], summary.counts["ok"]) == (1, 1, 1)
    assert summary.failed
    again = run_specs(specs[2:], LocalExecutor(), tmp_path)
    assert again.already_done == 1 and not again.counts
    statuses = {r.system: r.status for r in ResultsStore(tmp_path).records().values()}
    assert statuses == {"tests.bench.fakes:Raises": "failed", "tests.bench.fakes:Hangs": "timeout",
                        "majority": "ok"}


@pytest.mark.slow
def test_a_driver_killed_with_sigkill_resumes_only_what_is_missing(tmp_path):
    calls = tmp_path / "calls.txt"
    suite = tmp_path / "kill.toml"
    suite.write_text(SUITE.format(calls=calls))
    table = ResultsStore(tmp_path / "out")
    first = driver(tmp_path, suite)
    wait_for(lambda: len(table.records()) >= 2)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    finished = {r.run_id for r in table.records().values() if r.status == "ok"}
    assert 2 <= len(finished) < 5
    time.sleep(1)  # the orphaned worker dies with its driver (PR_SET_PDEATHSIG)

    assert driver(tmp_path, suite).wait(timeout=120) == 0
    records = table.records()
    assert len(records) == 5 and all(r.status == "ok" for r in records.values())
    runs = [line.split()[0] for line in calls.read_text().splitlines()]
    for run_id in finished:
        assert runs.count(run_id) == 1, "a run already recorded as ok was run again"
    assert len(runs) <= 6  # at most the one interrupted run was started twice


def test_probabilities_must_match_the_test_set(tmp_path):
    from bench.datasets import ImageData
    from bench.systems.base import FitContext, System

    class Wrong(System):
        name = "wrong"
        description = "bad shape"

        def fit(self, x, y, ctx):
            pass

        def predict_proba(self, x):
            return np.ones((len(x), 3))

    data = ImageData(np.zeros((4, 2, 2, 1), np.uint8), np.array([0, 1, 0, 1]), np.zeros((2, 2, 2, 1), np.uint8),
                     np.array([0, 1]), ("a", "b"))
    ctx = FitContext(budget=parse_budget("full"), seed=0, workdir=tmp_path, run_dir=tmp_path, n_classes=2,
                     class_names=("a", "b"), dataset="x")
    try:
        Wrong().run(data, ctx)
    except RuntimeError as exc:
        assert "shape (2, 3)" in str(exc)
    else:
        raise AssertionError("a wrong shape went unnoticed")


def test_metadata_records_the_commit_checked_out_when_the_run_started(tmp_path, monkeypatch):
    from bench.run import metadata, worker
    from tests.bench import fakes

    checked_out = ["a" * 40]
    monkeypatch.setattr(metadata, "git_commit", lambda: checked_out[0])
    fit = fakes.Sleeps.fit

    def fit_then_commit(self, x, y, ctx):
        fit(self, x, y, ctx)
        checked_out[0] = "b" * 40  # a commit made while the run goes must not be recorded

    monkeypatch.setattr(fakes.Sleeps, "fit", fit_then_commit)
    s = spec(tmp_path, "tests.bench.fakes:Sleeps", seconds=0.01)
    assert worker.execute(s).status == "ok"
    meta = json.loads((tmp_path / "runs" / s.run_id / "metadata.json").read_text())
    assert meta["git_commit"] == "a" * 40


def test_a_run_whose_data_is_missing_is_skipped_with_what_its_system_declares(tmp_path):
    missing = RunSpec(dataset=DatasetRef("folder:" + str(tmp_path / "nowhere")), system="majority",
                      budget=parse_budget("full"), seed=0, out_dir=str(tmp_path))
    summary = run_specs([missing], LocalExecutor(), tmp_path)
    assert summary.counts["skipped"] == 1
    [record] = ResultsStore(tmp_path).records().values()
    assert record.status == "skipped" and record.error
    assert (record.role, record.library) == ("floor", "bench")


def _image_folder(root: Path, seed: int) -> Path:
    """Two classes of 8 small PNGs each; another seed gives other pixels under the same file names."""
    from tests.datasets.builders import png_bytes, write_tree

    return write_tree(root, {f"{c}/{i}.png": png_bytes(8, seed * 100 + 10 * k + i)
                             for k, c in enumerate("ab") for i in range(8)})


def test_a_run_recorded_on_other_data_is_run_again_and_said_so(tmp_path):
    from io import StringIO

    from rich.console import Console

    data = _image_folder(tmp_path / "images", seed=1)
    run = RunSpec(dataset=DatasetRef(f"folder:{data}"), system="tests.bench.fakes:Sleeps",
                  system_options=freeze({"seconds": 0.0, "calls": str(tmp_path / "calls.txt")}),
                  budget=parse_budget("full"), seed=0, out_dir=str(tmp_path / "out"))
    out = tmp_path / "out"
    assert run_specs([run], LocalExecutor(), out).counts["ok"] == 1
    first = ResultsStore(out).records()[run.run_id].data_fingerprint

    said = StringIO()
    again = run_specs([run], LocalExecutor(), out, console=Console(file=said, width=300))
    assert (again.already_done, again.counts["ok"]) == (1, 0), "the same data: not run again"

    _image_folder(tmp_path / "images", seed=2)  # the same folder, other pixels: the run_id is unchanged
    said = StringIO()
    changed = run_specs([run], LocalExecutor(), out, console=Console(file=said, width=300))
    assert (changed.already_done, changed.counts["ok"]) == (0, 1)
    [record] = ResultsStore(out).records().values()
    assert record.data_fingerprint and record.data_fingerprint != first
    lines = [ln for ln in said.getvalue().splitlines() if "data changed" in ln]
    assert len(lines) == 1 and first in lines[0] and record.data_fingerprint in lines[0]
    assert len((tmp_path / "calls.txt").read_text().splitlines()) == 2


@pytest.mark.slow
def test_an_adoptable_record_of_other_data_is_not_adopted(tmp_path):
    data = _image_folder(tmp_path / "images", seed=1)
    out = tmp_path / "out"
    run = RunSpec(dataset=DatasetRef(f"folder:{data}"), system="majority", budget=parse_budget("full"), seed=0,
                  out_dir=str(out))
    assert run_specs([run], LocalExecutor(), out).counts["ok"] == 1
    (out / "runs.csv").unlink()  # as a driver killed after the run's folder was complete, before the table
    _image_folder(tmp_path / "images", seed=2)
    again = run_specs([run], LocalExecutor(), out)
    assert (again.already_done, again.counts["ok"]) == (0, 1)


@pytest.mark.slow
def test_a_run_given_no_memory_cap_runs_under_a_share_of_the_machines_memory(tmp_path):
    import psutil

    from bench.run.supervise import DEFAULT_RSS_SHARE

    record = LocalExecutor().run(spec(tmp_path, "majority"))
    expected = psutil.virtual_memory().total * DEFAULT_RSS_SHARE / 2**20
    assert record.status == "ok" and abs(record.max_rss_mb - expected) <= 1
    capped = LocalExecutor(Limits(max_rss_mb=5000)).run(spec(tmp_path, "majority", seed=1))
    assert capped.max_rss_mb == 5000


def test_a_keras_run_writes_nothing_in_the_home_folder(tmp_path):
    from tests.bench.outside import Sandbox

    sandbox = Sandbox(tmp_path)
    try:
        result = sandbox.run("run", "--dataset", "digits", "--max-train", "100", "--system",
                             "tests.bench.fakes:SeesPolicy", "--budget", "full")
        assert result.returncode == 0, result.stderr
        assert sandbox.left_outside() == []
    finally:
        sandbox.close()
    assert (sandbox.cache / "keras" / "keras.json").exists()


def test_the_disk_cap_counts_a_checkpoint_kept_for_resuming_as_scratch(tmp_path):
    record = LocalExecutor(Limits(max_disk_mb=32)).run(spec(tmp_path, "tests.bench.fakes:FillsCheckpoint"))
    assert record.status == "failed" and record.error.startswith("disk limit exceeded"), record.error
    assert not (tmp_path / "runs" / record.run_id / "resume").exists()  # the harness's verdict: nothing to resume
