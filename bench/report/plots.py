"""The report's figures (seaborn, PNG and SVG): accuracy by budget and compute, learning curves, classes."""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.metrics import confusion_matrix, f1_score  # noqa: E402

from bench.core import rundir
from bench.report import artifacts  # noqa: E402
from bench.report import compute as cmp  # noqa: E402
from bench.report.parity import Parity  # noqa: E402
from bench.report.runs import Group, budget_seconds, budget_trials, hardware_of  # noqa: E402
from bench.report.style import (  # noqa: E402
    Look,
    accuracy_limits,
    clip_percent,
    legend_below,
    log_flops_axis,
    log_time_axis,
    looks,
    place_labels,
)
from bench.report.tables import ConfigSummary, reference  # noqa: E402

PLOTS_DIR = "plots"
PNG_DPI = 192  # twice a screen's 96 dpi: sharp text on a high-density screen (report.html shows the SVG)
ANNOTATE_MAX_CLASSES = 12  # write numbers into heatmap cells up to this many classes
DODGE = 1.05  # factor between neighbouring systems' points at one budget on a log axis
STYLE_MAX_BUDGETS = 8  # beyond this many budgets, markers stop telling them apart
RC = {"svg.hashsalt": "bench", "svg.fonttype": "none"}  # stable ids; text stays text in SVG


@dataclass(frozen=True)
class Figure:
    """A written figure: its PNG and SVG files and a caption."""

    png: Path
    svg: Path
    caption: str


@dataclass(frozen=True)
class PlotSet:
    """The figures made for one group of data, and notes on the ones that could not be made."""

    figures: tuple[Figure, ...]
    notes: tuple[str, ...]


def palette(systems: list[str]) -> dict[str, Look]:
    """One colour and marker per system, the same in every figure of every report (bench.report.style)."""
    return looks(systems)


# The one kind of interval every figure draws, named in each caption: the tables' 95% t-interval over seeds.
INTERVAL = "95% t-interval over seeds (3 or more seeds; none drawn with fewer)"


def _interval(s: ConfigSummary) -> tuple[float, float] | None:
    """The configuration's 95% interval in percent, inside [0, 100]; None where fewer seeds give none."""
    a = s.accuracy
    if a.kind != "ci" or a.low is None or a.high is None:
        return None
    return clip_percent(100 * a.low, 100 * a.high)


def _hue(colors: dict[str, Look]) -> dict[str, str]:
    return {system: look.color for system, look in colors.items()}


def _markers(colors: dict[str, Look]) -> dict[str, str]:
    return {system: look.marker for system, look in colors.items()}


PNG_COLOURS = 256  # palette size of the PNG files; anti-aliased lines need more than a few
TITLE_CHARS = 64  # a title line longer than this is wrapped: a 7-inch figure clips it otherwise


def figure_title(what: str, group: Group, hardware: str) -> str:
    """A figure's title: what it shows of which data, and the hardware, wrapped to the figure's width."""
    return "\n".join([*textwrap.wrap(f"{group.label}: {what}", TITLE_CHARS), *textwrap.wrap(hardware, TITLE_CHARS)])


def save_figure(fig: plt.Figure, folder: Path, stem: str, caption: str) -> Figure:
    """Writes the figure as PNG and SVG under folder, closes it, and returns them with the caption."""
    png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
    # One layout pass for both files: bbox_inches="tight" would redo it for each format.
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
    # A 256-colour palette: plots have few colours, and the file (inlined in report.html) is ~3x smaller.
    Image.open(buffer).convert("RGB").quantize(PNG_COLOURS).save(png, optimize=True)
    fig.savefig(svg, metadata={"Date": None})
    plt.close(fig)
    return Figure(png, svg, caption)


