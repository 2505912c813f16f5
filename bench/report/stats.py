"""Spread of a metric over seeds: mean, standard deviation and a 95% t-interval."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95  # level of the t-interval shown for accuracy
# Below this many seeds a t-interval is too wide to be useful (df=1 gives t=12.7); the std is shown instead.
MIN_SEEDS_FOR_INTERVAL = 3


@dataclass(frozen=True)
class Spread:
    """Mean and spread of values from n seeds; low/high bound the interval a reader should compare."""

    n: int
    mean: float | None
    std: float | None
    low: float | None
    high: float | None
    kind: str  # 'none' (n < 2), 'std' (mean +- 1 std, n == 2) or 'ci' (95% t-interval, n >= 3)

    def overlaps(self, other: Spread) -> bool:
        """Whether the two intervals share any value (both must have one)."""
        if self.low is None or self.high is None or other.low is None or other.high is None:
            raise ValueError("overlaps needs two spreads with intervals (n >= 2 each)")
        return self.low <= other.high and other.low <= self.high


def spread(values: Iterable[float]) -> Spread:
    """Summarises finite values: std for n >= 2, a 95% t-interval for n >= MIN_SEEDS_FOR_INTERVAL."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return Spread(0, None, None, None, None, "none")
    mean = sum(xs) / n
    if n == 1:
        return Spread(1, mean, None, None, None, "none")
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    if n < MIN_SEEDS_FOR_INTERVAL:
        return Spread(n, mean, std, mean - std, mean + std, "std")
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1)) * std / math.sqrt(n)
    return Spread(n, mean, std, mean - half, mean + half, "ci")


def mean_or_none(values: Iterable[float]) -> float | None:
    """Mean of the finite values, or None when there are none."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(xs) / len(xs) if xs else None
