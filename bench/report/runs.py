"""The results table as the report sees it: loading runs.csv, grouping by data, classing systems."""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.core.budget import BudgetError, parse_budget
from bench.core.options import ConfigError
from bench.report import formatting as fmt
from bench.run.records import COLUMNS, RunRecord
from bench.run.store import ResultsStore, StoreError
from bench.systems import system_class as registered_class

# Order of system classes in tables and legends: the floor first, then the baseline, then AutoML.
CLASS_ORDER = {"floor": 0, "baseline": 1, "automl": 2, "other": 3}
# Recorded roles the report keeps as classes: the baseline class is only the system chosen with --baseline, so
# any other system whose role is 'baseline' (or unknown) is 'other'.
KEPT_ROLES = ("automl", "floor")
_NUMERIC = tuple(f.name for f in dataclasses.fields(RunRecord) if str(f.type).startswith(("int", "float")))


class ReportError(ValueError):
    """Results that cannot be reported: a missing or empty or malformed runs.csv."""


@dataclass(frozen=True, order=True)
class Group:
    """Runs that are comparable: the same dataset under the same split protocol and options."""

    dataset: str
    split: str
    dataset_options: str

    @property
    def label(self) -> str:
        """Readable name, e.g. 'malaria (cell split)' or 'malaria (cell split; malaria-cells-64px.zip)'."""
        details = [f"{self.split} split"] if self.split else []
        # The split protocol is already named; other options (subset sizes, image size) follow it.
        # A data file is named by itself: "malaria-cells-64px.zip", not "path=../data/malaria-cells-64px.zip".
        extra = [o.removeprefix("path=").rsplit("/", 1)[-1] if o.startswith("path=") else o
                 for o in self.dataset_options.split(";") if o and o != f"split={self.split}"]
        if extra:
            details.append(", ".join(extra))
        return f"{self.dataset} ({'; '.join(details)})" if details else self.dataset

    @property
    def slug(self) -> str:
        """File-name-safe form of the label."""
        text = "-".join(p for p in (self.dataset, self.split, self.dataset_options) if p)
        return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "data"


def load_runs(out_dir: Path) -> pd.DataFrame:
    """Reads out_dir/runs.csv through the results store into a frame with RunRecord's columns (numbers as
    floats, None as NaN)."""
    store = ResultsStore(out_dir)
    hint = "run `python -m bench all` first"
    if not store.path.is_file():
        raise ReportError(f"no results in {out_dir}: {store.path.name} is missing; {hint}")
    try:
        records = store.records()
    except StoreError as error:
        raise ReportError(f"{store.path} is not a bench results table ({error}); regenerate it with {hint}") from error
    if not records:
        raise ReportError(f"no results in {out_dir}: {store.path.name} has no runs; {hint}")
    frame = pd.DataFrame([dataclasses.asdict(r) for r in records.values()], columns=list(COLUMNS))
    for name in _NUMERIC:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


def _options(text: str) -> dict[str, str]:
    """A runs.csv system_options cell ('key=value;key=value') as a dict."""
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in str(text or "").split(";") if item)


def label_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs with each system's variants named apart: where one system ran with different options, its
    rows' system becomes 'name (key=value, ...)' with the options its variants differ in (a variant without
    any of them keeps the plain name), so that tables, plots and verdicts never pool two variants."""
    frame = frame.copy()
    for system, part in frame.groupby("system", sort=False):
        variants = {text: _options(text) for text in part["system_options"].fillna("").unique()}
        if len(variants) < 2:
            continue
        keys = sorted({k for opts in variants.values() for k in opts
                       if len({o.get(k) for o in variants.values()}) > 1})
        for text, opts in variants.items():
            differing = ", ".join(f"{k}={opts[k]}" for k in keys if k in opts)
            if differing:
                frame.loc[(frame["system"] == system) & (frame["system_options"].fillna("") == text),
                          "system"] = f"{system} ({differing})"
    return _mark_pretrained(frame)


PRETRAINED = "pretrained"  # a system option: weights trained elsewhere, whose compute the run leaves out


def _mark_pretrained(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs that started from pretrained weights always carry 'pretrained=True' in their system's name, even
    where no variant without it ran: their compute leaves out the pretraining."""
    for index, row in frame.iterrows():
        if str(_options(row["system_options"]).get(PRETRAINED, "")).lower() != "true" or PRETRAINED in row["system"]:
            continue
        name = str(row["system"])
        frame.at[index, "system"] = f"{name[:-1]}, {PRETRAINED}=True)" if name.endswith(")") else \
            f"{name} ({PRETRAINED}=True)"
    return frame


DATA_OPTION = "data"  # the options key that names a fingerprint's runs apart
FINGERPRINT_CHARS = 8  # enough hex digits to tell a handful of fingerprints apart at a glance


def label_data(frame: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The runs with each group's data told apart: where runs of one dataset, split and options saw data with
    different fingerprints, each fingerprint's runs get 'data=<first 8 hex digits>' (runs without one
    'data=unrecorded') appended to their dataset options, so that no table or figure averages over two data
    sets. Returns the frame and one sentence per group that was split."""
    frame = frame.copy()
    notes = []
    keys = ["dataset", "split", "dataset_options"]
    fingerprints = frame["data_fingerprint"].fillna("").astype(str)
    for key, part in frame.groupby(keys, sort=True):
        seen = sorted({f for f in fingerprints[part.index] if f})
        if len(seen) < 2:
            continue
        for index in part.index:
            fingerprint = fingerprints[index]
            short = fingerprint[:FINGERPRINT_CHARS] if fingerprint else "unrecorded"
            frame.loc[index, "dataset_options"] = ";".join(
                p for p in (str(key[2] or ""), f"{DATA_OPTION}={short}") if p
            )
        label = Group(*key).label
        notes.append(f"Runs on {label} saw {len(seen)} different data fingerprints ({', '.join(seen)}): "
                     f"they are reported apart, by the fingerprint's first {FINGERPRINT_CHARS} hex digits, "
                     "never averaged together.")
    return frame, tuple(notes)


def system_name(label: str) -> str:
    """The registered system's name in a label from label_variants."""
    return label.split(" (", 1)[0]


