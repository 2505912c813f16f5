"""`--executor ray`: a suite spread over a Ray cluster, one Ray task per run.

Each task runs the same run unit as the local executor (bench.run.supervise.supervise) on whichever node Ray
picks, holding the resources the run declares (a GPU run holds its GPUs, and Ray sets
CUDA_VISIBLE_DEVICES so the run sees only those). The run works in a scratch folder on its node, and its
folder's files (record, predictions, classification report, history or trials, log, metadata) come back
to the driver through Ray, so no shared filesystem is needed; a kept model stays on the node and the
record names node and path. Only the driver writes runs.csv, one record at a time as tasks end.

Data: every node loads the data set itself, from its own BENCH_DATA_DIR (the environment `ray start` ran
in) or its own cache, exactly as a local run does; nothing is shipped through the object store.
Faults: a task whose node dies is retried up to max_retries times, then recorded failed with 'node lost'.
Order: the runs expected to take longest are submitted first (budget, then data size), so a long run does
not start last on an otherwise idle cluster.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.core import rundir
from bench.core.network import CONNECT_TIMEOUT_S, loopback_kept
from bench.core.options import ConfigError
from bench.core.resume import ATTEMPT, RESUME_DIR
from bench.run.execute import Executor, OnStart
from bench.run.records import RunRecord, record_for
from bench.run.spec import Resources, RunSpec
from bench.run.supervise import Limits, supervise
from bench.systems.search import placement

RAY_MISSING = "--executor ray needs Ray: pip install -e '.[ray]' (on the driver and on every node)"
DEFAULT_MAX_RETRIES = 1  # a run whose node dies is tried once more before it is recorded as failed
WAIT_S = 1.0  # how often the driver looks for finished tasks and runs that started
EVENT_TIMEOUT_S = 10.0  # a run waits at most this long to tell the driver it started, then runs regardless
NODE_ID_CHARS = 8  # a node is named by this many characters of its Ray node id (never by its host name)
# On each node, where runs work: the run's folder, before its files go back to the driver.
SCRATCH_DIR = Path(tempfile.gettempdir()) / "bench-ray"
# A local Ray's session folder, made new in the temporary folder for each executor that starts one; short, as
# Ray's socket paths in it may not pass 107 bytes.
SESSION_PREFIX = "ray-bench-"
# Ray reads its cluster's token from this variable before ~/.ray/auth_token (Ray's token authentication).
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_BYTES = 32
# On each node, kept models (--keep-models) are moved here, out of the run's scratch folder.
KEPT_MODELS_DIR = Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "bench")) / "ray-models"
# How often a run on a node sends its resume state to the driver, and the most it sends of a checkpoint: a
# search's trial checkpoints can reach gigabytes; a larger one is not sent, and a retry of that run starts again.
SHIP_S = 10.0
SHIP_MAX_MB = 512.0
# The address a local Ray started by the harness gives its processes: its gRPC servers (GCS, raylet, workers)
# then listen on loopback only, nothing of it reachable from the network.
LOOPBACK = "127.0.0.1"
# Ray's own default port of a `ray://` (Ray Client) address that names none.
RAY_CLIENT_PORT = 10001
# Ray's exceptions that mean the task's process or node went away (not that the run itself failed).
_LOST = ("NodeDiedError", "WorkerCrashedError", "OwnerDiedError", "ObjectLostError", "LocalRayletDiedError",
         "RaySystemError", "ObjectReconstructionFailedError", "ObjectReconstructionFailedMaxAttemptsExceededError")

logger = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(RAY_MISSING) from exc
    return ray


def start_local_ray(**options: Any) -> None:
    """Starts a new local Ray of this machine's (options: ray.init's, e.g. num_cpus) listening on loopback only,
    without its dashboard's web frontend.

    Its gRPC servers listen on every interface unless the node's address is 127.0.0.1, and Ray would turn that
    address into the machine's network address (loopback_kept says when); a local Ray needs no other machine to
    reach it. Ray still starts its API-server process (dashboard.py, on 127.0.0.1): with include_dashboard=False
    it loads no dashboard module and serves no frontend, and Ray has no switch that leaves it out.
    """
    ray = _ray()

    with loopback_kept():
        # address="local": a new Ray of this machine's, even where one started by `ray start` runs.
        ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False, **options)


def private_session() -> tuple[Path, bool]:
    """For a local Ray the harness starts: a new folder of its own for Ray's session files (mode 0700, in the
    temporary folder or RAY_TMPDIR; Ray's default, /tmp/ray, is left world-writable and never removed), and,
    unless the user gives Ray a token, a fresh one in this process's environment (Ray's processes inherit it) so
    that Ray does not write one to ~/.ray/auth_token under the umask (0644 under 022). (folder, whether the
    token was set)."""
    folder = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX, dir=os.environ.get("RAY_TMPDIR") or None))
    if os.environ.get(TOKEN_ENV) or os.environ.get(f"{TOKEN_ENV}_PATH"):
        return folder, False
    os.environ[TOKEN_ENV] = secrets.token_hex(TOKEN_BYTES)
    return folder, True


def remove_tree(path: Path, patience_s: float = 5.0) -> None:
    """Removes a folder that processes which are stopping may still write in for a moment."""
    deadline = time.monotonic() + patience_s
    while True:
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists() or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def check_address(address: str) -> str:
    """The host:port a --ray-address value leads to, once something there accepts a connection; a ConfigError of
    one line naming the address otherwise, within seconds (ray.init would retry for minutes).

    'auto' is the cluster Ray finds on this machine (RAY_ADDRESS, else the one `ray start` last started or a
    running one), 'ray://HOST[:PORT]' a Ray Client server, 'HOST:PORT' a cluster's head (its GCS port).
    """
    given = address
    if address == "auto":
        from ray._private import services

        try:
            found = services.get_ray_address_from_environment("auto", None)
        except ConnectionError as exc:
            raise ConfigError(f"--ray-address auto: no Ray cluster is running on this machine ({exc}); start one "
                              "with `ray start --head` or give the head's address") from exc
        if not found or found == "auto":
            raise ConfigError("--ray-address auto: no Ray cluster is running on this machine; start one with "
                              "`ray start --head` or give the head's address")
        address = found
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("", "ray") or not parts.hostname or (port is None and parts.scheme != "ray"):
        raise ConfigError(f"--ray-address {given}: not a Ray address; give auto, ray://HOST:PORT or HOST:PORT")
    host, port = parts.hostname, RAY_CLIENT_PORT if port is None else port
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        via = "" if given == address else f" (found at {address})"
        raise ConfigError(f"--ray-address {given}: nothing answers at {host}:{port}{via} "
                          f"({exc.strerror or exc}); is the cluster up and its port reachable from here?") from exc
    return f"{host}:{port}"


def expected_cost(spec: RunSpec) -> tuple[float, float]:
    """How long a run is expected to take, for ordering: its wall-clock budget (else its hard limit), then
    its training-set cap (an uncapped data set counts as the largest)."""
    seconds = spec.budget.seconds if spec.budget.seconds is not None else (spec.timeout_s or float("inf"))
    size = float("inf") if spec.dataset.max_train is None else float(spec.dataset.max_train)
    return seconds, size


def longest_first(specs: Iterable[RunSpec]) -> list[RunSpec]:
    """The specs in the order to submit them to a cluster: expected longest first (stable otherwise)."""
    return sorted(specs, key=expected_cost, reverse=True)


def node_name(node_id: str) -> str:
    """A node's short name in records and progress lines."""
    return node_id[:NODE_ID_CHARS]


