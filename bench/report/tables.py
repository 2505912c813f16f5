"""The report's tables: summary per system and budget, AutoML against the baseline, cost, unfinished runs.

Each table is one column spec (a TableSpec of Columns): the CSV frame holds the numbers, the displayed frame
(markdown, HTML) their text, and both come from the same spec, so they cannot drift apart.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from bench.core import rundir
from bench.report import compute as cmp
from bench.report import equivalence as eqv
from bench.report import formatting as fmt
from bench.report.runs import CLASS_ORDER, Group, budget_key, system_classes
from bench.report.stats import Spread, mean_or_none, spread

SECONDS_PER_HOUR = 3600.0
# No price is assumed: a machine's hourly price differs by provider, region and year, and a price the reader did not
# choose would turn a compute table into a cost claim nobody sourced. The cost columns appear only with a price the
# user gives (`bench report --price-per-hour`, `--gpu-price-per-hour`, `--managed-automl-price-per-hour`).
TABLE_ERROR_CHARS = 160  # errors are cut to this length in the markdown tables (CSV keeps them whole)
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
    # Each ok run's correctness per test image (rows in seed_accuracy's order), from its predictions.csv; None
    # where a run kept none or the runs' test sets differ. test_key names the test set and its order.
    correct: np.ndarray | None = field(default=None, compare=False, repr=False)
    test_key: str = ""

    @property
    def sample(self) -> eqv.Sample:
        """The configuration's results as the comparisons take them."""
        return eqv.Sample(
            tuple(seed for seed, _ in self.seed_accuracy),
            np.array([acc for _, acc in self.seed_accuracy], dtype=float),
            self.correct,
            self.test_key,
        )
    # Mean training FLOPs and achieved FLOP/s per ok run that counted them (None: none did, runs made before the
    # counter); partial where some run's count left layers out (a lower bound).
    train_flops: float | None = None
    flops_per_s: float | None = None
    flops_partial: bool = False
    flops_missing: int = 0  # ok runs without a FLOP count
    # False where the group's ok runs came from several kinds of hardware: its seconds do not compare, and every
    # ratio is of training FLOPs (bench/report/compute.py).
    seconds_comparable: bool = True

    @property
    def flops(self) -> cmp.Flops:
        """Mean training FLOPs per ok run, a figure only where every ok run counted them."""
        value = self.train_flops if not self.flops_missing else None
        return cmp.Flops(value, self.flops_partial, self.flops_missing, self.ok)

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


def test_results(out_dir: Path | None, run_ids: Iterable[str]) -> tuple[np.ndarray | None, str]:
    """The runs' correctness per test image (a row per run, from predictions.csv) and a key naming the test
    set and its order; (None, '') where a run kept no predictions or the runs' test sets differ."""
    if out_dir is None:
        return None, ""
    rows, keys = [], set()
    for run_id in run_ids:
        path = rundir.run_dir(out_dir, run_id) / rundir.PREDICTIONS
        try:
            frame = pd.read_csv(path, usecols=["predictions", "truth"], dtype=str, keep_default_na=False)
        except (OSError, ValueError):  # missing, or not amlb's layout
            return None, ""
        rows.append((frame["predictions"] == frame["truth"]).to_numpy(dtype=float))
        keys.add(hashlib.sha256("\n".join(frame["truth"]).encode()).hexdigest())
    if not rows or len(keys) != 1:
        return None, ""
    return np.vstack(rows), keys.pop()


