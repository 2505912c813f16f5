"""Each AutoML system's budget curve against the baseline: the compute it takes to reach the baseline's accuracy,
its accuracy at the baseline's compute, and the 2019 form at its largest budget ("N x the compute for D points
less").

Only measured budgets are compared: where no budget reaches the baseline, the report gives the lower bound the
largest budget sets, never an extrapolation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.report import formatting as fmt
from bench.report.runs import Group
from bench.report.stats import MIN_SEEDS_FOR_INTERVAL, Spread, spread
from bench.report.tables import Column, ConfigSummary, TableSpec, Versus, group_columns, reference
from bench.report.verdicts import short_compare

# Accuracy (a fraction) within which an AutoML system counts as level with the baseline: half a point, about
# what a reseeded run of the baseline moves on the malaria and CIFAR-10 subsets.
DEFAULT_TOLERANCE = 0.005
_EPS = 1e-12  # float slack when a difference sits exactly on the tolerance


def _seeds(n: int) -> str:
    return fmt.plural(n, "seed")


@dataclass(frozen=True)
class EqualCompute:
    """The AutoML system's accuracy at the baseline reference's mean fit time.

    Interpolated linearly in log fit time between the two consecutive budgets whose mean fit times bracket it.
    Where 3 or more seeds ran both budgets, each seed's accuracy is interpolated and the interval is the 95%
    t-interval of those values (so it can be paired with the baseline's seeds); otherwise the two budgets'
    interval ends (95% CI, or ± 1 std with 2 seeds) are interpolated, and with fewer than 2 seeds at either
    budget there is no interval.
    """

    state: str  # 'interpolated', 'at budget', 'below' (the smallest budget), 'above' (the largest), 'none'
    point: ConfigSummary | None = None  # the system at the baseline's fit time
    method: str = ""  # 'per seed', 'interval ends' or '' (no interval)

    def versus(self, base: ConfigSummary) -> Versus | None:
        """The point against the baseline reference (paired where its seeds pair)."""
        return None if self.point is None else Versus(self.point, base)


def _interpolate(lo: ConfigSummary, hi: ConfigSummary, at_s: float) -> EqualCompute:
    """The system between budgets lo and hi at compute at_s, their mean compute bracketing it (see EqualCompute)."""
    lo_s, hi_s = _compute(lo), _compute(hi)
    span = math.log(hi_s) - math.log(lo_s)
    w = 0.0 if span == 0 else (math.log(at_s) - math.log(lo_s)) / span
    a, b = dict(lo.seed_accuracy), dict(hi.seed_accuracy)
    common = sorted(set(a) & set(b))
    if len(common) >= MIN_SEEDS_FOR_INTERVAL:
        per_seed = tuple((seed, (1 - w) * a[seed] + w * b[seed]) for seed in common)
        accuracy, method = spread(v for _, v in per_seed), "per seed"
    else:
        per_seed = ()
        la, ha = lo.accuracy, hi.accuracy
        mean = (1 - w) * la.mean + w * ha.mean
        n = min(la.n, ha.n)
        if la.low is not None and ha.low is not None:
            kind = la.kind if la.kind == ha.kind else "std"
            accuracy = Spread(n, mean, None, (1 - w) * la.low + w * ha.low, (1 - w) * la.high + w * ha.high, kind)
            method = "interval ends"
        else:
            accuracy, method = Spread(n, mean, None, None, None, "none"), ""
    point = dataclasses.replace(
        lo, budget=f"{lo.budget}–{hi.budget}", fit_s=at_s, held_s=None, accuracy=accuracy, seed_accuracy=per_seed,
        runs=min(lo.runs, hi.runs), statuses=(),
    )
    return EqualCompute("interpolated", point, method)


def _compute(s: ConfigSummary) -> float:
    return s.compute_s or 0.0


def equal_compute(curve: tuple[ConfigSummary, ...], at_s: float | None) -> EqualCompute:
    """The curve (ok budgets, ascending) at compute at_s (ConfigSummary.compute_s: fit time, times a search's
    reserved bundles): interpolated, at a budget, or outside the budgets run."""
    timed = [s for s in curve if s.compute_s]
    if not timed or not at_s:
        return EqualCompute("none")
    for s in timed:
        if math.isclose(_compute(s), at_s, rel_tol=1e-9):
            return EqualCompute("at budget", s, "per seed" if s.accuracy.n >= MIN_SEEDS_FOR_INTERVAL else "")
    if at_s < min(_compute(s) for s in timed):
        return EqualCompute("below")
    if at_s > max(_compute(s) for s in timed):
        return EqualCompute("above")
    # Compute need not rise with the budget (a search that stops early): take the first consecutive pair,
    # in budget order, whose compute brackets it; one exists since at_s is within their range.
    for lo, hi in zip(timed, timed[1:], strict=False):
        if min(_compute(lo), _compute(hi)) <= at_s <= max(_compute(lo), _compute(hi)):
            return _interpolate(lo, hi, at_s)
    return EqualCompute("none")  # unreachable; kept so that a bug reads as 'no value', not a wrong one


def _state(s: ConfigSummary, base: ConfigSummary, tolerance: float) -> str:
    """One budget against the reference: 'parity' (mean within tolerance and not resolved worse), 'worse'
    (within tolerance, but an interval resolves it below), 'unresolved' (within tolerance, too few seeds to
    tell) or 'short' (mean below the tolerance)."""
    v = Versus(s, base)
    if v.difference < -tolerance - _EPS:
        return "short"
    if v.resolution == "resolved" and v.difference < 0:
        return "worse"
    if v.resolution == "too few seeds":
        return "unresolved"
    return "parity"


@dataclass(frozen=True)
class Parity:
    """One AutoML system's budgets on one group of data against the baseline's reference."""

    group: Group
    system: str
    base: ConfigSummary | None
    curve: tuple[ConfigSummary, ...]  # budgets with an ok run, ascending
    skipped: tuple[ConfigSummary, ...]  # budgets without one
    tolerance: float

    @property
    def states(self) -> tuple[str, ...]:
        """Each curve budget's state against the reference (see _state)."""
        return tuple(_state(s, self.base, self.tolerance) for s in self.curve) if self.base else ()

    @property
    def reached(self) -> ConfigSummary | None:
        """The smallest budget at parity, or None (also where there is no baseline to reach)."""
        if self.base is None:
            return None
        return next((s for s, st in zip(self.curve, self.states, strict=True) if st == "parity"), None)

    @property
    def largest(self) -> Versus | None:
        """The largest budget run against the reference."""
        return Versus(self.curve[-1], self.base) if self.curve and self.base else None

    @property
    def outcome(self) -> str:
        """'reached', 'unresolved', 'not reached', 'no reference' or 'no ok run'."""
        if self.base is None:
            return "no reference"
        if not self.curve:
            return "no ok run"
        if self.reached is not None:
            return "reached"
        return "unresolved" if "unresolved" in self.states else "not reached"

    def _ratio(self, s: ConfigSummary) -> float | None:
        return Versus(s, self.base).compute_ratio

    @property
    def parity_ratio(self) -> float | None:
        """Fit time at the parity budget over the baseline's; None unless reached."""
        return self._ratio(self.reached) if self.reached else None

    @property
    def lower_bound_ratio(self) -> float | None:
        """Where parity is not reached: the largest budget's fit time over the baseline's, which parity needs more
        than."""
        return self._ratio(self.curve[-1]) if self.outcome == "not reached" else None

    @property
    def parity_text(self) -> str:
        """Compute to parity as a reader says it."""
        outcome = self.outcome
        if outcome == "no reference":
            return "no baseline reference"
        if outcome == "no ok run":
            return "no ok run"
        if outcome == "reached":
            s = self.reached
            ratio = self.parity_ratio
            amount = fmt.MISSING if ratio is None else f"{fmt.ratio_words(ratio)} the baseline's compute"
            if s is self.curve[0]:
                # Nothing smaller was run, so parity may come sooner: an upper bound.
                return f"at most {amount}: reached at {s.budget}, the smallest budget run"
            earlier = self.states[: self.curve.index(s)]
            unsure = " (unresolved below it)" if "unresolved" in earlier else ""
            return f"{amount} (reached at {s.budget}){unsure}"
        if outcome == "unresolved":
            at = [s for s, st in zip(self.curve, self.states, strict=True) if st == "unresolved"]
            n = min(min(s.ok, self.base.ok) for s in at)
            return f"unresolved: {_seeds(n)} (within tolerance at {', '.join(s.budget for s in at)})"
        ratio = self.lower_bound_ratio
        bound = fmt.MISSING if ratio is None else f"more than {fmt.ratio_words(ratio)} the baseline's compute"
        return f"not reached by {self.curve[-1].budget}: {bound}"

    @property
    def equal(self) -> EqualCompute:
        """The system at the baseline reference's fit time."""
        return equal_compute(self.curve, self.base.compute_s if self.base else None)

    @property
    def equal_text(self) -> str:
        """Accuracy at equal compute as a reader says it."""
        eq = self.equal
        if eq.state == "below":
            return "below the smallest budget run"
        if eq.state == "above":
            return "above the largest budget run"
        if eq.point is None:
            return fmt.MISSING
        budgets = eq.point.budget.replace("–", " and ")
        where = f"at {budgets}" if eq.state == "at budget" else f"between {budgets}"
        a = eq.point.accuracy
        if a.low is None:
            interval = f"no interval: {_seeds(a.n)}"
        else:
            how = {"per seed": "per seed", "interval ends": "interpolated interval ends"}.get(eq.method, eq.method)
            interval = f"{100 * a.low:.1f}–{100 * a.high:.1f}" + (f", {how}" if how else "")
        diff = eq.versus(self.base).difference
        return f"{fmt.pct(a.mean)} ({interval}) {where}; {fmt.signed(100 * diff)} points"

    @property
    def largest_text(self) -> str:
        """The 2019 form at the largest budget run."""
        v = self.largest
        return fmt.MISSING if v is None else f"{v.automl.budget}: {short_compare(v)}"

    @property
    def notes(self) -> tuple[str, ...]:
        """What a reader must know to trust the row: falls, budgets left out, seeds too few."""
        notes = []
        if len(self.curve) == 1:
            notes.append("one budget run: no curve")
        for lo, hi in zip(self.curve, self.curve[1:], strict=False):
            if hi.accuracy.mean < lo.accuracy.mean - _EPS:
                notes.append(f"accuracy falls from {lo.budget} to {hi.budget} "
                             f"({fmt.pct(lo.accuracy.mean)} to {fmt.pct(hi.accuracy.mean)})")
        if self.curve and all(s.ok == 1 for s in self.curve):
            notes.append("1 seed per budget: no interval")
        for s in self.skipped:
            notes.append(f"{s.budget} left out: no ok run ({s.not_ok_text or 'no accuracy'})")
        if "worse" in self.states:
            at = [s.budget for s, st in zip(self.curve, self.states, strict=True) if st == "worse"]
            notes.append(f"within tolerance but resolved worse at {', '.join(at)}")
        return tuple(notes)


def parities(summaries: list[ConfigSummary], tolerance: float = DEFAULT_TOLERANCE) -> list[Parity]:
    """One Parity per AutoML system of this group of data, systems by name."""
    base = reference(summaries, "baseline")
    result = []
    for system in sorted({s.system for s in summaries if s.system_class == "automl"}):
        mine = [s for s in summaries if s.system == system]  # summarize sorts budgets ascending
        curve = tuple(s for s in mine if s.accuracy.mean is not None)
        skipped = tuple(s for s in mine if s.accuracy.mean is None)
        result.append(Parity(mine[0].group, system, base, curve, skipped, tolerance))
    return result


def _points(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _eq(value: Callable[[EqualCompute, Versus], Any]) -> Callable[[Parity], Any]:
    """A value of the equal-compute point against the baseline, None where there is none."""

    def get(p: Parity) -> Any:
        eq = p.equal
        return None if eq.point is None else value(eq, eq.versus(p.base))

    return get


def _base(value: Callable[[ConfigSummary], Any]) -> Callable[[Parity], Any]:
    return lambda p: value(p.base) if p.base else None


# Compute to parity and accuracy at equal compute: one row per data set and AutoML system.
PARITY: TableSpec[Parity] = TableSpec(
    (
        *group_columns(lambda p: p.group),
        Column("", "Data", lambda p: p.group.label),
        Column("system", "AutoML", lambda p: p.system),
        Column("budgets", "Budgets", lambda p: ", ".join(s.budget for s in p.curve) or fmt.MISSING),
        Column("baseline", "", _base(lambda b: b.system)),
        Column("baseline_budget", "", _base(lambda b: b.budget)),
        Column("", "Baseline", _base(lambda b: f"{b.system} ({b.budget}): {fmt.pct(b.accuracy.mean)} "
                                                f"in {fmt.duration(b.fit_s)}"), lambda t: t or fmt.MISSING),
        Column("baseline_accuracy_mean", "", _base(lambda b: b.accuracy.mean)),
        Column("baseline_fit_s", "", _base(lambda b: b.fit_s)),
        Column("tolerance_points", "", lambda p: 100 * p.tolerance),
        Column("parity", "", lambda p: p.outcome),
        Column("parity_budget", "", lambda p: p.reached.budget if p.reached else None),
        Column("parity_compute_ratio", "", lambda p: p.parity_ratio),
        Column("parity_lower_bound_ratio", "", lambda p: p.lower_bound_ratio),
        Column("", "Compute to parity", lambda p: p.parity_text),
        Column("equal_compute", "", lambda p: p.equal.state),
        Column("equal_compute_between", "", _eq(lambda e, v: e.point.budget)),
        Column("equal_compute_accuracy", "", _eq(lambda e, v: e.point.accuracy.mean)),
        Column("equal_compute_low", "", _eq(lambda e, v: e.point.accuracy.low)),
        Column("equal_compute_high", "", _eq(lambda e, v: e.point.accuracy.high)),
        Column("equal_compute_interval", "", _eq(lambda e, v: e.method)),
        Column("equal_compute_difference_points", "", _eq(lambda e, v: _points(v.difference))),
        Column("", "Accuracy at the baseline's compute", lambda p: p.equal_text),
        Column("largest_budget", "", lambda p: p.largest.automl.budget if p.largest else None),
        Column("largest_compute_ratio", "", lambda p: p.largest.compute_ratio if p.largest else None),
        Column("largest_difference_points", "", lambda p: _points(p.largest.difference) if p.largest else None),
        Column("largest_resolution", "", lambda p: p.largest.resolution if p.largest else None),
        Column("", "At the largest budget", lambda p: p.largest_text),
        Column("notes", "Notes", lambda p: "; ".join(p.notes), lambda t: t or fmt.MISSING),
    )
)


def caption(tolerance: float) -> str:
    """What the parity table's columns mean, with the tolerance."""
    return (
        f"Parity: the AutoML system's mean accuracy within {100 * tolerance:g} points of the baseline's reference "
        "(its most accurate configuration) and the difference not resolved as worse (paired 95% t-interval where 3 "
        "or more seeds pair, else the two intervals must not overlap). Compute to parity is the ratio of mean fit "
        "times (of a search spread over several processes, times the bundles of resources it reserved) at the "
        "smallest budget reaching it; where none does, the largest budget's ratio is a lower bound. "
        "Accuracy at the baseline's compute is interpolated linearly in log fit time between the two budgets "
        "whose fit times bracket the baseline's, never extrapolated; the last number is its difference from the "
        "baseline in points."
    )


def sentence(p: Parity) -> str | None:
    """The curve in one sentence, for a system that ran two or more budgets (None otherwise)."""
    if len(p.curve) < 2 or p.base is None:
        return None
    name = p.base.system
    text = (f"{p.system} over {', '.join(s.budget for s in p.curve)}: parity with {name} (within "
            f"{100 * p.tolerance:g} points) is {p.parity_text}")
    if p.equal.point is not None:
        text += f"; at {name}'s compute it has {p.equal_text}"
    elif p.equal.state in ("below", "above"):
        text += f"; {name}'s compute is {p.equal_text}"
    falls = [n for n in p.notes if n.startswith("accuracy falls")]
    return text + (f"; {'; '.join(falls)}" if falls else "") + "."
