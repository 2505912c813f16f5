"""The precision option: what `auto` picks from CPU flags and GPU capabilities, and how the harness applies it."""

import dataclasses
import json
from pathlib import Path

import pytest

from bench.core import precision, rundir
from bench.core.budget import parse_budget
from bench.core.options import ConfigError
from bench.run.driver import run_specs, same_arithmetic
from bench.run.execute import LocalExecutor
from bench.run.records import record_for
from bench.run.spec import DatasetRef, RunSpec
from bench.run.suite import parse_suite
from tests.bench.fakes import FakeNvml


@pytest.mark.parametrize(("flags", "policy"), [
    ({"avx2", "avx512f", "avx512_bf16"}, "mixed_bfloat16"),
    ({"avx2", "amx_bf16", "amx_tile"}, "mixed_bfloat16"),
    ({"avx2", "avx512f", "fma"}, "float32"),
    (set(), "float32"),
])
def test_auto_on_a_cpu_follows_its_bf16_flags(flags, policy):
    chosen = precision.choose("auto", frozenset(flags), gpu_capabilities=[])
    assert chosen.policy == policy
    assert chosen.reason.startswith("CPU flags" if policy != "float32" else "CPU without")


@pytest.mark.parametrize(("capabilities", "policy"), [
    ([(9, 0)], "mixed_bfloat16"), ([(8, 0), (8, 6)], "mixed_bfloat16"), ([(7, 5)], "float32"),
    ([(8, 0), (7, 0)], "float32"),  # a mixed pair: the older GPU decides
])
def test_auto_on_a_gpu_follows_its_compute_capability_not_the_cpu(capabilities, policy):
    chosen = precision.choose("auto", frozenset({"avx512_bf16"}), gpu_capabilities=capabilities)
    assert chosen.policy == policy
    assert "compute capability" in chosen.reason


def test_an_explicit_precision_is_taken_as_asked_and_a_wrong_one_is_refused():
    assert precision.choose("mixed_float16", frozenset()).policy == "mixed_float16"
    with pytest.raises(ValueError, match="valid: auto, float32"):
        precision.choose("bf16")


def test_gpu_capabilities_come_from_the_held_gpus_through_nvml():
    class WithCapabilities(FakeNvml):
        def nvmlDeviceGetCudaComputeCapability(self, h):
            return [(9, 0), (8, 0), (7, 0), (7, 5)][h[1]]

    from bench.measure.gpu_usage import held_capabilities

    nvml = WithCapabilities()
    assert held_capabilities(nvml, visible="1,0") == [(8, 0), (9, 0)]
    assert held_capabilities(nvml, visible="") == []
    assert held_capabilities(FakeNvml(init_error=True), visible=None) is None
    assert nvml.inits == nvml.shutdowns == 2


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n")
    assert precision.cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()


def test_a_suite_sets_one_precision_for_all_its_runs_and_rejects_unknown_ones():
    raw = {"seeds": [0], "datasets": [{"name": "digits"}], "systems": [{"name": "majority", "budgets": ["full"]},
                                                                         {"name": "resnet", "budgets": ["1m"]}]}
    suite = parse_suite({**raw, "precision": "float32"}, "s", "s.toml")
    assert {s.precision for s in suite.specs("out")} == {"float32"}
    assert {s.precision for s in parse_suite(raw, "s", "s.toml").specs("out")} == {"auto"}
    with pytest.raises(ConfigError, match="'precision' must be one of"):
        parse_suite({**raw, "precision": "half"}, "s", "s.toml")


def spec(tmp_path: Path, system: str, requested: str) -> RunSpec:
    return RunSpec(dataset=DatasetRef("digits", max_train=100), system=system, budget=parse_budget("full"),
                   seed=0, out_dir=str(tmp_path), precision=requested)


def test_precision_is_carried_to_the_worker_but_not_part_of_the_run_id(tmp_path):
    a, b = spec(tmp_path, "majority", "auto"), spec(tmp_path, "majority", "mixed_bfloat16")
    assert a.run_id == b.run_id
    assert RunSpec.from_json(b.to_json()).precision == "mixed_bfloat16"