@functools.cache
def _registered(system: str) -> type | None:
    """The registered System class of that name (or variant label), or None (unknown here, or its module
    cannot be imported)."""
    try:
        return registered_class(system_name(system))
    except (ConfigError, ImportError):
        return None


def declared_role(system: str) -> str:
    """The role the registered class declares, 'other' for an unknown system: for rows recorded before runs.csv
    had a role column."""
    return str(getattr(_registered(system), "role", "other"))


def declared_library(system: str) -> str:
    """The library (distribution name) the registered class declares, '' for an unknown system: for rows
    recorded before runs.csv had a library column."""
    return str(getattr(_registered(system), "library", ""))


def class_of(system: str, role: str, baseline: str) -> str:
    """'baseline' (the system chosen as the reference), 'automl', 'floor' or 'other': from the recorded role, or
    the declared one where the row has none; never from the name."""
    if system == baseline:
        return "baseline"
    role = role or declared_role(system)
    return role if role in KEPT_ROLES else "other"


def system_classes(frame: pd.DataFrame, baseline: str) -> dict[str, str]:
    """Each system's class in these runs, from its first non-empty recorded role (else its declared one)."""
    roles: dict[str, str] = {}
    for system, role in zip(frame["system"], frame["role"], strict=True):
        if not roles.get(system):
            roles[system] = role if isinstance(role, str) else ""
    return {system: class_of(system, role, baseline) for system, role in roles.items()}


def budget_key(budget: str) -> tuple[float, float]:
    """Sort key of a budget name; unparsable names sort last."""
    try:
        return parse_budget(budget).sort_key
    except BudgetError:
        return (float("inf"), float("inf"))


def budget_seconds(budget: str) -> float | None:
    """The budget's wall-clock seconds, or None (trial-only, 'full' or unparsable)."""
    try:
        return parse_budget(budget).seconds
    except BudgetError:
        return None


def budget_trials(budget: str) -> int | None:
    """The budget's trial count, or None."""
    try:
        return parse_budget(budget).trials
    except BudgetError:
        return None


def grouped(frame: pd.DataFrame) -> list[tuple[Group, pd.DataFrame]]:
    """The runs split into comparable groups, sorted by dataset, split and options."""
    keys = ["dataset", "split", "dataset_options"]
    return [(Group(*key), part) for key, part in sorted(frame.groupby(keys, sort=False), key=lambda kv: kv[0])]


def hardware_of(frame: pd.DataFrame) -> str:
    """The hardware descriptions recorded for these runs, joined; says so when none was recorded."""
    names = sorted({h for h in frame["hardware"] if h})
    return "; ".join(names) if names else "hardware not recorded"


def where_run(frame: pd.DataFrame) -> str:
    """The hardware, after the number of Ray nodes that ran these runs when any did: '2 nodes: <hardware>'."""
    nodes = {n for n in frame["node"] if isinstance(n, str) and n}
    hardware = hardware_of(frame)
    return f"{fmt.plural(len(nodes), 'node')}: {hardware}" if nodes else hardware


def _per_keras_system(frame: pd.DataFrame, column: str, before: str) -> str:
    """One value of `column` over the ok runs of Keras systems ('' when none ran), or per system when they
    differ ('mixed: autokeras a, resnet b'); Keras runs recorded before the column existed count as `before`."""
    ok = frame[frame["status"] == "ok"]
    values: dict[str, set[str]] = {}
    for system, value in zip(ok["system"], ok[column], strict=True):
        if isinstance(value, str) and value:
            values.setdefault(system, set()).add(value)
        elif getattr(_registered(system), "uses_keras", False):
            values.setdefault(system, set()).add(before)
    seen = set().union(*values.values()) if values else set()
    if len(seen) <= 1:
        return next(iter(seen), "")
    return "mixed: " + ", ".join(f"{s} {'/'.join(sorted(v))}" for s, v in sorted(values.items()))


def arithmetic(frame: pd.DataFrame) -> str:
    """The precision the Keras systems of these runs computed in: 'float32', or per system when they differ
    ('mixed: autokeras mixed_bfloat16, resnet float32'); '' when no Keras system ran. Keras runs recorded before
    the precision column existed were float32."""
    return _per_keras_system(frame, "precision", "float32")


def keras_backend(frame: pd.DataFrame) -> str:
    """The Keras backend the Keras systems of these runs computed with, as `arithmetic` says their precision
    (runs recorded before the backend column existed were TensorFlow's)."""
    return _per_keras_system(frame, "backend", "tensorflow")


def data_seen(frame: pd.DataFrame) -> str:
    """The data these runs saw: '<fingerprint> (<format>; <pixels>)' per distinct fingerprint, or '' when
    none was recorded (runs from before fingerprints)."""
    seen = {}
    for fingerprint, form, pixels in zip(frame["data_fingerprint"], frame["data_format"], frame["data_pixels"],
                                         strict=True):
        if isinstance(fingerprint, str) and fingerprint:
            seen[fingerprint] = "; ".join(p for p in (form, pixels) if isinstance(p, str) and p)
    return ", ".join(f"{fp} ({how})" if how else fp for fp, how in sorted(seen.items()))
