"""The budget options systems share, checked in one place: what a wall-clock budget bounds, and how many
processes a search runs in."""

from __future__ import annotations

from dataclasses import dataclass

from bench.systems.search import BUDGET_SCOPES


def check_budget_scope(scope: object) -> None:
    """Raises ValueError unless scope is one of BUDGET_SCOPES."""
    if scope not in BUDGET_SCOPES:
        raise ValueError(f"budget_scope must be one of {', '.join(BUDGET_SCOPES)}, got {scope!r}")


def check_search_workers(n: object) -> None:
    """Raises ValueError unless n is a whole number of processes, at least 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"search_workers must be a whole number of processes, at least 1, got {n!r}")


@dataclass(frozen=True)
class SearchOptions:
    """A searcher's budget options; its own Options extend these."""

    # 'total': the budget bounds search and refit, as a user paying for it expects (and amlb does); the search
    # stops early enough for the best trial's predicted refit. 'search': the budget bounds the search only and
    # the refit follows (the 2019 protocol; the paper suite uses it).
    budget_scope: str = "total"
    # Processes the search runs in, each on its share of the run's cores and GPUs, under one budget; the first
    # also serves the oracle and refits (bench.systems.search.distributed). 1: one process, as shipped.
    search_workers: int = 1

    def __post_init__(self) -> None:
        check_budget_scope(self.budget_scope)
        check_search_workers(self.search_workers)
