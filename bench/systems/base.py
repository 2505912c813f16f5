"""The System concept (amlb's framework adapter): fit on training data, give class probabilities.

The harness drives every system the same way (System.run): it times fit and predict separately
with bench.measure.timing, passes only training data to fit, and computes all metrics itself from the
returned probabilities.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.core.budget import Budget
from bench.core.options import make_options, package_version
from bench.datasets.base import ImageData
from bench.measure.meters import Windows
from bench.measure.timing import measure


@dataclass(frozen=True)
class FitContext:
    """What a system may know while fitting: the budget and its deadline, the seed, where to write."""

    budget: Budget
    seed: int
    # Scratch space (tuner projects, checkpoints); the harness deletes it when the run ends.
    workdir: Path
    # The run's folder, kept: artifacts go here (history.csv, trials.csv, an exported model).
    run_dir: Path
    n_classes: int
    class_names: tuple[str, ...]
    dataset: str
    # time.monotonic() value by which the budget's time runs out (None: no time limit).
    deadline: float | None = None
    keep_models: bool = False
    # This attempt of the run (bench.core.resume.Attempt): where a system that can continue after its process died
    # keeps its checkpoint, and what earlier attempts left there. None outside the harness's worker.
    resume: Any = None
    # Set in a worker process of a search spread over several (bench.systems.search.distributed.WorkerPlan).
    search_worker: Any = None


@dataclass(frozen=True)
class SystemResult:
    """A system's output on the test set, with the harness's timings and the system's own figures."""

    probabilities: np.ndarray  # (n_test, n_classes), rows sum to 1
    fit_s: float
    predict_s: float
    cpu_s: float  # process CPU seconds over fit and predict
    params: int | None = None
    trials: int | None = None
    # System-specific figures recorded with the run (search_s, refit_s, overshoot_s, ...).
    extras: Mapping[str, Any] = field(default_factory=dict)


# Set for a worker the Ray executor started on a node (bench.run.supervise): a system that would start a Ray of its own
# there refuses, since a second Ray on a node would compete with the cluster's for its cores and memory.
RAY_NODE_ENV = "BENCH_ON_RAY_NODE"

# What a system is in the comparison: the report places and compares runs by this, never by the name.
ROLES = ("automl", "baseline", "floor", "other")


class System(ABC):
    """One contender. Subclasses set name, description, role and library, an `Options` dataclass, and
    implement fit and predict_proba."""

    name: ClassVar[str]
    description: ClassVar[str]
    # One of ROLES: 'automl' (searches models), 'baseline' (hand-built), 'floor' (sanity predictor).
    role: ClassVar[str] = "other"
    # The distribution (pip name) whose code the system wraps; its installed version goes in the record.
    library: ClassVar[str] = "bench"
    # Whether the system computes with Keras: the harness then sets the run's precision policy before fit.
    uses_keras: ClassVar[bool] = False
    # The worker environment the system runs in (bench.run.environments); '': the harness's own.
    environment: ClassVar[str] = ""

    @dataclass(frozen=True)
    class Options:
        """No options."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.role not in ROLES:
            raise TypeError(f"{cls.__qualname__}.role must be one of {ROLES}, got {cls.role!r}")

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = make_options(self.Options, options or {}, f"system {self.name!r}")

    @classmethod
    def library_version(cls) -> str:
        """The installed version of `library` ('' when it is not installed as a distribution)."""
        return package_version(cls.library)

    @classmethod
    def identity(cls) -> dict[str, str]:
        """What the system declares, as run-record fields: role, library and its version."""
        return {"role": cls.role, "library": cls.library, "library_version": cls.library_version()}

    def run(self, data: ImageData, ctx: FitContext, meters: Windows | None = None) -> SystemResult:
        """Fits on the training set, predicts the test set; timing each with the harness's clock (and the
        meters' windows, when given, so GPU time and energy cover fit and predict alone)."""
        with _window(meters), measure() as fit_clock:  # the meters' own reads stay off the clocks
            self.fit(data.x_train, data.y_train, ctx)
        with _window(meters), measure() as predict_clock:
            proba = np.asarray(self.predict_proba(data.x_test), dtype=np.float64)
        if proba.shape != (len(data.x_test), ctx.n_classes):
            raise RuntimeError(f"{self.name} returned probabilities of shape {proba.shape}, "
                               f"expected {(len(data.x_test), ctx.n_classes)}")
        return SystemResult(
            probabilities=proba, fit_s=fit_clock.wall_s, predict_s=predict_clock.wall_s,
            cpu_s=fit_clock.cpu_s + predict_clock.cpu_s, params=self.params(),
            trials=self.trials(), extras=self.extras(),
        )

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        """Trains on uint8 images x and int labels y within ctx.budget; never sees the test set."""

    @abstractmethod
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities for uint8 images x, shape (len(x), n_classes)."""

    def resumes(self, budget: Budget) -> bool:
        """Whether a run under this budget continues from its checkpoint after its process died (bench.core.resume);
        a system that cannot starts again."""
        return False

    def continuing(self, ctx: FitContext) -> bool:
        """Whether this fit keeps what it needs to continue after its process died: the harness resumes the run
        (ctx.resume) and the system can under its budget (resumes)."""
        return ctx.resume is not None and self.resumes(ctx.budget)

    def budget_scope(self) -> str:
        """What a wall-clock budget bounds: 'total' (all of fit; systems with one phase) or 'search' (a searcher
        whose refit comes after the budget)."""
        return "total"

    def params(self) -> int | None:
        """Trainable and non-trainable parameters of the final model, if it has any."""
        return None

    def trials(self) -> int | None:
        """Models trained during a search (None for systems that do not search)."""
        return None

    def extras(self) -> dict[str, Any]:
        """System-specific figures for the run record (see records.RunRecord for known names)."""
        return {}


def _window(meters: Windows | None) -> AbstractContextManager[None]:
    return nullcontext() if meters is None else meters.window()
