"""One budgeted search over several worker processes: KerasTuner's distributed mode under the harness's budget.

A searcher with `search_workers = N` runs its search as N processes, each on its share of the run's resources:

- the run's own process is the *chief*: it serves its tuner's oracle over gRPC (KerasTuner's Oracle service)
  beside a small ledger service of the harness's, runs trials itself, and after the search refits the best
  trial once, on its own share, as a one-process search does;
- N-1 *workers* (`python -m bench.search_worker`, bench.systems.search.processes) load the same data,
  build the same tuner with a client of the chief's oracle in place of their own (KerasTuner's OracleClient),
  and run trials until the oracle or the budget stops them.

Where: under the local executor the workers are processes on the chief's machine, each pinned to its share of
the run's cores (and given its share of the GPUs the run holds), and the server listens on 127.0.0.1 only.
Under Ray the executor reserves one placement group of N bundles, each the run's resources, atomically; the
chief runs on the first, the workers as Ray tasks on the others (other nodes too), and the server listens on
the chief's node address inside the cluster, never on every interface.

One budget for the whole search: the deadline is the chief's. Each worker asks the ledger for the search's
current deadline (under scope 'total' it moves as the refit reserve does) and stops starting trials at it, and
a running trial stops at its next batch, with the same hard stop as one process. Each finished trial is sent
to the ledger with its timings, so trials.csv holds every worker's rows (its `worker` column) and the refit
reserve knows a remote best trial's epoch time. The chief refits once no worker can run another trial.

Faults: a worker that dies (or its node) loses its running trial (ended as failed in the oracle, with the
reason in trials.csv) and the search goes on with the rest. Local workers die with the chief (the kernel's
parent-death signal; they also share its process group, which the supervisor kills); Ray cancels the tasks of
a chief that died. No worker outlives a failed run.

Compute (whole_compute): the resources held are the run's declared resources times the bundles reserved for the
whole run (a placement group's N; the local executor's one machine, whose cores the processes share), over
fit_s: held_s. The chief collects each worker with wait4 (a Ray task does it on its node), so its CPU seconds
(whole process: start-up and data loading are part of what the search costs) are known even for one that was
killed, and added to cpu_s. GPU figures come from each worker's own sampler over its own GPUs and are added;
CPU package energy (RAPL, a whole package's) only from workers on other machines than the chief's.
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
from typing import Any

from bench import rundir
from bench.systems.search.budget import from_wall_clock, to_wall_clock
from bench.systems.search.placement import (
    SEARCH_CORES_ENV,
    SEARCH_GPUS_ENV,
    SEARCH_MAX_RSS_ENV,
    pin_process,
    split_evenly,
)
from bench.systems.search.processes import Cluster, Exit, LocalWorker, RayWorker, WorkerProcess

log = logging.getLogger(__name__)

CHIEF = "chief"  # trials.csv's `worker` for the trials the chief runs
HOST = "127.0.0.1"  # under the local executor the oracle and ledger listen here only: the workers are local
LEDGER_METHOD = "/bench.SearchLedger/Report"
# How often a worker asks for the search's deadline, and the chief looks at its workers.
LEDGER_POLL_S = 1.0
# Seconds past the search's deadline plus the hard-stop grace the chief waits for a worker to end its trial and
# exit before it stops the worker: the worker's own hard stop fires at that moment (it hears a moved deadline
# within LEDGER_POLL_S), so this covers only its report and exit. Every second of it comes out of the refit's time.
JOIN_SLACK_S = 3.0
# Seconds an answer of IDLE (Hyperband waiting for a rung's trials to end on other processes) is held back:
# keras-tuner's trial loop asks again at once, which would keep a core and the server busy with requests.
IDLE_WAIT_S = 0.5
# Seconds between SIGTERM and SIGKILL for a worker that outstays the search.
KILL_GRACE_S = 3.0
# The GPU figures a worker reports and whole_compute adds up.
GPU_SUMS = ("gpu_s", "gpu_busy_s", "gpu_energy_j", "gpu_count")


def check_search_workers(n: object) -> None:
    """Raises ValueError unless n is a whole number of processes, at least 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"search_workers must be a whole number of processes, at least 1, got {n!r}")


class WorkerFinished(Exception):  # noqa: N818 - an ending, not an error
    """Raised in a worker when its part of the search is over: it refits nothing and predicts nothing."""