def _log_trials(ax: plt.Axes, values: list[float]) -> None:
    """A log axis of trial counts, ticked at the counts that ran, in plain numbers."""
    ax.set_xscale("log")
    ticks = sorted(set(values))
    ax.xaxis.set_major_locator(mticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    low, high = min(ticks), max(ticks)
    ax.set_xlim(low / 1.5, high * 1.5 if high > low else high * 4)


def _floor_label(system: str, level: float, ax: plt.Axes) -> str:
    low, high = ax.get_ylim()
    where = " (below the axis)" if level < low else " (above the axis)" if level > high else ""
    return f"floor: {system}, {level:.1f}%{where}"


def _percent(frame: pd.DataFrame, column: str = "accuracy") -> pd.DataFrame:
    return frame.assign(**{"accuracy (%)": 100 * frame[column]})


def accuracy_vs_budget(
    group: Group, runs: pd.DataFrame, summaries: list[ConfigSummary], folder: Path, colors: dict[str, Look]
) -> Figure | str:
    """Mean accuracy per budget (log axis), a line per system with its 95% interval; 'full' runs and the
    baseline's reference as horizontal lines."""
    placed = [
        (s, budget_seconds(s.budget), budget_trials(s.budget))
        for s in summaries
        if s.accuracy.mean is not None and s.system_class != "floor"
    ]
    timed = [(s, seconds) for s, seconds, _ in placed if seconds is not None]
    counted = [(s, trials) for s, seconds, trials in placed if seconds is None and trials is not None]
    facets = [
        (kind, label, points)
        for kind, label, points in (("seconds", "wall-clock budget (log scale)", timed),
                                    ("trials", "trial budget (trials, log scale)", counted))
        if points
    ]
    if not facets:
        return "accuracy against budget: no run had a time or trial budget to place on the axis"
    base = reference(summaries, "baseline")
    lines = [
        s for s in summaries
        if s.accuracy.mean is not None
        and (s is base or s.system_class == "floor" or (budget_seconds(s.budget) is None
                                                         and budget_trials(s.budget) is None))
    ]
    fig, axes = plt.subplots(1, len(facets), figsize=(6.4 * len(facets), 4.6), squeeze=False, layout="constrained")
    for ax, (kind, label, points) in zip(axes[0], facets, strict=True):
        systems = list(dict.fromkeys(s.system for s, _ in points))
        for n, system in enumerate(systems):
            mine = sorted(((s, x) for s, x in points if s.system == system), key=lambda sx: sx[1])
            look = colors[system]
            # Systems at one budget sit side by side (a few percent apart on the log axis), so that their
            # intervals do not hide one another.
            dodge = DODGE ** (n - (len(systems) - 1) / 2)
            xs, ys = [x * dodge for _, x in mine], [100 * s.accuracy.mean for s, _ in mine]
            ax.plot(xs, ys, color=look.color, marker=look.marker, linewidth=1.8, label=system)
            for (s, _), x, y in zip(mine, xs, ys, strict=True):
                if (band := _interval(s)) is not None:
                    ax.errorbar([x], [y], yerr=[[y - band[0]], [band[1] - y]], color=look.color, capsize=3,
                                linewidth=1.2, alpha=0.7)
        centres = [100 * s.accuracy.mean for s, _ in points]
        accuracy_limits(ax, centres + [100 * s.accuracy.mean for s in lines if s.system_class != "floor"])
        for s in lines:
            level = 100 * s.accuracy.mean
            if s.system_class == "floor":
                ax.axhline(level, color="grey", linestyle=":", linewidth=1.2, label=_floor_label(s.system, level, ax))
                continue
            name = f"{s.system} ({s.budget})" + (", reference" if s is base else "")
            ax.axhline(level, color=colors[s.system].color, linestyle="--", linewidth=1.2, label=name)
        xs = [x for _, x in points]
        if kind == "seconds":
            log_time_axis(ax, xs)
        else:
            _log_trials(ax, xs)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%), mean over seeds")
    legend_below(axes[0][0])
    fig.suptitle(figure_title("accuracy against budget", group, hardware_of(runs)))
    return save_figure(
        fig,
        folder,
        f"{group.slug}_accuracy_vs_budget",
        f"{group.label}: mean test accuracy against budget; bars: {INTERVAL}; dashed lines: runs without a "
        f"budget limit and the baseline's reference; dotted: the floor.",
    )


