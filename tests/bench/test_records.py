import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.run.records import COLUMNS, RunRecord
from bench.run.store import ResultsStore, StoreError

RESULTS = Path(__file__).resolve().parents[2] / "results"
LEADING = ["run_id", "suite", "dataset", "split", "system", "budget", "seed", "status", "accuracy",
           "balanced_accuracy", "macro_f1", "log_loss", "fit_s", "predict_s", "cpu_s", "gpu_s", "peak_rss_mb",
           "params", "trials", "started_utc", "error"]


def record(run_id="abc", **kw):
    base = dict(suite="s", dataset="digits", split="official", system="resnet", budget="5m", seed=0,
                status="ok", accuracy=0.9123456789, fit_s=12.5, params=1234, trials=None, gpu_s=None,
                error="")
    base.update(kw)
    return RunRecord(run_id=run_id, **base)


def test_fixed_leading_columns():
    assert list(COLUMNS[: len(LEADING)]) == LEADING


def test_row_and_json_round_trip_keep_types_and_empties():
    r = record(error='has, a comma and "quotes"\nand a newline')
    assert RunRecord.from_row(r.to_row()) == r
    assert RunRecord.from_json(r.to_json()) == r
    assert r.to_row()["gpu_s"] == ""  # empty, not zero, without a GPU


def test_data_provenance_columns_round_trip_after_the_other_further_columns():
    r = record(data_fingerprint="a75062fe8d04e740", data_format="JPEG image zip, with, commas",
               data_pixels="lossy: JPEG quality 75")
    assert RunRecord.from_row(r.to_row()) == r
    assert RunRecord.from_json(r.to_json()) == r
    assert r.to_row()["data_pixels"] == "lossy: JPEG quality 75"
    i = COLUMNS.index("data_fingerprint")
    assert COLUMNS[i:i + 3] == ("data_fingerprint", "data_format", "data_pixels") and i > COLUMNS.index("model_path")
    old_row = {k: v for k, v in record().to_row().items() if not k.startswith("data_")}  # a table from before
    assert RunRecord.from_row(old_row).data_fingerprint == ""


def _older(r: RunRecord, *dropped: str) -> dict[str, str]:
    """r's row as a table written before the columns `dropped` existed."""
    return {k: v for k, v in r.to_row().items() if k not in dropped}


def test_val_accuracy_is_held_out_and_an_older_tables_other_meanings_move_to_their_own_columns():
    """Since refit_train_accuracy, val_accuracy is only ever held out. Read from an older table (or record.json):
    Auto-Keras' refit scored on the split it trained on moves to refit_train_accuracy (a best trial that predicted
    stays held out); before search_val_accuracy, a searcher's best trial's score moves there; the baseline's and
    the hybrid's were held out all along and stay."""
    refit = record(system="autokeras", val_accuracy=0.97, search_val_accuracy=0.9, predicted_by="refit")
    assert RunRecord.from_row(refit.to_row()) == refit  # a table of today: read as written
    moved = RunRecord.from_row(_older(refit, "refit_train_accuracy"))
    assert (moved.val_accuracy, moved.refit_train_accuracy, moved.search_val_accuracy) == (None, 0.97, 0.9)
    old_json = {k: v for k, v in json.loads(refit.to_json()).items() if k != "refit_train_accuracy"}
    assert RunRecord.from_json(json.dumps(old_json)).refit_train_accuracy == 0.97
    before_predicted_by = RunRecord.from_row(_older(refit, "refit_train_accuracy", "predicted_by"))
    assert (before_predicted_by.val_accuracy, before_predicted_by.refit_train_accuracy) == (None, 0.97)
    best = record(system="autokeras", val_accuracy=0.9, search_val_accuracy=0.9, predicted_by="best trial")
    assert RunRecord.from_row(_older(best, "refit_train_accuracy")) == best
    for system in ("autokeras", "autokeras-default", "resnet-tuned"):
        trial = RunRecord.from_row(_older(record(system=system, val_accuracy=0.8), "refit_train_accuracy",
                                          "search_val_accuracy", "predicted_by"))
        assert (trial.val_accuracy, trial.search_val_accuracy, trial.refit_train_accuracy) == (None, 0.8, None)
    for system in ("resnet", "autokeras-hybrid"):
        kept = record(system=system, val_accuracy=0.95)
        assert RunRecord.from_row(_older(kept, "refit_train_accuracy", "search_val_accuracy")) == kept


def test_every_committed_results_table_reads_with_val_accuracy_held_out():
    """The study folders' tables, written before refit_train_accuracy, read without error; no Auto-Keras refit's
    score on data it trained on is left under val_accuracy."""
    tables = sorted(RESULTS.glob("**/runs.csv"))
    assert tables
    for table in tables:
        runs = ResultsStore(table.parent).records().values()
        assert runs, table
        searched = [r for r in runs if r.system in ("autokeras", "autokeras-default") and r.status == "ok"]
        assert all(r.val_accuracy is None or r.predicted_by == "best trial" for r in searched), table
    ladder = ResultsStore(RESULTS / "ladder-subset").records().values()
    assert any(r.system == "autokeras" and r.refit_train_accuracy is not None for r in ladder)


