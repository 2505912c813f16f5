"""Generated bad input: suites and command lines either work or fail in one line with exit code 2; generated
hostile folder data sets end in a recorded run within the run's limits, writing nothing outside the results and
the cache."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import os
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import UsageError, main
from bench.core.budget import BudgetError, parse_budget
from bench.core.options import ConfigError
from bench.run.spec import RunSpec
from bench.run.store import ResultsStore
from bench.run.suite import parse_suite
from tests.bench.outside import Sandbox
from tests.datasets import hostile

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# --- suites -------------------------------------------------------------------------------------------------
_INT64 = st.integers(-(2**63), 2**63 - 1)
_SCALAR = st.one_of(
    st.integers(-3, 5), _INT64, st.booleans(), st.floats(), st.text(st.characters(exclude_categories=("Cs",)),
                                                                    max_size=6),
    st.sampled_from(["30s", "1m", "0.5s", "t2", "full", "1000001s", "digits", "majority", "auto", "search"]),
)
_KEY = st.sampled_from(["name", "options", "budgets", "seeds", "max_train", "test_fraction", "split_seed",
                        "num_cpus", "num_gpus", "bogus", "seconds"])
_ANY = st.recursive(_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(_KEY, inner, max_size=3)), max_leaves=6)
_BUDGETS = st.lists(st.sampled_from(["30s", "1m", "60s", "t2", "full", "1.5s", "1h+t3", "0.0001s", "2x"]),
                    min_size=1, max_size=3)
_DATASET = st.fixed_dictionaries(
    {"name": st.sampled_from(["digits"] * 6 + ["digitz", "folder:/nonexistent"]) | _SCALAR},
    optional={"options": st.dictionaries(st.sampled_from(["test_fraction", "split_seed", "bogus"]),
                                         _SCALAR | _ANY, max_size=2),
              "max_train": st.integers(-1, 200) | _SCALAR, "max_test": _SCALAR, "extra": _ANY})
_SYSTEM = st.fixed_dictionaries(
    {"name": st.sampled_from(["majority"] * 6 + ["nope", "bench.core.budget:Budget", "bench.systems.base:System"])},
    optional={"budgets": _BUDGETS | _ANY, "options": st.dictionaries(_KEY, _SCALAR, max_size=1),
              "resources": st.dictionaries(st.sampled_from(["num_cpus", "num_gpus", "gpus"]), _SCALAR, max_size=2)})
_WILD_SUITE = st.fixed_dictionaries(
    {"seeds": st.lists(st.integers(0, 3), min_size=1, max_size=3) | _ANY,
     "datasets": st.lists(_DATASET, min_size=1, max_size=2) | _ANY,
     "systems": st.lists(_SYSTEM, min_size=1, max_size=2) | _ANY},
    optional={"budgets": _BUDGETS | _ANY, "description": st.text(max_size=10) | _SCALAR,
              "timeout_factor": st.floats(-1, 3) | _SCALAR, "timeout": st.sampled_from(["1h", "0.5s", "t3"]) | _ANY,
              "timeout_slack": _SCALAR, "max_rss_mb": _SCALAR, "max_disk_mb": _SCALAR, "precision": _SCALAR,
              "resources": _ANY, "seed": _SCALAR, "unknown": _ANY})
# Valid suites (a wide variety of them), so the round trip of accepted suites is exercised too ...
_GOOD_SUITE = st.fixed_dictionaries(
    {"seeds": st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3, unique=True),
     "datasets": st.lists(st.fixed_dictionaries({"name": st.just("digits")}, optional={
         "options": st.fixed_dictionaries({}, optional={"test_fraction": st.floats(0.1, 0.9),
                                                        "split_seed": st.integers(0, 9)}),
         "max_train": st.integers(1, 10**6), "max_test": st.integers(1, 99)}), min_size=1, max_size=1),
     "systems": st.lists(st.fixed_dictionaries({"name": st.just("majority")}, optional={
         "budgets": st.lists(st.sampled_from(["full", "t1", "0.001s", "90s", "1000h", "1h+t10", "1.25s"]),
                             min_size=1, max_size=3, unique=True),
         "resources": st.fixed_dictionaries({}, optional={"num_cpus": st.floats(0, 8),
                                                          "num_gpus": st.integers(0, 2)})}),
         min_size=1, max_size=1),
     "budgets": st.lists(st.from_regex(r"\A([1-9][0-9]{0,3}(\.[0-9]{1,3})?[smh]|t[1-9][0-9]{0,5}|full)\Z"),
                         min_size=1, max_size=3)},
    optional={"description": st.text(max_size=10), "timeout_factor": st.floats(0.01, 10),
              "timeout": st.sampled_from(["1h", "30m", "1s", "90s"]), "timeout_slack": st.sampled_from(["10m", "1s"]),
              "max_rss_mb": st.integers(1, 10**6) | st.floats(0.5, 1e6),
              "precision": st.sampled_from(["auto", "float32"]),
              "resources": st.fixed_dictionaries({}, optional={"num_cpus": st.integers(0, 4)})})
_TOP = st.sampled_from(["seeds", "budgets", "datasets", "systems", "description", "timeout_factor", "timeout",
                        "timeout_slack", "max_rss_mb", "max_disk_mb", "resources", "precision", "seed", "unknown"])
# ... valid suites with a key or two replaced by anything, and suites of anything.
_SUITE = st.one_of(
    _GOOD_SUITE,
    st.builds(lambda suite, changes: {**suite, **dict(changes)}, _GOOD_SUITE,
              st.lists(st.tuples(_TOP, _ANY | _SCALAR), min_size=1, max_size=2)),
    _WILD_SUITE,
)


def toml_value(value: Any) -> str:
    """A value in TOML's inline syntax (arrays and inline tables nest, so any generated value has one)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        # JSON's escapes are TOML's, but for DEL, which JSON leaves raw and TOML forbids raw.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_text(suite: dict[str, Any]) -> str:
    return "\n".join(f"{key} = {toml_value(value)}" for key, value in suite.items()) + "\n"


