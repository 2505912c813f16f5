"""Each AutoML system's budget curve against the baseline's reference: the compute it takes to match the
baseline, its accuracy at the baseline's compute, and the 2019 form at its largest budget ("N x the compute for
D points less"), each with the 90% interval of the difference over seeds and test images
(bench/report/equivalence.py).

Matching is shown, never assumed. Each budget gets a verdict by two one-sided tests at the tolerance:
'equivalent' (the interval inside +- tolerance), 'better' (above +tolerance), 'not worse' (above -tolerance,
reaching past +tolerance), 'worse' (below -tolerance) or 'undetermined' (reaching below -tolerance and above
it). Compute to parity is the smallest budget shown not worse than the baseline (equivalent, better or not
worse: the lower one-sided test passes); "more than N x" only where every budget is worse; otherwise
undetermined, with how far the design is from deciding it. Only
measured budgets are compared, never an extrapolation.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.report import compute as cmp
from bench.report import equivalence as eqv
from bench.report import formatting as fmt
from bench.report.runs import Group
from bench.report.stats import spread
from bench.report.tables import (
    Column,
    ConfigSummary,
    Plateau,
    TableSpec,
    Versus,
    group_columns,
    interval_text,
    interval_words,
    plateau,
)
from bench.report.verdicts import flops_beside, short_compare

DEFAULT_TOLERANCE = eqv.DEFAULT_TOLERANCE
MATCHED = (eqv.EQUIVALENT, eqv.BETTER, eqv.NOT_WORSE)  # a budget shown no worse than the baseline matched it
# The assumption behind "N test images or K seeds would decide it", said wherever such a number is.
SCALING = "each variance term falling as 1/count at the spread measured here, the difference staying where it is"


def _seeds(n: int) -> str:
    return fmt.plural(n, "seed")


def _tol(tolerance: float) -> str:
    return f"{100 * tolerance:g} points"


@dataclass(frozen=True)
class EqualCompute:
    """The AutoML system at the baseline reference's compute.

    Interpolated linearly in log compute between the two consecutive budgets whose mean compute brackets it,
    seed by seed and (where both kept predictions) test image by test image, so that it pairs with the
    baseline's seeds and images. Where the two budgets share fewer than 2 seeds there is no interval.
    """

    state: str  # 'interpolated', 'at budget', 'below' (the smallest budget), 'above' (the largest), 'none'
    point: ConfigSummary | None = None  # the system at the baseline's compute
    between: tuple[ConfigSummary, ...] = ()  # the budgets it stands at or between

    def versus(self, base: ConfigSummary) -> Versus | None:
        """The point against the baseline reference."""
        return None if self.point is None else Versus(self.point, base)


Key = Callable[[ConfigSummary], "float | None"]


def _interpolate(lo: ConfigSummary, hi: ConfigSummary, at: float, key: Key, measure: str) -> EqualCompute:
    """The system between budgets lo and hi at compute `at` (by key), their compute bracketing it."""
    lo_c, hi_c = key(lo), key(hi)
    span = math.log(hi_c) - math.log(lo_c)
    w = 0.0 if span == 0 else (math.log(at) - math.log(lo_c)) / span
    mixed = eqv.blend(lo.sample, hi.sample, w)
    if mixed is not None:
        per_seed = tuple(zip(mixed.seeds, (float(a) for a in mixed.accuracy), strict=True))
        accuracy, correct, test_key = spread(mixed.accuracy), mixed.correct, mixed.test_key
    else:
        # No seed in common: the mean alone, one pseudo-seed, so that the comparison says 'no interval'.
        mean = (1 - w) * lo.accuracy.mean + w * hi.accuracy.mean
        per_seed, accuracy, correct, test_key = ((-1, mean),), spread([mean]), None, ""
    placed = {"fit_s": at, "held_s": None} if measure == cmp.TIME else \
        {"fit_s": None, "held_s": None, "train_flops": at, "flops_missing": 0, "flops_partial": False}
    point = dataclasses.replace(
        lo, budget=f"{lo.budget}–{hi.budget}", accuracy=accuracy, seed_accuracy=per_seed,
        runs=min(lo.runs, hi.runs), statuses=(), correct=correct, test_key=test_key, **placed,
    )
    return EqualCompute("interpolated", point, (lo, hi))


def _compute(s: ConfigSummary) -> float:
    return s.compute_s or 0.0


def _exact_flops(s: ConfigSummary) -> float | None:
    """Training FLOPs where every ok run counted them whole (a lower bound cannot place a point)."""
    f = s.flops
    return None if f.partial else f.value


def _flops_or_bound(s: ConfigSummary) -> float | None:
    """Training FLOPs where every ok run counted them, a lower bound where a count left layers out."""
    return s.flops.value


def equal_compute(curve: tuple[ConfigSummary, ...], at_s: float | None, measure: str = cmp.TIME) -> EqualCompute:
    """The curve (ok budgets, ascending) at compute at_s: in seconds (ConfigSummary.compute_s: fit time, times a
    search's reserved bundles) or in training FLOPs; interpolated, at a budget, or outside the budgets run."""
    key: Key = _compute if measure == cmp.TIME else _flops_or_bound
    timed = [s for s in curve if key(s)]
    if not timed or not at_s:
        return EqualCompute("none")
    for s in timed:
        if math.isclose(key(s), at_s, rel_tol=1e-9):
            return EqualCompute("at budget", s, (s,))
    if at_s < min(key(s) for s in timed):
        return EqualCompute("below")
    if at_s > max(key(s) for s in timed):
        return EqualCompute("above")
    # Compute need not rise with the budget (a search that stops early): take the first consecutive pair,
    # in budget order, whose compute brackets it; one exists since at_s is within their range.
    for lo, hi in zip(timed, timed[1:], strict=False):
        if min(key(lo), key(hi)) <= at_s <= max(key(lo), key(hi)):
            return _interpolate(lo, hi, at_s, key, measure)
    return EqualCompute("none")  # unreachable; kept so that a bug reads as 'no value', not a wrong one


def _difference_words(d: eqv.Difference) -> str:
    """'4.9 points behind (90% interval 3.9 to 5.8)': magnitudes where the interval is on one side of 0."""
    if d.low is None:
        return f"{abs(100 * d.point):.1f} points {'behind' if d.point < 0 else 'ahead'} ({interval_words(d)})"
    behind = d.point < 0
    amount = f"{abs(100 * d.point):.1f} points {'behind' if behind else 'ahead'}"
    if d.high < 0 or d.low > 0:
        near, far = sorted((abs(100 * d.low), abs(100 * d.high)))
        return f"{amount} (90% interval {near:.1f} to {far:.1f})"
    return f"{amount}, not resolved (90% interval {100 * d.low:+.1f} to {100 * d.high:+.1f})"


@dataclass(frozen=True)
class Parity:
    """One AutoML system's budgets on one group of data against the baseline's reference."""

    group: Group
    system: str
    plateau: Plateau | None  # the baseline's reference and how it was chosen; None without a baseline run
    curve: tuple[ConfigSummary, ...]  # budgets with an ok run, ascending
    skipped: tuple[ConfigSummary, ...]  # budgets without one
    tolerance: float

    @property
    def base(self) -> ConfigSummary | None:
        """The baseline's reference configuration."""
        return None if self.plateau is None else self.plateau.reference

    @functools.cached_property
    def measured(self) -> tuple[eqv.Difference, ...]:
        """Each curve budget minus the reference, with its 90% interval."""
        return tuple(Versus(s, self.base).measured for s in self.curve) if self.base else ()

    @property
    def states(self) -> tuple[str, ...]:
        """Each curve budget's verdict at the tolerance: equivalent, better, not worse, worse or undetermined."""
        return tuple(d.verdict(self.tolerance) for d in self.measured)

    def budgets_at(self, *verdicts: str) -> list[ConfigSummary]:
        """The curve budgets with these verdicts (none without a reference)."""
        if self.base is None:
            return []
        return [s for s, v in zip(self.curve, self.states, strict=True) if v in verdicts]

    @property
    def reached(self) -> ConfigSummary | None:
        """The smallest budget shown no worse than the reference (see MATCHED), or None."""
        return next(iter(self.budgets_at(*MATCHED)), None)

    @property
    def largest(self) -> Versus | None:
        """The largest budget run against the reference."""
        return Versus(self.curve[-1], self.base) if self.curve and self.base else None

    @property
    def outcome(self) -> str:
        """'reached', 'not reached' (every budget worse), 'undetermined', 'no reference' or 'no ok run'."""
        if self.base is None:
            return "no reference"
        if not self.curve:
            return "no ok run"
        if self.reached is not None:
            return "reached"
        return "not reached" if all(v == eqv.WORSE for v in self.states) else "undetermined"

    def _ratio(self, s: ConfigSummary) -> float | None:
        return Versus(s, self.base).compute_ratio

    @property
    def measure(self) -> str:
        """What the ratios compare: 'time' (seconds) on one kind of hardware, 'flops' across several."""
        if self.curve and not self.curve[0].seconds_comparable:
            return cmp.FLOPS
        return cmp.TIME

    @property
    def unit(self) -> str:
        """What a ratio is of, as a sentence says it: 'compute' (seconds) or 'training FLOPs'."""
        return "compute" if self.measure == cmp.TIME else "training FLOPs"

    def flops_ratio(self, s: ConfigSummary | None) -> cmp.FlopsRatio | None:
        """A budget's training FLOPs over the baseline's (None for no budget)."""
        return None if s is None or self.base is None else Versus(s, self.base).flops_ratio

    def amount(self, s: ConfigSummary, beside: bool = True) -> str:
        """A budget's ratio to the baseline as a reader says it: "2.4x the baseline's compute (1.8x in training
        FLOPs)", "at least 2.4x the baseline's training FLOPs" across kinds of hardware, or why there is none."""
        if self.measure == cmp.FLOPS:
            f = self.flops_ratio(s)
            return f"{f.words} the baseline's training FLOPs" if f.value is not None else self.not_taken(s)
        ratio = self._ratio(s)
        if ratio is None:
            return fmt.MISSING
        return f"{fmt.ratio_words(ratio)} the baseline's compute" + (self.beside(s) if beside else "")

    def at_most(self, s: ConfigSummary, whose: str = "the baseline's") -> str:
        """Parity at the smallest budget run, an upper bound: "at most 0.6x the baseline's compute (...)". In FLOPs
        a ratio that is itself an upper bound says so once; one that is a lower bound (the AutoML count left layers
        out) bounds nothing beside it, so the budget is named instead."""
        f = self.flops_ratio(s) if self.measure == cmp.FLOPS else None
        if f is None or f.value is None:
            return f"at most {self.amount(s)}" if f is None else self.not_taken(s)
        if f.bound == cmp.AT_LEAST:
            return f"no more than {s.budget}'s training FLOPs (at least {fmt.ratio_words(f.value)} {whose})"
        return f"at most {fmt.ratio_words(f.value)} {whose} training FLOPs"

    def not_taken(self, s: ConfigSummary) -> str:
        """Why a ratio across kinds of hardware was not taken."""
        return f"no ratio: runs on different hardware, and {self.flops_ratio(s).why}"

    def beside(self, s: ConfigSummary) -> str:
        """The FLOP ratio beside a ratio of seconds, ' (1.8x in training FLOPs)', '' where the ratios are of FLOPs
        already."""
        return flops_beside(Versus(s, self.base)) if self.measure == cmp.TIME and self.base else ""

    def flops_note(self, s: ConfigSummary) -> str:
        """The FLOP ratio beside a ratio of seconds without its brackets: '1.8x in training FLOPs'."""
        return self.beside(s).strip().removeprefix("(").removesuffix(")")

    @property
    def parity_ratio(self) -> float | None:
        """Compute at the parity budget over the baseline's; None unless reached."""
        return self._ratio(self.reached) if self.reached else None

    @property
    def lower_bound_ratio(self) -> float | None:
        """Where every budget is worse: the largest budget's compute over the baseline's, which parity needs
        more than."""
        return self._ratio(self.curve[-1]) if self.outcome == "not reached" else None

    @property
    def undetermined(self) -> tuple[ConfigSummary, ...]:
        """The budgets whose interval reaches both below -tolerance and above it."""
        return tuple(self.budgets_at(eqv.UNDETERMINED))

    @property
    def resolving(self) -> eqv.Difference | None:
        """Of the undetermined budgets, the difference with the narrowest interval: what the design achieves at
        best (None where none is undetermined, or none has an interval)."""
        found = [d for d, v in zip(self.measured, self.states, strict=True)
                 if v == eqv.UNDETERMINED and d.half_width is not None]
        return min(found, key=lambda d: d.half_width) if found else None

    @property
    def design_text(self) -> str:
        """How far the design is from deciding the undetermined budgets ('' where none is)."""
        if not self.undetermined:
            return ""
        d = self.resolving
        if d is None:
            n = min(s.ok for s in self.undetermined)
            return f"no interval with {_seeds(n)}"
        tol = self.tolerance
        target = d.deciding_half_width(tol)
        text = (f"the narrowest 90% interval is ±{100 * d.half_width:.1f} points, against a tolerance of "
                f"{_tol(tol)}")
        if d.half_width <= tol:  # narrow enough; the difference measured sits too near -tolerance to decide
            text += (f", but its difference, {100 * d.point:+.2g} points, lies within it of -{_tol(tol)}")
        if target < eqv.MIN_DECIDABLE:
            return text + "; a difference on the tolerance itself: no design decides it"
        images, seeds, both = (d.needed_to_decide(tol, False, True), d.needed_to_decide(tol, True, False),
                               d.needed_to_decide(tol, True, True))
        options = []
        if images:
            options.append(f"{images[1]:,} test images with these {d.seeds} seeds")
        if seeds:
            options.append(f"{seeds[0]} seeds" + (f" on these {d.images:,} test images" if d.images else ""))
        if not options and both:
            options.append(f"{both[0]} seeds and {both[1]:,} test images together")
        if options:
            return text + (f"; about {' or '.join(options)} would decide it, narrowing it to "
                           f"±{100 * target:.2g} points, its distance from -{_tol(tol)} ({SCALING})")
        return text + "; no design within a million times this one would decide it"

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
            verdict = self.states[self.curve.index(s)]
            if s is self.curve[0]:
                # Nothing smaller was run, so parity may come sooner: an upper bound.
                return f"{self.at_most(s)}: {verdict} at {s.budget}, the smallest budget run"
            below = [b.budget for b in self.undetermined if self.curve.index(b) < self.curve.index(s)]
            unsure = f" (undetermined at {', '.join(below)}: it may come sooner)" if below else ""
            note = f"; {n}" if (n := self.flops_note(s)) else ""
            return f"{self.amount(s, beside=False)} ({verdict} at {s.budget}{note}){unsure}"
        if outcome == "undetermined":
            at = ", ".join(s.budget for s in self.undetermined)
            return f"undetermined at {at}: {self.design_text}"
        last = self.curve[-1]
        return f"{self._more_than(last)}: every budget up to {last.budget} worse by more than {_tol(self.tolerance)}"

    def _more_than(self, s: ConfigSummary) -> str:
        """'more than 2.4x the baseline's compute': what parity needs where every budget up to s is worse."""
        ratio = self._ratio(s)
        if ratio is None:
            return self.not_taken(s) if self.measure == cmp.FLOPS else fmt.MISSING
        if self.measure == cmp.FLOPS and self.flops_ratio(s).bound == cmp.AT_MOST:
            # The baseline's count is a lower bound, so the ratio may be smaller: no bound follows from it.
            return f"more than {s.budget}'s training FLOPs (at most {fmt.ratio_words(ratio)} the baseline's)"
        return f"more than {fmt.ratio_words(ratio)} the baseline's {self.unit}{self.beside(s)}"

    @property
    def budgets_text(self) -> str:
        """Each budget with its verdict: '30s worse, 1m undetermined'."""
        if not self.states:
            return ", ".join(s.budget for s in self.curve) or fmt.MISSING
        return ", ".join(f"{s.budget} {v}" for s, v in zip(self.curve, self.states, strict=True))

    @property
    def equal(self) -> EqualCompute:
        """The system at the baseline reference's compute, in the measure of the ratios."""
        return self.equal_in(self.measure)

    def equal_in(self, measure: str) -> EqualCompute:
        """The system at the baseline reference's compute in seconds ('time') or training FLOPs ('flops'); in
        FLOPs only where every budget and the baseline counted them, and the budgets it stands at or between
        counted them whole: a lower bound places the curve's other budgets on the right side of the baseline,
        but no point of its own."""
        if self.base is None:
            return EqualCompute("none")
        if measure == cmp.TIME:
            return equal_compute(self.curve, self.base.compute_s) if self.measure == cmp.TIME else \
                EqualCompute("none")
        if _exact_flops(self.base) is None or any(s.flops.value is None for s in self.curve):
            return EqualCompute("none")
        eq = equal_compute(self.curve, _exact_flops(self.base), cmp.FLOPS)
        # Above every budget's lower bound may still be below a budget's true count; below them all is below.
        if any(s.flops.partial for s in eq.between) or (eq.state == "above" and
                                                        any(s.flops.partial for s in self.curve)):
            return EqualCompute("none")
        return eq

    @property
    def equal_flops(self) -> EqualCompute:
        """The system at the baseline reference's training FLOPs."""
        return self.equal_in(cmp.FLOPS)

    def _measured_at(self, eq: EqualCompute) -> eqv.Difference | None:
        v = eq.versus(self.base) if self.base else None
        return None if v is None else v.measured

    @property
    def equal_measured(self) -> eqv.Difference | None:
        """The equal-compute point minus the reference, with its interval."""
        return self._measured_at(self.equal)

    @property
    def equal_flops_measured(self) -> eqv.Difference | None:
        """The equal-FLOPs point minus the reference, with its interval."""
        return self._measured_at(self.equal_flops)

    @property
    def flops_gap(self) -> str:
        """Why there is no equal-FLOPs point where there is none: 'not counted', 'partial' ('' where there is
        one, or the budgets' counts bracket nothing)."""
        counts = [s.flops for s in (*self.curve, self.base) if s is not None]
        if any(f.value is None for f in counts):
            return "training FLOPs not counted"
        if self.equal_flops.state == "none" and any(f.partial for f in counts):
            return "training FLOP counts partial, and a lower bound places no point"
        return ""

    def _equal_words(self, eq: EqualCompute, d: eqv.Difference | None) -> str:
        if eq.state == "below":
            return "below the smallest budget run"
        if eq.state == "above":
            return "above the largest budget run"
        if eq.point is None:
            return fmt.MISSING
        budgets = eq.point.budget.replace("–", " and ")
        where = f"at {budgets}" if eq.state == "at budget" else f"between {budgets}"
        if d.low is None:
            return f"{fmt.pct(eq.point.accuracy.mean)} {where}; {100 * d.point:+.1f} points ({interval_words(d)})"
        return f"{fmt.pct(eq.point.accuracy.mean)} {where}; {100 * d.point:+.1f} points, 90% interval " \
            + interval_text(d)

    @property
    def equal_text(self) -> str:
        """Accuracy at equal compute as a reader says it: at the baseline's seconds with the equal-FLOPs point
        beside it, or (across kinds of hardware) at its training FLOPs alone."""
        flops = self.equal_flops
        if flops.state != "none":
            flops_words = f"at its training FLOPs: {self._equal_words(flops, self.equal_flops_measured)}"
        else:
            flops_words = self.flops_gap or "at its training FLOPs: —"
        if self.measure == cmp.FLOPS:
            return flops_words if flops.state != "none" else \
                f"no equal-compute point: runs on different hardware, and {flops_words}"
        return f"{self._equal_words(self.equal, self.equal_measured)}; {flops_words}"

    @property
    def largest_text(self) -> str:
        """The 2019 form at the largest budget run."""
        v = self.largest
        return fmt.MISSING if v is None else f"{v.automl.budget}: {short_compare(v)}"

    @property
    def notes(self) -> tuple[str, ...]:
        """What a reader must know to trust the row: falls, budgets left out, intervals without test images."""
        notes = []
        if len(self.curve) == 1:
            notes.append("one budget run: no curve")
        for lo, hi in zip(self.curve, self.curve[1:], strict=False):
            if hi.accuracy.mean < lo.accuracy.mean - 1e-12:
                notes.append(f"accuracy falls from {lo.budget} to {hi.budget} "
                             f"({fmt.pct(lo.accuracy.mean)} to {fmt.pct(hi.accuracy.mean)})")
        if self.curve and all(s.ok == 1 for s in self.curve):
            notes.append("1 seed per budget: no interval")
        if any(d.source == eqv.SEEDS_ONLY for d in self.measured):
            notes.append("intervals over seeds only: the runs kept no predictions to pair test images")
        for s in self.skipped:
            notes.append(f"{s.budget} left out: no ok run ({s.not_ok_text or 'no accuracy'})")
        if self.plateau is not None and self.plateau.state in ("top", "one budget"):
            notes.append("the baseline's reference is the top of its ladder: more compute may make it stronger"
                         if self.plateau.state == "top" else "the baseline ran one budget: its plateau is unmeasured")
        return tuple(notes)


def parities(summaries: list[ConfigSummary], tolerance: float = DEFAULT_TOLERANCE) -> list[Parity]:
    """One Parity per AutoML system of this group of data, systems by name."""
    found = plateau(summaries, tolerance)
    result = []
    for system in sorted({s.system for s in summaries if s.system_class == "automl"}):
        mine = [s for s in summaries if s.system == system]  # summarize sorts budgets ascending
        curve = tuple(s for s in mine if s.accuracy.mean is not None)
        skipped = tuple(s for s in mine if s.accuracy.mean is None)
        result.append(Parity(mine[0].group, system, found, curve, skipped, tolerance))
    return result


def _points(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _eq(value: Callable[[EqualCompute, eqv.Difference], Any]) -> Callable[[Parity], Any]:
    """A value of the equal-compute point against the baseline, None where there is none."""

    def get(p: Parity) -> Any:
        eq = p.equal
        return None if eq.point is None else value(eq, p.equal_measured)

    return get


def _eqf(value: Callable[[EqualCompute, eqv.Difference], Any]) -> Callable[[Parity], Any]:
    """A value of the equal-FLOPs point against the baseline, None where there is none."""

    def get(p: Parity) -> Any:
        eq = p.equal_flops
        return None if eq.point is None else value(eq, p.equal_flops_measured)

    return get


def _flops(budget: Callable[[Parity], ConfigSummary | None], part: str = "value") -> Callable[[Parity], Any]:
    """The FLOP ratio of a budget to the baseline (or its bound), None where there is none."""

    def get(p: Parity) -> Any:
        f = p.flops_ratio(budget(p))
        return None if f is None or f.value is None else getattr(f, part)

    return get


def _base(value: Callable[[ConfigSummary], Any]) -> Callable[[Parity], Any]:
    return lambda p: value(p.base) if p.base else None


def _count(needed: tuple[int, int] | None, which: int) -> int | None:
    return None if needed is None else needed[which]


def _resolving(value: Callable[[eqv.Difference, float], Any]) -> Callable[[Parity], Any]:
    return lambda p: None if p.resolving is None else value(p.resolving, p.tolerance)


# Compute to parity and accuracy at equal compute: one row per data set and AutoML system.
PARITY: TableSpec[Parity] = TableSpec(
    (
        *group_columns(lambda p: p.group),
        Column("", "Data", lambda p: p.group.label),
        Column("system", "AutoML", lambda p: p.system),
        Column("budgets", "", lambda p: ", ".join(s.budget for s in p.curve)),
        Column("budget_verdicts", "Budgets", lambda p: p.budgets_text),
        Column("baseline", "", _base(lambda b: b.system)),
        Column("baseline_budget", "", _base(lambda b: b.budget)),
        Column("baseline_plateau", "", lambda p: p.plateau.state if p.plateau else None),
        Column("", "Baseline", _base(lambda b: f"{b.system} ({b.budget}): {fmt.pct(b.accuracy.mean)} "
                                                f"in {fmt.duration(b.fit_s)}, "
                                                + (b.flops.text if b.flops.value else f"FLOPs {b.flops.text}")),
               lambda t: t or fmt.MISSING),
        Column("baseline_accuracy_mean", "", _base(lambda b: b.accuracy.mean)),
        Column("baseline_fit_s", "", _base(lambda b: b.fit_s)),
        Column("baseline_train_flops", "", _base(lambda b: b.flops.value)),
        Column("compute_measure", "", lambda p: p.measure),
        Column("tolerance_points", "", lambda p: 100 * p.tolerance),
        Column("parity", "", lambda p: p.outcome),
        Column("parity_budget", "", lambda p: p.reached.budget if p.reached else None),
        Column("parity_compute_ratio", "", lambda p: p.parity_ratio),
        Column("parity_lower_bound_ratio", "", lambda p: p.lower_bound_ratio),
        Column("parity_flops_ratio", "", _flops(lambda p: p.reached)),
        Column("parity_flops_bound", "", _flops(lambda p: p.reached, "bound")),
        Column("parity_energy_ratio", "", lambda p: Versus(p.reached, p.base).energy_ratio if p.reached else None),
        Column("resolvable_tolerance_points", "", _resolving(lambda d, t: 100 * d.half_width)),
        Column("images_needed", "", _resolving(lambda d, t: _count(d.needed_to_decide(t, False, True), 1))),
        Column("seeds_needed", "", _resolving(lambda d, t: _count(d.needed_to_decide(t, True, False), 0))),
        Column("", "Compute to parity", lambda p: p.parity_text),
        Column("equal_compute", "", lambda p: p.equal.state),
        Column("equal_compute_between", "", _eq(lambda e, d: e.point.budget)),
        Column("equal_compute_accuracy", "", _eq(lambda e, d: e.point.accuracy.mean)),
        Column("equal_compute_difference_points", "", _eq(lambda e, d: _points(d.point))),
        Column("equal_compute_ci90_low_points", "", _eq(lambda e, d: _points(d.low))),
        Column("equal_compute_ci90_high_points", "", _eq(lambda e, d: _points(d.high))),
        Column("equal_compute_interval", "", _eq(lambda e, d: d.source)),
        Column("equal_flops", "", lambda p: p.equal_flops.state),
        Column("equal_flops_between", "", _eqf(lambda e, d: e.point.budget)),
        Column("equal_flops_accuracy", "", _eqf(lambda e, d: e.point.accuracy.mean)),
        Column("equal_flops_difference_points", "", _eqf(lambda e, d: _points(d.point))),
        Column("equal_flops_ci90_low_points", "", _eqf(lambda e, d: _points(d.low))),
        Column("equal_flops_ci90_high_points", "", _eqf(lambda e, d: _points(d.high))),
        Column("", "Accuracy at the baseline's compute", lambda p: p.equal_text),
        Column("largest_budget", "", lambda p: p.largest.automl.budget if p.largest else None),
        Column("largest_compute_ratio", "", lambda p: p.largest.compute_ratio if p.largest else None),
        Column("largest_flops_ratio", "", _flops(lambda p: p.curve[-1] if p.curve else None)),
        Column("largest_flops_bound", "", _flops(lambda p: p.curve[-1] if p.curve else None, "bound")),
        Column("largest_difference_points", "", lambda p: _points(p.largest.difference) if p.largest else None),
        Column("largest_ci90_low_points", "", lambda p: _points(p.largest.measured.low) if p.largest else None),
        Column("largest_ci90_high_points", "", lambda p: _points(p.largest.measured.high) if p.largest else None),
        Column("largest_resolution", "", lambda p: p.largest.resolution if p.largest else None),
        Column("", "At the largest budget", lambda p: p.largest_text),
        Column("notes", "Notes", lambda p: "; ".join(p.notes), lambda t: t or fmt.MISSING),
    )
)


def caption(tolerance: float) -> str:
    """What the parity table's columns mean, with the tolerance."""
    return (
        "Each budget's verdict against the baseline's reference is by two one-sided tests at a tolerance of "
        f"{_tol(tolerance)}: equivalent where the 90% interval of the accuracy difference lies within "
        f"±{100 * tolerance:g} points, worse or better where it lies wholly beyond, not worse where it lies above "
        f"-{100 * tolerance:g} but reaches past +{100 * tolerance:g}, undetermined where it reaches below "
        f"-{100 * tolerance:g} and above it. The "
        "interval carries both sources of variance, paired by seed and by test image (seeds only where the runs "
        "kept no predictions). Compute to parity is the ratio of mean fit times (of a search spread over several "
        "processes, times the bundles of resources it reserved) at the smallest budget equivalent, better or "
        "not worse (its interval above -tolerance); "
        "\"more than\" only where every budget is worse. Accuracy at the baseline's compute is interpolated "
        "linearly in log fit time between the two budgets whose fit times bracket the baseline's, seed by seed "
        "and image by image, never extrapolated; then its difference from the baseline in points and the 90% "
        "interval. Beside each, the same in training FLOPs (counted from the models: every trial, refit and "
        "epoch, forward and backward; augmentation and data loading not counted): \"at least\" or \"at most\" "
        "where a count left layers out, \"not counted\" where a run has none. Where a group's runs came from "
        "several kinds of hardware, seconds do not compare and every ratio is of training FLOPs alone."
    )


def sentence(p: Parity) -> str | None:
    """The curve in one sentence, for a system that ran two or more budgets (None otherwise)."""
    if len(p.curve) < 2 or p.base is None:
        return None
    name = p.base.system
    budgets = ", ".join(s.budget for s in p.curve)
    text = f"{p.system} over {budgets}: parity with {name} (within {_tol(p.tolerance)}) is {p.parity_text}"
    if p.measure == cmp.FLOPS:
        text += f"; {p.equal_text}"
    elif p.equal.point is not None:
        text += f"; at {name}'s compute it has {p.equal_text}"
    elif p.equal.state in ("below", "above"):
        text += f"; {name}'s compute is {p.equal_text}"
    falls = [n for n in p.notes if n.startswith("accuracy falls")]
    return text + (f"; {'; '.join(falls)}" if falls else "") + "."


def _share(p: Parity, s: ConfigSummary, bound: str = "") -> tuple[str, str]:
    """A budget's ratio to the baseline for the answer, and the FLOP ratio beside it ('' in FLOPs already):
    ('2.4x', '1.8x in training FLOPs'), ('at least 2.4x', ''), or why there is none."""
    if p.measure == cmp.FLOPS:
        f = p.flops_ratio(s)
        if f.value is None:
            return "an unmeasured share of", p.not_taken(s)
        return (f.words if not bound else f"{bound} {fmt.ratio_words(f.value)}"), ""
    ratio = p._ratio(s)
    return (fmt.MISSING if ratio is None else f"{bound} {fmt.ratio_words(ratio)}".strip()), p.flops_note(s)


def _match_clause(p: Parity, name: str) -> str:
    """How much of the baseline's compute the system needed to match it, as the answer says it (the system
    named first)."""
    tol = _tol(p.tolerance)
    unit = p.unit
    if p.outcome == "reached":
        s = p.reached
        how = {eqv.EQUIVALENT: "matched", eqv.BETTER: "passed"}.get(p.states[p.curve.index(s)], "matched or passed")
        words, note = _share(p, s)
        if s is p.curve[0] and p.measure == cmp.FLOPS and p.flops_ratio(s).value is not None:
            bound = p.at_most(s, "its")
            at = "" if bound.startswith("no more than") else f", at {s.budget}"
            return f"{p.system} {how} {name} (within {tol}) with {bound}{at}, its smallest budget"
        if s is p.curve[0]:
            return (f"{p.system} {how} {name} (within {tol}) with at most {words} its {unit}"
                    + (f" ({note})" if note else "") + f", at {s.budget}, its smallest budget")
        at = "at" if p.measure == cmp.TIME else "with"
        return f"{p.system} {how} {name} (within {tol}) {at} {words} its {unit} ({s.budget}" \
            + (f"; {note})" if note else ")")
    if p.outcome == "not reached":
        s = p.curve[-1]
        if p.measure == cmp.FLOPS and p.flops_ratio(s).bound == cmp.AT_MOST:
            need = p._more_than(s)
        else:
            words, note = _share(p, s, "more than")
            need = f"{words} {name}'s {unit}" + (f" ({note})" if note else "")
        return f"{p.system} needed {need} to match it (every budget worse by more than {tol})"
    budgets = p.undetermined
    at = f"every budget ({budgets[0].budget} to {budgets[-1].budget})" if len(budgets) == len(p.curve) > 1 else \
        ", ".join(s.budget for s in budgets)
    worse = p.budgets_at(eqv.WORSE)
    if worse:
        at += f" (worse at {', '.join(s.budget for s in worse)})"
    d = p.resolving
    width = "" if d is None else f"; the narrowest 90% interval is ±{100 * d.half_width:.1f} points"
    return f"whether {p.system} matched {name} within {tol} is undetermined at {at}{width}"


def _at_equal(p: Parity, name: str, measure: str) -> str:
    """'; at equal compute it was 4.9 points behind (...)' in seconds or training FLOPs ('' where there is no
    point to say)."""
    eq = p.equal_in(measure)
    what = "compute" if measure == cmp.TIME else "training FLOPs"
    d = p._measured_at(eq)
    if d is not None:
        return f"; at equal {what} it was {_difference_words(d)}"
    if eq.state in ("below", "above"):
        more = "more" if eq.state == "below" else "less"
        amount = fmt.duration(p.base.compute_s) if measure == cmp.TIME else fmt.flops(p.base.flops.value)
        return f"; every budget ran {more} than {name}'s {amount} of {what}, so none compares at equal {what}"
    return ""


def answer_sentences(found: list[Parity]) -> list[str]:
    """One sentence per data set and AutoML system that answers the report's question, for its top: the compute
    the system needed to match the baseline and its accuracy at the baseline's compute, with the interval; in
    seconds with training FLOPs beside them, or in training FLOPs alone across kinds of hardware."""
    sentences = []
    for p in found:
        if p.base is None or not p.curve:
            continue
        name = p.base.system
        text = f"On {p.group.label}, {_match_clause(p, name)}"
        if p.measure == cmp.TIME:
            text += _at_equal(p, name, cmp.TIME)
        flops = _at_equal(p, name, cmp.FLOPS)
        text += flops if flops or p.measure == cmp.TIME else f"; no equal-compute point: {p.flops_gap or 'not placed'}"
        if p.plateau.state == "top":
            text += f"; {name}'s reference, {p.base.budget}, is the top of a ladder that may still be climbing"
        sentences.append(text + ".")
    return sentences
