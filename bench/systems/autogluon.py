"""AutoGluon as a second AutoML family: `autogluon` (MultiModalPredictor as its users call it) and `autogluon-hpo`
(the same with AutoGluon's own hyperparameter search), held to the rules every contender keeps.

Both run in the environment of their own that `python -m bench setup autogluon` builds (bench.run.environments:
AutoGluon 1.6.3 pins pandas, Pillow and Ray below this project's); their worker is started with its python.

- The images go to AutoGluon as PNG files at their native size, one column of paths and one of labels, the way
  its users hand it a folder of images; `model.timm_image.image_size` is the native size (`image_size` option),
  and the size AutoGluon used is recorded (a backbone that cannot change its input size keeps its own).
- One backbone, timm's (`model.names = ["timm_image"]`), from a checkpoint folder the adapter writes
  (autogluon_weights.py): seeded random weights by default, nothing downloaded; `pretrained=true` takes the
  weights from a local Hugging Face / timm cache only, and records the file and a hash of the weights.
- The presets are AutoGluon's default unless `presets` names another; `backbone=shipped` trains the preset's
  own backbone (caformer_b36 for the default: some 100 M parameters at 224 px, hours per epoch on a CPU).
- Budgets (autogluon_budget.py): fit(time_limit) bounds AutoGluon's training loop only, so the harness plans
  time_limit from the budget, interrupts fit at the hard stop every searcher keeps (docs/method.md) and records
  search_s, refit_s, overshoot_s.
- `autogluon-hpo`: hyperparameter_tune_kwargs with AutoGluon's searcher and scheduler (its defaults: bayes,
  ASHA) over its own default search space (learning rate, optimiser, epochs, batch size); trials bounded by the
  budget (num_trials from a trial budget; a time budget ends the search), each in trials.csv. Its Ray Tune runs
  on a Ray this worker starts with the run's cores, inside the run's process tree (so its memory cap); under
  the Ray executor that would be a second Ray on the node, so such a run fails saying so.
- FLOPs (autogluon_flops.py): the examples each training batch held (every trial's, in a search) times three
  forward passes of the model, one forward pass per test image predicted.
- After its process died (autogluon_resume.py), `autogluon` continues its training from the last.ckpt its
  predictor's folder, kept in the run's resume folder, holds; `autogluon-hpo` starts again (AutoGluon cannot
  resume a search).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.core import rundir
from bench.core.budget import Budget
from bench.core.options import package_version
from bench.measure.descendants import DescendantsCpu
from bench.measure.flops import Spent
from bench.systems.autogluon_budget import FinishGuard, FitClock, FitPlan, bounded_fit
from bench.systems.autogluon_flops import Tally, TrainingCount, counting_callback, read_counts, trial_path
from bench.systems.autogluon_resume import (
    COUNT_FILE,
    LAST_CHECKPOINT,
    PREDICTOR_DIR,
    ResumePoint,
    checkpoint_text,
    resume_point,
)
from bench.systems.base import RAY_NODE_ENV, FitContext, System
from bench.systems.budget_options import check_budget_scope
from bench.systems.search.budget import budget_deadline
from bench.systems.search.log import TrialRow, trials_spent, write_trials_csv

# The distribution whose version the record carries (`autogluon` itself is a meta-package, not installed here).
DISTRIBUTION = "autogluon.multimodal"
# The CPU-sized default backbone, chosen by measurement on digits (docs/method.md): timm's ResNet-18.
DEFAULT_BACKBONE = "resnet18"
# `backbone=shipped`: the backbone the presets themselves name.
SHIPPED = "shipped"
PRESETS = ("default", "medium_quality", "high_quality", "best_quality")
SEARCHERS = ("random", "bayes")
SCHEDULERS = ("FIFO", "ASHA")
# AutoGluon's own num_trials for its HPO presets; a time budget ends the search long before.
LIBRARY_NUM_TRIALS = 512
LABEL, IMAGE = "label", "image"
# Under the work folder: each trial's count of what it trained (autogluon_flops.py).
TRIAL_COUNTS = "trial-counts"
# Ray's object store for the search: trials pass checkpoints through files, not objects.
OBJECT_STORE_BYTES = 256 * 2**20
# A trial's own time limit ends it this long before the search's (this share of it, at least the minimum), so it
# stops by itself, as a single fit does, and saves its files, rather than being stopped by Ray Tune without them.
TRIAL_MARGIN_SHARE, TRIAL_MARGIN_MIN_S = 0.05, 5.0
MIN_TRIAL_S = 1.0  # the least time limit a trial starting at the search's end gets
# Offline for every process the fit starts (Ray's trial workers inherit the environment).
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

logger = logging.getLogger(__name__)


class _AutoGluonSystem(System):
    """MultiModalPredictor on image files, with the budget planned and enforced by the harness."""

    role: ClassVar[str] = "automl"
    library: ClassVar[str] = "autogluon"
    environment: ClassVar[str] = "autogluon"
    # Whether a run whose process died continues its training from AutoGluon's last checkpoint (autogluon_resume.py).
    continues: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Options:
        """Backbone, presets, pretrained weights from a local cache, image size, what a budget bounds."""

        # A timm model name (optionally with its tag), or 'shipped' for the presets' own backbone.
        backbone: str = DEFAULT_BACKBONE
        presets: str = "default"
        # True: the backbone's pretrained weights from a local Hugging Face / timm cache; never downloaded.
        pretrained: bool = False
        # Pixels a side AutoGluon resizes to; 0: the images' native size.
        image_size: int = 0
        budget_scope: str = "total"

        def __post_init__(self) -> None:
            if not isinstance(self.backbone, str) or not self.backbone.strip():
                raise ValueError(f"backbone must be a timm model name or {SHIPPED!r}, got {self.backbone!r}")
            if self.presets not in PRESETS:
                raise ValueError(f"presets must be one of {', '.join(PRESETS)}, got {self.presets!r}")
            if not isinstance(self.pretrained, bool):
                raise ValueError(f"pretrained must be true or false, got {self.pretrained!r}")
            if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 0:
                raise ValueError(f"image_size must be a whole number of pixels (0: native), got {self.image_size!r}")
            check_budget_scope(self.budget_scope)

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._predictor: Any = None
        self._workdir: Path | None = None
        self._n_classes = 0
        self._clock: FitClock | None = None
        self._plan: FitPlan | None = None
        self._info: dict[str, Any] = {}
        self._kit: Toolkit | None = None
        self._count = TrainingCount()
        self._predicted = 0  # test images predicted

    @classmethod
    def library_version(cls) -> str:
        """AutoGluon's version (its multimodal distribution's)."""
        return package_version(DISTRIBUTION)

    def budget_scope(self) -> str:
        """What a wall-clock budget bounds: 'total' or 'search' (the training loop, or the search)."""
        return self.options.budget_scope

    # --- what the library is (tests replace it with a fake) -----------------------------------------
    def toolkit(self) -> Toolkit:
        """The library the system drives."""
        return AutoGluonToolkit()

    def plan(self, ctx: FitContext, t0: float) -> FitPlan:
        """The fit's budget plan."""
        return FitPlan(self.options.budget_scope, budget_deadline(ctx.deadline, ctx.budget, t0), ctx.budget.seconds)

    def tune_kwargs(self, ctx: FitContext) -> dict[str, Any] | None:
        """hyperparameter_tune_kwargs for fit (None: no search)."""
        return None

    # --- the run ------------------------------------------------------------------------------------
    def resumes(self, budget: Budget) -> bool:
        """Whether a run continues its training from AutoGluon's last checkpoint after its process died."""
        return self.continues

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        """Writes the images, builds the backbone's checkpoint folder, fits the predictor under the budget; a run
        that can continue keeps the predictor's folder in its resume folder and continues from its last.ckpt."""
        t0 = time.monotonic()  # fit's clock includes importing AutoGluon and writing the images
        carrying = self.continuing(ctx)
        # A continued fit's clock runs on from the earlier attempts' (search_s + refit_s stays the record's fit_s).
        self._clock = clock = FitClock(t0 - (ctx.resume.before.fit_s if carrying else 0.0))
        self._plan = plan = self.plan(ctx, t0)
        self._workdir, self._n_classes = ctx.workdir, ctx.n_classes
        self._kit = kit = self.toolkit()
        folder = (ctx.resume.checkpoint_dir if carrying else ctx.workdir) / PREDICTOR_DIR
        point = ResumePoint()
        if carrying:
            # Every attempt's batches count (those a death undid and the next attempt trained again included), as
            # fit_s bills every attempt's time.
            kit.keep(ctx.resume.checkpoint_dir / COUNT_FILE, ctx.resume.checkpointed)
            point = resume_point(folder, kit.read_checkpoint, ctx.resume.before.attempts)
            if point.line():
                logger.info("%s", point.line())
            if point.checkpoint is None:
                shutil.rmtree(folder, ignore_errors=True)  # AutoGluon refuses a folder holding files
        train = write_images(x, ctx.workdir / "images" / "train", y)
        tune = self.tune_kwargs(ctx)
        setup = kit.setup(self.options, ctx, native_size=int(x.shape[1]), search=tune is not None)
        self._info = {"presets": self.options.presets, **setup.info}
        if point.checkpoint is not None:
            self._info.update(continued_from_step=point.step, carried_train_s=point.trained_s)
        guard = plan.guard()
        # Ray Tune trains each trial in processes of its own, which this process's CPU clock does not see.
        with DescendantsCpu() as others, kit.search_space(tune is not None) as space, \
                kit.training_marks(clock, guard, search=tune is not None):
            predictor = kit.predictor(folder, self.options.presets, ctx.n_classes, resume_from=point.checkpoint)

            def run(limit: float | None) -> None:
                given = point.time_limit(limit)
                self._info["time_limit_s"] = given
                predictor.fit(train, time_limit=given, hyperparameters={**setup.hyperparameters, **space},
                              seed=ctx.seed, hyperparameter_tune_kwargs=tune)

            bounded_fit(plan, clock, run)
        self._predictor = predictor
        self._info["descendants_cpu_s"] = others.cpu_s
        self._count = kit.training_count()
        self._info.update(kit.describe(predictor), loop_stopped_for_finish=guard.stopped,
                          validation_pass_s=guard.validation_s, examples_trained=self._count.examples)
        self.after_fit(kit, ctx)
        if ctx.keep_models:
            shutil.copytree(folder, ctx.run_dir / "autogluon-model", dirs_exist_ok=True)

    def after_fit(self, kit: Toolkit, ctx: FitContext) -> None:
        """What a subclass records once fit returned (the search's trials)."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities in class-index order from the fitted predictor."""
        if self._predictor is None or self._workdir is None:
            raise RuntimeError(f"{self.name}: call fit() before predict_proba()")
        test = write_images(x, self._workdir / "images" / f"test-{time.monotonic_ns()}")
        proba = self._predictor.predict_proba(test, as_pandas=True)
        self._predicted += len(x)
        return class_columns(proba, self._n_classes)

    def params(self) -> int | None:
        """Parameters of the predicting model."""
        return self._info.get("params")

    def spent(self) -> Spent:
        """FLOPs of the training loop's examples (three forward passes each) and of the test images predicted."""
        return self._count.spent(self._predicted)

    def extras(self) -> dict[str, Any]:
        """search_s, refit_s, overshoot_s, val_accuracy, FLOPs spent, and what the run used (backbone, weights,
        size)."""
        if self._plan is None or self._clock is None:
            return {}
        return {**self._plan.extras(self._clock), **{k: v for k, v in self._info.items() if k != "params"},
                **self.spent().fields()}


