"""Tables from the hand-made results: values, the compute ratio, failed and timed-out runs, cost."""

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from bench.report import tables
from bench.report.runs import Group, grouped, load_runs
from tests.bench.report.report_sample import records, run, write_runs


@pytest.fixture(scope="module")
def groups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Group, object]]:
    out = tmp_path_factory.mktemp("tables")
    write_runs(out, records())
    return {g.dataset: (g, part) for g, part in grouped(load_runs(out))}


def summaries(groups, dataset: str) -> list[tables.ConfigSummary]:
    group, part = groups[dataset]
    return tables.summarize(group, part, "resnet")


def test_summary_values_and_order(groups):
    rows = summaries(groups, "malaria")
    assert [(s.system, s.budget) for s in rows] == [
        ("majority", "full"),
        ("resnet", "full"),
        ("autokeras", "1h"),
        ("autokeras", "24h"),
    ]
    resnet = rows[1]
    assert resnet.ok == 3 and resnet.accuracy.mean == pytest.approx(0.971)
    assert resnet.fit_s == pytest.approx(3300)
    frame = tables.SUMMARY.csv(rows).set_index(["system", "budget"])
    assert frame.loc[("autokeras", "24h"), "fit_s"] == pytest.approx(24.0 * 3600)  # CSV: seconds, as numbers
    assert frame.loc[("autokeras", "24h"), "cpu_s"] == pytest.approx(48.0 * 3600)
    assert frame.loc[("autokeras", "24h"), "trials"] == pytest.approx(40)
    assert (
        frame.loc[("autokeras", "24h"), "accuracy_ci95_low"]
        < 0.961
        < frame.loc[("autokeras", "24h"), "accuracy_ci95_high"]
    )
    display = tables.SUMMARY.display(rows).set_index(["System", "Budget"])
    assert display.loc[("resnet", "full"), "Accuracy"] == "97.1%"
    assert display.loc[("autokeras", "24h"), "Fit"] == "24.0 h"  # shown in the unit a reader says
    assert display.loc[("resnet", "full"), "Fit"] == "55.0 min"
    assert display.loc[("majority", "full"), "Fit"] in ("< 0.1 s", "0.0 s")
    assert display.loc[("autokeras", "24h"), "GPU"] == "—"  # no GPU time measured


def test_failed_and_timed_out_runs_are_shown_not_dropped(groups):
    rows = summaries(groups, "malaria")
    one_hour = next(s for s in rows if s.budget == "1h")
    assert one_hour.runs == 3 and one_hour.ok == 1
    assert one_hour.not_ok_text == "1 failed, 1 timeout"
    display = tables.SUMMARY.display(rows).set_index(["System", "Budget"])
    assert display.loc[("autokeras", "1h"), "Seeds ok"] == "1/3"
    assert display.loc[("autokeras", "1h"), "Not ok"] == "1 failed, 1 timeout"
    fails = tables.FAILURES.display(tables.failures(groups["malaria"][1]))
    assert fails[["Seed", "Status", "Error"]].values.tolist() == [
        ["0", "failed", "ResourceExhaustedError: OOM"],
        ["1", "timeout", "killed after 1.5h"],
    ]
    frame = tables.SUMMARY.csv(rows).set_index(["system", "budget"])
    assert frame.loc[("autokeras", "1h"), ["failed", "timeout", "skipped"]].tolist() == [1, 1, 0]


def test_versus_baseline_difference_and_ratio(groups):
    items = tables.versus(summaries(groups, "malaria"))
    by_budget = {v.automl.budget: v for v in items}
    big = by_budget["24h"]
    assert big.baseline.system == "resnet" and big.baseline.budget == "full"
    assert 100 * big.difference == pytest.approx(-1.0)
    assert big.compute_ratio == pytest.approx(86400 / 3300)
    assert big.resolution == "resolved"
    assert by_budget["1h"].resolution == "too few seeds"
    display = tables.VERSUS.display(items).set_index("Budget")
    assert display.loc["24h", "Compute ratio"] == "26.2x"
    assert display.loc["24h", "Difference (points)"] == "-1.0"
    assert display.loc["24h", "Baseline (budget)"] == "resnet (full)"
    # Two paired seeds, each +1.0 point: the per-seed differences agree, so the interval is that point.
    [cifar] = tables.versus(summaries(groups, "cifar10"))
    assert cifar.resolution == "resolved" and cifar.measured.paired and cifar.measured.source == "seeds only"
    assert (cifar.measured.low, cifar.measured.high) == pytest.approx((0.01, 0.01))


def test_baseline_reference_is_the_top_where_nothing_below_is_equivalent(tmp_path: Path):
    rows = [run("d", "s", "resnet", "5m", seed, accuracy=0.80, fit_s=300.0) for seed in (0, 1)]
    rows += [run("d", "s", "resnet", "full", seed, accuracy=0.90, fit_s=900.0) for seed in (0, 1)]
    write_runs(tmp_path, rows)
    [(group, part)] = grouped(load_runs(tmp_path))
    found = tables.plateau(tables.summarize(group, part, "resnet"))
    assert (found.reference.budget, found.reference.accuracy.mean) == ("full", pytest.approx(0.90))
    assert found.state == "top" and "may still be climbing" in found.text
    assert tables.reference(tables.summarize(group, part, "resnet"), "baseline") == found.reference


