"""RunSpec: everything that defines one run, picklable and JSON-serialisable, with a stable run_id."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.core.backend import check as check_backend
from bench.core.budget import Budget, parse_budget
from bench.core.precision import check as check_precision

Options = tuple[tuple[str, Any], ...]


def freeze(options: Mapping[str, Any] | None) -> Options:
    """Options as a sorted tuple of pairs, so specs stay hashable and order-independent."""
    return tuple(sorted((options or {}).items()))


def options_label(options: Options) -> str:
    """'k=v;k2=v2', or '' for none."""
    return ";".join(f"{k}={v}" for k, v in options)


@dataclass(frozen=True)
class DatasetRef:
    """A dataset by registry name, with its options and an optional stratified subset size."""

    name: str
    options: Options = ()
    max_train: int | None = None
    max_test: int | None = None

    @property
    def label(self) -> str:
        """Options and subset sizes as text, for the results table."""
        parts = [options_label(self.options)] if self.options else []
        if self.max_train is not None:
            parts.append(f"max_train={self.max_train}")
        if self.max_test is not None:
            parts.append(f"max_test={self.max_test}")
        return ";".join(parts)


@dataclass(frozen=True)
class Resources:
    """What one run holds while it runs on a cluster (Ray's task resources); the local executor runs one
    run at a time and ignores them."""

    # CPU cores held; None: all of a node's cores (the smallest node's count), one run per node, so CPU
    # timings stay comparable; a GPU run's default is its share of its node's cores instead.
    num_cpus: float | None = None
    # GPUs held; Ray sets CUDA_VISIBLE_DEVICES, so a run sees only its own.
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        for name in ("num_cpus", "num_gpus"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ValueError(f"resources.{name} must be a non-negative number, got {value!r}")


@dataclass(frozen=True)
class RunSpec:
    """One run: dataset x system x budget x seed, plus where to write and how long it may take."""

    dataset: DatasetRef
    system: str
    budget: Budget
    seed: int
    system_options: Options = ()
    suite: str = "adhoc"
    # Hard wall-clock limit for the whole run process (data loading included); None = no limit.
    timeout_s: float | None = None
    # Results folder (holds runs.csv and runs/<run_id>/); not part of the run's identity.
    out_dir: str = "results"
    # Keep the exported best model after the run (systems that export one).
    keep_models: bool = False
    # What the run holds on a cluster; not part of the run's identity.
    resources: Resources = Resources()
    # Arithmetic of Keras systems (bench.core.precision: auto, float32, mixed_bfloat16, mixed_float16). Not part of
    # the identity, like the hardware: `auto` means this machine's best; the policy used is recorded per run,
    # and a recorded run whose policy differs from an explicit request is run again (driver).
    precision: str = "auto"
    # Keras backend of Keras systems (bench.core.backend: tensorflow, jax, torch; '' = KERAS_BACKEND, else tensorflow).
    # Not part of the identity, like precision: recorded per run, and rerun when an explicit request differs.
    backend: str = ""

    def __post_init__(self) -> None:
        check_precision(self.precision)
        check_backend(self.backend)

    @property
    def search_workers(self) -> int:
        """Processes the run's search is spread over (its system's search_workers option; 1 without one)."""
        value = dict(self.system_options).get("search_workers", 1)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1

    @property
    def run_id(self) -> str:
        """Stable hash of what defines the run's outcome (not suite, paths or limits)."""
        key = {
            "dataset": self.dataset.name,
            "dataset_options": [list(p) for p in self.dataset.options],
            "max_train": self.dataset.max_train,
            "max_test": self.dataset.max_test,
            "system": self.system,
            "system_options": [list(p) for p in self.system_options],
            "budget": self.budget.name,
            "seed": self.seed,
        }
        blob = json.dumps(key, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def to_json(self) -> str:
        """Serialises the spec for a worker process."""
        return json.dumps({
            "dataset": {"name": self.dataset.name, "options": dict(self.dataset.options),
                        "max_train": self.dataset.max_train, "max_test": self.dataset.max_test},
            "system": self.system, "system_options": dict(self.system_options),
            "budget": self.budget.name, "seed": self.seed, "suite": self.suite,
            "timeout_s": self.timeout_s, "out_dir": self.out_dir, "keep_models": self.keep_models,
            "resources": {"num_cpus": self.resources.num_cpus, "num_gpus": self.resources.num_gpus},
            "precision": self.precision, "backend": self.backend,
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        """Inverse of to_json."""
        d = json.loads(text)
        ds = d["dataset"]
        return cls(
            dataset=DatasetRef(ds["name"], freeze(ds["options"]), ds["max_train"], ds["max_test"]),
            system=d["system"], system_options=freeze(d["system_options"]),
            budget=parse_budget(d["budget"]), seed=int(d["seed"]), suite=d["suite"],
            timeout_s=d["timeout_s"], out_dir=d["out_dir"], keep_models=d["keep_models"],
            resources=Resources(**d.get("resources", {})), precision=d.get("precision", "auto"),
            backend=d.get("backend", ""),
        )
