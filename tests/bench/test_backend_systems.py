"""Every Keras system runs end to end under JAX and PyTorch: one short digits run each through the run unit.

The systems are written against Keras 3 alone, but a library they wrap (Auto-Keras, KerasTuner) or a callback may
still assume TensorFlow; a run under `backend="jax"` or `"torch"` is the check that none does. Each run is cut to
seconds (300 training images, one trial or a couple of epochs): the point is that it finishes and learns (its test
log loss below the uniform guess's, its accuracy above the majority rate beyond chance), not how well (the 2019
recipe cannot learn in so little: see NOT_LEARNING_YET). The default run keeps one system under JAX, the one whose
run goes through the most code a backend could break; the rest, PyTorch, and the smoke suite under every installed
backend through the command line run with -m slow.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.core import rundir
from bench.core.budget import parse_budget
from bench.datasets import load_data
from bench.run.execute import LocalExecutor
from bench.run.spec import DatasetRef, RunSpec, freeze
from tests.bench.systems.searches import learnt, majority_rate

# digits has 10 classes: a run that learnt nothing has the uniform guess's log loss.
UNIFORM_LOG_LOSS = math.log(10)
# Enough images for a stratified validation slice of every class, few enough for seconds per epoch.
MAX_TRAIN, MAX_TEST = 300, 200
# A hung run fails the test instead of stalling the suite.
TIMEOUT_S = 240.0
# Systems whose quick run cannot be asked to learn: the 2019 recipe (SGD at LR 0.1, L2 5e-4, a 64-pixel
# bottleneck ResNet) scores about chance after a few epochs of 300 digits on every backend (tensorflow 10% after
# 4 epochs at its batch of 32; torch's loss rises at batch 8), so its run is checked for finite, valid outputs.
NOT_LEARNING_YET = {"resnet-2019"}

# system -> (budget, options): the smallest settings the system's own tests use to stay quick.
QUICK: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet": ("full", {"epochs": 3}),
    "resnet-2019": ("full", {"epochs": 1}),
    "autokeras": ("t1", {"epochs": 2, "block_types": "vanilla"}),
    # The library's own space and epochs: its first trial (the small CNN) trains until its EarlyStopping
    # (patience 10, tens of epochs here); 5 minutes bound the run without cutting that trial.
    "autokeras-default": ("t1+5m", {}),
    "resnet-tuned": ("t1", {}),
    "autokeras-hybrid": ("t1", {"epochs": 2, "block_types": "vanilla"}),
}
# Under JAX in the default run: an Auto-Keras search (KerasTuner's trial loop, the search package's callbacks and
# hard stop), the hand-built recipes' training loop and the scale-up rule's network, in one run of about 30 CPU
# seconds. The others take 15-35 s each and repeat those paths (autokeras' refit, resnet-tuned's Hyperband and
# resnet's recipe aside), so they run with -m slow, as do resnet-2019 (minutes: XLA compiles the 2019 network's
# augmentation layers and 64 px bottleneck stages slowly) and autokeras-default (its first trial trains until
# its EarlyStopping).
DEFAULT_RUN = {("autokeras-hybrid", "jax")}


def cases() -> list[Any]:
    """(system, backend): every system under JAX and under PyTorch; DEFAULT_RUN's without -m slow."""
    out = []
    for backend in ("jax", "torch"):
        for system in QUICK:
            slow = (system, backend) not in DEFAULT_RUN
            out.append(pytest.param(system, backend, marks=[pytest.mark.slow] if slow else [],
                                    id=f"{system}-{backend}"))
    return out


@pytest.mark.parametrize(("system", "backend"), cases())
def test_each_keras_system_runs_and_learns_under_another_backend(system: str, backend: str, tmp_path: Path) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    budget, options = QUICK[system]
    spec = RunSpec(dataset=DatasetRef("digits", max_train=MAX_TRAIN, max_test=MAX_TEST), system=system,
                   budget=parse_budget(budget), seed=0, system_options=freeze(options), out_dir=str(tmp_path),
                   timeout_s=TIMEOUT_S + (parse_budget(budget).seconds or 0), backend=backend)
    record = LocalExecutor().run(spec)
    assert record.status == "ok", record.error
    assert record.accuracy is not None and math.isfinite(record.log_loss)
    if system not in NOT_LEARNING_YET:  # about 0.4-0.97 accuracy on JAX, log loss 0.2-1.9
        floor = majority_rate(load_data("digits", None, MAX_TRAIN, MAX_TEST))
        assert record.log_loss < UNIFORM_LOG_LOSS and learnt(record.accuracy, record.n_test, floor), (
            f"{system} under {backend} learnt nothing: accuracy {record.accuracy} against the majority rate "
            f"{floor:.3f}, log loss {record.log_loss}")
    meta = json.loads((rundir.run_dir(tmp_path, spec.run_id) / rundir.METADATA).read_text())
    assert meta["keras_backend"] == backend, "the worker computed with another backend than asked"
    assert record.backend == backend


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_the_smoke_suite_runs_under_each_backend(backend: str, tmp_path: Path) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    done = subprocess.run([sys.executable, "-m", "bench", "all", "--suite", "smoke", "--backend", backend,
                           "--out", str(tmp_path), "--no-report"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = pd.read_csv(tmp_path / "runs.csv", keep_default_na=False)
    assert set(runs["status"]) == {"ok"}
    keras_runs = runs[runs["system"] != "majority"]
    assert len(keras_runs) and set(keras_runs["backend"]) == {backend}