def pareto_front(fit_h: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of runs no other run beats on both less fit time and higher accuracy, by fit time."""
    order = np.lexsort((-accuracy, fit_h))
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.array(front, dtype=int)


def accuracy_vs_compute(
    group: Group, runs: pd.DataFrame, folder: Path, colors: dict[str, Look], classes: dict[str, str]
) -> Figure | str:
    """Every ok run's accuracy against its fit time (log axis), with the Pareto front marked; the floor (a
    constant predictor, no compute to speak of) is a horizontal reference line, not a point decades to the left.
    Runs from several kinds of hardware are placed by their training FLOPs instead (seconds on different machines
    do not compare, and a front across them would mix machines), those without a count left out and said so."""
    kinds = cmp.hardware_kinds(runs)
    column, x = ("train_flops", "training FLOPs") if len(kinds) > 1 else ("fit_s", "fit time")
    ok = runs[runs["status"] == "ok"].dropna(subset=["accuracy", column])
    ok = ok[ok[column].astype(float) > 0]
    floor = runs[(runs["status"] == "ok") & (runs["system"].map(classes) == "floor")].dropna(subset=["accuracy"])
    ok = ok[ok["system"].map(classes) != "floor"]
    if ok.empty:
        if len(kinds) > 1:
            return (f"accuracy against compute: the runs come from {len(kinds)} kinds of hardware, whose seconds do "
                    "not compare, and none (besides the floor) has a training FLOP count")
        return "accuracy against compute: no ok run (besides the floor) with a recorded fit time"
    left_out = int((runs["status"] == "ok").sum()) - len(ok) - len(floor)
    ok = _percent(ok).assign(**{x: ok[column].astype(float)})
    fig, ax = plt.subplots(figsize=(7.2, 4.6), layout="constrained")
    shown = {s: colors[s] for s in ok["system"].unique()}
    sns.scatterplot(data=ok, x=x, y="accuracy (%)", hue="system", style="system", palette=_hue(shown),
                    markers=_markers(shown), s=60, alpha=0.85, ax=ax)
    front = ok.iloc[pareto_front(ok[x].to_numpy(), ok["accuracy (%)"].to_numpy())]
    ax.step(front[x], front["accuracy (%)"], where="post", color="black", linewidth=1, label="Pareto front")
    ax.scatter(front[x], front["accuracy (%)"], s=150, facecolors="none", edgecolors="black")
    accuracy_limits(ax, ok["accuracy (%)"].tolist())
    for system, part in floor.groupby("system"):
        level = 100 * float(part["accuracy"].mean())
        ax.axhline(level, color="grey", linestyle=":", linewidth=1.2, label=_floor_label(system, level, ax))
    if column == "fit_s":
        log_time_axis(ax, ok[x].tolist())
        ax.set_xlabel("fit time per run (log scale)")
        against, cheaper, why = "its fit time", "faster", ""
    else:
        log_flops_axis(ax, ok[x].tolist())
        ax.set_xlabel("training FLOPs per run (log scale)")
        against, cheaper = "its training FLOPs", "cheaper"
        why = (f" The runs come from {len(kinds)} kinds of hardware, whose seconds do not compare: runs are placed by "
               "training FLOPs" + (f", and {left_out} ok run(s) without a count are left out." if left_out else "."))
    ax.set_ylabel("test accuracy (%)")
    legend_below(ax)
    ax.set_title(figure_title("accuracy against compute, every run", group, hardware_of(runs)))
    return save_figure(
        fig,
        folder,
        f"{group.slug}_accuracy_vs_compute",
        f"{group.label}: each run's test accuracy against {against}; circled runs form the Pareto front (no run is "
        f"both {cheaper} and more accurate); dotted: the floor. No intervals: one point per run.{why}",
    )


def time_to_accuracy(
    group: Group, runs: pd.DataFrame, out_dir: Path, folder: Path, colors: dict[str, Look]
) -> Figure | str:
    """Best-so-far validation accuracy against seconds of fit, from the runs' history or trials files."""
    curves = []
    for run in runs[runs["status"] == "ok"].itertuples():
        curve = artifacts.learning_curve(out_dir, run.run_id)
        if curve is not None:
            curves.append(curve.assign(system=run.system, budget=str(run.budget), run_id=run.run_id))
    if not curves:
        return f"time to accuracy: no {rundir.HISTORY} or {rundir.TRIALS} among the ok runs' folders"
    kinds = cmp.hardware_kinds(runs)
    if len(kinds) > 1:
        return (f"time to accuracy: the runs come from {len(kinds)} kinds of hardware, and seconds on different "
                "machines do not compare")
    data = pd.concat(curves, ignore_index=True)
    data = data[data["seconds"] > 0].assign(**{"best validation accuracy (%)": 100 * data["best"]})
    if data.empty:
        return "time to accuracy: the runs' curves have no positive times"
    fig, ax = plt.subplots(figsize=(7.2, 5.6), layout="constrained")
    shown = {s: colors[s].color for s in data["system"].unique()}
    sns.lineplot(
        data=data,
        x="seconds",
        y="best validation accuracy (%)",
        hue="system",
        # One system at several budgets: a line style per budget, while there are few enough to tell apart.
        style="budget" if data["budget"].nunique() <= STYLE_MAX_BUDGETS else None,
        units="run_id",
        estimator=None,
        drawstyle="steps-post",
        marker="o",
        markersize=5,
        palette=shown,
        alpha=0.8,
        ax=ax,
    )
    accuracy_limits(ax, data["best validation accuracy (%)"].tolist())
    log_time_axis(ax, data["seconds"].tolist())
    legend_below(ax)
    ax.set_xlabel("fit time (log scale): epochs for baselines, trial ends for AutoML")
    ax.set_ylabel("best validation accuracy so far (%)")
    ax.set_title(figure_title("time to accuracy", group, hardware_of(runs)))
    return save_figure(
        fig,
        folder,
        f"{group.slug}_time_to_accuracy",
        f"{group.label}: best validation accuracy reached so far against fit time, one line per run (no intervals).",
    )


