"""The record recipe as the CIFAR-10 port's peer, on a GPU: airbench94 (the `airbench` package, PyTorch) and the
port (through the harness) on the same CIFAR-10 data, the same GPU, 10 epochs, a few seeds each.

This module holds the study's steps; the benchmarks in tests/baselines/test_airbench_peer.py time them per seed.
Run from the repository root (on a CUDA machine; results/airbench/gpu_check.sh installs what it needs and runs
both):

    pytest tests/baselines/test_airbench_peer.py --benchmark-only -m '' -s --benchmark-json peer.json
    python -m experiments.airbench_peer peer.json port.json   # the side-by-side table

Each benchmark records, in benchmark.extra_info (and the JSON report): the test accuracy after the schedule (with
the recipe's test-time augmentation), the seconds of training per epoch, and the per-epoch accuracy curve.
airbench's curve is test accuracy without TTA after each epoch (what airbench prints); the port's is its
history.csv, accuracy on its 2,000-image validation slice of the training set (the port never scores the test
set before the end).

The data: airbench's CifarLoader reads `<path>/train.pt` and `<path>/test.pt` (dicts of a uint8 (N, 32, 32, 3)
tensor 'images', an int64 tensor 'labels' and a list 'classes'; it downloads canonical CIFAR-10 through
torchvision only when they are missing), and its training loop always reads its test set from './cifar10'.
So the peer writes the arrays bench.datasets loads (the same file the harness reads: BENCH_DATA_DIR, e.g.
cifar10-jpeg.zip, JPEG quality 75) as those two files into a scratch folder and runs there: airbench94
trains and scores exactly the images the port does, and nothing is downloaded.

The benchmarks skip, with the reason, where torch, airbench or a CUDA GPU is missing (airbench94 builds its
network in half precision with `.cuda()` and times with CUDA events), or where CIFAR-10 is not available; the
port's where Keras' backend sees no GPU. The port runs under any Keras backend with a GPU
(KERAS_BACKEND=tensorflow, jax or torch): on a GPU machine with only PyTorch or JAX installed, it runs
without TensorFlow.

On a CPU (AIRBENCH_PEER_DEVICE=cpu; results/airbench/cpu_peer.sh): the same airbench94 code, with its four
CUDA-only calls redirected (see `run_on_cpu`): the network and images in float32 instead of float16 (a CPU has
no fast float16 convolution; float32 is the more exact arithmetic), the loader on the CPU, and the wall clock
in place of CUDA events. Everything else (network, schedule, optimiser, augmentation, TTA) is airbench's own.
About 40 minutes a seed on 2 CPU cores: the answer to "port or data" without a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.core import rundir

# Seeds per recipe: a few, so a difference between the two can be told from the seed-to-seed spread
# (airbench94's runs spread by about 0.14 points around 94.01% in its authors' 1000 runs). AIRBENCH_PEER_SEEDS
# (e.g. "0,1") runs fewer, for a CPU.
SEEDS = tuple(int(s) for s in os.environ.get("AIRBENCH_PEER_SEEDS", "0,1,2").split(","))
# Where the peer runs: "cuda" (airbench's own setting) or "cpu" (see run_on_cpu).
DEVICE_ENV = "AIRBENCH_PEER_DEVICE"
# The folder airbench's training loop reads its test set from, relative to the working directory
# (lib_airbench94 -> utils.train: CifarLoader('cifar10', train=False)).
AIRBENCH_DATA = "cifar10"
# The port's results folder: AIRBENCH_PEER_OUT when set (gpu_check.sh keeps the runs), else a scratch one.
OUT_ENV = "AIRBENCH_PEER_OUT"


def write_airbench_files(data: Any, folder: Path) -> None:
    """The data set's arrays in the files airbench's CifarLoader reads: folder/train.pt and folder/test.pt.

    The training images go in a fixed random order: airbench estimates its whitening from the first 5,000
    (train_loader.images[:5000]), a random sample in canonical CIFAR-10's order, but a single class (all
    airplanes) in an image-folder copy's, which bench.datasets loads class by class.
    """
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    order = shuffled_order(len(data.x_train))
    for name, x, y in (("train", data.x_train[order], data.y_train[order]), ("test", data.x_test, data.y_test)):
        # Copies: the loaded arrays may be read-only (the cache's memory maps), which torch only warns about.
        torch.save({"images": torch.from_numpy(np.array(x, dtype=np.uint8)),
                    "labels": torch.from_numpy(np.array(y, dtype=np.int64)),
                    "classes": list(data.class_names)}, folder / f"{name}.pt")


def shuffled_order(n: int) -> np.ndarray:
    """A fixed random order of n training images (the same for every seed: the data are fixed, seeds vary
    the training only)."""
    return np.random.default_rng(0).permutation(n)


class EpochRecorder:
    """Wraps airbench.utils.print_training_details, which its training loop calls after every epoch and once
    after the final TTA evaluation with its local variables: keeps epoch, val_acc, tta_val_acc and the
    cumulative total_time_seconds (CUDA-event timed training, evaluation excluded but for the final TTA)."""

    def __init__(self, original: Any) -> None:
        self.original, self.rows = original, []

    def __call__(self, variables: dict[str, Any], is_final_entry: bool) -> None:
        self.rows.append({k: variables.get(k) for k in ("epoch", "val_acc", "tta_val_acc", "total_time_seconds")})
        self.original(variables, is_final_entry)


class WallClockEvent:
    """torch.cuda.Event's timing interface on the host's clock: elapsed_time in milliseconds between two
    record() calls (on a CPU every operation has finished when it returns, so no synchronisation is needed)."""

    def __init__(self, enable_timing: bool = True) -> None:
        self.at = 0.0

    def record(self) -> None:
        self.at = time.perf_counter()

    def elapsed_time(self, end: WallClockEvent) -> float:
        return 1e3 * (end.at - self.at)


def as_float32(self: Any, *args: Any, **kwargs: Any) -> Any:
    """Tensor.half and Module.half on a CPU: float32 (a tensor's .float() and a module's are the same call)."""
    return self.float()


def unchanged(self: Any, *args: Any, **kwargs: Any) -> Any:
    """Module.cuda on a CPU: the module where it is."""
    return self


def run_on_cpu(airbench: Any, patch: pytest.MonkeyPatch) -> None:
    """Redirects airbench 0.1.8's CUDA-only calls to the CPU, for this process while `patch` is active:
    half() -> float32, Module.cuda() -> no move, CifarLoader's device (gpu=0) -> the CPU, CUDA events ->
    the wall clock, torch.cuda.synchronize -> nothing to wait for."""
    import torch

    patch.setattr(torch.Tensor, "half", as_float32)
    patch.setattr(torch.nn.Module, "half", as_float32)
    patch.setattr(torch.nn.Module, "cuda", unchanged)
    patch.setattr(torch.cuda, "Event", WallClockEvent)
    patch.setattr(torch.cuda, "synchronize", lambda *args, **kwargs: None)
    patch.setattr(torch.cuda, "empty_cache", lambda: None)
    loader = airbench.utils.CifarLoader.__init__
    names = loader.__code__.co_varnames[loader.__code__.co_argcount - len(loader.__defaults__):
                                        loader.__code__.co_argcount]
    assert names[-1] == "gpu", f"airbench's CifarLoader takes {names}: this runner needs airbench 0.1.8"
    patch.setattr(loader, "__defaults__", (*loader.__defaults__[:-1], "cpu"))


def peer_device() -> str:
    """AIRBENCH_PEER_DEVICE, checked: cuda (the default) or cpu."""
    device = os.environ.get(DEVICE_ENV, "cuda")
    if device not in ("cuda", "cpu"):
        raise pytest.UsageError(f"{DEVICE_ENV}={device!r}: use cuda (airbench's own) or cpu")
    return device


def prepare(airbench: Any, data: Any, work: Path, device: str, patch: pytest.MonkeyPatch) -> EpochRecorder:
    """Makes `work` airbench's working folder for as long as `patch` is active: the data written where airbench
    reads it, the working directory there, the CPU redirections where device is cpu, its per-epoch report
    recorded, and one warm-up run (airbench's own: cuDNN picks its kernels) done. Returns the recorder."""
    write_airbench_files(data, work / AIRBENCH_DATA)
    patch.chdir(work)
    if device == "cpu":
        run_on_cpu(airbench, patch)
    recorder = EpochRecorder(airbench.utils.print_training_details)
    patch.setattr(airbench.utils, "print_training_details", recorder)
    airbench.warmup94()
    return recorder


def airbench_run(airbench: Any, recorder: EpochRecorder, seed: int) -> list[dict[str, Any]]:
    """One airbench94 training with its own defaults (its loader on ./cifar10, 9.9 epochs of batches of 1024,
    TTA level 2); returns the rows it reported."""
    import torch

    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)  # a no-op without CUDA
    recorder.rows = []
    airbench.train94()
    torch.cuda.empty_cache()  # the trained network is dropped: leave the GPU's memory to the port's runs
    return list(recorder.rows)


