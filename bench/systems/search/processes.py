"""A distributed search's worker processes as the chief sees them (WorkerProcess): `python -m
bench.run.search_worker PLAN` on the chief's machine, or in a Ray task on a bundle of the run's placement group."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.core.network import check_reachable, loopback_kept
from bench.measure.descendants import MEMORY_POLL_S, tree_rss_mb
from bench.systems.search.placement import PLACEMENT_ENV, Placement

REMOTE_MODULE = "bench.run.search_worker"
LOG_TAIL_BYTES = 1 << 20  # the most of a Ray worker's log brought back to the chief
# On each node, where a search's Ray workers work (their tuner projects), as bench.run.ray_executor's runs do.
SCRATCH_DIR = Path(tempfile.gettempdir()) / "bench-search"


@dataclass(frozen=True)
class Exit:
    """How a worker process ended."""

    how: str  # 'exited with code 0', 'killed by SIGKILL', 'lost with its node (NodeDiedError)'
    ok: bool
    cpu_s: float = 0.0  # its CPU seconds, whole process (0 where it was lost)


def collect(proc: subprocess.Popen) -> Exit | None:
    """proc's Exit once it has ended, else None: collected with wait4, so its CPU time is known however it ended
    (and Popen no longer waits for it)."""
    try:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    except ChildProcessError:  # collected elsewhere: nothing to measure
        proc.returncode = -1
        return Exit("collected elsewhere", False)
    if not pid:
        return None
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    return Exit(how, code == 0, usage.ru_utime + usage.ru_stime)


def worker_env(plan: Any) -> dict[str, str]:
    """A worker's environment: its GPUs, and thread pools sized to its cores (TensorFlow's follow its affinity;
    OpenMP's and OpenBLAS's, started on import before it pins itself, follow these)."""
    env = {k: v for k, v in os.environ.items() if k != PLACEMENT_ENV}
    if plan.cores:
        env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = str(len(plan.cores))
    if plan.gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = plan.gpus
    return env


def start_process(plan: Any, log_path: Path) -> subprocess.Popen:
    """Starts `python -m bench.run.search_worker` on the plan (written into its workdir), output to log_path;
    in this process's group, so a kill of the run's group reaches it."""
    plan_path = plan.workdir / "plan.json"
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(plan.to_json())
    with open(log_path, "w", encoding="utf-8") as out:
        return subprocess.Popen([sys.executable, "-m", REMOTE_MODULE, str(plan_path)], stdout=out,
                                stderr=subprocess.STDOUT, env=worker_env(plan))


class WorkerProcess(ABC):
    """A worker as the chief sees it."""

    @abstractmethod
    def poll(self) -> Exit | None:
        """Its exit, once it has ended (collected once; later calls give None), else None."""

    @abstractmethod
    def stop(self, force: bool) -> None:
        """Asks it to stop (SIGTERM: it records why and exits), or with force kills it."""


class LocalWorker(WorkerProcess):
    """A worker process on the chief's machine, its child."""

    def __init__(self, plan: Any, log_path: Path) -> None:
        self.proc = start_process(plan, log_path)

    def poll(self) -> Exit | None:
        return None if self.proc.returncode is not None else collect(self.proc)

    def stop(self, force: bool) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL if force else signal.SIGTERM)


def wait_capped(proc: subprocess.Popen, max_rss_mb: float | None) -> Exit:
    """Waits for proc (collecting it with wait4), killing it if its process tree's memory passes max_rss_mb, as
    the supervisor does a run's; the Exit says so."""
    over = ""
    while (done := collect(proc)) is None:
        if max_rss_mb is not None and not over and (rss := tree_rss_mb(proc.pid)) > max_rss_mb:
            over = f" (memory limit exceeded: {rss:.0f} MB > {max_rss_mb:.0f} MB)"
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        time.sleep(MEMORY_POLL_S)
    return replace(done, how=done.how + over) if over else done


def run_worker_on_node(plan_json: str) -> tuple[Exit, bytes]:
    """The Ray task of one worker: the worker process in a scratch folder of this node; its Exit and the end of
    its log."""
    from bench.systems.search.distributed import WorkerPlan

    # One folder per run and worker on each node: a try killed outright cannot clean up after itself, so the
    # next one clears what it left.
    plan = WorkerPlan.from_json(plan_json)
    scratch = SCRATCH_DIR / f"{plan.run_id}-{plan.worker}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        plan = replace(plan, run_dir=str(scratch))
        log_path = scratch / "log.txt"
        proc = start_process(plan, log_path)
        try:
            done = wait_capped(proc, plan.max_rss_mb)
        except BaseException:  # the task cancelled: its worker goes with it
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            raise
        with open(log_path, "rb") as fh:
            fh.seek(max(0, log_path.stat().st_size - LOG_TAIL_BYTES))
            tail = fh.read()
        return done, tail
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class RayWorker(WorkerProcess):
    """A worker as a Ray task on one bundle of the run's placement group, possibly on another node."""

    def __init__(self, plan: Any, log_path: Path, group: Any, bundle: int) -> None:
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        held = group.bundle_specs[bundle]
        self.log_path = log_path
        self.ref = ray.remote(run_worker_on_node).options(
            num_cpus=held.get("CPU", 0), num_gpus=held.get("GPU", 0), max_retries=0,
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=bundle),
        ).remote(plan.to_json())
        self.collected = False

    def poll(self) -> Exit | None:
        import ray

        if self.collected or not ray.wait([self.ref], timeout=0)[0]:
            return None
        self.collected = True
        try:
            done, tail = ray.get(self.ref)
        except ray.exceptions.RayError as exc:
            return Exit(f"lost ({type(exc).__name__})", False)
        self.log_path.write_bytes(tail)
        return done

    def stop(self, force: bool) -> None:
        import ray

        with contextlib.suppress(Exception):
            ray.cancel(self.ref, force=force)


def join_group(place: Placement) -> Any:
    """The run's placement group, from the Ray cluster it is in, which this process joins (until leave_cluster) at
    the address the run's own task was given (its GCS as Ray reports it, never a guess): dialled first, so a chief
    that cannot reach it fails in seconds rather than at the run's hard limit."""
    import ray

    check_reachable(place.ray_address, "the Ray cluster (its GCS)")
    with loopback_kept():
        ray.init(address=place.ray_address, namespace=place.namespace, _node_ip_address=place.node_ip,
                 log_to_driver=False, logging_level="WARNING")
    return ray.util.get_placement_group(place.group)


def leave_cluster() -> None:
    """Disconnects from the cluster join_group joined (the workers it started have ended or been cancelled)."""
    import ray

    ray.shutdown()
