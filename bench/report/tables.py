"""The report's tables: summary per system and budget, AutoML against the baseline, cost, unfinished runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from bench.report import formatting as fmt
from bench.report.runs import CLASS_ORDER, Group, budget_key, system_class
from bench.report.stats import Spread, mean_or_none, spread

SECONDS_PER_HOUR = 3600.0
# Price of one hour of a CPU machine like this project's (2 vCPU) in US dollars: AWS m6i.large lists $0.096/h
# on demand in us-east-1 (2024 price list). Runs are charged their fit (wall) hours: the machine is rented.
DEFAULT_PRICE_PER_HOUR = 0.096
# Price of one hour of a single-GPU machine in US dollars: AWS p3.2xlarge (one V100) lists $3.06/h on demand
# in us-east-1 (2024). Charged for the fit hours of runs that used a GPU.
DEFAULT_GPU_PRICE_PER_HOUR = 3.06
# Managed cloud AutoML training, as commonly cited (Google Cloud AutoML Vision, ~$20 per node hour; the figure
# fast.ai's 2018-2019 posts on AutoML use): applied to the AutoML fit hours as a reference.
MANAGED_AUTOML_PRICE_PER_HOUR = 20.0
ERROR_CHARS = 160  # errors are cut to this length in the markdown tables (CSV keeps them whole)
NOT_OK = ("failed", "timeout", "skipped")


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
    gpu_s: float | None  # None: no run measured GPU time
    params: float | None
    trials: float | None
    hardware: str
    on_gpu: bool  # some ok run measured GPU time or named a GPU device

    @property
    def ok(self) -> int:
        """Runs that ended ok."""
        return self.accuracy.n

    @property
    def not_ok_text(self) -> str:
        """'1 failed, 2 timeout', or '' when every run ended ok."""
        return ", ".join(f"{n} {status}" for status, n in self.statuses)

    @property
    def fit_h(self) -> float | None:
        """Mean fit hours per ok run."""
        return None if self.fit_s is None else self.fit_s / SECONDS_PER_HOUR


def summarize(group: Group, runs: pd.DataFrame, baseline: str) -> list[ConfigSummary]:
    """One summary per (system, budget): floor first, then baseline, then AutoML; budgets ascending."""
    summaries = []
    for (system, budget), part in runs.groupby(["system", "budget"], sort=False):
        ok = part[part["status"] == "ok"]
        counts = Counter(s for s in part["status"] if s != "ok")
        gpu = ok["gpu_s"].dropna()
        summaries.append(
            ConfigSummary(
                group=group,
                system=system,
                system_class=system_class(system, baseline),
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
                params=mean_or_none(ok["params"]),
                trials=mean_or_none(ok["trials"]),
                hardware="; ".join(sorted({h for h in part["hardware"] if h})),
                on_gpu=bool(len(gpu)) or any(d not in ("", "cpu") for d in ok["device"]),
            )
        )
    return sorted(summaries, key=lambda s: (CLASS_ORDER[s.system_class], s.system, budget_key(s.budget)))


def reference(summaries: list[ConfigSummary], klass: str) -> ConfigSummary | None:
    """A class's reference: its best mean accuracy configuration (ties: less fit time); None if none ok."""
    candidates = [s for s in summaries if s.system_class == klass and s.accuracy.mean is not None]
    if not candidates:
        return None
    return max(candidates, key=lambda s: (s.accuracy.mean, -(s.fit_s or 0.0)))


