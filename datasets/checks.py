"""Checks of data set options, run when an adapter is built (open_dataset), before anything is read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from bench.datasets.base import OptionError

# Split seeds go to scikit-learn's random_state, which takes 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1


def _is_whole(value: Any) -> bool:
    # bool is an int subclass, but `size = true` is a slip, never a size.
    return isinstance(value, int) and not isinstance(value, bool)


def check_size(dataset: str, size: Any, required: bool = False) -> None:
    """Raises unless size is a positive whole number of pixels (or None when not required)."""
    if size is None and not required:
        return
    if not _is_whole(size) or size < 1:
        allowed = "a positive whole number of pixels (e.g. size=64)" + ("" if required else " or none")
        raise OptionError(f"{dataset}: option size={size!r} is not allowed; size must be {allowed}")


def check_fraction(dataset: str, test_fraction: Any) -> None:
    """Raises unless 0 < test_fraction < 1."""
    number = isinstance(test_fraction, int | float) and not isinstance(test_fraction, bool)
    if not number or not 0 < test_fraction < 1:
        raise OptionError(f"{dataset}: option test_fraction={test_fraction!r} is not allowed; test_fraction "
                          "must be between 0 and 1, both excluded (e.g. 0.2)")


def check_seed(dataset: str, split_seed: Any) -> None:
    """Raises unless split_seed is a whole number in 0 .. MAX_SEED."""
    if not _is_whole(split_seed) or not 0 <= split_seed <= MAX_SEED:
        raise OptionError(f"{dataset}: option split_seed={split_seed!r} is not allowed; split_seed must be a "
                          f"whole number from 0 to {MAX_SEED}")


def check_choice(dataset: str, option: str, value: Any, choices: Sequence[str]) -> None:
    """Raises unless value is one of choices."""
    if value not in choices:
        raise OptionError(f"{dataset}: option {option}={value!r} is not allowed; {option} must be one of "
                          f"{', '.join(choices)}")


def check_flag(dataset: str, option: str, value: Any) -> None:
    """Raises unless value is true or false."""
    if not isinstance(value, bool):
        raise OptionError(f"{dataset}: option {option}={value!r} is not allowed; {option} must be true or false")


def check_path(dataset: str, path: Any, required: bool = False) -> None:
    """Raises unless path is a non-empty string (or None when not required)."""
    if path is None and not required:
        return
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise OptionError(f"{dataset}: option path={path!r} is not allowed; path must name a file or folder "
                          f"(e.g. path=/data/{dataset})")
