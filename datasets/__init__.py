"""Dataset adapters: each turns a real on-disk format into uint8 arrays through the Dataset concept."""

from bench.datasets.base import Availability, Dataset, DatasetError, DatasetUnavailable, ImageData
from bench.datasets.registry import dataset_names, load_data, open_dataset

__all__ = ["Availability", "Dataset", "DatasetError", "DatasetUnavailable", "ImageData",
           "dataset_names", "load_data", "open_dataset"]
