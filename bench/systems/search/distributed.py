"""One budgeted search over several processes: KerasTuner's distributed mode under the harness's budget (why and
how it is used: docs/using.md, "One search over several processes").

The run's own process is the *chief*: it serves its tuner's budgeted oracle (bench.systems.search.oracle) over
gRPC to N-1 *workers* (bench.systems.search.processes), whose tuners ask it instead of their own (ChiefClient).
The service's metadata carries what KerasTuner's does not: the seconds of search left on every answer (a worker
in a trial asks again every PEER_POLL_S), a trial's Outcome on EndTrial, and the caller's compute so far on every
call, which the run's heartbeat persists so that a run whose chief died counts its workers' compute when it
continues (the chief's project is kept in the run's resume folder; workers keep nothing).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.core import rundir
from bench.systems.search.oracle import JOIN_SLACK_S, Outcome, budgeted_oracle
from bench.systems.search.placement import Placement, pin_process, split_evenly
from bench.systems.search.processes import Exit, LocalWorker, RayWorker, WorkerProcess, join_group, leave_cluster

logger = logging.getLogger(__name__)

CHIEF = "chief"  # trials.csv's `worker` for the trials the chief runs
HOST = "127.0.0.1"  # under the local executor the oracle listens here only: the workers are local
# How often the chief looks for workers that exited, and a worker in a trial asks the chief's oracle for the time
# left to the search.
PEER_POLL_S = 1.0
# The longest a worker's trial waits for that answer (on a busy machine the chief may be slow to give it); the
# last answer stands meanwhile.
ASK_TIMEOUT_S = 10.0
# gRPC metadata: the seconds of search left, on the oracle's answers; a trial's Outcome, on EndTrial; a worker's
# compute so far, on each of its calls.
SECONDS_LEFT_KEY, REPORT_KEY, USAGE_KEY = "bench-seconds-left", "bench-trial-report", "bench-worker-usage"
# Seconds between SIGTERM and SIGKILL for a worker that outstays the search.
KILL_GRACE_S = 3.0
# A worker's last line for a part that ended as planned ('search NAME: done'; else the error).
DONE = "done"
# The GPU figures a worker reports and whole_compute adds up.
GPU_SUMS = ("gpu_s", "gpu_busy_s", "gpu_energy_j", "gpu_count")


# A worker's meters so far (its GPU and CPU-package figures), set by its process (bench.run.search_worker).
_meters_so_far: Callable[[], dict[str, Any]] = dict


def report_meters(so_far: Callable[[], dict[str, Any]]) -> None:
    """Sets what this worker process's calls tell the chief of its meters so far."""
    global _meters_so_far
    _meters_so_far = so_far


class WorkerFinished(Exception):  # noqa: N818 - an ending, not an error
    """Raised in a worker when its part of the search is over: it refits nothing and predicts nothing."""


@dataclass(frozen=True)
class WorkerPlan:
    """What a worker process is told: who it is, where the chief is, its cores and GPUs."""

    worker: str
    address: str  # host:port of the chief's oracle
    spec: str  # the run's RunSpec as JSON
    run_dir: str  # the worker's own folder (its FitContext's run_dir, with workdir under it): never the run's
    cores: tuple[int, ...] = ()  # the cores it pins itself to (none: as inherited)
    gpus: str | None = None  # its CUDA_VISIBLE_DEVICES (None: as inherited)
    run_id: str = ""  # the run's, naming its scratch folder on another node
    max_rss_mb: float | None = None  # a Ray worker's memory cap, its whole process tree (None: none)

    @property
    def workdir(self) -> Path:
        """Its FitContext's workdir."""
        return Path(self.run_dir) / "work"

    def to_json(self) -> str:
        """The plan as JSON for the worker's command line file."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerPlan:
        """Inverse of to_json."""
        d = json.loads(text)
        return cls(**{**d, "cores": tuple(d.get("cores", ()))})


def last_words(log: Path, name: str) -> str:
    """An exited worker's error as its log's last line gives it (bench.run.search_worker: 'search NAME: done' or
    the error); a log not ending so is a process that died."""
    with contextlib.suppress(OSError), open(log, "rb") as fh:
        fh.seek(max(0, log.stat().st_size - 4096))  # an error line is at most rundir.ERROR_CHARS
        lines = fh.read().decode("utf-8", errors="replace").splitlines()
        if lines and lines[-1].startswith(f"search {name}: "):
            said = lines[-1].removeprefix(f"search {name}: ")
            return "" if said == DONE else said
    return "no report: the process died"


def machine_id() -> str:
    """What tells two machines apart within a search (compared in memory, never recorded)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            return open(path).read().strip()
    import socket

    return socket.gethostname()