def summarize(group: Group, runs: pd.DataFrame, baseline: str, out_dir: Path | None = None) -> list[ConfigSummary]:
    """One summary per (system, budget): floor first, then baseline, then AutoML; budgets ascending. With
    out_dir, each configuration carries its runs' correctness per test image where they all kept predictions."""
    summaries = []
    classes = system_classes(runs, baseline)
    one_kind = len(cmp.hardware_kinds(runs)) < 2
    for (system, budget), part in runs.groupby(["system", "budget"], sort=False):
        ok = part[part["status"] == "ok"]
        scored = ok[ok["accuracy"].notna()]
        correct, test_key = test_results(out_dir, scored["run_id"])
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
                    (int(seed), float(acc)) for seed, acc in zip(scored["seed"], scored["accuracy"], strict=True)
                ),
                gpu_energy_j=_measured_mean(ok, "gpu_energy_j"),
                cpu_energy_j=_measured_mean(ok, "cpu_energy_j"),
                held_s=_held_mean(ok),
                search_workers=_most_workers(ok),
                correct=correct,
                test_key=test_key,
                train_flops=_measured_mean(ok, "train_flops"),
                flops_per_s=_measured_mean(ok, "flops_per_s"),
                flops_partial=_flops_partial(ok),
                flops_missing=int(ok["train_flops"].isna().sum()) if "train_flops" in ok else len(ok),
                seconds_comparable=one_kind,
            )
        )
    return sorted(summaries, key=lambda s: (CLASS_ORDER[s.system_class], s.system, budget_key(s.budget)))


def _measured_mean(ok: pd.DataFrame, column: str) -> float | None:
    """The mean over the runs that measured it; None where none did (tables made before the column included)."""
    if column not in ok:
        return None
    values = ok[column].dropna()
    return mean_or_none(values) if len(values) else None


def _flops_partial(ok: pd.DataFrame) -> bool:
    """Whether a run that counted its FLOPs left layers out (its figure, and so the mean, is a lower bound)."""
    counted = ok.loc[ok["train_flops"].notna(), "flops_uncounted"]
    return bool((counted.fillna("").astype(str) != "").any())


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


@dataclass(frozen=True)
class Plateau:
    """Where the baseline's ladder levels off: its reference configuration and how it was found.

    The anchor is the budget with the highest mean accuracy; the reference is the smallest budget equivalent to
    it (90% interval of the difference inside the tolerance, seeds and test images paired), so a stall in the
    middle of a ladder that climbs again does not pass for its plateau."""

    reference: ConfigSummary
    anchor: ConfigSummary
    state: str  # 'plateau' (a budget past it is equivalent), 'top' (the top of the ladder: still climbing),
    # 'peak' (the budgets past it fell short of it) or 'one budget'
    tolerance: float

    @property
    def text(self) -> str:
        """The reference and its rule, as a reader says it."""
        r = self.reference
        name = f"{r.system} at {r.budget}"
        tol = f"{100 * self.tolerance:g} points"
        if self.state == "one budget":
            return f"The baseline's reference is {name}, the one budget it ran: whether more compute would make it " \
                   "stronger was not measured."
        if self.state == "top":
            return (f"The baseline's reference is {name}, the top of its ladder: no smaller budget is equivalent to "
                    f"it (within {tol}), so the baseline may still be climbing, and these figures are against a "
                    "baseline that more compute could make stronger.")
        if self.state == "peak":
            return (f"The baseline's reference is {name}, its most accurate budget: the budgets past it fell short "
                    "of it, and no smaller one is equivalent to it.")
        return (f"The baseline's reference is {name}, where its ladder levels off: the smallest budget equivalent "
                f"(90% interval within {tol}) to {self.anchor.budget}, its most accurate.")


def plateau(summaries: list[ConfigSummary], tolerance: float = eqv.DEFAULT_TOLERANCE) -> Plateau | None:
    """The baseline's plateau (see Plateau); None where it has no ok run."""
    ladder = [s for s in summaries if s.system_class == "baseline" and s.accuracy.mean is not None]
    if not ladder:
        return None
    anchor = max(ladder, key=lambda s: (s.accuracy.mean, -(s.compute_s or 0.0)))
    reference = next(s for s in ladder
                     if s is anchor or eqv.difference(s.sample, anchor.sample).verdict(tolerance) == eqv.EQUIVALENT)
    past = ladder[ladder.index(reference) + 1:]
    if len(ladder) == 1:
        state = "one budget"
    elif not past:
        state = "top"
    elif any(p is anchor or eqv.difference(p.sample, anchor.sample).verdict(tolerance) == eqv.EQUIVALENT
             for p in past):
        state = "plateau"
    else:
        state = "peak"
    return Plateau(reference, anchor, state, tolerance)


