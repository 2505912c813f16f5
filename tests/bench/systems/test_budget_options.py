"""The budget options systems share: one check of budget_scope and search_workers for every system."""

from __future__ import annotations

import pytest

from bench.core.options import ConfigError
from bench.systems import make_system
from bench.systems.budget_options import SearchOptions, check_budget_scope


@pytest.mark.parametrize("scope", ["total", "search"])
def test_each_budget_scope_is_accepted(scope: str) -> None:
    check_budget_scope(scope)
    assert SearchOptions(budget_scope=scope).budget_scope == scope


@pytest.mark.parametrize(("given", "message"), [
    ({"budget_scope": "refit"}, "budget_scope must be one of total, search, got 'refit'"),
    ({"search_workers": 0}, "search_workers must be a whole number of processes, at least 1, got 0"),
    ({"search_workers": True}, "search_workers must be a whole number"),
])
def test_every_searcher_refuses_the_same_bad_budget_options_with_the_same_words(given: dict, message: str) -> None:
    for system in ("autokeras", "autokeras-default", "autokeras-hybrid", "resnet-tuned"):
        with pytest.raises(ConfigError, match=message):
            make_system(system, given)


def test_a_searchers_own_options_follow_the_shared_ones() -> None:
    options = make_system("resnet-tuned", {"budget_scope": "search", "search_workers": 2, "recipe": "generic"}).options
    assert (options.budget_scope, options.search_workers, options.recipe) == ("search", 2, "generic")
    assert make_system("autokeras", {}).options.budget_scope == "total"
