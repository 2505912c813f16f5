"""The report's tables: summary per system and budget, AutoML against the baseline, cost, unfinished runs.

Each table is one column spec (a TableSpec of Columns): the CSV frame holds the numbers, the displayed frame
(markdown, HTML) their text, and both come from the same spec, so they cannot drift apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pandas as pd

from bench.report import formatting as fmt
from bench.report.runs import CLASS_ORDER, Group, budget_key, system_classes
from bench.report.stats import MIN_SEEDS_FOR_INTERVAL, Spread, mean_or_none, spread

SECONDS_PER_HOUR = 3600.0
# No price is assumed: a machine's hourly price differs by provider, region and year, and a price the reader did not
# choose would turn a compute table into a cost claim nobody sourced. The cost columns appear only with a price the
# user gives (`bench report --price-per-hour`, `--gpu-price-per-hour`, `--managed-automl-price-per-hour`).
ERROR_CHARS = 160  # errors are cut to this length in the markdown tables (CSV keeps them whole)
NOT_OK = ("failed", "timeout", "skipped")


T = TypeVar("T")


@dataclass(frozen=True)
class Column(Generic[T]):
    """One column of a table: `value` gives a row's number (or text) for the CSV, `text` formats that value for
    the reader. A CSV-only column has no header; a display-only one has no csv_name."""

    csv_name: str
    header: str
    value: Callable[[T], Any]
    text: Callable[[Any], str] = str
    optional: bool = False  # displayed only when some row has a value (CSV columns are always written)


@dataclass(frozen=True)
class TableSpec(Generic[T]):
    """A table's columns in order; both frames keep that order."""

    columns: tuple[Column[T], ...]

    @property
    def csv_names(self) -> list[str]:
        """The CSV's columns."""
        return [c.csv_name for c in self.columns if c.csv_name]

    @property
    def headers(self) -> list[str]:
        """The displayed table's columns, optional ones included."""
        return [c.header for c in self.columns if c.header]

    def csv(self, items: Iterable[T]) -> pd.DataFrame:
        """The table as numbers (CSV): one row per item."""
        cols = [c for c in self.columns if c.csv_name]
        return pd.DataFrame([{c.csv_name: c.value(i) for c in cols} for i in items], columns=self.csv_names)

    def display(self, items: Iterable[T]) -> pd.DataFrame:
        """The table as a reader sees it (markdown, HTML); optional columns without any value are left out."""
        items = list(items)
        cols = [c for c in self.columns if c.header]
        values = {c.header: [c.value(i) for i in items] for c in cols}
        shown = [c for c in cols if not c.optional or not all(fmt.absent(v) for v in values[c.header])]
        return pd.DataFrame(
            [{c.header: c.text(values[c.header][n]) for c in shown} for n in range(len(items))],
            columns=[c.header for c in shown],
        )


@dataclass(frozen=True)
class ConfigSummary:
    """One system at one budget on one group of data: its runs summarised over seeds."""

    group: Group
    system: str
    system_class: str
    budget: str
    runs: int
    statuses: tuple[tuple[str, int], ...]  # (status, count) of the runs that did not end ok
    accuracy: Spread
    balanced_accuracy: float | None
    macro_f1: float | None
    fit_s: float | None  # mean per ok run
    cpu_s: float | None
    gpu_s: float | None  # GPUs held x wall seconds; None: no run measured GPU time
    gpu_busy_s: float | None  # time-integral of GPU utilisation; None: no run measured it
    params: float | None
    trials: float | None
    hardware: str
    on_gpu: bool  # some ok run measured GPU time or named a GPU device
    # What the budget bounded ('total': all of fit; 'search': the search, not the refit); '' if not recorded.
    budget_scope: str = ""
    # (seed, accuracy) of each ok run, so a comparison with the same seeds can be paired.
    seed_accuracy: tuple[tuple[int, float], ...] = ()
    # Mean energy per ok run over fit and predict (NVML; RAPL, the whole CPU package's); None: none measured.
    gpu_energy_j: float | None = None
    cpu_energy_j: float | None = None
    # Mean seconds of the run's declared resources held per ok run: fit_s for a run of one process, held_s for a
    # search spread over several (fit_s x the bundles it reserved); the compute every ratio compares.
    held_s: float | None = None
    search_workers: int = 1  # the most processes a run's search was spread over

    @property
    def compute_s(self) -> float | None:
        """What a comparison counts as this configuration's compute: held_s, else fit_s."""
        return self.held_s if self.held_s is not None else self.fit_s

    @property
    def ok(self) -> int:
        """Runs that ended ok."""
        return self.accuracy.n

    @property
    def not_ok_text(self) -> str:
        """'1 failed, 2 timeout', or '' when every run ended ok."""
        return ", ".join(f"{n} {status}" for status, n in self.statuses)

    @property
    def budget_text(self) -> str:
        """'3m', or '3m (search only)' where the budget did not bound the refit."""
        return f"{self.budget} (search only)" if self.budget_scope == "search" else self.budget