# How each Keras backend counts its GPUs, asked in a fresh process (none of torch's CUDA state from the peer).
GPU_PROBES = {
    "tensorflow": "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))",
    "jax": "import jax; print(sum(d.platform == 'gpu' for d in jax.devices()))",
    "torch": "import torch; print(torch.cuda.device_count())",
}


def keras_backend() -> str:
    """The Keras backend the harness's runs will use (KERAS_BACKEND, else Keras' default)."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def keras_backend_sees_a_gpu() -> bool:
    """Whether the Keras backend's own library, in a fresh process, lists a GPU."""
    probe = GPU_PROBES.get(keras_backend())
    if probe is None:
        return False
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    words = result.stdout.split()
    return result.returncode == 0 and bool(words) and words[-1].isdigit() and int(words[-1]) > 0


def text(value: Any) -> str:
    """A runs.csv cell as text: empty where the cell is (pandas reads empty cells as NaN)."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def port_run(out: Path, seed: int) -> dict[str, Any]:
    """One run of the port's full recipe (airbench94's widths, 10 epochs) through the harness, precision auto;
    returns its runs.csv row and its history."""
    cmd = [sys.executable, "-m", "bench", "run", "--dataset", "cifar10", "--system", "resnet",
           "--system-option", "recipe=cifar10", "--budget", "full", "--seed", str(seed), "--precision", "auto",
           "--out", str(out)]
    # Its exit code says whether the run failed; the record says why, and the test reports that.
    subprocess.run(cmd, check=False)
    runs = pd.read_csv(out / rundir.RUNS_TABLE)
    row = runs[(runs["dataset"] == "cifar10") & (runs["system"] == "resnet") & (runs["budget"] == "full")
               & (runs["seed"] == seed)].iloc[-1]
    history = pd.read_csv(rundir.run_dir(out, row["run_id"]) / rundir.HISTORY)
    return {"row": row.to_dict(), "history": history}


def summary(benchmark_jsons: list[Path]) -> pd.DataFrame:
    """Side by side from --benchmark-json files: per recipe and data, seeds, test accuracy (mean, std) and
    seconds of training per epoch (median over a run's epochs, mean over seeds)."""
    rows = []
    for path in benchmark_jsons:
        report = json.loads(Path(path).read_text())
        rows += [b["extra_info"] for b in report["benchmarks"] if "recipe" in b.get("extra_info", {})]
    if not rows:
        raise SystemExit(f"no peer or port results in {', '.join(map(str, benchmark_jsons))}: did the tests skip?")
    table = pd.DataFrame(rows).fillna({"data_pixels": ""})
    return table.groupby(["recipe", "data_pixels"]).agg(
        seeds=("seed", "count"), accuracy_mean=("test_accuracy", "mean"), accuracy_std=("test_accuracy", "std"),
        median_epoch_s=("median_epoch_s", "mean"), train_s=("train_s", "mean"))


def main(argv: list[str]) -> None:
    """python -m experiments.airbench_peer A.json B.json: the side-by-side table of --benchmark-json files."""
    print(summary([Path(a) for a in argv]).to_string())


if __name__ == "__main__":
    main(sys.argv[1:])
