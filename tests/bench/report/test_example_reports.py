"""The committed example reports, rewritten from their runs.csv and run folders: the headline comes first, and
the tables that were there before it are the same numbers."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.report import write_report

ROOT = Path(__file__).resolve().parents[3] / "results"
EXAMPLES = ["example", "budget_curve"]
UNCHANGED = ["summary", "versus_baseline", "cost", "failures"]


@pytest.fixture(scope="module", params=EXAMPLES)
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp(request.param)
    shutil.copy(ROOT / request.param / "runs.csv", out / "runs.csv")
    shutil.copytree(ROOT / request.param / "runs", out / "runs")  # predictions.csv pairs the test images
    write_report(out)
    return request.param, out


def test_headline_figure_and_parity_table_open_the_report(example):
    name, out = example
    text = (out / "REPORT.md").read_text()
    head = text[:text.index("\n## ")]  # the answer, its caveats, and a figure and table per data set
    groups = pd.read_csv(out / "tables" / "summary.csv", keep_default_na=False)[["dataset", "split"]].drop_duplicates()
    assert len(re.findall(r"!\[[^]]*\]\(plots/[^)]*_headline\.png\)", head)) == len(groups)
    for png in (out / "plots").glob("*_headline.png"):
        assert png.stat().st_size > 5000
    parity = pd.read_csv(out / "tables" / "parity.csv")
    if name == "example":
        assert head.count("| AutoML | Budgets | Baseline | Compute to parity |") == len(groups)
        assert len(parity) == 10  # 3 AutoML systems on cifar10 and each malaria split, autokeras on digits
        digits = parity[parity["dataset"] == "digits"].iloc[0]
        assert digits["budgets"] == "20s, 40s" and digits["parity"] == "undetermined"
    else:
        assert parity.empty  # no AutoML system ran: the headline is the baseline's curve alone
        assert "no AutoML system ran, so there is nothing to compare resnet with; of its " in head
    assert "## Verdicts" not in text
    assert "**Contents**" in text and "](#what-this-report-is-made-of)" in text


@pytest.mark.parametrize("table", UNCHANGED)
def test_the_other_tables_are_unchanged(example, table):
    name, out = example
    # Column by column, the columns the committed table has (a column added since, such as a FLOP ratio, is
    # left to the next regeneration); an empty table (no AutoML system ran) is an empty file on both sides.
    committed = (ROOT / name / "tables" / f"{table}.csv").read_text()
    written = (out / "tables" / f"{table}.csv").read_text()
    if not committed.strip():
        assert written == committed
        return
    before = pd.read_csv(io.StringIO(committed), keep_default_na=False, dtype=str)
    now = pd.read_csv(io.StringIO(written), keep_default_na=False, dtype=str)
    assert set(before.columns) <= set(now.columns)
    pd.testing.assert_frame_equal(now[list(before.columns)], before)