def _run_on_node(spec_json: str, limits: Limits, events: Any, group: str = "") -> tuple[str, dict[str, bytes]]:
    """The Ray task: supervise the run in a scratch folder on this node; return its record and files. `group`
    names the placement group of a search spread over several processes, which the run's chief joins."""
    import ray

    spec = RunSpec.from_json(spec_json)
    node = node_name(ray.get_runtime_context().get_node_id())
    # Waited for, so the driver hears of this try even if the node dies right after (then it counts attempts).
    with contextlib.suppress(ray.exceptions.RayError):
        ray.get(events.started.remote(spec.run_id, node), timeout=EVENT_TIMEOUT_S)
    # One folder per run on each node: a try killed with its node or by Ctrl-C cannot clean up after itself,
    # so the next try of the same run (or the next suite) clears what it left.
    scratch = SCRATCH_DIR / spec.run_id
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        env = placement.group_env(group)
        # An earlier try's resume state (kept in the driver's results folder) goes where this try's run resumes
        # it, and this try's goes back there as it is saved: a retry on another node continues where it was.
        resume = rundir.run_dir(scratch, spec.run_id) / RESUME_DIR
        with contextlib.suppress(ray.exceptions.RayError):
            _put_files(resume, ray.get(events.kept.remote(spec.out_dir, spec.run_id), timeout=EVENT_TIMEOUT_S))
        with _Shipping(resume, lambda files, whole: events.keep.remote(spec.out_dir, spec.run_id, files, whole)):
            record = supervise(replace(spec, out_dir=str(scratch)), limits, env).replace(node=node)
        folder = rundir.run_dir(scratch, spec.run_id)
        model = folder / rundir.MODEL
        if model.exists():
            kept = KEPT_MODELS_DIR / spec.run_id / rundir.MODEL
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(model, kept)
            record = record.replace(model_path=f"{node}:{kept}")
        files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.name not in (rundir.RECORD, rundir.SPEC)}
        return record.to_json(), files
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):  # the last run on the node leaves no empty folder behind
            SCRATCH_DIR.rmdir()


