"""The command line as a user meets it: bad arguments, list, run, report from the table alone."""

import re
import subprocess
import sys

import pytest

from bench.cli import main, parse_assignments
from bench.core.budget import parse_budget
from bench.run.records import COLUMNS, record_for
from bench.run.spec import DatasetRef, RunSpec
from bench.run.store import ResultsStore


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


@pytest.mark.slow
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


def one_line_error(capsys, code, pattern):
    """The command exited 2 with exactly one line on stderr matching pattern."""
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert re.search(pattern, err), err
    return err


MAJORITY_SUITE = 'seeds = [0]\nbudgets = ["full"]\n[[datasets]]\nname = "digits"\n[[systems]]\nname = "majority"\n'
RUN = ["run", "--dataset", "digits", "--system", "majority", "--budget", "full"]


HEADER = ",".join(COLUMNS).encode() + b"\n"
ROW = ",".join(record_for(RunSpec(DatasetRef("digits"), "majority", parse_budget("full"), 0), "ok").to_row()
               .values()).encode() + b"\n"


@pytest.mark.parametrize("command", ["all", "run", "report"])
@pytest.mark.parametrize("damage, line", [
    (HEADER + ROW + ROW[:-1] + b",surplus\n", 3),  # more cells than headers
    (HEADER + ROW + ROW[:20], 3),  # truncated line
    (HEADER + b"\x00\x00\x00\n", 2),  # NUL bytes
    (HEADER + ROW + b"\x89PNG\r\n\x1a\n\xff\xd8", 3),  # binary
    (b"run_id,status\nabc,ok\n", 1),  # columns missing
])
def test_a_damaged_results_table_is_one_line_and_left_untouched(tmp_path, capsys, command, damage, line):
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs.csv").write_bytes(damage)
    suite = tmp_path / "s.toml"
    suite.write_text(MAJORITY_SUITE)
    args = {"all": ["all", "--suite", str(suite), "--no-report"], "run": RUN, "report": ["report"]}[command]
    err = one_line_error(capsys, main([*args, "--out", str(out)]),
                         rf"{re.escape(str(out / 'runs.csv'))}, line {line}: .*move it away or choose another --out")
    assert err.startswith(f"bench {command}: error: ")
    assert (out / "runs.csv").read_bytes() == damage
    assert [p.name for p in out.iterdir()] == ["runs.csv"]


def test_garbage_text_in_place_of_the_table_is_named(tmp_path, capsys):
    (tmp_path / "runs.csv").write_text("Dear diary,\ntoday I benchmarked nothing.\n")
    one_line_error(capsys, main(["report", "--out", str(tmp_path)]), r"runs.csv is not a bench results table")


@pytest.mark.parametrize("extra, message", [
    (["--max-rss-mb", "-5"], "--max-rss-mb must be a positive number, got -5"),
    (["--max-rss-mb", "0"], "--max-rss-mb must be a positive number, got 0"),
    (["--max-rss-mb", "nan"], "--max-rss-mb must be a positive number"),
    (["--max-disk-mb", "0"], "--max-disk-mb must be a positive number"),
    (["--max-disk-mb=-inf"], "--max-disk-mb must be a positive number, got -inf"),
    (["--max-retries", "-1"], "--max-retries must be a non-negative integer, got -1"),
    (["--max-test", "-2"], "--max-test must be a positive integer"),
    (["--seeds", "0,1,0"], "seed 0 is given twice"),
    (["--seeds", "0,-1"], r"comma-separated integers from 0 to 4294967295.*'-1' is not one"),
    (["--seeds", ""], "comma-separated integers"),
    (["--seeds", "1,,2"], "comma-separated integers"),
    (["--seeds", "a"], "comma-separated integers"),
    (["--seeds", "4294967296"], "comma-separated integers"),
    (["--seeds", "1" * 5000], "comma-separated integers"),
])
@pytest.mark.parametrize("command", ["all", "run"])
def test_bad_limits_and_seeds_exit_2_and_write_nothing(tmp_path, capsys, command, extra, message):
    out = tmp_path / "out"
    args = ["all", "--suite", "smoke"] if command == "all" else RUN
    one_line_error(capsys, main([*args, *extra, "--out", str(out)]), re.escape(message).replace(r"\.\*", ".*")
                   if ".*" not in message else message)
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [
    (["--seed", "1", "--seeds", "0,1"], "give --seed K or --seeds K,K,..., not both"),
    (["--seed", "-1"], "--seed must be an integer from 0 to 4294967295, got -1"),
    (["--timeout", "0.5s"], "--timeout '0.5s' must be a time of at least 1s"),
    (["--timeout", "1h+t10"], "must be a time of at least 1s"),
    (["--dataset-option", "split_seed=-3"], "split_seed"),  # the data set's own check, as one line
    (["--system-option", "x=[1, 2]"], "--system-option 'x=[1, 2]': a value is a string, a boolean or a finite"),
    (["--dataset-option", "test_fraction=nan"], "a value is a string, a boolean or a finite number"),
    (["--ray-address", "auto"], "--ray-address and --max-retries need --executor ray"),
    (["--max-retries", "2"], "--ray-address and --max-retries need --executor ray"),
])
def test_bad_run_arguments_exit_2_and_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    one_line_error(capsys, main([*RUN, *extra, "--out", str(out)]), re.escape(message))
    assert not out.exists()


def test_bad_report_prices_exit_2(tmp_path, capsys):
    (tmp_path / "runs.csv").write_text("run_id,status\n")
    one_line_error(capsys, main(["report", "--out", str(tmp_path), "--price-per-hour", "-1"]),
                   "--price-per-hour must be a non-negative number")


