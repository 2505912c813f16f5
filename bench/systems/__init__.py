"""System adapters by name; each module imports its ML libraries lazily, so listing stays cheap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.options import ConfigError, find_class
from bench.systems.base import FitContext, System, SystemResult

# name -> "module:Class"
_SYSTEMS: dict[str, str] = {
    "majority": "bench.systems.majority:Majority",
    "resnet": "bench.systems.resnet:ResNet",
    "resnet-2019": "bench.systems.resnet:ResNet2019",
    "autokeras": "bench.systems.autokeras:AutoKeras",
    "autokeras-default": "bench.systems.autokeras:AutoKerasDefault",
}


def _find_class(name: str) -> type[System] | None:
    return find_class(_SYSTEMS[name])


def system_names() -> list[str]:
    """Registered systems whose adapter module exists."""
    return [n for n in _SYSTEMS if _find_class(n) is not None]


def system_class(name: str) -> type[System]:
    """The adapter class for `name` (a registered name or 'package.module:Class'), else a ConfigError."""
    if ":" in name:
        return _plugin_class(name)
    cls = _find_class(name) if name in _SYSTEMS else None
    if cls is None:
        raise ConfigError(f"unknown system {name!r}; valid: {', '.join(system_names())}, "
                          "or module:Class for your own System subclass")
    return cls


def _plugin_class(path: str) -> type[System]:
    """A System subclass named by import path, so users can benchmark their own adapter."""
    try:
        cls = find_class(path)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"system {path!r} cannot be imported: {exc}") from exc
    if cls is None:
        raise ConfigError(f"system {path!r} cannot be imported: no module {path.partition(':')[0]!r}")
    if not (isinstance(cls, type) and issubclass(cls, System)):
        raise ConfigError(f"system {path!r} is not a subclass of bench.systems.base.System")
    return cls


def make_system(name: str, options: Mapping[str, Any] | None = None) -> System:
    """An adapter instance with its options checked."""
    return system_class(name)(options)


__all__ = ["FitContext", "System", "SystemResult", "make_system", "system_class", "system_names"]
