"""Where the processes of a search over several run: what an executor calls before the run's process (the
search's chief, bench.systems.search.distributed) starts, locally (prepare_chief) or on Ray (fits, reserve,
group_env, release); the chief learns its Placement from PLACEMENT_ENV."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from bench.measure.gpu_usage import held_gpus

# The one environment variable an executor sets for the run's process (the search's chief): its Placement.
PLACEMENT_ENV = "BENCH_SEARCH_PLACEMENT"


@dataclass(frozen=True)
class Placement:
    """Where the processes of a run's search go, as the executor tells the chief (in PLACEMENT_ENV)."""

    cores: tuple[int, ...] = ()  # local: this machine's cores for the whole search (none: this process's)
    gpus: str | None = None  # local: the run's whole CUDA_VISIBLE_DEVICES, when the chief gets a share of it
    group: str = ""  # Ray: the run's placement group, a bundle per process ('': none)
    ray_address: str = ""  # Ray: the cluster's GCS address, the driver's namespace (the group's name is looked
    namespace: str = ""  # up in it) and this node's address in the cluster
    node_ip: str = ""
    max_rss_mb: float | None = None  # Ray: the run's memory cap, which each worker keeps to too

    @classmethod
    def here(cls, env: Mapping[str, str] | None = None) -> Placement:
        """The placement in env (default: this process's environment); an empty one where none is given."""
        text = (os.environ if env is None else env).get(PLACEMENT_ENV)
        if not text:
            return cls()
        d = json.loads(text)
        return cls(**{**d, "cores": tuple(d["cores"])})

    def to_env(self) -> dict[str, str]:
        """The environment that gives it to the run's process."""
        return {PLACEMENT_ENV: json.dumps(asdict(self))}


def split_evenly(items: list[Any], n: int) -> list[list[Any]]:
    """items in n contiguous groups of equal size (any remainder left to the first groups)."""
    size, extra = divmod(len(items), n)
    groups, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        groups.append(items[start:end])
        start = end
    return groups


def chief_gpus(visible: str | None, n: int) -> tuple[str | None, str | None]:
    """(the chief's CUDA_VISIBLE_DEVICES, the whole run's) for a search of n processes: the chief gets the first
    of n equal shares when the run's visible GPUs divide into n; else nothing changes (None, None)."""
    if n <= 1 or not visible:
        return None, None
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    if len(ids) < n or len(ids) % n:
        return None, None
    return ",".join(split_evenly(ids, n)[0]), ",".join(ids)


def pin_process(cores: tuple[int, ...] | list[int]) -> None:
    """Runs every thread of this process (and those it starts later) on `cores` only."""
    if not cores:
        return
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), set(cores))


# --- local -------------------------------------------------------------------------------------------------
def prepare_chief(workers: int, env: dict[str, str], max_rss_mb: float | None) -> list[int]:
    """Completes the environment of a run's process whose search spreads over `workers` processes, and returns
    the cores it is to start on ([]: as inherited).

    On a placement group each process holds its own bundle: the chief passes the run's memory cap on. Else it
    gets the first of equal shares of this process's cores (a core per process at least, else the search fails
    saying so) and of the run's GPUs (CUDA_VISIBLE_DEVICES as given, else all NVML sees), and knows them all.
    Where the GPUs do not divide evenly (or there are none) the processes share what they see, so none may take
    a GPU's whole memory up front (TensorFlow's and JAX's default), and the workers inherit that.
    """
    given = Placement.here(env)
    if given.group:
        env.update(replace(given, max_rss_mb=max_rss_mb).to_env())
        return []
    cores = sorted(os.sched_getaffinity(0))
    if workers <= 1 or len(cores) < workers:
        return []
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        indices = held_gpus()
        visible = ",".join(map(str, indices)) if indices else None
    mine, whole = chief_gpus(visible, workers)
    if mine is None:
        env.update({"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"})
    else:  # integer indices as NVML numbers them (PCI bus order); CUDA's own default order may differ
        env.update({"CUDA_VISIBLE_DEVICES": mine, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    env.update(Placement(cores=tuple(cores), gpus=whole).to_env())
    return split_evenly(cores, workers)[0]


# --- Ray ---------------------------------------------------------------------------------------------------
def bundles_that_fit(held: dict[str, float], nodes: list[dict[str, float]]) -> int:
    """How many bundles of `held` (a run's resources: num_cpus, num_gpus) the nodes can hold at once."""
    total = 0
    for node in nodes:
        fits = [node.get(key, 0.0) // need for key, need in (("CPU", held["num_cpus"]), ("GPU", held["num_gpus"]))
                if need > 0]
        total += int(min(fits)) if fits else 0
    return total


def fits(held: dict[str, float], nodes: list[dict[str, float]], workers: int) -> bool:
    """Whether the nodes hold a bundle of `held` for each of the search's `workers` processes at once."""
    return workers <= 1 or bundles_that_fit(held, nodes) >= workers


def reserve(run_id: str, held: dict[str, float], workers: int) -> tuple[str, Any]:
    """A placement group of one bundle of `held` per process of the run's search, packed onto as few nodes as
    hold it, named for the run (the search's chief finds it by name); (name, group)."""
    from ray.util.placement_group import placement_group

    bundle = {"CPU": held["num_cpus"], **({"GPU": held["num_gpus"]} if held["num_gpus"] else {})}
    name = f"bench-search-{run_id}-{uuid.uuid4().hex[:8]}"
    return name, placement_group([dict(bundle) for _ in range(workers)], strategy="PACK", name=name)


def group_env(name: str) -> dict[str, str]:
    """In the run's Ray task: the environment that tells its process (the search's chief) its placement group and
    how to reach the cluster from this node ({} for a run without a group)."""
    if not name:
        return {}
    import ray

    context = ray.get_runtime_context()
    return Placement(group=name, ray_address=context.gcs_address, namespace=context.namespace,
                     node_ip=ray.util.get_node_ip_address()).to_env()


def release(group: Any) -> None:
    """Releases a search's placement group (its tasks have ended or are being cancelled)."""
    from ray.util.placement_group import remove_placement_group

    with contextlib.suppress(Exception):
        remove_placement_group(group)
