"""write_report end to end: the files it writes, plots that are real images, a self-contained page."""

import html
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from bench.report import ReportError, write_report
from tests.bench.report.report_sample import records, run, write_runs


def test_writes_report_tables_amlb_and_returns_the_paths(report_dir):
    out, paths = report_dir
    names = {p.relative_to(out).as_posix() for p in paths}
    assert {
        "REPORT.md",
        "report.html",
        "results_amlb.csv",
        "tables/summary.csv",
        "tables/versus_baseline.csv",
        "tables/cost.csv",
        "tables/failures.csv",
    } <= names
    assert all(p.is_file() for p in paths)
    summary = pd.read_csv(out / "tables" / "summary.csv")
    row = summary[(summary.dataset == "malaria") & (summary.system == "autokeras") & (summary.budget == "24h")]
    assert row["accuracy_mean"].item() == pytest.approx(0.961)
    versus = pd.read_csv(out / "tables" / "versus_baseline.csv")
    row = versus[(versus.dataset == "malaria") & (versus.budget == "24h")]
    assert row["compute_ratio"].item() == pytest.approx(86400 / 3300)
    assert row["difference_points"].item() == pytest.approx(-1.0)


def test_markdown_has_verdicts_tables_and_failures(report_dir):
    out, _ = report_dir
    text = (out / "REPORT.md").read_text()
    assert ("26x the compute (training FLOPs not counted) for 1.0 point less (90% interval of the difference -1.0 "
            "to -1.0 points") in text
    assert "| autokeras | 1h | 1/3 | 1 failed, 1 timeout | 95.0% |" in text
    assert "| autokeras | 1h | 1 | timeout | killed after 1.5h |" in text
    assert ("| autokeras | 24h | — | 3 | 96.1% | 24.0 h | resnet (full) | 97.1% | 55.0 min | -1.0 | 26.2x | "
            "training FLOPs not counted | -1.0 to -1.0 (3 paired seeds alone: no predictions to pair test images) "
            "| yes |") in text
    # No price was given: compute alone, one row per configuration.
    assert "| autokeras | 24h | 24.0 h | 48.0 h | CPU |" in text
    assert "managed cloud AutoML" not in text and "$" not in text
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (out / link).exists(), link
    assert "](runs/malaria-autokeras-24h-0/)" in text  # a run folder that is there is linked


def test_plots_are_written_as_non_empty_png_and_svg(report_dir):
    out, paths = report_dir
    stems = ["accuracy_vs_budget", "accuracy_vs_compute", "time_to_accuracy", "per_class_f1", "confusion"]
    for stem in stems:
        png, svg = out / "plots" / f"malaria-cell_{stem}.png", out / "plots" / f"malaria-cell_{stem}.svg"
        assert png in paths and svg in paths
        with Image.open(png) as image:
            assert image.width > 300 and image.height > 200
            assert len(set(image.convert("L").getdata())) > 10  # drawn on, not blank
        assert "<svg" in svg.read_text()[:2000]


def test_figures_needing_run_artifacts_are_skipped_with_a_note(report_dir):
    out, _ = report_dir
    text = (out / "REPORT.md").read_text()
    cifar = text.split("\n## cifar10 (official split)\n")[1].split("\n## ")[0]
    assert "Skipped time to accuracy: no history.csv or trials.csv" in cifar
    assert "Skipped confusion matrices: no predictions.csv" in cifar
    assert not (out / "plots" / "cifar10-official_confusion.png").exists()


def test_html_is_one_self_contained_page(report_dir):
    out, _ = report_dir
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    # Figures inline (SVG, sharp at any zoom); links only to the files beside it, which must be there.
    sources = re.findall(r'src\s*=\s*"([^"]*)"', page)
    assert sources and all(s.startswith("data:image/svg+xml;base64,") for s in sources)
    for href in re.findall(r'href\s*=\s*"([^"#][^"]*)"', page):
        assert "://" not in href and (out / html.unescape(href)).exists(), href
    assert "<link" not in page and "<script" not in page and "url(" not in page
    assert ("26x the compute (training FLOPs not counted) for 1.0 point less (90% interval of the difference -1.0 "
            "to -1.0 points") in page
    # A headline figure per data set, then the detail: malaria 5 and its searches' trials, cifar10 2, digits 2,
    # mnist 1.
    assert page.count("<img") == 4 + 5 + 1 + 2 + 2 + 1


def test_missing_or_empty_results_raise_a_clear_error(tmp_path: Path):
    with pytest.raises(ReportError, match=r"no results in .*: runs.csv is missing; run `python -m bench all`"):
        write_report(tmp_path)
    write_runs(tmp_path, [])
    with pytest.raises(ReportError, match=r"no results in .*: runs.csv has no runs; run `python -m bench all`"):
        write_report(tmp_path)


def test_runs_csv_alone_is_enough(tmp_path: Path):
    write_runs(tmp_path, [r for r in records() if r.dataset == "digits"])
    paths = write_report(tmp_path, price_per_hour=1.0, gpu_price_per_hour=9.0)
    assert (tmp_path / "report.html") in paths
    cost = pd.read_csv(tmp_path / "tables" / "cost.csv").set_index("system")
    assert cost.loc["resnet", "cost_usd"] == pytest.approx(30 / 3600)  # 30 s of fit at $1/h