def reference(summaries: list[ConfigSummary], klass: str,
              tolerance: float = eqv.DEFAULT_TOLERANCE) -> ConfigSummary | None:
    """A class's reference: the baseline's plateau (see Plateau); for any other class its best mean accuracy
    configuration (ties: less fit time). None if the class has no ok run."""
    if klass == "baseline":
        found = plateau(summaries, tolerance)
        return None if found is None else found.reference
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

    @functools.cached_property
    def measured(self) -> eqv.Difference | None:
        """AutoML accuracy minus the baseline's with its 90% interval, paired by seed and test image where they
        pair (bench/report/equivalence.py); None without a baseline."""
        if self.baseline is None or self.automl.accuracy.mean is None or self.baseline.accuracy.mean is None:
            return None
        return eqv.difference(self.automl.sample, self.baseline.sample)

    @property
    def difference(self) -> float | None:
        """AutoML accuracy minus the baseline's (a fraction; x100 for points), over the seeds the interval uses."""
        return None if self.measured is None else self.measured.point

    @property
    def measure(self) -> str:
        """What the ratio compares: 'time' on one kind of hardware, 'flops' across several."""
        return cmp.TIME if self.automl.seconds_comparable else cmp.FLOPS

    @property
    def time_ratio(self) -> float | None:
        """AutoML mean compute over the baseline's in seconds: fit time, or for a search spread over several
        processes the resources it held (ConfigSummary.compute_s); None across kinds of hardware."""
        if self.baseline is None or self.automl.compute_s is None or not self.baseline.compute_s:
            return None
        return self.automl.compute_s / self.baseline.compute_s if self.measure == cmp.TIME else None

    @property
    def flops_ratio(self) -> cmp.FlopsRatio:
        """AutoML training FLOPs over the baseline's, with its bound, or why there is none."""
        if self.baseline is None:
            return cmp.FlopsRatio(None, why="no baseline")
        return cmp.flops_ratio(self.automl.flops, self.baseline.flops)

    @property
    def energy_ratio(self) -> float | None:
        """AutoML mean energy per run over the baseline's, where both read the same counters (NVML's, RAPL's) on
        one kind of hardware; None otherwise."""
        if self.baseline is None or self.measure != cmp.TIME:
            return None
        a, b = _energy(self.automl), _energy(self.baseline)
        return None if a is None or b is None or a[0] != b[0] or not b[1] else a[1] / b[1]

    @property
    def compute_ratio(self) -> float | None:
        """The ratio every comparison uses: of seconds (time_ratio) on one kind of hardware, of training FLOPs
        across several (None where they were not counted)."""
        return self.time_ratio if self.measure == cmp.TIME else self.flops_ratio.value

    @property
    def resolution(self) -> str:
        """'resolved' (the 90% interval excludes 0), 'overlap' (it includes 0), 'too few seeds' or 'no
        comparison'."""
        d = self.measured
        if d is None:
            return "no comparison"
        if d.low is None:
            return "too few seeds"
        return "overlap" if d.low <= 0.0 <= d.high else "resolved"


def _energy(s: ConfigSummary) -> tuple[tuple[str, ...], float] | None:
    """The counters a configuration read and its mean joules per run over them; None where it read none."""
    read = [(name, j) for name, j in (("gpu", s.gpu_energy_j), ("cpu", s.cpu_energy_j)) if j is not None]
    return (tuple(n for n, _ in read), sum(j for _, j in read)) if read else None


def versus(summaries: list[ConfigSummary], tolerance: float = eqv.DEFAULT_TOLERANCE) -> list[Versus]:
    """Every AutoML configuration against the baseline reference of the same group."""
    base = reference(summaries, "baseline", tolerance)
    return [Versus(s, base) for s in summaries if s.system_class == "automl"]


