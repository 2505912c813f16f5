"""What a system is comes from runs.csv (role, library, library_version), with the registry as the fallback for
tables recorded before those columns; where the runs ran; GPU busy time; one column spec per table."""

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest

from bench.report import ReportError, tables, write_report
from bench.report.amlb import amlb_frame
from bench.report.runs import class_of, declared_library, declared_role, grouped, load_runs, system_classes
from tests.bench.report.report_sample import HARDWARE, run, write_runs


def classes(rows, baseline: str = "resnet") -> dict[tuple[str, str], str]:
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    [(group, part)] = grouped(frame)
    return {(s.system, s.budget): s.system_class for s in tables.summarize(group, part, baseline)}


def test_the_role_column_decides_not_the_name():
    rows = [
        run("d", "s", "resnet", "full", 0, accuracy=0.9, fit_s=10.0, role="baseline"),
        # Named like Auto-Keras, recorded as a baseline that is not the chosen reference: 'other', not AutoML.
        run("d", "s", "autokeras-handmade", "full", 0, accuracy=0.8, fit_s=10.0, role="baseline"),
        # Named like nothing known, recorded as AutoML: compared with the baseline.
        run("d", "s", "searcher", "1h", 0, accuracy=0.85, fit_s=3600.0, role="automl"),
        run("d", "s", "constant", "full", 0, accuracy=0.5, fit_s=0.1, role="floor"),
    ]
    assert classes(rows) == {
        ("constant", "full"): "floor",
        ("resnet", "full"): "baseline",
        ("searcher", "1h"): "automl",
        ("autokeras-handmade", "full"): "other",
    }
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    [(group, part)] = grouped(frame)
    items = tables.versus(tables.summarize(group, part, "resnet"))
    assert [v.automl.system for v in items] == ["searcher"]
    # A recorded role wins over the registry's: a registered AutoML name recorded as 'other' stays 'other'.
    assert class_of("autokeras", "other", "resnet") == "other"


def test_rows_without_a_role_take_the_registered_class_role():
    assert (declared_role("autokeras"), declared_role("autokeras-default")) == ("automl", "automl")
    assert (declared_role("majority"), declared_role("resnet-2019")) == ("floor", "baseline")
    assert declared_role("no-such-system") == "other"
    assert (declared_library("autokeras"), declared_library("resnet"), declared_library("nope")) == (
        "autokeras",
        "bench",
        "",
    )
    rows = [
        run("d", "s", "resnet", "full", 0, accuracy=0.9, fit_s=10.0),
        run("d", "s", "resnet-2019", "full", 0, accuracy=0.9, fit_s=10.0),
        run("d", "s", "autokeras-default", "1h", 0, accuracy=0.9, fit_s=10.0),
        run("d", "s", "majority", "full", 0, accuracy=0.5, fit_s=0.1),
        run("d", "s", "mystery", "full", 0, accuracy=0.5, fit_s=0.1),
    ]
    assert classes(rows) == {
        ("majority", "full"): "floor",
        ("resnet", "full"): "baseline",
        ("autokeras-default", "1h"): "automl",
        ("mystery", "full"): "other",
        ("resnet-2019", "full"): "other",  # a baseline, but not the chosen reference
    }
    assert classes(rows, baseline="resnet-2019")[("resnet-2019", "full")] == "baseline"
    assert classes(rows, baseline="resnet-2019")[("resnet", "full")] == "other"
    # A system's first non-empty role counts, even when older rows of it have none.
    mixed = pd.DataFrame([{"system": "x", "role": ""}, {"system": "x", "role": "automl"}])
    assert system_classes(mixed, "resnet") == {"x": "automl"}


def test_amlb_version_is_the_recorded_library_version_else_the_metadata(tmp_path: Path):
    rows = [
        run("d", "s", "autokeras", "1h", 0, accuracy=0.9, fit_s=1.0, library="autokeras", library_version="9.9.9"),
        run("d", "s", "searcher", "1h", 0, accuracy=0.9, fit_s=1.0, library="searchlib"),
        run("d", "s", "autokeras", "1h", 1, accuracy=0.9, fit_s=1.0),  # old row: the registry names autokeras
        run("d", "s", "mystery", "1h", 0, accuracy=0.9, fit_s=1.0),  # unknown and no library: no version
    ]
    for r in rows:
        folder = tmp_path / "runs" / r.run_id
        folder.mkdir(parents=True)
        (folder / "metadata.json").write_text(
            '{"versions": {"autokeras": "3.0.0", "bench": "0.1.0", "searchlib": "1.2"}}'
        )
    write_runs(tmp_path, rows)
    frame = amlb_frame(load_runs(tmp_path), tmp_path).set_index(["framework", "fold"])
    assert frame.loc[("autokeras", 0), "version"] == "9.9.9"  # the column wins over metadata.json
    assert frame.loc[("searcher", 0), "version"] == "1.2"
    assert frame.loc[("autokeras", 1), "version"] == "3.0.0"
    assert frame.loc[("mystery", 0), "version"] == ""