class AutoGluon(_AutoGluonSystem):
    """MultiModalPredictor for image classification, AutoGluon's presets, one fit under the budget."""

    name: ClassVar[str] = "autogluon"
    description: ClassVar[str] = ("AutoGluon MultiModalPredictor (timm backbone, default presets), random init "
                                  "from a local checkpoint, native image size, offline")
    continues: ClassVar[bool] = True


class AutoGluonHPO(_AutoGluonSystem):
    """MultiModalPredictor with AutoGluon's own hyperparameter search under the budget."""

    name: ClassVar[str] = "autogluon-hpo"
    description: ClassVar[str] = ("AutoGluon MultiModalPredictor with its Ray Tune search (bayes searcher, ASHA "
                                  "scheduler, its default space), trials bounded by the budget")
    # Starts again after its process died: AutoGluon refuses to resume a fit with hyperparameter_tune_kwargs (its
    # learner asserts "You can not resume training with HPO"), and its search (autogluon.core.hpo.ray_hpo.run)
    # builds a new Ray Tune experiment on every fit, with no way to restore one that was interrupted.
    continues: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Options(_AutoGluonSystem.Options):
        """As `autogluon`, plus the search's searcher and scheduler."""

        searcher: str = "bayes"
        scheduler: str = "ASHA"

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.searcher not in SEARCHERS:
                raise ValueError(f"searcher must be one of {', '.join(SEARCHERS)}, got {self.searcher!r}")
            if self.scheduler not in SCHEDULERS:
                raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._trials: list[TrialRow] = []

    def tune_kwargs(self, ctx: FitContext) -> dict[str, Any] | None:
        """AutoGluon's searcher and scheduler; trials from a trial budget, else its own count (time ends it)."""
        trials = ctx.budget.trials if ctx.budget.trials is not None else LIBRARY_NUM_TRIALS
        return {"searcher": self.options.searcher, "scheduler": self.options.scheduler, "num_trials": trials}

    def fit(self, x: np.ndarray, y: np.ndarray, ctx: FitContext) -> None:
        """Fits with the search on a Ray of the run's own; trials.csv is written however fit ends."""
        if os.environ.get(RAY_NODE_ENV):
            raise RuntimeError(
                "autogluon-hpo does not run under --executor ray: AutoGluon's Ray Tune would start a second Ray on "
                "the node (its Ray, pinned below 2.59, cannot join this cluster's); run it with --executor local")
        try:
            super().fit(x, y, ctx)
        finally:  # a search that failed after its trials still shows them
            if self._kit is not None and self._clock is not None:
                self._trials = self._kit.trial_rows(self._clock)
            write_trials_csv(self._trials, ctx.run_dir / rundir.TRIALS)

    def after_fit(self, kit: Toolkit, ctx: FitContext) -> None:
        """The search's figures, from Ray Tune's analysis."""
        assert self._clock is not None
        self._trials = kit.trial_rows(self._clock)
        scores = [r.val_accuracy for r in self._trials if r.val_accuracy is not None]
        self._info["search_val_accuracy"] = max(scores, default=None)
        self._info["trials_failed"] = sum(r.status == "failed" for r in self._trials)

    def trials(self) -> int | None:
        """Trials Ray Tune ran."""
        return len(self._trials) if self._plan is not None else None

    def spent(self) -> Spent:
        """Every trial's training (stopped and failed ones included) and the predicting model's test images: it is
        the best trial's model, which AutoGluon loads without training it further."""
        predicting = TrainingCount(0, self._count.forward, self._count.model)
        return trials_spent(self._trials) + predicting.spent(self._predicted)