@FAST
@given(_SUITE)
def test_generated_suites_are_accepted_whole_or_rejected_with_a_config_error(suite):
    raw = tomllib.loads(toml_text(suite))
    try:
        parsed = parse_suite(raw, "gen", "gen.toml")
    except (ConfigError, BudgetError) as exc:
        assert "\n" not in str(exc) or "not valid TOML" in str(exc)
        return
    specs = parsed.specs("out")
    assert specs
    for spec in specs:
        assert RunSpec.from_json(spec.to_json()) == spec
        assert parse_budget(spec.budget.name) == spec.budget and parse_budget(spec.budget.name).name == spec.budget.name


# --- command lines ------------------------------------------------------------------------------------------
_VALUE = st.sampled_from(["0", "1", "2", "-5", "0.5", "nan", "inf", "-inf", "1e3", "abc", "", "0,1,2", "1,1",
                          "3,-1", "4294967296", "30s", "0.5s", "t2", "full", "auto", "local", "ray"]) | st.text(
    alphabet="0123456789,-.esm", max_size=6)
_FLAG = st.sampled_from(["--seeds", "--max-rss-mb", "--max-disk-mb", "--max-retries", "--max-train", "--max-test",
                         "--precision", "--executor", "--data-dir", "--ray-address"])
_SWITCH = st.sampled_from(["--force", "--keep-models", "--bogus"])
_PAIRS = st.lists(st.one_of(st.tuples(_FLAG, _VALUE), st.tuples(_SWITCH)), max_size=4)
_RUN_PAIRS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["--seed", "--timeout", "--budget", "--seeds"]), _VALUE),
    st.tuples(st.sampled_from(["--dataset-option", "--system-option"]),
              st.sampled_from(["split_seed=-3", "test_fraction=2", "x=1", "bad", "test_fraction=0.5"])),
    st.tuples(_FLAG, _VALUE)), max_size=4)
# Each of these alone makes `bench run` fail before anything runs, whatever else is given with it.
_INVALID = st.sampled_from([("--max-rss-mb", "0"), ("--max-disk-mb", "-1"), ("--seeds", "1,1"), ("--budget", "1x"),
                            ("--seed", "-1"), ("--timeout", "0.5s"), ("--max-train", "0"), ("--system", "nope"),
                            ("--dataset", "digitz"), ("--dataset", "folder:/nonexistent"), ("--max-retries", "-2"),
                            ("--system-option", "x"), ("--budget", "1000001h"),
                            ("--system", "bench.core.budget:Budget")])
