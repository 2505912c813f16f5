import textwrap

import pytest

from bench.core.options import ConfigError
from bench.run.spec import Resources
from bench.run.suite import load_suite, parse_suite, suite_names

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


@pytest.mark.parametrize("change, message", [
    (("seeds = [0, 1]", "seeds = 5"), r"'seeds' must be a list of distinct integers from 0 to \d+, got 5"),
    (("seeds = [0, 1]", "seeds = [true]"), r"'seeds' must be a list .*got \[True\]"),
    (("seeds = [0, 1]", "seeds = [0, 1, 0]"), r"'seeds' must be a list of distinct"),
    (("seeds = [0, 1]", "seeds = [-1]"), r"'seeds' must be"),
    (("seeds = [0, 1]", "seeds = [4294967296]"), r"'seeds' must be"),
    (("seeds = [0, 1]", 'seeds = [0, 1]\ntimeout_factor = "abc"'), "'timeout_factor' must be a positive number"),
    (("seeds = [0, 1]", "seeds = [0, 1]\ntimeout_factor = 0"), "'timeout_factor' must be a positive number"),
    (("seeds = [0, 1]", "seeds = [0, 1]\ntimeout_factor = -1.5"), "'timeout_factor' must be a positive number"),
    (("seeds = [0, 1]", "seeds = [0, 1]\ntimeout_factor = inf"), "'timeout_factor' must be a positive number"),
    (("seeds = [0, 1]", 'seeds = [0, 1]\ntimeout = "0.5s"'), r"'timeout' must be a time of at least 1s"),
    (("seeds = [0, 1]", 'seeds = [0, 1]\ntimeout_slack = "0.999s"'), r"'timeout_slack' must be a time of at least"),
    (("seeds = [0, 1]", 'seeds = [0, 1]\ntimeout = "t10"'), r"'timeout' must be a time"),
    (("seeds = [0, 1]", "seeds = [0, 1]\ntimeout = 600"), r"'timeout' must be a time .*got 600"),
    (("seeds = [0, 1]", "seeds = [0, 1]\nmax_rss_mb = nan"), r"'max_rss_mb' must be a positive number of MiB"),
    (('budgets = ["30s", "t2"]', 'budgets = "30s"'), r"'budgets' must be a list of budget strings"),
    (('budgets = ["30s", "t2"]', 'budgets = [30]'), r"'budgets' must be a list of budget strings"),
    (('budgets = ["30s", "t2"]', 'budgets = ["30s", "0.5m"]'), r"'budgets': 30s is given twice"),
    (('budgets = ["full"]', 'budgets = ["1000001h"]'), r"systems\[0\]: 'budgets': budget '1000001h' exceeds 1000h"),
    (('description = "test"', "description = 5"), "'description' must be a string, got 5"),
    (('description = "test"', 'description = "test"\ndatasets = "digits"'), "not valid TOML"),  # then [[datasets]]
    (('[[systems]]\nname = "majority"\nbudgets = ["full"]',
      '[[systems]]\nname = "majority"\nbudgets = ["full"]\n[[systems]]\nname = "majority"\nbudgets = ["1m"]'),
     r"'systems': majority is given twice"),
    (('options = { seconds = 0.5 }', 'options = { seconds = [0.5] }'),
     r"systems\[1\]: options.seconds must be a string, boolean or finite number, got \[0.5\]"),
    (('options = { seconds = 0.5 }', 'options = { seconds = { a = 1 } }'), r"options.seconds must be a string"),
    (('options = { seconds = 0.5 }', 'options = { seconds = nan }'), r"options.seconds must be a string"),
    (('options = { seconds = 0.5 }', 'options = { seconds = 1979-05-27 }'), r"options.seconds must be a string"),
    (('name = "majority"', 'name = 5'), r"systems\[0\]: 'name' must be a non-empty string, got 5"),
    (('name = "digits"', 'name = ["digits"]'), r"datasets\[0\]: 'name' must be a non-empty string"),
    (("max_train = 100", "max_train = true"), r"'max_train' must be a positive integer, got True"),
    (('name = "majority"', 'name = "tests.bench.fakes:_Prior"'), r"is not a subclass|abstract|has no 'name'"),
])
def test_rejects_values_of_the_wrong_type_naming_file_and_key(tmp_path, change, message):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError, match=message) as info:
        load_suite(str(path))
    assert "mine.toml" in str(info.value)


@pytest.mark.parametrize("raw_change, message", [
    ({"datasets": {"name": "digits"}}, r"'datasets' must be a list of tables"),
    ({"datasets": ["digits"]}, r"'datasets' must be a list of tables"),
    ({"systems": "majority"}, r"'systems' must be a list of tables"),
    ({"systems": [{"name": "majority"}, 3]}, r"'systems' must be a list of tables"),
    ({"resources": {"num_cpus": float("nan")}}, r"resources: num_cpus must be a finite"),
    ({"datasets": [{"name": "digits"}, {"name": "digits", "max_train": 5}, {"name": "digits", "max_train": 5}]},
     r"'datasets': digits max_train=5 is given twice"),
    ({"datasets": [{"name": "digits", "options": {"test_fraction": 0.5}}, {"name": "digits"},
                   {"options": {"test_fraction": 0.5}, "name": "digits"}]},
     r"'datasets': digits test_fraction=0.5 is given twice"),
])
def test_rejects_sections_that_are_not_lists_of_tables(raw_change, message):
    raw = {"seeds": [0], "budgets": ["1m"], "datasets": [{"name": "digits"}], "systems": [{"name": "majority"}]}
    with pytest.raises(ConfigError, match=message):
        parse_suite({**raw, **raw_change}, "r", "r.toml")


def test_a_binary_suite_file_is_a_config_error(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00\x01 seeds = [0]")
    with pytest.raises(ConfigError, match="bin.toml: not UTF-8 text"):
        load_suite(str(path))


def test_the_paper_suite_says_how_to_run_it_with_three_seeds():
    assert "--seeds 0,1,2" in load_suite("paper").description
