"""The report: tables, verdicts, plots, an HTML page and an amlb-style results file, from runs.csv alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core import rundir
from bench.report import artifacts, parity, tables
from bench.report import compute as cmp
from bench.report import formatting as fmt
from bench.report.amlb import AMLB_FILE, amlb_frame
from bench.report.caveats import caveats
from bench.report.document import Block, Contents, Heading, Link, Links, Paragraph, Row, Table, to_markdown
from bench.report.html import to_html
from bench.report.plots import PLOTS_DIR, Figure, PlotSet, headline_figure, palette, plot_group
from bench.report.runs import (
    Group,
    ReportError,
    arithmetic,
    data_seen,
    grouped,
    keras_backend,
    label_data,
    label_variants,
    load_runs,
    system_classes,
    where_run,
)
from bench.report.style import Look
from bench.report.tables import Prices
from bench.report.trials import TRIALS_CSV, Trials, trials
from bench.report.trials import display as trials_display
from bench.report.verdicts import verdicts

__all__ = [
    "DEFAULT_PARITY_TOLERANCE",
    "ReportError",
    "write_report",
]

REPORT_MD = "REPORT.md"
REPORT_HTML = "report.html"
TABLES_DIR = "tables"
DEFAULT_PARITY_TOLERANCE = parity.DEFAULT_TOLERANCE
# The AutoML system whose sentence answers first for each data set (the others' follow the headline figures).
PRIMARY_AUTOML = "autokeras"
TITLE = "AutoML against a hand-built baseline: accuracy per unit of compute"
# The summary's columns that go beside a headline figure, where there is no baseline to compare with.
LEAD_SUMMARY = ("System", "Budget", "Seeds ok", "Accuracy", "Spread", "Fit")
CSV_FILES = ("parity.csv", "summary.csv", "versus_baseline.csv", "cost.csv", "failures.csv", TRIALS_CSV)


def _write_csv(frame: pd.DataFrame, path: Path, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    written.append(path)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The groups' rows in one frame: the columns of the first when no group has a row; none without groups."""
    rows = [f for f in frames if not f.empty]
    if rows:
        return pd.concat(rows, ignore_index=True)
    return frames[0] if frames else pd.DataFrame()


def _names(classes: dict[str, str], klass: str) -> str:
    return ", ".join(sorted(s for s, c in classes.items() if c == klass)) or "none"


def _precision_text(precision: str, backend: str = "") -> str:
    """The end of the 'N runs on <hardware>' sentence: the Keras systems' precision and backend, each flagged
    when it differs between them."""
    if not precision:
        return "."
    text = ""
    if precision.startswith("mixed:"):
        text += (f". Keras systems did not compute in one precision ({precision.removeprefix('mixed: ')}): "
                 "their comparison is not like for like; rerun with one `--precision`")
    else:
        text += f", Keras systems in {precision}"
    if backend.startswith("mixed:"):
        text += (f". Keras systems did not run on one backend ({backend.removeprefix('mixed: ')}): their "
                 "times are not like for like; rerun with one `--backend`")
    elif backend:
        text += f" on {backend}"
    return text + "."


def _gpu_paragraph(summaries: list[tables.ConfigSummary]) -> str:
    """What the GPU columns measure, for data where some run measured them ('' where none did)."""
    text = ""
    if any(s.gpu_s is not None for s in summaries):
        text += " GPU is GPUs held x wall time of fit and predict (what renting them costs)."
    if any(s.gpu_busy_s is not None for s in summaries):
        text += " GPU busy is what they worked: the time-integral of their utilisation (1 h at 50% counts 0.5 h)."
    return text


@dataclass(frozen=True)
class GroupResult:
    """One group of data analysed: what its sections and the report's tables are made of."""

    group: Group
    runs: pd.DataFrame
    summaries: list[tables.ConfigSummary]
    versus: list[tables.Versus]
    cost: list[tables.CostRow]
    failures: list[Any]
    parities: list[parity.Parity]
    headline: Figure | str
    plots: PlotSet
    trials: Trials
    out_dir: Path  # the results folder: run folders are linked only where they are there


