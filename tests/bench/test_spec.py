from dataclasses import replace

from bench.core.budget import parse_budget
from bench.run.spec import DatasetRef, Resources, RunSpec, freeze


def spec(**kw):
    base = dict(dataset=DatasetRef("malaria", freeze({"split": "patient", "size": 64}), 100), system="resnet",
                budget=parse_budget("5m"), seed=1, system_options=freeze({"batch_size": 32}))
    base.update(kw)
    return RunSpec(**base)


def test_json_round_trip():
    s = spec(suite="quick", timeout_s=90.0, out_dir="x", keep_models=True, resources=Resources(2, 1))
    assert RunSpec.from_json(s.to_json()) == s


def test_run_id_ignores_where_and_how_long_but_not_what():
    s = spec()
    moved = replace(s, suite="other", out_dir="elsewhere", timeout_s=5.0, resources=Resources(num_gpus=1))
    assert moved.run_id == s.run_id
    assert spec(dataset=DatasetRef("malaria", freeze({"size": 64, "split": "patient"}), 100)).run_id == s.run_id
    for changed in (spec(seed=2), spec(budget=parse_budget("6m")), spec(system="autokeras"),
                    spec(system_options=freeze({"batch_size": 64})),
                    spec(dataset=DatasetRef("malaria", freeze({"split": "cell", "size": 64}), 100)),
                    spec(dataset=DatasetRef("malaria", freeze({"split": "patient", "size": 64}), 200))):
        assert changed.run_id != s.run_id


def test_dataset_label_names_options_and_subsets():
    assert spec().dataset.label == "size=64;split=patient;max_train=100"