def report_text(out: Path, rows, **kwargs) -> str:
    write_runs(out, rows)
    write_report(out, **kwargs)
    return (out / "REPORT.md").read_text()


def test_heading_says_how_many_nodes_ran_the_runs(tmp_path: Path):
    rows = [
        run("d", "s", "resnet", "full", seed, accuracy=0.9, fit_s=10.0, node=node)
        for seed, node in enumerate(["a1b2", "c3d4", "a1b2"])
    ]
    keras = "Keras systems in float32 on tensorflow."
    assert f"3 runs on 2 nodes: {HARDWARE}, {keras}" in report_text(tmp_path / "ray", rows)
    one = [r.replace(node="a1b2") for r in rows[:1]]
    assert f"1 run on 1 node: {HARDWARE}, {keras}" in report_text(tmp_path / "one", one)
    local = [r.replace(node="") for r in rows]
    text = report_text(tmp_path / "local", local)
    assert f"3 runs on {HARDWARE}, Keras" in text and "node" not in text


def test_opening_paragraph_names_the_systems_by_declared_role(tmp_path: Path):
    rows = [
        run("d", "s", "resnet", "full", 0, accuracy=0.9, fit_s=10.0),
        run("d", "s", "autokeras", "1h", 0, accuracy=0.9, fit_s=10.0),
        run("d", "s", "searcher", "1h", 0, accuracy=0.9, fit_s=10.0, role="automl"),
        run("d", "s", "majority", "full", 0, accuracy=0.5, fit_s=0.1),
        run("d", "s", "autokeras-handmade", "full", 0, accuracy=0.8, fit_s=10.0, role="baseline"),
    ]
    text = report_text(tmp_path, rows)
    assert (
        "baseline: resnet; by the roles the systems declare, AutoML: autokeras, searcher; floor: majority; "
        "other: autokeras-handmade." in text
    )
    assert "named autokeras" not in text


def test_gpu_busy_hours_in_the_summary_and_explained_only_when_measured(tmp_path: Path):
    gpu = {"gpu_s": 3600.0, "device": "NVIDIA H200", "gpu_count": 1}
    rows = [
        run("d", "s", "resnet", "full", 0, accuracy=0.9, fit_s=3600.0, gpu_busy_s=1800.0, **gpu),
        run("d", "s", "resnet", "full", 1, accuracy=0.9, fit_s=3600.0, gpu_busy_s=900.0, **gpu),
        run("d", "s", "resnet", "full", 2, accuracy=0.9, fit_s=3600.0, **gpu),  # NVML gave no utilisation
        run("d", "s", "autokeras", "1h", 0, accuracy=0.9, fit_s=3600.0, **gpu),
        run("d", "s", "autokeras", "1h", 1, "failed", gpu_busy_s=7200.0, error="OOM"),  # not ok: not counted
    ]
    text = report_text(tmp_path / "gpu", rows)
    summary = pd.read_csv(tmp_path / "gpu" / "tables" / "summary.csv").set_index("system")
    assert summary.loc["resnet", "gpu_busy_s"] == pytest.approx(1350.0)  # mean of 0.5 h and 0.25 h, in seconds
    assert math.isnan(summary.loc["autokeras", "gpu_busy_s"])
    assert summary.loc["resnet", "gpu_s"] == pytest.approx(3600.0)
    assert "| GPU | GPU busy | Params |" in text and "| 1.0 h | 22.5 min |" in text
    assert "GPU is GPUs held x wall time" in text and "GPU busy is what they worked" in text
    assert "Compute ratio = AutoML fit time / baseline fit time (wall time, not GPU or GPU busy time)." in text

    cpu = report_text(tmp_path / "cpu", [r.replace(gpu_busy_s=None, gpu_s=None) for r in rows])
    assert "GPU busy" not in cpu and "GPUs held" not in cpu
    assert "| Fit | CPU | GPU | Params | Trials |" in cpu
    assert "Compute ratio = AutoML fit time / baseline fit time." in cpu


@pytest.fixture(scope="module")
def malaria(tmp_path_factory: pytest.TempPathFactory):
    from tests.bench.report.report_sample import records

    out = tmp_path_factory.mktemp("spec")
    write_runs(out, records())
    return {g.dataset: (g, part) for g, part in grouped(load_runs(out))}["malaria"]