def test_cost_charges_fit_hours_at_the_given_prices_one_row_per_configuration(groups):
    prices = tables.Prices(cpu=0.5, gpu=2.0, managed_automl=20.0)
    rows = tables.cost_rows(summaries(groups, "malaria"), prices)
    cost = tables.COST.csv(rows)
    # One row per configuration: the managed AutoML price is a column of the AutoML rows, not rows of its own.
    assert not cost.duplicated(["system", "budget"]).any()
    cost = cost.set_index(["system", "budget"])
    assert cost.loc[("resnet", "full"), "cost_usd"] == pytest.approx(3300 / 3600 * 0.5)
    assert cost.loc[("resnet", "full"), "machine"] == "CPU"
    assert pd.isna(cost.loc[("resnet", "full"), "managed_usd"])  # the baseline is not an AutoML service's job
    assert cost.loc[("autokeras", "24h"), "managed_usd"] == pytest.approx(24.0 * 20.0)
    gpu = [run("d", "s", "resnet", "full", 0, accuracy=0.9, fit_s=1800.0, gpu_s=1500.0, device="NVIDIA H200")]
    frame = pd.DataFrame([dataclasses.asdict(r) for r in gpu])
    row = tables.COST.csv(tables.cost_rows(tables.summarize(Group("d", "s", ""), frame, "resnet"), prices)).iloc[0]
    assert (row["machine"], row["cost_usd"]) == ("GPU", pytest.approx(0.5 * 2.0))
    assert row["gpu_s"] == pytest.approx(1500)


def test_without_a_given_price_the_cost_table_shows_compute_alone(groups):
    rows = tables.cost_rows(summaries(groups, "malaria"), tables.Prices())
    shown = tables.COST.display(rows)
    assert {"Fit", "CPU"} <= set(shown.columns)
    assert not {"Price", "Cost per run", "Managed AutoML price", "Managed AutoML cost per run"} & set(shown.columns)
    assert tables.COST.csv(rows)["cost_usd"].isna().all()
    only_cpu = tables.COST.display(tables.cost_rows(summaries(groups, "malaria"), tables.Prices(cpu=0.5)))
    assert "Cost per run" in only_cpu.columns and "Managed AutoML cost per run" not in only_cpu.columns


def test_cost_shows_energy_per_run_where_measured_and_nothing_where_not(groups):
    from bench.report import formatting as fmt

    prices = tables.Prices()
    measured = [run("d", "s", "resnet", "full", seed, accuracy=0.9, fit_s=600.0, gpu_s=600.0, device="NVIDIA H200",
                    gpu_energy_j=gpu_j, cpu_energy_j=cpu_j)
                for seed, gpu_j, cpu_j in ((0, 360_000.0, 36_000.0), (1, 180_000.0, None))]
    frame = pd.DataFrame([dataclasses.asdict(r) for r in measured])
    rows = tables.cost_rows(tables.summarize(Group("d", "s", ""), frame, "resnet"), prices)
    row = tables.COST.csv(rows).iloc[0]
    # The mean over the runs that measured it: a run without a reading is not a run that drew 0 J.
    assert row["gpu_energy_j"] == pytest.approx(270_000) and row["cpu_energy_j"] == pytest.approx(36_000)
    assert fmt.energy(270_000) == "75 Wh" and fmt.energy(7.2e6) == "2.0 kWh" and fmt.energy(None) == fmt.MISSING
    assert "GPU energy" in tables.COST.display(rows).columns
    unmeasured = tables.cost_rows(summaries(groups, "malaria"), prices)
    assert "GPU energy" not in tables.COST.display(unmeasured).columns
    assert tables.COST.csv(unmeasured)["gpu_energy_j"].isna().all()


def test_test_results_pair_only_runs_that_kept_predictions_of_one_test_set(tmp_path: Path):
    from tests.bench.report.report_sample import write_correct

    a = write_correct(tmp_path, run("d", "s", "resnet", "full", 0), [True, False, True, True])
    b = write_correct(tmp_path, run("d", "s", "resnet", "full", 1), [True, True, True, False])
    correct, key = tables.test_results(tmp_path, [a.run_id, b.run_id])
    assert correct.tolist() == [[1, 0, 1, 1], [1, 1, 1, 0]] and key
    other = write_correct(tmp_path, run("d", "s", "resnet", "full", 2), [True, False, True])  # another test set
    assert tables.test_results(tmp_path, [a.run_id, other.run_id]) == (None, "")
    assert tables.test_results(tmp_path, [a.run_id, "no-such-run"]) == (None, "")
    assert tables.test_results(None, [a.run_id]) == (None, "")


def test_cost_shows_training_flops_and_the_rate_and_marks_runs_before_the_counter_not_counted(groups):
    counted = [run("d", "s", "resnet", "full", seed, accuracy=0.9, fit_s=100.0, train_flops=flops,
                   flops_per_s=flops / 100.0, flops_uncounted=uncounted)
               for seed, flops, uncounted in ((0, 2e14, ""), (1, 4e14, "Lambda"))]
    older = [run("d", "s", "autokeras", "1h", 0, accuracy=0.8, fit_s=3600.0)]  # recorded before the counter
    frame = pd.DataFrame([dataclasses.asdict(r) for r in counted + older])
    rows = tables.cost_rows(tables.summarize(Group("d", "s", ""), frame, "resnet"), tables.Prices())
    csv = tables.COST.csv(rows).set_index("system")
    assert csv.loc["resnet", "train_flops"] == pytest.approx(3e14) and csv.loc["resnet", "flops_partial"]
    assert pd.isna(csv.loc["autokeras", "train_flops"])  # never 0
    shown = tables.COST.display(rows).set_index("System")
    assert shown.loc["resnet", "Training FLOPs"] == ">= 300 TFLOP"  # one run's count left a layer out
    assert shown.loc["resnet", "Achieved"] == "3 TFLOP/s"
    assert shown.loc["autokeras", "Training FLOPs"] == "not counted"
    older_only = tables.COST.display(tables.cost_rows(summaries(groups, "malaria"), tables.Prices()))
    assert set(older_only["Training FLOPs"]) == {"not counted"}  # said, not left out
