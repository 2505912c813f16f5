"""Spread over seeds: std for two, a 95% t-interval from three."""

import math

import pytest

from bench.report.stats import Spread, spread


def test_three_seeds_give_a_95_percent_t_interval():
    s = spread([0.960, 0.961, 0.962])
    half = 4.302652729911275 * 0.001 / math.sqrt(3)  # t(0.975, df=2) from tables
    assert s.kind == "ci" and s.n == 3
    assert s.mean == pytest.approx(0.961)
    assert s.std == pytest.approx(0.001)
    assert (s.low, s.high) == pytest.approx((0.961 - half, 0.961 + half))


def test_two_seeds_give_mean_plus_minus_std_and_one_seed_no_interval():
    two = spread([0.90, 0.92])
    assert two.kind == "std" and (two.low, two.high) == pytest.approx((0.91 - 0.0141421, 0.91 + 0.0141421))
    one = spread([0.5, float("nan")])
    assert one == Spread(1, 0.5, None, None, None, "none")
    assert spread([]).mean is None


def test_overlap_needs_intervals():
    a, b = spread([0.90, 0.92]), spread([0.91, 0.93])
    assert a.overlaps(b) and b.overlaps(a)
    assert not spread([0.1, 0.11]).overlaps(spread([0.5, 0.51]))
    with pytest.raises(ValueError, match="n >= 2"):
        spread([0.9]).overlaps(a)