@dataclass(frozen=True)
class WorkerPlan:
    """What a worker process is told: who it is, where the chief is, its deadline, cores and GPUs."""

    worker: str
    address: str  # host:port of the chief's oracle and ledger
    deadline_unix: float | None  # the budget's end as Unix time (None: no time limit)
    spec: str  # the run's RunSpec as JSON
    run_dir: str  # the worker's own folders (its FitContext's run_dir and workdir): scratch, never the run's
    workdir: str
    cores: tuple[int, ...] = ()  # the cores it pins itself to (none: as inherited)
    gpus: str | None = None  # its CUDA_VISIBLE_DEVICES (None: as inherited)
    run_id: str = ""  # the run's, naming its scratch folder on another node
    max_rss_mb: float | None = None  # a Ray worker's memory cap, its whole process tree (None: none)

    def to_json(self) -> str:
        """The plan as JSON for the worker's command line file."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerPlan:
        """Inverse of to_json."""
        d = json.loads(text)
        return cls(**{**d, "cores": tuple(d.get("cores", ()))})


def machine_id() -> str:
    """What tells two machines apart within a search (compared in memory, never recorded)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            return open(path).read().strip()
    import socket

    return socket.gethostname()


def _encode(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _decode(data: bytes) -> Any:
    return json.loads(data.decode())


@dataclass
class _Worker:
    """A worker as the chief keeps track of it."""

    name: str
    process: WorkerProcess
    launched: float  # time.monotonic()
    ended: float | None = None
    exit: Exit | None = None
    report: dict[str, Any] | None = None  # its `done` message: GPU figures and its own error
    trial: tuple[str, float] | None = None  # the trial it is running and when it began (Unix time)


@dataclass
class Chief:
    """The chief's side: the gRPC server, the worker processes and what they have reported."""

    search_log: Any  # the chief's SearchLog
    server: Any
    address: str
    cluster: Cluster | None = None  # the Ray cluster of the run's placement group, if it has one
    workers: list[_Worker] = field(default_factory=list)
    tuner: Any = None  # set by serve()
    servicer: Any = None  # KerasTuner's OracleServicer of the tuner's oracle, set by serve()
    _served: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reaping: threading.Lock = field(default_factory=threading.Lock)  # one wait4 per worker
    _stop: threading.Event = field(default_factory=threading.Event)
    _monitor: threading.Thread | None = None

    @classmethod
    def start(cls, search_log: Any, n: int, ctx: Any) -> Chief:
        """Binds the server and starts n-1 workers: under Ray on the other bundles of the run's placement group
        (the server on this node's cluster address), else as processes here on their shares of this process's
        cores, this process pinned to the first share; the oracle is served once the chief's tuner exists."""
        import grpc

        cluster = Cluster.here()
        given = os.environ.get(SEARCH_CORES_ENV)
        cores = [int(c) for c in given.split(",")] if given else sorted(os.sched_getaffinity(0))
        if cluster is None and len(cores) < n:
            raise RuntimeError(f"search_workers={n} needs a core per worker, and this run has {len(cores)}: "
                               f"lower search_workers to at most {len(cores)} or run it on a larger machine")
        if cluster is not None and cluster.size() != n:
            raise RuntimeError(f"the run's placement group has {cluster.size()} bundles for {n} search workers")
        from concurrent import futures

        host = HOST if cluster is None else cluster.host
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=n + 4, thread_name_prefix="search-oracle"))
        port = server.add_insecure_port(f"{host}:0")
        if not port:
            raise RuntimeError(f"the search's oracle could not listen on {host}")
        chief = cls(search_log=search_log, server=server, address=f"{host}:{port}", cluster=cluster)
        shares = split_evenly(cores, n) if cluster is None else [[] for _ in range(n)]
        gpus = os.environ.get(SEARCH_GPUS_ENV)
        gpu_shares = split_evenly(gpus.split(","), n) if gpus and cluster is None else None
        spec = (ctx.run_dir / rundir.SPEC).read_text() if n > 1 else ""
        deadline = None if search_log.deadline is None else to_wall_clock(search_log.deadline)
        cap = os.environ.get(SEARCH_MAX_RSS_ENV)
        max_rss_mb = float(cap) if cap and cluster is not None else None
        try:
            for i in range(1, n):
                name = f"worker{i}"
                plan = WorkerPlan(worker=name, address=chief.address, deadline_unix=deadline, spec=spec,
                                  run_dir=str(ctx.workdir / name), workdir=str(ctx.workdir / name / "work"),
                                  cores=tuple(shares[i]),
                                  gpus=None if gpu_shares is None else ",".join(gpu_shares[i]),
                                  run_id=ctx.run_dir.name, max_rss_mb=max_rss_mb)
                log_path = ctx.run_dir / f"search-{name}.log"
                process = (LocalWorker(plan, log_path) if cluster is None
                           else RayWorker(plan, log_path, cluster.group, bundle=i))
                chief.workers.append(_Worker(name, process, time.monotonic()))
            pin_process(shares[0])
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.SearchLedger", {
                "Report": grpc.unary_unary_rpc_method_handler(chief._report, request_deserializer=_decode,
                                                              response_serializer=_encode)}),))
            from keras_tuner.src import protos

            protos.get_service_grpc().add_OracleServicer_to_server(_LateOracle(chief), server)
            server.start()
        except BaseException:
            chief.close()  # the workers started so far, and the cluster connection
            raise
        chief._monitor = threading.Thread(target=chief._watch, name="search-chief", daemon=True)
        chief._monitor.start()
        log.info("search of %d workers: chief serving on %s", n, chief.address)
        return chief

    def serve(self, tuner: Any) -> None:
        """Serves tuner's oracle to the workers (their requests wait until now)."""
        from keras_tuner.src.distribute.oracle_chief import OracleServicer

        self.tuner = tuner
        tuner.oracle.create_trial = _waiting_when_idle(tuner.oracle.create_trial)  # for the chief and its workers
        self.servicer = OracleServicer(tuner.oracle)
        self._served.set()

    # --- the ledger ------------------------------------------------------------------------------------
    def _report(self, message: dict[str, Any], context: Any) -> dict[str, Any]:
        kind, worker = message.get("kind"), message.get("worker", "")
        with self._lock:
            w = next((w for w in self.workers if w.name == worker), None)
            if kind == "begin" and w is not None:
                w.trial = (str(message["trial_id"]), float(message["unix"]))
            elif kind == "trial":
                self.search_log.add_remote_trial(message["row"], message["times"])
                if w is not None:
                    w.trial = None
                self._reserve()
            elif kind == "done" and w is not None:
                w.report = message.get("usage", {})
        end = self.search_log.search_deadline()
        return {"search_deadline": None if end is None else to_wall_clock(end)}

    def _reserve(self) -> None:
        if self.tuner is not None:
            with contextlib.suppress(Exception):  # the reserve is an estimate: a failed look keeps the last one
                self.tuner.reserve_refit()

    # --- the workers -----------------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(LEDGER_POLL_S):
            self.reap()

    def reap(self) -> None:
        """Collects workers that have exited; a running trial of one that died is ended as failed."""
        with self._reaping:
            for w in self.workers:
                self._reap(w)

    def _reap(self, w: _Worker) -> None:
        if w.ended is not None:
            return
        done = w.process.poll()
        if done is None:
            return
        with self._lock:
            w.ended, w.exit = time.monotonic(), done
            lost, w.trial = w.trial, None
        if lost is None and self.tuner is not None:
            # A trial the oracle handed out that the worker died before announcing.
            with contextlib.suppress(Exception):
                ongoing = self.tuner.oracle.ongoing_trials.get(w.name)
                if ongoing is not None:
                    lost = (str(ongoing.trial_id), time.time())
        if lost is not None:
            self._fail_trial(w, lost)

    def _fail_trial(self, w: _Worker, trial: tuple[str, float]) -> None:
        from keras_tuner.src.engine import trial as trial_module

        trial_id, began = trial
        how = w.exit.how if w.exit else "ended"
        row = {"trial_id": trial_id, "started_unix": began, "ended_unix": time.time(), "epochs": None,
               "val_accuracy": None, "status": "failed", "summary": "", "interrupted": False, "worker": w.name,
               "error": f"its worker {w.name} {how} during the trial"}
        oracle = self.tuner.oracle if self.tuner is not None else None
        if oracle is not None and trial_id in oracle.trials:
            ended = oracle.trials[trial_id]
            if ended.status == trial_module.TrialStatus.RUNNING:
                ended.status, ended.message = trial_module.TrialStatus.FAILED, row["error"]
                with contextlib.suppress(Exception):  # keras-tuner may count it toward its failure limit
                    oracle.end_trial(ended)
            elif ended.status == trial_module.TrialStatus.COMPLETED:
                # It died between ending the trial with the oracle and reporting it: the oracle's score stands.
                score = (ended.metrics.get_best_value("val_accuracy") if ended.metrics.exists("val_accuracy")
                         else None)
                row.update(status="completed", val_accuracy=score,
                           error=f"its worker {w.name} {how} before reporting the trial")
        self.search_log.add_remote_trial(row, {})
        log.warning("search: trial %s of %s: %s", trial_id, w.name, row["error"])

    def join(self) -> None:
        """Waits for every worker to end its trials: until each has exited or is past the search's deadline with
        no trial (its exit is collected while the chief refits); at the deadline plus the hard-stop grace and
        JOIN_SLACK_S, stops the rest (their running trials are recorded failed)."""
        while True:
            end = self.search_log.search_deadline()  # it moves while a worker's trial ends and is reported
            if all(w.ended is not None or self._done_with_trials(w, end) for w in self.workers):
                return
            if end is not None and time.monotonic() >= end + (self.search_log.hard_stop_grace_s or 0.0) + JOIN_SLACK_S:
                self.stop_workers()
                return
            time.sleep(0.1)
            self.reap()

    def _done_with_trials(self, w: _Worker, end: float | None) -> bool:
        """Whether a running worker can start no more trials and runs none: the search's deadline has passed
        long enough for it to have heard (2 x LEDGER_POLL_S), it has announced no trial, and the oracle holds none
        for it (one handed out but not yet announced)."""
        if end is None or time.monotonic() < end + 2 * LEDGER_POLL_S:
            return False
        with self._lock:
            if w.trial is not None:
                return False
        oracle = None if self.tuner is None else self.tuner.oracle
        return oracle is not None and oracle.ongoing_trials.get(w.name) is None

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
        left to exit on their own (join) get JOIN_SLACK_S more first."""
        try:
            self._await_exit(self.workers, JOIN_SLACK_S)
            self.stop_workers()
            self._stop.set()
            if self._monitor is not None:
                self._monitor.join()
            self._served.set()  # a request still waiting for the oracle is answered "stopped"
            self.server.stop(grace=None).wait()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def usage(self) -> dict[str, Any]:
        """The workers' share of the run's compute (whole_compute adds it to the chief's)."""
        with self._lock:
            done = [w for w in self.workers if w.ended is not None and w.exit is not None]
            here = machine_id()
            elsewhere = [w.report.get("cpu_energy_j") for w in done
                         if w.report and w.report.get("machine") != here and w.report.get("cpu_energy_j") is not None]
            out: dict[str, Any] = {
                "search_workers": len(self.workers) + 1,
                # Bundles of the run's resources held for the whole run: a placement group's N; the local
                # executor's one machine, whose cores the processes share.
                "search_bundles": len(self.workers) + 1 if self.cluster is not None else 1,
                "workers_cpu_s": sum(w.exit.cpu_s for w in done if w.exit),
                # RAPL reads a whole package: only workers on other machines add theirs.
                "workers_cpu_energy_j": sum(elsewhere) if elsewhere else None,
                "workers": [{"worker": w.name, "ran_s": None if w.ended is None else w.ended - w.launched,
                             "cpu_s": None if w.exit is None else w.exit.cpu_s,
                             "exit": "still running" if w.exit is None else w.exit.how,
                             "error": (w.report or {}).get("error", "no report: the process died")}
                            for w in self.workers],
            }
            for key in GPU_SUMS:
                values = [w.report.get(key) for w in done if w.report and w.report.get(key) is not None]
                out[f"workers_{key}"] = sum(values) if values else None
            peaks = [w.report.get("gpu_mem_peak_mb") for w in done if w.report and w.report.get("gpu_mem_peak_mb")]
            out["workers_gpu_mem_peak_mb"] = max(peaks) if peaks else None
        return out


def _waiting_when_idle(create_trial: Callable[[str], Any]) -> Callable[[str], Any]:
    """An oracle's create_trial whose IDLE answers come after IDLE_WAIT_S."""

    def create(tuner_id: str) -> Any:
        trial = create_trial(tuner_id)
        if trial.status == "IDLE":
            time.sleep(IDLE_WAIT_S)
        return trial

    return create


class _LateOracle:
    """KerasTuner's Oracle service whose calls wait until the chief's tuner exists (Chief.serve)."""

    def __init__(self, chief: Chief) -> None:
        self._chief = chief

    def _call(self, name: str, request: Any, context: Any) -> Any:
        self._chief._served.wait()
        if self._chief.servicer is None:
            import grpc

            context.abort(grpc.StatusCode.UNAVAILABLE, "the search's chief stopped before serving its oracle")
        return getattr(self._chief.servicer, name)(request, context)


for _name in ("GetSpace", "UpdateSpace", "CreateTrial", "UpdateTrial", "EndTrial", "GetTrial", "GetBestTrials"):
    setattr(_LateOracle, _name, lambda self, request, context, _n=_name: self._call(_n, request, context))


class Ledger:
    """A worker's side of the ledger: it sends its trials and usage, and follows the search's deadline."""

    def __init__(self, plan: WorkerPlan) -> None:
        import grpc

        self.plan = plan
        self._channel = grpc.insecure_channel(plan.address)
        self._call: Callable[..., Any] = self._channel.unary_unary(
            LEDGER_METHOD, request_serializer=_encode, response_deserializer=_decode)
        # Until the chief answers, the budget's end (the chief's search deadline is never later).
        self.search_deadline = None if plan.deadline_unix is None else from_wall_clock(plan.deadline_unix)
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="search-ledger", daemon=True)
        self._poller.start()

    def send(self, kind: str, **payload: Any) -> None:
        """Sends one message; the reply updates the search's deadline."""
        reply = self._call({"kind": kind, "worker": self.plan.worker, **payload}, wait_for_ready=True, timeout=60)
        end = reply.get("search_deadline")
        self.search_deadline = None if end is None else from_wall_clock(float(end))

    def _poll(self) -> None:
        while not self._stop.wait(LEDGER_POLL_S):
            with contextlib.suppress(Exception):  # the chief gone: the kernel ends this process soon
                self.send("poll")

    def oracle(self, local: Any) -> Any:
        """A client of the chief's oracle in place of this worker's own `local` one."""
        return _client_class()(local, self.plan.address, self.plan.worker)

    def close(self) -> None:
        """Stops following the deadline and closes the channel."""
        self._stop.set()
        self._poller.join()
        self._channel.close()


