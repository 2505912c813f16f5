"""Where a distributed search's workers run: processes on the chief's machine, or Ray tasks on the bundles of the
run's placement group (bench.run.ray_executor reserves it; the chief's own task holds its first bundle).

Either way a worker is `python -m bench.run.search_worker PLAN` (so it pins itself, dies with its parent and
asks the chief's oracle the same way), and the chief sees a WorkerProcess: poll() for its exit and CPU seconds
(wait4, so a killed worker's are known too), stop() to end it.
"""

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


def exit_of(status: int, usage: Any) -> Exit:
    """An Exit from os.wait4's status and resource usage."""
    code = os.waitstatus_to_exitcode(status)
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    return Exit(how, code == 0, 0.0 if usage is None else usage.ru_utime + usage.ru_stime)


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
        """Collected with wait4, so its CPU time is known however it ended."""
        if self.proc.returncode is not None:
            return None
        try:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        except ChildProcessError:  # collected elsewhere: nothing to measure
            self.proc.returncode = -1
            return Exit("collected elsewhere", False)
        if pid == 0:
            return None
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it
        return exit_of(status, usage)

    def stop(self, force: bool) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL if force else signal.SIGTERM)


def wait_capped(proc: subprocess.Popen, max_rss_mb: float | None) -> Exit:
    """Waits for proc (collecting it with wait4), killing it if its process tree's memory passes max_rss_mb, as
    the supervisor does a run's; the Exit says so."""
    over = ""
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if max_rss_mb is not None and not over:
            rss = tree_rss_mb(proc.pid)
            if rss > max_rss_mb:
                over = f" (memory limit exceeded: {rss:.0f} MB > {max_rss_mb:.0f} MB)"
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
        time.sleep(MEMORY_POLL_S)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it
    done = exit_of(status, usage)
    return replace(done, how=done.how + over) if over else done


def run_worker_on_node(plan_json: str) -> tuple[str, bool, float, bytes]:
    """The Ray task of one worker: the worker process in a scratch folder of this node; returns its Exit's
    fields and the end of its log."""
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
        return done.how, done.ok, done.cpu_s, tail
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
            how, ok, cpu_s, tail = ray.get(self.ref)
        except ray.exceptions.RayError as exc:
            return Exit(f"lost ({type(exc).__name__})", False)
        self.log_path.write_bytes(tail)
        return Exit(how, ok, cpu_s)

    def stop(self, force: bool) -> None:
        import ray

        with contextlib.suppress(Exception):
            ray.cancel(self.ref, force=force)


class Cluster:
    """The chief's connection to the Ray cluster its run's placement group is in."""

    def __init__(self, place: Placement) -> None:
        import ray

        # The address the run's own task was given by the cluster (its GCS as Ray reports it), never a guess;
        # dialled first, so a chief that cannot reach it fails in seconds rather than at the run's hard limit.
        check_reachable(place.ray_address, "the Ray cluster (its GCS)")
        with loopback_kept():
            ray.init(address=place.ray_address, namespace=place.namespace, _node_ip_address=place.node_ip,
                     log_to_driver=False, logging_level="WARNING")
        self.group = ray.util.get_placement_group(place.group)
        self.host = place.node_ip

    def size(self) -> int:
        """Bundles of the group: one per process of the search."""
        return len(self.group.bundle_specs)

    def close(self) -> None:
        """Disconnects (the workers it started have ended or been cancelled)."""
        import ray

        ray.shutdown()
