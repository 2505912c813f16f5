"""The backend option: carried to the worker through KERAS_BACKEND, recorded, and rerun when asked otherwise."""

import json

import pytest

from bench.core import backend, rundir
from bench.core.budget import parse_budget
from bench.run.driver import run_specs
from bench.run.execute import LocalExecutor
from bench.run.spec import DatasetRef, RunSpec
from bench.run.store import ResultsStore

KERAS_FAKE = "tests.bench.fakes:SeesPolicy"


def spec(tmp_path, system, name="", seed=0):
    return RunSpec(dataset=DatasetRef("digits", max_train=200), system=system, budget=parse_budget("full"),
                   seed=seed, out_dir=str(tmp_path), backend=name)


def test_the_backend_is_carried_to_the_worker_but_not_part_of_the_run_id(tmp_path):
    a, b = spec(tmp_path, "majority"), spec(tmp_path, "majority", "jax")
    assert a.run_id == b.run_id
    assert RunSpec.from_json(b.to_json()).backend == "jax"
    with pytest.raises(ValueError, match="valid: tensorflow, jax, torch"):
        spec(tmp_path, "majority", "theano")


def test_an_unset_backend_is_keras_backend_else_tensorflow(monkeypatch):
    monkeypatch.delenv(backend.ENV, raising=False)
    assert backend.resolve("") == "tensorflow"
    monkeypatch.setenv(backend.ENV, "jax")
    assert backend.resolve("") == "jax" and backend.resolve("torch") == "torch"


@pytest.mark.slow  # the rule alone: test_precision.py's same_arithmetic test; a real JAX run: test_backend_systems.py
def test_a_keras_run_computes_with_the_backend_asked_for_and_resuming_with_another_reruns_it(tmp_path, monkeypatch):
    pytest.importorskip("jax")
    monkeypatch.delenv(backend.ENV, raising=False)
    first = run_specs([spec(tmp_path, KERAS_FAKE), spec(tmp_path, "majority")], LocalExecutor(), tmp_path)
    assert first.counts["ok"] == 2
    assert {r.backend for r in ResultsStore(tmp_path).records().values()} == {"tensorflow", ""}
    same = run_specs([spec(tmp_path, KERAS_FAKE), spec(tmp_path, "majority", "jax")], LocalExecutor(), tmp_path)
    assert same.already_done == 2, "no request accepts any backend; majority has none"
    other = run_specs([spec(tmp_path, KERAS_FAKE, "jax")], LocalExecutor(), tmp_path)
    assert other.counts["ok"] == 1 and other.already_done == 0
    [record] = [r for r in ResultsStore(tmp_path).records().values() if r.system == KERAS_FAKE]
    assert record.backend == "jax"
    meta = json.loads((rundir.run_dir(tmp_path, record.run_id) / rundir.METADATA).read_text())
    assert meta["keras_backend"] == "jax" and meta["versions"].get("jax")


def test_records_from_before_the_option_count_as_tensorflow():
    assert backend.satisfies("tensorflow", "")
    assert not backend.satisfies("jax", "")
    assert backend.satisfies("", "torch")


def test_a_suite_and_the_command_line_set_one_backend_for_every_run(tmp_path):
    from bench.cli import main
    from bench.core.options import ConfigError
    from bench.run.suite import parse_suite

    raw = {"seeds": [0], "budgets": ["full"], "datasets": [{"name": "digits"}], "systems": [{"name": "majority"}]}
    assert {s.backend for s in parse_suite({**raw, "backend": "torch"}, "s", "s.toml").specs("x")} == {"torch"}
    assert {s.backend for s in parse_suite(raw, "s", "s.toml").specs("x")} == {""}
    with pytest.raises(ConfigError, match="'backend' must be one of tensorflow, jax, torch"):
        parse_suite({**raw, "backend": "mxnet"}, "s", "s.toml")
    suite = tmp_path / "s.toml"
    suite.write_text('seeds = [0]\nbudgets = ["full"]\ndatasets = [{ name = "digits" }]\n'
                     'systems = [{ name = "majority" }]\nbackend = "torch"\n')
    assert main(["all", "--suite", str(suite), "--backend", "jax", "--dry-run", "--out", str(tmp_path / "o")]) == 0
    with pytest.raises(SystemExit) as bad:
        main(["all", "--suite", str(suite), "--backend", "mxnet", "--dry-run"])
    assert bad.value.code == 2