@dataclass
class _Worker:
    """A worker as the chief keeps track of it."""

    name: str
    process: WorkerProcess
    launched: float  # time.monotonic()
    log: Path  # its output, the run's search-<name>.log
    ended: float | None = None
    exit: Exit | None = None
    error: str = ""  # its last words, read once at its exit


@dataclass
class Chief:
    """The chief's side: the gRPC server of its oracle and the worker processes."""

    search_log: Any  # the chief's SearchLog
    n: int
    ctx: Any
    place: Placement  # where the executor said the search's processes go
    cores: list[int]  # this machine's cores for the whole search (local workers)
    group: Any = None  # the run's Ray placement group, a bundle per process, if it has one
    workers: list[_Worker] = field(default_factory=list)
    heard: dict[str, dict[str, Any]] = field(default_factory=dict)  # each worker's compute, as it last told
    oracle: Any = None  # the budgeted oracle it serves, set by serve()
    server: Any = None
    address: str = ""
    _reaping: threading.Lock = field(default_factory=threading.Lock)  # one wait4 per worker
    _stop: threading.Event = field(default_factory=threading.Event)
    _monitor: threading.Thread | None = None

    @classmethod
    def prepare(cls, search_log: Any, n: int, ctx: Any) -> Chief:
        """The chief of a search of n processes, once it is clear they can run: under Ray on the bundles of the
        run's placement group, else on shares of this process's cores. The server and workers start when the
        chief's tuner gives it its oracle (serve), and this process is then pinned to the first share."""
        place = Placement.here()
        group = join_group(place) if place.group else None
        cores = list(place.cores) or sorted(os.sched_getaffinity(0))
        if group is None and len(cores) < n:
            raise RuntimeError(f"search_workers={n} needs a core per worker, and this run has {len(cores)}: "
                               f"lower search_workers to at most {len(cores)} or run it on a larger machine")
        if group is not None and (size := len(group.bundle_specs)) != n:
            leave_cluster()
            raise RuntimeError(f"the run's placement group has {size} bundles for {n} search workers")
        chief = cls(search_log=search_log, n=n, ctx=ctx, place=place, cores=cores, group=group)
        search_log.worker, search_log.oracle_for = CHIEF, chief.serve
        if ctx.resume is not None:  # the run's heartbeat persists the whole search's compute, workers' included
            ctx.resume.spread_over(lambda fields: whole_compute(fields, chief.usage()))
        return chief

    def serve(self, oracle: Any, tuner: Any) -> Any:
        """The chief tuner's own oracle, budgeted, served over gRPC to the n-1 workers started now."""
        from concurrent import futures

        import grpc
        from keras_tuner.src import protos

        self.oracle = budgeted_oracle(oracle, tuner)
        self.oracle.overdue = self.stop_workers
        host = HOST if self.group is None else self.place.node_ip
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.n + 4,
                                                             thread_name_prefix="search-oracle"))
        port = self.server.add_insecure_port(f"{host}:0")
        if not port:
            raise RuntimeError(f"the search's oracle could not listen on {host}")
        self.address = f"{host}:{port}"
        protos.get_service_grpc().add_OracleServicer_to_server(_servicer(self.oracle, self.heard), self.server)
        self.server.start()
        shares = split_evenly(self.cores, self.n) if self.group is None else [[] for _ in range(self.n)]
        gpus = self.place.gpus
        gpu_shares = split_evenly(gpus.split(","), self.n) if gpus and self.group is None else None
        spec, ctx = (self.ctx.run_dir / rundir.SPEC).read_text(), self.ctx
        spent = self.oracle.over()  # an earlier attempt spent the budget: straight to the refit, no worker
        if spent:
            logger.info("search of %d workers: its budget is spent, no worker started", self.n)
        for i in range(1, 1 if spent else self.n):
            name = f"worker{i}"
            plan = WorkerPlan(worker=name, address=self.address, spec=spec, run_dir=str(ctx.workdir / name),
                              cores=tuple(shares[i]),
                              gpus=None if gpu_shares is None else ",".join(gpu_shares[i]),
                              run_id=ctx.run_dir.name, max_rss_mb=self.place.max_rss_mb)
            log_path = ctx.run_dir / f"search-{name}.log"
            process = (LocalWorker(plan, log_path) if self.group is None
                       else RayWorker(plan, log_path, self.group, bundle=i))
            self.workers.append(_Worker(name, process, time.monotonic(), log_path))
        pin_process(shares[0])
        self._monitor = threading.Thread(target=self._watch, name="search-chief", daemon=True)
        self._monitor.start()
        logger.info("search of %d workers: chief serving on %s", self.n, self.address)
        return self.oracle

    # --- the workers -----------------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(PEER_POLL_S):
            self.reap()

    def reap(self) -> None:
        """Collects workers that have exited; the running trial of one is ended as failed."""
        with self._reaping:
            for w in self.workers:
                if w.ended is None and (done := w.process.poll()) is not None:
                    w.ended, w.exit, w.error = time.monotonic(), done, last_words(w.log, w.name)
                    if self.oracle is not None:
                        self.oracle.fail(w.name, f"its worker {w.name} {done.how} during the trial")

    def stop_workers(self) -> None:
        """Asks every worker still running to stop, kills it after KILL_GRACE_S; all collected."""
        for force in (False, True):
            running = [w for w in self.workers if w.ended is None]
            for w in running:
                w.process.stop(force)
            self._await_exit(running, KILL_GRACE_S)

    def _await_exit(self, workers: list[_Worker], seconds: float) -> None:
        """Collects exits until every one of workers has ended or `seconds` have passed."""
        until = time.monotonic() + seconds
        while any(w.ended is None for w in workers) and time.monotonic() < until:
            time.sleep(0.05)
            self.reap()

    def close(self) -> None:
        """Stops every worker still running and the server: nothing of the search outlives the run. Workers
        left to exit on their own get JOIN_SLACK_S more first."""
        try:
            self._await_exit(self.workers, JOIN_SLACK_S)
            self.stop_workers()
            self._stop.set()
            if self._monitor is not None:
                self._monitor.join()
            if self.server is not None:
                self.server.stop(grace=None).wait()
        finally:
            if self.group is not None:
                leave_cluster()

    def usage(self) -> dict[str, Any]:
        """The workers' share of the run's compute so far (whole_compute adds it to the chief's): their figures as
        each last told (a trial's calls come every PEER_POLL_S), CPU seconds from wait4 once one has exited."""
        workers = list(self.workers)
        figures = [{**self.heard.get(w.name, {}), **({"cpu_s": w.exit.cpu_s} if w.exit and w.exit.cpu_s else {})}
                   for w in workers]

        def told(key: str) -> list[Any]:
            return [f[key] for f in figures if f.get(key) is not None]

        def total(values: list[Any]) -> Any:
            return sum(values) if values else None  # None: no worker told one, never 0

        here = machine_id()
        # RAPL reads a whole package: only workers on other machines add theirs.
        elsewhere = [f["cpu_energy_j"] for f in figures if f.get("machine") not in (None, here)
                     and f.get("cpu_energy_j") is not None]
        return {
            "search_workers": self.n,
            # Bundles of the run's resources held for the whole run: a placement group's N; the local
            # executor's one machine, whose cores the processes share.
            "search_bundles": self.n if self.group is not None else 1,
            "workers_cpu_s": sum(told("cpu_s")),
            "workers_cpu_energy_j": total(elsewhere),
            **{f"workers_{key}": total(told(key)) for key in GPU_SUMS},
            "workers_gpu_mem_peak_mb": max(filter(None, told("gpu_mem_peak_mb")), default=None),
            "workers": [{"worker": w.name, "ran_s": None if w.ended is None else w.ended - w.launched,
                         "cpu_s": f.get("cpu_s"), "exit": "still running" if w.exit is None else w.exit.how,
                         "error": w.error} for w, f in zip(workers, figures, strict=True)],
        }