def _analyse(group: Group, part: pd.DataFrame, out_dir: Path, *, baseline: str, prices: Prices,
             tolerance: float, colors: dict[str, Look], compute: str = cmp.TIME) -> GroupResult:
    summaries = tables.summarize(group, part, baseline, out_dir)
    found = parity.parities(summaries, tolerance)
    return GroupResult(
        group=group,
        runs=part,
        summaries=summaries,
        versus=tables.versus(summaries, tolerance),
        cost=tables.cost_rows(summaries, prices),
        failures=tables.failures(part),
        parities=found,
        headline=headline_figure(group, summaries, found, out_dir, colors, compute),
        plots=plot_group(group, part, summaries, out_dir, colors),
        trials=trials(group, part, out_dir, colors),
        out_dir=out_dir,
    )


def _not_counted(runs: pd.DataFrame) -> str:
    """How many ok runs have no FLOP count, and what that means for the tables ('' where every one has)."""
    ok = runs[runs["status"] == "ok"]
    missing = int(ok["train_flops"].isna().sum())
    if not missing:
        return ""
    return (f" {missing} of {fmt.plural(len(ok), 'ok run')} have no FLOP count (made before the counter existed): "
            "their training FLOPs read \"not counted\" in every table, and no FLOP ratio is taken with them.")


def _mixed(summaries: list[tables.ConfigSummary], runs: pd.DataFrame) -> str:
    """The plain sentence of a group whose ok runs came from several kinds of hardware ('' on one kind)."""
    compared = [s for s in summaries if s.system_class in ("baseline", "automl")]
    missing, ok = sum(s.flops_missing for s in compared), sum(s.ok for s in compared)
    return cmp.mixed_sentence(cmp.hardware_kinds(runs), missing, ok)


def _intro(runs: pd.DataFrame, baseline: str, data_notes: tuple[str, ...]) -> list[Block]:
    """What the report is made of, with links to the files it read and wrote."""
    classes = system_classes(runs, baseline)
    others = _names(classes, "other")
    return [
        Heading(2, "What this report is made of"),
        Paragraph(
            f"Made from {fmt.plural(len(runs), 'run')} in {rundir.RUNS_TABLE} ({(runs['status'] == 'ok').sum()} ok), "
            f"each run's files in its folder under {rundir.RUNS_DIR}/; baseline: {baseline}; by the roles the "
            f"systems declare, AutoML: {_names(classes, 'automl')}; floor: {_names(classes, 'floor')}"
            + (f"; other: {others}" if others != "none" else "")
            + "." + _not_counted(runs) + " Files:",
            items=(
                Link(f"{rundir.RUNS_TABLE}: every run, one row each", rundir.RUNS_TABLE),
                Link(f"{AMLB_FILE}: the amlb-style results", AMLB_FILE),
                *(Link(f"{TABLES_DIR}/{name}", f"{TABLES_DIR}/{name}") for name in CSV_FILES),
                *data_notes,
            ),
        ),
    ]


def _has_baseline(r: GroupResult) -> bool:
    return any(s.system_class == "baseline" and s.ok for s in r.summaries)


def _configurations(summaries: list[tables.ConfigSummary]) -> str:
    """Configurations in words: each one's accuracy, its interval where there is one, and its compute."""
    parts = []
    for s in summaries:
        a = s.accuracy
        interval = f", 95% interval {fmt.pct(max(a.low, 0.0))} to {fmt.pct(min(a.high, 1.0))}" if a.kind == "ci" else ""
        parts.append(f"{s.system} at {s.budget}: {fmt.pct(a.mean)} ({fmt.plural(a.n, 'seed')}{interval}) "
                     f"in {fmt.duration(s.compute_s)}")
    return "; ".join(parts)


def _ran(r: GroupResult) -> list[tables.ConfigSummary]:
    return [s for s in r.summaries if s.ok and s.system_class != "floor" and s.accuracy.mean is not None]


