"""Suites: datasets x systems x budgets x seeds, read from TOML files with every key checked."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bench.budget import Budget, BudgetError, parse_budget
from bench.options import ConfigError
from bench.precision import PRECISIONS
from bench.spec import DatasetRef, Options, Resources, RunSpec, freeze

DEFAULT_SUITE = "default"
_TOP_KEYS = {"description", "seeds", "budgets", "datasets", "systems", "timeout_factor", "timeout_slack",
             "timeout", "max_rss_mb", "max_disk_mb", "resources", "precision"}
_DATASET_KEYS = {"name", "options", "max_train", "max_test"}
_SYSTEM_KEYS = {"name", "options", "budgets", "resources"}
_RESOURCE_KEYS = {"num_cpus", "num_gpus"}


@dataclass(frozen=True)
class TimeoutRule:
    """The hard wall-clock limit of a run's process, from its budget (the one definition of it)."""

    # A wall-clock budget's limit = budget x factor + slack: the factor for systems that overrun...
    factor: float = 1.5
    # ... the slack for process start, data loading and (AutoML) the refit after the search.
    slack_s: float = 600.0
    # The limit for budgets with no time part (trial counts, 'full').
    no_time_s: float = 7200.0

    def for_budget(self, budget: Budget) -> float:
        """The hard wall-clock limit of one run under this budget."""
        return self.no_time_s if budget.seconds is None else budget.seconds * self.factor + self.slack_s


@dataclass(frozen=True)
class SystemEntry:
    """A system in a suite, with its options and the budgets it runs under."""

    name: str
    options: Options
    budgets: tuple[Budget, ...]
    resources: Resources | None = None  # None: the suite's


@dataclass(frozen=True)
class Suite:
    """A named grid of runs and the limits that apply to each."""

    name: str
    description: str
    seeds: tuple[int, ...]
    datasets: tuple[DatasetRef, ...]
    systems: tuple[SystemEntry, ...]
    timeouts: TimeoutRule = TimeoutRule()
    max_rss_mb: float | None = None
    max_disk_mb: float | None = None
    resources: Resources = Resources()
    # One arithmetic for every Keras system of the suite (bench.precision), so comparisons stay like for like.
    precision: str = "auto"

    def specs(self, out_dir: str, keep_models: bool = False) -> list[RunSpec]:
        """Every run of the suite, dataset by dataset, cheapest budgets first."""
        return [
            RunSpec(dataset=ds, system=entry.name, system_options=entry.options, budget=budget, seed=seed,
                    suite=self.name, timeout_s=self.timeouts.for_budget(budget), out_dir=out_dir,
                    keep_models=keep_models, resources=entry.resources or self.resources, precision=self.precision)
            for ds in self.datasets
            for budget in sorted({b for s in self.systems for b in s.budgets}, key=lambda b: b.sort_key)
            for entry in self.systems if budget in entry.budgets
            for seed in self.seeds
        ]


def suite_names() -> list[str]:
    """Suites shipped with the package."""
    return sorted(p.name[:-5] for p in resources.files("bench.suites").iterdir() if p.name.endswith(".toml"))


def suite_path(name_or_path: str) -> Path:
    """A shipped suite's file, or the given path to a TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml":
        if not candidate.is_file():
            raise ConfigError(f"suite file {candidate} does not exist")
        return candidate
    if name_or_path not in suite_names():
        raise ConfigError(f"unknown suite {name_or_path!r}; valid: {', '.join(suite_names())}, or a .toml path")
    return Path(str(resources.files("bench.suites") / f"{name_or_path}.toml"))


def load_suite(name_or_path: str) -> Suite:
    """Reads and validates a suite; errors name the file and the offending key."""
    path = suite_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_suite(raw, name=path.stem, where=str(path))


def parse_suite(raw: dict[str, Any], name: str, where: str) -> Suite:
    """Builds a Suite from a parsed TOML mapping."""
    _check_keys(raw, _TOP_KEYS, where)
    for key in ("seeds", "datasets", "systems"):
        if not raw.get(key):
            raise ConfigError(f"{where}: '{key}' is missing or empty")
    seeds = raw["seeds"]
    if not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"{where}: 'seeds' must be non-negative integers, got {seeds!r}")
    default_budgets = raw.get("budgets", [])
    datasets = tuple(_dataset(entry, f"{where}: datasets[{i}]") for i, entry in enumerate(raw["datasets"]))
    systems = tuple(_system(entry, default_budgets, f"{where}: systems[{i}]")
                    for i, entry in enumerate(raw["systems"]))
    default = TimeoutRule()
    try:
        slack = parse_budget(raw["timeout_slack"]).seconds if "timeout_slack" in raw else default.slack_s
        timeout = parse_budget(raw["timeout"]).seconds if "timeout" in raw else default.no_time_s
    except BudgetError as exc:
        raise ConfigError(f"{where}: timeout_slack/timeout: {exc}") from exc
    if slack is None or timeout is None:
        raise ConfigError(f"{where}: timeout_slack and timeout must be times such as '10m'")
    for key in ("max_rss_mb", "max_disk_mb"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
            raise ConfigError(f"{where}: '{key}' must be a positive number of MiB, got {value!r}")
    precision = raw.get("precision", "auto")
    if precision not in PRECISIONS:
        raise ConfigError(f"{where}: 'precision' must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return Suite(
        name=name, description=raw.get("description", ""), seeds=tuple(seeds), datasets=datasets,
        systems=systems,
        timeouts=TimeoutRule(float(raw.get("timeout_factor", default.factor)), slack, timeout),
        max_rss_mb=raw.get("max_rss_mb"), max_disk_mb=raw.get("max_disk_mb"),
        resources=_resources(raw.get("resources"), f"{where}: resources") or Resources(), precision=precision,
    )


def _resources(table: Any, where: str) -> Resources | None:
    """A `resources = {num_cpus = 2, num_gpus = 1}` table, checked; None when absent."""
    if table is None:
        return None
    _check_keys(table, _RESOURCE_KEYS, where)
    try:
        return Resources(**table)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _check_keys(table: Any, allowed: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")


def _dataset(entry: Any, where: str) -> DatasetRef:
    from bench.datasets.registry import open_dataset

    _check_keys(entry, _DATASET_KEYS, where)
    if "name" not in entry:
        raise ConfigError(f"{where}: 'name' is missing")
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: 'options' must be a table, got {options!r}")
    try:
        open_dataset(entry["name"], options)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    for key in ("max_train", "max_test"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return DatasetRef(entry["name"], freeze(options), entry.get("max_train"), entry.get("max_test"))


def _system(entry: Any, default_budgets: list[str], where: str) -> SystemEntry:
    from bench.systems import make_system

    _check_keys(entry, _SYSTEM_KEYS, where)
    if "name" not in entry:
        raise ConfigError(f"{where}: 'name' is missing")
    try:
        options = entry.get("options", {})
        make_system(entry["name"], options)
        budgets = tuple(parse_budget(b) for b in entry.get("budgets", default_budgets))
    except (ConfigError, BudgetError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if not budgets:
        raise ConfigError(f"{where}: no budgets: give 'budgets' here or at the top of the suite")
    resources = _resources(entry.get("resources"), f"{where}: resources")
    return SystemEntry(entry["name"], freeze(options), budgets, resources)