def summarize(group: Group, runs: pd.DataFrame, baseline: str) -> list[ConfigSummary]:
    """One summary per (system, budget): floor first, then baseline, then AutoML; budgets ascending."""
    summaries = []
    classes = system_classes(runs, baseline)
    for (system, budget), part in runs.groupby(["system", "budget"], sort=False):
        ok = part[part["status"] == "ok"]
        counts = Counter(s for s in part["status"] if s != "ok")
        gpu = ok["gpu_s"].dropna()
        busy = ok["gpu_busy_s"].dropna()
        summaries.append(
            ConfigSummary(
                group=group,
                system=system,
                system_class=classes[system],
                budget=budget,
                runs=len(part),
                statuses=tuple((s, counts[s]) for s in NOT_OK if counts[s]),
                # An ok run without an accuracy would be a harness bug; it counts as no seed here.
                accuracy=spread(ok["accuracy"]),
                balanced_accuracy=mean_or_none(ok["balanced_accuracy"]),
                macro_f1=mean_or_none(ok["macro_f1"]),
                fit_s=mean_or_none(ok["fit_s"]),
                cpu_s=mean_or_none(ok["cpu_s"]),
                gpu_s=mean_or_none(gpu) if len(gpu) else None,
                gpu_busy_s=mean_or_none(busy) if len(busy) else None,
                params=mean_or_none(ok["params"]),
                trials=mean_or_none(ok["trials"]),
                hardware="; ".join(sorted({h for h in part["hardware"] if h})),
                on_gpu=bool(len(gpu)) or any(d not in ("", "cpu") for d in ok["device"]),
                budget_scope="/".join(sorted({b for b in part["budget_scope"] if b})),
                seed_accuracy=tuple(
                    (int(seed), float(acc)) for seed, acc in zip(ok["seed"], ok["accuracy"], strict=True)
                    if pd.notna(acc)
                ),
                gpu_energy_j=_measured_mean(ok, "gpu_energy_j"),
                cpu_energy_j=_measured_mean(ok, "cpu_energy_j"),
                held_s=_held_mean(ok),
                search_workers=_most_workers(ok),
            )
        )
    return sorted(summaries, key=lambda s: (CLASS_ORDER[s.system_class], s.system, budget_key(s.budget)))


def _measured_mean(ok: pd.DataFrame, column: str) -> float | None:
    """The mean over the runs that measured it; None where none did (tables made before the column included)."""
    if column not in ok:
        return None
    values = ok[column].dropna()
    return mean_or_none(values) if len(values) else None


def _held_mean(ok: pd.DataFrame) -> float | None:
    """Mean seconds of resources held per ok run (held_s where recorded, else fit_s); None where no run was
    spread over several processes, so every table made without such runs reads as before."""
    if "held_s" not in ok or not ok["held_s"].notna().any():
        return None
    return mean_or_none(ok["held_s"].fillna(ok["fit_s"]))


def _most_workers(ok: pd.DataFrame) -> int:
    if "search_workers" not in ok:
        return 1
    most = ok["search_workers"].max()
    return int(most) if pd.notna(most) else 1


def reference(summaries: list[ConfigSummary], klass: str) -> ConfigSummary | None:
    """A class's reference: its best mean accuracy configuration (ties: less fit time); None if none ok."""
    candidates = [s for s in summaries if s.system_class == klass and s.accuracy.mean is not None]
    if not candidates:
        return None
    return max(candidates, key=lambda s: (s.accuracy.mean, -(s.fit_s or 0.0)))


