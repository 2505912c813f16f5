"""System adapters by name; each module imports its ML libraries lazily, so listing stays cheap.

Adding a system is one module with a System subclass plus one line in SYSTEMS. A variant of a system is
data, not a subclass (as amlb's `extends:`): the same class with some options fixed.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.core.options import ConfigError, find_class
from bench.systems.base import FitContext, System, SystemResult


@dataclass(frozen=True)
class Entry:
    """A registered system: its class, and for a variant the options it fixes and its own description."""

    target: str  # "module:Class"
    fixed: Mapping[str, Any] = field(default_factory=dict)  # options the variant sets; users cannot change them
    description: str = ""  # the variant's; empty: the class's own


SYSTEMS: dict[str, Entry] = {
    "majority": Entry("bench.systems.majority:Majority"),
    "resnet": Entry("bench.systems.resnet:ResNet"),
    "resnet-2019": Entry("bench.systems.resnet:ResNet", {"recipe": "resnet2019"},
                         "the 2019 reference ResNet (3/4/6 bottlenecks, SGD 0.1 poly decay, 50 epochs)"),
    "autokeras": Entry("bench.systems.autokeras:AutoKeras"),
    "autokeras-default": Entry("bench.systems.autokeras:AutoKerasDefault"),
    "resnet-tuned": Entry("bench.systems.resnet_tuned:ResNetTuned"),
    "autokeras-hybrid": Entry("bench.systems.autokeras_hybrid:AutoKerasHybrid"),
    "autogluon": Entry("bench.systems.autogluon:AutoGluon"),
    "autogluon-hpo": Entry("bench.systems.autogluon:AutoGluonHPO"),
}


def _find_class(name: str) -> type[System] | None:
    return find_class(SYSTEMS[name].target)


def system_names() -> list[str]:
    """Registered systems whose adapter module exists."""
    return [n for n in SYSTEMS if _find_class(n) is not None]


def system_class(name: str) -> type[System]:
    """The adapter class for `name` (a registered name or 'package.module:Class'), else a ConfigError."""
    if ":" in name:
        return _plugin_class(name)
    cls = _find_class(name) if name in SYSTEMS else None
    if cls is None:
        raise ConfigError(f"unknown system {name!r}; valid: {', '.join(system_names())}, "
                          "or module:Class for your own System subclass")
    return cls


def system_description(name: str) -> str:
    """One line on what the system is (a variant's own description, else its class's)."""
    entry = SYSTEMS.get(name)
    return (entry.description if entry else "") or system_class(name).description


def _plugin_class(path: str) -> type[System]:
    """A System subclass named by import path, so users can benchmark their own adapter."""
    module, _, attribute = path.partition(":")
    if not module or not attribute:
        raise ConfigError(f"system {path!r}: a plugin is named module:Class, e.g. mypackage.mymodule:MySystem")
    try:
        cls = find_class(path)
    except AttributeError:
        raise ConfigError(f"system {path!r}: module {module!r} has no {attribute!r}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module may fail to import in any way
        raise ConfigError(f"system {path!r}: module {module!r} cannot be imported: "
                          f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    if cls is None:
        raise ConfigError(f"system {path!r} cannot be imported: no module {module!r}")
    if not isinstance(cls, type):
        raise ConfigError(f"system {path!r} is not a class but a {type(cls).__name__}; "
                          "name a subclass of bench.systems.base.System")
    if not issubclass(cls, System):
        raise ConfigError(f"system {path!r} is not a subclass of bench.systems.base.System")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise ConfigError(f"system {path!r} is abstract: it does not implement {missing}")
    for attr in ("name", "description"):
        if not isinstance(getattr(cls, attr, None), str):
            raise ConfigError(f"system {path!r} has no {attr!r}: set it as a class attribute (a string)")
    return cls


def make_system(name: str, options: Mapping[str, Any] | None = None) -> System:
    """An adapter instance with its options checked; a variant's fixed options cannot be given."""
    cls = system_class(name)
    given = dict(options or {})
    fixed = dict(SYSTEMS[name].fixed) if name in SYSTEMS else {}
    clash = sorted(set(given) & set(fixed))
    if clash:
        settings = ", ".join(f"{k}={fixed[k]}" for k in clash)
        raise ConfigError(f"system {name!r}: unknown option(s) {', '.join(clash)}: this variant fixes {settings}; "
                          f"use {cls.name!r} to choose them")
    system = cls({**fixed, **given})
    if name in SYSTEMS:
        system.name = name  # a variant reports under its own name
    return system


__all__ = ["Entry", "FitContext", "SYSTEMS", "System", "SystemResult", "make_system", "system_class",
           "system_description", "system_names"]
