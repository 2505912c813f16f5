"""One run, in its own process: load data, fit and predict through the system, score, write the run folder.

Started by bench.run.supervise.supervise as `python -m bench.run.worker SPEC_JSON`. A SIGTERM from the
supervisor (the soft stop) raises SoftStop wherever Python code is running; the run is then recorded as
a timeout. The worker leaves its part of the record in the run folder (rundir.WORKER_RESULT); the
supervisor completes it and writes record.json.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import os
import random
import signal
import sys
import traceback
from pathlib import Path

import numpy as np

from bench.baselines import kernels
from bench.baselines.keras_support import set_precision
from bench.core import precision, rundir
from bench.core.resume import Attempt
from bench.core.rundir import error_text
from bench.datasets import load_data
from bench.datasets.folder import describe_left_out
from bench.measure import metrics
from bench.measure.cpu_energy import CpuEnergyMeter
from bench.measure.gpu_usage import GpuSampler
from bench.measure.meters import Meters
from bench.measure.timing import peak_rss_mb
from bench.run import metadata
from bench.run.records import RECORD_FIELDS, RunRecord, record_for
from bench.run.spec import RunSpec
from bench.systems import make_system
from bench.systems.base import FitContext
from bench.systems.search.distributed import whole_compute


class SoftStop(BaseException):
    """The executor's time limit arrived (SIGTERM); BaseException so `except Exception` cannot swallow it."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise SoftStop("stopped at the run's hard time limit")