def _h(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / SECONDS_PER_HOUR


def summary_frame(summaries: list[ConfigSummary]) -> pd.DataFrame:
    """The summary as numbers (CSV)."""
    rows = []
    for s in summaries:
        counts = dict(s.statuses)
        rows.append(
            {
                "dataset": s.group.dataset,
                "split": s.group.split,
                "dataset_options": s.group.dataset_options,
                "system": s.system,
                "system_class": s.system_class,
                "budget": s.budget,
                "runs": s.runs,
                "ok": s.ok,
                **{status: counts.get(status, 0) for status in NOT_OK},
                "accuracy_mean": s.accuracy.mean,
                "accuracy_std": s.accuracy.std,
                "accuracy_ci95_low": s.accuracy.low if s.accuracy.kind == "ci" else None,
                "accuracy_ci95_high": s.accuracy.high if s.accuracy.kind == "ci" else None,
                "balanced_accuracy_mean": s.balanced_accuracy,
                "macro_f1_mean": s.macro_f1,
                "fit_h": _h(s.fit_s),
                "cpu_h": _h(s.cpu_s),
                "gpu_h": _h(s.gpu_s),
                "params": s.params,
                "trials": s.trials,
                "hardware": s.hardware,
            }
        )
    return pd.DataFrame(rows)


def spread_text(s: Spread) -> str:
    """'± 0.4' (n == 2), '95% CI 95.2–97.0' (n >= 3), or the missing mark."""
    if s.kind == "std":
        return f"± {100 * s.std:.1f} (std)"
    if s.kind == "ci":
        return f"95% CI {100 * s.low:.1f}–{100 * s.high:.1f}"
    return fmt.MISSING


def summary_display(summaries: list[ConfigSummary]) -> pd.DataFrame:
    """The summary as a reader sees it (markdown, HTML)."""
    return pd.DataFrame(
        [
            {
                "System": s.system,
                "Budget": s.budget,
                "Seeds ok": f"{s.ok}/{s.runs}",
                "Not ok": s.not_ok_text or fmt.MISSING,
                "Accuracy": fmt.pct(s.accuracy.mean),
                "Spread": spread_text(s.accuracy),
                "Bal. acc.": fmt.pct(s.balanced_accuracy),
                "Macro F1": fmt.pct(s.macro_f1),
                "Fit h": fmt.hours(_h(s.fit_s)),
                "CPU h": fmt.hours(_h(s.cpu_s)),
                "GPU h": fmt.hours(_h(s.gpu_s)),
                "Params": fmt.count(s.params),
                "Trials": fmt.count(s.trials),
            }
            for s in summaries
        ]
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
        """AutoML mean fit time over the baseline's."""
        if self.baseline is None or self.automl.fit_s is None or not self.baseline.fit_s:
            return None
        return self.automl.fit_s / self.baseline.fit_s

    @property
    def resolution(self) -> str:
        """'resolved', 'overlap', 'too few seeds' or 'no comparison'."""
        if self.difference is None:
            return "no comparison"
        a, b = self.automl.accuracy, self.baseline.accuracy
        if a.n < 2 or b.n < 2:
            return "too few seeds"
        return "overlap" if a.overlaps(b) else "resolved"


def versus(summaries: list[ConfigSummary]) -> list[Versus]:
    """Every AutoML configuration against the baseline reference of the same group."""
    base = reference(summaries, "baseline")
    return [Versus(s, base) for s in summaries if s.system_class == "automl"]


def versus_frame(items: list[Versus]) -> pd.DataFrame:
    """AutoML against the baseline as numbers (CSV)."""
    return pd.DataFrame(
        [
            {
                "dataset": v.automl.group.dataset,
                "split": v.automl.group.split,
                "dataset_options": v.automl.group.dataset_options,
                "system": v.automl.system,
                "budget": v.automl.budget,
                "ok": v.automl.ok,
                "accuracy_mean": v.automl.accuracy.mean,
                "fit_h": _h(v.automl.fit_s),
                "baseline": v.baseline.system if v.baseline else None,
                "baseline_budget": v.baseline.budget if v.baseline else None,
                "baseline_ok": v.baseline.ok if v.baseline else None,
                "baseline_accuracy_mean": v.baseline.accuracy.mean if v.baseline else None,
                "baseline_fit_h": _h(v.baseline.fit_s) if v.baseline else None,
                "difference_points": None if v.difference is None else 100 * v.difference,
                "compute_ratio": v.compute_ratio,
                "resolution": v.resolution,
            }
            for v in items
        ]
    )


def versus_display(items: list[Versus]) -> pd.DataFrame:
    """AutoML against the baseline as a reader sees it."""
    return pd.DataFrame(
        [
            {
                "AutoML": v.automl.system,
                "Budget": v.automl.budget,
                "Seeds ok": str(v.automl.ok),
                "Accuracy": fmt.pct(v.automl.accuracy.mean),
                "Fit h": fmt.hours(_h(v.automl.fit_s)),
                "Baseline (budget)": f"{v.baseline.system} ({v.baseline.budget})" if v.baseline else fmt.MISSING,
                "Baseline accuracy": fmt.pct(v.baseline.accuracy.mean) if v.baseline else fmt.MISSING,
                "Baseline fit h": fmt.hours(_h(v.baseline.fit_s)) if v.baseline else fmt.MISSING,
                "Difference (points)": fmt.points(v.difference),
                "Compute ratio": fmt.ratio(v.compute_ratio),
                "Difference resolved?": {
                    "resolved": "yes",
                    "overlap": "no (intervals overlap)",
                    "too few seeds": "no (< 2 seeds)",
                }.get(v.resolution, fmt.MISSING),
            }
            for v in items
        ]
    )


@dataclass(frozen=True)
class Prices:
    """Dollars per fit hour: a CPU machine, a GPU machine, and managed cloud AutoML."""

    cpu: float = DEFAULT_PRICE_PER_HOUR
    gpu: float = DEFAULT_GPU_PRICE_PER_HOUR
    managed_automl: float = MANAGED_AUTOML_PRICE_PER_HOUR


def cost_frame(summaries: list[ConfigSummary], prices: Prices) -> pd.DataFrame:
    """Mean cost of one run per configuration (fit hours x the machine's price), plus managed AutoML rows."""
    rows = []
    for s in summaries:
        if s.ok == 0:
            continue
        machine, rate = ("GPU", prices.gpu) if s.on_gpu else ("CPU", prices.cpu)
        fit_h = _h(s.fit_s)
        rows.append(
            {
                "system": s.system,
                "budget": s.budget,
                "fit_h": fit_h,
                "cpu_h": _h(s.cpu_s),
                "gpu_h": _h(s.gpu_s),
                "machine": machine,
                "price_per_hour": rate,
                "cost_usd": None if fit_h is None else fit_h * rate,
            }
        )
        if s.system_class == "automl" and fit_h is not None:
            rows.append(
                {
                    "system": f"managed cloud AutoML (reference, {s.budget})",
                    "budget": s.budget,
                    "fit_h": fit_h,
                    "cpu_h": None,
                    "gpu_h": None,
                    "machine": "managed AutoML",
                    "price_per_hour": prices.managed_automl,
                    "cost_usd": fit_h * prices.managed_automl,
                }
            )
    frame = pd.DataFrame(
        rows,
        columns=["system", "budget", "fit_h", "cpu_h", "gpu_h", "machine", "price_per_hour", "cost_usd"],
    )
    if summaries:
        g = summaries[0].group
        frame.insert(0, "dataset_options", g.dataset_options)
        frame.insert(0, "split", g.split)
        frame.insert(0, "dataset", g.dataset)
    return frame


def cost_display(frame: pd.DataFrame) -> pd.DataFrame:
    """The cost table as a reader sees it."""
    return pd.DataFrame(
        [
            {
                "System": r.system,
                "Budget": r.budget,
                "Fit h": fmt.hours(r.fit_h),
                "CPU h": fmt.hours(r.cpu_h),
                "GPU h": fmt.hours(r.gpu_h),
                "Charged as": r.machine,
                "Price": f"{fmt.price(r.price_per_hour)}/h",
                "Cost per run": fmt.dollars(r.cost_usd),
            }
            for r in frame.itertuples()
        ]
    )


def failures_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that did not end ok: which, how, and the error (CSV keeps it whole)."""
    bad = runs[runs["status"] != "ok"]
    cols = ["run_id", "dataset", "split", "dataset_options", "system", "budget", "seed", "status", "error"]
    return bad[cols].reset_index(drop=True)


def failures_display(frame: pd.DataFrame) -> pd.DataFrame:
    """Unfinished runs as a reader sees them, errors shortened."""

    def short(text: str) -> str:
        line = " ".join(str(text).split())
        return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"

    return pd.DataFrame(
        [
            {
                "System": r.system,
                "Budget": r.budget,
                "Seed": str(int(r.seed)),
                "Status": r.status,
                "Error": short(r.error) or fmt.MISSING,
            }
            for r in frame.itertuples()
        ]
    )
