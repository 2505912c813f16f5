import textwrap

import pytest

from bench.options import ConfigError
from bench.spec import Resources
from bench.suite import load_suite, parse_suite, suite_names

GOOD = """
description = "test"
seeds = [0, 1]
budgets = ["30s", "t2"]

[[datasets]]
name = "digits"
max_train = 100
options = { test_fraction = 0.5 }

[[systems]]
name = "majority"
budgets = ["full"]

[[systems]]
name = "tests.bench.fakes:Sleeps"
options = { seconds = 0.5 }
"""


def write(tmp_path, text):
    path = tmp_path / "mine.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_loads_a_suite_and_expands_the_grid(tmp_path):
    suite = load_suite(str(write(tmp_path, GOOD)))
    specs = suite.specs("out")
    # majority: 1 budget x 2 seeds; sleeps: 2 suite-level budgets x 2 seeds
    assert len(specs) == 6
    assert len({s.run_id for s in specs}) == 6
    assert [s.budget.name for s in specs] == ["30s", "30s", "t2", "t2", "full", "full"]
    assert suite.timeouts.for_budget(specs[0].budget) == pytest.approx(30 * 1.5 + 600)
    assert specs[-1].timeout_s == 7200


@pytest.mark.parametrize("change, message", [
    (("seeds = [0, 1]", "seeds = [0, 1]\nseed = 3"), r"unknown key\(s\) seed"),
    (('max_train = 100', 'max_train = 100\nmax_trian = 5'), r"datasets\[0\]: unknown key\(s\) max_trian"),
    (('test_fraction = 0.5', 'test_fraction = 0.5, bogus = 1'), r"unknown option\(s\) bogus"),
    (('budgets = ["full"]', 'budgets = ["full"]\nbudget = "1h"'), r"systems\[0\]: unknown key\(s\) budget"),
    (('options = { seconds = 0.5 }', 'options = { secs = 0.5 }'), r"systems\[1\].*unknown option\(s\) secs"),
    (('budgets = ["full"]', 'budgets = ["forever"]'), "unknown budget 'forever'"),
    (('name = "majority"', 'name = "magic"'), "unknown system 'magic'"),
    (('name = "digits"', 'name = "digitz"'), "unknown dataset 'digitz'"),
    (("seeds = [0, 1]", "seeds = []"), "'seeds' is missing or empty"),
])
def test_rejects_bad_suites_naming_file_and_key(tmp_path, change, message):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError, match=message) as info:
        load_suite(str(path))
    assert "mine.toml" in str(info.value)


def test_rejects_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_suite(str(write(tmp_path, "seeds = [")))


def test_unknown_suite_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="valid: .*smoke"):
        load_suite("nope")


@pytest.mark.parametrize("name", ["smoke", "quick", "paper", "default"])
def test_shipped_suites_are_valid(name):
    assert name in suite_names()
    suite = load_suite(name)
    assert suite.specs("out")


def test_paper_suite_has_the_2019_budgets():
    suite = load_suite("paper")
    automl = next(s for s in suite.systems if s.name == "autokeras")
    assert [b.name for b in automl.budgets] == ["1h", "2h", "4h", "8h", "12h", "24h"]
    assert dict(automl.options) == {"budget_scope": "search"}  # the 2019 protocol, said in the suite


def test_resources_per_suite_and_per_system_are_checked(tmp_path):
    raw = {"seeds": [0], "budgets": ["1m"], "datasets": [{"name": "digits"}], "resources": {"num_cpus": 2},
           "systems": [{"name": "majority"}, {"name": "resnet", "resources": {"num_gpus": 1}}]}
    suite = parse_suite(raw, "r", "r.toml")
    by_system = {s.system: s.resources for s in suite.specs("out")}
    assert by_system["majority"] == Resources(num_cpus=2) and by_system["resnet"] == Resources(num_gpus=1)
    for bad, message in [({"num_gpu": 1}, r"unknown key\(s\) num_gpu; valid: num_cpus, num_gpus"),
                         ({"num_cpus": -1}, "num_cpus must be a non-negative number")]:
        with pytest.raises(ConfigError, match=message):
            parse_suite({**raw, "resources": bad}, "r", "r.toml")
