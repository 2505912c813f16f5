"""AutoGluon's compute in FLOPs, counted as every contender's is (docs/method.md, FLOPs): the examples its
training steps saw, counted batch by batch as Lightning trains (every micro-batch of an accumulated step), times
three forward passes of its model (bench.measure.torch_flops); one forward pass per test image predicted.

A single fit counts in the run's process. In a search each trial counts in its Ray worker and keeps its count
in a file of its own, rewritten after every batch, so that a trial Ray Tune stops (ASHA, or the search's end)
leaves what it trained; the run reads them back per trial. No AutoGluon, Lightning or torch import at the top:
the harness's environment has none, and its tests count with a fake.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure.flops import Flops, Spent, training_flops

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingCount:
    """Examples a training (or a search's trial) trained on, and one example's forward FLOPs through its model."""

    examples: int = 0
    forward: Flops | None = None  # None: not measured (no batch yet, or the count failed)
    model: str = ""  # the model's class name, named as uncounted where its forward was not measured

    def spent(self, predicted: int = 0) -> Spent:
        """Training's FLOPs (three forward passes an example) and those of predicting `predicted` examples; a
        model whose forward was not measured is named as uncounted, its figures 0 (lower bounds)."""
        if self.forward is None:
            trained_or_predicted = self.examples > 0 or predicted > 0
            return Spent(uncounted=(self.model or "model",)) if trained_or_predicted else Spent()
        return Spent(training_flops(self.forward.forward, self.examples), float(self.forward.forward * predicted),
                     self.forward.uncounted)

    def to_json(self) -> str:
        """The count as one JSON object."""
        forward = None if self.forward is None else {"forward": self.forward.forward,
                                                     "uncounted": list(self.forward.uncounted)}
        return json.dumps({"examples": self.examples, "forward": forward, "model": self.model})

    @classmethod
    def from_json(cls, text: str) -> TrainingCount:
        """The count `to_json` wrote."""
        data = json.loads(text)
        forward = data.get("forward")
        return cls(int(data["examples"]), None if forward is None else Flops(int(forward["forward"]),
                                                                              tuple(forward["uncounted"])),
                   str(data.get("model", "")))


class Tally:
    """A training's running count, kept in `path` after each batch where one is given (a search's trial)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.measured = False  # a forward pass was counted (or its count failed): once per training
        self.count = TrainingCount()
        if path is None:
            return
        with contextlib.suppress(OSError):  # trials start at once: each may be the first (a failure: see _save)
            path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():  # a trial Ray Tune restarts from its checkpoint goes on counting
            self.count = TrainingCount.from_json(path.read_text())
            self.measured = self.count.forward is not None

    def measure(self, model: Any, run: Callable[[], object], examples: int) -> None:
        """Counts one example's forward pass through `model` (a torch module): `run()` passes a batch of
        `examples` examples through it. A count that fails leaves the figures marked as lower bounds."""
        from bench.measure.torch_flops import forward_flops

        self.measured = True
        name = type(model).__name__
        try:
            forward: Flops | None = forward_flops(model, run, examples)
        except Exception as exc:  # noqa: BLE001 - a failed count must not fail the training it counts
            logger.warning("the forward pass of %s could not be counted (%s): its FLOPs are lower bounds", name, exc)
            forward = None
        self.count = TrainingCount(self.count.examples, forward, name)
        self._save()

    def add(self, examples: int) -> None:
        """Counts a trained batch of `examples` examples."""
        self.count = TrainingCount(self.count.examples + examples, self.count.forward, self.count.model)
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        # Replaced whole (no fsync: the page cache outlives a killed process), so a reader never sees half of it.
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(self.count.to_json())
            os.replace(temporary, self.path)
        except OSError as exc:  # the trial trains on; the run names it as not counted if it trained
            logger.warning("the count of %s could not be kept (%s)", self.path.stem, exc)


def read_counts(folder: Path) -> dict[str, TrainingCount]:
    """The trials' counts in `folder`, by trial id."""
    if not folder.is_dir():
        return {}
    return {path.stem: TrainingCount.from_json(path.read_text()) for path in sorted(folder.glob("*.json"))}


def trial_path(folder: str | Path, trial_id: str) -> Path:
    """Where the trial `trial_id` keeps its count."""
    return Path(folder) / f"{trial_id}.json"


def counting_callback(tally: Tally) -> Any:
    """A Lightning callback feeding `tally`: the forward pass counted on the first training batch, then every
    training batch's examples."""
    import lightning.pytorch as pl

    class CountExamples(pl.Callback):
        """Counts the examples each training batch holds, and one forward pass's FLOPs."""

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
            # Measured on a real batch, as the training step receives it, before the step (so before mixup, in
            # the format the model reads whatever AutoGluon's preprocessing made of it); the architecture does
            # not change while it trains, and the predicting model is built from its checkpoints.
            if not tally.measured:
                model = _model(module)
                tally.measure(model, lambda: _forward(model, batch), _examples(batch, model))

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            tally.add(_examples(batch, _model(module)))

    return CountExamples()


def _model(module: Any) -> Any:
    """The network inside AutoGluon's LightningModule."""
    return getattr(module, "model", module)


def _forward(model: Any, batch: Any) -> Any:
    """A forward pass as AutoGluon's training step makes it."""
    from autogluon.multimodal.models.utils import run_model

    return run_model(model, batch)


def _examples(batch: Any, model: Any) -> int:
    from bench.measure.torch_flops import batch_size

    return batch_size(batch, getattr(model, "label_key", None))


__all__ = ["Tally", "TrainingCount", "counting_callback", "read_counts", "trial_path"]
