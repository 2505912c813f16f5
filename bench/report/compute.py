"""Compute that travels between machines: which measure a group's ratios are taken in, and ratios of training FLOPs.

Seconds are what a user pays, but they compare only between runs on one kind of hardware. Where a group's ok runs
come from several kinds, every ratio is of training FLOPs (bench/measure/flops.py) or, where some run has no count, not
taken at all: a ratio of seconds from different machines would be a wrong figure, not a rough one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.report import formatting as fmt

TIME = "time"
FLOPS = "flops"
MEASURES = (TIME, FLOPS)

# What a FLOP ratio is, said where one stands: (numerator partial, denominator partial) -> its bound.
EXACT, AT_LEAST, AT_MOST = "", "at least", "at most"


def hardware_kind(hardware: object, device: object, gpu_model: object) -> str:
    """One run's kind of hardware: the machine it ran on and the device it computed on ('' where the machine
    was not recorded: such a run cannot tell one kind from another)."""
    machine = hardware if isinstance(hardware, str) else ""
    if not machine:
        return ""
    dev = device if isinstance(device, str) and device else "cpu"
    model = gpu_model if isinstance(gpu_model, str) and gpu_model else dev
    return machine if dev == "cpu" else f"{machine} (on {model})"


def hardware_kinds(runs: pd.DataFrame) -> tuple[str, ...]:
    """The kinds of hardware the ok runs came from, sorted (runs without a recorded machine left out)."""
    ok = runs[runs["status"] == "ok"]
    gpu = ok["gpu_model"] if "gpu_model" in ok else pd.Series([""] * len(ok), index=ok.index)
    kinds = {hardware_kind(h, d, g) for h, d, g in zip(ok["hardware"], ok["device"], gpu, strict=True)}
    return tuple(sorted(k for k in kinds if k))


@dataclass(frozen=True)
class Flops:
    """A configuration's mean training FLOPs per run: the figure where every ok run counted them (None else),
    whether some count left layers out (then a lower bound), and how many ok runs had no count."""

    value: float | None
    partial: bool = False
    missing: int = 0  # ok runs without a count (made before the counter)
    runs: int = 0  # ok runs

    @property
    def text(self) -> str:
        """'350 TFLOP', '>= 350 TFLOP', 'not counted' or 'not counted in 1 of 3 runs'."""
        if self.missing and self.missing < self.runs:
            return f"not counted in {self.missing} of {self.runs} runs"
        return fmt.flops(self.value, self.partial)


@dataclass(frozen=True)
class FlopsRatio:
    """A ratio of training FLOPs, with its bound where a count was partial, or why none was taken."""

    value: float | None
    bound: str = EXACT  # EXACT, AT_LEAST or AT_MOST
    why: str = ""  # why there is no value

    @property
    def words(self) -> str:
        """'2.4x', 'at least 2.4x', or why there is none: for sentences and table cells."""
        if self.value is None:
            return self.why
        return f"{self.bound} {fmt.ratio_words(self.value)}".strip()


def flops_ratio(a: Flops, b: Flops) -> FlopsRatio:
    """a's training FLOPs over b's; a lower bound where a's count was partial, an upper one where b's was."""
    if a.value is None or b.value is None:
        return FlopsRatio(None, why="training FLOPs not counted")
    if not b.value:
        return FlopsRatio(None, why="no training FLOPs to compare with")
    if a.partial and b.partial:
        return FlopsRatio(None, why="training FLOP counts partial on both sides")
    return FlopsRatio(a.value / b.value, AT_LEAST if a.partial else AT_MOST if b.partial else EXACT)


def mixed_sentence(kinds: tuple[str, ...], missing: int, ok: int) -> str:
    """The one plain sentence a group on several kinds of hardware gets: its ratios are in FLOPs, or cannot be
    taken and why ('' on one kind)."""
    if len(kinds) < 2:
        return ""
    said = f"These runs came from {len(kinds)} kinds of hardware ({'; '.join(kinds)}), and seconds on different " \
           "machines do not compare"
    if missing:
        return (f"{said}; training FLOPs would, but {missing} of {fmt.plural(ok, 'ok run')} have no FLOP count "
                "(made before the counter), so no compute ratio can be taken here: seconds from different "
                "machines are not mixed instead.")
    return f"{said}: every compute ratio here is of training FLOPs, not of seconds."
