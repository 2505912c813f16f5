import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.records import COLUMNS, RunRecord
from bench.store import ResultsStore, StoreError

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
from bench.records import RunRecord
from bench.store import ResultsStore
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
