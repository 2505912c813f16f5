import pytest

from bench.budget import Budget, BudgetError, parse_budget


@pytest.mark.parametrize("text, seconds, trials", [
    ("30s", 30, None), ("5m", 300, None), ("2h", 7200, None), ("1.5h", 5400, None),
    ("t10", None, 10), ("1h+t10", 3600, 10), ("t3+90s", 90, 3), ("full", None, None), (" 2M ", 120, None),
])
def test_parses_accepted_forms(text, seconds, trials):
    budget = parse_budget(text)
    assert (budget.seconds, budget.trials) == (seconds, trials)


@pytest.mark.parametrize("text", ["", "5", "5x", "m5", "t0", "0s", "-5m", "1h+2h", "t1+t2", "1h t10", "tt3"])
def test_rejects_everything_else(text):
    with pytest.raises(BudgetError, match="budget"):
        parse_budget(text)


@pytest.mark.parametrize("text", ["30s", "5m", "2h", "90s", "t10", "1h+t10", "full", "1.5h"])
def test_name_round_trips(text):
    assert parse_budget(parse_budget(text).name) == parse_budget(text)


def test_canonical_names():
    assert parse_budget("120s").name == "2m"
    assert parse_budget("3600s").name == "1h"
    assert Budget().name == "full"


def test_sort_key_orders_by_time_then_trials_full_last():
    names = ["full", "2h", "t5", "30s", "5m"]
    ordered = sorted((parse_budget(n) for n in names), key=lambda b: b.sort_key)
    assert [b.name for b in ordered] == ["30s", "5m", "2h", "t5", "full"]