def _answer(results: list[GroupResult], baseline: str) -> tuple[list[Block], list[Block]]:
    """The report's answer first: a sentence per group of data (its primary AutoML system's, so the first screen
    holds it); then the other AutoML systems' sentences, for under the headline."""
    sentences: list[str] = []
    others: list[str] = []
    for r in results:
        if not (r.runs["status"] == "ok").any():
            continue
        if not _has_baseline(r):
            sentences.append(f"{r.group.label}: no {baseline} run, so no comparison with it; this study compares "
                             f"{_configurations(_ran(r))}.")
            continue
        if not r.parities:
            ran = _ran(r)
            if not ran:
                continue
            best = max(ran, key=lambda s: s.accuracy.mean)
            sentences.append(f"{r.group.label}: no AutoML system ran, so there is nothing to compare {baseline} "
                             f"with; of its {fmt.plural(len(ran), 'configuration')}, the most accurate was "
                             f"{_configurations([best])}.")
            continue
        said = parity.answer_sentences(_primary_first(r.parities))
        sentences += said[:1]
        others += said[1:]
    blocks: list[Block] = [Paragraph(items=tuple(sentences), kind="answer")] if sentences else []
    return blocks, ([Paragraph(items=tuple(others))] if others else [])


def _primary_first(found: list[Any]) -> list[Any]:
    """The parities with Auto-Keras' first (the library the question is about), the others in their order."""
    return sorted(found, key=lambda p: p.system != PRIMARY_AUTOML)


def _headline(results: list[GroupResult], baseline: str, tolerance: float, read_with: tuple[str, ...]) -> list[Block]:
    """Per group of data, its headline figure beside its parity table (or, without a comparison, the summary of
    what it ran); the caveats under the first table, so that the first screen holds the answer, a figure, its
    table and what to read them with."""
    blocks: list[Block] = []
    caveats_block = Paragraph(items=read_with, kind="caveats") if read_with else None
    unrun = [r.group.label for r in results if not (r.runs["status"] == "ok").any()]
    for r in results:
        if r.group.label in unrun:
            continue  # said once below, not as an empty figure and table
        figure = r.headline if isinstance(r.headline, Figure) else Paragraph(f"Skipped {r.headline}.")
        if not _has_baseline(r) or not r.parities:
            summary = tables.SUMMARY.display(r.summaries)
            table: Block = Table(summary[[c for c in LEAD_SUMMARY if c in summary.columns]],
                                 f"{TABLES_DIR}/summary.csv")
        else:
            table = Table(_without_data_column(parity.PARITY.display(r.parities)), f"{TABLES_DIR}/parity.csv")
        row: tuple[Block, ...] = (Heading(3, r.group.label), figure, table)
        if caveats_block is not None:
            row, caveats_block = (*row, caveats_block), None
        blocks.append(Row(row))
    if caveats_block is not None:
        blocks.append(caveats_block)
    if unrun:
        blocks.append(Paragraph(f"No run ended ok on {'; '.join(unrun)}: see their sections for why."))
    if any(_has_baseline(r) and r.parities for r in results):
        blocks.append(Paragraph(parity.caption(tolerance)))
    return blocks


def _without_data_column(frame: pd.DataFrame) -> pd.DataFrame:
    # Under the group's own heading the data need not be named again.
    return frame.drop(columns=["Data"], errors="ignore")


def _overview(r: GroupResult, baseline: str, tolerance: float) -> list[Block]:
    """The group's heading, where it ran, and its verdicts, each said once."""
    part = r.runs
    sentences = verdicts(r.group, r.summaries, baseline, tolerance)
    sentences += [s for p in r.parities if (s := parity.sentence(p))]
    return [
        Heading(2, r.group.label),
        Paragraph(f"{fmt.plural(len(part), 'run')} on {where_run(part)}"
                  + _precision_text(arithmetic(part), keras_backend(part))
                  + (f" Data fingerprint: {seen}." if (seen := data_seen(part)) else "")
                  + (f" {mixed}" if (mixed := _mixed(r.summaries, part)) else "")),
        Paragraph(items=tuple(sentences)),
    ]