def _best_runs(runs: pd.DataFrame, out_dir: Path) -> list[tuple[str, str, artifacts.Predictions]]:
    best = []
    ok = runs[runs["status"] == "ok"].dropna(subset=["accuracy"]).sort_values("accuracy", ascending=False)
    for system, part in sorted(ok.groupby("system"), key=lambda kv: kv[0]):
        for run in part.itertuples():
            preds = artifacts.predictions(out_dir, run.run_id)
            if preds is not None:
                best.append((system, f"{run.budget}, seed {int(run.seed)}", preds))
                break
    return best


def per_class_f1(group: Group, runs: pd.DataFrame, out_dir: Path, folder: Path) -> Figure | str:
    """Heatmap of F1 per class (columns) for each system's best run (rows)."""
    best = _best_runs(runs, out_dir)
    if not best:
        return f"per-class F1: no {rundir.PREDICTIONS} among the ok runs' folders"
    classes = list(best[0][2].classes)
    scores = pd.DataFrame(
        [f1_score(p.truth, p.predicted, labels=classes, average=None, zero_division=0) for _, _, p in best],
        index=[f"{s} ({how})" for s, how, _ in best],
        columns=classes,
    )
    annotate = len(classes) <= ANNOTATE_MAX_CLASSES
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(classes) + 3), 1.0 + 0.6 * len(best) + 1.5))
    sns.heatmap(
        scores,
        vmin=0,
        vmax=1,
        cmap="viridis",
        annot=annotate,
        fmt=".2f",
        ax=ax,
        cbar_kws={"label": "F1 (0–1)"},
    )
    ax.set_xlabel("class")
    ax.set_ylabel("system (best run)")
    ax.set_title(figure_title("per-class F1 of each system's best run with predictions", group, hardware_of(runs)))
    return save_figure(
        fig,
        folder,
        f"{group.slug}_per_class_f1",
        f"{group.label}: F1 per class on the test set for each system's most accurate run with saved predictions.",
    )