# --- the library's side -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setup:
    """What a fit hands AutoGluon (its fixed hyperparameters) and records (backbone, weights, size)."""

    hyperparameters: dict[str, Any]
    info: dict[str, Any]


class Toolkit:
    """The calls into AutoGluon the systems make, in one place; tests give a fake without AutoGluon."""

    def setup(self, options: Any, ctx: FitContext, native_size: int, search: bool) -> Setup:
        """Makes the backbone's checkpoint folder; returns the fixed hyperparameters and what to record."""
        raise NotImplementedError

    def predictor(self, path: Path, presets: str, n_classes: int, resume_from: Path | None = None) -> Any:
        """A MultiModalPredictor for `n_classes` classes saving under `path`; with resume_from (a last.ckpt in
        `path`), its fit continues that training."""
        raise NotImplementedError

    def keep(self, count: Path, on_checkpoint: Callable[[str], None]) -> None:
        """A single fit that can continue after its process died: its training count is kept in the file `count`
        (read back when it exists), and on_checkpoint hears what each last.ckpt saved holds."""

    def read_checkpoint(self, path: Path) -> Mapping[str, Any]:
        """A Lightning checkpoint's contents (raises when the file cannot be read)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def search_space(self, search: bool) -> Iterator[dict[str, Any]]:
        """The search space of a search (and its Ray, up while inside); {} without one."""
        yield {}

    @contextlib.contextmanager
    def training_marks(self, clock: FitClock, guard: FinishGuard, search: bool) -> Iterator[None]:
        """While inside, each training loop (or the search) is marked on `clock`, and a loop stops when `guard`
        says so."""
        yield

    def describe(self, predictor: Any) -> dict[str, Any]:
        """What the fitted predictor used: image size, parameters, its validation score."""
        return {}

    def training_count(self) -> TrainingCount:
        """What the fit trained: examples (of every trial, in a search) and one example's forward FLOPs through
        the predicting model."""
        return TrainingCount()

    def trial_rows(self, clock: FitClock) -> list[TrialRow]:
        """The last search's trials."""
        return []


