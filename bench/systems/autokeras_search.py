"""Auto-Keras 3 under a budget: the search package's tuner mixin plus Auto-Keras' refit.

Auto-Keras 3 (AutoModel.fit -> AutoTuner.search) runs keras-tuner's trial loop, which bench.systems.search's
KerasFitTrials puts under the run's deadline, and then refits the best trial's hyperparameters on training +
validation data (AutoTuner.final_fit). AutoKerasTrials.final_fit marks the end of the search, refits for the
epochs the best trial used (its best epoch), under scope 'total' stopping at its next batch once the budget's end
has passed (refit_stop_at), and keeps the refit model, however far it trained. Auto-Keras 3.0.0 itself saves the
refit model but predicts with the best *search-time* checkpoint (AutoModel.predict -> tuner.get_best_model); this
adapter predicts with the refit model, as the 2019 run did (final_fit(retrain=True)), unless the budget cut the
refit inside its first epoch (a search that ran late: a trial stuck in its first step until the hard stop): a
model that has not seen every image once is no answer when the best trial's checkpoint, trained within the same
budget, is on disk, so that checkpoint predicts, as Auto-Keras' own default does (KerasRefit.predictor).
Built with refit=False it refits nothing: it records the best trial's hyperparameters (best_values) and raises
SearchComplete, for a caller that builds and trains its own network from them (autokeras-hybrid).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.systems.search import KerasFitTrials, SearchLog, deadline_callback, refit_stop_at

# ConvBlock's per-layer filter hyperparameters: filters_<block>_<layer>.
_FILTERS = re.compile(r".*/filters_(\d+)_(\d+)$")
# KerasRefit.predictor when the best trial's search-time checkpoint predicts instead of the refit.
BEST_TRIAL = "best trial"


class SearchComplete(Exception):
    """Raised by final_fit instead of refitting when the tuner was built with refit=False: the search is over,
    and the best trial's hyperparameters are in the tuner's best_values (a caller that trains its own model
    catches it)."""


@dataclass(frozen=True)
class KerasRefit:
    """The refit of the best trial: Auto-Keras' preprocessing pipeline, the model, and how far it trained."""

    pipeline: Any
    model: Any
    epochs: int  # planned: the epochs the best trial used
    stopped: bool  # the budget's end cut it (scope 'total' only)
    epochs_trained: float  # a cut epoch counted by its batches
    # What predicts: 'refit', or 'best trial' (its search-time checkpoint, when the refit was cut in its first
    # epoch), or 'refit (...)' saying why the checkpoint could not be used.
    predictor: str = "refit"


class AutoKerasTrials(KerasFitTrials):
    """KerasFitTrials for an Auto-Keras tuner class: trials summarised by their architecture, and Auto-Keras'
    refit of the best trial under the budget (or none, with refit=False)."""

    def __init__(self, *args: Any, search_log: SearchLog, refit: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, search_log=search_log, **kwargs)
        self.refits = refit
        self.refit: KerasRefit | None = None
        self.best_values: dict[str, Any] | None = None  # the best trial's active hyperparameters, once known

    def summarize(self, trial: Any) -> str:
        """The architecture first, then every active hyperparameter."""
        return summarize_hyperparameters(_active_values(trial.hyperparameters))

    def final_fit(self, **kwargs: Any) -> Any:
        """Refits the best trial on all training data for the epochs that trial used."""
        log = self.search_log
        log.search_end = time.monotonic()
        log.note_disk()
        best = self.best_trial()
        if best is None:
            raise log.no_completed_trial("Auto-Keras")
        epochs = self._get_best_trial_epochs()
        self.best_values = _active_values(best.hyperparameters)
        if not self.refits:
            raise SearchComplete
        # The library would pass the user's callbacks through a helper that nests them in a list; the refit
        # needs no early stopping (no validation data). Under scope 'total' it stops at its next batch once the
        # budget's end has passed, inside an epoch if need be (an epoch on the full data can outlast the
        # allowed overshoot): the weights trained so far are the model.
        refit_end = None
        if log.deadline is not None and log.scope == "total":
            refit_end = refit_stop_at(log.deadline, log.overshoot_allowed_s,
                                      log.refit_estimate(str(best.trial_id), 1))
        refit_stop = deadline_callback(refit_end)
        kwargs["callbacks"] = [refit_stop]
        kwargs["epochs"] = epochs
        self.hypermodel.set_fit_args(0, epochs=epochs)
        pipeline, model, history = super().final_fit(**kwargs)  # type: ignore[misc]
        predictor = "refit"
        if refit_stop.stopped and refit_stop.epochs_trained < 1:
            pipeline, model, predictor = self._best_checkpoint(best, pipeline, model)
        self.refit = KerasRefit(pipeline, model, epochs, refit_stop.stopped, refit_stop.epochs_trained, predictor)
        return pipeline, model, history

    def _best_checkpoint(self, best: Any, pipeline: Any, model: Any) -> tuple[Any, Any, str]:
        """The best trial's preprocessing and model at its best epoch, as its trial saved them, and 'best trial';
        the refit's own, and why, where that trial's files are not here (another process of the search ran it)."""
        from autokeras import pipeline as pipeline_module

        trial_id = str(best.trial_id)
        files = [Path(self._get_checkpoint_fname(trial_id)), Path(self._pipeline_path(trial_id))]
        if not all(f.exists() for f in files):
            return pipeline, model, "refit (the best trial's checkpoint is not on this process's disk)"
        return pipeline_module.load_pipeline(str(files[1])), self.load_model(best), BEST_TRIAL


def summarize_hyperparameters(values: dict[str, Any]) -> str:
    """A readable one-line description: the architecture first, then every active hyperparameter."""
    short = {name.split("/", 1)[1] if name.startswith("image_block_1/") else name: v for name, v in values.items()}
    arch = str(short.get("block_type", "?"))
    for key, v in short.items():
        if key.endswith("/version"):
            arch += f" {v}"
    return arch + ": " + "; ".join(f"{k}={v}" for k, v in sorted(short.items()))


def _active_values(hps: Any) -> dict[str, Any]:
    """The hyperparameter values that shaped the model (keras-tuner also keeps inactive ones)."""
    values = {name: v for name, v in hps.values.items() if hps.is_active(name)}
    # ConvBlock declares filters_<block>_<layer> for every block and layer it ever built, used or not.
    for name in list(values):
        m = _FILTERS.match(name)
        if m is not None:
            prefix = name[: m.start(1)].rsplit("filters_", 1)[0]
            blocks, layers = values.get(prefix + "num_blocks"), values.get(prefix + "num_layers")
            if (blocks is not None and int(m.group(1)) >= blocks) or (layers is not None and int(m.group(2)) >= layers):
                del values[name]
    return values
