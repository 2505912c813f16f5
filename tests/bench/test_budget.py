import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.core.budget import Budget, BudgetError, parse_budget


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


@pytest.mark.parametrize("text, name", [
    # Names of budgets in committed results and shipped suites: run_ids hash them, so they must not change.
    ("30s", "30s"), ("5m", "5m"), ("2h", "2h"), ("90s", "90s"), ("1.5s", "1.5s"), ("0.5s", "0.5s"),
    ("t10", "t10"), ("1h+t10", "1h+t10"), ("t3+90s", "90s+t3"), ("full", "full"), ("1.5h", "90m"),
    ("10s", "10s"), ("40s", "40s"), ("15m", "15m"), ("45m", "45m"), ("24h", "24h"), ("123456s", "123456s"),
    # ... and exact names where `f"{seconds:g}s"` rounded or wrote exponents.
    ("0.001s", "0.001s"), ("1000001s", "1000001s"), ("1.0010s", "1.001s"), ("0.1h", "6m"), ("1000h", "1000h"),
    ("3600000s", "1000h"), ("1234567.891s", "1234567.891s"),
])
def test_names_of_budgets_in_use_stay_the_same(text, name):
    assert parse_budget(text).name == name


@pytest.mark.parametrize("text, message", [
    ("3600001s", "exceeds 1000h"), ("1000.001h", "exceeds 1000h"), ("1" + "0" * 300 + "s", "exceeds 1000h"),
    ("0.000000001s", "finer than a millisecond"), ("100.0001s", "finer than a millisecond"),
    ("0.0000s", "must be positive"), ("t1000001", "exceeds 1000000 trials"), ("t" + "9" * 5000, "exceeds"),
    ("t00", "at least one trial"), ("1e3s", "unknown budget"), ("٣s", "unknown budget"), ("1h+", "unknown budget"),
])
def test_rejects_budgets_whose_name_could_not_say_them_exactly(text, message):
    with pytest.raises(BudgetError, match=message):
        parse_budget(text)


def test_budgets_made_directly_must_be_representable_too():
    assert Budget(seconds=1.5).name == "1.5s"
    for bad in (dict(seconds=1e-9), dict(seconds=1e7), dict(seconds=float("nan")), dict(trials=0),
                dict(trials=True)):
        with pytest.raises(BudgetError):
            Budget(**bad)


_NUMBER = st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{1,6})?\Z")
_PART = st.one_of(
    st.builds(lambda n, u: n + u, _NUMBER, st.sampled_from("smhSMH")),
    st.builds(lambda n: "t" + n, st.from_regex(r"\A[0-9]{1,9}\Z")),
    st.text(alphabet="0123456789.smhtfulx+ -e", max_size=8),
)
_BUDGET_TEXT = st.one_of(
    st.builds("+".join, st.lists(_PART, min_size=1, max_size=3)),
    st.sampled_from(["full", " FULL ", "30s", "1h+t10"]),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_BUDGET_TEXT)
def test_every_budget_is_rejected_or_named_exactly(text):
    try:
        budget = parse_budget(text)
    except BudgetError:
        return
    again = parse_budget(budget.name)
    assert again == budget and again.name == budget.name
