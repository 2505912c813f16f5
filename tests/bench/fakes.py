"""Systems that misbehave on purpose, importable by worker processes as tests.bench.fakes:Name, and a scripted
NVML for the GPU-time and precision tests."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench.systems.base import FitContext, System


class _Prior(System):
    """Shared predict: the training prior, like majority."""

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        self._prior = np.bincount(y, minlength=ctx.n_classes) / len(y)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.tile(self._prior, (len(x), 1))


class Raises(_Prior):
    """Fails inside fit."""

    name = "raises"
    description = "raises in fit"

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        raise RuntimeError("deliberate failure in fit")


class Hangs(_Prior):
    """Never returns from fit."""

    name = "hangs"
    description = "sleeps forever"

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        while True:
            time.sleep(0.1)


class Deaf(_Prior):
    """Ignores the soft stop, so only the kill ends it."""

    name = "deaf"
    description = "ignores SIGTERM and hangs"

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(0.1)


class Hog(_Prior):
    """Allocates memory until killed."""

    name = "hog"
    description = "eats memory"

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        blocks = []
        while True:
            blocks.append(np.ones(50 * 2**20 // 8))  # 50 MiB, touched
            time.sleep(0.05)


class Sleeps(_Prior):
    """Sleeps a while, notes each call in a file, then predicts the prior."""

    name = "sleeps"
    description = "sleeps then predicts the prior"

    @dataclass(frozen=True)
    class Options:
        seconds: float = 1.0
        calls: str = ""  # file that gets one line per fit, for counting reruns

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        if self.options.calls:
            with open(self.options.calls, "a") as f:
                f.write(f"{ctx.run_dir.name} {os.getpid()}\n")
        (ctx.workdir / "scratch.bin").write_bytes(b"x" * 2**20)
        time.sleep(self.options.seconds)
        super().fit(x, y, ctx)
        Path(ctx.run_dir / "artifact.txt").write_text("kept")


class SeesPolicy(_Prior):
    """A Keras system that reports the dtype policy it found set when fit began, and whether Keras' batch
    norm had been routed through the fused kernel."""

    name = "sees-policy"
    description = "records the dtype policy set before fit"
    uses_keras = True

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        import keras

        super().fit(x, y, ctx)
        self._policy = keras.mixed_precision.global_policy().name
        from bench.baselines import kernels

        self._fused = kernels.installed()

    def extras(self) -> dict[str, object]:
        return {"policy_seen": self._policy, "fused_batch_norm_seen": self._fused}


class OddLayerNet(_Prior):
    """A Keras network with a layer the FLOP counter has no rule for; it reports its FLOPs as one pass over the
    training images (so the figures are lower bounds, and say so)."""

    name = "odd-layer-net"
    description = "a Dense layer and an uncountable custom layer"
    uses_keras = True

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        import keras

        class Odd(keras.layers.Layer):
            def call(self, inputs):  # noqa: ANN001, ANN202
                return inputs * 2

        inputs = keras.Input(x.shape[1:])
        self._model = keras.Model(inputs, Odd()(keras.layers.Dense(4)(keras.layers.Flatten()(inputs))))
        self._trained = len(x)
        super().fit(x, y, ctx)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self._predicted = len(x)
        return super().predict_proba(x)

    def extras(self) -> dict[str, object]:
        from bench.measure.flops import Spent

        return Spent.of(self._model, self._trained, self._predicted).fields()


# NVML reports memory in bytes; the fake is scripted in MiB.
MIB = 1024 * 1024


class FakeNVMLError(Exception):
    pass


class FakeNvml:
    """pynvml's API over four scripted devices; utilisation and memory may be changed while sampling."""

    NVMLError = FakeNVMLError

    def __init__(self, names=None, util=(10, 50, 20, 100), used_mb=(9000, 100, 7000, 300), init_error=False,
                 bytes_strings=False):
        self.names = names or ["NVIDIA H200"] * 4
        self.uuids = [f"GPU-{i}{i}aa{i}bcd-0000-1111-2222-33334444555{i}" for i in range(4)]
        self.util = list(util)
        self.used_mb = list(used_mb)
        self.init_error = init_error
        self.bytes_strings = bytes_strings
        self.fail_reads = False  # every read raises NVMLError while True
        self.fail_every = 0  # every n-th utilisation read raises NVMLError
        self.util_reads = 0
        self.inits = 0
        self.shutdowns = 0
        self.lock = threading.Lock()

    def _str(self, s):
        return s.encode() if self.bytes_strings else s

    def nvmlInit(self):
        if self.init_error:
            raise FakeNVMLError("NVML Shared Library Not Found")
        self.inits += 1

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return 4

    def nvmlDeviceGetHandleByIndex(self, i):
        if not 0 <= i < 4:
            raise FakeNVMLError("Invalid Argument")
        return ("handle", i)

    def nvmlDeviceGetName(self, h):
        return self._str(self.names[h[1]])

    def nvmlDeviceGetUUID(self, h):
        return self._str(self.uuids[h[1]])

    def nvmlDeviceGetUtilizationRates(self, h):
        with self.lock:
            self.util_reads += 1
            n = self.util_reads
        if self.fail_reads or (self.fail_every and n % self.fail_every == 0):
            raise FakeNVMLError("GPU is lost")
        return SimpleNamespace(gpu=self.util[h[1]], memory=0)

    def nvmlDeviceGetMemoryInfo(self, h):
        if self.fail_reads:
            raise FakeNVMLError("GPU is lost")
        return SimpleNamespace(used=self.used_mb[h[1]] * MIB, total=141_000 * MIB, free=0)


class FillsCheckpoint(_Prior):
    """Writes 2^26 bytes into its resume checkpoint (where a continuing search keeps its project), then waits."""

    name = "fills-checkpoint"
    description = "fills its checkpoint folder"

    def resumes(self, budget: object) -> bool:
        return True

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        (ctx.resume.checkpoint_dir / "trial.bin").write_bytes(b"\0" * (64 << 20))
        time.sleep(60)


class FailsAfterACheckpoint(_Prior):
    """Saves a checkpoint, then fails, the first time; continues from that checkpoint to the end the next."""

    name = "fails-after-a-checkpoint"
    description = "fails once after its first checkpoint"

    def resumes(self, budget: object) -> bool:
        return True

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        saved = ctx.resume.checkpoint_dir / "stage.txt"
        if not saved.exists():
            saved.write_text("search done")
            ctx.resume.checkpointed("the search")
            raise RuntimeError("deliberate failure after the search")
        super().fit(x, y, ctx)


# Burns `seconds` of CPU time (not wall time: a busy machine only makes it take longer), then exits.
BURN = "import sys, time\nwhile time.process_time() < float(sys.argv[1]):\n    pass\n"


class StartsProcesses(_Prior):
    """Trains in a process of its own, as a library's search does, and reports that process's CPU."""

    name = "starts-processes"
    description = "burns CPU in a child process, then predicts the prior"

    @dataclass(frozen=True)
    class Options:
        seconds: float = 1.0

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        import subprocess
        import sys

        from bench.measure.descendants import DescendantsCpu

        with DescendantsCpu(poll_s=0.1) as others:
            subprocess.run([sys.executable, "-c", BURN, str(self.options.seconds)], check=True)
        self._others_s = others.cpu_s
        super().fit(x, y, ctx)

    def extras(self) -> dict[str, object]:
        return {"descendants_cpu_s": self._others_s}