def _client_class() -> type:
    from keras_tuner.src.distribute.oracle_client import OracleClient
    from keras_tuner.src.engine import hyperparameters as hp_module
    from keras_tuner.src.engine import trial as trial_module

    class WorkerOracle(OracleClient):
        """KerasTuner's OracleClient for a given address and worker name (not its environment variables), which
        a worker can close: then it answers every request for a trial with STOPPED, ending the worker's loop."""

        def __init__(self, oracle: Any, address: str, tuner_id: str) -> None:
            import grpc
            from keras_tuner.src import protos

            self._oracle = oracle
            self.stub = protos.get_service_grpc().OracleStub(grpc.insecure_channel(address))
            self.tuner_id = tuner_id
            self.multi_worker, self.should_report = False, True
            self.closed = False

        def close(self) -> None:
            self.closed = True

        def create_trial(self, tuner_id: str) -> Any:
            if self.closed:
                return trial_module.Trial(hp_module.HyperParameters(), status=trial_module.TrialStatus.STOPPED)
            return super().create_trial(tuner_id)

    return WorkerOracle


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
    if fields.get("cpu_s") is not None:
        out["cpu_s"] = fields["cpu_s"] + (extras.get("workers_cpu_s") or 0.0)
    if extras.get("workers_cpu_energy_j") is not None:
        out["cpu_energy_j"] = (fields.get("cpu_energy_j") or 0.0) + extras["workers_cpu_energy_j"]
    for key in GPU_SUMS:
        if extras.get(f"workers_{key}") is not None:
            out[key] = (fields.get(key) or 0) + extras[f"workers_{key}"]
    peak = extras.get("workers_gpu_mem_peak_mb")
    if peak is not None:
        out["gpu_mem_peak_mb"] = max(peak, fields.get("gpu_mem_peak_mb") or 0.0)
    return out