def test_each_table_csv_and_display_come_from_one_spec(malaria):
    group, part = malaria
    summaries = tables.summarize(group, part, "resnet")
    cases = [
        (tables.SUMMARY, summaries),
        (tables.VERSUS, tables.versus(summaries)),
        (tables.COST, tables.cost_rows(summaries, tables.Prices())),
        (tables.FAILURES, tables.failures(part)),
    ]
    for spec, items in cases:
        assert items, spec
        csv, shown = spec.csv(items), spec.display(items)
        assert list(csv.columns) == spec.csv_names
        # Optional columns without values are left out of the display only.
        assert list(shown.columns) == [c.header for c in spec.columns if c.header and c.header in shown.columns]
        assert set(spec.headers) - set(shown.columns) <= {c.header for c in spec.columns if c.optional}
        for column in spec.columns:
            if column.csv_name and column.header in shown:  # one value: a number in the CSV, its text shown
                numbers = [None if pd.isna(v) else v for v in csv[column.csv_name]]
                assert list(shown[column.header]) == [column.text(v) for v in numbers], column.csv_name
    assert "summary_frame" not in dir(tables) and "summary_display" not in dir(tables)
    summary = tables.SUMMARY.csv(summaries)
    assert list(summary.columns[-5:]) == ["gpu_s", "gpu_busy_s", "params", "trials", "hardware"]
    assert "GPU busy" not in tables.SUMMARY.display(summaries).columns


def test_a_malformed_table_is_a_report_error(tmp_path: Path):
    (tmp_path / "runs.csv").write_text("run_id,status,seed\nx,ok,not-a-number\n")
    with pytest.raises(ReportError, match="is not a bench results table"):
        load_runs(tmp_path)
    (tmp_path / "runs.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ReportError, match="no run_id, status column"):
        load_runs(tmp_path)


def test_each_data_set_lists_the_fingerprints_of_the_data_its_runs_saw(tmp_path: Path):
    seen = {"data_fingerprint": "a75062fe8d04e740", "data_format": "JPEG image zip",
            "data_pixels": "lossy: JPEG quality 75"}
    rows = [run("cifar10", "official", "resnet", "3m", s, accuracy=0.6, fit_s=100.0, **seen) for s in (0, 1)]
    rows.append(run("cifar10", "official", "majority", "full", 0, accuracy=0.1, fit_s=0.01))  # an older run
    text = report_text(tmp_path, rows)
    assert "Data fingerprint: a75062fe8d04e740 (JPEG image zip; lossy: JPEG quality 75)." in text
    frame = amlb_frame(load_runs(tmp_path), tmp_path)
    assert set(frame["data_fingerprint"].fillna("")) == {"a75062fe8d04e740", ""}


def test_the_report_says_which_precision_the_keras_systems_computed_in(tmp_path: Path):
    from bench.report.runs import arithmetic

    def frame(rows):
        return pd.DataFrame([dataclasses.asdict(r) for r in rows])

    same = [run("d", "s", "resnet", "3m", 0, accuracy=0.9, fit_s=10.0, precision="mixed_bfloat16"),
            run("d", "s", "autokeras", "3m", 0, accuracy=0.8, fit_s=10.0, precision="mixed_bfloat16"),
            run("d", "s", "majority", "full", 0, accuracy=0.5, fit_s=0.1)]
    assert arithmetic(frame(same)) == "mixed_bfloat16"
    # A Keras run from before the column was float32: next to a bf16 run the comparison is flagged.
    older = [run("d", "s", "resnet", "3m", 0, accuracy=0.9, fit_s=10.0),
             run("d", "s", "autokeras", "3m", 0, accuracy=0.8, fit_s=10.0, precision="mixed_bfloat16")]
    assert arithmetic(frame(older)) == "mixed: autokeras mixed_bfloat16, resnet float32"
    assert arithmetic(frame(same[2:])) == ""
    write_runs(tmp_path, older)
    write_report(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert "did not compute in one precision (autokeras mixed_bfloat16, resnet float32)" in text


def test_the_heading_names_the_keras_backend_and_flags_runs_on_different_ones(tmp_path):
    from bench.report.runs import keras_backend

    frame = pd.DataFrame({"system": ["resnet", "autokeras", "majority"], "status": ["ok"] * 3,
                          "backend": ["jax", "jax", ""]})
    assert keras_backend(frame) == "jax"
    frame.loc[1, "backend"] = "torch"
    assert keras_backend(frame) == "mixed: autokeras torch, resnet jax"
    frame.loc[:, "backend"] = ""  # recorded before the column: TensorFlow's
    assert keras_backend(frame) == "tensorflow"
