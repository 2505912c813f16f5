"""The airbench94 peer and the CIFAR-10 port on the same data and GPU (experiments/airbench_peer.py holds the study's
steps; this module times them, one benchmark a seed, and tests the steps that need no GPU).

Run (results/airbench/gpu_check.sh and cpu_peer.sh run it, then the side-by-side table):

    pytest tests/baselines/test_airbench_peer.py --benchmark-only -m '' -s --benchmark-json peer.json

Skipped, with the reason, where torch, airbench, a CUDA GPU (unless AIRBENCH_PEER_DEVICE=cpu) or CIFAR-10 is
missing; the port's benchmark where Keras' backend sees no GPU.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.datasets.registry import load_data, open_dataset
from experiments.airbench_peer import (
    DEVICE_ENV,
    OUT_ENV,
    SEEDS,
    EpochRecorder,
    WallClockEvent,
    airbench_run,
    keras_backend,
    keras_backend_sees_a_gpu,
    peer_device,
    port_run,
    prepare,
    run_on_cpu,
    shuffled_order,
    summary,
    text,
)

# Below this the run is broken, not merely worse (10 classes: chance is 10%; both recipes reach about 90%
# and more on CIFAR-10 in 10 epochs): a sanity floor, not a target.
SANE_ACCURACY = 0.5


def skip_without_cifar10() -> None:
    """A skip saying how to get CIFAR-10 where the harness would not find it (BENCH_DATA_DIR, Keras cache)."""
    availability = open_dataset("cifar10").availability()
    if not availability.ok:
        pytest.skip(f"CIFAR-10 is not available: {availability.reason}")


def cifar10_or_skip() -> Any:
    """CIFAR-10 as the harness loads it, or a skip saying how to get it."""
    skip_without_cifar10()
    return load_data("cifar10")


@pytest.fixture(scope="module")
def airbench_here(tmp_path_factory):
    """airbench imported, the device checked, and a scratch folder prepared for it (experiments.airbench_peer.
    prepare: the data, the working directory, one warm-up run); yields (airbench, recorder, data)."""
    torch = pytest.importorskip("torch", reason="the airbench peer needs PyTorch (pip install torch)")
    device = peer_device()
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"no CUDA GPU: airbench94 runs on CUDA (half-precision network, CUDA-event timing); "
                    f"{DEVICE_ENV}=cpu runs it on the CPU in float32")
    airbench = pytest.importorskip("airbench", reason="the peer needs the airbench package (pip install "
                                   "airbench==0.1.8)")
    data = cifar10_or_skip()
    work = tmp_path_factory.mktemp("airbench")
    with pytest.MonkeyPatch.context() as patch:
        recorder = prepare(airbench, data, work, device, patch)
        yield airbench, recorder, data


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_airbench94_peer(benchmark, airbench_here, seed: int) -> None:
    airbench, recorder, data = airbench_here
    rows = benchmark.pedantic(airbench_run, args=(airbench, recorder, seed), rounds=1, iterations=1)
    epochs = [r for r in rows if isinstance(r["epoch"], int)]
    final = [r for r in rows if r["epoch"] == "eval"]
    assert epochs and len(final) == 1, (
        f"airbench reported no per-epoch rows through utils.print_training_details ({rows!r}); this runner "
        "was written against airbench 0.1.8's training loop: install that version")
    cumulative = [r["total_time_seconds"] for r in epochs]
    epoch_s = np.diff([0.0, *cumulative])
    accuracy = float(final[0]["tta_val_acc"])
    device = peer_device()
    benchmark.extra_info.update(
        recipe="airbench94" if device == "cuda" else "airbench94 (cpu, float32)", device=device, seed=seed,
        test_accuracy=accuracy, epochs=len(epochs),
        train_s=cumulative[-1], epoch_s=epoch_s.tolist(), median_epoch_s=float(np.median(epoch_s)),
        val_acc_per_epoch=[float(r["val_acc"]) for r in epochs], data_pixels=data.info.get("pixels", ""),
        data_fingerprint=data.info.get("fingerprint", ""), n_train=len(data.x_train), n_test=len(data.x_test))
    print(f"\nairbench94 ({device}) seed {seed}: test accuracy (TTA) {accuracy:.4f}, {len(epochs)} epochs, "
          f"{cumulative[-1]:.2f} s of training, median {np.median(epoch_s):.3f} s/epoch "
          f"({data.info.get('pixels', '')})")
    assert SANE_ACCURACY < accuracy <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_port_on_the_same_gpu(benchmark, tmp_path, seed: int) -> None:
    skip_without_cifar10()  # the harness loads it itself, in the run's process
    if not keras_backend_sees_a_gpu():
        pytest.skip(f"Keras' backend ({keras_backend()}; KERAS_BACKEND chooses) sees no GPU: the port would run "
                    "on the CPU, not beside airbench on the same GPU (TensorFlow: pip install -e '.[gpu]')")
    out = Path(os.environ[OUT_ENV]) if os.environ.get(OUT_ENV) else tmp_path
    result = benchmark.pedantic(port_run, args=(out, seed), rounds=1, iterations=1)
    row, history = result["row"], result["history"]
    assert row["status"] == "ok", f"the port's run did not finish: {row.get('error')}"
    epoch_s = np.diff([0.0, *history["fit_s"]])
    benchmark.extra_info.update(
        recipe="port cifar10 (full)", seed=seed, test_accuracy=float(row["accuracy"]), epochs=len(history),
        train_s=float(history["fit_s"].iloc[-1]), fit_s=float(row["fit_s"]), epoch_s=epoch_s.tolist(),
        median_epoch_s=float(np.median(epoch_s)), val_acc_per_epoch=history["val_accuracy"].tolist(),
        run_id=row["run_id"], backend=keras_backend(), precision=text(row.get("precision")),
        gpu_model=text(row.get("gpu_model")), data_pixels=text(row.get("data_pixels")))
    print(f"\nport seed {seed}: test accuracy (TTA) {row['accuracy']:.4f}, {len(history)} epochs, "
          f"{history['fit_s'].iloc[-1]:.1f} s of training, median {np.median(epoch_s):.2f} s/epoch; "
          f"run {row['run_id']} in {out}")
    assert SANE_ACCURACY < float(row["accuracy"]) <= 1.0


def test_recorder_keeps_airbenchs_epoch_rows_and_passes_them_on() -> None:
    printed = []
    recorder = EpochRecorder(lambda variables, is_final_entry: printed.append(is_final_entry))
    # What utils.train's locals() hold at its two calls (one epoch, then the final TTA evaluation).
    recorder({"epoch": 0, "val_acc": 0.5, "total_time_seconds": 1.5, "loss": 2.0}, is_final_entry=False)
    recorder({"epoch": "eval", "val_acc": 0.6, "tta_val_acc": 0.61, "total_time_seconds": 1.9}, is_final_entry=True)
    assert recorder.rows == [{"epoch": 0, "val_acc": 0.5, "tta_val_acc": None, "total_time_seconds": 1.5},
                             {"epoch": "eval", "val_acc": 0.6, "tta_val_acc": 0.61, "total_time_seconds": 1.9}]
    assert printed == [False, True]


def test_airbench_whitens_from_a_sample_of_every_class() -> None:
    # Loaded class by class, as bench.datasets reads image folders: airbench's first 5,000 would be one class.
    y = np.repeat(np.arange(10), 5000)
    first = y[shuffled_order(len(y))][:5000]
    assert np.bincount(first, minlength=10).min() > 400  # about 500 of each class


def test_summary_puts_recipes_and_data_side_by_side(tmp_path) -> None:
    def info(recipe: str, seed: int, accuracy: float, pixels: str) -> dict[str, Any]:
        return {"extra_info": {"recipe": recipe, "seed": seed, "test_accuracy": accuracy, "median_epoch_s": 2.0,
                               "train_s": 20.0, "data_pixels": pixels}}

    jpeg = "lossy: JPEG quality 75"
    (tmp_path / "peer.json").write_text(json.dumps({"benchmarks": [
        info("airbench94", 0, 0.92, jpeg), info("airbench94", 1, 0.94, jpeg), info("airbench94", 0, 0.95, "")]}))
    (tmp_path / "port.json").write_text(json.dumps({"benchmarks": [info("port", 0, 0.90, jpeg), {"extra_info": {}}]}))
    table = summary([tmp_path / "peer.json", tmp_path / "port.json"])
    assert table.loc[("airbench94", jpeg), "seeds"] == 2
    assert table.loc[("airbench94", jpeg), "accuracy_mean"] == pytest.approx(0.93)
    assert table.loc[("airbench94", ""), "accuracy_mean"] == pytest.approx(0.95)
    assert table.loc[("port", jpeg), "seeds"] == 1
    with pytest.raises(SystemExit, match="did the tests skip"):
        summary([write_empty(tmp_path)])


def write_empty(folder: Path) -> Path:
    """A benchmark JSON of a session whose tests all skipped."""
    path = folder / "empty.json"
    path.write_text(json.dumps({"benchmarks": []}))
    return path


def test_the_peer_device_is_cuda_or_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert peer_device() == "cuda"
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert peer_device() == "cpu"
    monkeypatch.setenv(DEVICE_ENV, "gpu")
    with pytest.raises(pytest.UsageError, match="use cuda .* or cpu"):
        peer_device()


def test_the_wall_clock_event_times_like_a_cuda_event() -> None:
    start, end = WallClockEvent(enable_timing=True), WallClockEvent(enable_timing=True)
    start.record()
    time.sleep(0.02)
    end.record()
    assert 15 < start.elapsed_time(end) < 2000  # milliseconds, as torch.cuda.Event.elapsed_time


def test_airbench_runs_on_the_cpu_in_float32() -> None:
    torch = pytest.importorskip("torch", reason="needs PyTorch")
    airbench = pytest.importorskip("airbench", reason="needs airbench 0.1.8")
    with pytest.MonkeyPatch.context() as patch:
        run_on_cpu(airbench, patch)
        net = airbench.make_net94()  # .half().cuda() inside
        out = net(torch.rand(2, 3, 32, 32).to(memory_format=torch.channels_last))
        assert out.shape == (2, 10) and out.dtype == torch.float32 and out.device.type == "cpu"
        assert airbench.utils.CifarLoader.__init__.__defaults__[-1] == "cpu"
    assert airbench.utils.CifarLoader.__init__.__defaults__[-1] == 0  # restored