def die_with_parent() -> None:
    """Linux: have the kernel kill this process if the driver dies (kill -9), so no orphan keeps writing."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def prepare_keras(spec: RunSpec) -> precision.Precision:
    """Sets the run's arithmetic and kernels before a Keras system builds anything; every Keras system (and
    every process of a distributed search) gets the same, the baseline's and Auto-Keras' alike."""
    arithmetic = precision.choose(spec.precision)
    set_precision(arithmetic.policy)
    kernels.install()  # the fused batch-norm kernel
    return arithmetic


def execute(spec: RunSpec) -> RunRecord:
    """Runs the spec in this process, writes the run's files and its part of the record; never raises."""
    folder = rundir.run_dir(spec.out_dir, spec.run_id)
    work = folder / rundir.WORK
    work.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    common: dict[str, object] = {"started_utc": started}
    meta: dict[str, object] | None = None
    packages: tuple[str, ...] = ()
    # The code that runs is the commit checked out now; one made while the run goes must not be recorded.
    commit = metadata.git_commit()
    gpus, cpu_energy = GpuSampler(), CpuEnergyMeter()
    meters = Meters(gpus, cpu_energy)
    arithmetic: precision.Precision | None = None
    attempt: Attempt | None = None
    try:
        system = make_system(spec.system, dict(spec.system_options))
        common.update(system.identity(), budget_scope=system.budget_scope())
        packages = (system.library,)
        if system.uses_keras:
            arithmetic = prepare_keras(spec)
            import keras

            common.update(precision=arithmetic.policy, backend=keras.backend.backend())
        data = load_data(spec.dataset.name, dict(spec.dataset.options),
                         spec.dataset.max_train, spec.dataset.max_test)
        if left := describe_left_out(data.info):
            logging.getLogger(__name__).info("data: %s", left)
        common.update(split=data.split, n_train=len(data.y_train), n_test=len(data.y_test),
                      n_classes=data.n_classes, data_fingerprint=str(data.info.get("fingerprint", "")),
                      data_format=str(data.info.get("format", "")), data_pixels=str(data.info.get("pixels", "")))
        random.seed(spec.seed)
        np.random.seed(spec.seed)
        attempt = Attempt(folder, {"run_id": spec.run_id, "data_fingerprint": common["data_fingerprint"],
                                   "code": commit or "", "backend": str(common.get("backend", "")),
                                   "precision": str(common.get("precision", ""))},
                          resumable=system.resumes(spec.budget))
        if attempt.note:
            print(f"resume: {attempt.note}", flush=True)
        ctx = FitContext(budget=spec.budget, seed=spec.seed, workdir=work, run_dir=folder,
                         n_classes=data.n_classes, class_names=data.class_names, dataset=spec.dataset.name,
                         deadline=attempt.deadline(spec.budget.seconds), keep_models=spec.keep_models,
                         resume=attempt)
        attempt.fit_started(lambda: {**gpus.so_far().as_fields(), "cpu_energy_j": cpu_energy.so_far()})
        with meters:
            result = system.run(data, ctx, meters)
        attempt.stop()
        common.update(attempts=attempt.before.attempts + 1, resumed_from=attempt.before.carried,
                      uncounted_fit_s=attempt.before.uncounted_fit_s or None)
        scores = metrics.score(data.y_test, result.probabilities)
        meta = metadata.collect(packages)
        known = {k: v for k, v in result.extras.items() if k in RECORD_FIELDS}
        # A search over several processes: its workers' compute counts with the run's.
        # CPU of the processes a library started for itself (AutoGluon's Ray Tune trials) counts with the run's.
        cpu_s = result.cpu_s + (result.extras.get("descendants_cpu_s") or 0.0)
        this_attempt = {"fit_s": result.fit_s, "cpu_s": cpu_s, **gpus.stop().as_fields(),
                        "cpu_energy_j": cpu_energy.stop()}
        compute = whole_compute(attempt.with_earlier(this_attempt), result.extras)
        train_flops, whole_fit_s = known.get("train_flops"), compute.get("fit_s")
        rate = train_flops / whole_fit_s if train_flops is not None and whole_fit_s else None
        record = record_for(
            spec, "ok", flops_per_s=rate, accuracy=scores.accuracy, balanced_accuracy=scores.balanced_accuracy,
            macro_f1=scores.macro_f1, log_loss=scores.log_loss, predict_s=result.predict_s, **compute,
            params=result.params, trials=result.trials, device=meta["gpus"][0] if meta["gpus"] else "cpu",
            hardware=meta["hardware"], **known, **common)
        rundir.write_predictions(folder / rundir.PREDICTIONS, result.probabilities, data.y_test,
                                 data.class_names)
        rundir.write_atomic(folder / rundir.REPORT,
                            metrics.classification_report(data.y_test, result.probabilities, data.class_names))
        meta["dataset_info"] = dict(data.info)
        meta["extras"] = {k: v for k, v in result.extras.items() if k not in RECORD_FIELDS}
        attempt.finish()  # the run is complete: nothing is left to resume
        if record.flops_uncounted:  # the FLOP figures are lower bounds: these layers' compute is missing
            meta["flops_uncounted"] = record.flops_uncounted.split(",")
    except SoftStop as exc:
        record = record_for(spec, "timeout", error=error_text(exc), **common)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a recorded run
        traceback.print_exc()
        record = record_for(spec, "failed", error=error_text(exc), **common)
    finally:
        gpus.stop()
        cpu_energy.stop()
        if attempt is not None:
            attempt.stop()
    meta = meta or metadata.collect(packages)
    meta["git_commit"] = commit
    if arithmetic is not None:
        meta["precision"] = arithmetic.as_metadata()
        meta["keras_kernels"] = kernels.describe()
    record = record.replace(peak_rss_mb=peak_rss_mb(), hardware=record.hardware or meta["hardware"])
    rundir.write_json(folder / rundir.METADATA, meta)
    rundir.write_atomic(folder / rundir.WORKER_RESULT, record.to_json())
    return record


def log_to_output() -> None:
    """The systems' progress (baseline epochs, budget plans, trials) to this process's output (a run's log.txt),
    the libraries' own chatter left out."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Entry point: the spec file's path is the only argument."""
    args = sys.argv[1:] if argv is None else argv
    die_with_parent()
    signal.signal(signal.SIGTERM, _on_sigterm)
    log_to_output()
    spec = RunSpec.from_json(Path(args[0]).read_text())
    record = execute(spec)
    print(f"run {record.run_id}: {record.status} {record.error}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