def _files_under(folder: Path) -> dict[str, bytes]:
    """Every file under folder, by its path relative to it."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _put_files(folder: Path, files: dict[str, bytes]) -> None:
    """Writes files (relative paths) under folder, none outside it."""
    root = folder.resolve()
    for name, data in files.items():
        path = (folder / name).resolve()
        if root not in path.parents:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class _Shipping:
    """While a run goes, sends its resume state to the driver every SHIP_S seconds: the whole folder when it holds
    a new checkpoint (attempt.json's `carried` changed; SHIP_MAX_MB at most, a larger state is not sent), else
    attempt.json alone, so the driver knows the compute spent."""

    def __init__(self, folder: Path, send: Any) -> None:
        self.folder, self.send = folder, send
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="resume-shipping", daemon=True)
        self._carried = ""  # what the last whole folder sent held

    def __enter__(self) -> _Shipping:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import ray

        while not self._stop.wait(SHIP_S):
            try:
                attempt = (self.folder / ATTEMPT).read_bytes()
                carried = json.loads(attempt).get("spent", {}).get("carried", "")
                whole = carried != self._carried and rundir.folder_mb(self.folder) <= SHIP_MAX_MB
                files = _files_under(self.folder) if whole else {ATTEMPT: attempt}
                ray.get(self.send(files, whole), timeout=EVENT_TIMEOUT_S * 6)
                if whole:
                    self._carried = carried
            except (OSError, ValueError, ray.exceptions.RayError):
                continue  # not written yet, or the driver busy: the next look tries again


class _Events:
    """Runs report here when they start (and start again after a lost node); the driver drains it. It runs on
    the driver's node, where it also keeps each run's resume state in the results folder (bench.core.resume)."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str]] = []

    def keep(self, out_dir: str, run_id: str, files: dict[str, bytes], whole: bool = True) -> None:
        """Replaces the run's resume folder in the results folder with files (whole), or writes these files
        into it."""
        folder = rundir.run_dir(out_dir, run_id) / RESUME_DIR
        if not whole:
            for name, data in files.items():
                rundir.write_atomic(folder / name, data.decode())
            return
        staged = folder.with_name(f".{RESUME_DIR}.incoming")
        shutil.rmtree(staged, ignore_errors=True)
        _put_files(staged, files)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staged, folder)

    def kept(self, out_dir: str, run_id: str) -> dict[str, bytes]:
        """The run's resume folder in the results folder, as files (none when there is none)."""
        folder = rundir.run_dir(out_dir, run_id) / RESUME_DIR
        return _files_under(folder) if folder.is_dir() else {}

    def started(self, run_id: str, node: str) -> None:
        """A run began on a node."""
        self._events.append((run_id, node))

    def drain(self) -> list[tuple[str, str]]:
        """The events since the last drain."""
        out, self._events = self._events, []
        return out