class AutoGluonToolkit(Toolkit):
    """The real AutoGluon 1.6.3."""

    def __init__(self) -> None:
        os.environ.update(OFFLINE_ENV)  # before AutoGluon imports huggingface_hub, which reads them once
        self._analysis: Any = None
        self._search_wall_t0 = 0.0
        self._tally = Tally()  # a single fit's training, counted in this process
        self._on_checkpoint: Callable[[str], None] | None = None  # hears each last.ckpt a single fit saves
        self._counts: Path | None = None  # a search's trials' counts
        self._chosen: str | None = None  # the trial AutoGluon built the predicting model from

    def setup(self, options: Any, ctx: FitContext, native_size: int, search: bool) -> Setup:
        """The backbone as a local folder (random or cached pretrained weights), at native size unless told."""
        from bench.systems.autogluon_weights import write_checkpoint

        name = shipped_backbone(options.presets) if options.backbone == SHIPPED else options.backbone
        self._counts = ctx.workdir / TRIAL_COUNTS
        checkpoint = write_checkpoint(name, ctx.workdir / "backbone", ctx.seed, options.pretrained)
        size = options.image_size or native_size
        hyperparameters = {"model.names": ["timm_image"], "model.timm_image.checkpoint_name": str(checkpoint.folder),
                           "model.timm_image.image_size": size}
        if not _has_gpu():
            hyperparameters["env.num_gpus"] = 0
        info = {"backbone": name, "pretrained": checkpoint.pretrained, "weights": checkpoint.source,
                "weights_sha256": checkpoint.sha256, "image_size_asked": size, "native_size": native_size}
        return Setup(hyperparameters, info)

    def predictor(self, path: Path, presets: str, n_classes: int, resume_from: Path | None = None) -> Any:
        """MultiModalPredictor for image classification, scored by accuracy; with resume_from, its learner is
        told to continue from that checkpoint as MultiModalPredictor.load(path, resume=True) tells it (load itself
        needs files AutoGluon writes only once a training loop ended: autogluon_resume.py)."""
        from autogluon.multimodal import MultiModalPredictor

        predictor = MultiModalPredictor(label=LABEL, problem_type=problem_type(n_classes), eval_metric="accuracy",
                                        path=str(path), presets=presets, verbosity=2)
        if resume_from is not None:
            learner = predictor._learner
            if not (hasattr(learner, "_resume") and hasattr(learner, "_ckpt_path")):
                raise RuntimeError(f"this AutoGluon's learner ({type(learner).__name__}) has no _resume and "
                                   "_ckpt_path to continue a training with; the versions verified are in README.md")
            learner._resume, learner._ckpt_path = True, str(resume_from)
        return predictor

    def keep(self, count: Path, on_checkpoint: Callable[[str], None]) -> None:
        """The count in `count` (rewritten after every batch), each last.ckpt saved told to on_checkpoint."""
        self._tally = Tally(count)
        self._on_checkpoint = on_checkpoint

    def read_checkpoint(self, path: Path) -> Mapping[str, Any]:
        """The checkpoint's contents, on the CPU; tensors and plain types only (it loads as Lightning loads it)."""
        import torch

        return dict(torch.load(path, map_location="cpu", weights_only=True))

    @contextlib.contextmanager
    def search_space(self, search: bool) -> Iterator[dict[str, Any]]:
        """AutoGluon's default HPO space, on a Ray started here with this process's cores."""
        if not search:
            yield {}
            return
        import ray
        from autogluon.multimodal.utils.presets import get_default_hpo_setup

        space, _ = get_default_hpo_setup()
        temp = tempfile.mkdtemp(prefix="bench-ray-")  # short: Ray's socket paths must fit in 107 bytes
        os.environ.pop("RAY_ADDRESS", None)
        here = os.getcwd()
        # Ray puts the driver's current folder on its workers' import path: from a checkout's root its datasets/
        # would shadow Hugging Face's `datasets`, which AutoGluon imports in each trial.
        os.chdir(temp)
        on_sigterm = signal.getsignal(signal.SIGTERM)  # Ray replaces it with an exit; the harness's soft stop stays
        try:
            ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)), num_gpus=_gpu_count(),
                     include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES, _temp_dir=temp,
                     log_to_driver=False, logging_level=logging.ERROR,
                     runtime_env={"env_vars": {"PL_DISABLE_FORK": "1", **OFFLINE_ENV}})
        finally:
            os.chdir(here)
            signal.signal(signal.SIGTERM, on_sigterm)
        try:
            yield space
        finally:
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)

    @contextlib.contextmanager
    def training_marks(self, clock: FitClock, guard: FinishGuard, search: bool) -> Iterator[None]:
        """Wraps Lightning's Trainer.fit (one fit's training loop, which then also hears `guard`) or AutoGluon's
        Ray Tune run (a search, whose trials run in Ray's processes); counts what a single fit trains."""
        if not search:
            with _fits_with(lambda: [_guard_callback(guard), counting_callback(self._tally)], clock.loop), \
                    _saves_told(self._on_checkpoint), _checkpoints_load_under_lightning_2_6():
                yield
            return
        from autogluon.core.hpo import ray_hpo

        run = ray_hpo.run

        def marked(*args: Any, **kwargs: Any) -> Any:
            self._search_wall_t0 = time.time() - (time.monotonic() - clock.t0)
            budget = kwargs.get("time_budget_s")  # a timedelta (AutoGluon's max_time x 0.95) or None
            budget = budget.total_seconds() if isinstance(budget, dt.timedelta) else budget
            margin = 0.0 if budget is None else max(TRIAL_MARGIN_MIN_S, TRIAL_MARGIN_SHARE * budget)
            kwargs["trainable"] = bounded_trial
            kwargs["trainable_args"] = {
                **kwargs["trainable_args"], "experiment_dir": kwargs["save_dir"],
                "search_end": None if budget is None else time.time() + budget - margin,
                "count_dir": None if self._counts is None else str(self._counts)}
            with clock.loop():
                self._analysis = run(*args, **kwargs)
            return best_among_saved(self._analysis, kwargs["save_dir"], self._choose)

        ray_hpo.run = marked
        try:
            yield
        finally:
            ray_hpo.run = run

    def _choose(self, trial: Any) -> None:
        self._chosen = None if trial is None else str(trial.trial_id)

    def describe(self, predictor: Any) -> dict[str, Any]:
        """Image size AutoGluon used, parameters, and its best validation accuracy."""
        learner = getattr(predictor, "_learner", None)
        model = getattr(learner, "_model", None)
        size = getattr(model, "image_size", None)
        score = getattr(learner, "_best_score", None)
        return {"image_size": None if size is None else int(size), "params": int(predictor.total_parameters),
                "val_accuracy": None if score is None else float(score)}

    def training_count(self) -> TrainingCount:
        """A single fit's count; a search's: its trials' examples, the forward pass of the trial AutoGluon chose."""
        if self._analysis is None:
            return self._tally.count
        counts = read_counts(self._counts) if self._counts is not None else {}
        chosen = counts.get(self._chosen or "", TrainingCount())
        return TrainingCount(sum(c.examples for c in counts.values()), chosen.forward, chosen.model)

    def trial_rows(self, clock: FitClock) -> list[TrialRow]:
        """One row per Ray Tune trial: its sampled configuration, validation accuracy, time, status and FLOPs."""
        if self._analysis is None:
            return []
        counts = read_counts(self._counts) if self._counts is not None else {}
        rows = []
        for trial in self._analysis.trials:
            result = trial.last_result or {}
            ended = float(result.get("timestamp", time.time())) - self._search_wall_t0
            started = ended - float(result.get("time_total_s", 0.0))
            score = result.get("val_accuracy")
            # Ends without a score: the search's time ran out before the trial's first validation.
            status = "failed" if trial.status == "ERROR" else "completed" if score is not None else "stopped"
            error = "" if trial.status != "ERROR" else _trial_error(trial)
            # No count: the trial ended before its first batch did (or counted nothing: then it is named as not
            # counted where it reported an epoch or failed, search.log.trials_spent).
            count = counts.get(str(trial.trial_id))
            spent = None if count is None else count.spent()
            rows.append(TrialRow(trial_id=str(trial.trial_id), started_s=max(0.0, started), ended_s=max(0.0, ended),
                                 epochs=result.get("epoch"), val_accuracy=None if score is None else float(score),
                                 status=status, summary=json.dumps(_plain(trial.config), sort_keys=True),
                                 error=error, train_flops=None if spent is None else spent.train,
                                 flops_uncounted="" if spent is None else ",".join(spent.uncounted)))
        return sorted(rows, key=lambda r: r.started_s)


