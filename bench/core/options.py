"""Options dataclasses built from config mappings, with unknown keys rejected (as nanoGPT's configurator)."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
from collections.abc import Mapping
from typing import Any


class ConfigError(ValueError):
    """Options or arguments that do not fit; the message names the key and the valid choices."""


def make_options(cls: type, given: Mapping[str, Any], where: str) -> Any:
    """Builds dataclass `cls` from `given`, rejecting unknown keys with the valid ones listed."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        valid = ", ".join(sorted(fields)) or "none"
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; valid: {valid}")
    try:
        return cls(**given)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def find_class(spec: str) -> type | None:
    """The class named 'package.module:Class', or None when that module does not exist."""
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def package_version(distribution: str) -> str:
    """The installed version of a distribution (pip name), or '' when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""
