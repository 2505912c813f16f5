"""Compute in training FLOPs beside seconds: parity, equal compute, several kinds of hardware, runs without a count.

Hand-made budget curves whose answers are known: the baseline trains 1 PFLOP in 100 s; autokeras at 1m, 2m, 4m
and 8m trains 0.2, 0.5, 1.5 and 3 PFLOP in 60, 120, 240 and 480 s, and matches the baseline from 4m: 2.4x its
seconds, 1.5x its FLOPs.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from bench.report import compute as cmp
from bench.report import parity, tables
from bench.report.runs import grouped, load_runs
from bench.report.style import log_flops_axis
from bench.run.records import COLUMNS
from tests.bench.report.report_sample import run, write_runs

BASE = (0.970, 0.971, 0.972)
CLIMB = {
    "1m": (0.900, 0.910, 0.920),
    "2m": (0.950, 0.950, 0.960),
    "4m": (0.968, 0.970, 0.972),
    "8m": (0.974, 0.975, 0.976),
}
FIT = {"1m": 60.0, "2m": 120.0, "4m": 240.0, "8m": 480.0}
FLOPS = {"1m": 2e14, "2m": 5e14, "4m": 1.5e15, "8m": 3e15}
BASE_FLOPS = 1e15
GPU = {"hardware": "GPU box", "device": "NVIDIA H100", "gpu_model": "NVIDIA H100"}


def _baseline(flops: float | None = BASE_FLOPS, **fields) -> list:
    return [run("d", "x", "resnet", "full", s, accuracy=a, fit_s=100.0, train_flops=flops, **fields)
            for s, a in enumerate(BASE)]


def _automl(flops: dict[str, float | None] = FLOPS, **fields) -> list:
    return [run("d", "x", "autokeras", budget, seed, accuracy=a, fit_s=FIT[budget], train_flops=flops[budget],
                **fields)
            for budget, accs in CLIMB.items() for seed, a in enumerate(accs)]


def analyse(tmp_path: Path, rows: list) -> parity.Parity:
    write_runs(tmp_path, rows)
    [(group, part)] = grouped(load_runs(tmp_path))
    [found] = parity.parities(tables.summarize(group, part, "resnet", tmp_path))
    return found


def test_parity_and_equal_compute_in_flops_beside_seconds(tmp_path: Path):
    p = analyse(tmp_path, _baseline() + _automl())
    assert p.measure == cmp.TIME and p.reached.budget == "4m"
    assert p.parity_ratio == pytest.approx(2.4)
    assert p.flops_ratio(p.reached).value == pytest.approx(1.5)
    assert p.parity_text == "2.4x the baseline's compute (equivalent at 4m; 1.5x in training FLOPs)"
    # At the baseline's 1 PFLOP: between 2m (0.5) and 4m (1.5 PFLOP), log(2)/log(3) of the way, seed by seed.
    w = math.log(2) / math.log(3)
    expected = [(1 - w) * a + w * b for a, b in zip(CLIMB["2m"], CLIMB["4m"], strict=True)]
    eq = p.equal_flops
    assert eq.state == "interpolated" and eq.point.budget == "2m–4m"
    assert eq.point.accuracy.mean == pytest.approx(sum(expected) / 3)
    assert p.equal_flops_measured.point == pytest.approx(sum(expected) / 3 - 0.971)
    # The seconds' point is another one: the baseline's 100 s lies between 1m and 2m.
    assert p.equal.point.budget == "1m–2m"
    assert "; at its training FLOPs: " in p.equal_text and "between 2m and 4m" in p.equal_text
    row = parity.PARITY.csv([p]).iloc[0]
    assert row["parity_compute_ratio"] == pytest.approx(2.4) and row["parity_flops_ratio"] == pytest.approx(1.5)
    assert row["compute_measure"] == "time" and row["equal_flops_between"] == "2m–4m"
    assert row["baseline_train_flops"] == pytest.approx(BASE_FLOPS)
    [sentence] = parity.answer_sentences([p])
    assert "matched resnet (within 0.5 points) at 2.4x its compute (4m; 1.5x in training FLOPs)" in sentence
    assert "; at equal compute it was " in sentence and "; at equal training FLOPs it was " in sentence
    assert p.largest_text.startswith("8m: 4.8x the compute (3.0x in training FLOPs) for 0.4 points more")


def test_energy_stands_beside_where_both_sides_read_the_same_counter(tmp_path: Path):
    """RAPL read on both sides: 2 kJ a baseline run, 6 kJ a 4m run, so 3.0x in energy beside 2.4x in seconds;
    a counter one side alone read gives no energy ratio."""
    rows = _baseline(cpu_energy_j=2000.0) + [
        dataclasses.replace(r, cpu_energy_j=6000.0 if r.budget == "4m" else 1000.0) for r in _automl()]
    p = analyse(tmp_path, rows)
    assert p.parity_text == ("2.4x the baseline's compute (equivalent at 4m; 1.5x in training FLOPs; 3.0x in "
                             "energy)")
    assert parity.PARITY.csv([p]).iloc[0]["parity_energy_ratio"] == pytest.approx(3.0)
    gpu_only = analyse(tmp_path / "gpu", _baseline(gpu_energy_j=2000.0) + _automl())
    assert tables.Versus(gpu_only.reached, gpu_only.base).energy_ratio is None


def test_a_partial_count_is_a_bound_and_places_no_equal_compute_point(tmp_path: Path):
    automl = _automl()
    partial = [dataclasses.replace(r, flops_uncounted="Lambda") if r.budget == "4m" else r for r in automl]
    p = analyse(tmp_path, _baseline() + partial)
    assert p.flops_ratio(p.reached).bound == cmp.AT_LEAST
    assert p.parity_text == "2.4x the baseline's compute (equivalent at 4m; at least 1.5x in training FLOPs)"
    assert p.equal_flops.state == "none"  # the baseline's 1 PFLOP lies between 2m and 4m, 4m a lower bound
    assert p.equal_text.endswith("; training FLOP counts partial, and a lower bound places no point")
    # A partial count outside the bracket leaves the point where it was: 8m's lower bound is above it anyway.
    late = [dataclasses.replace(r, flops_uncounted="Lambda") if r.budget == "8m" else r for r in automl]
    whole = analyse(tmp_path / "whole", _baseline() + automl)
    assert analyse(tmp_path / "late", _baseline() + late).equal_flops == whole.equal_flops
    # The baseline's count partial: the ratio can only be smaller than the figure.
    under = analyse(tmp_path / "base", _baseline(flops_uncounted="Lambda") + _automl())
    assert under.flops_ratio(under.reached).words == "at most 1.5x"


def test_runs_without_a_count_are_marked_not_counted_never_averaged_away(tmp_path: Path):
    automl = _automl()
    automl[6] = dataclasses.replace(automl[6], train_flops=None)  # 4m, seed 0: an older run
    assert automl[6].budget == "4m"
    p = analyse(tmp_path, _baseline() + automl)
    assert p.reached.flops.value is None and p.reached.flops.text == "not counted in 1 of 3 runs"
    assert p.parity_text == "2.4x the baseline's compute (equivalent at 4m; training FLOPs not counted)"
    assert p.equal_text.endswith("; training FLOPs not counted")
    cost = tables.COST.display(tables.cost_rows([*p.curve, p.base], tables.Prices())).set_index("Budget")
    assert cost.loc["4m", "Training FLOPs"] == "not counted in 1 of 3 runs"
    assert cost.loc["2m", "Training FLOPs"] == "500 TFLOP"


def test_hardware_kinds_tell_machines_and_devices_apart():
    frame = pd.DataFrame([
        {"status": "ok", "hardware": "box", "device": "cpu", "gpu_model": ""},
        {"status": "ok", "hardware": "box", "device": "NVIDIA H100", "gpu_model": "NVIDIA H100"},
        {"status": "ok", "hardware": "", "device": "", "gpu_model": ""},  # not recorded: tells nothing apart
        {"status": "failed", "hardware": "laptop", "device": "cpu", "gpu_model": ""},  # not ok: no ratio uses it
    ])
    assert cmp.hardware_kinds(frame) == ("box", "box (on NVIDIA H100)")


def test_several_kinds_of_hardware_take_every_ratio_in_flops_and_say_so(tmp_path: Path):
    from bench.report import write_report

    rows = _baseline(**GPU) + _automl()
    p = analyse(tmp_path, rows)
    assert p.measure == cmp.FLOPS and p.reached.budget == "4m"
    assert p.parity_ratio == pytest.approx(1.5)
    assert p.parity_text == "1.5x the baseline's training FLOPs (equivalent at 4m)"
    assert p.equal.point.budget == "2m–4m"  # at the baseline's FLOPs, not its seconds
    assert p.equal_text.startswith("at its training FLOPs: ")
    versus = tables.VERSUS.csv([tables.Versus(p.reached, p.base)]).iloc[0]
    assert pd.isna(versus["compute_ratio"]) and versus["flops_ratio"] == pytest.approx(1.5)
    write_report(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert ("These runs came from 2 kinds of hardware (GPU box (on NVIDIA H100); test CPU, 2 cores), and seconds "
            "on different machines do not compare: every compute ratio here is of training FLOPs, not of seconds."
            ) in text
    assert "matched resnet (within 0.5 points) with 1.5x its training FLOPs (4m)" in text
    assert "2.4x" not in text  # the ratio of seconds from two machines is nowhere
    assert "3.0x the training FLOPs for 0.4 points more" in text  # the 2019 form at the best budget, in FLOPs
    # The other figures: every run placed by its FLOPs, never by seconds from two machines.
    assert ("each run's test accuracy against its training FLOPs; circled runs form the Pareto front (no run is both "
            "cheaper and more accurate)") in text
    assert "The runs come from 2 kinds of hardware, whose seconds do not compare: runs are placed by training FLOPs." \
        in text
    assert "against its fit time" not in text


def test_several_kinds_of_hardware_without_counts_take_no_ratio_and_say_why(tmp_path: Path):
    from bench.report import write_report

    rows = _baseline(flops=None, **GPU) + _automl({b: None for b in FLOPS})
    p = analyse(tmp_path, rows)
    assert p.parity_ratio is None and p.reached.budget == "4m"
    assert p.parity_text == ("no ratio: runs on different hardware, and training FLOPs not counted (equivalent at "
                             "4m)")
    write_report(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert ("training FLOPs would, but 15 of 15 ok runs have no FLOP count (made before the counter), so no "
            "compute ratio can be taken here: seconds from different machines are not mixed instead.") in text
    assert "2.4x" not in text and "4.8x" not in text
    assert "no compute ratio (runs on different hardware and training FLOPs not counted)" in text
    assert ("Skipped accuracy against compute: the runs come from 2 kinds of hardware, whose seconds do not compare, "
            "and none (besides the floor) has a training FLOP count.") in text
    assert not list((tmp_path / "plots").glob("*_accuracy_vs_compute.png"))


def test_one_run_without_a_count_among_several_kinds_of_hardware_is_left_out_of_the_compute_figure_and_said(
        tmp_path: Path):
    from bench.report import write_report

    automl = _automl(**GPU)
    automl[0] = dataclasses.replace(automl[0], train_flops=None)
    write_runs(tmp_path, _baseline() + automl)
    write_report(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert "runs are placed by training FLOPs, and 1 ok run(s) without a count are left out." in text


@pytest.mark.parametrize("kinds", [1, 2])
def test_learning_curves_share_a_time_axis_only_on_one_kind_of_hardware(tmp_path: Path, kinds: int):
    from bench.report import write_report

    rows = _baseline(**(GPU if kinds == 2 else {})) + _automl()
    write_runs(tmp_path, rows)
    for r in rows:
        folder = tmp_path / "runs" / r.run_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "history.csv").write_text("epoch,fit_s,val_accuracy\n1,10,0.8\n2,20,0.9\n")
    write_report(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    skipped = ("Skipped time to accuracy: the runs come from 2 kinds of hardware, and seconds on different machines "
               "do not compare.")
    assert (skipped in text) == (kinds == 2)
    assert bool(list((tmp_path / "plots").glob("*_time_to_accuracy.png"))) == (kinds == 1)


def _write_without_flop_columns(out: Path, rows: list) -> None:
    """runs.csv as written before the counter existed: no FLOP columns at all."""
    names = [c for c in COLUMNS if "flops" not in c]
    out.mkdir(parents=True, exist_ok=True)
    with (out / "runs.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(r.to_row() for r in rows)


@pytest.mark.slow
def test_the_command_reports_runs_older_than_the_counter_as_not_counted(tmp_path: Path):
    """`python -m bench report --out DIR` on a table written before the counter: every FLOP cell says 'not
    counted', and the report says how many runs have none."""
    _write_without_flop_columns(tmp_path, _baseline(flops=None) + _automl({b: None for b in FLOPS}))
    done = subprocess.run([sys.executable, "-m", "bench", "report", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "REPORT.md").read_text()
    assert ("15 of 15 ok runs have no FLOP count (made before the counter existed): their training FLOPs read "
            "\"not counted\" in every table") in text
    cost = pd.read_csv(tmp_path / "tables" / "cost.csv")
    assert cost["train_flops"].isna().all() and (cost["flops_not_counted"] == 3).all()
    assert "| not counted |" in text


def test_the_command_puts_flops_on_the_headline_axis(tmp_path: Path):
    from bench.cli import main

    write_runs(tmp_path, _baseline() + _automl())
    assert main(["report", "--out", str(tmp_path), "--compute", "flops"]) == 0
    svg = (tmp_path / "plots" / "d-x_headline.svg").read_text()
    assert "mean training FLOPs per run (log scale)" in svg
    assert "1 PFLOP" in svg and "100 TFLOP" in svg
    assert "mean fit time" not in svg
    text = (tmp_path / "REPORT.md").read_text()
    assert "mean test accuracy against mean training FLOPs per run" in text
    assert main(["report", "--out", str(tmp_path)]) == 0  # time stays the default
    assert "mean fit time per run (log scale)" in (tmp_path / "plots" / "d-x_headline.svg").read_text()


def test_a_measure_the_report_does_not_know_is_one_line_and_exit_2(tmp_path: Path):
    write_runs(tmp_path, _baseline() + _automl())
    done = subprocess.run([sys.executable, "-m", "bench", "report", "--out", str(tmp_path), "--compute", "joules"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "invalid choice: 'joules'" in done.stderr


def test_the_flops_axis_is_ticked_at_powers_of_ten_in_si_units():
    fig, ax = plt.subplots()
    log_flops_axis(ax, [3e14, 2e16])
    labels = [ax.xaxis.get_major_formatter()(t, 0) for t in ax.xaxis.get_major_locator()()]
    plt.close(fig)
    assert labels == ["1 PFLOP", "10 PFLOP"]
    fig, ax = plt.subplots()
    log_flops_axis(ax, [2e11, 3e11])  # inside one decade: widened to the powers of ten either side
    labels = [ax.xaxis.get_major_formatter()(t, 0) for t in ax.xaxis.get_major_locator()()]
    plt.close(fig)
    assert labels == ["100 GFLOP", "1 TFLOP"]


@pytest.mark.parametrize(("base_fields", "automl_fields", "parity_text", "clause"), [
    ({}, {}, "at most 0.8x the baseline's training FLOPs: not worse at 1m, the smallest budget run",
     "with at most 0.8x its training FLOPs, at 1m, its smallest budget"),
    # The baseline's count left layers out: its ratio is an upper bound, as parity at the smallest budget is.
    ({"flops_uncounted": "Lambda"}, {}, "at most 0.8x the baseline's training FLOPs: not worse at 1m, the smallest "
     "budget run", "with at most 0.8x its training FLOPs, at 1m, its smallest budget"),
    # The AutoML count left layers out: its ratio is a lower bound, parity's an upper one; no bound follows.
    ({}, {"flops_uncounted": "Lambda"}, "no more than 1m's training FLOPs (at least 0.8x the baseline's): not worse "
     "at 1m, the smallest budget run", "with no more than 1m's training FLOPs (at least 0.8x its), its smallest "
     "budget"),
])
def test_parity_at_the_smallest_budget_in_flops_says_each_bound_once(tmp_path: Path, base_fields, automl_fields,
                                                                     parity_text, clause):
    high = {b: tuple(a + 0.08 for a in accs) for b, accs in CLIMB.items()}
    rows = _baseline(**GPU, **base_fields) + [
        run("d", "x", "autokeras", budget, seed, accuracy=a, fit_s=FIT[budget], train_flops=FLOPS[budget] * 4,
            **automl_fields)
        for budget, accs in high.items() for seed, a in enumerate(accs)]
    p = analyse(tmp_path, rows)
    assert p.measure == cmp.FLOPS and p.reached is p.curve[0]
    assert p.parity_text == parity_text
    [sentence] = parity.answer_sentences([p])
    assert clause in sentence and "at most at" not in sentence
