"""Stratified, seeded subsets, so CPU runs can use a slice with every class kept in proportion."""

from __future__ import annotations

import numpy as np

from bench.datasets.base import ImageData
from bench.datasets.cache import take
from bench.datasets.fingerprint import fingerprint

# Subsets are drawn with a fixed seed, not the run's: every system and seed then sees the same
# images, so differences between runs come from training, not from the sample.
SUBSET_SEED = 0


def stratified_indices(y: np.ndarray, n: int, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted indices of a stratified sample of n labels (all of them when n >= len(y))."""
    if n >= len(y):
        return np.arange(len(y))
    # Imported here: scikit-learn's import takes about a second, and most loads never cut a subset.
    from sklearn.model_selection import train_test_split

    n_classes = len(np.unique(y))
    if n < n_classes:
        raise ValueError(f"a subset of {n} cannot hold all {n_classes} classes; ask for at least {n_classes}")
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return np.sort(idx)


def subset(data: ImageData, max_train: int | None, max_test: int | None) -> ImageData:
    """The data with train and test cut to at most max_train / max_test images, stratified.

    A subset is other data: its info gets the fingerprint of the arrays kept, the full set's as fingerprint_full.
    Only the rows kept are copied (from a cache entry, read from its files), never the whole set.
    """
    changes = {}
    if max_train is not None and max_train < len(data.y_train):
        i = stratified_indices(data.y_train, max_train)
        changes.update(x_train=take(data.x_train, i), y_train=data.y_train[i])
    if max_test is not None and max_test < len(data.y_test):
        i = stratified_indices(data.y_test, max_test)
        changes.update(x_test=take(data.x_test, i), y_test=data.y_test[i])
    if not changes:
        return data
    cut = data.replace(**changes)
    info = {**data.info, "fingerprint": fingerprint(cut)}
    if "fingerprint" in data.info:
        info["fingerprint_full"] = data.info["fingerprint"]
    return cut.replace(info=info)
