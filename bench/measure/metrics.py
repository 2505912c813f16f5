"""Every metric, computed by the harness from a system's test-set probabilities, the same way for all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics

# Probabilities are clipped before log loss so that a confident wrong answer costs a finite amount.
PROBA_EPS = 1e-15


@dataclass(frozen=True)
class Scores:
    """The metrics that every run records."""

    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    log_loss: float


def score(y_true: np.ndarray, proba: np.ndarray) -> Scores:
    """Scores from true labels and (n, n_classes) probabilities; predictions are the argmax."""
    n_classes = proba.shape[1]
    y_pred = proba.argmax(axis=1)
    labels = np.arange(n_classes)
    clipped = np.clip(proba, PROBA_EPS, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return Scores(
        accuracy=float(metrics.accuracy_score(y_true, y_pred)),
        balanced_accuracy=float(metrics.balanced_accuracy_score(y_true, y_pred)),
        macro_f1=float(metrics.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        log_loss=float(metrics.log_loss(y_true, clipped, labels=labels)),
    )


def classification_report(y_true: np.ndarray, proba: np.ndarray, class_names: tuple[str, ...]) -> str:
    """scikit-learn's text report, as it prints it."""
    return metrics.classification_report(
        y_true, proba.argmax(axis=1), labels=np.arange(len(class_names)),
        target_names=list(class_names), digits=4, zero_division=0)
