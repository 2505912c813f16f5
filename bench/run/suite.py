"""Suites: datasets x systems x budgets x seeds, read from TOML files with every key checked."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bench.core.backend import BACKENDS
from bench.core.budget import Budget, BudgetError, parse_budget
from bench.core.options import ConfigError
from bench.core.precision import PRECISIONS
from bench.run.spec import DatasetRef, Options, Resources, RunSpec, freeze, options_label

DEFAULT_SUITE = "default"
MAX_SEED = 2**32 - 1  # numpy's and Keras' seeding take no more
_TOP_KEYS = {"description", "seeds", "budgets", "datasets", "systems", "timeout_factor", "timeout_slack",
             "timeout", "max_rss_mb", "max_disk_mb", "resources", "precision", "backend"}
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
    # One arithmetic for every Keras system of the suite (bench.core.precision), so comparisons stay like for like.
    precision: str = "auto"
    # One Keras backend for every Keras system of the suite (bench.core.backend; '' = KERAS_BACKEND, else tensorflow).
    backend: str = ""

    def specs(self, out_dir: str, keep_models: bool = False) -> list[RunSpec]:
        """Every run of the suite, dataset by dataset, cheapest budgets first."""
        return [
            RunSpec(dataset=ds, system=entry.name, system_options=entry.options, budget=budget, seed=seed,
                    suite=self.name, timeout_s=self.timeouts.for_budget(budget), out_dir=out_dir,
                    keep_models=keep_models, resources=entry.resources or self.resources, precision=self.precision,
                    backend=self.backend)
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
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text, so not a TOML suite ({exc.reason} at byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_suite(raw, name=path.stem, where=str(path))


def parse_suite(raw: dict[str, Any], name: str, where: str) -> Suite:
    """Builds a Suite from a parsed TOML mapping; every key's type and range is checked."""
    _check_keys(raw, _TOP_KEYS, where)
    for key in ("seeds", "datasets", "systems"):
        if key not in raw or raw[key] == []:
            raise ConfigError(f"{where}: '{key}' is missing or empty")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: 'description' must be a string, got {description!r}")
    seeds = _seeds(raw["seeds"], where)
    default_budgets = _budget_list(raw.get("budgets", []), f"{where}: 'budgets'")
    datasets = tuple(_dataset(entry, f"{where}: datasets[{i}]")
                     for i, entry in enumerate(_tables(raw["datasets"], f"{where}: 'datasets'")))
    _no_duplicates(datasets, lambda d: f"{d.name} {d.label}".strip(), f"{where}: 'datasets'")
    systems = tuple(_system(entry, default_budgets, f"{where}: systems[{i}]")
                    for i, entry in enumerate(_tables(raw["systems"], f"{where}: 'systems'")))
    _no_duplicates(systems, lambda s: f"{s.name} {options_label(s.options)}".strip(), f"{where}: 'systems'",
                   key=lambda s: (s.name, s.options))
    default = TimeoutRule()
    factor = raw.get("timeout_factor", default.factor)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not (0 < factor < math.inf):
        raise ConfigError(f"{where}: 'timeout_factor' must be a positive number (the budget's multiple), "
                          f"got {factor!r}")
    slack = _seconds(raw, "timeout_slack", default.slack_s, where)
    timeout = _seconds(raw, "timeout", default.no_time_s, where)
    limits = {key: _mib(raw.get(key), f"{where}: '{key}'") for key in ("max_rss_mb", "max_disk_mb")}
    precision = raw.get("precision", "auto")
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ConfigError(f"{where}: 'precision' must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    keras_backend = raw.get("backend", "")
    if not isinstance(keras_backend, str) or (keras_backend and keras_backend not in BACKENDS):
        raise ConfigError(f"{where}: 'backend' must be one of {', '.join(BACKENDS)}, got {keras_backend!r}")
    return Suite(
        name=name, description=description, seeds=seeds, datasets=datasets, systems=systems,
        timeouts=TimeoutRule(float(factor), slack, timeout), **limits,
        resources=_resources(raw.get("resources"), f"{where}: resources") or Resources(), precision=precision,
        backend=keras_backend,
    )


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    """Distinct integers that numpy and Keras accept as seeds; bool is an int to Python, not a seed."""
    if not (isinstance(value, list) and value
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in value)
            and len(set(value)) == len(value)):
        raise ConfigError(f"{where}: 'seeds' must be a list of distinct integers from 0 to {MAX_SEED}, "
                          f"got {value!r}")
    return tuple(value)