@pytest.mark.parametrize("dataset, reason", [
    ("folder:/nonexistent", "folder: /nonexistent does not exist"),
])
def test_an_unavailable_dataset_named_by_run_is_an_error_not_a_skip(tmp_path, capsys, dataset, reason):
    out = tmp_path / "out"
    one_line_error(capsys, main(["run", "--dataset", dataset, "--system", "majority", "--budget", "full",
                                 "--out", str(out)]), rf"dataset '{dataset}' is not available: .*{reason}")
    assert not out.exists()


PLUGINS = {
    "broken_syntax": "def fit(:\n",
    "raises_on_import": "raise RuntimeError('no GPU here\\nsecond line')\n",
    "imports_missing": "import not_a_module_anywhere\n",
    "plugin_ok": "from bench.systems.base import System\nclass Half(System):\n    name = 'half'\n"
                 "    description = 'fit only'\n    def fit(self, x, y, ctx):\n        pass\nthing = 3\n",
}


@pytest.mark.parametrize("system, message", [
    ("bench.systems.base:System", r"is abstract: it does not implement fit, predict_proba"),
    ("plugin_ok:Half", r"'plugin_ok:Half' is abstract: it does not implement predict_proba"),
    ("plugin_ok:thing", r"is not a class but a int"),
    ("bench.core.budget:parse_budget", r"is not a class but a function"),
    ("bench.core.budget:Budget", r"is not a subclass of bench.systems.base.System"),
    ("plugin_ok:Nope", r"module 'plugin_ok' has no 'Nope'"),
    ("broken_syntax:X", r"module 'broken_syntax' cannot be imported: SyntaxError: .*broken_syntax.py, line 1"),
    ("raises_on_import:X", r"module 'raises_on_import' cannot be imported: RuntimeError: no GPU here second line"),
    ("imports_missing:X", r"cannot be imported: ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
    ("no_such_module_here:X", r"no module 'no_such_module_here'"),
    (":X", r"a plugin is named module:Class"),
    ("plugin_ok:", r"a plugin is named module:Class"),
])
def test_a_system_that_is_no_system_is_one_line(tmp_path, capsys, monkeypatch, system, message):
    for module, text in PLUGINS.items():
        (tmp_path / f"{module}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    one_line_error(capsys, main(["run", "--dataset", "digits", "--system", system, "--budget", "full",
                                 "--out", str(out)]), message)
    assert not out.exists()


def test_seeds_replace_a_suites_seeds_and_change_nothing_else(tmp_path, capsys):
    suite = tmp_path / "s.toml"
    suite.write_text(MAJORITY_SUITE)
    plain = ["all", "--suite", str(suite), "--dry-run", "--out", str(tmp_path / "o")]
    assert main(plain) == 0
    (seed0,) = capsys.readouterr().out.splitlines()
    assert main([*plain, "--seeds", "2,0,1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" / seed ")[1].split()[0] for line in lines] == ["2", "0", "1"]
    assert seed0 in lines  # seed 0's run is the same run, so a resumed suite does not run it again


@pytest.mark.slow
def test_run_with_seeds_runs_one_spec_per_seed(tmp_path):
    result = run_cli(*RUN, "--seeds", "3,1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert sorted(r.seed for r in ResultsStore(tmp_path).records().values()) == [1, 3]


@pytest.mark.parametrize("command", ["all", "run"])
def test_a_results_folder_whose_runs_is_a_file_is_one_line_and_left_untouched(tmp_path, capsys, command):
    (tmp_path / "runs").write_text("not a folder")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = ["all", "--suite", "smoke", "--no-report"] if command == "all" else RUN
    one_line_error(capsys, main([*args, "--out", str(tmp_path)]), r"runs is a file.*choose another --out")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("command", ["all", "run", "report"])
def test_an_empty_out_is_one_line_and_writes_nothing_here(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    args = {"all": ["all", "--suite", "smoke"], "run": RUN, "report": ["report"]}[command]
    one_line_error(capsys, main([*args, "--out", ""]), r"--out is empty")
    assert list(tmp_path.iterdir()) == []


def test_a_busy_folder_prints_its_one_line_error_alone(tmp_path, capsys):
    from bench.run.writer_lock import hold

    suite = tmp_path / "s.toml"
    suite.write_text(MAJORITY_SUITE)
    out = tmp_path / "out"
    with hold(out, command="another driver"):
        one_line_error(capsys, main(["all", "--suite", str(suite), "--out", str(out)]),
                       r"in use by another bench driver: .*another driver")


def test_an_address_where_no_ray_answers_leaves_nothing_behind(tmp_path, capsys):
    import socket

    pytest.importorskip("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "new" / "out"
    one_line_error(capsys, main([*RUN, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "--out",
                                 str(out)]), rf"--ray-address 127.0.0.1:{port}: nothing answers")
    assert list(tmp_path.iterdir()) == []


def test_a_finished_command_leaves_no_lock_file(tmp_path):
    from bench.run.writer_lock import LOCK_FILE

    assert main([*RUN, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "runs.csv").exists() and not (tmp_path / LOCK_FILE).exists()


def test_a_suite_and_its_report_write_nothing_in_the_home_folder(tmp_path):
    from tests.bench.outside import Sandbox

    suite = tmp_path / "s.toml"
    suite.write_text(MAJORITY_SUITE)
    sandbox = Sandbox(tmp_path / "sandbox")
    try:
        result = sandbox.run("all", "--suite", str(suite))
        assert result.returncode == 0, result.stderr
        assert (sandbox.out / "REPORT.md").exists()
        assert sandbox.left_outside() == []
    finally:
        sandbox.close()