def bounded_trial(sampled_hyperparameters: dict[str, Any], learner: Any, checkpoint_dir: str | None = None,
                  experiment_dir: str = "", search_end: float | None = None, count_dir: str | None = None,
                  **fit_args: Any) -> None:
    """One trial of AutoGluon's search (autogluon.multimodal.utils.hpo.hpo_trial, with three changes): it saves in
    the experiment folder under its trial id, where AutoGluon reads the best trial from (with Ray 2.58 Ray Tune's
    trial folder is in its session folder instead); its training's time limit ends before the search's, so
    it ends as a single fit does and saves its files (a trial Ray Tune stops exits before saving them); and it
    counts what it trains in `count_dir` (autogluon_flops.py), outside AutoGluon's folders, which it prunes."""
    from autogluon.common.utils.context import set_torch_num_threads
    from autogluon.multimodal.constants import RAY_TUNE_CHECKPOINT
    from ray import tune

    context = tune.get_context()
    num_cpus = int(context.get_trial_resources().required_resources.get("CPU"))
    fit_args["hyperparameters"] = sampled_hyperparameters
    fit_args["save_path"] = os.path.join(experiment_dir, context.get_trial_id())
    if checkpoint_dir is not None:
        fit_args["resume"] = True
        fit_args["ckpt_path"] = os.path.join(checkpoint_dir, RAY_TUNE_CHECKPOINT)
    if search_end is not None:
        fit_args["max_time"] = dt.timedelta(seconds=max(MIN_TRIAL_S, search_end - time.time()))
    counting = contextlib.nullcontext() if count_dir is None else _fits_with(
        lambda: [counting_callback(Tally(trial_path(count_dir, context.get_trial_id())))])
    with set_torch_num_threads(num_cpus=num_cpus), counting:
        learner.fit_per_run(**fit_args)


