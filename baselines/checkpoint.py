"""A recipe's training saved after each epoch, so a run whose process died continues from its last epoch.

What is saved is what the next step depends on: the model's weights (batch-norm statistics included), every
optimizer variable (its step count, so the LR schedule resumes where it was, and its momenta), Lookahead's slow
weights, and the loop's own state (steps done, the schedule's span, the history so far). The batches need
nothing: batch i of epoch e depends only on (seed, e, i). Plain arrays in one .npz and a JSON file, written
atomically, so any Keras backend reads what another wrote.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

ARRAYS = "epoch.npz"
STATE = "epoch.json"


@dataclass(frozen=True)
class Saved:
    """The loop's state after an epoch."""

    done: int  # training steps done
    total_steps: int  # the schedule's span when it was saved
    fit_s: float  # training seconds so far (history.csv's fit_s)
    rows: list[dict[str, float]]  # history.csv's rows so far
    trace_s: float = 0.0  # Plan.trace_s
    step_seconds: tuple[float, ...] = ()  # Pace's measured step times


def _numpy(variable: Any) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable))


def save(folder: Path, model: Any, saved: Saved, slow: list[np.ndarray] | None) -> None:
    """Writes the epoch's checkpoint into folder, replacing the last one whole."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    arrays |= {f"o{i}": _numpy(v) for i, v in enumerate(model.optimizer.variables)}
    arrays |= {f"s{i}": np.asarray(w) for i, w in enumerate(slow or [])}
    tmp = folder / (ARRAYS + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, folder / ARRAYS)
    state = {"done": saved.done, "total_steps": saved.total_steps, "fit_s": saved.fit_s, "rows": saved.rows,
             "trace_s": saved.trace_s, "step_seconds": list(saved.step_seconds)}
    tmp = folder / (STATE + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, folder / STATE)  # last: the pair is complete once the state names its steps


def restore(folder: Path, model: Any) -> tuple[Saved, list[np.ndarray]] | None:
    """Loads the last checkpoint into model (compiled, optimizer built); its state and Lookahead's slow weights.
    None when there is none, or it does not fit this model (then the model is left as it was)."""
    try:
        state = json.loads((folder / STATE).read_text())
        with np.load(folder / ARRAYS) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError):
        return None
    weights = [arrays[f"w{i}"] for i in range(sum(k.startswith("w") for k in arrays))]
    opt = [arrays[f"o{i}"] for i in range(sum(k.startswith("o") for k in arrays))]
    slow = [arrays[f"s{i}"] for i in range(sum(k.startswith("s") for k in arrays))]
    current = model.get_weights()
    variables = list(model.optimizer.variables)
    if (len(weights) != len(current) or any(a.shape != b.shape for a, b in zip(weights, current, strict=True))
            or len(opt) != len(variables) or any(a.shape != tuple(v.shape) for a, v in zip(opt, variables,
                                                                                             strict=True))):
        logger.warning("checkpoint in %s does not fit this model: training starts again", folder)
        return None
    model.set_weights(weights)
    for variable, value in zip(variables, opt, strict=True):
        variable.assign(value)
    saved = Saved(done=int(state["done"]), total_steps=int(state["total_steps"]), fit_s=float(state["fit_s"]),
                  rows=list(state["rows"]), trace_s=float(state.get("trace_s", 0.0)),
                  step_seconds=tuple(state.get("step_seconds", ())))
    return saved, slow