def _servicer(oracle: Any, heard: dict[str, dict[str, Any]]) -> Any:
    """KerasTuner's Oracle service over the budgeted oracle: its answers say the seconds of search left, an
    EndTrial brings the trial's Outcome, and each call the caller's compute so far (kept in `heard`)."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer
    from keras_tuner.src.engine import trial as trial_module

    def hear(context: Any) -> None:
        """Takes the caller's compute so far (first: a trial it ends is saved with it)."""
        told = dict(context.invocation_metadata()).get(USAGE_KEY)
        if told is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                figures = json.loads(told)
                heard[str(figures.pop("worker"))] = figures

    def answering(method: Callable[..., Any]) -> Callable[..., Any]:
        """The service's method, hearing the caller first and saying the seconds of search left after."""

        def answer(self: Any, request: Any, context: Any) -> Any:
            hear(context)
            response = method(self, request, context)
            end = oracle.search_log.search_deadline()
            left = "" if end is None else f"{end - time.monotonic():.3f}"
            context.set_trailing_metadata(((SECONDS_LEFT_KEY, left),))
            return response

        return answer

    def end_trial(self: Any, request: Any, context: Any) -> Any:
        sent = dict(context.invocation_metadata()).get(REPORT_KEY)
        oracle.end_trial(trial_module.Trial.from_proto(request.trial), sent and Outcome.from_json(sent))
        return protos.get_service().EndTrialResponse()

    methods = {"CreateTrial": OracleServicer.CreateTrial, "GetTrial": OracleServicer.GetTrial, "EndTrial": end_trial}
    return type("BudgetServicer", (OracleServicer,), {k: answering(m) for k, m in methods.items()})(oracle)


