"""What a reader must know to read the answer, said from the runs themselves: how many trials each search ran, the
hardware in words, the data's size and source, how many seeds, and runs whose earlier attempts are not counted."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bench.core import rundir
from bench.report import artifacts
from bench.report import formatting as fmt
from bench.report.runs import Group

# CPU flags (as /proc/cpuinfo and the precision record spell them) in the words of a CPU's data sheet.
CPU_FLAG_WORDS = {"avx512_bf16": "AVX-512 BF16", "amx_bf16": "AMX BF16", "avx512f": "AVX-512", "avx2": "AVX2"}
LOSSY_FORMATS = ("jpeg", "jpg", "webp")  # a data format naming one of these lost detail before any model saw it


def _metadata(out_dir: Path, run_ids: Iterable[str]) -> list[dict]:
    found = []
    for run_id in run_ids:
        folder = artifacts.run_folder(out_dir, run_id)
        path = None if folder is None else folder / rundir.METADATA
        if path is None or not path.is_file():
            continue
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return found


def _flags(meta: dict) -> list[str]:
    reason = str((meta.get("precision") or {}).get("reason", ""))
    return [f for f in reason.removeprefix("CPU flags ").split() if f in CPU_FLAG_WORDS]


def hardware_words(metas: list[dict]) -> str:
    """The machine of runs alike as a reader says it: '2 vCPUs, AMD EPYC with AVX-512 BF16; no GPU'; '' if not
    recorded. Flags come from the precision record, which runs outside Keras (the floor) lack, so they are pooled."""
    known = [m for m in metas if m.get("cpu_count") and m.get("cpu_model")]
    if not known:
        return ""
    meta = known[0]
    flags = [CPU_FLAG_WORDS[f] for f in dict.fromkeys(f for m in known for f in _flags(m))]
    text = f"{fmt.plural(int(meta['cpu_count']), 'vCPU')}, {meta['cpu_model']}"
    text += f" with {' and '.join(flags)}" if flags else ""
    gpus = meta.get("gpus") or []
    if gpus:
        text += "; " + ", ".join(f"{n}x {name}" for name, n in pd.Series(gpus).value_counts().items())
    else:
        text += "; no GPU"
    return text


def _hardware(metas: list[dict]) -> str:
    alike: dict[tuple, list[dict]] = {}
    for m in metas:
        alike.setdefault((m.get("cpu_count"), m.get("cpu_model"), tuple(m.get("gpus") or ())), []).append(m)
    words = sorted({w for group in alike.values() if (w := hardware_words(group))})
    if not words:
        return ""
    return "Hardware: " + "; or ".join(words) + "."


def _trials(runs: pd.DataFrame, classes: dict[str, str]) -> str:
    """How many trials each AutoML system's searches ran, as a range per system."""
    ok = runs[(runs["status"] == "ok") & runs["system"].map(lambda s: classes.get(s) == "automl")]
    ok = ok.assign(trials=pd.to_numeric(ok["trials"], errors="coerce")).dropna(subset=["trials"])
    if ok.empty:
        return ""
    parts = []
    for system, part in ok.groupby("system", sort=True):
        low, high = int(part["trials"].min()), int(part["trials"].max())
        parts.append(f"{system} {low}" + (f"-{high}" if high != low else "")
                     + (" trial" if high == 1 else " trials"))
    return "Trials per search: " + "; ".join(parts) + "."


def _data(group: Group, runs: pd.DataFrame, metas: list[dict]) -> str:
    """The data's size and where it came from, flagging a lossy format."""
    ok = runs[runs["status"] == "ok"]
    sizes = []
    for column, what in (("n_train", "training"), ("n_test", "test")):
        values = pd.to_numeric(ok.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
        if not values.empty:
            sizes.append(f"{fmt.count(values.max())} {what}")
    formats = sorted({str(m.get("dataset_info", {}).get("format", "")) for m in metas} - {""})
    sources = sorted({Path(str(s)).name for m in metas if (s := m.get("dataset_info", {}).get("source"))})
    text = f"{group.label}: " + (" and ".join(sizes) + " images" if sizes else "size not recorded")
    if formats:
        text += f", {', '.join(formats)}"
    if sources:
        text += f" from {', '.join(sources)}"
    if any(word in f.lower() for f in formats + sources for word in LOSSY_FORMATS):
        text += " (lossy: compression artefacts are in every image, train and test)"
    return text + "."


def _seeds(runs: pd.DataFrame) -> str:
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        return ""
    per = ok.groupby(["system", "budget"])["seed"].nunique()
    if per.max() <= 1:
        return "One seed per configuration: no interval, and no difference can be resolved."
    if per.min() <= 1:
        single = ", ".join(f"{s} {b}" for (s, b), n in per.items() if n <= 1)
        return f"One seed only for {single}: no interval there."
    return ""


def _started_again(runs: pd.DataFrame) -> str:
    """Runs a system that cannot continue started again after their process died: their figures leave out the
    fit time their earlier attempts spent (records.RunRecord.uncounted_fit_s)."""
    ok = runs[runs["status"] == "ok"]
    lost = pd.to_numeric(ok.get("uncounted_fit_s", pd.Series(dtype=float)), errors="coerce").fillna(0.0)
    hit = ok[lost > 0]
    if hit.empty:
        return ""
    which = ", ".join(f"{system} {budget}" for system, budget in sorted(set(zip(hit["system"], hit["budget"],
                                                                                 strict=True))))
    return (f"{fmt.plural(len(hit), 'run')} ({which}) started again with the whole budget after the process died "
            f"(the system cannot continue from where it stopped): the figures leave out the "
            f"{fmt.duration(float(lost[lost > 0].sum()))} of fit the earlier attempts spent.")


def caveats(out_dir: Path, results: list[tuple[Group, pd.DataFrame]], classes: dict[str, str]) -> tuple[str, ...]:
    """The caveats of the whole report: the hardware once, then per group of data its size and source, the
    trials its searches ran, its seeds and the runs whose earlier attempts' compute is not in their figures."""
    metas_of = {group: _metadata(out_dir, part["run_id"]) for group, part in results}
    found: list[str] = []
    if hardware := _hardware([m for metas in metas_of.values() for m in metas]):
        found.append(hardware)
    for group, part in results:
        if not (part["status"] == "ok").any():
            continue
        found.append(" ".join(t for t in (_data(group, part, metas_of[group]), _trials(part, classes),
                                            _seeds(part), _started_again(part)) if t))
    return tuple(found)
