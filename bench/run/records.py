"""Run records: one row per run in one long results table, with fixed leading columns (as amlb)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from bench.run.spec import RunSpec, options_label

STATUSES = ("ok", "failed", "timeout", "skipped")


@dataclass(frozen=True)
class RunRecord:
    """The outcome of one run: identity, status, metrics from the harness, and resource use."""

    # --- fixed leading columns -------------------------------------------------------------
    run_id: str
    suite: str
    dataset: str
    split: str  # split protocol the data used: official, cell, patient, stratified-25%, ...
    system: str
    budget: str
    seed: int
    status: str  # one of STATUSES
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    macro_f1: float | None = None
    log_loss: float | None = None
    fit_s: float | None = None  # wall seconds in fit (for AutoML: search + refit)
    predict_s: float | None = None  # wall seconds predicting the test set
    cpu_s: float | None = None  # process CPU seconds over fit and predict, all threads
    # GPUs held x wall seconds of fit and predict (what a renter pays); empty, never 0, without a GPU or NVML.
    gpu_s: float | None = None
    peak_rss_mb: float | None = None
    params: int | None = None
    trials: int | None = None
    started_utc: str = ""
    error: str = ""
    # --- further columns ------------------------------------------------------------------------
    dataset_options: str = ""
    system_options: str = ""
    n_train: int | None = None
    n_test: int | None = None
    n_classes: int | None = None
    duration_s: float | None = None  # whole run process, data loading included
    search_s: float | None = None  # AutoML: the search phase of fit
    refit_s: float | None = None  # AutoML: refitting the best model on all training data
    budget_scope: str = ""  # what a wall-clock budget bounds: 'total' (all of fit) or 'search' (not the refit)
    overshoot_s: float | None = None  # time beyond the wall-clock budget, of what budget_scope bounds
    trials_failed: int | None = None
    # Held-out accuracy of the model that predicted the test set: on validation data that model never trained on.
    # resnet, resnet-tuned, autokeras-hybrid: the last epoch (whose weights predict) on train()'s validation
    # slice; autokeras where its best trial's checkpoint predicted (predicted_by 'best trial'): Auto-Keras'
    # validation split; autogluon: its best checkpoint on its own hold-out. Empty where the predicting model
    # trained on every image it could be scored on (autokeras' refit: refit_train_accuracy).
    val_accuracy: float | None = None
    # Auto-Keras' refit (when it predicted): its accuracy on the search's validation split, images the refit also
    # trained on (it refits on all the training data), so a fit of seen data, never an estimate of accuracy.
    refit_train_accuracy: float | None = None
    # Searchers: the best trial's validation accuracy during the search (trials.csv's highest val_accuracy).
    search_val_accuracy: float | None = None
    # Auto-Keras: what predicted, 'refit' or 'best trial' (the best trial's search-time checkpoint, where the
    # budget cut the refit inside its first epoch); empty for other systems.
    predicted_by: str = ""
    peak_disk_mb: float | None = None
    max_rss_mb: float | None = None  # the memory cap the run ran under (bench.run.supervise: given, or the default)
    device: str = ""  # 'cpu' or the GPU model
    hardware: str = ""  # short CPU/GPU description for plot titles
    # What the system is (its declared System.role: automl, baseline, floor, other) and the library it wraps.
    role: str = ""
    library: str = ""
    library_version: str = ""
    # GPU use read from NVML during fit and predict: empty, never 0, without a GPU or NVML.
    gpu_count: int | None = None  # GPUs the run held
    gpu_model: str = ""
    gpu_busy_s: float | None = None  # time-integral of utilisation over the held GPUs (what they worked)
    gpu_mem_peak_mb: float | None = None  # highest memory in use on a held GPU
    # Energy over fit and predict: the held GPUs' (NVML's counter), the CPU packages' (RAPL, the whole package's
    # draw); empty, never 0, where the counters are absent or unreadable.
    gpu_energy_j: float | None = None
    cpu_energy_j: float | None = None
    node: str = ""  # the Ray node that ran it (node id prefix); empty under the local executor
    # Tries it took: a lost node's run tried again by Ray, or a run whose process died run again (bench.core.resume)
    attempts: int | None = None
    resumed_from: str = ""  # what an earlier attempt left that this one continued from, e.g. 'epoch 3 (...)'
    # Fit seconds of earlier attempts that fit_s and the other figures leave out: a system that cannot continue
    # (autogluon-hpo, majority) started again with its whole budget. Empty when every attempt is counted.
    uncounted_fit_s: float | None = None
    model_path: str = ""  # a kept model left on the node that made it (Ray), as 'node:path'
    # What data the run saw (bench.datasets puts these in ImageData.info), so two results tables can be compared:
    data_fingerprint: str = ""  # 16 hex digits hashing the arrays the run saw (after subsetting), classes, split
    data_format: str = ""  # what the data was read from, e.g. 'JPEG image zip', 'sklearn bundled'
    data_pixels: str = ""  # 'canonical' (the data set's original pixels) or e.g. 'lossy: JPEG quality 75'
    # The Keras dtype policy the system computed in (bench.core.precision); empty for systems without Keras.
    # Runs recorded before the option existed were float32.
    precision: str = ""
    # The Keras backend the system computed with (bench.core.backend); empty for systems without Keras. Runs recorded
    # before the option were TensorFlow's.
    backend: str = ""
    # A search spread over several processes (a searcher's search_workers option): how many, and the seconds of
    # the run's declared resources held over fit (fit_s x the bundles reserved: a Ray placement group's N, one
    # machine's 1). cpu_s and the GPU figures of such a run are sums over its processes. Empty for one process.
    search_workers: int | None = None
    held_s: float | None = None
    # Compute counted from the models (bench.measure.flops; a multiply-add is 2 FLOPs): training's forward and
    # backward passes over every example trained (every trial of a search, its refit, the baseline's epochs; an
    # epoch cut short counted by its steps), predicting the test set (test-time views each count), and the rate
    # achieved, train_flops over fit_s. flops_uncounted names the layers the counter could not count (the figures
    # are then lower bounds). Empty for runs made before the counter and for systems without a network.
    train_flops: float | None = None
    predict_flops: float | None = None
    flops_per_s: float | None = None
    flops_uncounted: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def replace(self, **changes: Any) -> RunRecord:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_row(self) -> dict[str, str]:
        """CSV cells: numbers as text, None as an empty cell."""
        return {f.name: _cell(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_row(cls, row: dict[str, str]) -> RunRecord:
        """Parses CSV cells back; unknown columns are ignored, missing ones take defaults."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in row:
                continue
            kwargs[f.name] = _parse(row[f.name], _TYPES[f.name])
        return cls(**_older_meanings(kwargs, row.keys()))

    def to_json(self) -> str:
        """The record as a JSON object (None as null)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        """Inverse of to_json."""
        d = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**_older_meanings({k: v for k, v in d.items() if k in names}, d.keys()))


# Tables (and record.json files) written before refit_train_accuracy existed gave val_accuracy other meanings for
# some systems. Read, each such value moves to the field of its meaning, and a table rewritten keeps it there.
# Before search_val_accuracy existed, these searchers recorded their best trial's score as val_accuracy:
_BEST_TRIAL_SCORE_BEFORE = frozenset({"autokeras", "autokeras-default", "resnet-tuned"})
# From then on, Auto-Keras' refit scored on the validation split it trained on, unless the best trial predicted:
_REFIT_TRAIN_SCORE_BEFORE = frozenset({"autokeras", "autokeras-default"})


def _older_meanings(fields: dict[str, Any], written: Collection[str]) -> dict[str, Any]:
    """Record fields read from a table or record whose columns were `written`: a val_accuracy written before it
    meant only a held-out score moved to the field of what it meant."""
    if "refit_train_accuracy" in written or fields.get("val_accuracy") is None:
        return fields
    system, score = fields.get("system"), fields["val_accuracy"]
    if "search_val_accuracy" not in written:
        if system in _BEST_TRIAL_SCORE_BEFORE:
            return {**fields, "val_accuracy": None, "search_val_accuracy": score}
    elif system in _REFIT_TRAIN_SCORE_BEFORE and fields.get("predicted_by", "") != "best trial":
        return {**fields, "val_accuracy": None, "refit_train_accuracy": score}
    return fields


def record_for(spec: RunSpec, status: str, **fields: Any) -> RunRecord:
    """A record carrying the spec's identity (the one place a record is made from a spec) plus fields."""
    return RunRecord(
        run_id=spec.run_id, suite=spec.suite, dataset=spec.dataset.name, split=str(fields.pop("split", "")),
        system=spec.system, budget=spec.budget.name, seed=spec.seed, status=status,
        dataset_options=spec.dataset.label, system_options=options_label(spec.system_options), **fields,
    )


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunRecord))


def _base_type(annotation: str) -> str:
    for name in ("int", "float", "str"):
        if annotation.startswith(name):
            return name
    raise TypeError(annotation)


_TYPES = {f.name: _base_type(str(f.type)) for f in dataclasses.fields(RunRecord)}
RECORD_FIELDS = frozenset(COLUMNS)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _parse(text: str, kind: str) -> Any:
    if kind == "str":
        return text
    if text == "":
        return None
    return int(float(text)) if kind == "int" else float(text)
