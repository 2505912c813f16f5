"""A worker process of a search spread over several (bench.systems.search.distributed).

Started by the chief as `python -m bench.run.search_worker PLAN_JSON`: it pins itself to its cores before
any library sizes a thread pool, sets up Keras as the run's own process does (bench.run.worker.prepare_keras), loads
the run's data and runs the system's fit with the plan in its FitContext, so the system builds the same tuner
and the search package gives it a client of the chief's oracle, whose calls say its compute so far (its meters,
report_meters). Its part ends with WorkerFinished when its trial loop does; its last line says how it ended, which
the chief records. It writes no record: its trials and compute are in the chief's.
"""

from __future__ import annotations

import random
import signal
import sys
import traceback
from pathlib import Path

import numpy as np

from bench.core.network import Unreachable, check_reachable
from bench.systems.search.distributed import DONE, WorkerFinished, WorkerPlan, report_meters
from bench.systems.search.placement import pin_process


def run(plan: WorkerPlan) -> str:
    """This worker's part of the search; returns its error ('' when its part ended as planned)."""
    from bench.datasets import load_data
    from bench.measure.cpu_energy import CpuEnergyMeter
    from bench.measure.gpu_usage import GpuSampler
    from bench.measure.meters import Meters
    from bench.run.spec import RunSpec
    from bench.run.worker import error_text, prepare_keras
    from bench.systems import make_system
    from bench.systems.base import FitContext

    spec = RunSpec.from_json(plan.spec)
    gpus, cpu_energy = GpuSampler(), CpuEnergyMeter()
    try:
        system = make_system(spec.system, dict(spec.system_options))
        if system.uses_keras:
            prepare_keras(spec)
        data = load_data(spec.dataset.name, dict(spec.dataset.options), spec.dataset.max_train,
                         spec.dataset.max_test)
        random.seed(spec.seed)
        np.random.seed(spec.seed)
        ctx = FitContext(budget=spec.budget, seed=spec.seed, workdir=plan.workdir, run_dir=Path(plan.run_dir),
                         n_classes=data.n_classes, class_names=data.class_names, dataset=spec.dataset.name,
                         search_worker=plan)
        report_meters(lambda: {**gpus.so_far().as_fields(), "cpu_energy_j": cpu_energy.so_far()})
        with Meters(gpus, cpu_energy) as meters, meters.window():
            system.fit(data.x_train, data.y_train, ctx)
    except WorkerFinished:
        return ""
    except BaseException as exc:  # noqa: BLE001 - reported to the chief, which records the search
        traceback.print_exc()
        return error_text(exc)
    return "the search ended without this worker's part ending"


def main(argv: list[str] | None = None) -> int:
    """Entry point: the plan file's path is the only argument."""
    from bench.run.worker import SoftStop, die_with_parent, log_to_output

    args = sys.argv[1:] if argv is None else argv
    plan = WorkerPlan.from_json(Path(args[0]).read_text())
    die_with_parent()  # no worker outlives its chief
    try:  # gRPC would wait a minute a call for a chief it cannot reach; the chief records this line instead
        check_reachable(plan.address, "the search's chief")
    except Unreachable as exc:
        print(f"search {plan.worker}: {exc}", flush=True)
        return 1

    def _stop(signum: int, frame: object) -> None:
        raise SoftStop("stopped by the search's chief")

    signal.signal(signal.SIGTERM, _stop)
    pin_process(plan.cores)
    log_to_output()
    error = run(plan)
    print(f"search {plan.worker}: {error or DONE}", flush=True)  # the chief's record of it: last_words
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
