"""The Dataset concept: a named image set that says whether it is available and loads as uint8 arrays."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from bench.core.options import ConfigError


class DatasetError(Exception):
    """A data set that cannot be used as given; the message names the problem and the fix."""


class OptionError(DatasetError, ConfigError):
    """A data set option out of range, raised when the adapter is built; a ConfigError too, so suites and the
    CLI reject it before any run starts. The message names the option, its value and what is allowed."""


class DatasetUnavailable(DatasetError):
    """The data is not on this machine (and cannot be fetched); the message says how to provide it."""


@dataclass(frozen=True)
class Availability:
    """Whether a data set can be loaded here, and if not, why and how to get it."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True, eq=False)
class ImageData:
    """A loaded data set: uint8 images (N, H, W, C), int64 labels, class names, and how it was made."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    # The split protocol every result must name ('official', 'cell', 'patient', ...).
    split: str = "official"
    # Free-form facts for the run metadata: source path, skipped files, cache hit, ...
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("x_train", "x_test"):
            x = getattr(self, name)
            if x.dtype != np.uint8 or x.ndim != 4:
                raise DatasetError(f"{name} must be uint8 (N, H, W, C), got {x.dtype} {x.shape}")
        for name in ("y_train", "y_test"):
            y = getattr(self, name)
            if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
                raise DatasetError(f"{name} must be a 1-D integer array, got {y.dtype} {y.shape}")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise DatasetError("images and labels differ in length")
        if len(self.class_names) < 2:
            raise DatasetError(f"need at least two classes, got {list(self.class_names)}")
        if len(self.x_train) == 0 or len(self.x_test) == 0:
            raise DatasetError("the training or the test set is empty")
        for name in ("y_train", "y_test"):
            y = getattr(self, name)
            if y.min() < 0 or y.max() >= len(self.class_names):
                raise DatasetError(f"{name} holds labels outside 0..{len(self.class_names) - 1}")

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image, (H, W, C)."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def replace(self, **changes: Any) -> ImageData:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


class Dataset(ABC):
    """A named image classification data set; options are constructor keywords, unknown ones rejected."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def availability(self) -> Availability:
        """Cheap check (no decoding) of whether load() can succeed here."""

    @abstractmethod
    def load(self) -> ImageData:
        """Reads (or fetches) the data and returns it split into train and test."""
