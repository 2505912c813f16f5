"""What each search tried: every searcher's trials (its runs' trials.csv) as a figure per data set and a table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bench.core import rundir
from bench.report import artifacts
from bench.report import formatting as fmt
from bench.report.document import Link
from bench.report.plots import PLOTS_DIR, RC, Figure, figure_title, save_figure
from bench.report.runs import Group, budget_key, hardware_of
from bench.report.style import Look, accuracy_limits, legend_below, log_time_axis

TRIALS_CSV = "trials.csv"  # under the report's tables/: every trial of every search, one row each
# Columns of that CSV, in order.
COLUMNS = ("dataset", "split", "dataset_options", "run_id", "system", "budget", "seed", "trial_id", "architecture",
           "differs", "epochs", "val_accuracy", "started_s", "ended_s", "status", "worker", "summary")


@dataclass(frozen=True)
class Trials:
    """One group's trials: a row per trial (COLUMNS), and its figure or why there is none."""

    rows: pd.DataFrame
    figure: Figure | str


def parse_summary(summary: str) -> tuple[str, dict[str, str]]:
    """A trial's summary ('vanilla: augment=False; block_type=vanilla' or 'peak_lr=0.2; epochs=2') as its
    architecture ('vanilla'; '' where the summary names none) and its hyperparameters."""
    text = "" if pd.isna(summary) else str(summary)
    head, sep, rest = text.partition(": ")
    architecture, body = (head, rest) if sep and "=" not in head else ("", text)
    values = {}
    for part in body.split(";"):
        key, eq, value = part.strip().partition("=")
        if eq:
            values[key.strip()] = value.strip()
    return architecture.strip(), values


def _differs(table: pd.DataFrame, parsed: list[dict[str, str]]) -> list[str]:
    """Per trial, its hyperparameters whose value is not the same in every trial of its system and architecture
    on this data (the architecture is its own column)."""
    out = [""] * len(table)
    for _, idx in table.groupby(["system", "architecture"]).indices.items():
        mine = [parsed[i] for i in idx]
        keys = dict.fromkeys(k for p in mine for k in p)
        varying = [k for k in keys if len({p.get(k) for p in mine}) > 1]
        for i in idx:
            out[i] = "; ".join(f"{k}={parsed[i][k]}" for k in varying if k in parsed[i])
    return out


def trial_rows(group: Group, runs: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Every trial of the group's ok and failed runs that kept a trials.csv, a row each (COLUMNS)."""
    frames = []
    for run in runs.itertuples(index=False):
        folder = artifacts.run_folder(out_dir, run.run_id)
        path = None if folder is None else folder / rundir.TRIALS
        if path is None or not path.is_file():
            continue
        try:
            trials = pd.read_csv(path, dtype={"trial_id": str, "summary": str, "worker": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            continue
        if trials.empty or not {"trial_id", "ended_s", "val_accuracy"} <= set(trials.columns):
            continue
        frames.append(trials.assign(run_id=run.run_id, system=run.system, budget=str(run.budget),
                                    seed=int(run.seed)))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    table = table.assign(
        order=[budget_key(b) for b in table["budget"]],
        started_s=pd.to_numeric(table.get("started_s"), errors="coerce"),
        ended_s=pd.to_numeric(table["ended_s"], errors="coerce"),
        val_accuracy=pd.to_numeric(table["val_accuracy"], errors="coerce"),
        epochs=pd.to_numeric(table.get("epochs"), errors="coerce"),
    ).sort_values(["system", "order", "seed", "ended_s"], kind="stable").reset_index(drop=True)
    parsed = [parse_summary(s) for s in table.get("summary", pd.Series([""] * len(table)))]
    table = table.assign(architecture=[a for a, _ in parsed])
    table = table.assign(
        dataset=group.dataset,
        split=group.split,
        dataset_options=group.dataset_options,
        differs=_differs(table, [p for _, p in parsed]),
        summary=table.get("summary", pd.Series([""] * len(table))).fillna(""),
        status=table.get("status", ""),
        worker=table.get("worker", pd.Series([""] * len(table))).fillna(""),
    )
    return table[list(COLUMNS)]


def display(rows: pd.DataFrame) -> pd.DataFrame:
    """The trials as a reader sees them: which run, what the trial was, and how it did."""
    def score(v: float) -> str:
        return fmt.MISSING if pd.isna(v) else f"{100 * v:.1f}%"

    def epochs(v: float) -> str:
        return fmt.MISSING if pd.isna(v) else f"{int(v)}"

    return pd.DataFrame({
        "Run": [Link(f"{r.system} {r.budget} seed {r.seed}", f"{rundir.RUNS_DIR}/{r.run_id}/")
                for r in rows.itertuples(index=False)],
        "Trial": rows["trial_id"].astype(str),
        "Architecture": [a or fmt.MISSING for a in rows["architecture"]],
        "Hyperparameters that differ": [d or fmt.MISSING for d in rows["differs"]],
        "Epochs": [epochs(v) for v in rows["epochs"]],
        "Validation accuracy": [score(v) for v in rows["val_accuracy"]],
        "Time": [fmt.duration(e - s) if pd.notna(s) and pd.notna(e) else fmt.MISSING
                 for s, e in zip(rows["started_s"], rows["ended_s"], strict=True)],
        "Ended at": [fmt.duration(e) for e in rows["ended_s"]],
        "Status": rows["status"].fillna("").astype(str),
    })


def trials_figure(group: Group, runs: pd.DataFrame, rows: pd.DataFrame, folder: Path,
                  colors: dict[str, Look]) -> Figure | str:
    """Each trial's validation accuracy at the time it ended (seconds since the run's fit began), a colour and
    marker per system."""
    scored = rows.dropna(subset=["val_accuracy", "ended_s"])
    scored = scored[scored["ended_s"] > 0].assign(**{"validation accuracy (%)": 100 * scored["val_accuracy"]})
    if scored.empty:
        return f"what each search tried: no scored trial in the runs' {rundir.TRIALS}"
    fig, ax = plt.subplots(figsize=(7.2, 4.6), layout="constrained")
    shown = list(dict.fromkeys(scored["system"]))
    sns.scatterplot(data=scored, x="ended_s", y="validation accuracy (%)", hue="system", style="system",
                    hue_order=shown, palette={s: colors[s].color for s in shown},
                    markers={s: colors[s].marker for s in shown}, s=45, alpha=0.85, ax=ax)
    accuracy_limits(ax, scored["validation accuracy (%)"].tolist())
    log_time_axis(ax, scored["ended_s"].tolist())
    ax.set_xlabel("time the trial ended, since the run's fit began (log scale)")
    ax.set_ylabel("validation accuracy of the trial (%)")
    legend_below(ax)
    ax.set_title(figure_title("what each search tried", group, hardware_of(runs)))
    return save_figure(
        fig,
        folder,
        f"{group.slug}_trials",
        f"{group.label}: every trial of every search, its validation accuracy at the time it ended (since its "
        f"run's fit began). The table below says what each trial was. No intervals: one point per trial.",
    )


def trials(group: Group, runs: pd.DataFrame, out_dir: Path, colors: dict[str, Look]) -> Trials:
    """The group's trials and their figure, written under out_dir/plots/."""
    rows = trial_rows(group, runs, out_dir)
    if rows.empty:
        return Trials(rows, f"what each search tried: no {rundir.TRIALS} among the runs' folders")
    folder = Path(out_dir) / PLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(RC), sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        return Trials(rows, trials_figure(group, runs, rows, folder, colors))