def test_variants_of_one_system_are_reported_apart(tmp_path: Path):
    import dataclasses

    from tests.bench.report.report_sample import run

    rows = []
    for seed in (0, 1):
        rows.append(run("malaria", "cell", "resnet", "4m", seed, accuracy=0.97, fit_s=90.0,
                        system_options="recipe=malaria"))
        wide = run("malaria", "cell", "resnet", "4m", seed, accuracy=0.95, fit_s=230.0,
                   system_options="max_scale_up=16;recipe=malaria")
        rows.append(dataclasses.replace(wide, run_id=f"{wide.run_id}-x16"))
        rows.append(run("malaria", "cell", "autokeras", "4m", seed, accuracy=0.90, fit_s=240.0, trials=2))
    write_runs(tmp_path, rows)
    write_report(tmp_path)
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv").set_index("system")
    assert summary.loc["resnet", "accuracy_mean"] == pytest.approx(0.97)  # not pooled with the 16x variant
    assert summary.loc["resnet (max_scale_up=16)", "accuracy_mean"] == pytest.approx(0.95)
    assert summary.loc["resnet", "system_class"] == "baseline"
    assert summary.loc["resnet (max_scale_up=16)", "system_class"] == "other"
    amlb = pd.read_csv(tmp_path / "results_amlb.csv")
    assert set(amlb["framework"]) == {"resnet", "autokeras"}  # amlb's own names, the options in params


def test_runs_predicted_by_the_best_trials_checkpoint_are_named(tmp_path: Path):
    from tests.bench.report.report_sample import run

    rows = [run("digits", "stratified-25%", "resnet", "30s", 0, accuracy=0.98, fit_s=30.0),
            run("digits", "stratified-25%", "autokeras", "30s", 0, accuracy=0.96, fit_s=44.0,
                predicted_by="best trial"),
            run("digits", "stratified-25%", "autokeras", "30s", 1, accuracy=0.97, fit_s=29.0, predicted_by="refit")]
    write_runs(tmp_path, rows)
    write_report(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert "In 1 run (autokeras 30s seed 0) the budget cut the refit inside its first epoch" in text
    write_runs(tmp_path, [rows[0], rows[2]])
    write_report(tmp_path)
    assert "cut the refit inside its first epoch" not in (tmp_path / "REPORT.md").read_text()


def test_a_data_set_whose_runs_were_all_skipped_gets_its_reason_once(tmp_path: Path):
    from tests.bench.report.report_sample import run

    missing = "cifar10: no data found; set BENCH_DATA_DIR to a folder holding cifar-10-batches-py/"
    rows = [run("digits", "stratified-25%", "resnet", "30s", 0, accuracy=0.98, fit_s=30.0)]
    rows += [run("cifar10", "official", system, "30s", seed, "skipped", error=missing)
             for system in ("resnet", "autokeras") for seed in (0, 1)]
    write_runs(tmp_path, rows)
    write_report(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    cifar = text[text.index("## cifar10"):]
    cifar = cifar[:cifar.find("\n## ", 1)] if "\n## " in cifar else cifar  # up to the next group's heading
    assert cifar.startswith(f"## cifar10 (official split)\n\nAll 4 runs skipped: {missing}.")
    assert "Systems and budgets" not in cifar and text.count(missing) == 1  # no table of empty cells
    assert "### Systems and budgets" in text[text.index("## digits"):]
    assert len(pd.read_csv(tmp_path / "tables" / "failures.csv")) == 4  # each run's reason kept

    rows[-1] = run("cifar10", "official", "autokeras", "30s", 1, "skipped", error="another reason")
    write_runs(tmp_path, rows)
    write_report(tmp_path)
    assert "All 4 runs skipped, for 2 different reasons (each run's in tables/failures.csv)." in (
        tmp_path / "REPORT.md").read_text()


def test_a_study_without_the_baseline_headlines_what_it_compared(tmp_path: Path):
    rows = [run("malaria", "cell", f"autokeras (search_workers={n})", "2m", seed, accuracy=acc + seed / 1000,
                fit_s=120.0, trials=n)
            for n, acc in ((1, 0.898), (2, 0.896)) for seed in range(3)]
    write_runs(tmp_path, rows)
    write_report(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    answer = text.split("\n\n")[1]
    assert answer.startswith("- malaria (cell split): no resnet run, so no comparison with it; this study compares "
                             "autokeras (search_workers=1) at 2m: 89.9% (3 seeds, 95% interval")
    assert "autokeras (search_workers=2) at 2m: 89.7%" in answer
    head = text[:text.index("\n## ")]
    assert "Headline: what AutoML's compute buys against resnet" not in text
    assert "no baseline reference" not in head and "| System | Budget |" in head  # what ran, not an empty comparison


@pytest.mark.slow
def test_prices_come_only_from_the_command_line_and_each_configuration_is_one_row(tmp_path: Path):
    write_runs(tmp_path, records())
    main = [sys.executable, "-m", "bench", "report", "--out", str(tmp_path)]
    assert subprocess.run(main, capture_output=True, timeout=300).returncode == 0
    unpriced = pd.read_csv(tmp_path / "tables" / "cost.csv")
    assert unpriced["cost_usd"].isna().all() and "$" not in (tmp_path / "REPORT.md").read_text()
    priced = main + ["--price-per-hour", "0.5", "--managed-automl-price-per-hour", "20"]
    assert subprocess.run(priced, capture_output=True, timeout=300).returncode == 0
    cost = pd.read_csv(tmp_path / "tables" / "cost.csv")
    assert not cost.duplicated(["dataset", "split", "system", "budget"]).any()
    row = cost[(cost.dataset == "malaria") & (cost.system == "autokeras") & (cost.budget == "24h")].iloc[0]
    assert row["cost_usd"] == pytest.approx(24 * 0.5) and row["managed_usd"] == pytest.approx(24 * 20)
    assert "$0.5/h for a CPU machine; $20/h for a managed cloud AutoML" in (tmp_path / "REPORT.md").read_text()
