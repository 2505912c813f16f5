"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, 10 classes, no download needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from bench.datasets.base import Availability, Dataset, ImageData
from bench.datasets.checks import check_fraction, check_seed
from bench.datasets.fingerprint import fingerprint, provenance


@dataclass(frozen=True)
class Digits(Dataset):
    """The embedded default: always available, a seeded stratified train/test split."""

    name: ClassVar[str] = "digits"
    description: ClassVar[str] = "scikit-learn's 1,797 handwritten 8x8 digits (bundled, offline)"

    test_fraction: float = 0.25  # share of images held out for testing, stratified by class
    split_seed: int = 0  # fixed so every run sees the same test set; results stay paired

    def __post_init__(self) -> None:
        check_fraction(self.name, self.test_fraction)
        check_seed(self.name, self.split_seed)

    def availability(self) -> Availability:
        """Bundled with scikit-learn, so always available."""
        return Availability(ok=True)

    def load(self) -> ImageData:
        """Scales the 0..16 pixel values to 0..255 uint8, shape (N, 8, 8, 1)."""
        bunch = load_digits()
        x = np.rint(bunch.images * (255 / 16)).clip(0, 255).astype(np.uint8)[..., None]
        y = bunch.target.astype(np.int64)
        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=self.test_fraction, stratify=y, random_state=self.split_seed)
        data = ImageData(
            x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
            class_names=tuple(str(c) for c in bunch.target_names),
            split=f"stratified-{round(self.test_fraction * 100)}%",
            info={"source": "sklearn.datasets.load_digits"},
        )
        # The 17 grey levels map one-to-one onto 0..255, so the pixels are the originals.
        return data.replace(info={**data.info, **provenance(fingerprint(data), "sklearn bundled", "canonical")})
