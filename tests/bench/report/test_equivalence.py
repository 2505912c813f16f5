"""The difference's interval over seeds and test images, and the equivalence verdict, on constructed results whose
answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bench.report import equivalence as eqv


def sample(correct: np.ndarray, seeds: tuple[int, ...] | None = None, key: str = "test") -> eqv.Sample:
    """A configuration's results from its (seeds x images) correctness."""
    correct = np.asarray(correct, dtype=float)
    seeds = tuple(range(len(correct))) if seeds is None else seeds
    return eqv.Sample(seeds, correct.mean(axis=1), correct, key)


def without_predictions(s: eqv.Sample) -> eqv.Sample:
    return eqv.Sample(s.seeds, s.accuracy)


def flips(n: int, right: float, moved: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two systems' correctness on n images: the first right on a fraction `right`; the second the same but for
    a fraction `moved` of the images, half of them turned wrong, half turned right (equal accuracies)."""
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < right).astype(float)
    half = int(moved * n) // 2
    b = a.copy()
    b[rng.choice(np.flatnonzero(a == 1), half, replace=False)] = 0.0
    b[rng.choice(np.flatnonzero(a == 0), half, replace=False)] = 1.0
    return a, b


def test_the_test_set_size_decides_between_undetermined_and_equivalent():
    """Two systems level on average that disagree on 2% of the images: 800 images cannot show them within half a
    point; 20,000 can. Three seeds with the same predictions: all the variance is the test images'."""
    verdicts = {}
    for n in (800, 20_000):
        a, b = flips(n, right=0.97, moved=0.02)
        d = eqv.difference(sample([a] * 3), sample([b] * 3))
        assert d.source == eqv.SEEDS_AND_IMAGES and d.images == n and d.paired
        assert d.point == 0.0
        verdicts[n] = d.verdict(0.005)
    assert verdicts == {800: eqv.UNDETERMINED, 20_000: eqv.EQUIVALENT}


def test_a_wide_interval_whose_mean_is_within_tolerance_is_undetermined_a_far_one_worse():
    base = np.zeros((3, 1000))
    base[:, :970] = 1  # 97.0% on every seed
    wide = np.zeros((3, 1000))
    for s, right in enumerate((940, 970, 1000)):  # 94%, 97%, 100%: the mean level with the baseline
        wide[s, :right] = 1
    d = eqv.difference(sample(wide), sample(base))
    assert d.point == pytest.approx(0.0) and d.verdict(0.005) == eqv.UNDETERMINED
    far = np.zeros((3, 1000))
    for s, right in enumerate((910, 920, 930)):
        far[s, :right] = 1
    d = eqv.difference(sample(far), sample(base))
    assert d.point == pytest.approx(-0.05) and d.verdict(0.005) == eqv.WORSE and d.high < -0.005
    assert eqv.difference(sample(base), sample(far)).verdict(0.005) == eqv.BETTER


def test_seeds_only_without_predictions_is_the_paired_t_interval():
    rng = np.random.default_rng(1)
    a = sample(rng.random((3, 500)) < 0.9)
    b = sample(rng.random((3, 500)) < 0.9)
    d = eqv.difference(without_predictions(a), without_predictions(b))
    diffs = a.accuracy - b.accuracy
    half = stats.t.ppf(0.95, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert d.source == eqv.SEEDS_ONLY and d.images == 0
    assert (d.low, d.high) == pytest.approx((diffs.mean() - half, diffs.mean() + half))
    # With predictions, the test images' variance widens it.
    assert eqv.difference(a, b).half_width > d.half_width
    # Test sets that differ cannot be paired by image.
    assert eqv.difference(a, sample(b.correct, key="other")).source == eqv.SEEDS_ONLY


def test_seeds_that_do_not_pair_are_compared_unpaired_and_one_seed_has_no_interval():
    rng = np.random.default_rng(2)
    a = sample(rng.random((3, 400)) < 0.9, seeds=(0, 1, 2))
    b = sample(rng.random((3, 400)) < 0.9, seeds=(10, 11, 12))
    d = eqv.difference(a, b)
    assert not d.paired and d.source == eqv.SEEDS_AND_IMAGES and len(d.parts) == 3
    one = eqv.difference(sample(a.correct[:1]), sample(b.correct[:1]))
    assert one.source == eqv.NO_INTERVAL and one.low is None and one.verdict(1.0) == eqv.UNDETERMINED


def test_the_closed_form_is_the_two_way_bootstrap_variance_less_one_interaction_term():
    """Resampling seeds and images independently, the same images for both systems (the pigeonhole bootstrap),
    gives the closed form's variance plus the seed-by-image interaction over kn once more (Owen 2007): the closed
    form is the less conservative of the two, and both count that term at least once."""
    rng = np.random.default_rng(3)
    k, n, reps = 12, 300, 4000
    seed_effect = rng.normal(0, 0.05, size=(k, 1))
    image_effect = rng.normal(0, 1.0, size=(1, n))
    a = (rng.random((k, n)) < 1 / (1 + np.exp(-(1.5 + image_effect + seed_effect)))).astype(float)
    b = (rng.random((k, n)) < 1 / (1 + np.exp(-(1.4 + image_effect)))).astype(float)
    diff = a - b
    rows = rng.integers(0, k, size=(reps, k))
    cols = rng.integers(0, n, size=(reps, n))
    boot = np.array([diff[r][:, c].mean() for r, c in zip(rows, cols, strict=True)])
    residual = diff - diff.mean(axis=1, keepdims=True) - diff.mean(axis=0, keepdims=True) + diff.mean()
    interaction = (residual**2).sum() / ((k - 1) * (n - 1)) / (k * n)
    d = eqv.difference(sample(a), sample(b))
    closed = sum(c.variance for c in d.parts)
    assert closed < boot.var()
    assert boot.var() == pytest.approx(closed + interaction, rel=0.1)


def test_the_design_needed_shrinks_the_interval_to_the_tolerance():
    a, b = flips(800, right=0.97, moved=0.02)
    d = eqv.difference(sample([a] * 3), sample([b] * 3))
    seeds, images = d.needed(0.005, seeds=False, images=True)
    assert seeds == 3 and images > 800
    # About (half-width / tolerance)^2 times the images, the seed term being 0 here.
    assert images == pytest.approx(800 * (d.half_width / 0.005) ** 2, rel=0.02)
    assert d.needed(0.005, seeds=True, images=False) is None  # no seed variance to cut


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(2, 5),
    n=st.integers(5, 60),
    p=st.floats(0.05, 0.95),
    q=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**31 - 1),
    tolerances=st.lists(st.floats(0.0, 0.5), min_size=2, max_size=5),
    paired=st.booleans(),
)
def test_the_interval_holds_the_point_and_the_verdict_is_monotone_in_the_tolerance(k, n, p, q, seed, tolerances,
                                                                                   paired):
    rng = np.random.default_rng(seed)
    a = sample(rng.random((k, n)) < p)
    b = sample(rng.random((k, n)) < q, seeds=None if paired else tuple(range(100, 100 + k)))
    d = eqv.difference(a, b)
    assert d.low <= d.point <= d.high
    seen = [d.verdict(t) for t in sorted(tolerances)]
    # A wider tolerance never takes equivalence away, and never makes a difference worse or better.
    equivalent_from = [v == eqv.EQUIVALENT for v in seen]
    assert equivalent_from == sorted(equivalent_from)
    decided = [v in (eqv.WORSE, eqv.BETTER) for v in seen]
    assert decided == sorted(decided, reverse=True)
