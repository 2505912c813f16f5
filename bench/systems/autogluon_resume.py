"""`autogluon` after its process died: what the predictor folder an earlier attempt left lets this attempt do.

A run that can continue keeps MultiModalPredictor's folder in its resume folder (bench.core.resume), where
Lightning writes `last.ckpt` at each of AutoGluon's validation passes (twice an epoch by default): the weights,
the optimizer's and the LR schedule's state, the loop's position and the best checkpoints so far. The next
attempt continues its training from it (AutoGluon's own resume: the learner told to resume from last.ckpt, its
fit handing that to Lightning's Trainer.fit).

AutoGluon 1.6.3's MultiModalPredictor.load(path, resume=True) cannot be used for this: it reads the predictor's
assets.json and config.yaml, which AutoGluon writes only after the training loop ends, so the folder of a fit that
died mid-training has none. The continuing attempt makes the predictor as the first did and sets on its learner
what load(resume=True) sets.

Lightning's own time limit (fit's time_limit) counts the training seconds its checkpoint carries, so the
continuing attempt hands AutoGluon the time the budget has left plus those seconds (ResumePoint.time_limit).

No AutoGluon, Lightning or torch import here: the decisions are tested without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# In the run's checkpoint folder (or its scratch, when it cannot continue): MultiModalPredictor's own folder.
PREDICTOR_DIR = "autogluon"
# In the run's checkpoint folder: the training's count of examples (autogluon_flops.Tally), kept across attempts.
COUNT_FILE = "training-count.json"
# Lightning's checkpoint of the latest validation pass (AutoGluon's LAST_CHECKPOINT).
LAST_CHECKPOINT = "last.ckpt"
# Lightning's Timer callback's key in a checkpoint's callback states.
TIMER_STATE = "Timer"


@dataclass(frozen=True)
class ResumePoint:
    """Where this attempt's training starts: from `checkpoint`, or (None) from the beginning, with `why` saying
    why an earlier attempt's folder could not be continued ('' when there was nothing to continue)."""

    checkpoint: Path | None = None
    # Training seconds Lightning's Timer had counted at the checkpoint: it counts them again against time_limit.
    trained_s: float = 0.0
    step: int = 0  # optimizer steps done at the checkpoint
    epoch: int = 0  # Lightning's epoch index at the checkpoint (0: the first)
    why: str = ""

    def time_limit(self, limit: float | None) -> float | None:
        """fit's time_limit for `limit` seconds of training from here (None: no time limit)."""
        return None if limit is None else limit + self.trained_s

    def line(self) -> str:
        """One line for the run's log: continuing from where, or starting again and why ('' : nothing to say)."""
        if self.checkpoint is not None:
            return (f"autogluon: continuing its training from {LAST_CHECKPOINT} at step {self.step} (epoch "
                    f"{self.epoch + 1}), {self.trained_s:.0f} s of training in it")
        return f"autogluon: starting its training again: {self.why}" if self.why else ""


def resume_point(folder: Path, read: Callable[[Path], Mapping[str, Any]], earlier: int) -> ResumePoint:
    """What `folder` (the predictor folder earlier attempts left) lets this attempt continue from; `read` loads a
    Lightning checkpoint, `earlier` counts the earlier attempts (0: the run's first, nothing to continue)."""
    if earlier == 0:
        return ResumePoint()
    checkpoint = folder / LAST_CHECKPOINT
    if not checkpoint.is_file():
        return ResumePoint(why=f"the earlier attempt left no {LAST_CHECKPOINT} (it died before AutoGluon's first "
                               "validation pass saved one, or after its training loop ended)")
    try:
        state = read(checkpoint)
    except Exception as exc:  # noqa: BLE001 - a half-written or damaged file: any error means start again
        return ResumePoint(why=f"its {LAST_CHECKPOINT} could not be read ({_one_line(exc)})")
    try:
        step, epoch = int(state["global_step"]), int(state["epoch"])
        timer = state.get("callbacks", {}).get(TIMER_STATE, {})
        # No Timer state: the earlier fit had no time limit, and this one's Timer has nothing to count again.
        trained_s = float(timer.get("time_elapsed", {}).get("train", 0.0))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return ResumePoint(why=f"its {LAST_CHECKPOINT} holds no training state Lightning can continue "
                               f"({_one_line(exc)})")
    return ResumePoint(checkpoint, trained_s, step, epoch)


def checkpoint_text(step: int, epoch: int, max_epochs: int | None) -> str:
    """What a saved last.ckpt holds, for attempt.json's `carried` and the record's `resumed_from`."""
    of = f" of {max_epochs}" if max_epochs is not None and max_epochs > 0 else ""
    return f"step {step} (in epoch {epoch + 1}{of})"


def _one_line(exc: BaseException) -> str:
    """The error's name and its message's first sentence (torch's go on for lines of advice)."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    sentence = text[0].split(". ")[0]
    return f"{type(exc).__name__}: {sentence[:200]}"


__all__ = ["COUNT_FILE", "LAST_CHECKPOINT", "PREDICTOR_DIR", "ResumePoint", "checkpoint_text", "resume_point"]