def confusion_matrices(group: Group, runs: pd.DataFrame, out_dir: Path, folder: Path) -> Figure | str:
    """The confusion matrix (counts) of each system's best run, side by side."""
    best = _best_runs(runs, out_dir)
    if not best:
        return f"confusion matrices: no {rundir.PREDICTIONS} among the ok runs' folders"
    n_classes = len(best[0][2].classes)
    side = max(3.6, 0.45 * n_classes + 2)
    fig, axes = plt.subplots(1, len(best), figsize=(side * len(best), side + 0.8), squeeze=False)
    for ax, (system, how, p) in zip(axes[0], best, strict=True):
        labels = list(p.classes)
        matrix = pd.DataFrame(confusion_matrix(p.truth, p.predicted, labels=labels), index=labels, columns=labels)
        sns.heatmap(
            matrix,
            annot=n_classes <= ANNOTATE_MAX_CLASSES,
            fmt="d",
            cmap="Blues",
            cbar=False,
            square=True,
            ax=ax,
        )
        ax.set_title(f"{system} ({how})", fontsize="medium")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
    fig.suptitle(
        figure_title(
            "confusion matrices (test images) of each system's best run with predictions",
            group,
            hardware_of(runs),
        )
    )
    return save_figure(
        fig,
        folder,
        f"{group.slug}_confusion",
        f"{group.label}: confusion matrices (counts of test images) of each system's most accurate run "
        f"with saved predictions.",
    )


def _x(s: ConfigSummary, compute: str) -> float | None:
    """A configuration's place on the headline's x axis: its compute in seconds, or its training FLOPs where
    every ok run counted them (a partial count places it at its lower bound)."""
    return s.compute_s if compute == cmp.TIME else s.flops.value


