"""Compute to parity and accuracy at equal compute, on hand-made budget curves with known answers.

The baseline (resnet, 3 seeds) reaches 97.1% in 100 s; the AutoML system runs budgets 1m, 2m, 4m and 8m with
mean fit times 60, 120, 240 and 480 s, so compute ratios are 0.6, 1.2, 2.4 and 4.8. These runs keep no
predictions, so the intervals are over the seeds alone; the tests with predictions.csv are further down.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report import parity, tables
from bench.report.formatting import absent as fmt_absent
from bench.report.runs import grouped, label_data, load_runs
from tests.bench.report.report_sample import run, write_correct, write_runs

BASE = (0.970, 0.971, 0.972)
NC = "training FLOPs not counted"  # what every ratio says beside seconds where the runs kept no FLOP count
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
    [found] = parity.parities(tables.summarize(group, part, "resnet", tmp_path), tolerance)
    return found


CLIMB = {
    "1m": (0.900, 0.910, 0.920),
    "2m": (0.950, 0.950, 0.960),
    "4m": (0.968, 0.970, 0.972),  # within 0.2 points of the baseline, seed by seed
    "8m": (0.974, 0.975, 0.976),  # 0.4 points above it, seed by seed
}


def test_parity_at_the_right_budget_paired(tmp_path: Path):
    p = analyse(tmp_path, _baseline() + _automl(CLIMB))
    assert [s.budget for s in p.curve] == ["1m", "2m", "4m", "8m"]
    assert p.states == ("worse", "worse", "equivalent", "equivalent")
    assert p.outcome == "reached" and p.reached.budget == "4m"
    at_4m = Versus_of(p, "4m").measured
    assert at_4m.paired and at_4m.source == "seeds only"
    assert p.parity_ratio == pytest.approx(2.4)
    assert p.parity_text == "2.4x the baseline's compute (equivalent at 4m; training FLOPs not counted)"
    assert "intervals over seeds only: the runs kept no predictions to pair test images" in p.notes
    row = parity.PARITY.csv([p]).iloc[0]
    assert row["parity"] == "reached" and row["parity_budget"] == "4m"
    assert row["parity_compute_ratio"] == pytest.approx(2.4)
    assert fmt_absent(row["parity_lower_bound_ratio"])
    assert row["tolerance_points"] == pytest.approx(0.5)


def Versus_of(p: parity.Parity, budget: str) -> tables.Versus:  # noqa: N802 - reads as the type it returns
    return tables.Versus(next(s for s in p.curve if s.budget == budget), p.base)


def test_parity_at_the_right_budget_unpaired(tmp_path: Path):
    p = analyse(tmp_path, _baseline() + _automl(CLIMB, seed_offset=10))  # no seed in common
    assert not Versus_of(p, "4m").measured.paired
    assert p.reached.budget == "4m"
    assert p.parity_text == "2.4x the baseline's compute (equivalent at 4m; training FLOPs not counted)"


def test_every_budget_worse_gives_the_largest_budget_as_a_lower_bound(tmp_path: Path):
    low = {b: tuple(a - 0.05 for a in accs) for b, accs in CLIMB.items()}
    p = analyse(tmp_path, _baseline() + _automl(low))
    assert p.states == ("worse",) * 4
    assert p.outcome == "not reached" and p.reached is None
    assert p.lower_bound_ratio == pytest.approx(4.8)
    assert p.parity_text == (f"more than 4.8x the baseline's compute ({NC}): every budget up to 8m worse by more "
                             "than 0.5 points")
    assert p.largest_text == f"8m: 4.8x the compute ({NC}) for 4.6 points less (90% interval -4.6 to -4.6)"


def test_reached_at_the_first_budget_is_an_upper_bound(tmp_path: Path):
    high = {b: tuple(a + 0.08 for a in accs) for b, accs in CLIMB.items()}
    p = analyse(tmp_path, _baseline() + _automl(high))
    # 1.9 points above on average, its interval (+0.4 to +3.4) above -0.5 and reaching past +0.5: not worse.
    assert p.reached.budget == "1m" and p.states == ("not worse", "better", "better", "better")
    assert p.parity_text == f"at most 0.6x the baseline's compute ({NC}): not worse at 1m, the smallest budget run"


def test_equal_compute_is_interpolated_in_log_time_per_seed(tmp_path: Path):
    p = analyse(tmp_path, _baseline() + _automl(CLIMB))
    eq = p.equal
    assert eq.state == "interpolated" and eq.point.budget == "1m–2m"
    w = math.log(100 / 60) / math.log(120 / 60)  # 0.737: 0.910 + w * (0.953 - 0.910)
    expected = [(1 - w) * a + w * b for a, b in zip(CLIMB["1m"], CLIMB["2m"], strict=True)]
    assert eq.point.accuracy.mean == pytest.approx(sum(expected) / 3)
    assert eq.point.accuracy.mean == pytest.approx(0.941935, abs=1e-6)
    assert dict(eq.point.seed_accuracy) == pytest.approx(dict(enumerate(expected)))
    d = p.equal_measured
    assert d.paired and d.point == pytest.approx(sum(expected) / 3 - 0.971)
    assert d.low < d.point < d.high
    row = parity.PARITY.csv([p]).iloc[0]
    assert row["equal_compute"] == "interpolated" and row["equal_compute_interval"] == "seeds only"
    assert row["equal_compute_accuracy"] == pytest.approx(0.941935, abs=1e-6)
    assert row["equal_compute_ci90_low_points"] == pytest.approx(100 * d.low)
    assert p.equal_text.startswith("94.2% between 1m and 2m; -2.9 points, 90% interval -")
    assert p.equal_text.endswith(f"(3 paired seeds alone: no predictions to pair test images); {NC}")


def test_equal_compute_between_budgets_sharing_no_seed_has_no_interval(tmp_path: Path):
    rows = _automl({"1m": CLIMB["1m"]}, seed_offset=10) + _automl({"2m": CLIMB["2m"]}, seed_offset=20)
    p = analyse(tmp_path, _baseline() + rows)
    assert p.equal.point.accuracy.mean == pytest.approx(0.941935, abs=1e-6)
    assert p.equal_measured.source == "none" and p.equal_measured.low is None
    assert "no interval" in p.equal_text


@pytest.mark.parametrize(("fit_s", "text"), [(30.0, "below the smallest budget run"),
                                             (1000.0, "above the largest budget run")])
def test_baseline_time_outside_the_automl_range_is_not_extrapolated(tmp_path: Path, fit_s: float, text: str):
    p = analyse(tmp_path, _baseline(fit_s) + _automl(CLIMB))
    assert p.equal.point is None and p.equal_text == f"{text}; training FLOPs not counted"
    assert fmt_absent(parity.PARITY.csv([p]).iloc[0]["equal_compute_accuracy"])


def test_one_seed_per_budget_leaves_every_budget_undetermined(tmp_path: Path):
    one = {b: accs[:1] for b, accs in CLIMB.items()}
    p = analyse(tmp_path, _baseline() + _automl(one))
    assert p.states == ("undetermined",) * 4
    assert p.outcome == "undetermined" and p.reached is None
    assert p.parity_text == "undetermined at 1m, 2m, 4m, 8m: no interval with 1 seed"
    assert "1 seed per budget: no interval" in p.notes
    assert "no interval: 1 seed" in p.equal_text
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


def test_a_wide_interval_is_undetermined_not_parity_nor_worse(tmp_path: Path):
    """92.7% against 97.3% over 3 seeds whose differences spread from -1.7 to -9.6 points: the 90% interval
    (-11.9 to +2.7) holds both the tolerance and far worse, so neither parity nor a lower bound is claimed."""
    base = (0.972, 0.975, 0.972)
    automl = (0.955, 0.950, 0.876)
    rows = _baseline(145.0, base) + [
        run("d", "x", "autokeras", b, s, accuracy=a + d, fit_s=f)
        for b, f, d in (("3m", 200.0, 0.0), ("6m", 380.0, 0.001))
        for s, a in enumerate(automl)
    ]
    p = analyse(tmp_path, rows)
    d = p.measured[0]
    assert d.low < -0.005 and d.high > 0.005
    assert p.states == ("undetermined", "undetermined") and p.outcome == "undetermined"
    assert p.reached is None and p.lower_bound_ratio is None
    assert p.parity_text.startswith("undetermined at 3m, 6m: the narrowest 90% interval is ±")


def test_a_resolved_difference_inside_the_tolerance_is_equivalent(tmp_path: Path):
    # 0.3 points below, seed by seed: the difference is resolved, and it lies inside the tolerance.
    close = {"1m": tuple(a - 0.003 for a in BASE), "2m": tuple(a - 0.0031 for a in BASE)}
    p = analyse(tmp_path, _baseline() + _automl(close))
    assert Versus_of(p, "1m").resolution == "resolved"
    assert p.states == ("equivalent", "equivalent") and p.reached.budget == "1m"


def test_tolerance_is_a_parameter(tmp_path: Path):
    # 4m is 0.1 points short on average, its interval 0.2 points wide: undetermined at a 0.05-point tolerance;
    # 8m is 0.4 points above on every seed: better.
    p = analyse(tmp_path, _baseline() + _automl(CLIMB), tolerance=0.0005)
    assert p.states == ("worse", "worse", "undetermined", "better")
    assert p.reached.budget == "8m"
    assert "tolerance of 0.05 points" in parity.caption(0.0005)


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


# With predictions.csv: each run's correctness per test image, so the intervals carry the test images' variance.


def _right(n: int, wrong: Iterable[int]) -> np.ndarray:
    """Correctness on n images: right but for the images listed."""
    correct = np.ones(n, dtype=bool)
    correct[list(wrong)] = False
    return correct


def _predicted(out: Path, system: str, budget: str, fit_s: float, per_seed: list[np.ndarray]) -> list:
    """One ok run per seed with these correctness vectors, its predictions.csv written."""
    return [write_correct(out, run("d", "x", system, budget, seed, fit_s=fit_s), correct)
            for seed, correct in enumerate(per_seed)]


def _level_but_disagreeing(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two systems each wrong on 3% of n images, on different images for a third of those: level on average,
    with a per-image disagreement of 2% that only the test set's size can average out."""
    k = int(0.03 * n)
    moved = k // 3
    base = _right(n, range(k))
    automl = _right(n, [*range(moved, k), *range(n - moved, n)])
    return base, automl


