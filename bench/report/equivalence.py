"""The accuracy difference between two configurations on one test set, its 90% interval over both sources of
variance (the training seeds and the test images), and the equivalence verdict at a tolerance.

Design. A configuration ran k seeds. Where its runs kept predictions.csv, each seed's correctness on each of
the n test images is known: a k x n matrix of 0 and 1 (fractions for a point interpolated between budgets).
Seeds and images are crossed: every seed is scored on the same images, in the same order. The difference
D = accuracy(A) - accuracy(B) moves with the seeds trained (training randomness) and with the images drawn (the
test set is one sample of the images the task has). Its variance is estimated as the sum of

- a seed component: the variance of the per-seed differences over k, where 2 or more seeds ran both
  configurations (paired: what a seed does to both, its validation split, say, cancels); otherwise the
  variance of each configuration's per-seed accuracies over its k, added;
- an image component: the variance over the n images of the per-image difference (each configuration's
  correctness averaged over its seeds) over n: the same images for both, so what makes an image easy or hard
  for both cancels.

These are (up to a factor (k-1)/k) the variances a bootstrap over the seeds alone and one over the images alone
would give, added. Under the crossed random-effects model (seed, image and seed-by-image terms) the sum counts
the interaction's variance over kn twice where the truth counts it once, so it is conservative by that term;
the two-way ("pigeonhole") bootstrap, resampling seeds and images independently and the same images for both
configurations, counts it three times (McCullagh 2000, "Resampling and exchangeable arrays", Bernoulli 6:
285-301; Owen 2007, "The pigeonhole bootstrap", Ann. Appl. Stat. 1: 386-411). The closed form needs no random
numbers, so a report is the same on every run. The interval is D +- t x se with Welch-Satterthwaite degrees of
freedom: with 3 seeds a seed-dominated interval takes t with about 2 degrees of freedom (2.92 at 90%), where a
percentile bootstrap over 3 seeds would be less than half as wide. Bouthillier et al. 2021 ("Accounting for
variance in machine learning benchmarks", MLSys) measure both sources and find either can dominate.

Without predictions (an older results folder, or test sets that differ), the image component is unknown and
the interval is over the seeds alone: `source` says so. With fewer than 2 seeds there is no interval.

Equivalence is two one-sided tests at the tolerance (Schuirmann 1987): the 90% interval inside
(-tolerance, +tolerance) shows equivalence at the 5% level; an interval entirely below -tolerance shows the
first configuration worse, entirely above +tolerance better. An interval above -tolerance that reaches past
+tolerance passes the lower test alone: not worse (non-inferior at the tolerance), equivalent or better.
Anything else, an interval reaching below -tolerance and above it, is undetermined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.90  # the two one-sided tests at 5% each are the 90% interval inside the tolerance
# Accuracy (a fraction) within which two configurations count as level: half a point, about what a reseeded
# run of the baseline moves on the malaria and CIFAR-10 subsets.
DEFAULT_TOLERANCE = 0.005
MIN_SEEDS = 2  # a seed component needs a variance
MIN_IMAGES = 2  # and so does an image component
_EPS = 1e-12  # float slack where an interval end sits exactly on the tolerance

SEEDS_AND_IMAGES = "seeds and test images"
SEEDS_ONLY = "seeds only"
NO_INTERVAL = "none"

EQUIVALENT, BETTER, NOT_WORSE, WORSE, UNDETERMINED = "equivalent", "better", "not worse", "worse", "undetermined"


@dataclass(frozen=True, eq=False)
class Sample:
    """One configuration's test results: each seed's accuracy and, where predictions were kept, its
    correctness on each test image (rows in the seeds' order)."""

    seeds: tuple[int, ...]
    accuracy: np.ndarray  # (k,)
    correct: np.ndarray | None = None  # (k, n) in [0, 1]; None without predictions
    test_key: str = ""  # names the test set and its order: two samples pair by image only when equal

    def rows(self, seeds: tuple[int, ...]) -> Sample:
        """The same results restricted to these seeds, in this order."""
        at = {s: i for i, s in enumerate(self.seeds)}
        idx = [at[s] for s in seeds]
        return Sample(seeds, self.accuracy[idx], None if self.correct is None else self.correct[idx],
                      self.test_key)


def blend(lo: Sample, hi: Sample, w: float) -> Sample | None:
    """(1 - w) lo + w hi seed by seed (and image by image where both kept predictions of one test set): a point
    between two budgets. None where the two share fewer than MIN_SEEDS seeds."""
    common = tuple(s for s in lo.seeds if s in set(hi.seeds))
    if len(common) < MIN_SEEDS:
        return None
    a, b = lo.rows(common), hi.rows(common)
    pairable = a.correct is not None and b.correct is not None and a.test_key == b.test_key
    correct = (1 - w) * a.correct + w * b.correct if pairable else None
    return Sample(common, (1 - w) * a.accuracy + w * b.accuracy, correct, a.test_key if pairable else "")


SEED, IMAGE = "seed", "image"  # the two levels a variance component comes from


@dataclass(frozen=True)
class Component:
    """One term of the point's variance: the level it comes from, its value, and the count it was estimated
    over (its degrees of freedom are count - 1)."""

    level: str  # SEED or IMAGE
    variance: float
    count: int

    def scaled(self, seeds: float, images: float) -> Component:
        """The term with seeds and images multiplied by these factors: variance over, count times."""
        factor = seeds if self.level == SEED else images
        return Component(self.level, self.variance / factor, max(2, round(self.count * factor)))


def _satterthwaite(parts: tuple[Component, ...]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance estimates (inf where the sum is 0)."""
    total = sum(c.variance for c in parts)
    denominator = sum(c.variance**2 / (c.count - 1) for c in parts if c.variance > 0)
    return math.inf if denominator == 0 else total * total / denominator


def _half_width(parts: tuple[Component, ...]) -> float:
    """The 90% interval's half-width: t (Welch-Satterthwaite df) x the standard error."""
    t = float(stats.t.ppf(0.5 + LEVEL / 2, _satterthwaite(parts)))
    return t * math.sqrt(sum(c.variance for c in parts))


MAX_FACTOR = 1e6  # a design scaled further than this is reported as out of reach
# A difference this close to -tolerance (a fraction) is on it: no finite design decides it.
MIN_DECIDABLE = 1e-4


def _factor_needed(parts: tuple[Component, ...], tolerance: float, seeds: bool, images: bool) -> float | None:
    """The smallest factor on the seeds, the images or both (as flagged) that brings the half-width to the
    tolerance, by bisection (the half-width falls as either grows); None beyond MAX_FACTOR."""

    def width(f: float) -> float:
        return _half_width(tuple(c.scaled(f if seeds else 1.0, f if images else 1.0) for c in parts))

    if width(1.0) <= tolerance:
        return 1.0
    if width(MAX_FACTOR) > tolerance:
        return None
    lo, hi = 1.0, MAX_FACTOR
    while hi / lo > 1.001:
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if width(mid) <= tolerance else (mid, hi)
    return hi


@dataclass(frozen=True)
class Difference:
    """Accuracy of one configuration minus another's (fractions), with its 90% interval and where it comes from."""

    point: float
    source: str  # SEEDS_AND_IMAGES, SEEDS_ONLY or NO_INTERVAL
    seeds: int  # seeds paired, else the fewer of the two configurations'
    paired: bool  # the seed component is over per-seed differences
    images: int = 0  # test images in the image component (0: none)
    parts: tuple[Component, ...] = ()  # the point's variance, term by term

    @property
    def half_width(self) -> float | None:
        """Half the 90% interval's width: the smallest tolerance this design could show equivalence at."""
        return None if self.source == NO_INTERVAL else _half_width(self.parts)

    @property
    def low(self) -> float | None:
        """The 90% interval's lower end."""
        return None if self.half_width is None else self.point - self.half_width

    @property
    def high(self) -> float | None:
        """The 90% interval's upper end."""
        return None if self.half_width is None else self.point + self.half_width

    def verdict(self, tolerance: float) -> str:
        """EQUIVALENT, BETTER, NOT_WORSE, WORSE or UNDETERMINED at the tolerance (see the module's docstring)."""
        if self.low is None:
            return UNDETERMINED
        if self.high < -tolerance - _EPS:
            return WORSE
        if self.low > tolerance + _EPS:
            return BETTER
        if self.low > -tolerance - _EPS:
            return EQUIVALENT if self.high < tolerance + _EPS else NOT_WORSE
        return UNDETERMINED

    def deciding_half_width(self, tolerance: float) -> float:
        """The half-width that would decide an undetermined verdict were the difference to stay where it is: its
        distance from -tolerance, the bound such an interval straddles (the tolerance itself at a difference of 0)."""
        return abs(self.point + tolerance)

    def needed_to_decide(self, tolerance: float, seeds: bool, images: bool) -> tuple[int, int] | None:
        """`needed` at deciding_half_width: the design that would decide an undetermined verdict (None also where
        the difference lies on -tolerance itself, which no design decides)."""
        target = self.deciding_half_width(tolerance)
        return None if target < MIN_DECIDABLE else self.needed(target, seeds, images)

    def needed(self, tolerance: float, seeds: bool, images: bool) -> tuple[int, int] | None:
        """(seeds, test images) that would bring the half-width to `tolerance`, scaling the seeds, the images
        or both (as flagged) from this design: each term of the variance falls as 1/count, at the spread per
        seed and per image measured here, and t follows the degrees of freedom. None where the flagged ones
        cannot (the other term alone is wider, or no image term was measured for images)."""
        if self.source == NO_INTERVAL or (images and self.source != SEEDS_AND_IMAGES):
            return None
        f = _factor_needed(self.parts, tolerance, seeds, images)
        if f is None:
            return None
        return (math.ceil(self.seeds * f) if seeds else self.seeds, math.ceil(self.images * f) if images else
                self.images)


def _component(level: str, values: np.ndarray) -> Component:
    """The variance of the mean of these values, as a term of the point's variance."""
    return Component(level, float(np.var(values, ddof=1)) / len(values), len(values))


def difference(a: Sample, b: Sample) -> Difference:
    """Accuracy of a minus b, paired by seed where 2 or more seeds ran both and by test image where both kept
    predictions of one test set."""
    common = tuple(s for s in a.seeds if s in set(b.seeds))
    paired = len(common) >= MIN_SEEDS
    if paired:
        a, b = a.rows(common), b.rows(common)
    by_image = (a.correct is not None and b.correct is not None and a.test_key == b.test_key != ""
                and a.correct.shape[1] >= MIN_IMAGES)
    acc_a = a.correct.mean(axis=1) if by_image else a.accuracy
    acc_b = b.correct.mean(axis=1) if by_image else b.accuracy
    point = float(acc_a.mean() - acc_b.mean())
    seeds = len(common) if paired else min(len(a.seeds), len(b.seeds))
    if seeds < MIN_SEEDS:
        return Difference(point, NO_INTERVAL, seeds, paired)
    parts = [_component(SEED, acc_a - acc_b)] if paired else [_component(SEED, acc_a), _component(SEED, acc_b)]
    if by_image:
        parts.append(_component(IMAGE, a.correct.mean(axis=0) - b.correct.mean(axis=0)))
    return Difference(point, SEEDS_AND_IMAGES if by_image else SEEDS_ONLY, seeds, paired,
                      images=a.correct.shape[1] if by_image else 0, parts=tuple(parts))