@contextlib.contextmanager
def _fits_with(callbacks: Callable[[], list[Any]],
               around: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext) -> Iterator[None]:
    """While inside, each Lightning Trainer.fit gets `callbacks()` and runs inside `around()`."""
    import lightning.pytorch as pl

    fit = pl.Trainer.fit

    def marked_fit(trainer: Any, *args: Any, **kwargs: Any) -> Any:
        trainer.callbacks.extend(callbacks())
        with around():
            return fit(trainer, *args, **kwargs)

    pl.Trainer.fit = marked_fit
    try:
        yield
    finally:
        pl.Trainer.fit = fit


@contextlib.contextmanager
def _saves_told(on_checkpoint: Callable[[str], None] | None) -> Iterator[None]:
    """While inside, on_checkpoint hears what each last.ckpt holds once Lightning has written it (not before:
    attempt.json then never names a checkpoint that is not on disk)."""
    if on_checkpoint is None:
        yield
        return
    import lightning.pytorch as pl

    save = pl.Trainer.save_checkpoint

    def told(trainer: Any, filepath: Any, *args: Any, **kwargs: Any) -> Any:
        result = save(trainer, filepath, *args, **kwargs)
        if os.path.basename(str(filepath)) == LAST_CHECKPOINT:
            on_checkpoint(checkpoint_text(trainer.global_step, trainer.current_epoch, trainer.max_epochs))
        return result

    pl.Trainer.save_checkpoint = told
    try:
        yield
    finally:
        pl.Trainer.save_checkpoint = save