def _h(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / SECONDS_PER_HOUR


def _budget_scope_text(scope: str) -> str:
    return {"total": "search and refit", "search": "search only"}.get(scope, scope or fmt.MISSING)


def spread_text(s: Spread) -> str:
    """'± 0.4' (n == 2), '95% CI 95.2–97.0' (n >= 3), or the missing mark."""
    if s.kind == "std":
        return f"± {100 * s.std:.1f} (std)"
    if s.kind == "ci":
        return f"95% CI {100 * s.low:.1f}–{100 * s.high:.1f}"
    return fmt.MISSING


def group_columns(group: Callable[[T], Group]) -> tuple[Column[T], ...]:
    """The CSV's leading columns naming the data a row is about."""
    return (
        Column("dataset", "", lambda i: group(i).dataset),
        Column("split", "", lambda i: group(i).split),
        Column("dataset_options", "", lambda i: group(i).dataset_options),
    )


def _status_count(status: str) -> Column[ConfigSummary]:
    return Column(status, "", lambda s: dict(s.statuses).get(status, 0))


def _ci(bound: str) -> Callable[[ConfigSummary], float | None]:
    return lambda s: getattr(s.accuracy, bound) if s.accuracy.kind == "ci" else None


# The summary: one row per system and budget.
SUMMARY: TableSpec[ConfigSummary] = TableSpec(
    (
        *group_columns(lambda s: s.group),
        Column("system", "System", lambda s: s.system),
        Column("system_class", "", lambda s: s.system_class),
        Column("budget", "Budget", lambda s: s.budget),
        Column("budget_scope", "", lambda s: s.budget_scope),
        Column("runs", "", lambda s: s.runs),
        Column("ok", "", lambda s: s.ok),
        Column("", "Seeds ok", lambda s: f"{s.ok}/{s.runs}"),
        *(_status_count(status) for status in NOT_OK),
        Column("", "Not ok", lambda s: s.not_ok_text or fmt.MISSING),
        Column("accuracy_mean", "Accuracy", lambda s: s.accuracy.mean, fmt.pct),
        Column("accuracy_std", "", lambda s: s.accuracy.std),
        Column("", "Spread", lambda s: s.accuracy, spread_text),
        Column("accuracy_ci95_low", "", _ci("low")),
        Column("accuracy_ci95_high", "", _ci("high")),
        Column("balanced_accuracy_mean", "Bal. acc.", lambda s: s.balanced_accuracy, fmt.pct),
        Column("macro_f1_mean", "Macro F1", lambda s: s.macro_f1, fmt.pct),
        Column("fit_s", "Fit", lambda s: s.fit_s, fmt.duration),
        Column("cpu_s", "CPU", lambda s: s.cpu_s, fmt.duration),
        Column("gpu_s", "GPU", lambda s: s.gpu_s, fmt.duration),
        Column("gpu_busy_s", "GPU busy", lambda s: s.gpu_busy_s, fmt.duration, optional=True),
        Column("params", "Params", lambda s: s.params, fmt.count),
        Column("trials", "Trials", lambda s: s.trials, fmt.count),
        Column("hardware", "", lambda s: s.hardware),
    )
)


@dataclass(frozen=True)
class Versus:
    """One AutoML configuration against the baseline's reference on the same data."""

    automl: ConfigSummary
    baseline: ConfigSummary | None

    @property
    def difference(self) -> float | None:
        """AutoML mean accuracy minus the baseline's (a fraction; x100 for points)."""
        if self.baseline is None or self.automl.accuracy.mean is None or self.baseline.accuracy.mean is None:
            return None
        return self.automl.accuracy.mean - self.baseline.accuracy.mean

    @property
    def compute_ratio(self) -> float | None:
        """AutoML mean compute over the baseline's: fit time, or for a search spread over several processes the
        resources it held (ConfigSummary.compute_s)."""
        if self.baseline is None or self.automl.compute_s is None or not self.baseline.compute_s:
            return None
        return self.automl.compute_s / self.baseline.compute_s

    @property
    def paired(self) -> Spread | None:
        """The per-seed differences (AutoML minus baseline, same seed and data split) when at least
        MIN_SEEDS_FOR_INTERVAL seeds ran both; None otherwise. A paired interval is tighter than two
        independent ones: what a seed changes for both (e.g. the validation split) cancels."""
        if self.baseline is None:
            return None
        base = dict(self.baseline.seed_accuracy)
        diffs = [acc - base[seed] for seed, acc in self.automl.seed_accuracy if seed in base]
        return spread(diffs) if len(diffs) >= MIN_SEEDS_FOR_INTERVAL else None

    @property
    def interval(self) -> str:
        """Which interval decides: 'paired' (95% t-interval of the per-seed differences) or 'unpaired'
        (the two configurations' own intervals must not overlap)."""
        return "paired" if self.paired is not None else "unpaired"

    @property
    def resolution(self) -> str:
        """'resolved', 'overlap', 'too few seeds' or 'no comparison'."""
        if self.difference is None:
            return "no comparison"
        paired = self.paired
        if paired is not None:
            return "overlap" if paired.low <= 0.0 <= paired.high else "resolved"
        a, b = self.automl.accuracy, self.baseline.accuracy
        if a.n < 2 or b.n < 2:
            return "too few seeds"
        return "overlap" if a.overlaps(b) else "resolved"


def versus(summaries: list[ConfigSummary]) -> list[Versus]:
    """Every AutoML configuration against the baseline reference of the same group."""
    base = reference(summaries, "baseline")
    return [Versus(s, base) for s in summaries if s.system_class == "automl"]


RESOLVED_TEXT = {"resolved": "yes", "overlap": "no (interval includes 0 or intervals overlap)",
                 "too few seeds": "no (< 2 seeds)"}


def _paired_text(v: Versus) -> str:
    p = v.paired
    if p is None:
        return "unpaired" if v.resolution in ("resolved", "overlap") else fmt.MISSING
    return f"paired, {p.n} seeds: {100 * p.low:+.1f} to {100 * p.high:+.1f}"


def _resolved_text(resolution: str) -> str:
    return RESOLVED_TEXT.get(resolution, fmt.MISSING)


def _base(value: Callable[[ConfigSummary], Any]) -> Callable[[Versus], Any]:
    """A value of the baseline's reference, None where there is none."""
    return lambda v: value(v.baseline) if v.baseline else None


# AutoML against the baseline: one row per AutoML configuration.
VERSUS: TableSpec[Versus] = TableSpec(
    (
        *group_columns(lambda v: v.automl.group),
        Column("system", "AutoML", lambda v: v.automl.system),
        Column("budget", "Budget", lambda v: v.automl.budget),
        Column("budget_scope", "Budget covers", lambda v: v.automl.budget_scope, _budget_scope_text),
        Column("ok", "Seeds ok", lambda v: v.automl.ok),
        Column("accuracy_mean", "Accuracy", lambda v: v.automl.accuracy.mean, fmt.pct),
        Column("fit_s", "Fit", lambda v: v.automl.fit_s, fmt.duration),
        Column("baseline", "", _base(lambda b: b.system)),
        Column("baseline_budget", "", _base(lambda b: b.budget)),
        Column("", "Baseline (budget)", _base(lambda b: f"{b.system} ({b.budget})"), lambda t: t or fmt.MISSING),
        Column("baseline_ok", "", _base(lambda b: b.ok)),
        Column("baseline_accuracy_mean", "Baseline accuracy", _base(lambda b: b.accuracy.mean), fmt.pct),
        Column("baseline_fit_s", "Baseline fit", _base(lambda b: b.fit_s), fmt.duration),
        Column(
            "difference_points",
            "Difference (points)",
            lambda v: None if v.difference is None else 100 * v.difference,
            fmt.signed,
        ),
        Column("compute_ratio", "Compute ratio", lambda v: v.compute_ratio, fmt.ratio),
        Column("interval", "", lambda v: v.interval),
        Column("paired_diff_ci95_low", "", lambda v: None if v.paired is None else 100 * v.paired.low),
        Column("paired_diff_ci95_high", "", lambda v: None if v.paired is None else 100 * v.paired.high),
        Column("", "Interval (points)", lambda v: v, _paired_text),
        Column("resolution", "Difference resolved?", lambda v: v.resolution, _resolved_text),
    )
)


@dataclass(frozen=True)
class Prices:
    """US dollars per fit hour the user gave: a CPU machine, a GPU machine, managed cloud AutoML; None: not given."""

    cpu: float | None = None
    gpu: float | None = None
    managed_automl: float | None = None

    @property
    def given(self) -> bool:
        """Whether any price was given."""
        return any(p is not None for p in (self.cpu, self.gpu, self.managed_automl))


@dataclass(frozen=True)
class CostRow:
    """What one run of a configuration used on average, and what it costs at the prices given."""

    group: Group
    system: str
    budget: str
    fit_s: float | None
    cpu_s: float | None
    gpu_s: float | None
    machine: str  # 'CPU' or 'GPU': the machine a run of it needs
    price_per_hour: float | None  # that machine's price, where one was given
    gpu_energy_j: float | None = None
    cpu_energy_j: float | None = None
    # Managed cloud AutoML's price per hour, given for the AutoML rows only: what their fit hours would cost there.
    managed_price_per_hour: float | None = None

    @property
    def cost_usd(self) -> float | None:
        """Fit hours x the machine's price; None without a price."""
        return None if self.fit_s is None or self.price_per_hour is None else _h(self.fit_s) * self.price_per_hour

    @property
    def managed_usd(self) -> float | None:
        """Fit hours x the managed AutoML price; None without one."""
        if self.fit_s is None or self.managed_price_per_hour is None:
            return None
        return _h(self.fit_s) * self.managed_price_per_hour


def cost_rows(summaries: list[ConfigSummary], prices: Prices) -> list[CostRow]:
    """One row per configuration with an ok run: its mean compute and energy per run, and its cost at the prices
    given (an AutoML configuration's also at the managed AutoML price, in its own column)."""
    rows = []
    for s in summaries:
        if s.ok == 0:
            continue
        machine, rate = ("GPU", prices.gpu) if s.on_gpu else ("CPU", prices.cpu)
        managed = prices.managed_automl if s.system_class == "automl" else None
        rows.append(CostRow(s.group, s.system, s.budget, s.fit_s, s.cpu_s, s.gpu_s, machine, rate,
                            s.gpu_energy_j, s.cpu_energy_j, managed))
    return rows


def _per_hour(price: float | None) -> str:
    return fmt.MISSING if fmt.absent(price) else f"{fmt.price(price)}/h"


COST: TableSpec[CostRow] = TableSpec(
    (
        *group_columns(lambda r: r.group),
        Column("system", "System", lambda r: r.system),
        Column("budget", "Budget", lambda r: r.budget),
        Column("fit_s", "Fit", lambda r: r.fit_s, fmt.duration),
        Column("cpu_s", "CPU", lambda r: r.cpu_s, fmt.duration),
        Column("gpu_s", "GPU", lambda r: r.gpu_s, fmt.duration, optional=True),
        Column("machine", "Machine", lambda r: r.machine),
        # Shown where a price was given.
        Column("price_per_hour", "Price", lambda r: r.price_per_hour, _per_hour, optional=True),
        Column("cost_usd", "Cost per run", lambda r: r.cost_usd, fmt.dollars, optional=True),
        Column("managed_price_per_hour", "Managed AutoML price", lambda r: r.managed_price_per_hour, _per_hour,
               optional=True),
        Column("managed_usd", "Managed AutoML cost per run", lambda r: r.managed_usd, fmt.dollars, optional=True),
        # Shown where some run could read the counters (NVML's for GPUs, RAPL's for CPU packages).
        Column("gpu_energy_j", "GPU energy", lambda r: r.gpu_energy_j, fmt.energy, optional=True),
        Column("cpu_energy_j", "CPU energy", lambda r: r.cpu_energy_j, fmt.energy, optional=True),
    )
)


def failures(runs: pd.DataFrame) -> list[Any]:
    """Runs that did not end ok, as rows of the runs table (attributes named as its columns)."""
    return list(runs[runs["status"] != "ok"].itertuples(index=False))


def short_error(text: str) -> str:
    """The error on one line, cut to ERROR_CHARS; the missing mark for none."""
    line = " ".join(str(text).split())
    return (line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…") or fmt.MISSING


# Runs that did not end ok: which, how, and the error (the CSV keeps it whole).
FAILURES: TableSpec[Any] = TableSpec(
    (
        Column("run_id", "", lambda r: r.run_id),
        *group_columns(lambda r: Group(r.dataset, r.split, r.dataset_options)),
        Column("system", "System", lambda r: r.system),
        Column("budget", "Budget", lambda r: r.budget),
        Column("seed", "Seed", lambda r: r.seed, lambda seed: str(int(seed))),
        Column("status", "Status", lambda r: r.status),
        Column("error", "Error", lambda r: r.error, short_error),
    )
)