SUITE = 'seeds = [0]\nbudgets = ["full"]\n[[datasets]]\nname = "digits"\n[[systems]]\nname = "majority"\n'


def call(argv: list[str]) -> tuple[int, str]:
    """main's exit code (argparse's too) and its stderr; the data folder it may set is put back."""
    err, saved = io.StringIO(), os.environ.get("BENCH_DATA_DIR")
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except SystemExit as exc:  # argparse: unknown flags, missing values
        code = exc.code
    finally:
        if saved is None:
            os.environ.pop("BENCH_DATA_DIR", None)
        else:
            os.environ["BENCH_DATA_DIR"] = saved
    return code, err.getvalue()


def assert_one_line_usage_error(code: int, err: str, command: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    # argparse's own form: usage, then the error (unrecognized flags are the top-level parser's)
    if lines[-1].startswith((f"python -m bench {command}: error: ", "python -m bench: error: ")):
        assert lines[0].startswith("usage: ") and all(line.startswith(" ") for line in lines[1:-1]), err
    else:
        assert len(lines) == 1 and lines[0].startswith(f"bench {command}: error: "), err


def flatten(pairs: list[tuple[str, ...]]) -> list[str]:
    return [item for pair in pairs for item in pair]


@FAST
@given(st.sampled_from(["gen", "smoke", "nope", "missing.toml"]), _PAIRS)
def test_generated_dry_runs_plan_or_fail_in_one_line(suite, pairs):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gen.toml"
        path.write_text(SUITE)
        name = {"gen": str(path), "missing.toml": str(Path(tmp) / "missing.toml")}.get(suite, suite)
        out = Path(tmp) / "out"
        code, err = call(["all", "--suite", name, "--dry-run", *flatten(pairs), "--out", str(out)])
        if code != 0:
            assert_one_line_usage_error(code, err, "all")
        assert not out.exists()


@FAST
@given(_RUN_PAIRS, _INVALID)
def test_generated_bad_runs_fail_in_one_line_and_write_nothing(pairs, invalid):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        code, err = call(["run", "--dataset", "digits", "--system", "majority", "--budget", "full",
                          *flatten(pairs), *invalid, "--out", str(out)])
        assert_one_line_usage_error(code, err, "run")
        assert not out.exists()


def test_the_errors_raised_are_the_usage_kinds():
    assert issubclass(BudgetError, ValueError) and issubclass(ConfigError, ValueError)
    assert issubclass(UsageError, Exception)


# --- folder data sets ---------------------------------------------------------------------------------------
RUN_LIMIT_S = 60  # each run's hard limit, the data check's too
SLACK_S = 60  # a command's start, its report and the machine's load on top of the limit


@settings(max_examples=2, deadline=dt.timedelta(seconds=2 * (RUN_LIMIT_S + SLACK_S)),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@pytest.mark.slow
@given(hostile.plans)
def test_generated_hostile_folders_end_in_a_recorded_run_within_the_limits_writing_nothing_outside(plan):
    with tempfile.TemporaryDirectory() as tmp:
        root = hostile.write_plan(plan, Path(tmp) / "data", Path(tmp) / "outside")
        data_before = hostile.listing(Path(tmp) / "data")
        sandbox = Sandbox(Path(tmp) / "sandbox")
        try:
            args = ["run", "--dataset", f"folder:{root}", "--system", "majority", "--budget", "full",
                    "--timeout", f"{RUN_LIMIT_S}s"]
            for attempt in ("first", "resumed"):  # the second finds the first's record: the driver's data check
                started = time.monotonic()
                result = sandbox.run(*args, timeout=RUN_LIMIT_S + SLACK_S)
                assert time.monotonic() - started < RUN_LIMIT_S + SLACK_S
                assert "Traceback" not in result.stderr, result.stderr
                assert result.returncode in (0, 1), (attempt, result.stderr)
                [record] = ResultsStore(sandbox.out).records().values()
                assert record.status == ("failed" if plan.unreadable else "ok"), record.error
                assert plan.unreadable == bool(record.error)
            if not plan.unreadable:
                assert "1 run(s) already recorded as ok" in result.stderr, result.stderr
            assert sandbox.left_outside() == []
            assert hostile.listing(Path(tmp) / "data") == data_before
        finally:
            sandbox.close()