def headline(
    group: Group, summaries: list[ConfigSummary], found: list[Parity], folder: Path, colors: dict[str, Look],
    compute: str = cmp.TIME,
) -> Figure | str:
    """Every contender's accuracy against its mean compute (log axis: fit time, of a search spread over several
    processes times the bundles of resources it reserved; or training FLOPs): a line through each system's
    budgets with its 95% interval over seeds, the floor as a horizontal line, a star where an AutoML system
    reaches parity."""
    contenders = [s for s in summaries if s.system_class != "floor" and s.accuracy.mean is not None]
    shown = [s for s in contenders if _x(s, compute)]
    if not shown:
        what = "recorded fit time" if compute == cmp.TIME else "FLOP count"
        return f"the headline figure: no ok run (besides the floor) with a {what}"
    left_out = [f"{s.system} {s.budget}" for s in contenders if not _x(s, compute)]
    base = reference(summaries, "baseline")
    fig, ax = plt.subplots(figsize=(7.0, 4.0), layout="constrained")
    labels = []
    for system in dict.fromkeys(s.system for s in shown):  # summaries' order: baseline, then AutoML
        mine = sorted((s for s in shown if s.system == system), key=lambda s: _x(s, compute))
        x = [_x(s, compute) for s in mine]
        y = [100 * s.accuracy.mean for s in mine]
        look = colors[system]
        ax.plot(x, y, marker=look.marker, color=look.color, linewidth=1.8, label=system, zorder=3)
        bands = [_interval(s) for s in mine]
        if len(mine) > 1 and all(bands):
            ax.fill_between(x, [b[0] for b in bands], [b[1] for b in bands], color=look.color, alpha=0.15,
                            linewidth=0)
        else:
            for xi, band in zip(x, bands, strict=True):
                if band:
                    ax.plot([xi, xi], band, color=look.color, linewidth=2.5, alpha=0.5)
        labels += [(xi, yi, ("≥ " if compute == cmp.FLOPS and s.flops.partial else "") + s.budget, look.color)
                   for s, xi, yi in zip(mine, x, y, strict=True)]
    if base is not None and _x(base, compute):
        ax.scatter([_x(base, compute)], [100 * base.accuracy.mean], s=180, facecolors="none",
                   edgecolors="black", linewidths=1.2, label=f"reference: {base.system} ({base.budget})", zorder=4)
    marked = False
    for p in found:
        if p.reached is not None and _x(p.reached, compute):
            ax.scatter([_x(p.reached, compute)], [100 * p.reached.accuracy.mean], marker="*", s=260,
                       color=colors[p.system].color, edgecolors="black", linewidths=0.8, zorder=5,
                       label=None if marked else "matched the reference")
            marked = True
    accuracy_limits(ax, [100 * s.accuracy.mean for s in shown])
    for s in summaries:
        if s.system_class == "floor" and s.accuracy.mean is not None:
            level = 100 * s.accuracy.mean
            ax.axhline(level, color="grey", linestyle=":", linewidth=1.2, label=_floor_label(s.system, level, ax))
    xs = [_x(s, compute) for s in shown]
    if compute == cmp.TIME:
        log_time_axis(ax, xs)
        # Where a search ran in several processes, its x is the resources it held (held_s), not its wall time.
        held = any(s.search_workers > 1 for s in shown)
        what = "mean compute per run: fit time x resource bundles held" if held else "mean fit time per run"
        measured = "mean fit time"
    else:
        log_flops_axis(ax, xs)
        what = measured = "mean training FLOPs per run"
    ax.set_xlabel(f"{what} (log scale)")
    ax.set_ylabel("test accuracy (%)")
    legend_below(ax)
    ax.set_title("\n".join(textwrap.wrap(f"{group.label}: accuracy against compute", TITLE_CHARS)),
                 fontsize="medium")
    place_labels(ax, labels)
    hardware = "; ".join(sorted({s.hardware for s in summaries if s.hardware})) or "hardware not recorded"
    tolerance = f"{100 * found[0].tolerance:g} points" if found else "the tolerance"
    notes = ""
    if compute == cmp.FLOPS:
        notes += (" Training FLOPs: forward and backward passes counted from the models (augmentation and data "
                  "loading not counted); ≥: a count that left layers out, placed at its lower bound.")
        if left_out:
            notes += f" Left out, FLOPs not counted: {', '.join(left_out)}."
    elif not shown[0].seconds_comparable:
        notes += (" These times come from several kinds of hardware and do not compare across them; "
                  "`bench report --compute flops` places the runs by training FLOPs.")
    return save_figure(
        fig,
        folder,
        f"{group.slug}_headline",
        f"{group.label} ({hardware}): mean test accuracy against {measured}, a point per budget, named by "
        f"it; bands: {INTERVAL}; circle: the baseline's reference; star: the smallest budget shown no worse than "
        f"it (the 90% interval of the difference above -{tolerance}); dotted: the floor." + notes,
    )


def headline_figure(
    group: Group, summaries: list[ConfigSummary], found: list[Parity], out_dir: Path, colors: dict[str, Look],
    compute: str = cmp.TIME,
) -> Figure | str:
    """The headline figure of one group, written under out_dir/plots/ in the report's style, its x axis the
    compute in seconds ('time') or training FLOPs ('flops')."""
    folder = Path(out_dir) / PLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(RC), sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        return headline(group, summaries, found, folder, colors, compute)


def plot_group(
    group: Group,
    runs: pd.DataFrame,
    summaries: list[ConfigSummary],
    out_dir: Path,
    colors: dict[str, Look] | None = None,
) -> PlotSet:
    """All figures for one group, written under out_dir/plots/; skipped figures come back as notes."""
    folder = Path(out_dir) / PLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    colors = colors or palette(sorted(runs["system"].unique()))
    with plt.rc_context(RC), sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        made = [
            accuracy_vs_budget(group, runs, summaries, folder, colors),
            accuracy_vs_compute(group, runs, folder, colors, {s.system: s.system_class for s in summaries}),
            time_to_accuracy(group, runs, out_dir, folder, colors),
            per_class_f1(group, runs, out_dir, folder),
            confusion_matrices(group, runs, out_dir, folder),
        ]
    return PlotSet(
        tuple(m for m in made if isinstance(m, Figure)),
        tuple(f"Skipped {m}." for m in made if isinstance(m, str)),
    )