def _systems(r: GroupResult) -> list[Block]:
    """Every system and budget, and the runs that did not finish."""
    blocks: list[Block] = [
        Heading(3, "Systems and budgets"),
        Paragraph(
            "Accuracy is the mean over ok seeds; the spread is ± 1 std with 2 seeds and a 95% t-interval "
            "with 3 or more. Times are means per ok run (the CSV has them in seconds)." + _gpu_paragraph(r.summaries)
        ),
        Table(_with_run_links(tables.SUMMARY.display(r.summaries), r.runs, r.out_dir), f"{TABLES_DIR}/summary.csv"),
    ]
    if note := _checkpoint_note(r.runs):
        blocks.append(Paragraph(note))
    if r.failures:
        blocks += [
            Heading(3, "Runs that did not finish"),
            Table(tables.FAILURES.display(r.failures).assign(
                Run=[_run_link(r.out_dir, f.run_id, "folder") for f in r.failures]), f"{TABLES_DIR}/failures.csv"),
        ]
    return blocks


def _run_link(out_dir: Path, run_id: str, text: str) -> Link | str:
    """A link to the run's folder, or its text alone where the folder is not there (runs.csv without runs/)."""
    folder = artifacts.run_folder(out_dir, run_id)
    return Link(text, f"{rundir.RUNS_DIR}/{run_id}/") if folder is not None and folder.is_dir() else text