@contextlib.contextmanager
def _checkpoints_load_under_lightning_2_6() -> Iterator[None]:
    """While inside, AutoGluon's checkpoint plugin takes the `weights_only` Lightning 2.6 passes when a fit
    continues from a checkpoint: AutoGluon 1.6.3's load_checkpoint(path, map_location) refuses it, so its own
    resume fails with a TypeError. The plugin then loads as it does for AutoGluon's every other load (torch's
    default); a plugin that takes the keyword is left as it is."""
    import inspect

    from autogluon.multimodal.utils.checkpoint import AutoMMModelCheckpointIO

    load = AutoMMModelCheckpointIO.load_checkpoint
    if "weights_only" in inspect.signature(load).parameters:
        yield
        return

    def taking(plugin: Any, path: Any, map_location: Any = None, weights_only: bool | None = None) -> Any:
        return load(plugin, path, map_location=map_location)

    AutoMMModelCheckpointIO.load_checkpoint = taking
    try:
        yield
    finally:
        AutoMMModelCheckpointIO.load_checkpoint = load


def best_among_saved(analysis: Any, experiment_dir: str, chosen: Callable[[Any], None] | None = None) -> Any:
    """Ray Tune's analysis, its best trial chosen among those that saved their files (a trial stopped by the
    scheduler or the search's end has none, and AutoGluon could not build its model); `chosen` hears the choice."""
    choose = analysis.get_best_trial

    def get_best_trial(metric: str | None = None, mode: str | None = None, **kwargs: Any) -> Any:
        saved = [t for t in analysis.trials if os.path.exists(os.path.join(experiment_dir, t.trial_id, "config.yaml"))
                 and (t.last_result or {}).get(metric) is not None]
        best = (choose(metric=metric, mode=mode, **kwargs) if not saved
                else (max if mode == "max" else min)(saved, key=lambda t: t.last_result[metric]))
        if chosen is not None:
            chosen(best)
        return best

    analysis.get_best_trial = get_best_trial
    return analysis


