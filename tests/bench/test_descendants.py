"""The CPU of processes a run starts for itself: counted, and added to the run's cpu_s."""

from __future__ import annotations

import subprocess
import sys

from bench.core.budget import parse_budget
from bench.measure.descendants import DescendantsCpu
from bench.run.execute import LocalExecutor
from bench.run.spec import DatasetRef, RunSpec, freeze
from tests.bench.fakes import BURN


def burn(seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BURN, str(seconds)])


def test_processes_started_inside_count_and_those_already_running_do_not():
    before = burn(1.0)
    with DescendantsCpu(poll_s=0.1) as others:
        burn(1.0).wait()
    before.wait()
    # One second burnt, plus the interpreter's start; at most the last 0.1 s between samples missed.
    assert 0.85 <= others.cpu_s < 1.6


def test_a_runs_cpu_s_includes_the_processes_its_system_started(tmp_path):
    spec = RunSpec(dataset=DatasetRef("digits", max_train=200), system="tests.bench.fakes:StartsProcesses",
                   system_options=freeze({"seconds": 1.5}), budget=parse_budget("full"), seed=0, out_dir=str(tmp_path))
    record = LocalExecutor().run(spec)
    assert record.status == "ok", record.error
    assert record.cpu_s >= 1.4  # the fit itself only waits for its child
