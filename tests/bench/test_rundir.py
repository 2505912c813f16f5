"""The run folder's writers: predictions.csv as amlb reads it, and the modes of the files written."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core import rundir
from tests.conftest import REPO


def test_written_probabilities_sum_to_one_at_the_precision_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(10, 0.3), size=2000)  # many small entries: rounding drifts the sums
    proba[0] = [1 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0, 0, 0, 0]  # a tie: 0.333333 x 3 would sum to 0.999999
    y = rng.integers(0, 10, 2000)
    names = tuple(f"c{i}" for i in range(10))
    path = tmp_path / rundir.PREDICTIONS
    rundir.write_predictions(path, proba, y, names)
    frame = pd.read_csv(path, dtype=str)
    sums = frame[list(names)].map(Decimal).sum(axis=1)
    assert (sums == Decimal("1")).all(), sums[sums != Decimal("1")].head()
    assert all(len(v.split(".")[1]) == rundir.PROBABILITY_DECIMALS for v in frame["c0"].head())
    # The predicted label is each row's largest probability, as before rounding.
    assert (frame["predictions"].to_numpy() == np.asarray(names)[proba.argmax(axis=1)]).all()
    assert abs(frame[list(names)].astype(float).to_numpy() - proba).max() < 1e-5


def test_rounding_keeps_rows_that_already_sum_to_one() -> None:
    exact = np.array([[0.25, 0.75], [1.0, 0.0]])
    assert (rundir.rounded_probabilities(exact) == exact).all()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_take_the_umask_as_open_does(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        rundir.write_atomic(tmp_path / "a" / rundir.RECORD, "{}\n")
        rundir.write_json(tmp_path / "a" / rundir.METADATA, {"k": 1})
    finally:
        os.umask(old)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "a").iterdir()} == {
        rundir.RECORD: mode, rundir.METADATA: mode}  # and no temporary file left


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_a_runs_results_and_log_share_one_mode_the_umasks(tmp_path: Path, umask: int, mode: int) -> None:
    """runs.csv, record.json, log.txt and every other file of a run: 0666 less the umask, as the user set it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system", "majority",
                    "--budget", "full", "--out", str(out)], check=True, env=env, cwd=REPO,
                   preexec_fn=lambda: os.umask(umask), capture_output=True)
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    names = {p.name for p in files}
    assert {rundir.RUNS_TABLE, rundir.RECORD, rundir.LOG} <= names
    assert {p.relative_to(out).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {
        p.relative_to(out).as_posix(): oct(mode) for p in files}
