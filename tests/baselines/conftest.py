"""Tiny synthetic image sets of the real shapes, shared by the baseline tests."""

from __future__ import annotations

import numpy as np
import pytest


def synthetic_images(n: int, shape: tuple[int, int, int], n_classes: int, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose mean brightness encodes the class (learnable), labels balanced."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    base = (y * (200 // max(n_classes - 1, 1)))[:, None, None, None]
    x = np.clip(base + rng.integers(0, 40, size=(n, *shape)), 0, 255).astype(np.uint8)
    return x, y.astype(np.int64)


@pytest.fixture
def digits_like() -> tuple[np.ndarray, np.ndarray]:
    """120 8x8x1 images of 3 classes."""
    return synthetic_images(120, (8, 8, 1), 3)