def _guard_callback(guard: FinishGuard) -> Any:
    """A Lightning callback feeding `guard` the validation passes' times and stopping the loop when it says."""
    import lightning.pytorch as pl

    class FinishReserve(pl.Callback):
        """Stops training early enough for AutoGluon's validation passes after the loop."""

        def on_validation_epoch_start(self, trainer: Any, module: Any) -> None:
            if not trainer.sanity_checking:
                guard.validation_started(time.monotonic())

        def on_validation_epoch_end(self, trainer: Any, module: Any) -> None:
            if not trainer.sanity_checking:
                guard.validation_ended(time.monotonic())

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            if guard.should_stop(time.monotonic()):
                trainer.should_stop = True

    return FinishReserve()


def shipped_backbone(presets: str) -> str:
    """The timm backbone AutoGluon's presets name for images."""
    from autogluon.multimodal.utils.presets import default

    hyperparameters, _ = default(presets)
    return str(hyperparameters["model.timm_image.checkpoint_name"])


def write_images(x: np.ndarray, folder: Path, y: np.ndarray | None = None) -> Any:
    """The images as PNG files in `folder`, as a DataFrame of their paths (and labels)."""
    import pandas as pd
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(x):
        pixels = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
        path = folder / f"{i}.png"
        Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(path)
        paths.append(str(path))
    frame = pd.DataFrame({IMAGE: paths})
    if y is not None:
        frame[LABEL] = np.asarray(y, dtype=np.int64)
    return frame


def problem_type(n_classes: int) -> str:
    """AutoGluon's name for the task: it refuses "multiclass" for two classes (malaria's cells)."""
    return "binary" if n_classes == 2 else "multiclass"


def class_columns(proba: Any, n_classes: int) -> np.ndarray:
    """AutoGluon's probability table (a column per class label it saw) as an (n, n_classes) array; a class the
    training set lacked gets 0."""
    out = np.zeros((len(proba), n_classes), dtype=np.float64)
    for label in proba.columns:
        out[:, int(label)] = np.asarray(proba[label], dtype=np.float64)
    return out / out.sum(axis=1, keepdims=True)


def _gpu_count() -> int:
    try:
        import torch

        return int(torch.cuda.device_count())
    except ImportError:
        return 0


def _has_gpu() -> bool:
    return _gpu_count() > 0


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's sampled configuration as JSON-able values."""
    return {k: v if isinstance(v, int | float | str | bool) or v is None else str(v) for k, v in config.items()}


def _trial_error(trial: Any) -> str:
    """The last line of a failed trial's error file."""
    path = getattr(trial, "error_file", None)
    with contextlib.suppress(OSError, TypeError):
        lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
        return lines[-1][:300] if lines else "failed"
    return "failed"


__all__ = ["AutoGluon", "AutoGluonHPO", "AutoGluonToolkit", "Setup", "Toolkit", "class_columns", "write_images"]
