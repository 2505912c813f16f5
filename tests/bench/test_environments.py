"""Worker environments of their own: how a run finds its python, what setup installs, the one-line failures."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.datasets.cache import decoder
from bench.run import environments
from bench.run.environments import EnvironmentMissing, setup_commands, worker_interpreter, worker_python
from bench.run.metadata import REPO_ROOT
from tests.datasets.builders import class_members, corrupt_png, write_tree


def test_most_systems_run_with_the_harness_python():
    assert worker_interpreter("majority") == (sys.executable, {})
    assert worker_interpreter("no-such-system") == (sys.executable, {})  # the worker records it as failed


def test_a_missing_environment_says_how_to_set_it_up(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_AUTOGLUON_PYTHON", str(tmp_path / "bin" / "python"))
    with pytest.raises(EnvironmentMissing, match=r"python -m bench setup autogluon") as err:
        worker_interpreter("autogluon")
    assert "\n" not in str(err.value)


def test_an_environment_without_the_library_is_incomplete(monkeypatch):
    monkeypatch.setenv("BENCH_AUTOGLUON_PYTHON", sys.executable)  # this one has bench but not AutoGluon
    with pytest.raises(EnvironmentMissing, match="incomplete"):
        worker_python("autogluon")


def test_the_default_folder_follows_bench_envs_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("BENCH_AUTOGLUON_PYTHON", raising=False)
    monkeypatch.setenv("BENCH_ENVS_DIR", str(tmp_path))
    assert environments.interpreter("autogluon") == tmp_path / "autogluon" / "bin" / "python"


def test_its_worker_leaves_the_checkout_off_its_path_and_waits_passively(monkeypatch):
    monkeypatch.setattr(environments, "worker_python", lambda name: "/envs/autogluon/bin/python")
    monkeypatch.setenv("BENCH_AUTOGLUON_PYTHON", "/envs/autogluon/bin/python")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO_ROOT), "/elsewhere"]))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    python, env = worker_interpreter("autogluon-hpo")
    assert python == "/envs/autogluon/bin/python"
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "PYTHONSAFEPATH": "1", "PYTHONPATH": "/elsewhere"}
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice stands
    assert "OMP_WAIT_POLICY" not in worker_interpreter("autogluon")[1]


def test_setup_installs_isolated_then_this_checkout_without_dependencies(tmp_path):
    commands = setup_commands("autogluon", tmp_path)
    assert all(c[:3] == [str(tmp_path / "bin" / "python"), "-m", "pip"] and "--isolated" in c for c in commands)
    assert "autogluon.multimodal==1.6.3" in commands[0] and "torchvision==0.28.0" in commands[0]
    assert commands[-1][-3:] == ["--no-deps", "-e", str(REPO_ROOT)]


def test_setup_of_an_unknown_environment_is_one_line_and_exit_2(capsys):
    assert main(["setup", "tensorflow1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown environment 'tensorflow1'; valid: autogluon" in err


def foreign_python(tmp_path: Path) -> Path:
    """An interpreter that is not this one to the harness (a script that execs it), logging what it was told."""
    script = tmp_path / "bin" / "python"
    script.parent.mkdir(parents=True)
    script.write_text(f'#!/bin/sh\necho "$BENCH_DECODER" >> {tmp_path / "told.txt"}\nexec {sys.executable} "$@"\n')
    script.chmod(0o755)
    return script


def test_a_worker_in_another_environment_reads_the_pixels_this_one_decoded(monkeypatch, tmp_path):
    # Another environment's Pillow resizes differently: its worker must train on the suite's pixels.
    python = foreign_python(tmp_path)
    monkeypatch.setattr(environments, "worker_interpreter", lambda system: (str(python), {}))
    write_tree(tmp_path / "cells", class_members(("a", "b"), per_class=12, side=9))
    argv = ["run", "--dataset", f"folder:{tmp_path / 'cells'}", "--system", "majority", "--budget", "full",
            "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert (tmp_path / "told.txt").read_text().split("\n")[0] == decoder()
    [folder] = (tmp_path / "out" / "runs").iterdir()
    info = json.loads((folder / "metadata.json").read_text())["dataset_info"]
    assert info["cache"] == "hit" and info["decoder"] == decoder()  # prepared by the harness, read by the worker


def test_data_that_cannot_be_prepared_fails_the_run_before_its_worker_starts(monkeypatch, tmp_path, capsys):
    python = foreign_python(tmp_path)
    monkeypatch.setattr(environments, "worker_interpreter", lambda system: (str(python), {}))
    write_tree(tmp_path / "cells", {"a/0.png": corrupt_png(), "b/0.png": corrupt_png(1)})
    argv = ["run", "--dataset", f"folder:{tmp_path / 'cells'}", "--system", "majority", "--budget", "full",
            "--out", str(tmp_path / "out")]
    main(argv)
    [row] = list(csv.DictReader((tmp_path / "out" / "runs.csv").open()))
    assert row["status"] == "failed" and row["error"].startswith("the data set could not be prepared: ")
    assert not (tmp_path / "told.txt").exists()
