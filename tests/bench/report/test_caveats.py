"""The caveats said beside the answer come from the runs: hardware in words, data size and source, trials, seeds."""

import json
from pathlib import Path

from bench.report.caveats import caveats, hardware_words
from bench.report.runs import grouped, load_runs, system_classes
from tests.bench.report.report_sample import run, write_runs

META = {"cpu_count": 2, "cpu_model": "AMD EPYC", "gpus": [],
        "precision": {"policy": "mixed_bfloat16", "reason": "CPU flags avx512_bf16"},
        "dataset_info": {"format": "JPEG image zip", "source": "/data/cifar10-jpeg.zip"}}


def test_hardware_reads_as_a_person_says_it():
    assert hardware_words([META]) == "2 vCPUs, AMD EPYC with AVX-512 BF16; no GPU"
    # The floor records no precision: the flags another run of the same machine saw still count.
    assert hardware_words([{"cpu_count": 1, "cpu_model": "X"}, META | {"cpu_count": 1, "cpu_model": "X"}]) == (
        "1 vCPU, X with AVX-512 BF16; no GPU")
    assert hardware_words([META | {"gpus": ["NVIDIA H100", "NVIDIA H100"]}]).endswith("; 2x NVIDIA H100")
    assert hardware_words([{}]) == ""


def test_caveats_name_the_data_its_lossy_source_the_trials_and_a_single_seed(tmp_path: Path):
    rows = [run("cifar10", "official", "resnet", "1m", 0, accuracy=0.7, fit_s=60.0, n_train=5000, n_test=2000),
            run("cifar10", "official", "autokeras", "1m", 0, accuracy=0.5, fit_s=60.0, trials=1, n_train=5000,
                n_test=2000),
            run("cifar10", "official", "autokeras", "2m", 0, accuracy=0.5, fit_s=120.0, trials=2, n_train=5000,
                n_test=2000)]
    write_runs(tmp_path, rows)
    for r in rows:
        folder = tmp_path / "runs" / r.run_id
        folder.mkdir(parents=True)
        (folder / "metadata.json").write_text(json.dumps(META))
    runs = load_runs(tmp_path)
    found = caveats(tmp_path, grouped(runs), system_classes(runs, "resnet"))
    assert found[0] == "Hardware: 2 vCPUs, AMD EPYC with AVX-512 BF16; no GPU."
    data = found[1]
    assert data.startswith("cifar10 (official split): 5,000 training and 2,000 test images, JPEG image zip from "
                           "cifar10-jpeg.zip (lossy")
    assert "Trials per search: autokeras 1-2 trials." in data
    assert "One seed per configuration" in data


def test_runs_started_again_name_the_fit_time_their_figures_leave_out(tmp_path: Path):
    rows = [run("d", "x", "autogluon-hpo", "2m", s, accuracy=0.5, fit_s=120.0,
                uncounted_fit_s={0: 75.0, 1: None, 2: 30.0}[s]) for s in range(3)]
    rows += [run("d", "x", "resnet", "2m", s, accuracy=0.9, fit_s=120.0) for s in range(3)]
    write_runs(tmp_path, rows)
    runs = load_runs(tmp_path)
    [found] = caveats(tmp_path, grouped(runs), system_classes(runs, "resnet"))
    assert found.endswith("2 runs (autogluon-hpo 2m) started again with the whole budget after the process died (the "
                          "system cannot continue from where it stopped): the figures leave out the 1.8 min of fit "
                          "the earlier attempts spent.")
    write_runs(tmp_path / "none", rows[1:2] + rows[3:])
    runs = load_runs(tmp_path / "none")
    assert "started again" not in " ".join(caveats(tmp_path / "none", grouped(runs), system_classes(runs, "resnet")))