@pytest.mark.parametrize(("n", "verdict"), [(800, "undetermined"), (20_000, "equivalent")])
def test_the_test_set_size_changes_the_verdict(tmp_path: Path, n: int, verdict: str):
    base, automl = _level_but_disagreeing(n)
    rows = _predicted(tmp_path, "resnet", "full", 100.0, [base] * 3)
    rows += _predicted(tmp_path, "autokeras", "4m", 240.0, [automl] * 3)
    p = analyse(tmp_path, rows)
    [d] = p.measured
    assert d.source == "seeds and test images" and d.images == n and d.point == 0.0
    assert p.states == (verdict,)
    if verdict == "undetermined":
        images = parity.PARITY.csv([p]).iloc[0]["images_needed"]
        assert n < images < 20_000  # the larger test set resolves it, as measured below
        assert (f"about {images:,} test images with these 3 seeds would decide it, narrowing it to ±0.5 points, "
                "its distance from -0.5 points") in p.parity_text
        assert "the difference staying where it is" in p.parity_text
    else:
        assert p.parity_text == (f"at most 2.4x the baseline's compute ({NC}): equivalent at 4m, the smallest "
                                 "budget run")


def test_without_predictions_the_same_runs_fall_back_to_the_seeds_and_say_so(tmp_path: Path):
    base, automl = _level_but_disagreeing(800)
    rows = _predicted(tmp_path, "resnet", "full", 100.0, [base] * 3)
    rows += _predicted(tmp_path, "autokeras", "4m", 240.0, [automl] * 3)
    (tmp_path / "runs" / rows[-1].run_id / "predictions.csv").unlink()  # one run of an older results folder
    p = analyse(tmp_path, rows)
    [d] = p.measured
    assert d.source == "seeds only" and d.images == 0
    # The seeds agree exactly, so over the seeds alone the interval is a point: what the images add is gone.
    assert p.states == ("equivalent",)
    assert "intervals over seeds only: the runs kept no predictions to pair test images" in p.notes
    shown = tables.VERSUS.display([tables.Versus(p.curve[0], p.base)]).iloc[0]["90% interval (points)"]
    assert shown == "+0.0 to +0.0 (3 paired seeds alone: no predictions to pair test images)"


