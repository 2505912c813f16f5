"""Compute to parity and accuracy at equal compute, on hand-made budget curves with known answers.

The baseline (resnet, 3 seeds) reaches 97.1% in 100 s; the AutoML system runs budgets 1m, 2m, 4m and 8m with
mean fit times 60, 120, 240 and 480 s, so compute ratios are 0.6, 1.2, 2.4 and 4.8.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest

from bench.report import parity, tables
from bench.report.formatting import absent as fmt_absent
from bench.report.runs import grouped, label_data, load_runs
from tests.bench.report.report_sample import run, write_runs

BASE = (0.970, 0.971, 0.972)
FIT = {"1m": 60.0, "2m": 120.0, "4m": 240.0, "8m": 480.0}


def _baseline(fit_s: float = 100.0, accuracy: tuple[float, ...] = BASE) -> list:
    return [run("d", "x", "resnet", "full", s, accuracy=a, fit_s=fit_s) for s, a in enumerate(accuracy)]


def _automl(curve: dict[str, tuple[float, ...]], seed_offset: int = 0, **fields) -> list:
    return [
        run("d", "x", "autokeras", budget, seed + seed_offset, accuracy=a, fit_s=fields.pop("fit_s", FIT[budget]))
        for budget, accs in curve.items()
        for seed, a in enumerate(accs)
    ]


def analyse(tmp_path: Path, rows: list, tolerance: float = parity.DEFAULT_TOLERANCE) -> parity.Parity:
    write_runs(tmp_path, rows)
    [(group, part)] = grouped(load_runs(tmp_path))
    [found] = parity.parities(tables.summarize(group, part, "resnet"), tolerance)
    return found


CLIMB = {
    "1m": (0.900, 0.910, 0.920),
    "2m": (0.950, 0.950, 0.960),
    "4m": (0.968, 0.970, 0.972),  # within 0.1 points of the baseline, seed by seed
    "8m": (0.974, 0.975, 0.976),
}


def test_parity_at_the_right_budget_paired(tmp_path: Path):
    p = analyse(tmp_path, _baseline() + _automl(CLIMB))
    assert [s.budget for s in p.curve] == ["1m", "2m", "4m", "8m"]
    assert p.states == ("short", "short", "parity", "parity")
    assert p.outcome == "reached" and p.reached.budget == "4m"
    assert Versus_of(p, "4m").interval == "paired"
    assert p.parity_ratio == pytest.approx(2.4)
    assert p.parity_text == "2.4x the baseline's compute (reached at 4m)"
    row = parity.PARITY.csv([p]).iloc[0]
    assert row["parity"] == "reached" and row["parity_budget"] == "4m"
    assert row["parity_compute_ratio"] == pytest.approx(2.4)
    assert fmt_absent(row["parity_lower_bound_ratio"])
    assert row["tolerance_points"] == pytest.approx(0.5)


def Versus_of(p: parity.Parity, budget: str) -> tables.Versus:  # noqa: N802 - reads as the type it returns
    return tables.Versus(next(s for s in p.curve if s.budget == budget), p.base)


def test_parity_at_the_right_budget_unpaired(tmp_path: Path):
    p = analyse(tmp_path, _baseline() + _automl(CLIMB, seed_offset=10))  # no seed in common
    assert Versus_of(p, "4m").interval == "unpaired"
    assert p.reached.budget == "4m"
    assert p.parity_text == "2.4x the baseline's compute (reached at 4m)"


def test_never_reached_gives_the_largest_budget_as_a_lower_bound(tmp_path: Path):
    low = {b: tuple(a - 0.05 for a in accs) for b, accs in CLIMB.items()}
    p = analyse(tmp_path, _baseline() + _automl(low))
    assert p.outcome == "not reached" and p.reached is None
    assert p.lower_bound_ratio == pytest.approx(4.8)
    assert p.parity_text == "not reached by 8m: more than 4.8x the baseline's compute"
    assert p.largest_text == "8m: 4.8x the compute for 4.6 points less"


def test_reached_at_the_first_budget_is_an_upper_bound(tmp_path: Path):
    high = {b: tuple(a + 0.08 for a in accs) for b, accs in CLIMB.items()}
    p = analyse(tmp_path, _baseline() + _automl(high))
    assert p.reached.budget == "1m"
    assert p.parity_text == "at most 0.6x the baseline's compute: reached at 1m, the smallest budget run"


def test_equal_compute_is_interpolated_in_log_time_per_seed(tmp_path: Path):
    p = analyse(tmp_path, _baseline() + _automl(CLIMB))
    eq = p.equal
    assert eq.state == "interpolated" and eq.method == "per seed" and eq.point.budget == "1m–2m"
    w = math.log(100 / 60) / math.log(120 / 60)  # 0.737: 0.910 + w * (0.953 - 0.910)
    expected = [(1 - w) * a + w * b for a, b in zip(CLIMB["1m"], CLIMB["2m"], strict=True)]
    assert eq.point.accuracy.mean == pytest.approx(sum(expected) / 3)
    assert eq.point.accuracy.mean == pytest.approx(0.941935, abs=1e-6)
    assert dict(eq.point.seed_accuracy) == pytest.approx(dict(enumerate(expected)))
    assert eq.point.accuracy.kind == "ci" and eq.point.accuracy.low < eq.point.accuracy.mean < eq.point.accuracy.high
    v = eq.versus(p.base)
    assert v.interval == "paired" and v.difference == pytest.approx(sum(expected) / 3 - 0.971)
    row = parity.PARITY.csv([p]).iloc[0]
    assert row["equal_compute"] == "interpolated" and row["equal_compute_interval"] == "per seed"
    assert row["equal_compute_accuracy"] == pytest.approx(0.941935, abs=1e-6)
    assert p.equal_text.startswith("94.2% (") and p.equal_text.endswith("per seed) between 1m and 2m; -2.9 points")


def test_equal_compute_interpolates_the_interval_ends_without_paired_seeds(tmp_path: Path):
    # The two bracketing budgets share no seed: their per-seed values cannot be interpolated.
    rows = _automl({"1m": CLIMB["1m"]}, seed_offset=10) + _automl({"2m": CLIMB["2m"]}, seed_offset=20)
    p = analyse(tmp_path, _baseline() + rows)
    eq = p.equal
    assert eq.method == "interval ends"
    w = math.log(100 / 60) / math.log(2)
    lo, hi = (next(s for s in p.curve if s.budget == b).accuracy for b in ("1m", "2m"))
    assert eq.point.accuracy.low == pytest.approx((1 - w) * lo.low + w * hi.low)
    assert eq.point.accuracy.high == pytest.approx((1 - w) * lo.high + w * hi.high)
    assert eq.point.accuracy.mean == pytest.approx(0.941935, abs=1e-6)


@pytest.mark.parametrize(("fit_s", "text"), [(30.0, "below the smallest budget run"),
                                             (1000.0, "above the largest budget run")])
def test_baseline_time_outside_the_automl_range_is_not_extrapolated(tmp_path: Path, fit_s: float, text: str):
    p = analyse(tmp_path, _baseline(fit_s) + _automl(CLIMB))
    assert p.equal.point is None and p.equal_text == text
    assert fmt_absent(parity.PARITY.csv([p]).iloc[0]["equal_compute_accuracy"])


def test_one_seed_per_budget_leaves_parity_unresolved(tmp_path: Path):
    one = {b: accs[:1] for b, accs in CLIMB.items()}
    p = analyse(tmp_path, _baseline() + _automl(one))
    assert p.outcome == "unresolved" and p.reached is None
    assert p.parity_text == "unresolved: 1 seed (within tolerance at 4m, 8m)"
    assert "1 seed per budget: no interval" in p.notes
    assert p.equal.point.accuracy.low is None
    assert "(no interval: 1 seed)" in p.equal_text
    assert "not resolved: < 2 seeds" in p.largest_text


def test_failed_budget_is_left_out_of_the_curve_and_named(tmp_path: Path):
    rows = _baseline() + _automl({b: a for b, a in CLIMB.items() if b != "4m"})
    rows += [run("d", "x", "autokeras", "4m", s, "failed", error="OOM") for s in range(3)]
    p = analyse(tmp_path, rows)
    assert [s.budget for s in p.curve] == ["1m", "2m", "8m"]
    assert "4m left out: no ok run (3 failed)" in p.notes
    assert p.reached.budget == "8m"


def test_falling_accuracy_at_a_larger_budget_is_noted(tmp_path: Path):
    fall = dict(CLIMB, **{"8m": (0.940, 0.941, 0.942)})
    p = analyse(tmp_path, _baseline() + _automl(fall))
    assert "accuracy falls from 4m to 8m (97.0% to 94.1%)" in p.notes
    assert "accuracy falls from 4m to 8m" in parity.sentence(p)
    assert p.reached.budget == "4m"  # parity at 4m stands: the fall does not undo a measured budget


def test_a_wide_interval_alone_is_not_parity(tmp_path: Path):
    """The malaria example: 92.7% against 97.3%, paired interval -10.6 to +1.4 points: unresolved, yet 4.6 points
    short, far outside the tolerance."""
    base = (0.972, 0.975, 0.972)
    automl = (0.955, 0.950, 0.876)
    rows = _baseline(145.0, base) + [
        run("d", "x", "autokeras", b, s, accuracy=a + d, fit_s=f)
        for b, f, d in (("3m", 200.0, 0.0), ("6m", 380.0, 0.001))
        for s, a in enumerate(automl)
    ]
    p = analyse(tmp_path, rows)
    v = tables.Versus(p.curve[0], p.base)
    assert v.resolution == "overlap" and v.paired.low < 0 < v.paired.high
    assert p.states == ("short", "short") and p.outcome == "not reached"


def test_within_tolerance_but_resolved_worse_is_not_parity(tmp_path: Path):
    # 0.3 points below, seed by seed: inside the tolerance, yet the paired interval excludes 0.
    close = {"1m": tuple(a - 0.003 for a in BASE), "2m": tuple(a - 0.0031 for a in BASE)}
    p = analyse(tmp_path, _baseline() + _automl(close))
    assert p.states == ("worse", "worse") and p.outcome == "not reached"
    assert "within tolerance but resolved worse at 1m, 2m" in p.notes


def test_tolerance_is_a_parameter(tmp_path: Path):
    # 4m is 0.1 points short on average: outside a 0.05-point tolerance, so parity comes at 8m.
    p = analyse(tmp_path, _baseline() + _automl(CLIMB), tolerance=0.0005)
    assert p.reached.budget == "8m"
    assert "within 0.05 points" in parity.caption(0.0005)


def test_fingerprints_of_one_group_are_never_pooled(tmp_path: Path):
    rows = []
    for fp, acc in (("aaaaaaaa11112222", 0.90), ("bbbbbbbb33334444", 0.80)):
        rows += [dataclasses.replace(r, run_id=f"{r.run_id}-{fp[:2]}", data_fingerprint=fp)
                 for r in _baseline(100.0, (acc, acc + 0.01, acc + 0.02))]
    write_runs(tmp_path, rows)
    frame, notes = label_data(load_runs(tmp_path))
    assert sorted(frame["dataset_options"].unique()) == ["data=aaaaaaaa", "data=bbbbbbbb"]
    assert len(notes) == 1 and "aaaaaaaa11112222, bbbbbbbb33334444" in notes[0]
    labels = [g.label for g, _ in grouped(frame)]
    assert labels == ["d (x split; data=aaaaaaaa)", "d (x split; data=bbbbbbbb)"]

    from bench.report import write_report

    write_report(tmp_path)
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv", keep_default_na=False)
    assert summary.set_index("dataset_options")["accuracy_mean"].to_dict() == pytest.approx(
        {"data=aaaaaaaa": 0.91, "data=bbbbbbbb": 0.81}
    )
    text = (tmp_path / "REPORT.md").read_text()
    assert "never averaged together" in text and "## d (x split; data=bbbbbbbb)" in text


def test_one_fingerprint_and_unrecorded_ones_leave_the_group_whole(tmp_path: Path):
    rows = _baseline()
    rows[0] = dataclasses.replace(rows[0], data_fingerprint="aaaaaaaa11112222")
    write_runs(tmp_path, rows)
    frame, notes = label_data(load_runs(tmp_path))
    assert notes == () and set(frame["dataset_options"]) == {""}


def test_cli_passes_the_tolerance_in_points(tmp_path: Path):
    from bench.cli import main

    write_runs(tmp_path, _baseline() + _automl(CLIMB))
    assert main(["report", "--out", str(tmp_path), "--parity-tolerance", "0.05"]) == 0
    row = pd.read_csv(tmp_path / "tables" / "parity.csv").iloc[0]
    assert row["tolerance_points"] == pytest.approx(0.05) and row["parity_budget"] == "8m"
    text = (tmp_path / "REPORT.md").read_text()
    head, detail = text.split("\n## d (x split)\n")
    # The headline (figure and parity table) comes first; each verdict is said once, in the data's section.
    assert "plots/d-x_headline.png" in head and "| AutoML | Budgets |" in head
    assert "## Verdicts" not in text
    assert detail.count("autokeras (8m, 3 seeds) reached") == 1 and "autokeras over 1m, 2m, 4m, 8m" in detail


def test_the_headline_leaves_out_data_with_no_ok_run_and_says_so(tmp_path):
    from bench.report import write_report
    from tests.bench.report.report_sample import run, write_runs

    rows = [run("digits", "s", "resnet", "30s", 0, accuracy=0.99, fit_s=10.0),
            run("digits", "s", "autokeras", "30s", 0, accuracy=0.98, fit_s=30.0),
            run("cifar10", "official", "resnet", "30s", 0, status="skipped", error="no data"),
            run("cifar10", "official", "autokeras", "30s", 0, status="skipped", error="no data")]
    write_runs(tmp_path, rows)
    write_report(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    headline = text[:text.index("\n## ")]  # what comes before the first section: the answer and headline
    assert "### digits" in headline and "### cifar10" not in headline
    assert "No run ended ok on cifar10" in headline


def test_a_search_over_several_processes_is_placed_by_its_summed_compute(tmp_path: Path):
    """Two processes held for 30 s and 60 s of wall time are 60 s and 120 s of compute: the curve, the parity
    ratio and the equal-compute point read the same as the one-process curve of those computes."""
    rows = [
        run("d", "x", "autokeras", budget, seed, accuracy=a, fit_s=FIT[budget] / 2, held_s=FIT[budget],
            search_workers=2)
        for budget, accs in CLIMB.items()
        for seed, a in enumerate(accs)
    ]
    p = analyse(tmp_path, _baseline() + rows)
    one_process = analyse(tmp_path / "one", _baseline() + _automl(CLIMB))
    assert p.reached.budget == one_process.reached.budget == "4m"
    assert p.parity_ratio == pytest.approx(2.4) and p.reached.fit_s == 120.0
    assert p.equal.point.accuracy.mean == pytest.approx(one_process.equal.point.accuracy.mean)


def test_automl_runs_without_a_baseline_get_a_report_that_says_there_is_none(tmp_path: Path):
    """Two variants of one searcher and no baseline (as a study of the search alone): the report is written, the
    curve has no reference and nothing claims parity."""
    from bench.report import write_report

    rows = [run("d", "x", "autokeras", "2m", n, accuracy=a, fit_s=120.0, system_options=f"search_workers={n}",
                search_workers=n if n > 1 else None, held_s=120.0 if n > 1 else None)
            for n, a in ((1, 0.92), (2, 0.90))]
    write_runs(tmp_path, rows)
    write_report(tmp_path)
    assert (tmp_path / "REPORT.md").exists()
    [(group, part)] = grouped(load_runs(tmp_path))
    for found in parity.parities(tables.summarize(group, part, "resnet"), parity.DEFAULT_TOLERANCE):
        assert found.base is None and found.reached is None and found.outcome == "no reference"
