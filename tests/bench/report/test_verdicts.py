"""Verdict sentences: the numbers as a reader can cite them, and no claim they do not support."""

from pathlib import Path

import pytest

from bench.report import tables
from bench.report.runs import grouped, load_runs
from bench.report.verdicts import verdicts
from tests.bench.report.report_sample import records, run, write_runs


def sentences_for(out: Path, rows) -> dict[str, list[str]]:
    write_runs(out, rows)
    result = {}
    for group, part in grouped(load_runs(out)):
        result[group.dataset] = verdicts(group, tables.summarize(group, part, "resnet"), "resnet")
    return result


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    return sentences_for(tmp_path_factory.mktemp("verdicts"), records())


def test_resolved_difference_names_accuracy_time_ratio_and_points(known):
    assert known["malaria"] == [
        "autokeras (24h, 3 seeds) reached 96.1% in 24.0 h; "
        "resnet (full, 3 seeds) reached 97.1% in 55.0 min: 26x the compute (training FLOPs not counted) "
        "for 1.0 point less "
        "(90% interval of the difference -1.0 to -1.0 points, 3 paired seeds alone: no predictions to pair test "
        "images)."
    ]


def test_an_interval_that_includes_0_leaves_the_difference_unresolved(tmp_path: Path):
    # Two seeds whose differences disagree (+3 and -1 points): t with 1 degree of freedom, an interval of +-12.6.
    rows = [run("d", "x", "resnet", "full", s, accuracy=a, fit_s=1800.0) for s, a in enumerate((0.90, 0.92))]
    rows += [run("d", "x", "autokeras", "1h", s, accuracy=a, fit_s=3600.0) for s, a in enumerate((0.93, 0.91))]
    assert sentences_for(tmp_path, rows)["d"] == [
        "autokeras (1h, 2 seeds) reached 92.0% in 1.0 h; "
        "resnet (full, 2 seeds) reached 91.0% in 30.0 min: 2.0x the compute (training FLOPs not counted); "
        "the difference of "
        "1.0 point is not resolved (90% interval of the difference -11.6 to +13.6 points, 2 paired seeds alone: "
        "no predictions to pair test images, which includes 0)."
    ]


def test_fewer_than_two_seeds_is_said(known):
    assert known["digits"] == [
        "autokeras (t2, 1 seed) reached 95.0% in 2.0 min; "
        "resnet (full, 1 seed) reached 98.0% in 30 s: 4.0x the compute (training FLOPs not counted); "
        "with fewer than 2 ok seeds "
        "(autokeras 1, resnet 1), the difference of 3.0 points is not resolved."
    ]


def test_a_side_without_ok_runs_is_named(known, tmp_path: Path):
    assert known["mnist"] == [
        "autokeras has no successful run (1 failed); "
        "resnet (full, 1 seed) reached 99.0% in 10.0 min."
    ]
    rows = [run("d", "", "autokeras", "1h", s, accuracy=0.9, fit_s=3600.0) for s in (0, 1)]
    rows.append(run("d", "", "resnet", "full", 0, "timeout", error="too slow"))
    assert sentences_for(tmp_path / "a", rows)["d"] == [
        "autokeras (1h, 2 seeds) reached 90.0% in 1.0 h; resnet has no successful run "
        "(1 timeout), so there is no comparison."
    ]
    only_base = [run("d", "", "resnet", "full", s, accuracy=0.9, fit_s=60.0) for s in (0, 1)]
    assert sentences_for(tmp_path / "b", only_base)["d"] == [
        "No AutoML system was run; resnet (full, 2 seeds) reached 90.0% in 1.0 min."
    ]


def test_more_accurate_automl_with_resolved_gain(tmp_path: Path):
    rows = [run("d", "x", "resnet", "full", s, accuracy=a, fit_s=100.0) for s, a in enumerate((0.80, 0.81, 0.82))]
    rows += [run("d", "x", "autokeras", "t5", s, accuracy=a, fit_s=150.0) for s, a in enumerate((0.90, 0.91, 0.92))]
    assert sentences_for(tmp_path, rows)["d"] == [
        "autokeras (t5, 3 seeds) reached 91.0% in 2.5 min; "
        "resnet (full, 3 seeds) reached 81.0% in 1.7 min: 1.5x the compute (training FLOPs not counted) "
        "for 10.0 points more "
        "(90% interval of the difference +10.0 to +10.0 points, 3 paired seeds alone: no predictions to pair test "
        "images)."
    ]


def test_a_paired_comparison_resolves_what_two_overlapping_intervals_do_not(tmp_path: Path):
    """Seeds move both systems alike (the seed's validation split, its init): the per-seed differences are
    steady while each system's own spread is wide, so only the paired interval resolves the gap."""
    base = (0.80, 0.86, 0.92)
    gain = (0.020, 0.025, 0.030)
    rows = [run("d", "x", "resnet", "full", s, accuracy=a, fit_s=100.0) for s, a in enumerate(base)]
    rows += [run("d", "x", "autokeras", "1m", s, accuracy=a + g, fit_s=60.0, budget_scope="total")
             for s, (a, g) in enumerate(zip(base, gain, strict=True))]
    [sentence] = sentences_for(tmp_path / "paired", rows)["d"]
    assert "(1m, 3 seeds)" in sentence
    assert sentence.endswith("0.6x the compute (training FLOPs not counted) for 2.5 points more "
                             "(90% interval of the difference +1.7 to +3.3 "
                             "points, 3 paired seeds alone: no predictions to pair test images).")
    unpaired = [r.replace(seed=r.seed + 10) if r.system == "autokeras" else r for r in rows]  # no common seeds
    [sentence] = sentences_for(tmp_path / "unpaired", unpaired)["d"]
    assert "is not resolved (90% interval of the difference" in sentence and "3 seeds alone" in sentence


def test_a_budget_bounding_the_search_only_is_said(tmp_path: Path):
    rows = [run("d", "x", "resnet", "full", s, accuracy=0.9, fit_s=100.0) for s in (0, 1)]
    rows += [run("d", "x", "autokeras", "1m", s, accuracy=0.8, fit_s=90.0, budget_scope="search") for s in (0, 1)]
    [sentence] = sentences_for(tmp_path, rows)["d"]
    assert sentence.startswith("autokeras (1m, search only, 2 seeds) reached 80.0% in 1.5 min; ")


def test_a_search_over_several_processes_is_compared_by_its_summed_compute_with_its_wall_time(tmp_path: Path):
    """3 h on 8 processes against a 1-hour baseline reads as 24x the compute, the wall time beside it."""
    rows = [run("d", "", "autokeras", "3h", s, accuracy=0.90, fit_s=3 * 3600.0, held_s=24 * 3600.0,
                search_workers=8) for s in (0, 1, 2)]
    rows += [run("d", "", "resnet", "1h", s, accuracy=0.90 + 0.001 * s, fit_s=3600.0) for s in (0, 1, 2)]
    [sentence] = sentences_for(tmp_path / "a", rows)["d"]
    assert "reached 90.0% in 3.0 h" in sentence
    assert "24x the compute (3.0 h of wall time on up to 8 processes)" in sentence, sentence