def follow_chief(plan: WorkerPlan, log: Any) -> Callable[[Any, Any], Any]:
    """A worker's log.oracle_for: a client of the chief's oracle in place of the tuner's own, whose answers keep
    log's search deadline (log.follow) current."""

    def client(local: Any, tuner: Any) -> Any:
        oracle = _client_class()(local, plan.address, plan.worker)
        log.follow = oracle.follow
        return oracle

    log.worker, log.oracle_for = plan.worker, client
    return client


def _client_class() -> type:
    import grpc
    import psutil
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_client import TIMEOUT, OracleClient
    from keras_tuner.src.engine import trial as trial_module

    class ChiefClient(OracleClient):
        """KerasTuner's OracleClient for a given address and worker name (not its environment variables) that
        follows the search's deadline from the answers' seconds left, and sends each trial's Outcome."""

        def __init__(self, oracle: Any, address: str, tuner_id: str) -> None:
            self._oracle = oracle
            self.stub = protos.get_service_grpc().OracleStub(grpc.insecure_channel(address))
            self.tuner_id = tuner_id
            self.multi_worker, self.should_report = False, True
            self.deadline: float | None = None  # time.monotonic(); None until the chief says
            self._trial_id: str | None = None  # the trial running here
            self._asked = 0.0
            self._asking = threading.Lock()
            self._machine = machine_id()

        def _ask(self, method: Any, request: Any, *metadata: tuple[str, str], **options: Any) -> Any:
            """The chief's answer to a call that says `metadata` and this worker's compute so far; its seconds left
            are counted from when it was asked, so the deadline is never later than the chief's."""
            asked = time.monotonic()
            cpu = psutil.Process().cpu_times()  # with its collected children, as wait4 counts a worker's at its exit
            so_far = {**_meters_so_far(), "worker": self.tuner_id, "machine": self._machine,
                      "cpu_s": cpu.user + cpu.system + cpu.children_user + cpu.children_system}
            answer, call = method.with_call(request, metadata=(*metadata, (USAGE_KEY, json.dumps(so_far))), **options)
            left = dict(call.trailing_metadata() or ()).get(SECONDS_LEFT_KEY)
            self._asked = time.monotonic()
            if left is not None:
                self.deadline = None if left == "" else asked + float(left)
            return answer

        def follow(self) -> float | None:
            """The search's deadline; during a trial asked again PEER_POLL_S after the last answer (which stands
            if the chief does not answer)."""
            due = self._trial_id is not None and time.monotonic() - self._asked >= PEER_POLL_S
            if due and self._asking.acquire(False):
                try:
                    self._ask(self.stub.GetTrial, protos.get_service().GetTrialRequest(trial_id=self._trial_id),
                              timeout=ASK_TIMEOUT_S)
                except grpc.RpcError:
                    pass
                finally:
                    self._asking.release()
            return self.deadline

        def create_trial(self, tuner_id: str) -> Any:
            answer = self._ask(self.stub.CreateTrial, protos.get_service().CreateTrialRequest(tuner_id=tuner_id),
                               wait_for_ready=True, timeout=TIMEOUT)
            trial = trial_module.Trial.from_proto(answer.trial)
            self._trial_id = trial.trial_id if trial.status == trial_module.TrialStatus.RUNNING else None
            return trial

        def end_trial(self, trial: Any, report: Outcome | None = None) -> None:
            self._trial_id = None
            metadata = () if report is None else ((REPORT_KEY, report.to_json()),)
            self._ask(self.stub.EndTrial, protos.get_service().EndTrialRequest(trial=trial.to_proto()), *metadata,
                      wait_for_ready=True, timeout=TIMEOUT)

        def search_ended(self) -> None:
            raise WorkerFinished

        def save(self) -> None:
            """The chief saves the search's oracle."""

    return ChiefClient


def whole_compute(fields: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """A run's record fields with its search workers' compute added (runs of one process: unchanged).

    held_s is the seconds of the run's declared resources held over fit: fit_s times the bundles reserved (a
    placement group's N, for the whole run; the local executor's one machine, whose cores the processes
    share). cpu_s and the GPU figures become sums over the chief and its workers; cpu_energy_j adds the
    packages of workers on other machines to the chief's reading of its own.
    """
    n = extras.get("search_workers")
    if not n or n <= 1:
        return fields
    out = dict(fields)
    if fields.get("fit_s") is not None:
        out["held_s"] = fields["fit_s"] * (extras.get("search_bundles") or 1)
    for key in ("cpu_s", "cpu_energy_j", *GPU_SUMS):  # sums over the chief and its workers
        if extras.get(f"workers_{key}") is not None:
            out[key] = (fields.get(key) or 0) + extras[f"workers_{key}"]
    if extras.get("workers_gpu_mem_peak_mb") is not None:
        out["gpu_mem_peak_mb"] = max(extras["workers_gpu_mem_peak_mb"], fields.get("gpu_mem_peak_mb") or 0.0)
    return out
