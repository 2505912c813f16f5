"""Dataset adapters: each turns a real on-disk format into uint8 arrays through the Dataset concept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.datasets.base import Availability, Dataset, DatasetError, DatasetUnavailable, ImageData

if TYPE_CHECKING:
    from bench.datasets.registry import dataset_names, load_data, open_dataset

__all__ = ["Availability", "Dataset", "DatasetError", "DatasetUnavailable", "ImageData",
           "dataset_names", "load_data", "open_dataset"]
# Imported on first use: the registry pulls in scikit-learn (over a second to import), which the decoding
# processes, importing bench.datasets.images and so this package, have no use for.
_REGISTRY = {"dataset_names", "load_data", "open_dataset"}


def __getattr__(name: str) -> Any:
    if name in _REGISTRY:
        from bench.datasets import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
