"""Verdicts: plain sentences from the numbers, never claiming a difference the seeds do not resolve."""

from __future__ import annotations

from collections import Counter

from bench.report import compute as cmp
from bench.report import formatting as fmt
from bench.report.equivalence import DEFAULT_TOLERANCE
from bench.report.runs import Group
from bench.report.tables import ConfigSummary, Versus, interval_words, reference


def _reached(s: ConfigSummary) -> str:
    # A budget that bounded the search only is the exception worth saying; 'search and refit' is the rule.
    scope = ", search only" if s.system_class == "automl" and s.budget_scope == "search" else ""
    seeds = fmt.plural(s.ok, "seed")
    return f"{s.system} ({s.budget}{scope}, {seeds}) reached {fmt.pct(s.accuracy.mean)} in {fmt.duration(s.fit_s)}"


def _no_success(system: str, summaries: list[ConfigSummary]) -> str:
    counts: Counter[str] = Counter()
    for s in summaries:
        if s.system == system:
            counts.update(dict(s.statuses))
    how = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"{system} has no successful run" + (f" ({how})" if how else "")


def _point_words(difference: float) -> str:
    amount = f"{abs(100 * difference):.1f}"
    return f"{amount} point" if amount == "1.0" else f"{amount} points"


def flops_beside(v: Versus) -> str:
    """The FLOP ratio said beside a ratio of seconds, and the energy ratio where both sides measured it:
    ' (1.8x in training FLOPs; 2.1x in energy)', ' (training FLOPs not counted)'."""
    f = v.flops_ratio
    said = f"{f.words} in training FLOPs" if f.value is not None else f.why
    if v.energy_ratio is not None:
        said += f"; {fmt.ratio_words(v.energy_ratio)} in energy"
    return f" ({said})"


def _compute_words(v: Versus) -> str:
    """'26x the compute (20x in training FLOPs)', with the wall time beside it for a search spread over several
    processes; across kinds of hardware the ratio of training FLOPs alone, or why there is none."""
    if v.measure == cmp.FLOPS:
        f = v.flops_ratio
        if f.value is None:
            return f"no compute ratio (runs on different hardware and {f.why})"
        return f"{f.words} the training FLOPs"
    if v.time_ratio is None:
        return "fit time not recorded"
    words = f"{fmt.ratio_words(v.time_ratio)} the compute"
    a = v.automl
    if a.search_workers > 1 and a.fit_s is not None:
        words += f" ({fmt.duration(a.fit_s)} of wall time on up to {a.search_workers} processes)"
    return words + flops_beside(v)


def short_compare(v: Versus) -> str:
    """The 2019 form for a table cell: '26x the compute for 1.0 point less (90% interval -1.6 to -0.4)', '(not
    resolved)' where the interval includes 0."""
    compute = _compute_words(v)
    d = v.difference
    if d is None:
        return compute
    if f"{abs(100 * d):.1f}" == "0.0":
        amount = "for the same accuracy"
    else:
        amount = f"for {_point_words(d)} {'more' if d > 0 else 'less'}"
    m = v.measured
    if v.resolution == "too few seeds":
        return f"{compute} {amount} (not resolved: < 2 seeds)"
    interval = f"90% interval {100 * m.low:+.1f} to {100 * m.high:+.1f}"
    return f"{compute} {amount} ({'not resolved; ' if v.resolution == 'overlap' else ''}{interval})"


def compare(v: Versus) -> str:
    """The clause after the colon: compute ratio and whether the accuracy difference holds."""
    compute = _compute_words(v)
    d = v.difference
    m = v.measured
    if v.resolution == "too few seeds":
        few = ", ".join(f"{s.system} {s.ok}" for s in (v.automl, v.baseline) if s.ok < 2)
        return f"{compute}; with fewer than 2 ok seeds ({few}), the difference of {_point_words(d)} is not resolved"
    interval = f"90% interval of the difference {100 * m.low:+.1f} to {100 * m.high:+.1f} points, {interval_words(m)}"
    if v.resolution == "overlap":
        return f"{compute}; the difference of {_point_words(d)} is not resolved ({interval}, which includes 0)"
    return f"{compute} for {_point_words(d)} {'more' if d > 0 else 'less'} ({interval})"


def verdicts(group: Group, summaries: list[ConfigSummary], baseline: str,
             tolerance: float = DEFAULT_TOLERANCE) -> list[str]:
    """One sentence per AutoML system on this data (one when no AutoML system ran); the data is not named: the
    sentences stand under its heading."""
    base = reference(summaries, "baseline", tolerance)
    base_ran = any(s.system_class == "baseline" for s in summaries)
    base_text = (
        _reached(base) if base else (_no_success(baseline, summaries) if base_ran else f"{baseline} was not run")
    )
    automl_systems = sorted({s.system for s in summaries if s.system_class == "automl"})
    if not automl_systems:
        return [f"No AutoML system was run; {base_text}."]
    sentences = []
    for system in automl_systems:
        best = reference([s for s in summaries if s.system == system], "automl")
        if best is None:
            sentences.append(f"{_no_success(system, summaries)}; {base_text}.")
        elif base is None:
            sentences.append(f"{_reached(best)}; {base_text}, so there is no comparison.")
        else:
            sentences.append(f"{_reached(best)}; {base_text}: {compare(Versus(best, base))}.")
    return sentences
