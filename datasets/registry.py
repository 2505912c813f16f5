"""Dataset names to adapters; opening one validates its options, loading applies the subset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.core.options import find_class, make_options
from bench.datasets.base import Dataset, ImageData
from bench.datasets.fingerprint import ensure
from bench.datasets.subset import subset

# name -> "module:Class"; imported on use so listing names stays cheap.
DATASETS: dict[str, str] = {
    "digits": "bench.datasets.digits:Digits",
    "cifar10": "bench.datasets.cifar10:Cifar10",
    "malaria": "bench.datasets.malaria:Malaria",
    "folder": "bench.datasets.folder:ImageFolder",
}
FOLDER_PREFIX = "folder:"  # 'folder:PATH' is the folder adapter with path=PATH


def dataset_names() -> list[str]:
    """Registered names whose adapter module exists."""
    return [n for n in DATASETS if _find_class(n) is not None]


def _find_class(name: str) -> type[Dataset] | None:
    return find_class(DATASETS[name])


def open_dataset(name: str, options: Mapping[str, Any] | None = None) -> Dataset:
    """The adapter for `name` ('digits', 'cifar10', 'malaria', 'folder:PATH') with its options checked."""
    opts = dict(options or {})
    if name.startswith(FOLDER_PREFIX):
        opts["path"] = name[len(FOLDER_PREFIX):]
        name = "folder"
    cls = _find_class(name) if name in DATASETS else None
    if cls is None:
        from bench.core.options import ConfigError

        valid = [n for n in dataset_names() if n != "folder"]
        raise ConfigError(f"unknown dataset {name!r}; valid: {', '.join(valid)}, folder:PATH")
    return make_options(cls, opts, f"dataset {name!r}")


def load_data(name: str, options: Mapping[str, Any] | None = None,
              max_train: int | None = None, max_test: int | None = None) -> ImageData:
    """Opens, loads and subsets a dataset in one step; its info always carries fingerprint, format and pixels."""
    return subset(ensure(open_dataset(name, options).load()), max_train, max_test)