@pytest.mark.slow
def test_a_suite_resumed_into_an_older_results_folder_rewrites_its_rows_with_each_score_in_its_column(tmp_path):
    """`bench run` into a folder whose runs.csv predates refit_train_accuracy: the new run is added, and the older
    Auto-Keras row, rewritten with it, keeps its refit's score under refit_train_accuracy, not val_accuracy."""
    old = record("old", system="autokeras", val_accuracy=0.97, search_val_accuracy=0.9)
    columns = [c for c in COLUMNS if c not in ("refit_train_accuracy", "predicted_by")]
    with open(tmp_path / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerow(old.to_row())
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system", "majority",
                           "--budget", "full", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "runs.csv", newline="") as f:
        rows = {r["run_id"]: r for r in csv.DictReader(f)}
    assert len(rows) == 2 and rows["old"]["refit_train_accuracy"] == "0.97" and rows["old"]["val_accuracy"] == ""
    assert rows["old"]["search_val_accuracy"] == "0.9"


def test_the_worker_records_what_data_a_run_saw_even_when_it_fails(tmp_path):
    from bench.core.budget import parse_budget
    from bench.datasets import load_data
    from bench.run.spec import DatasetRef, RunSpec
    from bench.run.worker import execute

    spec = RunSpec(dataset=DatasetRef("digits", max_train=150), system="tests.bench.fakes:Raises",
                   budget=parse_budget("full"), seed=0, out_dir=str(tmp_path))
    r = execute(spec)
    assert r.status == "failed" and "deliberate failure" in r.error
    assert r.data_fingerprint == load_data("digits", max_train=150).info["fingerprint"]
    assert (r.data_format, r.data_pixels) == ("sklearn bundled", "canonical")


def test_rejects_unknown_status():
    with pytest.raises(ValueError, match="status"):
        record(status="done")


def test_store_upserts_and_survives_reread(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.records() == {}
    store.put(record("a", accuracy=0.5))
    store.put(record("b"))
    store.put(record("a", accuracy=0.7))
    table = ResultsStore(tmp_path).records()
    assert sorted(table) == ["a", "b"]
    assert table["a"].accuracy == 0.7
    with open(tmp_path / "runs.csv", newline="") as f:
        assert next(csv.reader(f)) == list(COLUMNS)


def test_store_names_a_foreign_table(tmp_path):
    (tmp_path / "runs.csv").write_text("x,y\n1,2\n")
    with pytest.raises(StoreError, match="not a bench results table"):
        ResultsStore(tmp_path).records()


WRITER = """
import sys
from bench.run.records import RunRecord
from bench.run.store import ResultsStore
store = ResultsStore(sys.argv[1])
i = 0
while True:
    store.put(RunRecord(run_id=f"r{i % 50}", suite="s", dataset="d", split="x", system="y", budget="1m",
                        seed=i, status="ok", error="padding " * 200))
    i += 1
"""


def test_killing_a_writer_never_leaves_a_torn_table(tmp_path):
    """kill -9 a process that rewrites the table in a loop; every read afterwards parses completely."""
    for delay in (0.05, 0.2, 0.5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], env=os.environ.copy())
        deadline = time.monotonic() + 60
        while not (tmp_path / "runs.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)  # kill it mid-loop, at a different point each time
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        table = ResultsStore(tmp_path).records()
        assert table, "the writer wrote nothing before the kill"
        assert all(r.error.startswith("padding") and r.status == "ok" for r in table.values())


def _good_table(tmp_path):
    store = ResultsStore(tmp_path)
    store.put_many([record("a"), record("b", error='two\nlines, "quoted"'), record("c")])
    return (tmp_path / "runs.csv").read_bytes()


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-40], r"line 5: \d+ cells where the header has \d+ \(a truncated"),  # cut inside the last row
    (lambda b: b + b"a,b,c\n", r"line 6: 3 cells where the header has"),
    (lambda b: b.replace(b",5m,", b",5m,,", 1), r"line 2: \d+ cells where the header has"),  # one cell too many
    (lambda b: b + b"\xff\xfe\x00garbage\n", r"line 6: not UTF-8 text"),
    (lambda b: b + b"x\x00y\n", r"line 6: contains NUL bytes"),
    (lambda b: b + b'"unterminated quote,\n' + b"x" * 200_000, r"line 7: not CSV \(field larger than field limit"),
    (lambda b: b.replace(b",ok,", b",done,", 1), r"line 2: malformed row \(status must be one of"),
    (lambda b: b.replace(b",0,ok,", b",inf,ok,", 1), r"line 2: malformed row"),
    (lambda b: b"just some\nprose, not a table\n", r"is not a bench results table \(no run_id, status"),
    (lambda b: bytes(range(256)) * 4, r"line 2: not UTF-8 text"),
    (lambda b: b"", r"is not a bench results table"),
])
def test_a_damaged_table_is_named_by_line_and_never_overwritten(tmp_path, damage, message):
    damaged = damage(_good_table(tmp_path))
    (tmp_path / "runs.csv").write_bytes(damaged)
    store = ResultsStore(tmp_path)
    with pytest.raises(StoreError, match=message) as info:
        store.records()
    assert str(tmp_path / "runs.csv") in str(info.value) and "move it away or choose another --out" in str(info.value)
    assert len(str(info.value).splitlines()) == 1 and len(str(info.value)) < 600
    with pytest.raises(StoreError):
        store.put(record("d"))
    assert (tmp_path / "runs.csv").read_bytes() == damaged
