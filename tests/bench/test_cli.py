"""The command line as a user meets it: bad arguments, list, run, report from the table alone."""

import re
import subprocess
import sys

import pytest

from bench.cli import main, parse_assignments
from bench.store import ResultsStore


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("args, message", [
    (["run", "--dataset", "digitz", "--system", "majority", "--budget", "1m"], "valid: digits"),
    (["run", "--dataset", "digits", "--system", "magic", "--budget", "1m"], "valid: majority"),
    (["run", "--dataset", "digits", "--system", "majority", "--budget", "1x"], "'30s', '5m'"),
    (["run", "--dataset", "digits", "--system", "majority", "--budget", "1m", "--max-train", "0"],
     "--max-train must be a positive integer"),
    (["run", "--dataset", "digits", "--system", "majority", "--budget", "1m", "--system-option", "x"],
     "is not KEY=VALUE"),
    (["run", "--dataset", "digits", "--system", "majority", "--budget", "1m", "--system-option", "x=1"],
     r"unknown option\(s\) x"),
    (["all", "--suite", "nope"], "unknown suite .nope.; valid: .*default"),
])
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert not out.exists()


def test_unwritable_output_folder_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "--dataset", "digits", "--system", "majority", "--budget", "full", "--out",
                 str(blocker / "sub")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_assignments_read_toml_values():
    assert parse_assignments(["a=1", "b=0.5", "c=true", "d=patient", 'e="x y"'], "opt") == {
        "a": 1, "b": 0.5, "c": True, "d": "patient", "e": "x y"}


def test_list_shows_datasets_systems_budgets_suites():
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    for word in ("digits", "available", "majority", "budgets:", "smoke", "folder:PATH"):
        assert word in result.stdout


def test_run_records_into_the_table_and_resumes(tmp_path):
    args = ["run", "--dataset", "digits", "--system", "majority", "--budget", "full", "--out", str(tmp_path)]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    (record,) = ResultsStore(tmp_path).records().values()
    assert record.status == "ok" and record.suite == "adhoc" and 0.05 < record.accuracy < 0.2
    second = run_cli(*args)
    assert "1 already done" in second.stderr
    forced = run_cli(*args, "--force")
    assert "ok 1" in forced.stderr


def test_dry_run_lists_the_plan_and_writes_nothing(tmp_path):
    result = run_cli("all", "--suite", "smoke", "--dry-run", "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("digits /") == len(result.stdout.splitlines()) > 4
    assert not (tmp_path / "o").exists()