def _with_run_links(frame: pd.DataFrame, runs: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """The summary with a last column linking each configuration's run folders, one per seed."""
    folders = []
    for system, budget in zip(frame["System"], frame["Budget"], strict=True):
        mine = runs[(runs["system"] == system) & (runs["budget"].astype(str) == str(budget))].sort_values("seed")
        folders.append(Links(tuple(_run_link(out_dir, run_id, f"seed {int(seed)}")
                                   for run_id, seed in zip(mine["run_id"], mine["seed"], strict=True))))
    return frame.assign(**{"Run folders": folders})


def _all_skipped(r: GroupResult) -> list[Block]:
    """For a group whose runs were all skipped (its data not found, say), its heading and why, once; [] for any
    other group."""
    statuses = set(r.runs["status"])
    if statuses != {"skipped"}:
        return []
    reasons = sorted(set(r.runs["error"].fillna("")))
    why = (f": {reasons[0]}" if len(reasons) == 1 and reasons[0] else
           f", for {len(reasons)} different reasons (each run's in {TABLES_DIR}/failures.csv)")
    return [Heading(2, r.group.label), Paragraph(f"All {fmt.plural(len(r.runs), 'run')} skipped{why}.")]


def _checkpoint_note(runs: pd.DataFrame) -> str:
    """Which ok runs predicted with their best trial's search-time checkpoint, not a refit ('' for none)."""
    ok = runs[(runs["status"] == "ok") & (runs["predicted_by"].fillna("") == "best trial")]
    if ok.empty:
        return ""
    named = "; ".join(f"{r.system} {r.budget} seed {int(r.seed)}" for r in ok.itertuples(index=False))
    return (f"In {fmt.plural(len(ok), 'run')} ({named}) the budget cut the refit inside its first epoch, so the "
            "best trial's search-time checkpoint predicted, as in Auto-Keras' own default (predicted_by in "
            f"{rundir.RUNS_TABLE}).")


def _against_baseline(r: GroupResult, baseline: str, tolerance: float) -> list[Block]:
    """Each AutoML configuration against the baseline's reference; nothing where the baseline never ran."""
    if not r.versus or not _has_baseline(r):
        return []
    found = tables.plateau(r.summaries, tolerance)
    ref = found.text if found else f"{baseline} has no ok run here, so there is no reference."
    # The ratio is of fit (wall) time also where GPUs ran: GPU and GPU busy time are in the summary.
    ratio = " Compute ratio = AutoML fit time / baseline fit time" + (
        " (wall time, not GPU or GPU busy time)." if _gpu_paragraph(r.summaries) else "."
    ) + (" FLOPs ratio = AutoML training FLOPs / the baseline's (\"at least\" or \"at most\" where a count left "
         "layers out)." if all(s.seconds_comparable for s in r.summaries) else
         " Here the runs came from several kinds of hardware: no ratio of seconds is shown, only the FLOPs ratio "
         "(AutoML training FLOPs / the baseline's).")
    pairing = (
        " The 90% interval of the difference carries the seeds' and the test images' variance, paired by seed"
        " where 2 or more seeds ran both and by test image where both kept predictions; it resolves the"
        " difference when it excludes 0."
    )
    scopes = sorted({v.automl.budget_scope for v in r.versus if v.automl.budget_scope})
    covers = {"total": "search and refit", "search": "the search only (the refit comes after it)"}
    scope_words = " and ".join(covers.get(sc, sc) for sc in scopes)
    return [
        Heading(3, f"AutoML against {baseline}" + (f" (AutoML budgets cover {scope_words})" if scope_words else "")),
        Paragraph(ref + ratio + pairing),
        Table(tables.VERSUS.display(r.versus), f"{TABLES_DIR}/versus_baseline.csv"),
    ]


def _cost(r: GroupResult, prices: Prices) -> list[Block]:
    """What one run of each configuration used, and what it costs at the prices the user gave."""
    if not r.cost:
        return []
    given = [f"{fmt.price(p)}/h for a {what}" for p, what in ((prices.cpu, "CPU machine"), (prices.gpu, "GPU machine"),
                                                               (prices.managed_automl, "managed cloud AutoML"))
             if p is not None]
    priced = (f"Cost per run: fit hours x the price given for the machine a run needs ({'; '.join(given)})."
              if given else
              "No price was given, so no cost is shown: compute is what was measured (give one with "
              "`bench report --price-per-hour`, `--gpu-price-per-hour` or `--managed-automl-price-per-hour`, in "
              "US dollars per hour).")
    return [
        Heading(3, "Compute and cost"),
        Paragraph(
            "Per run, the mean over ok seeds: fit (wall) time, CPU time and, where measured, GPU time. " + priced
            + (" Energy is per run over fit and predict: the held GPUs' (NVML's counter) and the CPU packages' "
               "(RAPL: the whole package's draw, other processes included)."
               if any(c.gpu_energy_j is not None or c.cpu_energy_j is not None for c in r.cost) else
               " No run could read an energy counter here.")
        ),
        Table(tables.COST.display(r.cost), f"{TABLES_DIR}/cost.csv"),
    ]


def _figures(r: GroupResult) -> list[Block]:
    """The group's detail figures, and notes on those that could not be made."""
    blocks: list[Block] = [Heading(3, "Figures"), *r.plots.figures]
    if r.plots.notes:
        blocks.append(Paragraph(items=r.plots.notes))
    return blocks


def _searches(r: GroupResult) -> list[Block]:
    """What each search tried: the group's trials as a figure and a table linked to each run's folder."""
    if r.trials.rows.empty:
        return []
    figure = r.trials.figure if isinstance(r.trials.figure, Figure) else Paragraph(f"Skipped {r.trials.figure}.")
    rows = r.trials.rows
    searches = rows["run_id"].nunique()
    return [
        Heading(3, "What each search tried"),
        figure,
        Paragraph(
            "Each trial of each search: its architecture (where the search chose one), the hyperparameters whose "
            "value differs between trials of that system and architecture (— where none does), the epochs it "
            "trained, its validation accuracy, how long it took and when it ended, since its run's fit began. "
            f"The CSV has each trial's whole configuration; the run links open its folder ({rundir.TRIALS})."
        ),
        Table(trials_display(rows), f"{TABLES_DIR}/{TRIALS_CSV}",
              folded=f"{fmt.plural(len(rows), 'trial')} of {searches} search{'es' if searches > 1 else ''}"),
    ]


def _write_tables(results: list[GroupResult], folder: Path, written: list[Path]) -> None:
    """The CSVs: every group's rows in one file per table."""
    _write_csv(_concat([tables.SUMMARY.csv(r.summaries) for r in results]), folder / "summary.csv", written)
    _write_csv(_concat([tables.VERSUS.csv(r.versus) for r in results if r.versus]), folder / "versus_baseline.csv",
               written)
    _write_csv(_concat([tables.COST.csv(r.cost) for r in results]), folder / "cost.csv", written)
    _write_csv(_concat([tables.FAILURES.csv(r.failures) for r in results]), folder / "failures.csv", written)
    _write_csv(_concat([parity.PARITY.csv(r.parities) for r in results]), folder / "parity.csv", written)
    _write_csv(_concat([r.trials.rows for r in results]), folder / TRIALS_CSV, written)


def write_report(
    out_dir: Path,
    *,
    baseline: str = "resnet",
    price_per_hour: float | None = None,
    gpu_price_per_hour: float | None = None,
    managed_automl_price_per_hour: float | None = None,
    parity_tolerance: float = DEFAULT_PARITY_TOLERANCE,
    compute: str = cmp.TIME,
) -> list[Path]:
    """Writes REPORT.md, report.html, tables/, plots/ and results_amlb.csv from runs.csv; returns paths.

    Prices are US dollars per hour, shown only where given; parity_tolerance is a fraction of accuracy (0.005:
    half a point); compute is the headline figure's x axis, 'time' (seconds) or 'flops' (training FLOPs)."""
    if compute not in cmp.MEASURES:
        raise ReportError(f"compute must be one of {', '.join(cmp.MEASURES)}, got {compute!r}")
    out_dir = Path(out_dir)
    recorded = load_runs(out_dir)
    runs, data_notes = label_data(label_variants(recorded))
    for stale in (out_dir / PLOTS_DIR).glob("*.*"):
        # A dataset that left the table must not leave its old plots behind.
        stale.unlink()
    prices = Prices(cpu=price_per_hour, gpu=gpu_price_per_hour, managed_automl=managed_automl_price_per_hour)
    colors = palette(sorted(runs["system"].unique()))
    groups = grouped(runs)
    results = [
        _analyse(group, part, out_dir, baseline=baseline, prices=prices, tolerance=parity_tolerance, colors=colors,
                 compute=compute)
        for group, part in groups
    ]
    written: list[Path] = []
    for r in results:
        figures = ([r.headline] if isinstance(r.headline, Figure) else []) + list(r.plots.figures)
        figures += [r.trials.figure] if isinstance(r.trials.figure, Figure) else []
        written += [p for f in figures for p in (f.png, f.svg)]
    _write_tables(results, out_dir / TABLES_DIR, written)
    _write_csv(amlb_frame(recorded, out_dir), out_dir / AMLB_FILE, written)  # amlb's own names and params
    read_with = caveats(out_dir, groups, system_classes(runs, baseline))
    answer, more_answers = _answer(results, baseline)
    blocks: list[Block] = [Heading(1, TITLE), *answer]
    blocks += _headline(results, baseline, parity_tolerance, read_with) + more_answers + [Contents()]
    blocks += _intro(runs, baseline, data_notes)
    for r in results:
        if skipped := _all_skipped(r):
            blocks += skipped  # one reason said once, not a table of empty cells
            continue
        blocks += _overview(r, baseline, parity_tolerance) + _systems(r)
        blocks += _against_baseline(r, baseline, parity_tolerance) + _cost(r, prices)
        blocks += _figures(r) + _searches(r)
    md, page = out_dir / REPORT_MD, out_dir / REPORT_HTML
    md.write_text(to_markdown(blocks, out_dir), encoding="utf-8")
    page.write_text(to_html(blocks, TITLE, out_dir), encoding="utf-8")
    return [md, page, *written]