class RayExecutor(Executor):
    """Runs specs as Ray tasks on a local or remote Ray cluster; records come back as tasks end."""

    def __init__(self, limits: Limits | None = None, address: str | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        """address None starts a local Ray with this machine's resources, on loopback only; 'auto' joins the
        cluster running here; 'ray://HOST:PORT' or 'HOST:PORT' a remote one, once it answers (check_address).
        A Ray this process already initialised is used as it is."""
        if max_retries < 0:
            raise ConfigError(f"--max-retries must be 0 or more, got {max_retries}")
        ray = _ray()
        self.limits = limits or Limits()
        self.max_retries = max_retries
        self._owns_ray = not ray.is_initialized()
        self._session: Path | None = None  # the local Ray's own temporary folder, removed on close
        self._token_set = False
        if self._owns_ray:
            if address in (None, "local"):
                self._session, self._token_set = private_session()
                try:
                    start_local_ray(_temp_dir=str(self._session))
                except BaseException:
                    self._forget_session()
                    raise
            else:
                check_address(address)
                try:
                    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
                except ConnectionError as exc:
                    raise ConfigError(f"--ray-address {address}: {' '.join(str(exc).split())}") from exc
        self._task = ray.remote(_run_on_node)
        self._events_cls = ray.remote(num_cpus=0)(_Events)

    def close(self) -> None:
        """Disconnects from Ray (stopping it if this executor started it, and removing what it left)."""
        ray = _ray()
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False
        self._forget_session()

    def _forget_session(self) -> None:
        """Removes the local Ray's temporary folder and takes its token out of the environment."""
        if self._token_set:
            os.environ.pop(TOKEN_ENV, None)
            self._token_set = False
        if self._session is not None:
            remove_tree(self._session)
            self._session = None

    def nodes(self) -> list[dict[str, float]]:
        """The alive nodes' resources (CPU, GPU, ...)."""
        return [dict(n["Resources"]) for n in _ray().nodes() if n.get("Alive")]

    def task_resources(self, resources: Resources, nodes: list[dict[str, float]]) -> dict[str, float] | None:
        """What Ray should reserve for a run (defaults filled in from the nodes), or None when no node fits."""
        gpus = resources.num_gpus
        # Nodes with no cores (a head node kept free for the driver) run nothing.
        fitting = [n for n in nodes if n.get("CPU", 0.0) > 0 and n.get("GPU", 0.0) >= gpus]
        if not fitting:
            return None
        cpus = resources.num_cpus
        if cpus is None:
            # A CPU run holds all of a node's cores (the smallest node's count, so it fits anywhere); a GPU run
            # holds its GPUs' share of its node's cores.
            shares = [n.get("CPU", 0.0) * (gpus / n["GPU"] if gpus else 1.0) for n in fitting]
            cpus = float(int(min(shares))) if min(shares) >= 1 else min(shares)
        if not any(n.get("CPU", 0.0) >= cpus for n in fitting):
            return None
        return {"num_cpus": cpus, "num_gpus": gpus}

    def map(self, specs: Iterable[RunSpec], on_start: OnStart | None = None) -> Iterator[tuple[RunSpec, RunRecord]]:
        """Submits every spec, longest first, and yields each record as its task ends."""
        ray = _ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

        # Pinned to the driver's own node (soft affinity let Ray place it on a worker node), so a worker node
        # that dies does not take the start events with it.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        events = self._events_cls.options(scheduling_strategy=here).remote()

        def started() -> list[tuple[str, str]]:
            """Runs that began since the last look; none when the events actor is gone (it is remade)."""
            nonlocal events
            try:
                return ray.get(events.drain.remote())
            except ray.exceptions.RayError:
                events = self._events_cls.options(scheduling_strategy=here).remote()
                return []

        nodes = self.nodes()
        groups: dict[str, Any] = {}  # run_id: the placement group of a search spread over several processes
        pending: dict[Any, RunSpec] = {}
        attempts: Counter[str] = Counter()
        by_id: dict[str, RunSpec] = {}
        try:
            for spec in longest_first(specs):
                by_id[spec.run_id] = spec
                held = self.task_resources(spec.resources, nodes)
                workers = spec.search_workers
                if held is None:
                    yield spec, self._write(spec, record_for(spec, "failed", error=(
                        f"no node of the cluster has the resources this run declares ({spec.resources}); "
                        "change the suite's resources or add such a node")), {})
                    continue
                if not placement.fits(held, nodes, workers):
                    yield spec, self._write(spec, record_for(spec, "failed", error=(
                        f"the cluster cannot hold {workers} bundles of this run's resources ({held}) at once, one "
                        "per search worker; lower search_workers or add nodes")), {})
                    continue
                options: dict[str, Any] = {**held, "max_retries": self.max_retries, "retry_exceptions": False}
                name = ""
                if workers > 1:
                    # One search over several processes: a bundle of the run's resources per process, reserved
                    # at once; the run (the search's chief) takes the first, its workers the others.
                    name, group = placement.reserve(spec.run_id, held, workers)
                    groups[spec.run_id] = group
                    options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                        group, placement_group_bundle_index=0)
                ref = self._task.options(**options).remote(spec.to_json(), self.limits, events, name)
                pending[ref] = spec
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                for run_id, node in started():
                    attempts[run_id] += 1
                    if attempts[run_id] == 1 and on_start is not None:
                        on_start(by_id[run_id], node)
                for ref in ready:
                    spec = pending.pop(ref)
                    if spec.run_id in groups:
                        placement.release(groups.pop(spec.run_id))
                    record, files = self._outcome(ref, spec)
                    record = record.replace(attempts=attempts[spec.run_id] or None)
                    yield spec, self._write(spec, record, files)
        finally:
            for ref in pending:
                with contextlib.suppress(ray.exceptions.RayError, ValueError):
                    ray.cancel(ref, force=True)
            for group in groups.values():
                placement.release(group)
            with contextlib.suppress(ray.exceptions.RayError, ValueError):
                ray.kill(events)

    def _outcome(self, ref: Any, spec: RunSpec) -> tuple[RunRecord, dict[str, bytes]]:
        """The task's record and files, or a failed record saying why there is none."""
        ray = _ray()
        try:
            record_json, files = ray.get(ref)
        except ray.exceptions.RayError as exc:
            kind = type(exc).__name__
            if kind in _LOST or isinstance(exc, ray.exceptions.RayTaskError) and _lost_cause(exc):
                reason = f"node lost ({kind}) after {self.max_retries + 1} attempt(s)"
            else:
                reason = f"{kind}: {' '.join(str(exc).split())}"[:500]
            return record_for(spec, "failed", error=reason), {}
        return RunRecord.from_json(record_json), files

    @staticmethod
    def _write(spec: RunSpec, record: RunRecord, files: dict[str, bytes]) -> RunRecord:
        """Puts the run's folder under the driver's --out: files first, record.json last."""
        folder = rundir.run_dir(spec.out_dir, spec.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / rundir.RECORD).unlink(missing_ok=True)
        rundir.write_atomic(folder / rundir.SPEC, spec.to_json())
        if files:  # the try came back: its folder says whether anything is left to resume (a lost one keeps it)
            shutil.rmtree(folder / RESUME_DIR, ignore_errors=True)
        for name, data in files.items():
            path = folder / name
            if path.resolve().parent != folder.resolve() and folder.resolve() not in path.resolve().parents:
                continue  # a file name must not leave the run's folder
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        rundir.write_atomic(folder / rundir.RECORD, record.to_json())
        return record


def _lost_cause(exc: Any) -> bool:
    """A task error whose cause is a lost process or node."""
    cause = getattr(exc, "cause", None)
    return cause is not None and type(cause).__name__ in _LOST
