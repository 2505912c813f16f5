"""results_amlb.csv in the AutoML Benchmark's scoreboard layout."""

import math

import pandas as pd
import pytest

from bench.report.amlb import FIXED_COLUMNS

AMLB_FIXED = [
    "id",
    "task",
    "framework",
    "constraint",
    "fold",
    "type",
    "result",
    "metric",
    "mode",
    "version",
    "params",
    "app_version",
    "utc",
    "duration",
    "training_duration",
    "predict_duration",
    "models_count",
    "seed",
    "info",
]


def test_columns_follow_amlb_order(report_dir):
    out, _ = report_dir
    frame = pd.read_csv(out / "results_amlb.csv", keep_default_na=False)
    assert list(FIXED_COLUMNS) == AMLB_FIXED
    assert list(frame.columns[:19]) == AMLB_FIXED
    assert list(frame.columns[19:22]) == ["acc", "balacc", "logloss"]
    extra = list(frame.columns[22:])
    assert extra == sorted(extra) and "macro_f1" in extra and "f1" not in frame.columns


def test_values_map_our_runs(report_dir):
    out, _ = report_dir
    frame = pd.read_csv(out / "results_amlb.csv")
    assert len(frame) == 20
    ok = frame[
        (frame.task == "malaria") & (frame.framework == "autokeras") & (frame.constraint == "24h") & (frame.fold == 1)
    ].iloc[0]
    assert ok["result"] == pytest.approx(0.961) and ok["acc"] == pytest.approx(0.961)
    assert (ok["metric"], ok["type"], ok["mode"], ok["id"]) == ("acc", "binary", "local", "malaria/cell")
    assert ok["training_duration"] == pytest.approx(86400.0) and ok["models_count"] == 40 and ok["seed"] == 1
    assert isinstance(ok["info"], float) and math.isnan(ok["info"])  # empty cell
    assert set(frame[frame.task == "cifar10"]["type"]) == {"multiclass"}


def test_failed_runs_have_no_result_and_the_error_in_info(report_dir):
    out, _ = report_dir
    frame = pd.read_csv(out / "results_amlb.csv")
    bad = frame[(frame.task == "malaria") & (frame.constraint == "1h")].set_index("fold")
    assert math.isnan(bad.loc[0, "result"]) and math.isnan(bad.loc[0, "acc"])
    assert bad.loc[0, "info"] == "failed: ResourceExhaustedError: OOM"
    assert bad.loc[1, "info"] == "timeout: killed after 1.5h"
    assert bad.loc[2, "result"] == pytest.approx(0.95)


def test_version_comes_from_the_runs_metadata(report_dir):
    out, _ = report_dir
    frame = pd.read_csv(out / "results_amlb.csv", dtype={"version": str}, keep_default_na=False)
    malaria = frame[(frame.task == "malaria") & (frame.fold == 0)].set_index(["framework", "constraint"])
    assert malaria.loc[("autokeras", "24h"), "version"] == "3.0.0"  # the AutoML package
    assert malaria.loc[("resnet", "full"), "version"] == "0.1.0"  # our own code: bench's version
    assert malaria.loc[("majority", "full"), "version"] == ""  # no metadata.json in that run's folder
