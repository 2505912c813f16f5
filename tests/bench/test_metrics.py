import numpy as np
import pytest

from bench.measure.metrics import classification_report, score


def test_scores_match_hand_computed_values():
    y = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1],
                      [0.1, 0.6, 0.3], [0.1, 0.1, 0.8], [0.5, 0.2, 0.3]])
    s = score(y, proba)
    assert s.accuracy == pytest.approx(4 / 6)
    # recalls: class 0 1/2, class 1 2/2, class 2 1/2
    assert s.balanced_accuracy == pytest.approx((0.5 + 1 + 0.5) / 3)
    # f1: class 0 p=1/2 r=1/2 -> .5; class 1 p=2/3 r=1 -> .8; class 2 p=1 r=1/2 -> 2/3
    assert s.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    expected_ll = -np.mean(np.log([0.8, 0.2, 0.8, 0.6, 0.8, 0.3]))  # p of the true class
    assert s.log_loss == pytest.approx(expected_ll)


def test_log_loss_is_finite_for_confident_mistakes_and_absent_classes():
    y = np.array([0, 0])
    proba = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    s = score(y, proba)
    assert np.isfinite(s.log_loss) and s.log_loss > 10


def test_classification_report_names_every_class():
    text = classification_report(np.array([0, 1]), np.array([[0.9, 0.1, 0], [0.2, 0.8, 0]]), ("cat", "dog", "emu"))
    assert all(name in text for name in ("cat", "dog", "emu", "macro avg"))