def _budget_list(value: Any, where: str) -> tuple[Budget, ...]:
    """A list of budget strings, parsed, with none given twice (by the same name or an equal one)."""
    if not isinstance(value, list) or not all(isinstance(b, str) for b in value):
        raise ConfigError(f"{where} must be a list of budget strings such as [\"30s\", \"t10\"], got {value!r}")
    try:
        budgets = tuple(parse_budget(b) for b in value)
    except BudgetError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    _no_duplicates(budgets, lambda b: b.name, where)
    return budgets


def _tables(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ConfigError(f"{where} must be a list of tables ([[...]] sections), got {value!r}")
    return value


def _no_duplicates(items: tuple[Any, ...], label: Callable[[Any], str], where: str,
                   key: Callable[[Any], Any] = lambda x: x) -> None:
    """Twice the same entry would run (and record) the same runs twice over."""
    seen: set[Any] = set()
    for item in items:
        if key(item) in seen:
            raise ConfigError(f"{where}: {label(item)} is given twice")
        seen.add(key(item))


def _seconds(raw: dict[str, Any], key: str, default: float, where: str) -> float:
    """A time such as '10m' of at least one second (a shorter limit would kill every run at its start)."""
    if key not in raw:
        return default
    value = raw[key]
    try:
        budget = parse_budget(value) if isinstance(value, str) else None
    except BudgetError:
        budget = None
    if budget is None or budget.seconds is None or budget.trials is not None or budget.seconds < 1:
        raise ConfigError(f"{where}: '{key}' must be a time of at least 1s such as \"10m\", got {value!r}")
    return budget.seconds


def _mib(value: Any, where: str) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not (0 < value < math.inf)):
        raise ConfigError(f"{where} must be a positive number of MiB, got {value!r}")
    return value


def _resources(table: Any, where: str) -> Resources | None:
    """A `resources = {num_cpus = 2, num_gpus = 1}` table, checked; None when absent."""
    if table is None:
        return None
    _check_keys(table, _RESOURCE_KEYS, where)
    for key, value in table.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: {key} must be a finite non-negative number, got {value!r}")
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


def _options(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """An entry's options: a table of strings, booleans and finite numbers, the values a run records and
    hands its worker as JSON (dates, lists, tables and NaN would not come back the same)."""
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: 'options' must be a table, got {options!r}")
    for key, value in options.items():
        scalar = isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value))
        if not scalar:
            raise ConfigError(f"{where}: options.{key} must be a string, boolean or finite number, got {value!r}")
    return options


def _name(entry: dict[str, Any], where: str) -> str:
    if "name" not in entry:
        raise ConfigError(f"{where}: 'name' is missing")
    if not isinstance(entry["name"], str) or not entry["name"]:
        raise ConfigError(f"{where}: 'name' must be a non-empty string, got {entry['name']!r}")
    return entry["name"]


def _dataset(entry: Any, where: str) -> DatasetRef:
    from bench.datasets.registry import open_dataset

    _check_keys(entry, _DATASET_KEYS, where)
    name = _name(entry, where)
    options = _options(entry, where)
    try:
        open_dataset(name, options)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    for key in ("max_train", "max_test"):
        value = entry.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return DatasetRef(name, freeze(options), entry.get("max_train"), entry.get("max_test"))


def _system(entry: Any, default_budgets: tuple[Budget, ...], where: str) -> SystemEntry:
    from bench.systems import make_system

    _check_keys(entry, _SYSTEM_KEYS, where)
    name = _name(entry, where)
    options = _options(entry, where)
    try:
        make_system(name, options)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    budgets = _budget_list(entry["budgets"], f"{where}: 'budgets'") if "budgets" in entry else default_budgets
    if not budgets:
        raise ConfigError(f"{where}: no budgets: give 'budgets' here or at the top of the suite")
    resources = _resources(entry.get("resources"), f"{where}: resources")
    return SystemEntry(name, freeze(options), budgets, resources)