@pytest.mark.slow
def test_the_harness_sets_the_policy_for_keras_systems_and_records_it(tmp_path):
    s = spec(tmp_path, "tests.bench.fakes:SeesPolicy", "mixed_bfloat16")
    record = LocalExecutor().run(s)
    assert record.status == "ok", record.error
    assert record.precision == "mixed_bfloat16"
    meta = json.loads((rundir.run_dir(tmp_path, s.run_id) / rundir.METADATA).read_text())
    assert meta["extras"]["policy_seen"] == "mixed_bfloat16"
    assert meta["precision"] == {"requested": "mixed_bfloat16", "policy": "mixed_bfloat16", "reason": "asked for"}
    # The same kernels for every Keras system: the worker installs the fused batch norm before fit.
    assert meta["extras"]["fused_batch_norm_seen"] is True and "fused batch norm" in meta["keras_kernels"]
    plain = LocalExecutor().run(spec(tmp_path, "majority", "mixed_bfloat16"))
    assert plain.precision == "", "a system without Keras has no precision to record"


class Asked(LocalExecutor):
    """An executor that notes the runs the driver hands it and runs none of them."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[RunSpec] = []

    def map(self, specs, on_start=None):
        self.asked += list(specs)
        return iter(())


@pytest.mark.slow
def test_resuming_reruns_a_keras_run_made_in_another_precision_than_asked(tmp_path):
    """The driver's choice of what to run again; a rerun's record of its precision is the test above's."""
    keras_run = "tests.bench.fakes:SeesPolicy"
    first = run_specs([spec(tmp_path, keras_run, "float32"), spec(tmp_path, "majority", "float32")],
                      LocalExecutor(), tmp_path)
    assert first.counts["ok"] == 2
    same = Asked()
    assert run_specs([spec(tmp_path, keras_run, "auto"), spec(tmp_path, "majority", "mixed_bfloat16")],
                     same, tmp_path).already_done == 2, "auto accepts any policy; majority has none"
    assert same.asked == []
    other = Asked()
    rerun = spec(tmp_path, keras_run, "mixed_bfloat16")
    assert run_specs([rerun, spec(tmp_path, "majority", "mixed_bfloat16")], other, tmp_path).already_done == 1
    assert [(s.run_id, s.precision) for s in other.asked] == [(rerun.run_id, "mixed_bfloat16")]


def test_a_recorded_keras_run_is_done_only_in_the_arithmetic_asked(tmp_path):
    """The driver's rule behind the rerun above, without running: a Keras run's record must match the precision
    and backend asked (auto takes any); a system without Keras has no arithmetic to match."""
    keras_run = spec(tmp_path, "tests.bench.fakes:SeesPolicy", "mixed_bfloat16")
    done = record_for(keras_run, "ok", precision="float32", backend="tensorflow")
    assert not same_arithmetic(keras_run, done)
    assert same_arithmetic(dataclasses.replace(keras_run, precision="auto"), done)
    assert same_arithmetic(keras_run, done.replace(precision="mixed_bfloat16"))
    assert not same_arithmetic(dataclasses.replace(keras_run, backend="jax"), done.replace(precision="mixed_bfloat16"))
    majority = spec(tmp_path, "majority", "mixed_bfloat16")
    assert same_arithmetic(majority, record_for(majority, "ok"))


def test_records_from_before_the_option_count_as_float32():
    assert precision.satisfies("float32", "")
    assert not precision.satisfies("mixed_bfloat16", "")
    assert precision.satisfies("auto", "")


def test_every_registered_system_that_trains_keras_models_says_so():
    # The harness applies the precision, backend and kernels to Keras systems only: a Keras system not marked
    # would compute in other arithmetic than its opponents.
    from bench.systems import system_class, system_names

    marked = {name for name in system_names() if system_class(name).uses_keras}
    # The AutoGluon systems compute with PyTorch, in an environment of their own.
    assert marked == set(system_names()) - {"majority", "autogluon", "autogluon-hpo"}