RESOLVED_TEXT = {"resolved": "yes", "overlap": "no (the interval includes 0)", "too few seeds": "no (< 2 seeds)"}


def interval_words(d: eqv.Difference) -> str:
    """What an interval is over: '3 paired seeds and 815 test images', '3 paired seeds alone: no predictions
    to pair test images'."""
    seeds = fmt.plural(d.seeds, "paired seed" if d.paired else "seed")
    if d.source == eqv.SEEDS_AND_IMAGES:
        return f"{seeds} and {d.images:,} test images"
    if d.source == eqv.SEEDS_ONLY:
        return f"{seeds} alone: no predictions to pair test images"
    return f"no interval: {fmt.plural(d.seeds, 'seed')}"


def interval_text(d: eqv.Difference | None) -> str:
    """'-4.0 to +2.3 (3 paired seeds and 815 test images)', or why there is none."""
    if d is None:
        return fmt.MISSING
    if d.low is None:
        return interval_words(d)
    return f"{100 * d.low:+.1f} to {100 * d.high:+.1f} ({interval_words(d)})"


def _resolved_text(resolution: str) -> str:
    return RESOLVED_TEXT.get(resolution, fmt.MISSING)


def _base(value: Callable[[ConfigSummary], Any]) -> Callable[[Versus], Any]:
    """A value of the baseline's reference, None where there is none."""
    return lambda v: value(v.baseline) if v.baseline else None


def _bound(end: str) -> Callable[[Versus], float | None]:
    return lambda v: None if v.measured is None or v.measured.low is None else 100 * getattr(v.measured, end)


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
        Column("compute_measure", "", lambda v: v.measure),
        Column("compute_ratio", "Compute ratio", lambda v: v.time_ratio, fmt.ratio),
        Column("flops_ratio", "", lambda v: v.flops_ratio.value),
        Column("flops_ratio_bound", "", lambda v: v.flops_ratio.bound),
        Column("", "FLOPs ratio", lambda v: v.flops_ratio.words or fmt.MISSING),
        Column("energy_ratio", "Energy ratio", lambda v: v.energy_ratio, fmt.ratio, optional=True),
        Column("interval", "", lambda v: v.measured.source if v.measured else None),
        Column("interval_seeds", "", lambda v: v.measured.seeds if v.measured else None),
        Column("interval_images", "", lambda v: v.measured.images if v.measured else None),
        Column("difference_ci90_low", "", _bound("low")),
        Column("difference_ci90_high", "", _bound("high")),
        Column("", "90% interval (points)", lambda v: v.measured, interval_text),
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
    flops: cmp.Flops = cmp.Flops(None)
    flops_per_s: float | None = None

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
                            s.gpu_energy_j, s.cpu_energy_j, managed_price_per_hour=managed,
                            flops=s.flops, flops_per_s=s.flops_per_s))
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
        # Always shown: a run made before the counter reads 'not counted', never 0 and never left out unsaid.
        Column("train_flops", "", lambda r: r.flops.value),
        Column("", "Training FLOPs", lambda r: r.flops.text),
        Column("flops_per_s", "Achieved", lambda r: r.flops_per_s, fmt.flop_rate, optional=True),
        Column("flops_partial", "", lambda r: r.flops.partial),
        Column("flops_not_counted", "", lambda r: r.flops.missing),
    )
)


def failures(runs: pd.DataFrame) -> list[Any]:
    """Runs that did not end ok, as rows of the runs table (attributes named as its columns)."""
    return list(runs[runs["status"] != "ok"].itertuples(index=False))


def short_error(text: str) -> str:
    """The error on one line, cut to TABLE_ERROR_CHARS; the missing mark for none."""
    line = " ".join(str(text).split())
    return (line if len(line) <= TABLE_ERROR_CHARS else line[: TABLE_ERROR_CHARS - 1] + "…") or fmt.MISSING


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