def _ladder(out: Path, accuracies: dict[str, float], n: int = 20_000) -> list:
    """The baseline at budgets 30s-4m (fit 30-240 s), each wrong on the first (1 - accuracy) n images on every
    seed, so that budgets with the same accuracy agree image by image."""
    fits = {"30s": 30.0, "1m": 60.0, "2m": 120.0, "4m": 240.0}
    return [r for budget, acc in accuracies.items()
            for r in _predicted(out, "resnet", budget, fits[budget], [_right(n, range(round((1 - acc) * n)))] * 3)]


def test_the_reference_is_where_the_baseline_levels_off(tmp_path: Path):
    rows = _ladder(tmp_path, {"30s": 0.90, "1m": 0.968, "2m": 0.970, "4m": 0.970})
    rows += _predicted(tmp_path, "autokeras", "2m", 120.0, [_right(20_000, range(600))] * 3)
    p = analyse(tmp_path, rows)
    # 1m is 0.2 points below 4m, its interval inside half a point: the smallest budget equivalent to the top.
    assert (p.plateau.state, p.base.budget, p.plateau.anchor.budget) == ("plateau", "1m", "2m")
    assert "where its ladder levels off" in p.plateau.text
    assert not any("top of its ladder" in n for n in p.notes)
    assert p.parity_ratio == pytest.approx(2.0)  # 120 s against the reference's 60 s


def test_a_baseline_still_climbing_at_its_top_is_said(tmp_path: Path):
    rows = _ladder(tmp_path, {"30s": 0.90, "1m": 0.93, "2m": 0.96})
    rows += _predicted(tmp_path, "autokeras", "4m", 240.0, [_right(20_000, range(1600))] * 3)
    p = analyse(tmp_path, rows)
    assert (p.plateau.state, p.base.budget) == ("top", "2m")
    assert "more compute could make stronger" in p.plateau.text
    assert "the baseline's reference is the top of its ladder: more compute may make it stronger" in p.notes
    [sentence] = parity.answer_sentences([p])
    assert sentence.endswith("; resnet's reference, 2m, is the top of a ladder that may still be climbing.")


def test_the_answer_sentence_states_the_ratio_and_the_interval(tmp_path: Path):
    """The baseline right on 97% of 20,000 images; autokeras right on 90% at 1m and 92% at 4m (fit 60 and 240 s,
    the baseline 120 s): every budget worse; at the baseline's compute, halfway in log time, 91% - 6 points
    behind, the interval from the seeds' spread (1 point apart) and the images'."""
    n = 20_000
    rows = _predicted(tmp_path, "resnet", "full", 120.0, [_right(n, range(600))] * 3)
    for budget, fit_s, wrong in (("1m", 60.0, 2000), ("4m", 240.0, 1600)):
        rows += _predicted(tmp_path, "autokeras", budget, fit_s,
                           [_right(n, range(wrong + shift)) for shift in (-200, 0, 200)])
    p = analyse(tmp_path, rows)
    assert p.states == ("worse", "worse")
    d = p.equal_measured
    assert d.point == pytest.approx(-0.06) and d.source == "seeds and test images"
    [sentence] = parity.answer_sentences([p])
    assert sentence == (
        f"On d (x split), autokeras needed more than 2.0x resnet's compute ({NC}) to match it (every budget worse "
        f"by more than 0.5 points); at equal compute it was 6.0 points behind (90% interval {-100 * d.high:.1f} "
        f"to {-100 * d.low:.1f})."
    )
    assert 0.5 < -100 * d.high < 6.0 < -100 * d.low < 11.5


@pytest.mark.slow
def test_the_command_puts_the_answer_first(tmp_path: Path):
    """`python -m bench report --out DIR` as a user types it: the sentence opens report.md, before any definition
    or figure."""
    import subprocess
    import sys

    n = 2_000
    rows = _predicted(tmp_path, "resnet", "full", 120.0, [_right(n, range(60))] * 3)
    rows += _predicted(tmp_path, "autokeras", "4m", 240.0,
                       [_right(n, range(wrong)) for wrong in (190, 200, 210)])
    write_runs(tmp_path, rows)
    done = subprocess.run([sys.executable, "-m", "bench", "report", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "REPORT.md").read_text()
    answer = (f"- On d (x split), autokeras needed more than 2.0x resnet's compute ({NC}) to match it (every "
              "budget worse by more than 0.5 points)")
    assert answer in text
    assert text.index(answer) < min(text.index("Made from"), text.index("!["), text.index("two one-sided tests"))
    assert "On d (x split), autokeras needed more than 2.0x" in (tmp_path / "report.html").read_text()


def test_a_narrow_interval_on_the_tolerance_is_undetermined_and_says_what_would_decide_it(tmp_path: Path):
    # 0.45 points below on 20,000 images, the AutoML system wrong on every image the baseline gets wrong and 90
    # more: the interval (about ±0.08) is narrower than the tolerance but straddles -0.5.
    n = 20_000
    base = _right(n, range(600))
    automl = _right(n, range(690))
    rows = _predicted(tmp_path, "resnet", "full", 100.0, [base] * 3)
    rows += _predicted(tmp_path, "autokeras", "4m", 240.0, [automl] * 3)
    p = analyse(tmp_path, rows)
    [d] = p.measured
    assert d.half_width < 0.005 and d.low < -0.005 < d.high
    assert p.states == ("undetermined",)
    assert ("the narrowest 90% interval is ±0.1 points, against a tolerance of 0.5 points, but its difference, "
            "-0.45 points, lies within it of -0.5 points") in p.parity_text
    images = parity.PARITY.csv([p]).iloc[0]["images_needed"]
    assert 2 * n < images < 3 * n  # the half-width from ±0.078 to ±0.05 points: (0.078 / 0.05)^2 = 2.4 times
    assert f"about {images:,} test images with these 3 seeds would decide it, narrowing it to ±0.05 points" \
        in p.parity_text
